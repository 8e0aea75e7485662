//! SockJS framing as a client sees it: the server's `o`, `h`, `a[...]` and `c[code,"reason"]`
//! frames, and the JSON array of strings the client sends.
//!
//! Everything here is a pure function over text; the transports feed it whole frames (one
//! WebSocket message, or one line of an XHR response, see [`super::lines`]).

/// One frame from a SockJS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SockJsFrame {
    /// `o`: the session is open.
    Open,
    /// `h`: the server is alive. The xhr-streaming prelude (a line of 2048 `h`) reads as one.
    Heartbeat,
    /// `a[...]`: messages, in order.
    Messages(Vec<String>),
    /// `c[code,"reason"]`: the session is closed.
    Close {
        /// The close code, e.g. 3000 or 1002.
        code: u16,
        /// The reason the server gave.
        reason: String,
    },
}

/// Why text from a SockJS server is not a SockJS frame, or arrived where it should not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// An empty frame (an empty WebSocket message or an empty line).
    #[error("empty frame")]
    Empty,
    /// The first character is none of `o`, `h`, `a`, `c`.
    #[error("unknown frame type {0:?}")]
    UnknownType(char),
    /// An `o` or `h` frame with something after its letter.
    #[error("trailing data after {0:?} frame")]
    Trailing(char),
    /// `a` not followed by a JSON array of strings.
    #[error("malformed message array")]
    BadArray,
    /// `c` not followed by a JSON `[code, "reason"]` with a code that fits in 16 bits.
    #[error("malformed close frame")]
    BadClose,
    /// A frame longer than the client accepts.
    #[error("frame longer than {limit} bytes")]
    TooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A frame that is not UTF-8.
    #[error("frame is not utf-8")]
    NotUtf8,
    /// A streaming or polling response that ended in the middle of a frame.
    #[error("response ended inside a frame")]
    Truncated,
    /// The first frame of a session was not `o`.
    #[error("expected the open frame first")]
    ExpectedOpen,
    /// A second `o` in one session.
    #[error("open frame in an open session")]
    UnexpectedOpen,
    /// A binary message on the SockJS websocket transport, which carries text only.
    #[error("binary websocket message")]
    Binary,
}

/// Parses one frame. Nothing is trimmed: transports remove their own delimiters.
pub(crate) fn parse(frame: &str) -> Result<SockJsFrame, FrameError> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or(FrameError::Empty)?;
    let rest = chars.as_str();
    match kind {
        'o' if rest.is_empty() => Ok(SockJsFrame::Open),
        // sockjs-client reads a frame by its first letter, so the xhr-streaming prelude
        // ("hhh...h") is a heartbeat; anything else after an `h` is not.
        'h' if rest.bytes().all(|b| b == b'h') => Ok(SockJsFrame::Heartbeat),
        'o' | 'h' => Err(FrameError::Trailing(kind)),
        'a' => serde_json::from_str::<Vec<String>>(rest)
            .map(SockJsFrame::Messages)
            .map_err(|_| FrameError::BadArray),
        'c' => serde_json::from_str::<(u16, String)>(rest)
            .map(|(code, reason)| SockJsFrame::Close { code, reason })
            .map_err(|_| FrameError::BadClose),
        other => Err(FrameError::UnknownType(other)),
    }
}

/// The body of an `xhr_send` request or of a websocket message: a JSON array of strings.
pub(crate) fn encode_messages<S: AsRef<str>>(messages: &[S]) -> String {
    let mut out =
        String::with_capacity(2 + messages.iter().map(|m| m.as_ref().len() + 3).sum::<usize>());
    out.push('[');
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, message.as_ref());
    }
    out.push(']');
    out
}

