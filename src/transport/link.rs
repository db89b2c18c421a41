//! The raw TCP byte stream below Noise: counts every byte written (the benchmark's
//! wire bytes) and, only when a test or the drill simulator asks for it, emulates a
//! poor link — a bandwidth cap, one-way delay and segment loss.
//!
//! `tc netem` is not available on the machines fieldmesh is tested on, so field
//! conditions are emulated here. A TCP stream cannot lose bytes, so loss is modelled
//! the way TCP experiences it: a lost segment arrives one retransmission timeout
//! later (doubling per repeated loss), and everything behind it waits (head-of-line
//! blocking). Delay and loss are applied where bytes are read, the bandwidth cap
//! where they are written, so a slow link pushes back on the sender instead of
//! piling bytes up in kernel buffers.

use futures::{AsyncRead, AsyncWrite};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

static WIRE_BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Bytes written to TCP sockets by every connection of this process so far (below
/// Noise, so including its framing and tags, as the benchmark spec counts them).
pub fn wire_bytes_written() -> u64 {
    WIRE_BYTES_WRITTEN.load(Ordering::Relaxed)
}

/// Size of one emulated segment: a lost segment delays this many bytes.
const SEGMENT: usize = 1400;
/// First retransmission timeout after a lost segment (Linux's minimum RTO).
const FIRST_RTO: Duration = Duration::from_millis(200);
/// Bytes read from the socket but held back (delay, loss) at most; beyond this the
/// reader stops reading and TCP flow control slows the sender.
const HOLD_CAP: usize = 256 * 1024;
/// Burst the bandwidth cap allows: 20 ms worth of bytes, at least one segment.
const BURST: Duration = Duration::from_millis(20);

/// An emulated link's properties. The default is a perfect link (no emulation).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkProfile {
    /// Probability that a segment is lost (and retransmitted), 0.0 ..= 0.9.
    pub loss: f64,
    /// One-way delay added to every byte.
    pub delay: Duration,
    /// Bytes per second each direction carries at most; `None`: unlimited.
    pub bandwidth: Option<u64>,
}

impl LinkProfile {
    /// Whether this profile changes anything (a perfect link is not wrapped).
    pub fn is_perfect(&self) -> bool {
        self.loss == 0.0 && self.delay.is_zero() && self.bandwidth.is_none()
    }
}

/// Why a link profile string was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("bad link profile {0:?}: expected comma-separated loss=0.1, delay=20ms, rate=64k")]
pub struct LinkProfileError(String);

impl FromStr for LinkProfile {
    type Err = LinkProfileError;

    /// Parses `loss=0.1,delay=20ms,rate=64k` (any subset; rate in bytes per second
    /// with an optional k or m suffix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LinkProfileError(s.to_owned());
        let mut p = LinkProfile::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part.trim().split_once('=').ok_or_else(bad)?;
            match k {
                "loss" => {
                    p.loss = v.parse().map_err(|_| bad())?;
                    if !(0.0..=0.9).contains(&p.loss) {
                        return Err(bad());
                    }
                }
                "delay" => p.delay = humantime::parse_duration(v).map_err(|_| bad())?,
                "rate" => {
                    let (num, mult) = match v.as_bytes().last() {
                        Some(b'k' | b'K') => (&v[..v.len() - 1], 1_000),
                        Some(b'm' | b'M') => (&v[..v.len() - 1], 1_000_000),
                        _ => (v, 1),
                    };
                    let n: u64 = num.parse().map_err(|_| bad())?;
                    if n == 0 {
                        return Err(bad());
                    }
                    p.bandwidth = Some(n * mult);
                }
                _ => return Err(bad()),
            }
        }
        Ok(p)
    }
}

impl fmt::Display for LinkProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loss={},delay={}ms", self.loss, self.delay.as_millis())?;
        if let Some(r) = self.bandwidth {
            write!(f, ",rate={r}")?;
        }
        Ok(())
    }
}

/// A byte stream that counts what it writes and emulates `profile`.
pub struct LinkStream<S> {
    inner: S,
    emu: Option<Box<Emulation>>,
}

struct Emulation {
    profile: LinkProfile,
    rng: StdRng,
    /// Write side: token bucket (bytes) and when it was last refilled.
    tokens: f64,
    refilled: Instant,
    write_wait: Option<Pin<Box<Sleep>>>,
    /// Read side: segments read but not yet released, in release order.
    held: VecDeque<(Instant, Vec<u8>)>,
    held_bytes: usize,
    read_wait: Option<Pin<Box<Sleep>>>,
    /// Release time of the last held segment: later ones never overtake it.
    last_release: Instant,
    eof: bool,
}

impl<S> LinkStream<S> {
    /// Wraps `inner`; `profile` `None` (or perfect) only counts bytes.
    pub fn new(inner: S, profile: Option<LinkProfile>) -> Self {
        let emu = profile.filter(|p| !p.is_perfect()).map(|profile| {
            let now = Instant::now();
            Box::new(Emulation {
                profile,
                rng: StdRng::from_entropy(),
                tokens: burst_of(profile),
                refilled: now,
                write_wait: None,
                held: VecDeque::new(),
                held_bytes: 0,
                read_wait: None,
                last_release: now,
                eof: false,
            })
        });
        LinkStream { inner, emu }
    }
}

fn burst_of(p: LinkProfile) -> f64 {
    p.bandwidth
        .map(|r| (r as f64 * BURST.as_secs_f64()).max(SEGMENT as f64))
        .unwrap_or(f64::INFINITY)
}

