//! The measured part of a run: publishes in window or paced mode, records every
//! delivery, and snapshots the meters around the measured messages.

use super::meter;
use super::report::{r3, Host, Latency, Report, Versions, IMPLEMENTATION};
use super::{BenchError, Params, MESSAGE_TTL};
use crate::gossip::envelope::ChannelName;
use crate::gossip::priority::Priority;
use crate::node::{NodeHandle, Outgoing};
use crate::progress::Progress;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Payload header: message index (u32 BE) then send time (f64 BE, ms since the run began).
pub(super) const HEADER_BYTES: usize = 12;

/// The message index of a bench payload.
pub(super) fn message_index(body: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(body.get(..4)?.try_into().ok()?))
}

/// One node's news for the coordinator.
#[derive(Debug)]
pub(super) enum Delivery {
    /// Node `node` delivered message `id` at `at`.
    Message {
        /// Message index.
        id: u32,
        /// Receiving node.
        node: usize,
        /// When the node's event came off its stream.
        at: Instant,
    },
    /// A node's event stream skipped this many events.
    Lagged(u64),
}

/// Meter readings at the first measured send.
struct Baseline {
    at: Instant,
    wire: u64,
    cpu: Duration,
}

/// Publishes and bookkeeping, one instance per run.
pub(super) struct Coordinator {
    n: usize,
    warmup: usize,
    window: usize,
    rate: Option<f64>,
    msg_timeout: Duration,
    drain: Duration,
    handles: Vec<NodeHandle>,
    channel: ChannelName,
    filler: Vec<u8>,
    publishers: Vec<usize>,
    epoch: Instant,
    sent_at: Vec<Option<Instant>>,
    done_at: Vec<Option<Instant>>,
    received: Vec<u32>,
    /// `got[id * n + node]`: node delivered message id (the publisher counts as having it).
    got: Vec<bool>,
    timed_out: Vec<bool>,
    /// Window slots to give back: (deadline, id), in send order.
    slot_deadlines: VecDeque<(Instant, usize)>,
    inflight: usize,
    next: usize,
    completed: usize,
    duplicates: u64,
    lagged: u64,
    publish_errors: u64,
    baseline: Option<Baseline>,
    paced_start: Option<Instant>,
    last_send: Option<Instant>,
}

/// What the run measured, before it is turned into a report.
pub(super) struct Measured {
    latencies_ms: Vec<f64>,
    deliveries: u64,
    wall: Duration,
    publish_span: Duration,
    measure_window: Duration,
    wire_bytes: u64,
    cpu: Duration,
    duplicates: u64,
    lagged: u64,
    publish_errors: u64,
    peak_rss_mb: f64,
}

impl Coordinator {
    pub(super) fn new(
        params: &Params,
        handles: Vec<NodeHandle>,
        channel: ChannelName,
        filler: Vec<u8>,
        publishers: Vec<usize>,
    ) -> Coordinator {
        let total = publishers.len();
        let n = handles.len();
        let mut got = vec![false; total * n];
        for (id, &p) in publishers.iter().enumerate() {
            got[id * n + p] = true; // the publisher does not count as a receiver
        }
        Coordinator {
            n,
            warmup: params.warmup,
            window: params.window,
            rate: params.rate,
            msg_timeout: params.msg_timeout,
            drain: params.drain,
            handles,
            channel,
            filler,
            publishers,
            epoch: Instant::now(),
            sent_at: vec![None; total],
            done_at: vec![None; total],
            received: vec![0; total],
            got,
            timed_out: vec![false; total],
            slot_deadlines: VecDeque::new(),
            inflight: 0,
            next: 0,
            completed: 0,
            duplicates: 0,
            lagged: 0,
            publish_errors: 0,
            baseline: None,
            paced_start: None,
            last_send: None,
        }
    }

    fn total(&self) -> usize {
        self.publishers.len()
    }

    /// When the next paced send is due (`None`: not in the paced measured phase).
    fn paced_due(&self) -> Option<Instant> {
        let rate = self.rate?;
        let k = self.next.checked_sub(self.warmup)?;
        let start = self.paced_start?;
        Some(start + Duration::from_secs_f64(k as f64 / rate))
    }

