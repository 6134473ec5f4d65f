//! Codec errors. Every decode error is the client's fault and carries the
//! v5 reason code the broker sends before closing the connection.

use super::reason;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes do not form a valid packet (0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Well-formed, but breaks a protocol rule (0x82).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// Larger than the maximum packet size (0x95).
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    TooLarge { size: usize, max: u32 },
    /// A CONNECT with an unknown protocol name or level (0x84).
    #[error("unsupported protocol version {0}")]
    UnsupportedProtocol(u8),
    /// A PUBLISH topic name with wildcards or otherwise invalid (0x90).
    #[error("invalid topic name")]
    TopicNameInvalid,
}

impl DecodeError {
    /// The v5 reason code for the DISCONNECT (or CONNACK) sent before closing.
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::Malformed(_) => reason::MALFORMED_PACKET,
            DecodeError::Protocol(_) => reason::PROTOCOL_ERROR,
            DecodeError::TooLarge { .. } => reason::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocol(_) => reason::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::TopicNameInvalid => reason::TOPIC_NAME_INVALID,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("packet too large to encode ({0} bytes)")]
    TooLarge(usize),
    #[error("field too long: {0}")]
    FieldTooLong(&'static str),
    #[error("packet not valid for this protocol level: {0}")]
    NotForProtocol(&'static str),
}
