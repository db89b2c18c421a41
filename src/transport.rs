//! Transports: TCP with Noise XX (X25519, ChaChaPoly, SHA-256) and yamux, plus QUIC
//! (TLS 1.3 inside QUIC, as libp2p specifies), and, where an adapter is given, the
//! same Noise and yamux over Bluetooth LE L2CAP channels ([`ble`]). Builds the swarm
//! around any behaviour.
//! Every TCP connection runs over a [`link::LinkStream`], which counts wire bytes and,
//! for tests and drills only, emulates a poor link.

pub mod ble;
pub mod link;

pub use link::{wire_bytes_written, LinkProfile};

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::OptionalTransport;
use libp2p::core::upgrade::Version;
use libp2p::{identity::Keypair, noise, swarm::NetworkBehaviour, tcp, yamux, Swarm, Transport};
use std::sync::Arc;
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

/// Builds a tokio swarm with QUIC and TCP+Noise+yamux around the behaviour `make`
/// returns. `link` emulates a poor link on every TCP connection (tests and drills;
/// QUIC is left as it is, so emulated runs listen on TCP only). With `ble`, BLE
/// multiaddrs are dialled and listened on over that backend's L2CAP channels.
pub fn build_swarm<B: NetworkBehaviour>(
    keypair: Keypair,
    link: Option<LinkProfile>,
    ble: Option<Arc<dyn ble::L2capBackend>>,
    make: impl FnOnce(&Keypair) -> Result<B, String>,
) -> Result<Swarm<B>, TransportError> {
    let noise = noise::Config::new(&keypair)?;
    let ble_noise = noise::Config::new(&keypair)?;
    let Ok(with_tcp) = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_quic()
        .with_other_transport(|_| {
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .map(move |stream, _| link::LinkStream::new(stream, link))
                .upgrade(Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            let ble = match ble {
                Some(backend) => OptionalTransport::some(
                    ble::BleTransport::new(backend)
                        .upgrade(Version::V1)
                        .authenticate(ble_noise)
                        .multiplex(yamux::Config::default())
                        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer))),
                ),
                None => OptionalTransport::none(),
            };
            tcp.or_transport(ble).map(|either, _| either.into_inner())
        });
    let swarm = with_tcp
        .with_behaviour(|key| make(key).map_err(Box::<dyn std::error::Error + Send + Sync>::from))
        .map_err(|e| TransportError::Behaviour(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}
