//! [`Transaction`]: BEGIN … COMMIT or ABORT.

use std::sync::Arc;

use bytes::Bytes;
use stompede_stomp::{Command, Frame};

use crate::client::{Cmd, Shared};
use crate::error::Error;
use crate::message::Message;
use crate::send::{AckBuilder, SendBuilder};

/// An open transaction; see [`Client::begin`](crate::Client::begin). SENDs and ACKs made
/// through it take effect together on [`Transaction::commit`], or not at all on
/// [`Transaction::abort`] (or when it is dropped uncommitted, or the connection is lost).
///
/// Servers differ on receipts inside a transaction: stompede confirms each frame when it is
/// buffered, RabbitMQ only when the COMMIT runs it (and never after an ABORT). Asking for a
/// receipt on [`Transaction::send`] is therefore not portable; the receipts of
/// [`Transaction::commit`] and [`Transaction::abort`] are.
#[derive(Debug)]
pub struct Transaction {
    shared: Arc<Shared>,
    id: String,
    connection: u64,
    /// Committed or aborted: dropping must not abort.
    done: bool,
}

impl Transaction {
    pub(crate) fn new(shared: Arc<Shared>, id: String, connection: u64) -> Transaction {
        Transaction {
            shared,
            id,
            connection,
            done: false,
        }
    }

    /// The transaction id (the `transaction` header).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn connection(&self) -> u64 {
        self.connection
    }

    /// A SEND within this transaction; see [`Client::send`](crate::Client::send).
    pub fn send(&self, destination: &str, body: impl Into<Bytes>) -> SendBuilder<'_> {
        SendBuilder::new(&self.shared, destination, body.into()).transaction(self)
    }

    /// An ACK of `message` within this transaction.
    pub fn ack<'a>(&self, message: &'a Message) -> AckBuilder<'a> {
        message.ack().transaction(self)
    }

    /// A NACK of `message` within this transaction.
    pub fn nack<'a>(&self, message: &'a Message) -> AckBuilder<'a> {
        message.nack().transaction(self)
    }

    /// COMMIT, waiting for the server's receipt.
    ///
    /// # Errors
    ///
    /// [`Error::Stale`] if the connection the transaction began on was lost (the server
    /// discarded it); what the server or the connection answers; [`Error::ReceiptTimeout`].
    pub async fn commit(mut self) -> Result<(), Error> {
        self.done = true;
        self.end(Command::Commit).await
    }

    /// ABORT, waiting for the server's receipt.
    ///
    /// # Errors
    ///
    /// As [`Transaction::commit`].
    pub async fn abort(mut self) -> Result<(), Error> {
        self.done = true;
        self.end(Command::Abort).await
    }

    async fn end(&self, command: Command) -> Result<(), Error> {
        let frame = Frame::new(command).with_header("transaction", self.id.as_str());
        self.shared.submit(frame, true, Some(self.connection)).await
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.done {
            let frame = Frame::new(Command::Abort).with_header("transaction", self.id.as_str());
            // Best effort: a transaction left open on a full queue dies with its connection.
            let _ = self.shared.commands.try_send(Cmd::Frame {
                frame,
                receipt: None,
                connection: Some(self.connection),
            });
        }
    }
}
