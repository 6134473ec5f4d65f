//! Device metrics reports: what devices publish on
//! `$aws/things/{thing}/defender/metrics/{json,cbor}` and what the broker
//! answers (spec §6.3). Everything here is pure: no I/O, no broker state;
//! the caller supplies the clock.

mod custom;
pub mod keys;
mod topic;

pub use custom::{
    parse_ip, validate_integer, validate_metric_name, validate_number, validate_string,
    validate_value, CustomMetricType, CustomValue, CustomValueError, UnknownMetricType,
    MAX_METRIC_NAME_LEN, MAX_SIGNIFICANT_DIGITS,
};
pub use topic::{
    parse_topic, reply_topic, report_topic, validate_thing_name, ReplyKind, ReportFormat,
    ThingNameError, TopicMatch, MAX_THING_NAME_LEN,
};
