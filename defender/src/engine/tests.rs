//! The engine end to end on a real `defender.redb`, with the collector fed
//! the way the broker feeds it and periods closed by hand.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::json;
use wardmq_broker::codec::Protocol;
use wardmq_broker::observer::ConnCounters;

use super::*;
use crate::detect::model::{Behavior, ViolationEventType};
use crate::store::DefenderDb;

#[derive(Default)]
pub(super) struct Recorded(pub(super) Mutex<Vec<(String, ViolationEvent)>>);

impl AlertSender for Recorded {
    fn send(&self, target_arn: &str, event: &ViolationEvent) {
        lock(&self.0).push((target_arn.to_owned(), event.clone()));
    }
}

pub(super) const ARN: &str = "arn:aws:sns:us-east-1:123456789012:ops";

pub(super) struct Fixture {
    dir: tempfile::TempDir,
    pub(super) defender: Defender,
    pub(super) alerts: Arc<Recorded>,
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("addr")
}

fn behavior(v: serde_json::Value) -> Behavior {
    serde_json::from_value(v).expect("behavior")
}

fn profile(behaviors: Vec<Behavior>) -> DetectConfig {
    DetectConfig {
        profiles: vec![ProfileConfig {
            name: "P".into(),
            behaviors,
            targets: vec![Target::AllThings],
            alert_target_arn: Some(ARN.into()),
            retain: Vec::new(),
        }],
        ..DetectConfig::default()
    }
}

fn start(dir: tempfile::TempDir, config: &DetectConfig) -> Fixture {
    start_with(dir, DefenderSettings::default(), config)
}

pub(super) fn start_with(
    dir: tempfile::TempDir,
    settings: DefenderSettings,
    config: &DetectConfig,
) -> Fixture {
    let alerts = Arc::new(Recorded::default());
    let db = DefenderDb::open(dir.path()).expect("db");
    let defender = Defender::start(settings, db, None, alerts.clone()).expect("start");
    defender.set_config(config);
    Fixture {
        dir,
        defender,
        alerts,
    }
}

impl Fixture {
    fn new(config: &DetectConfig) -> Fixture {
        start(tempfile::tempdir().expect("tmp"), config)
    }

    fn connect(&self, thing: &str) -> Arc<ConnCounters> {
        let counters = Arc::new(ConnCounters::default());
        self.defender
            .observer()
            .connected(thing, peer(), Protocol::V5, &counters);
        counters
    }

    fn auth_failures(&self, thing: &str, n: u64) {
        for _ in 0..n {
            self.defender.observer().authorization_failure(
                thing,
                peer(),
                "iot:Publish",
                "arn:aws:iot:us-east-1:123456789012:topic/x",
            );
        }
    }

    pub(super) fn active(&self) -> Vec<ActiveViolation> {
        self.defender
            .list_active_violations(&ViolationFilter::default(), None, None)
            .expect("list")
            .items
    }

    pub(super) fn events(&self) -> Vec<ViolationEvent> {
        self.defender
            .list_violation_events(
                Timestamp::from_millis(0),
                Timestamp::from_millis(u64::MAX / 2),
                &ViolationFilter::default(),
                None,
                None,
            )
            .expect("events")
            .items
    }

    fn event_types(&self) -> Vec<ViolationEventType> {
        self.events()
            .iter()
            .map(|e| e.violation_event_type)
            .collect()
    }
}

fn authz_rule(op: &str, count: u64, alarm: u32, clear: u32) -> Behavior {
    behavior(json!({
        "name": "authz",
        "metric": "aws:num-authorization-failures",
        "criteria": {"comparisonOperator": op, "value": {"count": count},
                     "durationSeconds": 300,
                     "consecutiveDatapointsToAlarm": alarm,
                     "consecutiveDatapointsToClear": clear}
    }))
}

