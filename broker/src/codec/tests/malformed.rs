//! One test per class of invalid input, asserting the exact error.

use bytes::BytesMut;

use crate::codec::*;

const V3: Option<Protocol> = Some(Protocol::V311);
const V5: Option<Protocol> = Some(Protocol::V5);
const FRESH: Option<Protocol> = None;

/// A frame: first byte, minimal remaining length, body.
fn frame(byte1: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![byte1];
    let mut len = body.len();
    loop {
        let mut b = (len & 0x7f) as u8;
        len >>= 7;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

fn run(bytes: &[u8], protocol: Option<Protocol>) -> Result<Option<Packet>, DecodeError> {
    decode(&mut BytesMut::from(bytes), protocol, u32::MAX)
}

fn err(bytes: &[u8], protocol: Option<Protocol>) -> DecodeError {
    match run(bytes, protocol) {
        Err(e) => e,
        other => panic!("expected an error for {bytes:02x?}, got {other:?}"),
    }
}

fn ok(bytes: &[u8], protocol: Option<Protocol>) -> Packet {
    match run(bytes, protocol) {
        Ok(Some(p)) => p,
        other => panic!("expected a packet for {bytes:02x?}, got {other:?}"),
    }
}

fn is_malformed(e: DecodeError) -> bool {
    matches!(e, DecodeError::Malformed(_))
}

fn is_protocol(e: DecodeError) -> bool {
    matches!(e, DecodeError::Protocol(_))
}

/// CONNECT body: name, level, flags, keep alive 60, then `rest`.
fn connect_body(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut b = string(name);
    b.push(level);
    b.push(flags);
    b.extend_from_slice(&[0, 60]);
    b.extend_from_slice(rest);
    b
}

/// A v5 CONNECT with the given property block and client id "c".
fn v5_connect_with_props(props: &[u8]) -> Vec<u8> {
    let mut rest = vec![props.len() as u8];
    rest.extend_from_slice(props);
    rest.extend_from_slice(&string(b"c"));
    frame(0x10, &connect_body(b"MQTT", 5, 0x02, &rest))
}

/// A v5 QoS 0 PUBLISH to "t" with the given property block.
fn v5_publish_with_props(props: &[u8]) -> Vec<u8> {
    let mut body = string(b"t");
    body.push(props.len() as u8);
    body.extend_from_slice(props);
    frame(0x30, &body)
}

#[test]
fn reason_codes_of_errors() {
    assert_eq!(DecodeError::Malformed("x").reason_code(), 0x81);
    assert_eq!(DecodeError::Protocol("x").reason_code(), 0x82);
    assert_eq!(
        DecodeError::TooLarge { size: 1, max: 0 }.reason_code(),
        0x95
    );
    assert_eq!(DecodeError::UnsupportedProtocol(3).reason_code(), 0x84);
    assert_eq!(DecodeError::TopicNameInvalid.reason_code(), 0x90);
}

#[test]
fn too_large_is_refused_from_the_fixed_header() {
    // Claims 2 MB; only the header has arrived.
    let header = [0x30, 0x80, 0x80, 0x80, 0x01];
    let e = decode(&mut BytesMut::from(&header[..]), V5, 1024).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooLarge {
            size: 5 + 2_097_152,
            max: 1024
        }
    );
    // The limit counts the fixed header: 2 + 3 bytes fits in 5, not in 4.
    let publish = frame(0x30, &[0, 1, b't']);
    assert!(decode(&mut BytesMut::from(&publish[..]), V3, 5).is_ok());
    assert_eq!(
        decode(&mut BytesMut::from(&publish[..]), V3, 4),
        Err(DecodeError::TooLarge { size: 5, max: 4 })
    );
}

#[test]
fn remaining_length() {
    assert!(is_malformed(err(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], V5)));
    // Incomplete header: more bytes needed, not an error.
    assert_eq!(run(&[0x30], V5), Ok(None));
    assert_eq!(run(&[0x30, 0xff, 0xff], V5), Ok(None));
    // Non-minimal encoding of 0 is accepted.
    assert_eq!(ok(&[0xc0, 0x80, 0x00], V3), Packet::PingReq);
}

