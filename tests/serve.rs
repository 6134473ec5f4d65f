//! `wardmq serve` as a user runs it on a fresh checkout: it creates the dev
//! PKI and a demo device, the printed `mosquitto_pub` reaches it over
//! mutual TLS exactly as printed, a restart reuses everything, and SIGTERM
//! stops it cleanly.

mod common;

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn serve(dir: &Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut broker = Command::new(wardmq_bin())
        .args(["serve", "--data"])
        .arg(dir.join("data"))
        .arg("--certs")
        .arg(dir.join("certs"))
        .args(["--tls", "127.0.0.1:0", "--admin", ""])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wardmq");
    let lines = BufReader::new(broker.stdout.take().expect("stdout")).lines();
    (broker, lines)
}

/// Reads lines until the printed `mosquitto_pub` hint; returns it.
fn hint(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    let mut listening = false;
    loop {
        let line = lines.next().expect("broker output").expect("line");
        listening |= line.starts_with("wardmq: listening on mqtts://");
        if let Some(cmd) = line.strip_prefix("wardmq: try it: ") {
            assert!(listening, "the listening line comes first");
            return cmd.to_owned();
        }
    }
}

fn run_printed(hint: &str) {
    let words: Vec<&str> = hint.split_whitespace().collect();
    assert_eq!(words[0], "mosquitto_pub");
    assert!(hint.contains("--cert"), "a mutual-TLS command: {hint}");
    let out = run_with_timeout(Command::new(words[0]).args(&words[1..]), TIMEOUT);
    assert!(
        out.status.success(),
        "`{hint}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sigterm(mut broker: Child) {
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
}

#[test]
fn fresh_start_makes_a_dev_pki_and_the_printed_command_works_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let (broker, mut lines) = serve(dir.path());
    let printed = hint(&mut lines);
    for file in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        assert!(
            dir.path().join("certs").join(file).exists(),
            "{file} created"
        );
    }
    run_printed(&printed);
    sigterm(broker);
    assert!(
        dir.path().join("data/wardmq.redb").exists(),
        "store created"
    );

    // A second start reuses the PKI and the registry: the same command
    // still works (on the new port it prints).
    let (broker, mut lines) = serve(dir.path());
    run_printed(&hint(&mut lines));
    sigterm(broker);
}

#[test]
fn plain_tcp_when_asked_for() {
    let dir = tempfile::tempdir().expect("dir");
    let mut broker = Command::new(wardmq_bin())
        .args(["serve", "--data"])
        .arg(dir.path().join("data"))
        .arg("--certs")
        .arg(dir.path().join("certs"))
        .args(["--tcp", "127.0.0.1:0", "--tls", "", "--admin", ""])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wardmq");
    let mut lines = BufReader::new(broker.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = lines.next().expect("broker output").expect("line");
        if let Some(addr) = line.strip_prefix("wardmq: listening on mqtt://") {
            break addr.parse::<std::net::SocketAddr>().expect("addr");
        }
    };
    let sub = mosquitto_sub(addr, &["-t", "test/hello", "-C", "1"]);
    mosquitto_pub(addr, &["-t", "test/hello", "-m", "hi"]);
    assert_eq!(sub.messages(), vec!["hi"]);
    assert!(
        !dir.path().join("certs").exists(),
        "no PKI made when TLS is off"
    );
    sigterm(broker);
}
