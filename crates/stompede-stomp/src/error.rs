//! Errors of this crate: one for frame decoding, one for the `heart-beat` header.

/// Why a byte stream is not a valid STOMP frame. After any of these the
/// connection must be closed: the decoder cannot resynchronise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame (command line, headers and body, up to its NUL) is longer
    /// than [`Limits::max_frame_len`](crate::Limits::max_frame_len), or its
    /// `content-length` announces a body that would make it so.
    #[error("frame longer than {limit} bytes")]
    FrameTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The frame has more header lines than [`Limits::max_headers`](crate::Limits::max_headers).
    #[error("more than {limit} headers")]
    TooManyHeaders {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// One header line (without its EOL) is longer than
    /// [`Limits::max_header_len`](crate::Limits::max_header_len).
    #[error("header line longer than {limit} bytes")]
    HeaderTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The command line is not one of the STOMP commands.
    #[error("unknown command {command:?}")]
    UnknownCommand {
        /// The offending line, lossily decoded and cut to its first 32 bytes.
        command: String,
    },
    /// A header line contains no `:`.
    #[error("header line without ':'")]
    MissingColon,
    /// A header uses an escape sequence the negotiated version does not define
    /// (e.g. `\t`, `\r` in 1.1, or a trailing lone `\`).
    #[error("undefined escape sequence in header")]
    InvalidEscape,
    /// The command line or a header is not valid UTF-8.
    #[error("command or header is not valid utf-8")]
    InvalidUtf8,
    /// The first `content-length` header is not a decimal octet count that fits in `usize`.
    #[error("invalid content-length header")]
    InvalidContentLength,
    /// The octet after a `content-length` body is not the NUL that ends the frame.
    #[error("frame body not followed by NUL")]
    MissingNul,
}

impl DecodeError {
    /// A short text for the `message` header of the ERROR frame sent before closing.
    pub fn error_frame_message(&self) -> &'static str {
        match self {
            DecodeError::FrameTooLarge { .. } => "frame too large",
            DecodeError::TooManyHeaders { .. } => "too many headers",
            DecodeError::HeaderTooLong { .. } => "header too long",
            DecodeError::UnknownCommand { .. } => "unknown command",
            DecodeError::MissingColon => "malformed header",
            DecodeError::InvalidEscape => "invalid header escape",
            DecodeError::InvalidUtf8 => "invalid utf-8",
            DecodeError::InvalidContentLength => "invalid content-length",
            DecodeError::MissingNul => "missing NUL after body",
        }
    }
}

/// Why a `heart-beat` header value could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeartBeatError {
    /// Not two comma-separated non-negative millisecond counts.
    #[error("invalid heart-beat header")]
    Invalid,
}
