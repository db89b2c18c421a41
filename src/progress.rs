//! Progress on stderr for operations that can take more than a second (`bench`,
//! `sim`, catch-up on `up`, `transcribe`): an indicatif bar when stderr is a
//! terminal, otherwise a plain line per phase and about every tenth of the work,
//! so the logs of scripted runs stay short.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often a spinner redraws.
const SPIN_INTERVAL: Duration = Duration::from_millis(120);

/// Reports phases and work done against a total; shared by reference, so a
/// callback can report phases while a timer sets the position.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    unit: &'static str,
    total: AtomicU64,
    /// Done count at which the next plain line is printed.
    next_line_at: AtomicU64,
}

impl Progress {
    /// A reporter for `total` items of `unit` (e.g. "messages"); a bar only
    /// when stderr is a terminal.
    pub fn new(total: u64, unit: &'static str) -> Progress {
        Progress::with_bar(std::io::stderr().is_terminal(), total, unit)
    }

    /// A reporter that draws a bar if `bar`, plain lines otherwise.
    pub fn with_bar(bar: bool, total: u64, unit: &'static str) -> Progress {
        let bar = bar.then(|| {
            let bar = ProgressBar::new(total);
            let template =
                format!("{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} {{msg}}");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress {
            bar,
            unit,
            total: AtomicU64::new(total),
            next_line_at: AtomicU64::new(0),
        }
    }

    /// A spinner with `msg` for work of unknown length on a terminal; one
    /// plain line with `msg` otherwise.
    pub fn spinner(msg: &str) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_message(msg.to_owned());
            bar.enable_steady_tick(SPIN_INTERVAL);
            Some(bar)
        } else {
            eprintln!("{msg}");
            None
        };
        Progress {
            bar,
            unit: "",
            total: AtomicU64::new(0),
            // Plain lines for a spinner: only the one above.
            next_line_at: AtomicU64::new(u64::MAX),
        }
    }

    /// A one-line note (setup phases, results), above the bar.
    pub fn phase(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// Changes the total (work found while working, such as a sync backlog).
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// `done` items are done.
    pub fn set(&self, done: u64) {
        let total = self.total.load(Ordering::Relaxed);
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if done >= self.next_line_at.load(Ordering::Relaxed) => {
                eprintln!("{done}/{total} {}", self.unit);
                self.next_line_at
                    .store(done + (total / 10).max(1), Ordering::Relaxed);
            }
            None => {}
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_about_every_tenth() {
        let p = Progress::with_bar(false, 100, "messages");
        for done in 0..=100 {
            p.set(done);
        }
        // Lines at 0, 10, …, 100; the next one would be at 110.
        assert_eq!(p.next_line_at.load(Ordering::Relaxed), 110);
        p.set_total(200);
        p.set(110);
        assert_eq!(p.next_line_at.load(Ordering::Relaxed), 130);
    }
}
