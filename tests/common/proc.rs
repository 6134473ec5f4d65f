//! A child process (`wardmq serve`, a client script) whose stdout lines
//! are collected as they come, killed with SIGKILL when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{wardmq_bin, TIMEOUT};

/// A child process whose stdout lines are collected as they come.
pub struct Proc {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
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

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// Waits until some line satisfies `f`, returning it.
    pub fn wait_line(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| f(l)) {
                return l;
            }
            assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Sends SIGTERM and waits up to `limit` for the exit; `None` if the
    /// process was still running then.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `wardmq serve` on `data` with `config` written next to it, plain TCP on
/// `tcp` and the admin API on `admin` ("" for none), without the device
/// listener (its fixed default port would collide between tests running at
/// once); returns once it listens, with its MQTT address.
pub fn serve(data: &Path, config: &str, tcp: &str, admin: &str) -> (Proc, SocketAddr) {
    let file = data.join("wardmq.toml");
    std::fs::write(&file, config).expect("write config");
    let p = Proc::spawn(
        Command::new(wardmq_bin())
            .args(["serve", "--config"])
            .arg(&file)
            .arg("--data")
            .arg(data)
            .args(["--tcp", tcp, "--admin", admin, "--tls", ""])
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
