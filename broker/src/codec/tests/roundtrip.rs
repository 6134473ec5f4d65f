//! encode → decode is the identity, however the bytes arrive.

use bytes::BytesMut;
use proptest::prelude::*;

use super::strategies::*;
use crate::codec::*;

const NO_LIMIT: u32 = u32::MAX;

/// The connection state a packet is decoded in: CONNECT only on a fresh one.
fn state(packet: &Packet, protocol: Protocol) -> Option<Protocol> {
    match packet {
        Packet::Connect(_) => None,
        _ => Some(protocol),
    }
}

fn encoded(packet: &Packet, protocol: Protocol) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(packet, protocol, &mut buf).unwrap();
    assert_eq!(
        buf.len(),
        encoded_len(packet, protocol),
        "encoded_len of {packet:?}"
    );
    buf
}

/// Any packet of either level, with the level it is written in.
fn any_packet() -> impl Strategy<Value = (Protocol, Packet)> {
    protocol().prop_flat_map(|p| {
        prop_oneof![1 => connect(p), 6 => non_connect(p)].prop_map(move |packet| (p, packet))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn whole_buffer((protocol, packet) in any_packet()) {
        let mut buf = encoded(&packet, protocol);
        let decoded = decode(&mut buf, state(&packet, protocol), NO_LIMIT);
        prop_assert_eq!(decoded, Ok(Some(packet)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn byte_by_byte((protocol, packet) in any_packet()) {
        let wire = encoded(&packet, protocol);
        let mut buf = BytesMut::new();
        for (i, &byte) in wire.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            let result = decode(&mut buf, state(&packet, protocol), NO_LIMIT);
            if i + 1 < wire.len() {
                prop_assert_eq!(result, Ok(None), "complete after {} of {} bytes", i + 1, wire.len());
                prop_assert_eq!(buf.len(), i + 1, "Ok(None) must not consume");
            } else {
                prop_assert_eq!(result, Ok(Some(packet.clone())));
                prop_assert!(buf.is_empty());
            }
        }
    }

    #[test]
    fn random_splits(
        (protocol, packets) in protocol().prop_flat_map(|p| {
            (Just(p), prop::collection::vec(non_connect(p), 1..5))
        }),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut wire = BytesMut::new();
        for packet in &packets {
            wire.extend_from_slice(&encoded(packet, protocol));
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();

        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut fed = 0;
        for cut in cuts {
            buf.extend_from_slice(&wire[fed..cut]);
            fed = cut;
            while let Some(packet) = decode(&mut buf, Some(protocol), NO_LIMIT).unwrap() {
                decoded.push(packet);
            }
        }
        prop_assert_eq!(decoded, packets);
        prop_assert!(buf.is_empty());
    }

    /// A connection's whole life: CONNECT fixes the level, the rest follows.
    #[test]
    fn session_stream(
        (protocol, first, rest) in protocol().prop_flat_map(|p| {
            (Just(p), connect(p), prop::collection::vec(non_connect(p), 0..4))
        })
    ) {
        let mut buf = encoded(&first, protocol);
        for packet in &rest {
            buf.extend_from_slice(&encoded(packet, protocol));
        }
        let Some(Packet::Connect(c)) = decode(&mut buf, None, NO_LIMIT).unwrap() else {
            panic!("expected CONNECT");
        };
        prop_assert_eq!(c.protocol, protocol);
        for packet in rest {
            prop_assert_eq!(decode(&mut buf, Some(protocol), NO_LIMIT), Ok(Some(packet)));
        }
        prop_assert!(buf.is_empty());
    }

    /// Whatever decodes from arbitrary bytes survives a round trip, and
    /// nothing panics.
    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        roundtrip_check(&data);
    }

    /// Arbitrary bytes behind a plausible first byte reach the body parsers
    /// far more often than fully random input.
    #[test]
    fn arbitrary_bodies(first in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..120)) {
        let mut data = vec![first];
        let len = u8::try_from(body.len()).unwrap();
        data.push(len);
        data.extend_from_slice(&body);
        roundtrip_check(&data);
    }
}

/// The short forms §3.4.2.1 and §3.14.2.1 allow for "success, no properties".
#[test]
fn v5_short_forms_are_used() {
    let v5 = Protocol::V5;
    assert_eq!(
        &encoded(&Packet::PubAck(Ack::new(5)), v5)[..],
        [0x40, 2, 0, 5]
    );
    let rel = Packet::PubRel(Ack {
        reason: 0x92,
        ..Ack::new(5)
    });
    assert_eq!(&encoded(&rel, v5)[..], [0x62, 3, 0, 5, 0x92]);
    assert_eq!(
        &encoded(&Packet::Disconnect(Disconnect::new(0)), v5)[..],
        [0xe0, 0]
    );
    assert_eq!(
        &encoded(&Packet::Disconnect(Disconnect::new(0x8e)), v5)[..],
        [0xe0, 1, 0x8e]
    );
    let auth = Packet::Auth(Auth {
        reason: 0,
        properties: Properties::default(),
    });
    assert_eq!(&encoded(&auth, v5)[..], [0xf0, 0]);
}

#[test]
fn v311_mappings() {
    let v3 = Protocol::V311;
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: reason::BANNED,
        properties: Properties::default(),
    });
    assert_eq!(&encoded(&connack, v3)[..], [0x20, 2, 0, 5]);
    let suback = Packet::SubAck(SubAck {
        pkid: 1,
        reasons: vec![0, 2, reason::TOPIC_FILTER_INVALID],
        properties: Properties::default(),
    });
    assert_eq!(&encoded(&suback, v3)[..], [0x90, 5, 0, 1, 0, 2, 0x80]);
    let unsuback = Packet::UnsubAck(UnsubAck {
        pkid: 1,
        reasons: vec![0x11],
        properties: Properties {
            reason_string: Some("x".into()),
            ..Properties::default()
        },
    });
    assert_eq!(&encoded(&unsuback, v3)[..], [0xb0, 2, 0, 1]);
    let disconnect = Packet::Disconnect(Disconnect::new(reason::SESSION_TAKEN_OVER));
    assert_eq!(&encoded(&disconnect, v3)[..], [0xe0, 0]);
}

#[test]
fn encode_errors() {
    let long = "x".repeat(65_536);
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: long,
        pkid: 0,
        properties: Properties::default(),
        payload: bytes::Bytes::new(),
    });
    let mut buf = BytesMut::new();
    assert_eq!(
        encode(&publish, Protocol::V5, &mut buf),
        Err(EncodeError::FieldTooLong("topic name"))
    );
    assert!(buf.is_empty());

    let huge = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        pkid: 0,
        properties: Properties::default(),
        payload: bytes::Bytes::from(vec![0u8; 268_435_455]),
    });
    assert!(matches!(
        encode(&huge, Protocol::V311, &mut buf),
        Err(EncodeError::TooLarge(_))
    ));
    assert!(buf.is_empty());
    assert!(encoded_len(&huge, Protocol::V311) > 268_435_455);

    let auth = Packet::Auth(Auth {
        reason: 0,
        properties: Properties::default(),
    });
    assert!(matches!(
        encode(&auth, Protocol::V311, &mut buf),
        Err(EncodeError::NotForProtocol(_))
    ));
}
