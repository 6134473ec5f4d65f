//! ValidateSecurityProfileBehaviors: every problem with a list of behaviours,
//! all at once, as `{"valid", "validationErrors": [{"errorMessage"}]}`.
//! The same checks guard Create/UpdateSecurityProfile (which answer 400
//! with the messages joined). What a metric allows comes from the
//! [`MetricCatalogue`]; the limits are the model's (spec §4, §10).
//!
//! What is *not* an error: criteria that describe implausible "normal"
//! behaviour (`greater-than 5` authorization failures). AWS accepts it and
//! so do we (spec §7.1, test case 3).

use std::collections::BTreeMap;

use super::catalogue::{DurationRule, MetricCatalogue, MetricInfo};
use super::cidr::Cidr;
use super::model::{
    Behavior, BehaviorCriteria, MetricToRetain, MetricValue, SecurityProfile, ValidationError,
    ValidationResult,
};
use super::percentile::{Statistic, STATISTICS};

/// `Behaviors` max in the model.
pub const MAX_BEHAVIORS: usize = 100;
/// Names of profiles, behaviours and dimensions: 1–128 characters.
pub const MAX_NAME_LEN: usize = 128;
/// `consecutiveDatapointsToAlarm` / `ToClear` range.
pub const CONSECUTIVE_RANGE: std::ops::RangeInclusive<u32> = 1..=10;
/// `SecurityProfileDescription` max.
pub const MAX_DESCRIPTION_LEN: usize = 1000;

/// Checks a behaviour list as ValidateSecurityProfileBehaviors does.
pub fn validate_behaviors(behaviors: &[Behavior], catalogue: &MetricCatalogue) -> ValidationResult {
    let mut errors = Vec::new();
    check_behaviors(behaviors, catalogue, &mut errors);
    result(errors)
}

/// Checks a whole profile before Create/UpdateSecurityProfile stores it:
/// its name and description, its behaviours, and its retained metrics.
pub fn validate_security_profile(
    profile: &SecurityProfile,
    catalogue: &MetricCatalogue,
) -> ValidationResult {
    let mut errors = Vec::new();
    if let Some(e) = name_error(&profile.security_profile_name) {
        errors.push(format!("securityProfileName {e}"));
    }
    if let Some(d) = &profile.security_profile_description {
        if d.chars().count() > MAX_DESCRIPTION_LEN {
            errors.push(format!(
                "securityProfileDescription is longer than {MAX_DESCRIPTION_LEN} characters"
            ));
        }
        // Model pattern `[\p{Graph}\x20]*`: printable characters and plain
        // spaces, so no tabs or newlines either.
        if d.chars()
            .any(|c| c.is_control() || (c.is_whitespace() && c != ' '))
        {
            errors.push(
                "securityProfileDescription may contain only printable characters and spaces"
                    .to_owned(),
            );
        }
    }
    if let Some(b) = &profile.behaviors {
        check_behaviors(b, catalogue, &mut errors);
    }
    for (i, m) in profile
        .additional_metrics_to_retain_v2
        .iter()
        .flatten()
        .enumerate()
    {
        check_metric_to_retain(i, m, catalogue, &mut errors);
    }
    for (i, m) in profile
        .additional_metrics_to_retain
        .iter()
        .flatten()
        .enumerate()
    {
        if catalogue.get(m).is_none() {
            errors.push(format!(
                "additionalMetricsToRetain[{i}]: {}",
                unknown_metric(m)
            ));
        }
    }
    result(errors)
}

fn result(errors: Vec<String>) -> ValidationResult {
    ValidationResult {
        valid: errors.is_empty(),
        validation_errors: errors
            .into_iter()
            .map(|error_message| ValidationError { error_message })
            .collect(),
    }
}

fn check_behaviors(behaviors: &[Behavior], catalogue: &MetricCatalogue, errors: &mut Vec<String>) {
    if behaviors.len() > MAX_BEHAVIORS {
        errors.push(format!(
            "A security profile can have at most {MAX_BEHAVIORS} behaviors; {} were given",
            behaviors.len()
        ));
    }
    // Names must be unique: alarms, violations and DeleteBehaviors address
    // a behaviour by name within its profile.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for b in behaviors {
        *seen.entry(b.name.as_str()).or_default() += 1;
    }
    for (name, n) in seen {
        if n > 1 && !name.is_empty() {
            errors.push(format!(
                "Behavior name '{name}' is used by {n} behaviors; names must be unique in a profile"
            ));
        }
    }
    for (i, b) in behaviors.iter().enumerate() {
        check_behavior(i, b, catalogue, errors);
    }
}

