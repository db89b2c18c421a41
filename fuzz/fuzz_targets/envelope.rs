//! Gossip envelope decoder (`proto/envelope.md`): bytes from any peer, via gossip or
//! a sync `Push`/`Envelopes` batch. Checks that the single and batched decoders agree,
//! that a decoded envelope keeps its exact bytes and id, and that the undecoded relay
//! path (`relay_raw`) matches the decoded one.
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::envelope(data));
