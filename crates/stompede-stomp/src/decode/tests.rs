use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::encode;

fn frame(command: Command, headers: &[(&str, &str)], body: &[u8]) -> Frame {
    headers
        .iter()
        .fold(Frame::new(command), |f, (n, v)| f.with_header(*n, *v))
        .with_body(body.to_vec())
}

/// Everything `input` decodes to at once: the frames, the error that ended
/// decoding if any, and the bytes left in the buffer (none after an error:
/// the connection is closed, so they mean nothing).
fn decode_all(version: Version, limits: Limits, input: &[u8]) -> Outcome {
    let mut decoder = Decoder::new(limits);
    decoder.set_version(version);
    let mut buf = BytesMut::from(input);
    let mut outcome = Outcome::default();
    drain(&mut decoder, &mut buf, &mut outcome);
    outcome.finish(buf)
}

/// The same, feeding the input in pieces ending at `cuts`.
fn decode_split(version: Version, limits: Limits, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut decoder = Decoder::new(limits);
    decoder.set_version(version);
    let mut buf = BytesMut::new();
    let mut outcome = Outcome::default();
    let mut from = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        let cut = cut.clamp(from, input.len());
        buf.extend_from_slice(&input[from..cut]);
        from = cut;
        drain(&mut decoder, &mut buf, &mut outcome);
        if outcome.error.is_some() {
            break;
        }
    }
    outcome.finish(buf)
}

fn drain(decoder: &mut Decoder, buf: &mut BytesMut, outcome: &mut Outcome) {
    loop {
        match decoder.decode(buf) {
            Ok(Some(f)) => outcome.frames.push(f),
            Ok(None) => return,
            Err(e) => {
                outcome.error = Some(e);
                return;
            }
        }
    }
}

#[derive(Debug, Default, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<DecodeError>,
    rest: Vec<u8>,
}

impl Outcome {
    fn finish(mut self, buf: BytesMut) -> Outcome {
        if self.error.is_none() {
            self.rest = buf.to_vec();
        }
        self
    }
}

fn decode_one(version: Version, input: &[u8]) -> Result<Frame, DecodeError> {
    let out = decode_all(version, Limits::default(), input);
    if let Some(e) = out.error {
        assert!(out.frames.is_empty(), "{input:?}: frames before {e:?}");
        return Err(e);
    }
    assert_eq!(out.frames.len(), 1, "{input:?}: {out:?}");
    assert!(out.rest.is_empty(), "{input:?}: bytes left {:?}", out.rest);
    Ok(out.frames.into_iter().next().unwrap())
}

const ERROR_BODY: &str = "The message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\n\
Hello queue a!\n-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n";

