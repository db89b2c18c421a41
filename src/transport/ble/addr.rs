//! The Bluetooth LE L2CAP address and its multiaddr form (`proto/bluetooth.md` §1).
//!
//! libp2p's `Multiaddr` has no Bluetooth protocol code, so a BLE address travels as a
//! single `/dns` component under the reserved `.invalid` top-level domain (RFC 6761):
//! `/dns/a4-c1-38-00-11-22.le-public.psm-81.ble.invalid`. TCP and QUIC refuse it
//! (they need `/ip4` or `/ip6`), so only the BLE transport takes it, and a name under
//! `.invalid` can never resolve should a DNS transport ever be added.

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use std::fmt;

/// Suffix of every BLE hostname.
const SUFFIX: &str = ".ble.invalid";
/// First dynamic LE PSM (Bluetooth Core 5.x, Vol 3 Part A §4.22).
pub const PSM_DYN_MIN: u16 = 0x80;
/// Last LE PSM.
pub const PSM_DYN_MAX: u16 = 0xff;
/// In a listen address only: let the controller pick a free dynamic PSM.
pub const PSM_ANY: u16 = 0;

/// A 48-bit Bluetooth device address, most significant byte first (as printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `00:00:00:00:00:00`: in a listen address, any local adapter.
    pub const ANY: Mac = Mac([0; 6]);
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{g:02X}")
    }
}

/// LE address type: the controller needs it to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKind {
    /// An IEEE-assigned public address.
    Public,
    /// A random (static or private) address.
    Random,
}

/// An L2CAP connection-oriented channel endpoint on an LE device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BleAddr {
    /// Device address.
    pub mac: Mac,
    /// Public or random.
    pub kind: AddrKind,
    /// Protocol/service multiplexer: 0x80..=0xff, or [`PSM_ANY`] when listening.
    pub psm: u16,
}

/// Why a multiaddr is not a BLE address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BleAddrError {
    /// Not a `/dns/….ble.invalid` address (another transport's, or empty).
    #[error("not a bluetooth address")]
    NotBluetooth,
    /// The device address is not six hex bytes separated by `-`.
    #[error("bad bluetooth device address")]
    BadMac,
    /// The address type is neither `le-public` nor `le-random`.
    #[error("bad address type (expected le-public or le-random)")]
    BadKind,
    /// The PSM is not `psm-` and two hex digits in 0x80..=0xff (or 00 to listen).
    #[error("bad psm (expected psm-80 to psm-ff, or psm-00 to listen)")]
    BadPsm,
    /// Something other than `/p2p/…` follows the address.
    #[error("unexpected protocol after the bluetooth address")]
    Trailing,
}

impl BleAddr {
    /// Whether this address can be dialled (a real device and a dynamic PSM).
    pub fn is_dialable(&self) -> bool {
        self.mac != Mac::ANY && (PSM_DYN_MIN..=PSM_DYN_MAX).contains(&self.psm)
    }

    /// The multiaddr form (no `/p2p` suffix).
    pub fn to_multiaddr(&self) -> Multiaddr {
        Multiaddr::empty().with(Protocol::Dns(self.hostname().into()))
    }

    fn hostname(&self) -> String {
        let m = self.mac.0;
        let kind = match self.kind {
            AddrKind::Public => "le-public",
            AddrKind::Random => "le-random",
        };
        format!(
            "{:02x}-{:02x}-{:02x}-{:02x}-{:02x}-{:02x}.{kind}.psm-{:02x}{SUFFIX}",
            m[0], m[1], m[2], m[3], m[4], m[5], self.psm
        )
    }

    /// Parses the multiaddr form; a trailing `/p2p/<peer id>` (which the swarm adds
    /// when dialling a known peer) is allowed and ignored.
    pub fn from_multiaddr(addr: &Multiaddr) -> Result<BleAddr, BleAddrError> {
        let mut it = addr.iter();
        let Some(Protocol::Dns(host)) = it.next() else {
            return Err(BleAddrError::NotBluetooth);
        };
        let parsed = Self::parse_hostname(&host)?;
        match (it.next(), it.next()) {
            (None, _) | (Some(Protocol::P2p(_)), None) => Ok(parsed),
            _ => Err(BleAddrError::Trailing),
        }
    }

    fn parse_hostname(host: &str) -> Result<BleAddr, BleAddrError> {
        let host = host
            .strip_suffix(SUFFIX)
            .ok_or(BleAddrError::NotBluetooth)?;
        let mut labels = host.split('.');
        let (Some(mac), Some(kind), Some(psm), None) =
            (labels.next(), labels.next(), labels.next(), labels.next())
        else {
            return Err(BleAddrError::NotBluetooth);
        };
        Ok(BleAddr {
            mac: parse_mac(mac)?,
            kind: match kind {
                "le-public" => AddrKind::Public,
                "le-random" => AddrKind::Random,
                _ => return Err(BleAddrError::BadKind),
            },
            psm: parse_psm(psm)?,
        })
    }
}

