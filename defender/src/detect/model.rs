//! Security-profile and violation shapes exactly as the AWS IoT API writes
//! them (botocore `iot/2015-05-28`), so the admin API can hand them to boto3
//! and the `aws` CLI unchanged. Optional members stay `Option` so a profile
//! read back is byte-for-byte what the user sent (AWS echoes omitted
//! defaults as absent, not as their default value).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, held as milliseconds since the Unix epoch. On the wire it
/// is epoch **seconds**, possibly fractional, as the AWS JSON protocol writes
/// timestamps (`"violationEventTime": 1600780245.29`). Milliseconds inside
/// so that arithmetic and ordering are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later (a clock
    /// that stepped back must not look like a long silence).
    pub const fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Whole seconds go out as integers (what most AWS responses show);
        // otherwise a float with millisecond precision.
        if self.0 % 1000 == 0 {
            s.serialize_u64(self.0 / 1000)
        } else {
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(d)?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(serde::de::Error::custom(
                "timestamp must be non-negative epoch seconds",
            ));
        }
        // Rounding (not truncation) so that a value we wrote as n/1000 reads
        // back as exactly n milliseconds.
        Ok(Timestamp((secs * 1000.0).round() as u64))
    }
}

/// `SecurityProfile` as DescribeSecurityProfile returns it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityProfile {
    pub security_profile_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_profile_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_profile_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviors: Option<Vec<Behavior>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_targets: Option<BTreeMap<AlertTargetType, AlertTarget>>,
    /// Deprecated by AWS in favour of `additionalMetricsToRetainV2`; kept so
    /// old clients round-trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_metrics_to_retain: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_metrics_to_retain_v2: Option<Vec<MetricToRetain>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_export_config: Option<MetricsExportConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlertTargetType {
    #[serde(rename = "SNS")]
    Sns,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertTarget {
    pub alert_target_arn: String,
    pub role_arn: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsExportConfig {
    pub mqtt_topic: String,
    pub role_arn: String,
}

/// One rule of a profile. Only `name` is required by the model; the rest is
/// checked by validation so that every problem is reported at once rather
/// than as a parse failure on the first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_dimension: Option<MetricDimension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<BehaviorCriteria>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_alerts: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_metric: Option<bool>,
}

impl Behavior {
    /// STATIC, STATISTICAL or MACHINE_LEARNING, as the list filters
    /// (`behaviorCriteriaType`) classify it. ML wins over statistical wins
    /// over static, matching how the criteria are evaluated.
    pub fn criteria_type(&self) -> BehaviorCriteriaType {
        match &self.criteria {
            Some(c) if c.ml_detection_config.is_some() => BehaviorCriteriaType::MachineLearning,
            Some(c) if c.statistical_threshold.is_some() => BehaviorCriteriaType::Statistical,
            _ => BehaviorCriteriaType::Static,
        }
    }

    /// Alerts for this behaviour are recorded but not sent.
    pub fn suppresses_alerts(&self) -> bool {
        self.suppress_alerts == Some(true)
    }

    /// Violating datapoints in a row that raise the alarm (AWS default 1).
    pub fn datapoints_to_alarm(&self) -> u32 {
        self.criteria
            .as_ref()
            .and_then(|c| c.consecutive_datapoints_to_alarm)
            .map_or(1, |n| n.max(1))
    }

    /// Compliant datapoints in a row that clear the alarm (AWS default 1).
    pub fn datapoints_to_clear(&self) -> u32 {
        self.criteria
            .as_ref()
            .and_then(|c| c.consecutive_datapoints_to_clear)
            .map_or(1, |n| n.max(1))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricDimension {
    pub dimension_name: String,
    /// Absent means IN (botocore MetricDimension doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<DimensionValueOperator>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DimensionValueOperator {
    In,
    NotIn,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BehaviorCriteria {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_operator: Option<ComparisonOperator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<MetricValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// u32 rather than u8: an out-of-range value (0, 11, 300) must reach
    /// validation and be reported with the others, not fail the whole parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_datapoints_to_alarm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_datapoints_to_clear: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistical_threshold: Option<StatisticalThreshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_detection_config: Option<MachineLearningDetectionConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComparisonOperator {
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
    InCidrSet,
    NotInCidrSet,
    InPortSet,
    NotInPortSet,
    InSet,
    NotInSet,
}

impl ComparisonOperator {
    pub const ALL: [ComparisonOperator; 10] = [
        Self::LessThan,
        Self::LessThanEquals,
        Self::GreaterThan,
        Self::GreaterThanEquals,
        Self::InCidrSet,
        Self::NotInCidrSet,
        Self::InPortSet,
        Self::NotInPortSet,
        Self::InSet,
        Self::NotInSet,
    ];
    /// The four ordering operators, the only ones for count and number metrics.
    pub const ORDERING: [ComparisonOperator; 4] = [
        Self::LessThan,
        Self::LessThanEquals,
        Self::GreaterThan,
        Self::GreaterThanEquals,
    ];

    /// The AWS spelling, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LessThan => "less-than",
            Self::LessThanEquals => "less-than-equals",
            Self::GreaterThan => "greater-than",
            Self::GreaterThanEquals => "greater-than-equals",
            Self::InCidrSet => "in-cidr-set",
            Self::NotInCidrSet => "not-in-cidr-set",
            Self::InPortSet => "in-port-set",
            Self::NotInPortSet => "not-in-port-set",
            Self::InSet => "in-set",
            Self::NotInSet => "not-in-set",
        }
    }

    pub fn is_ordering(self) -> bool {
        Self::ORDERING.contains(&self)
    }
}

impl fmt::Display for ComparisonOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A threshold in a behaviour, or a measured value in a violation. Exactly
/// one member is meant to be set; which one depends on the metric's type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidrs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strings: Option<Vec<String>>,
}

