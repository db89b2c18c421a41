//! Replays the fuzz inputs under plain `cargo test`: every file in
//! `fuzz/regressions/<target>/` (inputs that once crashed, or hand-made hostile ones)
//! and `fuzz/seeds/<target>/` goes through the same checks as the cargo-fuzz target of
//! that name: both include `tests/common/fuzz_checks.rs`.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "common/fuzz_checks.rs"]
mod checks;

use fieldmesh::api::{Reply, Request};
use fieldmesh::gossip::envelope::{Envelope, Limits};
use fieldmesh::sync::codec;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Runs `check` on every input of `target`; fails naming each input that panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for kind in ["regressions", "seeds"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            if path.is_file() {
                inputs.push(path);
            }
        }
    }
    inputs.sort();
    assert!(!inputs.is_empty(), "no seeds or regressions for {target}");
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: inputs that panicked: {failed:#?}"
    );
}

#[test]
fn envelope_inputs_keep_invariants() {
    replay("envelope", checks::envelope);
}

#[test]
fn sync_request_inputs_keep_invariants() {
    replay("sync_request", checks::sync_request);
}

#[test]
fn sync_response_inputs_keep_invariants() {
    replay("sync_response", checks::sync_response);
}

#[test]
fn control_request_inputs_keep_invariants() {
    replay("control_request", checks::control_request);
}

#[test]
fn discovery_txt_inputs_keep_invariants() {
    replay("discovery_txt", checks::discovery_txt);
}

#[test]
fn ble_advert_inputs_keep_invariants() {
    replay("ble_advert", checks::ble_advert);
}

#[test]
fn wire_inputs_keep_invariants() {
    replay("wire", checks::wire);
}

#[test]
fn team_records_inputs_keep_invariants() {
    replay("team_records", checks::team_records);
}

#[test]
fn dm_open_inputs_keep_invariants() {
    replay("dm_open", checks::dm_open);
}

#[test]
fn sealed_file_inputs_keep_invariants() {
    replay("sealed_file", checks::sealed_file);
}

#[test]
fn config_file_inputs_keep_invariants() {
    replay("config_file", checks::config_file);
}

/// The seeds are valid inputs: each must decode, or the fuzzer starts from nothing.
#[test]
fn seeds_decode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let each = |target: &str, ok: fn(&[u8]) -> bool| {
        for entry in std::fs::read_dir(root.join(target)).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            assert!(ok(&data), "seed {} does not decode", path.display());
        }
    };
    each("envelope", |d| {
        Envelope::decode(d, &Limits::default()).is_ok()
    });
    each("sync_request", |d| codec::decode_request(d).is_ok());
    each("sync_response", |d| codec::decode_response(d).is_ok());
    each("control_request", |d| {
        serde_json::from_slice::<Request>(d).is_ok() || serde_json::from_slice::<Reply>(d).is_ok()
    });
}

#[test]
fn report_body_inputs_keep_invariants() {
    replay("report_body", checks::report_body);
}

#[test]
fn audit_log_inputs_keep_invariants() {
    replay("audit_log", checks::audit_log);
}
