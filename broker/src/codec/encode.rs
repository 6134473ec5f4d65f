//! Encoding. One body writer runs over two sinks: a byte counter (for
//! `encoded_len` and for length prefixes) and the real buffer, so the
//! announced lengths always agree with the bytes written.

use bytes::{BufMut, BytesMut};

use super::decode::{
    AUTH, CONNACK, CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC,
    PUBREL, SUBACK, SUBSCRIBE, UNSUBACK, UNSUBSCRIBE,
};
use super::properties::*;
use super::reader::MAX_VARINT;
use super::{
    reason, Ack, ConnAck, Connect, EncodeError, Packet, Properties, Protocol, Publish, QoS, SubAck,
    Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// Appends `packet` to `buf` in the wire format of `protocol` (v5-only
/// fields and properties are left out for 3.1.1).
///
/// On 3.1.1 a CONNACK reason is mapped with `reason::to_v3_connack` and any
/// SUBACK failure code is written as 0x80. The v5 short forms are used for
/// acknowledgements, DISCONNECT and AUTH with reason 0 and no properties.
/// Nothing is written if an error is returned.
pub fn encode(packet: &Packet, protocol: Protocol, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let remaining = body_len(packet, protocol)?;
    if remaining > MAX_VARINT as usize {
        return Err(EncodeError::TooLarge(remaining));
    }
    buf.reserve(1 + varint_len(remaining) + remaining);
    BufMut::put_u8(buf, first_byte(packet));
    put_varint(buf, remaining)?;
    write_body(packet, protocol, buf)
}

/// The size `encode` would write, fixed header included; used to honour a
/// client's Maximum Packet Size before queueing a message for it.
///
/// For a packet `encode` would refuse, returns a size beyond any packet
/// limit, so a size check against it fails safe.
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> usize {
    let remaining = body_len(packet, protocol).unwrap_or(usize::MAX / 2);
    1 + varint_len(remaining) + remaining
}

fn body_len(packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
    let mut counter = Counter(0);
    write_body(packet, protocol, &mut counter)?;
    Ok(counter.0)
}

/// Where encoded bytes go: a real buffer or a counter.
trait Sink {
    fn emit_u8(&mut self, v: u8);
    fn emit_u16(&mut self, v: u16);
    fn emit_u32(&mut self, v: u32);
    fn emit_slice(&mut self, s: &[u8]);
}

struct Counter(usize);

impl Sink for Counter {
    fn emit_u8(&mut self, _: u8) {
        self.0 += 1;
    }
    fn emit_u16(&mut self, _: u16) {
        self.0 += 2;
    }
    fn emit_u32(&mut self, _: u32) {
        self.0 += 4;
    }
    fn emit_slice(&mut self, s: &[u8]) {
        self.0 += s.len();
    }
}

impl Sink for BytesMut {
    fn emit_u8(&mut self, v: u8) {
        BufMut::put_u8(self, v);
    }
    fn emit_u16(&mut self, v: u16) {
        BufMut::put_u16(self, v);
    }
    fn emit_u32(&mut self, v: u32) {
        BufMut::put_u32(self, v);
    }
    fn emit_slice(&mut self, s: &[u8]) {
        BufMut::put_slice(self, s);
    }
}

fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn put_varint(s: &mut impl Sink, v: usize) -> Result<(), EncodeError> {
    if v > MAX_VARINT as usize {
        return Err(EncodeError::TooLarge(v));
    }
    let mut v = v;
    loop {
        // Truncation is the point: the low seven bits of each group.
        let mut byte = (v & 0x7f) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        s.emit_u8(byte);
        if v == 0 {
            return Ok(());
        }
    }
}

fn put_binary(s: &mut impl Sink, data: &[u8], what: &'static str) -> Result<(), EncodeError> {
    let len = u16::try_from(data.len()).map_err(|_| EncodeError::FieldTooLong(what))?;
    s.emit_u16(len);
    s.emit_slice(data);
    Ok(())
}

fn put_str(s: &mut impl Sink, text: &str, what: &'static str) -> Result<(), EncodeError> {
    put_binary(s, text.as_bytes(), what)
}

fn first_byte(packet: &Packet) -> u8 {
    let (packet_type, flags) = match packet {
        Packet::Connect(_) => (CONNECT, 0),
        Packet::ConnAck(_) => (CONNACK, 0),
        Packet::Publish(p) => (
            PUBLISH,
            (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain),
        ),
        Packet::PubAck(_) => (PUBACK, 0),
        Packet::PubRec(_) => (PUBREC, 0),
        Packet::PubRel(_) => (PUBREL, 0b0010),
        Packet::PubComp(_) => (PUBCOMP, 0),
        Packet::Subscribe(_) => (SUBSCRIBE, 0b0010),
        Packet::SubAck(_) => (SUBACK, 0),
        Packet::Unsubscribe(_) => (UNSUBSCRIBE, 0b0010),
        Packet::UnsubAck(_) => (UNSUBACK, 0),
        Packet::PingReq => (PINGREQ, 0),
        Packet::PingResp => (PINGRESP, 0),
        Packet::Disconnect(_) => (DISCONNECT, 0),
        Packet::Auth(_) => (AUTH, 0),
    };
    (packet_type << 4) | flags
}

fn write_body(packet: &Packet, protocol: Protocol, s: &mut impl Sink) -> Result<(), EncodeError> {
    let v5 = protocol == Protocol::V5;
    match packet {
        Packet::Connect(c) => connect(c, protocol, s),
        Packet::ConnAck(c) => connack(c, v5, s),
        Packet::Publish(p) => publish(p, v5, s),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            ack(a, v5, s)
        }
        Packet::Subscribe(sub) => subscribe(sub, v5, s),
        Packet::SubAck(a) => suback(a, v5, s),
        Packet::Unsubscribe(u) => unsubscribe(u, v5, s),
        Packet::UnsubAck(a) => unsuback(a, v5, s),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(d) if v5 => short_reason(d.reason, &d.properties, s),
        Packet::Disconnect(_) => Ok(()),
        Packet::Auth(a) if v5 => short_reason(a.reason, &a.properties, s),
        Packet::Auth(_) => Err(EncodeError::NotForProtocol("AUTH is MQTT 5 only")),
    }
}

