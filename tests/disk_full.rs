//! The disk fills under a running broker (a file-size limit put on the
//! process with prlimit, see ARCHITECTURE.md "Store: a full disk") while
//! the demo device publishes QoS 1 over mutual TLS, retained and queued
//! for an offline persistent session. The broker must stay up and keep
//! serving QoS 0 and non-persistent traffic, refuse what it cannot store
//! with PUBACK 0x80 (never a success; a 3.1.1 client is disconnected
//! instead), report it (ERROR log, metrics),
//! recover by itself when space returns, and after SIGKILL and a restart
//! hold every message it acknowledged. The defender's store
//! (`defender.redb`) refuses and recovers the same way, without a restart.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::proc::{serve, Proc};
use common::wardmq::Wardmq;
use common::*;
use rlimit::{prlimit, Resource, INFINITY};

/// Big enough that a few dozen messages outgrow any free space in the
/// file, small enough that the limit never stops the broker's log.
const PAYLOAD: usize = 64 * 1024;
/// Room left past the store's size when the "disk" fills: some messages
/// still fit, so the test sees the switch from accepted to refused.
const HEADROOM: u64 = 4 * 1024 * 1024;
/// The most messages sent to hit the limit.
const MAX_FILL: usize = 200;

/// The demo device's default policy has no `iot:RetainPublish`.
const RETAIN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:RetainPublish","Resource":"arn:aws:iot:*:*:topic/demo-device/*"}]}"#;

fn script(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(repo_root().join("tests/paho/disk_full.py"))
        .arg(port.to_string())
        .args(args);
    cmd
}

/// The demo device: one QoS 1 PUBLISH at a time, its PUBACK code read back.
struct Device {
    proc: Proc,
    stdin: ChildStdin,
    sent: usize,
}

impl Device {
    fn connect(w: &Wardmq) -> Device {
        let certs = w.dir.path().join("certs");
        let mut cmd = script(w.tls_port, &["device"]);
        cmd.arg(certs.join("ca.pem"))
            .arg(certs.join("devices/demo-device.pem"))
            .arg(certs.join("devices/demo-device.key"))
            .stdin(Stdio::piped());
        let mut proc = Proc::spawn(&mut cmd);
        let stdin = proc.child.stdin.take().expect("stdin");
        proc.wait_line("the device connected", |l| l == "connected");
        Device {
            proc,
            stdin,
            sent: 0,
        }
    }

    /// Publishes `topic` QoS 1 and returns the PUBACK reason code (`None`
    /// when no PUBACK came).
    fn publish(&mut self, topic: &str, retain: bool) -> Option<u8> {
        writeln!(self.stdin, "pub {topic} {PAYLOAD} {}", u8::from(retain)).expect("to the device");
        self.sent += 1;
        let prefix = format!("ack {topic} ");
        let n = self.sent;
        let start = Instant::now();
        loop {
            let acks: Vec<String> = self
                .proc
                .lines()
                .into_iter()
                .filter(|l| l.starts_with("ack "))
                .collect();
            if acks.len() >= n {
                let line = acks[n - 1].strip_prefix(&prefix).expect("ack in order");
                return line.parse().ok();
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "device never answered for {topic}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Sets the broker's file-size soft limit: `Some(bytes)` fills the disk
/// at that size, `None` frees it. The hard limit stays unlimited, so no
/// privilege is needed to raise it again.
fn disk_limit(w: &Wardmq, bytes: Option<u64>) {
    let pid = i32::try_from(w.child.id()).expect("pid");
    prlimit(
        pid,
        Resource::FSIZE,
        Some((bytes.unwrap_or(INFINITY), INFINITY)),
        None,
    )
    .expect("prlimit on the broker");
}

/// Topics the broker acknowledged with success (and the test must find
/// again after the restart): queued for the keeper, and retained.
#[derive(Default)]
struct Acked {
    queued: BTreeSet<String>,
    retained: BTreeSet<String>,
}

impl Acked {
    /// Publishes message `i` (odd ones retained) and records a success.
    fn publish(&mut self, d: &mut Device, i: usize) -> Option<u8> {
        let retain = i % 2 == 1;
        let topic = if retain {
            format!("demo-device/r/{i}")
        } else {
            format!("demo-device/q/{i}")
        };
        let code = d.publish(&topic, retain);
        if accepted(code) {
            let set = if retain {
                &mut self.retained
            } else {
                &mut self.queued
            };
            set.insert(topic);
        }
        code
    }
}

/// A PUBACK below 0x80 is a success (0x10: no subscriber matched).
fn accepted(code: Option<u8>) -> bool {
    code.is_some_and(|c| c < 0x80)
}

/// QoS 0 through the plain listener, and a QoS 1 publish that nothing
/// durable depends on (no retain, only a clean-session subscriber).
fn live_traffic_flows(w: &Wardmq, tag: &str) {
    let addr = format!("127.0.0.1:{}", w.tcp_port).parse().expect("addr");
    for qos in ["0", "1"] {
        let topic = format!("live/{tag}/{qos}");
        let sub = mosquitto_sub(addr, &["-t", &topic, "-C", "1", "-W", "10"]);
        mosquitto_pub(addr, &["-t", &topic, "-q", qos, "-m", "still-here"]);
        assert_eq!(sub.messages(), vec!["still-here"], "QoS {qos} on {topic}");
    }
}

/// An MQTT 3.1.1 PUBACK has no reason code to refuse with, so a 3.1.1
/// client whose retained QoS 1 message cannot be stored is disconnected
/// instead (mosquitto_pub fails: the connection was lost), never
/// acknowledged; one that is acknowledged after all must be found again
/// after the restart like any other.
fn v311_is_disconnected(w: &Wardmq, acked: &mut Acked) {
    let payload = w.dir.path().join("payload.bin");
    std::fs::write(&payload, vec![b'x'; PAYLOAD]).expect("payload file");
    let payload = payload.to_str().expect("utf-8 path");
    for n in 0..20 {
        let topic = format!("demo-device/r/v311-{n}");
        let port = w.tcp_port.to_string();
        let out = run_with_timeout(
            Command::new("mosquitto_pub").args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                "mqttv311",
                "-i",
                "v311-device",
                "-q",
                "1",
                "-r",
                "-t",
                &topic,
                "-f",
                payload,
            ]),
            TIMEOUT,
        );
        if out.status.success() {
            acked.retained.insert(topic);
            continue;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("connection was lost"), "{err}");
        return;
    }
    panic!("twenty 3.1.1 retained messages all stored on a full disk");
}

fn log_has(w: &Wardmq, needle: &str) -> bool {
    std::fs::read_to_string(w.log_file())
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains("ERROR") && l.contains(needle))
}

fn file_size(data: &Path, name: &str) -> u64 {
    std::fs::metadata(data.join(name)).expect(name).len()
}

/// `tests/admin/disk_full_writes.py KIND ARGS` against the admin API
/// (KIND "thing": the registry; "profile": the defender); its lines.
fn writes(w: &Wardmq, kind: &str, args: &[&str]) -> Vec<String> {
    let args: Vec<&str> = std::iter::once(kind).chain(args.iter().copied()).collect();
    let out = w.run_python("tests/admin/disk_full_writes.py", &args, "", TIMEOUT * 2);
    out.lines().map(str::to_owned).collect()
}

/// `KIND` admin writes while their file cannot grow: exactly one is
/// refused, with 500 InternalFailureException and an ERROR line
/// containing `error`, and the broker stays up. The names acknowledged
/// before it, and the name refused.
fn fill_until_refused(w: &mut Wardmq, kind: &str, error: &str) -> (Vec<String>, String) {
    let fill = writes(w, kind, &["fill", "full", "300"]);
    let refused = after(&fill, "refused ");
    assert_eq!(refused.len(), 1, "a {kind} write was refused: {fill:?}");
    let (name, code) = refused[0].split_once(' ').expect("NAME CODE");
    assert_eq!(code, "InternalFailureException", "{refused:?}");
    assert!(log_has(w, error), "an ERROR line says {error}");
    assert!(
        w.child.try_wait().expect("wait").is_none(),
        "the broker is up"
    );
    (after(&fill, "acked "), name.to_owned())
}

/// What follows `prefix` on the lines that start with it.
fn after(lines: &[String], prefix: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn full_disk_refuses_durable_writes_recovers_and_loses_nothing_acknowledged() {
    let mut w = Wardmq::start_defender("");
    let data = w.dir.path().join("data");
    w.aws(&[
        "create-policy",
        "--policy-name",
        "retain",
        "--policy-document",
        RETAIN,
    ]);
    let certs = w.aws(&["list-certificates"]);
    let arn = certs["certificates"][0]["certificateArn"]
        .as_str()
        .expect("the demo device's certificate");
    w.aws(&["attach-policy", "--policy-name", "retain", "--target", arn]);
    let keep = Proc::spawn(&mut script(w.tcp_port, &["keep"]));
    keep.wait_line("the keeper subscribed", |l| l == "subscribed");

    let mut device = Device::connect(&w);
    let mut acked = Acked::default();
    for i in 0..4 {
        let code = acked.publish(&mut device, i);
        assert!(accepted(code), "healthy store, message {i}: {code:?}");
    }

    // The disk fills: the store can still grow by HEADROOM.
    disk_limit(&w, Some(file_size(&data, "wardmq.redb") + HEADROOM));
    let mut i = 4;
    let refused = loop {
        assert!(i < 4 + MAX_FILL, "{MAX_FILL} messages all stored");
        let code = acked.publish(&mut device, i);
        i += 1;
        if !accepted(code) {
            break code;
        }
    };
    assert_eq!(
        refused,
        Some(0x80),
        "a message that cannot be stored is refused with 0x80"
    );
    assert!(i > 5, "some messages still fit before the disk filled");
    assert!(
        w.child.try_wait().expect("wait").is_none(),
        "the broker is up"
    );
    assert_eq!(metric(&w.admin, "wardmq_store_degraded"), 1.0);
    assert!(metric(&w.admin, "wardmq_store_write_failures_total") >= 1.0);
    assert!(
        log_has(&w, "store write failed"),
        "an ERROR line reports it"
    );

    // Still full: every durable write is answered on the same connection,
    // refused, or acknowledged if it fits after all (and then held to the
    // same guarantee); everything else flows.
    for _ in 0..5 {
        let code = acked.publish(&mut device, i);
        i += 1;
        assert!(accepted(code) || code == Some(0x80), "answered: {code:?}");
    }
    v311_is_disconnected(&w, &mut acked);
    live_traffic_flows(&w, "full");

    // Space returns: the store takes writes again by itself.
    disk_limit(&w, None);
    let start = Instant::now();
    while !accepted(acked.publish(&mut device, i)) {
        i += 1;
        assert!(start.elapsed() < TIMEOUT, "the store never recovered");
        std::thread::sleep(Duration::from_millis(100));
    }
    i += 1;
    assert!(accepted(acked.publish(&mut device, i)), "stays recovered");
    assert_eq!(metric(&w.admin, "wardmq_store_degraded"), 0.0);
    live_traffic_flows(&w, "freed");

    // The registry's file cannot grow either: an admin write is refused
    // (500), changes nothing, and the next one after space returns works.
    disk_limit(&w, Some(file_size(&data, "registry.redb")));
    let (mut created, _) = fill_until_refused(&mut w, "thing", "registry write failed");
    disk_limit(&w, None);
    created.extend(after(&writes(&w, "thing", &["retry", "freed"]), "acked "));

    // SIGKILL, then a restart on the same data (and admin address):
    // everything acknowledged is there.
    let _ = w.child.kill();
    let _ = w.child.wait();
    drop(device);
    let admin = w.admin.trim_start_matches("http://").to_owned();
    let (_broker, addr) = serve(&data, "", "127.0.0.1:0", &admin);
    let listed: BTreeSet<String> = after(&writes(&w, "thing", &["list"]), "thing ")
        .into_iter()
        .collect();
    let lost: Vec<_> = created.iter().filter(|t| !listed.contains(*t)).collect();
    assert!(lost.is_empty(), "acknowledged things lost: {lost:?}");
    let retained = mosquitto_sub(addr, &["-t", "demo-device/r/#", "-F", "%t", "-W", "3"]);
    let got: BTreeSet<String> = retained.messages().into_iter().collect();
    let lost: Vec<_> = acked.retained.difference(&got).collect();
    assert!(
        lost.is_empty(),
        "acknowledged retained messages lost: {lost:?}"
    );

    let drain = Proc::spawn(&mut script(addr.port(), &["drain", "2"]));
    drain.wait_line("the keeper drained", |l| l == "drained");
    let got: BTreeSet<String> = drain
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix("got "))
        .map(str::to_owned)
        .collect();
    let lost: Vec<_> = acked.queued.difference(&got).collect();
    assert!(
        lost.is_empty(),
        "acknowledged queued messages lost: {lost:?}"
    );
    assert!(
        acked.queued.len() >= 3 && acked.retained.len() >= 3,
        "the load really ran: {} queued, {} retained acknowledged",
        acked.queued.len(),
        acked.retained.len()
    );
}

/// `defender.redb` cannot grow: a defender write through the admin API is
/// refused (500), the broker stays up, and once space returns the next
/// write succeeds on the same process (the store reopens its file).
#[test]
fn full_disk_refuses_defender_writes_and_recovers_without_restart() {
    let mut w = Wardmq::start_defender("");
    let data = w.dir.path().join("data");
    disk_limit(&w, Some(file_size(&data, "defender.redb")));
    let (mut created, refused) =
        fill_until_refused(&mut w, "profile", "defender store write failed");
    assert_eq!(metric(&w.admin, "wardmq_defender_store_degraded"), 1.0);
    assert!(metric(&w.admin, "wardmq_defender_store_write_failures_total") >= 1.0);

    // Space returns: the next write reopens the file, no restart.
    disk_limit(&w, None);
    created.extend(after(&writes(&w, "profile", &["retry", "freed"]), "acked "));
    assert!(created.iter().any(|p| p == "freed"), "{created:?}");
    assert_eq!(metric(&w.admin, "wardmq_defender_store_degraded"), 0.0);
    let log = std::fs::read_to_string(w.log_file()).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("defender store writable again")),
        "a WARN line reports the recovery"
    );
    let listed: BTreeSet<String> = after(&writes(&w, "profile", &["list"]), "profile ")
        .into_iter()
        .collect();
    let lost: Vec<_> = created.iter().filter(|p| !listed.contains(*p)).collect();
    assert!(lost.is_empty(), "acknowledged profiles lost: {lost:?}");
    assert!(
        !listed.contains(&refused),
        "the refused profile {refused} exists"
    );
}
