//! The outbound gossip queue: this node's own messages (sends, DMs, tombstones,
//! receipts) wait here, most urgent triage priority first, until the links can take
//! them.
//!
//! gossipsub's per-peer send queue is first-in first-out and drops publications
//! that wait in it longer than a few seconds, so behind a slow link a P1 would queue
//! behind every P3 sent before it. This queue therefore hands gossipsub only a small
//! window of bytes at a time: a message is released when the bytes released earlier
//! have (by the process's wire byte count) left for the network. What waits here is
//! already in the store, so nothing is lost if the queue is full or the node stops:
//! catch-up sync delivers it.
//!
//! A Bluetooth LE link carries tens of kB/s, a hundred times less than Wi-Fi, so a
//! second, smaller window paces what goes to peers reachable only over BLE: it
//! drains by the bytes BLE channels actually sent, and keeps at most a few hundred
//! milliseconds of radio time ahead of a P1 (`proto/bluetooth.md` §4).

use super::envelope::Envelope;
use super::priority::Priority;
use std::collections::BTreeMap;
use std::time::Duration;

/// Bytes handed to gossipsub and not yet seen on the wire at most: about a hundred
/// short messages, so that a P1 overtakes all but the last ~100 of a backlog.
pub const WINDOW_BYTES: u64 = 32 * 1024;
/// Messages waiting at most; beyond this the least urgent newest one is left to
/// catch-up sync.
pub const MAX_QUEUED: usize = 20_000;
/// Bytes sent over QUIC are not counted on the wire (only TCP streams are wrapped),
/// so while a QUIC connection is open the window also drains at this rate.
pub const QUIC_DRAIN_BYTES_PER_SEC: u64 = 256 * 1024;
/// Bytes handed to gossipsub for BLE-only peers and not yet sent over BLE at most:
/// about 0.2 s at 20 kB/s, so a P1 waits behind at most that much radio time.
pub const BLE_WINDOW_BYTES: u64 = 4 * 1024;

/// Bytes released but not yet seen leaving, against a cap.
struct Window {
    cap: u64,
    in_flight: u64,
    last_wire: u64,
}

impl Window {
    fn new(cap: u64) -> Self {
        Window {
            cap,
            in_flight: 0,
            last_wire: 0,
        }
    }

    /// Accounts for the byte counter now at `wire`, plus `extra` bytes drained.
    fn drain(&mut self, wire: u64, extra: u64) {
        let drained = wire.saturating_sub(self.last_wire) + extra;
        self.last_wire = wire;
        self.in_flight = self.in_flight.saturating_sub(drained);
    }

    fn is_full(&self) -> bool {
        self.in_flight >= self.cap
    }
}

/// Own messages waiting for the links, with the windows that pace their release.
pub struct Outbound {
    /// Keyed by (priority, arrival): the first entry is the most urgent oldest, the
    /// last the least urgent newest.
    queue: BTreeMap<(Priority, u64), Envelope>,
    seq: u64,
    /// Every link, drained by all wire bytes (TCP and BLE) and QUIC time.
    all: Window,
    /// Peers reachable only over BLE, drained by BLE bytes.
    ble: Window,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            queue: BTreeMap::new(),
            seq: 0,
            all: Window::new(WINDOW_BYTES),
            ble: Window::new(BLE_WINDOW_BYTES),
        }
    }
}

