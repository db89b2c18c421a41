use super::*;
use crate::wire;
use proptest::prelude::*;
use std::collections::HashSet;

fn info(n: u64) -> ItemInfo {
    let id = *blake3::hash(&n.to_le_bytes()).as_bytes();
    // Timestamps collide in groups of three to exercise id-prefix bounds.
    ItemInfo {
        ts: 1_000_000 + n / 3,
        id,
        priority: (n % 4) as u8 + 1,
    }
}

fn sorted(mut v: Vec<ItemInfo>) -> Vec<ItemInfo> {
    v.sort_by_key(ItemInfo::item);
    v
}

/// Runs a full reconciliation; returns (need, have, bytes exchanged, rounds).
fn reconcile(
    client: &[ItemInfo],
    server: &[ItemInfo],
) -> (HashSet<[u8; 32]>, HashSet<[u8; 32]>, usize, usize) {
    reconcile_with(Reconciler::new(client.to_vec()), server)
}

/// Runs `r` to the end against `server`, as [`reconcile`].
fn reconcile_with(
    mut r: Reconciler,
    server: &[ItemInfo],
) -> (HashSet<[u8; 32]>, HashSet<[u8; 32]>, usize, usize) {
    let mut bytes = 0;
    let mut rounds = 0;
    while let Some(ranges) = r.next_request() {
        rounds += 1;
        assert!(rounds < 64, "reconciliation does not terminate");
        let req = SyncRequest::Reconcile {
            channel: "triage".into(),
            ranges: ranges.clone(),
        };
        bytes += wire::encode(&req).unwrap().len();
        let replies = respond(server, &ranges);
        bytes += wire::encode(&SyncResponse::Reconcile(replies.clone()))
            .unwrap()
            .len();
        r.on_replies(replies).unwrap();
    }
    let mut need: HashSet<[u8; 32]> = r.need.iter().map(|i| i.id).collect();
    for (lower, upper) in &r.need_ranges {
        need.extend(
            slice(server, ItemInfo::item, lower.as_ref(), upper)
                .iter()
                .map(|i| i.id),
        );
    }
    let have = r.have.iter().map(|i| i.id).collect();
    (need, have, bytes, rounds)
}

#[test]
fn equal_sets_need_one_round_trip() {
    let set = sorted((0..10_000).map(info).collect());
    let (need, have, bytes, rounds) = reconcile(&set, &set);
    assert!(need.is_empty() && have.is_empty());
    assert_eq!(rounds, 1);
    assert!(bytes < 200, "{bytes}");
}

#[test]
fn finds_exactly_the_differences_both_ways() {
    let all: Vec<ItemInfo> = (0..5_000).map(info).collect();
    let client = sorted(all.iter().copied().filter(|i| i.id[0] % 7 != 0).collect());
    let server = sorted(all.iter().copied().filter(|i| i.id[0] % 5 != 0).collect());
    let (need, have, _, _) = reconcile(&client, &server);
    let c: HashSet<_> = client.iter().map(|i| i.id).collect();
    let s: HashSet<_> = server.iter().map(|i| i.id).collect();
    assert_eq!(need, s.difference(&c).copied().collect());
    assert_eq!(have, c.difference(&s).copied().collect());
}

#[test]
fn cost_grows_with_differences_times_log_n_not_with_n() {
    let naive = |n: usize| n * 32; // sending every id once
    let diff_cost = |n: u64, d: u64| {
        let server = sorted((0..n).map(info).collect());
        // Client lacks d items spread over the range, and has d of its own.
        let client = sorted(
            (0..n)
                .filter(|k| k % (n / d) != 0)
                .chain(n..n + d)
                .map(info)
                .collect(),
        );
        let (need, have, bytes, _) = reconcile(&client, &server);
        assert_eq!((need.len() as u64, have.len() as u64), (d, d));
        bytes
    };
    let b10k = diff_cost(10_000, 10);
    let b100k = diff_cost(100_000, 10);
    let b10k_100 = diff_cost(10_000, 100);
    // Far below the O(n) of sending all ids: under 10 % here.
    eprintln!("10 diffs in 10k: {b10k} B, in 100k: {b100k} B; 100 diffs in 10k: {b10k_100} B");
    assert!(
        b10k * 10 < naive(10_000),
        "{b10k} bytes for 10 differences in 10 000"
    );
    // Ten times the items costs about one more tree level, not ten times the bytes.
    assert!(b100k < b10k * 2, "{b100k} vs {b10k}");
    // Ten times the differences costs at most about ten times the bytes.
    assert!(b10k_100 < b10k * 12, "{b10k_100} vs {b10k}");
}

