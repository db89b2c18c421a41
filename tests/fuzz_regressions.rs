//! Replays the fuzz inputs under plain `cargo test`: every file in
//! `fuzz/regressions/<target>/` (inputs that once crashed, or hand-made hostile ones)
//! and `fuzz/seeds/<target>/` goes through the same decoder and the same invariants
//! as the cargo-fuzz target of that name (`fuzz/fuzz_targets/<target>.rs`). The checks
//! are duplicated here on purpose so this binary does not depend on the fuzz crate.
#![allow(missing_docs, clippy::unwrap_used)]

use fieldmesh::api::{Reply, Request};
use fieldmesh::discovery::{parse_resolved, TXT_VERSION};
use fieldmesh::gossip::envelope::{id_of_bytes, relay_raw, Envelope, Limits};
use fieldmesh::gossip::{direct, receipt::Receipt, tombstone::Tombstone};
use fieldmesh::sync::{self, codec, ItemInfo, Reconciler, SyncRequest, SyncResponse, MAX_RANGES};
use fieldmesh::team::{self, Invite, JoinCert, KeyUpdate, SignedRoster};
use fieldmesh::wire;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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

/// The small sorted item set both sync targets reconcile against.
fn items() -> Vec<ItemInfo> {
    let mut v = Vec::new();
    for ts in [0u64, 1, 1_800_000_000_000, u64::MAX - 1] {
        for b in [0x00u8, 0x12, 0x40, 0xff] {
            let mut id = [b; 32];
            id[31] = ts as u8;
            v.push(ItemInfo {
                ts,
                id,
                priority: 1 + (b % 4),
            });
        }
    }
    v.sort_by_key(ItemInfo::item);
    v
}

fn check_envelope(data: &[u8]) {
    let limits = Limits::default();
    let relayed = relay_raw(data);
    let gossip_id = fieldmesh::gossip::message_id(data);
    assert_eq!(gossip_id.0[..32], id_of_bytes(data).0);
    if let Ok(env) = Envelope::decode(data, &limits) {
        assert_eq!(env.as_bytes(), data);
        assert_eq!(env.id, id_of_bytes(data));
        assert!(env.hops < env.hop_limit);
        assert_eq!(relayed, env.relay_bytes());
        assert_eq!(Envelope::decode_stored(data).as_ref(), Ok(&env));
        if let Some(next) = env.relay_bytes() {
            let again = Envelope::decode(&next, &limits).unwrap();
            assert_eq!((again.id, again.hops), (env.id, env.hops + 1));
        }
    }
    let mut flipped = data.to_vec();
    if flipped.len() >= 2 {
        let at = flipped.len() - 2;
        flipped[at] ^= 0x01;
    }
    let mut mixed = vec![data.to_vec(), flipped];
    mixed.extend(data.chunks((data.len() / 3).max(1)).map(<[u8]>::to_vec));
    mixed.push(data.to_vec());
    for batch in [vec![data.to_vec(), data.to_vec()], mixed] {
        let results = Envelope::decode_batch(&batch, &limits);
        assert_eq!(results.len(), batch.len());
        for (bytes, got) in batch.iter().zip(&results) {
            assert_eq!(
                got,
                &Envelope::decode(bytes, &limits),
                "decode_batch != decode"
            );
        }
    }
}

fn check_sync_request(data: &[u8]) {
    let Ok(req) = codec::decode_request(data) else {
        return;
    };
    assert_eq!(
        codec::decode_request(&wire::encode(&req).unwrap()).unwrap(),
        req
    );
    match &req {
        SyncRequest::Reconcile { ranges, .. } if ranges.len() <= MAX_RANGES => {
            let replies = sync::respond(&items(), ranges);
            assert_eq!(replies.len(), ranges.len());
            let res = SyncResponse::Reconcile(replies);
            assert_eq!(
                codec::decode_response(&wire::encode(&res).unwrap()).unwrap(),
                res
            );
        }
        SyncRequest::Push { envelopes, .. } => {
            assert_eq!(
                Envelope::decode_batch(envelopes, &Limits::default()).len(),
                envelopes.len()
            );
        }
        _ => {}
    }
}

