//! Direct-message ciphertext (`proto/dm.md`): the body of a `dm` envelope from any
//! peer, opened and sealed with fixed keys.
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::dm_open(data));
