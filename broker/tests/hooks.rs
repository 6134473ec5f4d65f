//! The broker's hooks for the co-located defender, over real sockets:
//! per-topic counters handed back by the observer, the publish interceptor,
//! and the broker's own handle for publishing and disconnecting.
//!
//! Client packets are built with the broker's codec (differential-tested
//! against mqttbytes elsewhere); every wait is bounded by `WAIT`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wardmq_broker::codec::{
    self, reason, Ack, ConnAck, Connect, Packet, Properties, Protocol, Publish, QoS, Subscribe,
    SubscriptionOptions,
};
use wardmq_broker::intercept::{Intercepted, Interceptor, Reply};
use wardmq_broker::observer::{ConnCounters, Observer, TopicCounters};
use wardmq_broker::publisher::{PublishError, Publisher};
use wardmq_broker::server::{Server, Services, StartError};
use wardmq_broker::settings::Settings;

const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

/// Everything allowed, except publishing on `denied`.
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:*","Resource":"*"},
  {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/denied"}
]}"#;

struct Broker {
    server: Server,
    addr: SocketAddr,
    dir: TempDir,
}

fn settings(dir: &TempDir, policy: &str) -> Settings {
    Settings {
        data_dir: dir.path().to_path_buf(),
        tcp: Some("127.0.0.1:0".parse().expect("addr")),
        anonymous_policies: vec![policy.to_owned()],
        ..Settings::default()
    }
}

async fn start(services: Services, policy: &str) -> Broker {
    start_at(tempfile::tempdir().expect("temp dir"), services, policy).await
}

/// Starts on a data directory (of a broker shut down before).
async fn start_at(dir: TempDir, services: Services, policy: &str) -> Broker {
    let server = Server::start_with(settings(&dir, policy), services)
        .await
        .expect("broker starts");
    let addr = server.tcp_addr().expect("tcp listener");
    Broker { server, addr, dir }
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

/// A v5 session that outlives its connection.
fn persistent(client_id: &str) -> Connect {
    let mut c = connect_packet(client_id, Protocol::V5);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    c
}

struct Mqtt {
    stream: TcpStream,
    buf: BytesMut,
    protocol: Protocol,
}

impl Mqtt {
    async fn connect_with(addr: SocketAddr, c: Connect) -> (Mqtt, ConnAck) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut m = Mqtt {
            stream,
            buf: BytesMut::new(),
            protocol: c.protocol,
        };
        m.send(Packet::Connect(c)).await;
        match m.recv().await {
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason, 0, "CONNACK");
                (m, ack)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn connect(addr: SocketAddr, client_id: &str, protocol: Protocol) -> Mqtt {
        Mqtt::connect_with(addr, connect_packet(client_id, protocol))
            .await
            .0
    }

    async fn v5(addr: SocketAddr, client_id: &str) -> Mqtt {
        Mqtt::connect(addr, client_id, Protocol::V5).await
    }

    async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        codec::encode(&p, self.protocol, &mut out).expect("encode");
        self.stream.write_all(&out).await.expect("write");
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
            Some(Packet::Disconnect(d)) => assert_eq!(d.reason, code, "DISCONNECT reason"),
            other => panic!("expected DISCONNECT {code:#x}, got {other:?}"),
        }
        assert_eq!(self.recv().await, None, "closed after DISCONNECT");
    }

    /// Asserts nothing arrives for a while.
    async fn quiet(&mut self) {
        if let Some(p) = self.recv_within(QUIET).await {
            panic!("expected nothing, got {p:?}");
        }
    }

    /// The next `n` packets, in whatever order the broker sent them.
    async fn next_n(&mut self, n: usize) -> Vec<Packet> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.recv().await.expect("connection open"));
        }
        out
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
            Some(Packet::SubAck(s)) => assert_eq!(s.reasons, vec![qos as u8], "SUBACK"),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    async fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, pkid: u16) {
        self.send(Packet::Publish(publish(topic, payload, qos, pkid)))
            .await;
    }

    async fn next_publish(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(p)) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
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

/// Records every per-topic count, and hands them to connections of
/// `client_id` only.
#[derive(Default)]
struct TopicLog {
    client_id: &'static str,
    calls: Mutex<Vec<String>>,
}

impl TopicCounters for TopicLog {
    fn publish_in(&self, topic: &str, bytes: usize) {
        let call = format!("in {topic} {bytes}");
        self.calls.lock().expect("lock").push(call);
    }

    fn publish_out(&self, topic: &str) {
        let call = format!("out {topic}");
        self.calls.lock().expect("lock").push(call);
    }
}

struct HandsOutTopicLog(Arc<TopicLog>);

