//! Destinations: where a SEND or SUBSCRIBE points, parsed once when the frame arrives.

use std::fmt;
use std::sync::Arc;

use crate::error::DestinationError;

/// Longest destination accepted by [`Destination::parse`], in bytes.
pub const MAX_DESTINATION_LEN: usize = 1024;

/// Destination prefixes: which destinations go to application handlers and which to the broker.
///
/// A prefix matches at a `/` boundary only: `/topic` matches `/topic/x` and `/topic`, never
/// `/topics/x`. A trailing `/` in a configured prefix is ignored, so `/topic/` behaves as `/topic`.
/// When several prefixes match, the longest wins.
#[derive(Debug, Clone)]
pub struct Prefixes {
    /// Prefixes of application destinations, routed to handlers. Default: `["/app"]`.
    pub app: Vec<String>,
    /// Prefixes of topics: every subscriber gets each message. Default: `["/topic"]`.
    pub topic: Vec<String>,
    /// Prefixes of queues: each message goes to one subscriber. Default: `["/queue"]`.
    pub queue: Vec<String>,
}

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes {
            app: vec!["/app".to_owned()],
            topic: vec!["/topic".to_owned()],
            queue: vec!["/queue".to_owned()],
        }
    }
}

/// A destination name, validated by [`Destination::parse`]. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(Arc<str>);

impl Name {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name contains a wildcard (`*` or `?`).
    pub(crate) fn has_wildcards(&self) -> bool {
        self.0.contains(['*', '?'])
    }

    pub(crate) fn shared(&self) -> &Arc<str> {
        &self.0
    }
}

/// Builds a name without validation: for brokers that receive names from upstream.
/// Client input goes through [`Destination::parse`] instead.
impl From<&str> for Name {
    fn from(name: &str) -> Self {
        Name(Arc::from(name))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a SEND or SUBSCRIBE points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Every subscriber gets each message. The full name, e.g. `/topic/chat.lobby`; in a
    /// subscription it may be a pattern (see [`crate::pattern`]).
    Topic(Name),
    /// Exactly one subscriber gets each message. The full name, e.g. `/queue/jobs`.
    Queue(Name),
    /// Handled by the application, never by the broker. The path after the prefix:
    /// `/chat/message` for `/app/chat/message`.
    App(Name),
}

impl Destination {
    /// Parses a raw `destination` header against the configured prefixes.
    ///
    /// # Errors
    /// [`DestinationError::Empty`], [`DestinationError::TooLong`] past
    /// [`MAX_DESTINATION_LEN`] bytes, [`DestinationError::InvalidCharacter`] for control
    /// characters, [`DestinationError::UnknownPrefix`] when no configured prefix matches.
    pub fn parse(raw: &str, prefixes: &Prefixes) -> Result<Destination, DestinationError> {
        if raw.is_empty() {
            return Err(DestinationError::Empty);
        }
        if raw.len() > MAX_DESTINATION_LEN {
            return Err(DestinationError::TooLong {
                limit: MAX_DESTINATION_LEN,
            });
        }
        if raw.chars().any(char::is_control) {
            return Err(DestinationError::InvalidCharacter);
        }
        let app = longest_prefix(raw, &prefixes.app);
        let topic = longest_prefix(raw, &prefixes.topic);
        let queue = longest_prefix(raw, &prefixes.queue);
        // Longest wins; on a tie the broker kinds come first, then topic over queue.
        let best = [(topic, Kind::Topic), (queue, Kind::Queue), (app, Kind::App)]
            .into_iter()
            .filter_map(|(len, kind)| len.map(|len| (len, kind)))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        match best {
            Some((_, Kind::Topic)) => Ok(Destination::Topic(Name::from(raw))),
            Some((_, Kind::Queue)) => Ok(Destination::Queue(Name::from(raw))),
            Some((len, Kind::App)) => Ok(Destination::App(Name::from(&raw[len..]))),
            None => Err(DestinationError::UnknownPrefix(raw.to_owned())),
        }
    }

    /// Topic and queue: the full name. App: the path after the prefix.
    pub fn as_str(&self) -> &str {
        match self {
            Destination::Topic(name) | Destination::Queue(name) | Destination::App(name) => {
                name.as_str()
            }
        }
    }