/// What to call a behaviour in a message: its name, or its position when
/// the name itself is the problem.
fn label(index: usize, b: &Behavior) -> String {
    if name_error(&b.name).is_none() {
        format!("Behavior '{}'", b.name)
    } else {
        format!("Behavior at index {index}")
    }
}

/// The name rule shared by profiles, behaviours and dimensions, phrased to
/// follow the field's name.
pub(crate) fn name_error(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len == 0 {
        Some("must not be empty".to_owned())
    } else if len > MAX_NAME_LEN {
        Some(format!("'{name}' is longer than {MAX_NAME_LEN} characters"))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
    {
        Some(format!("'{name}' must match [a-zA-Z0-9:_-]+"))
    } else {
        None
    }
}

fn unknown_metric(metric: &str) -> String {
    if metric.starts_with("aws:") {
        format!("'{metric}' is not a built-in metric")
    } else {
        format!("'{metric}' is neither a built-in metric nor a custom metric defined here")
    }
}

fn check_behavior(
    index: usize,
    b: &Behavior,
    catalogue: &MetricCatalogue,
    errors: &mut Vec<String>,
) {
    let who = label(index, b);
    let mut err = |msg: String| errors.push(format!("{who}: {msg}"));

    if let Some(e) = name_error(&b.name) {
        err(format!("name {e}"));
    }

    let info = match b.metric.as_deref() {
        None | Some("") => {
            err("metric is required".to_owned());
            None
        }
        Some(m) => {
            let info = catalogue.get(m);
            if info.is_none() {
                err(format!("metric {}", unknown_metric(m)));
            }
            info.map(|i| (m, i))
        }
    };

    let Some(c) = &b.criteria else {
        err("criteria is required".to_owned());
        return;
    };

    // Checks that need no metric.
    let ml = c.ml_detection_config.is_some();
    let statistical = c.statistical_threshold.is_some();
    if ml {
        if c.comparison_operator.is_some() || c.value.is_some() || statistical {
            err("mlDetectionConfig cannot be combined with comparisonOperator, value or statisticalThreshold".to_owned());
        }
    } else {
        if c.comparison_operator.is_none() {
            err("criteria.comparisonOperator is required".to_owned());
        }
        match (c.value.is_some(), statistical) {
            (true, true) => err(
                "criteria.value and criteria.statisticalThreshold cannot both be set".to_owned(),
            ),
            (false, false) => err(
                "criteria needs a value, a statisticalThreshold or an mlDetectionConfig".to_owned(),
            ),
            _ => {}
        }
    }
    for (field, v) in [
        (
            "consecutiveDatapointsToAlarm",
            c.consecutive_datapoints_to_alarm,
        ),
        (
            "consecutiveDatapointsToClear",
            c.consecutive_datapoints_to_clear,
        ),
    ] {
        if let Some(n) = v {
            if !CONSECUTIVE_RANGE.contains(&n) {
                err(format!(
                    "criteria.{field} is {n}; it must be between 1 and 10"
                ));
            }
        }
    }
    if let Some(t) = &c.statistical_threshold {
        match t.statistic.as_deref() {
            None => err("criteria.statisticalThreshold.statistic is required".to_owned()),
            Some(s) if s.parse::<Statistic>().is_err() => err(format!(
                "criteria.statisticalThreshold.statistic '{s}' is not one of {}",
                STATISTICS.join(", ")
            )),
            Some(_) => {}
        }
    }
    if let Some(v) = &c.value {
        for cidr in v.cidrs.iter().flatten() {
            if let Some(e) = cidr_error(cidr) {
                err(format!("criteria.value.cidrs: {e}"));
            }
        }
    }
    if let Some(d) = &b.metric_dimension {
        if let Some(e) = name_error(&d.dimension_name) {
            err(format!("metricDimension.dimensionName {e}"));
        } else if catalogue.has_dimension(&d.dimension_name) == Some(false) {
            err(format!(
                "metricDimension.dimensionName '{}' is not a defined dimension",
                d.dimension_name
            ));
        }
    }

    let Some((metric, info)) = info else {
        return;
    };
    let mut errs = Vec::new();
    check_against_metric(metric, info, b, c, catalogue, &mut errs);
    for e in errs {
        err(e);
    }
}

/// Checks that depend on what the metric allows.
fn check_against_metric(
    metric: &str,
    info: &MetricInfo,
    b: &Behavior,
    c: &BehaviorCriteria,
    catalogue: &MetricCatalogue,
    errs: &mut Vec<String>,
) {
    let ml = c.ml_detection_config.is_some();
    let statistical = c.statistical_threshold.is_some();
    let vt = info.value_type;

    if let Some(op) = c.comparison_operator {
        if !info.operators.contains(&op) {
            let ok: Vec<&str> = info.operators.iter().map(|o| o.as_str()).collect();
            errs.push(format!(
                "comparisonOperator '{op}' cannot be used with metric '{metric}' ({}); use {}",
                vt.name(),
                ok.join(" or ")
            ));
        }
    }
    if let Some(v) = &c.value {
        check_value_field(metric, info, v, errs);
    }
    if statistical && !info.statistical {
        errs.push(format!(
            "statisticalThreshold cannot be used with metric '{metric}' ({})",
            vt.name()
        ));
    }
    if ml && !info.ml {
        errs.push(format!(
            "mlDetectionConfig cannot be used with metric '{metric}': ML Detect does not support it"
        ));
    }

    // Windows. ML behaviours learn their own cadence: a window is allowed
    // where the metric has one, never required.
    let needs_window = !ml
        && match info.duration {
            DurationRule::Required => true,
            DurationRule::Optional | DurationRule::StatisticalOnly => statistical,
            DurationRule::Forbidden => false,
        };
    let forbids_window = match info.duration {
        DurationRule::Forbidden => true,
        DurationRule::StatisticalOnly => !statistical && !ml,
        _ => false,
    };
    match c.duration_seconds {
        None if needs_window => errs.push(format!(
            "criteria.durationSeconds is required for metric '{metric}'{}",
            if statistical { " with a statisticalThreshold" } else { "" }
        )),
        Some(_) if forbids_window => errs.push(if vt.is_list() {
            format!("criteria.durationSeconds cannot be used with list-based metric '{metric}'")
        } else if info.duration == DurationRule::StatisticalOnly {
            format!(
                "criteria.durationSeconds cannot be used with metric '{metric}' and a static value: it is evaluated per message"
            )
        } else {
            format!("criteria.durationSeconds cannot be used with metric '{metric}'")
        }),
        Some(d) if !catalogue.durations.contains(&d) => {
            let ok: Vec<String> = catalogue.durations.iter().map(i64::to_string).collect();
            errs.push(format!(
                "criteria.durationSeconds {d} is not valid; use one of {}",
                ok.join(", ")
            ));
        }
        _ => {}
    }

    if b.metric_dimension.is_some() {
        if info.custom {
            errs.push(format!(
                "metricDimension cannot be used with custom metric '{metric}'"
            ));
        } else if ml && info.ml && !info.topic_filter_ml {
            // (An ML behaviour on a metric ML does not support is reported
            // once, above.)
            errs.push(format!(
                "metricDimension cannot be used with metric '{metric}' in an ML Detect behavior"
            ));
        } else if !info.topic_filter {
            errs.push(format!(
                "metricDimension cannot be used with metric '{metric}'; only messages sent or received, message size, authorization failures and source IP take a TOPIC_FILTER dimension"
            ));
        }
    }
}

fn check_value_field(metric: &str, info: &MetricInfo, v: &MetricValue, errs: &mut Vec<String>) {
    let want = info.value_type.value_field();
    let set = v.fields_set();
    match set.as_slice() {
        [] => errs.push(format!(
            "criteria.value is empty; metric '{metric}' takes value.{want}"
        )),
        [one] if *one == want => {}
        [one] => errs.push(format!(
            "criteria.value.{one} cannot be used with metric '{metric}' ({}); use value.{want}",
            info.value_type.name()
        )),
        many => errs.push(format!(
            "criteria.value sets {}; set only value.{want} for metric '{metric}'",
            many.join(", ")
        )),
    }
}

/// The model's `Cidr` limits (2–43 characters of `[a-fA-F0-9:./]`) and
/// that it parses as an address block.
fn cidr_error(s: &str) -> Option<String> {
    let n = s.chars().count();
    if !(2..=43).contains(&n)
        || !s
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '/'))
    {
        return Some(format!("'{s}' is not a valid CIDR block"));
    }
    s.parse::<Cidr>().err().map(|e| e.to_string())
}

