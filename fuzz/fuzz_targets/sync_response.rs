//! `/fieldmesh/sync/1` response decoder (`proto/sync.md`): frame bodies from any peer.
//! A decoded response must re-encode to a value that decodes equal; `Reconcile`
//! replies go through the initiator's state machine, `Envelopes` through the batch
//! decoder, and neither may panic.
#![no_main]

use fieldmesh::gossip::envelope::{Envelope, Limits};
use fieldmesh::sync::{codec, ItemInfo, Reconciler, SyncResponse};
use libfuzzer_sys::fuzz_target;

/// The same small sorted item set as `sync_request`.
fn items() -> Vec<ItemInfo> {
    let mut v = Vec::new();
    for ts in [0u64, 1, 1_800_000_000_000, u64::MAX - 1] {
        for b in [0x00u8, 0x12, 0x40, 0xff] {
            let mut id = [b; 32];
            id[31] = ts as u8;
            v.push(ItemInfo {
                ts,
                id,
                priority: 1 + (b % 4),
            });
        }
    }
    v.sort_by_key(ItemInfo::item);
    v
}

fuzz_target!(|data: &[u8]| {
    let Ok(res) = codec::decode_response(data) else {
        return;
    };
    let bytes = fieldmesh::wire::encode(&res).expect("a decoded response re-encodes");
    assert_eq!(
        codec::decode_response(&bytes).expect("re-encoded response decodes"),
        res
    );
    match res {
        SyncResponse::Reconcile(replies) => {
            // A peer's replies to our first request (one range over everything).
            let mut rec = Reconciler::new(items());
            let sent = rec.next_request().expect("a new reconciler asks");
            let n = replies.len();
            if rec.on_replies(replies).is_ok() {
                assert_eq!(n, sent.len());
                // The follow-up round must still be well formed.
                if let Some(next) = rec.next_request() {
                    assert!(!next.is_empty());
                }
            }
        }
        SyncResponse::Envelopes(envelopes) => {
            let results = Envelope::decode_batch(&envelopes, &Limits::default());
            assert_eq!(results.len(), envelopes.len());
        }
        _ => {}
    }
});
