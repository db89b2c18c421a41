//! Transports: TCP with Noise XX (X25519, ChaChaPoly, SHA-256) and yamux, plus QUIC
//! (TLS 1.3 inside QUIC, as libp2p specifies). Builds the swarm around any behaviour.

use libp2p::{identity::Keypair, noise, swarm::NetworkBehaviour, tcp, yamux, Swarm};
use std::time::Duration;

/// How long an idle connection (no open streams) is kept: long enough to ride out a
/// quiet spell in gossip without redialling.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the transport could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Noise could not be set up with the identity key.
    #[error("noise setup")]
    Noise(#[from] noise::Error),
    /// The behaviour constructor failed.
    #[error("behaviour setup: {0}")]
    Behaviour(String),
}

/// Builds a tokio swarm with TCP+Noise+yamux and QUIC around the behaviour `make` returns.
pub fn build_swarm<B: NetworkBehaviour>(
    keypair: Keypair,
    make: impl FnOnce(&Keypair) -> Result<B, String>,
) -> Result<Swarm<B>, TransportError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_behaviour(|key| make(key).map_err(Box::<dyn std::error::Error + Send + Sync>::from))
        .map_err(|e| TransportError::Behaviour(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}
