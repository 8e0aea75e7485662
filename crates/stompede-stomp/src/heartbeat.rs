//! The `heart-beat` header: parsing and negotiation.

use std::time::Duration;

use crate::error::HeartBeatError;

/// One side's `heart-beat` header: `"cx,cy"` in milliseconds, 0 meaning "none".
///
/// `send` is the smallest interval at which this side can send heart-beats
/// (cx); `receive` the interval at which it would like to receive them (cy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartBeat {
    /// Smallest interval at which this side can send (0: cannot send).
    pub send: Duration,
    /// Interval at which this side wants to receive (0: does not want any).
    pub receive: Duration,
}

impl HeartBeat {
    /// Parses a `heart-beat` header value such as `"0,0"` or `"10000,10000"`.
    ///
    /// Whitespace around either number is tolerated.
    ///
    /// # Errors
    ///
    /// [`HeartBeatError::Invalid`] for anything else: a missing or extra comma,
    /// an empty, signed, fractional or overflowing number.
    pub fn parse(s: &str) -> Result<HeartBeat, HeartBeatError> {
        let (send, receive) = s.split_once(',').ok_or(HeartBeatError::Invalid)?;
        Ok(HeartBeat {
            send: parse_millis(send)?,
            receive: parse_millis(receive)?,
        })
    }

    /// The header value, e.g. `"10000,10000"`. Sub-millisecond parts are dropped.
    pub fn to_header(self) -> String {
        format!("{},{}", self.send.as_millis(), self.receive.as_millis())
    }

    /// Negotiates heart-beating from one side's view.
    ///
    /// `ours` is what we offer, `theirs` what the peer sent. Returns how often
    /// we must send and how long we may expect between the peer's beats;
    /// `None` where that direction is disabled. As the spec says, we send every
    /// `max(ours.send, theirs.receive)` if both are non-zero, and the peer sends
    /// every `max(theirs.send, ours.receive)` if both are non-zero. Allowing for
    /// network delay on the receiving side is the caller's business.
    pub fn negotiate(ours: HeartBeat, theirs: HeartBeat) -> (Option<Duration>, Option<Duration>) {
        (
            both_nonzero_max(ours.send, theirs.receive),
            both_nonzero_max(theirs.send, ours.receive),
        )
    }
}

fn both_nonzero_max(a: Duration, b: Duration) -> Option<Duration> {
    (!a.is_zero() && !b.is_zero()).then(|| a.max(b))
}

fn parse_millis(s: &str) -> Result<Duration, HeartBeatError> {
    let s = s.trim();
    // `u64::from_str` would also take a leading '+'; the header grammar is digits only.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeartBeatError::Invalid);
    }
    s.parse()
        .map(Duration::from_millis)
        .map_err(|_| HeartBeatError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(send: u64, receive: u64) -> HeartBeat {
        HeartBeat {
            send: Duration::from_millis(send),
            receive: Duration::from_millis(receive),
        }
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<HeartBeat>)] = &[
            ("0,0", Some(hb(0, 0))),
            ("10000,10000", Some(hb(10_000, 10_000))),
            ("500,0", Some(hb(500, 0))),
            (" 500 , 1000 ", Some(hb(500, 1000))),
            ("\t5,\t6", Some(hb(5, 6))),
            ("18446744073709551615,0", Some(hb(u64::MAX, 0))),
            ("", None),
            ("0", None),
            ("0,", None),
            (",0", None),
            ("0,0,0", None),
            ("-1,0", None),
            ("+1,0", None),
            ("1.5,0", None),
            ("a,b", None),
            ("18446744073709551616,0", None),
            ("1 0,0", None),
        ];
        for &(input, want) in cases {
            assert_eq!(HeartBeat::parse(input).ok(), want, "{input:?}");
        }
    }

    #[test]
    fn to_header_round_trips() {
        for beat in [hb(0, 0), hb(10_000, 10_000), hb(1, 250)] {
            assert_eq!(HeartBeat::parse(&beat.to_header()), Ok(beat));
        }
        assert_eq!(hb(10_000, 0).to_header(), "10000,0");
    }

    #[test]
    fn negotiate_table() {
        let ms = |n| Some(Duration::from_millis(n));
        // (ours, theirs) -> (we send every, peer sends every)
        let cases = [
            (hb(0, 0), hb(0, 0), (None, None)),
            (hb(10_000, 10_000), hb(0, 0), (None, None)),
            (hb(0, 0), hb(10_000, 10_000), (None, None)),
            (
                hb(10_000, 10_000),
                hb(10_000, 10_000),
                (ms(10_000), ms(10_000)),
            ),
            // The slower of the two wins in each direction.
            (
                hb(10_000, 5_000),
                hb(1_000, 20_000),
                (ms(20_000), ms(5_000)),
            ),
            (hb(1_000, 1_000), hb(4_000, 0), (None, ms(4_000))),
            (hb(1_000, 0), hb(0, 3_000), (ms(3_000), None)),
        ];
        for (ours, theirs, want) in cases {
            assert_eq!(
                HeartBeat::negotiate(ours, theirs),
                want,
                "{ours:?} {theirs:?}"
            );
        }
    }
}
