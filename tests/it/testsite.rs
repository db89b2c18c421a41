//! The test site: hosts as network namespaces plugged into rooms, one real
//! `fieldmesh up` per host, discovery by mDNS alone (root only).
//!
//! Wiring: each room is a Linux bridge in the site's own "switch" namespace. A host
//! is a namespace with one veth per room it is in (`eth0`, `eth1`), the other end
//! enslaved to that room's bridge. Room `r` is the subnet `10.77.r.0/24`; hosts have
//! only these connected routes and no forwarding, so nothing is routed between rooms:
//! a relay (a host in two rooms) carries messages across only by gossip.
//!
//! Every namespace is named `fms-<pid>-<label>-<host>` (unique per test and per test
//! process). [`Site`]'s `Drop` kills the daemons and deletes the namespaces, which
//! takes the veths and bridges with them, even when the test panics; leftovers of a
//! crashed run (a dead pid in the name) are removed when the next site is built.

use crate::harness::{wait_until, Daemon, Opts};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The channel site tests talk on (followed by every node from the start).
pub const CHANNEL: &str = "triage";
/// TTL of site messages: longer than any test, so every message stays unexpired.
pub const LONG_TTL: Duration = Duration::from_secs(600);
/// The rooms of a field site, by index.
pub const ROOMS: [&str; 3] = ["tent", "incident", "command"];
/// First part of every namespace name a site creates.
const PREFIX: &str = "fms";

/// A host to build: its name and the rooms (indexes into [`ROOMS`]) it is plugged into.
#[derive(Clone, Debug)]
pub struct HostSpec {
    /// Short name, also the last part of its namespace name.
    pub name: &'static str,
    /// Rooms, one interface each; two rooms make a relay.
    pub rooms: Vec<usize>,
}

impl HostSpec {
    /// A host in `rooms`.
    pub fn new(name: &'static str, rooms: &[usize]) -> HostSpec {
        HostSpec {
            name,
            rooms: rooms.to_vec(),
        }
    }
}

/// The 8-host field site: two hosts in each room, relay `r1` between tent and
/// incident, relay `r2` between incident and command post.
pub fn field_site() -> Vec<HostSpec> {
    vec![
        HostSpec::new("t1", &[0]),
        HostSpec::new("t2", &[0]),
        HostSpec::new("r1", &[0, 1]),
        HostSpec::new("i1", &[1]),
        HostSpec::new("i2", &[1]),
        HostSpec::new("r2", &[1, 2]),
        HostSpec::new("c1", &[2]),
        HostSpec::new("c2", &[2]),
    ]
}

/// One host: its namespace, its data dir (kept across restarts) and its daemon.
struct Host {
    spec: HostSpec,
    netns: String,
    data: PathBuf,
    peer_id: String,
    /// `None` while killed.
    daemon: Option<Daemon>,
}

/// A running site. Hosts are addressed by index, in the order they were added.
pub struct Site {
    /// `fms-<pid>-<label>`: the start of every namespace name of this site.
    tag: String,
    switch: String,
    hosts: Vec<Host>,
    /// Data dirs and daemon logs; removed after the daemons are gone.
    root: TempDir,
}

impl Site {
    /// Builds the rooms and hosts of `plan`, starts every daemon and returns once all
    /// are ready (not yet connected: see [`Site::wait_rooms_meshed`]).
    pub async fn build(label: &str, plan: &[HostSpec]) -> Site {
        let tag = format!("{PREFIX}-{}-{label}", std::process::id());
        remove_stale(&tag);
        // The site exists (and cleans up) before the first namespace does.
        let mut site = Site {
            switch: format!("{tag}-sw"),
            tag,
            hosts: Vec::new(),
            root: tempfile::Builder::new().prefix("fms").tempdir().unwrap(),
        };
        let sw = site.switch.clone();
        ip(&["netns", "add", &sw]);
        for room in ROOMS {
            // mDNS must reach every port; no querier runs here to keep snooping fed.
            ip(&[
                "-n",
                &sw,
                "link",
                "add",
                room,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ]);
            ip(&["-n", &sw, "link", "set", room, "up"]);
        }
        for spec in plan {
            site.plug(spec.clone());
        }
        let daemons =
            futures::future::join_all((0..site.hosts.len()).map(|h| Daemon::spawn(site.opts(h))))
                .await;
        for (host, daemon) in site.hosts.iter_mut().zip(daemons) {
            host.peer_id = daemon.peer_id.clone();
            host.daemon = Some(daemon);
        }
        site
    }

