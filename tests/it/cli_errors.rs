use crate::harness::{cli, Daemon, Opts};

#[test]
fn commands_without_a_node_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["peers"][..],
        &["status", "--json"],
        &["send", "triage", "x"],
        &["read", "triage"],
    ] {
        let out = cli(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("no node running for data dir"), "{err}");
    }
    let out = cli(dir.path(), &["id"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_round_trip_and_typed_errors() {
    let d = Daemon::spawn(Opts::default()).await;
    let out = d.cli(&[
        "send",
        "triage",
        "hello",
        "--ttl",
        "1h",
        "--priority",
        "p1",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let sent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = sent["message"]["id"].as_str().unwrap().to_owned();

    let out = d.cli(&["read", "triage", "--json"]);
    assert!(out.status.success());
    let msgs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["id"], id.as_str());
    assert_eq!(msgs[0]["priority"], "p1");

    let out = d.cli(&["read", "triage"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("P1") && text.contains("hello"), "{text}");

    let out = d.cli(&["id", "--json"]);
    let idj: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(idj["peer_id"], d.peer_id.as_str());

    let out = d.cli(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["team"], "drill");
    assert_eq!(st["stored"], 1);

    let out = d.cli(&["peers", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
            .unwrap()
            .len(),
        0
    );

    for (args, msg) in [
        (&["send", "Bad Channel", "x"][..], "channel names"),
        (&["send", "triage", "x", "--ttl", "30d"], "ttl"),
        (&["send", "triage", "x", "--priority", "p9"], "priority"),
    ] {
        let out = d.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(msg), "{args:?}: {err}");
    }

    // Nonsense TTL settings are refused before anything starts.
    for bad in [
        &["--default-ttl", "0s"][..],
        &["--channel-ttl", "triage=0s"],
        &["--max-ttl", "30d"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["up", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];
        args.extend_from_slice(bad);
        let out = crate::harness::cli(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("between 1 ms and 7 days"),
            "{bad:?}"
        );
    }

    // A second node on the same data dir is refused.
    let out = crate::harness::cli(
        &d.data,
        &["up", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_follow_streams_new_messages() {
    let d = Daemon::spawn(Opts::default()).await;
    let old = d
        .send("general", "old", std::time::Duration::from_secs(60), "p3")
        .await;
    let mut child = tokio::process::Command::new(crate::harness::bin())
        .arg("--data")
        .arg(&d.data)
        .args(["read", "general", "--follow", "--json"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(crate::harness::TEN_SECS, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.contains(&old));
    let new = d
        .send("general", "new", std::time::Duration::from_secs(60), "p1")
        .await;
    let second = tokio::time::timeout(crate::harness::TEN_SECS, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let m: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(m["id"], new.as_str());
    assert_eq!(m["text"], "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_defaults_per_channel_and_the_team_maximum() {
    let d = Daemon::spawn(Opts {
        extra: ["--max-ttl", "1h", "--channel-ttl", "triage=5m"]
            .map(String::from)
            .to_vec(),
        ..Opts::default()
    })
    .await;
    let out = d.cli(&["send", "triage", "x", "--ttl", "2h"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("over this team's maximum of 1h"), "{err}");
    assert!(d.cli(&["send", "triage", "five minutes"]).status.success());
    assert!(d.cli(&["send", "general", "capped"]).status.success());
    let ttl_of = |channel: &str| {
        let out = d.cli(&["read", channel, "--json"]);
        let msgs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        msgs[0]["ttl_ms"].as_u64().unwrap()
    };
    assert_eq!(ttl_of("triage"), 300_000, "per-channel default");
    assert_eq!(
        ttl_of("general"),
        3_600_000,
        "global default capped at the maximum"
    );
}
