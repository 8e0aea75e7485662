//! Message bodies that carry their send time: ASCII digits, then `x` padding. Scenarios that
//! need to know who sent a message and in which order (`queue`, `rooms`) also write a tag,
//! `sender.sequence`, at [`TAG_AT`].

/// Longest a `u64` is in decimal.
const MAX_DIGITS: usize = 20;
/// Where the tag starts: after the longest timestamp and its padding byte, rounded up.
pub(crate) const TAG_AT: usize = 24;
/// Longest tag: a `u32`, a dot, a `u64` and the padding byte that ends it.
const TAG_LEN: usize = 10 + 1 + MAX_DIGITS + 1;
/// Smallest body with room for a timestamp and a tag.
pub(crate) const MIN_TAGGED_SIZE: u32 = (TAG_AT + TAG_LEN) as u32;

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

/// Writes the tag `sender.seq` at [`TAG_AT`], over the padding; `false` (and nothing written)
/// if `body` is shorter than [`MIN_TAGGED_SIZE`].
pub(crate) fn write_tag(body: &mut [u8], sender: u32, seq: u64) -> bool {
    let Some(slot) = body.get_mut(TAG_AT..TAG_AT + TAG_LEN) else {
        return false;
    };
    let mut at = put_decimal(slot, u64::from(sender));
    slot[at] = b'.';
    at += 1;
    at += put_decimal(&mut slot[at..], seq);
    slot[at..].fill(b'x');
    true
}

/// Reads the tag written by [`write_tag`], or `None` if `body` has none.
pub(crate) fn read_tag(body: &[u8]) -> Option<(u32, u64)> {
    let tag = body.get(TAG_AT..)?;
    let (sender, len) = read_decimal(tag)?;
    let rest = tag.get(len..)?.strip_prefix(b".")?;
    let (seq, _) = read_decimal(rest)?;
    Some((u32::try_from(sender).ok()?, seq))
}

/// Writes `n` in decimal at the start of `out` (which must hold 20 bytes); returns its length.
fn put_decimal(out: &mut [u8], n: u64) -> usize {
    let mut digits = [0u8; MAX_DIGITS];
    let mut start = MAX_DIGITS;
    let mut n = n;
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
    out[..digits.len()].copy_from_slice(digits);
    digits.len()
}

/// The decimal number at the start of `text` and its length; `None` without digits or past
/// `u64::MAX`.
fn read_decimal(text: &[u8]) -> Option<(u64, usize)> {
    let mut n: u64 = 0;
    let mut len = 0;
    for &b in text.iter().take(MAX_DIGITS) {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        len += 1;
    }
    (len > 0).then_some((n, len))
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
    fn tags_round_trip_after_the_timestamp() {
        for (sender, seq) in [(0, 0), (7, 12_345), (u32::MAX, u64::MAX)] {
            let mut body = vec![b'x'; MIN_TAGGED_SIZE as usize];
            assert!(write_timestamp(&mut body, u64::MAX));
            assert!(write_tag(&mut body, sender, seq));
            assert_eq!(read_timestamp(&body), Some(u64::MAX));
            assert_eq!(read_tag(&body), Some((sender, seq)));
            assert_eq!(body.last(), Some(&b'x'));
        }
        let mut body = vec![b'x'; 100];
        assert!(write_timestamp(&mut body, 5));
        assert!(write_tag(&mut body, 3, 4));
        assert_eq!(&body[..32], b"5xxxxxxxxxxxxxxxxxxxxxxx3.4xxxxx");
        let mut short = vec![b'x'; MIN_TAGGED_SIZE as usize - 1];
        assert!(!write_tag(&mut short, 1, 1));
        assert!(short.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn hostile_tags_are_absent() {
        let with = |tag: &[u8]| {
            let mut body = vec![b'x'; TAG_AT];
            body.extend_from_slice(tag);
            read_tag(&body)
        };
        assert_eq!(with(b""), None);
        assert_eq!(with(b"12"), None);
        assert_eq!(with(b"12."), None);
        assert_eq!(with(b".5"), None);
        assert_eq!(with(b"12x5"), None);
        assert_eq!(with(b"4294967296.1"), None, "sender past u32");
        assert_eq!(with(b"1.99999999999999999999x"), None, "sequence past u64");
        assert_eq!(with(b"1.2.3"), Some((1, 2)));
        assert_eq!(read_tag(b"short"), None);
    }

    #[test]
    fn foreign_bodies_have_no_timestamp() {
        assert_eq!(read_timestamp(b""), None);
        assert_eq!(read_timestamp(b"hello"), None);
        assert_eq!(read_timestamp(b"99999999999999999999x"), None); // overflows u64
        assert_eq!(read_timestamp(b"12x3"), Some(12));
    }
}
