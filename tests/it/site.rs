//! Field conditions on the network-namespace test site (issue 8): rooms joined only
//! by relays, a relay's link down for 20 s, a relay's connections reset, and hosts
//! crashing during traffic.

use crate::harness::{is_root, wait_until, TEN_SECS};
use crate::testsite::{field_site, HostSpec, Site, CHANNEL, LONG_TTL};
use rand::rngs::StdRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::time::Duration;

/// Time for mDNS to find and connect every room-mate (announcements are repeated at
/// 1 s, 2 s, 4 s, …).
const MESH_DEADLINE: Duration = Duration::from_secs(30);
/// Time for every host to hold every message once the network is whole again: gossip,
/// or catch-up sync on reconnect and every 10 s.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(60);
/// One message per this interval while traffic runs.
const TRAFFIC_INTERVAL: Duration = Duration::from_millis(400);
/// The tent's index in [`crate::testsite::ROOMS`].
const TENT: usize = 0;
/// The incident room's index.
const INCIDENT: usize = 1;
/// The command post's index.
const COMMAND: usize = 2;

/// Sends one message from host `h`; returns its id.
async fn send_from(site: &Site, h: usize, n: usize) -> String {
    let text = format!("msg {n} from {}", site.name(h));
    site.daemon(h).send(CHANNEL, &text, LONG_TTL, "p2").await
}