fn check_sync_response(data: &[u8]) {
    let Ok(res) = codec::decode_response(data) else {
        return;
    };
    assert_eq!(
        codec::decode_response(&wire::encode(&res).unwrap()).unwrap(),
        res
    );
    match res {
        SyncResponse::Reconcile(replies) => {
            let mut rec = Reconciler::new(items());
            let sent = rec.next_request().unwrap();
            let n = replies.len();
            if rec.on_replies(replies).is_ok() {
                assert_eq!(n, sent.len());
                if let Some(next) = rec.next_request() {
                    assert!(!next.is_empty());
                }
            }
        }
        SyncResponse::Envelopes(envelopes) => {
            assert_eq!(
                Envelope::decode_batch(&envelopes, &Limits::default()).len(),
                envelopes.len()
            );
        }
        _ => {}
    }
}

fn check_control_request(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<Request>(data) {
        let back: Request = serde_json::from_slice(&serde_json::to_vec(&req).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{req:?}"));
    }
    if let Ok(reply) = serde_json::from_slice::<Reply>(data) {
        let _: Reply = serde_json::from_slice(&serde_json::to_vec(&reply).unwrap()).unwrap();
    }
}

/// Same input layout as `fuzz/fuzz_targets/discovery_txt.rs`.
fn ip_of(line: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = std::str::from_utf8(line).ok().and_then(|s| s.parse().ok()) {
        return Some(ip);
    }
    if let Some(b) = line.get(..16) {
        return Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?)));
    }
    let b: [u8; 4] = line.get(..4)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(b)))
}

fn check_discovery_txt(data: &[u8]) {
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let field = |i: usize| lines.get(i).and_then(|l| std::str::from_utf8(l).ok());
    let ips: Vec<IpAddr> = lines.iter().skip(5).filter_map(|l| ip_of(l)).collect();
    let Ok(ev) = parse_resolved(
        field(0),
        field(1),
        field(2),
        field(3),
        field(4),
        ips.iter().copied(),
    ) else {
        return;
    };
    assert!(!ev.addrs.is_empty());
    assert_eq!(field(1), Some(TXT_VERSION));
    assert_eq!(ev.team, field(2).unwrap_or_default());
    let ports = [field(3), field(4)]
        .iter()
        .filter(|p| {
            p.and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|p| p != 0)
        })
        .count();
    assert!(ev.addrs.len() <= ips.len() * ports);
}

fn check_wire(data: &[u8]) {
    if let Ok(v) = wire::decode::<Vec<Vec<u8>>>(data) {
        assert_eq!(wire::encode(&v).unwrap(), data);
    }
    if let Ok(v) = wire::decode::<(u8, String, u64)>(data) {
        assert_eq!(wire::encode(&v).unwrap(), data);
    }
    if let Ok(v) = wire::decode::<Option<Vec<String>>>(data) {
        assert_eq!(wire::encode(&v).unwrap(), data);
    }
}

/// Same selector layout as `fuzz/fuzz_targets/team_records.rs`.
fn check_team_records(data: &[u8]) {
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
                let again = wire::encode(&b).unwrap();
                assert_eq!(direct::decode_body(&again).ok(), Some(b));
            }
        }
        3 => {
            if let Ok(i) = Invite::decode(bytes) {
                let enc = i.encode();
                assert_eq!(Invite::decode(&enc).unwrap().encode(), enc);
                let _ = i.verify();
            }
        }
        4 => {
            if let Ok(code) = std::str::from_utf8(bytes) {
                if let Ok(i) = Invite::from_code(code, 1_800_000_000_000) {
                    let back = Invite::from_code(&i.to_code(), 1_800_000_000_000).unwrap();
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
}

#[test]
fn envelope_inputs_keep_invariants() {
    replay("envelope", check_envelope);
}

#[test]
fn sync_request_inputs_keep_invariants() {
    replay("sync_request", check_sync_request);
}

#[test]
fn sync_response_inputs_keep_invariants() {
    replay("sync_response", check_sync_response);
}

#[test]
fn control_request_inputs_keep_invariants() {
    replay("control_request", check_control_request);
}

#[test]
fn discovery_txt_inputs_keep_invariants() {
    replay("discovery_txt", check_discovery_txt);
}

#[test]
fn wire_inputs_keep_invariants() {
    replay("wire", check_wire);
}

#[test]
fn team_records_inputs_keep_invariants() {
    replay("team_records", check_team_records);
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