    /// The daemon of host `h`; panics if it is killed.
    pub fn daemon(&self, h: usize) -> &Daemon {
        let host = &self.hosts[h];
        host.daemon
            .as_ref()
            .unwrap_or_else(|| panic!("host {} is down", host.spec.name))
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Index of the host called `name`.
    pub fn index(&self, name: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.spec.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Name of host `h`.
    pub fn name(&self, h: usize) -> &'static str {
        self.hosts[h].spec.name
    }

    /// Indexes of the hosts whose daemon runs.
    pub fn up(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&h| self.hosts[h].daemon.is_some())
            .collect()
    }

    /// Whether host `h` is plugged into `room`.
    pub fn in_room(&self, h: usize, room: usize) -> bool {
        self.hosts[h].spec.rooms.contains(&room)
    }

    /// Whether hosts `a` and `b` (distinct) share a room.
    pub fn room_mates(&self, a: usize, b: usize) -> bool {
        a != b
            && self.hosts[a]
                .spec
                .rooms
                .iter()
                .any(|r| self.hosts[b].spec.rooms.contains(r))
    }

    /// Hosts that `h` is connected to right now (unknown peer ids are named as such).
    pub async fn connected(&self, h: usize) -> Vec<Result<usize, String>> {
        self.daemon(h)
            .peers()
            .await
            .into_iter()
            .map(|p| {
                self.hosts
                    .iter()
                    .position(|o| o.peer_id == p.peer_id)
                    .ok_or(p.peer_id)
            })
            .collect()
    }

    /// Waits until every running host is connected to every running room-mate and
    /// sees it subscribed to [`CHANNEL`].
    pub async fn wait_rooms_meshed(&self, deadline: Duration) {
        wait_until(deadline, "every room meshed by mDNS", || async {
            let mut missing = Vec::new();
            for a in self.up() {
                let peers = self.daemon(a).peers().await;
                for b in self.up().into_iter().filter(|&b| self.room_mates(a, b)) {
                    let seen = peers.iter().any(|p| {
                        p.peer_id == self.hosts[b].peer_id
                            && p.channels.iter().any(|c| c == CHANNEL)
                    });
                    if !seen {
                        missing.push(format!("{}->{}", self.name(a), self.name(b)));
                    }
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("not yet: {}", missing.join(" ")))
            }
        })
        .await
    }

    /// Waits until every running host holds exactly `ids` on [`CHANNEL`].
    pub async fn wait_all_hold(&self, ids: &HashSet<String>, deadline: Duration) {
        let what = format!("every host to hold exactly the {} messages", ids.len());
        wait_until(deadline, &what, || async {
            let mut wrong = Vec::new();
            for h in self.up() {
                let got: HashSet<String> = self
                    .daemon(h)
                    .read(CHANNEL)
                    .await
                    .into_iter()
                    .map(|m| m.id)
                    .collect();
                if &got != ids {
                    let lacks = ids.difference(&got).count();
                    let extra = got.difference(ids).count();
                    wrong.push(format!("{} lacks {lacks}, extra {extra}", self.name(h)));
                }
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(wrong.join("; "))
            }
        })
        .await
    }

    /// Takes host `h`'s interface into `room` down (`ip link set eth<i> down`).
    pub fn link_down(&self, h: usize, room: usize) {
        self.set_link(h, room, "down");
    }

    /// Brings host `h`'s interface into `room` back up.
    pub fn link_up(&self, h: usize, room: usize) {
        self.set_link(h, room, "up");
    }

    /// Resets every established TCP connection of host `h` (`ss -K`), as a TCP
    /// timeout after a long outage or a rebooted access point would: both daemons
    /// stay up and must find each other again.
    pub fn reset_connections(&self, h: usize) {
        let netns = &self.hosts[h].netns;
        ip(&[
            "netns",
            "exec",
            netns,
            "ss",
            "-K",
            "-t",
            "state",
            "established",
        ]);
    }

