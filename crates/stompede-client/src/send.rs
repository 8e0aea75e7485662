//! Builders for SEND and ACK/NACK, awaited directly (`IntoFuture`): fire and forget by
//! default, or waiting for the server's receipt with `.receipt()`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use bytes::Bytes;
use stompede_stomp::{Command, Frame};

use crate::client::Shared;
use crate::error::Error;
use crate::message::Message;
use crate::subscription::AckMode;
use crate::transaction::Transaction;

/// The future of an awaited builder.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// A SEND frame being built; see [`Client::send`](crate::Client::send). Await it to send.
///
/// Awaiting without [`SendBuilder::receipt`] returns once the frame is queued for the
/// connection; it fails only if the client is not connected. With it, the future resolves
/// when the server confirms, or with the server's ERROR, a lost connection, or
/// [`Error::ReceiptTimeout`].
#[derive(Debug)]
#[must_use = "a SEND is sent only when awaited"]
pub struct SendBuilder<'a> {
    shared: &'a Shared,
    frame: Frame,
    receipt: bool,
    connection: Option<u64>,
}

impl<'a> SendBuilder<'a> {
    pub(crate) fn new(shared: &'a Shared, destination: &str, body: Bytes) -> SendBuilder<'a> {
        SendBuilder {
            shared,
            frame: Frame::new(Command::Send)
                .with_header("destination", destination)
                .with_body(body),
            receipt: false,
            connection: None,
        }
    }

    /// Adds a header (after `destination`; a repeated name does not override it).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> SendBuilder<'a> {
        self.frame.push_header(name, value);
        self
    }

    /// Sets `content-type`, e.g. `application/json` or `text/plain;charset=utf-8`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> SendBuilder<'a> {
        self.frame.remove_header("content-type");
        self.frame.push_header("content-type", content_type);
        self
    }

    /// Makes the SEND part of `transaction`: it takes effect on commit.
    pub fn transaction(mut self, transaction: &Transaction) -> SendBuilder<'a> {
        self.frame.remove_header("transaction");
        self.frame.push_header("transaction", transaction.id());
        self.connection = Some(transaction.connection());
        self
    }

    /// Asks for a receipt and waits for it when awaited.
    pub fn receipt(mut self) -> SendBuilder<'a> {
        self.receipt = true;
        self
    }
}

impl<'a> IntoFuture for SendBuilder<'a> {
    type Output = Result<(), Error>;
    type IntoFuture = SendFuture<'a>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            self.shared
                .submit(self.frame, self.receipt, self.connection)
                .await
        })
    }
}

/// An ACK or NACK being built; see [`Message::ack`]. Await it to send.
#[derive(Debug)]
#[must_use = "an ACK is sent only when awaited"]
pub struct AckBuilder<'a> {
    message: &'a Message,
    command: Command,
    transaction: Option<(String, u64)>,
    receipt: bool,
}

impl<'a> AckBuilder<'a> {
    pub(crate) fn new(message: &'a Message, command: Command) -> AckBuilder<'a> {
        AckBuilder {
            message,
            command,
            transaction: None,
            receipt: false,
        }
    }

    /// Makes the acknowledgement part of `transaction`.
    pub fn transaction(mut self, transaction: &Transaction) -> AckBuilder<'a> {
        self.transaction = Some((transaction.id().to_owned(), transaction.connection()));
        self
    }

    /// Asks for a receipt and waits for it when awaited.
    pub fn receipt(mut self) -> AckBuilder<'a> {
        self.receipt = true;
        self
    }
}

impl<'a> IntoFuture for AckBuilder<'a> {
    type Output = Result<(), Error>;
    type IntoFuture = SendFuture<'a>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let context = self.message.context();
            if context.mode == AckMode::Auto {
                return Ok(());
            }
            if self
                .transaction
                .as_ref()
                .is_some_and(|(_, connection)| *connection != context.connection)
            {
                return Err(Error::Stale);
            }
            let shared = context.shared.upgrade().ok_or(Error::Closed)?;
            let frame = self.message.ack_frame(
                self.command,
                self.transaction.as_ref().map(|(id, _)| id.as_str()),
            )?;
            shared
                .submit(frame, self.receipt, Some(context.connection))
                .await
        })
    }
}
