//! The `echo` report (raw WebSocket round trips).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::{latency_json, latency_line, round, Endings, Latency, ToolCpu};

/// Everything an `echo` run measured.
#[derive(Debug, Clone)]
pub(crate) struct EchoReport {
    pub(crate) url: String,
    pub(crate) connections: u64,
    pub(crate) size: u64,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    /// Round trips begun in the measured window and completed with an equal echo.
    pub(crate) round_trips: u64,
    /// Round trips begun, warm-up included.
    pub(crate) sent: u64,
    /// Echoes that differed from what was sent.
    pub(crate) mismatches: u64,
    pub(crate) connections_alive: u64,
    /// Connections that ended early, by kind.
    pub(crate) endings: Endings,
    pub(crate) latency: Option<Latency>,
    pub(crate) tool: ToolCpu,
}

impl EchoReport {
    /// Measured round trips per second.
    pub(crate) fn round_trips_per_sec(&self) -> f64 {
        self.round_trips as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "scenario": "echo",
            "url": self.url,
            "connections": self.connections,
            "size": self.size,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "sent": self.sent,
            "round_trips": self.round_trips,
            "round_trips_per_sec": round(self.round_trips_per_sec()),
            "mismatches": self.mismatches,
            "connections_alive": self.connections_alive,
            "ended": self.endings.total(),
            "endings": self.endings.by_kind,
            "first_error": self.endings.first,
            "latency_ms": latency_json(self.latency.as_ref()),
            "tool_cpu": self.tool.json(),
        })
    }

    /// The multi-line summary printed on stderr.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "echo {}: {} connections, one message in flight each, {}-byte messages, {:?} \
             measured after {:?} warm-up",
            self.url, self.connections, self.size, self.duration, self.warmup
        );
        let _ = writeln!(
            s,
            "  round trips {} in window ({:.0}/s); {} mismatched; {}/{} connections alive",
            self.round_trips,
            self.round_trips_per_sec(),
            self.mismatches,
            self.connections_alive,
            self.connections
        );
        if self.endings.total() > 0 {
            let _ = writeln!(
                s,
                "  ended       {:?}; first: {}",
                self.endings.by_kind,
                self.endings.first.as_deref().unwrap_or("-")
            );
        }
        latency_line(&mut s, self.latency.as_ref());
        self.tool.line(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_json_names_round_trips_and_endings() {
        let mut endings = Endings::default();
        endings.add("1001".to_owned(), || "connection 3: closed".to_owned());
        let r = EchoReport {
            url: "ws://127.0.0.1:1/echo".to_owned(),
            connections: 4,
            size: 100,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            round_trips: 1000,
            sent: 1600,
            mismatches: 0,
            connections_alive: 3,
            endings,
            latency: None,
            tool: ToolCpu {
                cores: Some(0.2),
                threads: 1,
            },
        };
        let v = r.to_json();
        assert_eq!(v["round_trips_per_sec"], 500.0);
        assert_eq!(v["endings"]["1001"], 1);
        assert!(r.summary().contains("3/4 connections alive"));
    }
}
