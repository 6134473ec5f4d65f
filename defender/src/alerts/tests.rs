//! Alert sinks against real receivers on 127.0.0.1: an axum webhook whose
//! answers each test scripts, a port with nobody behind it, a receiver that
//! never answers, and an https one under a fresh test CA.

#![allow(clippy::unwrap_used)] // tests: a failed setup step should panic loudly

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::webhook::Webhook;
use super::*;
use crate::detect::model::{
    Behavior, BehaviorCriteria, ComparisonOperator, ConfidenceLevel,
    MachineLearningDetectionConfig, MetricValue, Timestamp, VerificationState, ViolationEvent,
    ViolationEventAdditionalInfo, ViolationEventType,
};
use crate::settings::{AlertSinkKind, AlertSinkSettings};

const TEST_TIMEOUT: Duration = Duration::from_secs(20);
const SECRET: &str = "s3cret";

async fn run<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out");
}

/// Polls until `done` holds; panics after 10 s.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "waited too long for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The AWS workshop's sample alert (spec §7.5) as a violation event.
fn sample_event() -> ViolationEvent {
    ViolationEvent {
        violation_id: "37e18651d207bbc74236c13faf146127".into(),
        thing_name: "dev-IZWB".into(),
        security_profile_name: "MySecProfile".into(),
        behavior: Behavior {
            name: "MessagesPub".into(),
            metric: Some("aws:num-messages-sent".into()),
            criteria: Some(BehaviorCriteria {
                comparison_operator: Some(ComparisonOperator::LessThan),
                value: Some(MetricValue::count(10)),
                duration_seconds: Some(300),
                consecutive_datapoints_to_alarm: Some(1),
                consecutive_datapoints_to_clear: Some(1),
                ..BehaviorCriteria::default()
            }),
            ..Behavior::default()
        },
        metric_value: Some(MetricValue::count(54)),
        violation_event_type: ViolationEventType::InAlarm,
        violation_event_time: Timestamp::from_millis(1_573_786_800_000),
        violation_start_time: Some(Timestamp::from_millis(1_573_786_500_000)),
        ..ViolationEvent::default()
    }
}

fn webhook(
    name: &str,
    url: String,
    attempts: u32,
    timeout: Duration,
    queue: usize,
) -> AlertSinkSettings {
    AlertSinkSettings {
        name: name.into(),
        kind: AlertSinkKind::Webhook {
            url,
            secret: SECRET.into(),
            attempts,
            timeout,
        },
        queue,
    }
}

fn no_publish() -> Publish {
    Arc::new(|_: &str, _: Vec<u8>| {})
}

fn body(text: &str) -> Arc<[u8]> {
    Arc::from(text.as_bytes())
}

fn stats_of(router: &AlertRouter, name: &str) -> SinkStats {
    router
        .stats()
        .into_iter()
        .find(|s| s.name == name)
        .expect("sink exists")
}

// ---------------------------------------------------------------- receivers

/// A webhook receiver: records every request and answers with the next
/// scripted status (200 once the script is empty), or never, when `hang`.
#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<StatusCode>>,
    hang: AtomicBool,
    got: Mutex<Vec<(HeaderMap, Bytes, StatusCode)>>,
    /// The client's address of each request: one port means one connection.
    peers: Mutex<Vec<SocketAddr>>,
}

impl Receiver {
    fn answering(statuses: &[u16]) -> Arc<Self> {
        let r = Self::default();
        r.script
            .lock()
            .unwrap()
            .extend(statuses.iter().map(|&s| StatusCode::from_u16(s).unwrap()));
        Arc::new(r)
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    fn requests(&self) -> Vec<(HeaderMap, Bytes, StatusCode)> {
        self.got.lock().unwrap().clone()
    }

    async fn serve(self: &Arc<Self>) -> String {
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(Arc::clone(self));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook?token=t")
    }
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    r.peers.lock().unwrap().push(peer);
    let status = r
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::OK);
    r.got.lock().unwrap().push((headers, body, status));
    if r.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    status
}

