//! Bluetooth LE end to end on BlueZ: two real `fieldmesh up` processes on one host,
//! each on its own virtual controller (`btvirt -l2` over `/dev/vhci`, chosen with
//! `--bt-adapter`), find each other by advertising alone (no mDNS, no IP peers)
//! and carry messages over an L2CAP channel: the BlueZ backend, which the in-memory
//! tests in `ble` stand in for.
//!
//! Needs `/dev/vhci` (kernel module `hci_vhci`), root, a build with the feature
//! `bluetooth`, `btvirt` and `bluetoothd` (BlueZ) and `dbus-daemon` and
//! `dbus-send`; without any of them it prints `skipped: needs …` naming each one
//! missing and passes. If the host's system bus
//! already has bluetoothd, the test uses it; otherwise it starts a private bus and
//! its own bluetoothd, so nothing on the host changes. Every process it starts is
//! killed when the test ends, passed or failed, and the failing run prints their
//! logs. Not run yet on any machine: none so far had `/dev/vhci`.

use crate::harness::{is_root, wait_until, Daemon, Opts, TEN_SECS};
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// Where distributions put bluetoothd, which is not on `PATH` (Debian 12 on:
/// `/usr/libexec/bluetooth`; before: `/usr/lib/bluetooth`).
const BLUETOOTHD: [&str; 2] = [
    "/usr/libexec/bluetooth/bluetoothd",
    "/usr/lib/bluetooth/bluetoothd",
];
/// Where the kernel lists its Bluetooth controllers (`hci0`, …).
const SYS_CONTROLLERS: &str = "/sys/class/bluetooth";
/// Advertising, a scan that sees it, an LE connection, Noise and identify: a few
/// seconds on emulated controllers; the rest is room for a slow machine.
const BLE_CONNECT: Duration = Duration::from_secs(60);
/// The channel the test talks on (followed by every node from the start).
const CHANNEL: &str = "general";

/// The programs the test runs.
struct Tools {
    btvirt: PathBuf,
    bluetoothd: PathBuf,
    dbus_daemon: PathBuf,
    dbus_send: PathBuf,
}

impl Tools {
    /// The tools, or the skip line naming everything missing (and where it comes from).
    fn find() -> Result<Tools, String> {
        let mut missing = Vec::new();
        if !Path::new("/dev/vhci").exists() {
            missing.push("/dev/vhci (kernel module hci_vhci)");
        }
        if !is_root() {
            missing.push("root (to open /dev/vhci)");
        }
        if !cfg!(all(target_os = "linux", feature = "bluetooth")) {
            missing.push("the cargo feature bluetooth (Linux)");
        }
        let mut need = |found: Option<PathBuf>, what: &'static str| {
            if found.is_none() {
                missing.push(what);
            }
            found.unwrap_or_default()
        };
        let tools = Tools {
            btvirt: need(on_path("btvirt"), "btvirt (package bluez-test-tools)"),
            bluetoothd: need(
                BLUETOOTHD
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
                    .or_else(|| on_path("bluetoothd")),
                "bluetoothd (package bluez)",
            ),
            dbus_daemon: need(on_path("dbus-daemon"), "dbus-daemon (package dbus)"),
            dbus_send: need(on_path("dbus-send"), "dbus-send (package dbus)"),
        };
        if missing.is_empty() {
            Ok(tools)
        } else {
            Err(format!("skipped: needs {}", missing.join(", ")))
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A helper process (bus, bluetoothd, btvirt) writing to a log file; killed and
/// reaped on drop, its log printed if the test is failing.
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Service {
    fn spawn(name: &'static str, cmd: &mut Command, dir: &Path) -> Service {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Service { name, child, log }
    }

    /// Panics if the service has stopped: every wait checks this, so a dead
    /// service fails the test at once (with its log), not at the deadline.
    fn check(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => panic!("{} exited ({status})", self.name),
            Err(e) => panic!("{}: {e}", self.name),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Killing btvirt closes its /dev/vhci handles: the kernel removes the
        // controllers with them.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.name, self.log());
        }
    }
}

/// Which system bus bluetoothd is on.
#[derive(Clone)]
enum Bus {
    /// The host's: it already runs bluetoothd.
    Host,
    /// A private one at this address, with our own bluetoothd.
    Private(String),
}

impl Bus {
    /// Environment for a process that must use this bus as its system bus.
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Bus::Host => vec![],
            Bus::Private(addr) => vec![("DBUS_SYSTEM_BUS_ADDRESS".into(), addr.clone())],
        }
    }
}

