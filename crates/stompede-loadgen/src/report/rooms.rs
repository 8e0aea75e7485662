//! The `rooms` report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::{latency_json, latency_line, round, signed, Latency, StompErrors, ToolCpu};
use crate::conn::Transport;

/// Everything a `rooms` run measured. Every message is expected by every user of its room, the
/// sender included. Users the server closed are counted apart, with what they missed, so that
/// a slow-consumer close never hides as a smaller expectation.
#[derive(Debug, Clone)]
pub(crate) struct RoomsReport {
    pub(crate) url: String,
    pub(crate) transport: Transport,
    pub(crate) rooms: u64,
    pub(crate) users_per_room: u64,
    /// Requested messages per second per user; 0 for max mode.
    pub(crate) rate_per_user: f64,
    pub(crate) size: u64,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    /// SENDs written, warm-up included.
    pub(crate) sent: u64,
    /// SENDs in the measured window.
    pub(crate) sent_measured: u64,
    /// Users still connected at the end.
    pub(crate) users_alive: u64,
    /// Σ over rooms of measured messages × users of the room still connected.
    pub(crate) expected: u64,
    /// Measured messages received by users still connected.
    pub(crate) delivered: u64,
    /// Σ over rooms of measured messages × users of the room the server closed.
    pub(crate) expected_by_closed: u64,
    /// Measured messages those closed users received before their close.
    pub(crate) delivered_to_closed: u64,
    /// Messages outside the window or without our timestamp.
    pub(crate) unmeasured: u64,
    /// Measured deliveries per second, from the window's start to the last one.
    pub(crate) delivered_per_sec: f64,
    /// Users the server closed, by close code.
    pub(crate) close_codes: BTreeMap<String, u64>,
    pub(crate) errors: StompErrors,
    /// Whether every expected delivery arrived before the drain timeout.
    pub(crate) drained: bool,
    pub(crate) latency: Option<Latency>,
    pub(crate) tool: ToolCpu,
}

impl RoomsReport {
    /// Users in all rooms.
    pub(crate) fn users(&self) -> u64 {
        self.rooms * self.users_per_room
    }

    /// Expected minus delivered for users still connected; negative means duplicates.
    pub(crate) fn loss(&self) -> i128 {
        i128::from(self.expected) - i128::from(self.delivered)
    }

    /// What closed users missed.
    pub(crate) fn loss_closed(&self) -> i128 {
        i128::from(self.expected_by_closed) - i128::from(self.delivered_to_closed)
    }

    /// Measured SENDs per second, all users.
    pub(crate) fn sent_per_sec(&self) -> f64 {
        self.sent_measured as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "scenario": "rooms",
            "url": self.url,
            "transport": self.transport.as_str(),
            "rooms": self.rooms,
            "users_per_room": self.users_per_room,
            "users": self.users(),
            "sender_receives": true,
            "rate_per_user": self.rate_per_user,
            "size": self.size,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "sent": self.sent,
            "sent_measured": self.sent_measured,
            "sent_per_sec": round(self.sent_per_sec()),
            "users_alive": self.users_alive,
            "expected": self.expected,
            "delivered": self.delivered,
            "loss": signed(self.loss()),
            "users_closed": self.users() - self.users_alive,
            "expected_by_closed": self.expected_by_closed,
            "delivered_to_closed": self.delivered_to_closed,
            "loss_closed": signed(self.loss_closed()),
            "unmeasured": self.unmeasured,
            "delivered_per_sec": round(self.delivered_per_sec),
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
        let rate = if self.rate_per_user > 0.0 {
            format!("{} msgs/s per user", self.rate_per_user)
        } else {
            "max rate".to_owned()
        };
        let _ = writeln!(
            s,
            "rooms {} over {}: {} rooms × {} users (each message to every user of its room, \
             sender included), {}-byte bodies, {rate}, {:?} measured after {:?} warm-up",
            self.url,
            self.transport.as_str(),
            self.rooms,
            self.users_per_room,
            self.size,
            self.duration,
            self.warmup
        );
        let wanted = self.rate_per_user * self.users() as f64;
        let short = if self.rate_per_user > 0.0 && self.sent_per_sec() < 0.95 * wanted {
            format!(", below the requested {wanted}/s")
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
            "  expected    {} ({} users alive)",
            self.expected, self.users_alive
        );
        let _ = writeln!(
            s,
            "  delivered   {} ({:.0} deliveries/s){}",
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
            "  closed      {} users by the server {:?}, missing {} of the {} messages meant for them",
            self.users() - self.users_alive,
            self.close_codes,
            self.loss_closed(),
            self.expected_by_closed
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

    #[test]
    fn closed_users_are_counted_apart() {
        let r = RoomsReport {
            url: "ws://127.0.0.1:1/ws/websocket".to_owned(),
            transport: Transport::SockjsXhrPolling,
            rooms: 2,
            users_per_room: 3,
            rate_per_user: 10.0,
            size: 100,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            sent: 150,
            sent_measured: 100,
            users_alive: 5,
            expected: 250,
            delivered: 250,
            expected_by_closed: 50,
            delivered_to_closed: 20,
            unmeasured: 3,
            delivered_per_sec: 135.0,
            close_codes: BTreeMap::from([("4500".to_owned(), 1)]),
            errors: StompErrors::default(),
            drained: true,
            latency: None,
            tool: ToolCpu {
                cores: None,
                threads: 1,
            },
        };
        let v = r.to_json();
        assert_eq!(v["loss"], 0);
        assert_eq!(v["users_closed"], 1);
        assert_eq!(v["loss_closed"], 30);
        assert_eq!(v["sender_receives"], true);
        assert_eq!(v["transport"], "sockjs-xhr-polling");
        let summary = r.summary();
        assert!(summary.contains("below the requested 60/s"), "{summary}");
        assert!(summary.contains("missing 30 of the 50"), "{summary}");
    }
}
