//! The broker's hooks for the co-located defender, over real sockets:
//! per-topic counters handed back by the observer, the publish interceptor,
//! and the broker's own publish handle.
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
    self, Connect, Packet, Properties, Protocol, Publish, QoS, Subscribe, SubscriptionOptions,
};
use wardmq_broker::observer::{ConnCounters, Observer, TopicCounters};
use wardmq_broker::server::{Server, Services};
use wardmq_broker::settings::Settings;

const WAIT: Duration = Duration::from_secs(5);

/// Everything allowed, except publishing on `denied`.
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:*","Resource":"*"},
  {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/denied"}
]}"#;

struct Broker {
    server: Server,
    addr: SocketAddr,
    _dir: TempDir,
}

async fn start(services: Services, policy: &str) -> Broker {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        tcp: Some("127.0.0.1:0".parse().expect("addr")),
        anonymous_policies: vec![policy.to_owned()],
        ..Settings::default()
    };
    let server = Server::start_with(settings, services)
        .await
        .expect("broker starts");
    let addr = server.tcp_addr().expect("tcp listener");
    Broker {
        server,
        addr,
        _dir: dir,
    }
}

struct Mqtt {
    stream: TcpStream,
    buf: BytesMut,
    protocol: Protocol,
}

impl Mqtt {
    async fn connect(addr: SocketAddr, client_id: &str, protocol: Protocol) -> Mqtt {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut m = Mqtt {
            stream,
            buf: BytesMut::new(),
            protocol,
        };
        m.send(Packet::Connect(Connect {
            protocol,
            clean_start: true,
            keep_alive: 60,
            client_id: client_id.to_owned(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }))
        .await;
        match m.recv().await {
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason, 0, "CONNACK"),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        m
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
