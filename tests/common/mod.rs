//! Shared helpers for the end-to-end tests: a broker on 127.0.0.1:0 with a
//! fresh data directory, external clients with timeouts, raw sockets.
#![allow(dead_code)] // each test file uses a different subset

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod pki;
pub mod proc;
pub mod wardmq;

use tempfile::TempDir;
use wardmq_broker::server::Server;
use wardmq_broker::settings::Settings;

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A broker running in this process on a free port.
pub struct Broker {
    pub server: Server,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

pub async fn start() -> Broker {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Broker {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        tcp: Some("127.0.0.1:0".parse().expect("addr")),
        ..Settings::default()
    };
    tweak(&mut settings);
    let server = Server::start(settings).await.expect("broker starts");
    let addr = server.tcp_addr().expect("tcp listener");
    Broker { server, addr, dir }
}

/// Runs a command to completion, killing it after `limit`.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    wait_output(&mut child, limit)
}

/// Waits for a spawned child (stdout/stderr piped), killing it after
/// `limit`. Output is collected on threads so a chatty child cannot block.
pub fn wait_output(child: &mut Child, limit: Duration) -> Output {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut buf);
        }
        buf
    });
    let t_err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut buf);
        }
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// `mosquitto_pub` against the broker.
pub fn mosquitto_pub(addr: SocketAddr, args: &[&str]) -> Output {
    let out = run_with_timeout(
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
            .args(args),
        TIMEOUT,
    );
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running `mosquitto_sub`.
pub struct Sub {
    child: Child,
    lines: std::thread::JoinHandle<Vec<String>>,
}

/// Starts `mosquitto_sub` and waits until it has subscribed (with `-d` it
/// prints its SUBACK), so a following publish is not missed.
pub fn mosquitto_sub(addr: SocketAddr, args: &[&str]) -> Sub {
    // stdbuf: mosquitto_sub's stdout is a pipe here, which stdio would
    // buffer until exit, hiding the SUBACK line we wait for.
    let mut child = Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub"])
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string(), "-d"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto_sub");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
            if line.contains("SUBACK") {
                let _ = tx.send(());
            }
            lines.push(std::mem::take(&mut line));
        }
        lines
    });
    // A resumed session may deliver everything (and the subscriber exit)
    // before its SUBACK: a closed channel means it is done, which is fine.
    if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(TIMEOUT) {
        panic!("mosquitto_sub {args:?} did not subscribe in time");
    }
    Sub { child, lines }
}

impl Sub {
    /// Waits for the subscriber to exit by itself (use `-C N` or `-W S`),
    /// then returns the message lines it printed (debug chatter removed).
    pub fn messages(mut self) -> Vec<String> {
        let start = Instant::now();
        while self.child.try_wait().expect("wait").is_none() {
            if start.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        self.lines
            .join()
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.trim_end().to_owned())
            .filter(|l| {
                !l.starts_with("Client ") && !l.starts_with("Subscribed (mid") && !l.is_empty()
            })
            .collect()
    }
}

/// Runs `python3 tests/paho/SCRIPT ...` and asserts it exits 0.
pub fn paho(script: &str, addr: SocketAddr, extra: &[&str]) -> String {
    let path = repo_root().join("tests").join("paho").join(script);
    let out = run_with_timeout(
        Command::new("python3")
            .arg(&path)
            .arg(addr.port().to_string())
            .args(extra),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the built `wardmq` binary.
pub fn wardmq_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wardmq"))
}

/// `GET /metrics` on the admin API; the sample `name` (with labels) as a
/// number.
pub fn metric(admin: &str, name: &str) -> f64 {
    let addr = admin.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("admin");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut s, request.as_bytes()).expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}