#[test]
fn connection_state() {
    assert!(is_protocol(err(&[0xc0, 0x00], FRESH)));
    let connect = frame(0x10, &connect_body(b"MQTT", 4, 0x02, &string(b"c")));
    assert!(matches!(ok(&connect, FRESH), Packet::Connect(_)));
    assert!(is_protocol(err(&connect, V3)));
    assert!(is_protocol(err(&connect, V5)));
}

#[test]
fn protocol_name_and_level() {
    let c = |name: &[u8], level| frame(0x10, &connect_body(name, level, 0x02, &string(b"c")));
    assert_eq!(
        err(&c(b"MQTT", 3), FRESH),
        DecodeError::UnsupportedProtocol(3)
    );
    assert_eq!(
        err(&c(b"MQIsdp", 3), FRESH),
        DecodeError::UnsupportedProtocol(3)
    );
    assert_eq!(
        err(&c(b"MQTT", 6), FRESH),
        DecodeError::UnsupportedProtocol(6)
    );
    assert!(is_malformed(err(&c(b"MQTX", 4), FRESH)));
}

#[test]
fn reserved_fixed_header_flags() {
    // (byte1 with wrong flags) for every non-PUBLISH type.
    let bad = [
        0x21, 0x41, 0x51, 0x60, 0x63, 0x71, 0x80, 0x8a, 0x91, 0xa0, 0xa4, 0xb1, 0xc1, 0xd8, 0xe1,
        0xf2,
    ];
    for byte1 in bad {
        assert!(is_malformed(err(&[byte1, 0x00], V5)), "{byte1:#04x}");
    }
    assert!(is_malformed(err(&[0x00, 0x00], V5)));
    assert!(is_malformed(err(&[0x11, 0x00], FRESH)));
}

#[test]
fn publish_header() {
    let body = [0, 1, b't', 0, 1];
    assert!(is_malformed(err(&frame(0x36, &body), V3)), "QoS 3");
    assert!(is_malformed(err(&frame(0x38, &body), V3)), "QoS 0 with DUP");
    assert!(matches!(ok(&frame(0x3a, &body), V3), Packet::Publish(p) if p.dup));
}

#[test]
fn connect_flags() {
    let v3 = |flags, rest: &[u8]| frame(0x10, &connect_body(b"MQTT", 4, flags, rest));
    let id = string(b"c");
    assert!(is_malformed(err(&v3(0x03, &id), FRESH)), "reserved bit");
    assert!(
        is_malformed(err(&v3(0x08, &id), FRESH)),
        "will QoS without will"
    );
    assert!(
        is_malformed(err(&v3(0x20, &id), FRESH)),
        "will retain without will"
    );
    let mut with_will = id.clone();
    with_will.extend(string(b"w"));
    with_will.extend(string(b"bye"));
    assert!(
        is_malformed(err(&v3(0x1c, &with_will), FRESH)),
        "will QoS 3"
    );
    assert!(matches!(ok(&v3(0x34, &with_will), FRESH), Packet::Connect(c) if c.will.is_some()));

    let mut with_password = id.clone();
    with_password.extend(string(b"pw"));
    assert!(
        is_malformed(err(&v3(0x40, &with_password), FRESH)),
        "3.1.1 password alone"
    );
    let mut v5_rest = vec![0];
    v5_rest.extend(&with_password);
    let v5 = frame(0x10, &connect_body(b"MQTT", 5, 0x40, &v5_rest));
    assert!(
        matches!(ok(&v5, FRESH), Packet::Connect(c) if c.password.is_some() && c.username.is_none())
    );
}

#[test]
fn will_topic_must_be_a_topic_name() {
    let mut rest = string(b"c");
    rest.extend(string(b"a/+"));
    rest.extend(string(b""));
    let p = frame(0x10, &connect_body(b"MQTT", 4, 0x04, &rest));
    assert_eq!(err(&p, FRESH), DecodeError::TopicNameInvalid);
}

#[test]
fn utf8_strings() {
    for bad in [&b"a\xffb"[..], b"a\0b", b"\xed\xa0\x80", b"\xc0\x80"] {
        let mut body = string(bad);
        body.extend_from_slice(b"payload");
        assert!(is_malformed(err(&frame(0x30, &body), V3)), "{bad:02x?}");
    }
    // Length prefix running past the packet.
    assert!(is_malformed(err(&frame(0x30, &[0, 9, b't']), V3)));
}

