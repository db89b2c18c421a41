use crate::harness::{cli, wait_for, Daemon, Opts, TEN_SECS};
use std::path::Path;
use std::time::Duration;

fn run(data: &Path, args: &[&str]) -> serde_json::Value {
    let out = cli(data, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until `d` has refused at least one post as `not_member`.
async fn refused_not_member(d: &Daemon, what: &str) {
    wait_for(TEN_SECS, what, || async {
        d.status()
            .await
            .rejected
            .get("not_member")
            .copied()
            .filter(|n| *n >= 1)
    })
    .await;
}

/// Creates team `name` in a fresh data dir (admin) and joins `members` fresh dirs to it.
pub(crate) fn team(
    name: &str,
    members: usize,
) -> (tempfile::TempDir, String, Vec<std::path::PathBuf>) {
    let root = tempfile::Builder::new().prefix("fmt").tempdir().unwrap();
    let admin = root.path().join("admin");
    let id = run(&admin, &["team", "create", name, "--json"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut dirs = vec![admin.clone()];
    for i in 0..members {
        let code = run(&admin, &["team", "invite", "--team", name, "--json"])["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let dir = root.path().join(format!("m{i}"));
        run(&dir, &["team", "join", &code, "--json"]);
        dirs.push(dir);
    }
    (root, id, dirs)
}

/// Daemon options for a member of team `name` in data dir `dir`.
pub(crate) fn member(dir: &Path, name: &str, peers: Vec<String>) -> Opts {
    Opts {
        data: Some(dir.to_owned()),
        team: Some(name.into()),
        peers,
        ..Opts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_relays_a_team_but_reads_and_injects_nothing() {
    let (_root, team_id, dirs) = team("ops", 1);
    let a = Daemon::spawn(member(&dirs[0], "ops", vec![])).await;
    let x = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    let c = Daemon::spawn(member(&dirs[1], "ops", vec![x.addr()])).await;
    // X joins the team's topics only as a relay, once it sees members subscribe.
    a.wait_subscribed(&x, "triage").await;
    c.wait_subscribed(&x, "triage").await;
    assert!(
        !c.peers().await.iter().any(|p| p.peer_id == a.peer_id),
        "C only reaches A through X"
    );
    let id = a
        .send(
            "triage",
            "TEAM-SECRET bay 4",
            Duration::from_secs(600),
            "p1",
        )
        .await;
    assert_eq!(
        c.wait_message("triage", &id).await.text,
        "TEAM-SECRET bay 4"
    );
    // X carried it but cannot read it: nothing in its own channels.
    assert!(x.read("triage").await.is_empty());
    assert!(
        x.status()
            .await
            .counters
            .get("relayed_foreign")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    // X's own post stays on the drill topic: no member sees it.
    x.send(
        "triage",
        "from the outsider",
        Duration::from_secs(600),
        "p1",
    )
    .await;
    // An outsider speaking the wire protocol on the team's topic is refused.
    let topic = format!("fieldmesh/1/{team_id}/triage");
    let mut peer = crate::bad_input::raw_gossip_peer(&c, &topic).await;
    let forged = crate::harness::outside_envelope("triage", b"injected");
    crate::bad_input::publish(&mut peer, forged.as_bytes().to_vec()).await;
    refused_not_member(&c, "C to refuse the outsider").await;
    let texts: Vec<String> = c.read("triage").await.into_iter().map(|m| m.text).collect();
    assert_eq!(texts, vec!["TEAM-SECRET bay 4".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_gets_nothing_sent_after_removal() {
    let (_root, _id, dirs) = team("ward", 2);
    let a = Daemon::spawn(member(&dirs[0], "ward", vec![])).await;
    let b = Daemon::spawn(member(&dirs[1], "ward", vec![a.addr()])).await;
    let c = Daemon::spawn(member(&dirs[2], "ward", vec![a.addr()])).await;
    for d in [&b, &c] {
        a.wait_subscribed(d, "triage").await;
        d.wait_subscribed(&a, "triage").await;
    }
    // Both members are admitted at A (their join certificates arrived).
    let hb = b
        .send("triage", "hello from b", Duration::from_secs(600), "p3")
        .await;
    let hc = c
        .send("triage", "hello from c", Duration::from_secs(600), "p3")
        .await;
    a.wait_message("triage", &hb).await;
    a.wait_message("triage", &hc).await;
    let out = a.cli(&["team", "remove", &c.peer_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // B gets the rotated key; then A's next message is readable by B only.
    wait_for(TEN_SECS, "B to receive the key update", || async {
        b.read("team")
            .await
            .iter()
            .any(|m| m.text.contains("rotated"))
            .then_some(())
    })
    .await;
    let after = a
        .send("triage", "after removal", Duration::from_secs(600), "p1")
        .await;
    assert_eq!(b.wait_message("triage", &after).await.text, "after removal");
    wait_for(TEN_SECS, "C to hold A's message (ciphertext)", || async {
        c.read("team")
            .await
            .iter()
            .any(|m| m.text.contains("rotated"))
            .then_some(())
    })
    .await;
    assert!(
        !c.read("triage").await.iter().any(|m| m.id == after),
        "C must not read it"
    );
    // C's posts are refused; B and A keep talking.
    c.send("triage", "still here?", Duration::from_secs(600), "p1")
        .await;
    refused_not_member(&a, "A to refuse the removed member").await;
    let hb2 = b
        .send("triage", "b after removal", Duration::from_secs(600), "p2")
        .await;
    assert_eq!(a.wait_message("triage", &hb2).await.text, "b after removal");
}

#[test]
fn bad_invite_codes_are_refused_with_a_clear_error() {
    let (_root, _id, dirs) = team("gate", 0);
    let code = run(
        &dirs[0],
        &[
            "team",
            "invite",
            "--team",
            "gate",
            "--expires",
            "1ms",
            "--json",
        ],
    )["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joiner = dirs[0].with_file_name("joiner");
    let expect = |code: &str, what: &str| {
        let out = cli(&joiner, &["team", "join", code]);
        assert_eq!(out.status.code(), Some(2), "{code}");
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(err.contains(what), "{code}: {err}");
    };
    // The code expired 1 ms after issue; starting the joining process takes longer.
    expect(&code, "expired");
    expect("FM1-NOT-A-CODE", "malformed");
    let fresh = run(&dirs[0], &["team", "invite", "--team", "gate", "--json"])["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tampered: Vec<char> = fresh.chars().collect();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    expect(&tampered.into_iter().collect::<String>(), "");
    // Nothing was joined by any of them.
    assert!(
        !joiner.join("vault").exists()
            || run(&joiner, &["team", "list", "--json"])
                .as_array()
                .unwrap()
                .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_belongs_to_two_teams_and_keeps_them_apart() {
    let (_r1, _, ops) = team("ops", 1);
    let (_r2, _, fire) = team("fire", 0);
    // The ops member also joins fire.
    let code = run(&fire[0], &["team", "invite", "--team", "fire", "--json"])["code"]
        .as_str()
        .unwrap()
        .to_owned();
    run(&ops[1], &["team", "join", &code, "--json"]);
    let teams = run(&ops[1], &["team", "list", "--json"]);
    let names: Vec<&str> = teams
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ops", "fire"]);
    // Run in ops, then in fire: each team's messages stay in its own store.
    let m = Daemon::spawn(member(&ops[1], "ops", vec![])).await;
    let in_ops = m
        .send("triage", "ops only", Duration::from_secs(600), "p2")
        .await;
    let (data, _) = m.stop().await;
    let fire_admin = Daemon::spawn(member(&fire[0], "fire", vec![])).await;
    let m = Daemon::spawn(member(&data, "fire", vec![fire_admin.addr()])).await;
    fire_admin.wait_subscribed(&m, "triage").await;
    m.wait_subscribed(&fire_admin, "triage").await;
    assert!(
        m.read("triage").await.is_empty(),
        "ops messages are not in the fire store"
    );
    let in_fire = fire_admin
        .send("triage", "fire only", Duration::from_secs(600), "p2")
        .await;
    assert_eq!(m.wait_message("triage", &in_fire).await.text, "fire only");
    assert_ne!(in_ops, in_fire);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_with_a_short_maximum_ttl_still_admits_its_members() {
    let (_root, _id, dirs) = team("short", 1);
    let short = |dir: &Path, peers: Vec<String>| Opts {
        extra: ["--max-ttl", "1h"].map(String::from).to_vec(),
        ..member(dir, "short", peers)
    };
    let a = Daemon::spawn(short(&dirs[0], vec![])).await;
    let b = Daemon::spawn(short(&dirs[1], vec![a.addr()])).await;
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;
    // B's join certificate (a team record) must fit the team's 1 h maximum, or A
    // would refuse it and, with it, everything B posts.
    let id = b
        .send("triage", "from the joiner", Duration::from_secs(600), "p2")
        .await;
    assert_eq!(a.wait_message("triage", &id).await.text, "from the joiner");
    assert!(!a.status().await.rejected.contains_key("ttl_over_max"));
}

/// `fieldmesh roster ID` on A: the members not known to hold the message.
fn missing(a: &Daemon, id: &str) -> Vec<String> {
    let out = a.cli(&["roster", id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_names_the_member_that_was_offline_until_it_catches_up() {
    let (_root, _id, dirs) = team("chase", 2);
    let a = Daemon::spawn(member(&dirs[0], "chase", vec![])).await;
    let b = Daemon::spawn(member(&dirs[1], "chase", vec![a.addr()])).await;
    let c = Daemon::spawn(member(&dirs[2], "chase", vec![a.addr()])).await;
    for d in [&b, &c] {
        a.wait_subscribed(d, "triage").await;
    }
    // A admits both once their posts (and join certificates) arrive.
    for d in [&b, &c] {
        let hello = d
            .send("triage", "on scene", Duration::from_secs(600), "p3")
            .await;
        a.wait_message("triage", &hello).await;
    }
    let c_id = c.peer_id.clone();
    c.stop().await;

    let p1 = a
        .send(
            "triage",
            "P1: bay 4 needs airway",
            Duration::from_secs(600),
            "p1",
        )
        .await;
    b.wait_message("triage", &p1).await;
    // B's receipt arrives; C, offline, is the one to chase by voice.
    wait_for(TEN_SECS * 2, "roster to name only C", || async {
        (missing(&a, &p1) == vec![c_id.clone()]).then_some(())
    })
    .await;
    let table = String::from_utf8(a.cli(&["roster", &p1]).stdout).unwrap();
    assert!(
        table.contains("not confirmed by 1") && table.contains(&c_id),
        "{table}"
    );

    let c = Daemon::spawn(member(&dirs[2], "chase", vec![a.addr()])).await;
    c.wait_message("triage", &p1).await;
    wait_for(TEN_SECS * 2, "C's receipt after catch-up", || async {
        missing(&a, &p1).is_empty().then_some(())
    })
    .await;
    assert!(String::from_utf8(a.cli(&["roster", &p1]).stdout)
        .unwrap()
        .contains("every known member holds it"));

    // Typed errors: a malformed id, an id not held, and the drill team.
    let out = a.cli(&["roster", "nothex"]);
    assert_eq!(out.status.code(), Some(2));
    let out = a.cli(&["roster", &"ab".repeat(32)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no readable message"));
    let drill = Daemon::spawn(Opts::default()).await;
    let id = drill
        .send("triage", "x", Duration::from_secs(60), "p3")
        .await;
    let out = drill.cli(&["roster", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drill team"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exercise_team_says_exercise_everywhere_and_refuses_live_messages() {
    let root = tempfile::Builder::new().prefix("fmx").tempdir().unwrap();
    let admin = root.path().join("admin");
    let created = run(&admin, &["team", "create", "tram", "--exercise", "--json"]);
    assert_eq!(created["team"], "EXERCISE tram");
    let out = cli(&admin, &["team", "create", "EXERCISE tram2"]);
    assert_eq!(out.status.code(), Some(2), "the prefix is reserved");
    let code = run(&admin, &["team", "invite", "--team", "tram", "--json"])["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joiner = root.path().join("m0");
    run(&joiner, &["team", "join", &code, "--json"]);
    let a = Daemon::spawn(member(&admin, "tram", vec![])).await;
    let b = Daemon::spawn(member(&joiner, "tram", vec![a.addr()])).await;
    a.wait_subscribed(&b, "triage").await;

    let id = a
        .send(
            "triage",
            "drill: bay 4 airway",
            Duration::from_secs(600),
            "p1",
        )
        .await;
    let m = b.wait_message("triage", &id).await;
    assert!(m.exercise && m.text == "drill: bay 4 airway", "{m:?}");
    let out = b.cli(&["casualty", "--triage", "p2", "--tag", "X-1"]);
    assert!(out.status.success());
    let listing = String::from_utf8(b.cli(&["read", "triage"]).stdout).unwrap();
    assert_eq!(
        listing
            .lines()
            .filter(|l| l.starts_with("EXERCISE"))
            .count(),
        2
    );
    assert!(listing.contains("Casualty update"), "{listing}");

    // Exports say EXERCISE first.
    let json = String::from_utf8(b.cli(&["transcribe", &id]).stdout).unwrap();
    let (ex, msgs) = (json.find("\"exercise\": true"), json.find("\"messages\""));
    assert!(ex.is_some() && ex < msgs, "{json}");
    let id2 = a
        .send("triage", "second", Duration::from_secs(600), "p3")
        .await;
    b.wait_message("triage", &id2).await;
    let fhir: serde_json::Value =
        serde_json::from_slice(&b.cli(&["transcribe", &id2, "--format", "fhir"]).stdout).unwrap();
    assert_eq!(
        fhir["entry"][0]["resource"]["payload"][0]["contentString"],
        "EXERCISE: second"
    );

    // A message its sender believes live is refused, and nothing is stored.
    let stored = a.status().await.stored;
    let out = a.cli(&["send", "triage", "REAL: tram 2 crash", "--live"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("EXERCISE team"));
    let out = a.cli(&[
        "methane",
        "--declared",
        "--location",
        "x",
        "--type",
        "y",
        "--live",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(a.status().await.stored, stored);
    // And the other way round on a live node.
    let live = Daemon::spawn(Opts::default()).await;
    let out = live.cli(&["send", "triage", "practice", "--exercise"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("live team"));
    let ok = live.cli(&["send", "triage", "real", "--live"]);
    assert!(ok.status.success());
    assert!(!live.read("triage").await[0].exercise);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_wipes_its_team_data_and_its_posts_are_refused() {
    let (_root, team_id, dirs) = team("fire", 2);
    let a = Daemon::spawn(member(&dirs[0], "fire", vec![])).await;
    let mut lost = Daemon::spawn(member(&dirs[1], "fire", vec![a.addr()])).await;
    let c = Daemon::spawn(member(&dirs[2], "fire", vec![a.addr()])).await;
    for d in [&lost, &c] {
        a.wait_subscribed(d, "triage").await;
        let hello = d
            .send("triage", "on scene", Duration::from_secs(600), "p3")
            .await;
        a.wait_message("triage", &hello).await;
    }
    let store = dirs[1].join(format!("store-{team_id}"));
    assert!(store.exists());

    // The lost device is online: it receives the revocation and wipes itself.
    let out = a.cli(&["team", "revoke-device", &lost.peer_id, "--wipe"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = lost.wait_exit(TEN_SECS * 2).await;
    assert_eq!(status.code(), Some(2), "the wiped node stops with an error");
    assert!(
        lost.log().contains("revoked from its team"),
        "{}",
        lost.log()
    );
    assert!(!store.exists(), "the team's store survived the wipe");
    let teams = run(&dirs[1], &["team", "list", "--json"]);
    assert_eq!(teams.as_array().map(Vec::len), Some(0), "{teams}");

    // C, revoked without a wipe, keeps running but its posts are refused.
    let out = a.cli(&["team", "revoke-device", &c.peer_id]);
    assert!(out.status.success());
    // A applied the removal when it signed it: C's next post is refused, and
    // is not among A's messages.
    let not_member = |s: fieldmesh::node::StatusView| s.rejected.get("not_member").copied();
    let before = not_member(a.status().await).unwrap_or(0);
    let late = c
        .send("triage", "still here?", Duration::from_secs(600), "p1")
        .await;
    wait_for(TEN_SECS, "A to refuse the revoked device", || async {
        not_member(a.status().await).filter(|n| *n > before)
    })
    .await;
    assert!(
        a.read("triage").await.iter().all(|m| m.id != late),
        "A stored a revoked device's post"
    );
    // A bad peer id and a non-admin are refused with a clear error.
    let out = a.cli(&["team", "revoke-device", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = c.cli(&["team", "revoke-device", &a.peer_id]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_stand_down_every_node_deletes_the_incident_but_exports_stay() {
    let (root, team_id, dirs) = team("tram", 2);
    let a = Daemon::spawn(member(&dirs[0], "tram", vec![])).await;
    let mut nodes = vec![a];
    for dir in &dirs[1..] {
        let d = Daemon::spawn(member(dir, "tram", vec![nodes[0].addr()])).await;
        nodes[0].wait_subscribed(&d, "triage").await;
        let hello = d
            .send("triage", "on scene", Duration::from_secs(600), "p3")
            .await;
        nodes[0].wait_message("triage", &hello).await;
        nodes.push(d);
    }
    let id = nodes[0]
        .send("triage", "Bay 4: GCS 13", Duration::from_secs(3600), "p1")
        .await;
    for d in &nodes[1..] {
        d.wait_message("triage", &id).await;
    }
    let export = root.path().join("bay4.json");
    let out = nodes[1].cli(&["transcribe", &id, "--to", export.to_str().unwrap()]);
    assert!(out.status.success());
    let kept = nodes[2]
        .send("triage", "not exported", Duration::from_secs(3600), "p2")
        .await;
    nodes[0].wait_message("triage", &kept).await;

    // An invite bound to the incident: the team stands down in 3 s.
    let out = nodes[0].cli(&[
        "team",
        "invite",
        "--team",
        "tram",
        "--stand-down",
        "3s",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (d, dir) in nodes.iter_mut().zip(&dirs) {
        let status = d.wait_exit(TEN_SECS * 3).await;
        assert_eq!(status.code(), Some(2));
        assert!(d.log().contains("the team stood down"), "{}", d.log());
        assert!(!dir.join(format!("store-{team_id}")).exists());
        let teams = run(dir, &["team", "list", "--json"]);
        assert_eq!(teams.as_array().map(Vec::len), Some(0), "{teams}");
        // Without the key the node cannot even start in the team again.
        let out = cli(dir, &["up", "--team", "tram", "--no-mdns"]);
        assert_eq!(out.status.code(), Some(2));
    }
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(exported.contains("Bay 4: GCS 13"), "{exported}");
    // A stand-down order needs a running node of the team.
    let out = cli(&dirs[1], &["team", "stand-down", "--in", "1s"]);
    assert_eq!(out.status.code(), Some(2));
}
