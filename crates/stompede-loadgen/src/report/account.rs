//! Where the measured window's messages went, reported the same way by every scenario: what the
//! receivers still open at the end were owed and got, what those the server closed were owed
//! and got, what was still in flight when the drain gave up, and why the server closed whom.
//!
//! Nothing here hides a loss behind a smaller expectation: a receiver the server closed moves
//! from one side of the account to the other, with the deliveries it missed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::{signed, StompErrors};
use crate::conn::Closed;

/// The name of a server's close: its code with its reason (`4500 send buffer size limit
/// exceeded`), or the code alone when the reason is empty. A WebSocket close frame, a SockJS
/// `c[code,reason]` and the same close carried under STOMP all read alike.
pub(crate) fn close_reason(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}

/// The deliveries of the measured window, in the same figures for every scenario.
///
/// "Receivers" are what a scenario delivers to: subscribers, room members, the queue's
/// consumers, echoing connections, SockJS sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deliveries {
    /// Owed to receivers still open at the end.
    pub(crate) expected: u64,
    /// Of those, received.
    pub(crate) received: u64,
    /// Owed to receivers the server closed during the run.
    pub(crate) expected_by_closed: u64,
    /// Of those, received before the close.
    pub(crate) received_by_closed: u64,
    /// Whether the drain saw every delivery owed to open receivers arrive before its timeout.
    pub(crate) drained: bool,
}

impl Deliveries {
    /// Accounts one receiver, owed `owed` deliveries, that received `received` of them: on the
    /// open side, or on the closed side if the server closed it.
    pub(crate) fn add_receiver(&mut self, owed: u64, received: u64, closed: bool) {
        if closed {
            self.expected_by_closed += owed;
            self.received_by_closed += received;
        } else {
            self.expected += owed;
            self.received += received;
        }
    }

    /// `expected − received`: owed to open receivers and missing at the end, with no close to
    /// explain it. Negative when the server delivered more (duplicates).
    pub(crate) fn lost(&self) -> i128 {
        i128::from(self.expected) - i128::from(self.received)
    }

    /// Of [`Deliveries::lost`], those the drain was still waiting for when it timed out: the
    /// server may still have held them. Zero when the run drained.
    pub(crate) fn in_flight(&self) -> u64 {
        if self.drained {
            0
        } else {
            u64::try_from(self.lost().max(0)).unwrap_or(u64::MAX)
        }
    }

    /// `expected_by_closed − received_by_closed`: what the server's closes cost.
    pub(crate) fn lost_to_closes(&self) -> i128 {
        i128::from(self.expected_by_closed) - i128::from(self.received_by_closed)
    }

    /// The account's keys, for a report's JSON object.
    pub(crate) fn json_into(&self, map: &mut Map<String, Value>) {
        let fields = [
            ("expected", json!(self.expected)),
            ("received", json!(self.received)),
            ("lost", json!(signed(self.lost()))),
            ("in_flight", json!(self.in_flight())),
            ("expected_by_closed", json!(self.expected_by_closed)),
            ("received_by_closed", json!(self.received_by_closed)),
            ("lost_to_closes", json!(signed(self.lost_to_closes()))),
            ("drained", json!(self.drained)),
        ];
        map.extend(fields.map(|(k, v)| (k.to_owned(), v)));
    }

    /// The summary's account lines: `owed` says what `expected` counts, `rate` how fast the
    /// deliveries came (both may be empty).
    pub(crate) fn lines(&self, s: &mut String, owed: &str, rate: &str, closes: &ServerCloses) {
        // Writing to a String cannot fail.
        let _ = writeln!(s, "  expected    {}{owed}", self.expected);
        let _ = writeln!(s, "  received    {}{rate}", self.received);
        let lost = self.lost();
        let why = match (lost, self.drained) {
            (0, _) => String::new(),
            (..=-1, _) => " (more than expected: duplicates)".to_owned(),
            (_, false) => format!(
                " ({} still in flight when the drain timed out)",
                self.in_flight()
            ),
            (_, true) => " (never delivered)".to_owned(),
        };
        let _ = writeln!(s, "  lost        {lost}{why}");
        closes.line(s);
        if closes.total() > 0 || self.expected_by_closed > 0 {
            let _ = writeln!(
                s,
                "              the closed receivers missed {} of the {} deliveries meant for them",
                self.lost_to_closes(),
                self.expected_by_closed
            );
        }
    }
}