#[test]
fn publish_topic_names() {
    let publish = |topic: &[u8], props: Option<&[u8]>| {
        let mut body = string(topic);
        if let Some(p) = props {
            body.push(p.len() as u8);
            body.extend_from_slice(p);
        }
        frame(0x30, &body)
    };
    assert_eq!(
        err(&publish(b"a/+", None), V3),
        DecodeError::TopicNameInvalid
    );
    assert_eq!(
        err(&publish(b"a/#", Some(&[])), V5),
        DecodeError::TopicNameInvalid
    );
    assert_eq!(err(&publish(b"", None), V3), DecodeError::TopicNameInvalid);
    assert!(is_protocol(err(&publish(b"", Some(&[])), V5)));
    let aliased = ok(&publish(b"", Some(&[0x23, 0, 4])), V5);
    assert!(
        matches!(aliased, Packet::Publish(p) if p.topic.is_empty() && p.properties.topic_alias == Some(4))
    );
}

fn subscribe(v5: bool, filters: &[(&[u8], u8)]) -> Vec<u8> {
    let mut body = vec![0, 1];
    if v5 {
        body.push(0);
    }
    for (f, o) in filters {
        body.extend(string(f));
        body.push(*o);
    }
    frame(0x82, &body)
}

#[test]
fn subscribe_filters() {
    assert!(is_malformed(err(&subscribe(false, &[(b"a/#/b", 0)]), V3)));
    assert!(is_malformed(err(&subscribe(true, &[(b"a+", 0)]), V5)));
    assert!(is_malformed(err(
        &subscribe(true, &[(b"$share//a", 0)]),
        V5
    )));
    assert!(is_malformed(err(&subscribe(true, &[(b"$share/g", 0)]), V5)));
    assert!(is_malformed(err(&subscribe(true, &[(b"", 0)]), V5)));
    assert!(is_protocol(err(&subscribe(false, &[]), V3)), "no filters");
    assert!(is_protocol(err(&subscribe(true, &[]), V5)), "no filters");
    let shared = ok(&subscribe(true, &[(b"$share/g/a/#", 1)]), V5);
    assert!(matches!(shared, Packet::Subscribe(s) if s.filters[0].0 == "$share/g/a/#"));
}

#[test]
fn subscription_options() {
    assert!(
        is_malformed(err(&subscribe(false, &[(b"a", 0x04)]), V3)),
        "3.1.1 upper bits"
    );
    assert!(
        is_malformed(err(&subscribe(false, &[(b"a", 0x03)]), V3)),
        "3.1.1 QoS 3"
    );
    assert!(
        is_malformed(err(&subscribe(true, &[(b"a", 0x40)]), V5)),
        "reserved bits"
    );
    assert!(
        is_malformed(err(&subscribe(true, &[(b"a", 0x80)]), V5)),
        "reserved bits"
    );
    assert!(
        is_protocol(err(&subscribe(true, &[(b"a", 0x03)]), V5)),
        "v5 QoS 3"
    );
    assert!(
        is_protocol(err(&subscribe(true, &[(b"a", 0x30)]), V5)),
        "retain handling 3"
    );
    assert!(
        is_protocol(err(&subscribe(true, &[(b"$share/g/a", 0x04)]), V5)),
        "no local shared"
    );
    let Packet::Subscribe(s) = ok(&subscribe(true, &[(b"a", 0x2e)]), V5) else {
        panic!()
    };
    let o = s.filters[0].1;
    assert_eq!(
        (o.qos, o.no_local, o.retain_as_published, o.retain_handling),
        (QoS::ExactlyOnce, true, true, RetainHandling::Never)
    );
}

#[test]
fn unsubscribe_filters() {
    assert!(is_protocol(err(&frame(0xa2, &[0, 1]), V3)), "no filters");
    assert!(is_protocol(err(&frame(0xa2, &[0, 1, 0]), V5)), "no filters");
    let mut body = vec![0, 1];
    body.extend(string(b"a/#/b"));
    assert!(is_malformed(err(&frame(0xa2, &body), V3)));
}

