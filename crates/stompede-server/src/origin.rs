//! Which browser origins may open a session (Spring's `setAllowedOrigins`).

use axum::http::HeaderValue;

/// Allowed origins, from `endpoint.allowed_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPolicy {
    /// The `Origin` header must name the host the request was sent to.
    SameOrigin,
    /// Any origin.
    Any,
    /// Exactly these origins (lowercase, without default ports).
    List(Vec<String>),
}

impl OriginPolicy {
    /// The policy for a configured list: empty → same origin, containing `*` → any.
    pub fn from_config(origins: &[String]) -> OriginPolicy {
        if origins.is_empty() {
            OriginPolicy::SameOrigin
        } else if origins.iter().any(|o| o == "*") {
            OriginPolicy::Any
        } else {
            OriginPolicy::List(
                origins
                    .iter()
                    .filter_map(|o| normalize(o.trim_end_matches('/')))
                    .collect(),
            )
        }
    }

    /// Whether a request with these `Origin` and `Host` headers may proceed. Requests without
    /// `Origin` are not from a browser page and are allowed.
    pub fn allows(&self, origin: Option<&HeaderValue>, host: Option<&HeaderValue>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if *self == OriginPolicy::Any {
            return true;
        }
        let Some(origin) = origin.to_str().ok().and_then(normalize) else {
            return false; // "null", garbage: only `*` lets those through
        };
        match self {
            OriginPolicy::Any => true,
            OriginPolicy::List(list) => list.contains(&origin),
            OriginPolicy::SameOrigin => {
                let Some(host) = host.and_then(|h| h.to_str().ok()) else {
                    return false;
                };
                let authority = origin.split_once("://").map_or("", |(_, a)| a);
                let scheme = origin.split_once("://").map_or("", |(s, _)| s);
                strip_default_port(scheme, &host.to_ascii_lowercase()) == authority
            }
        }
    }
}

/// `Scheme://Host:port` → `scheme://host[:port]` with the scheme's default port removed; `None`
/// when it is not an http(s) origin.
fn normalize(origin: &str) -> Option<String> {
    let lower = origin.to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://")?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() || authority.contains('/') {
        return None;
    }
    Some(format!(
        "{scheme}://{}",
        strip_default_port(scheme, authority)
    ))
}

fn strip_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &OriginPolicy, origin: Option<&str>, host: Option<&str>) -> bool {
        let origin = origin.map(|o| HeaderValue::from_str(o).unwrap());
        let host = host.map(|h| HeaderValue::from_str(h).unwrap());
        policy.allows(origin.as_ref(), host.as_ref())
    }

    #[test]
    fn same_origin_by_default() {
        let p = OriginPolicy::from_config(&[]);
        let cases = [
            (None, Some("a.com"), true),
            (Some("http://a.com"), Some("a.com"), true),
            (Some("http://A.com:80"), Some("a.com"), true),
            (Some("http://a.com"), Some("a.com:80"), true),
            (Some("https://a.com"), Some("a.com:443"), true),
            (Some("http://localhost:8080"), Some("localhost:8080"), true),
            (Some("http://localhost:8081"), Some("localhost:8080"), false),
            (Some("http://evil.com"), Some("a.com"), false),
            (Some("http://a.com"), None, false),
            (Some("null"), Some("a.com"), false),
            (Some("file://"), Some("a.com"), false),
        ];
        for (origin, host, allowed) in cases {
            assert_eq!(check(&p, origin, host), allowed, "{origin:?} {host:?}");
        }
    }

    #[test]
    fn lists_and_wildcard() {
        let p = OriginPolicy::from_config(&["https://chat.example.com/".into()]);
        assert!(check(&p, Some("https://chat.example.com"), Some("x")));
        assert!(check(&p, Some("https://CHAT.example.com:443"), Some("x")));
        assert!(!check(&p, Some("http://chat.example.com"), Some("x")));
        assert!(!check(&p, Some("https://example.com"), Some("example.com")));
        let any = OriginPolicy::from_config(&["*".into()]);
        assert!(check(&any, Some("null"), None));
        assert!(check(&any, Some("https://whatever"), Some("x")));
    }
}
