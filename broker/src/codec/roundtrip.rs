//! The invariant fuzzing checks: whatever decodes re-encodes to something
//! that decodes to the same packet.

use bytes::BytesMut;

use super::{decode, encode, encoded_len, Packet, Protocol};

/// Fuzz and smoke-test entry point.
///
/// Feeds `data` to `decode` as a byte stream three times: as a fresh
/// connection (so the first packet must be CONNECT, which then fixes the
/// protocol level for the rest), and as an established 3.1.1 and 5.0
/// connection. Every packet that decodes is re-encoded, the encoding must
/// have exactly `encoded_len` bytes and decode back to an equal packet.
/// Decode errors are fine (that is the input's problem); panics and
/// mismatches are bugs, reported by panicking.
pub fn roundtrip_check(data: &[u8]) {
    for start in [None, Some(Protocol::V311), Some(Protocol::V5)] {
        check_stream(data, start);
    }
}

fn check_stream(data: &[u8], start: Option<Protocol>) {
    let mut buf = BytesMut::from(data);
    let mut protocol = start;
    loop {
        let packet = match decode(&mut buf, protocol, u32::MAX) {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(_) => return,
        };
        let wire = match (&packet, protocol) {
            (Packet::Connect(c), None) => c.protocol,
            (_, Some(p)) => p,
            (_, None) => panic!("decoded {packet:?} before CONNECT"),
        };
        let mut out = BytesMut::new();
        if let Err(e) = encode(&packet, wire, &mut out) {
            panic!("decoded {packet:?} but cannot re-encode it: {e}");
        }
        assert_eq!(
            out.len(),
            encoded_len(&packet, wire),
            "encoded_len of {packet:?}"
        );
        let again = decode(&mut out, protocol, u32::MAX);
        assert_eq!(again, Ok(Some(packet.clone())), "re-decoding {packet:?}");
        assert!(out.is_empty(), "re-encoding of {packet:?} left bytes");
        protocol = Some(wire);
    }
}
