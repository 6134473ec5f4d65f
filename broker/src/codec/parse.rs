//! Per-packet body parsers. Each gets a reader bounded to exactly the
//! packet's remaining length; the caller rejects anything left over.

use super::decode::{
    AUTH, CONNACK, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK,
    SUBSCRIBE, UNSUBACK, UNSUBSCRIBE,
};
use super::properties::{self, Context};
use super::reader::Reader;
use super::{
    reason, Ack, Auth, ConnAck, Connect, DecodeError, Disconnect, LastWill, Packet, Properties,
    Protocol, Publish, QoS, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};
use crate::topic;

pub(crate) fn packet(
    packet_type: u8,
    flags: u8,
    protocol: Protocol,
    r: &mut Reader,
) -> Result<Packet, DecodeError> {
    let v5 = protocol == Protocol::V5;
    Ok(match packet_type {
        CONNACK => Packet::ConnAck(connack(r, v5)?),
        PUBLISH => Packet::Publish(publish(flags, r, v5)?),
        PUBACK => Packet::PubAck(ack(r, v5, PUBACK)?),
        PUBREC => Packet::PubRec(ack(r, v5, PUBREC)?),
        PUBREL => Packet::PubRel(ack(r, v5, PUBREL)?),
        PUBCOMP => Packet::PubComp(ack(r, v5, PUBCOMP)?),
        SUBSCRIBE => Packet::Subscribe(subscribe(r, v5)?),
        SUBACK => Packet::SubAck(suback(r, v5)?),
        UNSUBSCRIBE => Packet::Unsubscribe(unsubscribe(r, v5)?),
        UNSUBACK => Packet::UnsubAck(unsuback(r, v5)?),
        PINGREQ => Packet::PingReq,
        PINGRESP => Packet::PingResp,
        DISCONNECT => Packet::Disconnect(disconnect(r, v5)?),
        AUTH if v5 => Packet::Auth(auth(r)?),
        // CONNECT, type 0 and (on 3.1.1) type 15 are refused by the header
        // check before we get here.
        _ => return Err(DecodeError::Malformed("unexpected packet type")),
    })
}

fn v5_properties(r: &mut Reader, v5: bool, ctx: Context) -> Result<Properties, DecodeError> {
    if v5 {
        properties::decode(r, ctx)
    } else {
        Ok(Properties::default())
    }
}

fn pkid(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::Protocol("packet identifier 0")),
        id => Ok(id),
    }
}

pub(crate) fn connect(r: &mut Reader) -> Result<Packet, DecodeError> {
    let name = r.string()?;
    let level = r.u8()?;
    let protocol = match (name.as_str(), level) {
        ("MQTT", 4) => Protocol::V311,
        ("MQTT", 5) => Protocol::V5,
        // MQIsdp is 3.1: a real MQTT client we can answer with return code 1.
        ("MQTT" | "MQIsdp", _) => return Err(DecodeError::UnsupportedProtocol(level)),
        _ => return Err(DecodeError::Malformed("unknown protocol name")),
    };
    let v5 = protocol == Protocol::V5;

    let flags = r.u8()?;
    if flags & 0b0000_0001 != 0 {
        return Err(DecodeError::Malformed("CONNECT reserved flag set"));
    }
    let clean_start = flags & 0b0000_0010 != 0;
    let will_flag = flags & 0b0000_0100 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0b0010_0000 != 0;
    let has_password = flags & 0b0100_0000 != 0;
    let has_username = flags & 0b1000_0000 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(DecodeError::Malformed(
            "will QoS or retain without will flag",
        ));
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("will QoS 3"))?;
    if !v5 && has_password && !has_username {
        return Err(DecodeError::Malformed("password without user name"));
    }

    let keep_alive = r.u16()?;
    let properties = v5_properties(r, v5, Context::Connect)?;
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = v5_properties(r, v5, Context::Will)?;
        let topic = r.string()?;
        if !topic::valid_topic_name(&topic) {
            return Err(DecodeError::TopicNameInvalid);
        }
        let payload = r.binary()?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = has_username.then(|| r.string()).transpose()?;
    let password = has_password.then(|| r.binary()).transpose()?;
    Ok(Packet::Connect(Connect {
        protocol,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    }))
}

