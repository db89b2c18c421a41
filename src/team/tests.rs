use super::*;
use crate::crypto::dm;
use libp2p::identity::ed25519;
use proptest::prelude::*;

// Invites, join certificates, the admission rule.
mod invites;
// Rosters, key updates, record tags.
mod records;

const NOW: u64 = 1_800_000_000_000;
const EXPIRES: u64 = NOW + 3_600_000;
const NAME: &str = "St Mary's A&E";

fn keypair(seed: u8) -> ed25519::Keypair {
    ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes([seed; 32]).unwrap())
}

fn public(seed: u8) -> [u8; 32] {
    keypair(seed).public().to_bytes()
}

/// The admin is identity 1, a member 2, an outsider 3.
fn admin() -> ed25519::Keypair {
    keypair(1)
}

fn team() -> TeamId {
    TeamId(std::array::from_fn(|i| i as u8))
}

fn key(epoch: u32) -> TeamKey {
    TeamKey {
        epoch,
        key: [0x40 + epoch as u8; 32],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn golden(file: &str) -> String {
    let text = match file {
        "body" => include_str!("../../proto/vectors/team-body-v1.hex"),
        "roster" => include_str!("../../proto/vectors/team-roster-v1.hex"),
        "keys" => include_str!("../../proto/vectors/team-keys-v1.hex"),
        "invite" => include_str!("../../proto/vectors/team-invite-v1.hex"),
        "join" => include_str!("../../proto/vectors/team-join-v1.hex"),
        _ => unreachable!(),
    };
    text.split_whitespace().collect()
}

fn roster(epoch: u32) -> Roster {
    Roster {
        team: team(),
        name: NAME.to_owned(),
        admin: public(1),
        epoch,
        members: vec![public(2)],
        removed: vec![public(3)],
        issued_at_ms: NOW,
    }
}

fn signed_roster(epoch: u32) -> SignedRoster {
    SignedRoster::sign(roster(epoch), &admin()).unwrap()
}

fn invite() -> Invite {
    Invite::issue_with_id(&admin(), team(), NAME, &key(1), EXPIRES, [0xa5; 16]).unwrap()
}

fn key_update(members: &[[u8; 32]]) -> KeyUpdate {
    KeyUpdate::build(&admin(), team(), &key(1), members, |s, r, p| {
        dm::seal_dm_fixed_ephemeral(s, r, p, &[5; 32])
    })
    .unwrap()
}

/// Flips each byte in turn and checks that `accept` refuses every result.
fn every_flip_is_refused(bytes: &[u8], accept: impl Fn(&[u8]) -> bool) {
    for at in 0..bytes.len() {
        let mut bad = bytes.to_vec();
        bad[at] ^= 0x01;
        assert!(!accept(&bad), "flipped byte {at} was accepted");
    }
}

// ---- ids and keys ----

#[test]
fn team_id_text_round_trips() {
    let id = team();
    assert_eq!(id.to_string(), "000102030405060708090a0b0c0d0e0f");
    assert_eq!(id.to_string().parse::<TeamId>().unwrap(), id);
    assert_eq!(
        "000102030405060708090A0B0C0D0E0F"
            .parse::<TeamId>()
            .unwrap(),
        id
    );
    for bad in [
        "",
        "00",
        "zz0102030405060708090a0b0c0d0e0f",
        "é00102030405060708090a0b0c0d0e",
    ] {
        assert_eq!(bad.parse::<TeamId>(), Err(ParseTeamIdError));
    }
    assert_ne!(TeamId::random(), TeamId::random());
}

#[test]
fn debug_output_hides_key_material() {
    assert_eq!(format!("{:?}", key(1)), "TeamKey { epoch: 1, .. }");
    let shown = format!("{:?}", invite());
    assert!(!shown.contains("65") && !shown.contains("key"), "{shown}");
}

// ---- bodies ----

#[test]
fn body_round_trips_and_names_its_epoch() {
    let body = encrypt_body(&key(1), &team(), "triage", &public(1), b"P1 bay 4").unwrap();
    assert_eq!(body[0], BODY_VERSION);
    assert_eq!(body_epoch(&body).unwrap(), 1);
    let keys = [key(0), key(1)];
    assert_eq!(
        decrypt_body(&keys, &team(), "triage", &public(1), &body).unwrap(),
        b"P1 bay 4"
    );
}

#[test]
fn body_is_bound_to_team_channel_and_author() {
    let body = encrypt_body(&key(1), &team(), "triage", &public(1), b"x").unwrap();
    let keys = [key(1)];
    let other_team = TeamId([9; 16]);
    assert_eq!(
        decrypt_body(&keys, &other_team, "triage", &public(1), &body),
        Err(TeamError::Decrypt)
    );
    assert_eq!(
        decrypt_body(&keys, &team(), "general", &public(1), &body),
        Err(TeamError::Decrypt)
    );
    assert_eq!(
        decrypt_body(&keys, &team(), "triage", &public(2), &body),
        Err(TeamError::Decrypt)
    );
}

#[test]
fn a_removed_member_with_only_the_old_key_cannot_read_after_rotation() {
    let old = encrypt_body(&key(1), &team(), "triage", &public(1), b"before").unwrap();
    let new = encrypt_body(&key(2), &team(), "triage", &public(1), b"after").unwrap();
    let removed_holds = [key(1)];
    assert_eq!(
        decrypt_body(&removed_holds, &team(), "triage", &public(1), &old).unwrap(),
        b"before"
    );
    assert_eq!(
        decrypt_body(&removed_holds, &team(), "triage", &public(1), &new),
        Err(TeamError::UnknownEpoch { epoch: 2 })
    );
    // Same epoch number, different key: authentication fails.
    let forged = TeamKey {
        epoch: 2,
        key: [0; 32],
    };
    assert_eq!(
        decrypt_body(&[forged], &team(), "triage", &public(1), &new),
        Err(TeamError::Decrypt)
    );
}

#[test]
fn altered_bodies_are_refused() {
    let body = encrypt_body(&key(1), &team(), "triage", &public(1), b"abc").unwrap();
    let keys = [key(1)];
    every_flip_is_refused(&body, |b| {
        decrypt_body(&keys, &team(), "triage", &public(1), b).is_ok()
    });
    let mut v2 = body.clone();
    v2[0] = 2;
    assert_eq!(
        body_epoch(&v2),
        Err(TeamError::UnknownVersion { version: 2 })
    );
    assert_eq!(body_epoch(&[]), Err(TeamError::Malformed));
    assert_eq!(
        body_epoch(&body[..body.len() - 1]),
        Err(TeamError::Malformed)
    );
}

#[test]
fn body_golden_vector_matches_proto() {
    let body = body::encrypt_body_with_nonce(
        &key(1),
        &team(),
        "triage",
        &public(1),
        b"P1 bay 4",
        &[0x24; 12],
    )
    .unwrap();
    assert_eq!(hex(&body), golden("body"));
    assert_eq!(
        decrypt_body(
            &[key(1)],
            &team(),
            "triage",
            &public(1),
            &unhex(&golden("body"))
        )
        .unwrap(),
        b"P1 bay 4"
    );
}

// ---- properties ----

proptest! {
    #[test]
    fn any_body_round_trips(pt in proptest::collection::vec(any::<u8>(), 0..1024),
                            channel in "[a-z0-9._-]{1,64}",
                            k in any::<[u8; 32]>(), epoch in any::<u32>()) {
        let key = TeamKey { epoch, key: k };
        let body = encrypt_body(&key, &team(), &channel, &public(1), &pt).unwrap();
        prop_assert_eq!(body_epoch(&body).unwrap(), epoch);
        prop_assert_eq!(decrypt_body(&[key], &team(), &channel, &public(1), &body).unwrap(), pt);
    }

    #[test]
    fn any_roster_round_trips(name in "[^\\p{Cc}]{1,16}",
                              members in proptest::collection::vec(any::<[u8; 32]>(), 0..20),
                              removed in proptest::collection::vec(any::<[u8; 32]>(), 0..5),
                              epoch in any::<u32>(), issued in any::<u64>()) {
        let r = Roster { team: team(), name, admin: public(1), epoch, members, removed,
                         issued_at_ms: issued };
        let signed = SignedRoster::sign(r, &admin()).unwrap();
        let back = SignedRoster::decode(&signed.encode()).unwrap();
        prop_assert_eq!(&back, &signed);
        prop_assert!(back.verify(&public(1)).is_ok());
    }

    #[test]
    fn any_invite_and_cert_round_trip(name in "[^\\p{Cc}]{1,16}", expires in NOW..u64::MAX,
                                      id in any::<[u8; 16]>(), joined in 0..NOW) {
        let inv = Invite::issue_with_id(&admin(), team(), &name, &key(3), expires, id).unwrap();
        let back = Invite::from_code(&inv.to_code(), NOW).unwrap();
        prop_assert_eq!(back.encode(), inv.encode());
        let cert = back.join_cert(&keypair(2), joined);
        let cert = JoinCert::decode(&cert.encode()).unwrap();
        prop_assert!(cert.verify(&name, &public(1), &key(3).key).is_ok());
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), tag in 0x11u8..=0x14) {
        let mut tagged = vec![tag];
        tagged.extend_from_slice(&bytes);
        let _ = SignedRoster::decode(&tagged);
        let _ = KeyUpdate::decode(&tagged);
        let _ = Invite::decode(&tagged);
        let _ = JoinCert::decode(&tagged);
        let mut body = vec![BODY_VERSION];
        body.extend_from_slice(&bytes);
        let _ = decrypt_body(&[key(1)], &team(), "triage", &public(1), &body);
    }

    #[test]
    fn from_code_never_panics(text in "\\PC{0,600}") {
        let _ = Invite::from_code(&text, NOW);
        let _ = Invite::from_code(&format!("FM1-{text}"), NOW);
    }
}