#[test]
fn spec_examples_decode() {
    use Command::*;
    let error_frame = format!(
        "ERROR\nreceipt-id:message-12345\ncontent-type:text/plain\ncontent-length:{}\n\
         message:malformed frame received\n\n{ERROR_BODY}\0",
        ERROR_BODY.len()
    );
    let len = ERROR_BODY.len().to_string();
    let cases: Vec<(&[u8], Frame)> = vec![
        (
            b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
            frame(
                Connect,
                &[("accept-version", "1.2"), ("host", "stomp.github.org")],
                b"",
            ),
        ),
        (
            b"STOMP\naccept-version:1.1,1.2\nhost:/\nheart-beat:10000,10000\n\n\0",
            frame(
                Stomp,
                &[
                    ("accept-version", "1.1,1.2"),
                    ("host", "/"),
                    ("heart-beat", "10000,10000"),
                ],
                b"",
            ),
        ),
        (
            b"CONNECTED\nversion:1.2\n\n\0",
            frame(Connected, &[("version", "1.2")], b""),
        ),
        (
            b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0",
            frame(
                Send,
                &[("destination", "/queue/a"), ("content-type", "text/plain")],
                b"hello queue a",
            ),
        ),
        (
            b"SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n\0",
            frame(
                Subscribe,
                &[
                    ("id", "0"),
                    ("destination", "/queue/foo"),
                    ("ack", "client"),
                ],
                b"",
            ),
        ),
        (
            b"UNSUBSCRIBE\nid:0\n\n\0",
            frame(Unsubscribe, &[("id", "0")], b""),
        ),
        (
            b"ACK\nid:12345\ntransaction:tx1\n\n\0",
            frame(Ack, &[("id", "12345"), ("transaction", "tx1")], b""),
        ),
        (
            b"NACK\nid:12345\ntransaction:tx1\n\n\0",
            frame(Nack, &[("id", "12345"), ("transaction", "tx1")], b""),
        ),
        (
            b"BEGIN\ntransaction:tx1\n\n\0",
            frame(Begin, &[("transaction", "tx1")], b""),
        ),
        (
            b"COMMIT\ntransaction:tx1\n\n\0",
            frame(Commit, &[("transaction", "tx1")], b""),
        ),
        (
            b"ABORT\ntransaction:tx1\n\n\0",
            frame(Abort, &[("transaction", "tx1")], b""),
        ),
        (
            b"DISCONNECT\nreceipt:77\n\n\0",
            frame(Disconnect, &[("receipt", "77")], b""),
        ),
        (
            b"RECEIPT\nreceipt-id:77\n\n\0",
            frame(Receipt, &[("receipt-id", "77")], b""),
        ),
        (
            b"MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\n\
              content-type:text/plain\n\nhello queue a\0",
            frame(
                Message,
                &[
                    ("subscription", "0"),
                    ("message-id", "007"),
                    ("destination", "/queue/a"),
                    ("content-type", "text/plain"),
                ],
                b"hello queue a",
            ),
        ),
        (
            error_frame.as_bytes(),
            frame(
                Error,
                &[
                    ("receipt-id", "message-12345"),
                    ("content-type", "text/plain"),
                    ("content-length", &len),
                    ("message", "malformed frame received"),
                ],
                ERROR_BODY.as_bytes(),
            ),
        ),
    ];
    for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
        for (input, want) in &cases {
            assert_eq!(decode_one(version, input).as_ref(), Ok(want), "{version:?}");
        }
    }
}

#[test]
fn header_values_are_unescaped_per_version() {
    use Version::{V1_0, V1_1, V1_2};
    let cases: &[(Version, &[u8], &str, &str)] = &[
        (V1_1, b"a\\nb:v", "a\nb", "v"),
        (V1_1, b"k:a\\nb", "k", "a\nb"),
        (V1_1, b"k:a\\cb", "k", "a:b"),
        (V1_1, b"k\\c:v", "k:", "v"),
        (V1_1, b"k:a\\\\b", "k", "a\\b"),
        (V1_2, b"k:a\\nb", "k", "a\nb"),
        (V1_2, b"k:a\\cb", "k", "a:b"),
        (V1_2, b"k:a\\\\b", "k", "a\\b"),
        (V1_2, b"k:a\\rb", "k", "a\rb"),
        (V1_2, b"k\\r:v", "k\r", "v"),
        (V1_2, b"k:\\\\n", "k", "\\n"),
        // 1.0 has no escaping: backslashes are literal.
        (V1_0, b"k:a\\nb\\c\\\\\\t\\", "k", "a\\nb\\c\\\\\\t\\"),
        // A raw colon in a value is tolerated in every version.
        (V1_0, b"k:a:b", "k", "a:b"),
        (V1_1, b"k:a:b", "k", "a:b"),
        (V1_2, b"k:a:b", "k", "a:b"),
        // No trimming of whitespace.
        (V1_2, b" k : v ", " k ", " v "),
        (V1_0, b" k : v ", " k ", " v "),
        // Empty names and values.
        (V1_2, b":v", "", "v"),
        (V1_2, b"k:", "k", ""),
    ];
    for &(version, line, name, value) in cases {
        let mut input = b"SEND\n".to_vec();
        input.extend_from_slice(line);
        input.extend_from_slice(b"\n\n\0");
        let got = decode_one(version, &input);
        assert_eq!(
            got,
            Ok(frame(Command::Send, &[(name, value)], b"")),
            "{version:?} {line:?}"
        );
    }
}

#[test]
fn undefined_escapes_are_rejected() {
    use Version::{V1_1, V1_2};
    let cases: &[(Version, &[u8])] = &[
        (V1_1, b"k:a\\rb"),
        (V1_1, b"k:a\\tb"),
        (V1_2, b"k:a\\tb"),
        (V1_2, b"k\\t:v"),
        (V1_2, b"k:a\\"),
        (V1_2, b"k\\:v"),
        (V1_2, b"k:\\C"),
    ];
    for &(version, line) in cases {
        let mut input = b"SEND\n".to_vec();
        input.extend_from_slice(line);
        input.extend_from_slice(b"\n\n\0");
        assert_eq!(
            decode_one(version, &input),
            Err(DecodeError::InvalidEscape),
            "{version:?} {line:?}"
        );
    }
}

