//! The command line: `up` runs a node in the foreground; every other subcommand is
//! a thin client of the node's control socket, except `config`, `completions`,
//! `id`, `team`, `bench` and `sim`, which work without a node.

mod audit;
mod catch_up;
mod report;
mod settings;
mod web;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use fieldmesh::api::control::{self, Client};
use fieldmesh::api::export::ExportFormat;
use fieldmesh::api::{FollowEvent, MessageView, Op};
use fieldmesh::config::{self, NodeConfig};
use fieldmesh::gossip::envelope::ChannelName;
use fieldmesh::gossip::priority::Priority;
use fieldmesh::gossip::TeamTag;
use fieldmesh::identity::{Identity, Passphrase, TeamEntry, Unlocked};
use fieldmesh::node::{Node, PeerView, StatusView};
use fieldmesh::store::now_ms;
use fieldmesh::store::Store;
use fieldmesh::team::{Invite, TeamId, TeamKey};
use libp2p::Multiaddr;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

/// fieldmesh: offline mesh messenger for disaster sites.
#[derive(Parser, Debug)]
#[command(name = "fieldmesh", version = fieldmesh::config::VERSION, about)]
pub(crate) struct Cli {
    /// Data directory (key, store, control socket). Default: $XDG_DATA_HOME/fieldmesh.
    #[arg(long, global = true, env = "FIELDMESH_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a node in the foreground until Ctrl-C.
    Up(Box<UpArgs>),
    /// Publish a message through the running node.
    Send {
        /// Channel name (a-z, 0-9, '.', '_', '-').
        channel: String,
        /// Message text.
        text: String,
        /// Time to live, e.g. 30s, 2h (default 12h, at most 7 days).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// Triage priority p1 (immediate) .. p4 (expectant); default p3.
        #[arg(long)]
        priority: Option<Priority>,
        #[command(flatten)]
        mode: report::ModeArgs,
    },
    /// Send an end-to-end encrypted direct message (read it with `read dm`).
    Dm {
        /// Recipient peer id (`fieldmesh id` on their laptop).
        peer: String,
        /// Message text.
        text: String,
        /// Time to live, e.g. 30s, 2h (default 12h, at most 7 days).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// Triage priority p1 .. p4; default p3.
        #[arg(long)]
        priority: Option<Priority>,
    },
    /// List unexpired messages of a channel, oldest first.
    Read {
        /// Channel name.
        channel: String,
        /// Keep printing new messages as they arrive.
        #[arg(long)]
        follow: bool,
        /// At most this many messages.
        #[arg(long)]
        limit: Option<usize>,
        /// Show the patient-identifiable fields of casualty reports (hidden by default).
        #[arg(long)]
        show_identifiable: bool,
    },
    /// Send a METHANE major-incident report (asks for what the flags leave out).
    Methane(Box<report::MethaneArgs>),
    /// Send a casualty triage update; identifiable fields are kept apart and hidden
    /// in every listing by default.
    Casualty(Box<report::CasualtyArgs>),
    /// Team members that have not confirmed holding a message (from receipts), to
    /// chase a P1 by voice.
    Roster {
        /// Message id (from `read --json`).
        id: String,
    },
    /// List connected peers.
    Peers,
    /// Show node status and counters.
    Status,
    /// Print this node's peer id (works without a running node).
    Id,
    /// Export a message for the medical record, then delete it from every node.
    Transcribe {
        /// Message id (from `read --json`).
        id: String,
        /// Write the export to this file (mode 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
        /// `json` or `fhir` (a FHIR R4 Bundle of Communication resources).
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Lock the running node: it keeps relaying but shows and sends nothing.
    Lock,
    /// Print the running node's web UI URL with its access token (or open it).
    Web(web::WebArgs),
    /// Check (`--verify`) or export the audit trail: ids, peers and times of what
    /// happened to messages and members, never their text.
    Audit(audit::AuditArgs),
    /// Teams: create, invite, join, list, remove a member.
    #[command(subcommand)]
    Team(TeamCmd),
    /// Unlock the running node with its passphrase.
    Unlock(PassphraseArgs),
    /// Run the dissemination benchmark (bench-spec.md) over in-process nodes; prints
    /// one JSON line.
    Bench(BenchArgs),
    /// Rehearse a drill: N in-process nodes over emulated poor links, with churn;
    /// prints a summary and one JSON line, writes PREFIX.json and PREFIX.svg.
    Sim(SimArgs),
    /// The config file: where it is read from, and whether a file is valid.
    #[command(subcommand)]
    Config(settings::ConfigCmd),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Flags of `sim`.
#[derive(Args, Debug)]
struct SimArgs {
    /// Nodes (laptops).
    #[arg(long, default_value_t = 20)]
    nodes: usize,
    /// How they are linked: rooms (tents of 8 chained by relays), random, line.
    #[arg(long, default_value = "rooms")]
    topology: fieldmesh::sim::Topology,
    /// Segment loss on every link (0..=0.9); a lost segment arrives one
    /// retransmission timeout later, as over TCP.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// One-way delay on every link.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5ms")]
    delay: Duration,
    /// Fraction of nodes stopped and restarted during the traffic (0..=1).
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// How long messages are sent.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    duration: Duration,
    /// Messages per second, from random live nodes.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Message time to live.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    ttl: Duration,
    /// How long to wait after the traffic for every node to get every message.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    drain: Duration,
    /// Seed of topology, publishers and churn.
    #[arg(long, default_value_t = 1)]
    seed: u32,
    /// Where to write the report: PREFIX.json and PREFIX.svg.
    #[arg(long, default_value = "fieldmesh-sim")]
    out: PathBuf,
}

/// Flags of `bench`, spelled as the reference peers spell them.
#[derive(Args, Debug)]
struct BenchArgs {
    /// Nodes.
    #[arg(long, default_value_t = 20)]
    n: usize,
    /// Measured messages.
    #[arg(long, default_value_t = 1000)]
    m: usize,
    /// Payload bytes per message (at least 12).
    #[arg(long, default_value_t = 512)]
    s: usize,
    /// Window mode: messages in flight at most.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Paced mode: messages per second (0: window mode).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seed of the graph, filler bytes and publishers.
    #[arg(long, default_value_t = 1)]
    seed: u32,
    /// Mean degree of the graph.
    #[arg(long, default_value_t = 4)]
    degree: usize,
    /// Unmeasured warm-up messages.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// A message not done after this many ms gives its window slot back.
    #[arg(long, default_value_t = 5000)]
    msg_timeout_ms: u64,
    /// Connections and meshes must be up within this many ms.
    #[arg(long, default_value_t = 30_000)]
    mesh_timeout_ms: u64,
    /// Wait this many ms for stragglers after the last send.
    #[arg(long, default_value_t = 10_000)]
    drain_ms: u64,
    /// Hard timeout of the whole run, seconds.
    #[arg(long, default_value_t = 300.0)]
    timeout_s: f64,
}

#[derive(Subcommand, Debug)]
enum TeamCmd {
    /// Create a team with this node as its admin (prints its id).
    Create {
        /// Display name (1 to 64 characters).
        name: String,
        /// An exercise team: its name gets the prefix `EXERCISE `, and every message
        /// it carries is marked EXERCISE and shown so first.
        #[arg(long)]
        exercise: bool,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Print an invite code (and a QR code) for a team this node administers.
    Invite {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// How long the code may be used, e.g. 2h (default 24h).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
        expires: Duration,
        /// Bind the invite to an incident that ends this long from now: the running
        /// node orders the team to stand down then (as `team stand-down --in`), and
        /// the code expires by then at the latest.
        #[arg(long, value_parser = humantime::parse_duration)]
        stand_down: Option<Duration>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Join a team with an invite code; then run `up --team NAME`.
    Join {
        /// The `FM1-…` code.
        code: String,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// List the teams of this data dir.
    List {
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Remove a member from the team the running node is in (admin only); the team
    /// key is rotated so the member reads nothing sent afterwards.
    Remove {
        /// The member's peer id.
        peer: String,
    },
    /// Admin, on the running node: the incident is over at the given time; every
    /// device then deletes the team's messages and keys (exports stay).
    StandDown {
        /// How long from now, e.g. 30m, 4h.
        #[arg(long = "in", value_parser = humantime::parse_duration)]
        after: Duration,
    },
    /// Admin, on the running node: revoke a lost or stolen device (remove it and
    /// rotate the key, plus a signed revocation).
    RevokeDevice {
        /// The device's peer id.
        peer: String,
        /// Ask the device to delete the team's data and keys if it is still running
        /// and receives the revocation.
        #[arg(long)]
        wipe: bool,
    },
}

#[derive(Args, Debug, Clone)]
struct PassphraseArgs {
    /// File whose first line is the passphrase (or set FIELDMESH_PASSPHRASE). With
    /// neither, the node runs in drill mode: encrypted at rest, but not protected.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    /// The passphrase, or drill mode when none is given.
    fn resolve(&self) -> anyhow::Result<Passphrase> {
        let text = match &self.passphrase_file {
            Some(f) => {
                let raw = std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read passphrase file {}", f.display()))?;
                let line = raw.lines().next().unwrap_or_default().to_owned();
                if line.is_empty() {
                    bail!("passphrase file {} is empty", f.display());
                }
                Some(line)
            }
            None => std::env::var("FIELDMESH_PASSPHRASE").ok(),
        };
        Ok(match text {
            Some(p) if !p.is_empty() => Passphrase::Given(Zeroizing::new(p.into_bytes())),
            _ => Passphrase::Drill,
        })
    }
}

#[derive(Args, Debug)]
struct UpArgs {
    /// Listen address (repeatable). Default: TCP and QUIC on all interfaces, ephemeral ports.
    #[arg(long = "listen", value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// Static peer to keep connected (repeatable), redialled with backoff.
    #[arg(long = "peer", value_name = "MULTIADDR")]
    peers: Vec<Multiaddr>,
    /// Do not announce or browse mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// Do not use Bluetooth LE (no adapter opened, no advertising or scanning).
    #[arg(long)]
    no_bluetooth: bool,
    /// The BlueZ adapter for Bluetooth LE, e.g. `hci1` (default: BlueZ's default
    /// adapter); if it is missing, the node says so in one line and runs over IP.
    #[arg(long, value_name = "NAME", conflicts_with = "no_bluetooth")]
    bt_adapter: Option<fieldmesh::transport::ble::AdapterName>,
    /// Name shown to peers (a role or device, never a patient).
    #[arg(long)]
    name: Option<String>,
    /// Team to run in: a team created or joined here (name or id), or `drill`
    /// (the default: no team key, readable by every drill node).
    #[arg(long)]
    team: Option<String>,
    /// Extra channel to follow (repeatable); general and triage are always followed.
    #[arg(long = "channel", value_name = "CHANNEL")]
    channels: Vec<String>,
    /// Largest message body in bytes accepted or sent (default 65536).
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Longest TTL this team allows (sends over it are refused, and so are peers'
    /// messages over it); set the same on every node of the team.
    #[arg(long, value_parser = humantime::parse_duration)]
    max_ttl: Option<Duration>,
    /// Raise desktop notifications for new messages: priority and channel only.
    #[arg(long)]
    notify: bool,
    /// With --notify: include a 40-character text preview (drills only: it can put
    /// patient details on a lock screen).
    #[arg(long, requires = "notify")]
    notify_detail: bool,
    /// Default TTL of sends that name none.
    #[arg(long, value_parser = humantime::parse_duration)]
    default_ttl: Option<Duration>,
    /// Gossip messages per second accepted from one peer (bursts of as many);
    /// beyond it messages are dropped, and a peer that keeps flooding is banned
    /// (default 1000).
    #[arg(long)]
    max_peer_rate: Option<u32>,
    /// Connected peers at most (default 128).
    #[arg(long)]
    max_peers: Option<u32>,
    /// How long a catch-up sync request may go unanswered before the session ends
    /// (default 30s; between 1s and 10m).
    #[arg(long, value_parser = humantime::parse_duration)]
    sync_timeout: Option<Duration>,
    /// Envelope bytes at most in one catch-up batch this node sends, with an
    /// optional K or M suffix; smaller batches suit slow links (default 512K;
    /// between 32K and 512K).
    #[arg(long, value_parser = config::file::parse_size)]
    sync_batch_bytes: Option<u64>,
    /// Size limit of the store (messages and indexes), in bytes with an optional
    /// K, M or G suffix. When full, expired messages go first, then the least
    /// urgent oldest; a P1 is never evicted before it expires (default 1G).
    #[arg(long, value_parser = config::file::parse_size)]
    max_store_bytes: Option<u64>,
    /// Emulate a poor link on every TCP connection, e.g. `loss=0.1,delay=20ms,rate=64k`
    /// (tests and drills only: it slows the node down on purpose).
    #[arg(long, value_name = "PROFILE", hide = true)]
    emulate_link: Option<fieldmesh::transport::LinkProfile>,
    /// Per-channel default TTL, e.g. `triage=2h` (repeatable).
    #[arg(long = "channel-ttl", value_name = "CHANNEL=DURATION")]
    channel_ttls: Vec<String>,
    /// Serve Prometheus metrics on this address at /metrics, e.g. 127.0.0.1:9464
    /// (default: off).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Serve the web UI (a page and an HTTP API for responders) on this address;
    /// default 127.0.0.1:0, this laptop only, on a free port. The URL to open,
    /// with its access token, is printed when the node is ready.
    #[arg(long, value_name = "ADDR", conflicts_with = "no_web")]
    web: Option<std::net::SocketAddr>,
    /// Do not serve the web UI.
    #[arg(long)]
    no_web: bool,
    /// Allow --web on an address other machines can reach (they still need the
    /// token; it travels unencrypted over plain HTTP, so only on a trusted network).
    #[arg(long)]
    web_allow_remote: bool,
    /// Config file (default: `fieldmesh config path`; a missing default file is
    /// no error). Flags given here win over its values.
    #[arg(long, env = "FIELDMESH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

impl Cli {
    /// Log filter when `RUST_LOG` is unset: warnings only for the benchmark, whose
    /// stderr carries its progress.
    pub(crate) fn default_log_filter(&self) -> &'static str {
        match self.cmd {
            Cmd::Bench(_) | Cmd::Sim(_) => "warn",
            _ => "fieldmesh=info,warn",
        }
    }
}

/// `bench`: runs the benchmark and prints its report (or its error) as one JSON line.
async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    use fieldmesh::bench::{self, report::ErrorReport};
    if !(args.timeout_s.is_finite() && args.timeout_s > 0.0 && args.rate >= 0.0) {
        bail!("--timeout-s must be positive and --rate not negative");
    }
    let params = bench::Params {
        n: args.n,
        m: args.m,
        s: args.s,
        window: args.window,
        rate: (args.rate > 0.0).then_some(args.rate),
        seed: args.seed,
        degree: args.degree,
        warmup: args.warmup,
        msg_timeout: Duration::from_millis(args.msg_timeout_ms),
        mesh_timeout: Duration::from_millis(args.mesh_timeout_ms),
        drain: Duration::from_millis(args.drain_ms),
        timeout: Duration::from_secs_f64(args.timeout_s),
    };
    let error_line = |error: String| ErrorReport {
        implementation: bench::report::IMPLEMENTATION,
        error,
        n: params.n,
        m: params.m,
        s: params.s,
    };
    // Watchdog on its own thread: the in-process sled databases can block both
    // runtime workers (sled's process-wide transaction lock), and then no tokio
    // timer fires. It allows the run's own timeout plus its shutdown, then exits.
    let (disarm, armed) = std::sync::mpsc::sync_channel::<()>(1);
    let grace = params.timeout + Duration::from_secs(15);
    let last_words = serde_json::to_string(&error_line(format!(
        "hard timeout after {:?} (runtime blocked)",
        params.timeout
    )))?;
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = armed.recv_timeout(grace) {
            println!("{last_words}");
            std::process::exit(124);
        }
    });
    let outcome = bench::run(&params).await;
    let _ = disarm.send(());
    match outcome {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Err(e) => {
            let line = error_line(format!("{:#}", anyhow::Error::new(e)));
            println!("{}", serde_json::to_string(&line)?);
            bail!("benchmark failed: {}", line.error)
        }
    }
}

/// `sim`: runs a drill simulation, prints a summary on stderr and the report as
/// one JSON line, and writes it with its plot next to `--out`.
async fn sim(args: SimArgs) -> anyhow::Result<()> {
    use fieldmesh::sim;
    if !(0.0..=0.9).contains(&args.loss) {
        bail!("--loss must be between 0 and 0.9");
    }
    let params = sim::Params {
        nodes: args.nodes,
        topology: args.topology,
        link: fieldmesh::transport::LinkProfile {
            loss: args.loss,
            delay: args.delay,
            bandwidth: None,
        },
        churn: args.churn,
        duration: args.duration,
        rate: args.rate,
        ttl: args.ttl,
        drain: args.drain,
        seed: args.seed,
    };
    // A time-based bar over the traffic phase (the drain may end sooner).
    let progress = fieldmesh::progress::Progress::new(args.duration.as_secs(), "s of traffic");
    let started = std::time::Instant::now();
    let run = sim::run(&params, |line| progress.phase(line));
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let report = loop {
        tokio::select! {
            r = &mut run => break r?,
            _ = tick.tick() => progress.set(started.elapsed().as_secs().min(args.duration.as_secs())),
        }
    };
    progress.finish();
    eprintln!(
        "delivered {:.3} % of {} deliveries within the TTL; {} of {} messages missing somewhere; latency p50 {} ms, p99 {} ms; {} restarts",
        report.delivered_fraction * 100.0,
        report.deliveries_due,
        report.messages_lost,
        report.messages_sent,
        report.latency_ms.p50.map_or("-".into(), |v| v.to_string()),
        report.latency_ms.p99.map_or("-".into(), |v| v.to_string()),
        report.restarts,
    );
    let json = args.out.with_extension("json");
    let svg = args.out.with_extension("svg");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    std::fs::write(&svg, sim::plot::svg(&report))
        .with_context(|| format!("cannot write {}", svg.display()))?;
    eprintln!("wrote {} and {}", json.display(), svg.display());
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let data = match cli.data {
        Some(d) => d,
        None => config::default_data_dir().context("no home directory: pass --data DIR")?,
    };
    match cli.cmd {
        Cmd::Up(args) => up(&data, *args, cli.json).await,
        Cmd::Bench(args) => bench(args).await,
        Cmd::Sim(args) => sim(args).await,
        Cmd::Config(cmd) => settings::config(cmd, cli.json),
        Cmd::Web(args) => web::web(&data, args, cli.json).await,
        Cmd::Audit(args) => audit::audit(&data, args, cli.json).await,
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "fieldmesh", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Id => {
            let id = Identity::peer_id_of(&data)?;
            if cli.json {
                println!("{}", serde_json::json!({ "peer_id": id.to_string() }));
            } else {
                println!("{id}");
            }
            Ok(())
        }
        Cmd::Team(cmd) => team(&data, cmd, cli.json).await,
        Cmd::Transcribe { id, to, format } => {
            let format = match format.as_str() {
                "json" => ExportFormat::Json,
                "fhir" => ExportFormat::Fhir,
                other => bail!("--format must be json or fhir, not {other:?}"),
            };
            // Reach the node, then create the export file: if either fails, nothing
            // is deleted and no empty file is left behind.
            let mut client = connect(&data).await?;
            let file = match &to {
                Some(path) => {
                    let mut opts = std::fs::OpenOptions::new();
                    opts.write(true).create_new(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                    Some(
                        opts.open(path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    )
                }
                None => None,
            };
            let progress =
                fieldmesh::progress::Progress::spinner(&format!("transcribing message {id}"));
            let export = client
                .request(Op::Transcribe {
                    message: id,
                    format: Some(format),
                })
                .await;
            progress.finish();
            let export = match (export, &to) {
                (Ok(e), _) => e,
                (Err(e), Some(path)) => {
                    let _ = std::fs::remove_file(path);
                    return Err(e.into());
                }
                (Err(e), None) => return Err(e.into()),
            };
            let text = serde_json::to_string_pretty(&export)?;
            match (file, to) {
                (Some(mut f), Some(path)) => {
                    use std::io::Write;
                    f.write_all(text.as_bytes())?;
                    f.sync_all()?;
                    eprintln!(
                        "exported to {}; the message is being deleted from every node",
                        path.display()
                    );
                }
                _ => println!("{text}"),
            }
            Ok(())
        }
        Cmd::Lock => {
            let res = connect(&data).await?.request(Op::Lock).await?;
            if cli.json {
                println!("{res}");
            } else {
                println!("locked");
            }
            Ok(())
        }
        Cmd::Unlock(args) => {
            let passphrase = match args.resolve()? {
                Passphrase::Given(p) => {
                    String::from_utf8(p.to_vec()).context("passphrase is not UTF-8")?
                }
                Passphrase::Drill => String::new(),
            };
            let res = connect(&data)
                .await?
                .request(Op::Unlock { passphrase })
                .await?;
            if cli.json {
                println!("{res}");
            } else {
                println!("unlocked");
            }
            Ok(())
        }
        Cmd::Send {
            channel,
            text,
            ttl,
            priority,
            mode,
        } => {
            let res = connect(&data)
                .await?
                .request(Op::Send {
                    channel,
                    text,
                    ttl_ms: ttl_ms(ttl),
                    priority,
                    mode: mode.mode(),
                })
                .await?;
            print_sent(&res, cli.json, "message")
        }
        Cmd::Dm {
            peer,
            text,
            ttl,
            priority,
        } => {
            let res = connect(&data)
                .await?
                .request(Op::Dm {
                    peer,
                    text,
                    ttl_ms: ttl_ms(ttl),
                    priority,
                })
                .await?;
            print_sent(&res, cli.json, "direct message")
        }
        Cmd::Read {
            channel,
            follow,
            limit,
            show_identifiable,
        } => read(&data, channel, follow, limit, show_identifiable, cli.json).await,
        Cmd::Roster { id } => {
            let res = connect(&data)
                .await?
                .request(Op::Roster { message: id })
                .await?;
            if cli.json {
                println!("{res}");
            } else {
                let list = |k: &str| -> Vec<String> {
                    res[k]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (held, missing) = (list("held_by"), list("missing"));
                println!("held by {} member(s)", held.len());
                if missing.is_empty() {
                    println!("every known member holds it");
                } else {
                    println!("not confirmed by {}:", missing.len());
                    for p in missing {
                        println!("  {p}");
                    }
                }
            }
            Ok(())
        }
        Cmd::Methane(args) => {
            let res = connect(&data).await?.request(args.into_op()?).await?;
            print_sent(&res, cli.json, "METHANE report")
        }
        Cmd::Casualty(args) => {
            let res = connect(&data).await?.request(args.into_op()?).await?;
            print_sent(&res, cli.json, "casualty update")
        }
        Cmd::Peers => {
            let res = connect(&data).await?.request(Op::Peers).await?;
            if cli.json {
                println!("{res}");
            } else {
                let peers: Vec<PeerView> = serde_json::from_value(res)?;
                if peers.is_empty() {
                    println!("no peers connected");
                }
                for p in peers {
                    println!(
                        "{}  {}  {}  {}",
                        p.peer_id,
                        p.transports.join(","),
                        p.addrs.join(","),
                        p.agent.unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        Cmd::Status => {
            let res = connect(&data).await?.request(Op::Status).await?;
            if cli.json {
                println!("{res}");
            } else {
                let s: StatusView = serde_json::from_value(res)?;
                println!("peer id:   {}", s.peer_id);
                println!("team:      {}", s.team);
                println!("listening: {}", s.listen.join(" "));
                println!("peers:     {}", s.peers);
                println!("channels:  {}", s.channels.join(" "));
                println!("stored:    {}", s.stored);
                for (k, v) in &s.counters {
                    println!("{k}: {v}");
                }
                for (k, v) in &s.rejected {
                    println!("rejected {k}: {v}");
                }
            }
            Ok(())
        }
    }
}

/// The team of this data dir named `which` (by name or id).
fn find_team(teams: &[TeamEntry], which: &str) -> anyhow::Result<TeamEntry> {
    teams
        .iter()
        .find(|t| {
            fieldmesh::team::name_matches(&t.name, which) || TeamId(t.id).to_string() == which
        })
        .cloned()
        .with_context(|| format!("no team {which:?} in this data dir: create or join it first"))
}

async fn team(data: &Path, cmd: TeamCmd, json: bool) -> anyhow::Result<()> {
    // Team commands work before the first `up` too: they create the vault if needed.
    let open = |p: &PassphraseArgs| -> anyhow::Result<Unlocked> {
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create data dir {}", data.display()))?;
        restrict_dir(data)?;
        Ok(Identity::unlock_or_create(data, &p.resolve()?)?)
    };
    match cmd {
        TeamCmd::Create {
            name,
            exercise,
            passphrase,
        } => {
            if fieldmesh::team::is_exercise_name(&name.to_uppercase()) {
                bail!("team names starting with {:?} are for exercise teams: use --exercise and leave the prefix out", fieldmesh::team::EXERCISE_PREFIX);
            }
            let name = match exercise {
                true => format!("{}{name}", fieldmesh::team::EXERCISE_PREFIX),
                false => name,
            };
            let mut vault = open(&passphrase)?;
            if vault.teams.iter().any(|t| {
                fieldmesh::team::name_matches(&t.name, &name)
                    || fieldmesh::team::name_matches(&name, &t.name)
            }) {
                bail!("a team named {name:?} already exists here");
            }
            if name.is_empty()
                || name.len() > fieldmesh::team::MAX_TEAM_NAME_LEN
                || name.chars().any(char::is_control)
            {
                bail!("team names are 1 to 64 characters without control characters");
            }
            let id = TeamId::random();
            let key = TeamKey::random(0);
            vault.teams.push(TeamEntry {
                id: id.0,
                name: name.clone(),
                admin: vault.identity.signing_key().public().to_bytes(),
                epoch: 0,
                key: key.key,
                join_cert: Vec::new(),
            });
            vault.save(data)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"team": name, "id": id.to_string()})
                );
            } else {
                println!("created team {name} ({id}); run `fieldmesh up --team {name}`");
            }
        }
        TeamCmd::Invite {
            team,
            expires,
            stand_down,
            passphrase,
        } => {
            let mut expires_at =
                now_ms().saturating_add(u64::try_from(expires.as_millis()).unwrap_or(u64::MAX));
            if let Some(after) = stand_down {
                let at_ms = stand_down_order(data, after).await?;
                expires_at = expires_at.min(at_ms);
            }
            // A node running in this team knows its newest key (after rotations):
            // ask it first; otherwise use the key kept in the vault.
            let running = match Client::connect(data, &data.join(config::CONTROL_SOCKET)).await {
                Ok(mut c) => c
                    .request(Op::TeamInvite {
                        team: team.clone(),
                        expires_at_ms: expires_at,
                    })
                    .await
                    .ok()
                    .and_then(|v| v["code"].as_str().map(str::to_owned)),
                Err(_) => None,
            };
            let code = match running {
                Some(code) => code,
                None => {
                    let vault = open(&passphrase)?;
                    let entry = find_team(&vault.teams, &team)?;
                    let me = vault.identity.signing_key();
                    if me.public().to_bytes() != entry.admin {
                        bail!("only the admin of {} can invite", entry.name);
                    }
                    let key = TeamKey {
                        epoch: entry.epoch,
                        key: entry.key,
                    };
                    Invite::issue(me, TeamId(entry.id), &entry.name, &key, expires_at)?.to_code()
                }
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"code": code, "expires_at_ms": expires_at})
                );
            } else {
                println!("{code}");
                println!("{}", fieldmesh::team::qr_text(&code)?);
            }
        }
        TeamCmd::Join { code, passphrase } => {
            let invite = Invite::from_code(&code, now_ms())?;
            let mut vault = open(&passphrase)?;
            if vault.teams.iter().any(|t| t.id == invite.team.0) {
                bail!("already a member of {}", invite.name);
            }
            let cert = invite.join_cert(vault.identity.signing_key(), now_ms());
            vault.teams.push(TeamEntry {
                id: invite.team.0,
                name: invite.name.clone(),
                admin: invite.admin,
                epoch: invite.epoch,
                key: invite.key,
                join_cert: cert.encode(),
            });
            vault.save(data)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"team": invite.name, "id": invite.team.to_string()})
                );
            } else {
                println!(
                    "joined team {} ({}); run `fieldmesh up --team {}`",
                    invite.name, invite.team, invite.name
                );
            }
        }
        TeamCmd::List { passphrase } => {
            let vault = open(&passphrase)?;
            let me = vault.identity.signing_key().public().to_bytes();
            let list: Vec<serde_json::Value> = vault
                .teams
                .iter()
                .map(|t| serde_json::json!({"team": t.name, "id": TeamId(t.id).to_string(), "admin": t.admin == me}))
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(list));
            } else {
                for t in &vault.teams {
                    println!(
                        "{}  {}{}",
                        TeamId(t.id),
                        t.name,
                        if t.admin == me { "  (admin)" } else { "" }
                    );
                }
            }
        }
        TeamCmd::Remove { peer } => {
            let res = connect(data)
                .await?
                .request(Op::TeamRemove { peer })
                .await?;
            if json {
                println!("{res}");
            } else {
                println!("removed; team key rotated");
            }
        }
        TeamCmd::StandDown { after } => {
            let at_ms = stand_down_order(data, after).await?;
            if json {
                println!("{}", serde_json::json!({"stand_down_at_ms": at_ms}));
            } else {
                let at = std::time::UNIX_EPOCH + Duration::from_millis(at_ms);
                println!(
                    "the team stands down at {}: every device then deletes its messages and keys",
                    humantime::format_rfc3339_seconds(at)
                );
            }
        }
        TeamCmd::RevokeDevice { peer, wipe } => {
            let res = connect(data)
                .await?
                .request(Op::TeamRevoke { peer, wipe })
                .await?;
            if json {
                println!("{res}");
            } else if wipe {
                println!("revoked; team key rotated; the device wipes the team's data if it receives this");
            } else {
                println!("revoked; team key rotated");
            }
        }
    }
    Ok(())
}

