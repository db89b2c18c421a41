//! Micro-benchmarks (criterion): envelope encode/sign, decode+verify, time
//! validation, and store insert / channel range read.
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
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = envelope, store
}
criterion_main!(benches);