#[test]
fn connect_and_connected_are_never_unescaped() {
    for version in [Version::V1_1, Version::V1_2] {
        for (input, command) in [
            (&b"CONNECT\nlogin:a\\cb\\t\n\n\0"[..], Command::Connect),
            (b"CONNECTED\nserver:a\\cb\\t\n\n\0", Command::Connected),
        ] {
            let name = if command == Command::Connect {
                "login"
            } else {
                "server"
            };
            assert_eq!(
                decode_one(version, input),
                Ok(frame(command, &[(name, "a\\cb\\t")], b""))
            );
        }
        // STOMP is not exempted by the spec: it is unescaped like any frame.
        assert_eq!(
            decode_one(version, b"STOMP\nlogin:a\\cb\n\n\0"),
            Ok(frame(Command::Stomp, &[("login", "a:b")], b""))
        );
    }
}

#[test]
fn crlf_line_endings_are_accepted_in_every_version() {
    let input = b"SEND\r\ndestination:/a\r\nk:v\r\n\r\nbody\0";
    for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
        assert_eq!(
            decode_one(version, input),
            Ok(frame(
                Command::Send,
                &[("destination", "/a"), ("k", "v")],
                b"body"
            ))
        );
    }
    // Only one CR belongs to the EOL; a second is part of the value.
    assert_eq!(
        decode_one(Version::V1_1, b"SEND\nk:v\r\r\n\n\0"),
        Ok(frame(Command::Send, &[("k", "v\r")], b""))
    );
    // Mixed endings in one frame.
    assert_eq!(
        decode_one(Version::V1_2, b"SEND\r\nk:v\n\r\n\0"),
        Ok(frame(Command::Send, &[("k", "v")], b""))
    );
}

#[test]
fn content_length_bodies() {
    let cases: &[(&[u8], Result<Frame, DecodeError>)] = &[
        (
            b"SEND\ncontent-length:5\n\na\0b\0c\0",
            Ok(frame(Command::Send, &[("content-length", "5")], b"a\0b\0c")),
        ),
        (
            b"SEND\ncontent-length:0\n\n\0",
            Ok(frame(Command::Send, &[("content-length", "0")], b"")),
        ),
        (
            b"SEND\ncontent-length:3\ncontent-length:1\n\nabc\0",
            Ok(frame(
                Command::Send,
                &[("content-length", "3"), ("content-length", "1")],
                b"abc",
            )),
        ),
        // Only the first counts, so a later bad one is just a header.
        (
            b"SEND\ncontent-length:1\ncontent-length:x\n\na\0",
            Ok(frame(
                Command::Send,
                &[("content-length", "1"), ("content-length", "x")],
                b"a",
            )),
        ),
        (
            b"SEND\ncontent-length:0002\n\nab\0",
            Ok(frame(Command::Send, &[("content-length", "0002")], b"ab")),
        ),
        // Header names are case-sensitive: this is not a content-length.
        (
            b"SEND\nContent-Length:5\n\nab\0",
            Ok(frame(Command::Send, &[("Content-Length", "5")], b"ab")),
        ),
        (
            b"SEND\ncontent-length:2\n\nabc\0",
            Err(DecodeError::MissingNul),
        ),
        (
            b"SEND\ncontent-length:0\n\nx\0",
            Err(DecodeError::MissingNul),
        ),
        (
            b"SEND\ncontent-length:abc\n\n\0",
            Err(DecodeError::InvalidContentLength),
        ),
        (
            b"SEND\ncontent-length:-1\n\n\0",
            Err(DecodeError::InvalidContentLength),
        ),
        (
            b"SEND\ncontent-length:+1\n\na\0",
            Err(DecodeError::InvalidContentLength),
        ),
        (
            b"SEND\ncontent-length:\n\n\0",
            Err(DecodeError::InvalidContentLength),
        ),
        (
            b"SEND\ncontent-length: 1\n\na\0",
            Err(DecodeError::InvalidContentLength),
        ),
        (
            b"SEND\ncontent-length:1.0\n\na\0",
            Err(DecodeError::InvalidContentLength),
        ),
        (
            b"SEND\ncontent-length:99999999999999999999999999\n\n\0",
            Err(DecodeError::InvalidContentLength),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(&decode_one(Version::V1_2, input), want, "{input:?}");
    }
}

#[test]
fn body_without_content_length_ends_at_first_nul() {
    let out = decode_all(Version::V1_2, Limits::default(), b"SEND\n\nab\0cd\0");
    assert_eq!(out.frames, [frame(Command::Send, &[], b"ab")]);
    assert_eq!(out.error, None);
    assert_eq!(out.rest, b"cd\0");
}

#[test]
fn heartbeats_between_frames_are_skipped() {
    let input = b"\n\r\n\nSEND\n\na\0\n\n\r\nSEND\n\nb\0\r\n\n";
    let out = decode_all(Version::V1_2, Limits::default(), input);
    assert_eq!(
        out,
        Outcome {
            frames: vec![
                frame(Command::Send, &[], b"a"),
                frame(Command::Send, &[], b"b")
            ],
            error: None,
            rest: vec![],
        }
    );
}

#[test]
fn heartbeats_alone_are_consumed() {
    for input in [&b"\n"[..], b"\r\n", b"\n\n\r\n\n"] {
        let mut buf = BytesMut::from(input);
        let mut decoder = Decoder::new(Limits::default());
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.is_empty(), "{input:?}");
    }
    // A lone CR may be half of a CRLF: kept until the next byte says.
    let mut buf = BytesMut::from(&b"\n\r"[..]);
    let mut decoder = Decoder::new(Limits::default());
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], b"\r");
    buf.extend_from_slice(b"\nSEND\n\n\0");
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(frame(Command::Send, &[], b"")))
    );
}