impl Observer for HandsOutTopicLog {
    fn connected(
        &self,
        client_id: &str,
        _peer: SocketAddr,
        _protocol: Protocol,
        _counters: &Arc<ConnCounters>,
    ) -> Option<Arc<dyn TopicCounters>> {
        (client_id == self.0.client_id).then(|| self.0.clone() as Arc<dyn TopicCounters>)
    }
}

#[tokio::test]
async fn topic_counters_from_the_observer_count_every_publish_in_and_out() {
    let log = Arc::new(TopicLog {
        client_id: "dev",
        ..TopicLog::default()
    });
    let services = Services {
        observer: Arc::new(HandsOutTopicLog(log.clone())),
        ..Services::default()
    };
    let b = start(services, POLICY).await;
    let mut dev = Mqtt::v5(b.addr, "dev").await;
    dev.subscribe("t/#", QoS::AtMostOnce).await;
    // Another client's traffic is not this connection's.
    let mut other = Mqtt::v5(b.addr, "other").await;
    other.publish("t/other", b"12", QoS::AtMostOnce, 0).await;
    assert_eq!(&dev.next_publish().await.payload[..], b"12");

    // A topic alias is resolved before counting.
    let mut aliased = publish("t/a", b"abc", QoS::AtMostOnce, 0);
    aliased.properties.topic_alias = Some(1);
    dev.send(Packet::Publish(aliased)).await;
    assert_eq!(&dev.next_publish().await.payload[..], b"abc");
    let mut by_alias = publish("", b"abcd", QoS::AtMostOnce, 0);
    by_alias.properties.topic_alias = Some(1);
    dev.send(Packet::Publish(by_alias)).await;
    assert_eq!(&dev.next_publish().await.payload[..], b"abcd");
    // Refused publishes are counted in, as ConnCounters counts them.
    dev.publish("denied", b"x", QoS::AtLeastOnce, 7).await;
    match dev.recv().await {
        Some(Packet::PubAck(a)) => assert_eq!(a.reason, codec::reason::NOT_AUTHORIZED),
        other => panic!("expected PUBACK, got {other:?}"),
    }

    assert_eq!(
        *log.calls.lock().expect("lock"),
        vec![
            "out t/other",
            "in t/a 3",
            "out t/a",
            "in t/a 4",
            "out t/a",
            "in denied 1",
        ]
    );
    b.server.shutdown().await;
}

/// Every client may publish and receive only under its own thing's topics
/// (and under `plain/`), like a typical device policy.
const DEVICE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["iot:Connect","iot:Subscribe"],"Resource":"*"},
  {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":[
    "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:ClientId}/*",
    "arn:aws:iot:us-east-1:123456789012:topic/plain/*"]}
]}"#;

/// Consumes `…/report` and answers on `…/report/accepted`; routes the rest
/// of its prefix. Records what it saw.
#[derive(Default)]
struct Reports {
    seen: Mutex<Vec<String>>,
}

impl Interceptor for Reports {
    fn prefix(&self) -> &str {
        "$aws/things/"
    }

    fn intercept(&self, client_id: &str, topic: &str, payload: &[u8]) -> Intercepted {
        let payload = String::from_utf8_lossy(payload);
        let seen = format!("{client_id} {topic} {payload}");
        self.seen.lock().expect("lock").push(seen);
        if !topic.ends_with("/report") {
            return Intercepted::Route;
        }
        Intercepted::Consume(vec![
            Reply {
                topic: format!("{topic}/accepted"),
                payload: format!("got {payload}").into_bytes(),
            },
            // Dropped (and logged), not a reason to fail the others.
            Reply {
                topic: "bad/+".into(),
                payload: Vec::new(),
            },
        ])
    }
}

async fn start_intercepting() -> (Broker, Arc<Reports>) {
    let reports = Arc::new(Reports::default());
    let services = Services {
        interceptor: Some(reports.clone()),
        ..Services::default()
    };
    (start(services, DEVICE_POLICY).await, reports)
}

