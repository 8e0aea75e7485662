//! The in-memory broker: the reference [`Broker`] for a single node.
//!
//! # Locks
//! Always taken in this order, never the other way round:
//! 1. `sessions` (the session map): held alone, released before anything else is locked.
//! 2. `topics` (one `RwLock` for the whole topic registry; publishers share the read side).
//! 3. `queues` (the queue map) → one queue's `Mutex`. At most one queue is locked at a time,
//!    and never together with `topics`.
//! 4. A session's `Mutex<SessionState>`: a leaf, taken under `topics` or a queue; nothing is
//!    locked while it is held.
//!
//! Nothing slow happens under a lock: delivery is [`Outbox::offer`], which never waits.
//!
//! # Queued bytes
//! One counter, `MemoryBroker::queued_bytes`, holds the weight (as `Delivery::weight`: body,
//! header names and values, 64 bytes) of every queue message the broker keeps: waiting in a
//! queue, or delivered in a `client` mode and not yet acknowledged (the broker keeps those
//! for redelivery). A queue publish adds its weight
//! before it touches the queue, and only if the total stays within
//! [`MemoryConfig::max_queued_bytes`]; the weight comes off when the message leaves the
//! broker: delivered to an `auto` subscription, acknowledged, or refused because its queue is
//! full. NACK, unsubscribe and `session_gone` move messages from unacknowledged back to
//! waiting, which leaves the total alone, so requeueing never drops a message and never
//! needs room. A queue is removed only when it has no subscribers and nothing waiting, so it
//! holds no counted bytes then.

mod queues;
mod session;
mod topics;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::mem;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use self::queues::{Pump, Queue, QueueCell, QueueSub};
use self::session::{AckEntry, SessionCell, SessionState, SubEntry, Target};
use self::topics::{TopicSub, Topics};
use crate::destination::{Destination, Name};
use crate::error::BrokerError;
use crate::ids::{MessageId, SessionId, SubscriptionId};
use crate::message::{AckId, AckMode, AckRef, Message, Publish};
use crate::{Broker, Subscription};

#[cfg(doc)]
use crate::outbox::Outbox;

/// Limits of the in-memory broker.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Most messages a queue holds while no subscriber can take them; past it, publishing
    /// fails with [`BrokerError::QueueFull`]. Default: 100 000.
    pub max_queue_len: usize,
    /// Prefetch: most unacknowledged deliveries per `client` or `client-individual` queue
    /// subscription; further messages wait in the queue. 0 counts as 1. Default: 1 000.
    pub max_unacked: usize,
    /// Most bytes of queue messages the broker holds across all queues: waiting for a
    /// subscriber, or delivered in a `client` mode and not yet acknowledged. Each message
    /// weighs its body, its header names and values, and 64 bytes. A queue publish that would
    /// take the total past it fails with [`BrokerError::BrokerFull`], even if a subscriber
    /// could take the message at once; topic publishes are not affected. NACK, unsubscribe
    /// and disconnect never drop a message for it. 0 refuses every queue message.
    /// Default: 256 MiB.
    pub max_queued_bytes: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_queue_len: 100_000,
            max_unacked: 1_000,
            max_queued_bytes: 256 * 1024 * 1024,
        }
    }
}

/// A snapshot of the broker's size and traffic.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrokerStats {
    /// Live subscriptions, topic (exact and pattern) and queue.
    pub subscriptions: usize,
    /// Topic names with at least one exact subscription.
    pub topics: usize,
    /// Queues with a subscriber or a pending message.
    pub queues: usize,
    /// Queue messages waiting for a subscriber (not counting delivered, unacknowledged ones).
    pub queued_messages: usize,
    /// Bytes of queue messages held, waiting or delivered and unacknowledged, by the weight
    /// described on [`MemoryConfig::max_queued_bytes`].
    pub queued_bytes: usize,
    /// Messages accepted by `publish` since the broker started.
    pub published: u64,
    /// Deliveries accepted by outboxes since the broker started, redeliveries included.
    pub delivered: u64,
}

/// The in-memory broker. `Send + Sync`; share it behind an `Arc`.
///
/// Topics fan out to every matching subscription. Queues give each message to one
/// subscriber, round robin, hold messages nobody can take (up to
/// [`MemoryConfig::max_queue_len`] per queue and [`MemoryConfig::max_queued_bytes`] in all),
/// and track `client` and `client-individual` deliveries until ACK; NACK, unsubscribe and
/// `session_gone` put unacknowledged messages back at the front of their queue. Topics and queues without subscribers or pending messages are
/// dropped.
#[derive(Debug)]
pub struct MemoryBroker {
    config: MemoryConfig,
    ids: Ids,
    sessions: RwLock<HashMap<SessionId, Arc<SessionCell>>>,
    topics: RwLock<Topics>,
    queues: RwLock<HashMap<Arc<str>, Arc<QueueCell>>>,
    /// Weight of every queue message held, waiting or unacknowledged (see the module docs).
    queued_bytes: AtomicUsize,
    published: AtomicU64,
    delivered: AtomicU64,
}