#[test]
fn packet_identifier_zero() {
    let mut publish = string(b"t");
    publish.extend([0, 0]);
    assert!(is_protocol(err(&frame(0x32, &publish), V3)));
    for byte1 in [0x40, 0x50, 0x62, 0x70] {
        assert!(is_protocol(err(&[byte1, 2, 0, 0], V3)), "{byte1:#04x}");
        assert!(is_protocol(err(&[byte1, 2, 0, 0], V5)), "{byte1:#04x}");
    }
    let mut sub = vec![0, 0];
    sub.extend(string(b"a"));
    sub.push(0);
    assert!(is_protocol(err(&frame(0x82, &sub), V3)));
    assert!(is_protocol(err(&[0x90, 3, 0, 0, 0], V3)));
    let mut unsub = vec![0, 0];
    unsub.extend(string(b"a"));
    assert!(is_protocol(err(&frame(0xa2, &unsub), V3)));
    assert!(is_protocol(err(&[0xb0, 2, 0, 0], V3)));
}

#[test]
fn duplicate_properties() {
    let twice = [0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2];
    assert!(is_protocol(err(&v5_publish_with_props(&twice), V5)));
    // User properties and PUBLISH subscription identifiers may repeat.
    let users = [0x26, 0, 1, b'k', 0, 0, 0x26, 0, 1, b'k', 0, 0];
    assert!(run(&v5_publish_with_props(&users), V5).is_ok());
    let ids = [0x0b, 1, 0x0b, 2];
    let Packet::Publish(p) = ok(&v5_publish_with_props(&ids), V5) else {
        panic!()
    };
    assert_eq!(p.properties.subscription_identifiers, [1, 2]);
    let sub = frame(0x82, &[0, 1, 4, 0x0b, 1, 0x0b, 2, 0, 1, b'a', 0]);
    assert!(is_protocol(err(&sub, V5)));
    assert!(is_protocol(err(
        &v5_connect_with_props(&[0x21, 0, 5, 0x21, 0, 6]),
        FRESH
    )));
}

#[test]
fn properties_not_allowed_on_the_packet() {
    // Topic alias on CONNECT, session expiry on PUBLISH, will delay outside
    // the will, reason string on SUBSCRIBE.
    assert!(is_protocol(err(
        &v5_connect_with_props(&[0x23, 0, 1]),
        FRESH
    )));
    assert!(is_protocol(err(
        &v5_publish_with_props(&[0x11, 0, 0, 0, 1]),
        V5
    )));
    assert!(is_protocol(err(
        &v5_connect_with_props(&[0x18, 0, 0, 0, 1]),
        FRESH
    )));
    assert!(is_protocol(err(
        &frame(0x82, &[0, 1, 4, 0x1f, 0, 1, b'x', 0, 1, b'a', 0]),
        V5
    )));
    // Topic alias in the will properties.
    let mut rest = vec![0];
    rest.extend(string(b"c"));
    rest.extend([3, 0x23, 0, 1]);
    rest.extend(string(b"w"));
    rest.extend(string(b""));
    let c = frame(0x10, &connect_body(b"MQTT", 5, 0x04, &rest));
    assert!(is_protocol(err(&c, FRESH)));
    // PUBACK may carry a reason string.
    assert!(run(&[0x40, 8, 0, 1, 0x10, 4, 0x1f, 0, 1, b'x'], V5).is_ok());
}

