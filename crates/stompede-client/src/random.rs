//! Randomness for SockJS session ids and reconnection jitter.
//!
//! Neither needs to be unpredictable to an attacker (a SockJS session id is not a secret: the
//! server binds the session to the connection that opened it), only to differ between clients
//! and runs. The standard library's randomly keyed SipHash over a counter gives that without
//! another dependency.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A pseudo-random `u64`, different on every call.
pub(crate) fn next_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A pseudo-random number in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    // The top 53 bits fill an f64 mantissa exactly.
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `len` characters from `[a-z0-9]`.
pub(crate) fn alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| {
            // The remainder is below 36, so it indexes the alphabet.
            char::from(ALPHABET[(next_u64() % 36) as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_use_the_alphabet() {
        let a = alphanumeric(16);
        let b = alphanumeric(16);
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn unit_is_in_range() {
        for _ in 0..1000 {
            let x = unit();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
