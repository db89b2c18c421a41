//! `fieldmesh audit --verify` and `fieldmesh audit export`: check and hand over
//! the audit trail (`proto/audit.md`). Both read the files in the data dir and
//! need no running node and no passphrase (the log holds no content). When a node
//! runs, `--verify` also asks it for the newest record it wrote, so a file cut
//! short after that record is caught too (`proto/audit.md` §6).

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use fieldmesh::api::control::Client;
use fieldmesh::api::Op;
use fieldmesh::audit::{self, Head, Verified};
use fieldmesh::config;
use fieldmesh::store::now_ms;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Flags of `audit`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct AuditArgs {
    /// Check the hash chain of each audit log in the data dir (or of --file): exit 2
    /// naming the first bad record's line and seq.
    #[arg(long)]
    verify: bool,
    /// The audit log to check (default: every `audit*.jsonl` in the data dir).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<AuditCmd>,
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Write the audit log as JSON Lines for an incident review (verified first).
    Export(ExportArgs),
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// The audit log to export (default: the only `audit*.jsonl` in the data dir).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Write to this file (created, mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    to: Option<PathBuf>,
    /// Only records from this time on: RFC 3339 (`2026-11-25T14:00:00Z`) or a
    /// duration before now (`2h`).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Export even if the chain is broken; the output then starts with a line
    /// `{"audit_chain_broken": "<why>"}` and does not verify.
    #[arg(long)]
    force: bool,
}

/// Runs `fieldmesh audit`.
pub(super) async fn audit(data: &Path, args: AuditArgs, json: bool) -> anyhow::Result<()> {
    match (args.cmd, args.verify) {
        (Some(AuditCmd::Export(e)), _) => export(data, e),
        (None, true) => verify(data, args.file, json).await,
        (None, false) => bail!("give --verify or `export` (see fieldmesh audit --help)"),
    }
}

/// The audit logs of `data`, sorted; an error if there is none.
fn logs(data: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(data).with_context(|| format!("cannot read {}", data.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("audit") && name.ends_with(".jsonl") {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        bail!(
            "no audit log in {} (a node writes one once it has run there)",
            data.display()
        );
    }
    Ok(found)
}

/// Reads and verifies one file; `Err` names the file and the first bad record.
fn check(path: &Path) -> anyhow::Result<Verified> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    audit::verify(&bytes).map_err(|b| anyhow::anyhow!("audit log {}: {b}", path.display()))
}

/// The running node's audit file and head, if a node answers for `data`.
async fn running_head(data: &Path) -> Option<(PathBuf, Option<Head>)> {
    let mut client = Client::connect(data, &data.join(config::CONTROL_SOCKET))
        .await
        .ok()?;
    let v = client.request(Op::Audit).await.ok()?;
    let file = PathBuf::from(v["file"].as_str()?);
    let head = serde_json::from_value(v["head"].clone()).ok();
    Some((file, head))
}

async fn verify(data: &Path, file: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let given = file.is_some();
    let files = match file {
        Some(f) => vec![f],
        None => logs(data)?,
    };
    // Asked before the files are read: the file must hold at least this head.
    let running = running_head(data).await;
    for path in files {
        let v = check(&path)?;
        // The node writes in this data dir: its file is ours if the names match (its
        // path may be relative to the node's working directory, not ours).
        let same = |f: &Path| {
            if given {
                std::fs::canonicalize(f).ok() == std::fs::canonicalize(&path).ok()
            } else {
                f.file_name() == path.file_name()
            }
        };
        if let Some((_, Some(head))) = running.as_ref().filter(|(f, _)| same(f)) {
            let holds = v
                .records
                .get(usize::try_from(head.seq).unwrap_or(usize::MAX))
                .is_some_and(|r| r.hash == head.hash);
            if !holds {
                bail!(
                    "audit log {}: the running node has written up to seq {} but the file \
                     does not hold that record (cut short or rewritten)",
                    path.display(),
                    head.seq
                );
            }
        }
        let torn: Vec<usize> = v.torn.iter().map(|t| t.line).collect();
        if json {
            let head = v
                .head()
                .map(|(seq, hash)| serde_json::json!({"seq": seq, "hash": hash}));
            println!(
                "{}",
                serde_json::json!({"file": path, "records": v.records.len(), "chain": "ok",
                    "torn_lines": torn, "head": head})
            );
        } else {
            println!(
                "audit log {}: {} records, chain ok",
                path.display(),
                v.records.len()
            );
            for line in torn {
                println!("  line {line}: torn (the node stopped while writing it; not tampering)");
            }
        }
    }
    Ok(())
}

/// Parses `--since`: RFC 3339, or a duration before now.
fn since_ms(s: &str) -> anyhow::Result<u64> {
    if let Ok(d) = humantime::parse_duration(s) {
        let back = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        return Ok(now_ms().saturating_sub(back));
    }
    let t = humantime::parse_rfc3339_weak(s)
        .with_context(|| format!("--since {s:?}: not a time (RFC 3339) or a duration"))?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .context("--since before 1970")?
        .as_millis();
    Ok(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn export(data: &Path, args: ExportArgs) -> anyhow::Result<()> {
    let path = match args.file {
        Some(f) => f,
        None => match logs(data)?.as_slice() {
            [one] => one.clone(),
            many => bail!(
                "{} audit logs in {} (one per team): pick one with --file ({})",
                many.len(),
                data.display(),
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let since = args.since.as_deref().map(since_ms).transpose()?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = String::new();
    let records = match audit::verify(&bytes) {
        Ok(v) => v.records,
        Err(b) if args.force => {
            out.push_str(&serde_json::json!({ "audit_chain_broken": b.to_string() }).to_string());
            out.push('\n');
            // Every line that still parses, in file order.
            bytes
                .split(|c| *c == b'\n')
                .filter_map(audit::verify::parse_line)
                .collect()
        }
        Err(b) => bail!(
            "audit log {}: {b}; not exported (--force exports it marked as broken)",
            path.display()
        ),
    };
    let mut n = 0usize;
    for r in records
        .iter()
        .filter(|r| since.is_none_or(|s| r.at_ms >= s))
    {
        out.push_str(&r.to_line());
        out.push('\n');
        n += 1;
    }
    match &args.to {
        Some(to) => {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(to)
                .with_context(|| format!("cannot create {}", to.display()))?;
            f.write_all(out.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("cannot write {}", to.display()))?;
            eprintln!("exported {n} audit records to {}", to.display());
        }
        None => std::io::stdout().write_all(out.as_bytes())?,
    }
    Ok(())
}
