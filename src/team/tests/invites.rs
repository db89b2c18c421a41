//! Invites, join certificates and the admission rule.

use super::*;

// ---- invites ----

#[test]
fn invite_code_round_trips() {
    let code = invite().to_code();
    assert!(code.starts_with("FM1-"));
    assert!(code.len() < 400, "{} characters", code.len());
    assert!(code[4..]
        .bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    let back = Invite::from_code(&code, NOW).unwrap();
    assert_eq!(back.encode(), invite().encode());
    assert_eq!(back.team_key().key, key(1).key);
    assert_eq!(hex(&back.encode()), golden("invite"));
}

#[test]
fn invite_code_tolerates_whitespace_and_lower_case() {
    let code = invite().to_code();
    let (a, b) = code.split_at(40);
    let messy = format!("  \n{}\n {}\t\n", a.to_lowercase(), b);
    assert_eq!(
        Invite::from_code(&messy, NOW).unwrap().encode(),
        invite().encode()
    );
}

#[test]
fn malformed_invite_codes_are_refused() {
    let code = invite().to_code();
    let cases: Vec<(String, &str)> = vec![
        (code.replacen("FM1-", "FM2-", 1), "prefix"),
        (code[4..].to_owned(), "prefix"),
        (format!("{code}1"), "base32"),
        (format!("{code}AA"), "base32"),
        (format!("{code}A"), "encoding"),
        (code[..code.len() - 8].to_owned(), "encoding"),
        (
            format!("FM1-{}", data_encoding::BASE32_NOPAD.encode(b"junk")),
            "encoding",
        ),
        ("x".repeat(MAX_CODE_LEN + 1), "too long"),
    ];
    for (bad, what) in cases {
        assert_eq!(
            Invite::from_code(&bad, NOW).unwrap_err(),
            InviteError::Malformed { what },
            "{bad}"
        );
    }
}

#[test]
fn tampered_invites_are_refused() {
    let bytes = invite().encode();
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let code = format!("FM1-{}", data_encoding::BASE32_NOPAD.encode(&bad));
        let err = Invite::from_code(&code, NOW).unwrap_err();
        assert!(
            matches!(
                err,
                InviteError::BadSignature | InviteError::Malformed { .. }
            ),
            "byte {at}: {err:?}"
        );
    }
    // A field change that still decodes is a signature failure, not malformed.
    let mut longer = invite();
    longer.expires_at_ms += 1;
    assert_eq!(
        Invite::from_code(&longer.to_code(), NOW).unwrap_err(),
        InviteError::BadSignature
    );
}

#[test]
fn expired_invites_are_refused() {
    let code = invite().to_code();
    assert!(
        Invite::from_code(&code, EXPIRES).is_ok(),
        "expiry is inclusive"
    );
    assert_eq!(
        Invite::from_code(&code, EXPIRES + 1).unwrap_err(),
        InviteError::Expired {
            expired_at_ms: EXPIRES
        }
    );
}

#[test]
fn qr_text_renders_a_square_of_half_blocks() {
    let qr = qr_text(&invite().to_code()).unwrap();
    let lines: Vec<&str> = qr.lines().collect();
    let width = lines[0].chars().count();
    assert!(lines.iter().all(|l| l.chars().count() == width));
    assert_eq!(lines.len(), width.div_ceil(2), "two modules per line");
    assert!(width <= 80, "fits an 80-column terminal: {width}");
    assert!(qr
        .chars()
        .all(|c| " \u{2580}\u{2584}\u{2588}\n".contains(c)));
    assert_eq!(qr_text(&"A".repeat(5000)), Err(InviteError::TooLongForQr));
}

// ---- join certificates ----

#[test]
fn join_cert_round_trips_and_verifies_without_the_admin() {
    let cert = invite().join_cert(&keypair(2), NOW);
    let bytes = cert.encode();
    assert_eq!(record_kind(&bytes), Some(RecordKind::JoinCert));
    let back = JoinCert::decode(&bytes).unwrap();
    assert_eq!(back, cert);
    back.verify(NAME, &public(1), &key(1).key).unwrap();
    assert_eq!(hex(&bytes), golden("join"));
    JoinCert::decode(&unhex(&golden("join")))
        .unwrap()
        .verify(NAME, &public(1), &key(1).key)
        .unwrap();
}

#[test]
fn join_cert_needs_the_right_team_knowledge() {
    let cert = invite().join_cert(&keypair(2), NOW);
    assert_eq!(
        cert.verify("Other", &public(1), &key(1).key),
        Err(TeamError::BadInviteSignature)
    );
    assert_eq!(
        cert.verify(NAME, &public(3), &key(1).key),
        Err(TeamError::BadInviteSignature)
    );
    assert_eq!(
        cert.verify(NAME, &public(1), &key(2).key),
        Err(TeamError::BadInviteSignature)
    );
}

#[test]
fn join_cert_after_expiry_is_refused() {
    let late = invite().join_cert(&keypair(2), EXPIRES + 1);
    assert_eq!(
        late.verify(NAME, &public(1), &key(1).key),
        Err(TeamError::JoinedAfterExpiry {
            joined_at_ms: EXPIRES + 1,
            expires_at_ms: EXPIRES
        })
    );
    invite()
        .join_cert(&keypair(2), EXPIRES)
        .verify(NAME, &public(1), &key(1).key)
        .unwrap();
}

