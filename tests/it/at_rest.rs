use crate::harness::{cli, line, wait_for, Daemon, Opts, TEN_SECS};
use fieldmesh::api::Op;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = Vec::new();
    all_files(dir, &mut files);
    files
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_under_any_data_dir_contains_a_sent_marker() {
    let mut a = Daemon::spawn(Opts {
        passphrase: Some("correct horse battery staple".into()),
        ..Opts::default()
    })
    .await;
    let mut b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    let keep = (a.take_dir(), b.take_dir());
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;
    let marker = "MARKER-7f3a-patient-bay-4";
    let id = a
        .send("triage", marker, Duration::from_secs(600), "p1")
        .await;
    assert_eq!(b.wait_message("triage", &id).await.text, marker);
    // Stop both so every write is on disk, then look at the raw bytes.
    let (dir_a, st_a) = a.stop().await;
    let (dir_b, st_b) = b.stop().await;
    assert!(st_a.success() && st_b.success());
    for dir in [dir_a, dir_b] {
        let files = snapshot(&dir);
        assert!(files.keys().any(|f| f.ends_with("vault")));
        for (file, bytes) in files {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{} holds the marker in clear",
                file.display()
            );
        }
    }
    drop(keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passphrase_is_refused_and_changes_nothing() {
    let mut a = Daemon::spawn(Opts {
        passphrase: Some("right one".into()),
        ..Opts::default()
    })
    .await;
    let keep = a.take_dir();
    let id = a
        .send("triage", "kept", Duration::from_secs(600), "p2")
        .await;
    let (data, _) = a.stop().await;
    let before = snapshot(&data);
    let wrong = data.with_extension("wrong");
    std::fs::write(&wrong, "not the one").unwrap();
    let out = cli(
        &data,
        &[
            "up",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert_eq!(
        snapshot(&data),
        before,
        "a refused start must not touch the data dir"
    );
    let a = Daemon::spawn(Opts {
        data: Some(data),
        passphrase: Some("right one".into()),
        ..Opts::default()
    })
    .await;
    assert_eq!(a.read("triage").await[0].id, id);
    drop(keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_node_relays_but_shows_nothing_until_unlocked() {
    let [a, b, c] = line("triage").await;
    let out = b.cli(&["lock"]);
    assert!(out.status.success(), "{out:?}");
    let id = a
        .send(
            "triage",
            "through a locked relay",
            Duration::from_secs(600),
            "p1",
        )
        .await;
    c.wait_message("triage", &id).await;
    // B relayed it but shows (and sends) nothing while locked.
    let err = b
        .client()
        .await
        .request(Op::Read {
            channel: "triage".into(),
            limit: None,
            show_identifiable: false,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    let out = b.cli(&["send", "triage", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("locked"));
    // Unlock (drill-mode vault: empty passphrase); B catches up by sync.
    let out = b.cli(&["unlock"]);
    assert!(out.status.success(), "{out:?}");
    b.wait_message("triage", &id).await;
    let st = b.status().await;
    assert!(
        st.counters
            .get("relayed_while_locked")
            .copied()
            .unwrap_or(0)
            >= 1,
        "{:?}",
        st.counters
    );
    let _ = wait_for(TEN_SECS, "c still connected", || async {
        (!c.peers().await.is_empty()).then_some(())
    })
    .await;
}
