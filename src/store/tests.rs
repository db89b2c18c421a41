use super::*;
use crate::crypto::at_rest::Key;
use crate::gossip::envelope::{Draft, DEFAULT_HOP_LIMIT};
use crate::gossip::priority::Priority;
use libp2p::identity::ed25519;
use std::time::Duration;

fn env(channel: &str, created_at_ms: u64, ttl_ms: u64, body: &str) -> Envelope {
    let key = ed25519::Keypair::generate();
    Envelope::sign(
        Draft {
            channel: ChannelName::new(channel).unwrap(),
            created_at_ms,
            ttl: Duration::from_millis(ttl_ms),
            hop_limit: DEFAULT_HOP_LIMIT,
            priority: Priority::P2,
            body: body.as_bytes().to_vec(),
        },
        &key,
    )
    .unwrap()
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Key::from_bytes([9; 32])).unwrap();
    (dir, store)
}

#[test]
fn duplicates_are_stored_once() {
    let (_d, s) = open();
    let e = env("triage", 1000, 5000, "a");
    assert_eq!(s.insert(&e).unwrap(), Inserted::New);
    assert_eq!(s.insert(&e).unwrap(), Inserted::Duplicate);
    assert_eq!(s.len(), 1);
    assert_eq!(s.get(&e.id).unwrap().unwrap(), e);
}

#[test]
fn reads_a_channel_oldest_first_without_expired_or_other_channels() {
    let (_d, s) = open();
    let late = env("triage", 3000, 10_000, "late");
    let early = env("triage", 1000, 10_000, "early");
    let short = env("triage", 2000, 500, "short");
    let other = env("triage-2", 1500, 10_000, "other");
    for e in [&late, &early, &short, &other] {
        s.insert(e).unwrap();
    }
    let got = s
        .read_channel(&ChannelName::new("triage").unwrap(), 2600, 100)
        .unwrap();
    assert_eq!(got, vec![early.clone(), late.clone()]);
    let got = s
        .read_channel(&ChannelName::new("triage").unwrap(), 2600, 1)
        .unwrap();
    assert_eq!(got, vec![late], "a limit keeps the newest");
    assert!(s.read_channel(&early.channel, 2600, 0).unwrap().is_empty());
}

#[test]
fn sweep_deletes_expired_messages_and_their_index_entries() {
    let (_d, s) = open();
    let a = env("triage", 1000, 1000, "a"); // expires 2000
    let b = env("triage", 1000, 5000, "b"); // expires 6000
    s.insert(&a).unwrap();
    s.insert(&b).unwrap();
    assert_eq!(s.next_expiry_ms().unwrap(), Some(2000));
    assert_eq!(s.sweep_expired(1999).unwrap(), vec![]);
    assert_eq!(s.sweep_expired(2000).unwrap(), vec![a.id]);
    assert_eq!(s.get(&a.id).unwrap(), None);
    assert_eq!(s.len(), 1);
    assert_eq!(s.next_expiry_ms().unwrap(), Some(6000));
    assert_eq!(s.by_channel.len(), 1);
    // Once swept, the same message can no longer resurface as a stored duplicate.
    assert_eq!(s.sweep_expired(10_000).unwrap(), vec![b.id]);
    assert!(s.is_empty());
    assert_eq!(s.by_channel.len() + s.expiry.len(), 0);
}

#[test]
fn history_and_channels_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let e = env("triage", 1000, 60_000, "kept");
    {
        let s = Store::open(dir.path(), Key::from_bytes([9; 32])).unwrap();
        s.insert(&e).unwrap();
        s.add_channel(&e.channel).unwrap();
        s.db.flush().unwrap();
    }
    let s = Store::open(dir.path(), Key::from_bytes([9; 32])).unwrap();
    assert_eq!(s.get(&e.id).unwrap().unwrap(), e);
    assert_eq!(s.channels().unwrap(), vec![e.channel.clone()]);
}

#[test]
fn a_corrupt_record_is_skipped_not_deleted() {
    let (_d, s) = open();
    let e = env("triage", 1000, 60_000, "ok");
    s.insert(&e).unwrap();
    let bad = env("triage", 1001, 60_000, "bad");
    s.insert(&bad).unwrap();
    s.messages.insert(bad.id.0, &b"garbage"[..]).unwrap();
    let got = s.read_channel(&e.channel, 2000, 10).unwrap();
    assert_eq!(got, vec![e]);
    assert!(matches!(s.get(&bad.id), Err(StoreError::Corrupt { .. })));
    assert_eq!(s.len(), 2, "the unreadable record is kept for inspection");
}

