//! `wardmq defender replay` as a user runs it: a small CSV written to a temp
//! directory, the binary, the JSON lines it writes.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;

const TIMEOUT: Duration = Duration::from_secs(60);
const HEADER: &str = "ts,device_id,profile,auth_failures,conn_attempts,disconnects,msgs_sent,msgs_received,msg_bytes_mean,msg_bytes_max";

fn wardmq(args: &[&str], dir: &Path) -> Output {
    common::run_with_timeout(
        Command::new(common::wardmq_bin())
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null()),
        TIMEOUT,
    )
}

#[test]
fn replay_writes_one_alarm_for_a_credential_burst() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_717_372_800i64; // a Monday
    let mut csv = format!("{HEADER}\n");
    let attack = 3 * 288 + 50;
    // The day window holds the alarm for a day after the burst; a fifth day
    // lets it clear.
    for p in 0..5 * 288 {
        let ts = t0 + p * 300;
        for d in 0..8 {
            let auth = if d == 2 && (attack..attack + 6).contains(&p) {
                40
            } else {
                0
            };
            let sent = 20 + (p * 7 + d * 3) % 5;
            writeln!(
                csv,
                "{ts},dev{d},meters,{auth},0,0,{sent},2,200,{}",
                250 + d
            )
            .expect("fmt");
        }
    }
    std::fs::write(dir.path().join("m.csv"), csv).expect("write csv");
    let out = wardmq(
        &[
            "defender",
            "replay",
            "--in",
            "m.csv",
            "--out",
            "a.jsonl",
            "--min-days",
            "3",
            "--min-datapoints",
            "1000",
            "--clear-after",
            "2",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("a.jsonl")).expect("output");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let raised: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["event"] == "in-alarm").collect();
    assert_eq!(raised.len(), 1, "{text}");
    let a = raised[0];
    assert_eq!(a["device_id"], "dev2");
    assert_eq!(a["metric"], "aws:num-authorization-failures");
    assert_eq!(a["ts"], t0 + attack * 300);
    assert_eq!(a["level"], "HIGH");
    let cleared: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "alarm-cleared")
        .collect();
    assert_eq!(cleared.len(), 1, "{text}");
    assert_eq!(cleared[0]["level"], "HIGH");
    assert!(cleared[0]["ts"].as_i64() > a["ts"].as_i64());

    // Unsorted input is refused with the line number.
    std::fs::write(
        dir.path().join("bad.csv"),
        format!("{HEADER}\n600,a,p,0,0,0,1,1,1,1\n300,a,p,0,0,0,1,1,1,1\n"),
    )
    .expect("write");
    let out = wardmq(
        &["defender", "replay", "--in", "bad.csv", "--out", "b.jsonl"],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("sorted"), "{err}");
}
