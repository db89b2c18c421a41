//! The control socket: JSON Lines (`proto/control.md`) over the data dir's local
//! endpoint ([`super::local_socket`]: a 0600 Unix socket, or a named pipe on
//! Windows). [`serve`] runs the server over a [`NodeHandle`]; [`Client`] is what the
//! CLI uses.

use super::delivery::DeliveryQueue;
use super::local_socket::{self, BindError, LocalListener, LocalStream};
use super::{ApiError, FollowEvent, MessageView, Mode, Op, Reply, Request};
use crate::audit::Via;
use crate::config::TtlError;
use crate::gossip::direct::DM_CHANNEL;
use crate::gossip::envelope::{ChannelName, Envelope};
use crate::gossip::priority::Priority;
use crate::gossip::report::Redaction;
use crate::identity::{IdentityError, Passphrase};
use crate::node::{NodeEvent, NodeHandle, Outgoing, PublishError, UnlockError};
use crate::store::now_ms;
use crate::store::StoreError;
use futures::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{broadcast, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest request line: a 64 KiB body JSON-escaped fits with room to spare.
pub const MAX_LINE_BYTES: usize = 512 * 1024;
/// Most messages one `read` returns.
pub const MAX_READ: usize = 10_000;
/// Concurrent control clients at most (each `follow` holds one slot).
pub const MAX_CLIENTS: usize = 64;

/// Why the control socket could not start or a client request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Another live node answers on this socket.
    #[error("a node is already running for data dir {0}")]
    AlreadyRunning(PathBuf),
    /// No node answers on this socket.
    #[error("no node running for data dir {0}")]
    NotRunning(PathBuf),
    /// Socket I/O failed.
    #[error("control socket {path}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The node answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The node's reply could not be understood.
    #[error("bad reply from node: {0}")]
    BadReply(String),
}

/// Binds the socket (0600), replacing a stale one, and serves clients until
/// `shutdown`. Returns the tracker of the accept loop and its client tasks.
pub async fn serve(
    path: &Path,
    node: NodeHandle,
    shutdown: CancellationToken,
) -> Result<TaskTracker, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    let mut listener = LocalListener::bind(path).await.map_err(|e| match e {
        BindError::InUse => ControlError::AlreadyRunning(path.parent().unwrap_or(path).to_owned()),
        BindError::Io(source) => io(source),
    })?;
    let tracker = TaskTracker::new();
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    let inner = tracker.clone();
    tracker.spawn(async move {
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => break,
                res = listener.accept() => match res {
                    Ok(s) => s,
                    Err(e) => { tracing::warn!(error = %e, "control accept failed"); continue; }
                },
            };
            // Over the cap, the client waits in the kernel backlog until a slot frees.
            let permit = tokio::select! {
                () = shutdown.cancelled() => break,
                p = clients.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let (node, shutdown) = (node.clone(), shutdown.clone());
            inner.spawn(async move {
                let _permit = permit;
                if let Err(e) = serve_client(stream, node, shutdown).await {
                    tracing::debug!(error = %e, "control client ended");
                }
            });
        }
        // Dropping the listener removes the socket file.
        drop(listener);
    });
    tracker.close();
    Ok(tracker)
}

