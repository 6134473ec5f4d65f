//! Overload: subscribers that stop reading (raw TCP sockets, one QoS 1
//! and one QoS 0 subscription) while publishers push far more than the
//! broker may hold for them. `wardmq serve` runs as a child so its memory
//! is measured from /proc (VmRSS, VmHWM): it must stay within the session
//! queue limits plus a fixed allowance, the drops must be counted on
//! /metrics, and other clients must still be served. The drops also
//! reach the defender: its broker-level profile raises an alarm on
//! `$broker` when a period drops more than configured.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::proc::{serve, Proc};
use common::wardmq::Wardmq;
use common::*;

/// Per-session limits the growth is judged against: 2 slow sessions may
/// hold 2 × 4 MiB of queued payload.
const CONFIG: &str = "[limits]
max_queued_messages = 1000
max_queued_bytes = 4194304
";
const PAYLOAD: usize = 4096;

/// Memory of the process `pid` in KiB: (VmRSS, VmHWM).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// An MQTT 3.1.1 connection, clean session unless `persistent`; CONNACK
/// read and checked.
fn connect_as(addr: SocketAddr, client_id: &str, persistent: bool) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut body = Vec::new();
    string("MQTT", &mut body);
    body.extend_from_slice(&[4, if persistent { 0 } else { 0x02 }, 0, 60]);
    string(client_id, &mut body);
    s.write_all(&packet(0x10, &body)).expect("CONNECT");
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("CONNACK");
    assert_eq!(connack[..2], [0x20, 2], "{client_id}: CONNACK");
    assert_eq!(connack[3], 0, "{client_id} accepted");
    s
}

fn connect(addr: SocketAddr, client_id: &str) -> TcpStream {
    connect_as(addr, client_id, false)
}

/// A subscriber to `load/#` at `qos` that reads its SUBACK and then
/// nothing more.
fn stuck_subscriber(addr: SocketAddr, client_id: &str, qos: u8) -> TcpStream {
    subscribe(connect(addr, client_id), client_id, qos)
}

fn subscribe(mut s: TcpStream, client_id: &str, qos: u8) -> TcpStream {
    let mut body = vec![0, 1];
    string("load/#", &mut body);
    body.push(qos);
    s.write_all(&packet(0x82, &body)).expect("SUBSCRIBE");
    let mut suback = [0u8; 5];
    s.read_exact(&mut suback).expect("SUBACK");
    assert_eq!(suback, [0x90, 3, 0, 1, qos], "{client_id} subscribed");
    s
}

/// Publishes `PAYLOAD`-byte messages at `qos` for `limit`, or until the
/// broker stops reading for a second (flow control pauses QoS 1
/// publishers); returns how many were written. PUBACKs are read (and
/// discarded) on a thread so the publisher itself never stalls on them.
fn flood(addr: SocketAddr, client_id: &str, qos: u8, limit: Duration) -> u64 {
    let mut s = connect(addr, client_id);
    s.set_write_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut acks = s.try_clone().expect("clone");
    std::thread::spawn(move || {
        let mut sink = [0u8; 4096];
        while matches!(acks.read(&mut sink), Ok(n) if n > 0) {}
    });
    let payload = vec![b'x'; PAYLOAD];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < limit {
        let mut body = Vec::with_capacity(PAYLOAD + 16);
        string("load/data", &mut body);
        if qos > 0 {
            body.extend_from_slice(&(((sent % 65535) + 1) as u16).to_be_bytes());
        }
        body.extend_from_slice(&payload);
        if s.write_all(&packet(0x30 | (qos << 1), &body)).is_err() {
            break;
        }
        sent += 1;
    }
    sent
}

fn admin_url(b: &Proc) -> String {
    b.wait_line("the admin line", |l| l.starts_with("wardmq: admin API on "))
        .trim_start_matches("wardmq: admin API on ")
        .to_owned()
}