/// Two virtual controllers managed by bluetoothd; the services are stopped on drop,
/// btvirt first (fields drop in order), then bluetoothd, then the bus.
struct Rig {
    btvirt: Service,
    bluetoothd: Option<Service>,
    dbus: Option<Service>,
    bus: Bus,
    /// The two controllers' BlueZ names, e.g. `["hci0", "hci1"]`.
    adapters: [String; 2],
    _dir: TempDir,
}

impl Rig {
    async fn start(tools: Tools) -> Rig {
        let dir = tempfile::Builder::new().prefix("fmbt").tempdir().unwrap();
        let host_has_bluez = bus_call(
            &tools.dbus_send,
            &Bus::Host,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            &["org.freedesktop.DBus.NameHasOwner", "string:org.bluez"],
        )
        .is_ok_and(|reply| reply.contains("boolean true"));
        let (bus, mut dbus, mut bluetoothd) = if host_has_bluez {
            eprintln!("using the host's system bus and bluetoothd");
            (Bus::Host, None, None)
        } else {
            let (bus, dbus) = private_bus(&tools, dir.path()).await;
            let mut bluetoothd = Service::spawn(
                "bluetoothd",
                Command::new(&tools.bluetoothd)
                    .args(["-n", "-d"])
                    .envs(bus.env()),
                dir.path(),
            );
            wait_until(TEN_SECS, "bluetoothd on the private bus", || {
                bluetoothd.check();
                let state = bus_call(
                    &tools.dbus_send,
                    &bus,
                    "org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    &["org.freedesktop.DBus.NameHasOwner", "string:org.bluez"],
                );
                async move { says_true(state, "org.bluez not owned yet") }
            })
            .await;
            (bus, Some(dbus), Some(bluetoothd))
        };

        let before = controllers();
        let mut btvirt =
            Service::spawn("btvirt", Command::new(&tools.btvirt).arg("-l2"), dir.path());
        let adapters = wait_until(TEN_SECS, "btvirt's two controllers", || {
            btvirt.check();
            let mut new: Vec<String> = controllers().difference(&before).cloned().collect();
            new.sort_by_key(|n| index(n));
            async move {
                match new {
                    new if new.len() == 2 => Ok([new[0].clone(), new[1].clone()]),
                    new => Err(format!("new controllers so far: {new:?}")),
                }
            }
        })
        .await;

        // bluetoothd picks the controllers up from the kernel; power them on there
        // (it may already have, with AutoEnable) and wait until it says they are.
        for name in &adapters {
            let path = format!("/org/bluez/{name}");
            wait_until(TEN_SECS, &format!("{name} powered in bluetoothd"), || {
                btvirt.check();
                for s in [&mut bluetoothd, &mut dbus].into_iter().flatten() {
                    s.check();
                }
                let state = bus_call(
                    &tools.dbus_send,
                    &bus,
                    "org.bluez",
                    &path,
                    &[
                        "org.freedesktop.DBus.Properties.Set",
                        "string:org.bluez.Adapter1",
                        "string:Powered",
                        "variant:boolean:true",
                    ],
                )
                .and_then(|_| {
                    bus_call(
                        &tools.dbus_send,
                        &bus,
                        "org.bluez",
                        &path,
                        &[
                            "org.freedesktop.DBus.Properties.Get",
                            "string:org.bluez.Adapter1",
                            "string:Powered",
                        ],
                    )
                });
                async move { says_true(state, "not powered yet") }
            })
            .await;
        }
        Rig {
            btvirt,
            bluetoothd,
            dbus,
            bus,
            adapters,
            _dir: dir,
        }
    }

    /// Panics if any service has stopped.
    fn check(&mut self) {
        self.btvirt.check();
        for s in [&mut self.bluetoothd, &mut self.dbus].into_iter().flatten() {
            s.check();
        }
    }

    /// A node on `adapter`: TCP on loopback for its control plane only (no mDNS,
    /// no peers), so any link it gets is Bluetooth.
    async fn node(&self, adapter: &str) -> Daemon {
        let d = Daemon::spawn(Opts {
            extra: vec!["--bt-adapter".into(), adapter.into()],
            env: self.bus.env(),
            ..Opts::default()
        })
        .await;
        let log = d.log();
        assert!(
            log.lines().any(|l| l.contains("bluetooth: adapter found")
                && l.contains(&format!("adapter={adapter}"))),
            "the node did not open {adapter}; log:\n{log}"
        );
        d
    }
}

