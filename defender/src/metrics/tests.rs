//! The collector driven by synthetic observer calls: no broker, no network.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wardmq_broker::codec::Protocol;
use wardmq_broker::observer::{ConnCounters, Observer};

use super::*;
use crate::detect::evaluate::Measurement;
use crate::detect::model::{DimensionValueOperator, Timestamp};
use CloudMetric::*;

/// A clock the test moves by hand (milliseconds).
fn clock() -> (Arc<AtomicU64>, Collector) {
    let t = Arc::new(AtomicU64::new(0));
    let c = t.clone();
    let collector = Collector::with_clock(
        CollectorConfig::default(),
        Arc::new(move || Timestamp::from_millis(c.load(Ordering::Relaxed))),
    );
    (t, collector)
}

fn peer(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn connect(c: &Collector, id: &str, p: &str) -> Arc<ConnCounters> {
    let counters = Arc::new(ConnCounters::default());
    c.connected(id, peer(p), Protocol::V5, &counters);
    counters
}

/// What the broker's `ConnCounters::publish_in` does.
fn publish_in(k: &ConnCounters, bytes: u64) {
    k.publishes_in.fetch_add(1, Ordering::Relaxed);
    k.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    k.max_message_bytes.fetch_max(bytes, Ordering::Relaxed);
}

fn publish_out(k: &ConnCounters) {
    k.publishes_out.fetch_add(1, Ordering::Relaxed);
}

fn count(s: &PeriodSnapshot, thing: &str, m: CloudMetric) -> Option<u64> {
    match s.measurement(thing, m, None)? {
        Measurement::Count(n) => Some(n),
        other => panic!("{m:?} is {other:?}"),
    }
}

const MIN: u64 = 60_000;

#[test]
fn counts_are_deltas_per_period() {
    let (_t, c) = clock();
    let k = connect(&c, "t1", "10.0.0.1:1000");
    for b in [10, 300, 20] {
        publish_in(&k, b);
    }
    publish_out(&k);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    assert_eq!(count(&s, "t1", NumMessagesSent), Some(3));
    assert_eq!(count(&s, "t1", NumMessagesReceived), Some(1));
    assert_eq!(count(&s, "t1", MessageByteSize), Some(300));
    assert_eq!(count(&s, "t1", NumConnectionAttempts), Some(1));
    assert_eq!(count(&s, "t1", NumDisconnects), Some(0));
    assert_eq!(count(&s, "t1", NumAuthorizationFailures), Some(0));
    assert_eq!(count(&s, "t1", DisconnectDuration), Some(0));

    publish_in(&k, 7);
    let s = c.close_period(Timestamp::from_millis(10 * MIN));
    assert_eq!(count(&s, "t1", NumMessagesSent), Some(1));
    assert_eq!(count(&s, "t1", NumMessagesReceived), Some(0));
    assert_eq!(
        count(&s, "t1", MessageByteSize),
        Some(7),
        "max is per period"
    );
    assert_eq!(count(&s, "t1", NumConnectionAttempts), Some(0));

    let s = c.close_period(Timestamp::from_millis(15 * MIN));
    assert_eq!(count(&s, "t1", NumMessagesSent), Some(0));
    assert_eq!(
        count(&s, "t1", MessageByteSize),
        None,
        "no message, no datapoint"
    );
    assert_eq!(s.start, Timestamp::from_millis(10 * MIN));
}

#[test]
fn a_connection_that_ends_mid_period_still_counts() {
    let (t, c) = clock();
    let k = connect(&c, "t1", "10.0.0.1:1000");
    publish_in(&k, 5);
    publish_in(&k, 5);
    t.store(MIN, Ordering::Relaxed);
    c.disconnected("t1", peer("10.0.0.1:1000"), true);
    drop(k);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    assert_eq!(count(&s, "t1", NumMessagesSent), Some(2));
    assert_eq!(count(&s, "t1", NumDisconnects), Some(1));
    assert_eq!(count(&s, "t1", MessageByteSize), Some(5));
    assert_eq!(count(&s, "t1", DisconnectDuration), Some(4));
    assert_eq!(
        c.disconnected_since("t1"),
        Some(Timestamp::from_millis(MIN))
    );
}

#[test]
fn a_connection_dropped_without_an_event_is_read_once_more() {
    let (_t, c) = clock();
    let k = connect(&c, "t1", "10.0.0.1:1000");
    publish_in(&k, 5);
    drop(k);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    assert_eq!(count(&s, "t1", NumMessagesSent), Some(1));
    let s = c.close_period(Timestamp::from_millis(7 * MIN));
    assert_eq!(count(&s, "t1", NumMessagesSent), None, "no longer active");
    assert_eq!(count(&s, "t1", DisconnectDuration), Some(2));
}

#[test]
fn disconnect_duration_grows_then_stops_on_reconnect() {
    let (t, c) = clock();
    let _ = connect(&c, "t1", "10.0.0.1:1000");
    t.store(2 * MIN, Ordering::Relaxed);
    c.disconnected("t1", peer("10.0.0.1:1000"), false);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    assert_eq!(count(&s, "t1", DisconnectDuration), Some(3));
    let s = c.close_period(Timestamp::from_millis(10 * MIN));
    assert_eq!(count(&s, "t1", DisconnectDuration), Some(8));
    assert_eq!(
        count(&s, "t1", NumMessagesSent),
        None,
        "idle: only the duration"
    );
    let _k = connect(&c, "t1", "10.0.0.2:1000");
    let s = c.close_period(Timestamp::from_millis(15 * MIN));
    assert_eq!(count(&s, "t1", DisconnectDuration), Some(0));
    assert_eq!(c.disconnected_since("t1"), None);
    // A thing that never connected has none.
    c.connect_refused(peer("10.0.0.3:1"), Some("t2"), 0x87);
    let s = c.close_period(Timestamp::from_millis(20 * MIN));
    assert_eq!(count(&s, "t2", DisconnectDuration), None);
}

#[test]
fn takeover_keeps_both_connections_apart() {
    let (_t, c) = clock();
    let old = connect(&c, "t1", "10.0.0.1:1000");
    publish_in(&old, 1);
    let new = connect(&c, "t1", "10.0.0.2:2000");
    c.session_taken_over("t1", peer("10.0.0.1:1000"), peer("10.0.0.2:2000"));
    publish_in(&new, 1);
    publish_in(&old, 1);
    c.disconnected("t1", peer("10.0.0.1:1000"), false);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    assert_eq!(count(&s, "t1", NumMessagesSent), Some(3));
    assert_eq!(count(&s, "t1", NumConnectionAttempts), Some(2));
    assert_eq!(
        count(&s, "t1", DisconnectDuration),
        Some(0),
        "still connected"
    );
    assert_eq!(s.broker.takeovers, 1);
    publish_in(&new, 1);
    let s = c.close_period(Timestamp::from_millis(10 * MIN));
    assert_eq!(count(&s, "t1", NumMessagesSent), Some(1));
}

#[test]
fn source_ips_per_period() {
    let (_t, c) = clock();
    let _a = connect(&c, "t1", "10.0.0.2:1");
    c.disconnected("t1", peer("10.0.0.2:1"), true);
    let _b = connect(&c, "t1", "10.0.0.1:2");
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    assert_eq!(
        s.measurement("t1", SourceIpAddress, None),
        Some(Measurement::Ips(vec![ip("10.0.0.1"), ip("10.0.0.2")]))
    );
    // Still connected: the live address only.
    let s = c.close_period(Timestamp::from_millis(10 * MIN));
    assert_eq!(
        s.measurement("t1", SourceIpAddress, None),
        Some(Measurement::Ips(vec![ip("10.0.0.1")]))
    );
    c.disconnected("t1", peer("10.0.0.1:2"), true);
    let s = c.close_period(Timestamp::from_millis(15 * MIN));
    assert_eq!(
        s.measurement("t1", SourceIpAddress, None),
        Some(Measurement::Ips(vec![ip("10.0.0.1")])),
        "connected for part of the period"
    );
    let s = c.close_period(Timestamp::from_millis(20 * MIN));
    assert_eq!(s.measurement("t1", SourceIpAddress, None), None);
}

#[test]
fn authorization_failures_and_refusals() {
    let (_t, c) = clock();
    let _k = connect(&c, "t1", "10.0.0.1:1");
    c.authorization_failure(
        "t1",
        peer("10.0.0.1:1"),
        "iot:Publish",
        "arn:aws:iot:r:1:topic/a",
    );
    c.authorization_failure(
        "t1",
        peer("10.0.0.1:1"),
        "iot:Subscribe",
        "arn:aws:iot:r:1:topicfilter/a/#",
    );
    c.connect_refused(peer("10.0.0.9:1"), Some("t1"), 0x87);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    assert_eq!(count(&s, "t1", NumAuthorizationFailures), Some(2));
    assert_eq!(count(&s, "t1", NumConnectionAttempts), Some(2));
    let s = c.close_period(Timestamp::from_millis(10 * MIN));
    assert_eq!(count(&s, "t1", NumAuthorizationFailures), Some(0));
}

#[test]
fn per_ip_and_broker_aggregates() {
    let (_t, c) = clock();
    let a = peer("192.0.2.1:1");
    let b = peer("192.0.2.2:1");
    for _ in 0..3 {
        c.connection_accepted(a);
        c.tls_handshake_failed(a, "unknown_ca");
    }
    c.connection_accepted(b);
    c.connect_refused(b, None, 0x87);
    c.connection_accepted(b);
    let _k = connect(&c, "t1", "192.0.2.2:2");
    c.authorization_failure(
        "t1",
        peer("192.0.2.2:2"),
        "iot:Publish",
        "arn:aws:iot:r:1:topic/x",
    );
    c.protocol_violation(a, None, 0x81);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    let pa = s.per_ip[&a.ip()];
    assert_eq!(
        (
            pa.connections,
            pa.tls_handshake_failures,
            pa.protocol_violations
        ),
        (3, 3, 1)
    );
    let pb = s.per_ip[&b.ip()];
    assert_eq!(
        (
            pb.connections,
            pb.connect_refusals,
            pb.connects,
            pb.authorization_failures
        ),
        (2, 1, 1, 1)
    );
    let t = s.broker.totals;
    assert_eq!(
        (t.connections, t.tls_handshake_failures, t.connect_refusals),
        (5, 3, 1)
    );
    assert_eq!(t.authorization_failures, 1);
    // Per period.
    let s = c.close_period(Timestamp::from_millis(10 * MIN));
    assert!(s.per_ip.is_empty());
    assert_eq!(s.broker, BrokerCounts::default());
}

#[test]
fn per_ip_map_is_bounded() {
    let c = Collector::new(CollectorConfig {
        max_tracked_ips: 2,
        ..CollectorConfig::default()
    });
    for i in 1..=4 {
        c.connection_accepted(peer(&format!("198.51.100.{i}:1")));
    }
    let s = c.close_period(Timestamp::from_millis(MIN));
    assert_eq!(s.per_ip.len(), 2);
    assert_eq!(s.broker.untracked_ip_events, 2);
    assert_eq!(s.broker.totals.connections, 4);
}

#[test]
fn idle_things_are_forgotten() {
    let (t, c) = clock();
    c.connect_refused(peer("10.0.0.1:1"), Some("refused"), 0x87);
    let _live = connect(&c, "live", "10.0.0.2:1");
    let _ = connect(&c, "gone", "10.0.0.3:1");
    c.disconnected("gone", peer("10.0.0.3:1"), true);
    assert_eq!(c.tracked(), 3);
    c.close_period(Timestamp::from_millis(5 * MIN));
    c.close_period(Timestamp::from_millis(10 * MIN));
    assert_eq!(c.tracked(), 3);
    // Two periods with nothing: the refused thing goes; the disconnected
    // one stays (its disconnect duration still matters); the live one stays.
    c.close_period(Timestamp::from_millis(15 * MIN));
    assert_eq!(c.tracked(), 2);
    let two_days = 2 * 24 * 60 * MIN;
    t.store(two_days, Ordering::Relaxed);
    let s = c.close_period(Timestamp::from_millis(two_days));
    assert_eq!(count(&s, "gone", DisconnectDuration), Some(two_days / MIN));
    assert_eq!(c.tracked(), 1, "disconnect now two days old");
    assert!(c.disconnected_since("gone").is_none());
}

fn dims(c: &Collector) {
    c.set_dimensions(vec![TopicDimension {
        name: "auth".into(),
        filters: vec!["device/+/auth".into()],
    }]);
}

/// The broker keeps what `connected` returns and bumps it; it must be the
/// connection's own counters, handed out even before any dimension exists
/// (one may be created while the device stays connected).
#[test]
fn connected_hands_the_broker_the_connections_topic_counters() {
    let (_t, c) = clock();
    let k = Arc::new(ConnCounters::default());
    assert!(c
        .connected("t0", peer("10.0.0.1:1"), Protocol::V5, &k)
        .is_some());
    dims(&c);
    let handed = c
        .connected("t1", peer("10.0.0.2:1"), Protocol::V5, &k)
        .expect("a dimension exists");
    let held = c
        .topic_counters("t1", peer("10.0.0.2:1"))
        .expect("kept by the collector");
    assert!(std::ptr::addr_eq(Arc::as_ptr(&handed), Arc::as_ptr(&held)));
    publish_in(&k, 7);
    handed.publish_in("device/1/auth", 7);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    let m = s.measurement(
        "t1",
        NumMessagesSent,
        Some(("auth", DimensionValueOperator::In)),
    );
    assert_eq!(m, Some(Measurement::Count(1)));
}

#[test]
fn topic_filter_dimensions() {
    use DimensionValueOperator::{In, NotIn};
    let (_t, c) = clock();
    let k0 = connect(&c, "old", "10.0.0.1:1");
    let tc0 = c
        .topic_counters("old", peer("10.0.0.1:1"))
        .expect("every connection has topic counters");
    dims(&c);
    let k = connect(&c, "t1", "10.0.0.2:1");
    let tc = c
        .topic_counters("t1", peer("10.0.0.2:1"))
        .expect("a dimension exists");
    for (topic, bytes) in [
        ("device/1/auth", 100),
        ("device/1/data", 20),
        ("device/1/data", 30),
    ] {
        publish_in(&k, bytes);
        tc.publish_in(topic, bytes as usize);
    }
    publish_out(&k);
    tc.publish_out("device/1/auth");
    c.authorization_failure(
        "t1",
        peer("10.0.0.2:1"),
        "iot:Publish",
        "arn:aws:iot:r:1:topic/device/2/auth",
    );
    c.authorization_failure(
        "t1",
        peer("10.0.0.2:1"),
        "iot:Connect",
        "arn:aws:iot:r:1:client/t1",
    );
    publish_in(&k0, 1);
    tc0.publish_in("device/1/auth", 1);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    let m = |t: &str, metric, op| s.measurement(t, metric, Some(("auth", op)));
    assert_eq!(m("t1", NumMessagesSent, In), Some(Measurement::Count(1)));
    assert_eq!(m("t1", NumMessagesSent, NotIn), Some(Measurement::Count(2)));
    assert_eq!(m("t1", MessageByteSize, In), Some(Measurement::Count(100)));
    assert_eq!(
        m("t1", MessageByteSize, NotIn),
        Some(Measurement::Count(30))
    );
    assert_eq!(
        m("t1", NumMessagesReceived, In),
        Some(Measurement::Count(1))
    );
    assert_eq!(
        m("t1", NumMessagesReceived, NotIn),
        Some(Measurement::Count(0))
    );
    assert_eq!(
        m("t1", NumAuthorizationFailures, In),
        Some(Measurement::Count(1))
    );
    assert_eq!(
        m("t1", NumAuthorizationFailures, NotIn),
        Some(Measurement::Count(1))
    );
    assert_eq!(count(&s, "t1", NumMessagesSent), Some(3));
    // The old connection counted this period without the dimension: no
    // datapoint rather than a partial one.
    assert_eq!(m("old", NumMessagesSent, In), None);
    assert_eq!(count(&s, "old", NumMessagesSent), Some(1));
    // Every datapoint is listed once.
    let n = s
        .datapoints()
        .filter(|d| &**d.thing == "t1" && d.dimension.is_some())
        .count();
    assert_eq!(n, 8);

    // Next period: deltas, and the old connection now counts by the
    // dimension without reconnecting.
    tc.publish_in("device/1/auth", 5);
    publish_in(&k, 5);
    tc0.publish_in("device/1/auth", 1);
    tc0.publish_in("device/9/data", 1);
    publish_in(&k0, 1);
    publish_in(&k0, 1);
    let s = c.close_period(Timestamp::from_millis(10 * MIN));
    let m = |t: &str, metric, op| s.measurement(t, metric, Some(("auth", op)));
    assert_eq!(m("t1", NumMessagesSent, In), Some(Measurement::Count(1)));
    assert_eq!(m("t1", NumMessagesSent, NotIn), Some(Measurement::Count(0)));
    assert_eq!(m("t1", MessageByteSize, NotIn), None);
    assert_eq!(m("old", NumMessagesSent, In), Some(Measurement::Count(1)));
    assert_eq!(
        m("old", NumMessagesSent, NotIn),
        Some(Measurement::Count(1))
    );
}

/// A dimension added elsewhere does not cost an unchanged one its
/// datapoint; the new one starts at the next period.
#[test]
fn an_unchanged_dimension_keeps_counting_when_another_is_added() {
    use DimensionValueOperator::In;
    let (_t, c) = clock();
    dims(&c);
    let k = connect(&c, "t1", "10.0.0.2:1");
    let tc = c.topic_counters("t1", peer("10.0.0.2:1")).expect("live");
    publish_in(&k, 1);
    tc.publish_in("device/1/auth", 1);
    c.set_dimensions(vec![
        TopicDimension {
            name: "auth".into(),
            filters: vec!["device/+/auth".into()],
        },
        TopicDimension {
            name: "data".into(),
            filters: vec!["device/+/data".into()],
        },
    ]);
    let s = c.close_period(Timestamp::from_millis(5 * MIN));
    let m = |s: &PeriodSnapshot, d| s.measurement("t1", NumMessagesSent, Some((d, In)));
    assert_eq!(m(&s, "auth"), Some(Measurement::Count(1)));
    assert_eq!(m(&s, "data"), None);
    publish_in(&k, 1);
    tc.publish_in("device/1/data", 1);
    let s = c.close_period(Timestamp::from_millis(10 * MIN));
    assert_eq!(m(&s, "auth"), Some(Measurement::Count(0)));
    assert_eq!(m(&s, "data"), Some(Measurement::Count(1)));
}

#[test]
fn datapoints_cover_every_metric() {
    let (_t, c) = clock();
    let k = connect(&c, "t1", "10.0.0.1:1");
    publish_in(&k, 3);
    let s = c.close_period(Timestamp::from_millis(MIN));
    let mut names: Vec<_> = s.datapoints().map(|d| d.metric.name()).collect();
    names.sort_unstable();
    let mut all: Vec<_> = CloudMetric::ALL.iter().map(|m| m.name()).collect();
    all.sort_unstable();
    assert_eq!(names, all);
    for m in CloudMetric::ALL {
        assert_eq!(CloudMetric::from_name(m.name()), Some(m));
    }
}

/// Four threads publish on their own connections (and reconnect now and
/// then) while periods close: the periods' sums equal what was sent.
#[test]
fn no_count_lost_or_doubled_under_concurrency() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 200_000;
    let c = Arc::new(Collector::new(CollectorConfig::default()));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|i| {
            let c = c.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let id = format!("t{i}");
                let p = peer(&format!("10.0.0.{}:1", i + 1));
                let mut k = connect(&c, &id, &p.to_string());
                for n in 1..=PER_THREAD {
                    publish_in(&k, n % 1000);
                    publish_out(&k);
                    if n % 50_000 == 0 {
                        c.disconnected(&id, p, true);
                        k = connect(&c, &id, &p.to_string());
                    }
                }
                c.disconnected(&id, p, true);
                done.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let mut sent = [0u64; THREADS as usize];
    let mut received = [0u64; THREADS as usize];
    let mut periods = 0u64;
    let mut add = |s: &PeriodSnapshot| {
        for i in 0..THREADS as usize {
            let id = format!("t{i}");
            sent[i] += count(s, &id, NumMessagesSent).unwrap_or(0);
            received[i] += count(s, &id, NumMessagesReceived).unwrap_or(0);
        }
    };
    while done.load(Ordering::Relaxed) < THREADS {
        periods += 1;
        add(&c.close_period(Timestamp::from_millis(periods * MIN)));
        std::thread::sleep(Duration::from_micros(200));
    }
    for w in workers {
        w.join().expect("worker");
    }
    add(&c.close_period(Timestamp::from_millis((periods + 1) * MIN)));
    assert!(periods > 1, "periods closed while counting");
    assert_eq!(sent, [PER_THREAD; THREADS as usize]);
    assert_eq!(received, [PER_THREAD; THREADS as usize]);
}
