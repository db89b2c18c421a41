//! Bluetooth LE transport: libp2p over L2CAP connection-oriented channels
//! (`proto/bluetooth.md`), for laptops with no access point between them.
//!
//! The transport is generic over an [`L2capBackend`]: BlueZ's sequential-packet
//! sockets on Linux ([`bluez`], feature `bluetooth`), or an in-memory network
//! ([`memory`]) that tests and simulations use with the same framing and
//! dial/listen code. Each channel carries packets of at most its MTU; [`framing`]
//! turns that into the byte stream Noise and yamux expect, exactly as over TCP.

pub mod adapter;
pub mod addr;
pub mod advert;
#[cfg(all(target_os = "linux", feature = "bluetooth"))]
pub mod bluez;
pub mod framing;
pub mod memory;
mod transport;

pub use adapter::AdapterName;
pub use addr::{is_ble, AddrKind, BleAddr, BleAddrError, Mac};
pub use framing::{bytes_written, PacketStream};
pub use transport::BleTransport;

use futures::future::BoxFuture;
use std::io;
use std::task::{Context, Poll};

/// One L2CAP connection-oriented channel: a reliable, ordered sequence of packets
/// (SDUs) of at most the MTU each, like a `SOCK_SEQPACKET` socket.
pub trait L2capChannel: Send + Unpin + 'static {
    /// Largest packet [`Self::poll_send`] takes.
    fn send_mtu(&self) -> usize;
    /// Largest packet the peer may send; a receive buffer smaller than this may
    /// truncate a packet (the rest is lost, as with `SOCK_SEQPACKET`).
    fn recv_mtu(&self) -> usize;
    /// Sends one whole packet of at most [`Self::send_mtu`] bytes.
    fn poll_send(&mut self, cx: &mut Context<'_>, packet: &[u8]) -> Poll<io::Result<usize>>;
    /// Receives one packet into `buf`; `Ok(0)` is the end of the stream.
    fn poll_recv(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Closes the sending direction.
    fn shutdown(&mut self) -> io::Result<()>;
}

/// A fieldmesh advertisement seen from a device in range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    /// Where to dial it.
    pub addr: BleAddr,
    /// What it advertised.
    pub advert: advert::Advert,
}

/// Boxed channel, as backends hand them out.
pub type Channel = Box<dyn L2capChannel>;

/// Accepts incoming channels on one PSM.
pub trait L2capListener: Send + Unpin + 'static {
    /// The next incoming channel and its peer's address.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Channel, BleAddr)>>;
}

/// Where channels come from: a Bluetooth adapter, or an in-memory network.
pub trait L2capBackend: Send + Sync + 'static {
    /// The local adapter's address.
    fn local_addr(&self) -> (Mac, AddrKind);
    /// Listens on `psm` ([`addr::PSM_ANY`]: a free dynamic one); returns the
    /// listener and the PSM it is bound to.
    fn listen(&self, psm: u16) -> io::Result<(Box<dyn L2capListener>, u16)>;
    /// Connects to `addr`.
    fn dial(&self, addr: BleAddr) -> BoxFuture<'static, io::Result<Channel>>;
}
