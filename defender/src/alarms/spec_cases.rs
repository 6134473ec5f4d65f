//! The rules and alarm test cases of spec §13, end to end through
//! compile → judge → alarm book. Named after the case numbers.

use std::sync::Arc;

use serde_json::json;

use super::{AlarmBook, AlarmConfig, AlarmKey, ViolationIdGen};
use crate::detect::evaluate::{CompiledBehavior, Measurement};
use crate::detect::model::{
    Behavior, MetricValue, Timestamp, VerificationState, ViolationEvent, ViolationEventType,
};
use crate::detect::{validate_behaviors, MetricCatalogue};

use ViolationEventType::{AlarmCleared, AlarmInvalidated, InAlarm};

struct Rig {
    book: AlarmBook,
    behavior: Arc<Behavior>,
    compiled: CompiledBehavior,
    key: AlarmKey,
    minute: u64,
}

impl Rig {
    fn new(behavior: serde_json::Value) -> Self {
        let behavior: Behavior = serde_json::from_value(behavior).expect("test behaviour parses");
        let v = validate_behaviors(std::slice::from_ref(&behavior), &MetricCatalogue::aws());
        assert!(v.valid, "{:?}", v.validation_errors);
        let compiled = CompiledBehavior::compile(&behavior).expect("compiles");
        let key = AlarmKey::new(
            &Arc::from("T1"),
            &Arc::from("sp"),
            &Arc::from(behavior.name.as_str()),
        );
        Self {
            book: AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(1)),
            behavior: Arc::new(behavior),
            compiled,
            key,
            minute: 0,
        }
    }

    /// One datapoint, five minutes after the previous one.
    fn feed(&mut self, m: Measurement) -> Option<ViolationEvent> {
        self.minute += 5;
        let outcome = self.compiled.evaluate(Some(&m), None);
        self.book.observe(
            &self.key,
            &self.behavior,
            outcome,
            Timestamp::from_secs(self.minute * 60),
        )
    }

    fn counts(&mut self, values: &[u64]) -> Vec<Option<ViolationEventType>> {
        values
            .iter()
            .map(|v| {
                self.feed(Measurement::Count(*v))
                    .map(|e| e.violation_event_type)
            })
            .collect()
    }
}

#[test]
fn case_01_authz_failures_consecutive_2() {
    let mut r = Rig::new(
        json!({"name": "authz", "metric": "aws:num-authorization-failures",
        "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300,
                     "consecutiveDatapointsToAlarm": 2, "consecutiveDatapointsToClear": 2}}),
    );
    assert_eq!(r.feed(Measurement::Count(3)), None);
    assert_eq!(r.feed(Measurement::Count(6)), None);
    let e = r
        .feed(Measurement::Count(7))
        .expect("in-alarm on the second violation in a row");
    assert_eq!(e.violation_event_type, InAlarm);
    assert_eq!(e.metric_value, Some(MetricValue::count(7)));
    let a = r.book.active().next().expect("active");
    assert_eq!(a.thing_name, "T1");
    assert_eq!(a.last_violation_value, Some(MetricValue::count(7)));

    assert_eq!(r.feed(Measurement::Count(2)), None);
    assert_eq!(
        r.feed(Measurement::Count(9)),
        None,
        "resets the clear counter"
    );
    let a = r.book.active().next().expect("still active");
    assert_eq!(a.last_violation_value, Some(MetricValue::count(9)));
    assert_eq!(r.feed(Measurement::Count(1)), None);
    let c = r
        .feed(Measurement::Count(0))
        .expect("cleared after two compliant");
    assert_eq!(c.violation_event_type, AlarmCleared);
    assert_eq!(c.violation_id, e.violation_id);
    assert_eq!(r.book.active().count(), 0);
}

#[test]
fn case_03_inverted_rule_alarms_on_zero() {
    let mut r = Rig::new(
        json!({"name": "inverted", "metric": "aws:num-authorization-failures",
        "criteria": {"comparisonOperator": "greater-than", "value": {"count": 5}, "durationSeconds": 300,
                     "consecutiveDatapointsToAlarm": 2}}),
    );
    assert_eq!(r.counts(&[0, 0]), vec![None, Some(InAlarm)]);
}

