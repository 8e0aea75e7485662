//! Destinations, subscriptions, the [`Broker`] trait and the in-memory broker.
//!
//! # What this crate owns
//! - [`Destination`]: a `destination` header parsed once against configured [`Prefixes`]
//!   into a topic, a queue or an application path.
//! - [`pattern`]: Ant-style topic patterns (`/topic/chat.*`, `/topic/a/**`).
//! - [`Outbox`]: each session's bounded outbound queue. The broker only ever *offers*
//!   into it; a full outbox means the session cannot keep up and its owner closes it.
//! - [`Broker`]: the narrow interface the session layer talks to, and [`MemoryBroker`],
//!   its reference implementation (topics fan out, queues deliver round robin with
//!   ACK/NACK, prefetch and redelivery).
//!
//! # What it does not
//! - Know any wire format: it never sees a STOMP frame. It carries [`bytes::Bytes`] payloads
//!   and typed headers; the server encodes MESSAGE frames from [`Delivery`] values.
//! - Perform I/O or wait for a session: every method returns without awaiting anything.
//! - Handle application (`/app`) destinations, user destinations or authorization; those
//!   belong to the server.
//!
//! # Layout
//! - `ids.rs`, `destination.rs`, `pattern.rs`, `message.rs`: the vocabulary.
//! - `outbox.rs`: per-session bounded queues.
//! - `memory/`: the in-memory broker (`topics.rs`, `queues.rs`, `session.rs`).
//! - `error.rs`: [`BrokerError`], [`DestinationError`].

mod destination;
mod error;
mod ids;
mod memory;
mod message;
mod outbox;
pub mod pattern;

pub use destination::{Destination, Name, Prefixes, MAX_DESTINATION_LEN};
pub use error::{BrokerError, DestinationError};
pub use ids::{MessageId, SessionId, SubscriptionId};
pub use memory::{BrokerStats, MemoryBroker, MemoryConfig};
pub use message::{AckId, AckMode, AckRef, Delivery, Message, Publish};
pub use outbox::{Outbox, OutboxLimits, OutboxReceiver, Undeliverable};

/// A request to receive messages from a destination.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The subscribing session.
    pub session: SessionId,
    /// The client's id for the subscription, unique within the session.
    pub id: SubscriptionId,
    /// A topic (possibly a pattern) or a queue.
    pub destination: Destination,
    /// How the client acknowledges messages.
    pub ack: AckMode,
    /// Where the session's deliveries go.
    pub outbox: Outbox,
}

/// What the session layer needs from a broker.
///
/// Narrow on purpose: a RabbitMQ relay and a Redis backplane implement it too. They do their
/// I/O on internal tasks; these methods never block on the network and never await a session
/// (delivery is an [`Outbox::offer`]).
pub trait Broker: Send + Sync + 'static {
    /// Starts delivering messages from `subscription.destination` to its outbox.
    ///
    /// # Errors
    /// [`BrokerError::DuplicateSubscription`] if the session already has that id,
    /// [`BrokerError::NotBrokerDestination`] for an application destination,
    /// [`BrokerError::PatternOnQueue`] for a queue name containing `*` or `?`.
    fn subscribe(&self, subscription: Subscription) -> Result<(), BrokerError>;

    /// Ends a subscription. Its unacknowledged queue messages go back to their queue, at the
    /// front, for redelivery.
    ///
    /// # Errors
    /// [`BrokerError::UnknownSubscription`].
    fn unsubscribe(&self, session: SessionId, id: &SubscriptionId) -> Result<(), BrokerError>;

    /// Publishes a message and returns its id.
    ///
    /// A topic message goes to every matching subscription (exact and pattern), each at most
    /// once. A queue message goes to exactly one subscriber, round robin, and is held in the
    /// queue while none can take it.
    ///
    /// # Errors
    /// [`BrokerError::NotBrokerDestination`] for an application destination,
    /// [`BrokerError::QueueFull`] when the queue holds its maximum,
    /// [`BrokerError::BrokerFull`] when the broker holds its maximum of queued bytes,
    /// [`BrokerError::PatternNotAllowed`] for a name containing `*` or `?`.
    fn publish(&self, message: Publish) -> Result<MessageId, BrokerError>;

    /// Acknowledges a delivery (and, in `client` mode, every earlier one of its subscription).
    ///
    /// # Errors
    /// [`BrokerError::UnknownAck`] if the session has no such unacknowledged delivery.
    fn ack(&self, session: SessionId, r: AckRef<'_>) -> Result<(), BrokerError>;

    /// Rejects a delivery (in `client` mode, every earlier one of its subscription too): queue
    /// messages go back to the front of their queue, flagged redelivered.
    ///
    /// # Errors
    /// [`BrokerError::UnknownAck`] if the session has no such unacknowledged delivery.
    fn nack(&self, session: SessionId, r: AckRef<'_>) -> Result<(), BrokerError>;

    /// Drops every subscription of the session; its unacknowledged queue messages are
    /// redelivered to other subscribers.
    fn session_gone(&self, session: SessionId);
}
