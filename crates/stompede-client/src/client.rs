//! [`Client`]: the handle applications hold, and what it shares with the driver task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stompede_stomp::{Command, Frame};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::config::{ClientConfig, Transport};
use crate::connection::{self, Session};
use crate::driver::Driver;
use crate::error::Error;
use crate::message::Message;
use crate::send::SendBuilder;
use crate::subscription::{AckMode, SubscribeOptions, Subscription};
use crate::transaction::Transaction;

/// Commands queued between the handles and the driver; a full queue makes senders wait.
const COMMAND_QUEUE: usize = 1024;

/// Where the client's connection stands. Watch it with [`Client::state_changes`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum State {
    /// Connected, and (after a reconnection) every subscription restored.
    Connected(Session),
    /// The connection was lost; the client is waiting or trying to connect again.
    Reconnecting {
        /// 1 for the first attempt after the loss.
        attempt: u32,
        /// Why the connection (or the previous attempt) failed.
        cause: Error,
    },
    /// For good: after [`Client::disconnect`] (`cause` is `None`), or after a loss with no
    /// reconnection configured or none left.
    Closed {
        /// Why, unless the application disconnected.
        cause: Option<Error>,
    },
}

/// A receipt waiter: the driver answers when the RECEIPT (or an error) arrives.
pub(crate) type Waiter = oneshot::Sender<Result<(), Error>>;

/// What handles ask of the driver.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Write `frame` (with its `receipt` header already set when `receipt` is some). With
    /// `connection`, only on that connection: a later one fails the waiter with `Stale`.
    Frame {
        frame: Frame,
        receipt: Option<(String, Waiter)>,
        connection: Option<u64>,
    },
    /// Start routing `id`'s MESSAGEs to `tx` and send `frame` (a SUBSCRIBE without a receipt
    /// header); answer `receipt` once the server confirmed it.
    Subscribe {
        id: String,
        frame: Frame,
        ack: AckMode,
        tx: mpsc::Sender<Result<Message, Error>>,
        receipt: Option<Waiter>,
    },
    /// Stop routing `id` and send UNSUBSCRIBE.
    Unsubscribe { id: String, receipt: Option<Waiter> },
    /// Send DISCONNECT, wait for its receipt, close.
    Disconnect { done: Waiter },
}

/// What every handle (client, subscriptions, transactions, messages) shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) commands: mpsc::Sender<Cmd>,
    pub(crate) state: watch::Receiver<State>,
    pub(crate) ids: Arc<AtomicU64>,
    pub(crate) receipt_timeout: Duration,
    /// SockJS: bodies must be UTF-8.
    pub(crate) text_only: bool,
    pub(crate) subscription_capacity: usize,
}

impl Shared {
    /// A new identifier such as `tx-7`, unique within this client.
    pub(crate) fn next_id(&self, prefix: &str) -> String {
        next_id(&self.ids, prefix)
    }

    /// The current connection's number, or why there is none.
    pub(crate) fn connection(&self) -> Result<u64, Error> {
        match &*self.state.borrow() {
            State::Connected(session) => Ok(session.connection),
            State::Reconnecting { .. } => Err(Error::NotConnected),
            State::Closed { .. } => Err(Error::Closed),
        }
    }

    /// Queues `frame`, then waits for its receipt if `receipt` is set. With `connection`,
    /// the frame only makes sense on that connection.
    pub(crate) async fn submit(
        &self,
        mut frame: Frame,
        receipt: bool,
        connection: Option<u64>,
    ) -> Result<(), Error> {
        let current = self.connection()?;
        if connection.is_some_and(|c| c != current) {
            return Err(Error::Stale);
        }
        if self.text_only && std::str::from_utf8(frame.body()).is_err() {
            return Err(Error::NotText);
        }
        let (receipt, waiting) = if receipt {
            let id = self.next_id("r-");
            frame.push_header("receipt", id.as_str());
            let (tx, rx) = oneshot::channel();
            (Some((id, tx)), Some(rx))
        } else {
            (None, None)
        };
        self.commands
            .send(Cmd::Frame {
                frame,
                receipt,
                connection,
            })
            .await
            .map_err(|_| Error::Closed)?;
        match waiting {
            Some(rx) => self.receipt(rx).await,
            None => Ok(()),
        }
    }

    /// Waits for a receipt within the receipt timeout.
    pub(crate) async fn receipt(
        &self,
        rx: oneshot::Receiver<Result<(), Error>>,
    ) -> Result<(), Error> {
        match tokio::time::timeout(self.receipt_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::ReceiptTimeout(self.receipt_timeout)),
        }
    }
}

pub(crate) fn next_id(ids: &AtomicU64, prefix: &str) -> String {
    format!("{prefix}{}", ids.fetch_add(1, Ordering::Relaxed))
}

