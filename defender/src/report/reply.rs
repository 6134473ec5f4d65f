//! The payloads the broker publishes on `…/accepted` and `…/rejected`
//! (spec §6.3). Field names and order follow AWS's documented replies; the
//! reply comes in the format of the report (JSON for `…/json`, CBOR for
//! `…/cbor`), so a device needs one decoder only.

use serde::Serialize;

use super::error::ReportError;
use super::topic::ReportFormat;

/// The reply could not be encoded. Encoding these fixed shapes into memory
/// does not fail in practice; this exists so that no path panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encoding the report reply failed: {0}")]
pub struct ReplyEncodeError(String);

#[derive(Serialize)]
struct Reply<'a> {
    #[serde(rename = "thingName")]
    thing_name: &'a str,
    /// Omitted when a rejected report's id could not be read.
    #[serde(rename = "reportId", skip_serializing_if = "Option::is_none")]
    report_id: Option<u64>,
    status: &'static str,
    #[serde(rename = "statusDetails", skip_serializing_if = "Option::is_none")]
    status_details: Option<StatusDetails>,
    /// Milliseconds since the Unix epoch, as in AWS's examples.
    timestamp: u64,
}

#[derive(Serialize)]
struct StatusDetails {
    #[serde(rename = "ErrorCode")]
    error_code: &'static str,
    #[serde(rename = "ErrorMessage")]
    error_message: String,
}

/// `{"thingName":…,"reportId":…,"status":"ACCEPTED","timestamp":…}`
pub fn accepted_reply(
    format: ReportFormat,
    thing: &str,
    report_id: u64,
    timestamp_ms: u64,
) -> Result<Vec<u8>, ReplyEncodeError> {
    encode(
        format,
        &Reply {
            thing_name: thing,
            report_id: Some(report_id),
            status: "ACCEPTED",
            status_details: None,
            timestamp: timestamp_ms,
        },
    )
}

/// `{"thingName":…,"reportId":…,"status":"REJECTED","statusDetails":{"ErrorCode":…,"ErrorMessage":…},"timestamp":…}`
pub fn rejected_reply(
    format: ReportFormat,
    thing: &str,
    report_id: Option<u64>,
    error: &ReportError,
    timestamp_ms: u64,
) -> Result<Vec<u8>, ReplyEncodeError> {
    encode(
        format,
        &Reply {
            thing_name: thing,
            report_id,
            status: "REJECTED",
            status_details: Some(StatusDetails {
                error_code: error.code().as_str(),
                error_message: error.message(),
            }),
            timestamp: timestamp_ms,
        },
    )
}

fn encode(format: ReportFormat, reply: &Reply<'_>) -> Result<Vec<u8>, ReplyEncodeError> {
    match format {
        ReportFormat::Json => {
            serde_json::to_vec(reply).map_err(|e| ReplyEncodeError(e.to_string()))
        }
        ReportFormat::Cbor => {
            let mut out = Vec::new();
            ciborium::ser::into_writer(reply, &mut out)
                .map_err(|e| ReplyEncodeError(e.to_string()))?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::topic::ThingNameError;
    use super::*;

    fn json(bytes: Result<Vec<u8>, ReplyEncodeError>) -> String {
        String::from_utf8(bytes.expect("encode")).expect("utf-8")
    }

    #[test]
    fn accepted_json_exactly() {
        assert_eq!(
            json(accepted_reply(
                ReportFormat::Json,
                "T1",
                1530304554,
                1635801636023
            )),
            r#"{"thingName":"T1","reportId":1530304554,"status":"ACCEPTED","timestamp":1635801636023}"#
        );
    }

    #[test]
    fn rejected_json_exactly_as_documented() {
        // AWS's documented example (spec §6.3, §13 case 19), whose report id
        // was unknown; with a known id the reply echoes it.
        let err = ReportError::schema("custom_metrics[\"m\"]", "must be an array");
        assert_eq!(
            json(rejected_reply(
                ReportFormat::Json,
                "myThing",
                None,
                &err,
                1635802047699
            )),
            r#"{"thingName":"myThing","status":"REJECTED","statusDetails":{"ErrorCode":"InvalidPayload","ErrorMessage":"Malformed metrics report"},"timestamp":1635802047699}"#
        );
        assert_eq!(
            json(rejected_reply(
                ReportFormat::Json,
                "myThing",
                Some(7),
                &err,
                1
            )),
            r#"{"thingName":"myThing","reportId":7,"status":"REJECTED","statusDetails":{"ErrorCode":"InvalidPayload","ErrorMessage":"Malformed metrics report"},"timestamp":1}"#
        );
    }

    #[test]
    fn every_code_in_a_rejected_reply() {
        let cases = [
            (
                ReportError::Throttled {
                    elapsed: Duration::from_secs(1),
                    min_interval: Duration::from_secs(300),
                },
                r#""statusDetails":{"ErrorCode":"Throttled","ErrorMessage":"Too many metrics reports: at most one every 300 seconds"}"#,
            ),
            (
                ReportError::InvalidThingName(ThingNameError::BadCharacter),
                r#""statusDetails":{"ErrorCode":"InvalidThingName","ErrorMessage":"Invalid thing name: thing name may contain only a-z, A-Z, 0-9, ':', '_' and '-'"}"#,
            ),
            (
                ReportError::UnsupportedVersion("2.0".into()),
                r#""statusDetails":{"ErrorCode":"UnsupportedFormat","ErrorMessage":"Unsupported metrics report version 2.0; supported: 1.0"}"#,
            ),
            (
                ReportError::TooLarge {
                    size: 131_073,
                    limit: 131_072,
                },
                r#""statusDetails":{"ErrorCode":"PayloadTooLarge","ErrorMessage":"Metrics report exceeds the maximum size of 131072 bytes"}"#,
            ),
            (
                ReportError::Syntax("invalid JSON".into()),
                r#""statusDetails":{"ErrorCode":"InvalidPayload","ErrorMessage":"Malformed metrics report"}"#,
            ),
        ];
        for (err, details) in cases {
            let s = json(rejected_reply(ReportFormat::Json, "T1", Some(1), &err, 2));
            let want = format!(
                r#"{{"thingName":"T1","reportId":1,"status":"REJECTED",{details},"timestamp":2}}"#
            );
            assert_eq!(s, want);
        }
    }

    #[test]
    fn a_bad_thing_name_is_escaped_in_the_reply() {
        let err = ReportError::InvalidThingName(ThingNameError::BadCharacter);
        let s = json(rejected_reply(
            ReportFormat::Json,
            "a\u{7}\"b",
            None,
            &err,
            0,
        ));
        let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(v["thingName"], "a\u{7}\"b");
    }

    #[test]
    fn cbor_replies_carry_the_same_map() {
        let err = ReportError::Syntax("x".into());
        for (bytes, json_bytes) in [
            (
                accepted_reply(ReportFormat::Cbor, "T1", 5, 9),
                accepted_reply(ReportFormat::Json, "T1", 5, 9),
            ),
            (
                rejected_reply(ReportFormat::Cbor, "T1", Some(5), &err, 9),
                rejected_reply(ReportFormat::Json, "T1", Some(5), &err, 9),
            ),
        ] {
            let from_cbor: serde_json::Value =
                ciborium::de::from_reader(&bytes.expect("cbor")[..]).expect("decode CBOR");
            let from_json: serde_json::Value =
                serde_json::from_slice(&json_bytes.expect("json")).expect("decode JSON");
            assert_eq!(from_cbor, from_json);
        }
    }
}
