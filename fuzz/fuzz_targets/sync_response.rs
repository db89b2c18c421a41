//! `/fieldmesh/sync/1` response decoder (`proto/sync.md`): frame bodies from any peer.
//! A decoded response must re-encode to a value that decodes equal; `Reconcile`
//! replies go through the initiator's state machine, `Envelopes` through the batch
//! decoder, and neither may panic.
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sync_response(data));
