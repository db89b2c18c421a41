//! Rosters, key updates and record tags.

use super::*;

// ---- roster ----

#[test]
fn roster_round_trips_and_verifies() {
    let signed = signed_roster(1);
    let bytes = signed.encode();
    assert_eq!(record_kind(&bytes), Some(RecordKind::Roster));
    let back = SignedRoster::decode(&bytes).unwrap();
    assert_eq!(back, signed);
    back.verify(&public(1)).unwrap();
    assert_eq!(hex(&bytes), golden("roster"));
    SignedRoster::decode(&unhex(&golden("roster")))
        .unwrap()
        .verify(&public(1))
        .unwrap();
}

#[test]
fn altered_rosters_are_refused() {
    let bytes = signed_roster(1).encode();
    every_flip_is_refused(&bytes, |b| {
        SignedRoster::decode(b).is_ok_and(|r| r.verify(&public(1)).is_ok())
    });
    let mut edited = signed_roster(1);
    edited.roster.members.push(public(3));
    assert_eq!(edited.verify(&public(1)), Err(TeamError::BadSignature));
}

#[test]
fn a_roster_only_verifies_for_its_admin() {
    assert_eq!(
        signed_roster(1).verify(&public(2)),
        Err(TeamError::AdminMismatch)
    );
    // Someone else signs a roster that names themselves admin.
    let mut r = roster(1);
    r.admin = public(3);
    let usurper = SignedRoster::sign(r, &keypair(3)).unwrap();
    assert_eq!(usurper.verify(&public(1)), Err(TeamError::AdminMismatch));
    // Or one that names the real admin: the signature fails.
    let mut forged = SignedRoster::sign(roster(1), &admin()).unwrap();
    forged.signature = SignedRoster::sign(
        Roster {
            admin: public(3),
            ..roster(1)
        },
        &keypair(3),
    )
    .unwrap()
    .signature;
    assert_eq!(forged.verify(&public(1)), Err(TeamError::BadSignature));
    assert_eq!(
        SignedRoster::sign(roster(1), &keypair(2)),
        Err(TeamError::AdminMismatch)
    );
}

#[test]
fn roster_limits_are_enforced_both_ways() {
    let mut r = roster(1);
    r.members = vec![[7; 32]; MAX_ROSTER_ENTRIES];
    assert!(matches!(
        SignedRoster::sign(r.clone(), &admin()),
        Err(TeamError::TooManyEntries { .. })
    ));
    r.members.pop();
    let ok = SignedRoster::sign(r, &admin()).unwrap();
    assert!(ok.encode().len() < 64 * 1024, "fits one envelope body");
    for name in ["", "a\u{1b}[2J", &"x".repeat(MAX_TEAM_NAME_LEN + 1)] {
        let r = Roster {
            name: name.to_owned(),
            ..roster(1)
        };
        assert_eq!(SignedRoster::sign(r, &admin()), Err(TeamError::BadName));
    }
}

#[test]
fn roster_membership_rules() {
    let r = roster(1);
    assert!(r.is_member(&public(1)), "the admin is always a member");
    assert!(r.is_member(&public(2)));
    assert!(!r.is_member(&public(3)), "removed");
    assert!(!r.is_member(&public(4)));
    let mut both = roster(1);
    both.members.push(public(3));
    assert!(!both.is_member(&public(3)), "removal wins over listing");
}

// ---- key updates ----

#[test]
fn key_update_delivers_the_key_to_members_only() {
    let update = KeyUpdate::new(&admin(), team(), &key(2), &[public(2), public(4)]).unwrap();
    let bytes = update.encode();
    assert_eq!(record_kind(&bytes), Some(RecordKind::KeyUpdate));
    let back = KeyUpdate::decode(&bytes).unwrap();
    assert_eq!(back, update);
    back.verify(&public(1)).unwrap();
    let got = back.open_for(&[2; 32], &public(2), &public(1)).unwrap();
    assert_eq!((got.epoch, got.key), (2, key(2).key));
    assert_eq!(
        back.open_for(&[3; 32], &public(3), &public(1)).unwrap_err(),
        TeamError::NotForMe
    );
    // Someone claiming member 4's box without member 4's key.
    assert_eq!(
        back.open_for(&[3; 32], &public(4), &public(1)).unwrap_err(),
        TeamError::Crypto(crate::crypto::CryptoError::Decrypt)
    );
}

