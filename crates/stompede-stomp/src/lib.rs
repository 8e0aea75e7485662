//! STOMP 1.0, 1.1 and 1.2 frames on the wire: pure functions over bytes.
//!
//! # What this crate owns
//!
//! - [`Frame`], [`Command`] and [`Version`]: the protocol's vocabulary.
//! - [`Decoder`]: incremental decoding of a byte stream into frames, bounded by
//!   [`Limits`] so that a hostile peer cannot make it buffer more than one
//!   frame's worth of bytes. Heart-beat EOLs between frames are skipped.
//! - [`encode`]: the wire form of a frame, with header escaping per version and
//!   a correct `content-length`.
//! - [`Version::negotiate`] and [`HeartBeat::negotiate`]: the CONNECT handshake's
//!   arithmetic.
//!
//! # What it does not
//!
//! No I/O, no async, no timers: callers own sockets and clocks. It does not
//! know what frames mean (which headers a SUBSCRIBE needs, what a destination
//! is, sessions, receipts); that is `stompede-server`'s business. It knows
//! nothing of SockJS or WebSocket framing.
//!
//! # Layout
//!
//! `command.rs`, `version.rs`, `frame.rs`: the types. `decode.rs` and
//! `encode.rs`: the codec, sharing `escape.rs`. `heartbeat.rs`: the
//! `heart-beat` header. `error.rs`: [`DecodeError`] and [`HeartBeatError`].
//! `codec.rs`, with the `tokio-codec` feature: `Codec`, the same decoder and
//! encoder as a `tokio_util::codec` pair.
//!
//! ```
//! use bytes::BytesMut;
//! use stompede_stomp::{encode, Command, Decoder, Frame, Limits, Version};
//!
//! let frame = Frame::new(Command::Send)
//!     .with_header("destination", "/topic/chat")
//!     .with_body("hello");
//! let mut wire = BytesMut::new();
//! encode(&frame, Version::V1_2, &mut wire);
//!
//! let mut decoder = Decoder::new(Limits::default());
//! let decoded = decoder.decode(&mut wire).unwrap().unwrap();
//! assert_eq!(decoded.header("destination"), Some("/topic/chat"));
//! assert_eq!(&decoded.body()[..], b"hello");
//! ```

#[cfg(feature = "tokio-codec")]
mod codec;
mod command;
mod decode;
mod encode;
mod error;
mod escape;
mod frame;
mod heartbeat;
mod version;

#[cfg(feature = "tokio-codec")]
pub use codec::{Codec, CodecError};
pub use command::Command;
pub use decode::{Decoder, Limits};
pub use encode::{encode, encode_head, encode_parts, encode_tail, HEARTBEAT};
pub use error::{DecodeError, HeartBeatError};
pub use frame::Frame;
pub use heartbeat::HeartBeat;
pub use version::Version;
