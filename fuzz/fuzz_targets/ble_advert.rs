//! BLE advertisement service data and BLE multiaddr text (`proto/bluetooth.md`):
//! bytes from anyone in radio range, addresses from config files and peers.
//! The input is taken both as service data and, when UTF-8, as a multiaddr.
//! The checks live in `tests/common/fuzz_checks.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

// Every target includes all the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::ble_advert(data));
