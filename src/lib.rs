//! fieldmesh: a peer-to-peer, offline mesh messenger for disaster sites.
//!
//! # Layout
//! Dependencies point one way, top to bottom:
//! - [`wire`]: the single bincode configuration for every byte format.
//! - [`identity`]: the node's ed25519 key (mode 0600) and peer id.
//! - [`crypto`]: at-rest vault (argon2id + AES-256-GCM) and end-to-end DMs (Noise X); pure.
//! - [`team`]: team keys, channel body encryption, signed roster, key rotation, invites
//!   and join certificates; pure.
//! - [`gossip`]: the signed envelope, TTL and hop rules, triage priority, topics.
//! - [`store`]: sled trees for messages, channel and expiry indexes; the TTL sweeper.
//! - [`audit`]: the append-only, hash-chained audit trail (ids and times, no text).
//! - [`transport`], [`discovery`]: libp2p TCP+Noise+yamux / QUIC, and Noise+yamux over
//!   Bluetooth LE L2CAP channels (`transport::ble`); mDNS-SD announce + browse.
//! - [`node`]: the one event loop that owns the swarm, and its Clone handle.
//! - [`api`]: the local control socket (JSON Lines), the web UI (HTTP + SSE) and
//!   `/metrics`, each over a node handle.
//! - [`config`]: defaults and tunables.
//! - [`bench`]: the dissemination benchmark (`fieldmesh bench`) over in-process nodes.
//! - [`sim`]: the drill simulator (`fieldmesh sim`): in-process nodes over emulated poor links.
//! - [`progress`]: progress bars (terminal) or plain lines (logs) for long operations.
//!
//! The wire formats are specified in `proto/`; code links there, not the other way round.

pub mod api;
pub mod audit;
pub mod bench;
pub mod config;
pub mod crypto;
pub mod discovery;
pub mod gossip;
pub mod identity;
pub mod node;
pub mod progress;
pub mod sim;
pub mod store;
pub mod sync;
pub mod team;
pub mod transport;
pub mod wire;
