use super::verify::{resume_from_tail, Torn};
use super::*;

/// The golden chain in `proto/vectors/audit-v1.jsonl`.
const VECTOR: &str = include_str!("../../proto/vectors/audit-v1.jsonl");

fn id(byte: u8) -> MessageId {
    MessageId([byte; 32])
}

/// The facts of the golden vector: a start, a P1 received on `triage`, read over
/// the control socket, transcribed, deleted, and one sweep.
fn vector_facts() -> Vec<(u64, Fact)> {
    let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN".to_owned();
    let msg = Fact {
        message: Some(id(0xab)),
        channel: Some(ChannelName::new("triage").unwrap()),
        peer: Some(peer.clone()),
        priority: Some(Priority::P1),
        ..Fact::new(Event::Received)
    };
    vec![
        (
            1_764_000_000_000,
            Fact {
                peer: Some(peer.clone()),
                ..Fact::new(Event::Started)
            },
        ),
        (1_764_000_001_000, msg.clone()),
        (
            1_764_000_002_000,
            Fact {
                event: Event::Read,
                via: Some(Via::Control),
                ..msg.clone()
            },
        ),
        (
            1_764_000_003_000,
            Fact {
                event: Event::Transcribed,
                ..msg.clone()
            },
        ),
        (
            1_764_000_003_000,
            Fact {
                event: Event::Deleted,
                ..msg
            },
        ),
        (1_764_000_004_000, Fact::counting(Event::Expired, 3)),
    ]
}

fn chain(facts: &[(u64, Fact)]) -> Vec<Record> {
    let mut prev = GENESIS.to_owned();
    let mut out = Vec::new();
    for (seq, (at, f)) in (0u64..).zip(facts) {
        let r = Record::chain(f, seq, *at, &prev);
        prev.clone_from(&r.hash);
        out.push(r);
    }
    out
}

fn file_of(records: &[Record]) -> String {
    records.iter().map(|r| r.to_line() + "\n").collect()
}

#[test]
fn chain_matches_the_golden_vector() {
    let file = file_of(&chain(&vector_facts()));
    assert_eq!(file, VECTOR, "proto/vectors/audit-v1.jsonl");
    let v = verify(VECTOR.as_bytes()).unwrap();
    assert_eq!(v.records.len(), 6);
    assert!(v.torn.is_empty());
    assert_eq!(v.head().unwrap().0, 5);
}

#[test]
fn canonical_bytes_are_the_record_without_its_hash_in_field_order() {
    let r = &chain(&vector_facts())[5];
    let canonical = String::from_utf8(r.canonical_bytes()).unwrap();
    assert_eq!(
        canonical,
        format!(
            "{{\"seq\":5,\"at_ms\":1764000004000,\"event\":\"expired\",\"message\":null,\
             \"channel\":null,\"peer\":null,\"priority\":null,\"count\":3,\"via\":null,\
             \"prev\":\"{}\"}}",
            r.prev
        )
    );
    // The line is the canonical bytes with the hash appended as the last field.
    assert_eq!(
        r.to_line(),
        format!(
            "{},\"hash\":\"{}\"}}",
            &canonical[..canonical.len() - 1],
            r.hash
        )
    );
}

#[test]
fn an_edited_field_is_named_by_its_seq() {
    let mut lines: Vec<String> = VECTOR.lines().map(str::to_owned).collect();
    // One character of the message id in seq 2.
    lines[2] = lines[2].replacen("abab", "abac", 1);
    let file = lines.join("\n") + "\n";
    assert_eq!(
        verify(file.as_bytes()).unwrap_err(),
        Broken::Hash { line: 3, seq: 2 }
    );
}

#[test]
fn an_edited_record_with_a_recomputed_hash_breaks_the_next_link() {
    let mut records = chain(&vector_facts());
    records[1].priority = Some(Priority::P4);
    records[1].hash = records[1].computed_hash();
    let err = verify(file_of(&records).as_bytes()).unwrap_err();
    assert_eq!(err, Broken::Prev { line: 3, seq: 2 });
    assert!(err.to_string().contains("seq 2"), "{err}");
}

