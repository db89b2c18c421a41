//! The web UI's HTTP API (`up --web`, on by default): every endpoint with the
//! token, bad input refused with a JSON 4xx that changes nothing, the token and
//! Host checks, the event stream, and the flags that turn it off or open it up.

pub(crate) mod client;

use crate::harness::{wait_for, Daemon, Opts, TEN_SECS};
use client::{fill, Web};
use fieldmesh::api::web::ROUTES;
use serde_json::json;
use std::time::Duration;

/// Two connected nodes; A with a one-hour team maximum and a 10-minute triage default.
async fn pair() -> (Daemon, Daemon) {
    let a = Daemon::spawn(Opts {
        extra: vec![
            "--max-ttl".into(),
            "1h".into(),
            "--channel-ttl".into(),
            "triage=10m".into(),
        ],
        ..Opts::default()
    })
    .await;
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        extra: vec!["--max-ttl".into(), "1h".into()],
        ..Opts::default()
    })
    .await;
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_works_with_the_token() {
    let (a, b) = pair().await;
    let web = Web::of(&a);
    assert!(web.addr.starts_with("127.0.0.1:"), "{}", web.addr);
    assert_eq!(web.token.len(), 64);

    // The page and its assets need no token (they hold no data) and carry the CSP.
    let page = web.raw("GET", "/", &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<title>fieldmesh</title>"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    for asset in ["/app.js", "/app.css"] {
        assert_eq!(
            web.raw("GET", asset, &[], None).await.status,
            200,
            "{asset}"
        );
    }

    let status = web.call("GET", "/api/status", None).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["peer_id"], a.peer_id);
    assert_eq!(status.json()["locked"], false);

    let defaults = web.call("GET", "/api/defaults", None).await.json();
    assert_eq!(defaults["max_ttl_ms"], 3_600_000);
    assert_eq!(defaults["channels"]["triage"], 600_000);
    assert_eq!(defaults["channels"]["general"], 3_600_000);
    assert!(defaults["channels"].get("tombstone").is_none());

    let peers = web.call("GET", "/api/peers", None).await.json();
    let peer = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == b.peer_id)
        .expect("B among A's peers");
    assert_eq!(peer["transports"], json!(["tcp"]));

    // A message from A's page: stored, gossiped, streamed to B's page.
    let mut b_events = Web::of(&b).events().await;
    let sent = web
        .call(
            "POST",
            "/api/channels/triage/messages",
            Some(r#"{"text":"bay 4 airway","priority":"p1","ttl_ms":60000}"#),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text());
    let msg = sent.json()["message"].clone();
    let id = msg["id"].as_str().unwrap().to_owned();
    assert_eq!(msg["priority"], "p1");
    assert_eq!(msg["ttl_ms"], 60_000);
    b_events.wait_for(&id).await;
    b_events.wait_for(r#""priority":"p1""#).await;
    assert_eq!(b.wait_message("triage", &id).await.text, "bay 4 airway");

    // Receipt count: both nodes hold it.
    wait_for(TEN_SECS, "held by 2 at A", || async {
        let m = web
            .call("GET", &format!("/api/messages/{id}"), None)
            .await
            .json();
        (m["held_by"].as_array().map_or(0, Vec::len) == 2).then_some(())
    })
    .await;
    let list = web
        .call("GET", "/api/channels/triage/messages", None)
        .await
        .json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == id.as_str()));
    let one = web
        .call("GET", "/api/channels/triage/messages?limit=1", None)
        .await
        .json();
    assert_eq!(one.as_array().unwrap().len(), 1);

    // Channel counts, and unread relative to what the page has seen.
    let chans = web.call("GET", "/api/channels", None).await.json();
    let triage = chans
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "triage")
        .unwrap()
        .clone();
    assert_eq!(
        (triage["messages"].as_u64(), triage["p1"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(triage["unread"], 1);
    let names: Vec<&str> = chans
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| ["tombstone", "receipts", "dm"].contains(n)),
        "{names:?}"
    );
    let seen = format!("/api/channels?seen=triage:{}", msg["sent_at_ms"]);
    let chans = web.call("GET", &seen, None).await.json();
    let triage = chans
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "triage")
        .unwrap()
        .clone();
    assert_eq!(triage["unread"], 0);

    // Transcribe in B's API: the FHIR export comes back as a download, and the
    // message is deleted at B at once and at A by the tombstone.
    let mut a_events = web.events().await;
    let tr = Web::of(&b)
        .call(
            "POST",
            &format!("/api/messages/{id}/transcribe"),
            Some(r#"{"format":"fhir"}"#),
        )
        .await;
    assert_eq!(tr.status, 200, "{}", tr.text());
    assert_eq!(tr.json()["resourceType"], "Bundle");
    assert!(tr
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment;"));
    a_events.wait_for("event: deleted").await;
    a_events.wait_for(&id).await;
    web.call("GET", &format!("/api/messages/{id}"), None)
        .await
        .assert_error(404, "not_found");

    // The OpenAPI document, and every route in it is routed.
    let doc = web.call("GET", "/api/openapi.json", None).await.json();
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{method} {path} not in openapi.json"
        );
        if *path == "/api/events" || path.ends_with("/transcribe") || *path == "/api/lock" {
            continue; // exercised above and below; a stray call would lock or delete
        }
        let ans = web
            .call(method, &fill(path, &"0".repeat(64)), Some("{}"))
            .await;
        assert_ne!(ans.status, 405, "{method} {path}");
        if ans.status >= 400 {
            assert_ne!(ans.json()["error"]["code"], "no_route", "{method} {path}");
        }
    }

    // Lock: nothing readable, a wrong passphrase changes nothing, unlock restores.
    let kept = b
        .send("general", "kept", Duration::from_secs(60), "p3")
        .await;
    a.wait_message("general", &kept).await;
    let locked = web.call("POST", "/api/lock", None).await;
    assert_eq!(locked.json(), json!({"locked": true}));
    web.call("GET", "/api/channels/general/messages", None)
        .await
        .assert_error(423, "locked");
    web.call("GET", "/api/channels", None)
        .await
        .assert_error(423, "locked");
    web.call("POST", "/api/unlock", Some(r#"{"passphrase":"nope"}"#))
        .await
        .assert_error(403, "wrong_passphrase");
    assert_eq!(
        web.call("GET", "/api/status", None).await.json()["locked"],
        true
    );
    let unlocked = web
        .call("POST", "/api/unlock", Some(r#"{"passphrase":""}"#))
        .await;
    assert_eq!(unlocked.json(), json!({"locked": false}));
    let general = web
        .call("GET", "/api/channels/general/messages", None)
        .await
        .json();
    assert!(general
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == kept.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_4xx_and_changes_nothing() {
    let a = Daemon::spawn(Opts {
        extra: vec!["--max-ttl".into(), "1h".into()],
        ..Opts::default()
    })
    .await;
    let web = Web::of(&a);
    let id = a
        .send("triage", "stays", Duration::from_secs(600), "p2")
        .await;
    // Everything but `remaining_ms`, which moves with the clock.
    let snapshot = || async {
        let msgs = a.read("triage").await;
        let v: Vec<_> = msgs
            .into_iter()
            .map(|m| (m.id, m.text, m.priority, m.expires_at_ms, m.held_by))
            .collect();
        v
    };
    let before = snapshot().await;
    let published = a.status().await.counters.get("published").copied();

    // No token, a wrong one, a token in the query of a route other than events.
    let wrong = format!("Bearer {}", "0".repeat(64));
    for (method, path) in ROUTES {
        let path = fill(path, &id);
        web.raw(method, &path, &[], Some("{}"))
            .await
            .assert_error(401, "unauthorized");
        web.raw(method, &path, &[("Authorization", &wrong)], Some("{}"))
            .await
            .assert_error(401, "unauthorized");
    }
    web.raw(
        "GET",
        &format!("/api/status?token={}", web.token),
        &[],
        None,
    )
    .await
    .assert_error(401, "unauthorized");
    web.raw(
        "GET",
        &format!("/api/events?token={}x", web.token),
        &[],
        None,
    )
    .await
    .assert_error(401, "unauthorized");

    // A Host other than the bound address (DNS rebinding), even with the token.
    let auth = web.auth();
    for host in ["evil.example", "localhost.evil.example:80", "127.0.0.1:1"] {
        let host = host.replace(":80", &format!(":{}", web.addr.rsplit(':').next().unwrap()));
        web.raw(
            "GET",
            "/api/status",
            &[("Host", &host), ("Authorization", &auth)],
            None,
        )
        .await
        .assert_error(403, "bad_host");
    }
    web.raw("GET", "/", &[("Host", "evil.example")], None)
        .await
        .assert_error(403, "bad_host");

    let post = "/api/channels/triage/messages";
    let big_text = format!(r#"{{"text":"{}"}}"#, "x".repeat(70_000));
    let huge = format!(r#"{{"text":"{}"}}"#, "x".repeat(600_000));
    let zero_id = "0".repeat(64);
    let cases: Vec<(String, String, u16, &str)> = vec![
        (post.to_owned(), "{".into(), 400, "bad_request"),
        (
            post.to_owned(),
            r#"{"text":"a","colour":"red"}"#.into(),
            400,
            "bad_request",
        ),
        (
            post.to_owned(),
            r#"{"priority":"p1"}"#.into(),
            400,
            "bad_request",
        ),
        (
            post.to_owned(),
            r#"{"text":"   "}"#.into(),
            400,
            "bad_request",
        ),
        (
            post.to_owned(),
            r#"{"text":"a","priority":"p9"}"#.into(),
            400,
            "bad_request",
        ),
        (
            post.to_owned(),
            r#"{"text":"a","ttl_ms":-5}"#.into(),
            400,
            "bad_request",
        ),
        (
            post.to_owned(),
            r#"{"text":"a","ttl_ms":0}"#.into(),
            400,
            "bad_ttl",
        ),
        (
            post.to_owned(),
            r#"{"text":"a","ttl_ms":3600001}"#.into(),
            400,
            "ttl_over_max",
        ),
        (post.to_owned(), big_text, 413, "too_large"),
        (post.to_owned(), huge, 413, "too_large"),
        (
            "/api/channels/Triage!/messages".to_owned(),
            r#"{"text":"a"}"#.into(),
            400,
            "bad_channel",
        ),
        (
            "/api/channels/nosuch/messages".to_owned(),
            r#"{"text":"a"}"#.into(),
            404,
            "not_found",
        ),
        (
            "/api/channels/tombstone/messages".to_owned(),
            r#"{"text":"a"}"#.into(),
            404,
            "not_found",
        ),
        (
            "/api/messages/xyz/transcribe".to_owned(),
            "{}".into(),
            400,
            "bad_request",
        ),
        (
            format!("/api/messages/{zero_id}/transcribe"),
            "{}".into(),
            404,
            "not_found",
        ),
        (
            format!("/api/messages/{id}/transcribe"),
            r#"{"format":"pdf"}"#.into(),
            400,
            "bad_request",
        ),
        ("/api/unlock".to_owned(), "{}".into(), 400, "bad_request"),
        ("/api/unlock".to_owned(), "[1]".into(), 400, "bad_request"),
    ];
    for (path, body, status, code) in &cases {
        let ans = web.call("POST", path, Some(body)).await;
        assert_eq!(
            ans.status,
            *status,
            "POST {path} {}: {}",
            &body[..body.len().min(60)],
            ans.text()
        );
        ans.assert_error(*status, code);
    }
    for (path, status, code) in [
        ("/api/channels/triage/messages?limit=0", 400, "bad_request"),
        (
            "/api/channels/triage/messages?limit=ten",
            400,
            "bad_request",
        ),
        ("/api/channels/nosuch/messages", 404, "not_found"),
        ("/api/channels/receipts/messages", 404, "not_found"),
        ("/api/channels?seen=triage", 400, "bad_request"),
        ("/api/messages/xyz", 400, "bad_request"),
        (
            &format!("/api/messages/{}", "0".repeat(64)),
            404,
            "not_found",
        ),
        ("/api/nope", 404, "no_route"),
    ] {
        web.call("GET", path, None).await.assert_error(status, code);
    }
    web.call("DELETE", "/api/status", None)
        .await
        .assert_error(405, "method_not_allowed");
    web.call("GET", "/api/lock", None)
        .await
        .assert_error(405, "method_not_allowed");

    // Event streams are capped.
    let mut open = Vec::new();
    for _ in 0..fieldmesh::api::web::MAX_EVENT_STREAMS {
        open.push(web.events().await);
    }
    let events = format!("/api/events?token={}", web.token);
    web.raw("GET", &events, &[], None)
        .await
        .assert_error(503, "too_many_streams");
    drop(open);

    // Nothing changed: same messages, nothing published, not locked.
    assert_eq!(snapshot().await, before);
    assert_eq!(
        a.status().await.counters.get("published").copied(),
        published
    );
    assert_eq!(
        web.call("GET", "/api/status", None).await.json()["locked"],
        false
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_is_local_only_unless_opened_up_and_can_be_turned_off() {
    let off = Daemon::spawn(Opts {
        extra: vec!["--no-web".into()],
        ..Opts::default()
    })
    .await;
    assert!(off.ready["web"].is_null(), "{}", off.ready);

    let fixed = Daemon::spawn(Opts {
        extra: vec!["--web".into(), "127.0.0.1:0".into()],
        ..Opts::default()
    })
    .await;
    let web = Web::of(&fixed);
    assert_eq!(web.call("GET", "/api/status", None).await.status, 200);
    // `localhost` with the bound port is accepted too.
    let localhost = format!("localhost:{}", web.addr.rsplit(':').next().unwrap());
    let auth = web.auth();
    let ans = web
        .raw(
            "GET",
            "/api/status",
            &[("Host", &localhost), ("Authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(ans.status, 200);

    // A public address without the opt-in: refused before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let refused = tokio::process::Command::new(crate::harness::bin())
        .arg("--data")
        .arg(&data)
        .args([
            "up",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--web",
            "0.0.0.0:0",
        ])
        .kill_on_drop(true)
        .output();
    let refused = tokio::time::timeout(TEN_SECS, refused)
        .await
        .expect("up refuses at once")
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--web-allow-remote"), "{stderr}");

    // The config file: `web-ui = false` turns it off, and a `--web` flag wins over that.
    let conf = dir.path().join("c.toml");
    std::fs::write(&conf, "web-ui = false\n").unwrap();
    let conf = conf.display().to_string();
    let filed = Daemon::spawn(Opts {
        extra: vec!["--config".into(), conf.clone()],
        ..Opts::default()
    })
    .await;
    assert!(filed.ready["web"].is_null(), "{}", filed.ready);
    let flagged = Daemon::spawn(Opts {
        extra: vec![
            "--config".into(),
            conf,
            "--web".into(),
            "127.0.0.1:0".into(),
        ],
        ..Opts::default()
    })
    .await;
    assert!(flagged.ready["web"].is_string(), "{}", flagged.ready);

    let open = Daemon::spawn(Opts {
        extra: vec![
            "--web".into(),
            "0.0.0.0:0".into(),
            "--web-allow-remote".into(),
        ],
        ..Opts::default()
    })
    .await;
    let web = Web::of(&open);
    assert!(web.addr.starts_with("127.0.0.1:"));
    assert_eq!(web.call("GET", "/api/status", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_does_not_hold_up_shutdown() {
    let a = Daemon::spawn(Opts::default()).await;
    let mut events = Web::of(&a).events().await;
    let (_, status) = a.stop().await;
    assert!(status.success(), "{status:?}");
    // The stream ended with the node (no hang): reading reaches its end.
    events.wait_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fieldmesh_web_prints_the_url_while_the_node_runs() {
    let a = Daemon::spawn(Opts::default()).await;
    let url = a.ready["web"].as_str().unwrap().to_owned();
    let out = a.cli(&["web"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), url);
    let out = a.cli(&["--json", "web"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["web"], url.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.data.join("web-url"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Gone with the node: the file is removed and the command says why it fails.
    let mut a = a;
    let keep = a.take_dir();
    let (data, status) = a.stop().await;
    assert!(status.success());
    assert!(!data.join("web-url").exists());
    let out = crate::harness::cli(&data, &["web"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node running"));
    drop(keep);

    let off = Daemon::spawn(Opts {
        extra: vec!["--no-web".into()],
        ..Opts::default()
    })
    .await;
    let out = off.cli(&["web"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--no-web"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_node_shows_its_sealed_channels_and_hides_the_team_records() {
    let (_root, _, dirs) = crate::teams::team("ward", 1);
    let a = Daemon::spawn(crate::teams::member(&dirs[0], "ward", vec![])).await;
    let b = Daemon::spawn(crate::teams::member(&dirs[1], "ward", vec![a.addr()])).await;
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;
    let (wa, wb) = (Web::of(&a), Web::of(&b));

    let chans = wa.call("GET", "/api/channels", None).await.json();
    let names: Vec<&str> = chans
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"triage") && !names.contains(&"team"),
        "{names:?}"
    );
    wa.call("GET", "/api/channels/team/messages", None)
        .await
        .assert_error(404, "not_found");

    let sent = wa
        .call(
            "POST",
            "/api/channels/triage/messages",
            Some(r#"{"text":"WARD-SECRET bay 2","priority":"p1"}"#),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text());
    let id = sent.json()["message"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/messages/{id}");
    let got = wait_for(TEN_SECS, "the sealed message in B's API", || async {
        let ans = wb.call("GET", &path, None).await;
        (ans.status == 200).then(|| ans.json())
    })
    .await;
    assert_eq!(got["text"], "WARD-SECRET bay 2");
    assert_eq!(got["priority"], "p1");
}
