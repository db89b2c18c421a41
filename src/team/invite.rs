//! Invites and join certificates (`proto/team.md` §7): the admin hands out a signed,
//! expiring invite that carries the team key as an `FM1-…` code or QR; the joiner
//! signs a join certificate that lets any key holder admit them without the admin.

use super::record::{self, sig64, RecordKind};
use super::{check_name, TeamError, TeamId, TeamKey};
use data_encoding::BASE32_NOPAD;
use libp2p::identity::ed25519;
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Text-code prefix: format `FM`, version 1.
pub const CODE_PREFIX: &str = "FM1-";
/// Longest text accepted by [`Invite::from_code`] before any decoding (a real code is
/// at most about 400 characters).
pub const MAX_CODE_LEN: usize = 1024;

/// Why an invite code was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InviteError {
    /// Not an invite code: wrong prefix, bad base32, or bytes that do not decode.
    #[error("malformed invite code: {what}")]
    Malformed {
        /// Which check failed.
        what: &'static str,
    },
    /// The admin's signature does not verify: the code was altered.
    #[error("invite signature does not verify")]
    BadSignature,
    /// The invite expired.
    #[error("invite expired at {expired_at_ms} ms")]
    Expired {
        /// Its expiry, Unix ms.
        expired_at_ms: u64,
    },
    /// The text is too long to draw as a QR code.
    #[error("text too long for a QR code")]
    TooLongForQr,
}

/// The signed fields of an invite, in wire order. Also rebuilt by join-certificate
/// verifiers from their own knowledge, so the layout is shared.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct InviteFields {
    #[zeroize(skip)]
    team: TeamId,
    name: String,
    admin: [u8; 32],
    epoch: u32,
    key: [u8; 32],
    expires_at_ms: u64,
    invite_id: [u8; 16],
}

/// A team invite: everything needed to join, including the team key of `epoch`,
/// signed by the admin over `"fieldmesh/team/invite/v1" ‖ 0x13 ‖ bincode(fields)`.
///
/// **The invite is a bearer secret.** Anyone holding the code can read the team's
/// channels of that epoch and join until it expires. The key is zeroized on drop;
/// the code text is the caller's to protect.
#[derive(Clone)]
pub struct Invite {
    /// The team.
    pub team: TeamId,
    /// Team display name.
    pub name: String,
    /// The admin's public key (joiners trust it because of how they got the code).
    pub admin: [u8; 32],
    /// Epoch of `key`.
    pub epoch: u32,
    /// The team key.
    pub key: [u8; 32],
    /// Last moment the invite may be used, Unix ms (inclusive).
    pub expires_at_ms: u64,
    /// Random id, so two invites with equal fields still differ.
    pub invite_id: [u8; 16],
    /// The admin's ed25519 signature.
    pub signature: [u8; 64],
}

