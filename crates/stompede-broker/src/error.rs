//! Errors of the broker layer.

use crate::destination::Name;
use crate::ids::SubscriptionId;

/// Why a broker refused an operation. None of these ends the broker; most end the request.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The session already has a subscription with this id.
    #[error("subscription {0} already exists")]
    DuplicateSubscription(SubscriptionId),
    /// The session has no subscription with this id.
    #[error("unknown subscription {0}")]
    UnknownSubscription(SubscriptionId),
    /// No unacknowledged delivery of the session matches the ACK or NACK.
    #[error("unknown ack {0}")]
    UnknownAck(String),
    /// An application destination was handed to the broker.
    #[error("{0} is not a broker destination")]
    NotBrokerDestination(String),
    /// A queue subscription used a pattern; only topics take patterns.
    #[error("queue {0} cannot be subscribed with a pattern")]
    PatternOnQueue(String),
    /// A message was published to a name containing `*` or `?`.
    #[error("cannot publish to pattern {0}")]
    PatternNotAllowed(String),
    /// The queue already holds its maximum of undelivered messages.
    #[error("queue {queue} is full ({limit} messages)")]
    QueueFull {
        /// The queue.
        queue: Name,
        /// Its configured maximum.
        limit: usize,
    },
    /// Accepting the queue message would take the bytes held in all queues (waiting or
    /// delivered and unacknowledged) past the broker's maximum.
    #[error("broker would hold more than {limit} bytes of queued messages")]
    BrokerFull {
        /// The configured maximum, in bytes.
        limit: usize,
    },
}

impl BrokerError {
    /// Short text for a STOMP ERROR frame's `message` header.
    pub fn error_frame_message(&self) -> &'static str {
        match self {
            BrokerError::DuplicateSubscription(_) => "duplicate subscription id",
            BrokerError::UnknownSubscription(_) => "unknown subscription id",
            BrokerError::UnknownAck(_) => "unknown ack id",
            BrokerError::NotBrokerDestination(_) => "not a broker destination",
            BrokerError::PatternOnQueue(_) => "patterns are not allowed on queues",
            BrokerError::PatternNotAllowed(_) => "cannot send to a pattern",
            BrokerError::QueueFull { .. } => "queue full",
            BrokerError::BrokerFull { .. } => "broker full",
        }
    }
}

/// Why a `destination` header was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// The header is empty.
    #[error("empty destination")]
    Empty,
    /// The header is longer than `limit` bytes.
    #[error("destination longer than {limit} bytes")]
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The header contains a control character.
    #[error("control character in destination")]
    InvalidCharacter,
    /// No application, topic or queue prefix matches the destination.
    #[error("no prefix matches destination {0}")]
    UnknownPrefix(String),
}

impl DestinationError {
    /// Short text for a STOMP ERROR frame's `message` header.
    pub fn error_frame_message(&self) -> &'static str {
        match self {
            DestinationError::Empty => "empty destination",
            DestinationError::TooLong { .. } => "destination too long",
            DestinationError::InvalidCharacter => "invalid character in destination",
            DestinationError::UnknownPrefix(_) => "unknown destination prefix",
        }
    }
}
