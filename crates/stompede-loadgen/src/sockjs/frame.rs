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
    /// The JSON after `a` is not an array of strings (the tool's own parser says what is wrong).
    Array(&'static str),
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
            FrameError::Array(what) => write!(f, "invalid 'a' frame: {what}"),
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

/// Appends the messages of an `a[...]` frame to `out`, one after the other, unescaping their
/// JSON strings straight into it; returns how many there were.
///
/// This is the receive path of STOMP over SockJS, where every MESSAGE frame arrives as a JSON
/// string (its NUL as `\u0000`): decoding into the STOMP scanner's buffer allocates nothing per
/// message, where `serde_json` builds a `String` for every string with an escape (all of them).
/// Bytes that are not escapes are copied as they are (the transport delivered text).
///
/// # Errors
///
/// `frame` is not `a` followed by a JSON array of strings; `out` may then hold part of it.
pub(crate) fn messages_into(frame: &[u8], out: &mut BytesMut) -> Result<usize, FrameError> {
    let bad = |what: &'static str| FrameError::Array(what);
    let rest = frame.strip_prefix(b"a").ok_or(bad("not an `a` frame"))?;
    let mut pos = skip_space(rest, 0);
    if rest.get(pos) != Some(&b'[') {
        return Err(bad("no `[`"));
    }
    pos = skip_space(rest, pos + 1);
    let mut count = 0;
    if rest.get(pos) == Some(&b']') {
        pos += 1;
    } else {
        loop {
            if rest.get(pos) != Some(&b'"') {
                return Err(bad("an element is not a string"));
            }
            pos = unescape_string(rest, pos + 1, out)?;
            count += 1;
            pos = skip_space(rest, pos);
            match rest.get(pos) {
                Some(b',') => pos = skip_space(rest, pos + 1),
                Some(b']') => {
                    pos += 1;
                    break;
                }
                _ => return Err(bad("no `,` or `]` after a string")),
            }
        }
    }
    if skip_space(rest, pos) != rest.len() {
        return Err(bad("bytes after the array"));
    }
    Ok(count)
}

fn skip_space(text: &[u8], mut pos: usize) -> usize {
    while matches!(text.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// Unescapes the JSON string starting at `pos` (after its opening quote) into `out`; returns
/// the position after its closing quote.
fn unescape_string(text: &[u8], mut pos: usize, out: &mut BytesMut) -> Result<usize, FrameError> {
    let bad = |what: &'static str| FrameError::Array(what);
    loop {
        let tail = text.get(pos..).unwrap_or_default();
        let Some(stop) = memchr::memchr2(b'"', b'\\', tail) else {
            return Err(bad("unterminated string"));
        };
        let plain = tail.get(..stop).unwrap_or_default();
        if plain.iter().any(|&b| b < 0x20) {
            return Err(bad("raw control character in a string"));
        }
        out.extend_from_slice(plain);
        pos += stop;
        if text.get(pos) == Some(&b'"') {
            return Ok(pos + 1);
        }
        // A backslash: one escape.
        let escaped = match text.get(pos + 1) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let high = hex4(text, pos + 2).ok_or(bad("bad \\u escape"))?;
                pos += 6;
                let c = match high {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by an escaped low one.
                        if text.get(pos..pos + 2) != Some(b"\\u") {
                            return Err(bad("unpaired surrogate"));
                        }
                        let low = hex4(text, pos + 2).ok_or(bad("bad \\u escape"))?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(bad("unpaired surrogate"));
                        }
                        pos += 6;
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(bad("unpaired surrogate")),
                    other => other,
                };
                let c = char::from_u32(c).ok_or(bad("bad \\u escape"))?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return Err(bad("bad escape")),
        };
        out.extend_from_slice(&[escaped]);
        pos += 2;
    }
}

/// Four hex digits at `pos`.
fn hex4(text: &[u8], pos: usize) -> Option<u32> {
    text.get(pos..pos + 4)?.iter().try_fold(0u32, |n, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some(n * 16 + digit)
    })
}

/// Appends `bytes` to `out` as a JSON string (quotes included), escaped as `JSON.stringify`
/// does: quote, backslash and control characters. This is how every STOMP frame goes to a
/// SockJS server.
pub(crate) fn json_string_into(bytes: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(b"\"");
    let mut copied = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(copied..i).unwrap_or_default());
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(short);
        }
        copied = i + 1;
    }
    out.extend_from_slice(bytes.get(copied..).unwrap_or_default());
    out.extend_from_slice(b"\"");
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
    /// Whether each response starts with the prelude (xhr-streaming) or not (xhr-polling).
    with_prelude: bool,
    prelude_seen: bool,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
}

