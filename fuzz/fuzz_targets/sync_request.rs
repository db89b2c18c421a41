//! `/fieldmesh/sync/1` request decoder (`proto/sync.md`): frame bodies from any peer.
//! A decoded request must re-encode to a value that decodes equal, and the responder
//! must answer every range of a `Reconcile` without panicking.
#![no_main]

use fieldmesh::gossip::envelope::{Envelope, Limits};
use fieldmesh::sync::{self, codec, ItemInfo, SyncRequest, SyncResponse};
use libfuzzer_sys::fuzz_target;

/// A small sorted item set for the responder: several timestamps, shared id prefixes
/// and the extremes, so that bounds land between, on and around items.
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
    let Ok(req) = codec::decode_request(data) else {
        return;
    };
    let bytes = fieldmesh::wire::encode(&req).expect("a decoded request re-encodes");
    assert_eq!(
        codec::decode_request(&bytes).expect("re-encoded request decodes"),
        req
    );
    match &req {
        SyncRequest::Reconcile { ranges, .. } if ranges.len() <= sync::MAX_RANGES => {
            let replies = sync::respond(&items(), ranges);
            assert_eq!(replies.len(), ranges.len());
            // The reply must itself be a valid frame body.
            let res = SyncResponse::Reconcile(replies);
            let out = fieldmesh::wire::encode(&res).expect("reply encodes");
            assert_eq!(codec::decode_response(&out).expect("reply decodes"), res);
        }
        SyncRequest::Push { envelopes, .. } => {
            let results = Envelope::decode_batch(envelopes, &Limits::default());
            assert_eq!(results.len(), envelopes.len());
        }
        _ => {}
    }
});
