//! The end-of-run figures of the SockJS scenarios: a human summary for stderr and one JSON line
//! for stdout, like the fanout scenario's.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::Transport;
use crate::report::{latency_json, latency_line, round, signed, Endings, Latency, ToolCpu};

/// Everything a `sockjs-broadcast` run measured. A message belongs to the measured window when
/// its send timestamp does; counts are split between sessions still open at the end ("alive")
/// and those that ended, so that an ended session never hides as a smaller expectation.
#[derive(Debug, Clone)]
pub(crate) struct BroadcastReport {
    pub(crate) url: String,
    pub(crate) transport: Transport,
    /// Sessions opened (session 0 also sends).
    pub(crate) sessions: u64,
    pub(crate) size: u64,
    /// Requested rate; 0 for max mode.
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    /// Messages sent, warm-up included.
    pub(crate) sent: u64,
    /// Messages sent in the measured window.
    pub(crate) sent_measured: u64,
    pub(crate) sessions_alive: u64,
    /// `sent_measured` × `sessions_alive`.
    pub(crate) expected: u64,
    /// Measured messages received by sessions alive at the end.
    pub(crate) delivered: u64,
    /// Measured messages received by sessions that ended during the run.
    pub(crate) delivered_to_ended: u64,
    /// Messages outside the window or without our timestamp.
    pub(crate) unmeasured: u64,
    /// Messages received with an older timestamp than the one before them on the same session.
    pub(crate) out_of_order: u64,
    /// Measured deliveries per second, from the window's start to the last one.
    pub(crate) delivered_per_sec: f64,
    /// `h` frames received, all sessions.
    pub(crate) heartbeats: u64,
    /// xhr_streaming responses read, all sessions (each ends at the server's byte limit).
    pub(crate) streaming_responses: u64,
    /// Sessions (or the sender) ended by the server or by an error.
    pub(crate) endings: Endings,
    /// Whether every expected delivery arrived before the drain timeout.
    pub(crate) drained: bool,
    pub(crate) latency: Option<Latency>,
    pub(crate) tool: ToolCpu,
}

impl BroadcastReport {
    /// Expected minus delivered for sessions alive at the end; negative means duplicates.
    pub(crate) fn loss(&self) -> i128 {
        i128::from(self.expected) - i128::from(self.delivered)
    }

    /// Measured messages per second sent.
    pub(crate) fn sent_per_sec(&self) -> f64 {
        self.sent_measured as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "scenario": "sockjs-broadcast",
            "url": self.url,
            "transport": self.transport.as_str(),
            "sessions": self.sessions,
            "sender_receives": true,
            "size": self.size,
            "rate": self.rate,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "sent": self.sent,
            "sent_measured": self.sent_measured,
            "sent_per_sec": round(self.sent_per_sec()),
            "sessions_alive": self.sessions_alive,
            "expected": self.expected,
            "delivered": self.delivered,
            "loss": signed(self.loss()),
            "delivered_to_ended": self.delivered_to_ended,
            "unmeasured": self.unmeasured,
            "out_of_order": self.out_of_order,
            "delivered_per_sec": round(self.delivered_per_sec),
            "heartbeats": self.heartbeats,
            "streaming_responses": self.streaming_responses,
            "ended": self.endings.total(),
            "endings": self.endings.by_kind,
            "first_error": self.endings.first,
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
        let _ = writeln!(
            s,
            "sockjs-broadcast {} over {}: {} sessions (session 0 sends and receives), {}-byte \
             messages, {rate}, {:?} measured after {:?} warm-up",
            self.url,
            self.transport.as_str(),
            self.sessions,
            self.size,
            self.duration,
            self.warmup
        );
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
            "  expected    {} ({} × {} sessions alive)",
            self.expected, self.sent_measured, self.sessions_alive
        );
        let _ = writeln!(
            s,
            "  delivered   {} ({:.0} deliveries/s){}",
            self.delivered,
            self.delivered_per_sec,
            if self.drained {
                ""
            } else {
                ", not all before the drain timeout"
            }
        );
        let _ = writeln!(
            s,
            "  loss        {} (alive sessions); {} delivered to ended sessions; {} out of order",
            self.loss(),
            self.delivered_to_ended,
            self.out_of_order
        );
        if self.streaming_responses > 0 {
            let _ = writeln!(
                s,
                "  streaming   {} xhr_streaming responses",
                self.streaming_responses
            );
        }
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

/// Everything a `sockjs-echo` run measured.
#[derive(Debug, Clone)]
pub(crate) struct EchoReport {
    pub(crate) url: String,
    pub(crate) transport: Transport,
    pub(crate) sessions: u64,
    pub(crate) size: u64,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    /// Round trips begun in the measured window and completed.
    pub(crate) round_trips: u64,
    /// Round trips begun, warm-up included.
    pub(crate) sent: u64,
    /// Echoes that differed from what was sent.
    pub(crate) mismatches: u64,
    pub(crate) sessions_alive: u64,
    pub(crate) heartbeats: u64,
    pub(crate) streaming_responses: u64,
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
            "scenario": "sockjs-echo",
            "url": self.url,
            "transport": self.transport.as_str(),
            "sessions": self.sessions,
            "size": self.size,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "sent": self.sent,
            "round_trips": self.round_trips,
            "round_trips_per_sec": round(self.round_trips_per_sec()),
            "mismatches": self.mismatches,
            "sessions_alive": self.sessions_alive,
            "heartbeats": self.heartbeats,
            "streaming_responses": self.streaming_responses,
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
            "sockjs-echo {} over {}: {} sessions, one message in flight each, {}-byte messages, \
             {:?} measured after {:?} warm-up",
            self.url,
            self.transport.as_str(),
            self.sessions,
            self.size,
            self.duration,
            self.warmup
        );
        let _ = writeln!(
            s,
            "  round trips {} in window ({:.0}/s); {} mismatched; {}/{} sessions alive",
            self.round_trips,
            self.round_trips_per_sec(),
            self.mismatches,
            self.sessions_alive,
            self.sessions
        );
        if self.streaming_responses > 0 {
            let _ = writeln!(
                s,
                "  streaming   {} xhr_streaming responses",
                self.streaming_responses
            );
        }
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
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn broadcast_json_names_loss_and_endings() {
        let r = BroadcastReport {
            url: "http://127.0.0.1:1/broadcast".to_owned(),
            transport: Transport::XhrStreaming,
            sessions: 3,
            size: 100,
            rate: 0.0,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            sent: 150,
            sent_measured: 100,
            sessions_alive: 2,
            expected: 200,
            delivered: 199,
            delivered_to_ended: 10,
            unmeasured: 0,
            out_of_order: 0,
            delivered_per_sec: 104.5,
            heartbeats: 0,
            streaming_responses: 7,
            endings: Endings {
                by_kind: BTreeMap::from([("c1002".to_owned(), 1)]),
                first: Some("session 2: closed".to_owned()),
            },
            drained: false,
            latency: None,
            tool: ToolCpu {
                cores: Some(0.99),
                threads: 1,
            },
        };
        let v = r.to_json();
        assert_eq!(v["loss"], 1);
        assert_eq!(v["transport"], "xhr-streaming");
        assert_eq!(v["endings"]["c1002"], 1);
        assert!(v["latency_ms"].is_null());
        assert!(!v.to_string().contains('\n'));
        assert!(r.summary().contains("not all before the drain timeout"));
        assert_eq!(v["tool_cpu"]["saturated"], true);
        assert!(r.summary().contains("lower bounds"));
    }
}