fn connack(r: &mut Reader, v5: bool) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & !1 != 0 {
        return Err(DecodeError::Malformed("CONNACK reserved flags set"));
    }
    let code = r.u8()?;
    let reason = if v5 {
        code
    } else if code <= 5 {
        reason::from_v3_connack(code)
    } else {
        return Err(DecodeError::Malformed("unknown CONNACK return code"));
    };
    let properties = v5_properties(r, v5, Context::ConnAck)?;
    Ok(ConnAck {
        session_present: flags & 1 != 0,
        reason,
        properties,
    })
}

fn publish(flags: u8, r: &mut Reader, v5: bool) -> Result<Publish, DecodeError> {
    // The header check already refused QoS 3.
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::Malformed("PUBLISH QoS 3"))?;
    let topic = r.string()?;
    let pkid = if qos == QoS::AtMostOnce { 0 } else { pkid(r)? };
    let properties = v5_properties(r, v5, Context::Publish)?;
    if topic.is_empty() {
        if !v5 {
            return Err(DecodeError::TopicNameInvalid);
        }
        if properties.topic_alias.is_none() {
            return Err(DecodeError::Protocol(
                "empty topic name without topic alias",
            ));
        }
    } else if !topic::valid_topic_name(&topic) {
        return Err(DecodeError::TopicNameInvalid);
    }
    Ok(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 0b0001 != 0,
        topic,
        pkid,
        properties,
        payload: r.rest(),
    })
}

/// The reason codes §3.4.2.1 .. §3.7.2.1 allow on each acknowledgement.
fn valid_ack_reason(packet_type: u8, code: u8) -> bool {
    match packet_type {
        PUBACK | PUBREC => matches!(
            code,
            0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
        ),
        _ => matches!(code, 0x00 | 0x92),
    }
}

fn ack(r: &mut Reader, v5: bool, packet_type: u8) -> Result<Ack, DecodeError> {
    let pkid = pkid(r)?;
    if !v5 || r.is_empty() {
        return Ok(Ack::new(pkid));
    }
    let reason = r.u8()?;
    if !valid_ack_reason(packet_type, reason) {
        return Err(DecodeError::Protocol("invalid reason code"));
    }
    // §3.4.2.2: with remaining length 3 the property length is absent.
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        properties::decode(r, Context::PubResponse)?
    };
    Ok(Ack {
        pkid,
        reason,
        properties,
    })
}

/// Validates a SUBSCRIBE / UNSUBSCRIBE filter; returns whether it is shared.
fn filter(r: &mut Reader) -> Result<(String, bool), DecodeError> {
    let filter = r.string()?;
    let shared = match topic::parse_shared(&filter) {
        Err(()) => return Err(DecodeError::Malformed("invalid shared subscription filter")),
        Ok(Some(_)) => true,
        Ok(None) if topic::valid_topic_filter(&filter) => false,
        Ok(None) => return Err(DecodeError::Malformed("invalid topic filter")),
    };
    Ok((filter, shared))
}