#[test]
fn below_a_bound_only_older_items_are_compared() {
    let all: Vec<ItemInfo> = (0..3_000).map(info).collect();
    let client = sorted(all.iter().copied().filter(|i| i.id[0] % 7 != 0).collect());
    let server = sorted(all.iter().copied().filter(|i| i.id[0] % 5 != 0).collect());
    // A bound inside a group of equal timestamps, so the id prefix decides too.
    let upper = Bound {
        ts: info(1_500).ts,
        id_prefix: vec![0x80],
    };
    let below = |i: &ItemInfo| upper.above(&i.item());
    let (need, have, _, _) =
        reconcile_with(Reconciler::below(client.clone(), upper.clone()), &server);
    let c: HashSet<_> = client.iter().filter(|i| below(i)).map(|i| i.id).collect();
    let s: HashSet<_> = server.iter().filter(|i| below(i)).map(|i| i.id).collect();
    assert!(!need.is_empty() && !have.is_empty());
    assert_eq!(need, s.difference(&c).copied().collect());
    assert_eq!(have, c.difference(&s).copied().collect());
    // Differences above the bound exist and are left alone.
    let all_need = reconcile(&client, &server).0;
    assert!(all_need.len() > need.len());
}

#[test]
fn empty_sides_transfer_everything() {
    let set = sorted((0..3_000).map(info).collect());
    let (need, have, bytes, rounds) = reconcile(&[], &set);
    assert_eq!((need.len(), have.len()), (3_000, 0));
    assert_eq!(rounds, 1, "a fresh node asks for the whole range at once");
    assert!(bytes < 200, "{bytes}");
    let (need, have, _, _) = reconcile(&set, &[]);
    assert_eq!((need.len(), have.len()), (0, 3_000));
}

#[test]
fn reply_count_mismatch_is_a_protocol_violation() {
    let mut r = Reconciler::new(vec![]);
    r.next_request().unwrap();
    assert_eq!(r.on_replies(vec![]), Err(ProtocolViolation));
}

#[test]
fn transfer_order_is_priority_then_newest() {
    let mut v = vec![
        ItemInfo {
            ts: 1,
            id: [1; 32],
            priority: 3,
        },
        ItemInfo {
            ts: 5,
            id: [2; 32],
            priority: 1,
        },
        ItemInfo {
            ts: 9,
            id: [3; 32],
            priority: 3,
        },
        ItemInfo {
            ts: 2,
            id: [4; 32],
            priority: 1,
        },
    ];
    transfer_order(&mut v);
    let order: Vec<u8> = v.iter().map(|i| i.id[0]).collect();
    assert_eq!(order, [2, 4, 3, 1]);
}

proptest! {
    #[test]
    fn any_two_sets_converge(a in proptest::collection::hash_set(0u64..2_000, 0..400),
                             b in proptest::collection::hash_set(0u64..2_000, 0..400)) {
        let client = sorted(a.iter().copied().map(info).collect());
        let server = sorted(b.iter().copied().map(info).collect());
        let (need, have, _, _) = reconcile(&client, &server);
        let c: HashSet<_> = client.iter().map(|i| i.id).collect();
        let s: HashSet<_> = server.iter().map(|i| i.id).collect();
        prop_assert_eq!(need, s.difference(&c).copied().collect::<HashSet<_>>());
        prop_assert_eq!(have, c.difference(&s).copied().collect::<HashSet<_>>());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The worked examples of `proto/sync.md` §9: a fresh node's first reconcile request
/// for `triage` and a peer's answer that it holds three messages there.
#[test]
fn golden_sync_vectors_match_proto() {
    let request = SyncRequest::Reconcile {
        channel: "triage".into(),
        ranges: vec![RangeFp {
            lower: None,
            upper: Bound::max(),
            fingerprint: fingerprint(&[]),
            count: 0,
        }],
    };
    let golden = include_str!("../../proto/vectors/sync-reconcile-request.hex");
    assert_eq!(
        hex(&wire::encode(&request).unwrap()),
        golden.split_whitespace().collect::<String>()
    );
    // Fingerprints of §3: the empty set, one item (the golden envelope's id), and two
    // items whose id sum wraps past 2^128.
    let golden_id: [u8; 32] =
        unhex("d16fa1331e19496de66bdaf2bf92e24b40fd0dead6221d2a3d839d1f058123d2")
            .try_into()
            .unwrap();
    let one = Item {
        ts: 1_800_000_000_000,
        id: MessageId(golden_id),
    };
    let ff = Item {
        ts: 1_800_000_000_001,
        id: MessageId([0xff; 32]),
    };
    assert_eq!(hex(&fingerprint(&[]).0), "db27f030ad8e467c098bebb9e7c39e0a");
    assert_eq!(
        hex(&fingerprint(&[one]).0),
        "a9b008c501cb332e1f2f0241747f9684"
    );
    assert_eq!(
        hex(&fingerprint(&[one, ff]).0),
        "1869c86c55c14836faa356c3883b0f37"
    );
    let response = SyncResponse::Reconcile(vec![RangeReply::All { count: 3 }]);
    let golden = include_str!("../../proto/vectors/sync-reconcile-response.hex");
    assert_eq!(
        hex(&wire::encode(&response).unwrap()),
        golden.split_whitespace().collect::<String>()
    );
}
