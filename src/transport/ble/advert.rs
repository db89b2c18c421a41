//! The BLE advertisement that announces a fieldmesh node (`proto/bluetooth.md` §2):
//! service data under [`SERVICE_UUID`], 10 bytes, small enough for a legacy
//! 31-byte advertising PDU. Pure: no I/O, safe to fuzz.

use super::addr::{PSM_DYN_MAX, PSM_DYN_MIN};
use crate::gossip::TeamTag;
use libp2p::PeerId;

/// fieldmesh's 128-bit service UUID (random, version 4), most significant byte first
/// as printed: `d3b0c695-03fe-4ee0-aa15-a5314fc48e6a`.
pub const SERVICE_UUID: u128 = 0xd3b0c695_03fe_4ee0_aa15_a5314fc48e6a;
/// Service data version this code writes and reads.
pub const VERSION: u8 = 1;
/// Encoded length: version, team hint (4), PSM, peer hint (4).
pub const LEN: usize = 10;
/// Domain separation for the team hint.
const TEAM_HINT_DOMAIN: &[u8] = b"fieldmesh/ble/team-hint/v1";

/// What a node advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    /// First 4 bytes of BLAKE3(domain ‖ team tag): scanners skip other teams
    /// without connecting. Not a secret, not authentication.
    pub team_hint: [u8; 4],
    /// The L2CAP PSM the node listens on (0x80..=0xff).
    pub psm: u8,
    /// Last 4 bytes of the peer id: tells a scanner it is already connected to
    /// this node over IP, so it does not dial it over BLE.
    pub peer_hint: [u8; 4],
}

/// Why service data is not a fieldmesh advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdvertError {
    /// Not exactly [`LEN`] bytes.
    #[error("advertisement of {len} bytes (expected {LEN})")]
    BadLength {
        /// Bytes received.
        len: usize,
    },
    /// A version this node does not speak.
    #[error("advertisement version {0}")]
    UnknownVersion(u8),
    /// The PSM is outside the dynamic LE range.
    #[error("advertised psm {0:#04x} is not a dynamic LE psm")]
    BadPsm(u8),
}

/// The team hint of `team`.
pub fn team_hint(team: &TeamTag) -> [u8; 4] {
    let mut h = blake3::Hasher::new();
    h.update(TEAM_HINT_DOMAIN);
    h.update(team.as_str().as_bytes());
    let mut out = [0u8; 4];
    out.copy_from_slice(&h.finalize().as_bytes()[..4]);
    out
}

/// The peer hint of `peer`.
pub fn peer_hint(peer: &PeerId) -> [u8; 4] {
    let bytes = peer.to_bytes();
    let mut out = [0u8; 4];
    // A peer id is a multihash of at least 4 bytes; a shorter one hints zeros.
    if let Some(tail) = bytes.get(bytes.len().saturating_sub(4)..) {
        out[4 - tail.len()..].copy_from_slice(tail);
    }
    out
}

impl Advert {
    /// The advertisement of `peer` in `team`, listening on `psm`.
    pub fn new(team: &TeamTag, peer: &PeerId, psm: u8) -> Advert {
        Advert {
            team_hint: team_hint(team),
            psm,
            peer_hint: peer_hint(peer),
        }
    }

    /// The service data bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0] = VERSION;
        out[1..5].copy_from_slice(&self.team_hint);
        out[5] = self.psm;
        out[6..10].copy_from_slice(&self.peer_hint);
        out
    }

    /// Decodes service data received from any device in range.
    pub fn decode(bytes: &[u8]) -> Result<Advert, AdvertError> {
        let b: &[u8; LEN] = bytes
            .try_into()
            .map_err(|_| AdvertError::BadLength { len: bytes.len() })?;
        if b[0] != VERSION {
            return Err(AdvertError::UnknownVersion(b[0]));
        }
        if !(PSM_DYN_MIN..=PSM_DYN_MAX).contains(&u16::from(b[5])) {
            return Err(AdvertError::BadPsm(b[5]));
        }
        let mut team_hint = [0u8; 4];
        team_hint.copy_from_slice(&b[1..5]);
        let mut peer_hint = [0u8; 4];
        peer_hint.copy_from_slice(&b[6..10]);
        Ok(Advert {
            team_hint,
            psm: b[5],
            peer_hint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_bytes() {
        let a = Advert {
            team_hint: [0xde, 0xad, 0xbe, 0xef],
            psm: 0x81,
            peer_hint: [1, 2, 3, 4],
        };
        assert_eq!(
            data_encoding::HEXLOWER.encode(&a.encode()),
            "01deadbeef8101020304"
        );
        assert_eq!(Advert::decode(&a.encode()), Ok(a));
        let drill = TeamTag::new("drill").unwrap();
        // BLAKE3("fieldmesh/ble/team-hint/v1" ‖ "drill"), first 4 bytes (proto §2).
        assert_eq!(
            data_encoding::HEXLOWER.encode(&team_hint(&drill)),
            "68acfbf7"
        );
        assert_ne!(
            team_hint(&drill),
            team_hint(&TeamTag::new("ward-7").unwrap())
        );
    }

    #[test]
    fn rejects_bad_bytes_with_typed_errors() {
        let good = Advert::new(&TeamTag::new("drill").unwrap(), &PeerId::random(), 0x80).encode();
        assert_eq!(
            Advert::decode(&good[..9]),
            Err(AdvertError::BadLength { len: 9 })
        );
        assert_eq!(
            Advert::decode(&[good.as_slice(), &[0]].concat()),
            Err(AdvertError::BadLength { len: 11 })
        );
        let mut v2 = good;
        v2[0] = 2;
        assert_eq!(Advert::decode(&v2), Err(AdvertError::UnknownVersion(2)));
        let mut low = good;
        low[5] = 0x7f;
        assert_eq!(Advert::decode(&low), Err(AdvertError::BadPsm(0x7f)));
    }

    #[test]
    fn peer_hint_is_the_tail_of_the_peer_id() {
        let p = PeerId::random();
        assert_eq!(
            peer_hint(&p).as_slice(),
            &p.to_bytes()[p.to_bytes().len() - 4..]
        );
    }

    proptest! {
        #[test]
        fn round_trips(team in any::<[u8; 4]>(), psm in 0x80u8..=0xff, peer in any::<[u8; 4]>()) {
            let a = Advert { team_hint: team, psm, peer_hint: peer };
            prop_assert_eq!(Advert::decode(&a.encode()), Ok(a));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = Advert::decode(&bytes);
        }
    }
}
