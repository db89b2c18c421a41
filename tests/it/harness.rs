//! Test harness: real `fieldmesh up` processes in private temp dirs, talked to over
//! their control sockets; `wait_for` is the only way to wait.

use fieldmesh::api::control::Client;
use fieldmesh::api::{MessageView, Op};
use fieldmesh::node::{PeerView, StatusView};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Default deadline for anything a test waits for.
pub const TEN_SECS: Duration = Duration::from_secs(10);

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_fieldmesh")
}

/// Polls `check` until it returns `Some`, or panics after `deadline` naming `what`.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_until(deadline, what, || {
        let polled = check();
        async move { polled.await.ok_or_else(String::new) }
    })
    .await
}

/// Like [`wait_for`], but `check` says what is still missing (`Err`), and the panic
/// on timeout shows its last answer.
pub async fn wait_until<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        let missing = match check().await {
            Ok(v) => return v,
            Err(missing) => missing,
        };
        if tokio::time::Instant::now() >= give_up {
            let sep = if missing.is_empty() { "" } else { ": " };
            panic!("timed out after {deadline:?} waiting for {what}{sep}{missing}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How to start a daemon.
#[derive(Clone, Default)]
pub struct Opts {
    /// `--peer` addresses.
    pub peers: Vec<String>,
    /// Leave mDNS on (default: `--no-mdns`).
    pub mdns: bool,
    /// Listen addresses (default: TCP on 127.0.0.1, ephemeral port).
    pub listen: Vec<String>,
    /// Run inside this network namespace (`ip netns exec`).
    pub netns: Option<String>,
    /// Reuse this data dir (restart) instead of a fresh one.
    pub data: Option<PathBuf>,
    /// `--team` (default: the drill team).
    pub team: Option<String>,
    /// A passphrase, passed through a `--passphrase-file` (default: drill mode).
    pub passphrase: Option<String>,
    /// More `up` arguments.
    pub extra: Vec<String>,
    /// More environment variables for the child (e.g. a private system bus).
    pub env: Vec<(String, String)>,
}

/// A running `fieldmesh up` child process; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    /// Its data dir (kept by `_dir` unless the caller supplied one).
    pub data: PathBuf,
    _dir: Option<TempDir>,
    /// Its peer id.
    pub peer_id: String,
    /// Its bound listen addresses, from the ready line.
    pub listen: Vec<String>,
    /// The whole ready line (`metrics` holds the bound metrics address).
    pub ready: serde_json::Value,
    log: PathBuf,
}

impl Daemon {
    /// Starts a daemon and waits for its JSON ready line.
    pub async fn spawn(opts: Opts) -> Daemon {
        let (dir, data) = match &opts.data {
            Some(d) => (None, d.clone()),
            None => {
                let dir = tempfile::Builder::new().prefix("fm").tempdir().unwrap();
                let data = dir.path().join("d");
                (Some(dir), data)
            }
        };
        let log = data.with_extension(format!("log{}", std::process::id() ^ rand_u32()));
        let mut args: Vec<String> = vec![
            "--data".into(),
            data.display().to_string(),
            "up".into(),
            "--json".into(),
        ];
        if !opts.mdns {
            args.push("--no-mdns".into());
        }
        let listen = if opts.listen.is_empty() {
            vec!["/ip4/127.0.0.1/tcp/0".to_owned()]
        } else {
            opts.listen.clone()
        };
        for l in listen {
            args.extend(["--listen".into(), l]);
        }
        for p in &opts.peers {
            args.extend(["--peer".into(), p.clone()]);
        }
        if let Some(t) = &opts.team {
            args.extend(["--team".into(), t.clone()]);
        }
        args.extend(opts.extra.iter().cloned());
        if let Some(p) = &opts.passphrase {
            let file = data.with_extension("pass");
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, p).unwrap();
            args.extend(["--passphrase-file".into(), file.display().to_string()]);
        }
        let mut cmd = match &opts.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin()]);
                c
            }
            None => Command::new(bin()),
        };
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = cmd
            .args(&args)
            .env("RUST_LOG", "fieldmesh=debug,warn")
            // Plain log lines, so tests can match fields (`adapter=hci1`).
            .env("NO_COLOR", "1")
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn fieldmesh");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(TEN_SECS, lines.next_line()).await;
        let line = match ready {
            Ok(Ok(Some(l))) => l,
            other => panic!(
                "daemon did not print a ready line ({other:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(ready["event"], "ready");
        Daemon {
            child: Some(child),
            data,
            _dir: dir,
            peer_id: ready["peer_id"].as_str().unwrap().to_owned(),
            listen: serde_json::from_value(ready["listen"].clone()).unwrap(),
            ready,
            log,
        }
    }

    /// First listen address with `/p2p/<id>` appended, for `--peer`.
    pub fn addr(&self) -> String {
        format!("{}/p2p/{}", self.listen[0], self.peer_id)
    }

    /// A control client.
    pub async fn client(&self) -> Client {
        Client::connect(&self.data, &self.data.join("control.sock"))
            .await
            .unwrap()
    }

    /// Sends a message through the control socket; returns its id.
    pub async fn send(&self, channel: &str, text: &str, ttl: Duration, priority: &str) -> String {
        let res = self
            .client()
            .await
            .request(Op::Send {
                channel: channel.into(),
                text: text.into(),
                ttl_ms: Some(ttl.as_millis() as u64),
                priority: Some(priority.parse().unwrap()),
                mode: None,
            })
            .await
            .unwrap();
        res["message"]["id"].as_str().unwrap().to_owned()
    }

    /// Unexpired messages of a channel.
    pub async fn read(&self, channel: &str) -> Vec<MessageView> {
        let res = self
            .client()
            .await
            .request(Op::Read {
                channel: channel.into(),
                limit: None,
                show_identifiable: false,
            })
            .await
            .unwrap();
        serde_json::from_value(res).unwrap()
    }

    /// Connected peers.
    pub async fn peers(&self) -> Vec<PeerView> {
        let res = self.client().await.request(Op::Peers).await.unwrap();
        serde_json::from_value(res).unwrap()
    }

    /// Status.
    pub async fn status(&self) -> StatusView {
        let res = self.client().await.request(Op::Status).await.unwrap();
        serde_json::from_value(res).unwrap()
    }

    /// Waits until `other` is connected and subscribed to `channel` as seen from here.
    pub async fn wait_subscribed(&self, other: &Daemon, channel: &str) {
        let what = format!("{} to see {} on {channel}", self.peer_id, other.peer_id);
        wait_for(TEN_SECS, &what, || async {
            let peers = self.peers().await;
            peers
                .iter()
                .any(|p| p.peer_id == other.peer_id && p.channels.iter().any(|c| c == channel))
                .then_some(())
        })
        .await
    }

    /// Waits until message `id` is readable in `channel` here.
    pub async fn wait_message(&self, channel: &str, id: &str) -> MessageView {
        wait_for(
            TEN_SECS,
            &format!("message {id} at {}", self.peer_id),
            || async { self.read(channel).await.into_iter().find(|m| m.id == id) },
        )
        .await
    }

    /// Runs the CLI against this daemon's data dir.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        cli(&self.data, args)
    }

    /// Stops the daemon with SIGTERM (Ctrl-C path) and returns its exit status.
    pub async fn stop(mut self) -> (PathBuf, std::process::ExitStatus) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = tokio::time::timeout(TEN_SECS, child.wait())
            .await
            .expect("daemon did not stop")
            .unwrap();
        (self.data.clone(), status)
    }

    /// Kills the daemon with SIGKILL (a crash) and waits for it to be gone.
    pub async fn kill9(mut self) -> PathBuf {
        let mut child = self.child.take().unwrap();
        child.kill().await.unwrap();
        self.data.clone()
    }

    /// Waits until `channel` holds exactly the messages `ids` (nothing else).
    pub async fn wait_exactly(
        &self,
        channel: &str,
        ids: &std::collections::HashSet<String>,
        deadline: Duration,
    ) {
        let what = format!("{} to hold exactly {} messages", self.peer_id, ids.len());
        wait_for(deadline, &what, || async {
            let got: std::collections::HashSet<String> =
                self.read(channel).await.into_iter().map(|m| m.id).collect();
            (&got == ids).then_some(())
        })
        .await
    }

    /// The daemon's log so far.
    pub async fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().unwrap();
        tokio::time::timeout(deadline, child.wait())
            .await
            .expect("daemon did not exit by itself")
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Keeps the temp dir alive past this daemon (for restarts).
    pub fn take_dir(&mut self) -> Option<TempDir> {
        self._dir.take()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.peer_id, self.log());
        }
    }
}