impl MemoryBroker {
    /// Creates an empty broker.
    pub fn new(config: MemoryConfig) -> MemoryBroker {
        MemoryBroker {
            config: MemoryConfig {
                max_unacked: config.max_unacked.max(1),
                ..config
            },
            ids: Ids::new(),
            sessions: RwLock::default(),
            topics: RwLock::default(),
            queues: RwLock::default(),
            queued_bytes: AtomicUsize::new(0),
            published: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    /// A snapshot of the broker's size and traffic. Locks every queue in turn: meant for
    /// metrics and tests, not for a hot path.
    pub fn stats(&self) -> BrokerStats {
        let (topics, mut subscriptions) = read(&self.topics).counts();
        let mut queued_messages = 0;
        let queues = read(&self.queues);
        for cell in queues.values() {
            let queue = lock(cell);
            subscriptions += queue.subscriber_count();
            queued_messages += queue.pending_len();
        }
        BrokerStats {
            subscriptions,
            topics,
            queues: queues.len(),
            queued_messages,
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
    }

    fn pump(&self) -> Pump<'_> {
        Pump {
            max_unacked: self.config.max_unacked,
            ids: &self.ids,
            delivered: &self.delivered,
            queued_bytes: &self.queued_bytes,
        }
    }

    /// Counts `weight` more queued bytes if the total stays within the limit.
    fn reserve(&self, weight: usize) -> Result<(), BrokerError> {
        let limit = self.config.max_queued_bytes;
        self.queued_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(weight).filter(|&total| total <= limit)
            })
            .map(drop)
            .map_err(|_| BrokerError::BrokerFull { limit })
    }

    fn session(&self, session: SessionId) -> Option<Arc<SessionCell>> {
        read(&self.sessions).get(&session).cloned()
    }

    fn session_or_insert(&self, session: SessionId) -> Arc<SessionCell> {
        if let Some(cell) = self.session(session) {
            return cell;
        }
        Arc::clone(write(&self.sessions).entry(session).or_default())
    }

    fn queue(&self, name: &str) -> Option<Arc<QueueCell>> {
        read(&self.queues).get(name).cloned()
    }

    fn queue_or_insert(&self, name: &Name) -> Arc<QueueCell> {
        if let Some(cell) = self.queue(name.as_str()) {
            return cell;
        }
        let mut queues = write(&self.queues);
        let cell = queues
            .entry(Arc::clone(name.shared()))
            .or_insert_with(|| Arc::new(Mutex::new(Queue::new(name.clone()))));
        Arc::clone(cell)
    }

    /// Runs `f` on queue `name` (created if needed), then drops the queue if it is idle.
    fn with_queue<R>(&self, name: &Name, f: impl FnOnce(&mut Queue) -> R) -> R {
        let cell = self.queue_or_insert(name);
        let (result, idle) = {
            let mut queue = lock(&cell);
            let result = f(&mut queue);
            (result, queue.is_idle())
        };
        drop(cell);
        if idle {
            self.remove_queue_if_idle(name.as_str());
        }
        result
    }

    /// Drops queue `name` if it is idle and nobody else holds it.
    ///
    /// Every holder of a queue got its `Arc` from the map and calls this after dropping it
    /// when it saw the queue idle, so whoever lets go last removes it. A queue is only
    /// removed while the map holds its sole reference, so nobody ever works on a queue that
    /// is no longer in the map.
    fn remove_queue_if_idle(&self, name: &str) {
        let mut queues = write(&self.queues);
        let Some(cell) = queues.get(name) else {
            return;
        };
        if Arc::strong_count(cell) == 1 && lock(cell).is_idle() {
            queues.remove(name);
        }
    }

    /// Takes a subscription out of the topic registry or its queue.
    fn detach(&self, entry: SubEntry) {
        match entry.target {
            Target::Topic(name) => write(&self.topics).remove(&name, entry.token),
            Target::Queue(name) => self.leave_queue(&name, entry.token),
        }
    }