    /// Whether this is a topic pattern (contains `*` or `?`). Always false for queues and
    /// application destinations.
    pub fn is_pattern(&self) -> bool {
        match self {
            Destination::Topic(name) => name.has_wildcards(),
            Destination::Queue(_) | Destination::App(_) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Topic,
    Queue,
    App,
}

/// Length of the longest prefix (without its trailing `/`) matching `raw` at a segment boundary.
fn longest_prefix(raw: &str, prefixes: &[String]) -> Option<usize> {
    prefixes
        .iter()
        .filter_map(|prefix| {
            let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
            let rest = raw.strip_prefix(prefix)?;
            (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Prefixes {
        Prefixes {
            app: vec!["/app".into(), "/rpc/".into()],
            topic: vec!["/topic".into(), "/exchange/amq.topic/".into()],
            queue: vec!["/queue".into()],
        }
    }

    #[test]
    fn parse_table() {
        use Destination::{App, Queue, Topic};
        let cases: &[(&str, Destination)] = &[
            ("/topic/chat.lobby", Topic("/topic/chat.lobby".into())),
            ("/topic", Topic("/topic".into())),
            ("/topic/", Topic("/topic/".into())),
            ("/topic/chat.*", Topic("/topic/chat.*".into())),
            (
                "/exchange/amq.topic/x",
                Topic("/exchange/amq.topic/x".into()),
            ),
            ("/queue/jobs", Queue("/queue/jobs".into())),
            ("/queue/a/b", Queue("/queue/a/b".into())),
            ("/app/chat/message", App("/chat/message".into())),
            ("/app", App("".into())),
            ("/rpc/call", App("/call".into())),
            ("/topic/é", Topic("/topic/é".into())),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                Destination::parse(raw, &prefixes()).as_ref().ok(),
                Some(expected),
                "{raw}"
            );
        }
    }

    #[test]
    fn prefix_matches_only_at_segment_boundary() {
        for raw in ["/topics/x", "/queues", "/apple/x", "/rpcx", "topic/x", "/"] {
            assert!(
                matches!(
                    Destination::parse(raw, &prefixes()),
                    Err(DestinationError::UnknownPrefix(ref r)) if r == raw
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let prefixes = Prefixes {
            app: vec!["/app".into()],
            topic: vec!["/app/topic".into()],
            queue: vec![],
        };
        assert_eq!(
            Destination::parse("/app/topic/x", &prefixes).ok(),
            Some(Destination::Topic("/app/topic/x".into()))
        );
        assert_eq!(
            Destination::parse("/app/x", &prefixes).ok(),
            Some(Destination::App("/x".into()))
        );
    }

    #[test]
    fn default_prefixes_are_app_topic_queue() {
        let p = Prefixes::default();
        assert!(matches!(
            Destination::parse("/app/a", &p),
            Ok(Destination::App(_))
        ));
        assert!(matches!(
            Destination::parse("/topic/a", &p),
            Ok(Destination::Topic(_))
        ));
        assert!(matches!(
            Destination::parse("/queue/a", &p),
            Ok(Destination::Queue(_))
        ));
    }

    #[test]
    fn invalid_destinations_are_rejected() {
        let p = prefixes();
        assert!(matches!(
            Destination::parse("", &p),
            Err(DestinationError::Empty)
        ));
        let long = format!("/topic/{}", "a".repeat(MAX_DESTINATION_LEN));
        assert!(matches!(
            Destination::parse(&long, &p),
            Err(DestinationError::TooLong { limit: 1024 })
        ));
        for raw in ["/topic/a\nb", "/topic/\0", "/topic/\u{7f}", "/topic/\u{85}"] {
            assert!(
                matches!(
                    Destination::parse(raw, &p),
                    Err(DestinationError::InvalidCharacter)
                ),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn only_topics_are_patterns() {
        let p = prefixes();
        let is_pattern = |raw| Destination::parse(raw, &p).map(|d| d.is_pattern()).ok();
        assert_eq!(is_pattern("/topic/a.*"), Some(true));
        assert_eq!(is_pattern("/topic/a?"), Some(true));
        assert_eq!(is_pattern("/topic/a"), Some(false));
        assert_eq!(is_pattern("/queue/*"), Some(false));
        assert_eq!(is_pattern("/app/*"), Some(false));
    }

    #[test]
    fn as_str_is_full_name_or_app_path() {
        let p = prefixes();
        let s = |raw| {
            Destination::parse(raw, &p)
                .map(|d| d.as_str().to_owned())
                .ok()
        };
        assert_eq!(s("/topic/a").as_deref(), Some("/topic/a"));
        assert_eq!(s("/queue/a").as_deref(), Some("/queue/a"));
        assert_eq!(s("/app/a/b").as_deref(), Some("/a/b"));
    }
}
