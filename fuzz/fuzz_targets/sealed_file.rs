//! Sealed bytes: store records and the vault framing (`proto/at-rest.md`), as a
//! damaged disk or a thief could leave them, and team channel bodies (`proto/team.md`).
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sealed_file(data));
