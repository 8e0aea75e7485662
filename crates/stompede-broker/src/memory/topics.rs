//! The topic registry: exact subscriptions by name, plus pattern subscriptions checked on
//! every publish.

use std::collections::HashMap;
use std::sync::Arc;

use super::Ids;
use crate::destination::Name;
use crate::ids::SubscriptionId;
use crate::message::{AckMode, Delivery, Message};
use crate::outbox::Outbox;
use crate::pattern;

#[derive(Debug, Default)]
pub(super) struct Topics {
    exact: HashMap<Arc<str>, Vec<TopicSub>>,
    /// Checked against every published topic name; expected to stay short.
    patterns: Vec<(Arc<str>, TopicSub)>,
}

#[derive(Debug)]
pub(super) struct TopicSub {
    pub(super) token: u64,
    pub(super) id: SubscriptionId,
    pub(super) ack: AckMode,
    pub(super) outbox: Outbox,
}

/// Outcome of one fan-out.
#[derive(Debug, Default)]
pub(super) struct FanOut {
    pub(super) delivered: u64,
    /// Subscribers whose outbox refused: slow or gone. Their owners close them.
    pub(super) skipped: u64,
}

impl Topics {
    pub(super) fn insert(&mut self, name: &Name, sub: TopicSub) {
        if name.has_wildcards() {
            self.patterns.push((Arc::clone(name.shared()), sub));
        } else {
            self.exact
                .entry(Arc::clone(name.shared()))
                .or_default()
                .push(sub);
        }
    }

    /// Removes the subscription `token` from `name`; drops the topic once it has none left.
    pub(super) fn remove(&mut self, name: &Name, token: u64) {
        if name.has_wildcards() {
            if let Some(at) = self.patterns.iter().position(|(_, s)| s.token == token) {
                self.patterns.swap_remove(at);
            }
            return;
        }
        let Some(subs) = self.exact.get_mut(name.as_str()) else {
            return;
        };
        // Linear in the topic's subscribers; swap_remove because fan-out order is irrelevant.
        if let Some(at) = subs.iter().position(|s| s.token == token) {
            subs.swap_remove(at);
        }
        if subs.is_empty() {
            self.exact.remove(name.as_str());
        }
    }

    /// Offers `message` to every subscription whose name or pattern matches. Allocates
    /// nothing per subscriber beyond what the delivery holds (an ack id in client modes).
    pub(super) fn fan_out(&self, message: &Arc<Message>, ids: &Ids) -> FanOut {
        let name = message.destination.as_str();
        let mut out = FanOut::default();
        if let Some(subs) = self.exact.get(name) {
            for sub in subs {
                offer(sub, message, ids, &mut out);
            }
        }
        for (pattern, sub) in &self.patterns {
            if pattern::matches(pattern, name) {
                offer(sub, message, ids, &mut out);
            }
        }
        out
    }

    /// (topics with an exact subscriber, subscriptions).
    pub(super) fn counts(&self) -> (usize, usize) {
        let exact: usize = self.exact.values().map(Vec::len).sum();
        (self.exact.len(), exact + self.patterns.len())
    }
}

fn offer(sub: &TopicSub, message: &Arc<Message>, ids: &Ids, out: &mut FanOut) {
    // Topic deliveries are not tracked; the ack id only lets client-mode subscribers ACK.
    let ack = match sub.ack {
        AckMode::Auto => None,
        AckMode::Client | AckMode::ClientIndividual => Some(ids.topic_ack()),
    };
    let delivery = Delivery {
        subscription: sub.id.clone(),
        message: Arc::clone(message),
        ack,
        redelivered: false,
    };
    match sub.outbox.offer(delivery) {
        Ok(()) => out.delivered += 1,
        Err(reason) => {
            out.skipped += 1;
            tracing::trace!(%reason, subscription = %sub.id, "topic delivery skipped");
        }
    }
}
