//! The shared bincode configuration (`src/wire.rs`, `proto/README.md` §1): generic
//! decoding of length-prefixed lists and strings must never panic or over-allocate,
//! and what decodes must re-encode to exactly the same bytes (the encoding is canonical
//! for these types).
#![no_main]

use fieldmesh::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = wire::decode::<Vec<Vec<u8>>>(data) {
        assert_eq!(wire::encode(&v).expect("re-encodes"), data);
    }
    if let Ok(v) = wire::decode::<(u8, String, u64)>(data) {
        assert_eq!(wire::encode(&v).expect("re-encodes"), data);
    }
    if let Ok(v) = wire::decode::<Option<Vec<String>>>(data) {
        assert_eq!(wire::encode(&v).expect("re-encodes"), data);
    }
});
