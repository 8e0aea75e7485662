//! The stompede server layer: STOMP sessions over WebSocket, application destinations
//! (`/app/...` → Rust handlers), origin checks, configuration, and an axum [`Router`](axum::Router)
//! to serve or to mount in your own application.
//!
//! # Layout
//! - [`config`]: the TOML configuration tree with its defaults.
//! - [`transport`]: the one connection abstraction sessions run on: a raw WebSocket or a SockJS
//!   session, the same to everything above it.
//! - [`sockjs`]: the SockJS protocol (every transport) under any prefix.
//! - [`endpoint`]: the handshake every endpoint shares (origins, interceptors, limits).
//! - [`handler`]: plain message handlers (no STOMP) at a path, WebSocket and/or SockJS.
//! - `session`: the STOMP session state machine (CONNECT, heart-beats, receipts, ERROR,
//!   transactions, slow consumers).
//! - [`app`]: handlers for application destinations and the [`Messaging`](app::Messaging)
//!   handle.
//! - [`chat`]: the demo chat handler.
//! - [`origin`]: allowed origins.
//!
//! It does not own the wire format (`stompede-stomp`) or message routing (`stompede-broker`).

mod api;
pub mod app;
pub mod auth;
pub mod authz;
pub mod chat;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod handler;
pub mod origin;
mod server;
mod session;
pub mod sockjs;
pub mod transport;
pub mod user;

pub use config::Config;
pub use error::{ConfigError, SessionError};
pub use server::Stompede;
pub use session::TransactionError;
pub use stompede_broker::{MessageId, SessionId};
