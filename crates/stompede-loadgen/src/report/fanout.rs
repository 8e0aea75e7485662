//! The `fanout` report.

use serde_json::{json, Value};

use super::{round, signed, Deliveries, Run, Sending, ServerCloses, StompErrors};

/// Everything a `fanout` run measured.
///
/// The measured window is the `duration` after the warm-up. A message belongs to it when its
/// send timestamp does, so publishers and subscribers classify each message the same way.
/// Each measured SEND is owed to every subscriber; subscribers the server closed are accounted
/// apart (see [`Deliveries`]), so that a slow-consumer close never hides as a smaller
/// expectation.
#[derive(Debug, Clone)]
pub(crate) struct FanoutReport {
    pub(crate) run: Run,
    /// Subscriber connections that subscribed.
    pub(crate) subscribers: u64,
    /// Publisher connections.
    pub(crate) publishers: u64,
    /// SENDs, and the rate asked for (all publishers).
    pub(crate) sending: Sending,
    /// Subscribers still connected at the end.
    pub(crate) subscribers_alive: u64,
    /// Measured deliveries: `expected` is `sending.measured × subscribers_alive`.
    pub(crate) deliveries: Deliveries,
    /// Messages without a timestamp (not ours) or otherwise outside the window, all subscribers.
    pub(crate) unmeasured_deliveries: u64,
    /// Measured deliveries, all subscribers, per second from the window's start to the last one.
    pub(crate) delivered_per_sec: f64,
    /// Connections the server closed, subscribers and publishers alike.
    pub(crate) closes: ServerCloses,
    /// STOMP ERROR frames received.
    pub(crate) errors: StompErrors,
}

impl FanoutReport {
    /// Subscribers closed during the run.
    pub(crate) fn subscribers_closed(&self) -> u64 {
        self.subscribers - self.subscribers_alive
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        let d = &self.deliveries;
        let mut map = self.run.json("fanout");
        map.extend([
            ("subscribers".to_owned(), json!(self.subscribers)),
            ("publishers".to_owned(), json!(self.publishers)),
            ("rate".to_owned(), json!(self.sending.wanted)),
            (
                "subscribers_alive".to_owned(),
                json!(self.subscribers_alive),
            ),
            ("delivered".to_owned(), json!(d.received)),
            ("loss".to_owned(), json!(signed(d.lost()))),
            (
                "subscribers_closed".to_owned(),
                json!(self.subscribers_closed()),
            ),
            (
                "delivered_to_closed".to_owned(),
                json!(d.received_by_closed),
            ),
            ("loss_closed".to_owned(), json!(signed(d.lost_to_closes()))),
            (
                "unmeasured_deliveries".to_owned(),
                json!(self.unmeasured_deliveries),
            ),
            (
                "delivered_per_sec".to_owned(),
                json!(round(self.delivered_per_sec)),
            ),
            ("connections_closed".to_owned(), json!(self.closes.total())),
        ]);
        self.sending.json_into(&mut map, "sent", &self.run);
        d.json_into(&mut map);
        self.closes.json_into(&mut map, Some(&self.errors));
        Value::Object(map)
    }

    /// The multi-line summary printed on stderr.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let what = format!(
            "{} subscribers, {} publishers",
            self.subscribers, self.publishers
        );
        self.run.head(
            &mut s,
            "fanout",
            &what,
            &super::pace(self.sending.wanted, ""),
        );
        self.sending.line(&mut s, "sent", &self.run, "");
        self.deliveries.lines(
            &mut s,
            &format!(
                " ({} in window × {} subscribers open at the end)",
                self.sending.measured, self.subscribers_alive
            ),
            &format!(
                " ({:.0} deliveries/s, all subscribers)",
                self.delivered_per_sec
            ),
            &self.closes,
        );
        self.errors.line(&mut s);
        self.run.tail(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn report() -> FanoutReport {
        let mut closes = ServerCloses::default();
        closes.add(
            "4500".to_owned(),
            "4500 send buffer size limit exceeded",
            None,
        );
        FanoutReport {
            run: Run::example(
                "ws://127.0.0.1:1/ws/websocket",
                Some("websocket"),
                Some(0.5),
            ),
            subscribers: 10,
            publishers: 1,
            sending: Sending {
                total: 150,
                measured: 100,
                wanted: 0.0,
            },
            subscribers_alive: 9,
            deliveries: Deliveries {
                expected: 900,
                received: 899,
                expected_by_closed: 100,
                received_by_closed: 40,
                drained: false,
            },
            unmeasured_deliveries: 500,
            delivered_per_sec: 469.5,
            closes,
            errors: StompErrors::default(),
        }
    }

    #[test]
    fn summary_flags_a_rate_below_the_request() {
        let mut r = report();
        assert!(!r.summary().contains("below the requested"));
        r.sending.wanted = 100.0;
        assert!(r.summary().contains("below the requested 100/s"));
    }

    #[test]
    fn json_line_names_every_figure() {
        let v = report().to_json();
        for (key, want) in [
            ("loss", 1),
            ("lost", 1),
            ("in_flight", 1),
            ("loss_closed", 60),
            ("lost_to_closes", 60),
            ("subscribers_closed", 1),
            ("connections_closed", 1),
            ("expected", 900),
            ("delivered", 899),
            ("received", 899),
            ("sent_measured", 100),
        ] {
            assert_eq!(v[key], want, "{key}: {v}");
        }
        assert_eq!(v["close_codes"]["4500"], 1);
        assert_eq!(
            v["server_closes"]["by_reason"]["4500 send buffer size limit exceeded"],
            1
        );
        assert_eq!(v["sent_per_sec"], 50.0);
        assert!(v["latency_ms"].is_null());
        assert_eq!(v["transport"], "websocket");
        assert_eq!(v["tool_cpu"]["saturated"], false);
        assert!(!v.to_string().contains('\n'));
        let summary = report().summary();
        assert!(summary.contains("1 × 4500 send buffer"), "{summary}");
        assert!(summary.contains("missed 60 of the 100"), "{summary}");
    }
}
