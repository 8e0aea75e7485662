//! STOMP protocol versions and their negotiation.

/// A STOMP protocol version. Ordered: `V1_0 < V1_1 < V1_2`.
///
/// The version decides how header names and values are escaped on the wire
/// (see [`crate::encode`] and [`crate::Decoder::set_version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping.
    V1_0,
    /// STOMP 1.1: escapes `\n`, `\c` (colon) and `\\`.
    V1_1,
    /// STOMP 1.2: 1.1 plus `\r`.
    V1_2,
}

impl Version {
    /// The spelling used in `accept-version` and `version` headers, e.g. `"1.2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses `"1.0"`, `"1.1"` or `"1.2"` exactly; anything else is `None`.
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }

    /// Highest version in the comma-separated `accept-version` header that is also in `supported`.
    ///
    /// A missing header (`None`) means the client speaks 1.0 only, as the spec says.
    /// Spaces around entries are tolerated and unknown entries such as `"2.0"` are
    /// ignored. Returns `None` when there is no common version; the server then
    /// answers with an ERROR frame and closes.
    pub fn negotiate(accept_version: Option<&str>, supported: &[Version]) -> Option<Version> {
        match accept_version {
            None => supported.contains(&Version::V1_0).then_some(Version::V1_0),
            Some(list) => list
                .split(',')
                .filter_map(|entry| Version::parse(entry.trim()))
                .filter(|v| supported.contains(v))
                .max(),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Version::{self, V1_0, V1_1, V1_2};

    #[test]
    fn parse_accepts_exact_spellings_only() {
        let cases: &[(&str, Option<Version>)] = &[
            ("1.0", Some(V1_0)),
            ("1.1", Some(V1_1)),
            ("1.2", Some(V1_2)),
            ("1.3", None),
            (" 1.2", None),
            ("1", None),
            ("", None),
        ];
        for &(input, want) in cases {
            assert_eq!(Version::parse(input), want, "{input:?}");
            if let Some(v) = want {
                assert_eq!(v.as_str(), input);
            }
        }
    }

    #[test]
    fn negotiation_picks_highest_common_version() {
        let all = &[V1_0, V1_1, V1_2][..];
        let cases: &[(Option<&str>, &[Version], Option<Version>)] = &[
            // No header: the client is a 1.0 client.
            (None, all, Some(V1_0)),
            (None, &[V1_1, V1_2], None),
            (Some("1.0,1.1,1.2"), all, Some(V1_2)),
            (Some("1.2,1.1,1.0"), all, Some(V1_2)),
            (Some("1.1,1.2"), &[V1_0, V1_1], Some(V1_1)),
            (Some("1.0"), &[V1_1, V1_2], None),
            (Some(" 1.1 , 1.2 "), all, Some(V1_2)),
            (Some("1.1,2.0"), all, Some(V1_1)),
            (Some("2.0"), all, None),
            (Some(""), all, None),
            (Some("1.2"), &[], None),
            (Some("1.1,,1.0"), all, Some(V1_1)),
        ];
        for &(header, supported, want) in cases {
            assert_eq!(
                Version::negotiate(header, supported),
                want,
                "{header:?} {supported:?}"
            );
        }
    }
}
