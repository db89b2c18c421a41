//! The in-memory L2CAP network: the test and simulation backend. It behaves like
//! BlueZ's sequential-packet sockets where the transport can tell: packets over the
//! MTU are refused, a receive buffer smaller than a packet truncates it, dialling a
//! PSM nobody listens on is refused, and an optional rate cap makes a channel as slow
//! as a BLE link (tens of kB/s). Adapters also advertise and scan: every adapter on
//! the network "hears" every other's advertisement bytes, as if all were in range.

use super::addr::{PSM_ANY, PSM_DYN_MAX, PSM_DYN_MIN};
use super::advert::Advert;
use super::{AddrKind, BleAddr, Channel, L2capBackend, L2capChannel, L2capListener, Mac, Sighting};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, PollSender};

/// Packets in flight per direction, like a socket's send buffer: a full channel
/// makes the sender wait.
const CHANNEL_PACKETS: usize = 16;
/// Connections waiting to be accepted per listener (the listen backlog).
const BACKLOG: usize = 8;
/// How often a scanning adapter reports what it hears, like a BLE scan seeing each
/// advertiser again every few advertising intervals.
const SCAN_INTERVAL: Duration = Duration::from_millis(200);

type Incoming = mpsc::Sender<(Channel, BleAddr)>;

/// A set of in-memory adapters that can reach each other. Clone shares it.
#[derive(Clone, Default)]
pub struct MemoryNet {
    listeners: Arc<Mutex<HashMap<(Mac, u16), Incoming>>>,
    /// Advertisement bytes being sent, by adapter.
    adverts: Arc<Mutex<HashMap<Mac, Vec<u8>>>>,
}

impl MemoryNet {
    /// An adapter with address `mac` on this network. Its channels carry packets of
    /// at most `mtu` bytes and, with `rate` (bytes per second), no faster than that.
    pub fn adapter(&self, mac: Mac, mtu: usize, rate: Option<u64>) -> MemoryAdapter {
        MemoryAdapter {
            net: self.clone(),
            mac,
            mtu: mtu.max(1),
            rate: rate.filter(|r| *r > 0),
        }
    }
}

/// One in-memory adapter: an [`L2capBackend`].
#[derive(Clone)]
pub struct MemoryAdapter {
    net: MemoryNet,
    mac: Mac,
    mtu: usize,
    rate: Option<u64>,
}

impl MemoryAdapter {
    /// Advertises `advert` and reports every decodable advertisement of the other
    /// adapters on `found_tx`, every [`SCAN_INTERVAL`], until `shutdown` (then the
    /// advertisement stops too). The task is owned by the token.
    pub fn start_discovery(
        &self,
        advert: Advert,
        found_tx: mpsc::Sender<Sighting>,
        shutdown: CancellationToken,
    ) {
        let adverts = self.net.adverts.clone();
        let me = self.mac;
        if let Ok(mut map) = adverts.lock() {
            map.insert(me, advert.encode().to_vec());
        }
        tokio::spawn(async move {
            // The first report comes one interval after start, like a real scan.
            let start = tokio::time::Instant::now() + SCAN_INTERVAL;
            let mut tick = tokio::time::interval_at(start, SCAN_INTERVAL);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let heard: Vec<(Mac, Vec<u8>)> = match adverts.lock() {
                    Ok(map) => map
                        .iter()
                        .filter(|(mac, _)| **mac != me)
                        .map(|(mac, bytes)| (*mac, bytes.clone()))
                        .collect(),
                    Err(_) => break,
                };
                for (mac, bytes) in heard {
                    let Ok(seen) = Advert::decode(&bytes) else {
                        continue;
                    };
                    let addr = BleAddr {
                        mac,
                        kind: AddrKind::Public,
                        psm: u16::from(seen.psm),
                    };
                    // Full: the loop is behind; the next scan reports it again.
                    let _ = found_tx.try_send(Sighting { addr, advert: seen });
                }
            }
            if let Ok(mut map) = adverts.lock() {
                map.remove(&me);
            }
        });
    }
}

impl L2capBackend for MemoryAdapter {
    fn local_addr(&self) -> (Mac, AddrKind) {
        (self.mac, AddrKind::Public)
    }

    fn listen(&self, psm: u16) -> io::Result<(Box<dyn L2capListener>, u16)> {
        let mut map = self
            .net
            .listeners
            .lock()
            .map_err(|_| io::Error::other("memory net poisoned"))?;
        let free = |p: u16| map.get(&(self.mac, p)).is_none_or(|tx| tx.is_closed());
        let psm = if psm == PSM_ANY {
            (PSM_DYN_MIN..=PSM_DYN_MAX)
                .find(|p| free(*p))
                .ok_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free psm"))?
        } else if free(psm) {
            psm
        } else {
            return Err(io::ErrorKind::AddrInUse.into());
        };
        let (tx, rx) = mpsc::channel(BACKLOG);
        map.insert((self.mac, psm), tx);
        Ok((Box::new(MemoryListener { rx }), psm))
    }

