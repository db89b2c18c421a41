//! Teams (`proto/team.md`): who may post in a team's channels and how their bodies
//! are encrypted.
//!
//! - [`TeamId`], [`TeamKey`]: the team's random id and its current symmetric key.
//! - [`encrypt_body`] / [`decrypt_body`]: channel payloads sealed under a key derived
//!   from (team key, team, channel), bound to the author.
//! - [`SignedRoster`]: the admin's signed member list; [`KeyUpdate`]: a new key, boxed
//!   for each member with a DM ([`crate::crypto::dm`]).
//! - [`Invite`]: a signed, expiring, multi-use invite carried as an `FM1-…` code or QR;
//!   [`JoinCert`]: the joiner's proof of having used one, so others admit them while
//!   the admin is offline. [`Membership`] is the admission rule.
//!
//! Pure: no I/O, time is a parameter. Every decoder returns a typed error.

mod body;
mod invite;
mod keys;
mod order;
mod record;
mod roster;

pub use body::{
    body_epoch, decrypt_body, encrypt_body, BODY_VERSION, CHANNEL_KEY_CONTEXT, MAX_BODY_PLAINTEXT,
};
pub use invite::{qr_text, Invite, InviteError, JoinCert, CODE_PREFIX, MAX_CODE_LEN};
pub use keys::{KeyBox, KeyUpdate};
pub use order::{Order, OrderKind, SignedOrder};
pub use record::{
    record_kind, RecordKind, INVITE_DOMAIN, JOIN_DOMAIN, KEYS_DOMAIN, ORDER_DOMAIN, ROSTER_DOMAIN,
};
pub use roster::{Membership, Roster, SignedRoster};

use crate::crypto::CryptoError;
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// How an exercise team's name starts (`team create NAME --exercise`). The name is
/// signed into every invite and roster and fixed for the team's life, so every
/// member knows the team is an exercise; no live team may take such a name.
pub const EXERCISE_PREFIX: &str = "EXERCISE ";

/// Whether a team of this name is an exercise team.
pub fn is_exercise_name(name: &str) -> bool {
    name.starts_with(EXERCISE_PREFIX)
}

/// Whether `which` (what a user typed) names the team called `name`: its full
/// name, or an exercise team's name without the prefix.
pub fn name_matches(name: &str, which: &str) -> bool {
    name == which || name.strip_prefix(EXERCISE_PREFIX) == Some(which)
}

/// Longest team name, in UTF-8 bytes.
pub const MAX_TEAM_NAME_LEN: usize = 64;
/// Most members plus removed members in one roster, and most boxes in one key
/// update. Keeps a roster (≈ 33 KiB at the cap) inside one envelope body.
pub const MAX_ROSTER_ENTRIES: usize = 1024;
/// Most join certificates a [`Membership`] keeps (≈ 1 MiB at the cap).
pub const MAX_JOIN_CERTS: usize = 4096;

/// A team's id: 16 random bytes, shown as 32 lower-case hex characters (which is also
/// a valid topic tag).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TeamId(pub [u8; 16]);

impl TeamId {
    /// A fresh random team id.
    pub fn random() -> TeamId {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        TeamId(id)
    }
}

impl fmt::Display for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TeamId({self})")
    }
}

impl FromStr for TeamId {
    type Err = ParseTeamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.is_ascii() {
            return Err(ParseTeamIdError);
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| ParseTeamIdError)?;
        }
        Ok(TeamId(out))
    }
}

/// A team id that is not 32 hex characters.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("team id must be 32 hex characters")]
pub struct ParseTeamIdError;

/// A team's symmetric key for one epoch. Each rotation makes a new random key with
/// the next epoch. Zeroized on drop; `Debug` shows only the epoch.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct TeamKey {
    /// Rotation counter; bodies name the epoch of the key that sealed them.
    pub epoch: u32,
    /// The 256-bit key.
    pub key: [u8; 32],
}

impl TeamKey {
    /// A fresh random key for `epoch`.
    pub fn random(epoch: u32) -> TeamKey {
        let mut key = TeamKey {
            epoch,
            key: [0; 32],
        };
        OsRng.fill_bytes(&mut key.key);
        key
    }
}

