//! Monitoring end to end: `wardmq serve` in a child process with
//! one-second datapoint periods and one-second `$SYS` updates; devices are
//! registered things on mutual TLS (paho). The checks are in
//! `tests/monitoring/monitoring.py`.

mod common;

use std::time::Duration;

use common::wardmq::Wardmq;

const TOKEN: &str = "scrape-me";

fn config(token: &str) -> String {
    format!(
        "[defender]\ndatapoint_seconds = 1\n\
         [[defender.alert_sinks]]\nname = \"hook\"\nkind = \"log\"\n\
         [monitoring]\nsys_interval = 1\nmetrics_token = \"{token}\"\n"
    )
}

fn run(mode: &str, ok_line: &str, extra: &[&str], token: &str) {
    let w = Wardmq::start_defender(&config(token));
    let work = tempfile::tempdir().expect("temp dir");
    let ca = w.ca_file().display().to_string();
    let port = w.tls_port.to_string();
    let workdir = work.path().display().to_string();
    let mut args = vec![ca.as_str(), port.as_str(), workdir.as_str(), mode];
    args.extend_from_slice(extra);
    w.run_python(
        "tests/monitoring/monitoring.py",
        &args,
        ok_line,
        Duration::from_secs(60),
    );
}

/// `/metrics` wants the bearer token, parses with Prometheus' own parser,
/// and its counters move with traffic, a refused CONNECT, a failed TLS
/// handshake and an alarm.
#[test]
fn metrics_parse_and_counters_move() {
    run("metrics", "metrics: ok", &[TOKEN], TOKEN);
}

/// `$SYS/broker/...` reaches only clients whose policies allow it, and no
/// client can publish there.
#[test]
fn sys_topics_follow_policies_and_are_broker_only() {
    run("sys", "sys: ok", &[], "");
}
