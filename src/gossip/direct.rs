//! Direct messages on the reserved `dm` channel (`proto/dm.md`): the envelope body
//! names the recipient and carries a one-way Noise X message only the recipient can
//! open ([`crate::crypto::dm`]). Every node follows `dm`, so DMs are relayed and
//! caught up like any message, as ciphertext.

use crate::crypto::{dm, CryptoError};
use crate::wire;
use libp2p::identity::{ed25519, PeerId, PublicKey};
use serde::{Deserialize, Serialize};

/// The reserved channel of direct messages.
pub const DM_CHANNEL: &str = "dm";
/// Version of [`DmBody`].
pub const DM_BODY_VERSION: u8 = 1;

/// The body of an envelope on the `dm` channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmBody {
    /// [`DM_BODY_VERSION`].
    pub version: u8,
    /// Recipient's ed25519 public key (from its peer id).
    pub recipient: [u8; 32],
    /// `crypto::dm::seal_dm` output.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// Why a DM could not be built or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DmError {
    /// The peer id does not carry an ed25519 key (fieldmesh ids always do).
    #[error("peer id {0} has no ed25519 key")]
    NotEd25519(PeerId),
    /// The body is not a DM body of a known version.
    #[error("malformed DM body")]
    Malformed,
    /// Sealing or opening failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The ed25519 public key inside a peer id (identity-multihash ids only).
pub fn ed25519_of(peer: &PeerId) -> Result<[u8; 32], DmError> {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return Err(DmError::NotEd25519(*peer));
    }
    PublicKey::try_decode_protobuf(mh.digest())
        .ok()
        .and_then(|k| k.try_into_ed25519().ok())
        .map(|k| k.to_bytes())
        .ok_or(DmError::NotEd25519(*peer))
}

/// Seals `text` from `sender` to `recipient` as a DM envelope body.
pub fn seal_body(
    sender: &ed25519::Keypair,
    recipient: &PeerId,
    text: &[u8],
) -> Result<Vec<u8>, DmError> {
    let recipient = ed25519_of(recipient)?;
    let sealed = dm::seal_dm(&dm::seed_of(sender), &recipient, text)?;
    let body = DmBody {
        version: DM_BODY_VERSION,
        recipient,
        sealed,
    };
    wire::encode(&body).map_err(|_| DmError::Malformed)
}

/// Decodes a DM body.
pub fn decode_body(bytes: &[u8]) -> Result<DmBody, DmError> {
    let body: DmBody = wire::decode(bytes).map_err(|_| DmError::Malformed)?;
    if body.version != DM_BODY_VERSION {
        return Err(DmError::Malformed);
    }
    Ok(body)
}

/// Opens a DM body for `me` if it is addressed to me: `Ok(None)` when it is for
/// someone else, an error when it is for me but does not open (or was sealed by
/// someone other than `author`).
pub fn open_body(
    me: &ed25519::Keypair,
    author: &[u8; 32],
    bytes: &[u8],
) -> Result<Option<Vec<u8>>, DmError> {
    let body = decode_body(bytes)?;
    if body.recipient != me.public().to_bytes() {
        return Ok(None);
    }
    Ok(Some(dm::open_dm(&dm::seed_of(me), author, &body.sealed)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(k: &ed25519::Keypair) -> PeerId {
        PublicKey::from(k.public()).to_peer_id()
    }

    #[test]
    fn only_the_recipient_opens_and_the_author_is_checked() {
        let (a, c, b) = (
            ed25519::Keypair::generate(),
            ed25519::Keypair::generate(),
            ed25519::Keypair::generate(),
        );
        let body = seal_body(&a, &peer(&c), b"bay 4 DNACPR query").unwrap();
        assert!(!body.windows(4).any(|w| w == b"bay "));
        assert_eq!(
            open_body(&c, &a.public().to_bytes(), &body)
                .unwrap()
                .unwrap(),
            b"bay 4 DNACPR query"
        );
        assert_eq!(open_body(&b, &a.public().to_bytes(), &body).unwrap(), None);
        assert!(
            open_body(&c, &b.public().to_bytes(), &body).is_err(),
            "re-signed by another author"
        );
        assert!(decode_body(&[1, 2, 3]).is_err());
    }

    #[test]
    fn peer_ids_give_their_ed25519_key() {
        let k = ed25519::Keypair::generate();
        assert_eq!(ed25519_of(&peer(&k)).unwrap(), k.public().to_bytes());
        assert!(ed25519_of(&PeerId::random()).is_err());
    }
}