#[test]
fn empty_buffer_is_incomplete() {
    let mut buf = BytesMut::new();
    assert_eq!(Decoder::new(Limits::default()).decode(&mut buf), Ok(None));
}

#[test]
fn partial_frames_are_incomplete_and_kept() {
    for input in [
        &b"S"[..],
        b"SEND",
        b"SEND\r",
        b"SEND\n",
        b"SEND\nk:v",
        b"SEND\nk:v\n",
        b"SEND\nk:v\n\r",
        b"SEND\nk:v\n\n",
        b"SEND\nk:v\n\nbody",
        b"SEND\ncontent-length:3\n\nab",
        b"SEND\ncontent-length:3\n\nabc",
    ] {
        let mut buf = BytesMut::from(input);
        let mut decoder = Decoder::new(Limits::default());
        assert_eq!(decoder.decode(&mut buf), Ok(None), "{input:?}");
        assert_eq!(&buf[..], input);
    }
}

#[test]
fn repeated_headers_first_wins() {
    let f = decode_one(Version::V1_2, b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0").unwrap();
    assert_eq!(f.header("foo"), Some("World"));
    assert_eq!(f.headers().count(), 2);
}

#[test]
fn several_frames_in_one_buffer_come_out_one_per_call() {
    let mut buf = BytesMut::from(&b"SEND\n\na\0SEND\ncontent-length:1\n\n\0\0BEGIN\ntra"[..]);
    let mut decoder = Decoder::new(Limits::default());
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(frame(Command::Send, &[], b"a")))
    );
    assert_eq!(&buf[..], b"SEND\ncontent-length:1\n\n\0\0BEGIN\ntra");
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(frame(
            Command::Send,
            &[("content-length", "1")],
            b"\0"
        )))
    );
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], b"BEGIN\ntra");
    buf.extend_from_slice(b"nsaction:t\n\n\0");
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(frame(Command::Begin, &[("transaction", "t")], b"")))
    );
}

#[test]
fn a_frame_fed_byte_by_byte_decodes_once_complete() {
    let input = b"\r\nMESSAGE\r\ndestination:/a\\c\r\ncontent-length:3\r\n\r\n\0x\0\0\n";
    let whole = decode_all(Version::V1_2, Limits::default(), input);
    let cuts: Vec<usize> = (0..input.len()).collect();
    assert_eq!(
        decode_split(Version::V1_2, Limits::default(), input, &cuts),
        whole
    );
    assert_eq!(
        whole.frames,
        [frame(
            Command::Message,
            &[("destination", "/a:"), ("content-length", "3")],
            b"\0x\0"
        )]
    );
    assert!(whole.error.is_none() && whole.rest.is_empty());
}