    fn dial(&self, addr: BleAddr) -> BoxFuture<'static, io::Result<Channel>> {
        let result = (|| {
            let map = self
                .net
                .listeners
                .lock()
                .map_err(|_| io::Error::other("memory net poisoned"))?;
            let tx = map
                .get(&(addr.mac, addr.psm))
                .ok_or(io::ErrorKind::ConnectionRefused)?;
            let (ours, theirs) = channel_pair(self.mtu, self.rate);
            let me = BleAddr {
                mac: self.mac,
                kind: AddrKind::Public,
                psm: PSM_ANY,
            };
            tx.try_send((Box::new(theirs), me))
                .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            Ok::<Channel, io::Error>(Box::new(ours))
        })();
        Box::pin(async move { result })
    }
}

struct MemoryListener {
    rx: mpsc::Receiver<(Channel, BleAddr)>,
}

impl L2capListener for MemoryListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Channel, BleAddr)>> {
        match ready!(self.rx.poll_recv(cx)) {
            Some(incoming) => Poll::Ready(Ok(incoming)),
            // Unreachable while we hold the receiver and the net holds the sender;
            // reported as an error rather than trusted.
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

fn channel_pair(mtu: usize, rate: Option<u64>) -> (MemoryChannel, MemoryChannel) {
    let (a_tx, a_rx) = mpsc::channel(CHANNEL_PACKETS);
    let (b_tx, b_rx) = mpsc::channel(CHANNEL_PACKETS);
    let end = |tx, rx| MemoryChannel {
        tx: PollSender::new(tx),
        rx,
        mtu,
        rate,
        pace: None,
    };
    (end(a_tx, b_rx), end(b_tx, a_rx))
}

/// One end of an in-memory channel.
struct MemoryChannel {
    tx: PollSender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    mtu: usize,
    rate: Option<u64>,
    /// With a rate cap: when the previous packet has "left the radio".
    pace: Option<Pin<Box<Sleep>>>,
}

impl L2capChannel for MemoryChannel {
    fn send_mtu(&self) -> usize {
        self.mtu
    }

    fn recv_mtu(&self) -> usize {
        self.mtu
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, packet: &[u8]) -> Poll<io::Result<usize>> {
        if packet.len() > self.mtu {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "packet larger than the mtu",
            )));
        }
        if let Some(pace) = &mut self.pace {
            ready!(pace.as_mut().poll(cx));
            self.pace = None;
        }
        if ready!(self.tx.poll_reserve(cx)).is_err() || self.tx.send_item(packet.to_vec()).is_err()
        {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if let Some(rate) = self.rate {
            let secs = packet.len() as f64 / rate as f64;
            self.pace = Some(Box::pin(tokio::time::sleep(Duration::from_secs_f64(secs))));
        }
        Poll::Ready(Ok(packet.len()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match ready!(self.rx.poll_recv(cx)) {
            Some(packet) => {
                // Like SOCK_SEQPACKET: what does not fit is lost.
                let n = packet.len().min(buf.len());
                buf[..n].copy_from_slice(&packet[..n]);
                Poll::Ready(Ok(n))
            }
            None => Poll::Ready(Ok(0)),
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.tx.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::poll_fn;

    fn to(mac: Mac, psm: u16) -> BleAddr {
        BleAddr {
            mac,
            kind: AddrKind::Public,
            psm,
        }
    }

    #[tokio::test]
    async fn packets_over_the_mtu_are_refused_and_small_buffers_truncate() {
        let net = MemoryNet::default();
        let (a, b) = (
            net.adapter(Mac([1; 6]), 8, None),
            net.adapter(Mac([2; 6]), 8, None),
        );
        let (mut l, psm) = b.listen(PSM_ANY).unwrap();
        assert_eq!(psm, PSM_DYN_MIN);
        let mut out = a.dial(to(Mac([2; 6]), psm)).await.unwrap();
        let (mut inc, _) = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
        let err = poll_fn(|cx| out.poll_send(cx, &[0; 9])).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        poll_fn(|cx| out.poll_send(cx, b"12345678")).await.unwrap();
        let mut small = [0u8; 3];
        assert_eq!(
            poll_fn(|cx| inc.poll_recv(cx, &mut small)).await.unwrap(),
            3
        );
        assert_eq!(&small, b"123");
        out.shutdown().unwrap();
        assert_eq!(
            poll_fn(|cx| inc.poll_recv(cx, &mut small)).await.unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn dialling_an_unused_psm_is_refused_and_a_used_one_cannot_be_bound() {
        let net = MemoryNet::default();
        let a = net.adapter(Mac([1; 6]), 23, None);
        let err = a.dial(to(Mac([2; 6]), 0x81)).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let (_l, psm) = a.listen(0x90).unwrap();
        assert_eq!(psm, 0x90);
        assert_eq!(
            a.listen(0x90).err().map(|e| e.kind()),
            Some(io::ErrorKind::AddrInUse)
        );
    }
}
