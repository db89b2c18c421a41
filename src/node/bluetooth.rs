//! The node's side of the Bluetooth LE transport: opening the adapter (or saying in
//! one line that there is none), advertising and scanning, and the link policy —
//! IP links are preferred, BLE is dialled only when no IP link to that peer exists,
//! and a BLE connection beside an IP one (or a second BLE one) is closed so no
//! message crosses the slow radio twice (`proto/bluetooth.md` §4).

use crate::config::Bluetooth;
use crate::gossip::TeamTag;
use crate::transport::ble::advert::{self, Advert};
use crate::transport::ble::memory::MemoryAdapter;
use crate::transport::ble::{self, AdapterName, BleAddr, L2capBackend, Sighting};
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Sightings waiting for the event loop: a scan reports each device in range every
/// few seconds, so a full channel drops repeats, never the only chance.
pub(super) const SIGHTING_CHANNEL_CAPACITY: usize = 64;

/// Listen address for BLE: any local adapter, a free dynamic PSM.
pub(super) fn listen_any() -> Multiaddr {
    BleAddr {
        mac: ble::Mac::ANY,
        kind: ble::AddrKind::Public,
        psm: ble::addr::PSM_ANY,
    }
    .to_multiaddr()
}

/// The opened transport backend, and with BlueZ its advertising and scanning.
pub(super) struct BleLink {
    pub(super) backend: Arc<dyn L2capBackend>,
    /// Who advertises and scans: BlueZ, or the in-memory network.
    discovery: Discoverer,
}

enum Discoverer {
    #[cfg(all(target_os = "linux", feature = "bluetooth"))]
    Bluez(Arc<ble::bluez::Bluez>),
    Memory(MemoryAdapter),
}

impl BleLink {
    /// Opens what `setting` names; `None` (after one log line) when there is none.
    pub(super) async fn open(setting: &Bluetooth) -> Option<BleLink> {
        match setting {
            Bluetooth::Off => None,
            Bluetooth::Memory(adapter) => Some(BleLink {
                backend: Arc::new(adapter.clone()),
                discovery: Discoverer::Memory(adapter.clone()),
            }),
            Bluetooth::System(name) => Self::open_system(name.as_ref()).await,
        }
    }

    #[cfg(all(target_os = "linux", feature = "bluetooth"))]
    async fn open_system(name: Option<&AdapterName>) -> Option<BleLink> {
        match ble::bluez::Bluez::open(name).await {
            Ok(b) => {
                let b = Arc::new(b);
                let (mac, _) = b.local_addr();
                info!(
                    adapter = %b.name(),
                    address = %mac,
                    "bluetooth: adapter found, listening on L2CAP"
                );
                Some(BleLink {
                    backend: b.clone(),
                    discovery: Discoverer::Bluez(b),
                })
            }
            Err(e) => {
                // The cause says which: no system bus, no bluetoothd, no controller.
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                info!(
                    adapter = %asked(name),
                    reason = %e,
                    cause = cause.as_deref().unwrap_or("-"),
                    "bluetooth: no adapter, carrying on over IP"
                );
                None
            }
        }
    }

    #[cfg(not(all(target_os = "linux", feature = "bluetooth")))]
    async fn open_system(name: Option<&AdapterName>) -> Option<BleLink> {
        info!(
            adapter = %asked(name),
            reason = "built without the bluetooth feature",
            "bluetooth: no adapter, carrying on over IP"
        );
        None
    }

    /// Starts advertising `peer` in `team` on the PSM of the BLE listen address in
    /// `listen`, and scanning into `found_tx`.
    pub(super) fn start_discovery(
        &self,
        listen: &[Multiaddr],
        team: &TeamTag,
        peer: &PeerId,
        found_tx: mpsc::Sender<Sighting>,
        shutdown: CancellationToken,
    ) {
        let Some(psm) = listen
            .iter()
            .find_map(|a| BleAddr::from_multiaddr(a).ok())
            .and_then(|a| u8::try_from(a.psm).ok())
        else {
            return;
        };
        let advert = Advert::new(team, peer, psm);
        match &self.discovery {
            #[cfg(all(target_os = "linux", feature = "bluetooth"))]
            Discoverer::Bluez(b) => b.start_discovery(advert, found_tx, shutdown),
            Discoverer::Memory(m) => m.start_discovery(advert, found_tx, shutdown),
        }
    }
}

/// The adapter asked for, as the "no adapter" line names it: `default` stands
/// for BlueZ's default adapter (names are always `hciN`, so it is unambiguous).
fn asked(name: Option<&AdapterName>) -> &str {
    name.map_or("default", AdapterName::as_str)
}

/// Whether to dial a device seen advertising: same team, not ourselves, and no
/// connection to that peer yet (over IP or BLE).
pub(super) fn should_dial<'a>(
    seen: &Sighting,
    team: &TeamTag,
    me: &PeerId,
    mut connected: impl Iterator<Item = &'a PeerId>,
) -> bool {
    seen.advert.team_hint == advert::team_hint(team)
        && seen.advert.peer_hint != advert::peer_hint(me)
        && !connected.any(|p| advert::peer_hint(p) == seen.advert.peer_hint)
}

/// Sightings of a peer with a smaller peer hint, unconnected, before this end
/// dials it anyway: normally the smaller hint dials first (so the two ends do not
/// dial each other at once); this covers a peer that cannot hear us.
pub(super) const FALLBACK_SIGHTINGS: u8 = 3;