    /// Kills host `h`'s daemon with SIGKILL (a crash); its data dir stays.
    pub async fn kill(&mut self, h: usize) {
        let daemon = self.hosts[h].daemon.take().expect("host is up");
        daemon.kill9().await;
    }

    /// Restarts host `h` on its old data dir (same identity and store).
    pub async fn restart(&mut self, h: usize) {
        assert!(self.hosts[h].daemon.is_none(), "host is up");
        let daemon = Daemon::spawn(self.opts(h)).await;
        assert_eq!(daemon.peer_id, self.hosts[h].peer_id, "identity kept");
        self.hosts[h].daemon = Some(daemon);
    }

    /// Plugs a new host into its rooms and starts its daemon; returns its index.
    pub async fn add_host(&mut self, spec: HostSpec) -> usize {
        let h = self.plug(spec);
        let daemon = Daemon::spawn(self.opts(h)).await;
        self.hosts[h].peer_id = daemon.peer_id.clone();
        self.hosts[h].daemon = Some(daemon);
        h
    }

    /// Creates host namespace and its veths into the rooms; returns its index.
    fn plug(&mut self, spec: HostSpec) -> usize {
        let h = self.hosts.len();
        let netns = format!("{}-{}", self.tag, spec.name);
        let data = self.root.path().join(spec.name);
        // Recorded before it exists, so a failure below still deletes it.
        self.hosts.push(Host {
            spec: spec.clone(),
            netns: netns.clone(),
            data,
            peer_id: String::new(),
            daemon: None,
        });
        ip(&["netns", "add", &netns]);
        // IPv4 only: IPv6 link-local addresses would appear a second after the link
        // (duplicate address detection) and count as new mDNS records, which makes
        // peers re-resolve at times the tests do not control.
        ip(&[
            "netns",
            "exec",
            &netns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        ip(&["-n", &netns, "link", "set", "lo", "up"]);
        for (i, &room) in spec.rooms.iter().enumerate() {
            let (inner, outer) = (format!("eth{i}"), format!("h{h}e{i}"));
            ip(&[
                "-n",
                &netns,
                "link",
                "add",
                &inner,
                "type",
                "veth",
                "peer",
                "name",
                &outer,
                "netns",
                &self.switch,
            ]);
            ip(&[
                "-n",
                &self.switch,
                "link",
                "set",
                &outer,
                "master",
                ROOMS[room],
                "up",
            ]);
            let addr = format!("10.77.{room}.{}/24", h + 1);
            ip(&["-n", &netns, "addr", "add", &addr, "dev", &inner]);
            ip(&["-n", &netns, "link", "set", &inner, "up"]);
        }
        h
    }

    fn opts(&self, h: usize) -> Opts {
        let host = &self.hosts[h];
        Opts {
            mdns: true,
            netns: Some(host.netns.clone()),
            listen: vec!["/ip4/0.0.0.0/tcp/0".into()],
            data: Some(host.data.clone()),
            ..Opts::default()
        }
    }

    fn set_link(&self, h: usize, room: usize, state: &str) {
        let host = &self.hosts[h];
        let i = host
            .spec
            .rooms
            .iter()
            .position(|&r| r == room)
            .unwrap_or_else(|| panic!("{} is not in {}", host.spec.name, ROOMS[room]));
        ip(&["-n", &host.netns, "link", "set", &format!("eth{i}"), state]);
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Daemons first (SIGKILL on drop), then the namespaces, which take every veth
        // and bridge with them.
        for host in &mut self.hosts {
            drop(host.daemon.take());
        }
        for host in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &host.netns])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .status();
    }
}

/// Runs `ip args`, panicking with its stderr if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes site namespaces left by a crashed run: those named for `tag` (this test
/// in a process with our pid) and those of any test process that is gone. Daemons
/// still running inside are killed first.
fn remove_stale(tag: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let dead = !Path::new(&format!("/proc/{pid}")).exists();
        if !(dead || name.starts_with(&format!("{tag}-"))) {
            continue;
        }
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
            for p in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", p]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
}
