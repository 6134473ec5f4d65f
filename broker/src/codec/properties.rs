//! MQTT 5 properties (§2.2.2): which packet may carry which property, and
//! decoding a property block with duplicate and range checks.

use super::reader::Reader;
use super::{DecodeError, Properties};

/// Where a property block sits; decides which properties it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Connect,
    ConnAck,
    Publish,
    /// The will properties inside CONNECT.
    Will,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl Context {
    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub(crate) const CONTENT_TYPE: u8 = 0x03;
pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
pub(crate) const CORRELATION_DATA: u8 = 0x09;
pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
pub(crate) const REASON_STRING: u8 = 0x1F;
pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub(crate) const TOPIC_ALIAS: u8 = 0x23;
pub(crate) const MAXIMUM_QOS: u8 = 0x24;
pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
pub(crate) const USER_PROPERTY: u8 = 0x26;
pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// The §2.2.2.2 table: the contexts a property id may appear in, or `None`
/// for an id the spec does not define.
fn contexts(id: u8) -> Option<&'static [Context]> {
    use Context::*;
    Some(match id {
        PAYLOAD_FORMAT_INDICATOR
        | MESSAGE_EXPIRY_INTERVAL
        | CONTENT_TYPE
        | RESPONSE_TOPIC
        | CORRELATION_DATA => &[Publish, Will],
        SUBSCRIPTION_IDENTIFIER => &[Publish, Subscribe],
        SESSION_EXPIRY_INTERVAL => &[Connect, ConnAck, Disconnect],
        ASSIGNED_CLIENT_IDENTIFIER
        | SERVER_KEEP_ALIVE
        | RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => &[ConnAck],
        AUTHENTICATION_METHOD | AUTHENTICATION_DATA => &[Connect, ConnAck, Auth],
        REQUEST_PROBLEM_INFORMATION | REQUEST_RESPONSE_INFORMATION => &[Connect],
        WILL_DELAY_INTERVAL => &[Will],
        SERVER_REFERENCE => &[ConnAck, Disconnect],
        REASON_STRING => &[ConnAck, PubResponse, SubAck, UnsubAck, Disconnect, Auth],
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | MAXIMUM_PACKET_SIZE => &[Connect, ConnAck],
        TOPIC_ALIAS => &[Publish],
        USER_PROPERTY => &[
            Connect,
            ConnAck,
            Publish,
            Will,
            PubResponse,
            Subscribe,
            SubAck,
            Unsubscribe,
            UnsubAck,
            Disconnect,
            Auth,
        ],
        _ => return None,
    })
}

/// Whether property `id` may appear in `ctx` (false for unknown ids).
pub(crate) fn allowed(ctx: Context, id: u8) -> bool {
    contexts(id).is_some_and(|cs| cs.iter().any(|c| c.bit() == ctx.bit()))
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::Protocol("property appears more than once"));
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property whose only legal values are 0 and 1.
fn flag(r: &mut Reader) -> Result<u8, DecodeError> {
    match r.u8()? {
        v @ (0 | 1) => Ok(v),
        _ => Err(DecodeError::Protocol("property value must be 0 or 1")),
    }
}

fn nonzero_u16(r: &mut Reader, what: &'static str) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::Protocol(what)),
        v => Ok(v),
    }
}

