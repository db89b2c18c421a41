//! Key rotation (`proto/team.md` §6): the admin boxes a new team key for each
//! member with a DM and signs the bundle.

use super::record::{self, RecordKind};
use super::{TeamError, TeamId, TeamKey, MAX_ROSTER_ENTRIES};
use crate::crypto::{dm, CryptoError};
use libp2p::identity::ed25519;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Plaintext of a key box: key (32) ‖ epoch (`u32` LE).
const BOX_PLAINTEXT_LEN: usize = 32 + 4;

/// One member's copy of the new key: a DM from the admin to `member`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBox {
    /// The member's ed25519 public key.
    pub member: [u8; 32],
    /// `seal_dm(admin, member, key ‖ epoch)`.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// The signed fields of a key update, in wire order.
#[derive(Serialize, Deserialize)]
struct Fields {
    team: TeamId,
    epoch: u32,
    boxes: Vec<KeyBox>,
}

/// A new team key for `epoch`, boxed for each member, signed by the admin over
/// `"fieldmesh/team/keys/v1" ‖ 0x12 ‖ bincode(team, epoch, boxes)`.
///
/// A large team's update may be split into several updates with disjoint boxes;
/// each verifies on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUpdate {
    /// The team.
    pub team: TeamId,
    /// Epoch of the new key.
    pub epoch: u32,
    /// One box per member.
    pub boxes: Vec<KeyBox>,
    /// The admin's ed25519 signature.
    pub signature: [u8; 64],
}

impl KeyUpdate {
    /// Boxes `key` for each of `members` and signs with the admin's identity (whose
    /// seed is the DM sender key). At most [`MAX_ROSTER_ENTRIES`] members; a member
    /// key that is not a valid point fails with [`TeamError::Crypto`].
    pub fn new(
        admin: &ed25519::Keypair,
        team: TeamId,
        key: &TeamKey,
        members: &[[u8; 32]],
    ) -> Result<KeyUpdate, TeamError> {
        KeyUpdate::build(admin, team, key, members, dm::seal_dm)
    }

    pub(super) fn build(
        admin: &ed25519::Keypair,
        team: TeamId,
        key: &TeamKey,
        members: &[[u8; 32]],
        seal: impl Fn(&[u8; 32], &[u8; 32], &[u8]) -> Result<Vec<u8>, CryptoError>,
    ) -> Result<KeyUpdate, TeamError> {
        if members.len() > MAX_ROSTER_ENTRIES {
            return Err(TeamError::TooManyEntries {
                len: members.len(),
                max: MAX_ROSTER_ENTRIES,
            });
        }
        let seed = dm::seed_of(admin);
        let mut plaintext = Zeroizing::new([0u8; BOX_PLAINTEXT_LEN]);
        plaintext[..32].copy_from_slice(&key.key);
        plaintext[32..].copy_from_slice(&key.epoch.to_le_bytes());
        let boxes = members
            .iter()
            .map(|member| {
                Ok(KeyBox {
                    member: *member,
                    sealed: seal(&seed, member, &plaintext[..])?,
                })
            })
            .collect::<Result<Vec<_>, CryptoError>>()?;
        let fields = Fields {
            team,
            epoch: key.epoch,
            boxes,
        };
        let signature = record::sign(
            RecordKind::KeyUpdate,
            &record::signed_part(RecordKind::KeyUpdate, &fields),
            admin,
        );
        Ok(KeyUpdate {
            team,
            epoch: fields.epoch,
            boxes: fields.boxes,
            signature,
        })
    }

    /// Wire bytes: `0x12 ‖ bincode(team, epoch, boxes) ‖ signature`.
    pub fn encode(&self) -> Vec<u8> {
        record::join(self.signed_part(), &self.signature)
    }

    /// Decodes and checks limits; does **not** check the signature.
    pub fn decode(bytes: &[u8]) -> Result<KeyUpdate, TeamError> {
        let (fields, signature) = record::decode::<Fields>(RecordKind::KeyUpdate, bytes)?;
        if fields.boxes.len() > MAX_ROSTER_ENTRIES {
            return Err(TeamError::TooManyEntries {
                len: fields.boxes.len(),
                max: MAX_ROSTER_ENTRIES,
            });
        }
        Ok(KeyUpdate {
            team: fields.team,
            epoch: fields.epoch,
            boxes: fields.boxes,
            signature,
        })
    }

    /// Checks the admin's signature.
    pub fn verify(&self, admin: &[u8; 32]) -> Result<(), TeamError> {
        if record::verify(
            RecordKind::KeyUpdate,
            &self.signed_part(),
            &self.signature,
            admin,
        ) {
            Ok(())
        } else {
            Err(TeamError::BadSignature)
        }
    }

    /// Verifies the update under `admin_public`, then opens this member's box.
    /// [`TeamError::NotForMe`] if there is none.
    pub fn open_for(
        &self,
        member_seed: &[u8; 32],
        member_public: &[u8; 32],
        admin_public: &[u8; 32],
    ) -> Result<TeamKey, TeamError> {
        self.verify(admin_public)?;
        let boxed = self
            .boxes
            .iter()
            .find(|b| b.member == *member_public)
            .ok_or(TeamError::NotForMe)?;
        let plaintext = Zeroizing::new(dm::open_dm(member_seed, admin_public, &boxed.sealed)?);
        if plaintext.len() != BOX_PLAINTEXT_LEN {
            return Err(TeamError::Malformed);
        }
        let mut epoch = [0u8; 4];
        epoch.copy_from_slice(&plaintext[32..]);
        let epoch = u32::from_le_bytes(epoch);
        if epoch != self.epoch {
            return Err(TeamError::EpochMismatch {
                expected: self.epoch,
                got: epoch,
            });
        }
        let mut key = TeamKey {
            epoch,
            key: [0; 32],
        };
        key.key.copy_from_slice(&plaintext[..32]);
        Ok(key)
    }

    fn signed_part(&self) -> Vec<u8> {
        // Borrowing serialisation of the same field order as `Fields`.
        #[derive(Serialize)]
        struct FieldsRef<'a> {
            team: &'a TeamId,
            epoch: u32,
            boxes: &'a [KeyBox],
        }
        record::signed_part(
            RecordKind::KeyUpdate,
            &FieldsRef {
                team: &self.team,
                epoch: self.epoch,
                boxes: &self.boxes,
            },
        )
    }
}