impl fmt::Display for BleAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_multiaddr())
    }
}

/// Whether `addr` is a BLE address (used to tell BLE links from IP links).
pub fn is_ble(addr: &Multiaddr) -> bool {
    matches!(addr.iter().next(), Some(Protocol::Dns(h)) if h.ends_with(SUFFIX))
}

fn parse_mac(s: &str) -> Result<Mac, BleAddrError> {
    let mut out = [0u8; 6];
    let mut parts = s.split('-');
    for byte in &mut out {
        let p = parts.next().ok_or(BleAddrError::BadMac)?;
        if p.len() != 2 {
            return Err(BleAddrError::BadMac);
        }
        *byte = u8::from_str_radix(p, 16).map_err(|_| BleAddrError::BadMac)?;
    }
    if parts.next().is_some() {
        return Err(BleAddrError::BadMac);
    }
    Ok(Mac(out))
}

fn parse_psm(s: &str) -> Result<u16, BleAddrError> {
    let hex = s.strip_prefix("psm-").ok_or(BleAddrError::BadPsm)?;
    if hex.len() != 2 {
        return Err(BleAddrError::BadPsm);
    }
    let psm = u16::from_str_radix(hex, 16).map_err(|_| BleAddrError::BadPsm)?;
    if psm == PSM_ANY || (PSM_DYN_MIN..=PSM_DYN_MAX).contains(&psm) {
        Ok(psm)
    } else {
        Err(BleAddrError::BadPsm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Result<BleAddr, BleAddrError> {
        BleAddr::from_multiaddr(&s.parse().unwrap())
    }

    #[test]
    fn multiaddr_round_trips() {
        let a = BleAddr {
            mac: Mac([0xa4, 0xc1, 0x38, 0x00, 0x11, 0x22]),
            kind: AddrKind::Random,
            psm: 0x81,
        };
        let m = a.to_multiaddr();
        assert_eq!(
            m.to_string(),
            "/dns/a4-c1-38-00-11-22.le-random.psm-81.ble.invalid"
        );
        assert_eq!(BleAddr::from_multiaddr(&m), Ok(a));
        assert!(is_ble(&m));
        assert!(a.is_dialable());
        assert_eq!(a.mac.to_string(), "A4:C1:38:00:11:22");
    }

    #[test]
    fn accepts_upper_case_hex_and_a_p2p_suffix() {
        let peer = libp2p::PeerId::random();
        let a = addr(&format!(
            "/dns/A4-C1-38-00-11-22.le-public.psm-FF.ble.invalid/p2p/{peer}"
        ))
        .unwrap();
        assert_eq!(a.psm, 0xff);
        assert_eq!(a.kind, AddrKind::Public);
    }

    #[test]
    fn listen_any_is_not_dialable() {
        let a = addr("/dns/00-00-00-00-00-00.le-public.psm-00.ble.invalid").unwrap();
        assert_eq!((a.mac, a.psm), (Mac::ANY, PSM_ANY));
        assert!(!a.is_dialable());
    }

    #[test]
    fn rejects_bad_input_with_typed_errors() {
        use BleAddrError::*;
        for (s, want) in [
            ("/ip4/127.0.0.1/tcp/1", NotBluetooth),
            ("/dns/example.com", NotBluetooth),
            ("/dns/a4-c1-38-00-11-22.le-public.ble.invalid", NotBluetooth),
            (
                "/dns/x.a4-c1-38-00-11-22.le-public.psm-81.ble.invalid",
                NotBluetooth,
            ),
            ("/dns/a4-c1-38-00-11.le-public.psm-81.ble.invalid", BadMac),
            (
                "/dns/a4-c1-38-00-11-22-33.le-public.psm-81.ble.invalid",
                BadMac,
            ),
            (
                "/dns/a4-c1-38-00-11-2g.le-public.psm-81.ble.invalid",
                BadMac,
            ),
            (
                "/dns/a4c-1-38-00-11-22.le-public.psm-81.ble.invalid",
                BadMac,
            ),
            ("/dns/a4-c1-38-00-11-22.br-edr.psm-81.ble.invalid", BadKind),
            (
                "/dns/a4-c1-38-00-11-22.le-public.psm-7f.ble.invalid",
                BadPsm,
            ),
            (
                "/dns/a4-c1-38-00-11-22.le-public.psm-181.ble.invalid",
                BadPsm,
            ),
            ("/dns/a4-c1-38-00-11-22.le-public.81.ble.invalid", BadPsm),
            (
                "/dns/a4-c1-38-00-11-22.le-public.psm-81.ble.invalid/tcp/1",
                Trailing,
            ),
        ] {
            assert_eq!(addr(s), Err(want), "{s}");
        }
        assert!(!is_ble(&"/ip4/127.0.0.1/tcp/1".parse().unwrap()));
    }
}