#[test]
fn altered_join_certs_are_refused() {
    let bytes = invite().join_cert(&keypair(2), NOW).encode();
    every_flip_is_refused(&bytes, |b| {
        JoinCert::decode(b).is_ok_and(|c| c.verify(NAME, &public(1), &key(1).key).is_ok())
    });
    // Someone else claims the certificate as theirs.
    let mut stolen = JoinCert::decode(&bytes).unwrap();
    stolen.member = public(3);
    assert_eq!(
        stolen.verify(NAME, &public(1), &key(1).key),
        Err(TeamError::BadSignature)
    );
    // Someone else makes their own certificate from the same invite signature but
    // extends the expiry: the invite signature breaks.
    let mut extended = invite();
    extended.expires_at_ms = EXPIRES + 1_000_000;
    let cert = extended.join_cert(&keypair(3), EXPIRES + 1);
    assert_eq!(
        cert.verify(NAME, &public(1), &key(1).key),
        Err(TeamError::BadInviteSignature)
    );
}

// ---- membership ----

#[test]
fn admission_by_roster_admin_and_certificate() {
    let mut m = Membership::new(signed_roster(1), &public(1)).unwrap();
    assert!(m.admits(&public(1)) && m.admits(&public(2)));
    assert!(!m.admits(&public(4)));
    let cert = invite().join_cert(&keypair(4), NOW);
    assert_eq!(m.add_cert(cert.clone(), &key(1).key), Ok(true));
    assert_eq!(m.add_cert(cert, &key(1).key), Ok(false), "duplicate");
    assert!(m.admits(&public(4)));
    assert_eq!(m.certs().len(), 1);
    // A rostered member's certificate adds nothing.
    assert_eq!(
        m.add_cert(invite().join_cert(&keypair(2), NOW), &key(1).key),
        Ok(false)
    );
}

#[test]
fn removal_beats_a_certificate() {
    let mut m = Membership::new(signed_roster(1), &public(1)).unwrap();
    // Identity 3 is on the removed list but still holds the invite code.
    let cert = invite().join_cert(&keypair(3), NOW);
    assert_eq!(m.add_cert(cert, &key(1).key), Ok(true));
    assert!(!m.admits(&public(3)));
}

#[test]
fn rotation_invalidates_old_invites() {
    let mut m = Membership::new(signed_roster(1), &public(1)).unwrap();
    m.add_cert(invite().join_cert(&keypair(4), NOW), &key(1).key)
        .unwrap();
    assert!(m.admits(&public(4)));
    let mut next = roster(2);
    next.issued_at_ms += 1;
    assert_eq!(
        m.update_roster(SignedRoster::sign(next, &admin()).unwrap()),
        Ok(true)
    );
    assert!(!m.admits(&public(4)), "not folded into the epoch-2 roster");
    assert!(m.certs().is_empty());
    assert_eq!(
        m.add_cert(invite().join_cert(&keypair(5), NOW), &key(1).key),
        Err(TeamError::StaleInvite {
            invite_epoch: 1,
            roster_epoch: 2
        })
    );
    let fresh = Invite::issue_with_id(&admin(), team(), NAME, &key(2), EXPIRES, [1; 16]).unwrap();
    assert_eq!(
        m.add_cert(fresh.join_cert(&keypair(5), NOW), &key(2).key),
        Ok(true)
    );
    assert!(m.admits(&public(5)));
}

#[test]
fn roster_updates_must_be_newer_and_from_the_admin() {
    let mut m = Membership::new(signed_roster(1), &public(1)).unwrap();
    assert_eq!(m.update_roster(signed_roster(1)), Ok(false), "replay");
    let mut older = roster(1);
    older.issued_at_ms -= 1;
    older.members.push(public(9));
    assert_eq!(
        m.update_roster(SignedRoster::sign(older, &admin()).unwrap()),
        Ok(false)
    );
    assert!(!m.admits(&public(9)));
    let mut usurped = roster(5);
    usurped.admin = public(3);
    assert_eq!(
        m.update_roster(SignedRoster::sign(usurped, &keypair(3)).unwrap()),
        Err(TeamError::AdminMismatch)
    );
    let mut other = roster(5);
    other.team = TeamId([9; 16]);
    assert_eq!(
        m.update_roster(SignedRoster::sign(other, &admin()).unwrap()),
        Err(TeamError::WrongTeam)
    );
    assert_eq!(
        Membership::new(signed_roster(1), &public(2)).unwrap_err(),
        TeamError::AdminMismatch
    );
}

#[test]
fn certificates_for_another_team_or_key_are_refused() {
    let mut m = Membership::new(signed_roster(1), &public(1)).unwrap();
    let other =
        Invite::issue_with_id(&admin(), TeamId([9; 16]), NAME, &key(1), EXPIRES, [2; 16]).unwrap();
    assert_eq!(
        m.add_cert(other.join_cert(&keypair(4), NOW), &key(1).key),
        Err(TeamError::WrongTeam)
    );
    assert_eq!(
        m.add_cert(invite().join_cert(&keypair(4), NOW), &[0; 32]),
        Err(TeamError::BadInviteSignature)
    );
    assert!(!m.admits(&public(4)));
}
