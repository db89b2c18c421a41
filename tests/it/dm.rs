use crate::harness::line;
use fieldmesh::api::Op;
use fieldmesh::gossip::direct::{decode_body, ed25519_of};
use fieldmesh::gossip::envelope::MessageId;
use fieldmesh::identity::{Identity, Passphrase};
use fieldmesh::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_through_a_relay_is_read_only_by_its_recipient() {
    let [a, mut b, c] = line("dm").await;
    let text = "DM-MARKER bay 4 family contact";
    let res = a
        .client()
        .await
        .request(Op::Dm {
            peer: c.peer_id.clone(),
            text: text.into(),
            ttl_ms: Some(600_000),
            priority: None,
        })
        .await
        .unwrap();
    let id = res["message"]["id"].as_str().unwrap().to_owned();
    let got = c.wait_message("dm", &id).await;
    assert_eq!(got.text, text);
    assert_eq!(got.author, a.peer_id);
    // B relayed and stored it, but shows nothing: it is not addressed to B. A can't
    // read it back either (one-way to C).
    crate::harness::wait_for(crate::harness::TEN_SECS, "B to store the DM", || async {
        (b.status().await.stored >= 1).then_some(())
    })
    .await;
    assert!(b.read("dm").await.is_empty());
    assert!(a.read("dm").await.is_empty());
    // B's store holds only ciphertext addressed to C.
    let keep = b.take_dir();
    let (data, _) = b.stop().await;
    let unlocked = Identity::unlock(&data, &Passphrase::Drill).unwrap();
    let store = Store::open(&data.join("store"), unlocked.data_key).unwrap();
    let id: MessageId = id.parse().unwrap();
    let env = store.get(&id).unwrap().expect("B stored the DM");
    assert!(!env.body.windows(9).any(|w| w == b"DM-MARKER"));
    let body = decode_body(&env.body).unwrap();
    assert_eq!(
        body.recipient,
        ed25519_of(&c.peer_id.parse().unwrap()).unwrap()
    );
    drop(keep);
}
