//! ML Detect in the live broker: `wardmq serve` with one-second periods
//! and a short model day (`ml_period_seconds = 7200`: 12 periods), an ML
//! profile made with the aws CLI, eight registered devices on mutual TLS
//! (`tests/defender/ml_fleet.py`, paho) sending steady traffic. The model
//! goes PENDING_BUILD → ACTIVE, the gauge on /metrics follows, a burst
//! from one device raises a HIGH alarm in list-active-violations, and a
//! burst from every device raises one profile-level alarm (thing `$fleet`)
//! rather than one per device.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::proc::Proc;

use common::wardmq::Wardmq;
use serde_json::Value;

const CONFIG: &str = "
[defender]
datapoint_seconds = 1
ml_period_seconds = 7200
ml_min_days = 1
ml_min_datapoints = 30
";

const PROFILE: &str = "ml";
/// Enough for the fleet gate (at least five devices anomalous at once).
const DEVICES: usize = 8;
const BEHAVIOR: &str = "msgs";

fn summaries(w: &Wardmq) -> Value {
    w.aws(&[
        "get-behavior-model-training-summaries",
        "--security-profile-name",
        PROFILE,
    ])
}

/// Polls `f` every 500 ms until it returns `Some`, for at most `limit`.
fn wait<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn scrape(w: &Wardmq) -> String {
    let mut s = TcpStream::connect(w.addr()).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read /metrics");
    out
}

