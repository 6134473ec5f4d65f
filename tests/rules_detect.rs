//! Rules Detect end to end (spec §13 cases 1, 2, 3, 4, 8, 10, 11, 12, 13,
//! 14, 15, 16): `wardmq serve` in a child process with one-second datapoint
//! periods, devices that are registered things talking MQTT 5 over mutual
//! TLS (paho), profiles configured and results read with boto3, alerts
//! delivered to a webhook receiver run here. The cases themselves are in
//! `tests/defender/rules_detect.py`; each prints `ok case N`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::wardmq::Wardmq;

const SECRET: &str = "e2e-hook-secret";

/// An HTTP/1.1 receiver on 127.0.0.1 that answers every request 200 and
/// writes it to `DIR/NNNNN.req` (request line's method and target, the
/// `x-wardmq-signature` value, then the raw body, separated by `\n`),
/// renamed into place so a reader never sees half a file. Keeps
/// connections alive, as the webhook sink reuses its connection.
struct Receiver {
    port: u16,
    dir: tempfile::TempDir,
}

fn receiver() -> Receiver {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let port = listener.local_addr().expect("addr").port();
    let path = dir.path().to_path_buf();
    let seq = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let (path, seq) = (path.clone(), seq.clone());
            std::thread::spawn(move || serve(stream, &path, &seq));
        }
    });
    Receiver { port, dir }
}

fn serve(stream: TcpStream, dir: &Path, seq: &AtomicUsize) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (mut length, mut signature) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("x-wardmq-signature") {
                    value.clone_into(&mut signature);
                }
            }
        }
        let mut body = vec![0; length];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let mut record = format!("{method} {target}\n{signature}\n").into_bytes();
        record.extend_from_slice(&body);
        let n = seq.fetch_add(1, Ordering::SeqCst);
        let tmp = dir.join(format!("{n:05}.tmp"));
        std::fs::write(&tmp, &record).expect("write request");
        std::fs::rename(&tmp, dir.join(format!("{n:05}.req"))).expect("rename request");
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn config(hook_port: u16) -> String {
    format!(
        r#"
[defender]
datapoint_seconds = 1
invalidate_after_secs = 3

[[defender.alert_sinks]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/hooks/wardmq"
secret = "{SECRET}"
"#
    )
}

/// Runs `rules_detect.py` with `cases` (all when empty) against a fresh
/// server and checks that each printed its `ok` line.
fn run_cases(cases: &[&str]) {
    let hook = receiver();
    let w = Wardmq::start_defender(&config(hook.port));
    let work = tempfile::tempdir().expect("temp dir");
    let ca: PathBuf = w.ca_file();
    let port = w.tls_port.to_string();
    let only = cases.join(",");
    let out = w.run_python(
        "tests/defender/rules_detect.py",
        &[
            &ca.display().to_string(),
            &port,
            &hook.dir.path().display().to_string(),
            SECRET,
            &work.path().display().to_string(),
            &only,
        ],
        "rules detect: ok",
        Duration::from_secs(100),
    );
    println!("{out}");
    for case in cases {
        assert!(
            out.lines().any(|l| l == format!("ok case {case}")),
            "case {case} did not report ok:\n{out}"
        );
    }
}

#[test]
fn rules_detect_cases() {
    run_cases(&[
        "1", "2", "3", "4", "8", "10", "11", "12", "13", "14", "15", "16",
    ]);
}

/// A device connected before some profile starts using another dimension
/// keeps its dimension behaviours working without reconnecting (its
/// counters follow the new dimension set, defender/src/metrics/dimension.rs).
#[test]
fn dimension_behaviours_survive_a_new_dimension_elsewhere() {
    run_cases(&["dimension-change"]);
}
