//! Our own strict MQTT 3.1.1 / 5.0 codec.
//!
//! `decode` returns `Ok(None)` (incomplete), `Ok(Some(packet))` or
//! `Err(DecodeError)` (malformed); never "incomplete" once the frame is
//! whole. The maximum packet size is enforced from the fixed header, before
//! the body is buffered. Each length-prefixed part is parsed through a reader
//! bounded to that length, and trailing bytes are rejected.

mod decode;
mod encode;
mod error;
mod packet;
mod parse;
mod properties;
mod reader;
pub mod reason;
mod roundtrip;

#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::{encode, encoded_len};
pub use error::{DecodeError, EncodeError};
pub use packet::*;
pub use roundtrip::roundtrip_check;
