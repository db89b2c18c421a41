//! The BlueZ backend (Linux, feature `bluetooth`): L2CAP LE sequential-packet
//! sockets from the kernel, advertising and scanning through bluetoothd over D-Bus
//! (the `bluer` crate), on BlueZ's default adapter or one chosen by name. Not
//! verified on hardware: see the README, *Bluetooth*.

use super::addr::PSM_ANY;
use super::advert::{Advert, SERVICE_UUID};
use super::{
    AdapterName, AddrKind, BleAddr, Channel, L2capBackend, L2capChannel, L2capListener, Mac,
    Sighting,
};
use bluer::l2cap::{SeqPacket, SeqPacketListener, Socket, SocketAddr};
use bluer::{Adapter, AdapterEvent, Address, AddressType, Uuid};
use futures::future::BoxFuture;
use futures::StreamExt;
use std::io;
use std::net::Shutdown;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How long opening the adapter may take before the node gives up on Bluetooth: a
/// missing D-Bus or bluetoothd fails at once, a hung one must not delay start-up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections waiting to be accepted per listener.
const BACKLOG: u32 = 8;
/// The smallest LE CoC MTU (Core spec): used if the kernel will not say.
const MIN_MTU: usize = 23;

/// Why there is no Bluetooth transport on this machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// bluetoothd or the system D-Bus is not there, or there is no adapter.
    #[error("no adapter")]
    NoAdapter(#[source] bluer::Error),
    /// bluetoothd runs, but has no adapter of the name asked for.
    #[error("no adapter {name} (bluetoothd has {})", list(.present))]
    NotFound {
        /// The name asked for.
        name: AdapterName,
        /// The adapters bluetoothd has.
        present: Vec<String>,
    },
    /// The adapter is powered off.
    #[error("adapter {0} is powered off")]
    PoweredOff(String),
    /// bluetoothd did not answer in time.
    #[error("bluetoothd did not answer within {0:?}")]
    Timeout(Duration),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// One BlueZ adapter: BlueZ's default, or the one named.
pub struct Bluez {
    adapter: Adapter,
    mac: Mac,
    kind: AddrKind,
}

impl Bluez {
    /// Opens the adapter `name`, or BlueZ's default if `None`; fails fast where
    /// there is none.
    pub async fn open(name: Option<&AdapterName>) -> Result<Bluez, OpenError> {
        tokio::time::timeout(OPEN_TIMEOUT, Self::open_inner(name))
            .await
            .map_err(|_| OpenError::Timeout(OPEN_TIMEOUT))?
    }

    async fn open_inner(name: Option<&AdapterName>) -> Result<Bluez, OpenError> {
        let session = bluer::Session::new().await.map_err(OpenError::NoAdapter)?;
        let adapter = match name {
            None => session.default_adapter().await,
            Some(name) => {
                // `Session::adapter` only builds a proxy; without this check a
                // missing adapter would surface as an obscure D-Bus error later.
                let present = session
                    .adapter_names()
                    .await
                    .map_err(OpenError::NoAdapter)?;
                if !present.iter().any(|p| p == name.as_str()) {
                    return Err(OpenError::NotFound {
                        name: name.clone(),
                        present,
                    });
                }
                session.adapter(name.as_str())
            }
        }
        .map_err(OpenError::NoAdapter)?;
        if !adapter.is_powered().await.map_err(OpenError::NoAdapter)? {
            return Err(OpenError::PoweredOff(adapter.name().to_owned()));
        }
        let mac = Mac(adapter.address().await.map_err(OpenError::NoAdapter)?.0);
        let kind = match adapter.address_type().await.map_err(OpenError::NoAdapter)? {
            AddressType::LeRandom => AddrKind::Random,
            _ => AddrKind::Public,
        };
        Ok(Bluez { adapter, mac, kind })
    }

    /// The adapter's BlueZ name, e.g. `hci0`.
    pub fn name(&self) -> &str {
        self.adapter.name()
    }

    /// Advertises `advert` and reports fieldmesh advertisements seen nearby on
    /// `found_tx` until `shutdown`; runs as a task owned by the token.
    pub fn start_discovery(
        &self,
        advert: Advert,
        found_tx: mpsc::Sender<Sighting>,
        shutdown: CancellationToken,
    ) {
        let adapter = self.adapter.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                r = discover(adapter, advert, found_tx) => {
                    if let Err(e) = r {
                        warn!(error = %e, "bluetooth: advertising or scanning stopped");
                    }
                }
            }
        });
    }
}