#[test]
fn key_update_from_a_non_admin_is_refused() {
    let forged = KeyUpdate::new(&keypair(3), team(), &key(2), &[public(2)]).unwrap();
    assert_eq!(forged.verify(&public(1)), Err(TeamError::BadSignature));
    assert_eq!(
        forged
            .open_for(&[2; 32], &public(2), &public(1))
            .unwrap_err(),
        TeamError::BadSignature
    );
    // A box sealed by another identity, under a valid admin signature: the DM's
    // sender check catches it.
    let mut update = key_update(&[public(2)]);
    update.boxes[0].sealed = dm::seal_dm(&[3; 32], &public(2), &[0; 36]).unwrap();
    update.signature = record::sign(RecordKind::KeyUpdate, &update_signed(&update), &admin());
    assert_eq!(
        update
            .open_for(&[2; 32], &public(2), &public(1))
            .unwrap_err(),
        TeamError::Crypto(crate::crypto::CryptoError::SenderMismatch)
    );
}

fn update_signed(u: &KeyUpdate) -> Vec<u8> {
    let bytes = u.encode();
    bytes[..bytes.len() - 64].to_vec()
}

#[test]
fn key_box_for_another_epoch_is_refused() {
    let update = KeyUpdate::build(&admin(), team(), &key(2), &[public(2)], |s, r, p| {
        let mut other = p.to_vec();
        other[32..].copy_from_slice(&7u32.to_le_bytes());
        dm::seal_dm(s, r, &other)
    })
    .unwrap();
    assert_eq!(
        update
            .open_for(&[2; 32], &public(2), &public(1))
            .unwrap_err(),
        TeamError::EpochMismatch {
            expected: 2,
            got: 7
        }
    );
}

#[test]
fn altered_key_updates_are_refused() {
    let bytes = key_update(&[public(2)]).encode();
    every_flip_is_refused(&bytes, |b| {
        KeyUpdate::decode(b).is_ok_and(|u| u.open_for(&[2; 32], &public(2), &public(1)).is_ok())
    });
    assert!(matches!(
        KeyUpdate::new(
            &admin(),
            team(),
            &key(2),
            &vec![public(2); MAX_ROSTER_ENTRIES + 1]
        ),
        Err(TeamError::TooManyEntries { .. })
    ));
    let mut bad_point = [0u8; 32];
    bad_point[0] = 2;
    assert_eq!(
        KeyUpdate::new(&admin(), team(), &key(2), &[bad_point]).unwrap_err(),
        TeamError::Crypto(crate::crypto::CryptoError::BadPublicKey)
    );
}

#[test]
fn key_update_golden_vector_matches_proto() {
    let update = key_update(&[public(2)]);
    assert_eq!(hex(&update.encode()), golden("keys"));
    let back = KeyUpdate::decode(&unhex(&golden("keys"))).unwrap();
    assert_eq!(
        back.open_for(&[2; 32], &public(2), &public(1)).unwrap().key,
        key(1).key
    );
}

#[test]
fn records_are_not_confused_with_each_other() {
    let roster = signed_roster(1).encode();
    let cert = invite().join_cert(&keypair(2), NOW).encode();
    assert_eq!(
        JoinCert::decode(&roster).unwrap_err(),
        TeamError::UnexpectedRecord { tag: 0x11 }
    );
    assert_eq!(
        SignedRoster::decode(&cert).unwrap_err(),
        TeamError::UnexpectedRecord { tag: 0x14 }
    );
    assert_eq!(
        KeyUpdate::decode(&invite().encode()).unwrap_err(),
        TeamError::UnexpectedRecord { tag: 0x13 }
    );
    assert_eq!(record_kind(&[BODY_VERSION]), None);
    assert_eq!(record_kind(&[]), None);
    assert_eq!(SignedRoster::decode(&[0x11]), Err(TeamError::Malformed));
}
