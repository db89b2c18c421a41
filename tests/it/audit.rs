use crate::harness::{ok_stdout, wait_until, Daemon, Opts, TEN_SECS};
use crate::teams::{member, team};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every audit file of a data dir.
fn audit_files(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("audit") && name.ends_with(".jsonl")
        })
        .collect()
}

/// The records of a data dir's only audit log.
fn records(data: &Path) -> Vec<serde_json::Value> {
    let files = audit_files(data);
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read_to_string(&files[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until `data`'s log holds a record of `event` (about `message` if given,
/// involving `peer` if given); returns it.
async fn wait_record(
    data: &Path,
    event: &str,
    message: Option<&str>,
    peer: Option<&str>,
) -> serde_json::Value {
    let what = format!("a {event} record in {}", data.display());
    wait_until(TEN_SECS, &what, || async {
        let all = records(data);
        all.iter()
            .find(|r| {
                r["event"] == event
                    && message.is_none_or(|m| r["message"] == m)
                    && peer.is_none_or(|p| r["peer"] == p)
            })
            .cloned()
            .ok_or_else(|| format!("events so far: {:?}", events(&all)))
    })
    .await
}

fn events(all: &[serde_json::Value]) -> Vec<String> {
    all.iter().map(|r| r["event"].to_string()).collect()
}

fn failure(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(2), "expected exit 2");
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_verifies_holds_no_text_and_names_an_edited_record() {
    let a = Daemon::spawn(Opts::default()).await;
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;

    let texts = [
        "Bay 4 airway QUOKKA-7731 needs anaesthetist",
        "Tent 2 runner PANGOLIN-5520 to command post",
    ];
    let ttl = Duration::from_secs(600);
    let first = a.send("triage", texts[0], ttl, "p1").await;
    let second = b.send("triage", texts[1], ttl, "p3").await;
    let sent: serde_json::Value = serde_json::from_str(&ok_stdout(&a.cli(&[
        "casualty",
        "--triage",
        "p2",
        "--tag",
        "T-0042",
        "--update",
        "open fracture WOMBAT-3318",
        "--name",
        "Jane Example",
        "--nhs-number",
        "943 476 5919",
        "--json",
    ])))
    .unwrap();
    let casualty = sent["message"]["id"].as_str().unwrap().to_owned();
    for id in [&first, &casualty] {
        b.wait_message("triage", id).await;
    }
    a.wait_message("triage", &second).await;
    // B transcribes A's P1: deleted at both.
    let export = b.data.with_extension("export.json");
    ok_stdout(&b.cli(&["transcribe", &first, "--to", export.to_str().unwrap()]));

    // What each node recorded.
    let (a_id, b_id) = (a.peer_id.as_str(), b.peer_id.as_str());
    wait_record(&a.data, "started", None, Some(a_id)).await;
    let sent = wait_record(&a.data, "sent", Some(&first), Some(a_id)).await;
    assert_eq!(sent["channel"], "triage");
    assert_eq!(sent["priority"], "p1");
    wait_record(&a.data, "received", Some(&second), Some(b_id)).await;
    wait_record(&a.data, "deleted", Some(&first), Some(b_id)).await;
    wait_record(&b.data, "received", Some(&casualty), Some(a_id)).await;
    let read = wait_record(&b.data, "read", Some(&first), None).await;
    assert_eq!(read["via"], "control");
    wait_record(&b.data, "transcribed", Some(&first), Some(a_id)).await;
    wait_record(&b.data, "deleted", Some(&first), Some(b_id)).await;
    // A page load of the channel through the web API is a read too.
    let web = crate::web::client::Web::of(&a);
    let page = web.call("GET", "/api/channels/triage/messages", None).await;
    assert_eq!(page.status, 200);
    wait_until(TEN_SECS, "a read record via web at A", || async {
        let all = records(&a.data);
        all.iter()
            .any(|r| r["event"] == "read" && r["message"] == second.as_str() && r["via"] == "web")
            .then_some(())
            .ok_or_else(|| format!("events so far: {:?}", events(&all)))
    })
    .await;
    let shown = records(&b.data)
        .iter()
        .filter(|r| r["event"] == "read" && r["message"] == first.as_str())
        .count();
    assert!(shown >= 1);

    // No record holds a message's text, the identifiable name or number.
    for d in [&a, &b] {
        for f in audit_files(&d.data) {
            let log = std::fs::read_to_string(&f).unwrap().to_lowercase();
            for secret in texts
                .iter()
                .copied()
                .chain(["QUOKKA", "PANGOLIN", "WOMBAT", "Jane", "Example", "943 476"])
            {
                assert!(
                    !log.contains(&secret.to_lowercase()),
                    "{} holds {secret:?}",
                    f.display()
                );
            }
        }
    }

    // Both chains verify, while the nodes run (against their newest record) ...
    for d in [&a, &b] {
        let out = ok_stdout(&d.cli(&["audit", "--verify"]));
        assert!(out.contains("chain ok"), "{out}");
    }
    // ... and a log cut short under a running node is caught.
    let b_file = &audit_files(&b.data)[0];
    let whole = std::fs::read_to_string(b_file).unwrap();
    let cut: String = whole
        .lines()
        .take(whole.lines().count() - 1)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(b_file, &cut).unwrap();
    let err = failure(&b.cli(&["audit", "--verify"]));
    assert!(err.contains("cut short or rewritten"), "{err}");
    std::fs::write(b_file, &whole).unwrap();

    // Export: JSON Lines, one per record, the same chain.
    let exported = b.data.with_extension("audit-export.jsonl");
    ok_stdout(&b.cli(&["audit", "export", "--to", exported.to_str().unwrap()]));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&exported)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), whole.lines().count());
    assert!(lines
        .iter()
        .all(|r| r["hash"].as_str().unwrap().len() == 64));
    let out = ok_stdout(&b.cli(&["audit", "--verify", "--file", exported.to_str().unwrap()]));
    assert!(out.contains("chain ok"), "{out}");

    // Stopped: the log verifies offline; then one character of an id is changed.
    let mut a = a;
    let _a_dir = a.take_dir();
    let (a_data, status) = a.stop().await;
    assert!(status.success());
    let out = ok_stdout(&crate::harness::cli(&a_data, &["audit", "--verify"]));
    assert!(out.contains("chain ok"), "{out}");
    let a_file = &audit_files(&a_data)[0];
    let log = std::fs::read_to_string(a_file).unwrap();
    let received = records(&a_data)
        .into_iter()
        .find(|r| r["event"] == "received")
        .unwrap();
    let seq = received["seq"].as_u64().unwrap();
    let id = received["message"].as_str().unwrap();
    let flipped = if id.starts_with('0') { "1" } else { "0" };
    let edited = log.replacen(
        &format!("\"message\":\"{id}\""),
        &format!("\"message\":\"{flipped}{}\"", &id[1..]),
        1,
    );
    assert_ne!(edited, log);
    std::fs::write(a_file, edited).unwrap();
    let err = failure(&crate::harness::cli(&a_data, &["audit", "--verify"]));
    assert!(err.contains(&format!("seq {seq}:")), "{err}");
    assert!(err.contains("edited"), "{err}");
    // A broken chain is exported only with --force, and marked.
    let err = failure(&crate::harness::cli(&a_data, &["audit", "export"]));
    assert!(err.contains("--force"), "{err}");
    let forced = ok_stdout(&crate::harness::cli(
        &a_data,
        &["audit", "export", "--force"],
    ));
    let first_line: serde_json::Value =
        serde_json::from_str(forced.lines().next().unwrap()).unwrap();
    assert!(first_line["audit_chain_broken"]
        .as_str()
        .unwrap()
        .contains(&format!("seq {seq}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_additions_and_removals_are_on_the_record_of_every_member() {
    let (_root, _id, dirs) = team("audit", 2);
    let a = Daemon::spawn(member(&dirs[0], "audit", vec![])).await;
    let b = Daemon::spawn(member(&dirs[1], "audit", vec![a.addr()])).await;
    // C dials B too, so B learns C's join certificate on connecting (catch-up).
    let c = Daemon::spawn(member(&dirs[2], "audit", vec![a.addr(), b.addr()])).await;
    for d in [&b, &c] {
        a.wait_subscribed(d, "triage").await;
        d.wait_subscribed(&a, "triage").await;
    }
    // The admin learns both members from their join certificates, B learns C.
    wait_record(&a.data, "member_added", None, Some(&b.peer_id)).await;
    wait_record(&a.data, "member_added", None, Some(&c.peer_id)).await;
    wait_record(&b.data, "member_added", None, Some(&c.peer_id)).await;
    let out = a.cli(&["team", "remove", &c.peer_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_record(&a.data, "member_removed", None, Some(&c.peer_id)).await;
    // B applies the admin's new roster and records the same removal.
    wait_record(&b.data, "member_removed", None, Some(&c.peer_id)).await;
    for d in [&a, &b, &c] {
        let files = audit_files(&d.data);
        assert!(
            files[0]
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("audit-"),
            "a team's log is named after the team: {files:?}"
        );
        let out = ok_stdout(&d.cli(&["audit", "--verify"]));
        assert!(out.contains("chain ok"), "{out}");
    }
}
