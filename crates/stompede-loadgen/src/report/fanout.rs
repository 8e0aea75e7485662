//! The `fanout` report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::{latency_json, latency_line, round, signed, Latency, StompErrors, ToolCpu};
use crate::conn::Transport;

/// Everything a `fanout` run measured.
///
/// The measured window is the `duration` after the warm-up. A message belongs to it when its
/// send timestamp does, so publishers and subscribers classify each message the same way.
/// Counts are split between subscribers still connected at the end ("alive") and those the
/// server closed, so that a slow-consumer close never hides as a smaller expectation.
#[derive(Debug, Clone)]
pub(crate) struct FanoutReport {
    /// Target URL.
    pub(crate) url: String,
    /// How connections reach it.
    pub(crate) transport: Transport,
    /// Subscriber connections that subscribed.
    pub(crate) subscribers: u64,
    /// Publisher connections.
    pub(crate) publishers: u64,
    /// Body size in bytes.
    pub(crate) size: u64,
    /// Requested rate (messages/s, all publishers); 0 for as fast as possible.
    pub(crate) rate: f64,
    /// Length of the measured window.
    pub(crate) duration: Duration,
    /// Warm-up before it.
    pub(crate) warmup: Duration,
    /// SENDs written, warm-up included.
    pub(crate) sent: u64,
    /// SENDs in the measured window.
    pub(crate) sent_measured: u64,
    /// Subscribers still connected at the end.
    pub(crate) subscribers_alive: u64,
    /// `sent_measured` × `subscribers_alive`.
    pub(crate) expected: u64,
    /// Measured messages received by subscribers still connected at the end.
    pub(crate) delivered: u64,
    /// Measured messages received by subscribers closed during the run.
    pub(crate) delivered_to_closed: u64,
    /// Messages without a timestamp (not ours) or otherwise outside the window, all subscribers.
    pub(crate) unmeasured_deliveries: u64,
    /// Measured deliveries, all subscribers, per second from the window's start to the last one.
    pub(crate) delivered_per_sec: f64,
    /// Connections the server closed during the run, by close code (`eof` when the TCP
    /// connection ended without a close frame), subscribers and publishers alike.
    pub(crate) close_codes: BTreeMap<String, u64>,
    /// STOMP ERROR frames received.
    pub(crate) errors: StompErrors,
    /// Whether every expected delivery arrived before the drain timeout.
    pub(crate) drained: bool,
    /// Latency of measured deliveries (all subscribers).
    pub(crate) latency: Option<Latency>,
    /// The tool's own CPU use in the window.
    pub(crate) tool: ToolCpu,
}

impl FanoutReport {
    /// `expected − delivered` for subscribers still connected: messages lost without any
    /// close to explain them. Negative if the server delivered duplicates.
    pub(crate) fn loss(&self) -> i128 {
        i128::from(self.expected) - i128::from(self.delivered)
    }

    /// Subscribers closed during the run.
    pub(crate) fn subscribers_closed(&self) -> u64 {
        self.subscribers - self.subscribers_alive
    }

    /// Measured messages that closed subscribers did not receive.
    pub(crate) fn loss_closed(&self) -> i128 {
        i128::from(self.sent_measured) * i128::from(self.subscribers_closed())
            - i128::from(self.delivered_to_closed)
    }