/// Asks the running node to order a stand-down `after` from now; the time, Unix ms.
async fn stand_down_order(data: &Path, after: Duration) -> anyhow::Result<u64> {
    let at_ms = now_ms().saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
    connect(data)
        .await?
        .request(Op::TeamStandDown { at_ms })
        .await?;
    Ok(at_ms)
}

fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
}

/// Prints the reply to `send` or `dm`: the JSON result, or one line.
fn print_sent(res: &serde_json::Value, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        println!("{res}");
    } else {
        let view: MessageView = serde_json::from_value(res["message"].clone())?;
        let sent_to = res["sent_to"].as_u64().unwrap_or(0);
        println!("sent {what} {} to {sent_to} peer(s)", view.id);
    }
    Ok(())
}

async fn connect(data: &Path) -> anyhow::Result<Client> {
    Ok(Client::connect(data, &data.join(config::CONTROL_SOCKET)).await?)
}

async fn read(
    data: &Path,
    channel: String,
    follow: bool,
    limit: Option<usize>,
    show_identifiable: bool,
    json: bool,
) -> anyhow::Result<()> {
    // Start following before the backlog read so nothing falls between the two.
    let mut stream = match follow {
        true => {
            let mut c = connect(data).await?;
            c.request(Op::Follow {
                channel: channel.clone(),
                show_identifiable,
            })
            .await?;
            Some(c)
        }
        false => None,
    };
    let res = connect(data)
        .await?
        .request(Op::Read {
            channel,
            limit,
            show_identifiable,
        })
        .await?;
    let backlog: Vec<MessageView> = serde_json::from_value(res)?;
    let mut seen = HashSet::new();
    if json && !follow {
        println!("{}", serde_json::to_string(&backlog)?);
        return Ok(());
    }
    for m in backlog {
        print_message(&m, json)?;
        seen.insert(m.id);
    }
    let Some(stream) = stream.as_mut() else {
        return Ok(());
    };
    loop {
        let reply = stream.next_reply().await?;
        match reply.event {
            Some(FollowEvent::Message(m)) if seen.insert(m.id.clone()) => print_message(&m, json)?,
            Some(FollowEvent::Lagged { missed }) => {
                eprintln!("warning: missed {missed} events; run read again")
            }
            _ => {}
        }
    }
}