fn properties_if_v5(p: &Properties, v5: bool, s: &mut impl Sink) -> Result<(), EncodeError> {
    if v5 {
        properties(p, s)
    } else {
        Ok(())
    }
}

fn connect(c: &Connect, protocol: Protocol, s: &mut impl Sink) -> Result<(), EncodeError> {
    if c.protocol != protocol {
        return Err(EncodeError::NotForProtocol(
            "CONNECT of another protocol level",
        ));
    }
    let v5 = protocol == Protocol::V5;
    if !v5 && c.password.is_some() && c.username.is_none() {
        return Err(EncodeError::NotForProtocol(
            "3.1.1 password needs a user name",
        ));
    }
    put_str(s, "MQTT", "protocol name")?;
    s.emit_u8(if v5 { 5 } else { 4 });
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(w) = &c.will {
        flags |= 0b100 | ((w.qos as u8) << 3) | (u8::from(w.retain) << 5);
    }
    flags |= u8::from(c.password.is_some()) << 6;
    flags |= u8::from(c.username.is_some()) << 7;
    s.emit_u8(flags);
    s.emit_u16(c.keep_alive);
    properties_if_v5(&c.properties, v5, s)?;
    put_str(s, &c.client_id, "client identifier")?;
    if let Some(w) = &c.will {
        properties_if_v5(&w.properties, v5, s)?;
        put_str(s, &w.topic, "will topic")?;
        put_binary(s, &w.payload, "will payload")?;
    }
    if let Some(u) = &c.username {
        put_str(s, u, "user name")?;
    }
    if let Some(p) = &c.password {
        put_binary(s, p, "password")?;
    }
    Ok(())
}

fn connack(c: &ConnAck, v5: bool, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.emit_u8(u8::from(c.session_present));
    s.emit_u8(if v5 {
        c.reason
    } else {
        reason::to_v3_connack(c.reason)
    });
    properties_if_v5(&c.properties, v5, s)
}

fn publish(p: &Publish, v5: bool, s: &mut impl Sink) -> Result<(), EncodeError> {
    put_str(s, &p.topic, "topic name")?;
    if p.qos != QoS::AtMostOnce {
        s.emit_u16(p.pkid);
    }
    properties_if_v5(&p.properties, v5, s)?;
    s.emit_slice(&p.payload);
    Ok(())
}

fn ack(a: &Ack, v5: bool, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.emit_u16(a.pkid);
    if !v5 || (a.reason == reason::SUCCESS && a.properties == Properties::default()) {
        return Ok(());
    }
    s.emit_u8(a.reason);
    if a.properties != Properties::default() {
        properties(&a.properties, s)?;
    }
    Ok(())
}

/// DISCONNECT and AUTH: nothing for reason 0 without properties, the bare
/// reason without properties, else both.
fn short_reason(code: u8, props: &Properties, s: &mut impl Sink) -> Result<(), EncodeError> {
    let no_props = *props == Properties::default();
    if code == 0 && no_props {
        return Ok(());
    }
    s.emit_u8(code);
    if !no_props {
        properties(props, s)?;
    }
    Ok(())
}

fn options_byte(o: &SubscriptionOptions, v5: bool) -> u8 {
    if !v5 {
        return o.qos as u8;
    }
    (o.qos as u8)
        | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | ((o.retain_handling as u8) << 4)
}

fn subscribe(sub: &Subscribe, v5: bool, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.emit_u16(sub.pkid);
    properties_if_v5(&sub.properties, v5, s)?;
    for (filter, options) in &sub.filters {
        put_str(s, filter, "topic filter")?;
        s.emit_u8(options_byte(options, v5));
    }
    Ok(())
}