/// Whether this end dials `seen` at once: the end with the smaller peer hint does;
/// the other waits [`FALLBACK_SIGHTINGS`] sightings.
pub(super) fn dials_first(me: &PeerId, seen: &Sighting) -> bool {
    advert::peer_hint(me) < seen.advert.peer_hint
}

/// The connections to `peer` to close so the link is used once and IP is preferred:
/// every BLE connection when an IP one exists; otherwise every BLE connection but
/// the one dialled by the smaller peer id (both ends pick the same one). A BLE
/// connection we dialled has the peer's PSM in its address; one we accepted has
/// PSM 0 (L2CAP gives no source PSM).
pub(super) fn redundant_ble(
    me: &PeerId,
    peer: &PeerId,
    connections: &HashMap<ConnectionId, Multiaddr>,
) -> Vec<ConnectionId> {
    let mut ble: Vec<(ConnectionId, bool)> = connections
        .iter()
        .filter_map(|(id, a)| {
            let b = BleAddr::from_multiaddr(a).ok()?;
            Some((*id, b.psm != ble::addr::PSM_ANY))
        })
        .collect();
    if ble.len() == connections.len() {
        // BLE only: keep one, the one the smaller peer id dialled (or any).
        let keep_dialled_by_me = me < peer;
        ble.sort_by_key(|(id, by_me)| (*by_me != keep_dialled_by_me, *id));
        ble.remove(0);
    }
    ble.into_iter().map(|(id, _)| id).collect()
}

/// Whether every connection in `connections` is BLE (the peer is reachable only
/// over the slow link).
pub(super) fn ble_only(connections: &HashMap<ConnectionId, Multiaddr>) -> bool {
    !connections.is_empty() && connections.values().all(ble::is_ble)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ble_addr(psm: u16) -> Multiaddr {
        BleAddr {
            mac: ble::Mac([7; 6]),
            kind: ble::AddrKind::Public,
            psm,
        }
        .to_multiaddr()
    }

    #[test]
    fn ble_is_dropped_when_an_ip_link_exists() {
        let (me, peer) = (PeerId::random(), PeerId::random());
        let ip: Multiaddr = "/ip4/10.0.0.2/tcp/4001".parse().unwrap();
        let conns = HashMap::from([
            (ConnectionId::new_unchecked(1), ble_addr(0x81)),
            (ConnectionId::new_unchecked(2), ip),
        ]);
        assert_eq!(
            redundant_ble(&me, &peer, &conns),
            [ConnectionId::new_unchecked(1)]
        );
        assert!(!ble_only(&conns));
    }

    #[test]
    fn of_two_ble_links_both_ends_keep_the_same_one() {
        let (a, b) = (PeerId::random(), PeerId::random());
        // On a: connection 1 dialled by a, connection 2 accepted from b.
        let on_a = HashMap::from([
            (ConnectionId::new_unchecked(1), ble_addr(0x81)),
            (ConnectionId::new_unchecked(2), ble_addr(0)),
        ]);
        // On b the same two links, with its own ids: 5 accepted from a, 6 dialled by b.
        let on_b = HashMap::from([
            (ConnectionId::new_unchecked(5), ble_addr(0)),
            (ConnectionId::new_unchecked(6), ble_addr(0x90)),
        ]);
        let close_a = redundant_ble(&a, &b, &on_a);
        let close_b = redundant_ble(&b, &a, &on_b);
        let a_keeps_its_dial = close_a == [ConnectionId::new_unchecked(2)];
        let b_keeps_a_dial = close_b == [ConnectionId::new_unchecked(6)];
        assert_eq!(a_keeps_its_dial, a < b);
        assert_eq!(b_keeps_a_dial, a < b);
        assert_eq!(close_a.len(), 1);
        assert_eq!(close_b.len(), 1);
        assert!(ble_only(&on_a));
        let one = HashMap::from([(ConnectionId::new_unchecked(1), ble_addr(0x81))]);
        assert!(redundant_ble(&a, &b, &one).is_empty());
    }

    #[test]
    fn dials_only_team_mates_it_is_not_connected_to() {
        let team = TeamTag::new("drill").unwrap();
        let (me, them, other) = (PeerId::random(), PeerId::random(), PeerId::random());
        let seen = |team: &TeamTag, peer: &PeerId| Sighting {
            addr: BleAddr {
                mac: ble::Mac([1; 6]),
                kind: ble::AddrKind::Random,
                psm: 0x81,
            },
            advert: Advert::new(team, peer, 0x81),
        };
        assert!(should_dial(
            &seen(&team, &them),
            &team,
            &me,
            [&other].into_iter()
        ));
        // Already connected (over IP or BLE): no BLE dial.
        assert!(!should_dial(
            &seen(&team, &them),
            &team,
            &me,
            [&them].into_iter()
        ));
        // Ourselves, or another team.
        assert!(!should_dial(
            &seen(&team, &me),
            &team,
            &me,
            std::iter::empty()
        ));
        let first = dials_first(&me, &seen(&team, &them));
        assert_eq!(first, advert::peer_hint(&me) < advert::peer_hint(&them));
        assert_ne!(
            first,
            dials_first(&them, &seen(&team, &me)),
            "exactly one end"
        );
        let other_team = TeamTag::new("ward-7").unwrap();
        assert!(!should_dial(
            &seen(&other_team, &them),
            &team,
            &me,
            std::iter::empty()
        ));
    }
}