/// Reads a property block (length, then properties) for `ctx`.
pub(crate) fn decode(r: &mut Reader, ctx: Context) -> Result<Properties, DecodeError> {
    let len = r.varint()?;
    let mut r = r.sub(len as usize)?;
    let mut p = Properties::default();
    while !r.is_empty() {
        // Property ids are Variable Byte Integers, but every defined one is a
        // single byte, so a continuation bit already means "unknown".
        let id = r.u8()?;
        if contexts(id).is_none() {
            return Err(DecodeError::Malformed("unknown property identifier"));
        }
        if !allowed(ctx, id) {
            return Err(DecodeError::Protocol("property not allowed on this packet"));
        }
        match id {
            PAYLOAD_FORMAT_INDICATOR => set(&mut p.payload_format_indicator, flag(&mut r)?)?,
            MESSAGE_EXPIRY_INTERVAL => set(&mut p.message_expiry_interval, r.u32()?)?,
            CONTENT_TYPE => set(&mut p.content_type, r.string()?)?,
            RESPONSE_TOPIC => {
                let topic = r.string()?;
                // §3.3.2.3.5: a Topic Name, so no wildcards.
                if !crate::topic::valid_topic_name(&topic) {
                    return Err(DecodeError::Protocol(
                        "response topic is not a valid topic name",
                    ));
                }
                set(&mut p.response_topic, topic)?
            }
            CORRELATION_DATA => set(&mut p.correlation_data, r.binary()?)?,
            SUBSCRIPTION_IDENTIFIER => {
                let id = r.varint()?;
                if id == 0 {
                    return Err(DecodeError::Protocol("subscription identifier 0"));
                }
                // Only a PUBLISH may carry several (one per matching subscription).
                if ctx != Context::Publish && !p.subscription_identifiers.is_empty() {
                    return Err(DecodeError::Protocol("property appears more than once"));
                }
                p.subscription_identifiers.push(id);
            }
            SESSION_EXPIRY_INTERVAL => set(&mut p.session_expiry_interval, r.u32()?)?,
            ASSIGNED_CLIENT_IDENTIFIER => set(&mut p.assigned_client_identifier, r.string()?)?,
            SERVER_KEEP_ALIVE => set(&mut p.server_keep_alive, r.u16()?)?,
            AUTHENTICATION_METHOD => set(&mut p.authentication_method, r.string()?)?,
            AUTHENTICATION_DATA => set(&mut p.authentication_data, r.binary()?)?,
            REQUEST_PROBLEM_INFORMATION => set(&mut p.request_problem_information, flag(&mut r)?)?,
            WILL_DELAY_INTERVAL => set(&mut p.will_delay_interval, r.u32()?)?,
            REQUEST_RESPONSE_INFORMATION => {
                set(&mut p.request_response_information, flag(&mut r)?)?
            }
            RESPONSE_INFORMATION => set(&mut p.response_information, r.string()?)?,
            SERVER_REFERENCE => set(&mut p.server_reference, r.string()?)?,
            REASON_STRING => set(&mut p.reason_string, r.string()?)?,
            RECEIVE_MAXIMUM => {
                let v = nonzero_u16(&mut r, "receive maximum 0")?;
                set(&mut p.receive_maximum, v)?
            }
            TOPIC_ALIAS_MAXIMUM => set(&mut p.topic_alias_maximum, r.u16()?)?,
            TOPIC_ALIAS => {
                let v = nonzero_u16(&mut r, "topic alias 0")?;
                set(&mut p.topic_alias, v)?
            }
            MAXIMUM_QOS => set(&mut p.maximum_qos, flag(&mut r)?)?,
            RETAIN_AVAILABLE => set(&mut p.retain_available, flag(&mut r)?)?,
            USER_PROPERTY => {
                let name = r.string()?;
                let value = r.string()?;
                p.user_properties.push((name, value));
            }
            MAXIMUM_PACKET_SIZE => match r.u32()? {
                0 => return Err(DecodeError::Protocol("maximum packet size 0")),
                v => set(&mut p.maximum_packet_size, v)?,
            },
            WILDCARD_SUBSCRIPTION_AVAILABLE => {
                set(&mut p.wildcard_subscription_available, flag(&mut r)?)?
            }
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                set(&mut p.subscription_identifier_available, flag(&mut r)?)?
            }
            SHARED_SUBSCRIPTION_AVAILABLE => {
                set(&mut p.shared_subscription_available, flag(&mut r)?)?
            }
            _ => return Err(DecodeError::Malformed("unknown property identifier")),
        }
    }
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        return Err(DecodeError::Protocol(
            "authentication data without a method",
        ));
    }
    Ok(p)
}