    /// Measured SENDs per second.
    pub(crate) fn sent_per_sec(&self) -> f64 {
        self.sent_measured as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// Connections closed by the server, all codes.
    pub(crate) fn connections_closed(&self) -> u64 {
        self.close_codes.values().sum()
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "scenario": "fanout",
            "url": self.url,
            "transport": self.transport.as_str(),
            "subscribers": self.subscribers,
            "publishers": self.publishers,
            "size": self.size,
            "rate": self.rate,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "sent": self.sent,
            "sent_measured": self.sent_measured,
            "sent_per_sec": round(self.sent_per_sec()),
            "subscribers_alive": self.subscribers_alive,
            "expected": self.expected,
            "delivered": self.delivered,
            "loss": signed(self.loss()),
            "subscribers_closed": self.subscribers_closed(),
            "delivered_to_closed": self.delivered_to_closed,
            "loss_closed": signed(self.loss_closed()),
            "unmeasured_deliveries": self.unmeasured_deliveries,
            "delivered_per_sec": round(self.delivered_per_sec),
            "connections_closed": self.connections_closed(),
            "close_codes": self.close_codes,
            "stomp_errors": self.errors.count,
            "first_error": self.errors.first,
            "drained": self.drained,
            "latency_ms": latency_json(self.latency.as_ref()),
            "tool_cpu": self.tool.json(),
        })
    }

    /// The multi-line summary printed on stderr.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let rate = if self.rate > 0.0 {
            format!("{} msgs/s", self.rate)
        } else {
            "max rate".to_owned()
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "fanout {} over {}: {} subscribers, {} publishers, {}-byte bodies, {rate}, {:?} \
             measured after {:?} warm-up",
            self.url,
            self.transport.as_str(),
            self.subscribers,
            self.publishers,
            self.size,
            self.duration,
            self.warmup
        );
        // Below the requested rate: the receipt window held publishers back because the server
        // confirmed SENDs too slowly.
        let short = if self.rate > 0.0 && self.sent_per_sec() < 0.95 * self.rate {
            format!(", below the requested {}/s", self.rate)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  sent        {} ({} in window, {:.0}/s{short})",
            self.sent,
            self.sent_measured,
            self.sent_per_sec()
        );
        let _ = writeln!(
            s,
            "  expected    {} ({} × {} subscribers alive)",
            self.expected, self.sent_measured, self.subscribers_alive
        );
        let _ = writeln!(
            s,
            "  delivered   {} ({:.0} deliveries/s, all subscribers){}",
            self.delivered,
            self.delivered_per_sec,
            if self.drained {
                ""
            } else {
                "; drain timed out"
            }
        );
        let _ = writeln!(s, "  loss        {}", self.loss());
        let _ = writeln!(
            s,
            "  closed      {} connections by the server {:?}; {} subscribers closed, missing {} messages",
            self.connections_closed(),
            self.close_codes,
            self.subscribers_closed(),
            self.loss_closed()
        );
        self.errors.line(&mut s);
        latency_line(&mut s, self.latency.as_ref());
        self.tool.line(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> FanoutReport {
        FanoutReport {
            url: "ws://127.0.0.1:1/ws/websocket".to_owned(),
            transport: Transport::Websocket,
            subscribers: 10,
            publishers: 1,
            size: 100,
            rate: 0.0,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            sent: 150,
            sent_measured: 100,
            subscribers_alive: 9,
            expected: 900,
            delivered: 899,
            delivered_to_closed: 40,
            unmeasured_deliveries: 500,
            delivered_per_sec: 469.5,
            close_codes: BTreeMap::from([("4500".to_owned(), 1)]),
            errors: StompErrors::default(),
            drained: false,
            latency: None,
            tool: ToolCpu {
                cores: Some(0.5),
                threads: 1,
            },
        }
    }

    #[test]
    fn losses_are_split_between_alive_and_closed_subscribers() {
        let r = report();
        assert_eq!(r.loss(), 1);
        assert_eq!(r.subscribers_closed(), 1);
        assert_eq!(r.loss_closed(), 60);
        assert_eq!(r.sent_per_sec(), 50.0);
    }

    #[test]
    fn summary_flags_a_rate_below_the_request() {
        let mut r = report();
        assert!(!r.summary().contains("below the requested"));
        r.rate = 100.0;
        assert!(r.summary().contains("below the requested 100/s"));
    }

    #[test]
    fn json_line_names_every_figure() {
        let v = report().to_json();
        assert_eq!(v["loss"], 1);
        assert_eq!(v["loss_closed"], 60);
        assert_eq!(v["close_codes"]["4500"], 1);
        assert_eq!(v["connections_closed"], 1);
        assert!(v["latency_ms"].is_null());
        assert_eq!(v["transport"], "websocket");
        assert_eq!(v["tool_cpu"]["saturated"], false);
        assert!(!v.to_string().contains('\n'));
    }
}