    /// Whether the next message may go now: in window mode (and during the paced
    /// warm-up, one at a time) while a slot is free, paced when it is due.
    fn may_send(&self, now: Instant) -> bool {
        if self.next >= self.total() {
            return false;
        }
        match self.paced_due() {
            Some(due) => now >= due,
            None if self.rate.is_some() => self.inflight < 1,
            None => self.inflight < self.window,
        }
    }

    fn send(&mut self, publishes: &mut JoinSet<bool>) {
        let id = self.next;
        self.next += 1;
        let now = Instant::now();
        if id == self.warmup {
            self.baseline = Some(Baseline {
                at: now,
                wire: meter::wire_bytes(),
                cpu: meter::cpu_time(),
            });
            if self.rate.is_some() {
                self.paced_start = Some(now);
            }
        }
        let mut body = self.filler.clone();
        body[..4].copy_from_slice(&u32::try_from(id).unwrap_or(u32::MAX).to_be_bytes());
        let since_epoch_ms = now.duration_since(self.epoch).as_secs_f64() * 1e3;
        body[4..HEADER_BYTES].copy_from_slice(&since_epoch_ms.to_be_bytes());
        self.sent_at[id] = Some(now);
        self.last_send = Some(now);
        // Window slots (the paced warm-up uses one too) are given back on completion
        // or timeout; paced measured sends hold none.
        if self.rate.is_none() || id < self.warmup {
            self.inflight += 1;
            self.slot_deadlines.push_back((now + self.msg_timeout, id));
        }
        let handle = self.handles[self.publishers[id]].clone();
        let msg = Outgoing {
            channel: self.channel.clone(),
            body,
            ttl: MESSAGE_TTL,
            priority: Priority::P1,
        };
        publishes.spawn(async move { handle.publish(msg).await.is_ok() });
    }

    fn on_delivery(&mut self, d: Delivery) {
        let (id, node, at) = match d {
            Delivery::Message { id, node, at } => (id as usize, node, at),
            Delivery::Lagged(missed) => {
                self.lagged += missed;
                return;
            }
        };
        let Some(seen) = self.got.get_mut(id * self.n + node) else {
            return; // not a message of this run
        };
        if *seen {
            self.duplicates += 1;
            return;
        }
        *seen = true;
        self.received[id] += 1;
        if self.received[id] as usize == self.n - 1 {
            self.done_at[id] = Some(at);
            self.completed += 1;
            if !self.timed_out[id] && self.holds_slot(id) {
                self.inflight -= 1;
            }
        }
    }

    fn holds_slot(&self, id: usize) -> bool {
        self.rate.is_none() || id < self.warmup
    }

    fn on_slot_deadline(&mut self) {
        if let Some((_, id)) = self.slot_deadlines.pop_front() {
            if self.done_at[id].is_none() {
                self.timed_out[id] = true;
                self.inflight -= 1;
            }
        }
    }

