//! `GET /api/events`: a server-sent event stream of what the page must redraw —
//! new messages, deletions, expiries, receipt counts — fed from the node's event
//! broadcast. The stream never blocks the node: a page that falls behind gets
//! `lagged` and re-reads. Event names and data are specified in `proto/http.md`.

use super::error::HttpError;
use super::routes::{is_shown, view_for};
use super::AppState;
use crate::gossip::envelope::{Envelope, MessageId};
use crate::gossip::receipt::{Receipt, BUCKET_MS, RECEIPT_CHANNEL};
use crate::node::{NodeEvent, NodeHandle};
use crate::store::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, OwnedSemaphorePermit};

/// A comment line this often keeps proxies and the browser from timing out an
/// idle stream, and lets a dead client be noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One stream's state: its receiver, the node, and its slot among
/// [`super::MAX_EVENT_STREAMS`] (freed when the stream is dropped).
struct Feed {
    events: broadcast::Receiver<NodeEvent>,
    node: NodeHandle,
    _slot: OwnedSemaphorePermit,
}

/// `GET /api/events`: `ready` first, then events until the client leaves or the
/// node shuts down.
pub(super) async fn stream(State(s): State<AppState>) -> Response {
    let Ok(slot) = s.streams.clone().try_acquire_owned() else {
        return HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} event streams are open: close a tab",
                super::MAX_EVENT_STREAMS
            ),
        )
        .into_response();
    };
    // Subscribed before `ready` goes out, so nothing falls between a page's
    // first read and its stream.
    let feed = Feed {
        events: s.node.events(),
        node: s.node.clone(),
        _slot: slot,
    };
    let ready = Event::default().event("ready").data("{}");
    let rest = futures::stream::unfold(feed, |mut feed| async move {
        loop {
            // Cancel-safe: `recv` loses nothing when the stream is dropped.
            let event = match feed.events.recv().await {
                Ok(ev) => to_event(&feed.node, ev),
                Err(RecvError::Lagged(missed)) => {
                    Some(sse("lagged", &serde_json::json!({ "missed": missed })))
                }
                Err(RecvError::Closed) => return None,
            };
            if let Some(e) = event {
                return Some((e, feed));
            }
        }
    });
    let events = futures::stream::once(async { ready })
        .chain(rest)
        .map(Ok::<_, Infallible>)
        .take_until(s.shutdown.cancelled_owned());
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// An event named `name` with `data` as JSON.
fn sse(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// What a node event means to the page (`None`: nothing). A locked node shows
/// nothing of its messages, so it sends no message or receipt events.
fn to_event(node: &NodeHandle, ev: NodeEvent) -> Option<Event> {
    let ids = |ids: &[MessageId]| ids.iter().map(MessageId::to_hex).collect::<Vec<_>>();
    match ev {
        NodeEvent::Deleted(id) => Some(sse("deleted", &serde_json::json!({"ids": ids(&[id])}))),
        NodeEvent::Expired(gone) => Some(sse("expired", &serde_json::json!({"ids": ids(&gone)}))),
        NodeEvent::PeerConnected(_) | NodeEvent::PeerDisconnected(_) => {
            Some(sse("peers", &serde_json::json!({})))
        }
        NodeEvent::Delivered(_) if node.is_locked() => None,
        NodeEvent::Delivered(env) if env.channel.as_str() == RECEIPT_CHANNEL => {
            held(node, &env).map(|counts| sse("held", &serde_json::json!({ "held_by": counts })))
        }
        NodeEvent::Delivered(env) if is_shown(&env.channel) => {
            let view = view_for(node, &env, now_ms())?;
            Some(sse("message", &serde_json::to_value(view).ok()?))
        }
        _ => None,
    }
}

/// New holder counts of the messages held here in the buckets a receipt names.
fn held(node: &NodeHandle, receipt: &Envelope) -> Option<BTreeMap<String, usize>> {
    let receipt = Receipt::decode(&receipt.body).ok()?;
    let counts: BTreeMap<String, usize> = receipt
        .held
        .iter()
        .filter_map(|h| node.bucket_holders(&h.channel, h.bucket.saturating_mul(BUCKET_MS)))
        .flat_map(|(ids, holders)| ids.into_iter().map(move |id| (id.to_hex(), holders.len())))
        .collect();
    (!counts.is_empty()).then_some(counts)
}