async fn serve_client(
    stream: LocalStream,
    node: NodeHandle,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (rd, wr) = tokio::io::split(stream);
    let mut lines = FramedRead::new(rd, LinesCodec::new_with_max_length(MAX_LINE_BYTES));
    let mut out = FramedWrite::new(wr, LinesCodec::new());
    loop {
        let line = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            l = lines.next() => l,
        };
        let line = match line {
            None => return Ok(()),
            Some(Ok(l)) => l,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                tracing::warn!(code = "line_too_long", "control request rejected");
                // The codec stops after an error, so the connection ends here.
                send(
                    &mut out,
                    error_reply(None, "line_too_long", "request line over 512 KiB"),
                )
                .await?;
                return Ok(());
            }
            Some(Err(LinesCodecError::Io(e))) => {
                tracing::warn!(code = "bad_request", error = %e, "control request rejected");
                send(
                    &mut out,
                    error_reply(None, "bad_request", "request is not UTF-8 text"),
                )
                .await?;
                return Ok(());
            }
        };
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(code = "bad_request", error = %e, "control request rejected");
                send(
                    &mut out,
                    error_reply(None, "bad_request", format!("not a request: {e}")),
                )
                .await?;
                continue;
            }
        };
        if let Op::Follow {
            channel,
            show_identifiable,
        } = &req.op
        {
            let redaction = redaction(*show_identifiable);
            let channel = match ChannelName::new(channel) {
                Ok(c) => c,
                Err(e) => {
                    send(&mut out, error_reply(Some(req.id), "bad_channel", e)).await?;
                    continue;
                }
            };
            // Subscribe to events before replying so nothing falls between.
            let events = node.events();
            if let Err(e) = node.subscribe(channel.clone()).await {
                send(&mut out, error_reply(Some(req.id), publish_code(&e), e)).await?;
                continue;
            }
            send(
                &mut out,
                ok_reply(req.id, serde_json::json!({"following": channel.as_str()})),
            )
            .await?;
            return follow(
                &node, req.id, channel, redaction, events, &mut lines, &mut out, shutdown,
            )
            .await;
        }
        let reply = match handle(&node, req.op).await {
            Ok(v) => ok_reply(req.id, v),
            Err(e) => Reply {
                id: Some(req.id),
                result: None,
                error: Some(e),
                event: None,
            },
        };
        send(&mut out, reply).await?;
    }
}

#[allow(clippy::too_many_arguments)] // the stream's parts, borrowed from serve_client
async fn follow(
    node: &NodeHandle,
    id: u64,
    channel: ChannelName,
    redaction: Redaction,
    mut events: broadcast::Receiver<NodeEvent>,
    lines: &mut FramedRead<ReadHalf<LocalStream>, LinesCodec>,
    out: &mut FramedWrite<WriteHalf<LocalStream>, LinesCodec>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Events keep arriving while a slow client is being written to; they wait in
    // `pending`, which hands out the most urgent first.
    let mut pending = DeliveryQueue::default();
    loop {
        let Some(event) = pending.pop() else {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                // Anything the client sends (or EOF) after `follow` ends the stream.
                _ = lines.next() => return Ok(()),
                ev = events.recv() => match follow_event(node, &channel, redaction, ev) {
                    Some(Ok(e)) => pending.push(e),
                    Some(Err(Closed)) => return Ok(()),
                    None => {}
                },
            }
            continue;
        };
        let reply = Reply {
            id: Some(id),
            result: None,
            error: None,
            event: Some(event),
        };
        let write = send(out, reply);
        tokio::pin!(write);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                r = &mut write => { r?; break; }
                ev = events.recv() => match follow_event(node, &channel, redaction, ev) {
                    Some(Ok(e)) => pending.push(e),
                    Some(Err(Closed)) => return Ok(()),
                    None => {}
                },
            }
        }
    }
}

/// The node's event stream has ended.
struct Closed;

/// What a node event means to a client following `channel` (`None`: nothing).
fn follow_event(
    node: &NodeHandle,
    channel: &ChannelName,
    redaction: Redaction,
    event: Result<NodeEvent, broadcast::error::RecvError>,
) -> Option<Result<FollowEvent, Closed>> {
    let event = match event {
        Ok(NodeEvent::Delivered(env)) if &env.channel == channel => {
            FollowEvent::Message(view_for(node, &env, now_ms(), redaction)?)
        }
        Ok(NodeEvent::Deleted(id)) => FollowEvent::Deleted {
            ids: vec![id.to_hex()],
        },
        Ok(NodeEvent::Expired(ids)) => FollowEvent::Expired {
            ids: ids.iter().map(|i| i.to_hex()).collect(),
        },
        Ok(_) => return None,
        Err(broadcast::error::RecvError::Lagged(missed)) => FollowEvent::Lagged { missed },
        Err(broadcast::error::RecvError::Closed) => return Some(Err(Closed)),
    };
    Some(Ok(event))
}

