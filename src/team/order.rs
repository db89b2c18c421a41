//! The admin's signed orders to the team's devices (`proto/team.md` §11a): revoke a
//! lost device (with `wipe`, the device itself deletes the team's data and keys if
//! it receives the order), and stand the team down at the end of an incident (every
//! device deletes the team's data and keys at that time).

use super::record::{self, RecordKind};
use super::{TeamError, TeamId};
use libp2p::identity::ed25519;
use serde::{Deserialize, Serialize};

/// An order from the admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The team.
    pub team: TeamId,
    /// Admin's clock when signed, Unix ms; the newest stand-down order wins.
    pub issued_at_ms: u64,
    /// What to do.
    pub kind: OrderKind,
}

/// The orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderKind {
    /// A lost or stolen device is out of the team.
    Revoke {
        /// The device's ed25519 public key.
        member: [u8; 32],
        /// Whether the device, on receipt, deletes the team's store and keys.
        wipe: bool,
    },
    /// The incident ends: at `at_ms` every device deletes the team's store and keys.
    StandDown {
        /// Stand-down time, Unix ms.
        at_ms: u64,
    },
}

/// An order with the admin's signature over
/// `"fieldmesh/team/order/v1" ‖ 0x15 ‖ bincode(order)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedOrder {
    /// The order.
    pub order: Order,
    /// The admin's ed25519 signature.
    pub signature: [u8; 64],
}

impl SignedOrder {
    /// Signs with the admin's key.
    pub fn sign(order: Order, admin: &ed25519::Keypair) -> SignedOrder {
        let signature = record::sign(
            RecordKind::Order,
            &record::signed_part(RecordKind::Order, &order),
            admin,
        );
        SignedOrder { order, signature }
    }

    /// Wire bytes: `0x15 ‖ bincode(order) ‖ signature`.
    pub fn encode(&self) -> Vec<u8> {
        record::join(
            record::signed_part(RecordKind::Order, &self.order),
            &self.signature,
        )
    }

    /// Decodes; does **not** check the signature (see [`Self::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<SignedOrder, TeamError> {
        let (order, signature) = record::decode(RecordKind::Order, bytes)?;
        Ok(SignedOrder { order, signature })
    }

    /// Checks the admin's signature.
    pub fn verify(&self, admin: &[u8; 32]) -> Result<(), TeamError> {
        let signed = record::signed_part(RecordKind::Order, &self.order);
        if record::verify(RecordKind::Order, &signed, &self.signature, admin) {
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
    fn orders_round_trip_and_only_the_admin_signs() {
        let admin = ed25519::Keypair::generate();
        let other = ed25519::Keypair::generate();
        for kind in [
            OrderKind::Revoke {
                member: other.public().to_bytes(),
                wipe: true,
            },
            OrderKind::StandDown { at_ms: 99 },
        ] {
            let order = Order {
                team: TeamId([3; 16]),
                issued_at_ms: 5,
                kind,
            };
            let signed = SignedOrder::sign(order.clone(), &admin);
            let bytes = signed.encode();
            assert_eq!(bytes[0], 0x15);
            let back = SignedOrder::decode(&bytes).unwrap();
            assert_eq!(back, signed);
            back.verify(&admin.public().to_bytes()).unwrap();
            assert_eq!(
                SignedOrder::sign(order, &other).verify(&admin.public().to_bytes()),
                Err(TeamError::BadSignature)
            );
            let mut tampered = bytes.clone();
            *tampered.iter_mut().rev().nth(64).unwrap() ^= 1; // last field byte
            assert!(SignedOrder::decode(&tampered)
                .and_then(|s| s.verify(&admin.public().to_bytes()))
                .is_err());
            assert!(SignedOrder::decode(&bytes[..10]).is_err());
        }
    }
}
