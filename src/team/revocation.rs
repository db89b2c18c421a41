//! The admin's signed device revocation (`proto/team.md` §13): a lost or stolen
//! device is named, and with `wipe` the device itself, if it is still running and
//! receives the record, deletes the team's data and keys.

use super::record::{self, RecordKind};
use super::{TeamError, TeamId};
use libp2p::identity::ed25519;
use serde::{Deserialize, Serialize};

/// What the admin says about a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The team.
    pub team: TeamId,
    /// The revoked device's ed25519 public key.
    pub member: [u8; 32],
    /// Whether the device, on receipt, deletes the team's store and keys.
    pub wipe: bool,
    /// Admin's clock when signed, Unix ms.
    pub issued_at_ms: u64,
}

/// A revocation with the admin's signature over
/// `"fieldmesh/team/revoke/v1" ‖ 0x15 ‖ bincode(revocation)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRevocation {
    /// The revocation.
    pub revocation: Revocation,
    /// The admin's ed25519 signature.
    pub signature: [u8; 64],
}

impl SignedRevocation {
    /// Signs with the admin's key.
    pub fn sign(revocation: Revocation, admin: &ed25519::Keypair) -> SignedRevocation {
        let signature = record::sign(
            RecordKind::Revocation,
            &record::signed_part(RecordKind::Revocation, &revocation),
            admin,
        );
        SignedRevocation {
            revocation,
            signature,
        }
    }

    /// Wire bytes: `0x15 ‖ bincode(revocation) ‖ signature`.
    pub fn encode(&self) -> Vec<u8> {
        record::join(
            record::signed_part(RecordKind::Revocation, &self.revocation),
            &self.signature,
        )
    }

    /// Decodes; does **not** check the signature (see [`Self::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<SignedRevocation, TeamError> {
        let (revocation, signature) = record::decode(RecordKind::Revocation, bytes)?;
        Ok(SignedRevocation {
            revocation,
            signature,
        })
    }

    /// Checks the admin's signature.
    pub fn verify(&self, admin: &[u8; 32]) -> Result<(), TeamError> {
        let signed = record::signed_part(RecordKind::Revocation, &self.revocation);
        if record::verify(RecordKind::Revocation, &signed, &self.signature, admin) {
            Ok(())
        } else {
            Err(TeamError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_only_the_admin_signs() {
        let admin = ed25519::Keypair::generate();
        let other = ed25519::Keypair::generate();
        let r = Revocation {
            team: TeamId([3; 16]),
            member: other.public().to_bytes(),
            wipe: true,
            issued_at_ms: 5,
        };
        let signed = SignedRevocation::sign(r.clone(), &admin);
        let bytes = signed.encode();
        assert_eq!(bytes[0], 0x15);
        let back = SignedRevocation::decode(&bytes).unwrap();
        assert_eq!(back, signed);
        back.verify(&admin.public().to_bytes()).unwrap();
        assert_eq!(
            SignedRevocation::sign(r, &other).verify(&admin.public().to_bytes()),
            Err(TeamError::BadSignature)
        );
        let mut tampered = bytes.clone();
        tampered[1 + 16 + 32] ^= 1; // the wipe flag
        assert!(SignedRevocation::decode(&tampered)
            .and_then(|s| s.verify(&admin.public().to_bytes()))
            .is_err());
        assert!(SignedRevocation::decode(&bytes[..10]).is_err());
    }
}
