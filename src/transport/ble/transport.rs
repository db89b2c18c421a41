//! [`BleTransport`]: the libp2p `Transport` over any [`L2capBackend`]. It takes only
//! BLE multiaddrs (`proto/bluetooth.md` §1), so it sits beside TCP and QUIC in an
//! `OrTransport`, and its output is a byte stream that Noise and yamux upgrade like
//! a TCP stream.

use super::framing::PacketStream;
use super::{BleAddr, L2capBackend, L2capListener, Mac};
use futures::future::{BoxFuture, FutureExt, Ready};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::{Multiaddr, Transport};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

struct Listener {
    id: ListenerId,
    inner: Box<dyn L2capListener>,
    addr: Multiaddr,
}

/// libp2p transport over L2CAP channels from `backend`.
pub struct BleTransport {
    backend: Arc<dyn L2capBackend>,
    listeners: Vec<Listener>,
    events: VecDeque<TransportEvent<Ready<io::Result<PacketStream>>, io::Error>>,
    /// Woken when a listener or event is added between polls.
    waker: Option<Waker>,
}

impl BleTransport {
    /// A transport over `backend`.
    pub fn new(backend: Arc<dyn L2capBackend>) -> Self {
        BleTransport {
            backend,
            listeners: Vec::new(),
            events: VecDeque::new(),
            waker: None,
        }
    }

    fn push(&mut self, ev: TransportEvent<Ready<io::Result<PacketStream>>, io::Error>) {
        self.events.push_back(ev);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl Transport for BleTransport {
    type Output = PacketStream;
    type Error = io::Error;
    type ListenerUpgrade = Ready<io::Result<PacketStream>>;
    type Dial = BoxFuture<'static, io::Result<PacketStream>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let Ok(want) = BleAddr::from_multiaddr(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let (mac, kind) = self.backend.local_addr();
        if want.mac != Mac::ANY && want.mac != mac {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        let (inner, psm) = self
            .backend
            .listen(want.psm)
            .map_err(TransportError::Other)?;
        let listen_addr = BleAddr { mac, kind, psm }.to_multiaddr();
        self.listeners.push(Listener {
            id,
            inner,
            addr: listen_addr.clone(),
        });
        self.push(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr,
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(i) = self.listeners.iter().position(|l| l.id == id) else {
            return false;
        };
        let l = self.listeners.remove(i);
        self.push(TransportEvent::AddressExpired {
            listener_id: id,
            listen_addr: l.addr,
        });
        self.push(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        match BleAddr::from_multiaddr(&addr) {
            Ok(to) if to.is_dialable() => Ok(self
                .backend
                .dial(to)
                .map(|r| r.map(PacketStream::new))
                .boxed()),
            _ => Err(TransportError::MultiaddrNotSupported(addr)),
        }
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        if let Some(ev) = this.events.pop_front() {
            return Poll::Ready(ev);
        }
        let mut i = 0;
        while i < this.listeners.len() {
            let l = &mut this.listeners[i];
            match l.inner.poll_accept(cx) {
                Poll::Ready(Ok((channel, from))) => {
                    return Poll::Ready(TransportEvent::Incoming {
                        listener_id: l.id,
                        upgrade: futures::future::ready(Ok(PacketStream::new(channel))),
                        local_addr: l.addr.clone(),
                        send_back_addr: from.to_multiaddr(),
                    });
                }
                // A failed listener is closed and reported; the others go on.
                Poll::Ready(Err(error)) => {
                    let l = this.listeners.remove(i);
                    return Poll::Ready(TransportEvent::ListenerClosed {
                        listener_id: l.id,
                        reason: Err(error),
                    });
                }
                Poll::Pending => i += 1,
            }
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::super::memory::MemoryNet;
    use super::super::AddrKind;
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
    use libp2p::core::transport::{ListenerId, PortUse};
    use libp2p::core::Endpoint;

    fn opts() -> DialOpts {
        DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::New,
        }
    }

    #[tokio::test]
    async fn listens_reports_its_address_and_accepts_a_dial() {
        let net = MemoryNet::default();
        let mut a = BleTransport::new(Arc::new(net.adapter(Mac([0xa; 6]), 23, None)));
        let mut b = BleTransport::new(Arc::new(net.adapter(Mac([0xb; 6]), 23, None)));
        let any: Multiaddr = "/dns/00-00-00-00-00-00.le-public.psm-00.ble.invalid"
            .parse()
            .unwrap();
        let id = ListenerId::next();
        b.listen_on(id, any).unwrap();
        let Some(TransportEvent::NewAddress { listen_addr, .. }) =
            futures::stream::poll_fn(|cx| Pin::new(&mut b).poll(cx).map(Some))
                .next()
                .await
        else {
            panic!("no listen address");
        };
        let at = BleAddr::from_multiaddr(&listen_addr).unwrap();
        assert_eq!(
            (at.mac, at.kind, at.psm),
            (Mac([0xb; 6]), AddrKind::Public, 0x80)
        );

        let dial = a.dial(listen_addr.clone(), opts()).unwrap();
        let mut out = dial.await.unwrap();
        let Some(TransportEvent::Incoming {
            upgrade,
            send_back_addr,
            ..
        }) = futures::stream::poll_fn(|cx| Pin::new(&mut b).poll(cx).map(Some))
            .next()
            .await
        else {
            panic!("no incoming connection");
        };
        assert_eq!(
            BleAddr::from_multiaddr(&send_back_addr).unwrap().mac,
            Mac([0xa; 6])
        );
        let mut inc = upgrade.await.unwrap();
        out.write_all(b"hello over l2cap").await.unwrap();
        let mut buf = [0u8; 16];
        inc.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello over l2cap");
        assert!(b.remove_listener(id));
        assert!(!b.remove_listener(id));
    }

    #[test]
    fn refuses_addresses_it_cannot_serve() {
        let net = MemoryNet::default();
        let mut t = BleTransport::new(Arc::new(net.adapter(Mac([0xa; 6]), 23, None)));
        for bad in [
            "/ip4/127.0.0.1/tcp/4001",
            // Another adapter's address.
            "/dns/0b-0b-0b-0b-0b-0b.le-public.psm-81.ble.invalid",
        ] {
            assert!(matches!(
                t.listen_on(ListenerId::next(), bad.parse().unwrap()),
                Err(TransportError::MultiaddrNotSupported(_))
            ));
        }
        for bad in [
            "/ip4/127.0.0.1/tcp/4001",
            // Not dialable: any address, any PSM.
            "/dns/00-00-00-00-00-00.le-public.psm-81.ble.invalid",
            "/dns/0b-0b-0b-0b-0b-0b.le-public.psm-00.ble.invalid",
        ] {
            assert!(matches!(
                t.dial(bad.parse().unwrap(), opts()),
                Err(TransportError::MultiaddrNotSupported(_))
            ));
        }
    }
}