#[test]
fn stuck_subscribers_cost_bounded_memory_and_their_drops_are_counted() {
    let dir = tempfile::tempdir().expect("dir");
    let (b, addr) = serve(dir.path(), CONFIG, "127.0.0.1:0", "127.0.0.1:0");
    let admin = admin_url(&b);
    let pid = b.child.id();
    let _slow1 = stuck_subscriber(addr, "slow-q1", 1);
    let _slow0 = stuck_subscriber(addr, "slow-q0", 0);
    let (base, _) = memory_kib(pid);

    let limit = Duration::from_secs(3);
    let floods: Vec<_> = [("flood-a", 0), ("flood-b", 0), ("flood-q1", 1)]
        .into_iter()
        .map(|(id, qos)| std::thread::spawn(move || flood(addr, id, qos, limit)))
        .collect();
    let mut peak_rss = 0;
    while floods.iter().any(|f| !f.is_finished()) {
        peak_rss = peak_rss.max(memory_kib(pid).0);
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent: u64 = floods.into_iter().map(|f| f.join().expect("flood")).sum();
    let (_, hwm) = memory_kib(pid);
    let pushed_mib = sent * PAYLOAD as u64 / (1 << 20);
    println!(
        "slow consumer: {sent} messages ({pushed_mib} MiB) pushed at 2 stuck subscribers; \
         broker RSS {base} KiB before, peak sampled {peak_rss} KiB, VmHWM {hwm} KiB"
    );
    // Far more was pushed than the queues may hold, or nothing is proven.
    assert!(pushed_mib > 64, "only {pushed_mib} MiB pushed");
    // 2 sessions × 4 MiB of queue plus a generous fixed allowance for
    // buffers and allocator slack; an unbounded queue or write buffer
    // would hold most of what was pushed.
    let growth_mib = hwm.saturating_sub(base) / 1024;
    assert!(
        growth_mib <= 8 + 48,
        "broker grew by {growth_mib} MiB for {pushed_mib} MiB pushed"
    );
    let drops = metric(
        &admin,
        "wardmq_messages_dropped_total{reason=\"queue_full\"}",
    );
    assert!(drops > 0.0, "queue-full drops are counted");

    // Everyone else is still served.
    let sub = mosquitto_sub(addr, &["-t", "other/t", "-C", "1", "-W", "10"]);
    mosquitto_pub(addr, &["-t", "other/t", "-m", "still here"]);
    assert_eq!(sub.messages(), vec!["still here"]);
}

/// The broker-level limit on drops, one-second periods, and small queues
/// so one stuck subscriber overflows quickly.
const DROPS_CONFIG: &str = "[limits]
max_queued_messages = 100
[defender]
datapoint_seconds = 1
[defender.broker_profile]
broker_messages_dropped = 100
";

/// `$broker`'s active violation of the drops rule, if any.
fn drops_alarm(w: &Wardmq) -> Option<serde_json::Value> {
    let out = w.aws(&["list-active-violations", "--thing-name", "$broker"]);
    out["activeViolations"]
        .as_array()?
        .iter()
        .find(|v| v["behavior"]["name"] == "messages-dropped-broker")
        .cloned()
}

/// Polls `f` every 200 ms until it holds, for at most `TIMEOUT`.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn drops_raise_a_broker_level_alarm_that_clears() {
    let w = Wardmq::start_defender(DROPS_CONFIG);
    let addr = SocketAddr::from(([127, 0, 0, 1], w.tcp_port));
    let _stuck = stuck_subscriber(addr, "stuck", 1);
    assert!(drops_alarm(&w).is_none(), "no drops, no alarm");
    let flood = std::thread::spawn(move || flood(addr, "flooder", 0, Duration::from_secs(3)));
    let mut alarm = None;
    eventually("the drops alarm on $broker", || {
        alarm = drops_alarm(&w);
        alarm.is_some()
    });
    let alarm = alarm.unwrap_or_default();
    println!("drops alarm: {alarm}");
    assert_eq!(alarm["securityProfileName"], "wardmq:broker");
    assert_eq!(alarm["behavior"]["metric"], "wardmq:num-messages-dropped");
    let dropped = alarm["lastViolationValue"]["count"].as_u64().unwrap_or(0);
    assert!(dropped > 100, "violating value {dropped}");
    let sent = flood.join().expect("flood");
    assert!(sent > 1000, "only {sent} messages flooded");
    // Drops stop with the flood: the next quiet period clears it.
    eventually("the drops alarm to clear", || drops_alarm(&w).is_none());
}