    fn leave_queue(&self, name: &Name, token: u64) {
        let Some(cell) = self.queue(name.as_str()) else {
            return;
        };
        let idle = {
            let mut queue = lock(&cell);
            queue.unsubscribe(token, &self.pump());
            queue.is_idle()
        };
        drop(cell);
        if idle {
            self.remove_queue_if_idle(name.as_str());
        }
    }

    fn settle(&self, session: SessionId, r: AckRef<'_>, nack: bool) -> Result<(), BrokerError> {
        let unknown = || {
            BrokerError::UnknownAck(match r {
                AckRef::Delivery(id) => id.to_owned(),
                AckRef::Message { message_id, .. } => message_id.to_owned(),
            })
        };
        if let AckRef::Delivery(id) = r {
            if Ids::is_topic_ack(id) {
                // Topic deliveries are not stored: nothing to acknowledge or redeliver.
                return Ok(());
            }
        }
        let cell = self.session(session).ok_or_else(unknown)?;
        let entry = match find_unacked(&lock(&cell), r) {
            Found::Queue(entry) => entry,
            Found::Topic => return Ok(()),
            Found::Nothing => return Err(unknown()),
        };
        let queue = self.queue(entry.queue.as_str()).ok_or_else(unknown)?;
        let settled = lock(&queue).settle(entry.token, entry.seq, nack, &self.pump());
        settled.then_some(()).ok_or_else(unknown)
    }
}

enum Found {
    Queue(AckEntry),
    /// The reference names a topic delivery: accepted and ignored.
    Topic,
    Nothing,
}

/// Looks an ACK/NACK reference up among the session's unacknowledged deliveries.
fn find_unacked(session: &SessionState, r: AckRef<'_>) -> Found {
    let found = match r {
        AckRef::Delivery(id) => session.acks.get(id),
        AckRef::Message {
            subscription: Some(subscription),
            message_id,
        } => {
            let Some(sub) = session.subscriptions.get(subscription) else {
                return Found::Nothing;
            };
            if let Target::Topic(_) = sub.target {
                return match sub.ack {
                    AckMode::Auto => Found::Nothing,
                    AckMode::Client | AckMode::ClientIndividual => Found::Topic,
                };
            }
            session
                .acks
                .values()
                .find(|e| e.token == sub.token && e.message.as_str() == message_id)
        }
        AckRef::Message {
            subscription: None,
            message_id,
        } => {
            let found = session
                .acks
                .values()
                .find(|e| e.message.as_str() == message_id);
            // STOMP 1.0 names no subscription: a message id we do not track may be a topic
            // message delivered to one of the session's client-mode topic subscriptions.
            let topic_acks = session
                .subscriptions
                .values()
                .any(|s| matches!(s.target, Target::Topic(_)) && s.ack != AckMode::Auto);
            if found.is_none() && topic_acks {
                return Found::Topic;
            }
            found
        }
    };
    found.map_or(Found::Nothing, |entry| Found::Queue(entry.clone()))
}

impl Broker for MemoryBroker {
    fn subscribe(&self, subscription: Subscription) -> Result<(), BrokerError> {
        let Subscription {
            session,
            id,
            destination,
            ack,
            outbox,
        } = subscription;
        let target = match destination {
            Destination::App(path) => {
                return Err(BrokerError::NotBrokerDestination(path.to_string()))
            }
            Destination::Queue(name) if name.has_wildcards() => {
                return Err(BrokerError::PatternOnQueue(name.to_string()))
            }
            Destination::Queue(name) => Target::Queue(name),
            Destination::Topic(name) => Target::Topic(name),
        };
        let token = self.ids.token();
        let cell = self.session_or_insert(session);
        {
            let mut state = lock(&cell);
            if state.subscriptions.contains_key(&id) {
                return Err(BrokerError::DuplicateSubscription(id));
            }
            let entry = SubEntry {
                token,
                target: target.clone(),
                ack,
            };
            state.subscriptions.insert(id.clone(), entry);
        }
        // Install only if no unsubscribe or session_gone got in between (checked under the
        // registry's lock, which those take to remove it).
        match target {
            Target::Topic(name) => {
                let mut topics = write(&self.topics);
                if lock(&cell).holds(&id, token) {
                    let sub = TopicSub {
                        token,
                        id,
                        ack,
                        outbox,
                    };
                    topics.insert(&name, sub);
                }
            }
            Target::Queue(name) => self.with_queue(&name, |queue| {
                if lock(&cell).holds(&id, token) {
                    let sub = QueueSub {
                        token,
                        id,
                        ack,
                        outbox,
                        session: Arc::clone(&cell),
                        unacked: Default::default(),
                    };
                    queue.subscribe(sub, &self.pump());
                }
            }),
        }
        Ok(())
    }

