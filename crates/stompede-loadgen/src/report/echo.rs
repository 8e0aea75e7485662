//! The report of the echo scenarios: `echo` (raw WebSocket round trips) and `sockjs-echo`.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::{round, Deliveries, Endings, Run, ServerCloses};

/// What a SockJS session counts beside its messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SockjsCounts {
    /// `h` frames received, all sessions.
    pub(crate) heartbeats: u64,
    /// xhr_streaming responses read, all sessions (each ends at the server's byte limit).
    pub(crate) streaming_responses: u64,
}

impl SockjsCounts {
    /// The summary line, if any response was streamed.
    pub(crate) fn line(&self, s: &mut String) {
        if self.streaming_responses > 0 {
            let _ = writeln!(
                s,
                "  streaming   {} xhr_streaming responses",
                self.streaming_responses
            );
        }
    }
}

/// What one echoing connection (or SockJS session) saw.
#[derive(Debug, Default)]
pub(crate) struct EchoTally {
    /// Messages sent in the measured window.
    pub(crate) sent_measured: u64,
    /// Of those, echoes received (equal or not).
    pub(crate) echoed_measured: u64,
    /// Echoes that differed from what was sent.
    pub(crate) mismatches: u64,
    /// How it ended before the run was done, if it did.
    pub(crate) ended: Option<EchoEnd>,
}

/// How an echoing connection ended early.
#[derive(Debug)]
pub(crate) enum EchoEnd {
    /// No echo came back before the drain timeout: that round trip is still in flight.
    Stalled,
    /// The server closed the connection, or it broke.
    Closed {
        /// Its kind, as `endings` counts it (`1001`, `c4500`, `eof`).
        key: String,
        /// Its reason, as `server_closes` counts it (`4500 send buffer size limit exceeded`).
        reason: String,
        /// In words, for `first_error`.
        detail: String,
    },
}

/// The tallies of all connections of an echo run.
#[derive(Debug, Clone, Default)]
pub(crate) struct EchoTotals {
    /// Connections still open at the end.
    pub(crate) alive: u64,
    pub(crate) mismatches: u64,
    /// Echoes owed for the window's messages.
    pub(crate) deliveries: Deliveries,
    /// Connections that ended early, by kind (the server's closes, and stalls).
    pub(crate) endings: Endings,
    pub(crate) closes: ServerCloses,
}

impl EchoTotals {
    /// No connection yet; drained until one stalls.
    pub(crate) fn new() -> EchoTotals {
        EchoTotals {
            deliveries: Deliveries {
                drained: true,
                ..Deliveries::default()
            },
            ..EchoTotals::default()
        }
    }

    /// Adds the tally of connection `name` (`connection 3`, `session 3`).
    pub(crate) fn add(&mut self, name: &str, tally: EchoTally) {
        self.mismatches += tally.mismatches;
        let closed = matches!(tally.ended, Some(EchoEnd::Closed { .. }));
        self.deliveries
            .add_receiver(tally.sent_measured, tally.echoed_measured, closed);
        match tally.ended {
            Some(EchoEnd::Closed {
                key,
                reason,
                detail,
            }) => {
                self.closes.add(key.clone(), &reason, None);
                self.endings.add(key, || format!("{name}: {detail}"));
            }
            Some(EchoEnd::Stalled) => {
                self.deliveries.drained = false;
                self.endings.add("stalled".to_owned(), || {
                    format!("{name}: no echo before the drain timeout")
                });
            }
            None => self.alive += 1,
        }
    }
}

/// Everything an echo run measured. Each message sent in the measured window is owed one echo;
/// a connection the server closed owes the round trip it had in flight to the closed side of
/// the account, and one still waiting at the drain timeout leaves it in flight.
#[derive(Debug, Clone)]
pub(crate) struct EchoReport {
    /// `echo` or `sockjs-echo`.
    pub(crate) scenario: &'static str,
    pub(crate) run: Run,
    /// What one echoing peer is, `connections` or `sessions`: the JSON keys are `{noun}` and
    /// `{noun}_alive`.
    pub(crate) noun: &'static str,
    /// Connections (or sessions) opened.
    pub(crate) count: u64,
    /// Round trips begun, warm-up included.
    pub(crate) sent: u64,
    /// Round trips begun in the measured window and completed with an equal echo.
    pub(crate) round_trips: u64,
    /// What the connections saw: echoes owed and received (equal or not), closes, stalls.
    pub(crate) totals: EchoTotals,
    /// SockJS sessions only.
    pub(crate) sockjs: Option<SockjsCounts>,
}

