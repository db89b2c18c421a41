//! Small record decoders carried inside envelope bodies or typed in by a user: team
//! records (invite, join certificate, roster, key update), team channel bodies, DM
//! bodies, tombstones and receipts (`proto/` team and DM specs).
//!
//! Input layout: the first byte picks the decoder (mod 9), the rest is its input. A
//! decoded record must re-encode to bytes that decode to the same record.
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::team_records(data));
