//! The admin's signed roster and the admission rule (`proto/team.md` §5 and §8).

use super::record::{self, RecordKind};
use super::{check_name, JoinCert, TeamError, TeamId, MAX_JOIN_CERTS, MAX_ROSTER_ENTRIES};
use libp2p::identity::ed25519;
use serde::{Deserialize, Serialize};

/// Who is in a team, as the admin last said. Members are ed25519 public keys (the
/// key inside each member's peer id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// The team.
    pub team: TeamId,
    /// Display name (1 to 64 bytes, no control characters). Part of every invite
    /// signature, so it stays fixed for the team's life.
    pub name: String,
    /// The admin's public key; the only key that signs rosters, key updates and invites.
    pub admin: [u8; 32],
    /// Epoch of the current team key.
    pub epoch: u32,
    /// Members. The admin is a member whether listed or not.
    pub members: Vec<[u8; 32]>,
    /// Removed members; refused even if listed in `members` or holding a join certificate.
    pub removed: Vec<[u8; 32]>,
    /// Admin's clock when signed, Unix ms; orders rosters of the same epoch.
    pub issued_at_ms: u64,
}

impl Roster {
    /// Whether `author` may post by this roster alone (admin or listed, not removed).
    pub fn is_member(&self, author: &[u8; 32]) -> bool {
        !self.removed.contains(author) && (*author == self.admin || self.members.contains(author))
    }

    fn check_limits(&self) -> Result<(), TeamError> {
        check_name(&self.name)?;
        let len = self.members.len() + self.removed.len();
        if len > MAX_ROSTER_ENTRIES {
            return Err(TeamError::TooManyEntries {
                len,
                max: MAX_ROSTER_ENTRIES,
            });
        }
        Ok(())
    }
}

/// A roster with the admin's signature over
/// `"fieldmesh/team/roster/v1" ‖ 0x11 ‖ bincode(roster)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRoster {
    /// The roster.
    pub roster: Roster,
    /// The admin's ed25519 signature.
    pub signature: [u8; 64],
}

impl SignedRoster {
    /// Signs `roster` with the admin's key, which must be `roster.admin`.
    pub fn sign(roster: Roster, admin: &ed25519::Keypair) -> Result<SignedRoster, TeamError> {
        if admin.public().to_bytes() != roster.admin {
            return Err(TeamError::AdminMismatch);
        }
        roster.check_limits()?;
        let signature = record::sign(
            RecordKind::Roster,
            &record::signed_part(RecordKind::Roster, &roster),
            admin,
        );
        Ok(SignedRoster { roster, signature })
    }

    /// Wire bytes: `0x11 ‖ bincode(roster) ‖ signature`.
    pub fn encode(&self) -> Vec<u8> {
        record::join(
            record::signed_part(RecordKind::Roster, &self.roster),
            &self.signature,
        )
    }

    /// Decodes and checks limits; does **not** check the signature (see [`Self::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<SignedRoster, TeamError> {
        let (roster, signature) = record::decode::<Roster>(RecordKind::Roster, bytes)?;
        roster.check_limits()?;
        Ok(SignedRoster { roster, signature })
    }

    /// Checks that the roster names `expected_admin` and carries its valid signature.
    pub fn verify(&self, expected_admin: &[u8; 32]) -> Result<(), TeamError> {
        if self.roster.admin != *expected_admin {
            return Err(TeamError::AdminMismatch);
        }
        let signed = record::signed_part(RecordKind::Roster, &self.roster);
        if record::verify(RecordKind::Roster, &signed, &self.signature, expected_admin) {
            Ok(())
        } else {
            Err(TeamError::BadSignature)
        }
    }

    /// Whether `author` may post by this roster alone.
    pub fn is_member(&self, author: &[u8; 32]) -> bool {
        self.roster.is_member(author)
    }
}

