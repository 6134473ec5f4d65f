use bytes::BytesMut;

use super::{DecodeError, Packet, Protocol};

/// Decodes one packet from the front of `buf`, consuming its bytes.
///
/// `protocol` is `None` until the connection's CONNECT has been decoded: then
/// only CONNECT is accepted (anything else is a protocol error) and its level
/// decides. `max_packet_size` bounds the whole packet (fixed header
/// included); an over-size packet is refused from its fixed header alone.
/// Payloads are split off `buf` without copying.
pub fn decode(
    buf: &mut BytesMut,
    protocol: Option<Protocol>,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let _ = (buf, protocol, max_packet_size);
    todo!("codec agent")
}