async fn handle(node: &NodeHandle, op: Op) -> Result<serde_json::Value, ApiError> {
    let json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| ApiError::new("internal", e))
    };
    match op {
        Op::Send {
            channel,
            text,
            ttl_ms,
            priority,
            mode,
        } => {
            check_mode(node, mode)?;
            let channel =
                ChannelName::new(&channel).map_err(|e| ApiError::new("bad_channel", e))?;
            let ttl = ttl_of(node, &channel, ttl_ms)?;
            let published = node
                .publish(Outgoing {
                    channel,
                    body: text.clone().into_bytes(),
                    ttl,
                    priority: priority.unwrap_or(Priority::P3),
                })
                .await
                .map_err(publish_error)?;
            let mut view = MessageView::new(&published.envelope, now_ms());
            view.text = text;
            json(Ok(
                serde_json::json!({"message": view, "sent_to": published.sent_to}),
            ))
        }
        Op::Read {
            channel,
            limit,
            show_identifiable,
        } => {
            let channel =
                ChannelName::new(&channel).map_err(|e| ApiError::new("bad_channel", e))?;
            let limit = limit.unwrap_or(MAX_READ).min(MAX_READ);
            let now = now_ms();
            let msgs = node.read(&channel, limit).map_err(store_error)?;
            let redaction = redaction(show_identifiable);
            let mut views = Vec::with_capacity(msgs.len());
            for m in &msgs {
                if let Some(view) = view_for(node, m, now, redaction) {
                    node.audit_read(m, Via::Control).await;
                    views.push(view);
                }
            }
            json(serde_json::to_value(views))
        }
        Op::Report {
            channel,
            report,
            ttl_ms,
            priority,
            mode,
        } => {
            check_mode(node, mode)?;
            let channel = ChannelName::new(channel.as_deref().unwrap_or("triage"))
                .map_err(|e| ApiError::new("bad_channel", e))?;
            let body = report.encode().map_err(|e| ApiError::new(e.code(), e))?;
            let ttl = ttl_of(node, &channel, ttl_ms)?;
            let published = node
                .publish(Outgoing {
                    channel,
                    body: body.clone(),
                    ttl,
                    priority: priority.unwrap_or_else(|| report.default_priority()),
                })
                .await
                .map_err(publish_error)?;
            let mut view = MessageView::new(&published.envelope, now_ms());
            view.set_body(&body, Redaction::Hide);
            json(Ok(
                serde_json::json!({"message": view, "sent_to": published.sent_to}),
            ))
        }
        Op::Dm {
            peer,
            text,
            ttl_ms,
            priority,
        } => {
            let to: libp2p::PeerId = peer
                .parse()
                .map_err(|_| ApiError::new("bad_peer", format!("not a peer id: {peer}")))?;
            let ttl = ttl_of(
                node,
                &ChannelName::new(DM_CHANNEL).map_err(|e| ApiError::new("internal", e))?,
                ttl_ms,
            )?;
            let published = node
                .send_dm(&to, text.as_bytes(), ttl, priority.unwrap_or(Priority::P3))
                .await
                .map_err(publish_error)?;
            let mut view = MessageView::new(&published.envelope, now_ms());
            view.text = text;
            json(Ok(
                serde_json::json!({"message": view, "sent_to": published.sent_to}),
            ))
        }
        Op::TeamInvite {
            team,
            expires_at_ms,
        } => {
            let code = node
                .team_invite(&team, expires_at_ms)
                .map_err(publish_error)?;
            json(Ok(
                serde_json::json!({"code": code, "expires_at_ms": expires_at_ms}),
            ))
        }
        Op::TeamRemove { peer } => {
            node.team_remove(&peer_id(&peer)?)
                .await
                .map_err(publish_error)?;
            json(Ok(serde_json::json!({"removed": peer})))
        }
        Op::TeamStandDown { at_ms } => {
            node.team_stand_down(at_ms).await.map_err(publish_error)?;
            json(Ok(serde_json::json!({"stand_down_at_ms": at_ms})))
        }
        Op::TeamRevoke { peer, wipe } => {
            node.team_revoke(&peer_id(&peer)?, wipe)
                .await
                .map_err(publish_error)?;
            json(Ok(serde_json::json!({"revoked": peer, "wipe": wipe})))
        }
        Op::Roster { message } => {
            let id: crate::gossip::envelope::MessageId = message
                .parse()
                .map_err(|e| ApiError::new("bad_request", e))?;
            let held_by = node.holders(&id);
            let missing = node.missing(&id).map_err(publish_error)?;
            json(Ok(serde_json::json!({
                "message": message,
                "held_by": held_by.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "missing": missing.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            })))
        }
        Op::Transcribe { message, format } => {
            let id: crate::gossip::envelope::MessageId = message
                .parse()
                .map_err(|e| ApiError::new("bad_request", e))?;
            let export = node
                .transcribe(&id, format.unwrap_or_default())
                .await
                .map_err(publish_error)?;
            json(Ok(export))
        }
        Op::Lock => {
            node.lock();
            json(Ok(serde_json::json!({"locked": true})))
        }
        Op::Unlock { passphrase } => {
            let passphrase = if passphrase.is_empty() {
                Passphrase::Drill
            } else {
                Passphrase::Given(zeroize::Zeroizing::new(passphrase.into_bytes()))
            };
            node.unlock(passphrase).await.map_err(|e| match e {
                UnlockError::Identity(IdentityError::WrongPassphrase { .. }) => {
                    ApiError::new("wrong_passphrase", e)
                }
                other => ApiError::new("unlock_failed", other),
            })?;
            json(Ok(serde_json::json!({"locked": false})))
        }
        Op::Peers => {
            let peers = node
                .peers()
                .await
                .map_err(|e| ApiError::new(publish_code(&e), e))?;
            json(serde_json::to_value(peers))
        }
        Op::Status => {
            let status = node
                .status()
                .await
                .map_err(|e| ApiError::new(publish_code(&e), e))?;
            json(serde_json::to_value(status))
        }
        Op::Audit => match node.audit_head() {
            Some((file, head)) => json(Ok(serde_json::json!({"file": file, "head": head}))),
            None => Err(ApiError::new("no_audit", "this node keeps no audit log")),
        },
        Op::Follow { .. } => Err(ApiError::new("internal", "follow is handled by the stream")),
    }
}