#[test]
fn a_deleted_middle_line_is_a_gap() {
    let lines: Vec<&str> = VECTOR.lines().collect();
    let file: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    assert_eq!(
        verify(file.as_bytes()).unwrap_err(),
        Broken::Sequence {
            line: 4,
            expected: 3,
            found: 4
        }
    );
}

#[test]
fn a_garbage_line_in_the_middle_is_tampering() {
    let mut lines: Vec<&str> = VECTOR.lines().collect();
    lines.insert(2, "{\"seq\":2");
    let file = lines.join("\n") + "\n";
    assert_eq!(
        verify(file.as_bytes()).unwrap_err(),
        Broken::NotARecord {
            line: 3,
            expected: 2
        }
    );
}

#[test]
fn a_torn_last_line_is_reported_as_torn_not_as_tampering() {
    let records = chain(&vector_facts());
    let mut file = file_of(&records[..4]);
    let half = records[4].to_line();
    file.push_str(&half[..half.len() / 2]);
    let v = verify(file.as_bytes()).unwrap();
    assert_eq!(v.records.len(), 4);
    assert_eq!(
        v.torn,
        vec![Torn {
            line: 5,
            bytes: half.len() / 2
        }]
    );
    // The writer resumes after the last whole record.
    let resume = resume_from_tail(file.as_bytes());
    assert!(resume.torn && resume.unterminated);
    assert_eq!(resume.last.as_ref(), Some(&records[3]));
}

#[test]
fn a_torn_line_followed_by_a_restart_verifies() {
    let records = chain(&vector_facts());
    let mut file = file_of(&records[..2]);
    file.push_str("{\"seq\":2,\"at_ms\":17\n");
    let restart = Record::chain(
        &Fact::new(Event::Started),
        2,
        1_764_000_009_000,
        &records[1].hash,
    );
    file.push_str(&(restart.to_line() + "\n"));
    let v = verify(file.as_bytes()).unwrap();
    assert_eq!(v.records.len(), 3);
    assert_eq!(v.torn.len(), 1);
    assert_eq!(v.torn[0].line, 3);
}

#[test]
fn junk_is_not_passed_off_as_a_torn_line() {
    // A terminated last line is no crash: the newline goes out with the record.
    let mut file = VECTOR.to_owned();
    file.push_str("{\"seq\":6,\"at\n");
    assert_eq!(
        verify(file.as_bytes()).unwrap_err(),
        Broken::NotARecord {
            line: 7,
            expected: 6
        }
    );
    // Something that is no start of a record, even before a restart.
    let file = format!("not a record\n{VECTOR}");
    assert_eq!(
        verify(file.as_bytes()).unwrap_err(),
        Broken::NotARecord {
            line: 1,
            expected: 0
        }
    );
}

#[test]
fn a_chain_not_starting_at_genesis_is_refused() {
    let records = chain(&vector_facts());
    let file = file_of(&records[2..]);
    assert_eq!(
        verify(file.as_bytes()).unwrap_err(),
        Broken::Sequence {
            line: 1,
            expected: 0,
            found: 2
        }
    );
}

#[test]
fn over_long_lines_are_not_parsed() {
    let long = format!("{{\"seq\":0,\"pad\":\"{}\"}}", "x".repeat(MAX_LINE_BYTES));
    assert!(verify::parse_line(long.as_bytes()).is_none());
}

#[tokio::test]
async fn the_writer_chains_across_restarts_and_counts_nothing_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DRILL_FILE);
    let me = libp2p::PeerId::random();
    for run in 0..2u8 {
        let stop = tokio_util::sync::CancellationToken::new();
        let (log, task) = AuditLog::open(&path, &me, None, stop.clone()).unwrap();
        log.record(Fact {
            message: Some(id(run)),
            ..Fact::new(Event::Sent)
        });
        log.record_wait(Fact::counting(Event::Expired, 2)).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(log.head().unwrap().seq, u64::from(run) * 3 + 2);
        assert!(!log.failed());
    }
    let v = verify(&std::fs::read(&path).unwrap()).unwrap();
    let events: Vec<Event> = v.records.iter().map(|r| r.event).collect();
    use Event::*;
    assert_eq!(events, [Started, Sent, Expired, Started, Sent, Expired]);
    assert_eq!(v.records[0].peer.as_deref(), Some(me.to_string().as_str()));
}