/// A private system bus that lets anyone own any name (bluetoothd needs
/// `org.bluez`); ready once it answers a call.
async fn private_bus(tools: &Tools, dir: &Path) -> (Bus, Service) {
    let socket = dir.join("system_bus_socket");
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
             <busconfig>\n  <type>system</type>\n  <listen>unix:path={}</listen>\n  \
             <auth>EXTERNAL</auth>\n  <policy context=\"default\">\n    \
             <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    \
             <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n  </policy>\n</busconfig>\n",
            socket.display()
        ),
    )
    .unwrap();
    let mut dbus = Service::spawn(
        "dbus-daemon",
        Command::new(&tools.dbus_daemon).args([
            &format!("--config-file={}", config.display()),
            "--nofork",
            "--nopidfile",
        ]),
        dir,
    );
    let bus = Bus::Private(format!("unix:path={}", socket.display()));
    wait_until(TEN_SECS, "the private system bus", || {
        dbus.check();
        let state = bus_call(
            &tools.dbus_send,
            &bus,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            &["org.freedesktop.DBus.GetId"],
        );
        async move { state.map(drop) }
    })
    .await;
    (bus, dbus)
}

/// One D-Bus method call with `dbus-send`: the reply as text, or why it failed.
fn bus_call(
    dbus_send: &Path,
    bus: &Bus,
    dest: &str,
    path: &str,
    method_and_args: &[&str],
) -> Result<String, String> {
    let mut cmd = Command::new(dbus_send);
    match bus {
        Bus::Host => cmd.arg("--system"),
        Bus::Private(addr) => cmd.arg(format!("--bus={addr}")),
    };
    let out = cmd
        .args([
            "--print-reply",
            "--reply-timeout=2000",
            &format!("--dest={dest}"),
            path,
        ])
        .args(method_and_args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("dbus-send: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The kernel's controllers now (`hciN`; connection entries such as `hci0:64`
/// are left out).
fn controllers() -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(SYS_CONTROLLERS) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| index(n).is_some())
        .collect()
}

/// `N` of `hciN`.
fn index(name: &str) -> Option<u16> {
    name.strip_prefix("hci")?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_virtual_controllers_carry_messages_over_ble() {
    let tools = match Tools::find() {
        Ok(t) => t,
        Err(skip) => {
            eprintln!("{skip}");
            return;
        }
    };
    let mut rig = Rig::start(tools).await;
    let a = rig.node(&rig.adapters[0]).await;
    let b = rig.node(&rig.adapters[1]).await;
    let on_ble = |peers: &[fieldmesh::node::PeerView], other: &Daemon| {
        peers
            .iter()
            .any(|p| p.peer_id == other.peer_id && p.transports == ["ble"])
    };
    wait_until(BLE_CONNECT, "A and B connected over BLE", || {
        rig.check();
        let (a, b) = (&a, &b);
        async move {
            let (pa, pb) = (a.peers().await, b.peers().await);
            if on_ble(&pa, b) && on_ble(&pb, a) {
                Ok(())
            } else {
                Err(format!("A has {pa:?}, B has {pb:?}"))
            }
        }
    })
    .await;
    a.wait_subscribed(&b, CHANNEL).await;
    b.wait_subscribed(&a, CHANNEL).await;
    let ttl = Duration::from_secs(600);
    let id = a.send(CHANNEL, "bay 4: over BLE", ttl, "p1").await;
    assert_eq!(b.wait_message(CHANNEL, &id).await.text, "bay 4: over BLE");
    let id = b.send(CHANNEL, "bay 4: seen", ttl, "p2").await;
    assert_eq!(a.wait_message(CHANNEL, &id).await.text, "bay 4: seen");
    // Still the one BLE link: nothing else could have carried them.
    assert!(on_ble(&a.peers().await, &b), "{:?}", a.peers().await);
    assert_eq!(a.peers().await.len(), 1);
    rig.check();
}

/// `Ok` if a `dbus-send --print-reply` answer is `boolean true`; otherwise what it
/// said, after `not_yet`, for [`wait_until`] to retry and report.
fn says_true(reply: Result<String, String>, not_yet: &str) -> Result<(), String> {
    match reply {
        Ok(reply) if reply.contains("boolean true") => Ok(()),
        Ok(reply) => Err(format!("{not_yet}: {reply}")),
        Err(e) => Err(e),
    }
}
