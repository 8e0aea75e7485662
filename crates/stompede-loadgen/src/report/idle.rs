//! The `idle` report.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{json, Value};

use super::{round, Deliveries, Endings, ServerCloses, StompErrors, ToolCpu};
use crate::conn::Transport;
use crate::memory::Resident;

/// The server's resident memory at three points of an `idle` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerMemory {
    pub(crate) pid: u32,
    /// Before the first session opened.
    pub(crate) before: Option<Resident>,
    /// Once every session was open (or had failed).
    pub(crate) after_open: Option<Resident>,
    /// At the end of the hold, before the sessions closed.
    pub(crate) end: Option<Resident>,
}

impl ServerMemory {
    /// Resident bytes per open session: growth from before to after opening, divided by the
    /// sessions that opened.
    pub(crate) fn per_session_bytes(&self, opened: u64) -> Option<f64> {
        let (before, after) = (self.before?, self.after_open?);
        (opened > 0)
            .then(|| (after.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / opened as f64)
    }
}

/// Everything an `idle` run measured.
#[derive(Debug, Clone)]
pub(crate) struct IdleReport {
    pub(crate) url: String,
    pub(crate) transport: Transport,
    /// Sessions asked for.
    pub(crate) sessions: u64,
    /// Sessions that connected and subscribed.
    pub(crate) opened: u64,
    /// Attempts that failed, by kind.
    pub(crate) failures: Endings,
    /// From the first attempt to the last outcome.
    pub(crate) open_time: Duration,
    pub(crate) hold: Duration,
    /// The heart-beat asked for both ways (zero: none).
    pub(crate) heartbeat: Duration,
    /// The source address range and its size, if sockets were bound.
    pub(crate) source_addrs: Option<((Ipv4Addr, Ipv4Addr), u64)>,
    /// Sessions still open when the hold ended.
    pub(crate) alive: u64,
    /// Sessions the server closed during the hold.
    pub(crate) closes: ServerCloses,
    /// MESSAGE frames received (nobody publishes: should be 0).
    pub(crate) messages: u64,
    pub(crate) heartbeats_sent: u64,
    pub(crate) errors: StompErrors,
    pub(crate) server: Option<ServerMemory>,
    /// The tool's own resident memory at the end of the hold.
    pub(crate) tool_rss_kib: Option<u64>,
    /// The tool's CPU over the hold.
    pub(crate) tool: ToolCpu,
}

impl IdleReport {
    /// Nobody publishes, so nothing is owed: a MESSAGE frame counts as received beyond what
    /// was expected (negative loss, as duplicates elsewhere).
    pub(crate) fn deliveries(&self) -> Deliveries {
        Deliveries {
            received: self.messages,
            drained: true,
            ..Deliveries::default()
        }
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        let kib = |r: Option<Resident>| r.map(|r| r.rss_kib);
        let server = self.server.map(|m| {
            json!({
                "pid": m.pid,
                "rss_kib_before": kib(m.before),
                "rss_kib_after_open": kib(m.after_open),
                "rss_kib_end": kib(m.end),
                "peak_kib": m.end.and_then(|r| r.peak_kib),
                "bytes_per_session": m.per_session_bytes(self.opened).map(f64::round),
            })
        });
        let mut v = json!({
            "scenario": "idle",
            "url": self.url,
            "transport": self.transport.as_str(),
            "sessions": self.sessions,
            "opened": self.opened,
            "failed": self.failures.total(),
            "failures": self.failures.by_kind,
            "first_failure": self.failures.first,
            "open_s": (self.open_time.as_secs_f64() * 1000.0).round() / 1000.0,
            "opens_per_sec": round(self.opened as f64 / self.open_time.as_secs_f64().max(1e-9)),
            "hold_s": self.hold.as_secs_f64(),
            "heartbeat_ms": u64::try_from(self.heartbeat.as_millis()).unwrap_or(u64::MAX),
            "source_addrs": self.source_addrs.map(|((first, last), _)| format!("{first}-{last}")),
            "source_addr_count": self.source_addrs.map(|(_, n)| n),
            "alive": self.alive,
            "closed": self.closes.total(),
            "messages": self.messages,
            "heartbeats_sent": self.heartbeats_sent,
            "server_memory": server,
            // The figure scripts want, at the top level.
            "server_rss_per_session_bytes": self
                .server
                .and_then(|m| m.per_session_bytes(self.opened))
                .map(f64::round),
            "tool_rss_kib": self.tool_rss_kib,
            "tool_cpu": self.tool.json(),
        });
        if let Value::Object(map) = &mut v {
            self.deliveries().json_into(map);
            self.closes.json_into(map, Some(&self.errors));
        }
        v
    }

