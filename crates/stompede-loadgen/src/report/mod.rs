//! The end-of-run reports: a human summary for stderr and one JSON line for stdout, one file per
//! scenario (`echo` serves both echo scenarios), sharing the pieces here (latency percentiles,
//! the tool's own CPU use, counts of how connections ended), in `run` (the target, the window,
//! what was sent) and in `account` (where the window's deliveries went, and why the server
//! closed whom: the same keys in every scenario).

mod account;
mod broadcast;
mod echo;
mod fanout;
mod idle;
mod queue;
mod rooms;
mod run;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

pub(crate) use account::{close_reason, Deliveries, ServerCloses};
pub(crate) use broadcast::BroadcastReport;
pub(crate) use echo::{EchoEnd, EchoReport, EchoTally, EchoTotals, SockjsCounts};
pub(crate) use fanout::FanoutReport;
pub(crate) use idle::{IdleReport, ServerMemory};
pub(crate) use queue::QueueReport;
pub(crate) use rooms::RoomsReport;
pub(crate) use run::{pace, Run, Sending};

/// Latency percentiles of the measured deliveries, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Latency {
    /// Deliveries measured.
    pub(crate) samples: u64,
    /// Median.
    pub(crate) p50: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// 99.9th percentile.
    pub(crate) p999: f64,
    /// Largest.
    pub(crate) max: f64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds; `None` when it is empty.
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1e3;
        Some(Latency {
            samples: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// Latency as a JSON object (or null).
pub(crate) fn latency_json(latency: Option<&Latency>) -> Value {
    latency.map_or(Value::Null, |l| {
        json!({ "samples": l.samples, "p50": l.p50, "p99": l.p99, "p999": l.p999, "max": l.max })
    })
}

/// Latency as one summary line.
pub(crate) fn latency_line(s: &mut String, latency: Option<&Latency>) {
    match latency {
        Some(l) => {
            let _ = writeln!(
                s,
                "  latency ms  p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  ({} samples)",
                l.p50, l.p99, l.p999, l.max, l.samples
            );
        }
        None => s.push_str("  latency     no measured deliveries\n"),
    }
}

/// Rounds a rate to one decimal for the JSON line.
pub(crate) fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A signed count for JSON (loss may be negative when the server delivered duplicates).
pub(crate) fn signed(n: i128) -> i64 {
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// The load tool's own CPU use during the measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ToolCpu {
    /// Cores' worth of CPU used (1.0: one core all the time); `None` without procfs.
    pub(crate) cores: Option<f64>,
    /// Runtime threads the tool ran (`--threads`).
    pub(crate) threads: usize,
}

impl ToolCpu {
    /// Whether the tool used (nearly) all the CPU its threads can: the server was not the
    /// only limit, so throughput figures are lower bounds.
    pub(crate) fn saturated(&self) -> bool {
        self.cores
            .is_some_and(|cores| cores >= 0.95 * self.threads.max(1) as f64)
    }

    /// The `tool_cpu` JSON object.
    pub(crate) fn json(&self) -> Value {
        json!({
            "cores": self.cores.map(|c| (c * 1000.0).round() / 1000.0),
            "threads": self.threads,
            "saturated": self.saturated(),
        })
    }

    /// The summary line, if there is a figure.
    pub(crate) fn line(&self, s: &mut String) {
        if let Some(cores) = self.cores {
            let _ = writeln!(
                s,
                "  load tool   {:.0}% of a core during the window on {} thread(s){}",
                cores * 100.0,
                self.threads,
                if self.saturated() {
                    ": saturated, the figures are lower bounds for the server"
                } else {
                    ""
                }
            );
        }
    }
}

/// Connections (or sessions, or opening attempts) that ended, by kind, with the first in words.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endings {
    /// How many ended, by kind (`4500`, `eof`, `http-404`, `connect-ConnectionRefused`, …).
    pub(crate) by_kind: BTreeMap<String, u64>,
    /// The first of them, in words.
    pub(crate) first: Option<String>,
}

impl Endings {
    /// Counts one ending and keeps the first description.
    pub(crate) fn add(&mut self, key: String, detail: impl FnOnce() -> String) {
        *self.by_kind.entry(key).or_insert(0) += 1;
        if self.first.is_none() {
            self.first = Some(detail());
        }
    }

    /// All endings.
    pub(crate) fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    /// `ended`, `endings` and `first_error`, for a report's JSON object.
    pub(crate) fn json_into(&self, map: &mut Map<String, Value>) {
        map.insert("ended".to_owned(), json!(self.total()));
        map.insert("endings".to_owned(), json!(self.by_kind));
        map.insert("first_error".to_owned(), json!(self.first));
    }

    /// The summary line, if any ended.
    pub(crate) fn line(&self, s: &mut String) {
        if self.total() > 0 {
            let _ = writeln!(
                s,
                "  ended       {:?}; first: {}",
                self.by_kind,
                self.first.as_deref().unwrap_or("-")
            );
        }
    }
}

/// STOMP ERROR frames received: how many, and the first one's `message`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StompErrors {
    pub(crate) count: u64,
    pub(crate) first: Option<String>,
}

