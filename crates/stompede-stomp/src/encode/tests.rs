use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::{Command, Decoder, Limits};

fn encoded(frame: &Frame, version: Version) -> Vec<u8> {
    let mut dst = BytesMut::new();
    encode(frame, version, &mut dst);
    dst.to_vec()
}

#[test]
fn wire_forms() {
    use Version::{V1_0, V1_1, V1_2};
    let send = Frame::new(Command::Send)
        .with_header("destination", "/queue/a")
        .with_header("content-type", "text/plain")
        .with_body("hello queue a");
    let awkward = Frame::new(Command::Message).with_header("k:\\", "a\r\nb:c\\d");
    let cases: Vec<(Frame, Version, &[u8])> = vec![
        (
            send.clone(),
            V1_2,
            b"SEND\ndestination:/queue/a\ncontent-type:text/plain\ncontent-length:13\n\nhello queue a\0",
        ),
        // No body, no content-length.
        (
            Frame::new(Command::Subscribe)
                .with_header("id", "0")
                .with_header("destination", "/queue/foo"),
            V1_2,
            b"SUBSCRIBE\nid:0\ndestination:/queue/foo\n\n\0",
        ),
        (Frame::new(Command::Disconnect), V1_2, b"DISCONNECT\n\n\0"),
        // A content-length in the frame is replaced by the true one...
        (
            Frame::new(Command::Send)
                .with_header("content-length", "999")
                .with_header("a", "1")
                .with_body("ab"),
            V1_2,
            b"SEND\na:1\ncontent-length:2\n\nab\0",
        ),
        // ...or dropped when the body is empty.
        (
            Frame::new(Command::Send).with_header("content-length", "5"),
            V1_2,
            b"SEND\n\n\0",
        ),
        // Bodies may hold NULs.
        (
            Frame::new(Command::Message).with_body(&b"\0\0"[..]),
            V1_2,
            b"MESSAGE\ncontent-length:2\n\n\0\0\0",
        ),
        (awkward.clone(), V1_2, b"MESSAGE\nk\\c\\\\:a\\r\\nb\\cc\\\\d\n\n\0"),
        (awkward.clone(), V1_1, b"MESSAGE\nk\\c\\\\:a\r\\nb\\cc\\\\d\n\n\0"),
        // 1.0 cannot carry LF or a colon in a name: written as 1.1 escapes
        // rather than break the frame.
        (awkward, V1_0, b"MESSAGE\nk\\c\\:a\r\\nb:c\\d\n\n\0"),
        // CONNECTED is never escaped.
        (
            Frame::new(Command::Connected)
                .with_header("version", "1.2")
                .with_header("server", "a:b\\c"),
            V1_2,
            b"CONNECTED\nversion:1.2\nserver:a:b\\c\n\n\0",
        ),
        (
            Frame::new(Command::Connect).with_header("passcode", "x\\y"),
            V1_2,
            b"CONNECT\npasscode:x\\y\n\n\0",
        ),
        // A value ending in CR, where CR is not escaped, keeps its CR.
        (
            Frame::new(Command::Send).with_header("k", "v\r"),
            V1_1,
            b"SEND\nk:v\r\r\n\n\0",
        ),
        (
            Frame::new(Command::Send).with_header("k", "v\r"),
            V1_2,
            b"SEND\nk:v\\r\n\n\0",
        ),
    ];
    for (frame, version, want) in cases {
        assert_eq!(
            encoded(&frame, version),
            want,
            "{frame:?} {version:?}\n{:?}",
            String::from_utf8_lossy(&encoded(&frame, version))
        );
    }
}

#[test]
fn encode_appends_to_what_is_there() {
    let mut dst = BytesMut::from(&b"xyz"[..]);
    dst.extend_from_slice(HEARTBEAT);
    encode(&Frame::new(Command::Receipt), Version::V1_2, &mut dst);
    assert_eq!(&dst[..], b"xyz\nRECEIPT\n\n\0");
}

#[test]
fn content_length_digits() {
    for n in [1usize, 9, 10, 99, 100, 4096, 65_535] {
        let frame = Frame::new(Command::Send).with_body(vec![b'x'; n]);
        let wire = encoded(&frame, Version::V1_2);
        let want = format!("SEND\ncontent-length:{n}\n\n");
        assert!(wire.starts_with(want.as_bytes()), "{n}");
    }
}

/// Header text full of the octets escaping is about.
fn header_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        Just(':'),
        Just('\n'),
        Just('\r'),
        Just('\\'),
        Just('c'),
        Just(' '),
        proptest::char::range('a', 'z'),
        any::<char>(),
    ];
    proptest::collection::vec(c, 0..10).prop_map(String::from_iter)
}

/// A frame `encode` can represent exactly in `version`: unescaped frames
/// (1.0, CONNECT, CONNECTED) carry no LF, and no `:` in names.
fn representable_frame() -> impl Strategy<Value = (Frame, Version)> {
    let version = prop_oneof![
        Just(Version::V1_0),
        Just(Version::V1_1),
        Just(Version::V1_2)
    ];
    let command = proptest::sample::select(Command::ALL.to_vec());
    let headers = proptest::collection::vec((header_text(), header_text()), 0..10);
    let body = proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..64);
    (version, command, headers, body).prop_map(|(version, command, headers, body)| {
        let raw =
            version == Version::V1_0 || matches!(command, Command::Connect | Command::Connected);
        let mut frame = Frame::new(command).with_body(body);
        for (name, value) in headers {
            if raw {
                frame.push_header(name.replace([':', '\n'], ""), value.replace('\n', ""));
            } else {
                frame.push_header(name, value);
            }
        }
        frame.remove_header("content-length");
        (frame, version)
    })
}

proptest! {
    #[test]
    fn decode_reads_back_what_encode_wrote((frame, version) in representable_frame()) {
        let mut wire = BytesMut::new();
        encode(&frame, version, &mut wire);
        let mut decoder = Decoder::new(Limits::default());
        decoder.set_version(version);
        let decoded = decoder.decode(&mut wire);
        prop_assert!(wire.is_empty(), "left over: {:?}", wire);
        let Ok(Some(mut back)) = decoded else {
            return Err(TestCaseError::fail(format!("{decoded:?}")));
        };
        let want_length = (!frame.body().is_empty()).then(|| frame.body().len().to_string());
        prop_assert_eq!(back.header("content-length"), want_length.as_deref());
        back.remove_header("content-length");
        prop_assert_eq!(back, frame);
    }
}

proptest! {
    /// A frame encoded in two halves, split after any header and the halves encoded apart,
    /// is byte for byte the frame encoded whole.
    #[test]
    fn head_and_tail_join_into_the_whole_frame(
        (frame, version) in representable_frame(),
        split in any::<prop::sample::Index>(),
    ) {
        let headers: Vec<(&str, &str)> = frame.headers().collect();
        let at = split.index(headers.len() + 1);
        let mut head = BytesMut::new();
        encode_head(frame.command(), headers[..at].iter().copied(), version, &mut head);
        let mut tail = BytesMut::new();
        encode_tail(frame.command(), headers[at..].iter().copied(), frame.body(), version, &mut tail);
        head.extend_from_slice(&tail);
        prop_assert_eq!(&head[..], &encoded(&frame, version)[..]);
    }
}