/// Sends one message per [`TRAFFIC_INTERVAL`] for `period`, from `hosts` in turn;
/// returns (sender, id) of each. The period is the scenario's own clock.
async fn traffic(site: &Site, hosts: &[usize], period: Duration) -> Vec<(usize, String)> {
    let end = tokio::time::Instant::now() + period;
    let mut tick = tokio::time::interval(TRAFFIC_INTERVAL);
    let mut sent = Vec::new();
    while tick.tick().await < end {
        let h = hosts[sent.len() % hosts.len()];
        sent.push((h, send_from(site, h, sent.len()).await));
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_carry_messages_between_three_rooms() {
    if !is_root() {
        eprintln!("skipped: needs root (netns)");
        return;
    }
    let mut site = Site::build("rooms", &field_site()).await;
    site.wait_rooms_meshed(MESH_DEADLINE).await;
    // No static peers and no routes between rooms: every connection is an mDNS find
    // inside one room.
    for h in site.up() {
        for peer in site.connected(h).await {
            let p = peer.unwrap_or_else(|id| panic!("{} connected to {id}", site.name(h)));
            assert!(
                site.room_mates(h, p),
                "{} connected to {} outside its rooms",
                site.name(h),
                site.name(p)
            );
        }
    }
    let mut ids = HashSet::new();
    for (n, name) in ["t1", "i2", "c1", "r1", "r2", "c2"].into_iter().enumerate() {
        ids.insert(send_from(&site, site.index(name), n).await);
    }
    site.wait_all_hold(&ids, CONVERGE_DEADLINE).await;

    // A host arriving later in the command post reads everything too (catch-up from
    // its room, which got the tent's messages through two relays).
    site.add_host(HostSpec::new("c3", &[COMMAND])).await;
    site.wait_rooms_meshed(MESH_DEADLINE).await;
    site.wait_all_hold(&ids, CONVERGE_DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_converge_after_a_relay_link_is_down_for_20_s() {
    if !is_root() {
        eprintln!("skipped: needs root (netns)");
        return;
    }
    let site = Site::build("outage", &field_site()).await;
    site.wait_rooms_meshed(MESH_DEADLINE).await;
    let everyone: Vec<usize> = (0..site.len()).collect();
    let r1 = site.index("r1");
    let mut sent = traffic(&site, &everyone, Duration::from_secs(3)).await;

    // r1 is the only way between the tent and the rest of the site.
    site.link_down(r1, INCIDENT);
    let during = traffic(&site, &everyone, Duration::from_secs(20)).await;
    // The partition was real: nothing sent on one side during it reached the other.
    let tent_side = |h: usize| site.in_room(h, TENT);
    for (probe, other_side) in [("i1", true), ("t1", false)] {
        let held: HashSet<String> = site
            .daemon(site.index(probe))
            .read(CHANNEL)
            .await
            .into_iter()
            .map(|m| m.id)
            .collect();
        let crossed = during
            .iter()
            .filter(|(h, id)| tent_side(*h) == other_side && held.contains(id))
            .count();
        assert_eq!(crossed, 0, "{probe} got messages across the partition");
    }
    site.link_up(r1, INCIDENT);
    sent.extend(during);
    sent.extend(traffic(&site, &everyone, Duration::from_secs(3)).await);

    let ids: HashSet<String> = sent.into_iter().map(|(_, id)| id).collect();
    site.wait_all_hold(&ids, CONVERGE_DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_connections_reset_is_found_again_by_mdns() {
    if !is_root() {
        eprintln!("skipped: needs root (netns)");
        return;
    }
    let plan = [
        HostSpec::new("t1", &[TENT]),
        HostSpec::new("r1", &[TENT, INCIDENT]),
        HostSpec::new("i1", &[INCIDENT]),
    ];
    let site = Site::build("reset", &plan).await;
    site.wait_rooms_meshed(MESH_DEADLINE).await;
    let r1 = site.index("r1");
    site.reset_connections(r1);
    wait_until(TEN_SECS, "r1 to see the resets", || async {
        let left = site.connected(r1).await.len();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} connections left"))
        }
    })
    .await;
    // Both daemons stay up and their mDNS records do not change: only redialling a
    // known room-mate brings the relay back.
    site.wait_rooms_meshed(MESH_DEADLINE).await;
    let ids = HashSet::from([send_from(&site, site.index("t1"), 0).await]);
    site.wait_all_hold(&ids, CONVERGE_DEADLINE).await;
}

/// What the churn schedule does at a time.
#[derive(Debug, Clone, Copy)]
enum Churn {
    Kill(usize),
    Restart(usize),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_lost_when_30_percent_of_hosts_crash_and_restart() {
    if !is_root() {
        eprintln!("skipped: needs root (netns)");
        return;
    }
    const SEED: u64 = 0x5eed_0008;
    const MINUTES: u64 = 2;
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut site = Site::build("churn", &field_site()).await;
    site.wait_rooms_meshed(MESH_DEADLINE).await;

    // 30 % of the hosts (rounded up), each crashing once a minute at a random time
    // and staying down 2–15 s; relays may be among them.
    let victims = (0..site.len()).choose_multiple(&mut rng, (site.len() * 3).div_ceil(10));
    let mut schedule = Vec::new();
    for &h in &victims {
        for minute in 0..MINUTES {
            let at = Duration::from_secs(minute * 60 + rng.gen_range(2..45));
            let down = Duration::from_millis(rng.gen_range(2_000..15_000));
            schedule.push((at, Churn::Kill(h)));
            schedule.push((at + down, Churn::Restart(h)));
        }
    }
    schedule.sort_by_key(|(at, _)| *at);
    let names: Vec<_> = victims.iter().map(|&h| site.name(h)).collect();
    eprintln!("churn seed {SEED:#x}: victims {names:?}, schedule {schedule:?}");

    let start = tokio::time::Instant::now();
    let end = start + Duration::from_secs(MINUTES * 60);
    let mut tick = tokio::time::interval(TRAFFIC_INTERVAL);
    let mut next = schedule.into_iter().peekable();
    let mut ids = HashSet::new();
    while tick.tick().await < end {
        while let Some((_, event)) =
            next.next_if(|(at, _)| start + *at <= tokio::time::Instant::now())
        {
            match event {
                Churn::Kill(h) => site.kill(h).await,
                Churn::Restart(h) => site.restart(h).await,
            }
        }
        // A send that returned an id was acknowledged (stored and flushed).
        let up = site.up();
        let h = up[rng.gen_range(0..up.len())];
        ids.insert(send_from(&site, h, ids.len()).await);
    }
    for (_, event) in next {
        if let Churn::Restart(h) = event {
            site.restart(h).await;
        }
    }
    assert_eq!(site.up().len(), site.len(), "every host is back");
    site.wait_rooms_meshed(MESH_DEADLINE).await;
    site.wait_all_hold(&ids, CONVERGE_DEADLINE).await;
}