/// What a node knows about a team's membership: the newest verified roster and the
/// verified join certificates of people who joined since. Only verified data gets
/// in, so [`Membership::admits`] is a plain lookup.
#[derive(Clone, Debug)]
pub struct Membership {
    roster: SignedRoster,
    certs: Vec<JoinCert>,
}

impl Membership {
    /// Starts from a roster, which must verify under `admin` (learnt from the invite).
    pub fn new(roster: SignedRoster, admin: &[u8; 32]) -> Result<Membership, TeamError> {
        roster.verify(admin)?;
        Ok(Membership {
            roster,
            certs: Vec::new(),
        })
    }

    /// The admission rule: the author is the admin, on the roster, or holds a
    /// certificate from an invite of the current epoch or later; and is not removed.
    pub fn admits(&self, author: &[u8; 32]) -> bool {
        let r = &self.roster.roster;
        if r.removed.contains(author) {
            return false;
        }
        r.is_member(author)
            || self
                .certs
                .iter()
                .any(|c| c.member == *author && c.invite_epoch >= r.epoch)
    }

    /// Everyone admitted now: the admin, the roster's members and the holders of
    /// current certificates, without the removed; sorted, no repeats.
    pub fn members(&self) -> Vec<[u8; 32]> {
        let r = &self.roster.roster;
        let mut all: Vec<[u8; 32]> = std::iter::once(r.admin)
            .chain(r.members.iter().copied())
            .chain(self.certs.iter().map(|c| c.member))
            .filter(|m| self.admits(m) || *m == r.admin)
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The current roster.
    pub fn roster(&self) -> &SignedRoster {
        &self.roster
    }

    /// The join certificates held (all verified, none stale).
    pub fn certs(&self) -> &[JoinCert] {
        &self.certs
    }

    /// Verifies and keeps a join certificate. `key_for_epoch` is the team key of
    /// `cert.invite_epoch`. Returns `Ok(false)` if it adds nothing: the member is
    /// already on the roster or already holds a certificate at least as new.
    pub fn add_cert(
        &mut self,
        cert: JoinCert,
        key_for_epoch: &[u8; 32],
    ) -> Result<bool, TeamError> {
        let r = &self.roster.roster;
        if cert.team != r.team {
            return Err(TeamError::WrongTeam);
        }
        cert.verify(&r.name, &r.admin, key_for_epoch)?;
        if r.is_member(&cert.member) {
            return Ok(false);
        }
        if cert.invite_epoch < r.epoch {
            return Err(TeamError::StaleInvite {
                invite_epoch: cert.invite_epoch,
                roster_epoch: r.epoch,
            });
        }
        if let Some(held) = self.certs.iter_mut().find(|c| c.member == cert.member) {
            if held.invite_epoch >= cert.invite_epoch {
                return Ok(false);
            }
            *held = cert;
            return Ok(true);
        }
        if self.certs.len() >= MAX_JOIN_CERTS {
            return Err(TeamError::TooManyCerts {
                max: MAX_JOIN_CERTS,
            });
        }
        self.certs.push(cert);
        Ok(true)
    }

    /// Replaces the roster with a newer one from the same admin and team: higher
    /// epoch, or same epoch and later `issued_at_ms`. Returns `Ok(false)` for an older
    /// or equal roster (a replay). Drops certificates that the new epoch makes stale.
    pub fn update_roster(&mut self, roster: SignedRoster) -> Result<bool, TeamError> {
        let current = &self.roster.roster;
        roster.verify(&current.admin)?;
        if roster.roster.team != current.team {
            return Err(TeamError::WrongTeam);
        }
        let newer = (roster.roster.epoch, roster.roster.issued_at_ms)
            > (current.epoch, current.issued_at_ms);
        if !newer {
            return Ok(false);
        }
        self.roster = roster;
        let epoch = self.roster.roster.epoch;
        self.certs.retain(|c| c.invite_epoch >= epoch);
        Ok(true)
    }
}
