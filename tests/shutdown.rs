//! `wardmq serve` stopped with SIGTERM while clients with wills are
//! connected, persistent sessions hold queued QoS 1 messages and a
//! publisher is mid-stream: it exits 0 in time, publishes the wills (those
//! waiting for a Will Delay Interval included, see ARCHITECTURE.md "Will"),
//! not the will of a client that said goodbye, and after a restart on the
//! same data every acknowledged message is delivered.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proc::{serve, Proc};
use common::*;

const CONFIG: &str = "[limits]\nmax_queued_messages = 1000000\nmax_queued_bytes = 1073741824\n";

fn script(port: u16, role: &str) -> Proc {
    Proc::spawn(
        Command::new("python3")
            .arg(repo_root().join("tests/paho/shutdown.py"))
            .arg(port.to_string())
            .arg(role),
    )
}

#[test]
fn sigterm_publishes_wills_and_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut b, addr) = serve(dir.path(), CONFIG, "127.0.0.1:0", "");
    let port = addr.port();
    script(port, "setup").wait_line("setup", |l| l == "setup done");

    let clients = script(port, "clients");
    clients.wait_line("clients ready", |l| l == "ready");
    let t0 = Instant::now();
    while clients.count("acked ") < 200 {
        assert!(
            t0.elapsed() < TIMEOUT,
            "the publisher is not acknowledged: {:?}",
            clients.lines()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = b.terminate(Duration::from_secs(15));
    let status = status.expect("wardmq exits within 15 s of SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // Every v5 client is told why (0x8B Server shutting down).
    for cid in ["v5-now", "v5-later", "publisher"] {
        clients.wait_line("the shutdown disconnect", |l| {
            l == format!("disconnected {cid} 139")
        });
    }
    let acked: HashSet<String> = clients
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix("acked "))
        .map(str::to_owned)
        .collect();
    drop(clients);

    // The store opens, and the persistent sessions get what they were owed.
    let (_b, addr) = serve(dir.path(), CONFIG, &addr.to_string(), "");
    let collect = script(addr.port(), "collect");
    collect.wait_line("collect done", |l| l == "done");
    let got = collect.lines();
    let wills: HashSet<&str> = got
        .iter()
        .filter_map(|l| l.strip_prefix("got watcher will/"))
        .collect();
    let want: HashSet<&str> = ["v5-now now", "v5-later later", "v311 v311"].into();
    assert_eq!(wills, want, "wills published at shutdown");
    let read: HashSet<String> = got
        .iter()
        .filter_map(|l| l.strip_prefix("got reader data/n "))
        .map(str::to_owned)
        .collect();
    let lost: Vec<_> = acked.difference(&read).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}
