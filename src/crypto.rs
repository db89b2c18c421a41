//! Cryptography that is not transport security: passphrase protection of data at rest
//! ([`at_rest`], `proto/at-rest.md`) and end-to-end direct messages ([`dm`],
//! `proto/dm.md`). Team keys build on both (`crate::team`, `proto/team.md`).
//!
//! Everything here is pure: bytes in, bytes out. No file or network I/O, no tokio,
//! and the only outside input is the operating system's random number generator.
//! Secret keys live in types that zeroize their memory on drop.

pub mod at_rest;
pub mod dm;

/// Why a cryptographic operation failed. Decryption failures say nothing about
/// *why* the bytes did not authenticate: wrong key and tampering look the same.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// Fewer bytes than the smallest valid input.
    #[error("sealed data truncated: {len} bytes")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The first byte is not a version this node understands.
    #[error("unknown format version {version}")]
    UnknownVersion {
        /// The version byte received.
        version: u8,
    },
    /// The input is larger than the format can carry.
    #[error("{len} bytes exceed the {max} byte limit")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Authentication failed: wrong key, wrong associated data or tampered bytes.
    #[error("decryption failed")]
    Decrypt,
    /// A DM opened, but its Noise static key is not the claimed author's key.
    #[error("direct message was sealed by someone other than its author")]
    SenderMismatch,
    /// An ed25519 public key that does not decode to a usable curve point.
    #[error("invalid public key")]
    BadPublicKey,
    /// Argon2 refused the parameters (out of the range argon2 supports).
    #[error("key derivation parameters rejected")]
    Kdf,
    /// The Noise library refused to build a handshake (a bug, not bad input).
    #[error("noise handshake setup failed")]
    Noise,
}
