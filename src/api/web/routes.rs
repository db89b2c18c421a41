//! The JSON handlers of `/api/` and the embedded page. Each handler checks its
//! input completely before it asks the node to change anything, so a refused
//! request changes nothing. Shapes are specified in `proto/http.md`.

use super::error::HttpError;
use super::{query, AppState, OPENAPI_JSON};
use crate::api::export::ExportFormat;
use crate::api::MessageView;
use crate::audit::Via;
use crate::gossip::envelope::{ChannelName, Envelope, MessageId};
use crate::gossip::priority::Priority;
use crate::gossip::report::Redaction;
use crate::identity::Passphrase;
use crate::node::{NodeHandle, Outgoing};
use crate::store::now_ms;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Channels the node follows but the page never shows: team records, tombstones
/// and receipts are bookkeeping; DMs have their own command (`fieldmesh dm`).
pub(super) const HIDDEN_CHANNELS: &[&str] = &[
    crate::node::team_state::TEAM_CHANNEL,
    crate::gossip::tombstone::TOMBSTONE_CHANNEL,
    crate::gossip::receipt::RECEIPT_CHANNEL,
    crate::gossip::direct::DM_CHANNEL,
];
/// Messages a channel view gets when it names no `limit`.
const DEFAULT_LIMIT: usize = 500;
/// Most messages one request returns (the control socket's `read` cap).
const MAX_LIMIT: usize = 10_000;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// A JSON response with `status`.
pub(super) fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "web reply not serialisable");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn ok<T: serde::Serialize>(body: &T) -> Response {
    json(StatusCode::OK, body)
}

/// Decodes a JSON request body into `T`; an empty body is `{}` when `T` allows it.
fn body<T: serde::de::DeserializeOwned>(
    raw: Result<Bytes, BytesRejection>,
) -> Result<T, HttpError> {
    let raw = raw.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body over {} bytes", super::MAX_BODY_BYTES),
            )
        } else {
            HttpError::bad_request(e.body_text())
        }
    })?;
    let raw: &[u8] = if raw.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &raw
    };
    serde_json::from_slice(raw).map_err(|e| HttpError::bad_request(format!("bad JSON body: {e}")))
}

/// Whether the page shows `channel` at all.
pub(super) fn is_shown(channel: &ChannelName) -> bool {
    !HIDDEN_CHANNELS.contains(&channel.as_str())
}

/// The channels the page lists: those the node follows, minus the hidden ones.
async fn shown_channels(node: &NodeHandle) -> Result<Vec<ChannelName>, HttpError> {
    let status = node.status().await.map_err(HttpError::publish)?;
    Ok(status
        .channels
        .iter()
        .filter_map(|c| ChannelName::new(c).ok())
        .filter(is_shown)
        .collect())
}

/// A channel named in a path: valid, and one the page lists.
async fn listed_channel(node: &NodeHandle, name: &str) -> Result<ChannelName, HttpError> {
    let channel = ChannelName::new(name).map_err(|_| HttpError::bad_channel(name))?;
    if !shown_channels(node).await?.contains(&channel) {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("this node does not follow a channel {name:?}"),
        ));
    }
    Ok(channel)
}

/// The view of a message for this node's user, with its holders; `None` when
/// this node cannot read it. Patient-identifiable fields of reports stay hidden:
/// the page has no way to reveal them (`proto/bodies.md` §3).
pub(super) fn view_for(node: &NodeHandle, env: &Envelope, now: u64) -> Option<MessageView> {
    crate::api::control::view_for(node, env, now, Redaction::Hide)
}

/// A readable, shown message by its id in a path.
fn shown_message(node: &NodeHandle, id: &str) -> Result<(Envelope, MessageView), HttpError> {
    let parsed: MessageId = id
        .parse()
        .map_err(|_| HttpError::bad_request(format!("not a message id (64 hex): {id:?}")))?;
    let env = node
        .get(&parsed)
        .map_err(HttpError::store)?
        .filter(|e| is_shown(&e.channel))
        .ok_or_else(|| HttpError::no_message(id))?;
    let view = view_for(node, &env, now_ms()).ok_or_else(|| HttpError::no_message(id))?;
    Ok((env, view))
}

/// `GET /api/status`.
pub(super) async fn status(State(s): State<AppState>) -> Result<Response, HttpError> {
    let status = s.node.status().await.map_err(HttpError::publish)?;
    let mut v = serde_json::to_value(status).map_err(HttpError::internal)?;
    v["locked"] = s.node.is_locked().into();
    Ok(ok(&v))
}

/// `GET /api/defaults`: the team's TTL rules for the compose form.
pub(super) async fn defaults(State(s): State<AppState>) -> Result<Response, HttpError> {
    let policy = s.node.ttl_policy();
    let mut per_channel = BTreeMap::new();
    for ch in shown_channels(&s.node).await? {
        let ttl = policy.resolve(&ch, None).map_err(HttpError::ttl)?;
        per_channel.insert(ch.as_str().to_owned(), ttl.as_millis() as u64);
    }
    Ok(ok(&serde_json::json!({
        "max_ttl_ms": policy.max.as_millis() as u64,
        "default_ttl_ms": policy.default.min(policy.max).as_millis() as u64,
        "channels": per_channel,
        "priorities": ["p1", "p2", "p3", "p4"],
        "default_priority": Priority::default(),
    })))
}

