//! Counters and latency histograms shared by every connection task of a run.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::Latency;

/// Highest latency the histograms track exactly, in microseconds (one hour); above it a sample
/// is clamped, not dropped.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Shared state of one run. Timestamps are nanoseconds since `base`, the one clock that
/// publishers write into bodies and subscribers read back (same process, so no skew).
#[derive(Debug)]
pub(crate) struct Stats {
    base: Instant,
    /// Start of the measured window; `u64::MAX` until publishing starts.
    measure_from: AtomicU64,
    /// End of the measured window: publishers send nothing stamped at or after it.
    measure_until: AtomicU64,
    /// SENDs written, warm-up included.
    pub(crate) sent: AtomicU64,
    /// SENDs written with a timestamp inside the measured window.
    pub(crate) sent_measured: AtomicU64,
    /// MESSAGE frames received, warm-up included.
    pub(crate) delivered: AtomicU64,
    /// MESSAGE frames received whose timestamp is inside the measured window.
    pub(crate) delivered_measured: AtomicU64,
    /// Of `delivered_measured`, those received by subscribers the server has since closed.
    pub(crate) delivered_measured_closed: AtomicU64,
    /// Of `delivered`, those received by subscribers the server has since closed.
    pub(crate) delivered_closed: AtomicU64,
    /// Subscribers the server closed (or whose connection broke) during the run.
    pub(crate) closed_subscribers: AtomicU64,
    /// Connections of either role the server closed during the run.
    pub(crate) closed_connections: AtomicU64,
    /// Timestamp of the latest measured delivery.
    pub(crate) last_delivery: AtomicU64,
    /// End-to-end latency of measured deliveries, in microseconds. Sharded so that worker
    /// threads (with `--threads` > 1) rarely contend; one shard per thread.
    latency: Vec<Mutex<Histogram<u64>>>,
}

impl Stats {
    /// Fresh counters with `shards` latency histograms (at least one).
    pub(crate) fn new(shards: usize) -> Stats {
        let latency = (0..shards.max(1))
            .map(|_| Mutex::new(new_histogram()))
            .collect();
        Stats {
            base: Instant::now(),
            measure_from: AtomicU64::new(u64::MAX),
            measure_until: AtomicU64::new(u64::MAX),
            sent: AtomicU64::new(0),
            sent_measured: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            delivered_measured: AtomicU64::new(0),
            delivered_measured_closed: AtomicU64::new(0),
            delivered_closed: AtomicU64::new(0),
            closed_subscribers: AtomicU64::new(0),
            closed_connections: AtomicU64::new(0),
            last_delivery: AtomicU64::new(0),
            latency,
        }
    }

    /// Nanoseconds since the run's base instant.
    pub(crate) fn now_ns(&self) -> u64 {
        duration_ns(self.base.elapsed())
    }

    /// The instant `ns` nanoseconds after the base.
    pub(crate) fn instant_at(&self, ns: u64) -> Instant {
        self.base + Duration::from_nanos(ns)
    }

    /// Sets the measured window to `[from, until)`, in nanoseconds since the base.
    pub(crate) fn set_window(&self, from: u64, until: u64) {
        self.measure_until.store(until, Relaxed);
        self.measure_from.store(from, Relaxed);
    }

    /// Starts the run now: `warmup`, then the measured window of `duration`. Returns the
    /// start, the window's start and its end, in nanoseconds since the base.
    pub(crate) fn start_window(&self, warmup: Duration, duration: Duration) -> (u64, u64, u64) {
        let start = self.now_ns();
        let from = start + duration_ns(warmup);
        let until = from + duration_ns(duration);
        self.set_window(from, until);
        (start, from, until)
    }

    /// Measured deliveries per second, all receivers, from the window's start to the latest
    /// measured delivery.
    pub(crate) fn delivered_per_sec(&self, delivered: u64) -> f64 {
        let (from, _) = self.window();
        let last = self.last_delivery.load(Relaxed);
        if last > from {
            delivered as f64 / ((last - from) as f64 / 1e9)
        } else {
            0.0
        }
    }

