//! The one bincode configuration used for every fieldmesh wire and disk format.
//!
//! `proto/README.md` states what it produces: little-endian fixed-width integers,
//! `u64` little-endian length prefixes for byte strings and strings, fields in
//! declaration order with no padding or tags. Keeping a single configuration here
//! means no second encoding can creep in.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use serde::{de::DeserializeOwned, Serialize};

/// Hard ceiling on any single decoded value (1 MiB): a decoder never allocates past it,
/// whatever length prefix a peer sends.
pub const MAX_DECODE_BYTES: usize = 1 << 20;

/// The bincode configuration type behind [`config`].
pub type WireConfig = Configuration<LittleEndian, Fixint, Limit<MAX_DECODE_BYTES>>;

/// The single bincode configuration: little endian, fixed-width integers, 1 MiB limit.
pub fn config() -> WireConfig {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_DECODE_BYTES>()
}

/// Encodes `value` with the wire configuration.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, config())
}

/// Decodes a `T` that must fill `bytes` exactly; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())?;
    if used != bytes.len() {
        return Err(WireError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Why a byte string could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// bincode rejected the bytes (truncated, bad length prefix, invalid UTF-8, over limit).
    #[error("malformed encoding")]
    Malformed(#[from] bincode::error::DecodeError),
    /// The value decoded but bytes were left over.
    #[error("{extra} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_fixed_width_little_endian() {
        let bytes = encode(&(1u8, 0x0102u16, 3u64, "ab")).unwrap();
        assert_eq!(
            bytes,
            [1, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']
        );
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        let bytes = [0xff; 16];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<u32>(&bytes),
            Err(WireError::TrailingBytes { extra: 1 })
        ));
    }
}
