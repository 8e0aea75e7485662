//! The property behind the `decode` fuzz target, shared by path with
//! `crates/stompede-stomp/tests/corpus.rs` so that the committed corpus also
//! runs under `cargo test`.
//!
//! For every STOMP version, on arbitrary bytes:
//! - whatever the decoder accepts, the encoder re-emits and the decoder reads
//!   back equal (up to `content-length`, which the encoder owns);
//! - feeding the bytes one at a time gives the same frames, the same error and
//!   the same leftover bytes as feeding them all at once, with default limits
//!   and with tiny ones.
//!
//! Any violation panics, which is what libFuzzer and `#[test]` both want.

use bytes::BytesMut;
use stompede_stomp::{encode, DecodeError, Decoder, Frame, Limits, Version};

const VERSIONS: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

const TINY: Limits = Limits {
    max_frame_len: 48,
    max_headers: 3,
    max_header_len: 16,
};

const UNLIMITED: Limits = Limits {
    max_frame_len: usize::MAX,
    max_headers: usize::MAX,
    max_header_len: usize::MAX,
};

/// Checks the properties above on `data`; panics on a violation.
pub(crate) fn check(data: &[u8]) {
    for version in VERSIONS {
        let whole = decode(version, Limits::default(), data, data.len().max(1));
        for frame in &whole.frames {
            reencodes_equal(frame, version);
        }
        assert_eq!(
            decode(version, Limits::default(), data, 1),
            whole,
            "{version:?}: byte-by-byte decoding differs"
        );
        assert_eq!(
            decode(version, TINY, data, 1),
            decode(version, TINY, data, data.len().max(1)),
            "{version:?}, tiny limits: byte-by-byte decoding differs"
        );
    }
}

fn reencodes_equal(frame: &Frame, version: Version) {
    let mut wire = BytesMut::new();
    encode(frame, version, &mut wire);
    // Escaping and the content-length header may make the copy longer than
    // the original, so read it back without limits.
    let back = decode(version, UNLIMITED, &wire, wire.len());
    assert_eq!(
        back.error, None,
        "{version:?}: re-encoded {frame:?} as {wire:?}"
    );
    assert!(
        back.rest.is_empty(),
        "{version:?}: {wire:?} left {:?}",
        back.rest
    );
    let [mut back] = <[Frame; 1]>::try_from(back.frames).unwrap_or_else(|frames| {
        panic!("{version:?}: {wire:?} decoded to {frames:?}");
    });
    let mut frame = frame.clone();
    frame.remove_header("content-length");
    back.remove_header("content-length");
    assert_eq!(back, frame, "{version:?}: via {wire:?}");
}

#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<DecodeError>,
    /// Bytes left undecoded; empty after an error, when they mean nothing.
    rest: Vec<u8>,
}

/// Decodes `data` fed in pieces of `chunk` bytes, until it is used up or an error.
fn decode(version: Version, limits: Limits, data: &[u8], chunk: usize) -> Outcome {
    let mut decoder = Decoder::new(limits);
    decoder.set_version(version);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        frames,
                        error: Some(error),
                        rest: Vec::new(),
                    }
                }
            }
        }
    }
    Outcome {
        frames,
        error: None,
        rest: buf.to_vec(),
    }
}