/// `GET /api/channels?seen=CH:MS,…`: message, unread and P1 counts per channel.
pub(super) async fn channels(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, HttpError> {
    let seen = query::seen(q.as_deref().unwrap_or("")).map_err(HttpError::bad_request)?;
    let mut out = Vec::new();
    for ch in shown_channels(&s.node).await? {
        let msgs = s.node.read(&ch, MAX_LIMIT).map_err(HttpError::store)?;
        let readable: Vec<&Envelope> = msgs
            .iter()
            .filter(|m| s.node.open_text(m).is_some())
            .collect();
        let since = seen.get(&ch).copied().unwrap_or(0);
        out.push(serde_json::json!({
            "name": ch.as_str(),
            "messages": readable.len(),
            "unread": readable.iter().filter(|m| m.created_at_ms > since).count(),
            "p1": readable.iter().filter(|m| m.priority == Priority::P1).count(),
            "newest_ms": readable.iter().map(|m| m.created_at_ms).max(),
        }));
    }
    Ok(ok(&out))
}

/// `GET /api/channels/{channel}/messages?limit=N`: unexpired, oldest first.
pub(super) async fn messages(
    State(s): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, HttpError> {
    let limit = query::limit(q.as_deref().unwrap_or(""), DEFAULT_LIMIT, MAX_LIMIT)
        .map_err(HttpError::bad_request)?;
    let channel = listed_channel(&s.node, &name).await?;
    let now = now_ms();
    let msgs = s.node.read(&channel, limit).map_err(HttpError::store)?;
    let mut views: Vec<MessageView> = Vec::with_capacity(msgs.len());
    for m in &msgs {
        if let Some(view) = view_for(&s.node, m, now) {
            s.node.audit_read(m, Via::Web).await;
            views.push(view);
        }
    }
    Ok(ok(&views))
}

/// Body of `POST /api/channels/{channel}/messages`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Compose {
    text: String,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    ttl_ms: Option<u64>,
}

/// `POST /api/channels/{channel}/messages`: publishes; 201 with the message.
pub(super) async fn post_message(
    State(s): State<AppState>,
    Path(name): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let compose: Compose = body(raw)?;
    if compose.text.trim().is_empty() {
        return Err(HttpError::bad_request("text is empty"));
    }
    let channel = listed_channel(&s.node, &name).await?;
    let ttl = s
        .node
        .ttl_policy()
        .resolve(
            &channel,
            compose.ttl_ms.map(std::time::Duration::from_millis),
        )
        .map_err(HttpError::ttl)?;
    let published = s
        .node
        .publish(Outgoing {
            channel,
            body: compose.text.clone().into_bytes(),
            ttl,
            priority: compose.priority.unwrap_or_default(),
        })
        .await
        .map_err(HttpError::publish)?;
    let mut view = MessageView::new(&published.envelope, now_ms());
    view.text = compose.text;
    view.held_by = vec![s.node.peer_id().to_string()];
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({"message": view, "sent_to": published.sent_to}),
    ))
}

/// `GET /api/messages/{id}`.
pub(super) async fn message(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let (env, view) = shown_message(&s.node, &id)?;
    s.node.audit_read(&env, Via::Web).await;
    Ok(ok(&view))
}

/// Body of `POST /api/messages/{id}/transcribe`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transcribe {
    #[serde(default)]
    format: ExportFormat,
}

/// `POST /api/messages/{id}/transcribe`: the export document (as a download),
/// written only after the tombstone that deletes the message everywhere is stored.
pub(super) async fn transcribe(
    State(s): State<AppState>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let req: Transcribe = body(raw)?;
    let (env, _) = shown_message(&s.node, &id)?;
    let export = s
        .node
        .transcribe(&env.id, req.format)
        .await
        .map_err(HttpError::publish)?;
    let ext = match req.format {
        ExportFormat::Json => "json",
        ExportFormat::Fhir => "fhir.json",
    };
    let mut res = ok(&export);
    let disposition = format!("attachment; filename=\"fieldmesh-{}.{ext}\"", &id[..12]);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// `GET /api/peers`.
pub(super) async fn peers(State(s): State<AppState>) -> Result<Response, HttpError> {
    let peers = s.node.peers().await.map_err(HttpError::publish)?;
    Ok(ok(&peers))
}

/// `POST /api/lock`.
pub(super) async fn lock(State(s): State<AppState>) -> Response {
    s.node.lock();
    tracing::info!("locked from the web UI");
    ok(&serde_json::json!({"locked": true}))
}

/// Body of `POST /api/unlock`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unlock {
    passphrase: String,
}

/// `POST /api/unlock`: the passphrase is never logged.
pub(super) async fn unlock(
    State(s): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let req: Unlock = body(raw)?;
    let passphrase = if req.passphrase.is_empty() {
        Passphrase::Drill
    } else {
        Passphrase::Given(zeroize::Zeroizing::new(req.passphrase.into_bytes()))
    };
    s.node.unlock(passphrase).await.map_err(HttpError::unlock)?;
    Ok(ok(&serde_json::json!({"locked": false})))
}

/// `GET /api/openapi.json`.
pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// `GET /`: the page.
pub(super) async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

/// `GET /app.js`.
pub(super) async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

/// `GET /app.css`.
pub(super) async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

/// Any other path: 404 `no_route`.
pub(super) async fn no_route() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
}

/// A known path with another method: 405 `method_not_allowed`.
pub(super) async fn wrong_method() -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}
