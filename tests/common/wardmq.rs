//! `wardmq serve` with its admin API, in a child process, for the tests
//! that drive it as operators do: the `aws` CLI, boto3 scripts in
//! `tests/admin/`, raw HTTP.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{repo_root, run_with_timeout, wardmq_bin, TIMEOUT};

/// The file the server's standard error goes to, in its directory.
const LOG: &str = "wardmq.log";

/// `wardmq serve` with the admin API on a free port.
pub struct Wardmq {
    pub child: Child,
    pub admin: String,
    pub credentials: PathBuf,
    /// The device listener's port and the printed demo-device command.
    pub tls_port: u16,
    /// The plain-TCP listener (anonymous clients, `anonymous_policy`).
    pub tcp_port: u16,
    pub try_it: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Wardmq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Wardmq {
    /// Starts wardmq; with `issuer`, CreateKeysAndCertificate signs with
    /// that CA (cert PEM, key PEM).
    pub fn start(issuer: Option<&(String, String)>) -> Wardmq {
        Wardmq::start_with(issuer, false)
    }

    /// With `devices`, the mutual-TLS listener runs too, with the dev PKI
    /// and its demo device (registered, so they appear in listings).
    pub fn start_with(issuer: Option<&(String, String)>, devices: bool) -> Wardmq {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        if let Some((c, k)) = issuer {
            std::fs::write(&cert, c).expect("write CA");
            std::fs::write(&key, k).expect("write CA key");
        }
        Wardmq::launch(dir, &cert, &key, "", devices)
    }

    /// The mutual-TLS listener with the dev PKI, whose CA also signs
    /// CreateKeysAndCertificate, and `extra` appended to the config file
    /// (e.g. a `[defender]` section).
    pub fn start_defender(extra: &str) -> Wardmq {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dir.path().join("certs");
        let (cert, key) = (certs.join("ca.pem"), certs.join("ca.key"));
        Wardmq::launch(dir, &cert, &key, extra, true)
    }

    /// The server's standard error (its log, `RUST_LOG=warn` plus device
    /// activity at the levels set on devices).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join(LOG)
    }

    /// The dev PKI's CA certificate (devices trust the server with it).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("certs/ca.pem")
    }

    fn launch(
        dir: tempfile::TempDir,
        cert: &Path,
        key: &Path,
        extra: &str,
        devices: bool,
    ) -> Wardmq {
        let config = dir.path().join("wardmq.toml");
        std::fs::write(
            &config,
            format!(
                "[admin]\nissuer_cert = {:?}\nissuer_key = {:?}\n{extra}",
                cert.display().to_string(),
                key.display().to_string()
            ),
        )
        .expect("write config");
        let mut child = Command::new(wardmq_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--certs")
            .arg(dir.path().join("certs"))
            .args(["--tcp", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(["--tls", if devices { "127.0.0.1:0" } else { "" }])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join(LOG)).expect("log file"))
            .spawn()
            .expect("spawn wardmq");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut admin = None;
        let mut credentials = None;
        let mut tls_port = None;
        let mut tcp_port = None;
        let mut try_it = None;
        while admin.is_none()
            || credentials.is_none()
            || tcp_port.is_none()
            || (devices && try_it.is_none())
        {
            let line = rx
                .recv_timeout(TIMEOUT)
                .expect("wardmq prints its listener, admin and credentials lines");
            if let Some(rest) = line.strip_prefix("wardmq: listening on mqtts://") {
                let addr = rest.split(' ').next().expect("address");
                tls_port = Some(addr.parse::<SocketAddr>().expect("tls address").port());
            }
            if let Some(rest) = line.strip_prefix("wardmq: listening on mqtt://") {
                let addr = rest.split(' ').next().expect("address");
                tcp_port = Some(addr.parse::<SocketAddr>().expect("tcp address").port());
            }
            // The device listener's command (the TCP one has no --cert).
            if let Some(cmd) = line.strip_prefix("wardmq: try it: ") {
                if cmd.contains("--cert") {
                    try_it = Some(cmd.to_owned());
                }
            }
            if let Some(url) = line.strip_prefix("wardmq: admin API on ") {
                admin = Some(url.to_owned());
            }
            if let Some(rest) = line.strip_prefix("wardmq: admin credentials in ") {
                let path = rest.split(';').next().expect("path");
                credentials = Some(PathBuf::from(path));
            }
        }
        Wardmq {
            child,
            admin: admin.expect("admin line"),
            credentials: credentials.expect("credentials line"),
            tls_port: tls_port.unwrap_or_default(),
            tcp_port: tcp_port.unwrap_or_default(),
            try_it: try_it.unwrap_or_default(),
            dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.admin
            .trim_start_matches("http://")
            .parse()
            .expect("admin address")
    }

    pub fn aws_with(&self, credentials: &Path, args: &[&str]) -> Output {
        run_with_timeout(
            Command::new("aws")
                .args(["iot", "--endpoint-url", &self.admin])
                .args(["--region", "us-east-1", "--output", "json"])
                .args(args)
                .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_PROFILE")
                .current_dir(self.dir.path()),
            TIMEOUT,
        )
    }

    /// Runs `aws iot ARGS`, which must succeed; its JSON output.
    pub fn aws(&self, args: &[&str]) -> Value {
        let out = self.aws_with(&self.credentials, args);
        assert!(
            out.status.success(),
            "aws iot {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("aws prints JSON")
    }

    /// Runs `aws --debug iot ARGS`, which must fail with `code` and HTTP
    /// `status` (read from botocore's debug log).
    pub fn aws_fails(&self, args: &[&str], code: &str, status: u16) -> String {
        let mut all = vec!["--debug"];
        all.extend_from_slice(args);
        let out = self.aws_with(&self.credentials, &all);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "aws iot {args:?} succeeded");
        assert!(
            err.contains(&format!("An error occurred ({code})")),
            "aws iot {args:?}: expected {code}, got {}",
            err.lines().last().unwrap_or("")
        );
        assert!(
            err.contains(&format!("HTTP/1.1\" {status} ")),
            "aws iot {args:?}: expected HTTP {status}"
        );
        err
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(name), text).expect("write file");
        format!("file://{name}")
    }

    /// Runs `tests/admin/SCRIPT ENDPOINT` with this server's credentials;
    /// it must succeed and print `ok_line`.
    pub fn run_boto3(&self, script: &str, ok_line: &str) {
        self.run_python(&format!("tests/admin/{script}"), &[], ok_line, TIMEOUT * 3);
    }

    /// `python3 SCRIPT ADMIN_ENDPOINT` (SCRIPT relative to the repository)
    /// with this server's credentials for boto3 and nothing from the
    /// caller's AWS environment; add arguments and run it.
    pub fn python(&self, script: &str) -> Command {
        let mut cmd = Command::new("python3");
        cmd.arg(repo_root().join(script))
            .arg(&self.admin)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.credentials)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE");
        cmd
    }

    /// Runs `python3 SCRIPT ADMIN_ENDPOINT ARGS...` (SCRIPT relative to the
    /// repository) with this server's credentials for boto3; it must
    /// succeed within `limit` and print `ok_line`. Returns its stdout.
    pub fn run_python(
        &self,
        script: &str,
        args: &[&str],
        ok_line: &str,
        limit: Duration,
    ) -> String {
        let out = run_with_timeout(self.python(script).args(args), limit);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && stdout.contains(ok_line),
            "{script} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}