/// A STOMP client: one connection (and its replacements, with reconnection on), driven by a
/// background task. Cheap to clone; every clone is the same client.
///
/// The connection is closed by [`Client::disconnect`], or when every `Client`,
/// [`Subscription`] and [`Transaction`] handle is gone.
///
/// ```no_run
/// # async fn example() -> Result<(), stompede_client::Error> {
/// use futures_util::StreamExt;
/// use stompede_client::{Client, ClientConfig, SubscribeOptions};
///
/// let client = Client::connect(ClientConfig::new("ws://127.0.0.1:8080/ws/websocket")).await?;
/// let mut news = client.subscribe("/topic/news", SubscribeOptions::default()).await?;
/// client.send("/topic/news", "hello").receipt().await?;
/// if let Some(message) = news.next().await {
///     println!("{:?}", message?.body_text());
/// }
/// client.disconnect().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl Client {
    /// Connects: opens the transport, sends CONNECT and waits for CONNECTED, all within
    /// [`ClientConfig::connect_timeout`]. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unusable configuration, [`Error::Transport`] if the server
    /// cannot be reached, [`Error::Server`] if it refuses the CONNECT (e.g. bad login),
    /// [`Error::ConnectTimeout`], [`Error::Protocol`]. Reconnection applies only to
    /// connections lost later: a failed first connection is returned here.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime: the connection's task is spawned on it.
    pub async fn connect(mut config: ClientConfig) -> Result<Client, Error> {
        config.subscription_capacity = config.subscription_capacity.max(1);
        let connection = connection::establish(&config, 1).await?;
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let (state_tx, state) = watch::channel(State::Connected(connection.session.clone()));
        let ids = Arc::new(AtomicU64::new(1));
        let shared = Arc::new(Shared {
            commands,
            state,
            ids: Arc::clone(&ids),
            receipt_timeout: config.receipt_timeout,
            text_only: matches!(config.transport, Transport::SockJs(_)),
            subscription_capacity: config.subscription_capacity,
        });
        let span = tracing::info_span!(
            "stomp_client",
            url = %config.url,
            transport = ?config.transport,
        );
        let driver = Driver::new(config, rx, state_tx, ids, Arc::downgrade(&shared));
        tokio::spawn(driver.run(connection).instrument(span));
        Ok(Client { shared })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.state.borrow().clone()
    }

    /// A receiver of every state change (connected, reconnecting, closed).
    pub fn state_changes(&self) -> watch::Receiver<State> {
        self.shared.state.clone()
    }

    /// The current connection's session, if connected.
    pub fn session(&self) -> Option<Session> {
        match &*self.shared.state.borrow() {
            State::Connected(session) => Some(session.clone()),
            _ => None,
        }
    }

    /// Waits until the client is connected (at once if it is), e.g. after a reconnection.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the client closes instead.
    pub async fn connected(&self) -> Result<Session, Error> {
        let mut state = self.shared.state.clone();
        let result = state
            .wait_for(|s| matches!(s, State::Connected(_) | State::Closed { .. }))
            .await;
        match result.as_deref() {
            Ok(State::Connected(session)) => Ok(session.clone()),
            _ => Err(Error::Closed),
        }
    }

    /// Subscribes to `destination`. Unless [`SubscribeOptions::receipt`] is off, waits for
    /// the server to confirm, so that messages sent afterwards reach the subscription.
    ///
    /// While the client is reconnecting, the subscription is made once the connection is
    /// back (and a receipt, if asked for, waits for that).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`]; with a receipt, whatever the server or the connection answers.
    pub async fn subscribe(
        &self,
        destination: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        if let Err(Error::Closed) = self.shared.connection() {
            return Err(Error::Closed);
        }
        let id = self.shared.next_id("sub-");
        let mut frame = Frame::new(Command::Subscribe)
            .with_header("id", id.as_str())
            .with_header("destination", destination)
            .with_header("ack", options.ack.as_str());
        for (name, value) in options.headers {
            frame.push_header(name, value);
        }
        let (tx, rx) = mpsc::channel(self.shared.subscription_capacity);
        let (receipt, waiting) = if options.receipt {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.shared
            .commands
            .send(Cmd::Subscribe {
                id: id.clone(),
                frame,
                ack: options.ack,
                tx,
                receipt,
            })
            .await
            .map_err(|_| Error::Closed)?;
        // Made before waiting, so that a failure (or a cancelled wait) unsubscribes.
        let subscription =
            Subscription::new(Arc::clone(&self.shared), id, destination.to_owned(), rx);
        if let Some(waiting) = waiting {
            self.shared.receipt(waiting).await?;
        }
        Ok(subscription)
    }

    /// A SEND of `body` to `destination`. Awaiting it queues the frame (fire and forget);
    /// [`SendBuilder::receipt`] makes it wait for the server's receipt instead.
    ///
    /// ```no_run
    /// # async fn example(client: stompede_client::Client) -> Result<(), stompede_client::Error> {
    /// client.send("/queue/jobs", "job 1").await?;
    /// client
    ///     .send("/queue/jobs", r#"{"job":2}"#)
    ///     .content_type("application/json")
    ///     .header("priority", "9")
    ///     .receipt()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send(&self, destination: &str, body: impl Into<Bytes>) -> SendBuilder<'_> {
        SendBuilder::new(&self.shared, destination, body.into())
    }

    /// Starts a transaction (BEGIN). Frames sent through it take effect on
    /// [`Transaction::commit`]; dropping it uncommitted aborts it.
    ///
    /// # Errors
    ///
    /// [`Error::NotConnected`] while reconnecting, [`Error::Closed`].
    pub async fn begin(&self) -> Result<Transaction, Error> {
        let connection = self.shared.connection()?;
        let id = self.shared.next_id("tx-");
        let frame = Frame::new(Command::Begin).with_header("transaction", id.as_str());
        self.shared.submit(frame, false, Some(connection)).await?;
        Ok(Transaction::new(Arc::clone(&self.shared), id, connection))
    }

    /// Disconnects cleanly: DISCONNECT with a receipt, waits for it (at most the receipt
    /// timeout), closes the transport. Subscriptions end. Returns at once if already closed.
    ///
    /// # Errors
    ///
    /// [`Error::ReceiptTimeout`] if the server did not confirm; the client is closed anyway.
    pub async fn disconnect(&self) -> Result<(), Error> {
        let (done, rx) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Cmd::Disconnect { done })
            .await
            .is_err()
        {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }
}
