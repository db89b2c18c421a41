//! Channel payload encryption (`proto/team.md` §3): a `TeamBody` is what goes in
//! the envelope body of a team channel message.

use super::{TeamError, TeamId, TeamKey};
use crate::crypto::at_rest::{self, Key, NONCE_LEN, SEAL_OVERHEAD};
use crate::wire;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Team body format version; the first byte of every body.
pub const BODY_VERSION: u8 = 1;
/// BLAKE3 `derive_key` context for per-channel keys.
pub const CHANNEL_KEY_CONTEXT: &str = "fieldmesh team channel key v1";
/// Bytes a body adds around the AES-GCM output: version, epoch, length prefix.
const FRAME_LEN: usize = 1 + 4 + 8;
/// Largest plaintext whose body still decodes under the 1 MiB wire limit. The
/// envelope body cap (64 KiB by default) is usually the tighter bound.
pub const MAX_BODY_PLAINTEXT: usize = wire::MAX_DECODE_BYTES - FRAME_LEN - SEAL_OVERHEAD;

/// The body layout, in wire order.
#[derive(Serialize, Deserialize)]
struct TeamBody {
    version: u8,
    epoch: u32,
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

/// Encrypts a channel payload under the team key: AES-256-GCM with a per-channel key
/// `BLAKE3-derive_key(CHANNEL_KEY_CONTEXT, key ‖ team ‖ channel)` and associated data
/// `team ‖ channel ‖ author`, so a body cannot be moved to another team, channel or
/// author. Returns the encoded `TeamBody`.
pub fn encrypt_body(
    key: &TeamKey,
    team: &TeamId,
    channel: &str,
    author: &[u8; 32],
    plaintext: &[u8],
) -> Result<Vec<u8>, TeamError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    encrypt_body_with_nonce(key, team, channel, author, plaintext, &nonce)
}

/// [`encrypt_body`] with a chosen nonce; golden vectors only.
pub(super) fn encrypt_body_with_nonce(
    key: &TeamKey,
    team: &TeamId,
    channel: &str,
    author: &[u8; 32],
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, TeamError> {
    if plaintext.len() > MAX_BODY_PLAINTEXT {
        return Err(TeamError::TooLarge {
            len: plaintext.len(),
            max: MAX_BODY_PLAINTEXT,
        });
    }
    let channel_key = channel_key(key, team, channel);
    let sealed =
        at_rest::seal_with_nonce(&channel_key, nonce, &aad(team, channel, author), plaintext);
    let body = TeamBody {
        version: BODY_VERSION,
        epoch: key.epoch,
        sealed,
    };
    wire::encode(&body).map_err(|_| TeamError::Malformed)
}

/// Decrypts a body with whichever of `keys` has its epoch.
pub fn decrypt_body(
    keys: &[TeamKey],
    team: &TeamId,
    channel: &str,
    author: &[u8; 32],
    body: &[u8],
) -> Result<Vec<u8>, TeamError> {
    let body = decode(body)?;
    let key = keys
        .iter()
        .find(|k| k.epoch == body.epoch)
        .ok_or(TeamError::UnknownEpoch { epoch: body.epoch })?;
    at_rest::open(
        &channel_key(key, team, channel),
        &aad(team, channel, author),
        &body.sealed,
    )
    .map_err(|_| TeamError::Decrypt)
}

/// The key epoch a body was sealed under, for telling "need a newer key" apart from
/// garbage before trying to decrypt.
pub fn body_epoch(body: &[u8]) -> Result<u32, TeamError> {
    decode(body).map(|b| b.epoch)
}

fn decode(bytes: &[u8]) -> Result<TeamBody, TeamError> {
    let version = *bytes.first().ok_or(TeamError::Malformed)?;
    if version != BODY_VERSION {
        return Err(TeamError::UnknownVersion { version });
    }
    let body: TeamBody = wire::decode(bytes).map_err(|_| TeamError::Malformed)?;
    if body.sealed.len() < SEAL_OVERHEAD {
        return Err(TeamError::Malformed);
    }
    Ok(body)
}

/// The per-(key, team, channel) AES key. The channel comes last, so the variable
/// length needs no separator.
fn channel_key(key: &TeamKey, team: &TeamId, channel: &str) -> Key {
    let mut material = Zeroizing::new(Vec::with_capacity(32 + 16 + channel.len()));
    material.extend_from_slice(&key.key);
    material.extend_from_slice(&team.0);
    material.extend_from_slice(channel.as_bytes());
    let derived = Zeroizing::new(blake3::derive_key(CHANNEL_KEY_CONTEXT, &material));
    Key::from_bytes(*derived)
}

/// `team ‖ channel ‖ author`: fixed-length fields on both ends, so unambiguous.
fn aad(team: &TeamId, channel: &str, author: &[u8; 32]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + channel.len() + 32);
    aad.extend_from_slice(&team.0);
    aad.extend_from_slice(channel.as_bytes());
    aad.extend_from_slice(author);
    aad
}
