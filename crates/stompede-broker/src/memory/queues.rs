//! One queue: pending messages, subscribers in round-robin order, and their unacknowledged
//! deliveries.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::session::{AckEntry, SessionCell};
use super::{lock, Ids};
use crate::destination::Name;
use crate::ids::SubscriptionId;
use crate::message::{AckId, AckMode, Delivery, Message};
use crate::outbox::Outbox;

/// A queue's lock. Taken after the queue map's and before a session's.
pub(super) type QueueCell = Mutex<Queue>;

/// What a delivery loop needs from the broker.
pub(super) struct Pump<'a> {
    pub(super) max_unacked: usize,
    pub(super) ids: &'a Ids,
    pub(super) delivered: &'a AtomicU64,
    /// The broker's queued-bytes counter: messages leaving the broker (delivered in auto
    /// mode, acknowledged) come off it here.
    pub(super) queued_bytes: &'a AtomicUsize,
}

impl Pump<'_> {
    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

#[derive(Debug)]
pub(super) struct Queue {
    name: Name,
    /// Waiting for a subscriber that can take them; the front goes first.
    pending: VecDeque<Pending>,
    /// In round-robin order.
    subscribers: Vec<QueueSub>,
    /// Index in `subscribers` of the next one to try.
    next: usize,
}

#[derive(Debug)]
struct Pending {
    message: Arc<Message>,
    redelivered: bool,
}

#[derive(Debug)]
pub(super) struct QueueSub {
    pub(super) token: u64,
    pub(super) id: SubscriptionId,
    pub(super) ack: AckMode,
    pub(super) outbox: Outbox,
    /// The subscriber's session, to index its ack ids there.
    pub(super) session: Arc<SessionCell>,
    /// Delivered, not yet acknowledged, in delivery order (`seq` increasing). Always empty in
    /// auto mode.
    pub(super) unacked: VecDeque<Unacked>,
}

#[derive(Debug)]
pub(super) struct Unacked {
    seq: u64,
    ack: AckId,
    message: Arc<Message>,
}

/// The publish found the queue holding its maximum.
#[derive(Debug)]
pub(super) struct Full;

impl Queue {
    pub(super) fn new(name: Name) -> Queue {
        Queue {
            name,
            pending: VecDeque::new(),
            subscribers: Vec::new(),
            next: 0,
        }
    }

    /// No subscribers and nothing pending: the queue may be dropped from the map.
    pub(super) fn is_idle(&self) -> bool {
        self.subscribers.is_empty() && self.pending.is_empty()
    }

