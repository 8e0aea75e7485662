//! Messages: what publishers hand the broker and what subscribers receive.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::destination::{Destination, Name};
use crate::ids::{MessageId, SubscriptionId};

/// What a publisher hands the broker.
#[derive(Debug, Clone)]
pub struct Publish {
    /// Where the message goes: a topic or a queue.
    pub destination: Destination,
    /// Headers carried to subscribers as they are (the sender's custom headers,
    /// `content-type`, …). The broker does not interpret them.
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub body: Bytes,
}

/// A published message, shared (behind an `Arc`) by all its deliveries.
#[derive(Debug)]
pub struct Message {
    /// Unique per published message; the MESSAGE frame's `message-id`.
    pub id: MessageId,
    /// The destination it was published to (never a pattern).
    pub destination: Name,
    /// The publisher's headers, as given in [`Publish::headers`].
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub body: Bytes,
    /// See [`Message::weight`]; computed once, since every delivery of the message (a fan-out
    /// to thousands) is weighed twice, on offer and on receipt.
    weight: usize,
    /// See [`Message::encoded`]: the wire form its first delivery made, for one variant.
    encoded: OnceLock<(u8, Bytes)>,
    /// Whether [`Message::encoded`] keeps that wire form; see [`Message::delivered_once`].
    keep_encoded: bool,
}

impl Message {
    /// A message with its weight computed.
    pub fn new(
        id: MessageId,
        destination: Name,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Message {
        let header_bytes: usize = headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        Message {
            weight: body.len() + header_bytes + 64,
            id,
            destination,
            headers,
            body,
            encoded: OnceLock::new(),
            keep_encoded: true,
        }
    }

    /// Marks a message that goes to one subscription at a time (a queue's message, a reply to
    /// one session): [`Message::encoded`] keeps nothing for it, since no other delivery would
    /// share the bytes, and a message held in a queue or unacknowledged would hold its body
    /// twice while queue limits count it once.
    #[must_use]
    pub fn delivered_once(mut self) -> Message {
        self.keep_encoded = false;
        self
    }

    /// The part of the message's wire form that every delivery shares, made by `encode` at the
    /// first call and shared by every later call for the same `variant`: a fan-out to a
    /// thousand subscriptions encodes the message once and copies those bytes a thousand
    /// times. `variant` names what the bytes depend on besides the message (a protocol
    /// version); one variant is kept, and a call for another gets `None` and encodes for
    /// itself, as does every call for a message [`Message::delivered_once`].
    pub fn encoded(&self, variant: u8, encode: impl FnOnce(&Message) -> Bytes) -> Option<&Bytes> {
        if !self.keep_encoded {
            return None;
        }
        let (made_for, bytes) = self.encoded.get_or_init(|| (variant, encode(self)));
        (*made_for == variant).then_some(bytes)
    }

    /// Approximate encoded size of one delivery of it: the body, every header name and value,
    /// and 64 bytes for the command and the broker's own headers. Bounds outboxes
    /// (each delivery weighs its message) and the bytes the in-memory broker holds in queues.
    pub fn weight(&self) -> usize {
        self.weight
    }
}

/// How a subscription acknowledges messages (the SUBSCRIBE frame's `ack` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Delivered means done; the client sends no ACK.
    Auto,
    /// An ACK acknowledges that message and every earlier one of the subscription.
    Client,
    /// An ACK acknowledges exactly one message.
    ClientIndividual,
}

impl AckMode {
    /// Parses the `ack` header: absent is `auto`; `auto`, `client`, `client-individual`;
    /// anything else is `None`.
    pub fn parse(s: Option<&str>) -> Option<AckMode> {
        match s {
            None | Some("auto") => Some(AckMode::Auto),
            Some("client") => Some(AckMode::Client),
            Some("client-individual") => Some(AckMode::ClientIndividual),
            Some(_) => None,
        }
    }
}

