//! SockJS frames as the server sends them (`o`, `h`, `a[...]`, `c[code,"reason"]`), and the
//! splitting of an xhr-streaming body into frames.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;

/// Length of the xhr-streaming prelude line (`h` × 2048, then `\n`): old browsers fire no
/// progress event before 2 KiB arrived, so every streaming response starts with it.
pub(crate) const PRELUDE_LEN: usize = 2048;
/// Longest frame accepted from a stream. A server that fell behind may batch many messages into
/// one `a[...]`; anything this long is a runaway line, not a frame.
pub(crate) const MAX_FRAME: usize = 64 * 1024 * 1024;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// `o`: the session is open.
    Open,
    /// `h`: heartbeat.
    Heartbeat,
    /// `a[...]`: messages, in order.
    Messages(Vec<Cow<'a, str>>),
    /// `c[code,"reason"]`: the session is closed.
    Close {
        /// Close code (3000–4999 by application, 1002/2010 by SockJS itself).
        code: u16,
        /// Close reason.
        reason: Cow<'a, str>,
    },
}

/// Why a frame from the server is not a SockJS frame.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// An empty frame.
    Empty,
    /// An unknown frame type letter.
    UnknownType(u8),
    /// `o` or `h` followed by more bytes.
    TrailingBytes(u8),
    /// The JSON after `a` is not an array of strings, or the one after `c` not `[code,"reason"]`.
    Json(u8, serde_json::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Empty => f.write_str("empty frame"),
            FrameError::UnknownType(b) => write!(f, "unknown frame type {:?}", char::from(*b)),
            FrameError::TrailingBytes(b) => {
                write!(f, "bytes after a {:?} frame", char::from(*b))
            }
            FrameError::Json(b, e) => write!(f, "invalid {:?} frame: {e}", char::from(*b)),
        }
    }
}

/// A JSON string borrowed from the frame when it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Parses one frame (without the `\n` that ends it on streaming transports).
///
/// # Errors
///
/// The bytes are not one of the four frames; `a[...]` must be a JSON array of strings and
/// `c[...]` exactly `[code, "reason"]` with a code that fits in 16 bits.
pub(crate) fn parse(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (&kind, rest) = frame.split_first().ok_or(FrameError::Empty)?;
    match kind {
        b'o' | b'h' if !rest.is_empty() => Err(FrameError::TrailingBytes(kind)),
        b'o' => Ok(Frame::Open),
        b'h' => Ok(Frame::Heartbeat),
        b'a' => {
            let texts: Vec<Text<'_>> =
                serde_json::from_slice(rest).map_err(|e| FrameError::Json(kind, e))?;
            Ok(Frame::Messages(texts.into_iter().map(|t| t.0).collect()))
        }
        b'c' => {
            let (code, Text(reason)): (u16, Text<'_>) =
                serde_json::from_slice(rest).map_err(|e| FrameError::Json(kind, e))?;
            Ok(Frame::Close { code, reason })
        }
        other => Err(FrameError::UnknownType(other)),
    }
}

/// Why an xhr-streaming body is not a sequence of frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// The first line of a response is not the `h` × 2048 prelude; holds its first bytes.
    BadPrelude(String),
    /// A line longer than [`MAX_FRAME`] without a newline.
    FrameTooLong,
    /// The response ended inside a frame (bytes after the last `\n`).
    Unterminated(usize),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::BadPrelude(start) => {
                write!(
                    f,
                    "response does not start with the 2 KiB prelude: {start:?}"
                )
            }
            StreamError::FrameTooLong => write!(f, "frame longer than {MAX_FRAME} bytes"),
            StreamError::Unterminated(n) => {
                write!(
                    f,
                    "response ended inside a frame ({n} bytes after the last newline)"
                )
            }
        }
    }
}

