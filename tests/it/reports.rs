use crate::harness::{ok_stdout, Daemon, Opts};
use fieldmesh::api::Op;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methane_and_casualty_reports_travel_and_hide_identifiable_fields() {
    let a = Daemon::spawn(Opts::default()).await;
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    a.wait_subscribed(&b, "triage").await;

    let sent: serde_json::Value = serde_json::from_str(&ok_stdout(&a.cli(&[
        "methane",
        "--declared",
        "--location",
        "Victoria St tram stop",
        "--type",
        "tram derailment",
        "--hazards",
        "overhead line down",
        "--access",
        "Corporation St",
        "--casualties",
        "3,5,12,1",
        "--services",
        "HART required",
        "--json",
    ])))
    .unwrap();
    let methane_id = sent["message"]["id"].as_str().unwrap().to_owned();
    assert_eq!(sent["message"]["priority"], "p1", "METHANE defaults to P1");

    let sent: serde_json::Value = serde_json::from_str(&ok_stdout(&a.cli(&[
        "casualty",
        "--triage",
        "p2",
        "--tag",
        "T-0042",
        "--location",
        "CCS bay 2",
        "--update",
        "open tib/fib fracture",
        "--name",
        "Jane Example",
        "--nhs-number",
        "943 476 5919",
        "--json",
    ])))
    .unwrap();
    let casualty_id = sent["message"]["id"].as_str().unwrap().to_owned();
    assert_eq!(sent["message"]["priority"], "p2", "priority from triage");
    assert!(
        !sent.to_string().contains("Jane"),
        "send reply leaked: {sent}"
    );

    b.wait_message("triage", &methane_id).await;
    b.wait_message("triage", &casualty_id).await;

    // The table, on the node that received the reports.
    let table = ok_stdout(&b.cli(&["read", "triage"]));
    for want in [
        "M major incident",
        "declared",
        "E exact location",
        "Victoria St tram stop",
        "N casualties",
        "P1 3 · P2 5 · P3 12 · dead 1",
        "Casualty update",
        "P2 (urgent)",
        "T-0042",
        "open tib/fib fracture",
        "[2 hidden: --show-identifiable to reveal]",
    ] {
        assert!(table.contains(want), "{want:?} missing from\n{table}");
    }
    for secret in ["Jane", "Example", "943 476 5919"] {
        assert!(!table.contains(secret), "{secret} shown by default");
    }
    let json = ok_stdout(&b.cli(&["read", "triage", "--json"]));
    assert!(
        !json.contains("Jane") && !json.contains("943 476"),
        "{json}"
    );
    let views: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let cas = views
        .iter()
        .find(|v| v["id"] == casualty_id.as_str())
        .unwrap();
    assert_eq!(
        cas["report"]["casualty"]["identifiable"]["name"],
        "[hidden]"
    );
    assert_eq!(cas["report"]["casualty"]["tag"], "T-0042");

    let revealed = ok_stdout(&b.cli(&["read", "triage", "--show-identifiable"]));
    assert!(
        revealed.contains("IDENTIFIABLE name") && revealed.contains("Jane Example"),
        "{revealed}"
    );
    assert!(revealed.contains("943 476 5919"));
    // The web page's API hides them too.
    let web = crate::web::client::Web::of(&b)
        .call("GET", "/api/channels/triage/messages", None)
        .await;
    assert_eq!(web.status, 200);
    let page = web.text();
    assert!(
        page.contains("T-0042") && page.contains("[hidden]"),
        "{page}"
    );
    assert!(
        !page.contains("Jane") && !page.contains("943 476"),
        "{page}"
    );

    // Transcription into the medical record carries the identifiable fields.
    let export: serde_json::Value =
        serde_json::from_str(&ok_stdout(&b.cli(&["transcribe", &casualty_id]))).unwrap();
    let m = &export["messages"][0];
    assert_eq!(
        m["report"]["casualty"]["identifiable"]["name"],
        "Jane Example"
    );
    assert!(m["text"].as_str().unwrap().contains("943 476 5919"));

    // Nothing identifiable reaches the node's log.
    let log = b.log() + &a.log();
    assert!(!log.contains("Jane") && !log.contains("943 476"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reports_are_refused_and_nothing_is_stored() {
    let a = Daemon::spawn(Opts::default()).await;
    // Not a terminal: a missing required field is an error naming the flag.
    let out = a.cli(&["casualty", "--triage", "p1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing --tag"), "{err}");
    let out = a.cli(&[
        "methane",
        "--standby",
        "--location",
        "x",
        "--type",
        "fire",
        "--casualties",
        "1,2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("four counts"));

    // Over the control socket: an empty required field and an over-long field,
    // each a typed error.
    let mut c = a.client().await;
    let report: fieldmesh::gossip::report::Report = serde_json::from_value(serde_json::json!({
        "casualty": {"triage": "p1", "tag": " ", "location": "", "update": ""}
    }))
    .unwrap();
    let err = c
        .request(Op::Report {
            channel: None,
            report,
            ttl_ms: None,
            priority: None,
            mode: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`tag` must not be empty"), "{err}");
    let long = serde_json::json!({"casualty": {"triage": "p3", "tag": "t",
        "location": "", "update": "x".repeat(5000)}});
    let err = c
        .request(Op::Report {
            channel: Some("triage".into()),
            report: serde_json::from_value(long).unwrap(),
            ttl_ms: None,
            priority: None,
            mode: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`update` is 5000 bytes"), "{err}");
    let st = a.status().await;
    assert_eq!(st.stored, 0, "a refused report was stored");
    assert!(a.read("triage").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_casualty_asks_for_what_the_flags_leave_out() {
    use std::io::Write;
    let a = Daemon::spawn(Opts::default()).await;
    // `script` runs the CLI on a pseudo-terminal and feeds it our answers.
    let command = format!(
        "{} --data {} casualty --json",
        crate::harness::bin(),
        a.data.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    // triage, tag, location, update, then skip the three identifiable questions.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"p2\nT-77\nbay 1\nstable\n\n\n\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    for question in [
        "Triage (p1/p2/p3/dead)",
        "Triage tag number",
        "IDENTIFIABLE name",
    ] {
        assert!(shown.contains(question), "{question:?} not asked: {shown}");
    }
    let read: Vec<serde_json::Value> =
        serde_json::from_str(&ok_stdout(&a.cli(&["read", "triage", "--json"]))).unwrap();
    assert_eq!(read.len(), 1);
    let c = &read[0]["report"]["casualty"];
    assert_eq!(c["tag"], "T-77");
    assert_eq!(c["triage"], "p2");
    assert_eq!(c["update"], "stable");
    assert!(c["identifiable"]["name"].is_null());
}
