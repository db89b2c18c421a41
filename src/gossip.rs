//! Gossip layer: the envelope, triage priority, topic naming and the gossipsub
//! configuration. Topic names are plain `IdentTopic` strings (`proto/README.md`).

pub mod direct;
pub mod envelope;
pub mod outbound;
pub mod priority;
pub mod receipt;
pub mod report;
pub mod tombstone;

use envelope::{id_of_bytes, ChannelName};
use libp2p::gossipsub;
use std::time::Duration;

/// Every fieldmesh topic starts with this.
pub const TOPIC_PREFIX: &str = "fieldmesh/1/";

/// Topic for a team's channel: `fieldmesh/1/<team>/<channel>` (gossipsub protocol
/// ids are libp2p's defaults).
pub fn topic(team: &TeamTag, channel: &ChannelName) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!(
        "{TOPIC_PREFIX}{}/{}",
        team.as_str(),
        channel.as_str()
    ))
}

/// The channel a topic string names for this team, if it is one of ours.
pub fn channel_of_topic(team: &TeamTag, topic: &gossipsub::TopicHash) -> Option<ChannelName> {
    let prefix = format!("{TOPIC_PREFIX}{}/", team.as_str());
    topic
        .as_str()
        .strip_prefix(&prefix)
        .and_then(|c| ChannelName::new(c).ok())
}

/// A team tag: names the team in topics and mDNS TXT records. Same alphabet as channels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TeamTag(ChannelName);

impl TeamTag {
    /// Checks and wraps a team tag.
    pub fn new(tag: &str) -> Result<Self, envelope::BadChannel> {
        ChannelName::new(tag).map(TeamTag)
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The gossipsub message id of envelope bytes: the 32-byte envelope id followed by
/// the hop byte. The hop byte is outside the signature, so it must be inside the
/// gossip id: otherwise a relay could forward a copy with the hop counter set to the
/// limit, every receiver would reject it, and gossipsub would then drop the genuine
/// copy as an already-seen duplicate.
pub fn message_id(data: &[u8]) -> gossipsub::MessageId {
    let mut id = id_of_bytes(data).0.to_vec();
    id.push(data.last().copied().unwrap_or(0));
    gossipsub::MessageId::new(&id)
}

/// Mesh degree D. A site is a small, dense graph (laptops link to a handful of
/// neighbours): with libp2p's D=6 the mesh is the whole graph and every node gets a
/// copy from each neighbour (~3 per message at degree 4, `bench-spec.md`). D=3
/// keeps the mesh connected with fewer copies; gossip (IHAVE/IWANT) repairs the rest.
pub const MESH_N: usize = 3;
/// Fewest mesh peers before a node grafts more (Dlo).
pub const MESH_N_LOW: usize = 2;
/// Most mesh peers before a node prunes (Dhi): a node at Dhi refuses GRAFTs from
/// peers that dialled it. At 4, a node with five neighbours shut out a neighbour
/// that had no other link (a leaf), whose GRAFTs were then refused for good: at 500
/// nodes the mesh took 13–24 s to form or never did (issue 7). Twice D, as in
/// libp2p's defaults (6/12).
pub const MESH_N_HIGH: usize = 6;
/// How long a pruned peer waits before grafting again. libp2p's 60 s made mesh
/// formation fail when a node's neighbours were all at Dhi (issue 7); a few
/// heartbeats let it retry soon enough to join within the start-up window.
pub const PRUNE_BACKOFF: Duration = Duration::from_secs(3);

/// Gossipsub settings. Authenticity comes from the envelope signature, so gossipsub
/// runs in anonymous mode (no second signature per message); the message id is the
/// envelope id; every message is validated by the node before it is forwarded.
pub fn config(
    max_envelope_bytes: usize,
) -> Result<gossipsub::Config, gossipsub::ConfigBuilderError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|msg| message_id(&msg.data))
        .max_transmit_size(max_envelope_bytes + 1024)
        .heartbeat_interval(Duration::from_millis(700))
        // Deduplicate for as long as typical drill messages live; the store dedupes beyond.
        .duplicate_cache_time(Duration::from_secs(120))
        .mesh_n(MESH_N)
        .mesh_n_low(MESH_N_LOW)
        .mesh_n_high(MESH_N_HIGH)
        .mesh_outbound_min(1)
        .prune_backoff(PRUNE_BACKOFF)
        .build()
}

/// Peer scoring: only the application score counts (the node's record of a peer's
/// faults: 1 point per invalid envelope, 0.05 per message over the rate limit, see
/// `node::guard`). At -10 a peer gets no gossip from us, at -50 no publications,
/// at -80 its messages are ignored; the node bans it at -100. IP colocation is not
/// scored: a drill or a test runs many nodes behind one address.
pub fn score_params() -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let params = gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    (params, gossipsub::PeerScoreThresholds::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_id_covers_the_unsigned_hop_byte() {
        let data = vec![1u8; 100];
        let mut tampered = data.clone();
        tampered[99] = 7;
        assert_ne!(message_id(&data), message_id(&tampered));
        assert_eq!(&message_id(&data).0[..32], &id_of_bytes(&data).0[..]);
    }

    #[test]
    fn topic_names_round_trip_and_ignore_other_teams() {
        let team = TeamTag::new("drill").unwrap();
        let ch = ChannelName::new("triage").unwrap();
        let t = topic(&team, &ch);
        assert_eq!(t.to_string(), "fieldmesh/1/drill/triage");
        assert_eq!(channel_of_topic(&team, &t.hash()), Some(ch.clone()));
        let other = TeamTag::new("fire").unwrap();
        assert_eq!(channel_of_topic(&other, &t.hash()), None);
    }
}
