//! mDNS / DNS-SD discovery with `mdns-sd`: announces this node as an instance of
//! `_fieldmesh._udp.local.` and browses for others (`proto/discovery.md`). One
//! mdns-sd daemon per process; its events are turned into [`DiscoveryEvent`]s on a
//! bounded channel by a thread this module owns, which also offers every peer whose
//! record still resolves again every few seconds. The node loop decides whether to dial.

use crate::gossip::TeamTag;
use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};
use mdns_sd::{Receiver, RecvTimeoutError, ServiceDaemon, ServiceEvent, ServiceInfo};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// DNS-SD service type of fieldmesh nodes.
pub const SERVICE_TYPE: &str = "_fieldmesh._udp.local.";
/// Value of the `v` TXT key: the discovery record version.
pub const TXT_VERSION: &str = "1";
/// Capacity of the discovery channel: a burst of announcements from a whole room
/// fits; if the loop is behind, later offers are dropped (the re-offer repeats them).
pub const DISCOVERY_CHANNEL_CAPACITY: usize = 256;
/// How often every peer whose record still resolves is offered to the loop again.
/// mdns-sd reports an instance only when one of its records is new, so without this
/// a room-mate whose connection closed while both nodes stayed up (a reset, TCP
/// giving up after a long outage) would never be redialled. The loop ignores offers
/// of connected peers, so a re-offer costs a dial only for a peer we lost.
pub const REOFFER_INTERVAL: Duration = Duration::from_secs(5);
/// Peers remembered for re-offers at most: the discovery channel's capacity, so one
/// round of re-offers fits in it. A peer beyond it is offered once, when it resolves.
const MAX_REMEMBERED_PEERS: usize = DISCOVERY_CHANNEL_CAPACITY;

/// A peer found on the local network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryEvent {
    /// Its peer id, from the `id` TXT key.
    pub peer: PeerId,
    /// Addresses to dial, built from the resolved IPs and the advertised ports.
    pub addrs: Vec<Multiaddr>,
    /// Its team tag, from the `team` TXT key.
    pub team: String,
}

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// mdns-sd failed (no usable interface, socket error).
    #[error("mdns")]
    Mdns(#[from] mdns_sd::Error),
    /// The browse thread could not be started.
    #[error("discovery thread")]
    Thread(#[source] std::io::Error),
}

/// What this node announces.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// Our peer id.
    pub peer: PeerId,
    /// Our team.
    pub team: TeamTag,
    /// TCP listen port, if any.
    pub tcp_port: Option<u16>,
    /// QUIC listen port, if any.
    pub quic_port: Option<u16>,
}

/// The running mDNS daemon.
pub struct Discovery {
    daemon: ServiceDaemon,
}

impl Discovery {
    /// Starts the daemon, announces `me` and browses; found peers go to `tx`.
    pub fn start(
        me: &Announcement,
        tx: mpsc::Sender<DiscoveryEvent>,
    ) -> Result<Discovery, DiscoveryError> {
        let daemon = ServiceDaemon::new()?;
        let mut txt = HashMap::new();
        txt.insert("id".to_owned(), me.peer.to_string());
        txt.insert("v".to_owned(), TXT_VERSION.to_owned());
        txt.insert("team".to_owned(), me.team.as_str().to_owned());
        if let Some(p) = me.tcp_port {
            txt.insert("tcp".to_owned(), p.to_string());
        }
        if let Some(p) = me.quic_port {
            txt.insert("quic".to_owned(), p.to_string());
        }
        let instance = me.peer.to_string();
        // A host name of our own, so that two nodes on one machine do not collide.
        let host = format!(
            "fm-{}.local.",
            &instance[instance.len().saturating_sub(12)..]
        );
        let port = me.tcp_port.or(me.quic_port).unwrap_or(0);
        let info =
            ServiceInfo::new(SERVICE_TYPE, &instance, &host, "", port, txt)?.enable_addr_auto();
        daemon.register(info)?;
        let events = daemon.browse(SERVICE_TYPE)?;
        let me_peer = me.peer;
        std::thread::Builder::new()
            .name("fieldmesh-mdns".into())
            .spawn(move || browse(&events, me_peer, &tx))
            .map_err(DiscoveryError::Thread)?;
        Ok(Discovery { daemon })
    }

    /// Withdraws the announcement and stops the daemon.
    pub fn shutdown(self) {
        if let Err(e) = self.daemon.shutdown() {
            tracing::debug!(error = %e, "mDNS daemon shutdown");
        }
    }
}

/// Runs on the discovery thread: turns resolved records into [`DiscoveryEvent`]s, and
/// every [`REOFFER_INTERVAL`] offers every remembered peer again. Ends when the daemon
/// shuts down and closes `events`, or the node loop drops its end of `tx`.
fn browse(events: &Receiver<ServiceEvent>, me: PeerId, tx: &mpsc::Sender<DiscoveryEvent>) {
    let mut known = Remembered::default();
    let mut next_reoffer = Instant::now() + REOFFER_INTERVAL;
    loop {
        let wait = next_reoffer.saturating_duration_since(Instant::now());
        let mut offer = match events.recv_timeout(wait) {
            Ok(ServiceEvent::ServiceResolved(svc)) => {
                let found = parse_resolved(
                    svc.get_property_val_str("id"),
                    svc.get_property_val_str("v"),
                    svc.get_property_val_str("team"),
                    svc.get_property_val_str("tcp"),
                    svc.get_property_val_str("quic"),
                    svc.get_addresses().iter().map(|a| a.to_ip_addr()),
                );
                match found {
                    Ok(ev) if ev.peer == me => vec![],
                    Ok(ev) => {
                        known.resolved(svc.get_fullname(), ev.clone());
                        vec![ev]
                    }
                    Err(reason) => {
                        known.removed(svc.get_fullname());
                        tracing::debug!(
                            instance = svc.get_fullname(),
                            reason,
                            "ignored mDNS record"
                        );
                        vec![]
                    }
                }
            }
            Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                known.removed(&fullname);
                vec![]
            }
            Ok(_) => vec![],
            Err(RecvTimeoutError::Timeout) => vec![],
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if Instant::now() >= next_reoffer {
            next_reoffer = Instant::now() + REOFFER_INTERVAL;
            offer.extend(known.peers.values().cloned());
        }
        for ev in offer {
            // A full channel drops the offer: the next re-offer repeats it.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(ev) {
                return;
            }
        }
    }
}

