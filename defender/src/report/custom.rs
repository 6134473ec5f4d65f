//! Custom metric types and the rules their values obey (spec §6.2). Shared
//! by the report parser and, later, the custom-metric API and behaviour
//! criteria, so a value means the same thing wherever it comes from.
//!
//! AWS does not reject a report whose custom value breaks these rules: the
//! report is accepted and the value is silently not retained (spec §6.2,
//! §13 case 24). The parser follows that, and says which values it dropped.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Longest custom metric name (botocore `MetricName`: 1–128, `[a-zA-Z0-9:_-]+`).
pub const MAX_METRIC_NAME_LEN: usize = 128;

/// Most significant digits a `number` or `number-list` value may have.
pub const MAX_SIGNIFICANT_DIGITS: usize = 15;

/// One type for the API model and the report rules.
pub use crate::detect::model::CustomMetricType;

impl CustomMetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomMetricType::Number => "number",
            CustomMetricType::NumberList => "number-list",
            CustomMetricType::StringList => "string-list",
            CustomMetricType::IpAddressList => "ip-address-list",
        }
    }
}

impl fmt::Display for CustomMetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown metric type name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMetricType(pub String);

impl fmt::Display for UnknownMetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown custom metric type {:?} (expected number, number-list, string-list or ip-address-list)",
            self.0
        )
    }
}

impl std::error::Error for UnknownMetricType {}

impl FromStr for CustomMetricType {
    type Err = UnknownMetricType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "number" => Ok(CustomMetricType::Number),
            "number-list" => Ok(CustomMetricType::NumberList),
            "string-list" => Ok(CustomMetricType::StringList),
            "ip-address-list" => Ok(CustomMetricType::IpAddressList),
            other => Err(UnknownMetricType(other.to_owned())),
        }
    }
}

/// A custom metric value as a device reports it. In the report the kinds
/// are spelt `number`, `number_list`, `string_list` and `ip_list`.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomValue {
    Number(f64),
    NumberList(Vec<f64>),
    StringList(Vec<String>),
    IpList(Vec<IpAddr>),
}

impl CustomValue {
    /// The metric type this value belongs to.
    pub fn metric_type(&self) -> CustomMetricType {
        match self {
            CustomValue::Number(_) => CustomMetricType::Number,
            CustomValue::NumberList(_) => CustomMetricType::NumberList,
            CustomValue::StringList(_) => CustomMetricType::StringList,
            CustomValue::IpList(_) => CustomMetricType::IpAddressList,
        }
    }
}

/// Why a custom metric (name or value) is not retained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomValueError {
    #[error("custom metric name must be 1-{MAX_METRIC_NAME_LEN} characters from a-z, A-Z, 0-9, ':', '_', '-'")]
    BadName,
    #[error("custom metric names may not begin with \"aws:\"")]
    ReservedName,
    #[error("value of type {found} given for a metric of type {expected}")]
    WrongType {
        expected: CustomMetricType,
        found: CustomMetricType,
    },
    #[error("number {0} is not finite")]
    NotFinite(String),
    #[error("number {0} has more than {MAX_SIGNIFICANT_DIGITS} significant digits")]
    TooPrecise(String),
    #[error("string {0:?} must be non-empty and contain only A-Z, a-z, ':', '_', '-', '/', '.'")]
    BadString(String),
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    BadIp(String),
}

/// Checks a custom metric name: the `MetricName` pattern, and no `aws:`
/// prefix (reserved for built-in metrics).
pub fn validate_metric_name(name: &str) -> Result<(), CustomValueError> {
    let pattern_ok = !name.is_empty()
        && name.len() <= MAX_METRIC_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
    if !pattern_ok {
        return Err(CustomValueError::BadName);
    }
    if name.starts_with("aws:") {
        return Err(CustomValueError::ReservedName);
    }
    Ok(())
}

/// A `number` / `number-list` element: finite, at most 15 significant digits,
/// either sign.
pub fn validate_number(x: f64) -> Result<(), CustomValueError> {
    if !x.is_finite() {
        return Err(CustomValueError::NotFinite(x.to_string()));
    }
    if significant_digits(x) > MAX_SIGNIFICANT_DIGITS {
        return Err(CustomValueError::TooPrecise(x.to_string()));
    }
    Ok(())
}

/// An integer `number` / `number-list` element (JSON and CBOR integers are
/// checked exactly, before any rounding to f64 could hide extra digits).
pub fn validate_integer(n: i128) -> Result<(), CustomValueError> {
    let digits = n.unsigned_abs().to_string();
    if digits.trim_end_matches('0').len() > MAX_SIGNIFICANT_DIGITS {
        return Err(CustomValueError::TooPrecise(n.to_string()));
    }
    Ok(())
}

/// Significant digits of the shortest decimal that reads back as `x`
/// (Rust's `{:e}` prints exactly that mantissa), so `0.1` has 1 and
/// `1e20` has 1, whatever the binary representation.
fn significant_digits(x: f64) -> usize {
    let s = format!("{:e}", x.abs());
    let mantissa = s.split('e').next().unwrap_or("");
    mantissa.bytes().filter(u8::is_ascii_digit).count()
}

/// A `string-list` element: the characters the AWS SDK documents
/// (letters and `: _ - / .`; the source lists no digits, see the report).
pub fn validate_string(s: &str) -> Result<(), CustomValueError> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphabetic() || matches!(b, b':' | b'_' | b'-' | b'/' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CustomValueError::BadString(s.to_owned()))
    }
}

