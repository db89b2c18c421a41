//! Control-socket request decoder (`proto/control.md`): JSON Lines from local clients.
//! Any bytes must parse or fail without panicking; a parsed request must serialise
//! and parse back to the same request. Reply lines (what the CLI reads) are parsed too.
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::control_request(data));