#[test]
fn property_values_out_of_range() {
    assert!(
        is_protocol(err(&v5_connect_with_props(&[0x21, 0, 0]), FRESH)),
        "receive max 0"
    );
    assert!(
        is_protocol(err(&v5_connect_with_props(&[0x27, 0, 0, 0, 0]), FRESH)),
        "max packet 0"
    );
    assert!(
        is_protocol(err(&v5_connect_with_props(&[0x17, 2]), FRESH)),
        "request problem 2"
    );
    assert!(
        is_protocol(err(&v5_connect_with_props(&[0x19, 2]), FRESH)),
        "request response 2"
    );
    assert!(
        is_protocol(err(&v5_publish_with_props(&[0x01, 2]), V5)),
        "payload format 2"
    );
    assert!(
        is_protocol(err(&v5_publish_with_props(&[0x0b, 0]), V5)),
        "subscription id 0"
    );
    assert!(
        is_protocol(err(&v5_publish_with_props(&[0x23, 0, 0]), V5)),
        "topic alias 0"
    );
    assert!(
        is_protocol(err(&v5_publish_with_props(&[0x08, 0, 1, b'#']), V5)),
        "response topic"
    );
    assert!(
        is_protocol(err(&[0x20, 5, 0, 0, 2, 0x24, 2], V5)),
        "maximum QoS 2"
    );
    // A subscription identifier over 4 bytes cannot even be read.
    let long_id = [0x0b, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(is_malformed(err(&v5_publish_with_props(&long_id), V5)));
    assert!(
        is_protocol(err(&v5_connect_with_props(&[0x16, 0, 0]), FRESH)),
        "auth data alone"
    );
}

#[test]
fn unknown_property() {
    assert!(is_malformed(err(&v5_publish_with_props(&[0x05, 0]), V5)));
    assert!(is_malformed(err(&v5_publish_with_props(&[0x80, 0]), V5)));
}

#[test]
fn property_block_bounds() {
    // The property length claims more than the packet has.
    assert!(is_malformed(err(&[0x40, 4, 0, 1, 0, 9], V5)));
    // A property runs past its block (block of 2 holding a 4-byte value),
    // even though the packet has bytes after it.
    let body = [0, 1, b't', 2, 0x02, 0, 0, 0];
    assert!(is_malformed(err(&frame(0x30, &body), V5)));
}

#[test]
fn auth_is_v5_only() {
    assert!(is_malformed(err(&[0xf0, 0x00], V3)));
    assert!(matches!(ok(&[0xf0, 0x00], V5), Packet::Auth(a) if a.reason == 0));
}

#[test]
fn v5_short_forms() {
    assert_eq!(ok(&[0x40, 2, 0, 5], V5), Packet::PubAck(Ack::new(5)));
    let with_reason = ok(&[0x50, 3, 0, 5, 0x10], V5);
    assert!(matches!(with_reason, Packet::PubRec(a) if a.reason == 0x10));
    assert_eq!(ok(&[0xe0, 0], V5), Packet::Disconnect(Disconnect::new(0)));
    assert_eq!(
        ok(&[0xe0, 1, 0x04], V5),
        Packet::Disconnect(Disconnect::new(0x04))
    );
    assert!(matches!(ok(&[0xf0, 1, 0x18], V5), Packet::Auth(a) if a.reason == 0x18));
}

#[test]
fn v311_fixed_sizes() {
    for p in [
        &[0x40, 3, 0, 5, 0][..],
        &[0x62, 4, 0, 5, 0, 0],
        &[0xb0, 3, 0, 5, 0],
        &[0xc0, 1, 0],
        &[0xd0, 1, 0],
        &[0xe0, 1, 0],
        &[0x20, 3, 0, 0, 0],
    ] {
        assert!(is_malformed(err(p, V3)), "{p:02x?}");
    }
    assert!(
        is_malformed(err(&[0x20, 2, 0, 6], V3)),
        "unknown CONNACK code"
    );
    assert!(
        is_malformed(err(&[0x90, 3, 0, 1, 3], V3)),
        "unknown SUBACK code"
    );
}

#[test]
fn invalid_reason_codes() {
    assert!(is_protocol(err(&[0x40, 3, 0, 1, 0x92], V5)), "PUBACK");
    assert!(is_protocol(err(&[0x50, 3, 0, 1, 0x01], V5)), "PUBREC");
    assert!(is_protocol(err(&[0x62, 3, 0, 1, 0x10], V5)), "PUBREL");
    assert!(is_protocol(err(&[0x70, 3, 0, 1, 0x80], V5)), "PUBCOMP");
    assert!(is_protocol(err(&[0xe0, 1, 0x05], V5)), "DISCONNECT");
    assert!(is_protocol(err(&[0xf0, 1, 0x01], V5)), "AUTH");
}

#[test]
fn trailing_bytes() {
    // PUBACK with an empty property block and one byte more.
    assert!(is_malformed(err(&[0x40, 5, 0, 1, 0, 0, 0xaa], V5)));
    let mut connect = connect_body(b"MQTT", 4, 0x02, &string(b"c"));
    connect.push(0);
    assert!(is_malformed(err(&frame(0x10, &connect), FRESH)));
    assert!(is_malformed(err(&[0xe0, 3, 0, 0, 0], V5)));
}

#[test]
fn payload_is_not_copied() {
    let wire = frame(0x30, &[0, 1, b't', 1, 2, 3, 4]);
    let mut buf = BytesMut::from(&wire[..]);
    let range = buf.as_ptr_range();
    let Some(Packet::Publish(p)) = decode(&mut buf, V3, u32::MAX).unwrap() else {
        panic!()
    };
    assert_eq!(&p.payload[..], [1, 2, 3, 4]);
    assert!(range.contains(&p.payload.as_ptr()));
}