impl Emulation {
    /// When a segment read now is handed to the reader: after the delay, plus a
    /// retransmission timeout for each time it is lost, never before the one ahead.
    fn release_time(&mut self, now: Instant) -> Instant {
        let mut at = now + self.profile.delay;
        let mut rto = FIRST_RTO;
        while self.profile.loss > 0.0 && self.rng.gen_bool(self.profile.loss) {
            at += rto;
            rto *= 2;
        }
        self.last_release = self.last_release.max(at);
        self.last_release
    }

    /// Bytes the bucket allows now; if none, arms `write_wait` for the next ones.
    fn allowance(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        let Some(rate) = self.profile.bandwidth else {
            return Poll::Ready(usize::MAX);
        };
        loop {
            let now = Instant::now();
            let earned = now.duration_since(self.refilled).as_secs_f64() * rate as f64;
            self.tokens = (self.tokens + earned).min(burst_of(self.profile));
            self.refilled = now;
            if self.tokens >= 1.0 {
                self.write_wait = None;
                return Poll::Ready(self.tokens as usize);
            }
            let wait = Duration::from_secs_f64((SEGMENT as f64 - self.tokens) / rate as f64);
            let sleep = self
                .write_wait
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
            sleep.as_mut().reset(now + wait);
            ready!(sleep.as_mut().poll(cx));
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LinkStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(emu) = this.emu.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        let mut scratch = [0u8; 16 * 1024];
        loop {
            let now = Instant::now();
            if let Some((at, seg)) = emu.held.front_mut() {
                if *at <= now {
                    let n = seg.len().min(buf.len());
                    buf[..n].copy_from_slice(&seg[..n]);
                    seg.drain(..n);
                    if seg.is_empty() {
                        emu.held.pop_front();
                    }
                    emu.held_bytes -= n;
                    return Poll::Ready(Ok(n));
                }
            } else if emu.eof {
                return Poll::Ready(Ok(0));
            }
            if !emu.eof && emu.held_bytes < HOLD_CAP {
                if let Poll::Ready(r) = Pin::new(&mut this.inner).poll_read(cx, &mut scratch) {
                    let n = r?;
                    if n == 0 {
                        emu.eof = true;
                    }
                    for seg in scratch[..n].chunks(SEGMENT) {
                        let at = emu.release_time(now);
                        emu.held.push_back((at, seg.to_vec()));
                        emu.held_bytes += seg.len();
                    }
                    continue;
                }
            }
            let Some(&(at, _)) = emu.held.front() else {
                return Poll::Pending;
            };
            let sleep = emu
                .read_wait
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            sleep.as_mut().reset(at);
            ready!(sleep.as_mut().poll(cx));
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LinkStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let allowed = match this.emu.as_mut() {
            Some(emu) => ready!(emu.allowance(cx)),
            None => usize::MAX,
        };
        let n = buf.len().min(allowed);
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..n]))?;
        if let Some(emu) = this.emu.as_mut() {
            emu.tokens -= written as f64;
        }
        WIRE_BYTES_WRITTEN.fetch_add(written as u64, Ordering::Relaxed);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::compat::TokioAsyncReadCompatExt;

    #[test]
    fn profiles_parse_and_refuse_nonsense() {
        let p: LinkProfile = "loss=0.1,delay=20ms,rate=64k".parse().unwrap();
        assert_eq!(
            p,
            LinkProfile {
                loss: 0.1,
                delay: Duration::from_millis(20),
                bandwidth: Some(64_000)
            }
        );
        assert_eq!(p.to_string().parse::<LinkProfile>().unwrap(), p);
        assert!("".parse::<LinkProfile>().unwrap().is_perfect());
        for bad in ["loss=1.5", "rate=0", "delay=soon", "jitter=3ms", "loss"] {
            assert!(bad.parse::<LinkProfile>().is_err(), "{bad}");
        }
    }

    /// Pushes `total` bytes through a wrapped duplex pipe; returns the elapsed time
    /// and checks the bytes arrive intact and in order.
    async fn transfer(profile: LinkProfile, total: usize) -> Duration {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut tx = LinkStream::new(a.compat(), Some(profile));
        let mut rx = LinkStream::new(b.compat(), Some(profile));
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        let start = Instant::now();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            tx.write_all(&sent).await.unwrap();
            tx.close().await.unwrap();
        });
        let mut got = Vec::new();
        rx.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, data);
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn bandwidth_cap_paces_the_writer() {
        let before = wire_bytes_written();
        let p = LinkProfile {
            bandwidth: Some(100_000),
            ..LinkProfile::default()
        };
        let took = transfer(p, 200_000).await;
        // 200 kB at 100 kB/s: two seconds, less the initial burst.
        assert!(took >= Duration::from_millis(1900), "{took:?}");
        assert!(took <= Duration::from_millis(2100), "{took:?}");
        assert!(wire_bytes_written() - before >= 200_000);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_holds_bytes_back() {
        let p = LinkProfile {
            delay: Duration::from_millis(300),
            ..LinkProfile::default()
        };
        let took = transfer(p, 10).await;
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn lost_segments_arrive_late_but_intact() {
        let p = LinkProfile {
            loss: 0.5,
            ..LinkProfile::default()
        };
        // 100 segments at 50 % loss: some retransmission timeouts are certain.
        let took = transfer(p, 100 * SEGMENT).await;
        assert!(took >= FIRST_RTO, "{took:?}");
    }

    #[tokio::test]
    async fn a_perfect_link_only_counts() {
        let s = LinkStream::new(tokio::io::empty().compat(), Some(LinkProfile::default()));
        assert!(s.emu.is_none());
    }
}
