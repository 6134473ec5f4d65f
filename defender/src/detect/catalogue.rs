//! What each metric allows, as a table (spec §6.1 built-ins, §6.2 custom
//! metrics), so validation is a lookup and a new metric is one row.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{ComparisonOperator, CustomMetricType};

use ComparisonOperator::*;

/// The value a metric produces, and so the `MetricValue` member its
/// behaviours must use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Unsigned counts (`value.count`): every numeric built-in.
    Count,
    /// Custom `number` (`value.number`).
    Number,
    /// `value.cidrs`.
    IpAddressList,
    /// `value.ports`.
    PortList,
    /// Custom `number-list` (`value.numbers`).
    NumberList,
    /// Custom `string-list` (`value.strings`).
    StringList,
}

impl ValueType {
    /// The `MetricValue` member a behaviour's threshold must use.
    pub fn value_field(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Number => "number",
            Self::IpAddressList => "cidrs",
            Self::PortList => "ports",
            Self::NumberList => "numbers",
            Self::StringList => "strings",
        }
    }

    /// The type's name as AWS documents it, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Number => "number",
            Self::IpAddressList => "ip-address-list",
            Self::PortList => "port-list",
            Self::NumberList => "number-list",
            Self::StringList => "string-list",
        }
    }

    /// The operators the type supports (§4 BehaviorCriteria).
    pub fn operators(self) -> &'static [ComparisonOperator] {
        match self {
            Self::Count | Self::Number => &ComparisonOperator::ORDERING,
            Self::IpAddressList => &[InCidrSet, NotInCidrSet],
            Self::PortList => &[InPortSet, NotInPortSet],
            Self::NumberList | Self::StringList => &[InSet, NotInSet],
        }
    }

    /// List types: no duration, no percentiles, no ML.
    pub fn is_list(self) -> bool {
        !matches!(self, Self::Count | Self::Number)
    }
}

impl From<CustomMetricType> for ValueType {
    fn from(t: CustomMetricType) -> Self {
        match t {
            CustomMetricType::Number => Self::Number,
            CustomMetricType::NumberList => Self::NumberList,
            CustomMetricType::StringList => Self::StringList,
            CustomMetricType::IpAddressList => Self::IpAddressList,
        }
    }
}

/// Whether a behaviour on the metric takes `durationSeconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationRule {
    /// Cloud-side counters accumulate over the window: a rule or statistical
    /// behaviour must say which window.
    Required,
    /// Device-side counters and custom numbers arrive as reported values;
    /// a window may be given (AWS's examples do both), and statistical
    /// behaviours need one to know which datapoints to rank.
    Optional,
    /// `aws:message-byte-size` is per message: no window for a rule, but the
    /// statistical form accumulates over one (AWS's example uses 300).
    StatisticalOnly,
    /// List metrics and disconnect duration ("Cannot be used with list-based
    /// metric datatypes").
    Forbidden,
}

/// One row of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricInfo {
    pub value_type: ValueType,
    /// Operators a rule may use; usually the type's, narrower for
    /// `aws:disconnect-duration`.
    pub operators: &'static [ComparisonOperator],
    pub duration: DurationRule,
    /// Fleet percentiles (`statisticalThreshold`) are meaningful.
    pub statistical: bool,
    /// ML Detect supports the metric.
    pub ml: bool,
    /// A TOPIC_FILTER `metricDimension` is allowed on rule behaviours.
    pub topic_filter: bool,
    /// …and on ML behaviours (source IP takes one for rules only).
    pub topic_filter_ml: bool,
    /// Custom metric (no dimension ever, §6.2).
    pub custom: bool,
}

/// The metric table plus the user's custom metrics and dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricCatalogue {
    builtin: BTreeMap<&'static str, MetricInfo>,
    custom: BTreeMap<String, MetricInfo>,
    /// Dimensions that exist, when known. `None` skips the existence check
    /// (ValidateSecurityProfileBehaviors called without a registry).
    dimensions: Option<BTreeSet<String>>,
    /// Valid `durationSeconds` values. AWS: 300, 600, 900, 1800, 3600. A
    /// deployment with a shorter datapoint period can add its own.
    pub durations: Vec<i64>,
}

/// AWS's documented windows (§6.1, §10).
pub const AWS_DURATIONS: [i64; 5] = [300, 600, 900, 1800, 3600];

const fn counter(duration: DurationRule, ml: bool, topic_filter: bool) -> MetricInfo {
    MetricInfo {
        value_type: ValueType::Count,
        operators: &ComparisonOperator::ORDERING,
        duration,
        statistical: true,
        ml,
        topic_filter,
        topic_filter_ml: topic_filter,
        custom: false,
    }
}

const fn list(
    value_type: ValueType,
    operators: &'static [ComparisonOperator],
    topic_filter: bool,
) -> MetricInfo {
    MetricInfo {
        value_type,
        operators,
        duration: DurationRule::Forbidden,
        statistical: false,
        ml: false,
        topic_filter,
        topic_filter_ml: false,
        custom: false,
    }
}

impl Default for MetricCatalogue {
    fn default() -> Self {
        Self::aws()
    }
}