impl StompErrors {
    /// Counts one ERROR frame with this `message` header.
    pub(crate) fn add(&mut self, message: Option<String>) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(message.unwrap_or_else(|| "(no message)".to_owned()));
        }
    }

    /// Merges `other` in.
    pub(crate) fn merge(&mut self, other: StompErrors) {
        self.count += other.count;
        self.first = self.first.take().or(other.first);
    }

    /// The summary line, if there were any.
    pub(crate) fn line(&self, s: &mut String) {
        if self.count > 0 {
            let _ = writeln!(
                s,
                "  errors      {} ERROR frames, first: {}",
                self.count,
                self.first.as_deref().unwrap_or("(no message)")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_reported_in_milliseconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("valid bounds");
        for us in 1..=1000 {
            h.record(us).expect("in range");
        }
        let l = Latency::from_histogram(&h).expect("non-empty");
        assert_eq!(l.samples, 1000);
        assert!((l.p50 - 0.5).abs() < 0.01, "{}", l.p50);
        assert!((l.max - 1.0).abs() < 0.01, "{}", l.max);
        assert!(Latency::from_histogram(&Histogram::<u64>::new(3).expect("valid")).is_none());
        assert!(latency_json(None).is_null());
        assert_eq!(latency_json(Some(&l))["samples"], 1000);
    }

    #[test]
    fn endings_count_by_kind_and_keep_the_first() {
        let mut a = Endings::default();
        a.add("4500".to_owned(), || "session 1: first".to_owned());
        a.add("4500".to_owned(), || "session 2: second".to_owned());
        a.add("eof".to_owned(), || "session 3".to_owned());
        assert_eq!(a.total(), 3);
        assert_eq!(a.by_kind["4500"], 2);
        assert_eq!(a.first.as_deref(), Some("session 1: first"));
    }

    #[test]
    fn a_saturated_tool_says_so() {
        let tool = ToolCpu {
            cores: Some(0.97),
            threads: 1,
        };
        assert!(tool.saturated());
        let mut s = String::new();
        tool.line(&mut s);
        assert!(s.contains("lower bounds"), "{s}");
        assert!(!ToolCpu {
            cores: Some(0.97),
            threads: 2
        }
        .saturated());
        assert!(!ToolCpu {
            cores: None,
            threads: 1
        }
        .saturated());
        assert_eq!(signed(-3), -3);
        assert_eq!(signed(i128::MAX), i64::MAX);
    }

    #[test]
    fn stomp_errors_keep_the_first_message() {
        let mut e = StompErrors::default();
        e.add(None);
        e.add(Some("second".to_owned()));
        assert_eq!(e.count, 2);
        assert_eq!(e.first.as_deref(), Some("(no message)"));
        let mut s = String::new();
        e.line(&mut s);
        assert!(s.contains("2 ERROR frames"));
    }
}