#[test]
fn index_entries_list_unexpired_items_in_order_from_the_index() {
    let (_d, s) = open();
    let b = env("triage", 2000, 10_000, "b");
    let a = env("triage", 1000, 10_000, "a");
    let old = env("triage", 500, 1000, "expired at 1500");
    for e in [&b, &a, &old] {
        s.insert(e).unwrap();
    }
    let items = s.index_entries(&a.channel, 1600).unwrap();
    let ids: Vec<MessageId> = items.iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![a.id, b.id]);
    assert_eq!(items[0].ts, 1000);
    assert_eq!(items[0].priority, 2);
}

#[test]
fn an_expired_corrupt_record_is_swept_and_does_not_stall_the_sweep() {
    let (_d, s) = open();
    let bad = env("triage", 1000, 1000, "bad"); // expires 2000
    let later = env("triage", 1000, 2000, "later"); // expires 3000
    s.insert(&bad).unwrap();
    s.insert(&later).unwrap();
    s.messages.insert(bad.id.0, &b"garbage"[..]).unwrap();
    assert_eq!(s.sweep_expired(5000).unwrap(), vec![bad.id, later.id]);
    assert!(s.is_empty());
    assert_eq!(s.by_channel.len() + s.expiry.len(), 0);
}

#[test]
fn batch_insert_stores_new_and_reports_duplicates() {
    let (_d, s) = open();
    let a = env("triage", 1000, 10_000, "a");
    let b = env("triage", 1001, 10_000, "b");
    s.insert(&a).unwrap();
    let got = s.insert_batch(&[a.clone(), b.clone(), b.clone()]).unwrap();
    assert_eq!(
        got,
        vec![Inserted::Duplicate, Inserted::New, Inserted::Duplicate]
    );
    assert_eq!(s.read_channel(&a.channel, 2000, 10).unwrap(), vec![a, b]);
}

#[test]
fn records_are_sealed_and_a_locked_store_refuses_reads_and_writes() {
    let (_d, s) = open();
    let e = env("triage", 1000, 60_000, "MARKER-sealed-body");
    s.insert(&e).unwrap();
    let raw = s.messages.get(e.id.0).unwrap().unwrap();
    assert!(
        !raw.windows(6).any(|w| w == b"MARKER"),
        "record must be sealed"
    );
    s.lock();
    assert!(s.is_locked());
    assert!(matches!(s.get(&e.id), Err(StoreError::Locked)));
    assert!(matches!(
        s.insert(&env("triage", 1, 1000, "x")),
        Err(StoreError::Locked)
    ));
    // The index still answers (sync metadata), and unlocking restores reads.
    assert_eq!(s.index_entries(&e.channel, 2000).unwrap().len(), 1);
    s.unlock(Key::from_bytes([9; 32]));
    assert_eq!(s.get(&e.id).unwrap().unwrap(), e);
    // A wrong key reads nothing, and deletes nothing.
    s.unlock(Key::from_bytes([8; 32]));
    assert!(matches!(s.get(&e.id), Err(StoreError::Corrupt { .. })));
    assert_eq!(s.len(), 1);
}

#[test]
fn a_tombstoned_message_is_deleted_and_never_stored_again_until_expiry() {
    let (_d, s) = open();
    let e = env("triage", 1000, 60_000, "to transcribe");
    s.insert(&e).unwrap();
    assert!(s.delete_for_tombstone(&e.id, 61_000).unwrap());
    assert_eq!(s.get(&e.id).unwrap(), None);
    assert!(s.read_channel(&e.channel, 2000, 10).unwrap().is_empty());
    assert!(s.index_entries(&e.channel, 2000).unwrap().is_empty());
    assert!(s.is_tombstoned(&e.id).unwrap());
    s.sweep_expired(60_999).unwrap();
    assert!(s.is_tombstoned(&e.id).unwrap());
    s.sweep_expired(61_000).unwrap();
    assert!(!s.is_tombstoned(&e.id).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_flushes_at_once_all_complete() {
    // 64 writers each insert then wait for durability at the same moment, as a
    // burst of sends does. Parked on sled's own I/O pool (flush_async) these filled
    // it and waited forever for a log write that needed a pool thread (H31).
    let (_dir, s) = open();
    let flushes: Vec<_> = (0..64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.insert(&env("triage", 1_000 + i, 60_000, "x")).unwrap();
                s.flush().await
            })
        })
        .collect();
    let all = async {
        for f in flushes {
            f.await.unwrap().unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every flush completes");
    assert_eq!(s.len(), 64);
}