    fn unsubscribe(&self, session: SessionId, id: &SubscriptionId) -> Result<(), BrokerError> {
        let unknown = || BrokerError::UnknownSubscription(id.clone());
        let cell = self.session(session).ok_or_else(unknown)?;
        let entry = lock(&cell).subscriptions.remove(id).ok_or_else(unknown)?;
        self.detach(entry);
        Ok(())
    }

    fn publish(&self, message: Publish) -> Result<MessageId, BrokerError> {
        let Publish {
            destination,
            headers,
            body,
        } = message;
        let (name, queue) = match destination {
            Destination::App(path) => {
                return Err(BrokerError::NotBrokerDestination(path.to_string()))
            }
            Destination::Topic(name) | Destination::Queue(name) if name.has_wildcards() => {
                return Err(BrokerError::PatternNotAllowed(name.to_string()))
            }
            Destination::Topic(name) => (name, false),
            Destination::Queue(name) => (name, true),
        };
        let id = self.ids.message();
        let message = Message::new(id.clone(), name, headers, body);
        let message = Arc::new(if queue {
            message.delivered_once()
        } else {
            message
        });
        if queue {
            let name = message.destination.clone();
            let limit = self.config.max_queue_len;
            let weight = message.weight();
            self.reserve(weight)?;
            let published =
                self.with_queue(&name, |queue| queue.publish(message, limit, &self.pump()));
            if published.is_err() {
                self.queued_bytes.fetch_sub(weight, Ordering::Relaxed);
                return Err(BrokerError::QueueFull { queue: name, limit });
            }
        } else {
            let out = read(&self.topics).fan_out(&message, &self.ids);
            self.delivered.fetch_add(out.delivered, Ordering::Relaxed);
            if out.skipped > 0 {
                tracing::debug!(
                    destination = %message.destination,
                    skipped = out.skipped,
                    "slow or gone subscribers skipped"
                );
            }
        }
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    fn ack(&self, session: SessionId, r: AckRef<'_>) -> Result<(), BrokerError> {
        self.settle(session, r, false)
    }

    fn nack(&self, session: SessionId, r: AckRef<'_>) -> Result<(), BrokerError> {
        self.settle(session, r, true)
    }

    fn session_gone(&self, session: SessionId) {
        let Some(cell) = write(&self.sessions).remove(&session) else {
            return;
        };
        let subscriptions = {
            let mut state = lock(&cell);
            state.gone = true;
            state.acks.clear();
            mem::take(&mut state.subscriptions)
        };
        let mut queues = Vec::new();
        {
            let mut topics = None;
            for entry in subscriptions.into_values() {
                match entry.target {
                    Target::Topic(name) => topics
                        .get_or_insert_with(|| write(&self.topics))
                        .remove(&name, entry.token),
                    Target::Queue(name) => queues.push((name, entry.token)),
                }
            }
        }
        for (name, token) in queues {
            self.leave_queue(&name, token);
        }
    }
}

/// Identifier sources of one broker.
#[derive(Debug)]
pub(crate) struct Ids {
    /// Distinguishes this broker's message ids from another instance's (or an earlier run's).
    prefix: Box<str>,
    messages: AtomicU64,
    acks: AtomicU64,
    tokens: AtomicU64,
}

impl Ids {
    fn new() -> Ids {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Ids {
            // Fixed width, so the instance number cannot run into the timestamp.
            prefix: format!("{:011x}{instance:x}", millis & 0xfff_ffff_ffff).into(),
            messages: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
        }
    }

    fn message(&self) -> MessageId {
        let n = self.messages.fetch_add(1, Ordering::Relaxed);
        MessageId::from(format!("{}-{n}", self.prefix))
    }

    /// The next ack sequence number. Increasing, so a subscription's unacknowledged
    /// deliveries (recorded under their queue's lock) are sorted by it.
    pub(crate) fn ack_seq(&self) -> u64 {
        self.acks.fetch_add(1, Ordering::Relaxed)
    }

    /// A topic delivery's ack id: `t` and hex digits, which queue ack ids (`q…`) never are.
    pub(crate) fn topic_ack(&self) -> AckId {
        AckId::from(format!("t{:x}", self.ack_seq()))
    }

    fn is_topic_ack(id: &str) -> bool {
        id.strip_prefix('t')
            .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    fn token(&self) -> u64 {
        self.tokens.fetch_add(1, Ordering::Relaxed)
    }
}

// The broker's own code never panics while holding a lock, so a poisoned lock can only come
// from a panic elsewhere (a tracing layer, say); its data is still consistent.

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
