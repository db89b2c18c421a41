//! The node's audit writer (`proto/audit.md` §5): one task that numbers, chains
//! and appends records, fed by a bounded channel. Producers never wait in the
//! event loop: [`AuditLog::record`] drops a record when the queue is full and the
//! writer then appends a `dropped` record with the count, so a loss is itself on
//! the record. Each batch the writer drains is written with one `write` and made
//! durable with one `fdatasync` before the next.

use super::verify::resume_from_tail;
use super::{Event, Fact, Record, GENESIS, MAX_LINE_BYTES};
use crate::store::{now_ms, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Records waiting for the writer at most: a catch-up of a few thousand messages
/// arrives in batches of up to 700 per event-loop turn, and the writer drains the
/// queue once per fsync (a few ms), so this absorbs bursts; beyond it records are
/// counted as dropped rather than slowing the loop.
pub const AUDIT_CHANNEL_CAPACITY: usize = 8192;
/// Records written per `write` + `fdatasync` at most.
const MAX_BATCH: usize = 1024;

/// Which interface showed a message (`read` records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The control socket (`fieldmesh read`).
    Control,
    /// The web UI's API (a page listing a channel or showing one message).
    Web,
}

/// The newest durable record: what the file must reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

struct Shared {
    path: PathBuf,
    dropped: AtomicU64,
    failed: AtomicBool,
    head: Mutex<Option<Head>>,
}

/// Clone handle for appending to a node's audit log.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<(u64, Fact)>,
    shared: Arc<Shared>,
}

impl AuditLog {
    /// Opens (or creates, mode 0600) the log at `path`, resumes its chain and starts
    /// the writer, which first appends a `started` record for `me`. The writer
    /// stops once `shutdown` is cancelled and what was queued is written.
    ///
    /// With a `store`, the newest record is also kept there as a sealed anchor
    /// (`Store::set_audit_anchor`), and at start the file must still hold the
    /// record it names; if not, an `anchor_mismatch` record follows `started`.
    pub fn open(
        path: &Path,
        me: &libp2p::PeerId,
        store: Option<Store>,
        shutdown: CancellationToken,
    ) -> std::io::Result<(AuditLog, JoinHandle<()>)> {
        Self::open_with(path, me, store, shutdown, AUDIT_CHANNEL_CAPACITY)
    }

