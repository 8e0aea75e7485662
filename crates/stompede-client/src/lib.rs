//! An async STOMP 1.2 client (1.0 and 1.1 servers work too) over WebSocket or SockJS, built
//! on stompede's own codec (`stompede-stomp`). It talks to stompede and to other STOMP
//! servers such as RabbitMQ's Web-STOMP.
//!
//! - [`Client::connect`] with a [`ClientConfig`]: URL, [`Transport`] (raw WebSocket, or SockJS
//!   over websocket, xhr-streaming or xhr-polling), login, host, heart-beats, extra CONNECT
//!   headers, receipt timeout, and optional reconnection with [`Backoff`].
//! - [`Client::subscribe`] → a [`Subscription`], a `Stream` of [`Message`]s, which can be
//!   acknowledged ([`Message::ack`], [`Message::nack`]); dropping it unsubscribes.
//! - [`Client::send`] → a [`SendBuilder`]: await it to send (fire and forget), or add
//!   headers, a content type, a transaction, and `.receipt()` to wait for the server.
//! - [`Client::begin`] → a [`Transaction`] with `send`, `ack`, `commit`, `abort`.
//! - [`Client::disconnect`]: DISCONNECT, its receipt, and the transport closed.
//! - [`Client::state_changes`]: connected, reconnecting, closed.
//!
//! ```no_run
//! # async fn example() -> Result<(), stompede_client::Error> {
//! use futures_util::StreamExt;
//! use stompede_client::{AckMode, Client, ClientConfig, SockJsTransport, SubscribeOptions, Transport};
//!
//! let config = ClientConfig::new("http://127.0.0.1:8080/ws")
//!     .transport(Transport::SockJs(SockJsTransport::XhrStreaming));
//! let client = Client::connect(config).await?;
//! let mut jobs = client.subscribe("/queue/jobs", SubscribeOptions::ack(AckMode::ClientIndividual)).await?;
//! client.send("/queue/jobs", "job 1").receipt().await?;
//! while let Some(message) = jobs.next().await {
//!     let message = message?;
//!     println!("{:?}", message.body_text());
//!     message.ack().await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `client.rs`: [`Client`] and what its handles share with the driver (a command queue
//!   and a `watch` of the [`State`]).
//! - `driver.rs`: the one task per client that owns the connection: writes commands,
//!   heart-beats both ways, routes frames (`router.rs`), reconnects.
//! - `connection.rs`: opening a connection (transport, CONNECT, CONNECTED).
//! - `transport/`: the `Link` the driver reads from and writes through (a writer task, so
//!   that writing never stops reading), and the raw WebSocket; `sockjs/`: the SockJS client
//!   (framing, `/info`, the XHR transports on hyper).
//! - `subscription.rs`, `message.rs`, `send.rs`, `transaction.rs`: the application's handles.
//! - `config.rs`, `error.rs`.
//!
//! # What it does not do
//!
//! No TLS (`wss://`, `https://`); no SockJS transports other than websocket, xhr-streaming
//! and xhr-polling (the browser-only ones: eventsource, htmlfile, jsonp); no client-side
//! persistence: a message sent while the connection is down fails with
//! [`Error::NotConnected`] rather than being queued.

mod client;
mod config;
mod connection;
mod driver;
mod error;
mod message;
mod random;
mod router;
mod send;
mod sockjs;
mod subscription;
mod transaction;
mod transport;

pub use client::{Client, State};
pub use config::{Backoff, ClientConfig, SockJsTransport, Transport};
pub use connection::Session;
pub use error::{Error, FrameError, ProtocolError, ServerError, TransportError};
pub use message::Message;
pub use send::{AckBuilder, SendBuilder, SendFuture};
pub use stompede_stomp::{HeartBeat, Limits, Version};
pub use subscription::{AckMode, SubscribeOptions, Subscription};
pub use transaction::Transaction;
