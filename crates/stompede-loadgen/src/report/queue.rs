//! The `queue` report.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::{round, signed, Deliveries, Run, Sending, ServerCloses, StompErrors};

/// Everything a `queue` run measured. A message is consumed when some consumer receives it for
/// the first time; later deliveries of it are duplicates, counted apart. Each measured message
/// is owed once to the queue, whichever consumer takes it: a consumer the server closes hands
/// its unacknowledged messages back to the queue, so the account has nothing owed to closed
/// receivers, and what no consumer took is lost (in flight, if the drain timed out).
#[derive(Debug, Clone)]
pub(crate) struct QueueReport {
    pub(crate) run: Run,
    pub(crate) destination: String,
    pub(crate) producers: u64,
    pub(crate) consumers: u64,
    /// The prefetch header's value (0: not sent).
    pub(crate) prefetch: u32,
    /// SENDs, and the rate asked for (all producers).
    pub(crate) producing: Sending,
    /// First deliveries, warm-up included.
    pub(crate) consumed: u64,
    /// `expected`: measured messages produced; `received`: their first deliveries.
    pub(crate) deliveries: Deliveries,
    /// `received` per second, from the window's start to the last one.
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
    pub(crate) closes: ServerCloses,
    pub(crate) errors: StompErrors,
}

impl QueueReport {
    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        let d = &self.deliveries;
        let mut map = self.run.json("queue");
        map.extend([
            ("destination".to_owned(), json!(self.destination)),
            ("producers".to_owned(), json!(self.producers)),
            ("consumers".to_owned(), json!(self.consumers)),
            ("ack".to_owned(), json!("client-individual")),
            ("prefetch".to_owned(), json!(self.prefetch)),
            ("rate".to_owned(), json!(self.producing.wanted)),
            ("consumed".to_owned(), json!(self.consumed)),
            ("consumed_measured".to_owned(), json!(d.received)),
            (
                "consumed_per_sec".to_owned(),
                json!(round(self.consumed_per_sec)),
            ),
            ("loss".to_owned(), json!(signed(d.lost()))),
            ("duplicates".to_owned(), json!(self.duplicates)),
            ("redelivered".to_owned(), json!(self.redelivered)),
            ("foreign".to_owned(), json!(self.foreign)),
            ("unackable".to_owned(), json!(self.unackable)),
            ("acks".to_owned(), json!(self.acks)),
            ("per_consumer_min".to_owned(), json!(self.per_consumer_min)),
            ("per_consumer_max".to_owned(), json!(self.per_consumer_max)),
            ("consumers_closed".to_owned(), json!(self.consumers_closed)),
            (
                "unconfirmed_producers".to_owned(),
                json!(self.unconfirmed_producers),
            ),
        ]);
        self.producing.json_into(&mut map, "produced", &self.run);
        d.json_into(&mut map);
        self.closes.json_into(&mut map, Some(&self.errors));
        Value::Object(map)
    }

    /// The multi-line summary printed on stderr.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let what = format!(
            "{} {} producers → {} consumers (client-individual, prefetch {})",
            self.destination, self.producers, self.consumers, self.prefetch
        );
        let pace = super::pace(self.producing.wanted, "");
        self.run.head(&mut s, "queue", &what, &pace);
        let unconfirmed = if self.unconfirmed_producers > 0 {
            format!("; {} producers unconfirmed", self.unconfirmed_producers)
        } else {
            String::new()
        };
        self.producing
            .line(&mut s, "produced", &self.run, &unconfirmed);
        self.deliveries.lines(
            &mut s,
            " (measured messages produced, each owed once to the queue)",
            &format!(
                " first deliveries ({:.0}/s; per consumer {}–{}; {} consumers closed)",
                self.consumed_per_sec,
                self.per_consumer_min,
                self.per_consumer_max,
                self.consumers_closed
            ),
            &self.closes,
        );
        let _ = writeln!(
            s,
            "  also        {} duplicates, {} flagged redelivered, {} foreign, {} without ack header",
            self.duplicates, self.redelivered, self.foreign, self.unackable
        );
        self.errors.line(&mut s);
        self.run.tail(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn loss_is_produced_minus_consumed_and_duplicates_apart() {
        let mut closes = ServerCloses::default();
        closes.add("consumer-4500".to_owned(), "4500", None);
        let r = QueueReport {
            run: Run::example(
                "ws://127.0.0.1:1/ws/websocket",
                Some("websocket"),
                Some(1.0),
            ),
            destination: "/queue/work".to_owned(),
            producers: 2,
            consumers: 3,
            prefetch: 10,
            producing: Sending {
                total: 150,
                measured: 100,
                wanted: 0.0,
            },
            consumed: 148,
            deliveries: Deliveries {
                expected: 100,
                received: 98,
                drained: false,
                ..Deliveries::default()
            },
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
            closes,
            errors: StompErrors::default(),
        };
        let v = r.to_json();
        assert_eq!(v["loss"], 2);
        assert_eq!(v["lost"], 2);
        assert_eq!(v["in_flight"], 2);
        assert_eq!(v["produced_measured"], 100);
        assert_eq!(v["consumed_measured"], 98);
        assert_eq!(v["duplicates"], 4);
        assert_eq!(v["close_codes"]["consumer-4500"], 1);
        assert_eq!(v["server_closes"]["by_reason"]["4500"], 1);
        assert_eq!(v["tool_cpu"]["saturated"], true);
        let summary = r.summary();
        assert!(summary.contains("4 duplicates"), "{summary}");
        assert!(summary.contains("drain timed out"), "{summary}");
    }
}
