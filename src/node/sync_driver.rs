//! Catch-up sync as the event loop runs it: one initiator session per peer walks
//! our channels (reconcile, then fetch what we lack, then push what they lack), and
//! inbound requests are answered from the store. Protocol: `proto/sync.md`.

use super::command::NodeEvent;
use super::event_loop::EventLoop;
use crate::gossip::envelope::{
    id_of_bytes, relay_raw, ChannelName, Envelope, EnvelopeError, MessageId,
};
use crate::store::{now_ms, Inserted};
use crate::sync::{
    self, transfer_order, Bound, ItemInfo, Reconciler, SyncRequest, SyncResponse,
    FIRST_BATCH_BYTES, MAX_BATCH_BYTES, MAX_FETCH_IDS, MAX_RANGES,
};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Quiet time after the last batch of new messages from a sync before every peer is
/// re-synced, so a burst of transfers triggers one wave rather than one per batch.
pub(super) const RESYNC_DEBOUNCE: Duration = Duration::from_millis(200);
/// Requests one session may send: reconciliation of 100 000 items with every item
/// different takes about 5 rounds per channel, then one request per batch.
const MAX_REQUESTS: usize = 4096;

/// Where one channel's sync stands.
enum Phase {
    Reconciling(Box<Reconciler>),
    Fetching {
        /// Whole ranges to fetch, with how many envelopes of each arrived so far.
        ranges: VecDeque<(Option<Bound>, Bound, u32)>,
        need: VecDeque<ItemInfo>,
        have: Vec<ItemInfo>,
        in_flight: Vec<ItemInfo>,
    },
    Pushing {
        have: VecDeque<ItemInfo>,
        /// Batches pushed so far (the first one is small; see [`FIRST_BATCH_BYTES`]).
        batches: usize,
    },
}

/// An initiator session with one peer.
pub(super) struct SyncSession {
    /// The one request in flight; replies to anything else (an earlier session's
    /// late answer) are ignored.
    in_flight: Option<OutboundRequestId>,
    /// Requests sent so far; a session that needs more than [`MAX_REQUESTS`] is
    /// aborted (a faulty or hostile peer could otherwise keep it going forever).
    requests: usize,
    channels: VecDeque<ChannelName>,
    current: Option<(ChannelName, Phase)>,
    stored: usize,
    started: Instant,
}

impl EventLoop {
    /// Starts a session with `peer` unless one is running.
    pub(super) fn start_sync(&mut self, peer: PeerId) {
        if self.sessions.contains_key(&peer) {
            return;
        }
        let mut channels: Vec<ChannelName> = self.channels.iter().cloned().collect();
        channels.sort();
        debug!(%peer, "sync session started");
        self.sessions.insert(
            peer,
            SyncSession {
                in_flight: None,
                requests: 0,
                channels: channels.into(),
                current: None,
                stored: 0,
                started: Instant::now(),
            },
        );
        self.advance_sync(peer);
    }