    /// The multi-line summary printed on stderr.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "idle {} over {}: {} sessions (CONNECT + SUBSCRIBE), heart-beat {}, held {:?}",
            self.url,
            self.transport.as_str(),
            self.sessions,
            if self.heartbeat.is_zero() {
                "off".to_owned()
            } else {
                format!("{:?}", self.heartbeat)
            },
            self.hold
        );
        let _ = writeln!(
            s,
            "  opened      {} in {:.1}s ({:.0}/s) from {}",
            self.opened,
            self.open_time.as_secs_f64(),
            self.opened as f64 / self.open_time.as_secs_f64().max(1e-9),
            self.source_addrs.map_or_else(
                || "the kernel's source address".to_owned(),
                |((first, last), n)| format!("{n} source addresses {first}-{last}")
            )
        );
        if self.failures.total() > 0 {
            let _ = writeln!(
                s,
                "  failed      {} {:?}; first: {}",
                self.failures.total(),
                self.failures.by_kind,
                self.failures.first.as_deref().unwrap_or("-")
            );
        }
        let _ = writeln!(s, "  held        {} alive at the end", self.alive);
        self.deliveries().lines(
            &mut s,
            " (nobody publishes)",
            " MESSAGE frames",
            &self.closes,
        );
        self.errors.line(&mut s);
        if let Some(m) = &self.server {
            let mib = |r: Option<Resident>| {
                r.map_or_else(
                    || "?".to_owned(),
                    |r| format!("{:.1}", r.rss_kib as f64 / 1024.0),
                )
            };
            let _ = writeln!(
                s,
                "  server      pid {}: RSS {} MiB before, {} after opening, {} at the end{}",
                m.pid,
                mib(m.before),
                mib(m.after_open),
                mib(m.end),
                m.per_session_bytes(self.opened)
                    .map_or_else(String::new, |b| format!(" ({:.0} bytes per session)", b))
            );
        }
        if let Some(kib) = self.tool_rss_kib {
            let _ = writeln!(s, "  load tool   RSS {:.1} MiB", kib as f64 / 1024.0);
        }
        self.tool.line(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident(rss_kib: u64) -> Option<Resident> {
        Some(Resident {
            rss_kib,
            peak_kib: Some(rss_kib + 1),
        })
    }

    #[test]
    fn memory_per_session_is_growth_over_opened() {
        let m = ServerMemory {
            pid: 42,
            before: resident(10_000),
            after_open: resident(30_000),
            end: resident(31_000),
        };
        assert_eq!(m.per_session_bytes(1000), Some(20_480.0));
        assert_eq!(m.per_session_bytes(0), None);
        let unknown = ServerMemory { before: None, ..m };
        assert_eq!(unknown.per_session_bytes(1000), None);
    }

    #[test]
    fn idle_json_names_failures_and_memory() {
        let mut failures = Endings::default();
        failures.add("connect-AddrNotAvailable".to_owned(), || "first".to_owned());
        let mut closes = ServerCloses::default();
        closes.add("4500".to_owned(), "4500 send time limit exceeded", None);
        let r = IdleReport {
            url: "ws://127.0.0.1:1/ws/websocket".to_owned(),
            transport: Transport::Websocket,
            sessions: 1001,
            opened: 1000,
            failures,
            open_time: Duration::from_secs(2),
            hold: Duration::from_secs(10),
            heartbeat: Duration::ZERO,
            source_addrs: Some((
                (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 254)),
                253,
            )),
            alive: 999,
            closes,
            messages: 0,
            heartbeats_sent: 0,
            errors: StompErrors::default(),
            server: Some(ServerMemory {
                pid: 42,
                before: resident(10_000),
                after_open: resident(30_000),
                end: resident(31_000),
            }),
            tool_rss_kib: Some(50_000),
            tool: ToolCpu {
                cores: Some(0.01),
                threads: 1,
            },
        };
        let v = r.to_json();
        assert_eq!(v["failed"], 1);
        assert_eq!(v["failures"]["connect-AddrNotAvailable"], 1);
        assert_eq!(v["server_memory"]["bytes_per_session"], 20_480.0);
        assert_eq!(v["server_rss_per_session_bytes"], 20_480.0);
        assert_eq!(v["server_memory"]["peak_kib"], 31_001);
        assert_eq!(v["source_addr_count"], 253);
        assert_eq!(v["closed"], 1);
        assert_eq!(v["close_codes"]["4500"], 1);
        assert_eq!(
            v["server_closes"]["by_reason"]["4500 send time limit exceeded"],
            1
        );
        assert_eq!(
            (v["expected"].as_u64(), v["lost"].as_i64()),
            (Some(0), Some(0))
        );
        assert_eq!(v["opens_per_sec"], 500.0);
        let summary = r.summary();
        assert!(summary.contains("20480 bytes per session"), "{summary}");
        assert!(summary.contains("253 source addresses"), "{summary}");
    }
}