/// The view of a message for this node's user: team bodies opened with the team
/// keys, DMs only when addressed to us; nothing this node cannot read.
/// The view of a stored message for this node's user, with its holders; `None`
/// when this node cannot read it. Also used by the web API.
pub(crate) fn view_for(
    node: &NodeHandle,
    env: &Envelope,
    now: u64,
    redaction: Redaction,
) -> Option<MessageView> {
    let mut view = MessageView::new(env, now);
    view.set_body(&node.open_text(env)?, redaction);
    view.held_by = node.holders_of(env).iter().map(|p| p.to_string()).collect();
    Some(view)
}

/// Refuses a message whose sender believes it is live when the team is an
/// exercise, or the other way round: the two never mix in one channel.
fn check_mode(node: &NodeHandle, mode: Option<Mode>) -> Result<(), ApiError> {
    match (mode, node.is_exercise()) {
        (Some(Mode::Live), true) => Err(ApiError::new(
            "exercise_mismatch",
            "this node runs an EXERCISE team: a live message cannot be sent into it",
        )),
        (Some(Mode::Exercise), false) => Err(ApiError::new(
            "exercise_mismatch",
            "this node runs a live team: an exercise message cannot be sent into it",
        )),
        _ => Ok(()),
    }
}

/// A peer id from a request, or `bad_peer`.
fn peer_id(peer: &str) -> Result<libp2p::PeerId, ApiError> {
    peer.parse()
        .map_err(|_| ApiError::new("bad_peer", format!("not a peer id: {peer}")))
}

/// Whether a view shows identifiable fields.
fn redaction(show_identifiable: bool) -> Redaction {
    if show_identifiable {
        Redaction::Reveal
    } else {
        Redaction::Hide
    }
}

/// The TTL a send asked for, or the channel's default, under the node's policy.
fn ttl_of(
    node: &NodeHandle,
    channel: &ChannelName,
    ttl_ms: Option<u64>,
) -> Result<Duration, ApiError> {
    node.ttl_policy()
        .resolve(channel, ttl_ms.map(Duration::from_millis))
        .map_err(|e| match e {
            TtlError::OverMax { .. } => ApiError::new("ttl_over_max", e),
            other => ApiError::new("bad_ttl", other),
        })
}