    /// Sends the session's next request, moving through phases and channels.
    fn advance_sync(&mut self, peer: PeerId) {
        loop {
            let Some(session) = self.sessions.get_mut(&peer) else {
                return;
            };
            let Some((channel, phase)) = session.current.as_mut() else {
                let Some(next) = session.channels.pop_front() else {
                    self.finish_sync(peer, None);
                    return;
                };
                let items = match self.store.index_entries(&next, now_ms()) {
                    Ok(v) => v.into_iter().map(ItemInfo::from).collect(),
                    Err(e) => {
                        self.finish_sync(peer, Some(format!("store: {e}")));
                        return;
                    }
                };
                let session = self
                    .sessions
                    .get_mut(&peer)
                    .expect("invariant: checked above");
                session.current =
                    Some((next, Phase::Reconciling(Box::new(Reconciler::new(items)))));
                continue;
            };
            // Sync names the team's topic, not the bare channel, so teams never mix.
            let channel_name = crate::gossip::topic(&self.team, channel).to_string();
            let request = match phase {
                Phase::Reconciling(r) => match r.next_request() {
                    Some(ranges) => SyncRequest::Reconcile {
                        channel: channel_name,
                        ranges,
                    },
                    None => {
                        let mut need = std::mem::take(&mut r.need);
                        let mut have = std::mem::take(&mut r.have);
                        transfer_order(&mut need);
                        transfer_order(&mut have);
                        let ranges = r.need_ranges.drain(..).map(|(l, u)| (l, u, 0)).collect();
                        *phase = Phase::Fetching {
                            ranges,
                            need: need.into(),
                            have,
                            in_flight: Vec::new(),
                        };
                        continue;
                    }
                },
                Phase::Fetching {
                    ranges,
                    need,
                    have,
                    in_flight,
                } => {
                    if let Some((lower, upper, skip)) = ranges.front() {
                        SyncRequest::FetchRange {
                            channel: channel_name,
                            lower: lower.clone(),
                            upper: upper.clone(),
                            skip: *skip,
                        }
                    } else if need.is_empty() {
                        *phase = Phase::Pushing {
                            have: std::mem::take(have).into(),
                            batches: 0,
                        };
                        continue;
                    } else {
                        let n = need.len().min(MAX_FETCH_IDS);
                        *in_flight = need.drain(..n).collect();
                        SyncRequest::Fetch {
                            channel: channel_name,
                            ids: in_flight.iter().map(|i| i.id).collect(),
                        }
                    }
                }
                Phase::Pushing { have, batches } => {
                    let cap = if *batches == 0 {
                        FIRST_BATCH_BYTES
                    } else {
                        MAX_BATCH_BYTES
                    };
                    *batches += 1;
                    let mut envelopes = Vec::new();
                    let mut bytes = 0;
                    let now = now_ms();
                    while let Some(item) = have.front() {
                        let relay = match self.store.get(&MessageId(item.id)) {
                            Ok(Some(env)) if !env.is_expired(now) => env.relay_bytes(),
                            _ => None,
                        };
                        if let Some(b) = relay {
                            if bytes + b.len() > cap && !envelopes.is_empty() {
                                break;
                            }
                            bytes += b.len();
                            envelopes.push(b);
                        }
                        have.pop_front();
                    }
                    if envelopes.is_empty() {
                        session.current = None;
                        continue;
                    }
                    *self.counters.entry("sync_payload_bytes").or_default() += bytes as u64;
                    SyncRequest::Push {
                        channel: channel_name,
                        envelopes,
                    }
                }
            };
            self.count_overhead(&request);
            let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
            let Some(session) = self.sessions.get_mut(&peer) else {
                return;
            };
            session.in_flight = Some(id);
            session.requests += 1;
            if session.requests > MAX_REQUESTS {
                self.finish_sync(peer, Some(format!("more than {MAX_REQUESTS} requests")));
            }
            return;
        }
    }

    fn finish_sync(&mut self, peer: PeerId, error: Option<String>) {
        let Some(session) = self.sessions.remove(&peer) else {
            return;
        };
        match error {
            None => {
                info!(%peer, stored = session.stored, elapsed_ms = session.started.elapsed().as_millis() as u64, "sync done");
                *self.counters.entry("sync_sessions").or_default() += 1;
                let _ = self.events_tx.send(NodeEvent::SyncDone {
                    peer,
                    stored: session.stored,
                });
            }
            Some(e) => {
                warn!(%peer, error = %e, "sync aborted");
                *self.counters.entry("sync_aborted").or_default() += 1;
            }
        }
    }

