use bytes::BytesMut;

use super::{EncodeError, Packet, Protocol};

/// Appends `packet` to `buf` in the wire format of `protocol` (v5-only
/// fields and properties are left out for 3.1.1).
pub fn encode(packet: &Packet, protocol: Protocol, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let _ = (packet, protocol, buf);
    todo!("codec agent")
}

/// The size `encode` would write, fixed header included; used to honour a
/// client's Maximum Packet Size before queueing a message for it.
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> usize {
    let _ = (packet, protocol);
    todo!("codec agent")
}