/// Spec §13 case 1, through the collector and the worker.
#[test]
fn case_1_consecutive_windows_raise_and_clear() {
    let f = Fixture::new(&profile(vec![authz_rule("less-than", 5, 2, 2)]));
    let _conn = f.connect("t1");
    let mut types_after = Vec::new();
    for n in [3, 6, 7, 2, 9, 1, 0] {
        f.auth_failures("t1", n);
        f.defender.close_period_now();
        types_after.push(f.event_types().len());
    }
    assert_eq!(types_after, [0, 0, 1, 1, 1, 1, 2]);
    let events = f.events();
    assert_eq!(events[0].violation_event_type, ViolationEventType::InAlarm);
    assert_eq!(
        events[0].metric_value.as_ref().and_then(|v| v.count),
        Some(7)
    );
    assert_eq!(
        events[1].violation_event_type,
        ViolationEventType::AlarmCleared
    );
    assert_eq!(events[0].violation_id, events[1].violation_id);
    assert!(f.active().is_empty());
    let sent = lock(&f.alerts.0);
    assert_eq!(sent.len(), 2, "both events alerted");
    assert!(sent.iter().all(|(arn, _)| arn == ARN));
}

#[test]
fn suppressed_behaviours_record_but_do_not_alert() {
    let mut b = authz_rule("less-than", 1, 1, 1);
    b.suppress_alerts = Some(true);
    let f = Fixture::new(&profile(vec![b]));
    let _conn = f.connect("t1");
    f.auth_failures("t1", 3);
    f.defender.close_period_now();
    assert_eq!(f.active().len(), 1);
    assert!(lock(&f.alerts.0).is_empty());
}

/// An alarm raised before a restart is still active after it, and clears.
#[test]
fn alarms_survive_a_restart_and_clear_normally() {
    let config = profile(vec![authz_rule("less-than", 1, 1, 1)]);
    let f = Fixture::new(&config);
    let conn = f.connect("t1");
    f.auth_failures("t1", 2);
    f.defender.close_period_now();
    let before = f.active();
    assert_eq!(before.len(), 1);
    f.defender.shutdown();
    drop(conn);
    let Fixture { dir, defender, .. } = f;
    drop(defender);

    let f = start(dir, &config);
    let after = f.active();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].violation_id, before[0].violation_id);
    let _conn = f.connect("t1");
    f.defender.close_period_now();
    assert!(f.active().is_empty(), "a compliant period clears it");
    let types = f.event_types();
    assert_eq!(
        types,
        [
            ViolationEventType::InAlarm,
            ViolationEventType::AlarmCleared
        ]
    );
}

#[test]
fn deleting_a_behaviour_invalidates_its_alarm() {
    let f = Fixture::new(&profile(vec![authz_rule("less-than", 1, 1, 1)]));
    let _conn = f.connect("t1");
    f.auth_failures("t1", 2);
    f.defender.close_period_now();
    assert_eq!(f.active().len(), 1);
    f.defender.set_config(&profile(Vec::new()));
    f.defender.close_period_now();
    assert!(f.active().is_empty());
    assert_eq!(
        f.event_types().last(),
        Some(&ViolationEventType::AlarmInvalidated)
    );
}

/// Spec §13 case 15: p90 over ten devices sending 1..=10 messages.
#[test]
fn case_15_statistical_threshold_flags_the_top_device() {
    let rule = behavior(json!({
        "name": "p90", "metric": "aws:num-messages-sent",
        "criteria": {"comparisonOperator": "less-than-equals",
                     "statisticalThreshold": {"statistic": "p90"}, "durationSeconds": 300}
    }));
    let f = Fixture::new(&profile(vec![rule]));
    let conns: Vec<_> = (1..=10u64)
        .map(|i| {
            let c = f.connect(&format!("d{i}"));
            c.publishes_in
                .fetch_add(i, std::sync::atomic::Ordering::Relaxed);
            c
        })
        .collect();
    f.defender.close_period_now();
    let active = f.active();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].thing_name, "d10");
    drop(conns);
}

/// `durationSeconds: 600` spans two periods: 3 + 3 breaks "fewer than 5".
#[test]
fn longer_durations_sum_several_periods() {
    let mut b = authz_rule("less-than", 5, 1, 1);
    b.criteria.as_mut().expect("criteria").duration_seconds = Some(600);
    let f = Fixture::new(&profile(vec![b]));
    let _conn = f.connect("t1");
    f.auth_failures("t1", 3);
    f.defender.close_period_now();
    assert!(f.active().is_empty());
    f.auth_failures("t1", 3);
    f.defender.close_period_now();
    assert_eq!(
        f.active()[0]
            .last_violation_value
            .as_ref()
            .and_then(|v| v.count),
        Some(6)
    );
}

pub(super) fn report(body: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&body).expect("json")
}

