//! Message bodies that carry their send time: ASCII digits, then `x` padding.

/// Longest a `u64` is in decimal.
const MAX_DIGITS: usize = 20;

/// Writes `nanos` as decimal digits at the start of `body` and pads the rest with `x`.
///
/// Returns `false` (leaving `body` untouched) if `body` is too short for the digits and one
/// padding byte; the padding byte is what tells the reader where the number ends.
pub(crate) fn write_timestamp(body: &mut [u8], nanos: u64) -> bool {
    let mut digits = [0u8; MAX_DIGITS];
    let mut start = MAX_DIGITS;
    let mut n = nanos;
    loop {
        start -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &digits[start..];
    if body.len() <= digits.len() {
        return false;
    }
    body[..digits.len()].copy_from_slice(digits);
    body[digits.len()..].fill(b'x');
    true
}

/// Reads the send time written by [`write_timestamp`], or `None` if `body` does not start with
/// digits (a message that some other client sent).
pub(crate) fn read_timestamp(body: &[u8]) -> Option<u64> {
    let mut nanos: u64 = 0;
    let mut len = 0;
    for &b in body.iter().take(MAX_DIGITS) {
        if !b.is_ascii_digit() {
            break;
        }
        nanos = nanos.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        len += 1;
    }
    (len > 0).then_some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_and_pads() {
        for nanos in [0, 7, 1_234_567_890, u64::MAX] {
            let mut body = [0u8; 24];
            assert!(write_timestamp(&mut body, nanos));
            assert_eq!(read_timestamp(&body), Some(nanos));
            assert_eq!(body[23], b'x');
        }
        let mut body = *b"000000000000000";
        assert!(write_timestamp(&mut body, 42));
        assert_eq!(&body, b"42xxxxxxxxxxxxx");
    }

    #[test]
    fn short_body_is_left_alone() {
        let mut body = *b"abc";
        assert!(!write_timestamp(&mut body, 1234));
        assert_eq!(&body, b"abc");
        assert!(!write_timestamp(&mut body, 123));
    }

    #[test]
    fn foreign_bodies_have_no_timestamp() {
        assert_eq!(read_timestamp(b""), None);
        assert_eq!(read_timestamp(b"hello"), None);
        assert_eq!(read_timestamp(b"99999999999999999999x"), None); // overflows u64
        assert_eq!(read_timestamp(b"12x3"), Some(12));
    }
}