#[test]
fn case_04_defaults_are_one() {
    let mut r = Rig::new(
        json!({"name": "d", "metric": "aws:num-authorization-failures",
        "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300}}),
    );
    assert_eq!(r.counts(&[9, 1]), vec![Some(InAlarm), Some(AlarmCleared)]);
}

#[test]
fn case_08_source_ip_alarm() {
    let mut r = Rig::new(json!({"name": "ip", "metric": "aws:source-ip-address",
        "criteria": {"comparisonOperator": "not-in-cidr-set", "value": {"cidrs": ["12.8.0.0/16", "15.102.16.0/24"]}}}));
    let ip = |s: &str| Measurement::Ips(vec![s.parse().expect("test ip")]);
    let e = r.feed(ip("12.8.1.2")).expect("in-alarm");
    assert_eq!(e.metric_value, Some(MetricValue::cidrs(["12.8.1.2"])));
    let c = r.feed(ip("8.8.8.8")).expect("compliant clears");
    assert_eq!(c.violation_event_type, AlarmCleared);
}

#[test]
fn case_09_empty_port_list_clears() {
    let mut r = Rig::new(json!({"name": "ports", "metric": "aws:listening-tcp-ports",
        "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [8888]}}}));
    let e = r
        .feed(Measurement::Ports(vec![8888, 443]))
        .expect("in-alarm");
    assert_eq!(e.metric_value, Some(MetricValue::ports([8888, 443])));
    let c = r.feed(Measurement::Ports(vec![])).expect("cleared");
    assert_eq!(c.violation_event_type, AlarmCleared);
}

#[test]
fn case_10_one_large_message_alarms() {
    let mut r = Rig::new(json!({"name": "size", "metric": "aws:message-byte-size",
        "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": 1024}}}));
    assert_eq!(
        r.counts(&[2000, 1024]),
        vec![Some(InAlarm), Some(AlarmCleared)]
    );
}

#[test]
fn case_12_invalidation_after_two_days() {
    let mut r = Rig::new(json!({"name": "bytes", "metric": "aws:all-bytes-out",
        "criteria": {"comparisonOperator": "less-than", "value": {"count": 100}}}));
    let e = r.feed(Measurement::Count(5000)).expect("in-alarm");
    let last = r.minute * 60 * 1000;
    let two_days = 2 * 24 * 3600 * 1000;
    assert!(r
        .book
        .sweep(Timestamp::from_millis(last + two_days))
        .is_empty());
    let inv = r.book.sweep(Timestamp::from_millis(last + two_days + 1));
    assert_eq!(
        inv.len(),
        1,
        "the counter ViolationsInvalidated would count this one"
    );
    assert_eq!(inv[0].violation_event_type, AlarmInvalidated);
    assert_eq!(inv[0].violation_id, e.violation_id);
    assert_eq!(r.book.active().count(), 0);
}

#[test]
fn case_13_suppressed_alerts() {
    let mut r = Rig::new(
        json!({"name": "quiet", "metric": "aws:num-authorization-failures", "suppressAlerts": true,
        "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300}}),
    );
    let e = r
        .feed(Measurement::Count(9))
        .expect("the violation is still created");
    assert!(e.suppressed(), "sinks must not send it");
    let a = r
        .book
        .active()
        .next()
        .expect("listed with listSuppressedAlerts=true");
    assert_eq!(a.behavior.suppress_alerts, Some(true));
}

#[test]
fn case_14_verification_state() {
    let mut r = Rig::new(
        json!({"name": "v", "metric": "aws:num-authorization-failures",
        "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300}}),
    );
    let e = r.feed(Measurement::Count(9)).expect("in-alarm");
    assert_eq!(e.verification_state, VerificationState::Unknown);
    r.book
        .set_verification_state(
            &e.violation_id,
            VerificationState::FalsePositive,
            Some("lab device".into()),
        )
        .expect("active");
    let a = r.book.active_violation(&e.violation_id).expect("active");
    assert_eq!(a.verification_state, VerificationState::FalsePositive);
    assert!(r
        .book
        .set_verification_state(
            &e.violation_id,
            VerificationState::TruePositive,
            Some("x".repeat(1001))
        )
        .is_err());
    assert!(r
        .book
        .set_verification_state(
            &e.violation_id,
            VerificationState::TruePositive,
            Some("bell\u{7}".into())
        )
        .is_err());
}

#[test]
fn case_16_disconnect_duration() {
    let mut r = Rig::new(json!({"name": "disc", "metric": "aws:disconnect-duration",
        "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": 5}}}));
    // Minutes disconnected as seen at T+1 and T+6, then reconnected.
    assert_eq!(
        r.counts(&[1, 6, 0]),
        vec![None, Some(InAlarm), Some(AlarmCleared)]
    );
}
