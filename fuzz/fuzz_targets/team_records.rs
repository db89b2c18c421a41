//! Small record decoders carried inside envelope bodies or typed in by a user: team
//! records (invite, join certificate, roster, key update), team channel bodies, DM
//! bodies, tombstones and receipts (`proto/` team and DM specs).
//!
//! Input layout: the first byte picks the decoder (mod 9), the rest is its input. A
//! decoded record must re-encode to bytes that decode to the same record.
#![no_main]

use fieldmesh::gossip::{direct, receipt::Receipt, tombstone::Tombstone};
use fieldmesh::team::{self, Invite, JoinCert, KeyUpdate, SignedRoster};
use libfuzzer_sys::fuzz_target;

/// A clock inside every seed's validity window (2027-01-15).
const NOW_MS: u64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 9 {
        0 => {
            if let Ok(t) = Tombstone::decode(bytes) {
                assert_eq!(Tombstone::decode(&t.encode()).ok(), Some(t));
            }
        }
        1 => {
            if let Ok(r) = Receipt::decode(bytes) {
                assert_eq!(Receipt::decode(&r.encode()).ok(), Some(r));
            }
        }
        2 => {
            if let Ok(b) = direct::decode_body(bytes) {
                let again = fieldmesh::wire::encode(&b).expect("a decoded body re-encodes");
                assert_eq!(direct::decode_body(&again).ok(), Some(b));
            }
        }
        3 => {
            if let Ok(i) = Invite::decode(bytes) {
                let enc = i.encode();
                let back = Invite::decode(&enc).expect("a re-encoded invite decodes");
                assert_eq!(back.encode(), enc);
                let _ = i.verify();
            }
        }
        4 => {
            if let Ok(code) = std::str::from_utf8(bytes) {
                if let Ok(i) = Invite::from_code(code, NOW_MS) {
                    let back = Invite::from_code(&i.to_code(), NOW_MS).expect("own code parses");
                    assert_eq!(back.encode(), i.encode());
                }
            }
        }
        5 => {
            if let Ok(j) = JoinCert::decode(bytes) {
                assert_eq!(JoinCert::decode(&j.encode()).ok(), Some(j));
            }
        }
        6 => {
            if let Ok(r) = SignedRoster::decode(bytes) {
                assert_eq!(SignedRoster::decode(&r.encode()).ok(), Some(r));
            }
        }
        7 => {
            if let Ok(k) = KeyUpdate::decode(bytes) {
                assert_eq!(KeyUpdate::decode(&k.encode()).ok(), Some(k));
            }
        }
        _ => {
            let _ = team::body_epoch(bytes);
        }
    }
});