/// Appends `text` as a JSON string literal. Besides what JSON requires, escapes the
/// characters SockJS servers escape themselves (U+2028 and friends), which some JavaScript
/// engines and proxies mangle.
fn push_json_string(out: &mut String, text: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{fff0}'..='\u{ffff}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(m: &[&str]) -> SockJsFrame {
        SockJsFrame::Messages(m.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<SockJsFrame, FrameError>)] = &[
            ("o", Ok(SockJsFrame::Open)),
            ("h", Ok(SockJsFrame::Heartbeat)),
            ("hhhhhhhh", Ok(SockJsFrame::Heartbeat)),
            (r#"a["x"]"#, Ok(messages(&["x"]))),
            (r#"a[]"#, Ok(messages(&[]))),
            (
                r#"a["CONNECTED\nversion:1.2\n\n\u0000","\u2028\ud83d\ude00"]"#,
                Ok(messages(&["CONNECTED\nversion:1.2\n\n\0", "\u{2028}😀"])),
            ),
            (
                r#"c[3000,"Go away!"]"#,
                Ok(SockJsFrame::Close {
                    code: 3000,
                    reason: "Go away!".to_owned(),
                }),
            ),
            (
                r#"c[1002, "Connection interrupted"]"#,
                Ok(SockJsFrame::Close {
                    code: 1002,
                    reason: "Connection interrupted".to_owned(),
                }),
            ),
            ("", Err(FrameError::Empty)),
            ("x", Err(FrameError::UnknownType('x'))),
            ("€", Err(FrameError::UnknownType('€'))),
            ("O", Err(FrameError::UnknownType('O'))),
            ("oo", Err(FrameError::Trailing('o'))),
            ("o\n", Err(FrameError::Trailing('o'))),
            ("hx", Err(FrameError::Trailing('h'))),
            ("h ", Err(FrameError::Trailing('h'))),
            ("a", Err(FrameError::BadArray)),
            ("a[", Err(FrameError::BadArray)),
            (r#"a["x""#, Err(FrameError::BadArray)),
            (r#"a[1]"#, Err(FrameError::BadArray)),
            (r#"a"x""#, Err(FrameError::BadArray)),
            (r#"a{"x":1}"#, Err(FrameError::BadArray)),
            (r#"a["x"]junk"#, Err(FrameError::BadArray)),
            (r#"a["\ud800"]"#, Err(FrameError::BadArray)),
            ("c", Err(FrameError::BadClose)),
            ("c[]", Err(FrameError::BadClose)),
            (r#"c[3000]"#, Err(FrameError::BadClose)),
            (r#"c["3000","x"]"#, Err(FrameError::BadClose)),
            (r#"c[70000,"x"]"#, Err(FrameError::BadClose)),
            (r#"c[-1,"x"]"#, Err(FrameError::BadClose)),
            (r#"c[3000,"x",1]"#, Err(FrameError::BadClose)),
        ];
        for (input, want) in cases {
            assert_eq!(&parse(input), want, "{input:?}");
        }
    }

    #[test]
    fn deeply_nested_json_is_refused_not_a_stack_overflow() {
        let hostile = format!("a{}", "[".repeat(100_000));
        assert_eq!(parse(&hostile), Err(FrameError::BadArray));
        let hostile = format!("c{}", "[".repeat(100_000));
        assert_eq!(parse(&hostile), Err(FrameError::BadClose));
    }

    #[test]
    fn encoded_messages_parse_back() {
        let all: String = (0u32..0x11000).filter_map(char::from_u32).collect();
        let sent = [
            "SEND\ndestination:/topic/a\n\nhi\0",
            "",
            "\"\\",
            all.as_str(),
        ];
        let body = encode_messages(&sent);
        let back: Vec<String> = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(back, sent);
        assert!(!body.contains('\u{2028}') && !body.contains('\0') && !body.contains('\n'));
    }

    #[test]
    fn encoding_is_compact() {
        assert_eq!(encode_messages(&["a", "b\n"]), r#"["a","b\n"]"#);
        assert_eq!(encode_messages::<&str>(&[]), "[]");
        assert_eq!(encode_messages(&["\0"]), r#"["\u0000"]"#);
    }
}
