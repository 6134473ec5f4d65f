//! Differential tests against mqttbytes 0.6, restricted to what it handles
//! correctly: it has no AUTH, refuses the v5 `e0 00` DISCONNECT and its
//! topic matching panics, so those are left out. Each packet is encoded by
//! one side, decoded by the other and compared field by field.

use bytes::{Bytes, BytesMut};
use mqttbytes::{v4, v5};
use proptest::prelude::*;

use super::strategies::*;
use crate::codec::properties::Context;
use crate::codec::*;

fn ours_to_bytes(packet: &Packet, protocol: Protocol) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(packet, protocol, &mut buf).unwrap();
    buf
}

fn ours_from_bytes(mut buf: BytesMut, protocol: Option<Protocol>) -> Packet {
    let packet = decode(&mut buf, protocol, u32::MAX).unwrap().unwrap();
    assert!(buf.is_empty());
    packet
}

fn their_qos(q: QoS) -> mqttbytes::QoS {
    match q {
        QoS::AtMostOnce => mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => mqttbytes::QoS::ExactlyOnce,
    }
}

/// Every property PUBLISH may carry; mqttbytes models all of them.
fn publish_props() -> impl Strategy<Value = Properties> {
    props(Context::Publish)
}

fn their_publish_props(p: &Properties) -> Option<v5::PublishProperties> {
    if *p == Properties::default() {
        return None;
    }
    Some(v5::PublishProperties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        topic_alias: p.topic_alias,
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
        subscription_identifiers: p
            .subscription_identifiers
            .iter()
            .map(|&i| i as usize)
            .collect(),
        content_type: p.content_type.clone(),
    })
}

fn v311_connect() -> impl Strategy<Value = Connect> {
    connect(Protocol::V311).prop_map(|p| {
        let Packet::Connect(mut c) = p else {
            unreachable!()
        };
        // mqttbytes only models a user name together with a UTF-8 password,
        // and drops an empty user name.
        match (&c.username, &c.password) {
            (Some(u), Some(_)) => {
                if u.is_empty() {
                    c.username = Some("u".into());
                }
                c.password = Some(Bytes::from_static(b"secret"));
            }
            _ => {
                c.username = None;
                c.password = None;
            }
        }
        c
    })
}

