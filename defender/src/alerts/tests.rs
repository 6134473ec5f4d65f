//! The SNS message and ARN parsing.

#![allow(clippy::unwrap_used)] // tests: a failed setup step should panic loudly

use serde_json::{json, Value};

use super::*;
use crate::detect::model::{
    Behavior, BehaviorCriteria, ComparisonOperator, ConfidenceLevel,
    MachineLearningDetectionConfig, MetricValue, Timestamp, VerificationState, ViolationEvent,
    ViolationEventAdditionalInfo, ViolationEventType,
};

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
