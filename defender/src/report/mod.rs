//! Device metrics reports: what devices publish on
//! `$aws/things/{thing}/defender/metrics/{json,cbor}` and what the broker
//! answers (spec §6.3). Everything here is pure: no I/O, no broker state;
//! the caller supplies the clock.
//!
//! How the broker uses it, for one PUBLISH:
//! 1. [`parse_topic`] — not a metrics topic: route as usual. A bad thing
//!    name is answered on the `/rejected` topic with
//!    [`ReportError::InvalidThingName`]; an unknown format has no reply
//!    topic and is dropped. The thing is the topic's, not the sender's: a
//!    device may report on behalf of another thing its policy allows.
//! 2. [`parse_report`] — a [`DeviceReport`] or a [`Rejection`].
//! 3. [`ReportThrottle::check`] — only for valid reports, so a device that
//!    fixes a malformed report need not wait out the interval.
//! 4. Publish [`accepted_reply`] or [`rejected_reply`] on [`reply_topic`].
//!
//! Whether a custom metric in the report is one the account defined, and of
//! the type it was defined with, needs the registry: the caller checks it
//! with [`validate_value`] against the defined [`CustomMetricType`].

mod custom;
mod error;
mod fuzz;
pub mod keys;
mod model;
mod node;
mod parse;
mod reply;
mod throttle;
mod topic;
mod validate;

pub use custom::{
    parse_ip, validate_integer, validate_metric_name, validate_number, validate_string,
    validate_value, CustomMetricType, CustomValue, CustomValueError, UnknownMetricType,
    MAX_METRIC_NAME_LEN, MAX_SIGNIFICANT_DIGITS,
};
pub use error::{ErrorCode, Rejection, ReportError, MALFORMED_MESSAGE};
pub use fuzz::fuzz_check;
pub use model::{
    Connection, DeviceMetric, DeviceMetrics, DeviceReport, ListeningPort, NotRetained,
    ReportedValue,
};
pub use parse::{parse_report, MAX_REPORT_SIZE};
pub use reply::{accepted_reply, rejected_reply, ReplyEncodeError};
pub use throttle::{
    ReportThrottle, ThrottleConfigError, DEFAULT_MAX_THINGS, DEFAULT_MIN_INTERVAL,
    SHORTEST_MIN_INTERVAL,
};
pub use topic::{
    parse_topic, reply_topic, report_topic, validate_thing_name, ReplyKind, ReportFormat,
    ThingNameError, TopicMatch, MAX_THING_NAME_LEN,
};
pub use validate::{MAX_COUNT, MAX_INTERFACE_LEN, SUPPORTED_VERSION};

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod parse_tests;