/// Connections the server closed (or that broke) before the run was done, by reason and by
/// close code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServerCloses {
    /// By reason: `4500 send buffer size limit exceeded`, `ERROR "…" then 1002`, `eof`, …
    pub(crate) by_reason: BTreeMap<String, u64>,
    /// By the key a scenario has always used for its `close_codes` (`4500`, `consumer-eof`).
    pub(crate) by_code: BTreeMap<String, u64>,
}

impl ServerCloses {
    /// Counts one close, filed under `code` and `reason`; `error` is the `message` of an
    /// ERROR frame the connection received before it closed, if any.
    pub(crate) fn add(&mut self, code: String, reason: &str, error: Option<&str>) {
        let reason = match error {
            Some(message) => format!("ERROR {message:?} then {reason}"),
            None => reason.to_owned(),
        };
        *self.by_reason.entry(reason).or_insert(0) += 1;
        *self.by_code.entry(code).or_insert(0) += 1;
    }

    /// Counts a STOMP connection the server closed: its close code (after `role`, as in
    /// `consumer-4500`, if given) and reason, and the first ERROR frame it received.
    pub(crate) fn add_stomp(&mut self, role: Option<&str>, closed: &Closed, errors: &StompErrors) {
        let code = match role {
            Some(role) => format!("{role}-{closed}"),
            None => closed.to_string(),
        };
        let error = (errors.count > 0).then(|| errors.first.as_deref().unwrap_or("(no message)"));
        self.add(code, &closed.reason(), error);
    }

    /// All closes.
    pub(crate) fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }

    /// The `server_closes` JSON object: `total` and `by_reason`.
    pub(crate) fn json(&self) -> Value {
        json!({ "total": self.total(), "by_reason": self.by_reason })
    }

    /// `server_closes` into a report's JSON object; for a STOMP scenario (with its ERROR
    /// frames) also `close_codes`, `stomp_errors` and `first_error`.
    pub(crate) fn json_into(&self, map: &mut Map<String, Value>, errors: Option<&StompErrors>) {
        map.insert("server_closes".to_owned(), self.json());
        if let Some(errors) = errors {
            map.insert("close_codes".to_owned(), json!(self.by_code));
            map.insert("stomp_errors".to_owned(), json!(errors.count));
            map.insert("first_error".to_owned(), json!(errors.first));
        }
    }

    /// The summary line, always printed: zero closes is a figure too.
    pub(crate) fn line(&self, s: &mut String) {
        let _ = write!(s, "  closed      {} by the server", self.total());
        for (i, (reason, n)) in self.by_reason.iter().enumerate() {
            let _ = write!(s, "{}{n} × {reason}", if i == 0 { ": " } else { ", " });
        }
        s.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_read_alike_over_every_transport() {
        assert_eq!(
            close_reason(4500, "send buffer size limit exceeded"),
            "4500 send buffer size limit exceeded"
        );
        assert_eq!(close_reason(1000, ""), "1000");
        let mut closes = ServerCloses::default();
        closes.add("4500".to_owned(), "4500 slow", None);
        closes.add("4500".to_owned(), "4500 slow", None);
        closes.add("1002".to_owned(), "1002", Some("frame too large"));
        assert_eq!(closes.total(), 3);
        assert_eq!(closes.by_code["4500"], 2);
        assert_eq!(closes.by_reason["ERROR \"frame too large\" then 1002"], 1);
        let v = closes.json();
        assert_eq!(v["total"], 3);
        assert_eq!(v["by_reason"]["4500 slow"], 2);
        let mut s = String::new();
        closes.line(&mut s);
        assert!(s.contains("3 by the server: "), "{s}");
        assert!(s.contains("2 × 4500 slow"), "{s}");
    }

    #[test]
    fn the_account_says_where_deliveries_went() {
        let mut d = Deliveries {
            expected: 900,
            received: 890,
            expected_by_closed: 100,
            received_by_closed: 40,
            drained: false,
        };
        assert_eq!((d.lost(), d.in_flight(), d.lost_to_closes()), (10, 10, 60));
        let mut map = Map::new();
        d.json_into(&mut map);
        assert_eq!(map["lost"], 10);
        assert_eq!(map["in_flight"], 10);
        assert_eq!(map["lost_to_closes"], 60);
        let mut s = String::new();
        d.lines(&mut s, "", "", &ServerCloses::default());
        assert!(
            s.contains("10 still in flight when the drain timed out"),
            "{s}"
        );
        assert!(s.contains("missed 60 of the 100"), "{s}");
        d.drained = true;
        d.received = 905;
        assert_eq!((d.lost(), d.in_flight()), (-5, 0));
        let mut s = String::new();
        d.lines(&mut s, "", "", &ServerCloses::default());
        assert!(s.contains("duplicates"), "{s}");
    }
}