fn subscription_options(byte: u8, v5: bool) -> Result<SubscriptionOptions, DecodeError> {
    if !v5 {
        if byte & 0b1111_1100 != 0 {
            return Err(DecodeError::Malformed(
                "subscription options reserved bits set",
            ));
        }
        let qos = QoS::from_u8(byte).ok_or(DecodeError::Malformed("subscription QoS 3"))?;
        return Ok(SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        });
    }
    if byte & 0b1100_0000 != 0 {
        return Err(DecodeError::Malformed(
            "subscription options reserved bits set",
        ));
    }
    // §3.8.3.1 calls QoS 3 and Retain Handling 3 protocol errors, unlike
    // the reserved bits, which make the packet malformed.
    let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::Protocol("subscription QoS 3"))?;
    let retain_handling = match (byte >> 4) & 0b11 {
        0 => RetainHandling::OnSubscribe,
        1 => RetainHandling::OnNewSubscribe,
        2 => RetainHandling::Never,
        _ => return Err(DecodeError::Protocol("retain handling 3")),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0b0100 != 0,
        retain_as_published: byte & 0b1000 != 0,
        retain_handling,
    })
}

fn subscribe(r: &mut Reader, v5: bool) -> Result<Subscribe, DecodeError> {
    let pkid = pkid(r)?;
    let properties = v5_properties(r, v5, Context::Subscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let (filter, shared) = filter(r)?;
        let options = subscription_options(r.u8()?, v5)?;
        if shared && options.no_local {
            return Err(DecodeError::Protocol("no local on a shared subscription"));
        }
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("SUBSCRIBE without filters"));
    }
    Ok(Subscribe {
        pkid,
        filters,
        properties,
    })
}

fn suback(r: &mut Reader, v5: bool) -> Result<SubAck, DecodeError> {
    let pkid = pkid(r)?;
    let properties = v5_properties(r, v5, Context::SubAck)?;
    let reasons = r.rest().to_vec();
    if !v5 && reasons.iter().any(|c| !matches!(c, 0 | 1 | 2 | 0x80)) {
        return Err(DecodeError::Malformed("invalid SUBACK return code"));
    }
    Ok(SubAck {
        pkid,
        reasons,
        properties,
    })
}

fn unsubscribe(r: &mut Reader, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let pkid = pkid(r)?;
    let properties = v5_properties(r, v5, Context::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(filter(r)?.0);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("UNSUBSCRIBE without filters"));
    }
    Ok(Unsubscribe {
        pkid,
        filters,
        properties,
    })
}

fn unsuback(r: &mut Reader, v5: bool) -> Result<UnsubAck, DecodeError> {
    let pkid = pkid(r)?;
    let properties = v5_properties(r, v5, Context::UnsubAck)?;
    let reasons = if v5 { r.rest().to_vec() } else { Vec::new() };
    Ok(UnsubAck {
        pkid,
        reasons,
        properties,
    })
}

/// Reason code and properties of DISCONNECT or AUTH, both of which may be
/// cut short (§3.14.2.1, §3.15.2.1): no bytes means reason 0, one byte means
/// no properties.
fn reason_and_properties(r: &mut Reader, ctx: Context) -> Result<(u8, Properties), DecodeError> {
    if r.is_empty() {
        return Ok((0, Properties::default()));
    }
    let reason = r.u8()?;
    if r.is_empty() {
        return Ok((reason, Properties::default()));
    }
    Ok((reason, properties::decode(r, ctx)?))
}

fn disconnect(r: &mut Reader, v5: bool) -> Result<Disconnect, DecodeError> {
    if !v5 {
        return Ok(Disconnect::new(reason::NORMAL_DISCONNECTION));
    }
    let (reason, properties) = reason_and_properties(r, Context::Disconnect)?;
    if !matches!(
        reason,
        0x00 | 0x04
            | 0x80..=0x83
            | 0x87
            | 0x89
            | 0x8B
            | 0x8D..=0x90
            | 0x93..=0xA2
    ) {
        return Err(DecodeError::Protocol("invalid DISCONNECT reason code"));
    }
    Ok(Disconnect { reason, properties })
}

fn auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let (reason, properties) = reason_and_properties(r, Context::Auth)?;
    if !matches!(reason, 0x00 | 0x18 | 0x19) {
        return Err(DecodeError::Protocol("invalid AUTH reason code"));
    }
    Ok(Auth { reason, properties })
}
