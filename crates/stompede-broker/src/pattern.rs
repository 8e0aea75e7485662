//! Ant-style destination patterns, as Spring's `AntPathMatcher` applies them in its simple broker.
//!
//! Destinations are split into `/`-separated segments. In a pattern:
//! - `*` matches zero or more characters within one segment;
//! - `?` matches exactly one character (never `/`);
//! - `**` as a whole segment matches zero or more segments.
//!
//! Any other character matches itself. `**` inside a longer segment is two `*`.
//!
//! Matching uses the iterative wildcard algorithm that remembers only the last star
//! (at the segment level for `**`, at the character level for `*`), so its cost is bounded by
//! the product of the two lengths: no exponential backtracking on hostile patterns such as
//! `/topic/*****…a`. Both lengths are bounded by [`crate::destination::MAX_DESTINATION_LEN`].

/// Whether `destination` matches the Ant-style `pattern`.
///
/// `/topic/chat.*` matches `/topic/chat.lobby`; `/topic/a/**` matches `/topic/a` and
/// `/topic/a/b/c`; `/topic/a/**/z` matches `/topic/a/z` and `/topic/a/b/c/z`.
pub fn matches(pattern: &str, destination: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == destination;
    }
    // Segment cursors: byte offset where the next segment starts, None once exhausted.
    let mut p = Some(0);
    let mut d = Some(0);
    // The last `**` seen: where the pattern resumes after it, and the destination segment
    // it would swallow next if the current alignment fails.
    let mut star: Option<(Option<usize>, Option<usize>)> = None;
    while let Some(d_at) = d {
        if let Some(p_at) = p {
            let (p_seg, p_next) = segment(pattern, p_at);
            if p_seg == "**" {
                star = Some((p_next, d));
                p = p_next;
                continue;
            }
            let (d_seg, d_next) = segment(destination, d_at);
            if segment_matches(p_seg.as_bytes(), d_seg.as_bytes()) {
                p = p_next;
                d = d_next;
                continue;
            }
        }
        // Mismatch, or pattern exhausted with destination left: let the last `**` take one
        // more segment and retry the rest of the pattern from there.
        let Some((resume, Some(swallow))) = star else {
            return false;
        };
        let (_, after) = segment(destination, swallow);
        star = Some((resume, after));
        p = resume;
        d = after;
    }
    // Destination exhausted: only `**` segments may remain in the pattern.
    while let Some(p_at) = p {
        let (p_seg, p_next) = segment(pattern, p_at);
        if p_seg != "**" {
            return false;
        }
        p = p_next;
    }
    true
}

/// The segment starting at byte `at`, and where the next one starts.
fn segment(s: &str, at: usize) -> (&str, Option<usize>) {
    let rest = s.get(at..).unwrap_or("");
    match rest.find('/') {
        Some(end) => (&rest[..end], Some(at + end + 1)),
        None => (rest, None),
    }
}

/// Matches one segment against a pattern segment of literals, `*` and `?`.
fn segment_matches(pattern: &[u8], segment: &[u8]) -> bool {
    let (mut p, mut s) = (0, 0);
    // After the last `*`: where the pattern resumes, and where the star's match ends.
    let mut star: Option<(usize, usize)> = None;
    while s < segment.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, s));
                continue;
            }
            Some(b'?') => {
                p += 1;
                s += utf8_len(segment[s]);
                continue;
            }
            Some(&c) if c == segment[s] => {
                p += 1;
                s += 1;
                continue;
            }
            _ => {}
        }
        let Some((resume, end)) = star else {
            return false;
        };
        // The star takes one more character (a whole UTF-8 sequence, so `?` stays aligned).
        let end = end + utf8_len(segment[end]);
        star = Some((resume, end));
        p = resume;
        s = end;
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Length of the UTF-8 sequence starting with `lead` (which is a char boundary).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn pattern_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("/topic/a", "/topic/a", true),
            ("/topic/a", "/topic/b", false),
            ("/topic/chat.*", "/topic/chat.lobby", true),
            ("/topic/chat.*", "/topic/chat.", true),
            ("/topic/chat.*", "/topic/chat", false),
            ("/topic/chat.*", "/topic/chat.lobby/x", false),
            ("/topic/*", "/topic/a", true),
            ("/topic/*", "/topic/", true),
            ("/topic/*", "/topic", false),
            ("/topic/*", "/topic/a/b", false),
            ("/topic/*/b", "/topic/a/b", true),
            ("/topic/*/b", "/topic/a/c", false),
            ("/topic/a?", "/topic/ab", true),
            ("/topic/a?", "/topic/a", false),
            ("/topic/a?", "/topic/abc", false),
            ("/topic/a?c", "/topic/a/c", false),
            ("/topic/?", "/topic/é", true),
            ("/topic/?x", "/topic/éx", true),
            ("/topic/*é", "/topic/aaé", true),
            ("/topic/**", "/topic", true),
            ("/topic/**", "/topic/a", true),
            ("/topic/**", "/topic/a/b/c", true),
            ("/topic/**", "/topics", false),
            ("/topic/a/**", "/topic/a", true),
            ("/topic/a/**", "/topic/a/b/c", true),
            ("/topic/a/**", "/topic/b/c", false),
            ("/topic/**/z", "/topic/z", true),
            ("/topic/**/z", "/topic/a/b/z", true),
            ("/topic/**/z", "/topic/a/b/z/y", false),
            ("/topic/**/z/**/y", "/topic/a/z/b/z/c/y", true),
            ("/topic/**/b*/c", "/topic/x/bb/y/bc/c", true),
            ("/**", "/anything/at/all", true),
            ("**", "a/b", true),
            ("/topic/a**b", "/topic/axxb", true),
            ("/topic/a**b", "/topic/ax/xb", false),
            ("/topic/*.*.*", "/topic/a.b.c", true),
            ("/topic/*.*.*", "/topic/a.b", false),
            ("/topic/a*b*c", "/topic/aXbYbZc", true),
            ("/topic/a*b*c", "/topic/aXbYbZ", false),
        ];
        for &(pattern, destination, expected) in cases {
            assert_eq!(
                matches(pattern, destination),
                expected,
                "{pattern} vs {destination}"
            );
        }
    }

    #[test]
    fn hostile_patterns_finish_fast() {
        let started = Instant::now();
        let long_segment = format!("/topic/{}", "a".repeat(1000));
        let stars = format!("/topic/{}b", "*".repeat(1000));
        assert!(!matches(&stars, &long_segment));
        let alternating = format!("/topic/{}b", "a*".repeat(500));
        assert!(!matches(&alternating, &long_segment));
        let many_segments = format!("/topic{}", "/a".repeat(500));
        let double_stars = format!("/topic{}/b", "/**".repeat(250));
        assert!(!matches(&double_stars, &many_segments));
        let mixed = format!("/topic{}/b", "/**/a*".repeat(100));
        assert!(!matches(&mixed, &many_segments));
        let questions = format!("/topic/{}", "*?".repeat(500));
        assert!(matches(&questions, &long_segment));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }
}
