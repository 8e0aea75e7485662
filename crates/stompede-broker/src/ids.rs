//! Identifiers: sessions, subscriptions, messages.

use std::fmt;
use std::sync::Arc;

/// One client session (one STOMP connection), assigned by the server.
///
/// Displays as `s-` followed by the number in hex (`SessionId(31)` is `s-1f`), the
/// form used in the CONNECTED frame's `session` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s-{:x}", self.0)
    }
}

/// A subscription's id, chosen by the client in SUBSCRIBE. Unique within its session only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriptionId(Arc<str>);

impl SubscriptionId {
    /// The id as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SubscriptionId {
    fn from(id: &str) -> Self {
        SubscriptionId(Arc::from(id))
    }
}

impl From<String> for SubscriptionId {
    fn from(id: String) -> Self {
        SubscriptionId(Arc::from(id))
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names one published message; the MESSAGE frame's `message-id` header.
///
/// A broker makes these unique per published message. The `From` impls exist for
/// brokers that take the id from upstream (a relay keeps RabbitMQ's ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(Arc<str>);

impl MessageId {
    /// The id as it appears on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for MessageId {
    fn from(id: &str) -> Self {
        MessageId(Arc::from(id))
    }
}

impl From<String> for MessageId {
    fn from(id: String) -> Self {
        MessageId(Arc::from(id))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_displays_as_hex() {
        assert_eq!(SessionId(31).to_string(), "s-1f");
        assert_eq!(SessionId(0).to_string(), "s-0");
    }

    #[test]
    fn ids_display_their_text() {
        assert_eq!(SubscriptionId::from("sub-0").to_string(), "sub-0");
        assert_eq!(MessageId::from(String::from("m-1")).as_str(), "m-1");
    }
}
