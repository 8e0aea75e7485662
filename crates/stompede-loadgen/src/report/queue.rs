//! The `queue` report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::{latency_json, latency_line, round, signed, Latency, StompErrors, ToolCpu};
use crate::conn::Transport;

/// Everything a `queue` run measured. A message is consumed when some consumer receives it for
/// the first time; later deliveries of it are duplicates, counted apart.
#[derive(Debug, Clone)]
pub(crate) struct QueueReport {
    pub(crate) url: String,
    pub(crate) transport: Transport,
    pub(crate) destination: String,
    pub(crate) producers: u64,
    pub(crate) consumers: u64,
    /// The prefetch header's value (0: not sent).
    pub(crate) prefetch: u32,
    pub(crate) size: u64,
    /// Requested messages per second, all producers; 0 for max mode.
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    /// SENDs written, warm-up included.
    pub(crate) produced: u64,
    /// SENDs in the measured window.
    pub(crate) produced_measured: u64,
    /// First deliveries, warm-up included.
    pub(crate) consumed: u64,
    /// First deliveries of measured messages.
    pub(crate) consumed_measured: u64,
    /// `consumed_measured` per second, from the window's start to the last one.
    pub(crate) consumed_per_sec: f64,
    /// Deliveries of messages some consumer had already received.
    pub(crate) duplicates: u64,
    /// Deliveries flagged `redelivered:true` by the server.
    pub(crate) redelivered: u64,
    /// Deliveries without one of our producers' tags.
    pub(crate) foreign: u64,
    /// MESSAGE frames without an `ack` header.
    pub(crate) unackable: u64,
    /// ACK frames written.
    pub(crate) acks: u64,
    /// Fewest and most first deliveries one consumer got (balance across consumers).
    pub(crate) per_consumer_min: u64,
    pub(crate) per_consumer_max: u64,
    /// Consumers the server closed.
    pub(crate) consumers_closed: u64,
    /// Producers whose DISCONNECT receipt did not come back.
    pub(crate) unconfirmed_producers: u64,
    /// Connections the server closed, by role and code (`consumer-4500`, `producer-eof`).
    pub(crate) close_codes: BTreeMap<String, u64>,
    pub(crate) errors: StompErrors,
    /// Whether every measured message was consumed before the drain timeout.
    pub(crate) drained: bool,
    pub(crate) latency: Option<Latency>,
    pub(crate) tool: ToolCpu,
}

impl QueueReport {
    /// Measured messages produced and never consumed.
    pub(crate) fn loss(&self) -> i128 {
        i128::from(self.produced_measured) - i128::from(self.consumed_measured)
    }

    /// Measured SENDs per second.
    pub(crate) fn produced_per_sec(&self) -> f64 {
        self.produced_measured as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "scenario": "queue",
            "url": self.url,
            "transport": self.transport.as_str(),
            "destination": self.destination,
            "producers": self.producers,
            "consumers": self.consumers,
            "ack": "client-individual",
            "prefetch": self.prefetch,
            "size": self.size,
            "rate": self.rate,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "produced": self.produced,
            "produced_measured": self.produced_measured,
            "produced_per_sec": round(self.produced_per_sec()),
            "consumed": self.consumed,
            "consumed_measured": self.consumed_measured,
            "consumed_per_sec": round(self.consumed_per_sec),
            "loss": signed(self.loss()),
            "duplicates": self.duplicates,
            "redelivered": self.redelivered,
            "foreign": self.foreign,
            "unackable": self.unackable,
            "acks": self.acks,
            "per_consumer_min": self.per_consumer_min,
            "per_consumer_max": self.per_consumer_max,
            "consumers_closed": self.consumers_closed,
            "unconfirmed_producers": self.unconfirmed_producers,
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
        let _ = writeln!(
            s,
            "queue {} {} over {}: {} producers → {} consumers (client-individual, prefetch {}), \
             {}-byte bodies, {rate}, {:?} measured after {:?} warm-up",
            self.url,
            self.destination,
            self.transport.as_str(),
            self.producers,
            self.consumers,
            self.prefetch,
            self.size,
            self.duration,
            self.warmup
        );
        let short = if self.rate > 0.0 && self.produced_per_sec() < 0.95 * self.rate {
            format!(", below the requested {}/s", self.rate)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  produced    {} ({} in window, {:.0}/s{short}){}",
            self.produced,
            self.produced_measured,
            self.produced_per_sec(),
            if self.unconfirmed_producers > 0 {
                format!("; {} producers unconfirmed", self.unconfirmed_producers)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "  consumed    {} in window ({:.0}/s; per consumer {}–{}){}",
            self.consumed_measured,
            self.consumed_per_sec,
            self.per_consumer_min,
            self.per_consumer_max,
            if self.drained {
                ""
            } else {
                "; drain timed out"
            }
        );
        let _ = writeln!(
            s,
            "  loss        {} (produced − consumed); {} duplicates, {} flagged redelivered, \
             {} foreign, {} without ack header",
            self.loss(),
            self.duplicates,
            self.redelivered,
            self.foreign,
            self.unackable
        );
        if !self.close_codes.is_empty() {
            let _ = writeln!(
                s,
                "  closed      {:?} ({} consumers)",
                self.close_codes, self.consumers_closed
            );
        }
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
    fn loss_is_produced_minus_consumed_and_duplicates_apart() {
        let r = QueueReport {
            url: "ws://127.0.0.1:1/ws/websocket".to_owned(),
            transport: Transport::Websocket,
            destination: "/queue/work".to_owned(),
            producers: 2,
            consumers: 3,
            prefetch: 10,
            size: 100,
            rate: 0.0,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            produced: 150,
            produced_measured: 100,
            consumed: 148,
            consumed_measured: 98,
            consumed_per_sec: 49.0,
            duplicates: 4,
            redelivered: 4,
            foreign: 0,
            unackable: 0,
            acks: 152,
            per_consumer_min: 40,
            per_consumer_max: 60,
            consumers_closed: 1,
            unconfirmed_producers: 0,
            close_codes: BTreeMap::from([("consumer-4500".to_owned(), 1)]),
            errors: StompErrors::default(),
            drained: false,
            latency: None,
            tool: ToolCpu {
                cores: Some(1.0),
                threads: 1,
            },
        };
        let v = r.to_json();
        assert_eq!(v["loss"], 2);
        assert_eq!(v["duplicates"], 4);
        assert_eq!(v["close_codes"]["consumer-4500"], 1);
        assert_eq!(v["tool_cpu"]["saturated"], true);
        let summary = r.summary();
        assert!(summary.contains("4 duplicates"), "{summary}");
        assert!(summary.contains("drain timed out"), "{summary}");
    }
}
