//! proptest generators for valid packets of either protocol level.

use bytes::Bytes;
use proptest::prelude::*;

use crate::codec::properties::{self, Context};
use crate::codec::*;

pub(super) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _-]{0,12}",
        // Any printable Unicode, multibyte included; \PC has no U+0000.
        "\\PC{0,6}",
    ]
}

pub(super) fn topic_name() -> impl Strategy<Value = String> {
    "[a-z0-9é€/$ ]{1,16}".prop_filter("valid topic name", |t| crate::topic::valid_topic_name(t))
}

pub(super) fn topic_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof!["[a-zé0-9]{0,4}", Just("+".to_string())];
    (
        prop::collection::vec(level, 1..4),
        any::<bool>(),
        prop::option::of("[a-z]{1,4}"),
    )
        .prop_map(|(levels, hash, group)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str("/#");
            }
            match group {
                Some(g) => format!("$share/{g}/{f}"),
                None => f,
            }
        })
        .prop_filter("valid filter", |f| match crate::topic::parse_shared(f) {
            Ok(Some(_)) => true,
            Ok(None) => crate::topic::valid_topic_filter(f),
            Err(()) => false,
        })
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

pub(super) fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// Property ids as raw items, turned into a `Properties` that is valid for
/// `ctx`: items the context forbids are dropped.
pub(super) fn props(ctx: Context) -> impl Strategy<Value = Properties> {
    let item = (1u8..=0x2A, any::<u32>(), text(), topic_name(), bytes(8));
    prop::collection::vec(item, 0..6).prop_map(move |items| {
        let mut p = Properties::default();
        for (id, n, s, topic, b) in items {
            if !properties::allowed(ctx, id) {
                continue;
            }
            let flag = (n % 2) as u8;
            let u16_nz = (n % 65_535) as u16 + 1;
            use properties::*;
            match id {
                PAYLOAD_FORMAT_INDICATOR => p.payload_format_indicator = Some(flag),
                MESSAGE_EXPIRY_INTERVAL => p.message_expiry_interval = Some(n),
                CONTENT_TYPE => p.content_type = Some(s),
                RESPONSE_TOPIC => p.response_topic = Some(topic),
                CORRELATION_DATA => p.correlation_data = Some(b),
                SUBSCRIPTION_IDENTIFIER
                    if ctx == Context::Publish || p.subscription_identifiers.is_empty() =>
                {
                    p.subscription_identifiers.push(n % 268_435_455 + 1);
                }
                SESSION_EXPIRY_INTERVAL => p.session_expiry_interval = Some(n),
                ASSIGNED_CLIENT_IDENTIFIER => p.assigned_client_identifier = Some(s),
                SERVER_KEEP_ALIVE => p.server_keep_alive = Some(n as u16),
                AUTHENTICATION_METHOD => p.authentication_method = Some(s),
                AUTHENTICATION_DATA => {
                    p.authentication_data = Some(b);
                    p.authentication_method
                        .get_or_insert_with(|| "SCRAM".into());
                }
                REQUEST_PROBLEM_INFORMATION => p.request_problem_information = Some(flag),
                WILL_DELAY_INTERVAL => p.will_delay_interval = Some(n),
                REQUEST_RESPONSE_INFORMATION => p.request_response_information = Some(flag),
                RESPONSE_INFORMATION => p.response_information = Some(s),
                SERVER_REFERENCE => p.server_reference = Some(s),
                REASON_STRING => p.reason_string = Some(s),
                RECEIVE_MAXIMUM => p.receive_maximum = Some(u16_nz),
                TOPIC_ALIAS_MAXIMUM => p.topic_alias_maximum = Some(n as u16),
                TOPIC_ALIAS => p.topic_alias = Some(u16_nz),
                MAXIMUM_QOS => p.maximum_qos = Some(flag),
                RETAIN_AVAILABLE => p.retain_available = Some(flag),
                USER_PROPERTY => p.user_properties.push((s, topic)),
                MAXIMUM_PACKET_SIZE => p.maximum_packet_size = Some(n.max(1)),
                WILDCARD_SUBSCRIPTION_AVAILABLE => p.wildcard_subscription_available = Some(flag),
                SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                    p.subscription_identifier_available = Some(flag)
                }
                SHARED_SUBSCRIPTION_AVAILABLE => p.shared_subscription_available = Some(flag),
                _ => {}
            }
        }
        p
    })
}

/// Properties for `ctx` on v5, none on 3.1.1.
fn props_for(protocol: Protocol, ctx: Context) -> BoxedStrategy<Properties> {
    match protocol {
        Protocol::V5 => props(ctx).boxed(),
        Protocol::V311 => Just(Properties::default()).boxed(),
    }
}

fn pkid() -> impl Strategy<Value = u16> {
    1u16..
}

