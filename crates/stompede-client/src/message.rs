//! [`Message`]: a MESSAGE frame delivered to a subscription, and how to acknowledge it.

use std::fmt;
use std::sync::Weak;

use bytes::Bytes;
use stompede_stomp::{Command, Frame, Version};

use crate::client::Shared;
use crate::error::{Error, ProtocolError};
use crate::send::AckBuilder;
use crate::subscription::AckMode;

/// What a message needs to be acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct AckContext {
    /// Weak: messages sitting in a subscription's queue must not keep the client alive.
    pub(crate) shared: Weak<Shared>,
    pub(crate) mode: AckMode,
    pub(crate) version: Version,
    pub(crate) connection: u64,
}

/// A message delivered to a [`Subscription`](crate::Subscription).
///
/// With [`AckMode::Client`] or [`AckMode::ClientIndividual`], acknowledge it with
/// [`Message::ack`] or refuse it with [`Message::nack`] (the server then redelivers queue
/// messages). Acknowledgements only mean something on the connection the message came on:
/// after a reconnection they fail with [`Error::Stale`].
#[derive(Clone)]
pub struct Message {
    frame: Frame,
    context: AckContext,
}

impl Message {
    /// Checks the headers every MESSAGE carries.
    pub(crate) fn new(frame: Frame, context: AckContext) -> Result<Message, ProtocolError> {
        for header in ["destination", "message-id"] {
            if frame.header(header).is_none() {
                return Err(ProtocolError::MissingHeader {
                    command: Command::Message,
                    header,
                });
            }
        }
        Ok(Message { frame, context })
    }

    /// The `destination` header.
    pub fn destination(&self) -> &str {
        self.frame.header("destination").unwrap_or_default()
    }

    /// The `message-id` header.
    pub fn message_id(&self) -> &str {
        self.frame.header("message-id").unwrap_or_default()
    }

    /// The `subscription` header (absent only from some STOMP 1.0 servers).
    pub fn subscription(&self) -> Option<&str> {
        self.frame.header("subscription")
    }

    /// The `content-type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.frame.header("content-type")
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.frame.header(name)
    }

    /// Every header, in wire order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.frame.headers()
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        self.frame.body()
    }

    /// The body as text, if it is UTF-8.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(self.frame.body()).ok()
    }

    /// The number of the connection the message arrived on (see
    /// [`Session::connection`](crate::Session::connection)).
    pub fn connection(&self) -> u64 {
        self.context.connection
    }

    /// An ACK of this message. Awaiting it queues the frame; `.receipt()` waits for the
    /// server to confirm. A no-op for [`AckMode::Auto`] subscriptions.
    pub fn ack(&self) -> AckBuilder<'_> {
        AckBuilder::new(self, Command::Ack)
    }

    /// A NACK of this message (STOMP 1.1+): the server redelivers or drops it. A no-op for
    /// [`AckMode::Auto`] subscriptions.
    pub fn nack(&self) -> AckBuilder<'_> {
        AckBuilder::new(self, Command::Nack)
    }

    pub(crate) fn context(&self) -> &AckContext {
        &self.context
    }

    /// The ACK or NACK frame for this message in the negotiated version: 1.2 names the
    /// MESSAGE's `ack` header as `id`; 1.1 the `message-id` and `subscription`; 1.0 the
    /// `message-id`.
    pub(crate) fn ack_frame(
        &self,
        command: Command,
        transaction: Option<&str>,
    ) -> Result<Frame, Error> {
        let mut frame = Frame::new(command);
        match self.context.version {
            Version::V1_2 => {
                let id = self
                    .frame
                    .header("ack")
                    .ok_or(ProtocolError::MissingHeader {
                        command: Command::Message,
                        header: "ack",
                    })?;
                frame.push_header("id", id);
            }
            Version::V1_1 => {
                let subscription = self.subscription().ok_or(ProtocolError::MissingHeader {
                    command: Command::Message,
                    header: "subscription",
                })?;
                frame.push_header("message-id", self.message_id());
                frame.push_header("subscription", subscription);
            }
            Version::V1_0 => frame.push_header("message-id", self.message_id()),
        }
        if let Some(transaction) = transaction {
            frame.push_header("transaction", transaction);
        }
        Ok(frame)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("destination", &self.destination())
            .field("message_id", &self.message_id())
            .field("subscription", &self.subscription())
            .field("body_len", &self.body().len())
            .field("connection", &self.context.connection)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(version: Version, frame: Frame) -> Result<Message, ProtocolError> {
        Message::new(
            frame,
            AckContext {
                shared: Weak::new(),
                mode: AckMode::ClientIndividual,
                version,
                connection: 1,
            },
        )
    }

    fn full() -> Frame {
        Frame::new(Command::Message)
            .with_header("destination", "/queue/a")
            .with_header("message-id", "m-1")
            .with_header("subscription", "sub-1")
            .with_header("ack", "ack-9")
            .with_body("x")
    }

    #[test]
    fn ack_frames_per_version() {
        let cases = [
            (Version::V1_2, vec![("id", "ack-9")]),
            (
                Version::V1_1,
                vec![("message-id", "m-1"), ("subscription", "sub-1")],
            ),
            (Version::V1_0, vec![("message-id", "m-1")]),
        ];
        for (version, want) in cases {
            let m = message(version, full()).expect("valid");
            let frame = m.ack_frame(Command::Ack, None).expect("ackable");
            assert_eq!(frame.command(), Command::Ack);
            assert_eq!(frame.headers().collect::<Vec<_>>(), want, "{version}");
        }
        let m = message(Version::V1_2, full()).expect("valid");
        let nack = m.ack_frame(Command::Nack, Some("tx-1")).expect("ackable");
        assert_eq!(
            nack.headers().collect::<Vec<_>>(),
            [("id", "ack-9"), ("transaction", "tx-1")]
        );
    }

    #[test]
    fn missing_headers() {
        let mut no_destination = full();
        no_destination.remove_header("destination");
        assert_eq!(
            message(Version::V1_2, no_destination).err(),
            Some(ProtocolError::MissingHeader {
                command: Command::Message,
                header: "destination"
            })
        );
        let mut no_id = full();
        no_id.remove_header("message-id");
        assert!(message(Version::V1_2, no_id).is_err());

        let mut no_ack = full();
        no_ack.remove_header("ack");
        let m = message(Version::V1_2, no_ack).expect("valid message");
        assert!(matches!(
            m.ack_frame(Command::Ack, None),
            Err(Error::Protocol(ProtocolError::MissingHeader {
                header: "ack",
                ..
            }))
        ));
    }

    #[test]
    fn accessors() {
        let m = message(
            Version::V1_2,
            full().with_header("content-type", "text/plain"),
        )
        .expect("valid");
        assert_eq!(m.destination(), "/queue/a");
        assert_eq!(m.message_id(), "m-1");
        assert_eq!(m.subscription(), Some("sub-1"));
        assert_eq!(m.content_type(), Some("text/plain"));
        assert_eq!(m.body_text(), Some("x"));
        assert_eq!(m.connection(), 1);
    }
}
