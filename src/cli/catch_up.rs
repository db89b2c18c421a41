//! Catch-up progress on `up`: while catch-up sync sessions have messages left to
//! transfer, a bar (terminal) or plain lines (logs) say "catching up: N
//! messages". It polls the node's status once a second, so a catch-up shorter
//! than that shows nothing.

use fieldmesh::node::NodeHandle;
use fieldmesh::progress::Progress;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the status is polled: the "over about a second" threshold.
const POLL: Duration = Duration::from_secs(1);

/// A catch-up being shown.
struct Shown {
    progress: Progress,
    /// The `synced` counter when it started.
    synced_before: u64,
    total: u64,
}

/// Shows catch-up progress until `shutdown` (or the node stops).
pub(super) async fn show(node: NodeHandle, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shown: Option<Shown> = None;
    loop {
        // Both arms are cancel-safe: a lost tick is just a later redraw.
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Ok(s) = node.status().await else { break };
        let synced = s.counters.get("synced").copied().unwrap_or(0);
        let backlog = s.sync_backlog as u64;
        match shown.as_mut() {
            None if backlog > 0 => {
                let progress = Progress::new(backlog, "messages");
                progress.phase(&format!("catching up: {backlog} messages"));
                shown = Some(Shown {
                    progress,
                    synced_before: synced,
                    total: backlog,
                });
            }
            None => {}
            Some(c) => {
                let done = synced.saturating_sub(c.synced_before);
                if s.sync_sessions == 0 {
                    c.progress.finish();
                    c.progress.phase(&format!("caught up: {done} messages"));
                    shown = None;
                } else {
                    // New peers can add to the backlog while it runs.
                    c.total = c.total.max(done + backlog);
                    c.progress.set_total(c.total);
                    c.progress.set(done);
                }
            }
        }
    }
    if let Some(c) = shown {
        c.progress.finish();
    }
}