fn will(protocol: Protocol) -> impl Strategy<Value = LastWill> {
    (
        topic_name(),
        bytes(16),
        qos(),
        any::<bool>(),
        props_for(protocol, Context::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

pub(super) fn connect(protocol: Protocol) -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        prop::option::of(will(protocol)),
        prop::option::of(text()),
        prop::option::of(bytes(12)),
        props_for(protocol, Context::Connect),
    )
        .prop_map(
            move |(
                clean_start,
                keep_alive,
                client_id,
                will,
                mut username,
                password,
                properties,
            )| {
                if protocol == Protocol::V311 && password.is_some() && username.is_none() {
                    username = Some("user".into());
                }
                Packet::Connect(Connect {
                    protocol,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                })
            },
        )
}

fn connack(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let reason = match protocol {
        Protocol::V5 => any::<u8>().boxed(),
        // The codes that survive the 3.1.1 return-code mapping both ways.
        Protocol::V311 => prop::sample::select(vec![0u8, 0x84, 0x85, 0x88, 0x86, 0x87]).boxed(),
    };
    (any::<bool>(), reason, props_for(protocol, Context::ConnAck)).prop_map(
        |(session_present, reason, properties)| {
            Packet::ConnAck(ConnAck {
                session_present,
                reason,
                properties,
            })
        },
    )
}

pub(super) fn publish(protocol: Protocol) -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        prop::option::weighted(0.9, topic_name()),
        pkid(),
        props_for(protocol, Context::Publish),
        bytes(64),
    )
        .prop_map(
            move |(dup, qos, retain, topic, pkid, mut properties, payload)| {
                let topic = match (topic, protocol) {
                    (Some(t), _) => t,
                    (None, Protocol::V311) => "t".into(),
                    (None, Protocol::V5) => {
                        properties.topic_alias.get_or_insert(7);
                        String::new()
                    }
                };
                let qos0 = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic,
                    pkid: if qos0 { 0 } else { pkid },
                    properties,
                    payload,
                })
            },
        )
}

fn ack(protocol: Protocol, reasons: &'static [u8]) -> impl Strategy<Value = Ack> {
    let reason = match protocol {
        Protocol::V5 => prop::sample::select(reasons).boxed(),
        Protocol::V311 => Just(0u8).boxed(),
    };
    (pkid(), reason, props_for(protocol, Context::PubResponse)).prop_map(
        |(pkid, reason, properties)| Ack {
            pkid,
            reason,
            properties,
        },
    )
}

const PUBACK_REASONS: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_REASONS: &[u8] = &[0x00, 0x92];
pub(super) const DISCONNECT_REASONS: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

fn options(protocol: Protocol) -> impl Strategy<Value = SubscriptionOptions> {
    (qos(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(move |(qos, nl, rap, rh)| {
        if protocol == Protocol::V311 {
            return SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            };
        }
        SubscriptionOptions {
            qos,
            no_local: nl,
            retain_as_published: rap,
            retain_handling: match rh {
                0 => RetainHandling::OnSubscribe,
                1 => RetainHandling::OnNewSubscribe,
                _ => RetainHandling::Never,
            },
        }
    })
}

pub(super) fn subscribe(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let filter = (topic_filter(), options(protocol)).prop_map(|(f, mut o)| {
        if f.starts_with("$share/") {
            o.no_local = false;
        }
        (f, o)
    });
    (
        pkid(),
        prop::collection::vec(filter, 1..4),
        props_for(protocol, Context::Subscribe),
    )
        .prop_map(|(pkid, filters, properties)| {
            Packet::Subscribe(Subscribe {
                pkid,
                filters,
                properties,
            })
        })
}

fn suback(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let code = match protocol {
        Protocol::V5 => any::<u8>().boxed(),
        Protocol::V311 => prop::sample::select(vec![0u8, 1, 2, 0x80]).boxed(),
    };
    (
        pkid(),
        prop::collection::vec(code, 1..4),
        props_for(protocol, Context::SubAck),
    )
        .prop_map(|(pkid, reasons, properties)| {
            Packet::SubAck(SubAck {
                pkid,
                reasons,
                properties,
            })
        })
}

fn unsubscribe(protocol: Protocol) -> impl Strategy<Value = Packet> {
    (
        pkid(),
        prop::collection::vec(topic_filter(), 1..4),
        props_for(protocol, Context::Unsubscribe),
    )
        .prop_map(|(pkid, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe {
                pkid,
                filters,
                properties,
            })
        })
}

fn unsuback(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let reasons = match protocol {
        Protocol::V5 => prop::collection::vec(any::<u8>(), 0..4).boxed(),
        Protocol::V311 => Just(Vec::new()).boxed(),
    };
    (pkid(), reasons, props_for(protocol, Context::UnsubAck)).prop_map(
        |(pkid, reasons, properties)| {
            Packet::UnsubAck(UnsubAck {
                pkid,
                reasons,
                properties,
            })
        },
    )
}

fn disconnect(protocol: Protocol) -> impl Strategy<Value = Packet> {
    match protocol {
        Protocol::V311 => Just(Packet::Disconnect(Disconnect::new(0))).boxed(),
        Protocol::V5 => (
            prop::sample::select(DISCONNECT_REASONS),
            props(Context::Disconnect),
        )
            .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
            .boxed(),
    }
}

fn auth() -> impl Strategy<Value = Packet> {
    (
        prop::sample::select(vec![0u8, 0x18, 0x19]),
        props(Context::Auth),
    )
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
}

/// Any packet except CONNECT (which needs a fresh connection to decode).
pub(super) fn non_connect(protocol: Protocol) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connack(protocol),
        publish(protocol),
        ack(protocol, PUBACK_REASONS).prop_map(Packet::PubAck),
        ack(protocol, PUBACK_REASONS).prop_map(Packet::PubRec),
        ack(protocol, PUBREL_REASONS).prop_map(Packet::PubRel),
        ack(protocol, PUBREL_REASONS).prop_map(Packet::PubComp),
        subscribe(protocol),
        suback(protocol),
        unsubscribe(protocol),
        unsuback(protocol),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(protocol),
    ];
    match protocol {
        Protocol::V5 => prop_oneof![common, auth()].boxed(),
        Protocol::V311 => common.boxed(),
    }
}

pub(super) fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::V311), Just(Protocol::V5)]
}