#[test]
fn limits_yield_typed_errors() {
    let small = Limits {
        max_frame_len: 40,
        max_headers: 2,
        max_header_len: 17,
    };
    let too_large = Err(DecodeError::FrameTooLarge { limit: 40 });
    // "SEND\nk:v\n\n" is 10 bytes, "SEND\ncontent-length:NN\n\n" 24; the NUL is 1.
    let plain = |n: usize| [&b"SEND\nk:v\n\n"[..], &vec![b'x'; n], b"\0"].concat();
    let counted = |n: usize| {
        [
            format!("SEND\ncontent-length:{n}\n\n").as_bytes(),
            &vec![b'x'; n],
            b"\0",
        ]
        .concat()
    };
    let cases: Vec<(Vec<u8>, Result<Frame, DecodeError>)> = vec![
        // Exactly 40 bytes, NUL included, is allowed; 41 is not.
        (
            plain(29),
            Ok(frame(Command::Send, &[("k", "v")], &[b'x'; 29])),
        ),
        (plain(30), too_large.clone()),
        (
            counted(15),
            Ok(frame(
                Command::Send,
                &[("content-length", "15")],
                &[b'x'; 15],
            )),
        ),
        (counted(16), too_large.clone()),
        (
            b"SEND\na:1\nb:2\nc:3\n\n\0".to_vec(),
            Err(DecodeError::TooManyHeaders { limit: 2 }),
        ),
        (
            b"SEND\na:1\nb:2\n\n\0".to_vec(),
            Ok(frame(Command::Send, &[("a", "1"), ("b", "2")], b"")),
        ),
        (
            b"SEND\nkey:12345678901234\n\n\0".to_vec(),
            Err(DecodeError::HeaderTooLong { limit: 17 }),
        ),
        // The EOL does not count against the line.
        (
            b"SEND\nkey:1234567890123\r\n\n\0".to_vec(),
            Ok(frame(Command::Send, &[("key", "1234567890123")], b"")),
        ),
    ];
    for (input, want) in cases {
        let out = decode_all(Version::V1_2, small, &input);
        let got = match out.error {
            Some(e) => Err(e),
            None => Ok(out.frames.into_iter().next().unwrap()),
        };
        assert_eq!(got, want, "{input:?}");
    }
}

#[test]
fn a_crlf_split_after_its_cr_does_not_count_against_the_line() {
    let limits = Limits {
        max_header_len: 10,
        ..Limits::default()
    };
    let input = b"SEND\nk:12345678\r\n\n\0";
    let whole = decode_all(Version::V1_2, limits, input);
    assert_eq!(
        whole.frames,
        [frame(Command::Send, &[("k", "12345678")], b"")]
    );
    let cut_after_cr = input.iter().position(|&b| b == b'\r').unwrap() + 1;
    assert_eq!(
        decode_split(Version::V1_2, limits, input, &[cut_after_cr]),
        whole
    );
}

/// The decoder must refuse a hostile stream as soon as a violation is certain,
/// with no more than `max_frame_len` bytes buffered.
#[test]
fn limits_are_enforced_before_the_frame_ends() {
    let limits = Limits {
        max_frame_len: 1024,
        max_headers: 4,
        max_header_len: 100,
    };
    // (prefix, byte repeated forever, error)
    let cases: &[(&[u8], u8, DecodeError)] = &[
        (b"SEND\n", b'a', DecodeError::HeaderTooLong { limit: 100 }),
        (b"SEND\nk:", b'v', DecodeError::HeaderTooLong { limit: 100 }),
        (
            b"SEND\n\n",
            b'x',
            DecodeError::FrameTooLarge { limit: 1024 },
        ),
        (b"SEND\n", b'\n', DecodeError::FrameTooLarge { limit: 1024 }),
        (
            b"",
            b'X',
            DecodeError::UnknownCommand {
                command: "X".repeat(32),
            },
        ),
    ];
    for (prefix, filler, want) in cases {
        let mut decoder = Decoder::new(limits);
        let mut buf = BytesMut::from(*prefix);
        let mut fed = 0;
        let err = loop {
            match decoder.decode(&mut buf) {
                Ok(None) => {}
                other => break other,
            }
            buf.extend_from_slice(&[*filler; 7]);
            fed += 7;
            assert!(fed <= 2048, "{prefix:?} never rejected");
        };
        assert_eq!(err, Err(want.clone()), "{prefix:?}");
        assert!(
            buf.len() <= limits.max_frame_len + 7,
            "{prefix:?}: {}",
            buf.len()
        );
    }
    // Endless header lines, each short: the header count trips.
    let mut buf = BytesMut::from(&b"SEND\n"[..]);
    let mut decoder = Decoder::new(limits);
    for i in 0.. {
        buf.extend_from_slice(b"k:v\n");
        match decoder.decode(&mut buf) {
            Ok(None) => assert!(i < 4),
            other => {
                assert_eq!(other, Err(DecodeError::TooManyHeaders { limit: 4 }));
                break;
            }
        }
    }
}