impl fmt::Debug for TeamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Why a team record or body was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TeamError {
    /// The bytes do not decode as the expected record.
    #[error("malformed team record")]
    Malformed,
    /// The first byte names another kind of record (or none).
    #[error("unexpected record tag {tag:#04x}")]
    UnexpectedRecord {
        /// The tag received.
        tag: u8,
    },
    /// A body version this node does not understand.
    #[error("unknown team body version {version}")]
    UnknownVersion {
        /// The version received.
        version: u8,
    },
    /// No key is held for the body's epoch.
    #[error("no team key for epoch {epoch}")]
    UnknownEpoch {
        /// The epoch the body names.
        epoch: u32,
    },
    /// The body does not authenticate under the key (wrong team, channel, author, or altered).
    #[error("team body does not decrypt")]
    Decrypt,
    /// A plaintext too large for a body.
    #[error("{len} bytes exceed the {max} byte limit")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More roster entries or key boxes than allowed.
    #[error("{len} entries exceed the limit of {max}")]
    TooManyEntries {
        /// Entries offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Team name empty, longer than 64 bytes or containing control characters.
    #[error("team names are 1 to 64 bytes without control characters")]
    BadName,
    /// The record's own signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A join certificate's embedded invite signature does not verify: not an invite
    /// of this admin, team, name and epoch key.
    #[error("bad invite signature in join certificate")]
    BadInviteSignature,
    /// The record is not from the expected admin.
    #[error("record signed for another admin")]
    AdminMismatch,
    /// The record belongs to another team.
    #[error("record for another team")]
    WrongTeam,
    /// Only the team admin may do this (sign rosters, rotate keys, remove members).
    #[error("only the team admin can do that")]
    NotAdmin,
    /// A key box carried another epoch than its update.
    #[error("key box for epoch {got}, update is for epoch {expected}")]
    EpochMismatch {
        /// The update's epoch.
        expected: u32,
        /// The epoch inside the box.
        got: u32,
    },
    /// A join certificate dated after its invite expired.
    #[error("joined at {joined_at_ms} ms, after the invite expired at {expires_at_ms} ms")]
    JoinedAfterExpiry {
        /// The certificate's join time.
        joined_at_ms: u64,
        /// The invite's expiry.
        expires_at_ms: u64,
    },
    /// A join certificate from an invite older than the current roster epoch.
    #[error("invite of epoch {invite_epoch} predates roster epoch {roster_epoch}")]
    StaleInvite {
        /// The invite's epoch.
        invite_epoch: u32,
        /// The roster's epoch.
        roster_epoch: u32,
    },
    /// The membership already holds [`MAX_JOIN_CERTS`] certificates.
    #[error("join certificate limit of {max} reached")]
    TooManyCerts {
        /// The limit.
        max: usize,
    },
    /// A key update without a box for this member.
    #[error("key update has no box for this member")]
    NotForMe,
    /// Opening a key box failed.
    #[error("key box")]
    Crypto(#[from] CryptoError),
}

impl TeamError {
    /// Stable short code for counters, logs and the control protocol.
    pub fn code(&self) -> &'static str {
        match self {
            TeamError::Malformed => "malformed",
            TeamError::UnexpectedRecord { .. } => "unexpected_record",
            TeamError::UnknownVersion { .. } => "unknown_version",
            TeamError::UnknownEpoch { .. } => "unknown_epoch",
            TeamError::Decrypt => "decrypt",
            TeamError::TooLarge { .. } => "too_large",
            TeamError::TooManyEntries { .. } => "too_many_entries",
            TeamError::BadName => "bad_name",
            TeamError::BadSignature => "bad_signature",
            TeamError::BadInviteSignature => "bad_invite_signature",
            TeamError::AdminMismatch => "admin_mismatch",
            TeamError::WrongTeam => "wrong_team",
            TeamError::NotAdmin => "not_admin",
            TeamError::EpochMismatch { .. } => "epoch_mismatch",
            TeamError::JoinedAfterExpiry { .. } => "joined_after_expiry",
            TeamError::StaleInvite { .. } => "stale_invite",
            TeamError::TooManyCerts { .. } => "too_many_certs",
            TeamError::NotForMe => "not_for_me",
            TeamError::Crypto(_) => "key_box",
        }
    }
}

/// Checks a team name: 1 ..= [`MAX_TEAM_NAME_LEN`] bytes, no control characters
/// (names are shown in terminals, so escape sequences are refused).
fn check_name(name: &str) -> Result<(), TeamError> {
    if name.is_empty() || name.len() > MAX_TEAM_NAME_LEN || name.chars().any(char::is_control) {
        return Err(TeamError::BadName);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
