//! A hostile peer for the bad-input and flood tests and the flood benchmark: a bare
//! gossipsub swarm (the real transport, no fieldmesh node behind it) that joins a
//! node's topic and publishes whatever bytes it is given, one at a time or as fast as
//! asked until the node cuts it off.

use futures::StreamExt;
use libp2p::{gossipsub, swarm::SwarmEvent, Multiaddr, PeerId, Swarm};
use std::time::Duration;

/// Why the flooder could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlooderError {
    /// The swarm could not be built or dial.
    #[error("flooder setup: {0}")]
    Setup(String),
    /// The node did not take the subscription in time.
    #[error("the node did not see the flooder subscribe within {0:?}")]
    NotSubscribed(Duration),
}

/// What a flood achieved.
#[derive(Debug, Clone, Copy)]
pub struct Flooded {
    /// Messages handed to gossipsub (its queue refuses some at high rates).
    pub sent: usize,
    /// Whether the node closed the connection on the flooder.
    pub cut_off: bool,
}

/// A connected flooder.
pub struct Flooder {
    swarm: Swarm<gossipsub::Behaviour>,
    topic: gossipsub::IdentTopic,
}

impl Flooder {
    /// Dials `node` and subscribes to `topic`; returns once the node has seen the
    /// subscription (so what is published reaches it).
    pub async fn connect(
        node: Multiaddr,
        topic: &str,
        within: Duration,
    ) -> Result<Flooder, FlooderError> {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let mut swarm = crate::transport::build_swarm(key, None, None, |_| {
            let cfg = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .message_id_fn(|m| crate::gossip::message_id(&m.data))
                .build()
                .map_err(|e| e.to_string())?;
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, cfg)
                .map_err(str::to_owned)
        })
        .map_err(|e| FlooderError::Setup(e.to_string()))?;
        let topic = gossipsub::IdentTopic::new(topic);
        swarm
            .behaviour_mut()
            .subscribe(&topic)
            .map_err(|e| FlooderError::Setup(e.to_string()))?;
        swarm
            .dial(node)
            .map_err(|e| FlooderError::Setup(e.to_string()))?;
        tokio::time::timeout(within, async {
            loop {
                if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) =
                    swarm.select_next_some().await
                {
                    return;
                }
            }
        })
        .await
        .map_err(|_| FlooderError::NotSubscribed(within))?;
        Ok(Flooder { swarm, topic })
    }

    /// The flooder's peer id.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Publishes `data` and keeps the connection polled for `settle`, so that it has
    /// been written out (and the node had time to react) when this returns.
    pub async fn send(&mut self, data: Vec<u8>, settle: Duration) -> Result<(), FlooderError> {
        self.swarm
            .behaviour_mut()
            .publish(self.topic.clone(), data)
            .map_err(|e| FlooderError::Setup(e.to_string()))?;
        let _ = tokio::time::timeout(settle, async {
            loop {
                self.swarm.select_next_some().await;
            }
        })
        .await;
        Ok(())
    }

    /// Publishes `msgs`, `per_ms` every millisecond, until the node closes the
    /// connection; gives up `linger` after the messages ran out.
    pub async fn flood(
        mut self,
        msgs: impl IntoIterator<Item = Vec<u8>>,
        per_ms: usize,
        linger: Duration,
    ) -> Flooded {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut msgs = msgs.into_iter().peekable();
        let mut sent = 0;
        let mut give_up = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if give_up.is_some_and(|t| tokio::time::Instant::now() > t) {
                        return Flooded { sent, cut_off: false };
                    }
                    for m in msgs.by_ref().take(per_ms) {
                        // Queue-full errors are expected at flood rates.
                        if self.swarm.behaviour_mut().publish(self.topic.clone(), m).is_ok() {
                            sent += 1;
                        }
                    }
                    if give_up.is_none() && msgs.peek().is_none() {
                        give_up = Some(tokio::time::Instant::now() + linger);
                    }
                }
                ev = self.swarm.select_next_some() => {
                    if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = ev {
                        return Flooded { sent, cut_off: true };
                    }
                }
            }
        }
    }
}
