//! The reserved Device Defender topics: recognising a metrics report
//! publish and naming the topics the broker answers on (spec §6.3).

use std::fmt;

const PREFIX: &str = "$aws/things/";
const MIDDLE: &str = "/defender/metrics/";

/// AWS registry thing names: 1–128 characters from `[a-zA-Z0-9:_-]`
/// (botocore `ThingName`). The pattern is ASCII, so bytes and characters
/// count the same.
pub const MAX_THING_NAME_LEN: usize = 128;

/// The payload format, named by the topic's last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    Json,
    Cbor,
}

impl ReportFormat {
    /// The topic segment, also used in the reply topics.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Cbor => "cbor",
        }
    }

    fn from_segment(s: &str) -> Option<ReportFormat> {
        // AWS topics are case-sensitive: `JSON` is not a metrics topic format.
        match s {
            "json" => Some(ReportFormat::Json),
            "cbor" => Some(ReportFormat::Cbor),
            _ => None,
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which reply a report gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Accepted,
    Rejected,
}

/// Why a thing name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThingNameError {
    Empty,
    TooLong,
    /// A character outside `[a-zA-Z0-9:_-]` (this covers control characters,
    /// which AWS documents as rejected).
    BadCharacter,
}

impl fmt::Display for ThingNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThingNameError::Empty => f.write_str("thing name is empty"),
            ThingNameError::TooLong => {
                write!(f, "thing name is longer than {MAX_THING_NAME_LEN} bytes")
            }
            ThingNameError::BadCharacter => {
                f.write_str("thing name may contain only a-z, A-Z, 0-9, ':', '_' and '-'")
            }
        }
    }
}

/// Checks a thing name against the AWS registry rules.
pub fn validate_thing_name(name: &str) -> Result<(), ThingNameError> {
    if name.is_empty() {
        return Err(ThingNameError::Empty);
    }
    if name.len() > MAX_THING_NAME_LEN {
        return Err(ThingNameError::TooLong);
    }
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ThingNameError::BadCharacter)
    }
}

/// What a PUBLISH topic is, as far as device reports go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicMatch<'a> {
    /// Not a metrics report topic (reply topics included): route it as usual.
    NotMetrics,
    /// A report for `thing` in `format`.
    Report {
        thing: &'a str,
        format: ReportFormat,
    },
    /// A metrics topic whose thing segment breaks the naming rules. The
    /// broker answers on the `/rejected` topic built from the raw segment
    /// (spec §13 case 22 expects a rejection, not silence).
    InvalidThing {
        thing: &'a str,
        format: ReportFormat,
        error: ThingNameError,
    },
    /// `$aws/things/{thing}/defender/metrics/{other}`: AWS defines no reply
    /// topic for other formats, so the broker can only drop it.
    UnsupportedFormat { thing: &'a str, format: &'a str },
}

/// Classifies a PUBLISH topic name.
pub fn parse_topic(topic: &str) -> TopicMatch<'_> {
    let Some(rest) = topic.strip_prefix(PREFIX) else {
        return TopicMatch::NotMetrics;
    };
    // The thing name cannot contain '/', so the first MIDDLE ends it.
    let Some((thing, format)) = rest.split_once(MIDDLE) else {
        return TopicMatch::NotMetrics;
    };
    if thing.contains('/') || format.contains('/') {
        // Other `$aws/things/...` topics, and the reply topics
        // `.../json/accepted` and `.../json/rejected`.
        return TopicMatch::NotMetrics;
    }
    let Some(fmt) = ReportFormat::from_segment(format) else {
        return TopicMatch::UnsupportedFormat { thing, format };
    };
    match validate_thing_name(thing) {
        Ok(()) => TopicMatch::Report { thing, format: fmt },
        Err(error) => TopicMatch::InvalidThing {
            thing,
            format: fmt,
            error,
        },
    }
}

/// The publish topic for `thing`'s reports in `format`.
pub fn report_topic(thing: &str, format: ReportFormat) -> String {
    format!("{PREFIX}{thing}{MIDDLE}{}", format.as_str())
}

