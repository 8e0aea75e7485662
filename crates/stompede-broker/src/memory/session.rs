//! Per-session bookkeeping: the session's subscriptions and its unacknowledged queue deliveries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::destination::Name;
use crate::ids::{MessageId, SubscriptionId};
use crate::message::AckMode;

/// A session's state. Its mutex is a leaf: nothing else is locked while it is held.
pub(super) type SessionCell = Mutex<SessionState>;

#[derive(Debug, Default)]
pub(super) struct SessionState {
    /// Set by `session_gone`; a subscription racing with it is then not installed.
    pub(super) gone: bool,
    pub(super) subscriptions: HashMap<SubscriptionId, SubEntry>,
    /// Unacknowledged queue deliveries by ack id, so ACK and `session_gone` cost
    /// O(the session's own deliveries).
    pub(super) acks: HashMap<Arc<str>, AckEntry>,
}

#[derive(Debug)]
pub(super) struct SubEntry {
    /// Unique per subscription in the broker; tells a subscription from an earlier one that
    /// reused its id.
    pub(super) token: u64,
    pub(super) target: Target,
    pub(super) ack: AckMode,
}

#[derive(Debug, Clone)]
pub(super) enum Target {
    /// A topic name or pattern.
    Topic(Name),
    Queue(Name),
}

#[derive(Debug, Clone)]
pub(super) struct AckEntry {
    pub(super) queue: Name,
    /// The subscription's token.
    pub(super) token: u64,
    /// Position of the delivery among the subscription's unacknowledged ones (increasing).
    pub(super) seq: u64,
    pub(super) message: MessageId,
}

impl SessionState {
    /// Whether subscription `id` is still the one identified by `token`, in a live session.
    pub(super) fn holds(&self, id: &SubscriptionId, token: u64) -> bool {
        !self.gone
            && self
                .subscriptions
                .get(id)
                .is_some_and(|entry| entry.token == token)
    }
}
