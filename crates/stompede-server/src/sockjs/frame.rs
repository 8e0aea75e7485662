//! SockJS framing: `o`, `h`, `a[...]`, `c[code,"reason"]`, the JSON string escaping the
//! protocol requires, and the parsing of what clients send.

use serde::Deserialize;

/// The open frame.
pub(crate) const OPEN: &str = "o";
/// The heartbeat frame.
pub(crate) const HEARTBEAT: &str = "h";

/// Appends `text` as a JSON string literal, escaping what JSON requires plus the characters
/// SockJS 0.3.3 requires escaped (browsers mangle or drop them on some transports).
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut clean_from = 0;
    for (i, c) in text.char_indices() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            _ => None,
        };
        if short.is_none() && !must_escape(c) {
            continue;
        }
        out.push_str(&text[clean_from..i]);
        clean_from = i + c.len_utf8();
        match short {
            Some(s) => out.push_str(s),
            None => {
                use std::fmt::Write;
                // Infallible for String.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
    }
    out.push_str(&text[clean_from..]);
    out.push('"');
}

/// `text` as a JSON string literal.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::new();
    push_json_string(&mut out, text);
    out
}

/// Characters written as `\uXXXX`: controls, and the ranges sockjs-node and Spring escape.
fn must_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{ad}'
        | '\u{600}'..='\u{604}'
        | '\u{70f}'
        | '\u{17b4}'
        | '\u{17b5}'
        | '\u{200c}'..='\u{200f}'
        | '\u{2028}'..='\u{202f}'
        | '\u{2060}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff0}'..='\u{ffff}')
}

/// An `a[...]` frame of already encoded JSON strings.
pub(crate) fn array_frame<'a>(messages: impl IntoIterator<Item = &'a str>) -> String {
    let messages = messages.into_iter();
    let mut out = String::with_capacity(2 + messages.size_hint().0 * 16);
    out.push_str("a[");
    for (i, message) in messages.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(message);
    }
    out.push(']');
    out
}

/// A `c[code,"reason"]` frame.
pub(crate) fn close_frame(code: u16, reason: &str) -> String {
    let mut out = format!("c[{code},");
    push_json_string(&mut out, reason);
    out.push(']');
    out
}

/// Why a client payload was refused; the texts are the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PayloadError {
    /// Nothing was sent.
    #[error("Payload expected.")]
    Empty,
    /// Not JSON, not UTF-8, or not (an array of) strings.
    #[error("Broken JSON encoding.")]
    BrokenJson,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Payload {
    Many(Vec<String>),
    One(String),
}

/// Messages of an HTTP send (`xhr_send`, `jsonp_send`): a JSON array of strings.
pub(crate) fn parse_send(body: &[u8]) -> Result<Vec<String>, PayloadError> {
    if body.is_empty() {
        return Err(PayloadError::Empty);
    }
    serde_json::from_slice(body).map_err(|_| PayloadError::BrokenJson)
}

/// Messages of one WebSocket text message: a JSON array of strings or one JSON string.
pub(crate) fn parse_websocket(text: &str) -> Result<Vec<String>, PayloadError> {
    match serde_json::from_str(text) {
        Ok(Payload::Many(messages)) => Ok(messages),
        Ok(Payload::One(message)) => Ok(vec![message]),
        Err(_) => Err(PayloadError::BrokenJson),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_quoted_verbatim() {
        assert_eq!(json_string("hello, 세계 😀"), r#""hello, 세계 😀""#);
        assert_eq!(json_string(""), r#""""#);
    }

    #[test]
    fn json_specials_use_short_escapes() {
        assert_eq!(json_string("\"\\\n\r\t"), r#""\"\\\n\r\t""#);
        assert_eq!(json_string("  \u{0}\n\r "), r#""  \u0000\n\r ""#);
    }

    #[test]
    fn protocol_ranges_are_escaped_in_lowercase_hex() {
        assert_eq!(
            json_string("\u{200c}\u{2028}\u{fff0}\u{ffff}"),
            r#""\u200c\u2028\ufff0\uffff""#
        );
        assert_eq!(
            json_string("a\u{7f}b\u{ad}c\u{feff}"),
            r#""a\u007fb\u00adc\ufeff""#
        );
        // Neighbours of the ranges pass through.
        assert_eq!(
            json_string("\u{200b}\u{2030}\u{ffef}"),
            "\"\u{200b}\u{2030}\u{ffef}\""
        );
    }

    #[test]
    fn escaped_output_parses_back_to_the_input() {
        let all: String = (0u32..0x11000).filter_map(char::from_u32).collect();
        let encoded = json_string(&all);
        let decoded: String = serde_json::from_str(&encoded).expect("valid JSON");
        assert_eq!(decoded, all);
        assert!(encoded[1..encoded.len() - 1]
            .chars()
            .all(|c| !must_escape(c) && !c.is_control()));
    }

    #[test]
    fn frames() {
        let messages = [json_string("a"), json_string("b\"")];
        assert_eq!(
            array_frame(messages.iter().map(String::as_str)),
            r#"a["a","b\""]"#
        );
        assert_eq!(close_frame(3000, "Go away!"), r#"c[3000,"Go away!"]"#);
        assert_eq!(
            close_frame(2010, "Another connection still open"),
            r#"c[2010,"Another connection still open"]"#
        );
    }

    #[test]
    fn send_payloads() {
        assert_eq!(
            parse_send(br#"["a","b"]"#),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(parse_send(br#"[]"#), Ok(vec![]));
        assert_eq!(
            parse_send(br#"["\u2028\ud83d\ude00"]"#),
            Ok(vec!["\u{2028}😀".to_owned()])
        );
        assert_eq!(parse_send(b""), Err(PayloadError::Empty));
        for broken in [
            &br#"["a"#[..],
            b"\"a\"",
            b"[1]",
            b"{}",
            br#"[["a"]]"#,
            b"[\"\xff\"]",
            br#"["\ud800"]"#,
            b"null",
        ] {
            assert_eq!(
                parse_send(broken),
                Err(PayloadError::BrokenJson),
                "{broken:?}"
            );
        }
        let deep = "[".repeat(100_000);
        assert_eq!(parse_send(deep.as_bytes()), Err(PayloadError::BrokenJson));
    }

    #[test]
    fn websocket_payloads() {
        assert_eq!(
            parse_websocket(r#"["a","b"]"#),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(parse_websocket(r#""a""#), Ok(vec!["a".to_owned()]));
        assert_eq!(parse_websocket(r#"["a"#), Err(PayloadError::BrokenJson));
        assert_eq!(parse_websocket("7"), Err(PayloadError::BrokenJson));
    }
}