/// Spec §13 case 9: a listening port outside the set violates; an empty
/// list clears. Reports are judged on receipt, not at the period's end.
#[test]
fn case_9_reports_are_judged_on_receipt() {
    let rule = behavior(json!({
        "name": "ports", "metric": "aws:listening-tcp-ports",
        "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [8888]}}
    }));
    let mut config = profile(vec![rule]);
    config.profiles[0].retain =
        vec![serde_json::from_value(json!({"metric": "aws:all-bytes-out"})).expect("retain")];
    // Reports of one thing in quick succession: a short throttle.
    let settings = DefenderSettings {
        report_min_interval: std::time::Duration::from_secs(1),
        ..DefenderSettings::default()
    };
    let f = start_with(tempfile::tempdir().expect("tmp"), settings, &config);
    let topic = "$aws/things/T1/defender/metrics/json";
    let replies = f
        .defender
        .on_publish(
            topic,
            &report(json!({"header": {"report_id": 1, "version": "1.0"},
                "metrics": {"listening_tcp_ports": {"ports": [{"port": 8888}, {"port": 443}]},
                            "network_stats": {"bytes_out": 77}}})),
        )
        .expect("consumed");
    assert_eq!(replies[0].0, format!("{topic}/accepted"));
    // The worker judges it; wait for it with a bounded loop.
    let mut active = Vec::new();
    for _ in 0..200 {
        active = f.active();
        if !active.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(active.len(), 1);
    assert_eq!(
        active[0]
            .last_violation_value
            .as_ref()
            .and_then(|v| v.ports.clone()),
        Some(vec![8888, 443])
    );
    // The datapoints are stored just after the alarm is committed.
    let mut values = Vec::new();
    for _ in 0..200 {
        values = f
            .defender
            .list_metric_values(
                "T1",
                "aws:all-bytes-out",
                None,
                Timestamp::from_millis(0),
                now(),
                None,
                None,
            )
            .expect("values")
            .items;
        if !values.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(values.first().and_then(|v| v.value.count), Some(77));

    std::thread::sleep(std::time::Duration::from_millis(1100));
    f.defender
        .on_publish(
            topic,
            &report(json!({"header": {"report_id": 2, "version": "1.0"},
                "metrics": {"listening_tcp_ports": {"ports": []}}})),
        )
        .expect("consumed");
    for _ in 0..200 {
        if f.active().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(f.active().is_empty(), "an empty list conforms and clears");
}

#[test]
fn other_topics_are_not_consumed_and_bad_reports_are_rejected() {
    let f = Fixture::new(&DetectConfig::default());
    assert!(f.defender.on_publish("a/b", b"x").is_none());
    assert!(f
        .defender
        .on_publish("$aws/things/T1/shadow/update", b"{}")
        .is_none());
    let replies = f
        .defender
        .on_publish("$aws/things/T1/defender/metrics/json", b"{not json")
        .expect("consumed");
    assert_eq!(
        replies[0].0,
        "$aws/things/T1/defender/metrics/json/rejected"
    );
    let body: serde_json::Value = serde_json::from_slice(&replies[0].1).expect("json");
    assert_eq!(body["statusDetails"]["ErrorCode"], "InvalidPayload");
}

/// Our broker-level profile: bad handshakes from one address raise an
/// alarm with no thing behind them; a quiet period clears it.
#[test]
fn broker_profile_flags_a_handshake_flood_from_one_address() {
    let mut settings = DefenderSettings::default();
    settings.broker_profile.per_ip.tls_failures = Some(2);
    settings.broker_profile.alert_target_arn = Some(ARN.into());
    let f = start_with(
        tempfile::tempdir().expect("tmp"),
        settings,
        &DetectConfig::default(),
    );
    let attacker: SocketAddr = "10.0.0.9:5000".parse().expect("addr");
    for _ in 0..3 {
        f.defender
            .observer()
            .tls_handshake_failed(attacker, "unknown CA");
    }
    f.defender.close_period_now();
    let active = f.active();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].thing_name, "ip:10.0.0.9");
    assert_eq!(active[0].security_profile_name, BROKER_PROFILE);
    assert_eq!(active[0].behavior.name, "tls-failures-per-ip");
    f.defender.close_period_now();
    assert!(f.active().is_empty(), "a quiet period clears it");
    assert_eq!(lock(&f.alerts.0).len(), 2);
}
