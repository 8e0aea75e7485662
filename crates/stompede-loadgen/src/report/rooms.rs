//! The `rooms` report.

use serde_json::{json, Value};

use super::{round, signed, Deliveries, Run, Sending, ServerCloses, StompErrors};

/// Everything a `rooms` run measured. Every message is owed to every user of its room, the
/// sender included. Users the server closed are accounted apart, with what they missed (see
/// [`Deliveries`]), so that a slow-consumer close never hides as a smaller expectation.
#[derive(Debug, Clone)]
pub(crate) struct RoomsReport {
    pub(crate) run: Run,
    pub(crate) rooms: u64,
    pub(crate) users_per_room: u64,
    /// Requested messages per second per user; 0 for max mode.
    pub(crate) rate_per_user: f64,
    /// SENDs, all users (`wanted` is `rate_per_user` × users).
    pub(crate) sending: Sending,
    /// Users still connected at the end.
    pub(crate) users_alive: u64,
    /// `expected`: Σ over rooms of measured messages × users of the room still connected;
    /// `expected_by_closed`: the same for the users the server closed.
    pub(crate) deliveries: Deliveries,
    /// Messages outside the window or without our timestamp.
    pub(crate) unmeasured: u64,
    /// Measured deliveries per second, from the window's start to the last one.
    pub(crate) delivered_per_sec: f64,
    /// Users the server closed.
    pub(crate) closes: ServerCloses,
    pub(crate) errors: StompErrors,
}

impl RoomsReport {
    /// Users in all rooms.
    pub(crate) fn users(&self) -> u64 {
        self.rooms * self.users_per_room
    }

    /// The single JSON object printed on stdout.
    pub(crate) fn to_json(&self) -> Value {
        let d = &self.deliveries;
        let mut map = self.run.json("rooms");
        map.extend([
            ("rooms".to_owned(), json!(self.rooms)),
            ("users_per_room".to_owned(), json!(self.users_per_room)),
            ("users".to_owned(), json!(self.users())),
            ("sender_receives".to_owned(), json!(true)),
            ("rate_per_user".to_owned(), json!(self.rate_per_user)),
            ("users_alive".to_owned(), json!(self.users_alive)),
            ("delivered".to_owned(), json!(d.received)),
            ("loss".to_owned(), json!(signed(d.lost()))),
            (
                "users_closed".to_owned(),
                json!(self.users() - self.users_alive),
            ),
            (
                "delivered_to_closed".to_owned(),
                json!(d.received_by_closed),
            ),
            ("loss_closed".to_owned(), json!(signed(d.lost_to_closes()))),
            ("unmeasured".to_owned(), json!(self.unmeasured)),
            (
                "delivered_per_sec".to_owned(),
                json!(round(self.delivered_per_sec)),
            ),
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
            "{} rooms × {} users (each message to every user of its room, sender included)",
            self.rooms, self.users_per_room
        );
        let pace = super::pace(self.rate_per_user, " per user");
        self.run.head(&mut s, "rooms", &what, &pace);
        self.sending.line(&mut s, "sent", &self.run, "");
        self.deliveries.lines(
            &mut s,
            &format!(" (to the {} users open at the end)", self.users_alive),
            &format!(" ({:.0} deliveries/s)", self.delivered_per_sec),
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

    #[test]
    fn closed_users_are_counted_apart() {
        let mut closes = ServerCloses::default();
        closes.add("4500".to_owned(), "4500", None);
        let r = RoomsReport {
            run: Run::example("http://127.0.0.1:1/ws", Some("sockjs-xhr-polling"), None),
            rooms: 2,
            users_per_room: 3,
            rate_per_user: 10.0,
            sending: Sending {
                total: 150,
                measured: 100,
                wanted: 60.0,
            },
            users_alive: 5,
            deliveries: Deliveries {
                expected: 250,
                received: 250,
                expected_by_closed: 50,
                received_by_closed: 20,
                drained: true,
            },
            unmeasured: 3,
            delivered_per_sec: 135.0,
            closes,
            errors: StompErrors::default(),
        };
        let v = r.to_json();
        assert_eq!(v["loss"], 0);
        assert_eq!(v["lost"], 0);
        assert_eq!(v["users_closed"], 1);
        assert_eq!(v["loss_closed"], 30);
        assert_eq!(v["lost_to_closes"], 30);
        assert_eq!(v["expected_by_closed"], 50);
        assert_eq!(v["server_closes"]["total"], 1);
        assert_eq!(v["sender_receives"], true);
        assert_eq!(v["transport"], "sockjs-xhr-polling");
        let summary = r.summary();
        assert!(summary.contains("below the requested 60/s"), "{summary}");
        assert!(summary.contains("missed 30 of the 50"), "{summary}");
    }
}