/// Splits the body of one xhr-streaming response into frames: checks and drops the prelude,
/// then yields each `\n`-terminated line. A JSON string never holds a raw newline, so `\n`
/// always ends a frame.
#[derive(Debug)]
pub(crate) struct StreamFrames {
    buf: BytesMut,
    prelude_seen: bool,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
}

impl StreamFrames {
    /// A splitter at the start of a response.
    pub(crate) fn new() -> StreamFrames {
        StreamFrames {
            buf: BytesMut::new(),
            prelude_seen: false,
            scanned: 0,
        }
    }

    /// Starts the next response: its first line is a prelude again.
    ///
    /// # Errors
    ///
    /// The previous response ended inside a frame.
    pub(crate) fn next_response(&mut self) -> Result<(), StreamError> {
        if !self.buf.is_empty() {
            return Err(StreamError::Unterminated(self.buf.len()));
        }
        self.prelude_seen = false;
        self.scanned = 0;
        Ok(())
    }

    /// Where decoded body bytes go.
    pub(crate) fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next complete frame, without its `\n`; `None` until more bytes arrive.
    ///
    /// # Errors
    ///
    /// A missing or wrong prelude, or a runaway line.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Bytes>, StreamError> {
        loop {
            let Some(offset) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buf.len();
                let limit = if self.prelude_seen {
                    MAX_FRAME
                } else {
                    PRELUDE_LEN
                };
                if self.buf.len() > limit {
                    return Err(if self.prelude_seen {
                        StreamError::FrameTooLong
                    } else {
                        self.bad_prelude()
                    });
                }
                return Ok(None);
            };
            let newline = self.scanned + offset;
            self.scanned = 0;
            if !self.prelude_seen {
                if newline != PRELUDE_LEN || !self.buf[..newline].iter().all(|&b| b == b'h') {
                    return Err(self.bad_prelude());
                }
                let _ = self.buf.split_to(newline + 1);
                self.prelude_seen = true;
                continue;
            }
            let mut line = self.buf.split_to(newline + 1);
            line.truncate(newline);
            return Ok(Some(line.freeze()));
        }
    }

    fn bad_prelude(&self) -> StreamError {
        let start = &self.buf[..self.buf.len().min(40)];
        StreamError::BadPrelude(String::from_utf8_lossy(start).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(frame: &str) -> Vec<String> {
        match parse(frame.as_bytes()) {
            Ok(Frame::Messages(m)) => m.into_iter().map(Cow::into_owned).collect(),
            other => panic!("{frame:?}: {other:?}"),
        }
    }

    #[test]
    fn the_four_frames_parse() {
        assert_eq!(parse(b"o").ok(), Some(Frame::Open));
        assert_eq!(parse(b"h").ok(), Some(Frame::Heartbeat));
        assert_eq!(messages(r#"a["x"]"#), ["x"]);
        assert_eq!(messages(r#"a["a","b c",""]"#), ["a", "b c", ""]);
        assert_eq!(messages("a[]"), Vec::<String>::new());
        assert_eq!(messages(r#"a[ "spaced" , "ok" ]"#), ["spaced", "ok"]);
        assert_eq!(
            parse(br#"c[3000,"Go away!"]"#).ok(),
            Some(Frame::Close {
                code: 3000,
                reason: "Go away!".into()
            })
        );
    }

    #[test]
    fn escaped_messages_decode_and_plain_ones_borrow() {
        assert_eq!(
            messages(r#"a["q\"b\\s\/\n\u0000\u00e9\ud83d\ude00\u2028"]"#),
            ["q\"b\\s/\n\u{0}é😀\u{2028}"]
        );
        let Ok(Frame::Messages(m)) = parse(br#"a["plain"]"#) else {
            panic!("valid frame");
        };
        assert!(matches!(m[0], Cow::Borrowed("plain")));
    }

    #[test]
    fn hostile_frames_are_rejected() {
        let rows: [&[u8]; 22] = [
            b"",
            b"x",
            b"O",
            b"oo",
            b"h\n",
            b"a",
            b"a[",
            b"a[\"x\"",
            b"a[\"x\"]]",
            b"a[1]",
            b"a[null]",
            b"a{\"x\":1}",
            b"a\"x\"",
            b"a[\"\\ud800\"]",
            b"a[\"\xff\"]",
            b"a[\"\\x\"]",
            b"c[]",
            b"c[3000]",
            b"c[\"3000\",\"x\"]",
            b"c[70000,\"x\"]",
            b"c[3000,\"x\",1]",
            b"c[-1,\"x\"]",
        ];
        for frame in rows {
            assert!(
                parse(frame).is_err(),
                "{:?}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    fn prelude() -> Vec<u8> {
        let mut p = vec![b'h'; PRELUDE_LEN];
        p.push(b'\n');
        p
    }

    /// Feeds `input` in pieces of `step` bytes and collects the frames.
    fn split(input: &[u8], step: usize) -> Result<Vec<String>, StreamError> {
        let mut frames = StreamFrames::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            frames.buffer().extend_from_slice(piece);
            while let Some(frame) = frames.next_frame()? {
                out.push(String::from_utf8_lossy(&frame).into_owned());
            }
        }
        Ok(out)
    }

    #[test]
    fn streams_split_into_frames_whatever_the_reads() {
        let mut body = prelude();
        body.extend_from_slice(b"o\na[\"x\"]\nh\na[\"y\",\"z\"]\nc[3000,\"Go away!\"]\n");
        for step in [1, 2, 5, 2047, 2049, body.len()] {
            assert_eq!(
                split(&body, step).expect("valid stream"),
                [
                    "o",
                    "a[\"x\"]",
                    "h",
                    "a[\"y\",\"z\"]",
                    "c[3000,\"Go away!\"]"
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn every_response_has_its_prelude() {
        let mut frames = StreamFrames::new();
        frames.buffer().extend_from_slice(&prelude());
        frames.buffer().extend_from_slice(b"a[\"1\"]\n");
        assert_eq!(
            frames.next_frame(),
            Ok(Some(Bytes::from_static(b"a[\"1\"]")))
        );
        assert_eq!(frames.next_frame(), Ok(None));
        frames.next_response().expect("clean end");
        frames.buffer().extend_from_slice(b"a[\"2\"]\n");
        assert!(matches!(
            frames.next_frame(),
            Err(StreamError::BadPrelude(_))
        ));
    }

    #[test]
    fn bad_streams_are_rejected() {
        // Prelude one byte short, one byte long, or not all `h`.
        let mut short = vec![b'h'; PRELUDE_LEN - 1];
        short.extend_from_slice(b"\no\n");
        assert!(matches!(
            split(&short, 100),
            Err(StreamError::BadPrelude(_))
        ));
        let long = vec![b'h'; PRELUDE_LEN + 1];
        assert!(matches!(split(&long, 100), Err(StreamError::BadPrelude(_))));
        let mut wrong = prelude();
        wrong[10] = b'x';
        assert!(matches!(split(&wrong, 7), Err(StreamError::BadPrelude(_))));
        assert!(matches!(split(b"o\n", 1), Err(StreamError::BadPrelude(_))));

        // A response that ends inside a frame.
        let mut frames = StreamFrames::new();
        frames.buffer().extend_from_slice(&prelude());
        frames.buffer().extend_from_slice(b"a[\"cut");
        assert_eq!(frames.next_frame(), Ok(None));
        assert_eq!(frames.next_response(), Err(StreamError::Unterminated(6)));
    }

    #[test]
    fn a_runaway_line_is_bounded() {
        let mut frames = StreamFrames::new();
        frames.buffer().extend_from_slice(&prelude());
        let chunk = vec![b'a'; 1024 * 1024];
        let mut result = Ok(None);
        for _ in 0..=MAX_FRAME / chunk.len() {
            frames.buffer().extend_from_slice(&chunk);
            result = frames.next_frame();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(StreamError::FrameTooLong));
    }
}