impl EchoReport {
    /// Measured round trips per second.
    pub(crate) fn round_trips_per_sec(&self) -> f64 {
        self.run.per_sec(self.round_trips)
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        let mut map = self.run.json(self.scenario);
        map.extend([
            (self.noun.to_owned(), json!(self.count)),
            (format!("{}_alive", self.noun), json!(self.totals.alive)),
            ("sent".to_owned(), json!(self.sent)),
            ("round_trips".to_owned(), json!(self.round_trips)),
            (
                "round_trips_per_sec".to_owned(),
                json!(round(self.round_trips_per_sec())),
            ),
            ("mismatches".to_owned(), json!(self.totals.mismatches)),
        ]);
        if let Some(counts) = &self.sockjs {
            map.insert("heartbeats".to_owned(), json!(counts.heartbeats));
            map.insert(
                "streaming_responses".to_owned(),
                json!(counts.streaming_responses),
            );
        }
        let totals = &self.totals;
        totals.endings.json_into(&mut map);
        totals.deliveries.json_into(&mut map);
        totals.closes.json_into(&mut map, None);
        Value::Object(map)
    }

    /// The multi-line summary printed on stderr.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let what = format!("{} {}, one message in flight each", self.count, self.noun);
        self.run
            .head(&mut s, self.scenario, &what, "as fast as echoed");
        let _ = writeln!(
            s,
            "  round trips {} in window ({:.0}/s); {} mismatched; {}/{} {} alive",
            self.round_trips,
            self.round_trips_per_sec(),
            self.totals.mismatches,
            self.totals.alive,
            self.count,
            self.noun
        );
        let totals = &self.totals;
        totals.deliveries.lines(
            &mut s,
            " echoes of the window's messages",
            "",
            &totals.closes,
        );
        if let Some(counts) = &self.sockjs {
            counts.line(&mut s);
        }
        totals.endings.line(&mut s);
        self.run.tail(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn echo_json_names_round_trips_endings_and_closes() {
        let mut totals = EchoTotals::new();
        let tally = |sent, echoed, ended| EchoTally {
            sent_measured: sent,
            echoed_measured: echoed,
            mismatches: 0,
            ended,
        };
        totals.add("connection 0", tally(500, 500, None));
        totals.add("connection 1", tally(500, 500, None));
        totals.add("connection 2", tally(300, 299, Some(EchoEnd::Stalled)));
        let closed = EchoEnd::Closed {
            key: "1001".to_owned(),
            reason: "1001 going away".to_owned(),
            detail: "closed by the server".to_owned(),
        };
        totals.add("connection 3", tally(5, 4, Some(closed)));
        let r = EchoReport {
            scenario: "echo",
            run: Run::example("ws://127.0.0.1:1/echo", None, Some(0.2)),
            noun: "connections",
            count: 4,
            sent: 1600,
            round_trips: 1000,
            totals,
            sockjs: None,
        };
        let v = r.to_json();
        assert_eq!(v["round_trips_per_sec"], 500.0);
        assert_eq!(v["connections_alive"], 2);
        assert_eq!(v["endings"]["1001"], 1);
        assert_eq!(v["endings"]["stalled"], 1);
        assert_eq!(v["ended"], 2);
        assert_eq!(
            v["first_error"],
            "connection 2: no echo before the drain timeout"
        );
        assert_eq!(v["expected"], 1300);
        assert_eq!(v["in_flight"], 1);
        assert_eq!(v["drained"], false);
        assert_eq!(v["lost_to_closes"], 1);
        assert_eq!(v["server_closes"]["total"], 1);
        assert_eq!(v["server_closes"]["by_reason"]["1001 going away"], 1);
        assert!(v.get("heartbeats").is_none());
        assert!(v.get("transport").is_none());
        assert!(r.summary().contains("2/4 connections alive"));
    }
}
