use super::*;

const NOW: u64 = 1_800_000_000_000;

fn key() -> ed25519::Keypair {
    ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes([7u8; 32]).unwrap())
}

fn draft(body: &[u8]) -> Draft {
    Draft {
        channel: ChannelName::new("triage").unwrap(),
        created_at_ms: NOW,
        ttl: Duration::from_secs(60),
        hop_limit: DEFAULT_HOP_LIMIT,
        priority: Priority::P1,
        body: body.to_vec(),
    }
}

fn signed(body: &[u8]) -> Envelope {
    Envelope::sign(draft(body), &key()).unwrap()
}

#[test]
fn round_trips_through_bytes() {
    let env = signed(b"bay 4 needs oxygen");
    let back = Envelope::decode(env.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(back, env);
    assert_eq!(back.body, b"bay 4 needs oxygen");
    assert_eq!(back.priority, Priority::P1);
    assert_eq!(back.id, id_of_bytes(env.as_bytes()));
    assert_eq!(env.as_bytes()[0], VERSION);
}

#[test]
fn golden_vector_matches_proto() {
    let env = signed(b"hi");
    let hex: String = env.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let golden = include_str!("../../../proto/vectors/envelope-v1.hex");
    assert_eq!(hex, golden.split_whitespace().collect::<String>());
    let id_golden = include_str!("../../../proto/vectors/envelope-v1.id");
    assert_eq!(env.id.to_hex(), id_golden.trim());
}

#[test]
fn id_ignores_the_hop_counter_only() {
    let env = signed(b"x");
    let mut bytes = env.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = 3;
    assert_eq!(id_of_bytes(&bytes), env.id);
    bytes[last - 1] ^= 1; // a signature byte
    assert_ne!(id_of_bytes(&bytes), env.id);
}

#[test]
fn rejects_bad_signature() {
    let env = signed(b"x");
    let mut bytes = env.as_bytes().to_vec();
    let body_at = bytes.len() - 65 - 1;
    bytes[body_at] ^= 0xff;
    assert_eq!(
        Envelope::decode(&bytes, &Limits::default()),
        Err(EnvelopeError::BadSignature)
    );
}

#[test]
fn batch_decode_refuses_exactly_the_bad_signatures() {
    let good: Vec<Vec<u8>> = (0..5).map(|i| signed(&[i]).as_bytes().to_vec()).collect();
    let all_ok = Envelope::decode_batch(&good, &Limits::default());
    assert!(all_ok.iter().all(Result::is_ok));
    let mut mixed = good.clone();
    let n = mixed[2].len();
    mixed[2][n - 10] ^= 1; // a signature byte
    mixed[4] = vec![1, 2, 3];
    let got = Envelope::decode_batch(&mixed, &Limits::default());
    assert!(got[0].is_ok() && got[1].is_ok() && got[3].is_ok());
    assert_eq!(got[2], Err(EnvelopeError::BadSignature));
    assert!(matches!(got[4], Err(EnvelopeError::Truncated { .. })));
    assert_eq!(got[3].as_ref().unwrap().as_bytes(), &good[3][..]);
}

#[test]
fn rejects_unknown_version() {
    let mut bytes = signed(b"x").as_bytes().to_vec();
    bytes[0] = 2;
    assert_eq!(
        Envelope::decode(&bytes, &Limits::default()),
        Err(EnvelopeError::UnknownVersion { version: 2 })
    );
}

#[test]
fn rejects_oversize_body() {
    let env = signed(&[b'a'; 2000]);
    let limits = Limits {
        max_body_bytes: 1000,
    };
    assert!(matches!(
        Envelope::decode(env.as_bytes(), &limits),
        Err(EnvelopeError::TooLarge { max: 1000, .. })
    ));
    let limits = Limits {
        max_body_bytes: 2000,
    };
    assert!(Envelope::decode(env.as_bytes(), &limits).is_ok());
}

#[test]
fn rejects_exhausted_hop_limit() {
    let mut d = draft(b"x");
    d.hop_limit = 2;
    let env = Envelope::sign(d, &key()).unwrap();
    let mut bytes = env.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = 1;
    assert!(Envelope::decode(&bytes, &Limits::default()).is_ok());
    bytes[last] = 2;
    assert_eq!(
        Envelope::decode(&bytes, &Limits::default()),
        Err(EnvelopeError::HopLimitExhausted {
            hops: 2,
            hop_limit: 2
        })
    );
}

#[test]
fn relaying_from_a_store_counts_a_hop_until_the_limit() {
    let mut d = draft(b"x");
    d.hop_limit = 2;
    let env = Envelope::sign(d, &key()).unwrap();
    let once = Envelope::decode(&env.relay_bytes().unwrap(), &Limits::default()).unwrap();
    assert_eq!((once.hops, once.id), (1, env.id));
    assert_eq!(
        once.relay_bytes(),
        None,
        "a second relay would exhaust the limit"
    );
}

#[test]
fn relay_raw_matches_relay_bytes() {
    for hop_limit in [1u8, 2, 16] {
        let mut d = draft(b"some body");
        d.hop_limit = hop_limit;
        let env = Envelope::sign(d, &key()).unwrap();
        assert_eq!(relay_raw(env.as_bytes()), env.relay_bytes());
    }
    assert_eq!(relay_raw(&[1, 2, 3]), None);
    assert_eq!(relay_raw(&[]), None);
}

#[test]
fn rejects_expired_and_future_messages() {
    let env = signed(b"x");
    assert!(env.check_time(NOW).is_ok());
    assert!(env.check_time(NOW + 59_999).is_ok());
    assert_eq!(
        env.check_time(NOW + 60_000),
        Err(EnvelopeError::Expired {
            expires_at_ms: NOW + 60_000,
            now_ms: NOW + 60_000
        })
    );
    assert!(
        env.check_time(NOW - 30_000).is_ok(),
        "within skew allowance"
    );
    assert_eq!(
        env.check_time(NOW - 30_001),
        Err(EnvelopeError::FromFuture { ahead_ms: 30_001 })
    );
}

#[test]
fn rejects_bad_ttl_priority_and_channel_even_when_signed() {
    // Sign hand-built signed parts so only the rule under test fails.
    let k = key();
    let make = |ttl_ms: u64, priority: u8, channel: &str| {
        let part = SignedPart {
            version: VERSION,
            author: k.public().to_bytes(),
            channel: channel.into(),
            created_at_ms: NOW,
            ttl_ms,
            hop_limit: 4,
            priority,
            body: vec![],
        };
        let mut bytes = wire::encode(&part).unwrap();
        bytes.extend_from_slice(&k.sign(&signing_input(&bytes)));
        bytes.push(0);
        Envelope::decode(&bytes, &Limits::default())
    };
    assert!(make(1000, 1, "ok").is_ok());
    assert_eq!(make(0, 1, "ok"), Err(EnvelopeError::BadTtl { ttl_ms: 0 }));
    assert!(matches!(
        make(u64::MAX, 1, "ok"),
        Err(EnvelopeError::BadTtl { .. })
    ));
    assert_eq!(
        make(1000, 9, "ok"),
        Err(EnvelopeError::BadPriority { byte: 9 })
    );
    assert_eq!(make(1000, 1, "Bad Name"), Err(EnvelopeError::BadChannel));
}

#[test]
fn garbage_is_a_typed_error() {
    let cases: [&[u8]; 4] = [&[], &[1], &[1; 10], &[9; 100]];
    for bytes in cases {
        assert!(Envelope::decode(bytes, &Limits::default()).is_err());
    }
    let mut huge_len = vec![1u8; 100];
    huge_len[33..41].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        Envelope::decode(&huge_len, &Limits::default()),
        Err(EnvelopeError::Malformed)
    );
}

#[test]
fn message_id_hex_round_trips() {
    let id = signed(b"x").id;
    assert_eq!(id.to_hex().parse::<MessageId>().unwrap(), id);
    assert!("zz".parse::<MessageId>().is_err());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_draft_round_trips(body in proptest::collection::vec(any::<u8>(), 0..512),
                                 ttl in 1u64..1_000_000, prio in 1u8..=4, hop_limit in 1u8..=255) {
            let mut d = draft(&body);
            d.ttl = Duration::from_millis(ttl);
            d.priority = Priority::from_wire(prio).unwrap();
            d.hop_limit = hop_limit;
            let env = Envelope::sign(d, &key()).unwrap();
            let back = Envelope::decode(env.as_bytes(), &Limits::default()).unwrap();
            prop_assert_eq!(back, env);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            // Any outcome but a panic is fine; an accepted envelope keeps its exact bytes.
            if let Ok(env) = Envelope::decode(&bytes, &Limits::default()) {
                prop_assert_eq!(env.as_bytes(), &bytes[..]);
            }
        }
    }
}
