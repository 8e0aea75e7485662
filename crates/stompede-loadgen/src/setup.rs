//! Opening a run's connections: pacing the attempts, waiting until every connection is ready
//! (connected and subscribed) with a progress line and a deadline, and opening the senders.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{self, Instant, Interval, MissedTickBehavior};

use crate::conn::{self, Options, Stomp, Target};

/// Connection attempts in progress at once, so that the server's accept backlog does not
/// overflow into SYN retries (which add whole seconds).
const MAX_CONCURRENT_OPENS: usize = 64;

/// Paces connection attempts: at most `per_second` starts a second when given, and never more
/// than [`MAX_CONCURRENT_OPENS`] in progress.
pub(crate) struct Pacer {
    tick: Option<Interval>,
    opens: Arc<Semaphore>,
}

impl Pacer {
    /// A pacer for `per_second` starts a second (0: only the concurrency bound).
    pub(crate) fn new(per_second: u32) -> Pacer {
        let tick = (per_second > 0).then(|| {
            let mut tick = time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second)));
            tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
            tick
        });
        Pacer {
            tick,
            opens: Arc::new(Semaphore::new(MAX_CONCURRENT_OPENS)),
        }
    }

    /// Waits until the next attempt may start; drop the permit once it is done.
    pub(crate) async fn ready(&mut self) -> Option<OwnedSemaphorePermit> {
        if let Some(tick) = &mut self.tick {
            tick.tick().await;
        }
        // The semaphore is never closed, so acquiring only waits.
        self.opens.clone().acquire_owned().await.ok()
    }
}

/// Starts `count` connection tasks, `start(index, permit)` each, paced by a [`Pacer`] for
/// `per_second` attempts a second; a task drops its permit once its connection is open.
pub(crate) async fn spawn_paced<T>(
    count: u32,
    per_second: u32,
    mut start: impl FnMut(u32, Option<OwnedSemaphorePermit>) -> JoinHandle<T>,
) -> Vec<JoinHandle<T>> {
    let mut pacer = Pacer::new(per_second);
    let mut handles = Vec::with_capacity(count as usize);
    for index in 0..count {
        let permit = pacer.ready().await;
        handles.push(start(index, permit));
    }
    handles
}

/// One message per connection task: ready, or why not.
pub(crate) type Ready = mpsc::UnboundedSender<anyhow::Result<()>>;

/// Waits for `count` ready messages on `ready`, printing `what` progress every second.
///
/// # Errors
///
/// A connection failed (its error, with how many were ready), the tasks ended early, or not
/// all were ready by `deadline`.
pub(crate) async fn wait_ready(
    ready: &mut mpsc::UnboundedReceiver<anyhow::Result<()>>,
    count: u64,
    deadline: Instant,
    what: &str,
) -> anyhow::Result<()> {
    let mut done = 0u64;
    let mut ticker = time::interval_at(
        Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    while done < count {
        tokio::select! {
            message = ready.recv() => match message {
                Some(Ok(())) => done += 1,
                Some(Err(e)) => return Err(e.context(format!("{what}: {done} of {count} ready"))),
                None => bail!("{what}: tasks ended early ({done} of {count} ready)"),
            },
            _ = ticker.tick() => eprintln!("  {what} {done}/{count}"),
            () = time::sleep_until(deadline) => {
                bail!("{what}: only {done} of {count} ready within the setup timeout")
            }
        }
    }
    eprintln!("  {what} {done}/{count}");
    Ok(())
}

/// [`wait_ready`] for the tasks `spawner` starts, then the spawner's result (their handles).
/// On failure the spawner is stopped; the tasks it started end when the run's stop signal is
/// dropped.
///
/// # Errors
///
/// As [`wait_ready`], or the spawner panicked.
pub(crate) async fn spawned_ready<T>(
    spawner: JoinHandle<T>,
    ready: &mut mpsc::UnboundedReceiver<anyhow::Result<()>>,
    count: u64,
    deadline: Instant,
) -> anyhow::Result<T> {
    if let Err(e) = wait_ready(ready, count, deadline, "subscribed").await {
        spawner.abort();
        return Err(e);
    }
    spawner.await.context("connection spawner failed")
}

/// Opens `count` connections that only send (publishers, producers), one after the other, by
/// `deadline`; `role` names them in errors.
///
/// # Errors
///
/// One cannot connect, or not by the deadline.
pub(crate) async fn open_senders(
    target: &Target,
    count: u32,
    deadline: Instant,
    role: &str,
) -> anyhow::Result<Vec<Stomp>> {
    let mut senders = Vec::with_capacity(count as usize);
    for index in 0..count {
        let stomp = time::timeout_at(deadline, conn::open(target, Options::default()))
            .await
            .map_err(|_| anyhow!("{role} {index}: no CONNECTED within the setup timeout"))?
            .with_context(|| format!("{role} {index}"))?;
        senders.push(stomp);
    }
    Ok(senders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn readiness_fails_on_the_first_error_or_the_deadline() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(Ok(())).expect("open channel");
        tx.send(Ok(())).expect("open channel");
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(wait_ready(&mut rx, 2, deadline, "test").await.is_ok());
        tx.send(Err(anyhow::anyhow!("refused")))
            .expect("open channel");
        let e = wait_ready(&mut rx, 1, deadline, "test")
            .await
            .expect_err("failed");
        assert!(format!("{e:#}").contains("refused"), "{e:#}");
        let e = wait_ready(&mut rx, 1, deadline, "test")
            .await
            .expect_err("deadline");
        assert!(e.to_string().contains("within the setup timeout"), "{e}");
        drop(tx);
        assert!(
            wait_ready(&mut rx, 1, Instant::now() + Duration::from_secs(60), "t")
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pacer_bounds_concurrent_attempts() {
        let mut pacer = Pacer::new(0);
        let mut permits = Vec::new();
        for _ in 0..MAX_CONCURRENT_OPENS {
            permits.push(pacer.ready().await);
        }
        let blocked = time::timeout(Duration::from_secs(1), pacer.ready()).await;
        assert!(blocked.is_err(), "the next attempt waits for a permit");
        permits.pop();
        assert!(time::timeout(Duration::from_secs(1), pacer.ready())
            .await
            .is_ok());
    }
}
