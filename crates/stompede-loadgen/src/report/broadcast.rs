//! The `sockjs-broadcast` report.

use serde_json::{json, Value};

use super::{round, signed, Deliveries, Endings, Run, Sending, ServerCloses, SockjsCounts};

/// Everything a `sockjs-broadcast` run measured. A message belongs to the measured window when
/// its send timestamp does, and is owed to every session; sessions that ended are accounted
/// apart (see [`Deliveries`]), so that an ended session never hides as a smaller expectation.
#[derive(Debug, Clone)]
pub(crate) struct BroadcastReport {
    pub(crate) run: Run,
    /// Sessions opened (session 0 also sends).
    pub(crate) sessions: u64,
    /// Messages sent, and the rate asked for.
    pub(crate) sending: Sending,
    pub(crate) sessions_alive: u64,
    /// `expected` is `sending.measured × sessions_alive`.
    pub(crate) deliveries: Deliveries,
    /// Messages outside the window or without our timestamp.
    pub(crate) unmeasured: u64,
    /// Messages received with an older timestamp than the one before them on the same session.
    pub(crate) out_of_order: u64,
    /// Measured deliveries per second, from the window's start to the last one.
    pub(crate) delivered_per_sec: f64,
    pub(crate) counts: SockjsCounts,
    /// Sessions (or the sender) ended by the server or by an error.
    pub(crate) endings: Endings,
    pub(crate) closes: ServerCloses,
}

impl BroadcastReport {
    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        let d = &self.deliveries;
        let mut map = self.run.json("sockjs-broadcast");
        map.extend([
            ("sessions".to_owned(), json!(self.sessions)),
            ("sender_receives".to_owned(), json!(true)),
            ("rate".to_owned(), json!(self.sending.wanted)),
            ("sessions_alive".to_owned(), json!(self.sessions_alive)),
            ("delivered".to_owned(), json!(d.received)),
            ("loss".to_owned(), json!(signed(d.lost()))),
            ("delivered_to_ended".to_owned(), json!(d.received_by_closed)),
            ("unmeasured".to_owned(), json!(self.unmeasured)),
            ("out_of_order".to_owned(), json!(self.out_of_order)),
            (
                "delivered_per_sec".to_owned(),
                json!(round(self.delivered_per_sec)),
            ),
            ("heartbeats".to_owned(), json!(self.counts.heartbeats)),
            (
                "streaming_responses".to_owned(),
                json!(self.counts.streaming_responses),
            ),
        ]);
        self.sending.json_into(&mut map, "sent", &self.run);
        self.endings.json_into(&mut map);
        d.json_into(&mut map);
        self.closes.json_into(&mut map, None);
        Value::Object(map)
    }

    /// The multi-line summary printed on stderr.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let what = format!("{} sessions (session 0 sends and receives)", self.sessions);
        let pace = super::pace(self.sending.wanted, "");
        self.run.head(&mut s, "sockjs-broadcast", &what, &pace);
        self.sending.line(&mut s, "sent", &self.run, "");
        self.deliveries.lines(
            &mut s,
            &format!(
                " ({} in window × {} sessions open at the end)",
                self.sending.measured, self.sessions_alive
            ),
            &format!(
                " ({:.0} deliveries/s; {} out of order)",
                self.delivered_per_sec, self.out_of_order
            ),
            &self.closes,
        );
        self.counts.line(&mut s);
        self.endings.line(&mut s);
        self.run.tail(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn broadcast_json_names_loss_and_endings() {
        let mut closes = ServerCloses::default();
        closes.add("c1002".to_owned(), "1002 protocol", None);
        let r = BroadcastReport {
            run: Run::example(
                "http://127.0.0.1:1/broadcast",
                Some("xhr-streaming"),
                Some(0.99),
            ),
            sessions: 3,
            sending: Sending {
                total: 150,
                measured: 100,
                wanted: 0.0,
            },
            sessions_alive: 2,
            deliveries: Deliveries {
                expected: 200,
                received: 199,
                expected_by_closed: 100,
                received_by_closed: 10,
                drained: false,
            },
            unmeasured: 0,
            out_of_order: 0,
            delivered_per_sec: 104.5,
            counts: SockjsCounts {
                heartbeats: 0,
                streaming_responses: 7,
            },
            endings: Endings {
                by_kind: BTreeMap::from([("c1002".to_owned(), 1)]),
                first: Some("session 2: closed".to_owned()),
            },
            closes,
        };
        let v = r.to_json();
        assert_eq!(v["loss"], 1);
        assert_eq!(v["in_flight"], 1);
        assert_eq!(v["delivered_to_ended"], 10);
        assert_eq!(v["lost_to_closes"], 90);
        assert_eq!(v["transport"], "xhr-streaming");
        assert_eq!(v["endings"]["c1002"], 1);
        assert_eq!(v["server_closes"]["by_reason"]["1002 protocol"], 1);
        assert!(v["latency_ms"].is_null());
        assert!(!v.to_string().contains('\n'));
        let summary = r.summary();
        assert!(summary.contains("still in flight when the drain timed out"));
        assert_eq!(v["tool_cpu"]["saturated"], true);
        assert!(summary.contains("lower bounds"));
    }
}
