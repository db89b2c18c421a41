//! The framing every signed team record shares (`proto/team.md` §4):
//! `tag (1 byte) ‖ bincode(fields) ‖ ed25519 signature (64 bytes)`, where the
//! signature covers `domain ‖ tag ‖ bincode(fields)`.

use super::TeamError;
use crate::wire;
use libp2p::identity::ed25519;
use serde::{de::DeserializeOwned, Serialize};

/// Signature domain of a [`super::SignedRoster`].
pub const ROSTER_DOMAIN: &[u8] = b"fieldmesh/team/roster/v1";
/// Signature domain of a [`super::KeyUpdate`].
pub const KEYS_DOMAIN: &[u8] = b"fieldmesh/team/keys/v1";
/// Signature domain of an [`super::Invite`].
pub const INVITE_DOMAIN: &[u8] = b"fieldmesh/team/invite/v1";
/// Signature domain of a [`super::JoinCert`].
pub const JOIN_DOMAIN: &[u8] = b"fieldmesh/team/join/v1";
/// Signature domain of a [`super::SignedOrder`].
pub const ORDER_DOMAIN: &[u8] = b"fieldmesh/team/order/v1";

/// Length of the trailing ed25519 signature.
pub(super) const SIGNATURE_LEN: usize = 64;

/// Which team record a byte string claims to be: its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// `0x11`: a signed roster.
    Roster,
    /// `0x12`: a key update.
    KeyUpdate,
    /// `0x13`: an invite (normally carried as an `FM1-` code, not on the mesh).
    Invite,
    /// `0x14`: a join certificate.
    JoinCert,
    /// `0x15`: an admin's order (revoke a device, stand down).
    Order,
}

impl RecordKind {
    /// The tag byte.
    pub fn tag(self) -> u8 {
        match self {
            RecordKind::Roster => 0x11,
            RecordKind::KeyUpdate => 0x12,
            RecordKind::Invite => 0x13,
            RecordKind::JoinCert => 0x14,
            RecordKind::Order => 0x15,
        }
    }

    fn domain(self) -> &'static [u8] {
        match self {
            RecordKind::Roster => ROSTER_DOMAIN,
            RecordKind::KeyUpdate => KEYS_DOMAIN,
            RecordKind::Invite => INVITE_DOMAIN,
            RecordKind::JoinCert => JOIN_DOMAIN,
            RecordKind::Order => ORDER_DOMAIN,
        }
    }
}

/// Reads the kind of a team record from its first byte, so one control channel can
/// carry every kind. `None` for anything else; the full decode still checks all.
pub fn record_kind(bytes: &[u8]) -> Option<RecordKind> {
    match bytes.first()? {
        0x11 => Some(RecordKind::Roster),
        0x12 => Some(RecordKind::KeyUpdate),
        0x13 => Some(RecordKind::Invite),
        0x14 => Some(RecordKind::JoinCert),
        0x15 => Some(RecordKind::Order),
        _ => None,
    }
}

/// `tag ‖ bincode(fields)`: the signed part.
pub(super) fn signed_part<T: Serialize>(kind: RecordKind, fields: &T) -> Vec<u8> {
    let mut out = vec![kind.tag()];
    // Only plain structs of integers, arrays, strings and byte vectors come here;
    // bincode's encoder has no limit and cannot fail on them.
    let encoded = wire::encode(fields).expect("invariant: team records always encode");
    out.extend_from_slice(&encoded);
    out
}

/// The signature input: `domain ‖ signed part`.
fn signing_input(kind: RecordKind, signed: &[u8]) -> Vec<u8> {
    let domain = kind.domain();
    let mut input = Vec::with_capacity(domain.len() + signed.len());
    input.extend_from_slice(domain);
    input.extend_from_slice(signed);
    input
}

/// Signs a signed part with `key` under the kind's domain.
pub(super) fn sign(kind: RecordKind, signed: &[u8], key: &ed25519::Keypair) -> [u8; 64] {
    let sig = key.sign(&signing_input(kind, signed));
    sig.try_into()
        .expect("invariant: ed25519 signatures are 64 bytes")
}

/// Checks a signature over a signed part by the holder of `public`.
pub(super) fn verify(
    kind: RecordKind,
    signed: &[u8],
    signature: &[u8; 64],
    public: &[u8; 32],
) -> bool {
    ed25519::PublicKey::try_from_bytes(public)
        .map(|k| k.verify(&signing_input(kind, signed), signature))
        .unwrap_or(false)
}

/// Splits `tag ‖ fields ‖ signature`, checks the tag and decodes the fields.
pub(super) fn decode<T: DeserializeOwned>(
    kind: RecordKind,
    bytes: &[u8],
) -> Result<(T, [u8; 64]), TeamError> {
    let (&tag, _) = bytes.split_first().ok_or(TeamError::Malformed)?;
    if tag != kind.tag() {
        return Err(TeamError::UnexpectedRecord { tag });
    }
    let split_at = bytes
        .len()
        .checked_sub(SIGNATURE_LEN)
        .filter(|at| *at >= 1)
        .ok_or(TeamError::Malformed)?;
    let (signed, sig) = bytes.split_at(split_at);
    let fields = wire::decode(&signed[1..]).map_err(|_| TeamError::Malformed)?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| TeamError::Malformed)?;
    Ok((fields, sig))
}

/// `signed part ‖ signature`.
pub(super) fn join(mut signed: Vec<u8>, signature: &[u8; 64]) -> Vec<u8> {
    signed.extend_from_slice(signature);
    signed
}

/// serde for a signature nested inside a record: 64 raw bytes, no length prefix
/// (serde's built-in array support stops at 32).
pub(super) mod sig64 {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serializer};

    pub(in crate::team) fn serialize<S: Serializer>(
        sig: &[u8; 64],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(64)?;
        for b in sig {
            t.serialize_element(b)?;
        }
        t.end()
    }

    pub(in crate::team) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[u8; 64], D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = [u8; 64];
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; 64], A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        d.deserialize_tuple(64, V)
    }
}
