//! The stompede server layer: STOMP sessions over WebSocket, application destinations
//! (`/app/...` → Rust handlers), origin checks, configuration, and an axum [`Router`](axum::Router)
//! to serve or to mount in your own application.
//!
//! # Layout
//! - [`config`]: the TOML configuration tree with its defaults.
//! - [`transport`]: the one connection abstraction sessions run on (raw WebSocket today).
//! - `session`: the STOMP session state machine (CONNECT, heart-beats, receipts, ERROR,
//!   transactions, slow consumers).
//! - [`app`]: handlers for application destinations and the [`Messaging`](app::Messaging)
//!   handle.
//! - [`chat`]: the demo chat handler.
//! - [`origin`]: allowed origins.
//!
//! It does not own the wire format (`stompede-stomp`) or message routing (`stompede-broker`).

pub mod app;
pub mod chat;
pub mod config;
pub mod error;
pub mod origin;
mod server;
mod session;
pub mod transport;

pub use config::Config;
pub use error::{ConfigError, SessionError};
pub use server::Stompede;
pub use session::TransactionError;
