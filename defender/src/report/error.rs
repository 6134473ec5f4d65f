//! Why a report is refused, and the `ErrorCode` / `ErrorMessage` the device
//! is told on the `/rejected` topic.
//!
//! AWS documents one code only, `InvalidPayload` with the message
//! "Malformed metrics report" (spec §6.3); the other codes are the set the
//! spec proposes for what AWS leaves undocumented. For `InvalidPayload` the
//! device gets AWS's message verbatim, whatever the cause, so clients written
//! against AWS see what they expect; the precise cause (`Display`) is for the
//! broker's log and the defender's events.

use std::fmt;
use std::time::Duration;

use super::topic::ThingNameError;

/// The `statusDetails.ErrorCode` values the broker sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The payload is not a well-formed report (syntax or schema).
    InvalidPayload,
    /// The thing sent its previous report less than the minimum interval ago.
    Throttled,
    /// The topic's thing name breaks the naming rules.
    InvalidThingName,
    /// The report declares a version other than the one we understand.
    UnsupportedFormat,
    /// The payload exceeds the size limit.
    PayloadTooLarge,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidPayload => "InvalidPayload",
            ErrorCode::Throttled => "Throttled",
            ErrorCode::InvalidThingName => "InvalidThingName",
            ErrorCode::UnsupportedFormat => "UnsupportedFormat",
            ErrorCode::PayloadTooLarge => "PayloadTooLarge",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// AWS's message for every `InvalidPayload` rejection.
pub const MALFORMED_MESSAGE: &str = "Malformed metrics report";

/// A refused report. Every variant is the device's fault (DESIGN habit 5).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    /// Not valid JSON or CBOR at all.
    #[error("{0}")]
    Syntax(String),
    /// Valid JSON/CBOR, but not a valid report: `path` names the field by
    /// its long name.
    #[error("{path}: {problem}")]
    Schema { path: String, problem: String },
    #[error("unsupported report version {0:?} (supported: \"1.0\")")]
    UnsupportedVersion(String),
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid thing name: {0}")]
    InvalidThingName(ThingNameError),
    #[error(
        "report sent {elapsed:?} after the previous one; the minimum interval is {min_interval:?}"
    )]
    Throttled {
        elapsed: Duration,
        min_interval: Duration,
    },
}

impl ReportError {
    pub(crate) fn schema(path: impl Into<String>, problem: impl Into<String>) -> ReportError {
        ReportError::Schema {
            path: path.into(),
            problem: problem.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ReportError::Syntax(_) | ReportError::Schema { .. } => ErrorCode::InvalidPayload,
            ReportError::UnsupportedVersion(_) => ErrorCode::UnsupportedFormat,
            ReportError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            ReportError::InvalidThingName(_) => ErrorCode::InvalidThingName,
            ReportError::Throttled { .. } => ErrorCode::Throttled,
        }
    }

    /// The `statusDetails.ErrorMessage` the device is sent.
    pub fn message(&self) -> String {
        match self {
            ReportError::Syntax(_) | ReportError::Schema { .. } => MALFORMED_MESSAGE.to_owned(),
            ReportError::UnsupportedVersion(v) => {
                format!("Unsupported metrics report version {v}; supported: 1.0")
            }
            ReportError::TooLarge { limit, .. } => {
                format!("Metrics report exceeds the maximum size of {limit} bytes")
            }
            ReportError::InvalidThingName(e) => format!("Invalid thing name: {e}"),
            ReportError::Throttled { min_interval, .. } => format!(
                "Too many metrics reports: at most one every {} seconds",
                min_interval.as_secs()
            ),
        }
    }
}

/// A refused report together with its `report_id` when the header was read
/// far enough to know it, so the reply can echo it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub report_id: Option<u64>,
    pub error: ReportError,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.report_id {
            Some(id) => write!(f, "report {id}: {}", self.error),
            None => self.error.fmt(f),
        }
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_code_and_message() {
        let cases = [
            (
                ReportError::Syntax("invalid JSON: x".into()),
                "InvalidPayload",
                "Malformed metrics report",
            ),
            (
                ReportError::schema("header.report_id", "is missing"),
                "InvalidPayload",
                "Malformed metrics report",
            ),
            (
                ReportError::UnsupportedVersion("2.0".into()),
                "UnsupportedFormat",
                "Unsupported metrics report version 2.0; supported: 1.0",
            ),
            (
                ReportError::TooLarge {
                    size: 200_000,
                    limit: 131_072,
                },
                "PayloadTooLarge",
                "Metrics report exceeds the maximum size of 131072 bytes",
            ),
            (
                ReportError::InvalidThingName(ThingNameError::TooLong),
                "InvalidThingName",
                "Invalid thing name: thing name is longer than 128 bytes",
            ),
            (
                ReportError::Throttled {
                    elapsed: Duration::from_secs(10),
                    min_interval: Duration::from_secs(300),
                },
                "Throttled",
                "Too many metrics reports: at most one every 300 seconds",
            ),
        ];
        for (err, code, message) in cases {
            assert_eq!(err.code().as_str(), code, "{err}");
            assert_eq!(err.message(), message, "{err}");
        }
    }

    #[test]
    fn display_carries_the_detail_for_logs() {
        let e = ReportError::schema("metrics.network_stats.bytes_in", "must be an integer");
        assert_eq!(
            e.to_string(),
            "metrics.network_stats.bytes_in: must be an integer"
        );
        let r = Rejection {
            report_id: Some(7),
            error: e,
        };
        assert_eq!(
            r.to_string(),
            "report 7: metrics.network_stats.bytes_in: must be an integer"
        );
    }
}