fn check_metric_to_retain(
    index: usize,
    m: &MetricToRetain,
    catalogue: &MetricCatalogue,
    errors: &mut Vec<String>,
) {
    let who = format!("additionalMetricsToRetainV2[{index}]");
    let Some(info) = catalogue.get(&m.metric) else {
        errors.push(format!("{who}: metric {}", unknown_metric(&m.metric)));
        return;
    };
    if let Some(d) = &m.metric_dimension {
        if info.custom {
            errors.push(format!(
                "{who}: metricDimension cannot be used with custom metric '{}'",
                m.metric
            ));
        } else if !info.topic_filter {
            errors.push(format!(
                "{who}: metricDimension cannot be used with metric '{}'",
                m.metric
            ));
        }
        if let Some(e) = name_error(&d.dimension_name) {
            errors.push(format!("{who}: metricDimension.dimensionName {e}"));
        } else if catalogue.has_dimension(&d.dimension_name) == Some(false) {
            errors.push(format!(
                "{who}: metricDimension.dimensionName '{}' is not a defined dimension",
                d.dimension_name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::model::CustomMetricType;
    use serde_json::{json, Value};

    fn behaviors(v: Value) -> Vec<Behavior> {
        serde_json::from_value(v).expect("test behaviours parse")
    }

    fn catalogue() -> MetricCatalogue {
        let mut c = MetricCatalogue::aws();
        c.add_custom("batteryPercentage", CustomMetricType::Number);
        c.add_custom("apps", CustomMetricType::StringList);
        c.add_custom("peers", CustomMetricType::IpAddressList);
        c.add_custom("codes", CustomMetricType::NumberList);
        c
    }

    fn errors(v: Value) -> Vec<String> {
        let r = validate_behaviors(&behaviors(v), &catalogue());
        assert_eq!(r.valid, r.validation_errors.is_empty());
        r.validation_errors
            .into_iter()
            .map(|e| e.error_message)
            .collect()
    }

    /// Asserts exactly one error, containing every fragment.
    fn one_error(v: Value, fragments: &[&str]) {
        let e = errors(v);
        assert_eq!(e.len(), 1, "{e:#?}");
        for f in fragments {
            assert!(e[0].contains(f), "{:?} lacks {f:?}", e[0]);
        }
    }

    fn rule(metric: &str, criteria: Value) -> Value {
        json!([{"name": "b", "metric": metric, "criteria": criteria}])
    }

    #[test]
    fn aws_documentation_examples_are_valid() {
        let e = errors(json!([
            {"name": "Authorization-Failures", "metric": "aws:num-authorization-failures",
             "criteria": {"comparisonOperator": "less-than", "value": {"count": 5},
                          "durationSeconds": 300, "consecutiveDatapointsToAlarm": 2,
                          "consecutiveDatapointsToClear": 2}},
            {"name": "Source-IP", "metric": "aws:source-ip-address",
             "criteria": {"comparisonOperator": "not-in-cidr-set",
                          "value": {"cidrs": ["12.8.0.0/16", "15.102.16.0/24"]}}},
            {"name": "Msg-Size", "metric": "aws:message-byte-size",
             "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": 1024}}},
            {"name": "Msg-Size-p90", "metric": "aws:message-byte-size",
             "criteria": {"comparisonOperator": "less-than",
                          "statisticalThreshold": {"statistic": "p90"}, "durationSeconds": 300}},
            {"name": "Ports", "metric": "aws:listening-tcp-ports",
             "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [8888]}}},
            {"name": "Bytes-Out", "metric": "aws:all-bytes-out",
             "criteria": {"comparisonOperator": "less-than", "value": {"count": 4096},
                          "durationSeconds": 300}},
            {"name": "Est-TCP", "metric": "aws:num-established-tcp-connections",
             "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}}},
            {"name": "Dest-IPs", "metric": "aws:destination-ip-addresses",
             "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["2001:db8::/32"]}}},
            {"name": "Battery", "metric": "batteryPercentage",
             "criteria": {"comparisonOperator": "greater-than", "value": {"number": 10.5}}},
            {"name": "Apps", "metric": "apps",
             "criteria": {"comparisonOperator": "in-set", "value": {"strings": ["a", "b"]}}},
            {"name": "Codes", "metric": "codes",
             "criteria": {"comparisonOperator": "not-in-set", "value": {"numbers": [1.0, 2.5]}}},
            {"name": "ML", "metric": "aws:num-messages-sent", "suppressAlerts": true,
             "criteria": {"mlDetectionConfig": {"confidenceLevel": "HIGH"},
                          "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1}},
            {"name": "Dim", "metric": "aws:num-messages-sent",
             "metricDimension": {"dimensionName": "TopicFilterForAuthMessages", "operator": "NOT_IN"},
             "criteria": {"comparisonOperator": "less-than", "value": {"count": 10}, "durationSeconds": 600}},
            {"name": "Disc", "metric": "aws:disconnect-duration",
             "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": 5}}}
        ]));
        assert!(e.is_empty(), "{e:#?}");
    }

    // --- limits and names ---

    #[test]
    fn more_than_100_behaviors() {
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"name": format!("b{i}"), "metric": "aws:num-disconnects",
                 "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300}}))
            .collect();
        one_error(
            Value::Array(many.clone()),
            &["at most 100 behaviors", "101"],
        );
        assert!(errors(Value::Array(many[..100].to_vec())).is_empty());
    }

    #[test]
    fn duplicate_names() {
        let b = json!({"name": "dup", "metric": "aws:num-disconnects",
            "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300}});
        one_error(
            json!([b.clone(), b]),
            &["'dup'", "used by 2 behaviors", "unique"],
        );
    }

    #[test]
    fn bad_names() {
        let c = json!({"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300});
        for (name, frag) in [
            (String::new(), "must not be empty"),
            ("a b".to_owned(), "must match [a-zA-Z0-9:_-]+"),
            ("x".repeat(129), "longer than 128"),
        ] {
            one_error(
                json!([{"name": name, "metric": "aws:num-disconnects", "criteria": c}]),
                &["Behavior at index 0", frag],
            );
        }
        assert!(errors(
            json!([{"name": "x".repeat(128), "metric": "aws:num-disconnects", "criteria": c}])
        )
        .is_empty());
    }

    // --- metric ---

    #[test]
    fn metric_missing_or_unknown() {
        let c = json!({"comparisonOperator": "less-than", "value": {"count": 5}});
        one_error(
            json!([{"name": "b", "criteria": c}]),
            &["Behavior 'b'", "metric is required"],
        );
        one_error(
            rule("aws:num-bogus", c.clone()),
            &["'aws:num-bogus' is not a built-in metric"],
        );
        one_error(rule("myMetric", c), &["'myMetric'", "nor a custom metric"]);
    }

    // --- criteria shape ---

    #[test]
    fn criteria_missing() {
        one_error(
            json!([{"name": "b", "metric": "aws:num-disconnects"}]),
            &["criteria is required"],
        );
    }

    #[test]
    fn operator_missing() {
        one_error(
            rule(
                "aws:num-disconnects",
                json!({"value": {"count": 5}, "durationSeconds": 300}),
            ),
            &["comparisonOperator is required"],
        );
    }

    #[test]
    fn value_and_statistic_both_or_neither() {
        one_error(
            rule(
                "aws:num-disconnects",
                json!({"comparisonOperator": "less-than", "value": {"count": 5},
                "statisticalThreshold": {"statistic": "p90"}, "durationSeconds": 300}),
            ),
            &["cannot both be set"],
        );
        one_error(
            rule(
                "aws:num-disconnects",
                json!({"comparisonOperator": "less-than", "durationSeconds": 300}),
            ),
            &["needs a value, a statisticalThreshold or an mlDetectionConfig"],
        );
    }

    #[test]
    fn ml_with_static_parts() {
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than", "value": {"count": 5},
                "mlDetectionConfig": {"confidenceLevel": "LOW"}}),
            ),
            &["mlDetectionConfig cannot be combined"],
        );
    }

    /// Spec §13 case 5: consecutive datapoints outside 1..=10.
    #[test]
    fn case_05_consecutive_range() {
        for n in [0u32, 11] {
            for field in [
                "consecutiveDatapointsToAlarm",
                "consecutiveDatapointsToClear",
            ] {
                let mut c = json!({"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300});
                c[field] = json!(n);
                one_error(
                    rule("aws:num-authorization-failures", c),
                    &[field, &n.to_string(), "between 1 and 10"],
                );
            }
        }
        for n in [1u32, 10] {
            let c = json!({"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300,
                "consecutiveDatapointsToAlarm": n, "consecutiveDatapointsToClear": n});
            assert!(errors(rule("aws:num-authorization-failures", c)).is_empty());
        }
    }

    #[test]
    fn statistic_missing_or_bad() {
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than",
                "statisticalThreshold": {}, "durationSeconds": 300}),
            ),
            &["statistic is required"],
        );
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than",
                "statisticalThreshold": {"statistic": "p95"}, "durationSeconds": 300}),
            ),
            &["'p95' is not one of p0, p0.1, p0.01, p1, p10, p50, p90, p99, p99.9, p99.99, p100"],
        );
        for s in STATISTICS {
            assert!(errors(rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than",
                "statisticalThreshold": {"statistic": s}, "durationSeconds": 300})
            ))
            .is_empty());
        }
    }

    #[test]
    fn bad_cidrs() {
        let e = errors(rule(
            "aws:source-ip-address",
            json!({"comparisonOperator": "in-cidr-set",
            "value": {"cidrs": ["10.0.0.0/8", "10.0.0.0/33", "example.com", "1", "::/0"]}}),
        ));
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(e.iter().all(|m| m.contains("not a valid CIDR block")));
    }

    // --- metric-specific ---

    /// Spec §13 case 7: operator and value type mismatches.
    #[test]
    fn case_07_operator_type_mismatch() {
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "in-cidr-set",
                "value": {"count": 5}, "durationSeconds": 300}),
            ),
            &[
                "'in-cidr-set' cannot be used with metric 'aws:num-messages-sent' (count)",
                "less-than or less-than-equals or greater-than or greater-than-equals",
            ],
        );
        one_error(
            rule(
                "aws:listening-tcp-ports",
                json!({"comparisonOperator": "in-set", "value": {"ports": [443]}}),
            ),
            &["'in-set'", "(port-list)", "in-port-set or not-in-port-set"],
        );
        one_error(
            rule(
                "apps",
                json!({"comparisonOperator": "in-port-set", "value": {"strings": ["a"]}}),
            ),
            &["'in-port-set'", "(string-list)", "in-set or not-in-set"],
        );
        one_error(
            rule(
                "batteryPercentage",
                json!({"comparisonOperator": "in-set", "value": {"number": 1.0}}),
            ),
            &["'in-set'", "(number)"],
        );
    }

    #[test]
    fn value_member_must_match_type() {
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than",
                "value": {"cidrs": ["10.0.0.0/8"]}, "durationSeconds": 300}),
            ),
            &["value.cidrs cannot be used", "use value.count"],
        );
        one_error(
            rule(
                "batteryPercentage",
                json!({"comparisonOperator": "less-than", "value": {"count": 3}}),
            ),
            &["value.count cannot be used", "use value.number"],
        );
        one_error(
            rule(
                "peers",
                json!({"comparisonOperator": "in-cidr-set", "value": {"strings": ["x"]}}),
            ),
            &["value.strings", "use value.cidrs"],
        );
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than",
                "value": {}, "durationSeconds": 300}),
            ),
            &["criteria.value is empty", "value.count"],
        );
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than",
                "value": {"count": 1, "number": 1.0}, "durationSeconds": 300}),
            ),
            &["sets count, number", "only value.count"],
        );
    }

    #[test]
    fn statistical_not_for_lists() {
        let e = errors(rule(
            "aws:source-ip-address",
            json!({"comparisonOperator": "in-cidr-set",
            "statisticalThreshold": {"statistic": "p50"}}),
        ));
        assert!(
            e.iter().any(|m| m.contains(
                "statisticalThreshold cannot be used with metric 'aws:source-ip-address'"
            )),
            "{e:#?}"
        );
    }

    /// Spec §13 case 25 (validation half): ML on unsupported metrics.
    #[test]
    fn case_25_ml_unsupported_metrics() {
        let ml = json!({"mlDetectionConfig": {"confidenceLevel": "MEDIUM"}});
        one_error(
            rule("aws:source-ip-address", ml.clone()),
            &["ML Detect does not support"],
        );
        one_error(rule("apps", ml.clone()), &["ML Detect does not support"]);
        assert!(errors(rule("aws:num-messages-sent", ml.clone())).is_empty());
        assert!(errors(rule("batteryPercentage", ml)).is_empty());
    }

    /// Spec §13 case 6: windows.
    #[test]
    fn case_06_duration() {
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than",
                "value": {"count": 5}, "durationSeconds": 120}),
            ),
            &[
                "durationSeconds 120 is not valid",
                "300, 600, 900, 1800, 3600",
            ],
        );
        one_error(
            rule(
                "aws:source-ip-address",
                json!({"comparisonOperator": "in-cidr-set",
                "value": {"cidrs": ["10.0.0.0/8"]}, "durationSeconds": 300}),
            ),
            &["cannot be used with list-based metric"],
        );
        for d in AWS_DURATIONS_FOR_TEST {
            assert!(errors(rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than",
                "value": {"count": 5}, "durationSeconds": d})
            ))
            .is_empty());
        }
    }

    const AWS_DURATIONS_FOR_TEST: [i64; 5] = crate::detect::catalogue::AWS_DURATIONS;

    #[test]
    fn duration_required_or_forbidden() {
        one_error(
            rule(
                "aws:num-messages-sent",
                json!({"comparisonOperator": "less-than", "value": {"count": 5}}),
            ),
            &["durationSeconds is required for metric 'aws:num-messages-sent'"],
        );
        one_error(
            rule(
                "aws:all-bytes-out",
                json!({"comparisonOperator": "less-than",
                "statisticalThreshold": {"statistic": "p90"}}),
            ),
            &["durationSeconds is required", "with a statisticalThreshold"],
        );
        one_error(
            rule(
                "aws:message-byte-size",
                json!({"comparisonOperator": "less-than",
                "value": {"count": 5}, "durationSeconds": 300}),
            ),
            &["evaluated per message"],
        );
        one_error(
            rule(
                "aws:disconnect-duration",
                json!({"comparisonOperator": "less-than-equals",
                "value": {"count": 5}, "durationSeconds": 300}),
            ),
            &["durationSeconds cannot be used with metric 'aws:disconnect-duration'"],
        );
        // ML needs no window.
        assert!(errors(rule(
            "aws:num-disconnects",
            json!({"mlDetectionConfig": {"confidenceLevel": "LOW"}})
        ))
        .is_empty());
    }

    /// Spec §13 case 11 (validation half): dimensions.
    #[test]
    fn case_11_dimension_rules() {
        let dim = json!({"dimensionName": "TopicFilterForAuthMessages"});
        let with = |metric: &str, criteria: Value| json!([{"name": "b", "metric": metric, "metricDimension": dim, "criteria": criteria}]);
        one_error(
            with(
                "batteryPercentage",
                json!({"comparisonOperator": "less-than", "value": {"number": 1.0}}),
            ),
            &["metricDimension cannot be used with custom metric 'batteryPercentage'"],
        );
        one_error(
            with(
                "aws:num-disconnects",
                json!({"comparisonOperator": "less-than", "value": {"count": 1}, "durationSeconds": 300}),
            ),
            &["metricDimension cannot be used with metric 'aws:num-disconnects'"],
        );
        one_error(
            with(
                "aws:source-ip-address",
                json!({"mlDetectionConfig": {"confidenceLevel": "LOW"}}),
            ),
            &["ML Detect does not support"],
        );
        assert!(errors(with(
            "aws:source-ip-address",
            json!({"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["10.0.0.0/8"]}})
        ))
        .is_empty());
        assert!(errors(with(
            "aws:message-byte-size",
            json!({"mlDetectionConfig": {"confidenceLevel": "LOW"}})
        ))
        .is_empty());
    }

    #[test]
    fn dimension_name_and_existence() {
        let mut cat = catalogue();
        let b = behaviors(json!([{"name": "b", "metric": "aws:num-messages-sent",
            "metricDimension": {"dimensionName": "nope"},
            "criteria": {"comparisonOperator": "less-than", "value": {"count": 1}, "durationSeconds": 300}}]));
        assert!(
            validate_behaviors(&b, &cat).valid,
            "no registry: existence not checked"
        );
        cat.set_dimensions(["TopicFilterForAuthMessages"]);
        let r = validate_behaviors(&b, &cat);
        assert_eq!(r.validation_errors.len(), 1);
        assert!(r.validation_errors[0]
            .error_message
            .contains("'nope' is not a defined dimension"));
        one_error(
            json!([{"name": "b", "metric": "aws:num-messages-sent", "metricDimension": {"dimensionName": "a b"},
                "criteria": {"comparisonOperator": "less-than", "value": {"count": 1}, "durationSeconds": 300}}]),
            &["metricDimension.dimensionName 'a b' must match"],
        );
    }

    /// Spec §13 case 16 (validation half): disconnect duration takes only
    /// less-than-equals.
    #[test]
    fn case_16_disconnect_duration_operator() {
        one_error(
            rule(
                "aws:disconnect-duration",
                json!({"comparisonOperator": "greater-than", "value": {"count": 5}}),
            ),
            &[
                "'greater-than' cannot be used with metric 'aws:disconnect-duration'",
                "use less-than-equals",
            ],
        );
    }

    /// Spec §13 case 3: the inverted rule is accepted.
    #[test]
    fn case_03_inverted_rule_is_valid() {
        assert!(errors(rule(
            "aws:num-authorization-failures",
            json!({"comparisonOperator": "greater-than",
            "value": {"count": 5}, "durationSeconds": 300, "consecutiveDatapointsToAlarm": 2})
        ))
        .is_empty());
    }

    #[test]
    fn every_error_is_listed() {
        // One behaviour with five independent problems, and a second one bad too.
        let e = errors(json!([
            {"name": "bad name", "metric": "aws:num-messages-sent",
             "metricDimension": {"dimensionName": "d"},
             "criteria": {"comparisonOperator": "in-set", "value": {"strings": ["x"]},
                          "durationSeconds": 7, "consecutiveDatapointsToAlarm": 0}},
            {"name": "ok", "metric": "aws:listening-udp-ports",
             "criteria": {"comparisonOperator": "less-than", "value": {"count": 1}}}
        ]));
        assert_eq!(e.len(), 7, "{e:#?}");
        assert_eq!(
            e.iter()
                .filter(|m| m.starts_with("Behavior at index 0"))
                .count(),
            5
        );
        assert_eq!(
            e.iter().filter(|m| m.starts_with("Behavior 'ok'")).count(),
            2
        );
    }

    #[test]
    fn response_shape() {
        let r = validate_behaviors(&behaviors(json!([{"name": "b"}])), &catalogue());
        let v = serde_json::to_value(&r).expect("serialises");
        assert_eq!(v["valid"], json!(false));
        assert!(v["validationErrors"][0]["errorMessage"].is_string());
        let ok = serde_json::to_value(validate_behaviors(&[], &catalogue())).expect("serialises");
        assert_eq!(ok, json!({"valid": true, "validationErrors": []}));
    }

    #[test]
    fn profile_level_checks() {
        let p: SecurityProfile = serde_json::from_value(json!({
            "securityProfileName": "bad name",
            "securityProfileDescription": "line\nbreak",
            "behaviors": [{"name": "b"}],
            "additionalMetricsToRetainV2": [
                {"metric": "aws:num-nothing"},
                {"metric": "batteryPercentage", "metricDimension": {"dimensionName": "d"}},
                {"metric": "aws:num-disconnects", "metricDimension": {"dimensionName": "d"}},
                {"metric": "aws:num-messages-sent", "metricDimension": {"dimensionName": "d"}}
            ],
            "additionalMetricsToRetain": ["aws:nope"]
        }))
        .expect("parses");
        let r = validate_security_profile(&p, &catalogue());
        let msgs: Vec<&str> = r
            .validation_errors
            .iter()
            .map(|e| e.error_message.as_str())
            .collect();
        assert_eq!(msgs.len(), 8, "{msgs:#?}");
        assert!(msgs[0].starts_with("securityProfileName 'bad name' must match"));
        assert!(msgs[1].contains("printable"));
        assert!(msgs.iter().any(|m| m.starts_with(
            "additionalMetricsToRetainV2[1]: metricDimension cannot be used with custom"
        )));
        assert!(msgs
            .iter()
            .any(|m| m.starts_with("additionalMetricsToRetainV2[2]: metricDimension cannot")));
        assert!(msgs
            .iter()
            .any(|m| m.starts_with("additionalMetricsToRetain[0]")));
        let long = SecurityProfile {
            security_profile_name: "sp".into(),
            security_profile_description: Some("x".repeat(1001)),
            ..SecurityProfile::default()
        };
        let r = validate_security_profile(&long, &catalogue());
        assert_eq!(r.validation_errors.len(), 1);
    }
}