/// The topic the broker answers a report on.
pub fn reply_topic(thing: &str, format: ReportFormat, kind: ReplyKind) -> String {
    let suffix = match kind {
        ReplyKind::Accepted => "accepted",
        ReplyKind::Rejected => "rejected",
    };
    format!("{}/{suffix}", report_topic(thing, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_topics_in_both_formats() {
        assert_eq!(
            parse_topic("$aws/things/T1/defender/metrics/json"),
            TopicMatch::Report {
                thing: "T1",
                format: ReportFormat::Json
            }
        );
        assert_eq!(
            parse_topic("$aws/things/my:thing_1-a/defender/metrics/cbor"),
            TopicMatch::Report {
                thing: "my:thing_1-a",
                format: ReportFormat::Cbor
            }
        );
    }

    #[test]
    fn other_topics_are_not_reports() {
        for t in [
            "",
            "$aws/things/T1/defender/metrics/json/accepted",
            "$aws/things/T1/defender/metrics/cbor/rejected",
            "$aws/things/T1/shadow/update",
            "$aws/things/T1/defender/metrics",
            "$aws/things/T1/defender/metrics/",
            "aws/things/T1/defender/metrics/json",
            "$aws/things/a/b/defender/metrics/json",
            "$AWS/things/T1/defender/metrics/json",
        ] {
            let m = parse_topic(t);
            let unsupported_empty = matches!(m, TopicMatch::UnsupportedFormat { format: "", .. });
            assert!(
                m == TopicMatch::NotMetrics || unsupported_empty,
                "{t}: {m:?}"
            );
        }
    }

    #[test]
    fn unknown_formats_are_reported_as_such() {
        assert_eq!(
            parse_topic("$aws/things/T1/defender/metrics/JSON"),
            TopicMatch::UnsupportedFormat {
                thing: "T1",
                format: "JSON"
            }
        );
        assert_eq!(
            parse_topic("$aws/things/T1/defender/metrics/xml"),
            TopicMatch::UnsupportedFormat {
                thing: "T1",
                format: "xml"
            }
        );
    }

    #[test]
    fn thing_name_limits() {
        assert_eq!(validate_thing_name(&"a".repeat(128)), Ok(()));
        assert_eq!(
            validate_thing_name(&"a".repeat(129)),
            Err(ThingNameError::TooLong)
        );
        assert_eq!(validate_thing_name(""), Err(ThingNameError::Empty));
        for bad in ["a b", "a.b", "é", "a+", "a#", "a\u{7}b", "a$"] {
            assert_eq!(
                validate_thing_name(bad),
                Err(ThingNameError::BadCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn spec_13_case_22_bad_thing_names_are_rejected() {
        let long = "é".repeat(64) + "a"; // 129 UTF-8 bytes
        assert_eq!(long.len(), 129);
        let topic = report_topic(&long, ReportFormat::Json);
        assert!(matches!(
            parse_topic(&topic),
            TopicMatch::InvalidThing {
                format: ReportFormat::Json,
                ..
            }
        ));
        let topic = "$aws/things/bad\u{7}name/defender/metrics/json";
        assert_eq!(
            parse_topic(topic),
            TopicMatch::InvalidThing {
                thing: "bad\u{7}name",
                format: ReportFormat::Json,
                error: ThingNameError::BadCharacter
            }
        );
        assert_eq!(
            parse_topic("$aws/things//defender/metrics/json"),
            TopicMatch::InvalidThing {
                thing: "",
                format: ReportFormat::Json,
                error: ThingNameError::Empty
            }
        );
    }

    #[test]
    fn reply_topics() {
        assert_eq!(
            reply_topic("T1", ReportFormat::Json, ReplyKind::Accepted),
            "$aws/things/T1/defender/metrics/json/accepted"
        );
        assert_eq!(
            reply_topic("T1", ReportFormat::Cbor, ReplyKind::Rejected),
            "$aws/things/T1/defender/metrics/cbor/rejected"
        );
        // A reply topic is never itself taken for a report.
        for kind in [ReplyKind::Accepted, ReplyKind::Rejected] {
            assert_eq!(
                parse_topic(&reply_topic("T1", ReportFormat::Json, kind)),
                TopicMatch::NotMetrics
            );
        }
    }
}
