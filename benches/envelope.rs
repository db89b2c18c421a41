//! Micro-benchmarks (criterion) of the per-message work on the dissemination path
//! (issue 7): envelope encode, sign, verify, decode, the node's full validation and
//! the gossip id (the duplicate check that runs before any crypto); store insert
//! (one by one and batched), point read and channel range read.
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fieldmesh::gossip::envelope::{ChannelName, Draft, Envelope, Limits, DEFAULT_HOP_LIMIT};
use fieldmesh::gossip::priority::Priority;
use fieldmesh::store::{now_ms, Store};
use libp2p::identity::ed25519;
use std::hint::black_box;
use std::time::Duration;

fn draft(i: u64) -> Draft {
    Draft {
        channel: ChannelName::new("triage").expect("valid"),
        created_at_ms: now_ms() + i,
        ttl: Duration::from_secs(3600),
        hop_limit: DEFAULT_HOP_LIMIT,
        priority: Priority::P1,
        body: vec![b'x'; 512],
    }
}

fn envelope(c: &mut Criterion) {
    let key = ed25519::Keypair::generate();
    let env = Envelope::sign(draft(0), &key).expect("sign");
    let bytes = env.as_bytes().to_vec();
    let mut g = c.benchmark_group("envelope_512B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_sign", |b| {
        b.iter(|| Envelope::sign(black_box(draft(0)), &key))
    });
    g.bench_function("decode_verify", |b| {
        b.iter(|| Envelope::decode(black_box(&bytes), &Limits::default()))
    });
    g.bench_function("check_time", |b| {
        b.iter(|| black_box(&env).check_time(now_ms()))
    });
    g.bench_function("id_of_bytes", |b| {
        b.iter(|| fieldmesh::gossip::envelope::id_of_bytes(black_box(&bytes)))
    });
    // The duplicate check gossipsub runs on every copy before the node sees it.
    g.bench_function("gossip_message_id", |b| {
        b.iter(|| fieldmesh::gossip::message_id(black_box(&bytes)))
    });
    // The signed part alone: everything but the 64-byte signature and the hop byte.
    let signed_len = bytes.len() - 65;
    g.bench_function("sign_only", |b| {
        b.iter(|| key.sign(black_box(&bytes[..signed_len])))
    });
    let sig = key.sign(&bytes[..signed_len]);
    let public = key.public();
    g.bench_function("verify_only", |b| {
        b.iter(|| public.verify(black_box(&bytes[..signed_len]), black_box(&sig)))
    });
    g.bench_function("decode_no_verify", |b| {
        b.iter(|| Envelope::decode_stored(black_box(&bytes)))
    });
    // What a relay encodes: the author's bytes with the hop counter bumped.
    g.bench_function("encode_relay_bytes", |b| {
        b.iter(|| black_box(&env).relay_bytes())
    });
    // The node's validation of a gossiped copy: decode, signature, channel, time.
    let channel = ChannelName::new("triage").expect("valid");
    g.bench_function("validate", |b| {
        b.iter(|| {
            let e = Envelope::decode(black_box(&bytes), &Limits::default())?;
            if e.channel != channel {
                return Err(fieldmesh::gossip::envelope::EnvelopeError::ChannelMismatch);
            }
            e.check_time(now_ms()).map(|()| e)
        })
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    let key = ed25519::Keypair::generate();
    let envs: Vec<Envelope> = (0..10_000)
        .map(|i| Envelope::sign(draft(i), &key).expect("sign"))
        .collect();
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(800));
    g.bench_function("insert_800_one_by_one", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let s = Store::open(dir.path(), fieldmesh::crypto::at_rest::Key::random())
                    .expect("open");
                (dir, s)
            },
            |(_dir, s)| {
                for e in &envs[..800] {
                    s.insert(e).expect("insert");
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(800));
    g.bench_function("insert_batch_800", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let s = Store::open(dir.path(), fieldmesh::crypto::at_rest::Key::random())
                    .expect("open");
                (dir, s)
            },
            |(_dir, s)| s.insert_batch(&envs[..800]).expect("insert"),
            BatchSize::PerIteration,
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), fieldmesh::crypto::at_rest::Key::random()).expect("open");
    for e in &envs {
        s.insert(e).expect("insert");
    }
    let ch = ChannelName::new("triage").expect("valid");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("read_channel_10k", |b| {
        b.iter(|| s.read_channel(&ch, now_ms(), 10_000))
    });
    g.bench_function("index_entries_10k", |b| {
        b.iter(|| s.index_entries(&ch, now_ms()))
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_by_id", |b| {
        b.iter(|| s.get(black_box(&envs[5_000].id)))
    });
    g.bench_function("insert_duplicate", |b| {
        b.iter(|| s.insert(black_box(&envs[5_000])))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = envelope, store
}
criterion_main!(benches);