    /// [`AuditLog::open`] with a queue of `capacity` records.
    pub(super) fn open_with(
        path: &Path,
        me: &libp2p::PeerId,
        store: Option<Store>,
        shutdown: CancellationToken,
        capacity: usize,
    ) -> std::io::Result<(AuditLog, JoinHandle<()>)> {
        let (writer, mismatch) = Writer::open(path, store)?;
        let (tx, rx) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            dropped: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            head: Mutex::new(writer.head()),
        });
        let log = AuditLog { tx, shared };
        log.record(Fact {
            peer: Some(me.to_string()),
            ..Fact::new(Event::Started)
        });
        if let Some(anchor_seq) = mismatch {
            log.record(Fact::counting(Event::AnchorMismatch, anchor_seq));
        }
        let task = tokio::spawn(run(writer, rx, log.shared.clone(), shutdown));
        Ok((log, task))
    }

    /// Queues `fact` without waiting (event loop): counted as dropped if the queue
    /// is full or the writer has stopped.
    pub fn record(&self, fact: Fact) {
        if self.tx.try_send((now_ms(), fact)).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues `fact`, waiting for room (request handlers: a large read is slowed
    /// down rather than left off the record).
    pub async fn record_wait(&self, fact: Fact) {
        if self.tx.send((now_ms(), fact)).await.is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The newest record written and synced; `None` while the file is empty.
    pub fn head(&self) -> Option<Head> {
        self.shared
            .head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether a write failed (nothing more is written until restart).
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

/// Drains the queue in batches until shutdown; each batch is one write and one
/// fdatasync, off the async threads.
async fn run(
    mut writer: Writer,
    mut rx: mpsc::Receiver<(u64, Fact)>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    loop {
        // Cancel-safe: `recv` loses nothing when the other branch wins. After
        // shutdown the queue is closed and what it still holds is written.
        let first = tokio::select! {
            biased;
            f = rx.recv() => f,
            () = shutdown.cancelled() => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        let mut batch = Vec::with_capacity(64);
        let dropped = shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            batch.push((now_ms(), Fact::counting(Event::Dropped, dropped)));
        }
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        if shared.failed.load(Ordering::Relaxed) {
            continue; // reported once below; the queue is still drained
        }
        let joined = tokio::task::spawn_blocking(move || {
            let written = writer.append(&batch);
            (writer, written)
        })
        .await;
        match joined {
            Ok((w, Ok(head))) => {
                writer = w;
                *shared.head.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
            }
            Ok((w, Err(e))) => {
                writer = w;
                shared.failed.store(true, Ordering::Relaxed);
                tracing::error!(path = %shared.path.display(), error = %e,
                    "audit log write failed: no more audit records until restart");
            }
            Err(e) => {
                tracing::error!(error = %e, "audit writer stopped");
                return;
            }
        }
    }
}

/// The open file and where the chain goes on.
struct Writer {
    file: File,
    next_seq: u64,
    prev: String,
    /// Where the anchor is kept (`None`: in-process nodes without a log check).
    store: Option<Store>,
}

impl Writer {
    /// Opens for appending and resumes after the last record (`proto/audit.md` §5).
    /// Also returns the anchor's seq if the file does not hold the record it names.
    fn open(path: &Path, store: Option<Store>) -> std::io::Result<(Writer, Option<u64>)> {
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path)?;
        let len = file.metadata()?.len();
        let window = u64::try_from(2 * MAX_LINE_BYTES + 2).unwrap_or(u64::MAX);
        file.seek(SeekFrom::Start(len.saturating_sub(window)))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        let resume = resume_from_tail(&tail);
        if resume.torn {
            tracing::warn!(path = %path.display(),
                "audit log ends in a torn line (crash while writing); the chain goes on after it");
        }
        if resume.unterminated {
            file.write_all(b"\n")?;
        }
        // A new file: make its directory entry durable too (Unix: a directory
        // cannot be opened as a file on Windows).
        #[cfg(unix)]
        if len == 0 {
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        let anchor = match store.as_ref().map(Store::audit_anchor) {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the audit anchor; not checked");
                None
            }
            None => None,
        };
        let mismatch = match (&anchor, &resume.last) {
            (None, _) => None,
            (Some((seq, hash)), Some(last)) if last.seq == *seq && last.hash == *hash => None,
            // Records written after the anchor (a crash before it was updated):
            // look the anchored record up in the whole file.
            (Some((seq, hash)), Some(last)) if last.seq > *seq => {
                file.seek(SeekFrom::Start(0))?;
                let mut all = Vec::new();
                file.read_to_end(&mut all)?;
                let held = all
                    .split(|b| *b == b'\n')
                    .filter_map(super::verify::parse_line)
                    .any(|r| r.seq == *seq && r.hash == *hash);
                (!held).then_some(*seq)
            }
            (Some((seq, _)), _) => Some(*seq),
        };
        if let Some(seq) = mismatch {
            tracing::error!(path = %path.display(), anchor_seq = seq,
                "audit log does not hold the record its anchor names: cut short or rewritten");
        }
        let (next_seq, prev) = match resume.last {
            Some(r) => (r.seq.saturating_add(1), r.hash),
            None if len > 0 && !resume.torn => {
                tracing::warn!(path = %path.display(),
                    "audit log does not end in a record; a new chain starts (verify will show where)");
                (0, GENESIS.to_owned())
            }
            None => (0, GENESIS.to_owned()),
        };
        Ok((
            Writer {
                file,
                next_seq,
                prev,
                store,
            },
            mismatch,
        ))
    }

    fn head(&self) -> Option<Head> {
        self.next_seq.checked_sub(1).map(|seq| Head {
            seq,
            hash: self.prev.clone(),
        })
    }

    /// Appends `facts` (each with the time it happened) as records, then syncs.
    /// The chain state moves on only once the bytes are durable.
    fn append(&mut self, facts: &[(u64, Fact)]) -> std::io::Result<Head> {
        let mut seq = self.next_seq;
        let mut prev = self.prev.clone();
        let mut out = String::with_capacity(facts.len() * 400);
        for (at_ms, f) in facts {
            let r = Record::chain(f, seq, *at_ms, &prev);
            out.push_str(&r.to_line());
            out.push('\n');
            seq = seq.saturating_add(1);
            prev = r.hash;
        }
        self.file.write_all(out.as_bytes())?;
        self.file.sync_data()?;
        // The anchor follows the file, never leads it: a crash in between leaves it
        // behind, which the next start tells apart from a cut (see `open`).
        if let Some(store) = &self.store {
            match store.set_audit_anchor(seq.saturating_sub(1), &prev) {
                Ok(()) | Err(StoreError::Locked) => {}
                Err(e) => tracing::warn!(error = %e, "audit anchor not updated"),
            }
        }
        self.next_seq = seq;
        self.prev = prev;
        self.head()
            .ok_or_else(|| std::io::Error::other("empty batch"))
    }
}