/// `sessions` persistent sessions subscribed to `load/#` at QoS 1 go
/// offline; then `messages` QoS 1 messages are published, each
/// acknowledged (so committed in every queue) before the next. Returns the
/// broker's VmHWM growth in KiB.
fn offline_sessions(sessions: usize, messages: usize) -> u64 {
    let dir = tempfile::tempdir().expect("dir");
    let (b, addr) = serve(dir.path(), OFFLINE_CONFIG, "127.0.0.1:0", "127.0.0.1:0");
    let admin = admin_url(&b);
    let pid = b.child.id();
    let (base, _) = memory_kib(pid);
    let t0 = Instant::now();
    for i in 0..sessions {
        let id = format!("offline-{i}");
        let mut s = subscribe(connect_as(addr, &id, true), &id, 1);
        s.write_all(&[0xE0, 0]).expect("DISCONNECT");
    }
    let made = t0.elapsed();
    // All published at once, then every PUBACK read: the store commits
    // them in groups, as it would for a fleet of publishers.
    let mut p = connect(addr, "offline-feeder");
    let payload = vec![b'o'; 64];
    for n in 0..messages {
        let mut body = Vec::new();
        string("load/offline", &mut body);
        body.extend_from_slice(&((n % 65535 + 1) as u16).to_be_bytes());
        body.extend_from_slice(&payload);
        p.write_all(&packet(0x32, &body)).expect("PUBLISH");
    }
    let mut pubacks = vec![0u8; 4 * messages];
    p.read_exact(&mut pubacks).expect("PUBACKs");
    assert!(pubacks.chunks(4).all(|a| a[0] == 0x40), "PUBACKs");
    let drops = metric(
        &admin,
        "wardmq_messages_dropped_total{reason=\"queue_full\"}",
    );
    assert_eq!(
        drops as usize,
        sessions * messages.saturating_sub(100),
        "each offline queue holds 100 messages and drops (counted) the rest"
    );
    let (rss, hwm) = memory_kib(pid);
    println!(
        "offline sessions: {sessions} sessions made in {made:?}, {messages} messages of 64 B \
         each queued for all of them (max_queued_messages 100) in {:?}; broker RSS {base} KiB \
         before, {rss} KiB after, VmHWM {hwm} KiB",
        t0.elapsed() - made
    );
    hwm.saturating_sub(base)
}

/// Each session may queue 100 messages, so more are published than any
/// queue holds.
const OFFLINE_CONFIG: &str = "[limits]
max_queued_messages = 100
# Hundreds of sessions connect from 127.0.0.1 at once; admission control
# is tests/admission.rs' subject, not this one's.
connection_rate_per_ip = 0
connection_rate = 0
";

/// What 100 queued messages may cost a session, all in (queue entries
/// pointing at the shared message, the session, the store's cache):
/// measured at about 46 KiB.
fn assert_offline_bound(sessions: usize, growth_kib: u64) {
    let per_session = growth_kib / sessions as u64;
    assert!(
        per_session <= 64,
        "{per_session} KiB per offline session with 100 queued messages"
    );
}

#[test]
fn offline_sessions_queue_within_their_limit() {
    let growth = offline_sessions(500, 150);
    assert_offline_bound(500, growth);
}

#[test]
#[ignore = "load: 10,000 offline persistent sessions (about a minute)"]
fn ten_thousand_offline_sessions() {
    let growth = offline_sessions(10_000, 150);
    assert_offline_bound(10_000, growth);
}