impl Drop for Invite {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("team", &self.team)
            .field("epoch", &self.epoch)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl Invite {
    /// Signs a new invite to `team` carrying `key`, valid until `expires_at_ms`.
    pub fn issue(
        admin: &ed25519::Keypair,
        team: TeamId,
        name: &str,
        key: &TeamKey,
        expires_at_ms: u64,
    ) -> Result<Invite, TeamError> {
        let mut invite_id = [0u8; 16];
        OsRng.fill_bytes(&mut invite_id);
        Invite::issue_with_id(admin, team, name, key, expires_at_ms, invite_id)
    }

    pub(super) fn issue_with_id(
        admin: &ed25519::Keypair,
        team: TeamId,
        name: &str,
        key: &TeamKey,
        expires_at_ms: u64,
        invite_id: [u8; 16],
    ) -> Result<Invite, TeamError> {
        check_name(name)?;
        let mut invite = Invite {
            team,
            name: name.to_owned(),
            admin: admin.public().to_bytes(),
            epoch: key.epoch,
            key: key.key,
            expires_at_ms,
            invite_id,
            signature: [0; 64],
        };
        invite.signature = record::sign(RecordKind::Invite, &invite.signed_part(), admin);
        Ok(invite)
    }

    /// The text code: `"FM1-"` followed by unpadded RFC 4648 base32 of the encoded
    /// invite. Upper case, so it fits a QR code's compact alphanumeric mode.
    pub fn to_code(&self) -> String {
        let bytes = Zeroizing::new(self.encode());
        format!("{CODE_PREFIX}{}", BASE32_NOPAD.encode(&bytes))
    }

    /// Parses a code as typed or scanned: whitespace anywhere and lower case are
    /// accepted. Checks the signature (by the admin key inside), then expiry.
    pub fn from_code(code: &str, now_ms: u64) -> Result<Invite, InviteError> {
        if code.len() > MAX_CODE_LEN {
            return Err(InviteError::Malformed { what: "too long" });
        }
        let compact: Zeroizing<String> = Zeroizing::new(
            code.chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let b32 = compact
            .strip_prefix(CODE_PREFIX)
            .ok_or(InviteError::Malformed { what: "prefix" })?;
        let bytes = Zeroizing::new(
            BASE32_NOPAD
                .decode(b32.as_bytes())
                .map_err(|_| InviteError::Malformed { what: "base32" })?,
        );
        let invite =
            Invite::decode(&bytes).map_err(|_| InviteError::Malformed { what: "encoding" })?;
        invite.verify().map_err(|_| InviteError::BadSignature)?;
        if now_ms > invite.expires_at_ms {
            return Err(InviteError::Expired {
                expired_at_ms: invite.expires_at_ms,
            });
        }
        Ok(invite)
    }

    /// Wire bytes: `0x13 ‖ bincode(fields) ‖ signature`. Contains the team key.
    pub fn encode(&self) -> Vec<u8> {
        record::join(self.signed_part().to_vec(), &self.signature)
    }

    /// Decodes the bytes of [`Self::encode`]; does **not** check the signature.
    pub fn decode(bytes: &[u8]) -> Result<Invite, TeamError> {
        let (fields, signature) = record::decode::<InviteFields>(RecordKind::Invite, bytes)?;
        check_name(&fields.name)?;
        Ok(Invite {
            team: fields.team,
            name: fields.name.clone(),
            admin: fields.admin,
            epoch: fields.epoch,
            key: fields.key,
            expires_at_ms: fields.expires_at_ms,
            invite_id: fields.invite_id,
            signature,
        })
    }

    /// Checks the signature by the admin key the invite names.
    pub fn verify(&self) -> Result<(), TeamError> {
        if record::verify(
            RecordKind::Invite,
            &self.signed_part(),
            &self.signature,
            &self.admin,
        ) {
            Ok(())
        } else {
            Err(TeamError::BadSignature)
        }
    }

    /// The team key this invite carries.
    pub fn team_key(&self) -> TeamKey {
        TeamKey {
            epoch: self.epoch,
            key: self.key,
        }
    }

    /// The joiner's certificate, signed with the joiner's identity. It verifies only
    /// if `now_ms` is at or before the invite's expiry ([`Self::from_code`] has
    /// already refused expired invites).
    pub fn join_cert(&self, member: &ed25519::Keypair, now_ms: u64) -> JoinCert {
        let mut cert = JoinCert {
            team: self.team,
            invite_id: self.invite_id,
            invite_epoch: self.epoch,
            invite_expires_at_ms: self.expires_at_ms,
            invite_signature: self.signature,
            member: member.public().to_bytes(),
            joined_at_ms: now_ms,
            signature: [0; 64],
        };
        cert.signature = record::sign(RecordKind::JoinCert, &cert.signed_part(), member);
        cert
    }

    fn signed_part(&self) -> Zeroizing<Vec<u8>> {
        invite_signed_part(
            self.team,
            &self.name,
            &self.admin,
            self.epoch,
            &self.key,
            self.expires_at_ms,
            self.invite_id,
        )
    }
}

/// The invite's signed part from its seven fields (shared by issuers and
/// join-certificate verifiers). Zeroized on drop: it contains the key.
#[allow(clippy::too_many_arguments)]
fn invite_signed_part(
    team: TeamId,
    name: &str,
    admin: &[u8; 32],
    epoch: u32,
    key: &[u8; 32],
    expires_at_ms: u64,
    invite_id: [u8; 16],
) -> Zeroizing<Vec<u8>> {
    let fields = InviteFields {
        team,
        name: name.to_owned(),
        admin: *admin,
        epoch,
        key: *key,
        expires_at_ms,
        invite_id,
    };
    Zeroizing::new(record::signed_part(RecordKind::Invite, &fields))
}

/// Renders a code as a QR code for a terminal: Unicode half blocks, two modules per
/// character, drawn light-on-dark for the usual dark terminal background, with the
/// quiet zone. Low error correction: a screen is not a scuffed sticker, and the
/// smaller code fits an 80×40 terminal.
pub fn qr_text(code: &str) -> Result<String, InviteError> {
    use qrcode::render::unicode::Dense1x2;
    let qr = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::L)
        .map_err(|_| InviteError::TooLongForQr)?;
    Ok(qr
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build())
}

/// The signed fields of a join certificate, in wire order.
#[derive(Serialize, Deserialize)]
struct JoinFields {
    team: TeamId,
    invite_id: [u8; 16],
    invite_epoch: u32,
    invite_expires_at_ms: u64,
    #[serde(with = "sig64")]
    invite_signature: [u8; 64],
    member: [u8; 32],
    joined_at_ms: u64,
}

/// A joiner's proof of holding a valid invite, signed by the joiner over
/// `"fieldmesh/team/join/v1" ‖ 0x14 ‖ bincode(fields)`. It carries the invite's
/// signature but not its key or name: a verifier supplies those from what it knows,
/// so only holders of the epoch's key can check it and the key never travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinCert {
    /// The team.
    pub team: TeamId,
    /// The invite's id.
    pub invite_id: [u8; 16],
    /// The invite's key epoch.
    pub invite_epoch: u32,
    /// The invite's expiry, Unix ms.
    pub invite_expires_at_ms: u64,
    /// The admin's signature on the invite.
    pub invite_signature: [u8; 64],
    /// The joiner's ed25519 public key.
    pub member: [u8; 32],
    /// The joiner's clock at joining, Unix ms.
    pub joined_at_ms: u64,
    /// The joiner's ed25519 signature.
    pub signature: [u8; 64],
}

