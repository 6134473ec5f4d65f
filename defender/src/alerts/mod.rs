//! Alert sinks: where a security profile's violation events are sent.
//!
//! A profile names its target the AWS way,
//! `alertTargets.SNS.alertTargetArn = arn:aws:sns:REGION:ACCOUNT:NAME`;
//! [`sink_name`] takes `NAME`, which is one of the `[[defender.alert_sinks]]`
//! of the config. The message is the JSON SNS carries for Device Defender
//! ([`sns_message`]), so consumers written for AWS read it unchanged.
//! [`AlertRouter`] queues it per sink and delivers it from one task per sink:
//! a signed webhook POST (retried), a publish on the broker, or a log line.

mod router;
mod webhook;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use router::{AlertRouter, AlertSinkError, Publish, SendOutcome, SinkStats};
pub use webhook::{signature, SIGNATURE_HEADER};

use crate::detect::model::{
    Behavior, MetricValue, VerificationState, ViolationEvent, ViolationEventAdditionalInfo,
    ViolationEventType,
};

/// The SNS message AWS IoT Device Defender sends for a violation event
/// (spec §7.5). It differs from the API's `ViolationEvent`:
/// `violationEventTime` is epoch **milliseconds** (the API writes seconds),
/// and there is no `verificationStateDescription` or start time.
///
/// `verificationState` is always written: every event has one (UNKNOWN until
/// someone sets it), and AWS's own sample consumer reads it unconditionally
/// on `alarm-invalidated` messages. `metricValue` and
/// `violationEventAdditionalInfo` appear when the event has them.
pub fn sns_message(event: &ViolationEvent) -> Vec<u8> {
    let message = SnsMessage {
        violation_event_time: event.violation_event_time.as_millis(),
        thing_name: &event.thing_name,
        behavior: &event.behavior,
        violation_event_type: event.violation_event_type,
        metric_value: event.metric_value.as_ref(),
        violation_id: &event.violation_id,
        security_profile_name: &event.security_profile_name,
        verification_state: event.verification_state,
        violation_event_additional_info: event.violation_event_additional_info.as_ref(),
    };
    // Only strings, numbers and enums with string names: serialising cannot
    // fail (serde_json fails only on non-string map keys or a failing
    // Serialize impl, and none are reachable from these types).
    serde_json::to_vec(&message).expect("an SNS alert always serialises")
}

/// Field order as in the AWS sample, so a message reads the same side by side.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnsMessage<'a> {
    violation_event_time: u64,
    thing_name: &'a str,
    behavior: &'a Behavior,
    violation_event_type: ViolationEventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_value: Option<&'a MetricValue>,
    violation_id: &'a str,
    security_profile_name: &'a str,
    verification_state: VerificationState,
    #[serde(skip_serializing_if = "Option::is_none")]
    violation_event_additional_info: Option<&'a ViolationEventAdditionalInfo>,
}

/// The sink an alert target ARN names: `arn:aws:sns:REGION:ACCOUNT:NAME` →
/// `NAME`. REGION and ACCOUNT are not checked (wardmq has neither, and
/// profiles copied from AWS carry real ones); anything not shaped like an
/// SNS topic ARN, or with an empty name, is `None`.
pub fn sink_name(alert_target_arn: &str) -> Option<&str> {
    let mut parts = alert_target_arn.split(':');
    let fields: [Option<&str>; 7] = std::array::from_fn(|_| parts.next());
    match fields {
        [Some("arn"), Some("aws"), Some("sns"), Some(_region), Some(_account), Some(name), None]
            if !name.is_empty() =>
        {
            Some(name)
        }
        _ => None,
    }
}
