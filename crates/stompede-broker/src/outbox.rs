//! Per-session bounded outbound queues: how the broker hands deliveries to sessions
//! without ever waiting for one.
//!
//! An outbox is one small shared block: a `VecDeque` behind a mutex that only the broker (to
//! push) and the session (to pop) ever take, for a few instructions, and the session's waker.
//! A tokio `mpsc` channel allocated about 2.5 KiB per session up front (its first block of 32
//! slots and its cache-padded channel state), which at tens of thousands of idle sessions was a
//! quarter of the server's memory; an empty `VecDeque` allocates nothing until the first
//! delivery.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

use crate::ids::SessionId;
use crate::message::Delivery;

/// Past this many slots, a queue that empties gives its memory back (down to
/// [`KEEP_CAPACITY`]): a burst must not pin its peak for the session's lifetime, while the
/// usual few slots stay, so that steady traffic does not allocate per delivery.
const SHRINK_ABOVE: usize = 256;
/// Slots an emptied queue keeps.
const KEEP_CAPACITY: usize = 16;

/// Limits of one outbox.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    /// Most bytes queued for the session before it counts as a slow consumer. Default: 512 KiB.
    pub max_bytes: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_bytes: 512 * 1024,
        }
    }
}

/// Why an offer failed. Either way the delivery was not queued and the session should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undeliverable {
    /// The session's outbox is (or was once) over its byte limit.
    #[error("session {0} cannot keep up")]
    SlowConsumer(SessionId),
    /// The session's receiver is gone.
    #[error("session {0} is gone")]
    Gone(SessionId),
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Sum of the weights of queued deliveries.
    queued: AtomicUsize,
    limit: usize,
    /// Set once, never cleared: a session that fell behind is closed, not resumed.
    overflowed: AtomicBool,
    /// Wakes [`OutboxReceiver::overflowed`].
    overflow: Notify,
    /// Live [`Outbox`] clones; at zero, [`OutboxReceiver::recv`] ends once the queue is empty.
    senders: AtomicUsize,
}

#[derive(Debug, Default)]
struct Queue {
    deliveries: VecDeque<Delivery>,
    /// The receiver waiting in [`OutboxReceiver::recv`], if it is.
    waker: Option<Waker>,
    /// The receiver is gone: offers fail.
    closed: bool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock (pushes and pops only), so a poisoned queue
        // is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sending half of one session's outbound queue. Cheap to clone.
///
/// Bounded by bytes: each delivery weighs its body length, plus the lengths of its
/// headers' names and values, plus 64 (an approximation of its encoded size).
#[derive(Debug)]
pub struct Outbox {
    session: SessionId,
    shared: Arc<Shared>,
}

/// Receiving half of one session's outbound queue, owned by the session's task.
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<Shared>,
}

