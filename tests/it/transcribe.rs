use crate::harness::{chain, wait_for, Daemon, Opts, TEN_SECS};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribe_exports_fhir_and_deletes_everywhere_even_on_a_node_that_was_away() {
    let [a, b, mut c] = chain(vec![]).await;
    for (x, y) in [(&a, &b), (&b, &a), (&b, &c), (&c, &b)] {
        x.wait_subscribed(y, "triage").await;
    }
    let keep = a
        .send("triage", "stays", Duration::from_secs(600), "p3")
        .await;
    let id = a
        .send(
            "triage",
            "Bay 4: GCS 13, BP 90/60",
            Duration::from_secs(600),
            "p1",
        )
        .await;
    c.wait_message("triage", &id).await;
    b.wait_message("triage", &id).await;
    // C goes away before the transcription.
    let c_dir = c.take_dir();
    let (c_data, _) = c.stop().await;

    let export = b.data.with_extension("fhir.json");
    let out = b.cli(&[
        "transcribe",
        &id,
        "--format",
        "fhir",
        "--to",
        export.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../fhir/bundle-communication.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&bundle)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "not a valid FHIR R4 Bundle: {errors:?}");
    let comm = &bundle["entry"][0]["resource"];
    assert_eq!(comm["priority"], "stat");
    assert_eq!(
        comm["payload"][0]["contentString"],
        "Bay 4: GCS 13, BP 90/60"
    );
    assert_eq!(comm["sender"]["identifier"]["value"], a.peer_id.as_str());

    for d in [&a, &b] {
        wait_for(TEN_SECS, "the transcribed message to disappear", || async {
            let msgs = d.read("triage").await;
            (!msgs.iter().any(|m| m.id == id) && msgs.iter().any(|m| m.id == keep)).then_some(())
        })
        .await;
    }
    // C comes back: catch-up brings the tombstone, and C deletes its copy; nobody
    // fetches the message back from C.
    let sessions =
        |s: fieldmesh::node::StatusView| s.counters.get("sync_sessions").copied().unwrap_or(0);
    let before = sessions(b.status().await) + sessions(a.status().await);
    let c = Daemon::spawn(Opts {
        data: Some(c_data),
        peers: vec![b.addr()],
        ..Opts::default()
    })
    .await;
    wait_for(TEN_SECS * 2, "C to delete on catch-up", || async {
        (!c.read("triage").await.iter().any(|m| m.id == id)).then_some(())
    })
    .await;
    assert!(c.read("triage").await.iter().any(|m| m.id == keep));
    wait_for(
        TEN_SECS * 2,
        "a sync session with C to complete",
        || async {
            (sessions(b.status().await) + sessions(a.status().await) + sessions(c.status().await)
                > before)
                .then_some(())
        },
    )
    .await;
    for d in [&a, &b, &c] {
        assert!(
            !d.read("triage").await.iter().any(|m| m.id == id),
            "resurrected"
        );
    }
    // Transcribing again is refused: the message is gone.
    let again = b.cli(&["transcribe", &id]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no readable message"));
    drop(c_dir);
}
