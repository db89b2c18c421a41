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
    FIRST_BATCH_BYTES, MAX_FETCH_IDS, MAX_RANGES,
};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Quiet time after the last batch of new messages from a sync before every peer is
/// re-synced, so a burst of transfers triggers one wave rather than one per batch.
pub(super) const RESYNC_DEBOUNCE: Duration = Duration::from_millis(200);
/// How old (by its author's clock) a message must be before a periodic sync round
/// compares it: younger ones are still on their way by gossip, and
/// pushing them by sync as well only doubles the traffic when a site is busy (at
/// 500 nodes it tipped the whole site into overload, issue 7; with 5 s an overloaded
/// node's gossip backlog was still fetched twice). Sessions started on a new
/// connection compare everything.
pub(super) const GOSSIP_GRACE: Duration = Duration::from_secs(30);

/// What a session compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyncScope {
    /// Every unexpired message: a new connection, a link that took over, an
    /// unlock, and the re-sync after messages arrived by sync.
    Everything,
    /// Messages older than [`GOSSIP_GRACE`]: periodic rounds.
    Settled,
}

/// Requests one session may send: reconciliation of 100 000 items with every item
/// different takes about 5 rounds per channel, then one request per batch.
const MAX_REQUESTS: usize = 4096;

/// Requests a session keeps in flight while paging a range or pushing: the peer
/// prepares the next batch while we verify and store the last one.
const PIPELINE_DEPTH: usize = 3;
/// Envelopes in the first page of a range: small, so the most urgent messages
/// arrive without waiting for a full batch.
const FIRST_PAGE: u32 = 32;
/// Envelopes in later pages (about 460 KB of 512-byte messages; the responder's
/// byte cap cuts a page of larger ones short, and the rest is asked for again).
const PAGE: u32 = 700;

/// A range the peer holds and we hold nothing of, fetched in pages.
struct RangeFetch {
    lower: Option<Bound>,
    upper: Bound,
    /// Position (in the responder's transfer order) of the next new page.
    next_skip: u32,
    /// An empty page came back: no new pages are asked for.
    exhausted: bool,
    /// Parts of pages that came back short, to ask for again.
    retry: VecDeque<(u32, u32)>,
}

/// Where one channel's sync stands.
enum Phase {
    Reconciling(Box<Reconciler>),
    Fetching {
        ranges: VecDeque<RangeFetch>,
        need: VecDeque<ItemInfo>,
        have: Vec<ItemInfo>,
        asked: Vec<ItemInfo>,
    },
    Pushing {
        have: VecDeque<ItemInfo>,
        /// Batches pushed so far (the first one is small; see [`FIRST_BATCH_BYTES`]).
        batches: usize,
    },
}

/// What an in-flight request was for.
#[derive(Clone, Copy)]
enum Pending {
    /// A page of the front range: `skip`, `max`.
    Page(u32, u32),
    /// A push batch (several may be in flight).
    Push,
    /// Anything else: the only request in flight.
    Step,
}

/// An initiator session with one peer.
pub(super) struct SyncSession {
    /// Requests in flight; replies to anything else (an earlier session's late
    /// answer) are ignored.
    in_flight: HashMap<OutboundRequestId, Pending>,
    /// Requests sent so far; a session that needs more than [`MAX_REQUESTS`] is
    /// aborted (a faulty or hostile peer could otherwise keep it going forever).
    requests: usize,
    channels: VecDeque<ChannelName>,
    current: Option<(ChannelName, Phase)>,
    stored: usize,
    started: Instant,
    /// Exclusive upper bound of every channel's reconciliation.
    upper: Bound,
}

