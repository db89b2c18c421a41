//! The node: [`Node::spawn`] starts the one event loop that owns the swarm and
//! returns a Clone [`NodeHandle`], the public async API used by the control socket,
//! the CLI and tests.

mod audit;
mod behaviour;
mod bluetooth;
mod command;
mod event_loop;
pub mod guard;
mod jitter;
pub mod latency;
pub(crate) mod receipts;
mod sync_driver;
pub mod team_state;

pub use command::{MeshView, NodeEvent, PeerView, StatusView};

use crate::audit::{AuditLog, Event, Fact};
use crate::config::NodeConfig;
use crate::gossip::direct;
use crate::gossip::envelope::MessageId;
use crate::gossip::envelope::{
    ChannelName, Draft, Envelope, EnvelopeError, Limits, DEFAULT_HOP_LIMIT, MAX_TTL,
};
use crate::gossip::priority::Priority;
use crate::gossip::report::mark_exercise;
use crate::gossip::tombstone::{Tombstone, TOMBSTONE_CHANNEL};
use crate::identity::{Identity, Passphrase};
use crate::store::{now_ms, Inserted, Store, StoreError};
use command::Command;
use libp2p::Multiaddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use team_state::{ActiveTeam, TEAM_CHANNEL};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Capacity of the command channel: control clients are bounded by a semaphore, so
/// this only absorbs bursts; a full channel makes callers wait (backpressure).
const COMMAND_CHANNEL_CAPACITY: usize = 256;
/// Capacity of the event broadcast: a subscriber further behind than this gets
/// `Lagged` and must re-read the store; the loop never waits on a subscriber.
const EVENT_CHANNEL_CAPACITY: usize = 4096;

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// Announcing to the team failed.
    #[error("team start-up")]
    Team(#[from] PublishError),
    /// A reserved channel name failed to parse (cannot happen).
    #[error(transparent)]
    Channel(#[from] crate::gossip::envelope::BadChannel),
    /// Transport or behaviour setup failed.
    #[error("transport")]
    Transport(#[from] crate::transport::TransportError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// The cause.
        #[source]
        source: libp2p::TransportError<std::io::Error>,
    },
    /// Listeners did not report an address in time.
    #[error("listeners did not come up within {0:?}")]
    ListenTimeout(Duration),
    /// The store could not be read.
    #[error("store")]
    Store(#[from] StoreError),
    /// mDNS could not start.
    #[error("discovery")]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// The audit log could not be opened.
    #[error("cannot open the audit log {path}")]
    Audit {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Why a message could not be published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The channel name is not valid.
    #[error(transparent)]
    BadChannel(#[from] crate::gossip::envelope::BadChannel),
    /// Body larger than the node's cap.
    #[error("message of {len} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// Body length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// TTL is zero or beyond the maximum.
    #[error("ttl must be between 1 ms and {max:?}")]
    BadTtl {
        /// Largest allowed.
        max: Duration,
    },
    /// The envelope could not be built.
    #[error("envelope")]
    Envelope(#[from] EnvelopeError),
    /// The store refused the write.
    #[error("store")]
    Store(#[from] StoreError),
    /// A direct message could not be sealed (bad recipient).
    #[error(transparent)]
    Dm(#[from] crate::gossip::direct::DmError),
    /// A team operation failed (not the admin, record did not verify, ...).
    #[error(transparent)]
    Team(#[from] crate::team::TeamError),
    /// The store is at its size limit and holds nothing less urgent to evict.
    #[error("the store is full of more urgent unexpired messages (raise --max-store-bytes)")]
    StoreFull,
    /// The node runs no team (drill mode).
    #[error("this node runs the drill team: start it with --team NAME")]
    NoTeam,
    /// The channel is reserved (`team`, `dm`, `tombstone`: use their commands).
    #[error("this channel is reserved: use `fieldmesh dm`, `transcribe` or `team`")]
    Reserved,
    /// The message to transcribe is not held here, or not readable by this node.
    #[error("no readable message {0} here")]
    NotFound(String),
    /// The node is shutting down.
    #[error("node stopped")]
    NodeStopped,
}

/// Why `unlock` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockError {
    /// Wrong passphrase, damaged or missing vault.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The vault now holds another identity than the running node's.
    #[error("the vault holds another identity than this node's")]
    OtherIdentity,
    /// The node is shutting down.
    #[error("node stopped")]
    NodeStopped,
}

/// What a successful publish reports.
#[derive(Debug, Clone)]
pub struct Published {
    /// The stored, signed envelope.
    pub envelope: Envelope,
    /// Peers it was gossiped to right away (0: stored locally only for now).
    pub sent_to: usize,
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Channel.
    pub channel: ChannelName,
    /// Payload.
    pub body: Vec<u8>,
    /// Time to live.
    pub ttl: Duration,
    /// Triage priority.
    pub priority: Priority,
}

/// The node's event loop task; cancel the shutdown token, then await it so the
/// store is flushed.
pub type NodeTask = JoinHandle<()>;

/// Entry point: see [`Node::spawn`].
pub struct Node;

impl Node {
    /// Binds the listeners, starts discovery and the event loop. Returns once every
    /// listener has an address.
    pub async fn spawn(
        config: NodeConfig,
        identity: Identity,
        store: Store,
        shutdown: CancellationToken,
    ) -> Result<(NodeHandle, NodeTask), SpawnError> {
        let mut config = config;
        let team = config
            .team_entry
            .as_ref()
            .map(|e| ActiveTeam::new(e, identity.signing_key().clone()));
        if let Some(t) = &team {
            config.team = t.tag();
            config.channels.push(ChannelName::new(TEAM_CHANNEL)?);
        }
        let team: SharedTeam = Arc::new(RwLock::new(team));
        // Replaying rebuilds what was known before the restart: no audit records.
        replay_team_records(&team, &store);
        let (audit, audit_task) = audit::open(&config, &identity, &store, &shutdown)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let (events_tx, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let (mut event_loop, listen) = event_loop::EventLoop::start(
            &config,
            &identity,
            store.clone(),
            team.clone(),
            cmd_rx,
            events_tx.clone(),
            shutdown,
        )
        .await?;
        let handle = NodeHandle {
            data_dir: config.data_dir.clone(),
            cmd_tx,
            events_tx,
            store,
            identity,
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
            },
            listen,
            team,
            ttl: config.ttl.clone(),
            audit: audit.clone(),
        };
        event_loop.audit = audit;
        // The node has stopped once the loop has flushed the store and the audit
        // writer has written what was queued (it stops on the same token).
        let task = tokio::spawn(async move {
            event_loop.run().await;
            if let Some(t) = audit_task {
                if let Err(e) = t.await {
                    tracing::error!(error = %e, "audit writer panicked");
                }
            }
        });
        // Announce ourselves to the team: the admin's first roster, a joiner's
        // certificate. Stored first, so catch-up carries them to whoever we meet.
        let startup = match handle
            .team
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(t) => t.startup_records(now_ms()).map_err(PublishError::from)?,
            None => Vec::new(),
        };
        for body in startup {
            handle.publish_team_record(body).await?;
        }
        Ok((handle, task))
    }
}

/// The team shared by the event loop (validation) and the handle (seal, open).
pub(crate) type SharedTeam = Arc<RwLock<Option<ActiveTeam>>>;

/// Rebuilds membership and keys from the team records kept in the store.
fn replay_team_records(team: &SharedTeam, store: &Store) {
    let mut guard = team.write().unwrap_or_else(|p| p.into_inner());
    let Some(t) = guard.as_mut() else { return };
    let Ok(channel) = ChannelName::new(TEAM_CHANNEL) else {
        return;
    };
    match store.read_channel(&channel, now_ms(), usize::MAX) {
        Ok(records) => {
            for env in records {
                if let Err(e) = t.apply(&env.author, &env.body) {
                    tracing::warn!(id = %env.id, error = %e, "stored team record does not apply");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot replay team records"),
    }
}

/// Clone handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    data_dir: std::path::PathBuf,
    cmd_tx: mpsc::Sender<Command>,
    events_tx: broadcast::Sender<NodeEvent>,
    store: Store,
    identity: Identity,
    limits: Limits,
    listen: Vec<Multiaddr>,
    team: SharedTeam,
    ttl: crate::config::TtlPolicy,
    audit: Option<AuditLog>,
}

impl NodeHandle {
    /// Signs, durably stores, then gossips a message. Returns only after the store
    /// flush, so an acknowledged message survives a crash.
    pub async fn publish(&self, msg: Outgoing) -> Result<Published, PublishError> {
        if msg.body.len() > self.limits.max_body_bytes {
            return Err(PublishError::TooLarge {
                len: msg.body.len(),
                max: self.limits.max_body_bytes,
            });
        }
        if msg.ttl.is_zero() || msg.ttl > self.ttl.max.min(MAX_TTL) {
            return Err(PublishError::BadTtl {
                max: self.ttl.max.min(MAX_TTL),
            });
        }
        if [
            TEAM_CHANNEL,
            direct::DM_CHANNEL,
            TOMBSTONE_CHANNEL,
            crate::gossip::receipt::RECEIPT_CHANNEL,
        ]
        .contains(&msg.channel.as_str())
        {
            return Err(PublishError::Reserved);
        }
        let body = match self.team.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(t) if t.is_exercise() => t.seal(msg.channel.as_str(), mark_exercise(msg.body))?,
            Some(t) => t.seal(msg.channel.as_str(), msg.body)?,
            None => msg.body,
        };
        self.publish_signed(msg.channel, body, msg.ttl, msg.priority)
            .await
    }

    /// Whether the node runs an exercise team: it marks everything it sends
    /// EXERCISE and refuses members' unmarked messages (`proto/bodies.md` §6).
    pub fn is_exercise(&self) -> bool {
        self.team
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(ActiveTeam::is_exercise)
    }

    /// Publishes a team record (roster, join certificate, key update) on the `team`
    /// channel and applies it locally.
    async fn publish_team_record(&self, body: Vec<u8>) -> Result<Published, PublishError> {
        let published = self
            .publish_signed(
                ChannelName::new(TEAM_CHANNEL)?,
                body.clone(),
                self.record_ttl(),
                Priority::P2,
            )
            .await?;
        if let Some(t) = self
            .team
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            let before = t.members();
            t.apply(&self.identity.signing_key().public().to_bytes(), &body)?;
            self.audit_all(team_state::membership_changes(&before, &t.members()));
        }
        Ok(published)
    }

    /// Admin only: an invite code for the running team `which`, with its newest key.
    pub fn team_invite(&self, which: &str, expires_at_ms: u64) -> Result<String, PublishError> {
        match self.team.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(t) if t.is_named(which) => Ok(t.invite(expires_at_ms)?.to_code()),
            _ => Err(PublishError::NoTeam),
        }
    }

    /// Admin only: removes `member` from the team and rotates the key; members
    /// receive the new key, `member` does not.
    pub async fn team_remove(&self, member: &libp2p::PeerId) -> Result<(), PublishError> {
        self.remove_member(member, None).await
    }

    /// Admin only: revokes a lost device: [`Self::team_remove`] plus a signed
    /// revocation; with `wipe`, the device deletes the team's data and keys if it
    /// is still running and receives it.
    pub async fn team_revoke(
        &self,
        member: &libp2p::PeerId,
        wipe: bool,
    ) -> Result<(), PublishError> {
        self.remove_member(member, Some(wipe)).await
    }

    /// Removal, and with `revoke: Some(wipe)` the revocation order too.
    async fn remove_member(
        &self,
        member: &libp2p::PeerId,
        revoke: Option<bool>,
    ) -> Result<(), PublishError> {
        let member = direct::ed25519_of(member)?;
        if self.store.is_locked() {
            return Err(PublishError::Store(StoreError::Locked));
        }
        let records = match self
            .team
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Some(t) => {
                let before = t.members();
                let records = match revoke {
                    None => t.remove(member, now_ms())?,
                    Some(wipe) => t.revoke(member, wipe, now_ms())?,
                };
                self.audit_all(team_state::membership_changes(&before, &t.members()));
                records
            }
            None => return Err(PublishError::NoTeam),
        };
        self.publish_admin_records(records).await
    }

    /// Publishes records an admin operation produced (already applied here), urgent.
    async fn publish_admin_records(&self, records: Vec<Vec<u8>>) -> Result<(), PublishError> {
        for body in records {
            self.publish_signed(
                ChannelName::new(TEAM_CHANNEL)?,
                body,
                self.record_ttl(),
                Priority::P1,
            )
            .await?;
        }
        Ok(())
    }

    /// Admin only: orders the team to stand down at `at_ms`: every device then
    /// deletes the team's messages and keys (`proto/team.md` §11a).
    pub async fn team_stand_down(&self, at_ms: u64) -> Result<(), PublishError> {
        let order = match self.team.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(t) => t.order(crate::team::OrderKind::StandDown { at_ms }, now_ms())?,
            None => return Err(PublishError::NoTeam),
        };
        self.publish_team_record(order).await.map(|_| ())
    }

    /// When the team stands down (Unix ms), if the admin ordered it.
    pub fn stand_down_at(&self) -> Option<u64> {
        self.team
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(ActiveTeam::stand_down_at)
    }

    /// `Some(wipe)` once the admin revoked this device (see [`NodeEvent::Revoked`]).
    pub fn revoked(&self) -> Option<bool> {
        self.team
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(ActiveTeam::revoked)
    }

    /// Exports message `id` for the medical record, then publishes a tombstone that
    /// deletes it from every store the tombstone reaches (this one at once). The
    /// tombstone lives until the message would have expired.
    pub async fn transcribe(
        &self,
        id: &MessageId,
        format: crate::api::export::ExportFormat,
    ) -> Result<serde_json::Value, PublishError> {
        let not_found = || PublishError::NotFound(id.to_hex());
        let env = self.store.get(id)?.ok_or_else(not_found)?;
        let now = now_ms();
        if env.is_expired(now) || [TEAM_CHANNEL, TOMBSTONE_CHANNEL].contains(&env.channel.as_str())
        {
            return Err(not_found());
        }
        let text = self.open_text(&env).ok_or_else(not_found)?;
        let mut view = crate::api::MessageView::new(&env, now);
        // The medical record is where identifiable details belong: shown in full.
        view.set_body(&text, crate::gossip::report::Redaction::Reveal);
        let export = crate::api::export::export(&[view], format, &self.peer_id().to_string());
        let tombstone = Tombstone::new(env.id, env.expires_at_ms()).encode();
        let ttl = Duration::from_millis(env.expires_at_ms().saturating_sub(now).max(1));
        self.publish_signed(
            ChannelName::new(TOMBSTONE_CHANNEL)?,
            tombstone,
            ttl,
            env.priority,
        )
        .await?;
        if let Some(a) = &self.audit {
            a.record_wait(Fact::about(Event::Transcribed, &env)).await;
        }
        Ok(export)
    }

    /// The text of a stored message for this node's user: team channel bodies
    /// opened with the team keys, DMs only when addressed to us; `None` when this
    /// node cannot (or must not) read it.
    pub fn open_text(&self, env: &Envelope) -> Option<Vec<u8>> {
        if env.channel.as_str() == direct::DM_CHANNEL {
            return self.open_dm(env);
        }
        if env.channel.as_str() == crate::gossip::receipt::RECEIPT_CHANNEL {
            let n =
                crate::gossip::receipt::Receipt::decode(&env.body).map_or(0, |r| r.message_count());
            return Some(format!("[receipt: holds {n} messages]").into_bytes());
        }
        if env.channel.as_str() == TEAM_CHANNEL {
            let kind = match crate::team::record_kind(&env.body) {
                Some(crate::team::RecordKind::Roster) => "roster",
                Some(crate::team::RecordKind::JoinCert) => "member joined",
                Some(crate::team::RecordKind::KeyUpdate) => "team key rotated",
                _ => "unknown record",
            };
            return Some(format!("[team: {kind}]").into_bytes());
        }
        match self.team.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(t) => t.open(env.channel.as_str(), &env.author, &env.body),
            None => Some(env.body.clone()),
        }
    }

    async fn publish_signed(
        &self,
        channel: ChannelName,
        body: Vec<u8>,
        ttl: Duration,
        priority: Priority,
    ) -> Result<Published, PublishError> {
        // Checked again after sealing: the receivers' cap applies to the sealed body.
        if body.len() > self.limits.max_body_bytes {
            return Err(PublishError::TooLarge {
                len: body.len(),
                max: self.limits.max_body_bytes,
            });
        }
        let envelope = Envelope::sign(
            Draft {
                channel,
                created_at_ms: now_ms(),
                ttl,
                hop_limit: DEFAULT_HOP_LIMIT,
                priority,
                body,
            },
            self.identity.signing_key(),
        )?;
        let new = match self.store.insert(&envelope)? {
            Inserted::New => true,
            Inserted::Duplicate => false,
            Inserted::Full => return Err(PublishError::StoreFull),
        };
        let (reply, rx) = oneshot::channel();
        self.send(Command::Publish {
            envelope: Box::new(envelope.clone()),
            reply,
        })
        .await?;
        // Gossip does not wait for the disk; the caller's acknowledgement does.
        if new {
            self.store.flush().await?;
        }
        let sent_to = rx.await.map_err(|_| PublishError::NodeStopped)?;
        Ok(Published { envelope, sent_to })
    }

    /// TTL of team records: as long as the team allows.
    fn record_ttl(&self) -> Duration {
        self.ttl.max.min(MAX_TTL)
    }

    /// Peers known (from receipts) to hold message `id`, this node included; empty
    /// when it is not held here.
    pub fn holders(&self, id: &MessageId) -> Vec<libp2p::PeerId> {
        match self.store.get(id) {
            Ok(Some(env)) => self.holders_of(&env),
            _ => Vec::new(),
        }
    }

    /// Peers known (from receipts) to hold `env`, this node included; empty when it
    /// is not held here.
    pub fn holders_of(&self, env: &Envelope) -> Vec<libp2p::PeerId> {
        self.bucket_holders(&env.channel, env.created_at_ms)
            .filter(|(ids, _)| ids.contains(&env.id))
            .map(|(_, holders)| holders)
            .unwrap_or_default()
    }

    /// The messages held here in the receipt bucket of `channel` and
    /// `created_at_ms`, and the peers known to hold every one of them (this node
    /// first; see `proto/receipt.md` §4).
    pub fn bucket_holders(
        &self,
        channel: &ChannelName,
        created_at_ms: u64,
    ) -> Option<(Vec<MessageId>, Vec<libp2p::PeerId>)> {
        let me = self.identity.signing_key().public().to_bytes();
        let (ids, keys) =
            receipts::bucket_holders(&self.store, me, channel, created_at_ms, now_ms()).ok()?;
        let peers = keys
            .into_iter()
            .filter_map(|k| libp2p::identity::ed25519::PublicKey::try_from_bytes(&k).ok())
            .map(|k| libp2p::identity::PublicKey::from(k).to_peer_id())
            .collect();
        Some((ids, peers))
    }

    /// Team members not known (from receipts) to hold message `id`: whom to chase
    /// by voice. Errors: `NoTeam` on the drill team (it has no member list),
    /// `NotFound` when the message is not held here.
    pub fn missing(&self, id: &MessageId) -> Result<Vec<libp2p::PeerId>, PublishError> {
        let members = match self.team.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(t) => t.members(),
            None => return Err(PublishError::NoTeam),
        };
        if self.store.get_raw(id)?.is_none() {
            return Err(PublishError::NotFound(id.to_hex()));
        }
        let holders = self.holders(id);
        Ok(members
            .iter()
            .filter_map(|k| libp2p::identity::ed25519::PublicKey::try_from_bytes(k).ok())
            .map(|k| libp2p::identity::PublicKey::from(k).to_peer_id())
            .filter(|p| !holders.contains(p))
            .collect())
    }

    /// The node's TTL rules (defaults and maximum).
    pub fn ttl_policy(&self) -> &crate::config::TtlPolicy {
        &self.ttl
    }

    /// Forgets the store's data key: nothing can be read or sent until
    /// [`NodeHandle::unlock`]; the node keeps relaying validated messages.
    pub fn lock(&self) {
        self.store.lock();
    }

    /// Opens the vault with `passphrase` and restores the data key. Key derivation
    /// runs off the async threads (argon2id takes a noticeable fraction of a second).
    pub async fn unlock(&self, passphrase: Passphrase) -> Result<(), UnlockError> {
        let dir = self.data_dir.clone();
        let unlocked = tokio::task::spawn_blocking(move || Identity::unlock(&dir, &passphrase))
            .await
            .map_err(|_| UnlockError::NodeStopped)??;
        if unlocked.identity.peer_id() != self.identity.peer_id() {
            return Err(UnlockError::OtherIdentity);
        }
        self.store.unlock(unlocked.data_key);
        // Catch up on what arrived while locked (relayed, not stored).
        self.send(Command::SyncAll)
            .await
            .map_err(|_| UnlockError::NodeStopped)?;
        Ok(())
    }

    /// Whether the node is locked.
    pub fn is_locked(&self) -> bool {
        self.store.is_locked()
    }

    /// Seals `text` for `to` alone (one-way Noise X, `proto/dm.md`) and publishes it
    /// on the `dm` channel, relayed like any message.
    pub async fn send_dm(
        &self,
        to: &libp2p::PeerId,
        text: &[u8],
        ttl: Duration,
        priority: Priority,
    ) -> Result<Published, PublishError> {
        let body = if self.is_exercise() {
            direct::seal_body(
                self.identity.signing_key(),
                to,
                &mark_exercise(text.to_vec()),
            )?
        } else {
            direct::seal_body(self.identity.signing_key(), to, text)?
        };
        self.publish_signed(ChannelName::new(direct::DM_CHANNEL)?, body, ttl, priority)
            .await
    }

    /// The text of a `dm`-channel envelope if it is addressed to this node and opens
    /// (sealed by its signer); `None` for DMs to others or that fail to open.
    pub fn open_dm(&self, env: &Envelope) -> Option<Vec<u8>> {
        match direct::open_body(self.identity.signing_key(), &env.author, &env.body) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(id = %env.id, error = %e, "DM addressed to us does not open");
                None
            }
        }
    }

    /// Unexpired messages of a channel, oldest first.
    pub fn read(&self, channel: &ChannelName, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.store.read_channel(channel, now_ms(), limit)
    }

    /// The stored message `id` if it is held here and unexpired.
    pub fn get(&self, id: &MessageId) -> Result<Option<Envelope>, StoreError> {
        let env = self.store.get(id)?;
        Ok(env.filter(|e| !e.is_expired(now_ms())))
    }

    /// Follows a channel from now on (also remembered across restarts).
    pub async fn subscribe(&self, channel: ChannelName) -> Result<(), PublishError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Subscribe { channel, reply }).await?;
        rx.await.map_err(|_| PublishError::NodeStopped)
    }

    /// A receiver of everything the node does from now on.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.events_tx.subscribe()
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerView>, PublishError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Peers { reply }).await?;
        rx.await.map_err(|_| PublishError::NodeStopped)
    }

    /// Node status.
    pub async fn status(&self) -> Result<StatusView, PublishError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status { reply }).await?;
        rx.await.map_err(|_| PublishError::NodeStopped)
    }

    /// The gossip mesh of `channel`: subscribed peers and mesh peers.
    pub async fn mesh(&self, channel: ChannelName) -> Result<MeshView, PublishError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Mesh { channel, reply }).await?;
        rx.await.map_err(|_| PublishError::NodeStopped)
    }

    /// Our peer id.
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.identity.peer_id()
    }

    /// Addresses the node listens on (as bound at start).
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen
    }

    async fn send(&self, cmd: Command) -> Result<(), PublishError> {
        self.cmd_tx
            .send(cmd)
            .await
            .map_err(|_| PublishError::NodeStopped)
    }
}