    /// Dispatches a request-response event.
    pub(super) fn on_sync_event(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_sync_request(peer, request, channel),
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if self.take_in_flight(peer, request_id) {
                    self.on_sync_response(peer, response);
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.take_in_flight(peer, request_id) {
                    self.finish_sync(peer, Some(error.to_string()));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Whether `id` is the request the current session with `peer` waits for.
    fn take_in_flight(&mut self, peer: PeerId, id: OutboundRequestId) -> bool {
        match self.sessions.get_mut(&peer) {
            Some(s) if s.in_flight == Some(id) => {
                s.in_flight = None;
                true
            }
            _ => false,
        }
    }

    fn on_sync_response(&mut self, peer: PeerId, response: SyncResponse) {
        self.count_overhead(&response);
        let Some((channel, phase)) = self
            .sessions
            .get_mut(&peer)
            .and_then(|s| s.current.as_mut())
        else {
            return;
        };
        let channel = channel.clone();
        match (phase, response) {
            (Phase::Reconciling(r), SyncResponse::Reconcile(replies)) => {
                if let Err(e) = r.on_replies(replies) {
                    self.finish_sync(peer, Some(e.to_string()));
                    return;
                }
            }
            (
                Phase::Fetching {
                    ranges, in_flight, ..
                },
                SyncResponse::Envelopes(list),
            ) if !ranges.is_empty() => {
                // A range page: move on when the peer has nothing more in it.
                match ranges.front_mut() {
                    Some(front) if !list.is_empty() => front.2 += list.len() as u32,
                    _ => {
                        ranges.pop_front();
                    }
                }
                debug_assert!(in_flight.is_empty());
                let stored = self.accept_batch(peer, &list, &channel);
                if let Some(session) = self.sessions.get_mut(&peer) {
                    session.stored += stored;
                }
            }
            (Phase::Fetching { in_flight, .. }, SyncResponse::Envelopes(list)) => {
                let asked = std::mem::take(in_flight);
                // Every returned id counts as answered, valid or not, so a peer that
                // keeps sending bad bytes cannot keep us asking forever.
                let returned: HashSet<[u8; 32]> = list.iter().map(|b| id_of_bytes(b).0).collect();
                let stored = self.accept_batch(peer, &list, &channel);
                let Some(session) = self.sessions.get_mut(&peer) else {
                    return;
                };
                session.stored += stored;
                // A size-capped reply leaves ids out: ask again while replies make
                // progress; an empty reply means the peer no longer has them.
                if let (false, Some((_, Phase::Fetching { need, .. }))) =
                    (list.is_empty(), session.current.as_mut())
                {
                    for item in asked
                        .into_iter()
                        .rev()
                        .filter(|i| !returned.contains(&i.id))
                    {
                        need.push_front(item);
                    }
                }
            }
            (Phase::Pushing { .. }, SyncResponse::Pushed { .. }) => {}
            (_, SyncResponse::NotFollowed) => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    s.current = None;
                }
            }
            (_, other) => {
                self.finish_sync(
                    peer,
                    Some(format!("unexpected reply {}", reply_name(&other))),
                );
                return;
            }
        }
        self.advance_sync(peer);
    }

    /// Answers an inbound request from the store. Single-range reads run inline:
    /// an index scan of a channel is a few milliseconds per 10 000 messages.
    fn on_sync_request(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        reply: ResponseChannel<SyncResponse>,
    ) {
        self.count_overhead(&request);
        let response = self.sync_response(peer, request);
        self.count_overhead(&response);
        // Fails only if the peer went away; nothing to do then.
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(reply, response);
    }

    fn sync_response(&mut self, peer: PeerId, request: SyncRequest) -> SyncResponse {
        let refused = |code: &str| SyncResponse::Refused {
            code: code.to_owned(),
        };
        let channel = match &request {
            SyncRequest::Reconcile { channel, .. }
            | SyncRequest::Fetch { channel, .. }
            | SyncRequest::FetchRange { channel, .. }
            | SyncRequest::Push { channel, .. } => channel,
        };
        // The `channel` field names the team's gossip topic: another team's channel
        // of the same name is not ours.
        let topic = libp2p::gossipsub::TopicHash::from_raw(channel.as_str());
        let Some(channel) = crate::gossip::channel_of_topic(&self.team, &topic) else {
            return SyncResponse::NotFollowed;
        };
        if !self.channels.contains(&channel) {
            return SyncResponse::NotFollowed;
        }
        let now = now_ms();
        match request {
            SyncRequest::Reconcile { ranges, .. } => {
                if ranges.len() > MAX_RANGES {
                    return refused("too_many_ranges");
                }
                match self.store.index_entries(&channel, now) {
                    Ok(v) => {
                        let mine: Vec<ItemInfo> = v.into_iter().map(ItemInfo::from).collect();
                        SyncResponse::Reconcile(sync::respond(&mine, &ranges))
                    }
                    Err(e) => {
                        warn!(error = %e, "sync: cannot read index");
                        refused("store")
                    }
                }
            }
            SyncRequest::Fetch { ids, .. } => {
                if ids.len() > MAX_FETCH_IDS {
                    return refused("too_many_ids");
                }
                let mut found: Vec<Envelope> = ids
                    .iter()
                    .filter_map(|id| self.store.get(&MessageId(*id)).ok().flatten())
                    .collect();
                found.sort_by(|a, b| {
                    a.priority
                        .cmp(&b.priority)
                        .then(b.created_at_ms.cmp(&a.created_at_ms))
                });
                SyncResponse::Envelopes(self.batch(
                    found.into_iter().map(Ok),
                    &channel,
                    now,
                    MAX_BATCH_BYTES,
                ))
            }
            SyncRequest::FetchRange {
                lower, upper, skip, ..
            } => {
                let mine: Vec<ItemInfo> = match self.store.index_entries(&channel, now) {
                    Ok(v) => v.into_iter().map(ItemInfo::from).collect(),
                    Err(_) => return refused("store"),
                };
                let mut wanted =
                    sync::slice(&mine, ItemInfo::item, lower.as_ref(), &upper).to_vec();
                transfer_order(&mut wanted);
                let cap = if skip == 0 {
                    FIRST_BATCH_BYTES
                } else {
                    MAX_BATCH_BYTES
                };
                // The index already says these are unexpired and in this channel, so
                // the stored bytes are sent as they are (hop counter bumped), undecoded.
                let mut out = Vec::new();
                let mut bytes = 0;
                for item in wanted.into_iter().skip(skip as usize) {
                    let Ok(Some(raw)) = self.store.get_raw(&MessageId(item.id)) else {
                        continue;
                    };
                    let Some(b) = relay_raw(&raw) else { continue };
                    if bytes + b.len() > cap && !out.is_empty() {
                        break;
                    }
                    bytes += b.len();
                    out.push(b);
                }
                *self.counters.entry("sync_payload_bytes").or_default() += bytes as u64;
                SyncResponse::Envelopes(out)
            }
            SyncRequest::Push { envelopes, .. } => {
                let stored = self.accept_batch(peer, &envelopes, &channel);
                SyncResponse::Pushed {
                    stored: stored as u32,
                }
            }
        }
    }

    /// Relay bytes of `envs` in the given order, skipping expired, foreign-channel,
    /// unreadable and hop-exhausted ones, up to `cap` bytes.
    fn batch(
        &mut self,
        envs: impl Iterator<Item = Result<Envelope, ()>>,
        channel: &ChannelName,
        now: u64,
        cap: usize,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for env in envs.flatten() {
            if env.is_expired(now) || &env.channel != channel {
                continue;
            }
            let Some(b) = env.relay_bytes() else { continue };
            if bytes + b.len() > cap && !out.is_empty() {
                break;
            }
            bytes += b.len();
            out.push(b);
        }
        *self.counters.entry("sync_payload_bytes").or_default() += bytes as u64;
        out
    }

    /// Validates envelope bytes from `peer` exactly as gossip does and stores the
    /// valid ones in one transaction. Returns how many were new.
    fn accept_batch(&mut self, peer: PeerId, batch: &[Vec<u8>], channel: &ChannelName) -> usize {
        let payload: usize = batch.iter().map(Vec::len).sum();
        *self.counters.entry("sync_payload_bytes").or_default() += payload as u64;
        let mut valid = Vec::with_capacity(batch.len());
        for res in self.validate_batch(batch, channel) {
            match res {
                Ok(env) => valid.push(env),
                Err(EnvelopeError::Expired { .. }) => {
                    *self.counters.entry("expired_on_arrival").or_default() += 1;
                }
                Err(e) => self.count_rejection(peer, &e),
            }
        }
        let outcome = match self.store.insert_batch(&valid) {
            Ok(o) => o,
            Err(e) => {
                warn!(%peer, error = %e, "store failed for a sync batch");
                return 0;
            }
        };
        let mut stored = 0;
        for (env, res) in valid.into_iter().zip(outcome) {
            match res {
                Inserted::New => {
                    self.on_stored(env, "synced");
                    stored += 1;
                }
                Inserted::Duplicate => *self.counters.entry("duplicate").or_default() += 1,
            }
        }
        // Sliding: while batches keep arriving, a transfer is still under way and
        // re-syncing now would only race it for the same messages.
        if stored > 0 {
            self.resync_at = Some(Instant::now() + RESYNC_DEBOUNCE);
        }
        stored
    }

    /// Adds the encoded size of a reconcile or fetch message to the overhead counter.
    fn count_overhead<T: serde::Serialize + SyncMessage>(&mut self, msg: &T) {
        if msg.is_overhead() {
            let len = crate::wire::encode(msg).map(|b| b.len()).unwrap_or(0);
            *self.counters.entry("sync_overhead_bytes").or_default() += len as u64;
        }
    }
}

/// Which sync messages are reconciliation overhead rather than payload.
trait SyncMessage {
    fn is_overhead(&self) -> bool;
}

impl SyncMessage for SyncRequest {
    fn is_overhead(&self) -> bool {
        !matches!(self, SyncRequest::Push { .. })
    }
}

impl SyncMessage for SyncResponse {
    fn is_overhead(&self) -> bool {
        !matches!(self, SyncResponse::Envelopes(_))
    }
}

fn reply_name(r: &SyncResponse) -> &'static str {
    match r {
        SyncResponse::Reconcile(_) => "reconcile",
        SyncResponse::Envelopes(_) => "envelopes",
        SyncResponse::Pushed { .. } => "pushed",
        SyncResponse::NotFollowed => "not_followed",
        SyncResponse::Refused { .. } => "refused",
    }
}