impl StreamFrames {
    /// A splitter at the start of an xhr-streaming response.
    pub(crate) fn new() -> StreamFrames {
        StreamFrames {
            buf: BytesMut::new(),
            with_prelude: true,
            prelude_seen: false,
            scanned: 0,
        }
    }

    /// A splitter for xhr-polling responses: `\n`-terminated frames without a prelude.
    pub(crate) fn without_prelude() -> StreamFrames {
        StreamFrames {
            with_prelude: false,
            prelude_seen: true,
            ..StreamFrames::new()
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
        self.prelude_seen = !self.with_prelude;
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

    /// `messages_into` as a list, for comparing with `parse`.
    fn unescaped(frame: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = BytesMut::new();
        messages_into(frame, &mut out).map(|_| out.to_vec())
    }

    #[test]
    fn messages_unescape_into_one_buffer() {
        let rows: [(&[u8], &[u8], usize); 6] = [
            (b"a[]", b"", 0),
            (b"a[ ]", b"", 0),
            (br#"a["x"]"#, b"x", 1),
            (br#"a["a", "b c" ,""]"#, b"ab c", 3),
            (
                br#"a["MESSAGE\ndestination:\/t\n\nbody\u0000"]"#,
                b"MESSAGE\ndestination:/t\n\nbody\0",
                1,
            ),
            (
                "a[\"q\\\"b\\\\s\\b\\f\\r\\t\\u00e9\\ud83d\\ude00\\u2028é\"]".as_bytes(),
                "q\"b\\s\u{8}\u{c}\r\té😀\u{2028}é".as_bytes(),
                1,
            ),
        ];
        for (frame, want, count) in rows {
            let mut out = BytesMut::from(&b"pending"[..]);
            let got = messages_into(frame, &mut out);
            assert_eq!(
                got.ok(),
                Some(count),
                "{:?}",
                String::from_utf8_lossy(frame)
            );
            assert_eq!(&out[7..], want);
            assert_eq!(&out[..7], b"pending", "appended, not replaced");
        }
    }

    #[test]
    fn hostile_arrays_are_rejected() {
        let rows: [&[u8]; 22] = [
            b"",
            b"o",
            b"a",
            b"a[",
            b"a[\"x\"",
            b"a[\"x\"]]",
            b"a[\"x\",]",
            b"a[,\"x\"]",
            b"a[1]",
            b"a[null]",
            b"a{\"x\":1}",
            b"a\"x\"",
            b"a[\"\\ud800\"]",
            b"a[\"\\udc00\"]",
            b"a[\"\\ud800\\u0041\"]",
            b"a[\"\\u12\"]",
            b"a[\"\\u12g4\"]",
            b"a[\"\\x\"]",
            b"a[\"\\",
            b"a[\"raw\nnewline\"]",
            b"a[\"x\" \"y\"]",
            b"a[\"x\"] x",
        ];
        for frame in rows {
            assert!(
                unescaped(frame).is_err(),
                "{:?}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn json_strings_round_trip_through_both_parsers() {
        let inputs: [&[u8]; 5] = [
            b"",
            b"plain",
            b"SEND\ndestination:/queue/a\n\n123xx\0",
            b"\"\\\x01\x1f\x7f\t\r\x08\x0c",
            "é😀\u{2028}".as_bytes(),
        ];
        for input in inputs {
            let mut json = BytesMut::from(&b"a["[..]);
            json_string_into(input, &mut json);
            json.extend_from_slice(b"]");
            assert_eq!(unescaped(&json).expect("valid"), input);
            let text = std::str::from_utf8(input).expect("utf-8 input");
            assert_eq!(messages(std::str::from_utf8(&json).expect("utf-8")), [text]);
        }
        let mut json = BytesMut::new();
        json_string_into(b"\0", &mut json);
        assert_eq!(&json[..], br#""\u0000""#);
    }

    #[test]
    fn polling_responses_have_no_prelude() {
        let mut frames = StreamFrames::without_prelude();
        frames.buffer().extend_from_slice(b"o\n");
        assert_eq!(frames.next_frame(), Ok(Some(Bytes::from_static(b"o"))));
        frames.next_response().expect("clean end");
        frames.buffer().extend_from_slice(b"a[\"1\"]\n");
        assert_eq!(
            frames.next_frame(),
            Ok(Some(Bytes::from_static(b"a[\"1\"]")))
        );
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