impl MetricValue {
    pub fn count(n: u64) -> Self {
        Self {
            count: Some(n),
            ..Self::default()
        }
    }
    pub fn number(x: f64) -> Self {
        Self {
            number: Some(x),
            ..Self::default()
        }
    }
    pub fn cidrs<S: Into<String>>(v: impl IntoIterator<Item = S>) -> Self {
        Self {
            cidrs: Some(v.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }
    pub fn ports(v: impl IntoIterator<Item = u16>) -> Self {
        Self {
            ports: Some(v.into_iter().collect()),
            ..Self::default()
        }
    }
    pub fn numbers(v: impl IntoIterator<Item = f64>) -> Self {
        Self {
            numbers: Some(v.into_iter().collect()),
            ..Self::default()
        }
    }
    pub fn strings<S: Into<String>>(v: impl IntoIterator<Item = S>) -> Self {
        Self {
            strings: Some(v.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// The names of the members that are set, in the model's order, for
    /// validation messages.
    pub fn fields_set(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.count.is_some() {
            v.push("count");
        }
        if self.cidrs.is_some() {
            v.push("cidrs");
        }
        if self.ports.is_some() {
            v.push("ports");
        }
        if self.number.is_some() {
            v.push("number");
        }
        if self.numbers.is_some() {
            v.push("numbers");
        }
        if self.strings.is_some() {
            v.push("strings");
        }
        v
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatisticalThreshold {
    /// Kept as text: a bad statistic is a validation error with a message,
    /// not a parse failure (see `detect::percentile::Statistic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineLearningDetectionConfig {
    pub confidence_level: ConfidenceLevel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfidenceLevel {
    Low,
    Medium,
    High,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricToRetain {
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_dimension: Option<MetricDimension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_metric: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BehaviorCriteriaType {
    Static,
    Statistical,
    MachineLearning,
}

/// Custom metric types (CreateCustomMetric `metricType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CustomMetricType {
    StringList,
    IpAddressList,
    NumberList,
    Number,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationEventType {
    #[default]
    InAlarm,
    AlarmCleared,
    AlarmInvalidated,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationState {
    FalsePositive,
    BenignPositive,
    TruePositive,
    #[default]
    Unknown,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationEventAdditionalInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_level: Option<ConfidenceLevel>,
    /// Our extension on ML Detect events (AWS clients ignore unknown
    /// members): the datapoint's anomaly score and the observed and
    /// expected value of the window that scored highest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
}

/// One alarm transition, as ListViolationEvents returns it. Whether it was
/// suppressed is not a member in AWS; it follows from
/// `behavior.suppressAlerts` (see [`ViolationEvent::suppressed`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationEvent {
    pub violation_id: String,
    pub thing_name: String,
    pub security_profile_name: String,
    pub behavior: Behavior,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_value: Option<MetricValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation_event_additional_info: Option<ViolationEventAdditionalInfo>,
    pub violation_event_type: ViolationEventType,
    pub verification_state: VerificationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_state_description: Option<String>,
    pub violation_event_time: Timestamp,
    /// Not in the AWS shape, which has no start time on events; kept because
    /// the brief and sinks want to know how long the violation has lasted.
    /// Serialised under its ActiveViolation name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation_start_time: Option<Timestamp>,
}

impl ViolationEvent {
    /// Recorded and listed, but not sent to alert sinks.
    pub fn suppressed(&self) -> bool {
        self.behavior.suppresses_alerts()
    }
}

/// An alarm currently raised, as ListActiveViolations returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveViolation {
    pub violation_id: String,
    pub thing_name: String,
    pub security_profile_name: String,
    pub behavior: Behavior,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_violation_value: Option<MetricValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation_event_additional_info: Option<ViolationEventAdditionalInfo>,
    pub verification_state: VerificationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_state_description: Option<String>,
    pub last_violation_time: Timestamp,
    pub violation_start_time: Timestamp,
}

/// ValidateSecurityProfileBehaviors' response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    pub valid: bool,
    pub validation_errors: Vec<ValidationError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationError {
    pub error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn behavior_round_trips_with_aws_field_names() {
        // The workshop's SNS sample behaviour, plus every other member.
        let j = json!({
            "name": "MessagesPub",
            "metric": "aws:num-messages-sent",
            "metricDimension": {"dimensionName": "TopicFilterForAuthMessages", "operator": "NOT_IN"},
            "criteria": {
                "comparisonOperator": "less-than",
                "value": {"count": 10},
                "durationSeconds": 300,
                "consecutiveDatapointsToAlarm": 1,
                "consecutiveDatapointsToClear": 1
            },
            "suppressAlerts": false,
            "exportMetric": true
        });
        let b: Behavior = serde_json::from_value(j.clone()).expect("parses");
        assert_eq!(b.criteria_type(), BehaviorCriteriaType::Static);
        assert_eq!(serde_json::to_value(&b).expect("serialises"), j);
    }

    #[test]
    fn statistical_and_ml_criteria_parse() {
        let b: Behavior = serde_json::from_value(json!({
            "name": "p", "metric": "aws:num-messages-sent",
            "criteria": {"comparisonOperator": "less-than-equals",
                         "statisticalThreshold": {"statistic": "p90"}, "durationSeconds": 300}
        }))
        .expect("parses");
        assert_eq!(b.criteria_type(), BehaviorCriteriaType::Statistical);
        let b: Behavior = serde_json::from_value(json!({
            "name": "m", "metric": "aws:num-messages-sent",
            "criteria": {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}
        }))
        .expect("parses");
        assert_eq!(b.criteria_type(), BehaviorCriteriaType::MachineLearning);
    }

    #[test]
    fn every_operator_has_its_aws_spelling() {
        for op in ComparisonOperator::ALL {
            let s = serde_json::to_value(op).expect("serialises");
            assert_eq!(s, json!(op.as_str()));
        }
    }

    #[test]
    fn profile_uses_aws_names() {
        let p = SecurityProfile {
            security_profile_name: "sp".into(),
            security_profile_description: Some("d".into()),
            behaviors: Some(vec![]),
            alert_targets: Some(BTreeMap::from([(
                AlertTargetType::Sns,
                AlertTarget {
                    alert_target_arn: "arn:t".into(),
                    role_arn: "arn:r".into(),
                },
            )])),
            additional_metrics_to_retain_v2: Some(vec![MetricToRetain {
                metric: "aws:num-disconnects".into(),
                metric_dimension: None,
                export_metric: None,
            }]),
            version: Some(1),
            creation_date: Some(Timestamp::from_secs(1_600_000_000)),
            last_modified_date: Some(Timestamp::from_millis(1_600_000_000_250)),
            ..SecurityProfile::default()
        };
        let v = serde_json::to_value(&p).expect("serialises");
        assert_eq!(
            v,
            json!({
                "securityProfileName": "sp",
                "securityProfileDescription": "d",
                "behaviors": [],
                "alertTargets": {"SNS": {"alertTargetArn": "arn:t", "roleArn": "arn:r"}},
                "additionalMetricsToRetainV2": [{"metric": "aws:num-disconnects"}],
                "version": 1,
                "creationDate": 1_600_000_000u64,
                "lastModifiedDate": 1_600_000_000.25
            })
        );
        let back: SecurityProfile = serde_json::from_value(v).expect("parses");
        assert_eq!(back, p);
    }

    #[test]
    fn violation_event_uses_aws_names() {
        let e = ViolationEvent {
            violation_id: "37e18651d207bbc74236c13faf146127".into(),
            thing_name: "dev-IZWB".into(),
            security_profile_name: "MySecProfile".into(),
            behavior: Behavior {
                name: "MessagesPub".into(),
                ..Behavior::default()
            },
            metric_value: Some(MetricValue::count(54)),
            violation_event_type: ViolationEventType::InAlarm,
            violation_event_time: Timestamp::from_millis(1_600_780_245_290),
            ..ViolationEvent::default()
        };
        let v = serde_json::to_value(&e).expect("serialises");
        assert_eq!(v["violationEventType"], "in-alarm");
        assert_eq!(v["verificationState"], "UNKNOWN");
        assert_eq!(v["metricValue"], json!({"count": 54}));
        assert_eq!(v["violationEventTime"], json!(1_600_780_245.29));
        let back: ViolationEvent = serde_json::from_value(v).expect("parses");
        assert_eq!(back, e);
    }

    #[test]
    fn negative_timestamp_is_refused() {
        assert!(serde_json::from_value::<Timestamp>(json!(-1)).is_err());
    }
}
