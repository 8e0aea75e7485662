//! [`Subscription`]: a `Stream` of the messages of one SUBSCRIBE.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::client::{Cmd, Shared};
use crate::error::Error;
use crate::message::Message;

/// How the server learns that a message was handled (the SUBSCRIBE `ack` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// Messages count as handled once sent. [`Message::ack`] does nothing.
    #[default]
    Auto,
    /// An ACK acknowledges its message and every earlier one of the subscription.
    Client,
    /// An ACK acknowledges its message only.
    ClientIndividual,
}

impl AckMode {
    /// The header value: `auto`, `client` or `client-individual`.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }
}

/// How to subscribe; see [`Client::subscribe`](crate::Client::subscribe).
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// The acknowledgement mode. Default: [`AckMode::Auto`].
    pub ack: AckMode,
    /// More SUBSCRIBE headers (e.g. RabbitMQ's `prefetch-count`, `durable`).
    pub headers: Vec<(String, String)>,
    /// Wait for the server to confirm the subscription. Default: true.
    pub receipt: bool,
}

impl Default for SubscribeOptions {
    fn default() -> SubscribeOptions {
        SubscribeOptions {
            ack: AckMode::Auto,
            headers: Vec::new(),
            receipt: true,
        }
    }
}

impl SubscribeOptions {
    /// The defaults with `ack` mode.
    pub fn ack(ack: AckMode) -> SubscribeOptions {
        SubscribeOptions {
            ack,
            ..SubscribeOptions::default()
        }
    }

    /// Adds a SUBSCRIBE header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> SubscribeOptions {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`SubscribeOptions::receipt`].
    #[must_use]
    pub fn receipt(mut self, receipt: bool) -> SubscribeOptions {
        self.receipt = receipt;
        self
    }
}

/// The messages of one subscription, in the order the server sent them.
///
/// An `Err` item reports an ERROR frame from the server or the loss of the connection. With
/// reconnection on, the stream goes on after a loss: the client subscribes again with the
/// same id once reconnected (messages published meanwhile to a topic are not seen). The
/// stream ends (`None`) after [`Client::disconnect`](crate::Client::disconnect), or after the
/// `Err` of a loss the client does not recover from.
///
/// The client buffers [`ClientConfig::subscription_capacity`](crate::ClientConfig) messages
/// per subscription; when one buffer is full it stops reading from the server (all
/// subscriptions wait) until the application takes a message, so a subscription nobody reads
/// stalls the connection.
///
/// Dropping the subscription sends UNSUBSCRIBE; [`Subscription::unsubscribe`] also waits
/// for the server to confirm.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
    id: String,
    destination: String,
    rx: mpsc::Receiver<Result<Message, Error>>,
    /// Still subscribed: dropping must unsubscribe.
    active: bool,
}

impl Subscription {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: String,
        destination: String,
        rx: mpsc::Receiver<Result<Message, Error>>,
    ) -> Subscription {
        Subscription {
            shared,
            id,
            destination,
            rx,
            active: true,
        }
    }

    /// The subscription id (the SUBSCRIBE `id` header), kept across reconnections.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The destination subscribed to.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The next message; `None` once the subscription has ended.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.rx.recv().await
    }

    /// Sends UNSUBSCRIBE and waits for the server's receipt.
    ///
    /// # Errors
    ///
    /// What the server or the connection answers; [`Error::ReceiptTimeout`].
    pub async fn unsubscribe(mut self) -> Result<(), Error> {
        self.active = false;
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Cmd::Unsubscribe {
                id: self.id.clone(),
                receipt: Some(tx),
            })
            .await
            .map_err(|_| Error::Closed)?;
        self.shared.receipt(rx).await
    }
}

impl Stream for Subscription {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.active {
            // If the queue is full the driver notices anyway: the next message for this
            // subscription finds its channel closed, and the driver unsubscribes then.
            let _ = self.shared.commands.try_send(Cmd::Unsubscribe {
                id: std::mem::take(&mut self.id),
                receipt: None,
            });
        }
    }
}