impl Outbox {
    /// Creates the outbox of `session`. Allocates nothing for the queue until a delivery
    /// arrives.
    pub fn new(session: SessionId, limits: OutboxLimits) -> (Outbox, OutboxReceiver) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            queued: AtomicUsize::new(0),
            limit: limits.max_bytes,
            overflowed: AtomicBool::new(false),
            overflow: Notify::new(),
            senders: AtomicUsize::new(1),
        });
        let outbox = Outbox {
            session,
            shared: Arc::clone(&shared),
        };
        (outbox, OutboxReceiver { shared })
    }

    /// The session this outbox belongs to.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Queues `delivery` for the session. Never waits.
    ///
    /// If the queued bytes would exceed the limit, the outbox is marked overflowed, the
    /// receiver's [`OutboxReceiver::overflowed`] wakes, and the delivery is dropped. An empty
    /// outbox accepts one delivery of any size, so that a message larger than the limit is
    /// not undeliverable everywhere.
    ///
    /// # Errors
    /// [`Undeliverable::SlowConsumer`] on overflow, and for every offer after one;
    /// [`Undeliverable::Gone`] once the receiver is dropped.
    pub fn offer(&self, delivery: Delivery) -> Result<(), Undeliverable> {
        let shared = &*self.shared;
        if shared.overflowed.load(Ordering::Acquire) {
            return Err(Undeliverable::SlowConsumer(self.session));
        }
        let weight = delivery.weight();
        let before = shared.queued.fetch_add(weight, Ordering::AcqRel);
        if before != 0 && before.saturating_add(weight) > shared.limit {
            shared.queued.fetch_sub(weight, Ordering::AcqRel);
            shared.overflowed.store(true, Ordering::Release);
            shared.overflow.notify_waiters();
            return Err(Undeliverable::SlowConsumer(self.session));
        }
        let waker = {
            let mut queue = shared.queue();
            if queue.closed {
                drop(queue);
                shared.queued.fetch_sub(weight, Ordering::AcqRel);
                return Err(Undeliverable::Gone(self.session));
            }
            queue.deliveries.push_back(delivery);
            queue.waker.take()
        };
        // Woken outside the lock: the woken task may run on another thread at once.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether an offer has ever failed for lack of room.
    pub fn is_overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Outbox {
            session: self.session,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last sender: a waiting receiver must see the end.
            let waker = self.shared.queue().waker.take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl OutboxReceiver {
    /// The next delivery, or `None` once every [`Outbox`] is dropped and the queue is empty.
    /// Cancel-safe.
    pub async fn recv(&mut self) -> Option<Delivery> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery: `Ready(None)` once every [`Outbox`] is dropped and the
    /// queue is empty; `Pending` wakes the task of `cx` at the next offer.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let mut queue = self.shared.queue();
        if let Some(delivery) = self.pop(&mut queue) {
            return Poll::Ready(Some(delivery));
        }
        if self.shared.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(None);
        }
        match &mut queue.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            none => *none = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next delivery if one is queued; for batching writes.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        let mut queue = self.shared.queue();
        self.pop(&mut queue)
    }

    /// Resolves once the outbox has overflowed (immediately if it already has). Cancel-safe.
    pub async fn overflowed(&self) {
        loop {
            let mut notified = pin!(self.shared.overflow.notified());
            // Register before checking the flag, so a notification in between is not lost.
            notified.as_mut().enable();
            if self.shared.overflowed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Bytes currently queued, by the weight described on [`Outbox`].
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    fn pop(&self, queue: &mut Queue) -> Option<Delivery> {
        let delivery = queue.deliveries.pop_front()?;
        if queue.deliveries.is_empty() && queue.deliveries.capacity() > SHRINK_ABOVE {
            queue.deliveries.shrink_to(KEEP_CAPACITY);
        }
        self.shared
            .queued
            .fetch_sub(delivery.weight(), Ordering::AcqRel);
        Some(delivery)
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        // Later offers fail with `Gone`; what is queued is dropped now, not with the last
        // sender (a subscription may outlive its session briefly in the broker).
        let deliveries = {
            let mut queue = self.shared.queue();
            queue.closed = true;
            queue.waker = None;
            std::mem::take(&mut queue.deliveries)
        };
        let weight: usize = deliveries.iter().map(Delivery::weight).sum();
        self.shared.queued.fetch_sub(weight, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::message::Message;

    fn delivery(body_len: usize) -> Delivery {
        Delivery {
            subscription: "sub".into(),
            message: Arc::new(Message::new(
                "m".into(),
                "/topic/t".into(),
                Vec::new(),
                Bytes::from(vec![b'x'; body_len]),
            )),
            ack: None,
            redelivered: false,
        }
    }

    #[tokio::test]
    async fn byte_limit_overflow_is_slow_consumer_and_sticks() {
        let session = SessionId(7);
        let (outbox, mut rx) = Outbox::new(session, OutboxLimits { max_bytes: 1000 });
        // Each weighs 236 + 64 = 300 bytes: three fit, the fourth does not.
        for _ in 0..3 {
            assert_eq!(outbox.offer(delivery(236)), Ok(()));
        }
        assert_eq!(rx.queued_bytes(), 900);
        assert_eq!(
            outbox.offer(delivery(236)),
            Err(Undeliverable::SlowConsumer(session))
        );
        assert!(outbox.is_overflowed());
        rx.overflowed().await;
        // Draining does not revive it: the session is to be closed.
        while rx.try_recv().is_some() {}
        assert_eq!(rx.queued_bytes(), 0);
        assert_eq!(
            outbox.offer(delivery(0)),
            Err(Undeliverable::SlowConsumer(session))
        );
    }

    #[tokio::test]
    async fn overflowed_wakes_a_waiting_receiver() {
        let (outbox, rx) = Outbox::new(SessionId(1), OutboxLimits { max_bytes: 100 });
        let waiter = tokio::spawn(async move { rx.overflowed().await });
        tokio::task::yield_now().await;
        assert_eq!(outbox.offer(delivery(10)), Ok(()));
        assert!(outbox.offer(delivery(10)).is_err());
        waiter.await.expect("waiter panicked");
    }

    #[tokio::test]
    async fn recv_gives_deliveries_in_order_and_frees_bytes() {
        let (outbox, mut rx) = Outbox::new(SessionId(1), OutboxLimits::default());
        outbox.offer(delivery(1)).expect("room");
        outbox.offer(delivery(2)).expect("room");
        assert_eq!(rx.queued_bytes(), 65 + 66);
        let first = rx.recv().await.expect("queued");
        assert_eq!(first.message.body.len(), 1);
        assert_eq!(rx.queued_bytes(), 66);
        assert_eq!(rx.try_recv().map(|d| d.message.body.len()), Some(2));
        assert!(rx.try_recv().is_none());
        drop(outbox);
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_offer_and_at_the_last_sender() {
        let (outbox, mut rx) = Outbox::new(SessionId(1), OutboxLimits::default());
        let second = outbox.clone();
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await.map(|d| d.message.body.len());
            (first, rx.recv().await.is_none())
        });
        tokio::task::yield_now().await;
        second.offer(delivery(3)).expect("room");
        drop(second);
        tokio::task::yield_now().await;
        drop(outbox);
        let (first, ended) = waiter.await.expect("waiter panicked");
        assert_eq!(first, Some(3));
        assert!(ended, "recv ends once every sender is gone");
    }

    #[test]
    fn dropping_the_receiver_frees_what_was_queued() {
        let (outbox, rx) = Outbox::new(SessionId(1), OutboxLimits::default());
        let shared = Arc::clone(&rx.shared);
        outbox.offer(delivery(10)).expect("room");
        drop(rx);
        assert_eq!(shared.queued.load(Ordering::Acquire), 0);
        assert_eq!(
            outbox.offer(delivery(1)),
            Err(Undeliverable::Gone(SessionId(1)))
        );
    }

    #[test]
    fn empty_outbox_accepts_one_oversized_delivery() {
        let (outbox, _rx) = Outbox::new(SessionId(1), OutboxLimits { max_bytes: 100 });
        assert_eq!(outbox.offer(delivery(500)), Ok(()));
        assert!(outbox.offer(delivery(0)).is_err());
    }

    #[test]
    fn offer_after_receiver_drop_is_gone() {
        let (outbox, rx) = Outbox::new(SessionId(3), OutboxLimits::default());
        drop(rx);
        assert_eq!(
            outbox.offer(delivery(1)),
            Err(Undeliverable::Gone(SessionId(3)))
        );
        assert!(!outbox.is_overflowed());
    }
}
