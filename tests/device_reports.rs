//! Device Defender metrics reports end to end (spec §13 cases 9, 17-24,
//! the report halves): `wardmq serve` in a child process with mutual TLS
//! and a 1 s datapoint period; devices made over the admin API publish
//! reports with paho-mqtt (tests/defender/reports.py, one case per test,
//! each on its own server) and with the Debian mosquitto clients, and read
//! the answers on `…/accepted` and `…/rejected`; boto3 and the `aws` CLI
//! configure profiles and read violations and metric values.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::wardmq::Wardmq;
use common::{mosquitto_pub, mosquitto_sub};
use serde_json::Value;

/// Reports of one thing at most every second (the shortest interval), so
/// a case that reports twice for a thing waits only that long.
const FAST: &str = "[defender]\ndatapoint_seconds = 1\nreport_min_interval_secs = 1\n";

/// Every case finishes in a few seconds; this bounds a stuck one.
const CASE_LIMIT: Duration = Duration::from_secs(60);

fn case(number: &str, config: &str) {
    let w = Wardmq::start_defender(config);
    let port = w.tls_port.to_string();
    let ca = w.ca_file().display().to_string();
    let work = w.dir.path().display().to_string();
    w.run_python(
        "tests/defender/reports.py",
        &[number, &port, &ca, &work],
        &format!("reports {number}: ok"),
        CASE_LIMIT,
    );
}

#[test]
fn case_09_listening_ports_alarm_and_empty_list_clears() {
    case("9", FAST);
}

#[test]
fn case_17_json_report_accepted_and_bytes_out_retained() {
    case("17", FAST);
}

#[test]
fn case_18_short_name_cbor_report_gets_cbor_replies() {
    case("18", FAST);
}

#[test]
fn case_19_custom_number_as_object_is_malformed() {
    case("19", FAST);
}

#[test]
fn case_20_missing_blocks_are_invalid_payload() {
    case("20", FAST);
}

#[test]
fn case_21_second_report_within_interval_is_throttled() {
    case(
        "21",
        "[defender]\ndatapoint_seconds = 1\nreport_min_interval_secs = 2\n",
    );
}

#[test]
fn case_22_bad_thing_names_rejected_on_their_own_topic() {
    case("22", FAST);
}

#[test]
fn case_23_reports_on_behalf_of_another_thing() {
    case("23", FAST);
}

#[test]
fn case_24_custom_metric_lifecycle_through_reports() {
    case("24", FAST);
}