impl EventLoop {
    /// Starts a session with `peer` over `scope` unless one is running.
    pub(super) fn start_sync(&mut self, peer: PeerId, scope: SyncScope) {
        if self.sessions.contains_key(&peer) {
            return;
        }
        let mut channels: Vec<ChannelName> = self.channels.iter().cloned().collect();
        // Team records first (they admit the authors of everything else), then
        // tombstones (so deleted messages are not fetched again), then the rest.
        channels.sort_by_key(|c| {
            let rank = match c.as_str() {
                super::team_state::TEAM_CHANNEL => 0,
                crate::gossip::tombstone::TOMBSTONE_CHANNEL => 1,
                _ => 2,
            };
            (rank, c.clone())
        });
        debug!(%peer, "sync session started");
        self.sessions.insert(
            peer,
            SyncSession {
                in_flight: HashMap::new(),
                requests: 0,
                channels: channels.into(),
                current: None,
                stored: 0,
                started: Instant::now(),
                upper: match scope {
                    SyncScope::Everything => Bound::max(),
                    SyncScope::Settled => Bound {
                        ts: now_ms().saturating_sub(GOSSIP_GRACE.as_millis() as u64),
                        id_prefix: Vec::new(),
                    },
                },
            },
        );
        self.advance_sync(peer);
    }

    /// Sends the session's next requests, moving through phases and channels.
    fn advance_sync(&mut self, peer: PeerId) {
        loop {
            let Some(session) = self.sessions.get_mut(&peer) else {
                return;
            };
            let pipelined = session.in_flight.len();
            let waiting_step = session
                .in_flight
                .values()
                .any(|p| matches!(p, Pending::Step));
            if waiting_step || pipelined >= PIPELINE_DEPTH {
                return;
            }
            let Some((channel, phase)) = session.current.as_mut() else {
                if pipelined > 0 {
                    return;
                }
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
                let reconciler = Reconciler::below(items, session.upper.clone());
                session.current = Some((next, Phase::Reconciling(Box::new(reconciler))));
                continue;
            };
            // Sync names the team's topic, not the bare channel, so teams never mix.
            let channel_name = crate::gossip::topic(&self.team, channel).to_string();
            let (request, pending) = match phase {
                Phase::Reconciling(r) => {
                    if pipelined > 0 {
                        return;
                    }
                    match r.next_request() {
                        Some(ranges) => (
                            SyncRequest::Reconcile {
                                channel: channel_name,
                                ranges,
                            },
                            Pending::Step,
                        ),
                        None => {
                            let mut need = std::mem::take(&mut r.need);
                            let mut have = std::mem::take(&mut r.have);
                            transfer_order(&mut need);
                            transfer_order(&mut have);
                            let ranges = r
                                .need_ranges
                                .drain(..)
                                .map(|(lower, upper)| RangeFetch {
                                    lower,
                                    upper,
                                    next_skip: 0,
                                    exhausted: false,
                                    retry: VecDeque::new(),
                                })
                                .collect();
                            *phase = Phase::Fetching {
                                ranges,
                                need: need.into(),
                                have,
                                asked: Vec::new(),
                            };
                            continue;
                        }
                    }
                }
                Phase::Fetching {
                    ranges,
                    need,
                    have,
                    asked,
                } => {
                    if let Some(range) = ranges.front_mut() {
                        let page = match range.retry.pop_front() {
                            Some(p) => Some(p),
                            None if !range.exhausted => {
                                let max = if range.next_skip == 0 {
                                    FIRST_PAGE
                                } else {
                                    PAGE
                                };
                                let p = (range.next_skip, max);
                                range.next_skip = range.next_skip.saturating_add(max);
                                Some(p)
                            }
                            None => None,
                        };
                        match page {
                            Some((skip, max)) => (
                                SyncRequest::FetchRange {
                                    channel: channel_name,
                                    lower: range.lower.clone(),
                                    upper: range.upper.clone(),
                                    skip,
                                    max,
                                },
                                Pending::Page(skip, max),
                            ),
                            // Exhausted: move on once its last pages are answered.
                            None if pipelined == 0 => {
                                ranges.pop_front();
                                continue;
                            }
                            None => return,
                        }
                    } else if pipelined > 0 {
                        return;
                    } else if need.is_empty() {
                        *phase = Phase::Pushing {
                            have: std::mem::take(have).into(),
                            batches: 0,
                        };
                        continue;
                    } else {
                        let n = need.len().min(MAX_FETCH_IDS);
                        *asked = need.drain(..n).collect();
                        (
                            SyncRequest::Fetch {
                                channel: channel_name,
                                ids: asked.iter().map(|i| i.id).collect(),
                            },
                            Pending::Step,
                        )
                    }
                }
                Phase::Pushing { have, batches } => {
                    let cap = if *batches == 0 {
                        FIRST_BATCH_BYTES
                    } else {
                        self.sync_batch_bytes
                    };
                    *batches += 1;
                    let mut envelopes = Vec::new();
                    let mut bytes = 0;
                    while let Some(item) = have.front() {
                        // Listed by the index as unexpired moments ago: relay as stored.
                        if let Some(b) = self
                            .store
                            .get_raw(&MessageId(item.id))
                            .ok()
                            .flatten()
                            .and_then(|raw| relay_raw(&raw))
                        {
                            if bytes + b.len() > cap && !envelopes.is_empty() {
                                break;
                            }
                            bytes += b.len();
                            envelopes.push(b);
                        }
                        have.pop_front();
                    }
                    if envelopes.is_empty() {
                        if pipelined == 0 {
                            session.current = None;
                            continue;
                        }
                        return;
                    }
                    self.count_batch_sent(bytes);
                    (
                        SyncRequest::Push {
                            channel: channel_name,
                            envelopes,
                        },
                        Pending::Push,
                    )
                }
            };
            if self
                .sessions
                .get(&peer)
                .is_some_and(|s| s.requests >= MAX_REQUESTS)
            {
                self.finish_sync(peer, Some(format!("more than {MAX_REQUESTS} requests")));
                return;
            }
            self.count_overhead(&request);
            debug!(%peer, request = request_name(&request), "sync request");
            let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
            let Some(session) = self.sessions.get_mut(&peer) else {
                return;
            };
            session.in_flight.insert(id, pending);
            session.requests += 1;
        }
    }