fn publish_error(e: PublishError) -> ApiError {
    match e {
        PublishError::Store(se) => store_error(se),
        e => ApiError::new(publish_code(&e), e),
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Locked => ApiError::new("locked", "node is locked: run `fieldmesh unlock`"),
        other => ApiError::new("store", other),
    }
}

fn publish_code(e: &PublishError) -> &'static str {
    match e {
        PublishError::Store(StoreError::Locked) => "locked",
        PublishError::BadChannel(_) => "bad_channel",
        PublishError::TooLarge { .. } => "too_large",
        PublishError::BadTtl { .. } => "bad_ttl",
        PublishError::Envelope(_) => "bad_envelope",
        PublishError::Store(_) => "store",
        PublishError::NodeStopped => "node_stopped",
        PublishError::Dm(crate::gossip::direct::DmError::Crypto(
            crate::crypto::CryptoError::TooLarge { .. },
        )) => "too_large",
        PublishError::Dm(_) => "bad_peer",
        PublishError::Team(e) => e.code(),
        PublishError::NoTeam => "no_team",
        PublishError::StoreFull => "store_full",
        PublishError::Reserved => "reserved_channel",
        PublishError::NotFound(_) => "not_found",
    }
}

fn ok_reply(id: u64, result: serde_json::Value) -> Reply {
    Reply {
        id: Some(id),
        result: Some(result),
        error: None,
        event: None,
    }
}

fn error_reply(id: Option<u64>, code: &str, message: impl std::fmt::Display) -> Reply {
    Reply {
        id,
        result: None,
        error: Some(ApiError::new(code, message)),
        event: None,
    }
}

async fn send(
    out: &mut FramedWrite<WriteHalf<LocalStream>, LinesCodec>,
    reply: Reply,
) -> std::io::Result<()> {
    let line = serde_json::to_string(&reply).map_err(std::io::Error::other)?;
    out.send(line).await.map_err(|e| match e {
        LinesCodecError::Io(e) => e,
        LinesCodecError::MaxLineLengthExceeded => std::io::Error::other("reply too long"),
    })
}

/// A control-socket client, one request at a time.
pub struct Client {
    path: PathBuf,
    lines: FramedRead<ReadHalf<LocalStream>, LinesCodec>,
    wr: WriteHalf<LocalStream>,
    next_id: u64,
}

impl Client {
    /// Connects to the node of `data_dir` through `socket`.
    pub async fn connect(data_dir: &Path, socket: &Path) -> Result<Client, ControlError> {
        let stream = local_socket::connect(socket)
            .await
            .map_err(|_| ControlError::NotRunning(data_dir.to_owned()))?;
        let (rd, wr) = tokio::io::split(stream);
        Ok(Client {
            path: socket.to_owned(),
            lines: FramedRead::new(rd, LinesCodec::new_with_max_length(64 * 1024 * 1024)),
            wr,
            next_id: 1,
        })
    }

    /// Sends one request and returns its `result`, or the node's error.
    pub async fn request(&mut self, op: Op) -> Result<serde_json::Value, ControlError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Request { id, op })
            .map_err(|e| ControlError::BadReply(e.to_string()))?;
        line.push(b'\n');
        self.wr
            .write_all(&line)
            .await
            .map_err(|source| ControlError::Io {
                path: self.path.clone(),
                source,
            })?;
        let reply = self.next_reply().await?;
        match (reply.result, reply.error) {
            (_, Some(e)) => Err(ControlError::Api(e)),
            (Some(v), None) => Ok(v),
            (None, None) => Err(ControlError::BadReply("reply without result".into())),
        }
    }

    /// The next reply line (for streamed `follow` events).
    pub async fn next_reply(&mut self) -> Result<Reply, ControlError> {
        match self.lines.next().await {
            Some(Ok(l)) => {
                serde_json::from_str(&l).map_err(|e| ControlError::BadReply(e.to_string()))
            }
            Some(Err(e)) => Err(ControlError::BadReply(e.to_string())),
            None => Err(ControlError::BadReply("node closed the connection".into())),
        }
    }
}