/// An independent client proves the reply path: the demo device
/// (`wardmq certs`' default policy) reads its replies with
/// `mosquitto_sub`, a device made with the `aws` CLI reports for it with
/// `mosquitto_pub` (case 23 again), then the demo device reports for
/// itself with `mosquitto_rr` on one connection, as a device agent does.
/// The `aws` CLI reads the value back (case 17).
#[test]
fn mosquitto_clients_over_mutual_tls() {
    let w = Wardmq::start_defender(FAST);
    let addr = SocketAddr::from(([127, 0, 0, 1], w.tls_port));
    let ca = w.ca_file().display().to_string();
    let demo_cert = w.dir.path().join("certs/devices/demo-device.pem");
    let demo_key = w.dir.path().join("certs/devices/demo-device.key");
    let (demo_cert, demo_key) = (
        demo_cert.display().to_string(),
        demo_key.display().to_string(),
    );

    let retain = w.write(
        "retain.json",
        r#"[{"metric": "aws:all-bytes-out"}, {"metric": "aws:listening-tcp-ports"}]"#,
    );
    w.aws(&[
        "create-security-profile",
        "--security-profile-name",
        "mq",
        "--additional-metrics-to-retain-v2",
        &retain,
    ]);
    w.aws(&[
        "attach-security-profile",
        "--security-profile-name",
        "mq",
        "--security-profile-target-arn",
        "arn:aws:iot:us-east-1:123456789012:all/things",
    ]);
    let configured = Instant::now();

    // The reporter: its own thing and certificate, and a policy that lets
    // it publish the demo device's reports and nothing else.
    w.aws(&["create-thing", "--thing-name", "mq-reporter"]);
    let keys = w.aws(&[
        "create-keys-and-certificate",
        "--set-as-active",
        "--certificate-pem-outfile",
        "mq-reporter.pem",
        "--private-key-outfile",
        "mq-reporter.key",
    ]);
    let cert_arn = keys["certificateArn"].as_str().expect("certificateArn");
    let doc = w.write(
        "mq-reporter-policy.json",
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
            {"Effect": "Allow", "Action": "iot:Publish",
             "Resource": "arn:aws:iot:*:*:topic/$aws/things/demo-device/defender/metrics/json"}]}"#,
    );
    w.aws(&[
        "create-policy",
        "--policy-name",
        "mq-reporter",
        "--policy-document",
        &doc,
    ]);
    w.aws(&[
        "attach-policy",
        "--policy-name",
        "mq-reporter",
        "--target",
        cert_arn,
    ]);
    w.aws(&[
        "attach-thing-principal",
        "--thing-name",
        "mq-reporter",
        "--principal",
        cert_arn,
    ]);
    let reporter_cert = w.dir.path().join("mq-reporter.pem").display().to_string();
    let reporter_key = w.dir.path().join("mq-reporter.key").display().to_string();

    // The catalog reaches the defender within 100 ms; leave it a second.
    std::thread::sleep(Duration::from_secs(1).saturating_sub(configured.elapsed()));

    let topic = "$aws/things/demo-device/defender/metrics/json";
    let accepted = format!("{topic}/accepted");
    let rejected = format!("{topic}/rejected");
    let sub = mosquitto_sub(
        addr,
        &[
            "--cafile",
            &ca,
            "--cert",
            &demo_cert,
            "--key",
            &demo_key,
            "-i",
            "demo-device",
            "-q",
            "1",
            "-t",
            &accepted,
            "-t",
            &rejected,
            "-v",
            "-C",
            "2",
            "-W",
            "20",
        ],
    );
    let tls = |cert: &str, key: &str| -> Vec<String> {
        ["--cafile", &ca, "--cert", cert, "--key", key]
            .map(String::from)
            .to_vec()
    };
    let publish = |payload: &str| {
        let mut args = tls(&reporter_cert, &reporter_key);
        args.extend(["-i", "mq-reporter", "-q", "1", "-t", topic, "-m", payload].map(String::from));
        mosquitto_pub(addr, &args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    publish(
        r#"{"header": {"report_id": 7001, "version": "1.0"},
            "metrics": {"network_stats": {"bytes_in": 1, "bytes_out": 7007, "packets_in": 1, "packets_out": 1}}}"#,
    );
    let first = Instant::now();
    publish(r#"{"header": {"report_id": 7002}}"#);
    let lines = sub.messages();
    assert_eq!(lines.len(), 2, "two replies: {lines:?}");
    let reply = |topic: &str| -> Value {
        let line = lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{topic} ")))
            .unwrap_or_else(|| panic!("a reply on {topic}: {lines:?}"));
        serde_json::from_str(line).expect("a JSON reply")
    };
    let ok = reply(&accepted);
    assert_eq!(ok["status"], "ACCEPTED", "{ok}");
    assert_eq!(ok["thingName"], "demo-device", "{ok}");
    assert_eq!(ok["reportId"], 7001, "{ok}");
    assert!(ok["timestamp"].is_u64(), "{ok}");
    let no = reply(&rejected);
    assert_eq!(no["status"], "REJECTED", "{no}");
    assert_eq!(no["reportId"], 7002, "{no}");
    assert_eq!(no["statusDetails"]["ErrorCode"], "InvalidPayload", "{no}");
    assert_eq!(
        no["statusDetails"]["ErrorMessage"], "Malformed metrics report",
        "{no}"
    );

    let values = poll_metric_values(&w, "demo-device", "aws:all-bytes-out", 1);
    assert_eq!(values, vec![serde_json::json!({"count": 7007})]);

    // One connection subscribes and reports, as a device agent does.
    std::thread::sleep(Duration::from_millis(1300).saturating_sub(first.elapsed()));
    let mut args = tls(&demo_cert, &demo_key);
    args.extend(
        [
            "-h",
            "127.0.0.1",
            "-p",
            &w.tls_port.to_string(),
            "-i",
            "demo-device",
            "-t",
            topic,
            "-e",
            &accepted,
            "-W",
            "10",
            "-m",
            r#"{"hed": {"rid": 7003, "v": "1.0"}, "met": {"tp": {"pts": [{"pt": 8883}], "t": 1}}}"#,
        ]
        .map(String::from),
    );
    let out = common::run_with_timeout(
        std::process::Command::new("mosquitto_rr").args(&args),
        common::TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mosquitto_rr failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rr: Value = serde_json::from_str(stdout.trim()).expect("mosquitto_rr prints the reply");
    assert_eq!(rr["status"], "ACCEPTED", "{rr}");
    assert_eq!(rr["reportId"], 7003, "{rr}");
    let ports = poll_metric_values(&w, "demo-device", "aws:listening-tcp-ports", 1);
    assert_eq!(ports, vec![serde_json::json!({"ports": [8883]})]);
}

/// ListMetricValues over the `aws` CLI until `n` values are there (at
/// most 5 s: reports are judged and stored asynchronously).
fn poll_metric_values(w: &Wardmq, thing: &str, metric: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let out = w.aws(&[
            "list-metric-values",
            "--thing-name",
            thing,
            "--metric-name",
            metric,
            "--start-time",
            "2000-01-01T00:00:00Z",
            "--end-time",
            "2100-01-01T00:00:00Z",
        ]);
        let values: Vec<Value> = out["metricDatumList"]
            .as_array()
            .map(|a| a.iter().map(|d| d["value"].clone()).collect())
            .unwrap_or_default();
        if values.len() >= n || start.elapsed() > Duration::from_secs(5) {
            return values;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
