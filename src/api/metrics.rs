//! The Prometheus endpoint (`up --metrics ADDR`): `GET /metrics` answers with the
//! node's `status` figures in the OpenMetrics text format, which Prometheus
//! scrapes as it does its own text format. Each scrape asks the node for a fresh
//! [`StatusView`], so `/metrics` and `status --json` always carry the same figures.

use crate::node::{NodeHandle, StatusView};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// Content type of the OpenMetrics text exposition.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A bound metrics listener, not yet serving.
#[derive(Debug)]
pub struct MetricsEndpoint {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
}

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The address could not be bound.
    #[error("cannot listen for metrics on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl MetricsEndpoint {
    /// Binds `addr` (port 0 picks a free port; see [`Self::local_addr`]).
    pub async fn bind(addr: SocketAddr) -> Result<MetricsEndpoint, MetricsError> {
        let bind = |source| MetricsError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        Ok(MetricsEndpoint {
            listener,
            local_addr,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `GET /metrics` from `node` until `shutdown`.
    pub async fn run(self, node: NodeHandle, shutdown: CancellationToken) {
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(scrape))
            .with_state(node);
        if let Err(e) = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    }
}

async fn scrape(State(node): State<NodeHandle>) -> Response {
    let status = match node.status().await {
        Ok(s) => s,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    match render(&status) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The exposition text of one status snapshot.
pub fn render(status: &StatusView) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("fieldmesh");
    registry.register_collector(Box::new(StatusMetrics(status.clone())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// A status snapshot as metric families.
#[derive(Debug)]
struct StatusMetrics(StatusView);

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    gauge_unit(e, name, help, None, v)
}

fn gauge_unit(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: u64,
) -> std::fmt::Result {
    let metric = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    metric.encode(e.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

/// A counter family with one label, one sample per `(label value, count)`.
fn labelled_counter<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        ConstCounter::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

impl Collector for StatusMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let count = |k: &str| s.counters.get(k).copied().unwrap_or(0);
        let mut peers = e.encode_descriptor(
            "peers",
            "Connected peers by transport (a peer on both counts under each).",
            None,
            MetricType::Gauge,
        )?;
        for transport in ["tcp", "quic"] {
            let n = s.peers_by_transport.get(transport).copied().unwrap_or(0);
            ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX))
                .encode(peers.encode_family(&[("transport", transport)])?)?;
        }
        // `delivered` counts our own publishes too; `published` counts only those.
        labelled_counter(
            &mut e,
            "messages_in",
            "New messages stored from peers, by how they came.",
            "via",
            [
                (
                    "gossip",
                    count("delivered").saturating_sub(count("published")),
                ),
                ("sync", count("synced")),
            ],
        )?;
        ConstCounter::new(count("published")).encode(e.encode_descriptor(
            "messages_out",
            "Messages this node published.",
            None,
            MetricType::Counter,
        )?)?;
        labelled_counter(
            &mut e,
            "messages_rejected",
            "Envelopes from peers rejected, by reason code.",
            "reason",
            s.rejected.iter().map(|(k, v)| (k.as_str(), *v)),
        )?;
        labelled_counter(
            &mut e,
            "events",
            "Every status counter by name (see proto/README.md, status counters).",
            "counter",
            s.counters.iter().map(|(k, v)| (k.as_str(), *v)),
        )?;
        gauge(
            &mut e,
            "store_messages",
            "Messages in the store.",
            s.stored as u64,
        )?;
        gauge_unit(
            &mut e,
            "store",
            "Bytes of messages and indexes in the store.",
            Some(&Unit::Bytes),
            s.store_bytes,
        )?;
        gauge_unit(
            &mut e,
            "store_capacity",
            "The store's size limit.",
            Some(&Unit::Bytes),
            s.store_capacity,
        )?;
        gauge(
            &mut e,
            "sync_sessions",
            "Catch-up sync sessions running.",
            s.sync_sessions as u64,
        )?;
        gauge(
            &mut e,
            "sync_backlog_messages",
            "Messages running sync sessions still have to fetch or push.",
            s.sync_backlog as u64,
        )?;
        gauge(
            &mut e,
            "outbound_queued_messages",
            "Own messages waiting in the outbound queue for the links.",
            s.outbound_queued as u64,
        )?;
        gauge_unit(
            &mut e,
            "uptime",
            "Time since the node started.",
            Some(&Unit::Seconds),
            s.uptime_secs,
        )?;
        // The encoder wants per-bucket counts and accumulates them itself.
        let h = &s.p1_latency;
        let mut buckets = Vec::with_capacity(h.buckets.len() + 1);
        let mut below = 0;
        for b in &h.buckets {
            buckets.push((b.le_ms as f64 / 1000.0, b.count.saturating_sub(below)));
            below = b.count;
        }
        buckets.push((f64::INFINITY, h.count.saturating_sub(below)));
        e.encode_descriptor(
            "p1_latency",
            "Delivery latency of P1 messages from peers: author's created_at to stored here.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum_ms as f64 / 1000.0,
            h.count,
            &buckets,
            None,
        )
    }
}
