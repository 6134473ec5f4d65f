//! Input rules of the catalog's resources, from the model's shapes (spec
//! §1, §4): names, idempotency tokens, display names, dimension values,
//! and the profile members the behaviour validator does not cover.

use wardmq_broker::topic::valid_topic_filter;

use super::error::CatalogError;
use crate::detect::model::{AlertTargetType, SecurityProfile};
use crate::detect::validate::name_error;

/// `DimensionStringValues`: 1 to 100 values of 1 to 256 characters.
pub const MAX_DIMENSION_VALUES: usize = 100;
pub const MAX_DIMENSION_VALUE_LEN: usize = 256;
/// `CustomMetricDisplayName` max.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;
/// `MqttTopic` of a metrics export: 1 to 512 characters.
pub const MAX_EXPORT_TOPIC_LEN: usize = 512;
/// `RoleArn`: 20 to 2048 characters.
pub const ROLE_ARN_LEN: std::ops::RangeInclusive<usize> = 20..=2048;
/// `ClientRequestToken`: 1 to 64 characters of `[a-zA-Z0-9-_]`.
pub const MAX_TOKEN_LEN: usize = 64;

/// A resource name (`[a-zA-Z0-9:_-]+`, 1–128), as InvalidRequest.
pub(crate) fn name(field: &str, value: &str) -> Result<(), CatalogError> {
    match name_error(value) {
        Some(e) => Err(CatalogError::invalid(format!("{field} {e}"))),
        None => Ok(()),
    }
}

pub(crate) fn client_request_token(token: &str) -> Result<(), CatalogError> {
    let n = token.chars().count();
    if n == 0
        || n > MAX_TOKEN_LEN
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(CatalogError::invalid(format!(
            "clientRequestToken must be 1 to {MAX_TOKEN_LEN} characters of [a-zA-Z0-9-_]"
        )));
    }
    Ok(())
}

/// The model's `[\p{Graph}\x20]*`: printable characters and plain spaces.
fn printable(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || (c.is_whitespace() && c != ' '))
}

pub(crate) fn display_name(value: &str) -> Result<(), CatalogError> {
    if value.chars().count() > MAX_DISPLAY_NAME_LEN || !printable(value) {
        return Err(CatalogError::invalid(format!(
            "displayName must be at most {MAX_DISPLAY_NAME_LEN} printable characters or spaces"
        )));
    }
    Ok(())
}

/// A custom metric's name: a resource name outside the `aws:` namespace of
/// the built-in metrics.
pub(crate) fn custom_metric_name(value: &str) -> Result<(), CatalogError> {
    name("metricName", value)?;
    if value.starts_with("aws:") {
        return Err(CatalogError::invalid(format!(
            "metricName '{value}' may not begin with 'aws:', which is reserved for built-in metrics"
        )));
    }
    Ok(())
}

/// A TOPIC_FILTER dimension's values: 1–100 MQTT topic filters of 1–256
/// characters. `${iot:ClientId}` stands for a whole level or part of one,
/// so it is checked as if it were a plain name. Every problem is listed.
pub(crate) fn dimension_values(values: &[String]) -> Result<(), CatalogError> {
    let mut errors = Vec::new();
    if values.is_empty() || values.len() > MAX_DIMENSION_VALUES {
        errors.push(format!(
            "stringValues must hold 1 to {MAX_DIMENSION_VALUES} values, got {}",
            values.len()
        ));
    }
    for (i, v) in values.iter().enumerate() {
        let n = v.chars().count();
        if n == 0 || n > MAX_DIMENSION_VALUE_LEN {
            errors.push(format!(
                "stringValues[{i}] must be 1 to {MAX_DIMENSION_VALUE_LEN} characters"
            ));
        } else if !valid_topic_filter(&v.replace("${iot:ClientId}", "c")) {
            errors.push(format!(
                "stringValues[{i}] '{v}' is not an MQTT topic filter ('+' and '#' must fill a whole level, '#' only the last)"
            ));
        }
    }
    joined(errors)
}

/// Profile members the behaviour validator leaves alone: the alert
/// target and the metrics export configuration.
pub(crate) fn profile_extras(p: &SecurityProfile, errors: &mut Vec<String>) {
    let role = |field: &str, arn: &str| {
        (!ROLE_ARN_LEN.contains(&arn.chars().count())).then(|| {
            format!(
                "{field} must be {} to {} characters",
                ROLE_ARN_LEN.start(),
                ROLE_ARN_LEN.end()
            )
        })
    };
    for (kind, t) in p.alert_targets.iter().flatten() {
        let kind = match kind {
            AlertTargetType::Sns => "SNS",
        };
        errors.extend(role(&format!("alertTargets.{kind}.roleArn"), &t.role_arn));
        if t.alert_target_arn.is_empty() {
            errors.push(format!(
                "alertTargets.{kind}.alertTargetArn must not be empty"
            ));
        }
    }
    if let Some(c) = &p.metrics_export_config {
        errors.extend(role("metricsExportConfig.roleArn", &c.role_arn));
        let n = c.mqtt_topic.chars().count();
        if n == 0 || n > MAX_EXPORT_TOPIC_LEN {
            errors.push(format!(
                "metricsExportConfig.mqttTopic must be 1 to {MAX_EXPORT_TOPIC_LEN} characters"
            ));
        }
    }
}

/// `Ok` if there is nothing to report, else one InvalidRequest with every
/// message.
pub(crate) fn joined(errors: Vec<String>) -> Result<(), CatalogError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CatalogError::invalid(errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_values_follow_the_model() {
        let ok =
            |v: &[&str]| dimension_values(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(ok(&["device/+/auth", "admin/#", "d/${iot:ClientId}/x"]).is_ok());
        assert!(ok(&[]).is_err());
        assert!(ok(&[""]).is_err());
        let long = "a".repeat(257);
        assert!(ok(&[long.as_str()]).is_err());
        assert!(ok(&["a".repeat(256).as_str()]).is_ok());
        let many: Vec<String> = (0..101).map(|i| format!("t/{i}")).collect();
        assert!(dimension_values(&many).is_err());
        // Every bad value is named.
        let e = ok(&["a/#/b", "x+", "fine"]).expect_err("two bad filters");
        let m = e.to_string();
        assert!(
            m.contains("stringValues[0]") && m.contains("stringValues[1]"),
            "{m}"
        );
        assert!(!m.contains("stringValues[2]"), "{m}");
    }

    #[test]
    fn tokens_and_names() {
        assert!(client_request_token("a-b_C9").is_ok());
        assert!(client_request_token("").is_err());
        assert!(client_request_token("has space").is_err());
        assert!(client_request_token(&"t".repeat(65)).is_err());
        assert!(custom_metric_name("batteryPercentage").is_ok());
        assert!(custom_metric_name("aws:battery").is_err());
        assert!(custom_metric_name("bad name").is_err());
        assert!(display_name("Battery level (%)").is_ok());
        assert!(display_name("tab\there").is_err());
        assert!(display_name(&"x".repeat(129)).is_err());
    }
}
