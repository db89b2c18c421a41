//! Progress on stderr: an indicatif bar when stderr is a terminal, otherwise a plain
//! line per phase and about every tenth of the run (so logs of scripted runs stay short).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Reports phases and completed messages.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    /// Completed count at which the next plain line is printed.
    next_line_at: u64,
}

impl Progress {
    /// A reporter for `total` messages.
    pub(super) fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} messages {per_sec} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress {
            bar,
            total,
            next_line_at: 0,
        }
    }

    /// A one-line note (setup phases, results).
    pub(super) fn phase(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// `done` of the messages have completed (fully disseminated or given up).
    pub(super) fn set(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if done >= self.next_line_at => {
                eprintln!("{done}/{} messages done", self.total);
                self.next_line_at = done + (self.total / 10).max(1);
            }
            None => {}
        }
    }

    /// Clears the bar.
    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