/// An address nobody listens on: bound, then closed.
async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

// ---------------------------------------------------------------- message

#[test]
fn sns_message_is_the_aws_sample() {
    let sent: Value = serde_json::from_slice(&sns_message(&sample_event())).unwrap();
    // §7.5 verbatim, plus the verification state every event carries.
    let expected = json!({"violationEventTime":1573786800000u64,"thingName":"dev-IZWB",
        "behavior":{"criteria":{"consecutiveDatapointsToClear":1,"value":{"count":10},"durationSeconds":300,
          "consecutiveDatapointsToAlarm":1,"comparisonOperator":"less-than"},"name":"MessagesPub","metric":"aws:num-messages-sent"},
        "violationEventType":"in-alarm","metricValue":{"count":54},
        "violationId":"37e18651d207bbc74236c13faf146127","securityProfileName":"MySecProfile",
        "verificationState":"UNKNOWN"});
    assert_eq!(sent, expected);
}

#[test]
fn sns_time_is_milliseconds_even_when_fractional() {
    let mut e = sample_event();
    e.violation_event_time = Timestamp::from_millis(1_600_780_245_290);
    let text = String::from_utf8(sns_message(&e)).unwrap();
    assert!(
        text.starts_with(r#"{"violationEventTime":1600780245290,"#),
        "{text}"
    );
}

#[test]
fn sns_message_carries_ml_info_and_verification_state_and_omits_absent_value() {
    let mut e = sample_event();
    e.violation_event_type = ViolationEventType::AlarmInvalidated;
    e.metric_value = None;
    e.verification_state = VerificationState::TruePositive;
    e.verification_state_description = Some("not sent".into());
    e.behavior.criteria = Some(BehaviorCriteria {
        ml_detection_config: Some(MachineLearningDetectionConfig {
            confidence_level: ConfidenceLevel::High,
        }),
        ..BehaviorCriteria::default()
    });
    e.violation_event_additional_info = Some(ViolationEventAdditionalInfo {
        confidence_level: Some(ConfidenceLevel::High),
        ..ViolationEventAdditionalInfo::default()
    });
    let sent: Value = serde_json::from_slice(&sns_message(&e)).unwrap();
    assert_eq!(sent["violationEventType"], "alarm-invalidated");
    assert_eq!(sent["verificationState"], "TRUE_POSITIVE");
    assert_eq!(
        sent["violationEventAdditionalInfo"],
        json!({"confidenceLevel": "HIGH"})
    );
    let keys: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for absent in [
        "metricValue",
        "verificationStateDescription",
        "violationStartTime",
    ] {
        assert!(!keys.contains(&absent), "{absent} in {keys:?}");
    }
}

#[test]
fn sink_name_is_the_last_part_of_an_sns_topic_arn() {
    assert_eq!(
        sink_name("arn:aws:sns:us-east-1:123456789012:ops-webhook"),
        Some("ops-webhook")
    );
    assert_eq!(sink_name("arn:aws:sns:::local"), Some("local"));
    for not_a_topic in [
        "",
        "ops-webhook",
        "arn:aws:sns:us-east-1:123456789012:",
        "arn:aws:sns:us-east-1:123456789012",
        "arn:aws:sns:us-east-1:123456789012:a:b",
        "arn:aws:sqs:us-east-1:123456789012:q",
        "arn:aws:iam::123456789012:role/r",
        "arn:aws-cn:sns:cn-north-1:123456789012:t",
    ] {
        assert_eq!(sink_name(not_a_topic), None, "{not_a_topic}");
    }
}

#[test]
fn signature_is_hex_hmac_sha256() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

// ---------------------------------------------------------------- webhook

#[tokio::test]
async fn webhook_posts_the_signed_sns_json() {
    run(async {
        let receiver = Receiver::answering(&[]);
        let url = receiver.serve().await;
        let router = AlertRouter::new(
            &[webhook("ops", url, 3, Duration::from_secs(5), 10)],
            no_publish(),
        )
        .unwrap();
        let message = sns_message(&sample_event());
        assert_eq!(
            router.send("ops", Arc::from(message.clone())),
            SendOutcome::Queued
        );
        wait_until("the delivery", || stats_of(&router, "ops").sent == 1).await;

        let requests = receiver.requests();
        assert_eq!(requests.len(), 1);
        let (headers, got, _) = &requests[0];
        assert_eq!(got.as_ref(), message.as_slice());
        assert_eq!(headers["content-type"], "application/json");
        // Verified the way a receiver would, with its own HMAC.
        let header = headers[SIGNATURE_HEADER].to_str().unwrap();
        let hex = header.strip_prefix("sha256=").expect("sha256= prefix");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(got);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
        assert_eq!(
            stats_of(&router, "ops"),
            SinkStats {
                name: "ops".into(),
                sent: 1,
                failed: 0,
                dropped: 0,
                queued: 0
            }
        );
    })
    .await;
}

#[tokio::test]
async fn server_errors_and_429_are_retried_until_accepted() {
    run(async {
        let receiver = Receiver::answering(&[500, 429, 503]);
        let url = receiver.serve().await;
        let router = AlertRouter::new(
            &[webhook("ops", url, 5, Duration::from_secs(5), 10)],
            no_publish(),
        )
        .unwrap();
        router.send("ops", body(r#"{"n":1}"#));
        wait_until("the delivery", || stats_of(&router, "ops").sent == 1).await;
        let statuses: Vec<u16> = receiver
            .requests()
            .iter()
            .map(|(_, b, s)| {
                assert_eq!(b.as_ref(), br#"{"n":1}"#);
                s.as_u16()
            })
            .collect();
        assert_eq!(statuses, [500, 429, 503, 200]);
        assert_eq!(stats_of(&router, "ops").failed, 0);
    })
    .await;
}

#[tokio::test]
async fn a_failing_receiver_gets_exactly_attempts_tries() {
    run(async {
        let receiver = Receiver::answering(&[502; 10]);
        let url = receiver.serve().await;
        let router = AlertRouter::new(
            &[webhook("ops", url, 3, Duration::from_secs(5), 10)],
            no_publish(),
        )
        .unwrap();
        router.send("ops", body("{}"));
        wait_until("the failure", || stats_of(&router, "ops").failed == 1).await;
        assert_eq!(receiver.count(), 3);
        assert_eq!(stats_of(&router, "ops").sent, 0);
    })
    .await;
}

#[tokio::test]
async fn a_client_error_fails_at_once() {
    run(async {
        let receiver = Receiver::answering(&[400, 404]);
        let url = receiver.serve().await;
        let router = AlertRouter::new(
            &[webhook("ops", url, 5, Duration::from_secs(5), 10)],
            no_publish(),
        )
        .unwrap();
        router.send("ops", body("{}"));
        wait_until("the failure", || stats_of(&router, "ops").failed == 1).await;
        assert_eq!(receiver.count(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_receiver_that_is_down_fails_the_alert_after_its_attempts() {
    run(async {
        let addr = dead_address().await;
        let router = AlertRouter::new(
            &[webhook(
                "ops",
                format!("http://{addr}/"),
                3,
                Duration::from_secs(5),
                10,
            )],
            no_publish(),
        )
        .unwrap();
        let start = Instant::now();
        router.send("ops", body("{}"));
        wait_until("the failure", || stats_of(&router, "ops").failed == 1).await;
        // Two backoffs between three attempts: 100 ms + 200 ms.
        assert!(start.elapsed() >= Duration::from_millis(300));
        let s = stats_of(&router, "ops");
        assert_eq!((s.sent, s.failed, s.dropped, s.queued), (0, 1, 0, 0));
    })
    .await;
}

#[tokio::test]
async fn a_hanging_receiver_never_blocks_send_and_overflow_is_counted() {
    run(async {
        let receiver = Receiver::answering(&[]);
        receiver.hang.store(true, Ordering::SeqCst);
        let url = receiver.serve().await;
        let router = AlertRouter::new(
            &[webhook("ops", url, 1, Duration::from_secs(60), 4)],
            no_publish(),
        )
        .unwrap();
        router.send("ops", body("{}"));
        // The task has taken the first alert and waits on the receiver.
        wait_until("the first request", || receiver.count() == 1).await;

        let start = Instant::now();
        let outcomes: Vec<SendOutcome> = (0..10).map(|_| router.send("ops", body("{}"))).collect();
        assert!(start.elapsed() < Duration::from_secs(1), "send waited");
        assert_eq!(outcomes[..4], [SendOutcome::Queued; 4]);
        assert_eq!(outcomes[4..], [SendOutcome::Dropped; 6]);
        let s = stats_of(&router, "ops");
        assert_eq!((s.sent, s.failed, s.dropped, s.queued), (0, 0, 6, 4));

        // Shutdown is bounded even though nothing can be delivered.
        let start = Instant::now();
        let last = router.shutdown(Duration::from_millis(200)).await;
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(last[0].dropped, 6);
        assert_eq!(receiver.count(), 1);
    })
    .await;
}

#[tokio::test]
async fn alerts_arrive_in_the_order_sent_even_across_retries() {
    run(async {
        // The third request fails once; the alert is retried before the next.
        let receiver = Receiver::answering(&[200, 200, 500]);
        let url = receiver.serve().await;
        let router = AlertRouter::new(
            &[webhook("ops", url, 3, Duration::from_secs(5), 100)],
            no_publish(),
        )
        .unwrap();
        let sent: Vec<String> = (0..50).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
        for b in &sent {
            assert_eq!(router.send("ops", body(b)), SendOutcome::Queued);
        }
        wait_until("every delivery", || stats_of(&router, "ops").sent == 50).await;
        let accepted: Vec<String> = receiver
            .requests()
            .into_iter()
            .filter(|(_, _, s)| s.is_success())
            .map(|(_, b, _)| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        assert_eq!(accepted, sent);
        assert_eq!(receiver.count(), 51);
        // Back-to-back alerts share a kept-alive connection.
        let mut peers = receiver.peers.lock().unwrap().clone();
        peers.dedup();
        assert!(
            peers.len() < 5,
            "{} connections for 51 requests",
            peers.len()
        );
    })
    .await;
}

#[tokio::test]
async fn shutdown_delivers_what_is_queued() {
    run(async {
        let receiver = Receiver::answering(&[]);
        let url = receiver.serve().await;
        let router = AlertRouter::new(
            &[webhook("ops", url, 3, Duration::from_secs(5), 100)],
            no_publish(),
        )
        .unwrap();
        for i in 0..20 {
            router.send("ops", body(&format!("{i}")));
        }
        let last = router.shutdown(Duration::from_secs(10)).await;
        assert_eq!((last[0].sent, last[0].queued), (20, 0));
        assert_eq!(receiver.count(), 20);
    })
    .await;
}

#[tokio::test]
async fn bad_webhook_urls_are_refused_at_startup() {
    run(async {
        for url in ["ftp://h/x", "not a url", "http://user:pw@h/x", "http:///x"] {
            let err = AlertRouter::new(
                &[webhook("bad", url.into(), 1, Duration::from_secs(1), 1)],
                no_publish(),
            )
            .err()
            .unwrap_or_else(|| panic!("{url} accepted"));
            assert_eq!(err.sink, "bad");
        }
    })
    .await;
}

/// The TLS path: ring, a receiver certificate under a test CA.
#[tokio::test]
async fn https_webhook_verifies_the_receiver() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    run(async {
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &*ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // One connection; answers 200 once the whole request is in.
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while !request.ends_with(b"{\"tls\":true}") {
                let n = tls.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed early");
                request.extend_from_slice(&chunk[..n]);
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(request).unwrap()
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let mut hook = Webhook::with_roots(
            &format!("https://localhost:{port}/in"),
            SECRET,
            1,
            Duration::from_secs(5),
            Some(roots),
        )
        .unwrap();
        assert!(hook.deliver("tls", body(r#"{"tls":true}"#)).await);
        let request = served.await.unwrap();
        assert!(request.starts_with("POST /in HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("host: localhost:{port}\r\n")),
            "{request}"
        );

        // The same URL trusting nothing else fails the handshake.
        let mut untrusting = Webhook::with_roots(
            &format!("https://localhost:{port}/in"),
            SECRET,
            1,
            Duration::from_secs(5),
            Some({
                let other = CertifiedIssuer::self_signed(
                    CertificateParams::default(),
                    KeyPair::generate().unwrap(),
                )
                .unwrap();
                let mut r = rustls::RootCertStore::empty();
                r.add(other.der().clone()).unwrap();
                r
            }),
        )
        .unwrap();
        assert!(!untrusting.deliver("tls", body("{}")).await);
    })
    .await;
}

// ---------------------------------------------------------------- other sinks

/// Topic and payload handed to the broker.
type Published = (String, Vec<u8>);

#[tokio::test]
async fn mqtt_sink_publishes_the_alert_on_its_topic() {
    run(async {
        let published: Arc<Mutex<Vec<Published>>> = Arc::default();
        let sink = Arc::clone(&published);
        let publish: Publish = Arc::new(move |topic: &str, payload: Vec<u8>| {
            sink.lock().unwrap().push((topic.into(), payload))
        });
        let router = AlertRouter::new(
            &[AlertSinkSettings {
                name: "topic".into(),
                kind: AlertSinkKind::Mqtt {
                    topic: "wardmq/alerts".into(),
                },
                queue: 10,
            }],
            publish,
        )
        .unwrap();
        router.send("topic", body(r#"{"a":1}"#));
        router.send("topic", body(r#"{"a":2}"#));
        wait_until("the publishes", || published.lock().unwrap().len() == 2).await;
        assert_eq!(
            *published.lock().unwrap(),
            [
                ("wardmq/alerts".to_owned(), br#"{"a":1}"#.to_vec()),
                ("wardmq/alerts".to_owned(), br#"{"a":2}"#.to_vec())
            ]
        );
        assert_eq!(stats_of(&router, "topic").sent, 2);
    })
    .await;
}

#[tokio::test]
async fn log_sink_counts_its_lines() {
    run(async {
        let router = AlertRouter::new(
            &[AlertSinkSettings {
                name: "log".into(),
                kind: AlertSinkKind::Log,
                queue: 10,
            }],
            no_publish(),
        )
        .unwrap();
        router.send("log", body("{}"));
        wait_until("the log line", || stats_of(&router, "log").sent == 1).await;
    })
    .await;
}

#[tokio::test]
async fn unknown_sinks_are_counted() {
    run(async {
        let router = AlertRouter::new(
            &[AlertSinkSettings {
                name: "log".into(),
                kind: AlertSinkKind::Log,
                queue: 10,
            }],
            no_publish(),
        )
        .unwrap();
        assert_eq!(router.send("nope", body("{}")), SendOutcome::UnknownSink);
        assert_eq!(router.send("nope", body("{}")), SendOutcome::UnknownSink);
        assert_eq!(router.send("other", body("{}")), SendOutcome::UnknownSink);
        assert_eq!(router.unknown_sink(), 3);
        assert_eq!(stats_of(&router, "log").sent, 0);
    })
    .await;
}

/// Evaluation runs in `spawn_blocking`: the router is built and fed there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_works_from_blocking_code() {
    run(async {
        let router = tokio::task::spawn_blocking(|| {
            let router = AlertRouter::new(
                &[AlertSinkSettings {
                    name: "log".into(),
                    kind: AlertSinkKind::Log,
                    queue: 10,
                }],
                no_publish(),
            )
            .unwrap();
            assert_eq!(router.send("log", body("{}")), SendOutcome::Queued);
            router
        })
        .await
        .unwrap();
        wait_until("the log line", || stats_of(&router, "log").sent == 1).await;
    })
    .await;
}