    /// Sends everything, then waits for stragglers up to the drain time.
    pub(super) async fn run(
        mut self,
        mut deliveries: mpsc::Receiver<Delivery>,
        progress: &Progress,
    ) -> Result<Measured, BenchError> {
        progress.phase(&format!(
            "publishing {} warm-up + {} measured messages of {} B, {}",
            self.warmup,
            self.total() - self.warmup,
            self.filler.len(),
            match self.rate {
                Some(r) => format!("paced {r} msg/s"),
                None => format!("window {}", self.window),
            }
        ));
        let mut publishes = JoinSet::new();
        let mut drain_until: Option<Instant> = None;
        loop {
            while self.may_send(Instant::now()) {
                self.send(&mut publishes);
            }
            if self.next >= self.total() {
                if self.completed == self.total() {
                    break;
                }
                let until = *drain_until.get_or_insert_with(|| Instant::now() + self.drain);
                if Instant::now() >= until {
                    break;
                }
            }
            let wake = [
                self.slot_deadlines.front().map(|(t, _)| *t),
                self.paced_due(),
                drain_until,
            ]
            .into_iter()
            .flatten()
            .min();
            tokio::select! {
                d = deliveries.recv() => match d {
                    Some(d) => self.on_delivery(d),
                    None => return Err(BenchError::NodeStopped),
                },
                Some(ok) = publishes.join_next() => {
                    if !matches!(ok, Ok(true)) {
                        self.publish_errors += 1;
                    }
                }
                () = sleep_until(wake) => {
                    if self.slot_deadlines.front().is_some_and(|(t, _)| *t <= Instant::now()) {
                        self.on_slot_deadline();
                    }
                }
            }
            // Completed slots stay at the queue head until their deadline; drop them.
            while let Some(&(_, id)) = self.slot_deadlines.front() {
                if self.done_at[id].is_none() && !self.timed_out[id] {
                    break;
                }
                self.slot_deadlines.pop_front();
            }
            progress.set(self.completed as u64);
        }
        let end = Instant::now();
        let wire_end = meter::wire_bytes();
        let cpu_end = meter::cpu_time();
        let base = self.baseline.take().unwrap_or(Baseline {
            at: end,
            wire: wire_end,
            cpu: cpu_end,
        });
        let measured = self.warmup..self.total();
        let mut latencies_ms = Vec::with_capacity(measured.len());
        let mut last_done = base.at;
        for id in measured.clone() {
            if let (Some(sent), Some(done)) = (self.sent_at[id], self.done_at[id]) {
                latencies_ms.push(done.duration_since(sent).as_secs_f64() * 1e3);
                last_done = last_done.max(done);
            }
        }
        Ok(Measured {
            latencies_ms,
            deliveries: measured.map(|id| u64::from(self.received[id])).sum(),
            wall: last_done.duration_since(base.at),
            publish_span: self
                .last_send
                .map_or(Duration::ZERO, |t| t.duration_since(base.at)),
            measure_window: end.duration_since(base.at),
            wire_bytes: wire_end - base.wire,
            cpu: cpu_end.saturating_sub(base.cpu),
            duplicates: self.duplicates,
            lagged: self.lagged,
            publish_errors: self.publish_errors,
            peak_rss_mb: meter::peak_rss_mb().unwrap_or(0.0),
        })
    }
}

/// Sleeps until `at`, or forever when there is nothing to wake for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

impl Measured {
    /// The report line for this run.
    pub(super) fn report(
        &self,
        params: &Params,
        graph: super::graph::GraphStats,
        mesh_form: Duration,
        stack: String,
    ) -> Report {
        let completed = self.latencies_ms.len();
        let deliveries = self.deliveries.max(1) as f64;
        let wall_s = self.wall.as_secs_f64();
        let cpu_s = self.cpu.as_secs_f64();
        Report {
            implementation: IMPLEMENTATION,
            stack,
            versions: Versions {
                fieldmesh: env!("CARGO_PKG_VERSION"),
                libp2p: "0.57",
            },
            host: Host {
                cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
                model: meter::cpu_model(),
            },
            n: params.n,
            m: params.m,
            s: params.s,
            degree: params.degree,
            graph,
            seed: params.seed,
            mode: if params.rate.is_some() {
                "paced"
            } else {
                "window"
            },
            rate_target: params.rate,
            window: params.rate.is_none().then_some(params.window),
            signing: "ed25519 envelope signature, verified at every hop",
            warmup_msgs: params.warmup,
            mesh_form_ms: r3(mesh_form.as_secs_f64() * 1e3),
            delivered_fraction: r3(
                self.deliveries as f64 / (params.m * (params.n - 1)).max(1) as f64
            ),
            fully_disseminated_fraction: r3(completed as f64 / params.m.max(1) as f64),
            latency_ms: Latency::of(&self.latencies_ms),
            wall_s: r3(wall_s),
            msgs_per_s: r3(if wall_s > 0.0 {
                completed as f64 / wall_s
            } else {
                0.0
            }),
            publish_span_s: r3(self.publish_span.as_secs_f64()),
            wire_bytes_total: self.wire_bytes,
            wire_bytes_per_msg: (self.wire_bytes as f64 / completed.max(1) as f64).round(),
            wire_bytes_per_delivery: r3(self.wire_bytes as f64 / deliveries),
            wire_overhead_factor: r3(self.wire_bytes as f64 / (deliveries * params.s as f64)),
            cpu_s: r3(cpu_s),
            cpu_us_per_delivery: r3(cpu_s * 1e6 / deliveries),
            duplicates_seen_by_app: self.duplicates,
            publish_errors: self.publish_errors,
            events_lagged: self.lagged,
            measure_window_s: r3(self.measure_window.as_secs_f64()),
            peak_rss_mb: r3(self.peak_rss_mb),
            peak_rss_mb_per_node: r3(self.peak_rss_mb / params.n as f64),
        }
    }
}
