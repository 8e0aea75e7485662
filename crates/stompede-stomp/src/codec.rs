//! [`tokio_util::codec`] adapter, behind the `tokio-codec` feature, for
//! callers that hold a byte stream (the RabbitMQ relay, the load generator).

use bytes::BytesMut;

use crate::{encode, DecodeError, Decoder, Frame, Limits, Version};

/// A [`Decoder`] and [`encode`] as one `tokio_util` codec, both following the
/// same negotiated version.
///
/// Heart-beats are skipped on the way in and not produced on the way out:
/// write [`crate::HEARTBEAT`] to the underlying transport when one is due.
#[derive(Debug, Clone)]
pub struct Codec {
    decoder: Decoder,
    version: Version,
}

/// Why a [`Codec`] failed: a bad frame, or the transport under it.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent something that is not a STOMP frame.
    #[error("invalid frame")]
    Decode(#[from] DecodeError),
    /// The underlying transport failed (tokio-util requires errors to hold these).
    #[error("i/o error")]
    Io(#[from] std::io::Error),
}

impl Codec {
    /// A codec using STOMP 1.2 rules until [`Codec::set_version`].
    pub fn new(limits: Limits) -> Codec {
        Codec {
            decoder: Decoder::new(limits),
            version: Version::V1_2,
        }
    }

    /// Switches both directions to `version`'s escaping, after negotiation.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
        self.decoder.set_version(version);
    }

    /// The version both directions follow.
    pub fn version(&self) -> Version {
        self.version
    }
}

impl tokio_util::codec::Decoder for Codec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl tokio_util::codec::Encoder<Frame> for Codec {
    type Error = CodecError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode(&item, self.version, dst);
        Ok(())
    }
}

impl tokio_util::codec::Encoder<&Frame> for Codec {
    type Error = CodecError;

    fn encode(&mut self, item: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode(item, self.version, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::codec::{Decoder as _, Encoder as _};

    use super::*;
    use crate::Command;

    #[test]
    fn codec_round_trips_with_the_negotiated_version() {
        let mut codec = Codec::new(Limits::default());
        codec.set_version(Version::V1_1);
        assert_eq!(codec.version(), Version::V1_1);
        let frame = Frame::new(Command::Send).with_header("k", "a:b\nc");
        let mut buf = BytesMut::new();
        codec.encode(&frame, &mut buf).unwrap();
        assert_eq!(&buf[..], b"SEND\nk:a\\cb\\nc\n\n\0");
        codec.encode(frame.clone(), &mut buf).unwrap();
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(frame.clone()));
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(frame));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"SEND\nk:\\r\n\n\0");
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Decode(DecodeError::InvalidEscape))
        ));
    }
}
