//! The node's side of the audit trail (`proto/audit.md`): opening the log at
//! spawn, and the records the handle writes (reads, membership changes made
//! here). The event loop writes its own through `EventLoop::audit`.

use super::{NodeHandle, SpawnError};
use crate::audit::{AuditLog, Event, Fact, Head, Via};
use crate::config::NodeConfig;
use crate::gossip::envelope::Envelope;
use crate::identity::Identity;
use crate::store::Store;
use std::path::Path;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Opens the configured audit log (anchored in `store`) and starts its writer,
/// which stops on `shutdown`; `(None, None)` when the config names no log.
pub(super) fn open(
    config: &NodeConfig,
    identity: &Identity,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<(Option<AuditLog>, Option<JoinHandle<()>>), SpawnError> {
    let Some(path) = &config.audit_log else {
        return Ok((None, None));
    };
    let (log, task) = AuditLog::open(
        path,
        &identity.peer_id(),
        Some(store.clone()),
        shutdown.clone(),
    )
    .map_err(|source| SpawnError::Audit {
        path: path.clone(),
        source,
    })?;
    Ok((Some(log), Some(task)))
}

impl NodeHandle {
    /// Puts on the audit record that `env` was shown to this node's user through
    /// `via` (one `read` record per message shown; `proto/audit.md` §3). Waits for
    /// room in the writer's queue rather than leaving a read off the record.
    pub async fn audit_read(&self, env: &Envelope, via: Via) {
        if let Some(a) = &self.audit {
            a.record_wait(Fact {
                via: Some(via),
                ..Fact::about(Event::Read, env)
            })
            .await;
        }
    }

    /// The audit log's file and newest durable record (`None` when the node keeps
    /// no log).
    pub fn audit_head(&self) -> Option<(&Path, Option<Head>)> {
        self.audit.as_ref().map(|a| (a.path(), a.head()))
    }

    /// Queues facts for the audit log without waiting (called under the team lock).
    pub(super) fn audit_all(&self, facts: Vec<Fact>) {
        if let Some(a) = &self.audit {
            facts.into_iter().for_each(|f| a.record(f));
        }
    }
}
