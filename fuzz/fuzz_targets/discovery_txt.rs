//! mDNS TXT record parser (`proto/discovery.md`): records from anyone on the LAN.
//!
//! Input layout: newline-separated fields `id`, `v`, `team`, `tcp`, `quic`, then one
//! address per line. A missing field or one that is not UTF-8 is `None` (mdns-sd gives
//! no string for it). An address line is parsed as text, else its raw bytes are taken
//! as IPv6 (16 bytes or more) or IPv4 (4 or more).
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::discovery_txt(data));
