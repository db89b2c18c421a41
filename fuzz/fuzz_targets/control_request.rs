//! Control-socket request decoder (`proto/control.md`): JSON Lines from local clients.
//! Any bytes must parse or fail without panicking; a parsed request must serialise
//! and parse back to the same request. Reply lines (what the CLI reads) are parsed too.
#![no_main]

use fieldmesh::api::{Reply, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<Request>(data) {
        let line = serde_json::to_vec(&req).expect("a parsed request serialises");
        let back: Request = serde_json::from_slice(&line).expect("a serialised request parses");
        assert_eq!(format!("{back:?}"), format!("{req:?}"));
    }
    if let Ok(reply) = serde_json::from_slice::<Reply>(data) {
        let line = serde_json::to_vec(&reply).expect("a parsed reply serialises");
        let _: Reply = serde_json::from_slice(&line).expect("a serialised reply parses");
    }
});
