//! A byte stream over an L2CAP packet channel (`proto/bluetooth.md` §3).
//!
//! L2CAP CoC delivers whole packets (SDUs) of at most the MTU. Noise and yamux want
//! a byte stream, so a write sends at most one MTU-sized packet (the caller's
//! `write_all` loops), and a read receives a whole packet, into the caller's buffer
//! when it is large enough and otherwise into an MTU-sized buffer that later reads
//! drain. Receiving into a buffer smaller than the packet would silently truncate
//! it, which is why this layer exists. Packet boundaries carry no meaning.

use super::Channel;
use futures::{AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};

static BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Bytes sent over every BLE channel of this process so far (below Noise). The
/// outbound queue paces its BLE window with it.
pub fn bytes_written() -> u64 {
    BYTES_WRITTEN.load(Ordering::Relaxed)
}

/// A byte stream over one channel.
pub struct PacketStream {
    channel: Channel,
    /// Receive buffer for packets larger than the caller's buffer; its unread
    /// bytes are `rx[rx_pos..rx_end]`.
    rx: Vec<u8>,
    rx_pos: usize,
    rx_end: usize,
}

impl PacketStream {
    /// Wraps `channel`.
    pub fn new(channel: Channel) -> Self {
        PacketStream {
            channel,
            rx: Vec::new(),
            rx_pos: 0,
            rx_end: 0,
        }
    }
}

impl AsyncRead for PacketStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.rx_pos < this.rx_end {
            let n = buf.len().min(this.rx_end - this.rx_pos);
            buf[..n].copy_from_slice(&this.rx[this.rx_pos..this.rx_pos + n]);
            this.rx_pos += n;
            return Poll::Ready(Ok(n));
        }
        let mtu = this.channel.recv_mtu();
        if buf.len() >= mtu {
            return this.channel.poll_recv(cx, buf);
        }
        if this.rx.len() < mtu {
            this.rx.resize(mtu, 0);
        }
        // Nothing is unread here, so a pending receive leaves no stale bytes behind.
        let n = ready!(this.channel.poll_recv(cx, &mut this.rx[..mtu]))?;
        let take = n.min(buf.len());
        buf[..take].copy_from_slice(&this.rx[..take]);
        this.rx_pos = take;
        this.rx_end = n;
        Poll::Ready(Ok(take))
    }
}

impl AsyncWrite for PacketStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(this.channel.send_mtu());
        let sent = ready!(this.channel.poll_send(cx, &buf[..n]))?;
        BYTES_WRITTEN.fetch_add(sent as u64, Ordering::Relaxed);
        Poll::Ready(Ok(sent))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every write is a packet handed to the channel; nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().channel.shutdown())
    }
}

#[cfg(test)]
mod tests {
    use super::super::memory::MemoryNet;
    use super::super::{AddrKind, BleAddr, L2capBackend, Mac};
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt};

    async fn pair(mtu: usize) -> (PacketStream, PacketStream) {
        let net = MemoryNet::default();
        let a = net.adapter(Mac([1; 6]), mtu, None);
        let b = net.adapter(Mac([2; 6]), mtu, None);
        let (mut listener, psm) = b.listen(0x81).unwrap();
        let to = BleAddr {
            mac: Mac([2; 6]),
            kind: AddrKind::Public,
            psm,
        };
        let dialed = a.dial(to).await.unwrap();
        let (accepted, from) = futures::future::poll_fn(|cx| listener.poll_accept(cx))
            .await
            .unwrap();
        assert_eq!(from.mac, Mac([1; 6]));
        (PacketStream::new(dialed), PacketStream::new(accepted))
    }

    #[tokio::test]
    async fn a_large_write_crosses_a_small_mtu_intact() {
        let (mut a, mut b) = pair(23).await;
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let before = bytes_written();
        let writer = async {
            a.write_all(&data).await.unwrap();
            a.close().await.unwrap();
        };
        let mut got = Vec::new();
        let reader = b.read_to_end(&mut got);
        let ((), read) = tokio::join!(writer, reader);
        assert_eq!(read.unwrap(), data.len());
        assert_eq!(got, data);
        assert!(bytes_written() - before >= data.len() as u64);
    }

    #[tokio::test]
    async fn reads_smaller_than_the_mtu_lose_nothing() {
        let (mut a, mut b) = pair(64).await;
        a.write_all(&[9u8; 64]).await.unwrap();
        a.write_all(b"tail").await.unwrap();
        let mut got = Vec::new();
        let mut small = [0u8; 5];
        while got.len() < 68 {
            let n = b.read(&mut small).await.unwrap();
            assert!(n > 0 && n <= 5);
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(&got[..64], &[9u8; 64]);
        assert_eq!(&got[64..], b"tail");
    }

    #[tokio::test]
    async fn a_small_read_waiting_for_a_packet_returns_only_new_bytes() {
        let (mut a, mut b) = pair(23).await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut small = [0u8; 2];
            for _ in 0..3 {
                // Each read waits (pending) for the next packet first.
                let n = b.read(&mut small).await.unwrap();
                got.extend_from_slice(&small[..n]);
                let n = b.read(&mut small).await.unwrap();
                got.extend_from_slice(&small[..n]);
            }
            got
        });
        for chunk in [b"abcd", b"efgh", b"ijkl"] {
            tokio::task::yield_now().await;
            a.write_all(chunk).await.unwrap();
        }
        assert_eq!(reader.await.unwrap(), b"abcdefghijkl");
    }

    #[tokio::test]
    async fn a_write_sends_at_most_one_packet() {
        let (mut a, _b) = pair(23).await;
        let n = a.write(&[0u8; 100]).await.unwrap();
        assert_eq!(n, 23);
    }
}
