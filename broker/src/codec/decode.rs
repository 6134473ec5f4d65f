//! Framing: the fixed header, size limits and connection-state checks, then
//! hand-off of the exact frame body to the per-packet parsers.

use bytes::BytesMut;

use super::parse;
use super::reader::Reader;
use super::{DecodeError, Packet, Protocol};

pub(crate) const CONNECT: u8 = 1;
pub(crate) const CONNACK: u8 = 2;
pub(crate) const PUBLISH: u8 = 3;
pub(crate) const PUBACK: u8 = 4;
pub(crate) const PUBREC: u8 = 5;
pub(crate) const PUBREL: u8 = 6;
pub(crate) const PUBCOMP: u8 = 7;
pub(crate) const SUBSCRIBE: u8 = 8;
pub(crate) const SUBACK: u8 = 9;
pub(crate) const UNSUBSCRIBE: u8 = 10;
pub(crate) const UNSUBACK: u8 = 11;
pub(crate) const PINGREQ: u8 = 12;
pub(crate) const PINGRESP: u8 = 13;
pub(crate) const DISCONNECT: u8 = 14;
pub(crate) const AUTH: u8 = 15;

/// Decodes one packet from the front of `buf`, consuming its bytes.
///
/// `protocol` is `None` until the connection's CONNECT has been decoded: then
/// only CONNECT is accepted (anything else is a protocol error) and its level
/// decides. `max_packet_size` bounds the whole packet (fixed header
/// included); an over-size packet is refused from its fixed header alone.
/// Payloads are split off `buf` without copying.
///
/// Errors are final: the connection must be closed, so what is left in `buf`
/// afterwards is unspecified. The codec does not check that a PUBLISH with
/// Payload Format Indicator 1 carries UTF-8 (that costs a payload scan and
/// the spec lets the receiver choose), nor anything that depends on
/// connection state beyond the protocol level (topic alias ranges, receive
/// maximum, who may send which packet: e.g. a client PUBLISH carrying a
/// Subscription Identifier, or a client sending CONNACK, decodes fine).
pub fn decode(
    buf: &mut BytesMut,
    protocol: Option<Protocol>,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let packet_type = byte1 >> 4;
    let flags = byte1 & 0x0f;
    // Checked before the body arrives so a bad peer is dropped early.
    check_header(packet_type, flags, protocol)?;

    let Some((remaining, len_len)) = remaining_length(buf)? else {
        return Ok(None);
    };
    let total = 1 + len_len + remaining;
    if total > max_packet_size as usize {
        return Err(DecodeError::TooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    if buf.len() < total {
        return Ok(None);
    }

    let mut frame = buf.split_to(total).freeze();
    let body = frame.split_off(1 + len_len);
    let mut r = Reader::new(body);
    let packet = match protocol {
        None => parse::connect(&mut r)?,
        Some(p) => parse::packet(packet_type, flags, p, &mut r)?,
    };
    r.finish()?;
    Ok(Some(packet))
}

/// The remaining length and how many bytes encode it, or `None` if the
/// header is not complete yet.
fn remaining_length(buf: &BytesMut) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for (i, &byte) in buf.iter().skip(1).take(4).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 5 {
        return Err(DecodeError::Malformed(
            "remaining length longer than 4 bytes",
        ));
    }
    Ok(None)
}

/// Packet type, reserved flags (§2.1.3) and the connection-state rules that
/// the first byte alone decides.
fn check_header(packet_type: u8, flags: u8, protocol: Option<Protocol>) -> Result<(), DecodeError> {
    match (protocol, packet_type) {
        (None, CONNECT) => {}
        (None, _) => return Err(DecodeError::Protocol("first packet must be CONNECT")),
        (Some(_), CONNECT) => return Err(DecodeError::Protocol("second CONNECT")),
        // Type 15 is reserved (forbidden) in 3.1.1.
        (Some(Protocol::V311), AUTH) => {
            return Err(DecodeError::Malformed("reserved packet type 15"));
        }
        _ => {}
    }
    let required = match packet_type {
        0 => return Err(DecodeError::Malformed("reserved packet type 0")),
        PUBLISH => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::Malformed("PUBLISH with QoS 0 and DUP"));
            }
            return Ok(());
        }
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        _ => 0,
    };
    if flags != required {
        return Err(DecodeError::Malformed("invalid fixed header flags"));
    }
    Ok(())
}