    /// The measured window, in nanoseconds since the base.
    pub(crate) fn window(&self) -> (u64, u64) {
        (
            self.measure_from.load(Relaxed),
            self.measure_until.load(Relaxed),
        )
    }

    /// Whether a message stamped `ts` belongs to the measured window.
    pub(crate) fn is_measured(&self, ts: u64) -> bool {
        ts >= self.measure_from.load(Relaxed) && ts < self.measure_until.load(Relaxed)
    }

    /// The phase of the run for progress lines: before, inside or after the measured window.
    pub(crate) fn phase(&self) -> &'static str {
        let (from, until) = self.window();
        let now = self.now_ns();
        if now < from {
            "warm-up"
        } else if now < until {
            "measure"
        } else {
            "drain"
        }
    }

    /// The 99th percentile so far, for progress lines.
    pub(crate) fn p99_text(&self) -> String {
        Latency::from_histogram(&self.latency())
            .map_or_else(|| "-".to_owned(), |l| format!("{:.3} ms", l.p99))
    }

    /// Messages sent (by all publishers) that the average subscriber still connected has not
    /// received yet; `None` once no subscriber is left.
    pub(crate) fn backlog(&self, subscribers: u64) -> Option<u64> {
        let alive = subscribers.checked_sub(self.closed_subscribers.load(Relaxed))?;
        if alive == 0 {
            return None;
        }
        // A subscriber that just closed may not have moved its count yet: saturate.
        let delivered = self
            .delivered
            .load(Relaxed)
            .saturating_sub(self.delivered_closed.load(Relaxed));
        Some(self.sent.load(Relaxed).saturating_sub(delivered / alive))
    }

    /// Number of latency shards; a connection uses shard `index % shards()`.
    pub(crate) fn shards(&self) -> usize {
        self.latency.len()
    }

    /// Records one measured delivery's latency.
    pub(crate) fn record_latency(&self, shard: usize, latency_us: u64) {
        self.latency[shard % self.latency.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .saturating_record(latency_us.max(1));
    }

    /// All shards merged into one histogram.
    pub(crate) fn latency(&self) -> Histogram<u64> {
        let mut merged = new_histogram();
        for shard in &self.latency {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            // Same bounds on both sides, so the addition cannot go out of range.
            let _ = merged.add(&*shard);
        }
        merged
    }
}

/// Waits, after the senders stopped, until `done` says every delivery owed arrived or
/// `timeout` passes; returns whether everything arrived.
pub(crate) async fn drain(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        // Counters are polled: a millisecond-grained wait would only cost CPU in the window's
        // tail, and nothing here is timed.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An empty latency histogram (microseconds).
fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: 1 µs to one hour at 3 significant figures.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// A duration in whole nanoseconds, saturating (after 584 years).
pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_window_is_measured() {
        let stats = Stats::new(2);
        assert!(
            !stats.is_measured(5),
            "nothing is measured before the window is set"
        );
        stats.set_window(100, 200);
        assert!(!stats.is_measured(99));
        assert!(stats.is_measured(100));
        assert!(stats.is_measured(199));
        assert!(!stats.is_measured(200));
    }

    #[test]
    fn backlog_follows_the_average_live_subscriber() {
        let stats = Stats::new(1);
        stats.sent.store(100, Relaxed);
        stats.delivered.store(150, Relaxed);
        assert_eq!(stats.backlog(2), Some(25));
        // One of the two closes after receiving 90: the other has 60 of 100.
        stats.closed_subscribers.store(1, Relaxed);
        stats.delivered_closed.store(90, Relaxed);
        assert_eq!(stats.backlog(2), Some(40));
        stats.closed_subscribers.store(2, Relaxed);
        assert_eq!(stats.backlog(2), None);
    }

    #[test]
    fn shards_merge_and_outliers_are_clamped() {
        let stats = Stats::new(3);
        stats.record_latency(0, 100);
        stats.record_latency(4, 300);
        stats.record_latency(2, u64::MAX);
        stats.record_latency(1, 0);
        let merged = stats.latency();
        assert_eq!(merged.len(), 4);
        assert!(merged.max() >= MAX_LATENCY_US);
        assert_eq!(merged.min(), 1);
    }
}
