//! `wardmq serve` as a user runs it: the printed command works as printed,
//! and SIGTERM stops the broker cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn printed_command_works_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    let mut broker = Command::new(wardmq_bin())
        .args(["serve", "--data"])
        .arg(dir.path().join("data"))
        .args(["--tcp", "127.0.0.1:0", "--admin", ""])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wardmq");
    let mut lines = BufReader::new(broker.stdout.take().expect("stdout")).lines();
    let mut listening = None;
    let mut hint = None;
    while hint.is_none() {
        let line = lines.next().expect("broker output").expect("line");
        if let Some(addr) = line.strip_prefix("wardmq: listening on mqtt://") {
            listening = Some(addr.parse::<std::net::SocketAddr>().expect("addr"));
        }
        if let Some(cmd) = line.strip_prefix("wardmq: try it: ") {
            hint = Some(cmd.to_owned());
        }
    }
    let addr = listening.expect("listening line before the hint");
    let hint = hint.expect("hint");

    let sub = mosquitto_sub(addr, &["-t", "test/hello", "-C", "1"]);
    let words: Vec<&str> = hint.split_whitespace().collect();
    let out = run_with_timeout(Command::new(words[0]).args(&words[1..]), TIMEOUT);
    assert!(out.status.success(), "`{hint}` failed");
    assert_eq!(sub.messages(), vec!["hi"]);

    let pid = broker.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(exit) = broker.try_wait().expect("wait") {
            break exit;
        }
        assert!(start.elapsed() < TIMEOUT, "broker did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "clean exit on SIGTERM: {exit}");
    assert!(
        dir.path().join("data/wardmq.redb").exists(),
        "store created"
    );
}