impl JoinCert {
    /// Wire bytes: `0x14 ‖ bincode(fields) ‖ signature`.
    pub fn encode(&self) -> Vec<u8> {
        record::join(self.signed_part(), &self.signature)
    }

    /// Decodes; does **not** check either signature.
    pub fn decode(bytes: &[u8]) -> Result<JoinCert, TeamError> {
        let (f, signature) = record::decode::<JoinFields>(RecordKind::JoinCert, bytes)?;
        Ok(JoinCert {
            team: f.team,
            invite_id: f.invite_id,
            invite_epoch: f.invite_epoch,
            invite_expires_at_ms: f.invite_expires_at_ms,
            invite_signature: f.invite_signature,
            member: f.member,
            joined_at_ms: f.joined_at_ms,
            signature,
        })
    }

    /// Checks the certificate with local knowledge of the team: its name, admin and
    /// the key of `invite_epoch`. In order: the member's signature, join time not
    /// after the invite's expiry, the admin's signature on the rebuilt invite.
    pub fn verify(
        &self,
        team_name: &str,
        admin: &[u8; 32],
        key_for_epoch: &[u8; 32],
    ) -> Result<(), TeamError> {
        if !record::verify(
            RecordKind::JoinCert,
            &self.signed_part(),
            &self.signature,
            &self.member,
        ) {
            return Err(TeamError::BadSignature);
        }
        if self.joined_at_ms > self.invite_expires_at_ms {
            return Err(TeamError::JoinedAfterExpiry {
                joined_at_ms: self.joined_at_ms,
                expires_at_ms: self.invite_expires_at_ms,
            });
        }
        let invite = invite_signed_part(
            self.team,
            team_name,
            admin,
            self.invite_epoch,
            key_for_epoch,
            self.invite_expires_at_ms,
            self.invite_id,
        );
        if !record::verify(RecordKind::Invite, &invite, &self.invite_signature, admin) {
            return Err(TeamError::BadInviteSignature);
        }
        Ok(())
    }

    fn signed_part(&self) -> Vec<u8> {
        record::signed_part(
            RecordKind::JoinCert,
            &JoinFields {
                team: self.team,
                invite_id: self.invite_id,
                invite_epoch: self.invite_epoch,
                invite_expires_at_ms: self.invite_expires_at_ms,
                invite_signature: self.invite_signature,
                member: self.member,
                joined_at_ms: self.joined_at_ms,
            },
        )
    }
}
