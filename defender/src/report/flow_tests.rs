//! The whole exchange as the broker will drive it: topic, report, throttle,
//! reply topic and payload (spec §13 cases 17, 21, 22, 23).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

/// What the broker would publish back: (topic, payload as JSON).
fn handle(
    throttle: &mut ReportThrottle,
    topic: &str,
    payload: &[u8],
    now: Instant,
) -> Option<(String, Value)> {
    const TS: u64 = 1_700_000_000_000;
    let (thing, format, result) = match parse_topic(topic) {
        TopicMatch::NotMetrics | TopicMatch::UnsupportedFormat { .. } => return None,
        TopicMatch::InvalidThing {
            thing,
            format,
            error,
        } => (
            thing,
            format,
            Err(Rejection {
                report_id: None,
                error: ReportError::InvalidThingName(error),
            }),
        ),
        TopicMatch::Report { thing, format } => {
            let result = parse_report(format, payload).and_then(|r| {
                throttle.check(thing, now).map_err(|error| Rejection {
                    report_id: Some(r.report_id),
                    error,
                })?;
                Ok(r)
            });
            (thing, format, result)
        }
    };
    let (kind, bytes) = match result {
        Ok(r) => (
            ReplyKind::Accepted,
            accepted_reply(format, thing, r.report_id, TS),
        ),
        Err(rej) => (
            ReplyKind::Rejected,
            rejected_reply(format, thing, rej.report_id, &rej.error, TS),
        ),
    };
    let bytes = bytes.expect("encode reply");
    let value = match format {
        ReportFormat::Json => serde_json::from_slice(&bytes).expect("JSON reply"),
        ReportFormat::Cbor => ciborium::de::from_reader(&bytes[..]).expect("CBOR reply"),
    };
    Some((reply_topic(thing, format, kind), value))
}

fn report(id: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "header": {"report_id": id, "version": "1.0"},
        "metrics": {"network_stats": {"bytes_out": 4242}}
    }))
    .expect("encode")
}

#[test]
fn spec_13_case_17_accepted_on_the_json_accepted_topic() {
    let mut t = ReportThrottle::default();
    let (topic, reply) = handle(
        &mut t,
        "$aws/things/T1/defender/metrics/json",
        &report(1530304554),
        Instant::now(),
    )
    .expect("a reply");
    assert_eq!(topic, "$aws/things/T1/defender/metrics/json/accepted");
    assert_eq!(
        reply,
        json!({"thingName": "T1", "reportId": 1530304554u64, "status": "ACCEPTED", "timestamp": 1_700_000_000_000u64})
    );
}

#[test]
fn spec_13_case_21_second_report_within_the_interval_is_throttled() {
    let mut t = ReportThrottle::default();
    let t0 = Instant::now();
    let topic = "$aws/things/T1/defender/metrics/json";
    handle(&mut t, topic, &report(1), t0).expect("reply");
    let (reply_topic, reply) =
        handle(&mut t, topic, &report(2), t0 + Duration::from_secs(60)).expect("reply");
    assert_eq!(reply_topic, "$aws/things/T1/defender/metrics/json/rejected");
    assert_eq!(reply["status"], "REJECTED");
    assert_eq!(reply["reportId"], 2);
    assert_eq!(reply["statusDetails"]["ErrorCode"], "Throttled");
    // A malformed report does not use up the interval.
    let mut t = ReportThrottle::default();
    let (_, reply) = handle(&mut t, topic, b"{", t0).expect("reply");
    assert_eq!(reply["statusDetails"]["ErrorCode"], "InvalidPayload");
    let (_, reply) = handle(&mut t, topic, &report(3), t0 + Duration::from_secs(1)).expect("reply");
    assert_eq!(reply["status"], "ACCEPTED");
}

#[test]
fn spec_13_case_22_bad_thing_name_is_rejected() {
    let mut t = ReportThrottle::default();
    let (topic, reply) = handle(
        &mut t,
        "$aws/things/bad\u{7}/defender/metrics/cbor",
        &report(1),
        Instant::now(),
    )
    .expect("reply");
    assert_eq!(topic, "$aws/things/bad\u{7}/defender/metrics/cbor/rejected");
    assert_eq!(reply["statusDetails"]["ErrorCode"], "InvalidThingName");
    assert_eq!(reply["thingName"], "bad\u{7}");
}

#[test]
fn spec_13_case_23_reports_are_attributed_to_the_topic_thing() {
    // The sender (say, client Thing-1) is not an input at all: the reply and
    // the metrics belong to the thing named in the topic.
    let mut t = ReportThrottle::default();
    let (topic, reply) = handle(
        &mut t,
        "$aws/things/Thing-2/defender/metrics/json",
        &report(1),
        Instant::now(),
    )
    .expect("reply");
    assert_eq!(topic, "$aws/things/Thing-2/defender/metrics/json/accepted");
    assert_eq!(reply["thingName"], "Thing-2");
}

#[test]
fn other_topics_get_no_reply() {
    let mut t = ReportThrottle::default();
    for topic in [
        "sensors/1",
        "$aws/things/T1/defender/metrics/json/accepted",
        "$aws/things/T1/defender/metrics/xml",
    ] {
        assert_eq!(
            handle(&mut t, topic, &report(1), Instant::now()),
            None,
            "{topic}"
        );
    }
}
