//! What every timed scenario's report opens and ends with: the target, the message size, the
//! measured window, its latency and the tool's CPU; and the messages the run sent.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use super::{latency_json, latency_line, round, Latency, ToolCpu};
use crate::cli::WindowArgs;
use crate::cpu::window_cpu;
use crate::stats::Stats;

/// The common part of a timed run's report.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// Target URL.
    pub(crate) url: String,
    /// How connections reach it; `None` for the raw WebSocket echo, which has one way.
    pub(crate) transport: Option<&'static str>,
    /// Message (or body) size in bytes.
    pub(crate) size: u64,
    /// Length of the measured window.
    pub(crate) duration: Duration,
    /// Warm-up before it.
    pub(crate) warmup: Duration,
    /// Latency of the window's deliveries.
    pub(crate) latency: Option<Latency>,
    /// The tool's own CPU use in the window.
    pub(crate) tool: ToolCpu,
}

impl Run {
    /// The common figures of a run that used `window`, once it is over: latency from
    /// `stats`, and the tool's CPU from `sampler` (see `cpu::cpu_over_window`) over `threads`.
    pub(crate) async fn finish(
        (url, transport): (String, Option<&'static str>),
        size: u32,
        window: &WindowArgs,
        stats: &Stats,
        sampler: JoinHandle<Option<f64>>,
        threads: usize,
    ) -> Run {
        Run {
            url,
            transport,
            size: u64::from(size),
            duration: window.duration,
            warmup: window.warmup,
            latency: Latency::from_histogram(&stats.latency()),
            tool: ToolCpu {
                cores: window_cpu(stats, sampler).await,
                threads,
            },
        }
    }

    /// A run for the reports' tests: 100-byte messages, 2 s after 1 s of warm-up, no latency.
    #[cfg(test)]
    pub(crate) fn example(url: &str, transport: Option<&'static str>, cores: Option<f64>) -> Run {
        Run {
            url: url.to_owned(),
            transport,
            size: 100,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            latency: None,
            tool: ToolCpu { cores, threads: 1 },
        }
    }

    /// A JSON object with `scenario` and the common keys: `url`, `transport` (if any), `size`,
    /// `duration_s`, `warmup_s`, `latency_ms`, `tool_cpu`.
    pub(crate) fn json(&self, scenario: &str) -> Map<String, Value> {
        let mut map = Map::new();
        let mut put = |key: &str, value: Value| map.insert(key.to_owned(), value);
        put("scenario", json!(scenario));
        put("url", json!(self.url));
        if let Some(transport) = self.transport {
            put("transport", json!(transport));
        }
        put("size", json!(self.size));
        put("duration_s", json!(self.duration.as_secs_f64()));
        put("warmup_s", json!(self.warmup.as_secs_f64()));
        put("latency_ms", latency_json(self.latency.as_ref()));
        put("tool_cpu", self.tool.json());
        map
    }

    /// `n` per second of the measured window.
    pub(crate) fn per_sec(&self, n: u64) -> f64 {
        n as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// The summary's first line: `{scenario} {url} over {transport}: {what}, {size}-byte
    /// messages, {pace}, {duration} measured after {warmup} warm-up`.
    pub(crate) fn head(&self, s: &mut String, scenario: &str, what: &str, pace: &str) {
        let over = self
            .transport
            .map_or_else(String::new, |t| format!(" over {t}"));
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "{scenario} {}{over}: {what}, {}-byte messages, {pace}, {:?} measured after {:?} warm-up",
            self.url, self.size, self.duration, self.warmup
        );
    }

    /// The summary's last lines: latency and the tool's CPU.
    pub(crate) fn tail(&self, s: &mut String) {
        latency_line(s, self.latency.as_ref());
        self.tool.line(s);
    }
}

/// `{rate} msgs/s{unit}`, or `max rate` for 0.
pub(crate) fn pace(rate: f64, unit: &str) -> String {
    if rate > 0.0 {
        format!("{rate} msgs/s{unit}")
    } else {
        "max rate".to_owned()
    }
}

/// What the senders of a run sent (SENDs, or SockJS messages).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sending {
    /// Written, warm-up included.
    pub(crate) total: u64,
    /// Written in the measured window.
    pub(crate) measured: u64,
    /// Messages per second asked for, all senders; 0 for max mode.
    pub(crate) wanted: f64,
}

impl Sending {
    /// `{noun}`, `{noun}_measured` and `{noun}_per_sec` (`sent…` or `produced…`).
    pub(crate) fn json_into(&self, map: &mut Map<String, Value>, noun: &str, run: &Run) {
        map.insert(noun.to_owned(), json!(self.total));
        map.insert(format!("{noun}_measured"), json!(self.measured));
        map.insert(
            format!("{noun}_per_sec"),
            json!(round(run.per_sec(self.measured))),
        );
    }

    /// The summary line, flagging a rate below the request: the receipt window (or the
    /// backlog bound) held the senders back because the server took messages too slowly.
    pub(crate) fn line(&self, s: &mut String, noun: &str, run: &Run, extra: &str) {
        let per_sec = run.per_sec(self.measured);
        let short = if self.wanted > 0.0 && per_sec < 0.95 * self.wanted {
            format!(", below the requested {}/s", self.wanted)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {noun:<11} {} ({} in window, {per_sec:.0}/s{short}){extra}",
            self.total, self.measured
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_keys_and_a_short_rate() {
        let run = Run {
            url: "ws://127.0.0.1:1/ws/websocket".to_owned(),
            transport: None,
            size: 100,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            latency: None,
            tool: ToolCpu {
                cores: Some(0.5),
                threads: 1,
            },
        };
        let map = run.json("echo");
        assert_eq!(map["scenario"], "echo");
        assert!(!map.contains_key("transport"));
        assert!(map["latency_ms"].is_null());
        assert_eq!(map["warmup_s"], 1.0);
        let sending = Sending {
            total: 150,
            measured: 100,
            wanted: 100.0,
        };
        let mut map = Map::new();
        sending.json_into(&mut map, "produced", &run);
        assert_eq!(map["produced_per_sec"], 50.0);
        let mut s = String::new();
        sending.line(&mut s, "sent", &run, "");
        assert!(s.contains("below the requested 100/s"), "{s}");
        assert_eq!(pace(0.0, ""), "max rate");
        assert_eq!(pace(2.5, " per user"), "2.5 msgs/s per user");
    }
}
