//! Writes the seed corpora under `fuzz/seeds/<target>/`: valid inputs for every fuzz
//! target, built with the real encoders so that the fuzzer starts past the cheap
//! rejections. Re-run after a wire format change:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds
//! ```

use anyhow::Context;
use fieldmesh::gossip::envelope::{ChannelName, Draft, Envelope, MessageId};
use fieldmesh::gossip::priority::Priority;
use fieldmesh::gossip::receipt::{Held, Receipt, BUCKET_MS};
use fieldmesh::gossip::{direct, tombstone::Tombstone};
use fieldmesh::sync::{
    fingerprint, Bound, Fingerprint, ItemInfo, RangeFp, RangeReply, SubRange, SyncRequest,
    SyncResponse,
};
use fieldmesh::team::{self, Invite, JoinCert, KeyUpdate, SignedRoster};
use fieldmesh::wire;
use libp2p::identity::ed25519;
use std::path::{Path, PathBuf};
use std::time::Duration;

const NOW: u64 = 1_800_000_000_000;

fn unhex(text: &str) -> anyhow::Result<Vec<u8>> {
    let s: String = text.split_whitespace().collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).context("bad hex"))
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))
}

fn envelope(key: &ed25519::Keypair, body: &[u8], hop_limit: u8, p: Priority) -> Envelope {
    let draft = Draft {
        channel: ChannelName::new("triage").expect("valid literal channel"),
        created_at_ms: NOW,
        ttl: Duration::from_secs(60),
        hop_limit,
        priority: p,
        body: body.to_vec(),
    };
    Envelope::sign(draft, key).expect("signing a valid draft")
}

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seeds = root.join("seeds");
    let vectors = root.join("../proto/vectors");
    let read_vec = |name: &str| -> anyhow::Result<Vec<u8>> {
        unhex(&std::fs::read_to_string(vectors.join(name)).with_context(|| name.to_owned())?)
    };

    // envelope: the golden vector, plus envelopes exercising hops, priorities and size.
    let golden = read_vec("envelope-v1.hex")?;
    let key = ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes([7u8; 32])?);
    let long = envelope(&key, &[b'x'; 1000], 2, Priority::P4);
    let last_hop = envelope(&key, b"bay 4 needs oxygen", 1, Priority::P2);
    let dir = seeds.join("envelope");
    write(&dir, "golden-v1", &golden)?;
    write(&dir, "body-1000-p4", long.as_bytes())?;
    write(&dir, "last-hop", last_hop.as_bytes())?;
    write(
        &dir,
        "relayed",
        &long.relay_bytes().context("hop limit 2 relays")?,
    )?;

    // sync_request: the golden vector and one of each other request.
    let bound = |ts: u64, p: &[u8]| Bound {
        ts,
        id_prefix: p.to_vec(),
    };
    let dir = seeds.join("sync_request");
    write(
        &dir,
        "golden-reconcile",
        &read_vec("sync-reconcile-request.hex")?,
    )?;
    let reqs = [
        (
            "reconcile-3",
            SyncRequest::Reconcile {
                channel: "triage".into(),
                ranges: vec![
                    RangeFp {
                        lower: None,
                        upper: bound(1, &[]),
                        fingerprint: fingerprint(&[]),
                        count: 0,
                    },
                    RangeFp {
                        lower: Some(bound(1, &[])),
                        upper: bound(NOW, &[0x12, 0x40]),
                        fingerprint: Fingerprint([9; 16]),
                        count: 20,
                    },
                    RangeFp {
                        lower: Some(bound(NOW, &[0x12, 0x40])),
                        upper: Bound::max(),
                        fingerprint: Fingerprint([1; 16]),
                        count: 3,
                    },
                ],
            },
        ),
        (
            "fetch",
            SyncRequest::Fetch {
                channel: "triage".into(),
                ids: vec![golden_id(&golden), [0xff; 32]],
            },
        ),
        (
            "fetch-range",
            SyncRequest::FetchRange {
                channel: "triage".into(),
                lower: Some(bound(1, &[0])),
                upper: Bound::max(),
                skip: 2,
                max: 64,
            },
        ),
        (
            "push",
            SyncRequest::Push {
                channel: "triage".into(),
                envelopes: vec![golden.clone(), long.as_bytes().to_vec()],
            },
        ),
    ];
    for (name, req) in reqs {
        write(&dir, name, &wire::encode(&req)?)?;
    }

    // sync_response: the golden vector and one of each reply shape.
    let dir = seeds.join("sync_response");
    write(
        &dir,
        "golden-reconcile",
        &read_vec("sync-reconcile-response.hex")?,
    )?;
    let info = |ts: u64, b: u8| ItemInfo {
        ts,
        id: [b; 32],
        priority: 1,
    };
    let sub = |ts: u64, count: u32| SubRange {
        upper: bound(ts, &[]),
        fingerprint: Fingerprint([count as u8; 16]),
        count,
    };
    let resps = [
        (
            "reconcile-all-shapes",
            SyncResponse::Reconcile(vec![
                RangeReply::Match,
                RangeReply::Items(vec![info(1, 0x12), info(NOW, 0x40)]),
                RangeReply::Split(vec![sub(1, 4), sub(NOW, 9), sub(u64::MAX, 2)]),
                RangeReply::All { count: 7 },
            ]),
        ),
        (
            "reconcile-split",
            SyncResponse::Reconcile(vec![RangeReply::Split(vec![
                sub(NOW, 3),
                sub(u64::MAX, 30),
            ])]),
        ),
        (
            "envelopes",
            SyncResponse::Envelopes(vec![golden.clone(), last_hop.as_bytes().to_vec()]),
        ),
        ("pushed", SyncResponse::Pushed { stored: 2 }),
        ("not-followed", SyncResponse::NotFollowed),
        (
            "refused",
            SyncResponse::Refused {
                code: "too_many_ranges".into(),
            },
        ),
    ];
    for (name, res) in resps {
        write(&dir, name, &wire::encode(&res)?)?;
    }

    // control_request: the request and reply lines of proto/control.md's example session.
    let dir = seeds.join("control_request");
    let lines = [
        (
            "send",
            r#"{"id":3,"op":"send","channel":"triage","text":"hi","ttl_ms":60000,"priority":"p1"}"#,
        ),
        (
            "send-minimal",
            r#"{"id": 7, "op": "send", "channel": "triage", "text": "bay 4 needs oxygen"}"#,
        ),
        (
            "read",
            r#"{"id":4,"op":"read","channel":"triage","limit":10}"#,
        ),
        ("follow", r#"{"id":1,"op":"follow","channel":"triage"}"#),
        ("peers", r#"{"id":2,"op":"peers"}"#),
        ("status", r#"{"id":1,"op":"status"}"#),
        (
            "reply-error",
            r#"{"id":null,"error":{"code":"bad_request","message":"not a request"}}"#,
        ),
        (
            "reply-lagged",
            r#"{"id":1,"event":{"type":"lagged","missed":17}}"#,
        ),
        (
            "reply-expired",
            r#"{"id":1,"event":{"type":"expired","ids":["d16fa1331e19496de66bdaf2bf92e24b40fd0dead6221d2a3d839d1f058123d2"]}}"#,
        ),
    ];
    for (name, line) in lines {
        write(&dir, name, line.as_bytes())?;
    }

    // discovery_txt: id, v, team, tcp, quic, then addresses (see the target's doc).
    let dir = seeds.join("discovery_txt");
    let peer = libp2p::identity::PublicKey::from(key.public()).to_peer_id();
    let rec = format!("{peer}\n1\ndrill\n4001\n4002\n10.0.0.2\nfe80::1\n2001:db8::7\n0.0.0.0");
    write(&dir, "full", rec.as_bytes())?;
    write(
        &dir,
        "tcp-only",
        format!("{peer}\n1\n\n4001\n\n192.168.1.20").as_bytes(),
    )?;

    // wire: one value of each decoded type.
    let dir = seeds.join("wire");
    write(
        &dir,
        "vec-vec",
        &wire::encode(&vec![b"ab".to_vec(), Vec::new(), vec![0xff; 9]])?,
    )?;
    write(
        &dir,
        "tuple",
        &wire::encode(&(1u8, "triage".to_owned(), NOW))?,
    )?;
    write(
        &dir,
        "option-vec-string",
        &wire::encode(&Some(vec!["a".to_owned(), "ü".to_owned()]))?,
    )?;
    // team_records: a selector byte (see the target) then a golden vector that decodes
    // with that decoder; every vector is tried with every decoder.
    let dir = seeds.join("team_records");
    let mut found = 0;
    for name in [
        "team-invite-v1",
        "team-join-v1",
        "team-roster-v1",
        "team-keys-v1",
        "team-body-v1",
        "dm-v1",
    ] {
        let bytes = read_vec(&format!("{name}.hex"))?;
        let decoders: [(u8, &str, bool); 8] = [
            (0, "tombstone", Tombstone::decode(&bytes).is_ok()),
            (1, "receipt", Receipt::decode(&bytes).is_ok()),
            (2, "dm-body", direct::decode_body(&bytes).is_ok()),
            (3, "invite", Invite::decode(&bytes).is_ok()),
            (5, "join-cert", JoinCert::decode(&bytes).is_ok()),
            (6, "roster", SignedRoster::decode(&bytes).is_ok()),
            (7, "key-update", KeyUpdate::decode(&bytes).is_ok()),
            (8, "body-epoch", team::body_epoch(&bytes).is_ok()),
        ];
        for (which, decoder, ok) in decoders {
            if ok {
                write(
                    &dir,
                    &format!("{name}-{decoder}"),
                    &[&[which], &bytes[..]].concat(),
                )?;
                found += 1;
            }
        }
        if let Ok(invite) = Invite::decode(&bytes) {
            write(
                &dir,
                &format!("{name}-code"),
                &[&[4u8], invite.to_code().as_bytes()].concat(),
            )?;
        }
    }
    anyhow::ensure!(found >= 5, "only {found} team vectors decoded");
    let tomb = Tombstone::new(MessageId([0x12; 32]), NOW + 60_000);
    write(&dir, "tombstone", &[&[0u8], &tomb.encode()[..]].concat())?;
    let receipt = Receipt::new(&[Held {
        channel: ChannelName::new("triage")?,
        bucket: NOW / BUCKET_MS,
        count: 2,
        fingerprint: [0x40; 16],
    }]);
    write(&dir, "receipt", &[&[1u8], &receipt.encode()[..]].concat())?;
    let admin = ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes([5u8; 32])?);
    for (name, kind) in [
        (
            "order-revoke",
            team::OrderKind::Revoke {
                member: [9; 32],
                wipe: true,
            },
        ),
        ("order-stand-down", team::OrderKind::StandDown { at_ms: NOW }),
    ] {
        let order = team::Order {
            team: team::TeamId([3; 16]),
            issued_at_ms: NOW,
            kind,
        };
        let signed = team::SignedOrder::sign(order, &admin);
        write(&dir, name, &[&[6u8], &signed.encode()[..]].concat())?;
    }

    // dm_open: DMs sealed by the checks' fixed author to their fixed recipient.
    let public = |seed: [u8; 32]| -> anyhow::Result<[u8; 32]> {
        Ok(
            ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes(seed)?)
                .public()
                .to_bytes(),
        )
    };
    let dir = seeds.join("dm_open");
    for (name, text) in [("short", &b"bay 4"[..]), ("empty", &b""[..])] {
        let sealed = fieldmesh::crypto::dm::seal_dm(&[1; 32], &public([2; 32])?, text)?;
        write(&dir, name, &sealed)?;
    }

    // report_body: a METHANE report, a casualty update with identifiable fields, text.
    let dir = seeds.join("report_body");
    for (name, json) in [
        (
            "methane",
            serde_json::json!({"methane": {"major_incident": "declared",
                "exact_location": "tram stop", "incident_type": "derailment",
                "hazards": "line down", "access": "north",
                "casualties": {"p1": 3, "p2": 5, "p3": 12, "dead": 1},
                "emergency_services": "HART"}}),
        ),
        (
            "casualty",
            serde_json::json!({"casualty": {"triage": "p1", "tag": "T-1",
                "location": "bay 2", "update": "airway",
                "identifiable": {"name": "A B", "nhs_number": "943 476 5919",
                    "date_of_birth": null, "other": null}}}),
        ),
    ] {
        let report: fieldmesh::gossip::report::Report = serde_json::from_value(json)?;
        write(&dir, name, &report.encode()?)?;
    }
    write(&dir, "text", "bay 4: airway".as_bytes())?;

    // sealed_file: a sealed record under the checks' key and a fast drill vault.
    let dir = seeds.join("sealed_file");
    let key = fieldmesh::crypto::at_rest::Key::from_bytes([9; 32]);
    write(
        &dir,
        "record",
        &fieldmesh::crypto::at_rest::seal(&key, b"record id", &golden),
    )?;
    let (vault, _) = fieldmesh::crypto::at_rest::vault_create(
        b"",
        &fieldmesh::crypto::at_rest::KdfParams::FAST_INSECURE,
        b"contents",
    )?;
    write(&dir, "vault", &vault)?;

    // audit_log: the golden chain, the same with a torn last line, and a torn line
    // followed by the restart's `started` record.
    let dir = seeds.join("audit_log");
    let chain = include_str!("../../proto/vectors/audit-v1.jsonl");
    write(&dir, "chain", chain.as_bytes())?;
    let lines: Vec<&str> = chain.lines().collect();
    let whole: String = lines[..3].iter().map(|l| format!("{l}\n")).collect();
    let torn = &lines[3][..lines[3].len() / 2];
    write(&dir, "torn-tail", format!("{whole}{torn}").as_bytes())?;
    let last: fieldmesh::audit::Record = serde_json::from_str(lines[2])?;
    let restart = fieldmesh::audit::Record::chain(
        &fieldmesh::audit::Fact::new(fieldmesh::audit::Event::Started),
        3,
        last.at_ms + 1,
        &last.hash,
    );
    write(
        &dir,
        "torn-then-restart",
        format!("{whole}{torn}\n{}\n", restart.to_line()).as_bytes(),
    )?;
    Ok(())
}

fn golden_id(bytes: &[u8]) -> [u8; 32] {
    fieldmesh::gossip::envelope::id_of_bytes(bytes).0
}