fn dropped(b: &Broker) -> u64 {
    b.server
        .stats()
        .messages_dropped
        .load(std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test]
async fn intercepted_publishes_are_consumed_acknowledged_and_answered() {
    let (b, reports) = start_intercepting().await;
    // Subscribed to the report topic and its replies.
    let mut dev = Mqtt::v5(b.addr, "dev1").await;
    dev.subscribe("$aws/things/dev1/report/#", QoS::AtLeastOnce)
        .await;
    // Subscribed to everyone's reports and replies, but may receive none
    // of dev1's.
    let mut nosy = Mqtt::v5(b.addr, "nosy").await;
    nosy.subscribe("$aws/things/+/report/#", QoS::AtLeastOnce)
        .await;

    let topic = "$aws/things/dev1/report";
    for (qos, pkid) in [
        (QoS::AtMostOnce, 0),
        (QoS::AtLeastOnce, 1),
        (QoS::ExactlyOnce, 2),
    ] {
        let before = dropped(&b);
        dev.publish(topic, b"r", qos, pkid).await;
        let expected = if qos == QoS::AtMostOnce { 1 } else { 2 };
        let mut reply = None;
        for packet in dev.next_n(expected).await {
            match packet {
                Packet::Publish(p) => reply = Some(p),
                Packet::PubAck(a) if qos == QoS::AtLeastOnce => {
                    assert_eq!((a.pkid, a.reason), (pkid, reason::SUCCESS), "PUBACK")
                }
                Packet::PubRec(a) if qos == QoS::ExactlyOnce => {
                    assert_eq!((a.pkid, a.reason), (pkid, reason::SUCCESS), "PUBREC")
                }
                other => panic!("{qos:?}: unexpected {other:?}"),
            }
        }
        let reply = reply.expect("the reply");
        assert_eq!(reply.topic, "$aws/things/dev1/report/accepted");
        assert_eq!(&reply.payload[..], b"got r");
        assert_eq!((reply.qos, reply.retain), (QoS::AtMostOnce, false));
        if qos == QoS::ExactlyOnce {
            dev.send(Packet::PubRel(Ack::new(pkid))).await;
            match dev.recv().await {
                Some(Packet::PubComp(c)) => {
                    assert_eq!((c.pkid, c.reason), (pkid, reason::SUCCESS), "PUBCOMP")
                }
                other => panic!("expected PUBCOMP, got {other:?}"),
            }
        }
        // The reply reached nosy's connection and was refused there
        // (iot:Receive); the report itself was never routed to anyone.
        nosy.quiet().await;
        assert_eq!(dropped(&b), before + 1, "{qos:?}: the reply to nosy");
        dev.quiet().await;
    }
    assert_eq!(reports.seen.lock().expect("lock").len(), 3);
    b.server.shutdown().await;
}

#[tokio::test]
async fn publishes_the_interceptor_does_not_consume_are_routed_as_usual() {
    let (b, reports) = start_intercepting().await;
    let mut dev = Mqtt::v5(b.addr, "dev1").await;
    dev.subscribe("$aws/things/dev1/#", QoS::AtLeastOnce).await;
    dev.subscribe("plain/#", QoS::AtLeastOnce).await;
    let mut other = Mqtt::v5(b.addr, "dev2").await;

    // Under the prefix, routed by the interceptor's choice.
    dev.publish("$aws/things/dev1/shadow", b"s", QoS::AtLeastOnce, 1)
        .await;
    // Outside the prefix: the interceptor never sees it.
    other.publish("plain/x", b"p", QoS::AtLeastOnce, 1).await;
    // Not authorized: refused before the interceptor could see it.
    other
        .publish("$aws/things/dev1/report", b"forged", QoS::AtLeastOnce, 2)
        .await;
    let mut got = Vec::new();
    for packet in dev.next_n(3).await {
        match packet {
            Packet::Publish(p) => got.push(p.topic),
            Packet::PubAck(a) => assert_eq!((a.pkid, a.reason), (1, reason::SUCCESS)),
            other => panic!("unexpected {other:?}"),
        }
    }
    got.sort();
    assert_eq!(got, vec!["$aws/things/dev1/shadow", "plain/x"]);
    let acks = other.next_n(2).await;
    assert_eq!(
        acks,
        vec![
            Packet::PubAck(Ack::new(1)),
            Packet::PubAck(Ack {
                reason: reason::NOT_AUTHORIZED,
                ..Ack::new(2)
            }),
        ]
    );
    dev.quiet().await;
    assert_eq!(
        *reports.seen.lock().expect("lock"),
        vec!["dev1 $aws/things/dev1/shadow s"]
    );
    b.server.shutdown().await;
}

#[tokio::test]
async fn the_publisher_reaches_the_subscribers_who_may_receive() {
    // Made before the server, as the defender makes it.
    let publisher = Publisher::new();
    assert!(!publisher.is_bound());
    assert_eq!(
        publisher.publish("plain/x", "early", QoS::AtMostOnce, false),
        Err(PublishError::NotRunning)
    );
    let services = Services {
        publisher: publisher.clone(),
        ..Services::default()
    };
    let b = start(services, DEVICE_POLICY).await;
    assert!(publisher.is_bound());
    let mut dev = Mqtt::v5(b.addr, "dev1").await;
    dev.subscribe("$aws/things/dev1/#", QoS::AtLeastOnce).await;
    // Subscribed, but may not receive dev1's topics.
    let mut nosy = Mqtt::v5(b.addr, "nosy").await;
    nosy.subscribe("$aws/things/+/alerts", QoS::AtLeastOnce)
        .await;

    let before = dropped(&b);
    let queued = publisher.publish("$aws/things/dev1/alerts", "a1", QoS::AtLeastOnce, false);
    assert_eq!(queued, Ok(2));
    let p = dev.next_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.qos, p.retain),
        (
            "$aws/things/dev1/alerts",
            &b"a1"[..],
            QoS::AtLeastOnce,
            false
        )
    );
    dev.send(Packet::PubAck(Ack::new(p.pkid))).await;
    nosy.quiet().await;
    assert_eq!(dropped(&b), before + 1, "refused at nosy's delivery");

    // From sync code on a plain thread, through the server's handle.
    let from_thread = b.server.publisher();
    let sent = std::thread::spawn(move || {
        from_thread.publish("$aws/things/dev1/alerts", "a2", QoS::AtMostOnce, false)
    })
    .join()
    .expect("thread");
    assert_eq!(sent, Ok(2));
    assert_eq!(&dev.next_publish().await.payload[..], b"a2");

    // Retained like a client's message: a later subscriber gets it.
    let retained = publisher.publish("plain/status", "up", QoS::AtLeastOnce, true);
    assert_eq!(retained, Ok(0));
    let mut late = Mqtt::v5(b.addr, "late").await;
    late.subscribe("plain/#", QoS::AtLeastOnce).await;
    let r = late.next_publish().await;
    assert_eq!(
        (r.topic.as_str(), &r.payload[..], r.retain),
        ("plain/status", &b"up"[..], true)
    );

    let wildcard = publisher.publish("plain/+", "x", QoS::AtMostOnce, false);
    assert_eq!(wildcard, Err(PublishError::InvalidTopic));
    // One handle serves one server.
    let dir = tempfile::tempdir().expect("temp dir");
    let second = Services {
        publisher: publisher.clone(),
        ..Services::default()
    };
    match Server::start_with(settings(&dir, POLICY), second).await {
        Err(StartError::PublisherInUse) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a second server bound the same publisher"),
    }
    b.server.shutdown().await;
    assert_eq!(
        publisher.publish("plain/x", "late", QoS::AtMostOnce, false),
        Err(PublishError::NotRunning)
    );
}

