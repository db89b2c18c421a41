//! The libp2p behaviour of a node: gossipsub, identify, catch-up sync and connection limits.

use crate::sync::codec::SyncCodec;
use libp2p::{connection_limits, gossipsub, identify, request_response, swarm::NetworkBehaviour};

/// Identify protocol version string; peers with another major version are not ours.
pub(super) const IDENTIFY_PROTOCOL: &str = "/fieldmesh/1.0.0";

/// Composed behaviour; only the event loop touches it.
#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    /// Caps on pending and established connections.
    pub(super) limits: connection_limits::Behaviour,
    /// Channel dissemination.
    pub(super) gossipsub: gossipsub::Behaviour,
    /// Exchange of agent names and listen addresses.
    pub(super) identify: identify::Behaviour,
    /// Catch-up sync (`/fieldmesh/sync/1`).
    pub(super) sync: request_response::Behaviour<SyncCodec>,
}
