//! The progress line every scenario prints on stderr once a second while it sends:
//!
//! ```text
//! [   3s measure] sent 100/s  delivered 900/s  p99 0.412 ms  closed 1  subscribers 9/10
//! ```
//!
//! Scripts read it (`bench-peers.py` takes the delivered rate of the window's lines), so its
//! start stays `[{seconds}s {phase}] {sent} N/s  {delivered} N/s`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{self, Instant};

use crate::stats::Stats;

/// Figures a scenario adds after the common ones.
type Extra = Box<dyn Fn(&Stats) -> String + Send + Sync>;

/// What one scenario's progress line shows.
pub(crate) struct Progress {
    stats: Arc<Stats>,
    /// What `Stats::sent` counts (`sent`, `produced`), if it is shown.
    sent: Option<&'static str>,
    /// What `Stats::delivered` counts (`delivered`, `consumed`, `round trips`, `echoed`).
    delivered: &'static str,
    /// What the receivers are (`subscribers`, `users`, …) and how many there were.
    receivers: (&'static str, u64),
    extra: Option<Extra>,
}

impl Progress {
    /// A line showing `delivered` per second and how many of `count` `receivers` are left
    /// (receivers the scenario counts in `Stats::closed_subscribers` are gone).
    pub(crate) fn new(
        stats: Arc<Stats>,
        delivered: &'static str,
        receivers: &'static str,
        count: u32,
    ) -> Progress {
        Progress {
            stats,
            sent: None,
            delivered,
            receivers: (receivers, u64::from(count)),
            extra: None,
        }
    }

    /// Also shows `Stats::sent` per second, under this name, before the deliveries.
    pub(crate) fn sent(mut self, name: &'static str) -> Progress {
        self.sent = Some(name);
        self
    }

    /// Also shows what `extra` writes, before the receivers.
    pub(crate) fn extra(
        mut self,
        extra: impl Fn(&Stats) -> String + Send + Sync + 'static,
    ) -> Progress {
        self.extra = Some(Box::new(extra));
        self
    }

    /// Prints the line every second until the task is aborted.
    pub(crate) fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let start = Instant::now();
            let mut ticker =
                time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
            let mut before = (0, 0);
            loop {
                ticker.tick().await;
                let now = (
                    self.stats.sent.load(Relaxed),
                    self.stats.delivered.load(Relaxed),
                );
                eprintln!("{}", self.line(start.elapsed(), before, now));
                before = now;
            }
        })
    }

    /// One line, `elapsed` into the run, with the (sent, delivered) counts a second ago and now.
    fn line(&self, elapsed: Duration, before: (u64, u64), now: (u64, u64)) -> String {
        let stats = &self.stats;
        let mut line = format!("[{:>4}s {}] ", elapsed.as_secs(), stats.phase());
        if let Some(sent) = self.sent {
            line += &format!("{sent} {}/s  ", now.0.saturating_sub(before.0));
        }
        line += &format!(
            "{} {}/s  p99 {}  closed {}",
            self.delivered,
            now.1.saturating_sub(before.1),
            stats.p99_text(),
            stats.closed_connections.load(Relaxed)
        );
        if let Some(extra) = &self.extra {
            line += "  ";
            line += &extra(stats);
        }
        let (name, count) = self.receivers;
        let left = count.saturating_sub(stats.closed_subscribers.load(Relaxed));
        line + &format!("  {name} {left}/{count}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_keeps_the_shape_scripts_read() {
        let stats = Arc::new(Stats::new(1));
        stats.set_window(0, u64::MAX);
        stats.closed_subscribers.store(1, Relaxed);
        stats.closed_connections.store(1, Relaxed);
        let progress = Progress::new(stats, "delivered", "subscribers", 10)
            .sent("sent")
            .extra(|_| "backlog 3".to_owned());
        let line = progress.line(Duration::from_secs(3), (100, 900), (200, 1800));
        assert_eq!(
            line,
            "[   3s measure] sent 100/s  delivered 900/s  p99 -  closed 1  backlog 3  subscribers 9/10"
        );
    }
}