/// Parses an `ip_list` element: a plain IPv4 or IPv6 address (no port, no
/// prefix length).
pub fn parse_ip(s: &str) -> Result<IpAddr, CustomValueError> {
    s.parse().map_err(|_| CustomValueError::BadIp(s.to_owned()))
}

/// Checks `value` against the metric's declared type and its element rules.
/// An empty list is valid: it conforms to any set criteria and clears a
/// violation (spec §6.3).
pub fn validate_value(ty: CustomMetricType, value: &CustomValue) -> Result<(), CustomValueError> {
    if value.metric_type() != ty {
        return Err(CustomValueError::WrongType {
            expected: ty,
            found: value.metric_type(),
        });
    }
    match value {
        CustomValue::Number(x) => validate_number(*x),
        CustomValue::NumberList(xs) => xs.iter().try_for_each(|x| validate_number(*x)),
        CustomValue::StringList(ss) => ss.iter().try_for_each(|s| validate_string(s)),
        // Typed addresses are valid by construction; `parse_ip` checks text.
        CustomValue::IpList(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for t in [
            CustomMetricType::Number,
            CustomMetricType::NumberList,
            CustomMetricType::StringList,
            CustomMetricType::IpAddressList,
        ] {
            assert_eq!(t.as_str().parse::<CustomMetricType>(), Ok(t));
        }
        assert!("ip-list".parse::<CustomMetricType>().is_err());
        assert!("Number".parse::<CustomMetricType>().is_err());
    }

    #[test]
    fn metric_names() {
        assert_eq!(validate_metric_name("batteryPercentage"), Ok(()));
        assert_eq!(validate_metric_name("a:b_c-1"), Ok(()));
        assert_eq!(validate_metric_name(&"a".repeat(128)), Ok(()));
        assert_eq!(
            validate_metric_name(&"a".repeat(129)),
            Err(CustomValueError::BadName)
        );
        assert_eq!(validate_metric_name(""), Err(CustomValueError::BadName));
        assert_eq!(
            validate_metric_name("my metric"),
            Err(CustomValueError::BadName)
        );
        // §13 case 24: `aws:battery` is refused.
        assert_eq!(
            validate_metric_name("aws:battery"),
            Err(CustomValueError::ReservedName)
        );
    }

    #[test]
    fn numbers_up_to_15_significant_digits_either_sign() {
        for ok in [
            0.0,
            -0.0,
            1.0,
            -50.0,
            0.1,
            1e20,
            -1.5e-300,
            123_456_789_012_345.0,
            0.123_456_789_012_345,
            -999_999_999_999_999.0,
        ] {
            assert_eq!(validate_number(ok), Ok(()), "{ok}");
        }
        for bad in [1_234_567_890_123_456.0, 0.123_456_789_012_345_6, 1.0 / 3.0] {
            assert!(
                matches!(validate_number(bad), Err(CustomValueError::TooPrecise(_))),
                "{bad}"
            );
        }
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                validate_number(bad),
                Err(CustomValueError::NotFinite(_))
            ));
        }
    }

    #[test]
    fn integers_are_checked_exactly() {
        assert_eq!(validate_integer(0), Ok(()));
        assert_eq!(validate_integer(-999_999_999_999_999), Ok(()));
        assert_eq!(validate_integer(123_000_000_000_000_000_000), Ok(()));
        // 20 significant digits, though as an f64 it would print as 1e19.
        assert!(validate_integer(10_000_000_000_000_000_001).is_err());
        assert!(validate_integer(1_234_567_890_123_456).is_err());
    }

    #[test]
    fn strings_use_the_documented_characters() {
        for ok in ["a", "Z", "a:b_c-d/e.f", "/usr/bin", "..."] {
            assert_eq!(validate_string(ok), Ok(()), "{ok}");
        }
        // §13 case 24: "bad value!" is not retained.
        for bad in ["bad value!", "", "é", "a\u{0}", "v1"] {
            assert!(validate_string(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(
            parse_ip("172.0.0.10"),
            Ok("172.0.0.10".parse().expect("ip"))
        );
        assert!(parse_ip("2001:db8::1").is_ok());
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/24",
            "1.2.3.4:80",
            "[::1]",
            "256.0.0.1",
            "host",
        ] {
            assert!(parse_ip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validate_value_checks_type_then_elements() {
        let v = CustomValue::Number(1.0);
        assert_eq!(validate_value(CustomMetricType::Number, &v), Ok(()));
        assert_eq!(
            validate_value(CustomMetricType::NumberList, &v),
            Err(CustomValueError::WrongType {
                expected: CustomMetricType::NumberList,
                found: CustomMetricType::Number
            })
        );
        let list = CustomValue::NumberList(vec![1.0, 0.1, 1.0 / 3.0]);
        assert!(validate_value(CustomMetricType::NumberList, &list).is_err());
        let empty = CustomValue::StringList(vec![]);
        assert_eq!(validate_value(CustomMetricType::StringList, &empty), Ok(()));
        let strings = CustomValue::StringList(vec!["ok".into(), "bad value!".into()]);
        assert!(validate_value(CustomMetricType::StringList, &strings).is_err());
        let ips = CustomValue::IpList(vec!["::1".parse().expect("ip")]);
        assert_eq!(
            validate_value(CustomMetricType::IpAddressList, &ips),
            Ok(())
        );
    }
}