fn print_message(m: &MessageView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(m)?);
    } else {
        let author = &m.author[m.author.len().saturating_sub(8)..];
        let left = humantime::format_duration(Duration::from_secs(m.remaining_ms / 1000));
        println!(
            "{}{}  {}  …{author}  {left} left  held by {}  {}",
            if m.exercise { "EXERCISE  " } else { "" },
            m.sent_at,
            m.priority_label(),
            m.held_by.len(),
            m.text
        );
    }
    Ok(())
}

async fn up(data: &Path, args: UpArgs, json: bool) -> anyhow::Result<()> {
    // The whole config is read and checked before anything starts.
    let args = args.merge_config_file()?;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data dir {}", data.display()))?;
    restrict_dir(data).with_context(|| format!("cannot restrict data dir {}", data.display()))?;
    let mut cfg = NodeConfig::new(data);
    if !args.listen.is_empty() {
        cfg.listen = args.listen;
    }
    cfg.peers = args.peers;
    cfg.mdns = !args.no_mdns;
    // Bluetooth LE beside IP wherever there is an adapter; without one, one log line.
    cfg.bluetooth = if args.no_bluetooth {
        config::Bluetooth::Off
    } else {
        config::Bluetooth::System(args.bt_adapter)
    };
    cfg.name = args.name;
    if let Some(link) = args.emulate_link {
        tracing::warn!(%link, "emulating a poor link on every TCP connection (test/drill flag)");
        cfg.link = Some(link);
    }
    for c in args.channels {
        cfg.channels
            .push(ChannelName::new(&c).with_context(|| format!("bad --channel {c}"))?);
    }
    cfg.max_body_bytes = args
        .max_body_bytes
        .unwrap_or(fieldmesh::gossip::envelope::DEFAULT_MAX_BODY_BYTES);
    cfg.max_peer_rate = args
        .max_peer_rate
        .unwrap_or(fieldmesh::node::guard::DEFAULT_MAX_PEER_RATE);
    cfg.max_peers = args.max_peers.unwrap_or(config::DEFAULT_MAX_PEERS);
    if cfg.max_peers == 0 {
        bail!("--max-peers must be at least 1");
    }
    if let Some(t) = args.sync_timeout {
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&t) {
            bail!("--sync-timeout must be between 1s and 10m");
        }
        cfg.sync_timeout = t;
    }
    if let Some(b) = args.sync_batch_bytes {
        let range =
            fieldmesh::sync::FIRST_BATCH_BYTES as u64..=fieldmesh::sync::MAX_BATCH_BYTES as u64;
        if !range.contains(&b) {
            bail!("--sync-batch-bytes must be between 32K and 512K");
        }
        cfg.sync_batch_bytes = b as usize;
    }
    if let Some(max) = args.max_ttl {
        if max.is_zero() || max > fieldmesh::gossip::envelope::MAX_TTL {
            bail!("--max-ttl must be between 1 ms and 7 days");
        }
        cfg.ttl.max = max;
    }
    let check_ttl = |what: &str, d: Duration| {
        if d.is_zero() || d > fieldmesh::gossip::envelope::MAX_TTL {
            bail!("{what} must be between 1 ms and 7 days");
        }
        Ok(d)
    };
    if let Some(d) = args.default_ttl {
        cfg.ttl.default = check_ttl("--default-ttl", d)?;
    }
    for spec in &args.channel_ttls {
        let (ch, dur) = spec
            .split_once('=')
            .with_context(|| format!("--channel-ttl {spec:?}: expected CHANNEL=DURATION"))?;
        let ch = ChannelName::new(ch).with_context(|| format!("--channel-ttl {spec:?}"))?;
        let dur =
            humantime::parse_duration(dur).with_context(|| format!("--channel-ttl {spec:?}"))?;
        cfg.ttl
            .per_channel
            .insert(ch, check_ttl("--channel-ttl", dur)?);
    }

    let socket = cfg.control_socket();
    if Client::connect(data, &socket).await.is_ok() {
        bail!("a node is already running for data dir {}", data.display());
    }
    let passphrase = args.passphrase.resolve()?;
    if matches!(passphrase, Passphrase::Drill) {
        tracing::warn!("no passphrase: drill mode, data at rest is encrypted but not protected");
    }
    let unlocked = Identity::unlock_or_create(data, &passphrase)?;
    // Each team keeps its own store, so teams never mix on disk.
    let team = args.team.as_deref().unwrap_or(config::DEFAULT_TEAM);
    let mut team_id = None;
    // The audit log sits beside its store: one per team too.
    let (store_dir, audit_file) = if team == config::DEFAULT_TEAM {
        cfg.team = TeamTag::new(config::DEFAULT_TEAM).context("drill tag")?;
        (
            data.join(config::STORE_DIR),
            fieldmesh::audit::DRILL_FILE.to_owned(),
        )
    } else {
        let entry = find_team(&unlocked.teams, team)?;
        team_id = Some(TeamId(entry.id));
        let id = TeamId(entry.id).to_string();
        cfg.team_entry = Some(entry);
        (
            data.join(format!("{}-{id}", config::STORE_DIR)),
            fieldmesh::audit::team_file(&id),
        )
    };
    cfg.audit_log = Some(data.join(audit_file));
    let identity = unlocked.identity;
    let store = Store::open(&store_dir, unlocked.data_key)
        .with_context(|| {
            format!(
                "cannot open the store in {} (is another node using it?)",
                data.display()
            )
        })?
        .with_capacity(
            args.max_store_bytes
                .unwrap_or(fieldmesh::store::DEFAULT_MAX_STORE_BYTES),
        );
    // Bound before the node starts, so a taken port stops nothing half-started.
    let metrics = match args.metrics {
        Some(addr) => Some(fieldmesh::api::metrics::MetricsEndpoint::bind(addr).await?),
        None => None,
    };
    let web_ui = match (args.no_web, args.web) {
        (true, _) => None,
        (false, addr) => {
            let addr = addr.unwrap_or(fieldmesh::api::web::DEFAULT_ADDR);
            if args.web_allow_remote && !addr.ip().is_loopback() {
                tracing::warn!(%addr, "web UI reachable from other machines (--web-allow-remote)");
            }
            Some(fieldmesh::api::web::WebEndpoint::bind(addr, args.web_allow_remote).await?)
        }
    };
    let shutdown = CancellationToken::new();
    let (node, task) = Node::spawn(cfg, identity, store, shutdown.clone()).await?;
    let control = control::serve(&socket, node.clone(), shutdown.clone()).await?;
    let metrics_addr = metrics.as_ref().map(|m| m.local_addr());
    if let Some(m) = metrics {
        control.spawn(m.run(node.clone(), shutdown.clone()));
    }
    let web_url = web_ui.as_ref().map(|w| w.url());
    // For `fieldmesh web`; removed when `up` returns.
    let _url_file = match &web_url {
        Some(url) => Some(web::UrlFile::write(data, url)?),
        None => None,
    };
    if let Some(w) = web_ui {
        control.spawn(w.run(node.clone(), shutdown.clone()));
    }
    control.spawn(catch_up::show(node.clone(), shutdown.clone()));

    if args.notify {
        let detail = if args.notify_detail {
            tracing::warn!("--notify-detail: notifications show message text (drills only)");
            fieldmesh::api::notify::Detail::DrillPreview
        } else {
            fieldmesh::api::notify::Detail::Safe
        };
        control.spawn(fieldmesh::api::notify::run(
            node.clone(),
            detail,
            shutdown.clone(),
        ));
    }
    let stopped = stop_signal()?;
    let listen: Vec<String> = node.listen_addrs().iter().map(|a| a.to_string()).collect();
    if json {
        let ready = serde_json::json!({
            "event": "ready",
            "peer_id": node.peer_id().to_string(),
            "listen": listen,
            "data_dir": data,
            "control": socket,
            "metrics": metrics_addr,
            "web": web_url,
        });
        println!("{ready}");
    } else {
        println!("fieldmesh node {}", node.peer_id());
        for a in &listen {
            println!("listening on {a}");
        }
        if let Some(a) = metrics_addr {
            println!("metrics on http://{a}/metrics");
        }
        if let Some(url) = &web_url {
            println!("web UI on {url}");
        }
        println!("data dir {}", data.display());
    }
    tracing::info!(peer = %node.peer_id(), "node ready");

    let wipe = tokio::select! {
        r = stopped => { r?; None }
        why = wipe_ordered(node.clone()) => Some(why),
    };
    tracing::info!("shutting down");
    shutdown.cancel();
    control.wait().await;
    task.await.context("node task panicked")?;
    match (wipe, team_id) {
        (Some(why), Some(id)) => {
            // The store is closed: delete it, then the team's entry (and keys) in the vault.
            std::fs::remove_dir_all(&store_dir)
                .with_context(|| format!("cannot delete {}", store_dir.display()))?;
            let mut vault = Identity::unlock(data, &passphrase)?;
            vault.teams.retain(|t| t.id != id.0);
            vault.save(data)?;
            bail!(
                "{why}: the team's messages and keys were deleted from {} (exports are kept)",
                data.display()
            )
        }
        _ => Ok(()),
    }
}

/// Resolves, with the reason, when the team's data must go: the admin revoked this
/// device with a wipe, or the team's stand-down time has come (known at start from
/// the stored records, or later from the mesh). A revocation without a wipe only
/// cuts the device off, which the roster already does.
async fn wipe_ordered(node: fieldmesh::node::NodeHandle) -> String {
    let mut events = node.events();
    loop {
        if node.revoked() == Some(true) {
            return "this device was revoked from its team by the admin".into();
        }
        let until_stand_down = node
            .stand_down_at()
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
        if until_stand_down == Some(Duration::ZERO) {
            return "the team stood down (end of the incident)".into();
        }
        let stand_down = async {
            match until_stand_down {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stand_down => {}
            ev = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = ev {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Makes the data dir private to its owner (mode 0700; a no-op off Unix, where
/// the dir keeps the permissions of its parent).
fn restrict_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Installs the stop signals now — Ctrl-C, and SIGTERM on Unix (`systemctl --user
/// stop`) — and returns a future that waits for one. Installed before the ready
/// line goes out, so a stop sent the moment it is read is not lost to the default
/// action (which would kill the node without flushing).
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    Ok(async { tokio::signal::ctrl_c().await.map_err(anyhow::Error::from) })
}