#[tokio::test]
async fn records_lost_to_a_full_queue_are_counted_on_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DRILL_FILE);
    let stop = tokio_util::sync::CancellationToken::new();
    // A queue of 2, and the writer gets no turn until the test awaits: `started`
    // and one `sent` fit, the other four do not.
    let (log, task) =
        AuditLog::open_with(&path, &libp2p::PeerId::random(), None, stop.clone(), 2).unwrap();
    for n in 0..5u8 {
        log.record(Fact {
            message: Some(id(n)),
            ..Fact::new(Event::Sent)
        });
    }
    stop.cancel();
    task.await.unwrap();
    let v = verify(&std::fs::read(&path).unwrap()).unwrap();
    let dropped: Vec<&Record> = v
        .records
        .iter()
        .filter(|r| r.event == Event::Dropped)
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].count, Some(4));
    assert_eq!(v.records.len(), 3);
}

#[tokio::test]
async fn the_writer_resumes_after_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DRILL_FILE);
    let records = chain(&vector_facts());
    let mut file = file_of(&records[..3]);
    file.push_str("{\"seq\":3,\"at_");
    std::fs::write(&path, file).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let (log, task) = AuditLog::open(&path, &libp2p::PeerId::random(), None, stop.clone()).unwrap();
    stop.cancel();
    task.await.unwrap();
    let v = verify(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v.torn.len(), 1);
    assert_eq!(v.records.len(), 4);
    assert_eq!(v.records[3].event, Event::Started);
    assert_eq!(log.head().unwrap().seq, 3);
}

#[cfg(unix)]
#[tokio::test]
async fn the_log_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DRILL_FILE);
    let stop = tokio_util::sync::CancellationToken::new();
    let (_log, task) =
        AuditLog::open(&path, &libp2p::PeerId::random(), None, stop.clone()).unwrap();
    stop.cancel();
    task.await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn a_log_cut_short_while_the_node_was_stopped_is_found_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DRILL_FILE);
    let key = crate::crypto::at_rest::Key::from_bytes([7; 32]);
    let store = crate::store::Store::open(&dir.path().join("store"), key).unwrap();
    let me = libp2p::PeerId::random();
    let run = |n: u8| {
        let (path, store) = (path.clone(), store.clone());
        async move {
            let stop = tokio_util::sync::CancellationToken::new();
            let (log, task) = AuditLog::open(&path, &me, Some(store), stop.clone()).unwrap();
            log.record(Fact {
                message: Some(id(n)),
                ..Fact::new(Event::Sent)
            });
            stop.cancel();
            task.await.unwrap();
        }
    };
    // Two clean runs: the anchor follows the file, nothing is reported.
    run(1).await;
    run(2).await;
    assert_eq!(store.audit_anchor().unwrap().unwrap().0, 3);
    assert_eq!(
        verify(&std::fs::read(&path).unwrap())
            .unwrap()
            .records
            .len(),
        4
    );
    // The last record is cut off while the node is stopped: a valid chain, but the
    // next start finds the anchored record gone and says so in the chain.
    let file = std::fs::read_to_string(&path).unwrap();
    let cut: String = file.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, &cut).unwrap();
    assert!(
        verify(cut.as_bytes()).is_ok(),
        "a cut tail alone still verifies"
    );
    run(3).await;
    let err = verify(&std::fs::read(&path).unwrap()).unwrap_err();
    assert_eq!(
        err,
        Broken::Cut {
            line: 5,
            seq: 4,
            anchor: 3
        }
    );
    assert!(err.to_string().contains("cut short or rewritten"), "{err}");
}