#[test]
fn huge_content_length_is_rejected_without_waiting_for_the_body() {
    let mut decoder = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"SEND\ncontent-length:1000000\n\n"[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::FrameTooLarge { limit: 64 * 1024 })
    );
    let mut buf = BytesMut::from(&b"SEND\ncontent-length:18446744073709551615\n\n"[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::FrameTooLarge { limit: 64 * 1024 })
    );
}

#[test]
fn malformed_frames_are_rejected() {
    let cases: &[(&[u8], DecodeError)] = &[
        (
            b"SENDX\n\n\0",
            DecodeError::UnknownCommand {
                command: "SENDX".into(),
            },
        ),
        (
            b"send\n\n\0",
            DecodeError::UnknownCommand {
                command: "send".into(),
            },
        ),
        (
            b"SEND \n\n\0",
            DecodeError::UnknownCommand {
                command: "SEND ".into(),
            },
        ),
        (
            b"\rSEND\n\n\0",
            DecodeError::UnknownCommand {
                command: "\rSEND".into(),
            },
        ),
        (
            b"0123456789012345678901234567890123456789\n\n\0",
            DecodeError::UnknownCommand {
                command: "01234567890123456789012345678901".into(),
            },
        ),
        (b"SE\xffND\n\n\0", DecodeError::InvalidUtf8),
        (b"SEND\nk\xff:v\n\n\0", DecodeError::InvalidUtf8),
        (b"SEND\nk:\xc3\x28\n\n\0", DecodeError::InvalidUtf8),
        (b"CONNECT\nlogin:\xff\n\n\0", DecodeError::InvalidUtf8),
        (b"SEND\nno colon here\n\n\0", DecodeError::MissingColon),
        (
            b"SEND\ndestination:/a\nSEND\n\n\0",
            DecodeError::MissingColon,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            decode_one(Version::V1_2, input),
            Err(want.clone()),
            "{input:?}"
        );
    }
}

#[test]
fn headers_may_hold_utf8_and_nul_and_bodies_any_bytes() {
    assert_eq!(
        decode_one(
            Version::V1_2,
            "SEND\nd\u{e9}st:\u{1f600}\0x\n\n\u{ff}\x01\0".as_bytes()
        ),
        Ok(frame(
            Command::Send,
            &[("d\u{e9}st", "\u{1f600}\0x")],
            "\u{ff}\x01".as_bytes()
        ))
    );
    assert_eq!(
        decode_one(Version::V1_2, b"SEND\n\n\xff\xfe\0"),
        Ok(frame(Command::Send, &[], b"\xff\xfe"))
    );
}

#[test]
fn version_switch_applies_to_the_next_frames() {
    let mut decoder = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"SEND\nk:a\\rb\n\n\0SEND\nk:a\\rb\n\n\0"[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(frame(Command::Send, &[("k", "a\rb")], b"")))
    );
    decoder.set_version(Version::V1_1);
    assert_eq!(decoder.decode(&mut buf), Err(DecodeError::InvalidEscape));
    assert_eq!(decoder.limits(), Limits::default());
}

