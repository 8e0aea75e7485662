//! Polls the session's quiet event sources (shutdown, the client's socket, heart-beat timers)
//! only after one of them has woken the task.
//!
//! A session mostly wakes for deliveries. Polling every `select!` branch on each wake-up
//! re-registered wakers on the socket, the shutdown token and both timers, and made
//! tungstenite zero-fill its read buffer and try a read: about 15% of the server's cycles in a
//! 1 → 1,000 fan-out at 10 msgs/s (`perf`), for sources that had nothing to say. Those
//! sources are polled with this gate's own waker instead, which records that one of them
//! fired before waking the task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use futures_util::task::AtomicWaker;

/// The flag and the task to wake; shared with the waker handed to the quiet sources.
#[derive(Debug)]
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Gate {
    flag: Arc<Flag>,
    waker: Waker,
}

impl Gate {
    /// A gate that lets the first poll through.
    pub(super) fn new() -> Gate {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&flag));
        Gate { flag, waker }
    }

    /// Whether the quiet sources must be polled now (one of them woke the task, or the gate
    /// was re-armed); the task of `cx` is woken when one of them fires later.
    pub(super) fn open(&self, cx: &Context<'_>) -> bool {
        self.flag.task.register(cx.waker());
        self.flag.woken.swap(false, Ordering::AcqRel)
    }

    /// The context to poll the quiet sources with.
    pub(super) fn context(&self) -> Context<'_> {
        Context::from_waker(&self.waker)
    }

    /// Makes the next [`Gate::open`] say yes: after a quiet source returned an event (the
    /// others may not have been polled), or after a timer was reset.
    pub(super) fn rearm(&self) {
        self.flag.woken.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    #[test]
    fn opens_first_then_only_after_a_source_woke_it_or_a_rearm() {
        let gate = Gate::new();
        let task = Context::from_waker(Waker::noop());
        assert!(gate.open(&task), "the first poll goes through");
        assert!(!gate.open(&task), "nothing woke the gate");
        gate.context().waker().wake_by_ref();
        assert!(gate.open(&task));
        assert!(!gate.open(&task));
        gate.rearm();
        assert!(gate.open(&task));
    }
}
