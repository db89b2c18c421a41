//! The invariants every fuzz input must keep, one function per cargo-fuzz target.
//! Shared by the targets (`fuzz/fuzz_targets/<t>.rs`, which include this file with
//! `#[path]`) and by `tests/fuzz_regressions.rs`, which replays the committed seeds
//! and regressions under plain `cargo test`, so the two can never drift apart.
//! Each function must not panic on any input: a panic is the bug being hunted.

use fieldmesh::api::{Reply, Request};
use fieldmesh::crypto::{at_rest, dm, CryptoError};
use fieldmesh::discovery::{parse_resolved, TXT_VERSION};

/// A clock inside every team seed's validity window (2027-01-15): invite codes expire.
const NOW_MS: u64 = 1_800_000_000_000;
use fieldmesh::gossip::envelope::{id_of_bytes, relay_raw, Envelope, Limits};
use fieldmesh::gossip::{direct, receipt::Receipt, tombstone::Tombstone};
use fieldmesh::sync::{self, codec, ItemInfo, Reconciler, SyncRequest, SyncResponse};
use fieldmesh::team::{self, Invite, JoinCert, KeyUpdate, SignedRoster};
use fieldmesh::wire;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A small sorted item set for the sync checks: several timestamps, shared id
/// prefixes and the extremes, so that bounds land between, on and around items.
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

