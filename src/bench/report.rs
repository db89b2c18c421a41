//! What one benchmark run reports: the fields `bench-spec.md` lists, named and rounded
//! as the reference peers print them, so that one script can tabulate all three.
//! Serialized to one JSON line by the CLI.

use super::graph::GraphStats;
use serde::Serialize;

/// Name under which fieldmesh appears in comparison tables.
pub const IMPLEMENTATION: &str = "fieldmesh";

/// Latency figures of fully disseminated messages, milliseconds (`None`: no message
/// completed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

impl Latency {
    /// Percentiles of `latencies_ms` (any order), rounded to microseconds.
    pub fn of(latencies_ms: &[f64]) -> Latency {
        let mut sorted = latencies_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mean = (!sorted.is_empty()).then(|| sorted.iter().sum::<f64>() / sorted.len() as f64);
        Latency {
            p50: percentile(&sorted, 50.0).map(r3),
            p95: percentile(&sorted, 95.0).map(r3),
            p99: percentile(&sorted, 99.0).map(r3),
            max: sorted.last().copied().map(r3),
            mean: mean.map(r3),
        }
    }
}

/// The nearest-rank percentile the reference peers use: the element at
/// `round(p/100 · (len−1))` of the sorted slice.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let idx = ((p / 100.0) * last as f64).round() as usize;
    sorted.get(idx.min(last)).copied()
}

/// `x` rounded to three decimals.
pub fn r3(x: f64) -> f64 {
    super::graph::round_to(x, 3)
}

/// The host the run was taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// CPU model from `/proc/cpuinfo`, if readable.
    pub model: Option<String>,
}

/// Versions of what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// This crate.
    pub fieldmesh: &'static str,
    /// The libp2p release line it builds on.
    pub libp2p: &'static str,
}

/// One successful run, as one JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `fieldmesh`.
    pub implementation: &'static str,
    /// What was on: transport, signing, validation, store.
    pub stack: String,
    /// Versions measured.
    pub versions: Versions,
    /// Where it ran.
    pub host: Host,
    /// Nodes.
    #[serde(rename = "N")]
    pub n: usize,
    /// Measured messages.
    #[serde(rename = "M")]
    pub m: usize,
    /// Payload bytes per message.
    #[serde(rename = "S")]
    pub s: usize,
    /// Mean degree asked of the graph.
    pub degree: usize,
    /// The graph actually built.
    pub graph: GraphStats,
    /// Seed of graph, filler and publishers.
    pub seed: u32,
    /// `window` or `paced`.
    pub mode: &'static str,
    /// Messages per second asked (paced mode).
    pub rate_target: Option<f64>,
    /// Messages in flight at most (window mode).
    pub window: Option<usize>,
    /// How messages are authenticated.
    pub signing: &'static str,
    /// Unmeasured messages sent first.
    pub warmup_msgs: usize,
    /// From all edges connected to every mesh formed.
    pub mesh_form_ms: f64,
    /// Deliveries / (M·(N−1)).
    pub delivered_fraction: f64,
    /// Messages that reached all N−1 other nodes / M.
    pub fully_disseminated_fraction: f64,
    /// Send to last delivery, fully disseminated messages.
    pub latency_ms: Latency,
    /// First measured send to last full dissemination.
    pub wall_s: f64,
    /// Fully disseminated messages / `wall_s`.
    pub msgs_per_s: f64,
    /// First to last measured send.
    pub publish_span_s: f64,
    /// Bytes written to all TCP sockets during the measured span.
    pub wire_bytes_total: u64,
    /// `wire_bytes_total` / fully disseminated messages.
    pub wire_bytes_per_msg: f64,
    /// `wire_bytes_total` / deliveries.
    pub wire_bytes_per_delivery: f64,
    /// `wire_bytes_total` / (deliveries · S).
    pub wire_overhead_factor: f64,
    /// Process user+sys CPU seconds during the measured span.
    pub cpu_s: f64,
    /// `cpu_s` / deliveries, microseconds.
    pub cpu_us_per_delivery: f64,
    /// Deliveries of a message a node had already delivered.
    pub duplicates_seen_by_app: u64,
    /// Publishes the node refused.
    pub publish_errors: u64,
    /// Deliveries the bench missed because an event subscriber lagged (should be 0).
    pub events_lagged: u64,
    /// First measured send to the end of the drain.
    pub measure_window_s: f64,
    /// Process peak resident set (VmHWM), MiB, setup included.
    pub peak_rss_mb: f64,
    /// `peak_rss_mb` / N.
    pub peak_rss_mb_per_node: f64,
}

/// A run that failed (hard timeout, mesh not formed, a node did not start).
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    /// `fieldmesh`.
    pub implementation: &'static str,
    /// What went wrong.
    pub error: String,
    /// Nodes.
    #[serde(rename = "N")]
    pub n: usize,
    /// Measured messages.
    #[serde(rename = "M")]
    pub m: usize,
    /// Payload bytes per message.
    #[serde(rename = "S")]
    pub s: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_peers_nearest_rank() {
        let v: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(51.0));
        assert_eq!(percentile(&v, 99.0), Some(100.0));
        // 4 values: p50 → index round(1.5) = 2.
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
        let l = Latency::of(&[3.0, 1.0, 2.0004]);
        assert_eq!((l.p50, l.max, l.mean), (Some(2.0), Some(3.0), Some(2.0)));
        assert_eq!(Latency::of(&[]).p99, None);
    }

    #[test]
    fn reports_use_the_reference_field_names() {
        let e = ErrorReport {
            implementation: IMPLEMENTATION,
            error: "hard timeout after 1s".into(),
            n: 3,
            m: 20,
            s: 512,
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["N"], 3);
        assert_eq!(json["error"], "hard timeout after 1s");
        let l = serde_json::to_value(Latency::of(&[1.0])).unwrap();
        assert_eq!(l["p99"], 1.0);
        assert!(serde_json::to_value(Latency::of(&[])).unwrap()["p50"].is_null());
    }
}