fn their_v4_connect(c: &Connect) -> v4::Connect {
    v4::Connect {
        protocol: mqttbytes::Protocol::V4,
        keep_alive: c.keep_alive,
        client_id: c.client_id.clone(),
        clean_session: c.clean_start,
        last_will: c.will.as_ref().map(|w| v4::LastWill {
            topic: w.topic.clone(),
            message: w.payload.clone(),
            qos: their_qos(w.qos),
            retain: w.retain,
        }),
        login: c.username.as_ref().map(|u| v4::Login {
            username: u.clone(),
            password: "secret".into(),
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn v4_connect(c in v311_connect()) {
        let theirs = their_v4_connect(&c);
        let mut buf = ours_to_bytes(&Packet::Connect(c.clone()), Protocol::V311);
        prop_assert_eq!(v4::read(&mut buf, usize::MAX).unwrap(), v4::Packet::Connect(theirs.clone()));

        let mut buf = BytesMut::new();
        theirs.write(&mut buf).unwrap();
        prop_assert_eq!(ours_from_bytes(buf, None), Packet::Connect(c));
    }

    #[test]
    fn v4_publish(packet in publish(Protocol::V311)) {
        let Packet::Publish(p) = &packet else { unreachable!() };
        let theirs = v4::Publish {
            dup: p.dup,
            qos: their_qos(p.qos),
            retain: p.retain,
            topic: p.topic.clone(),
            pkid: p.pkid,
            payload: p.payload.clone(),
        };
        let mut buf = ours_to_bytes(&packet, Protocol::V311);
        prop_assert_eq!(v4::read(&mut buf, usize::MAX).unwrap(), v4::Packet::Publish(theirs.clone()));

        let mut buf = BytesMut::new();
        theirs.write(&mut buf).unwrap();
        prop_assert_eq!(ours_from_bytes(buf, Some(Protocol::V311)), packet);
    }

    #[test]
    fn v4_subscribe(packet in subscribe(Protocol::V311)) {
        let Packet::Subscribe(s) = &packet else { unreachable!() };
        let theirs = v4::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .iter()
                .map(|(f, o)| v4::SubscribeFilter::new(f.clone(), their_qos(o.qos)))
                .collect(),
        };
        let mut buf = ours_to_bytes(&packet, Protocol::V311);
        prop_assert!(v4::read(&mut buf, usize::MAX).unwrap() == v4::Packet::Subscribe(theirs.clone()));

        let mut buf = BytesMut::new();
        theirs.write(&mut buf).unwrap();
        prop_assert_eq!(ours_from_bytes(buf, Some(Protocol::V311)), packet);
    }

    #[test]
    fn v4_small_packets(pkid in 1u16.., filters in prop::collection::vec(topic_filter(), 1..3)) {
        let v3 = Some(Protocol::V311);
        let cases: Vec<(v4::Packet, Packet)> = vec![
            (v4::Packet::PubAck(v4::PubAck::new(pkid)), Packet::PubAck(Ack::new(pkid))),
            (v4::Packet::PubRec(v4::PubRec::new(pkid)), Packet::PubRec(Ack::new(pkid))),
            (v4::Packet::PubRel(v4::PubRel::new(pkid)), Packet::PubRel(Ack::new(pkid))),
            (v4::Packet::PubComp(v4::PubComp::new(pkid)), Packet::PubComp(Ack::new(pkid))),
            (
                v4::Packet::UnsubAck(v4::UnsubAck::new(pkid)),
                Packet::UnsubAck(UnsubAck { pkid, reasons: vec![], properties: Properties::default() }),
            ),
            (
                v4::Packet::Unsubscribe(v4::Unsubscribe { pkid, topics: filters.clone() }),
                Packet::Unsubscribe(Unsubscribe { pkid, filters, properties: Properties::default() }),
            ),
            (
                v4::Packet::SubAck(v4::SubAck::new(pkid, vec![
                    v4::SubscribeReasonCode::Success(mqttbytes::QoS::ExactlyOnce),
                    v4::SubscribeReasonCode::Failure,
                ])),
                Packet::SubAck(SubAck { pkid, reasons: vec![2, 0x80], properties: Properties::default() }),
            ),
            (
                v4::Packet::ConnAck(v4::ConnAck::new(v4::ConnectReturnCode::NotAuthorized, false)),
                Packet::ConnAck(ConnAck { session_present: false, reason: reason::NOT_AUTHORIZED, properties: Properties::default() }),
            ),
            (v4::Packet::PingReq, Packet::PingReq),
            (v4::Packet::PingResp, Packet::PingResp),
            (v4::Packet::Disconnect, Packet::Disconnect(Disconnect::new(0))),
        ];
        for (theirs, ours) in cases {
            let mut buf = BytesMut::new();
            match &theirs {
                v4::Packet::PubAck(p) => p.write(&mut buf),
                v4::Packet::PubRec(p) => p.write(&mut buf),
                v4::Packet::PubRel(p) => p.write(&mut buf),
                v4::Packet::PubComp(p) => p.write(&mut buf),
                v4::Packet::UnsubAck(p) => p.write(&mut buf),
                v4::Packet::Unsubscribe(p) => p.write(&mut buf),
                v4::Packet::SubAck(p) => p.write(&mut buf),
                v4::Packet::ConnAck(p) => p.write(&mut buf),
                v4::Packet::PingReq => v4::PingReq.write(&mut buf),
                v4::Packet::PingResp => v4::PingResp.write(&mut buf),
                v4::Packet::Disconnect => v4::Disconnect.write(&mut buf),
                _ => unreachable!(),
            }
            .unwrap();
            prop_assert_eq!(&ours_from_bytes(buf, v3), &ours);
            let mut buf = ours_to_bytes(&ours, Protocol::V311);
            prop_assert!(v4::read(&mut buf, usize::MAX).unwrap() == theirs);
        }
    }

    #[test]
    fn v5_publish(packet in publish(Protocol::V5), properties in publish_props()) {
        let Packet::Publish(mut p) = packet else { unreachable!() };
        if p.topic.is_empty() {
            p.topic = "t".into();
        }
        p.properties = properties;
        let packet = Packet::Publish(p.clone());
        let theirs = v5::Publish {
            dup: p.dup,
            qos: their_qos(p.qos),
            retain: p.retain,
            topic: p.topic.clone(),
            pkid: p.pkid,
            properties: their_publish_props(&p.properties),
            payload: p.payload.clone(),
        };
        let mut buf = ours_to_bytes(&packet, Protocol::V5);
        prop_assert_eq!(v5::read(&mut buf, usize::MAX).unwrap(), v5::Packet::Publish(theirs.clone()));

        let mut buf = BytesMut::new();
        theirs.write(&mut buf).unwrap();
        prop_assert_eq!(ours_from_bytes(buf, Some(Protocol::V5)), packet);
    }

    #[test]
    fn v5_subscribe(packet in subscribe(Protocol::V5)) {
        let Packet::Subscribe(s) = &packet else { unreachable!() };
        let theirs = v5::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .iter()
                .map(|(f, o)| v5::SubscribeFilter {
                    path: f.clone(),
                    qos: their_qos(o.qos),
                    nolocal: o.no_local,
                    preserve_retain: o.retain_as_published,
                    retain_forward_rule: match o.retain_handling {
                        RetainHandling::OnSubscribe => v5::RetainForwardRule::OnEverySubscribe,
                        RetainHandling::OnNewSubscribe => v5::RetainForwardRule::OnNewSubscribe,
                        RetainHandling::Never => v5::RetainForwardRule::Never,
                    },
                })
                .collect(),
            properties: (s.properties != Properties::default()).then(|| v5::SubscribeProperties {
                id: s.properties.subscription_identifiers.first().map(|&i| i as usize),
                user_properties: s.properties.user_properties.clone(),
            }),
        };
        let mut buf = ours_to_bytes(&packet, Protocol::V5);
        prop_assert!(v5::read(&mut buf, usize::MAX).unwrap() == v5::Packet::Subscribe(theirs.clone()));

        let mut buf = BytesMut::new();
        theirs.write(&mut buf).unwrap();
        prop_assert_eq!(ours_from_bytes(buf, Some(Protocol::V5)), packet);
    }

    #[test]
    fn v5_puback(pkid in 1u16.., reason in prop::sample::select(vec![0u8, 0x10, 0x80, 0x87, 0x99]), text in prop::option::of("[a-z]{0,8}")) {
        let ours = Packet::PubAck(Ack {
            pkid,
            reason,
            properties: Properties { reason_string: text.clone(), ..Properties::default() },
        });
        let mut buf = ours_to_bytes(&ours, Protocol::V5);
        let v5::Packet::PubAck(theirs) = v5::read(&mut buf, usize::MAX).unwrap() else {
            panic!("not a PUBACK");
        };
        prop_assert_eq!(theirs.pkid, pkid);
        prop_assert_eq!(theirs.reason as u8, reason);
        prop_assert_eq!(theirs.properties.and_then(|p| p.reason_string), text);

        let mut buf = BytesMut::new();
        let mut theirs = v5::PubAck::new(pkid);
        theirs.reason = match reason {
            0x10 => v5::PubAckReason::NoMatchingSubscribers,
            0x80 => v5::PubAckReason::UnspecifiedError,
            0x87 => v5::PubAckReason::NotAuthorized,
            0x99 => v5::PubAckReason::PayloadFormatInvalid,
            _ => v5::PubAckReason::Success,
        };
        theirs.write(&mut buf).unwrap();
        prop_assert_eq!(ours_from_bytes(buf, Some(Protocol::V5)), Packet::PubAck(Ack { reason, ..Ack::new(pkid) }));
    }
}