/// The stdout of a CLI run that must have succeeded (else its stderr in the panic).
pub fn ok_stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Runs the CLI with `--data data`.
pub fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish() as u32
}

/// Three daemons in a chain A–B–C (static peers only; A dials `first_peers`).
pub async fn chain(first_peers: Vec<String>) -> [Daemon; 3] {
    let a = Daemon::spawn(Opts {
        peers: first_peers,
        ..Opts::default()
    })
    .await;
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    let c = Daemon::spawn(Opts {
        peers: vec![b.addr()],
        ..Opts::default()
    })
    .await;
    [a, b, c]
}

/// A chain A–B–C in which each node sees its neighbours subscribed to `channel`.
pub async fn line(channel: &str) -> [Daemon; 3] {
    let [a, b, c] = chain(vec![]).await;
    a.wait_subscribed(&b, channel).await;
    b.wait_subscribed(&a, channel).await;
    b.wait_subscribed(&c, channel).await;
    c.wait_subscribed(&b, channel).await;
    [a, b, c]
}

/// Whether this process runs as root (needed for network namespaces).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A valid envelope on `channel` signed by a fresh outside key (60 s TTL), as a test
/// client speaking the wire protocol would send it.
pub fn outside_envelope(channel: &str, body: &[u8]) -> fieldmesh::gossip::envelope::Envelope {
    use fieldmesh::gossip::envelope::{ChannelName, Draft, Envelope};
    Envelope::sign(
        Draft {
            channel: ChannelName::new(channel).unwrap(),
            created_at_ms: fieldmesh::store::now_ms(),
            ttl: Duration::from_secs(60),
            hop_limit: 8,
            priority: fieldmesh::gossip::priority::Priority::P1,
            body: body.to_vec(),
        },
        &libp2p::identity::ed25519::Keypair::generate(),
    )
    .unwrap()
}