/// Peers whose records currently resolve, by mDNS instance name: what gets re-offered.
#[derive(Default)]
struct Remembered {
    peers: HashMap<String, DiscoveryEvent>,
}

impl Remembered {
    /// A record resolved (again): remember its latest addresses, unless full.
    fn resolved(&mut self, instance: &str, ev: DiscoveryEvent) {
        if self.peers.len() < MAX_REMEMBERED_PEERS || self.peers.contains_key(instance) {
            self.peers.insert(instance.to_owned(), ev);
        }
    }

    /// A record expired, said goodbye or stopped resolving to a dialable peer.
    fn removed(&mut self, instance: &str) {
        self.peers.remove(instance);
    }
}

/// Turns the TXT values and resolved addresses of a record into a dialable peer,
/// or says why the record is not usable. Pure, so it can be tested and fuzzed.
pub fn parse_resolved(
    id: Option<&str>,
    version: Option<&str>,
    team: Option<&str>,
    tcp: Option<&str>,
    quic: Option<&str>,
    ips: impl Iterator<Item = IpAddr>,
) -> Result<DiscoveryEvent, &'static str> {
    if version != Some(TXT_VERSION) {
        return Err("unsupported or missing v");
    }
    let peer: PeerId = id.ok_or("missing id")?.parse().map_err(|_| "bad id")?;
    let port = |v: Option<&str>| v.and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0);
    let (tcp, quic) = (port(tcp), port(quic));
    if tcp.is_none() && quic.is_none() {
        return Err("no port");
    }
    let mut addrs = Vec::new();
    for ip in ips {
        let v6_link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        // Link-local IPv6 needs a zone index that a multiaddr cannot carry.
        if ip.is_unspecified() || ip.is_multicast() || v6_link_local {
            continue;
        }
        let base = Multiaddr::empty().with(match ip {
            IpAddr::V4(v4) => Protocol::Ip4(v4),
            IpAddr::V6(v6) => Protocol::Ip6(v6),
        });
        if let Some(p) = tcp {
            addrs.push(base.clone().with(Protocol::Tcp(p)));
        }
        if let Some(p) = quic {
            addrs.push(base.with(Protocol::Udp(p)).with(Protocol::QuicV1));
        }
    }
    if addrs.is_empty() {
        return Err("no address");
    }
    Ok(DiscoveryEvent {
        peer,
        addrs,
        team: team.unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_dial_addresses_from_txt_and_ips() {
        let peer = PeerId::random().to_string();
        let ips = ["10.0.0.2".parse().unwrap(), "0.0.0.0".parse().unwrap()];
        let ev = parse_resolved(
            Some(&peer),
            Some("1"),
            Some("drill"),
            Some("4001"),
            Some("4002"),
            ips.into_iter(),
        )
        .unwrap();
        assert_eq!(ev.peer.to_string(), peer);
        assert_eq!(ev.team, "drill");
        let addrs: Vec<String> = ev.addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            addrs,
            ["/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.2/udp/4002/quic-v1"]
        );
    }

    #[test]
    fn remembers_resolved_peers_until_removed_within_its_cap() {
        let ev = |port: &str| {
            let peer = PeerId::random().to_string();
            let ip = ["10.0.0.2".parse().unwrap()].into_iter();
            parse_resolved(Some(&peer), Some("1"), None, Some(port), None, ip).unwrap()
        };
        let mut known = Remembered::default();
        let (first, moved) = (ev("1"), ev("2"));
        known.resolved("a", first);
        known.resolved("a", moved.clone());
        assert_eq!(
            known.peers.values().collect::<Vec<_>>(),
            [&moved],
            "latest addresses"
        );
        known.removed("a");
        assert!(known.peers.is_empty());
        for i in 0..MAX_REMEMBERED_PEERS + 5 {
            known.resolved(&i.to_string(), ev("1"));
        }
        assert_eq!(known.peers.len(), MAX_REMEMBERED_PEERS);
        known.resolved("0", moved.clone());
        assert_eq!(
            known.peers["0"], moved,
            "a remembered peer is updated when full"
        );
    }

    #[test]
    fn rejects_unusable_records() {
        let peer = PeerId::random().to_string();
        let ip = || ["10.0.0.2".parse().unwrap()].into_iter();
        assert_eq!(
            parse_resolved(Some(&peer), Some("2"), None, Some("1"), None, ip()),
            Err("unsupported or missing v")
        );
        assert_eq!(
            parse_resolved(Some("nope"), Some("1"), None, Some("1"), None, ip()),
            Err("bad id")
        );
        assert_eq!(
            parse_resolved(Some(&peer), Some("1"), None, Some("x"), None, ip()),
            Err("no port")
        );
        assert_eq!(
            parse_resolved(
                Some(&peer),
                Some("1"),
                None,
                Some("7"),
                None,
                std::iter::empty()
            ),
            Err("no address")
        );
    }
}