impl Outbound {
    /// Queues `envelope`. When the queue is full, the least urgent, newest message
    /// is dropped from it (it stays in the store for catch-up) and returned.
    pub fn push(&mut self, envelope: Envelope) -> Option<Envelope> {
        self.seq += 1;
        self.queue.insert((envelope.priority, self.seq), envelope);
        if self.queue.len() <= MAX_QUEUED {
            return None;
        }
        self.queue.pop_last().map(|(_, e)| e)
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Accounts for the wire byte count now (`wire`, TCP and BLE), for time passed
    /// with QUIC connections open (`quic_for`) and for the BLE byte count now
    /// (`ble_wire`), then returns the most urgent waiting message if both windows
    /// have room for it.
    pub fn next_ready(&mut self, wire: u64, quic_for: Duration, ble_wire: u64) -> Option<Envelope> {
        let quic = (quic_for.as_secs_f64() * QUIC_DRAIN_BYTES_PER_SEC as f64) as u64;
        self.all.drain(wire, quic);
        self.ble.drain(ble_wire, 0);
        if self.all.is_full() || self.ble.is_full() {
            return None;
        }
        self.queue.pop_first().map(|(_, e)| e)
    }

    /// Records `bytes` handed to gossipsub (message size times recipients), of which
    /// `ble_bytes` go to peers reachable only over BLE.
    pub fn sent(&mut self, bytes: u64, ble_bytes: u64) {
        self.all.in_flight += bytes;
        self.ble.in_flight += ble_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::envelope::{ChannelName, Draft, DEFAULT_HOP_LIMIT};

    fn env(priority: Priority, n: u8) -> Envelope {
        let key = libp2p::identity::ed25519::Keypair::generate();
        Envelope::sign(
            Draft {
                channel: ChannelName::new("triage").unwrap(),
                created_at_ms: 1_000 + u64::from(n),
                ttl: Duration::from_secs(60),
                hop_limit: DEFAULT_HOP_LIMIT,
                priority,
                body: vec![n],
            },
            &key,
        )
        .unwrap()
    }

    #[test]
    fn most_urgent_first_then_oldest_first() {
        let mut q = Outbound::default();
        for (p, n) in [
            (Priority::P3, 1),
            (Priority::P4, 2),
            (Priority::P1, 3),
            (Priority::P3, 4),
            (Priority::P1, 5),
        ] {
            assert!(q.push(env(p, n)).is_none());
        }
        let order: Vec<u8> = std::iter::from_fn(|| q.next_ready(0, Duration::ZERO, 0))
            .map(|e| e.body[0])
            .collect();
        assert_eq!(order, [3, 5, 1, 4, 2]);
    }

    #[test]
    fn window_holds_messages_until_bytes_leave() {
        let mut q = Outbound::default();
        q.push(env(Priority::P3, 1));
        q.push(env(Priority::P3, 2));
        assert!(q.next_ready(100, Duration::ZERO, 0).is_some());
        q.sent(WINDOW_BYTES, 0);
        assert!(
            q.next_ready(100, Duration::ZERO, 0).is_none(),
            "window full"
        );
        assert!(
            q.next_ready(110, Duration::ZERO, 0).is_some(),
            "10 bytes left"
        );
        q.sent(WINDOW_BYTES, 0);
        q.push(env(Priority::P3, 3));
        assert!(
            q.next_ready(110, Duration::from_secs(1), 0).is_some(),
            "QUIC drain"
        );
    }

    #[test]
    fn over_ble_a_p1_overtakes_a_backlog_that_ip_would_have_drained() {
        let mut q = Outbound::default();
        for n in 0..50 {
            q.push(env(Priority::P3, n));
        }
        // A BLE-only peer: the first P3s fill the BLE window.
        let mut released = 0;
        while let Some(e) = q.next_ready(0, Duration::ZERO, 0) {
            q.sent(e.as_bytes().len() as u64, e.as_bytes().len() as u64);
            released += 1;
        }
        assert!(released < 50, "the BLE window held the backlog back");
        q.push(env(Priority::P1, 99));
        // IP bytes leaving (wire grows) do not open the BLE window...
        assert!(q
            .next_ready(1_000_000, Duration::from_secs(10), 0)
            .is_none());
        // ...BLE bytes do, and the P1 goes first.
        let next = q
            .next_ready(1_000_000, Duration::ZERO, BLE_WINDOW_BYTES)
            .unwrap();
        assert_eq!(next.priority, Priority::P1);
    }

    #[test]
    fn a_full_queue_drops_the_least_urgent_newest() {
        let mut q = Outbound::default();
        q.push(env(Priority::P1, 0));
        for i in 1..MAX_QUEUED {
            assert!(q.push(env(Priority::P3, (i % 200) as u8)).is_none());
        }
        let dropped = q.push(env(Priority::P4, 201)).unwrap();
        assert_eq!(dropped.body, [201], "a P4 is the first to go");
        let dropped = q.push(env(Priority::P2, 202)).unwrap();
        assert_eq!(
            dropped.priority,
            Priority::P3,
            "then the newest P3, not the P2"
        );
        assert_eq!(q.len(), MAX_QUEUED);
        assert_eq!(
            q.next_ready(0, Duration::ZERO, 0).unwrap().priority,
            Priority::P1
        );
    }
}