fn suback(a: &SubAck, v5: bool, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.emit_u16(a.pkid);
    properties_if_v5(&a.properties, v5, s)?;
    for &code in &a.reasons {
        // 3.1.1 knows a single failure code.
        s.emit_u8(if !v5 && code >= 0x80 { 0x80 } else { code });
    }
    Ok(())
}

fn unsubscribe(u: &Unsubscribe, v5: bool, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.emit_u16(u.pkid);
    properties_if_v5(&u.properties, v5, s)?;
    for filter in &u.filters {
        put_str(s, filter, "topic filter")?;
    }
    Ok(())
}

fn unsuback(a: &UnsubAck, v5: bool, s: &mut impl Sink) -> Result<(), EncodeError> {
    s.emit_u16(a.pkid);
    if v5 {
        properties(&a.properties, s)?;
        s.emit_slice(&a.reasons);
    }
    Ok(())
}

/// A property block: its length, then every property that is set.
fn properties(p: &Properties, s: &mut impl Sink) -> Result<(), EncodeError> {
    let mut counter = Counter(0);
    property_list(p, &mut counter)?;
    put_varint(s, counter.0)?;
    property_list(p, s)
}

fn property_list(p: &Properties, s: &mut impl Sink) -> Result<(), EncodeError> {
    fn byte(s: &mut impl Sink, id: u8, v: Option<u8>) {
        if let Some(v) = v {
            s.emit_u8(id);
            s.emit_u8(v);
        }
    }
    fn two(s: &mut impl Sink, id: u8, v: Option<u16>) {
        if let Some(v) = v {
            s.emit_u8(id);
            s.emit_u16(v);
        }
    }
    fn four(s: &mut impl Sink, id: u8, v: Option<u32>) {
        if let Some(v) = v {
            s.emit_u8(id);
            s.emit_u32(v);
        }
    }
    fn text(
        s: &mut impl Sink,
        id: u8,
        v: &Option<String>,
        what: &'static str,
    ) -> Result<(), EncodeError> {
        if let Some(v) = v {
            s.emit_u8(id);
            put_str(s, v, what)?;
        }
        Ok(())
    }
    fn bin(
        s: &mut impl Sink,
        id: u8,
        v: &Option<bytes::Bytes>,
        what: &'static str,
    ) -> Result<(), EncodeError> {
        if let Some(v) = v {
            s.emit_u8(id);
            put_binary(s, v, what)?;
        }
        Ok(())
    }

    byte(s, PAYLOAD_FORMAT_INDICATOR, p.payload_format_indicator);
    four(s, MESSAGE_EXPIRY_INTERVAL, p.message_expiry_interval);
    text(s, CONTENT_TYPE, &p.content_type, "content type")?;
    text(s, RESPONSE_TOPIC, &p.response_topic, "response topic")?;
    bin(s, CORRELATION_DATA, &p.correlation_data, "correlation data")?;
    for &id in &p.subscription_identifiers {
        s.emit_u8(SUBSCRIPTION_IDENTIFIER);
        put_varint(s, id as usize)?;
    }
    four(s, SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
    text(
        s,
        ASSIGNED_CLIENT_IDENTIFIER,
        &p.assigned_client_identifier,
        "assigned client identifier",
    )?;
    two(s, SERVER_KEEP_ALIVE, p.server_keep_alive);
    text(
        s,
        AUTHENTICATION_METHOD,
        &p.authentication_method,
        "authentication method",
    )?;
    bin(
        s,
        AUTHENTICATION_DATA,
        &p.authentication_data,
        "authentication data",
    )?;
    byte(
        s,
        REQUEST_PROBLEM_INFORMATION,
        p.request_problem_information,
    );
    four(s, WILL_DELAY_INTERVAL, p.will_delay_interval);
    byte(
        s,
        REQUEST_RESPONSE_INFORMATION,
        p.request_response_information,
    );
    text(
        s,
        RESPONSE_INFORMATION,
        &p.response_information,
        "response information",
    )?;
    text(s, SERVER_REFERENCE, &p.server_reference, "server reference")?;
    text(s, REASON_STRING, &p.reason_string, "reason string")?;
    two(s, RECEIVE_MAXIMUM, p.receive_maximum);
    two(s, TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
    two(s, TOPIC_ALIAS, p.topic_alias);
    byte(s, MAXIMUM_QOS, p.maximum_qos);
    byte(s, RETAIN_AVAILABLE, p.retain_available);
    for (name, value) in &p.user_properties {
        s.emit_u8(USER_PROPERTY);
        put_str(s, name, "user property name")?;
        put_str(s, value, "user property value")?;
    }
    four(s, MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
    byte(
        s,
        WILDCARD_SUBSCRIPTION_AVAILABLE,
        p.wildcard_subscription_available,
    );
    byte(
        s,
        SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        p.subscription_identifier_available,
    );
    byte(
        s,
        SHARED_SUBSCRIPTION_AVAILABLE,
        p.shared_subscription_available,
    );
    Ok(())
}