/// Streams that are mostly well-formed frames, with the awkward octets of the
/// grammar sprinkled in, so that both acceptance and every error are reached.
fn stomp_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let text = proptest::collection::vec(
        prop_oneof![
            16 => Just(&b"a"[..]),
            3 => Just(&b":"[..]),
            1 => Just(&b"\\c"[..]),
            1 => Just(&b"\\n"[..]),
            1 => Just(&b"\\r"[..]),
            1 => Just(&b"\\\\"[..]),
            1 => Just(&b"\\t"[..]),
            1 => Just(&b"\\"[..]),
            1 => Just(&b"\r"[..]),
            1 => Just(&b"\0"[..]),
            1 => Just(&b"\xc3\xa9"[..]),
            1 => Just(&b"\xff"[..]),
        ],
        0..6,
    )
    .prop_map(|pieces| pieces.concat());
    let command = prop_oneof![
        8 => proptest::sample::select(Command::ALL.to_vec()).prop_map(|c| c.as_str().as_bytes().to_vec()),
        1 => text.clone(),
    ];
    let header = prop_oneof![
        6 => (text.clone(), text.clone()).prop_map(|(n, v)| [n, b":".to_vec(), v].concat()),
        1 => (0usize..12).prop_map(|n| format!("content-length:{n}").into_bytes()),
        1 => text.clone(),
    ];
    let eol = prop_oneof![3 => Just(&b"\n"[..]), 1 => Just(&b"\r\n"[..])];
    let body = proptest::collection::vec(
        prop_oneof![6 => Just(b'b'), 1 => Just(0u8), 1 => Just(b'\n'), 1 => any::<u8>()],
        0..12,
    );
    let frame = (
        proptest::collection::vec(eol.clone(), 0..3),
        command,
        eol.clone(),
        proptest::collection::vec((header, eol.clone()), 0..5),
        eol,
        body,
        prop_oneof![9 => Just(true), 1 => Just(false)],
    )
        .prop_map(|(beats, command, eol1, headers, eol2, body, nul)| {
            let mut out = beats.concat();
            out.extend_from_slice(&command);
            out.extend_from_slice(eol1);
            for (line, eol) in headers {
                out.extend_from_slice(&line);
                out.extend_from_slice(eol);
            }
            out.extend_from_slice(eol2);
            out.extend_from_slice(&body);
            if nul {
                out.push(0);
            }
            out
        });
    proptest::collection::vec(frame, 0..4).prop_map(|frames| frames.concat())
}

fn any_version() -> impl Strategy<Value = Version> {
    prop_oneof![
        Just(Version::V1_0),
        Just(Version::V1_1),
        Just(Version::V1_2)
    ]
}

fn any_limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        (1usize..100, 0usize..5, 0usize..12).prop_map(|(f, h, l)| Limits {
            max_frame_len: f,
            max_headers: h,
            max_header_len: l,
        }),
    ]
}

proptest! {
    /// Never panics, and how the bytes are split into reads changes nothing:
    /// the same frames, the same error, the same bytes left over.
    #[test]
    fn decoding_is_independent_of_how_bytes_arrive(
        input in prop_oneof![stomp_like_bytes(), proptest::collection::vec(any::<u8>(), 0..200)],
        mut cuts in proptest::collection::vec(0usize..400, 0..12),
        version in any_version(),
        limits in any_limits(),
    ) {
        cuts.sort_unstable();
        let whole = decode_all(version, limits, &input);
        let split = decode_split(version, limits, &input, &cuts);
        prop_assert_eq!(&split, &whole);
        let every_byte: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&decode_split(version, limits, &input, &every_byte), &whole);
    }

    /// Whatever the decoder accepts, the encoder re-emits and the decoder reads back equal.
    #[test]
    fn accepted_frames_survive_reencoding(input in stomp_like_bytes(), version in any_version()) {
        let unlimited = Limits { max_frame_len: usize::MAX, max_headers: usize::MAX, max_header_len: usize::MAX };
        for mut f in decode_all(version, Limits::default(), &input).frames {
            let mut wire = BytesMut::new();
            encode(&f, version, &mut wire);
            let out = decode_all(version, unlimited, &wire);
            prop_assert_eq!(out.error, None);
            prop_assert!(out.rest.is_empty());
            prop_assert_eq!(out.frames.len(), 1);
            let mut back = out.frames.into_iter().next().unwrap();
            f.remove_header("content-length");
            back.remove_header("content-length");
            prop_assert_eq!(back, f);
        }
    }
}