    pub(super) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub(super) fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }

    /// Appends `message` and delivers what can be delivered.
    ///
    /// # Errors
    /// [`Full`] when, after delivery, more than `max_len` messages would be held; the
    /// message is then not kept, and the caller takes its weight off the queued bytes it
    /// added. (Requeued messages may push the queue past `max_len`: those are never dropped.)
    pub(super) fn publish(
        &mut self,
        message: Arc<Message>,
        max_len: usize,
        pump: &Pump<'_>,
    ) -> Result<(), Full> {
        self.pending.push_back(Pending {
            message,
            redelivered: false,
        });
        self.pump(pump);
        if self.pending.len() > max_len {
            // Deliveries come off the front, so a message still held is ours, at the back.
            self.pending.pop_back();
            return Err(Full);
        }
        Ok(())
    }

    pub(super) fn subscribe(&mut self, sub: QueueSub, pump: &Pump<'_>) {
        self.subscribers.push(sub);
        self.pump(pump);
    }

    /// Removes subscription `token`; its unacknowledged deliveries go back to the front of the
    /// queue in their original order, flagged redelivered, and are offered again.
    pub(super) fn unsubscribe(&mut self, token: u64, pump: &Pump<'_>) {
        let Some(at) = self.subscribers.iter().position(|s| s.token == token) else {
            return;
        };
        let sub = self.subscribers.remove(at);
        if at < self.next {
            self.next -= 1;
        }
        if self.next >= self.subscribers.len() {
            self.next = 0;
        }
        if sub.unacked.is_empty() {
            return;
        }
        {
            let mut session = lock(&sub.session);
            for unacked in &sub.unacked {
                session.acks.remove(unacked.ack.as_str());
            }
        }
        self.requeue(sub.unacked.into_iter());
        self.pump(pump);
    }

    /// ACKs (or NACKs) delivery `seq` of subscription `token`: in client mode together with
    /// every earlier unacknowledged delivery of the subscription. NACKed messages go back to
    /// the front of the queue. Returns false if there is no such delivery.
    pub(super) fn settle(&mut self, token: u64, seq: u64, nack: bool, pump: &Pump<'_>) -> bool {
        let Some(sub) = self.subscribers.iter_mut().find(|s| s.token == token) else {
            return false;
        };
        let Ok(at) = sub.unacked.binary_search_by_key(&seq, |u| u.seq) else {
            return false;
        };
        let settled = match sub.ack {
            AckMode::Client => 0..at + 1,
            AckMode::ClientIndividual | AckMode::Auto => at..at + 1,
        };
        {
            let mut session = lock(&sub.session);
            for unacked in sub.unacked.range(settled.clone()) {
                session.acks.remove(unacked.ack.as_str());
            }
        }
        if nack {
            // Still held, so still counted in the queued bytes.
            let settled: Vec<Unacked> = sub.unacked.drain(settled).collect();
            self.requeue(settled.into_iter());
        } else {
            let acked = sub.unacked.drain(settled).map(|u| u.message.weight()).sum();
            pump.release(acked);
        }
        // Acknowledged or not, the subscriber has prefetch room again.
        self.pump(pump);
        true
    }

    /// Puts deliveries back at the front, keeping their order.
    fn requeue(&mut self, unacked: impl DoubleEndedIterator<Item = Unacked>) {
        for unacked in unacked.rev() {
            self.pending.push_front(Pending {
                message: unacked.message,
                redelivered: true,
            });
        }
    }

    /// The delivery loop: while a message is pending and some subscriber can take it (below
    /// its prefetch limit, and its outbox accepts), give it to the next one in round robin.
    /// A message nobody can take stays at the front.
    fn pump(&mut self, pump: &Pump<'_>) {
        let count = self.subscribers.len();
        if count == 0 {
            return;
        }
        let mut delivered = 0;
        let mut released = 0;
        while let Some(pending) = self.pending.pop_front() {
            let taker = (0..count)
                .map(|step| (self.next + step) % count)
                .find(|&at| offer(&self.name, &mut self.subscribers[at], &pending, pump));
            let Some(at) = taker else {
                self.pending.push_front(pending);
                break;
            };
            self.next = (at + 1) % count;
            delivered += 1;
            if self.subscribers[at].ack == AckMode::Auto {
                // Handed off for good; client modes keep it (counted) until ACK.
                released += pending.message.weight();
            }
        }
        pump.delivered.fetch_add(delivered, Ordering::Relaxed);
        pump.release(released);
    }
}

/// Offers `pending` to `sub`; records the delivery as unacknowledged in client modes.
fn offer(queue: &Name, sub: &mut QueueSub, pending: &Pending, pump: &Pump<'_>) -> bool {
    let tracked = sub.ack != AckMode::Auto;
    if sub.outbox.is_overflowed() || (tracked && sub.unacked.len() >= pump.max_unacked) {
        return false;
    }
    let mut delivery = Delivery {
        subscription: sub.id.clone(),
        message: Arc::clone(&pending.message),
        ack: None,
        redelivered: pending.redelivered,
    };
    if !tracked {
        return match sub.outbox.offer(delivery) {
            Ok(()) => true,
            Err(reason) => {
                tracing::trace!(%reason, subscription = %sub.id, "queue delivery refused");
                false
            }
        };
    }
    let seq = pump.ids.ack_seq();
    let ack = AckId::from(format!("q{seq:x}"));
    delivery.ack = Some(ack.clone());
    // Index the ack id in the same critical section as the offer: the client cannot ACK
    // before the session can find the delivery.
    let mut session = lock(&sub.session);
    if let Err(reason) = sub.outbox.offer(delivery) {
        tracing::trace!(%reason, subscription = %sub.id, "queue delivery refused");
        return false;
    }
    session.acks.insert(
        Arc::clone(ack.shared()),
        AckEntry {
            queue: queue.clone(),
            token: sub.token,
            seq,
            message: pending.message.id.clone(),
        },
    );
    drop(session);
    sub.unacked.push_back(Unacked {
        seq,
        ack,
        message: Arc::clone(&pending.message),
    });
    true
}