#[tokio::test]
async fn a_durable_broker_publish_waits_for_persistent_sessions_and_survives_a_restart() {
    let b = start(Services::default(), POLICY).await;
    let (mut keeper, _) = Mqtt::connect_with(b.addr, persistent("keeper")).await;
    keeper.subscribe("plain/keep", QoS::AtLeastOnce).await;
    drop(keeper);
    let publisher = b.server.publisher();
    let queued = publisher
        .publish_durable("plain/keep", "k", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(queued, Ok(1));
    let Broker { server, dir, .. } = b;
    server.shutdown().await;

    let b = start_at(dir, Services::default(), POLICY).await;
    let (mut keeper, ack) = Mqtt::connect_with(b.addr, persistent("keeper")).await;
    assert!(ack.session_present);
    let p = keeper.next_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("plain/keep", &b"k"[..])
    );
    b.server.shutdown().await;
}

#[tokio::test]
async fn the_publisher_disconnects_a_client_with_the_reason_given() {
    let b = start(Services::default(), POLICY).await;
    let publisher = b.server.publisher();
    let mut bystander = Mqtt::v5(b.addr, "bystander").await;
    let mut dev = Mqtt::v5(b.addr, "dev1").await;
    assert!(publisher.disconnect("dev1", reason::ADMINISTRATIVE_ACTION));
    dev.expect_disconnect(reason::ADMINISTRATIVE_ACTION).await;
    // Already told: nothing more to do.
    assert!(!publisher.disconnect("dev1", reason::ADMINISTRATIVE_ACTION));
    assert!(!publisher.disconnect("nobody", reason::NOT_AUTHORIZED));

    // 3.1.1 has no DISCONNECT from the server: the connection just closes.
    let mut old = Mqtt::connect(b.addr, "old", Protocol::V311).await;
    assert!(publisher.disconnect("old", reason::NOT_AUTHORIZED));
    assert_eq!(old.recv().await, None, "closed");

    // Nobody else noticed, and the client may come back (keeping it out
    // is the policy's job).
    bystander.send(Packet::PingReq).await;
    assert_eq!(bystander.recv().await, Some(Packet::PingResp));
    let mut again = Mqtt::v5(b.addr, "dev1").await;
    again.send(Packet::PingReq).await;
    assert_eq!(again.recv().await, Some(Packet::PingResp));
    b.server.shutdown().await;
}