impl MetricCatalogue {
    /// The built-in metrics of spec §6.1 and no custom metrics.
    pub fn aws() -> Self {
        use DurationRule::*;
        let rows: [(&'static str, MetricInfo); 18] = [
            // Cloud side: the broker counts these.
            (
                "aws:message-byte-size",
                counter(StatisticalOnly, true, true),
            ),
            ("aws:num-messages-sent", counter(Required, true, true)),
            ("aws:num-messages-received", counter(Required, true, true)),
            (
                "aws:num-authorization-failures",
                counter(Required, true, true),
            ),
            (
                "aws:source-ip-address",
                list(ValueType::IpAddressList, &[InCidrSet, NotInCidrSet], true),
            ),
            (
                "aws:num-connection-attempts",
                counter(Required, true, false),
            ),
            ("aws:num-disconnects", counter(Required, true, false)),
            (
                "aws:disconnect-duration",
                // Minutes disconnected, rules only. The spec marks
                // less-than-equals as the only operator (unverified).
                MetricInfo {
                    value_type: ValueType::Count,
                    operators: &[LessThanEquals],
                    duration: Forbidden,
                    statistical: false,
                    ml: false,
                    topic_filter: false,
                    topic_filter_ml: false,
                    custom: false,
                },
            ),
            // Device side: from device metrics reports.
            ("aws:all-bytes-out", counter(Optional, true, false)),
            ("aws:all-bytes-in", counter(Optional, true, false)),
            ("aws:all-packets-out", counter(Optional, true, false)),
            ("aws:all-packets-in", counter(Optional, true, false)),
            (
                "aws:num-listening-tcp-ports",
                counter(Optional, true, false),
            ),
            (
                "aws:num-listening-udp-ports",
                counter(Optional, true, false),
            ),
            (
                "aws:num-established-tcp-connections",
                counter(Optional, true, false),
            ),
            (
                "aws:listening-tcp-ports",
                list(ValueType::PortList, &[InPortSet, NotInPortSet], false),
            ),
            (
                "aws:listening-udp-ports",
                list(ValueType::PortList, &[InPortSet, NotInPortSet], false),
            ),
            (
                "aws:destination-ip-addresses",
                list(ValueType::IpAddressList, &[InCidrSet, NotInCidrSet], false),
            ),
        ];
        let builtin = rows.into_iter().collect();
        Self {
            builtin,
            custom: BTreeMap::new(),
            dimensions: None,
            durations: AWS_DURATIONS.to_vec(),
        }
    }

    /// Registers a custom metric (CreateCustomMetric). Its rules follow its
    /// type (§6.2): only `number` takes ordering operators, percentiles, ML
    /// and an optional window; no custom metric takes a dimension.
    pub fn add_custom(&mut self, name: impl Into<String>, metric_type: CustomMetricType) {
        let value_type = ValueType::from(metric_type);
        let number = value_type == ValueType::Number;
        self.custom.insert(
            name.into(),
            MetricInfo {
                value_type,
                operators: value_type.operators(),
                duration: if number {
                    DurationRule::Optional
                } else {
                    DurationRule::Forbidden
                },
                statistical: number,
                ml: number,
                topic_filter: false,
                topic_filter_ml: false,
                custom: true,
            },
        );
    }

    /// Declares the dimensions that exist; from then on a behaviour naming
    /// another one is invalid.
    pub fn set_dimensions<I, S>(&mut self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.dimensions = Some(names.into_iter().map(Into::into).collect());
    }

    /// `Some(true)` if the dimension exists, `None` if unknown.
    pub fn has_dimension(&self, name: &str) -> Option<bool> {
        self.dimensions.as_ref().map(|d| d.contains(name))
    }

    pub fn get(&self, metric: &str) -> Option<&MetricInfo> {
        self.builtin.get(metric).or_else(|| self.custom.get(metric))
    }

    /// Built-in names, for listings and tests.
    pub fn builtin_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.builtin.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighteen_builtins_as_in_the_spec() {
        let c = MetricCatalogue::aws();
        assert_eq!(c.builtin_names().count(), 18);
        assert!(c.builtin_names().all(|n| n.starts_with("aws:")));
    }

    #[test]
    fn ml_supports_six_cloud_and_seven_device_metrics() {
        let c = MetricCatalogue::aws();
        let ml: Vec<_> = c
            .builtin_names()
            .filter(|n| c.get(n).is_some_and(|i| i.ml))
            .collect();
        assert_eq!(ml.len(), 13, "{ml:?}");
        for n in [
            "aws:source-ip-address",
            "aws:disconnect-duration",
            "aws:listening-tcp-ports",
        ] {
            assert!(!ml.contains(&n));
        }
    }

    #[test]
    fn custom_metrics_follow_their_type() {
        let mut c = MetricCatalogue::aws();
        c.add_custom("batteryPercentage", CustomMetricType::Number);
        c.add_custom("apps", CustomMetricType::StringList);
        let n = c.get("batteryPercentage").expect("registered");
        assert!(n.ml && n.statistical && n.custom && !n.topic_filter);
        let s = c.get("apps").expect("registered");
        assert_eq!(s.operators, &[InSet, NotInSet]);
        assert!(!s.ml && !s.statistical);
    }
}