async fn discover(
    adapter: Adapter,
    advert: Advert,
    found_tx: mpsc::Sender<Sighting>,
) -> bluer::Result<()> {
    let uuid = Uuid::from_u128(SERVICE_UUID);
    // The handle unregisters the advertisement when dropped (at shutdown).
    let _advertising = adapter
        .advertise(bluer::adv::Advertisement {
            advertisement_type: bluer::adv::Type::Peripheral,
            service_data: [(uuid, advert.encode().to_vec())].into(),
            discoverable: Some(true),
            ..Default::default()
        })
        .await?;
    let mut events = adapter.discover_devices_with_changes().await?;
    while let Some(ev) = events.next().await {
        let AdapterEvent::DeviceAdded(addr) = ev else {
            continue;
        };
        let Ok(device) = adapter.device(addr) else {
            continue;
        };
        let Ok(Some(data)) = device.service_data().await else {
            continue;
        };
        let Some(bytes) = data.get(&uuid) else {
            continue;
        };
        match Advert::decode(bytes) {
            Ok(seen) => {
                let kind = match device.address_type().await {
                    Ok(AddressType::LeRandom) => AddrKind::Random,
                    _ => AddrKind::Public,
                };
                let addr = BleAddr {
                    mac: Mac(addr.0),
                    kind,
                    psm: u16::from(seen.psm),
                };
                // Full: the loop is behind; the device advertises again shortly.
                let _ = found_tx.try_send(Sighting { addr, advert: seen });
            }
            Err(e) => debug!(device = %addr, error = %e, "ignoring a bad fieldmesh advertisement"),
        }
    }
    Ok(())
}

fn sock_addr(a: &BleAddr) -> SocketAddr {
    let kind = match a.kind {
        AddrKind::Public => AddressType::LePublic,
        AddrKind::Random => AddressType::LeRandom,
    };
    SocketAddr::new(Address(a.mac.0), kind, a.psm)
}

impl L2capBackend for Bluez {
    fn local_addr(&self) -> (Mac, AddrKind) {
        (self.mac, self.kind)
    }

    fn listen(&self, psm: u16) -> io::Result<(Box<dyn L2capListener>, u16)> {
        let socket = Socket::<SeqPacket>::new_seq_packet()?;
        // Bound to any adapter: only this one advertises the PSM, so peers reach the
        // listener through it, and a second node on the same host (another
        // adapter) listens on another PSM, as the kernel gives each a free one.
        socket.bind(SocketAddr::new(Address::any(), AddressType::LePublic, psm))?;
        let listener = socket.listen(BACKLOG)?;
        // With PSM_ANY the kernel picks a free dynamic PSM when listening starts.
        let bound = match psm {
            PSM_ANY => listener.as_ref().local_addr()?.psm,
            p => p,
        };
        Ok((Box::new(BluezListener(listener)), bound))
    }

    fn dial(&self, addr: BleAddr) -> BoxFuture<'static, io::Result<Channel>> {
        // Leave from this adapter: unbound, the kernel would route the connection
        // through the first controller whose address is not the peer's, which on
        // a host with several adapters need not be the one chosen. (Binding also
        // takes a free dynamic PSM as the local end's; it is never sent.)
        let local = sock_addr(&BleAddr {
            mac: self.mac,
            kind: self.kind,
            psm: PSM_ANY,
        });
        Box::pin(async move {
            let socket = Socket::<SeqPacket>::new_seq_packet()?;
            socket.bind(local)?;
            let s = socket.connect(sock_addr(&addr)).await?;
            Ok(Box::new(BluezChannel::new(s)) as Channel)
        })
    }
}

struct BluezListener(SeqPacketListener);

impl L2capListener for BluezListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Channel, BleAddr)>> {
        self.0.poll_accept(cx).map_ok(|(s, from)| {
            let kind = match from.addr_type {
                AddressType::LeRandom => AddrKind::Random,
                _ => AddrKind::Public,
            };
            let from = BleAddr {
                mac: Mac(from.addr.0),
                kind,
                psm: PSM_ANY,
            };
            (Box::new(BluezChannel::new(s)) as Channel, from)
        })
    }
}

struct BluezChannel {
    socket: SeqPacket,
    send_mtu: usize,
    recv_mtu: usize,
}

impl BluezChannel {
    fn new(socket: SeqPacket) -> Self {
        let send_mtu = socket.send_mtu().unwrap_or(MIN_MTU).max(MIN_MTU);
        let recv_mtu = socket.recv_mtu().unwrap_or(MIN_MTU).max(MIN_MTU);
        BluezChannel {
            socket,
            send_mtu,
            recv_mtu,
        }
    }
}

impl L2capChannel for BluezChannel {
    fn send_mtu(&self) -> usize {
        self.send_mtu
    }

    fn recv_mtu(&self) -> usize {
        self.recv_mtu
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, packet: &[u8]) -> Poll<io::Result<usize>> {
        self.socket.poll_send(cx, packet)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = tokio::io::ReadBuf::new(buf);
        self.socket
            .poll_recv(cx, &mut rb)
            .map_ok(|()| rb.filled().len())
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.socket.shutdown(Shutdown::Write)
    }
}
