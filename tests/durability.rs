//! The broker process is killed with SIGKILL under QoS 1/2 load and
//! restarted on the same data directory: no acknowledged message may be
//! lost, no QoS 2 message delivered twice, retained messages and persistent
//! sessions must survive. One cycle runs by default; many cycles run with
//! `cargo test --test durability -- --ignored`.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A child process whose stdout lines are collected as they come.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lock").push(line);
            }
        });
        Proc { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// Waits until some line satisfies `f`, returning it.
    fn wait_line(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| f(l)) {
                return l;
            }
            assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn broker(data: &Path, tcp: &str) -> (Proc, SocketAddr) {
    // Queues far larger than the load, so that only a crash could lose a
    // message here (a full queue drops by policy, which is another test).
    let config = data.join("wardmq.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_queued_messages = 1000000\nmax_queued_bytes = 1073741824\n",
    )
    .expect("write config");
    let p = Proc::spawn(
        Command::new(wardmq_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(data)
            .args(["--tcp", tcp])
            // The fixed default ports of the device listener and the admin
            // API would collide between tests running at once.
            .args(["--tls", "", "--admin", ""])
            .env("RUST_LOG", "warn"),
    );
    let line = p.wait_line("the listening line", |l| {
        l.starts_with("wardmq: listening on mqtt://")
    });
    let addr = line
        .trim_start_matches("wardmq: listening on mqtt://")
        .parse()
        .expect("address in the listening line");
    (p, addr)
}

fn paho_proc(addr: SocketAddr, args: &[&str]) -> Proc {
    Proc::spawn(
        Command::new("python3")
            .arg(repo_root().join("tests/paho/crash.py"))
            .arg(addr.port().to_string())
            .args(args),
    )
}

/// `(topic, payload)` pairs from lines starting with `prefix`.
fn pairs(lines: &[String], prefix: &str) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(t, p)| (t.to_owned(), p.to_owned()))
        .collect()
}

/// Runs `cycles` kill/restart cycles and checks the guarantees.
fn crash_cycles(cycles: usize, per_cycle: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let (mut b, addr) = broker(dir.path(), "127.0.0.1:0");
    let fixed = addr.to_string();

    let retained = run_with_timeout(
        Command::new("mosquitto_pub").args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-q",
            "1",
            "-r",
            "-t",
            "crash/state",
            "-m",
            "kept",
        ]),
        TIMEOUT,
    );
    assert!(retained.status.success(), "retained publish");

    let sub = paho_proc(addr, &["subscribe", "crash-sub"]);
    sub.wait_line("subscribed", |l| l == "subscribed");
    // The retained message arrives on subscribe; it is not part of the load.
    let mut acked: Vec<(String, String)> = Vec::new();

    for cycle in 0..cycles {
        let start = (cycle * per_cycle).to_string();
        let mut publisher = paho_proc(addr, &["publish", &start, &per_cycle.to_string()]);
        // Kill the broker at a varying moment while messages are in flight.
        let target = 20 + (cycle * 37) % (per_cycle / 2);
        let t0 = Instant::now();
        while publisher.count("acked") < target && t0.elapsed() < TIMEOUT {
            std::thread::sleep(Duration::from_millis(5));
        }
        b.kill();
        std::thread::sleep(Duration::from_millis(300));
        publisher.kill();
        acked.extend(pairs(&publisher.lines(), "acked "));
        let (nb, _) = broker(dir.path(), &fixed);
        b = nb;
    }

    // Everything acknowledged reaches the persistent subscriber.
    let want: HashSet<(String, String)> = acked.iter().cloned().collect();
    let t0 = Instant::now();
    loop {
        let got: HashSet<_> = pairs(&sub.lines(), "got ").into_iter().collect();
        let missing: Vec<_> = want.difference(&got).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{} acknowledged messages never delivered, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give duplicates a chance to show up before judging.
    std::thread::sleep(Duration::from_millis(700));
    let got = pairs(&sub.lines(), "got ");
    let mut seen: HashMap<&(String, String), usize> = HashMap::new();
    for g in &got {
        *seen.entry(g).or_default() += 1;
    }
    let twice: Vec<_> = seen
        .iter()
        .filter(|((topic, _), n)| topic == "crash/q2" && **n > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "QoS 2 messages delivered twice: {twice:?}"
    );
    assert!(
        acked.len() >= 20 * cycles,
        "the load really ran ({} acknowledged)",
        acked.len()
    );

    // The retained message survived every kill.
    let sub2 = mosquitto_sub(b_addr(&fixed), &["-t", "crash/state", "-C", "1"]);
    assert_eq!(sub2.messages(), vec!["kept"]);
    drop(sub);
}

fn b_addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_message() {
    crash_cycles(2, 300);
}

#[test]
#[ignore = "soak: many SIGKILL cycles (about a minute)"]
fn sigkill_soak() {
    crash_cycles(25, 600);
}