/// One message for one subscription.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subscription it is for (the MESSAGE frame's `subscription` header).
    pub subscription: SubscriptionId,
    /// The message, shared with every other delivery of it.
    pub message: Arc<Message>,
    /// Value of the MESSAGE frame's `ack` header; `Some` only when the subscription's
    /// ack mode is not [`AckMode::Auto`].
    pub ack: Option<AckId>,
    /// True when this message was delivered before and came back (NACK, unsubscribe, disconnect).
    pub redelivered: bool,
}

impl Delivery {
    /// Approximate encoded size, used to bound outboxes: [`Message::weight`].
    pub(crate) fn weight(&self) -> usize {
        self.message.weight()
    }
}

/// Names one delivery in ACK/NACK (the MESSAGE frame's `ack` header). Unique per delivery
/// within a broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AckId(Arc<str>);

impl AckId {
    /// The id as it appears on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn shared(&self) -> &Arc<str> {
        &self.0
    }
}

impl From<&str> for AckId {
    fn from(id: &str) -> Self {
        AckId(Arc::from(id))
    }
}

impl From<String> for AckId {
    fn from(id: String) -> Self {
        AckId(Arc::from(id))
    }
}

impl fmt::Display for AckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a client names a message in ACK/NACK.
///
/// STOMP 1.2 sends `id`, the value of the MESSAGE's `ack` header. STOMP 1.1 sends
/// `message-id` and `subscription`; STOMP 1.0 sends only `message-id`, so every
/// subscription of the session is searched.
#[derive(Debug, Clone, Copy)]
pub enum AckRef<'a> {
    /// STOMP 1.2: the `id` header, an [`AckId`] the broker handed out.
    Delivery(&'a str),
    /// STOMP 1.0 and 1.1: the `message-id` header, and `subscription` when the client sent one.
    Message {
        /// The subscription the message was delivered to; `None` searches them all.
        subscription: Option<&'a SubscriptionId>,
        /// The message's [`MessageId`].
        message_id: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_mode_parse_table() {
        assert_eq!(AckMode::parse(None), Some(AckMode::Auto));
        assert_eq!(AckMode::parse(Some("auto")), Some(AckMode::Auto));
        assert_eq!(AckMode::parse(Some("client")), Some(AckMode::Client));
        assert_eq!(
            AckMode::parse(Some("client-individual")),
            Some(AckMode::ClientIndividual)
        );
        assert_eq!(AckMode::parse(Some("Client")), None);
        assert_eq!(AckMode::parse(Some("")), None);
    }

    #[test]
    fn delivery_weight_counts_body_headers_and_overhead() {
        let delivery = Delivery {
            subscription: "s".into(),
            message: Arc::new(Message::new(
                "m".into(),
                "/topic/a".into(),
                vec![("ab".into(), "cde".into())],
                Bytes::from_static(b"0123456789"),
            )),
            ack: None,
            redelivered: false,
        };
        assert_eq!(delivery.weight(), 10 + 5 + 64);
    }

    fn message() -> Message {
        Message::new("m".into(), "/topic/a".into(), Vec::new(), Bytes::new())
    }

    #[test]
    fn encoded_once_per_variant_and_never_for_a_message_delivered_once() {
        let shared = message();
        let mut calls = 0;
        let mut encode = |variant: u8| {
            shared
                .encoded(variant, |_| {
                    calls += 1;
                    Bytes::from(vec![variant])
                })
                .cloned()
        };
        assert_eq!(encode(2), Some(Bytes::from_static(&[2])));
        assert_eq!(encode(2), Some(Bytes::from_static(&[2])));
        assert_eq!(encode(1), None, "one variant is kept");
        assert_eq!(calls, 1);

        let once = message().delivered_once();
        assert_eq!(once.encoded(2, |_| Bytes::from_static(b"x")), None);
        assert_eq!(once.encoded(2, |_| Bytes::from_static(b"x")), None);
    }
}