/// Gossip envelope decoder (`proto/envelope.md`): the single and batched decoders
/// agree, a decoded envelope keeps its exact bytes and id, and the undecoded relay
/// path (`relay_raw`) matches the decoded one.
pub(crate) fn envelope(data: &[u8]) {
    let limits = Limits::default();
    let decoded = Envelope::decode(data, &limits);
    let relayed = relay_raw(data);
    let gossip_id = fieldmesh::gossip::message_id(data);
    assert_eq!(gossip_id.0.len(), 33);
    assert_eq!(gossip_id.0[..32], id_of_bytes(data).0);
    if let Ok(env) = &decoded {
        assert_eq!(env.as_bytes(), data);
        assert_eq!(env.id, id_of_bytes(data));
        assert!(env.hops < env.hop_limit);
        assert!(env.body.len() <= limits.max_body_bytes);
        assert_eq!(relayed, env.relay_bytes());
        // Bytes already validated must decode the same without the signature check.
        assert_eq!(Envelope::decode_stored(data).as_ref(), Ok(env));
        if let Some(next) = env.relay_bytes() {
            let again = Envelope::decode(&next, &limits).expect("relayed copy decodes");
            assert_eq!(again.id, env.id);
            assert_eq!(again.hops, env.hops + 1);
        }
    }
    // The batched decoder must agree with `decode` element by element: on an all-good
    // batch, and on a mixed batch that forces the one-by-one fallback (a copy with a
    // flipped signature byte, plus chunks of the input).
    let mut flipped = data.to_vec();
    if flipped.len() >= 2 {
        let at = flipped.len() - 2; // last signature byte
        flipped[at] ^= 0x01;
    }
    let step = (data.len() / 3).max(1);
    let mut mixed: Vec<Vec<u8>> = vec![data.to_vec(), flipped];
    mixed.extend(data.chunks(step).map(<[u8]>::to_vec));
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

/// `/fieldmesh/sync/1` request decoder (`proto/sync.md`): frame bodies from any peer.
/// A decoded request must re-encode to a value that decodes equal, and the responder
/// must answer every range of a `Reconcile` without panicking.
pub(crate) fn sync_request(data: &[u8]) {
    let Ok(req) = codec::decode_request(data) else {
        return;
    };
    let bytes = fieldmesh::wire::encode(&req).expect("a decoded request re-encodes");
    assert_eq!(
        codec::decode_request(&bytes).expect("re-encoded request decodes"),
        req
    );
    match &req {
        SyncRequest::Reconcile { ranges, .. } if ranges.len() <= sync::MAX_RANGES => {
            let replies = sync::respond(&items(), ranges);
            assert_eq!(replies.len(), ranges.len());
            // The reply must itself be a valid frame body.
            let res = SyncResponse::Reconcile(replies);
            let out = fieldmesh::wire::encode(&res).expect("reply encodes");
            assert_eq!(codec::decode_response(&out).expect("reply decodes"), res);
        }
        SyncRequest::Push { envelopes, .. } => {
            let results = Envelope::decode_batch(envelopes, &Limits::default());
            assert_eq!(results.len(), envelopes.len());
        }
        _ => {}
    }
}

/// `/fieldmesh/sync/1` response decoder (`proto/sync.md`): frame bodies from any peer.
/// A decoded response must re-encode to a value that decodes equal; `Reconcile`
/// replies go through the initiator's state machine, `Envelopes` through the batch
/// decoder, and neither may panic.
pub(crate) fn sync_response(data: &[u8]) {
    let Ok(res) = codec::decode_response(data) else {
        return;
    };
    let bytes = fieldmesh::wire::encode(&res).expect("a decoded response re-encodes");
    assert_eq!(
        codec::decode_response(&bytes).expect("re-encoded response decodes"),
        res
    );
    match res {
        SyncResponse::Reconcile(replies) => {
            // A peer's replies to our first request (one range over everything).
            let mut rec = Reconciler::new(items());
            let sent = rec.next_request().expect("a new reconciler asks");
            let n = replies.len();
            if rec.on_replies(replies).is_ok() {
                assert_eq!(n, sent.len());
                // The follow-up round must still be well formed.
                if let Some(next) = rec.next_request() {
                    assert!(!next.is_empty());
                }
            }
        }
        SyncResponse::Envelopes(envelopes) => {
            let results = Envelope::decode_batch(&envelopes, &Limits::default());
            assert_eq!(results.len(), envelopes.len());
        }
        _ => {}
    }
}

/// Control-socket request decoder (`proto/control.md`): JSON Lines from local clients.
/// Any bytes must parse or fail without panicking; a parsed request must serialise
/// and parse back to the same request. Reply lines (what the CLI reads) are parsed too.
pub(crate) fn control_request(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<Request>(data) {
        let line = serde_json::to_vec(&req).expect("a parsed request serialises");
        let back: Request = serde_json::from_slice(&line).expect("a serialised request parses");
        assert_eq!(format!("{back:?}"), format!("{req:?}"));
    }
    if let Ok(reply) = serde_json::from_slice::<Reply>(data) {
        let line = serde_json::to_vec(&reply).expect("a parsed reply serialises");
        let _: Reply = serde_json::from_slice(&line).expect("a serialised reply parses");
    }
}

/// The shared bincode configuration (`src/wire.rs`, `proto/README.md` §1): generic
/// decoding of length-prefixed lists and strings must never panic or over-allocate,
/// and what decodes must re-encode to exactly the same bytes (the encoding is canonical
/// for these types).
pub(crate) fn wire(data: &[u8]) {
    if let Ok(v) = wire::decode::<Vec<Vec<u8>>>(data) {
        assert_eq!(wire::encode(&v).expect("re-encodes"), data);
    }
    if let Ok(v) = wire::decode::<(u8, String, u64)>(data) {
        assert_eq!(wire::encode(&v).expect("re-encodes"), data);
    }
    if let Ok(v) = wire::decode::<Option<Vec<String>>>(data) {
        assert_eq!(wire::encode(&v).expect("re-encodes"), data);
    }
}

/// Small record decoders carried inside envelope bodies or typed in by a user: team
/// records (invite, join certificate, roster, admin order, key update), team
/// channel bodies, DM bodies, tombstones and receipts (`proto/` team and DM specs).
///
/// Input layout: the first byte picks the decoder (mod 9), the rest is its input. A
/// decoded record must re-encode to bytes that decode to the same record.
pub(crate) fn team_records(data: &[u8]) {
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
        // Rosters (tag 0x11) and admin orders (tag 0x15) share a slot.
        6 => {
            if let Ok(r) = SignedRoster::decode(bytes) {
                assert_eq!(SignedRoster::decode(&r.encode()).ok(), Some(r));
            }
            if let Ok(r) = team::SignedOrder::decode(bytes) {
                assert_eq!(team::SignedOrder::decode(&r.encode()).ok(), Some(r));
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

/// One line of the discovery input as an IP: text, else 16 raw bytes (v6), else 4 (v4).
fn ip_of(line: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = std::str::from_utf8(line).ok().and_then(|s| s.parse().ok()) {
        return Some(ip);
    }
    if let Some(b) = line.get(..16) {
        let b: [u8; 16] = b.try_into().ok()?;
        return Some(IpAddr::V6(Ipv6Addr::from(b)));
    }
    let b: [u8; 4] = line.get(..4)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(b)))
}

/// mDNS TXT record parser (`proto/discovery.md`): records from anyone on the LAN.
///
/// Input layout: newline-separated fields `id`, `v`, `team`, `tcp`, `quic`, then one
/// address per line. A missing field or one that is not UTF-8 is `None` (mdns-sd gives
/// no string for it). An address line is parsed as text, else its raw bytes are taken
/// as IPv6 (16 bytes or more) or IPv4 (4 or more).
pub(crate) fn discovery_txt(data: &[u8]) {
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
    // Every address is one of the listed IPs with one of the advertised ports.
    let ports = [field(3), field(4)]
        .iter()
        .filter(|p| {
            p.and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|p| p != 0)
        })
        .count();
    assert!(ev.addrs.len() <= ips.len() * ports);
}

/// BLE advertisement service data and BLE multiaddr text (`proto/bluetooth.md` §1,
/// §2), both from anyone in radio range or in a config file. A decoded advertisement
/// re-encodes to exactly its bytes; a parsed BLE address prints back to a multiaddr
/// that parses to the same address.
pub(crate) fn ble_advert(data: &[u8]) {
    use fieldmesh::transport::ble::{advert::Advert, BleAddr};
    if let Ok(a) = Advert::decode(data) {
        assert_eq!(a.encode().as_slice(), data);
        assert!(a.psm >= 0x80);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(addr) = text.parse::<libp2p::Multiaddr>() else {
        return;
    };
    if let Ok(b) = BleAddr::from_multiaddr(&addr) {
        assert_eq!(BleAddr::from_multiaddr(&b.to_multiaddr()), Ok(b));
        assert!(fieldmesh::transport::ble::is_ble(&addr));
    }
}

/// Fixed identity seeds for the DM checks: the fuzzer varies the bytes, not the keys.
const DM_AUTHOR_SEED: [u8; 32] = [1; 32];
const DM_RECIPIENT_SEED: [u8; 32] = [2; 32];

fn ed25519_public(seed: [u8; 32]) -> [u8; 32] {
    let secret = libp2p::identity::ed25519::SecretKey::try_from_bytes(seed).expect("32-byte seed");
    libp2p::identity::ed25519::Keypair::from(secret)
        .public()
        .to_bytes()
}

/// Direct-message ciphertext (`proto/dm.md`): the body of a `dm` envelope, from any
/// peer. Opening arbitrary bytes fails with a typed error, never with a plaintext
/// longer than its ciphertext, and what opens for the real author is refused for
/// another claimed author. (Seal/open round trips are unit tests in
/// `src/crypto/dm.rs`: sealing per input would make the fuzzer ten times slower.)
pub(crate) fn dm_open(data: &[u8]) {
    static AUTHOR: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let author = AUTHOR.get_or_init(|| ed25519_public(DM_AUTHOR_SEED));
    if let Ok(plain) = dm::open_dm(&DM_RECIPIENT_SEED, author, data) {
        assert!(plain.len() < data.len());
        let impostor = ed25519_public(DM_RECIPIENT_SEED);
        assert!(matches!(
            dm::open_dm(&DM_RECIPIENT_SEED, &impostor, data),
            Err(CryptoError::SenderMismatch)
        ));
    }
}

/// Sealed bytes: a store record (`proto/at-rest.md` §7) and the vault framing (§2),
/// as a thief or a damaged disk could leave them, and a team channel body
/// (`proto/team.md`) from any member. Opening arbitrary bytes fails cleanly; the
/// bytes as plaintext seal and open back; the vault header check accepts only
/// in-range argon2 parameters (it runs no argon2); a team body opens only under its
/// team, channel and author.
pub(crate) fn sealed_file(data: &[u8]) {
    let team_key = [team::TeamKey {
        epoch: 3,
        key: [4; 32],
    }];
    let team_id = team::TeamId([5; 16]);
    if let Ok(plain) = team::decrypt_body(&team_key, &team_id, "triage", &[6; 32], data) {
        assert!(plain.len() < data.len());
    }
    if data.len() <= team::MAX_BODY_PLAINTEXT {
        let body = team::encrypt_body(&team_key[0], &team_id, "triage", &[6; 32], data)
            .expect("a body within the limit seals");
        let back = team::decrypt_body(&team_key, &team_id, "triage", &[6; 32], &body);
        assert_eq!(back.expect("own body opens"), data);
        assert!(team::decrypt_body(&team_key, &team_id, "general", &[6; 32], &body).is_err());
    }
    let key = at_rest::Key::from_bytes([9; 32]);
    let aad = b"record id";
    if let Ok(plain) = at_rest::open(&key, aad, data) {
        assert_eq!(plain.len() + at_rest::SEAL_OVERHEAD, data.len());
    }
    let sealed = at_rest::seal(&key, aad, data);
    assert_eq!(
        at_rest::open(&key, aad, &sealed).expect("own seal opens"),
        data
    );
    assert!(at_rest::open(&key, b"other id", &sealed).is_err());
    if let Ok((params, rest)) = at_rest::vault_check(data) {
        assert!(params.in_range());
        assert!(rest.len() >= at_rest::SEAL_OVERHEAD);
        assert_eq!(rest.len() + at_rest::VAULT_HEADER_LEN, data.len());
    }
}

/// `config_file`: `ConfigFile::decode` never panics; what decodes decodes again
/// to an equal value; an `Invalid` error names a line inside the input.
pub(crate) fn config_file(data: &[u8]) {
    use fieldmesh::config::file::{ConfigFile, ConfigFileError};
    match ConfigFile::decode(data) {
        Ok(config) => assert_eq!(ConfigFile::decode(data).ok(), Some(config)),
        Err(ConfigFileError::Invalid { line, .. }) => {
            let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
        Err(e) => drop(e.to_string()),
    }
}

/// Structured message bodies (`proto/bodies.md`): any plaintext body a member or a
/// drill node sends. Text stays text; a decoded report re-encodes to the same bytes
/// (the encoding is canonical), and its hidden view shows no identifiable field.
pub(crate) fn report_body(data: &[u8]) {
    use fieldmesh::gossip::report::{Body, Redaction, Report, MARK};
    match Body::decode(data) {
        Ok(Body::Text(_)) => assert_ne!(data.first(), Some(&MARK)),
        Err(_) => assert_eq!(data.first(), Some(&MARK)),
        Ok(Body::Report(report)) => {
            assert_eq!(report.encode().unwrap(), data, "not canonical");
            let _ = (report.summary(), report.render(Redaction::Reveal));
            if let Report::Casualty(_) = &report {
                let hidden = report.to_json(Redaction::Hide);
                let ident = &hidden["casualty"]["identifiable"];
                for field in ["name", "nhs_number", "date_of_birth", "other"] {
                    assert!(
                        ident[field].is_null() || ident[field] == "[hidden]",
                        "{field} shown: {ident}"
                    );
                }
            }
        }
    }
}

/// Audit log files (`proto/audit.md`): what `fieldmesh audit --verify` reads, a file
/// anyone with access to the data dir may have edited. Never panics; an accepted
/// file is a chain (seq from 0, each `prev` the hash before, each hash right) whose
/// records re-serialise to a file that verifies to the same records; a refusal names
/// a line of the input; a writer resuming on these bytes never panics.
pub(crate) fn audit_log(data: &[u8]) {
    use fieldmesh::audit::verify::{parse_line, resume_from_tail};
    use fieldmesh::audit::{verify, GENESIS};
    let lines = data.split(|b| *b == b'\n').count();
    match verify(data) {
        Ok(v) => {
            let mut prev = GENESIS.to_owned();
            for (i, r) in v.records.iter().enumerate() {
                assert_eq!(r.seq, i as u64);
                assert_eq!(r.prev, prev);
                assert_eq!(r.computed_hash(), r.hash);
                assert_eq!(parse_line(r.to_line().as_bytes()).as_ref(), Some(r));
                prev.clone_from(&r.hash);
            }
            let rebuilt: String = v.records.iter().map(|r| r.to_line() + "\n").collect();
            assert_eq!(verify(rebuilt.as_bytes()).unwrap().records, v.records);
            for t in &v.torn {
                assert!(
                    (1..=lines).contains(&t.line),
                    "torn line {} of {lines}",
                    t.line
                );
            }
        }
        Err(b) => {
            assert!(
                (1..=lines).contains(&b.line()),
                "line {} of {lines}",
                b.line()
            );
            drop(b.to_string());
        }
    }
    let resume = resume_from_tail(data);
    if let Some(last) = resume.last {
        assert_eq!(parse_line(last.to_line().as_bytes()), Some(last));
    }
}
