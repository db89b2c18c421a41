//! The shared bincode configuration (`src/wire.rs`, `proto/README.md` §1): generic
//! decoding of length-prefixed lists and strings must never panic or over-allocate,
//! and what decodes must re-encode to exactly the same bytes (the encoding is canonical
//! for these types).
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::wire(data));