    /// Messages the running sessions know they still have to fetch or push:
    /// `status` and `/metrics` report it as the sync backlog.
    pub(super) fn sync_backlog(&self) -> usize {
        self.sessions
            .values()
            .filter_map(|s| s.current.as_ref())
            .map(|(_, phase)| match phase {
                Phase::Reconciling(_) => 0,
                Phase::Fetching {
                    need, have, asked, ..
                } => need.len() + asked.len() + have.len(),
                Phase::Pushing { have, .. } => have.len(),
            })
            .sum()
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
                if let Some(pending) = self.take_in_flight(peer, request_id) {
                    self.on_sync_response(peer, pending, response);
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.take_in_flight(peer, request_id).is_some() {
                    self.finish_sync(peer, Some(error.to_string()));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// What `id` was for, if the current session with `peer` waits for it.
    fn take_in_flight(&mut self, peer: PeerId, id: OutboundRequestId) -> Option<Pending> {
        self.sessions.get_mut(&peer)?.in_flight.remove(&id)
    }

    fn on_sync_response(&mut self, peer: PeerId, pending: Pending, response: SyncResponse) {
        self.count_overhead(&response);
        let Some((channel, phase)) = self
            .sessions
            .get_mut(&peer)
            .and_then(|s| s.current.as_mut())
        else {
            // A late reply for a channel already left (e.g. after `NotFollowed`):
            // nothing to apply, but the session must move on.
            self.advance_sync(peer);
            return;
        };
        let channel = channel.clone();
        match (phase, pending, response) {
            (Phase::Reconciling(r), _, SyncResponse::Reconcile(replies)) => {
                if let Err(e) = r.on_replies(replies) {
                    self.finish_sync(peer, Some(e.to_string()));
                    return;
                }
            }
            (
                Phase::Fetching { ranges, .. },
                Pending::Page(skip, max),
                SyncResponse::Envelopes(list),
            ) => {
                if list.len() > max as usize {
                    self.finish_sync(peer, Some("page larger than asked".into()));
                    return;
                }
                // An empty page means the range is done; a short one (byte cap) is
                // asked for again from where it stopped.
                if let Some(range) = ranges.front_mut() {
                    let got = list.len() as u32;
                    if got == 0 {
                        range.exhausted = true;
                    } else if got < max {
                        range.retry.push_back((skip + got, max - got));
                    }
                }
                let stored = self.accept_batch(peer, &list, &channel);
                if let Some(session) = self.sessions.get_mut(&peer) {
                    session.stored += stored;
                }
            }
            (Phase::Fetching { asked, .. }, Pending::Step, SyncResponse::Envelopes(list)) => {
                let asked = std::mem::take(asked);
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
            (Phase::Pushing { .. }, Pending::Push, SyncResponse::Pushed { .. }) => {}
            (_, _, SyncResponse::NotFollowed) => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    s.current = None;
                }
            }
            (_, _, other) => {
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
        debug!(%peer, request = request_name(&request), "sync request received");
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
        if self.store.is_locked() {
            return refused("locked");
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
                    self.sync_batch_bytes,
                ))
            }
            SyncRequest::FetchRange {
                lower,
                upper,
                skip,
                max,
                ..
            } => {
                let mine: Vec<ItemInfo> = match self.store.index_entries(&channel, now) {
                    Ok(v) => v.into_iter().map(ItemInfo::from).collect(),
                    Err(_) => return refused("store"),
                };
                let mut wanted =
                    sync::slice(&mine, ItemInfo::item, lower.as_ref(), &upper).to_vec();
                transfer_order(&mut wanted);
                let cap = self.sync_batch_bytes;
                // The index already says these are unexpired and in this channel, so
                // the stored bytes are sent as they are (hop counter bumped), undecoded.
                let mut out = Vec::new();
                let mut bytes = 0;
                let max = (max as usize).min(MAX_FETCH_IDS);
                for item in wanted.into_iter().skip(skip as usize) {
                    if out.len() >= max {
                        break;
                    }
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
                self.count_batch_sent(bytes);
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
        self.count_batch_sent(bytes);
        out
    }

    /// Validates envelope bytes from `peer` exactly as gossip does and stores the
    /// valid ones in one transaction. Returns how many were new.
    fn accept_batch(&mut self, peer: PeerId, batch: &[Vec<u8>], channel: &ChannelName) -> usize {
        let payload: usize = batch.iter().map(Vec::len).sum();
        *self.counters.entry("sync_payload_bytes").or_default() += payload as u64;
        let mut valid = Vec::with_capacity(batch.len());
        for res in self.validate_batch(batch, channel) {
            match res.and_then(|env| self.admit(&env).map(|()| env)) {
                // Transcribed and deleted here: never stored again until its expiry.
                Ok(env) if self.store.is_tombstoned(&env.id).unwrap_or(false) => {
                    *self.counters.entry("tombstoned_refused").or_default() += 1;
                }
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
                Inserted::Full => *self.counters.entry("store_full").or_default() += 1,
            }
        }
        // Sliding: while batches keep arriving, a transfer is still under way and
        // re-syncing now would only race it for the same messages.
        if stored > 0 {
            self.resync_at = Some(Instant::now() + RESYNC_DEBOUNCE);
        }
        stored
    }

    /// Counts one batch of envelopes sent (a push, or a reply to a fetch) and its bytes.
    fn count_batch_sent(&mut self, bytes: usize) {
        *self.counters.entry("sync_payload_bytes").or_default() += bytes as u64;
        *self.counters.entry("sync_batches_sent").or_default() += 1;
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

fn request_name(r: &SyncRequest) -> &'static str {
    match r {
        SyncRequest::Reconcile { .. } => "reconcile",
        SyncRequest::Fetch { .. } => "fetch",
        SyncRequest::FetchRange { .. } => "fetch_range",
        SyncRequest::Push { .. } => "push",
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