#[test]
fn ml_model_builds_and_alarms_on_a_burst() {
    let w = Wardmq::start_defender(CONFIG);
    let behaviors = w.write(
        "behaviors.json",
        &format!(
            r#"[{{"name": "{BEHAVIOR}", "metric": "aws:num-messages-sent",
                 "criteria": {{"mlDetectionConfig": {{"confidenceLevel": "HIGH"}},
                               "consecutiveDatapointsToClear": 3}}}}]"#
        ),
    );
    w.aws(&[
        "create-security-profile",
        "--security-profile-name",
        PROFILE,
        "--behaviors",
        &behaviors,
    ]);
    w.aws(&[
        "attach-security-profile",
        "--security-profile-name",
        PROFILE,
        "--security-profile-target-arn",
        "arn:aws:iot:us-east-1:123456789012:all/things",
    ]);

    // Before any data: one model, pending, nothing collected.
    let s = summaries(&w);
    let rows = s["summaries"].as_array().expect("summaries");
    assert_eq!(rows.len(), 1, "{s}");
    assert_eq!(rows[0]["securityProfileName"], PROFILE);
    assert_eq!(rows[0]["behaviorName"], BEHAVIOR);
    assert_eq!(rows[0]["modelStatus"], "PENDING_BUILD");
    assert_eq!(rows[0]["datapointsCollectionPercentage"], 0.0);
    w.aws_fails(
        &[
            "get-behavior-model-training-summaries",
            "--max-results",
            "11",
        ],
        "InvalidRequestException",
        400,
    );
    w.aws_fails(
        &[
            "get-behavior-model-training-summaries",
            "--security-profile-name",
            "nope",
        ],
        "ResourceNotFoundException",
        404,
    );

    let work = tempfile::tempdir().expect("temp dir");
    // Killed when dropped, so a failing assertion stops the traffic too.
    let mut fleet = Proc::spawn(
        w.python("tests/defender/ml_fleet.py")
            .arg(w.ca_file())
            .arg(w.tls_port.to_string())
            .arg(work.path())
            .arg(DEVICES.to_string()),
    );
    fleet.wait_line("the devices to connect", |l| l == "ready");

    // Collection starts; the first model day that ends with 30 datapoints
    // in it builds the model (at most two 12 s days).
    let started = Instant::now();
    let pending = wait("collection to start", Duration::from_secs(10), || {
        let s = summaries(&w);
        let row = s["summaries"][0].clone();
        (row["datapointsCollectionPercentage"].as_f64()? > 0.0
            || row["trainingDataCollectionStartDate"].is_number())
        .then_some(row)
    });
    assert!(
        pending["trainingDataCollectionStartDate"].is_number(),
        "{pending}"
    );
    let active = wait("the model to be ACTIVE", Duration::from_secs(30), || {
        let s = summaries(&w);
        let row = s["summaries"][0].clone();
        (row["modelStatus"] == "ACTIVE").then_some(row)
    });
    eprintln!(
        "ACTIVE after {:.1}s: {active}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(active["datapointsCollectionPercentage"], 100.0);
    assert!(active["lastModelRefreshDate"].is_number(), "{active}");
    let metrics = scrape(&w);
    assert!(
        metrics.contains(&format!(
            "wardmq_defender_model_status{{profile=\"{PROFILE}\",behavior=\"{BEHAVIOR}\",status=\"ACTIVE\"}} 1"
        )),
        "{metrics}"
    );
    // Steady traffic on an active model raises nothing.
    std::thread::sleep(Duration::from_secs(2));
    let quiet = w.aws(&["list-active-violations", "--security-profile-name", PROFILE]);
    assert_eq!(
        quiet["activeViolations"],
        Value::Array(Vec::new()),
        "{quiet}"
    );

    std::fs::write(work.path().join("attack"), "").expect("attack file");
    fleet.wait_line("the burst", |l| l == "attacked");
    let alarm = wait("the burst's ML alarm", Duration::from_secs(10), || {
        let v = w.aws(&["list-active-violations", "--security-profile-name", PROFILE]);
        v["activeViolations"].as_array()?.first().cloned()
    });
    assert_eq!(alarm["thingName"], "dev-0", "{alarm}");
    assert_eq!(alarm["behavior"]["name"], BEHAVIOR);
    assert_eq!(
        alarm["violationEventAdditionalInfo"]["confidenceLevel"], "HIGH",
        "{alarm}"
    );
    let all = w.aws(&["list-active-violations", "--security-profile-name", PROFILE]);
    assert_eq!(
        all["activeViolations"].as_array().map(Vec::len),
        Some(1),
        "{all}"
    );

    // Every device bursts: one alarm for the profile, none per device
    // (dev-0's own may still be open from its burst).
    std::fs::write(work.path().join("attack-all"), "").expect("attack-all file");
    fleet.wait_line("the fleet's burst", |l| l == "attacked all");
    let fleet_alarm = wait("the fleet-wide ML alarm", Duration::from_secs(10), || {
        let v = w.aws(&["list-active-violations", "--thing-name", "$fleet"]);
        v["activeViolations"].as_array()?.first().cloned()
    });
    assert_eq!(fleet_alarm["securityProfileName"], PROFILE, "{fleet_alarm}");
    assert_eq!(fleet_alarm["behavior"]["name"], BEHAVIOR);
    assert_eq!(
        fleet_alarm["violationEventAdditionalInfo"]["confidenceLevel"], "HIGH",
        "{fleet_alarm}"
    );
    let anomalous = fleet_alarm["lastViolationValue"]["count"]
        .as_u64()
        .expect("count");
    assert!((5..=DEVICES as u64).contains(&anomalous), "{fleet_alarm}");
    let all = w.aws(&["list-active-violations", "--security-profile-name", PROFILE]);
    let things: Vec<&str> = all["activeViolations"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["thingName"].as_str())
        .filter(|t| *t != "$fleet" && *t != "dev-0")
        .collect();
    assert!(things.is_empty(), "device alarms in a fleet event: {all}");

    std::fs::write(work.path().join("stop"), "").expect("stop file");
    fleet.wait_line("ml_fleet.py to finish", |l| l == "ml fleet: ok");
    let status = fleet.child.wait().expect("wait for ml_fleet.py");
    assert!(status.success(), "ml_fleet.py failed");
}
