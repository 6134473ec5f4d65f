//! Protocol details at the byte level, where the external clients cannot
//! reach: malformed packets, limits, keep-alive, takeover, retransmission.
//! Well-formed client packets are built with the broker's codec (itself
//! differential-tested against mqttbytes); malformed ones are literal bytes.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use wardmq_broker::codec::{
    self, reason, Ack, ConnAck, Connect, Packet, Properties, Protocol, Publish, QoS, Subscribe,
    SubscriptionOptions,
};
use wardmq_broker::observer::Observer;
use wardmq_broker::server::Server;

const WAIT: Duration = Duration::from_secs(5);

struct Mqtt {
    stream: TcpStream,
    buf: BytesMut,
    protocol: Protocol,
}

fn connect_packet(client_id: &str, protocol: Protocol) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.to_owned(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

impl Mqtt {
    async fn open(addr: SocketAddr, protocol: Protocol) -> Mqtt {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Mqtt {
            stream,
            buf: BytesMut::new(),
            protocol,
        }
    }

    async fn connect(addr: SocketAddr, c: Connect) -> (Mqtt, ConnAck) {
        let mut m = Mqtt::open(addr, c.protocol).await;
        m.send(Packet::Connect(c)).await;
        match m.recv().await {
            Some(Packet::ConnAck(ack)) => (m, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn v5(addr: SocketAddr, client_id: &str) -> Mqtt {
        let (m, ack) = Mqtt::connect(addr, connect_packet(client_id, Protocol::V5)).await;
        assert_eq!(ack.reason, 0);
        m
    }

    async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        codec::encode(&p, self.protocol, &mut out).expect("encode");
        self.raw(&out).await;
    }

    async fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next packet, or `None` if the broker closed the connection.
    async fn recv(&mut self) -> Option<Packet> {
        self.recv_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("nothing received within {WAIT:?}"))
    }

    /// `None` if nothing came within `limit`; `Some(None)` on close.
    async fn recv_within(&mut self, limit: Duration) -> Option<Option<Packet>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(p) =
                codec::decode(&mut self.buf, Some(self.protocol), u32::MAX).expect("decodable")
            {
                return Some(Some(p));
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
            match read.await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(None),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Asserts the broker sends DISCONNECT with `code` and then closes.
    async fn expect_disconnect(&mut self, code: u8) {
        match self.recv().await {
            Some(Packet::Disconnect(d)) => assert_eq!(
                d.reason, code,
                "DISCONNECT reason {:#x} ({:?}), expected {code:#x}",
                d.reason, d.properties.reason_string
            ),
            other => panic!("expected DISCONNECT {code:#x}, got {other:?}"),
        }
        assert_eq!(self.recv().await, None, "closed after DISCONNECT");
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![(
                filter.to_owned(),
                SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            )],
            properties: Properties::default(),
        }))
        .await;
        match self.recv().await {
            Some(Packet::SubAck(s)) => assert_eq!(s.reasons, vec![qos as u8]),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Subscribes to `filters` at QoS 0; the SUBACK's reason codes.
    async fn suback(&mut self, filters: &[&str]) -> Vec<u8> {
        self.send(Packet::Subscribe(Subscribe {
            pkid: 7,
            filters: filters
                .iter()
                .map(|f| ((*f).to_owned(), SubscriptionOptions::default()))
                .collect(),
            properties: Properties::default(),
        }))
        .await;
        match self.recv().await {
            Some(Packet::SubAck(s)) => s.reasons,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    async fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, pkid: u16) {
        self.send(Packet::Publish(publish(topic, payload, qos, pkid)))
            .await;
    }

    async fn next_publish(&mut self) -> Publish {
        loop {
            match self.recv().await {
                Some(Packet::Publish(p)) => return p,
                Some(Packet::PubAck(_)) | Some(Packet::PubComp(_)) => continue,
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
    }
}

fn publish(topic: &str, payload: &[u8], qos: QoS, pkid: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_owned(),
        pkid,
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}

/// Messages the broker has dropped so far.
fn dropped(b: &common::Broker) -> u64 {
    b.server
        .stats()
        .messages_dropped
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Proves the broker still serves others: a fresh pair of clients can
/// exchange a message.
async fn still_serving(addr: SocketAddr) {
    let mut sub = Mqtt::v5(addr, "").await;
    sub.subscribe("health/check", QoS::AtLeastOnce).await;
    let mut publisher = Mqtt::v5(addr, "").await;
    publisher
        .publish("health/check", b"ok", QoS::AtLeastOnce, 1)
        .await;
    assert_eq!(&sub.next_publish().await.payload[..], b"ok");
}

const V5_CONNECT: &[u8] = &[
    0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 1, b'm',
];

#[tokio::test]
async fn malformed_packets_close_only_that_connection_with_the_right_reason() {
    let b = common::start_with(|s| s.limits.max_packet_size = 1000).await;
    // A bystander connected throughout must not notice anything.
    let mut bystander = Mqtt::v5(b.addr, "bystander").await;
    bystander.subscribe("by/+", QoS::AtLeastOnce).await;

    let cases: &[(&str, &[u8], u8)] = &[
        ("PUBACK with reserved flags set", &[0x41, 2, 0, 1], 0x81),
        (
            "remaining length over four bytes",
            &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            0x81,
        ),
        ("invalid UTF-8 in a topic", &[0x30, 4, 0, 1, 0xff, 0], 0x81),
        ("U+0000 in a topic", &[0x30, 5, 0, 2, b'a', 0, 0], 0x81),
        (
            "wildcard in a topic name",
            &[0x30, 5, 0, 2, b'a', b'+', 0],
            0x90,
        ),
        (
            "malformed filter in SUBSCRIBE",
            &[0x82, 11, 0, 1, 0, 0, 5, b'a', b'/', b'#', b'/', b'b', 0],
            0x81,
        ),
        (
            "packet id 0 on a QoS 1 publish",
            &[0x32, 6, 0, 1, b'a', 0, 0, 0],
            0x82,
        ),
        (
            "duplicate property",
            &[0x30, 8, 0, 1, b'a', 4, 1, 0, 1, 0],
            0x82,
        ),
        (
            "property not allowed on PUBLISH (session expiry)",
            &[0x30, 9, 0, 1, b'a', 5, 0x11, 0, 0, 0, 1],
            0x82,
        ),
        ("trailing bytes after PINGREQ", &[0xc0, 1, 0], 0x81),
        ("QoS 3 publish", &[0x36, 4, 0, 1, b'a', 0], 0x81),
        ("second CONNECT", V5_CONNECT, 0x82),
        (
            "packet over the maximum size",
            &[0x30, 0xe9, 0x07, 0, 1, b'a'],
            0x95,
        ),
        (
            "topic alias above the maximum",
            &[0x30, 7, 0, 1, b'a', 3, 0x23, 0xff, 0xff],
            0x94,
        ),
        (
            "unknown topic alias with an empty topic",
            &[0x30, 6, 0, 0, 3, 0x23, 0, 9],
            0x82,
        ),
        ("CONNACK from a client", &[0x20, 3, 0, 0, 0], 0x82),
    ];
    for (name, bytes, code) in cases {
        let mut m = Mqtt::v5(b.addr, "").await;
        m.raw(bytes).await;
        match m.recv().await {
            Some(Packet::Disconnect(d)) => {
                assert_eq!(d.reason, *code, "{name}: reason {:#x}", d.reason)
            }
            other => panic!("{name}: expected DISCONNECT {code:#x}, got {other:?}"),
        }
        assert_eq!(m.recv().await, None, "{name}: connection closed");
    }

    // 3.1.1 has no DISCONNECT from the server: the connection just closes.
    let (mut m, _) = Mqtt::connect(b.addr, connect_packet("old", Protocol::V311)).await;
    m.raw(&[0x30, 5, 0, 2, b'a', b'#', 0]).await;
    assert_eq!(m.recv().await, None, "3.1.1: plain close");

    // The bystander is still connected and served.
    let mut publisher = Mqtt::v5(b.addr, "").await;
    publisher
        .publish("by/x", b"still here", QoS::AtLeastOnce, 7)
        .await;
    assert_eq!(&bystander.next_publish().await.payload[..], b"still here");
    still_serving(b.addr).await;
    b.server.shutdown().await;
}

#[tokio::test]
async fn unsupported_protocol_level_gets_return_code_1() {
    let b = common::start().await;
    let mut m = Mqtt::open(b.addr, Protocol::V311).await;
    m.raw(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 3, 2, 0, 60, 0, 0])
        .await;
    let mut got = [0u8; 4];
    timeout(WAIT, m.stream.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(got, [0x20, 2, 0, 1]);
    b.server.shutdown().await;
}

#[tokio::test]
async fn exceeding_receive_maximum_disconnects_with_0x93() {
    let b = common::start_with(|s| s.limits.receive_maximum = 2).await;
    let mut m = Mqtt::v5(b.addr, "greedy").await;
    // Five QoS 1 publishes in one write: more than 2 are unacknowledged.
    let mut out = BytesMut::new();
    for pkid in 1..=5 {
        let p = Packet::Publish(publish("flood", b"x", QoS::AtLeastOnce, pkid));
        codec::encode(&p, Protocol::V5, &mut out).expect("encode");
    }
    m.raw(&out).await;
    loop {
        match m.recv().await {
            Some(Packet::PubAck(_)) => continue,
            Some(Packet::Disconnect(d)) => {
                assert_eq!(d.reason, reason::RECEIVE_MAXIMUM_EXCEEDED);
                break;
            }
            other => panic!("expected DISCONNECT 0x93, got {other:?}"),
        }
    }
    b.server.shutdown().await;
}

#[tokio::test]
async fn outgoing_window_follows_the_clients_receive_maximum() {
    let b = common::start().await;
    let mut c = connect_packet("slow", Protocol::V5);
    c.properties.receive_maximum = Some(2);
    let (mut sub, _) = Mqtt::connect(b.addr, c).await;
    sub.subscribe("win", QoS::AtLeastOnce).await;
    let mut publisher = Mqtt::v5(b.addr, "").await;
    for i in 1..=5u16 {
        publisher
            .publish("win", &[i as u8], QoS::AtLeastOnce, i)
            .await;
    }
    let first = sub.next_publish().await;
    let second = sub.next_publish().await;
    assert!(
        sub.recv_within(Duration::from_millis(500)).await.is_none(),
        "no third message while two are unacknowledged"
    );
    sub.send(Packet::PubAck(Ack::new(first.pkid))).await;
    let third = sub.next_publish().await;
    assert_eq!(third.payload[0], 3);
    sub.send(Packet::PubAck(Ack::new(second.pkid))).await;
    sub.send(Packet::PubAck(Ack::new(third.pkid))).await;
    assert_eq!(sub.next_publish().await.payload[0], 4);
    assert_eq!(sub.next_publish().await.payload[0], 5);
    b.server.shutdown().await;
}

#[tokio::test]
async fn broker_assigns_topic_aliases_when_the_client_allows_them() {
    let b = common::start().await;
    let mut c = connect_packet("aliased", Protocol::V5);
    c.properties.topic_alias_maximum = Some(1);
    let (mut sub, _) = Mqtt::connect(b.addr, c).await;
    sub.subscribe("ta/#", QoS::AtMostOnce).await;
    let mut publisher = Mqtt::v5(b.addr, "").await;
    for topic in ["ta/long/topic/name", "ta/long/topic/name", "ta/other"] {
        publisher.publish(topic, b"x", QoS::AtMostOnce, 0).await;
    }
    let p1 = sub.next_publish().await;
    assert_eq!(
        (p1.topic.as_str(), p1.properties.topic_alias),
        ("ta/long/topic/name", Some(1))
    );
    let p2 = sub.next_publish().await;
    assert_eq!(
        (p2.topic.as_str(), p2.properties.topic_alias),
        ("", Some(1))
    );
    let p3 = sub.next_publish().await;
    assert_eq!(
        (p3.topic.as_str(), p3.properties.topic_alias),
        ("ta/other", None),
        "beyond the client's maximum the topic goes in full"
    );
    b.server.shutdown().await;
}

#[tokio::test]
async fn messages_over_the_clients_maximum_packet_size_are_not_sent() {
    let b = common::start().await;
    let mut c = connect_packet("small", Protocol::V5);
    c.properties.maximum_packet_size = Some(64);
    let (mut sub, _) = Mqtt::connect(b.addr, c).await;
    sub.subscribe("size", QoS::AtLeastOnce).await;
    let mut publisher = Mqtt::v5(b.addr, "").await;
    publisher
        .publish("size", &[7u8; 200], QoS::AtLeastOnce, 1)
        .await;
    publisher
        .publish("size", b"tiny", QoS::AtLeastOnce, 2)
        .await;
    assert_eq!(&sub.next_publish().await.payload[..], b"tiny");
    assert_eq!(dropped(&b), 1);
    b.server.shutdown().await;
}

#[tokio::test]
async fn keep_alive_is_enforced_at_one_and_a_half_times() {
    let b = common::start().await;
    let mut c = connect_packet("sleepy", Protocol::V5);
    c.keep_alive = 1;
    let (mut m, _) = Mqtt::connect(b.addr, c).await;
    let started = std::time::Instant::now();
    m.expect_disconnect(reason::KEEP_ALIVE_TIMEOUT).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_millis(3000),
        "closed after {waited:?}"
    );
    b.server.shutdown().await;
}

#[tokio::test]
async fn server_keep_alive_caps_the_clients() {
    let b = common::start_with(|s| s.limits.max_keep_alive = 10).await;
    for asked in [0u16, 60] {
        let mut c = connect_packet("", Protocol::V5);
        c.keep_alive = asked;
        let (_m, ack) = Mqtt::connect(b.addr, c).await;
        assert_eq!(ack.properties.server_keep_alive, Some(10), "asked {asked}");
    }
    let mut c = connect_packet("", Protocol::V5);
    c.keep_alive = 5;
    let (_m, ack) = Mqtt::connect(b.addr, c).await;
    assert_eq!(ack.properties.server_keep_alive, None, "within the cap");
    b.server.shutdown().await;
}

#[tokio::test]
async fn connect_must_arrive_in_time() {
    let b = common::start_with(|s| s.limits.connect_timeout = Duration::from_millis(500)).await;
    let mut m = Mqtt::open(b.addr, Protocol::V5).await;
    m.raw(&[0x10, 20, 0, 4]).await; // a partial CONNECT, then nothing
    assert_eq!(m.recv().await, None, "closed after the connect timeout");
    b.server.shutdown().await;
}

#[derive(Default)]
struct Recorder {
    takeovers: Mutex<Vec<String>>,
}

impl Observer for Recorder {
    fn session_taken_over(&self, client_id: &str, _old: SocketAddr, _new: SocketAddr) {
        self.takeovers
            .lock()
            .expect("lock")
            .push(client_id.to_owned());
    }
}

#[tokio::test]
async fn takeover_closes_the_old_connection_with_0x8e_and_is_reported() {
    let dir = tempfile::tempdir().expect("dir");
    let recorder = Arc::new(Recorder::default());
    let settings = wardmq_broker::settings::Settings {
        data_dir: dir.path().to_path_buf(),
        tcp: Some("127.0.0.1:0".parse().expect("addr")),
        ..Default::default()
    };
    let server = Server::start_with(
        settings,
        wardmq_broker::server::Services {
            observer: recorder.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let addr = server.tcp_addr().expect("addr");
    let mut old = Mqtt::v5(addr, "twin").await;
    let (_new, ack) = Mqtt::connect(addr, connect_packet("twin", Protocol::V5)).await;
    assert_eq!(ack.reason, 0);
    old.expect_disconnect(reason::SESSION_TAKEN_OVER).await;
    assert_eq!(*recorder.takeovers.lock().expect("lock"), vec!["twin"]);
    server.shutdown().await;
}

fn persistent(client_id: &str) -> Connect {
    let mut c = connect_packet(client_id, Protocol::V5);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    c
}

#[tokio::test]
async fn unacknowledged_messages_are_resent_with_dup_on_reconnect() {
    let b = common::start().await;
    let (mut sub, _) = Mqtt::connect(b.addr, persistent("resend")).await;
    sub.subscribe("re/+", QoS::ExactlyOnce).await;
    let mut publisher = Mqtt::v5(b.addr, "").await;
    publisher.publish("re/1", b"one", QoS::AtLeastOnce, 1).await;
    publisher.publish("re/2", b"two", QoS::ExactlyOnce, 2).await;

    let one = sub.next_publish().await;
    assert!(!one.dup);
    let two = sub.next_publish().await;
    // Receive the QoS 2 one up to PUBREL, acknowledge nothing else.
    sub.send(Packet::PubRec(Ack::new(two.pkid))).await;
    match sub.recv().await {
        Some(Packet::PubRel(r)) => assert_eq!(r.pkid, two.pkid),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    drop(sub);

    let (mut sub, ack) = Mqtt::connect(b.addr, persistent("resend")).await;
    assert!(ack.session_present);
    let again = sub.next_publish().await;
    assert_eq!(
        (again.dup, again.pkid, &again.payload[..]),
        (true, one.pkid, &b"one"[..]),
        "QoS 1 resent with DUP and the same packet id"
    );
    match sub.recv().await {
        Some(Packet::PubRel(r)) => {
            assert_eq!(r.pkid, two.pkid, "released QoS 2: only PUBREL again")
        }
        other => panic!("expected PUBREL, got {other:?}"),
    }
    sub.send(Packet::PubAck(Ack::new(one.pkid))).await;
    sub.send(Packet::PubComp(Ack::new(two.pkid))).await;
    assert!(sub.recv_within(Duration::from_millis(500)).await.is_none());
    b.server.shutdown().await;
}

#[tokio::test]
async fn full_offline_queue_drops_and_counts() {
    let b = common::start_with(|s| s.limits.max_queued_messages = 3).await;
    let (sub, _) = Mqtt::connect(b.addr, persistent("offline")).await;
    let mut sub = sub;
    sub.subscribe("q", QoS::AtLeastOnce).await;
    drop(sub);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut publisher = Mqtt::v5(b.addr, "").await;
    for i in 1..=5u16 {
        publisher
            .publish("q", &[i as u8], QoS::AtLeastOnce, i)
            .await;
    }
    for _ in 1..=5 {
        assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    }
    let (mut sub, _) = Mqtt::connect(b.addr, persistent("offline")).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(sub.next_publish().await.payload[0]);
    }
    assert_eq!(
        got,
        vec![1, 2, 3],
        "the oldest three kept (drop_new policy)"
    );
    assert!(sub.recv_within(Duration::from_millis(300)).await.is_none());
    assert_eq!(dropped(&b), 2);
    b.server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let b = common::start_with(|s| s.limits.max_connections = 2).await;
    let _one = Mqtt::v5(b.addr, "one").await;
    let _two = Mqtt::v5(b.addr, "two").await;
    let mut three = Mqtt::open(b.addr, Protocol::V5).await;
    three
        .send(Packet::Connect(connect_packet("three", Protocol::V5)))
        .await;
    assert_eq!(
        three.recv().await,
        None,
        "third connection closed without CONNACK"
    );
    drop(_one);
    // The freed slot is usable again once the first connection is gone.
    let start = std::time::Instant::now();
    loop {
        let mut again = Mqtt::open(b.addr, Protocol::V5).await;
        again
            .send(Packet::Connect(connect_packet("four", Protocol::V5)))
            .await;
        if let Some(Packet::ConnAck(ack)) = again.recv().await {
            assert_eq!(ack.reason, 0);
            break;
        }
        assert!(start.elapsed() < WAIT, "slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.server.shutdown().await;
}

#[tokio::test]
async fn takeover_succeeds_even_when_the_old_connection_is_stuck_writing() {
    let b = common::start().await;
    // The old client subscribes and then never reads again.
    let mut old = Mqtt::v5(b.addr, "stuck").await;
    old.subscribe("flood", QoS::AtMostOnce).await;
    let mut publisher = Mqtt::v5(b.addr, "").await;
    let payload = vec![7u8; 60 * 1024];
    for _ in 0..400 {
        publisher
            .publish("flood", &payload, QoS::AtMostOnce, 0)
            .await;
    }
    // Let the broker fill the old client's socket buffers and block on it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let mut new = Mqtt::open(b.addr, Protocol::V5).await;
    new.send(Packet::Connect(connect_packet("stuck", Protocol::V5)))
        .await;
    match new.recv_within(Duration::from_secs(10)).await {
        Some(Some(Packet::ConnAck(ack))) => assert_eq!(ack.reason, 0),
        other => panic!("the new connection is served despite the stuck one: {other:?}"),
    }
    // The broker waits a short grace for the old connection, then takes over.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(old);
    b.server.shutdown().await;
}

#[tokio::test]
async fn a_slow_subscriber_slows_qos1_publishers_instead_of_losing_messages() {
    let b = common::start_with(|s| s.limits.max_queued_messages = 100).await;
    let mut c = connect_packet("slow-reader", Protocol::V5);
    c.properties.receive_maximum = Some(5);
    let (mut sub, _) = Mqtt::connect(b.addr, c).await;
    sub.subscribe("load", QoS::AtLeastOnce).await;
    let mut publisher = Mqtt::v5(b.addr, "fast-writer").await;
    // 1,000 QoS 1 publishes in one write: ten times the subscriber's queue.
    let mut out = BytesMut::new();
    for i in 1..=1000u16 {
        let p = Packet::Publish(publish("load", &i.to_be_bytes(), QoS::AtLeastOnce, i));
        codec::encode(&p, Protocol::V5, &mut out).expect("encode");
    }
    publisher.raw(&out).await;
    let mut got = Vec::new();
    while got.len() < 1000 {
        let p = sub.next_publish().await;
        got.push(u16::from_be_bytes([p.payload[0], p.payload[1]]));
        sub.send(Packet::PubAck(Ack::new(p.pkid))).await;
    }
    assert_eq!(
        got,
        (1..=1000).collect::<Vec<_>>(),
        "all delivered, in order"
    );
    assert_eq!(dropped(&b), 0);
    b.server.shutdown().await;
}

/// Per-client limits, with their reason codes: a third subscription gets
/// 0x97 (3.1.1: 0x80) while re-subscribing an existing filter still works;
/// a filter over the length or level limit gets 0x8F; a PUBLISH topic over
/// them gets PUBACK 0x90 at QoS 1, and closes the connection (DISCONNECT
/// 0x90) at QoS 0.
#[tokio::test]
async fn subscription_quota_and_topic_limits_have_reason_codes() {
    let b = common::start_with(|s| {
        s.limits.max_subscriptions_per_client = 2;
        s.limits.max_topic_len = 16;
        s.limits.max_topic_levels = 3;
    })
    .await;
    let mut m = Mqtt::v5(b.addr, "quota").await;
    assert_eq!(m.suback(&["a", "b", "c"]).await, vec![0, 0, 0x97]);
    assert_eq!(m.suback(&["a"]).await, vec![0], "an existing filter");
    assert_eq!(
        m.suback(&["a/b/c/d", "x".repeat(17).as_str()]).await,
        vec![0x8F, 0x8F]
    );
    m.publish("a/b/c/d", b"x", QoS::AtLeastOnce, 1).await;
    match m.recv().await {
        Some(Packet::PubAck(a)) => assert_eq!(a.reason, 0x90),
        other => panic!("expected PUBACK 0x90, got {other:?}"),
    }
    m.publish("a/b/c/d", b"x", QoS::AtMostOnce, 0).await;
    m.expect_disconnect(0x90).await;

    let (mut old, ack) = Mqtt::connect(b.addr, connect_packet("quota-311", Protocol::V311)).await;
    assert_eq!(ack.reason, 0);
    assert_eq!(
        old.suback(&["a", "b", "c", "a/b/c/d"]).await,
        vec![0, 0, 0x80, 0x80]
    );
    b.server.shutdown().await;
}

/// At the retained limit (2), a retained QoS 1 PUBLISH on a new topic gets
/// PUBACK 0x97 and is neither stored nor routed; replacing and clearing a
/// held one still work, and then a new topic fits again.
#[tokio::test]
async fn retained_messages_past_the_limit_are_refused_with_quota_exceeded() {
    let b = common::start_with(|s| s.limits.max_retained_messages = 2).await;
    let mut m = Mqtt::v5(b.addr, "keeper").await;
    let retained = |topic: &str, payload: &[u8], pkid: u16| {
        let mut p = publish(topic, payload, QoS::AtLeastOnce, pkid);
        p.retain = true;
        Packet::Publish(p)
    };
    let ack = async |m: &mut Mqtt, p: Packet| {
        m.send(p).await;
        match m.recv().await {
            Some(Packet::PubAck(a)) => a.reason,
            other => panic!("expected PUBACK, got {other:?}"),
        }
    };
    // 0x10: no subscribers, stored all the same.
    assert_eq!(ack(&mut m, retained("r/1", b"a", 1)).await, 0x10);
    assert_eq!(ack(&mut m, retained("r/2", b"b", 2)).await, 0x10);
    assert_eq!(ack(&mut m, retained("r/3", b"c", 3)).await, 0x97);
    assert_eq!(ack(&mut m, retained("r/2", b"B", 4)).await, 0x10, "replace");
    let mut sub = Mqtt::v5(b.addr, "reader").await;
    sub.subscribe("r/#", QoS::AtMostOnce).await;
    let mut got = [sub.next_publish().await, sub.next_publish().await];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let got: Vec<(&str, &[u8])> = got
        .iter()
        .map(|p| (p.topic.as_str(), &p.payload[..]))
        .collect();
    assert_eq!(got, vec![("r/1", &b"a"[..]), ("r/2", &b"B"[..])]);
    assert_eq!(
        sub.recv_within(Duration::from_millis(300)).await,
        None,
        "r/3 was not kept"
    );
    assert_eq!(
        ack(&mut m, retained("r/1", b"", 5)).await,
        0,
        "clear (routed to reader)"
    );
    assert_eq!(ack(&mut m, retained("r/3", b"c", 6)).await, 0, "fits again");
    b.server.shutdown().await;
}
