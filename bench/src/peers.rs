//! The brokers under comparison: how to get each binary, the equivalent
//! configuration each gets, and starting and stopping its process.
//!
//! Every peer gets the same shape of setup: one listener on a free
//! 127.0.0.1 port (plain TCP, or with `--tls` mutual TLS with the bench's
//! CA, server certificate and required client certificates), persistence
//! off (or on for all with `--persistence`), and limits generous enough
//! that no broker drops messages under test.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use wardmq_broker::registry::{CertificateStatus, Registry, Scope};

use crate::pki::{BenchPki, ServerFiles};
use crate::procstat;

/// How long a broker gets from spawn to accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Which broker a run targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Wardmq,
    /// wardmq with `[defender] enabled = false`: the peer that prices the
    /// defender.
    WardmqNoDefender,
    Mosquitto,
    Rumqttd,
    /// A broker someone else runs; the bench only connects to it, so it has
    /// no memory or CPU numbers.
    External(SocketAddr),
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Wardmq => "wardmq".into(),
            Target::WardmqNoDefender => "wardmq-nodefender".into(),
            Target::Mosquitto => "mosquitto".into(),
            Target::Rumqttd => "rumqttd".into(),
            Target::External(a) => a.to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Target {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wardmq" => Ok(Target::Wardmq),
            "wardmq-nodefender" => Ok(Target::WardmqNoDefender),
            "mosquitto" => Ok(Target::Mosquitto),
            "rumqttd" => Ok(Target::Rumqttd),
            other => other.parse().map(Target::External).map_err(|_| {
                anyhow!(
                    "unknown target `{other}`: use wardmq, wardmq-nodefender, mosquitto, \
                     rumqttd or HOST:PORT"
                )
            }),
        }
    }
}

/// Limits every broker gets, so none drops or throttles under test.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Unacknowledged QoS 1/2 messages a broker sends one client.
    pub max_inflight: u16,
    /// Messages a broker queues per client.
    pub max_queued: u64,
    pub max_connections: u64,
    /// Largest packet or payload accepted, bytes.
    pub max_packet: u64,
}

pub const LIMITS: Limits = Limits {
    max_inflight: 1000,
    max_queued: 1_000_000,
    max_connections: 1_000_000,
    max_packet: 1024 * 1024,
};

/// Options that shape every peer's setup.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    pub persistence: bool,
    /// A wardmq config file to use instead of the generated one (the hook for
    /// measuring the defender on and off).
    pub wardmq_config: Option<PathBuf>,
    /// The workspace root: where wardmq is built and rumqttd cached.
    pub root: PathBuf,
    /// `--tls`: every broker gets a mutual-TLS listener with these
    /// certificates instead of plain TCP.
    pub tls: Option<Arc<BenchPki>>,
}

/// The policy the bench attaches to its device certificate in wardmq's
/// registry: everything allowed, like the anonymous policy of wardmq's
/// plain-TCP listener and the other brokers' `allow_anonymous`, so TLS and
/// TCP runs authorize alike.
pub const WARDMQ_BENCH_POLICY: &str = "wardmq-bench-allow-all";
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

/// wardmq's ARN scope, `[aws]` of a user's `--wardmq-config` or wardmq's
/// defaults; the policy attachment names the certificate by its ARN, so it
/// must be the broker's.
pub fn wardmq_scope(config_text: Option<&str>) -> Result<Scope> {
    let mut region = "us-east-1".to_string();
    let mut account = "123456789012".to_string();
    if let Some(text) = config_text {
        let value: toml::Table = text.parse().context("reading the wardmq config")?;
        if let Some(aws) = value.get("aws").and_then(|v| v.as_table()) {
            if let Some(r) = aws.get("region").and_then(|v| v.as_str()) {
                region = r.to_string();
            }
            if let Some(a) = aws.get("account").and_then(|v| v.as_str()) {
                account = a.to_string();
            }
        }
    }
    Ok(Scope::new(region, account))
}

/// Prepares wardmq's registry in `data` before it starts: the bench CA
/// registered ACTIVE, the shared device certificate registered ACTIVE
/// under it, and an allow-all policy attached to that certificate (wardmq
/// refuses a certificate it does not know even when its CA is registered,
/// and has no policy for certificates without one attached).
pub fn register_bench_pki(data: &Path, pki: &BenchPki, scope: Scope) -> Result<()> {
    let registry = Registry::open(data.join("registry.redb"), scope)
        .map_err(|e| anyhow!("opening wardmq's registry: {e}"))?;
    registry
        .register_ca_certificate(&pki.ca_pem, true, false)
        .map_err(|e| anyhow!("registering the bench CA: {e}"))?;
    let cert = registry
        .register_certificate(
            &pki.device_cert_pem,
            Some(&pki.ca_pem),
            Some(CertificateStatus::Active),
        )
        .map_err(|e| anyhow!("registering the bench device certificate: {e}"))?;
    registry
        .create_policy(WARDMQ_BENCH_POLICY, ALLOW_ALL)
        .map_err(|e| anyhow!("creating the bench policy: {e}"))?;
    let arn = registry.scope().cert_arn(&cert.id);
    registry
        .attach_policy(WARDMQ_BENCH_POLICY, &arn)
        .map_err(|e| anyhow!("attaching the bench policy: {e}"))?;
    Ok(())
}

/// wardmq's config. The data directory and listener go on the command line
/// (`--data`, `--tcp`), which override the file, so a user's
/// `--wardmq-config` gets the same listener and scratch directory.
///
/// With the defender on, periods close every second instead of every five
/// minutes: 300 times the production rate of period work, so the measured
/// cost is an upper bound. With `admission`, wardmq keeps its default
/// connection-rate limits; otherwise they are off (the bench connects
/// thousands of clients from one address at once).
pub fn wardmq_config(l: &Limits, defender: bool, admission: bool) -> String {
    let admission = if admission {
        ""
    } else {
        "connection_rate_per_ip = 0\nconnection_rate = 0\n"
    };
    let defender = if defender {
        "[defender]\ndatapoint_seconds = 1\n"
    } else {
        "[defender]\nenabled = false\n"
    };
    format!(
        "# Generated by wardmq-bench.\n\
         [limits]\n\
         max_connections = {conns}\n\
         max_packet_size = {packet}\n\
         receive_maximum = 65535\n\
         max_inflight = {inflight}\n\
         max_queued_messages = {queued}\n\
         max_queued_bytes = {bytes}\n\
         max_keep_alive = 0\n\
         {admission}\
         \n\
         [log]\n\
         # Per-connection info lines would cost time the others do not spend.\n\
         level = \"warn\"\n\
         \n\
         {defender}",
        conns = l.max_connections,
        packet = l.max_packet,
        inflight = l.max_inflight,
        queued = l.max_queued,
        bytes = l.max_queued * l.max_packet.min(64 * 1024),
    )
}

/// mosquitto's config. With `tls`, the listener requires a client
/// certificate signed by the bench CA (`require_certificate true`); the
/// certificate is not used as the username, so authorization is the same
/// `allow_anonymous` as over TCP.
pub fn mosquitto_config(
    port: u16,
    l: &Limits,
    persistence: bool,
    data_dir: &Path,
    as_root: bool,
    tls: Option<&ServerFiles>,
) -> String {
    let tls = match tls {
        Some(f) => format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            f.ca.display(),
            f.cert.display(),
            f.key.display()
        ),
        None => String::new(),
    };
    let mut s = format!(
        "# Generated by wardmq-bench.\n\
         listener {port} 127.0.0.1\n\
         {tls}\
         allow_anonymous true\n\
         max_connections -1\n\
         max_inflight_messages {inflight}\n\
         max_queued_messages {queued}\n\
         max_queued_bytes 0\n\
         message_size_limit {packet}\n\
         set_tcp_nodelay true\n\
         log_dest none\n",
        inflight = l.max_inflight,
        queued = l.max_queued,
        packet = l.max_packet,
    );
    if persistence {
        s.push_str(&format!(
            "persistence true\npersistence_location {}/\n",
            data_dir.display()
        ));
    } else {
        s.push_str("persistence false\n");
    }
    if as_root {
        // Started as root, mosquitto switches to the `mosquitto` user, which
        // cannot write the bench's scratch directory.
        s.push_str("user root\n");
    }
    s
}

/// rumqttd's config (after its example `rumqttd.toml`): one v4 server, no
/// console or metrics listeners, and no delay between accepted connections
/// (its default throttles a connection storm to 1000/s). With `tls`, the
/// server's `[v4.1.tls]` table; rumqttd checks client certificates against
/// `capath` only when built with its `verify-client-cert` feature, which
/// the bench does for `--tls` (see `prepare`).
/// rumqttd keeps everything in memory: it has no persistence to switch on.
pub fn rumqttd_config(port: u16, l: &Limits, tls: Option<&ServerFiles>) -> String {
    let tls = match tls {
        Some(f) => format!(
            "\x20   [v4.1.tls]\n\
             \x20   capath = \"{}\"\n\
             \x20   certpath = \"{}\"\n\
             \x20   keypath = \"{}\"\n",
            f.ca.display(),
            f.cert.display(),
            f.key.display()
        ),
        None => String::new(),
    };
    format!(
        "# Generated by wardmq-bench.\n\
         id = 0\n\
         \n\
         [router]\n\
         id = 0\n\
         max_connections = {conns}\n\
         max_outgoing_packet_count = 200\n\
         max_segment_size = 104857600\n\
         max_segment_count = 10\n\
         \n\
         [v4.1]\n\
         name = \"v4-1\"\n\
         listen = \"127.0.0.1:{port}\"\n\
         next_connection_delay_ms = 0\n\
         \x20   [v4.1.connections]\n\
         \x20   connection_timeout_ms = 60000\n\
         \x20   max_payload_size = {packet}\n\
         \x20   max_inflight_count = {inflight}\n\
         \x20   dynamic_filters = true\n\
         {tls}",
        conns = l.max_connections,
        packet = l.max_packet,
        inflight = l.max_inflight,
    )
}

/// A free TCP port on 127.0.0.1. Another process could take it before the
/// broker binds it; the start then fails with a clear error rather than
/// measuring the wrong thing.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr().context("finding a free port")?.port())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The binary for a target, building or installing it when missing.
/// `Ok(None)` means the peer is unavailable and the comparison goes on
/// without it (the reason has been printed).
pub fn prepare(target: Target, opts: &PeerOptions) -> Result<Option<PathBuf>> {
    match target {
        Target::External(_) => Ok(None),
        Target::Wardmq | Target::WardmqNoDefender => {
            let bin = target_dir(&opts.root).join("release").join("wardmq");
            // Built every time (cargo redoes only what changed): a binary
            // left from older sources would measure old code. A root with
            // no sources, only a built binary, measures that binary.
            if opts.root.join("Cargo.toml").exists() {
                eprintln!("building wardmq: cargo build --release -p wardmq");
                let status = Command::new(cargo())
                    .args(["build", "--release", "-p", "wardmq"])
                    .current_dir(&opts.root)
                    .status()
                    .context("running cargo build")?;
                if !status.success() {
                    bail!("cargo build --release -p wardmq failed");
                }
            } else if !bin.exists() {
                bail!(
                    "{} has neither sources nor a wardmq binary at {}",
                    opts.root.display(),
                    bin.display()
                );
            }
            Ok(Some(bin))
        }
        Target::Mosquitto => {
            let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists());
            if bin.is_none() {
                eprintln!("skipping mosquitto: not installed (apt-get install mosquitto)");
            }
            Ok(bin)
        }
        Target::Rumqttd => {
            // Client-certificate checks need rumqttd's `verify-client-cert`
            // feature: a build of its own, cached apart from the plain one.
            let (dir, features) = if opts.tls.is_some() {
                ("rumqttd-mtls", Some("verify-client-cert"))
            } else {
                ("rumqttd", None)
            };
            let cache = opts.root.join("bench").join(".cache").join(dir);
            let bin = cache.join("bin").join("rumqttd");
            if bin.exists() {
                return Ok(Some(bin));
            }
            // --locked first (the versions rumqttd was released with); if that
            // no longer compiles on this toolchain (rumqttd 0.20.0's locked
            // metrics 0.22.1 does not on recent rustc), retry with the newest
            // semver-compatible dependencies.
            for locked in [true, false] {
                let mut cmd = Command::new(cargo());
                cmd.args(["install", "rumqttd", "--root"]).arg(&cache);
                if locked {
                    cmd.arg("--locked");
                }
                if let Some(f) = features {
                    cmd.args(["--features", f]);
                }
                eprintln!(
                    "installing rumqttd: cargo install rumqttd --root {}{}{}",
                    cache.display(),
                    if locked { " --locked" } else { "" },
                    features.map_or(String::new(), |f| format!(" --features {f}")),
                );
                match cmd.status() {
                    Ok(s) if s.success() && bin.exists() => return Ok(Some(bin)),
                    Ok(s) => eprintln!("cargo install rumqttd failed ({s})"),
                    Err(e) => eprintln!("could not run cargo install: {e}"),
                }
            }
            eprintln!("skipping rumqttd: it could not be installed; comparing without it");
            Ok(None)
        }
    }
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A broker process the bench started (or an external one it did not).
pub struct Peer {
    pub addr: SocketAddr,
    child: Option<Child>,
    /// Scratch directory (config, data, log); removed on drop.
    dir: Option<tempfile::TempDir>,
}

impl Peer {
    /// The broker's process id, when the bench owns the process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts a fresh broker for `target`. Every run gets its own process so
    /// that peak memory and CPU time belong to that run alone.
    /// `admission`: wardmq keeps its default connection-rate limits (see
    /// `wardmq_config`); the other peers have none to keep.
    pub fn start(
        target: Target,
        bin: Option<&Path>,
        opts: &PeerOptions,
        admission: bool,
    ) -> Result<Peer> {
        let bin = match (target, bin) {
            (Target::External(addr), _) => {
                return Ok(Peer {
                    addr,
                    child: None,
                    dir: None,
                })
            }
            (_, Some(bin)) => bin,
            (_, None) => bail!("no binary for {target}"),
        };
        let dir = tempfile::Builder::new()
            .prefix("wardmq-bench-")
            .tempdir()
            .context("creating scratch directory")?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).context("creating data directory")?;
        let log = dir.path().join("broker.log");
        let stderr = std::fs::File::create(&log).context("creating broker log")?;

        let tls = match &opts.tls {
            Some(pki) => Some(pki.write_server_files(&dir.path().join("certs"))?),
            None => None,
        };

        let mut cmd = Command::new(bin);
        match target {
            Target::Wardmq | Target::WardmqNoDefender => {
                let defender = target == Target::Wardmq;
                let conf = match &opts.wardmq_config {
                    Some(user) => user.clone(),
                    None => write(
                        dir.path(),
                        "wardmq.toml",
                        &wardmq_config(&LIMITS, defender, admission),
                    )?,
                };
                cmd.arg("serve")
                    .arg("--config")
                    .arg(&conf)
                    .arg("--data")
                    .arg(&data);
                match (&tls, &opts.tls) {
                    (Some(files), Some(pki)) => {
                        let text = std::fs::read_to_string(&conf)
                            .with_context(|| format!("reading {}", conf.display()))?;
                        register_bench_pki(&data, pki, wardmq_scope(Some(&text))?)?;
                        // The device listener only, like the peers; no
                        // admin API. ca.pem is there and ca.key is not, so
                        // wardmq's dev-PKI bootstrap changes nothing.
                        cmd.arg("--tls")
                            .arg(addr.to_string())
                            .arg("--certs")
                            .arg(&files.dir)
                            .args(["--admin", ""]);
                    }
                    _ => {
                        // Plain TCP only, like the peers; no admin API.
                        cmd.arg("--tcp")
                            .arg(addr.to_string())
                            .args(["--tls", "", "--admin", ""]);
                    }
                }
            }
            Target::Mosquitto => {
                let text = mosquitto_config(
                    port,
                    &LIMITS,
                    opts.persistence,
                    &data,
                    procstat::running_as_root(),
                    tls.as_ref(),
                );
                cmd.arg("-c")
                    .arg(write(dir.path(), "mosquitto.conf", &text)?);
            }
            Target::Rumqttd => {
                let text = rumqttd_config(port, &LIMITS, tls.as_ref());
                cmd.arg("--quiet")
                    .arg("-c")
                    .arg(write(dir.path(), "rumqttd.toml", &text)?);
            }
            Target::External(_) => bail!("an external target has no process to start"),
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;

        // Drain stdout on a thread for the life of the process so a chatty
        // broker never blocks on a full pipe; wardmq's "listening" line is
        // passed on as its readiness signal.
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if line.starts_with("wardmq: listening on") {
                        let _ = tx.send(());
                    }
                }
            });
        }
        let mut peer = Peer {
            addr,
            child: Some(child),
            dir: Some(dir),
        };
        if let Err(e) = peer.wait_ready(target, &rx) {
            let tail = peer.log_tail();
            return Err(e.context(format!("{target} did not start; its log ends:\n{tail}")));
        }
        Ok(peer)
    }

    fn wait_ready(&mut self, target: Target, rx: &mpsc::Receiver<()>) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut announced = !matches!(target, Target::Wardmq | Target::WardmqNoDefender);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("checking broker")? {
                    bail!("exited early with {status}");
                }
            }
            if !announced {
                announced = rx.recv_timeout(Duration::from_millis(50)).is_ok();
                continue;
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "not accepting connections on {} after {START_TIMEOUT:?}",
            self.addr
        )
    }

    fn log_tail(&self) -> String {
        let Some(dir) = &self.dir else {
            return String::new();
        };
        let text = std::fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops the broker (SIGKILL: a benchmark does not need a graceful end,
    /// and a hung broker must not hang the bench).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a broken fixture should fail the test loudly
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn targets_parse() {
        assert_eq!("wardmq".parse::<Target>().unwrap(), Target::Wardmq);
        assert_eq!("rumqttd".parse::<Target>().unwrap(), Target::Rumqttd);
        assert_eq!(
            "127.0.0.1:1883".parse::<Target>().unwrap(),
            Target::External("127.0.0.1:1883".parse().unwrap())
        );
        assert!("hivemq".parse::<Target>().is_err());
    }

    #[test]
    fn wardmq_config_sets_generous_limits() {
        let text = wardmq_config(&LIMITS, true, false);
        assert!(text.contains("connection_rate_per_ip = 0\nconnection_rate = 0\n"));
        // Production admission limits: wardmq's defaults stay.
        let limited = wardmq_config(&LIMITS, true, true);
        assert!(!limited.contains("connection_rate"), "{limited}");
        assert!(limited.contains("max_inflight = 1000\n"));
        // Only keys wardmq knows (it rejects unknown ones) with our values.
        assert!(text.contains("max_inflight = 1000\n"));
        assert!(text.contains("max_queued_messages = 1000000\n"));
        assert!(text.contains("receive_maximum = 65535\n"));
        assert!(text.contains("level = \"warn\""));
        let max_bytes: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("max_queued_bytes = "))
            .unwrap()
            .parse()
            .unwrap();
        // wardmq requires max_queued_bytes >= max_packet_size.
        assert!(max_bytes >= LIMITS.max_packet);
    }

    #[test]
    fn mosquitto_config_with_and_without_persistence() {
        let off = mosquitto_config(18830, &LIMITS, false, Path::new("/tmp/x"), false, None);
        assert!(off.contains("listener 18830 127.0.0.1\n"));
        assert!(off.contains("allow_anonymous true\n"));
        assert!(off.contains("max_inflight_messages 1000\n"));
        assert!(off.contains("max_queued_messages 1000000\n"));
        assert!(off.contains("persistence false\n"));
        assert!(off.contains("log_dest none\n"));
        assert!(!off.contains("user root"));
        assert!(!off.contains("require_certificate"));

        let on = mosquitto_config(18830, &LIMITS, true, Path::new("/tmp/x"), true, None);
        assert!(on.contains("persistence true\npersistence_location /tmp/x/\n"));
        assert!(on.contains("user root\n"));
    }

    #[test]
    fn rumqttd_config_has_one_plain_v4_listener() {
        let text = rumqttd_config(18831, &LIMITS, None);
        assert!(text.contains("[v4.1]\n"));
        assert!(text.contains("listen = \"127.0.0.1:18831\"\n"));
        assert!(text.contains("next_connection_delay_ms = 0\n"));
        assert!(text.contains("    max_inflight_count = 1000\n"));
        assert!(!text.contains("[v5"));
        assert!(!text.contains("tls"));
        assert!(!text.contains("[console]"));
    }

    #[test]
    fn tls_listeners_require_client_certificates() {
        let files = ServerFiles::in_dir(Path::new("/tmp/b/certs"));
        let m = mosquitto_config(
            18830,
            &LIMITS,
            false,
            Path::new("/tmp/x"),
            false,
            Some(&files),
        );
        assert!(m.contains(
            "listener 18830 127.0.0.1\n\
             cafile /tmp/b/certs/ca.pem\n\
             certfile /tmp/b/certs/server.pem\n\
             keyfile /tmp/b/certs/server.key\n\
             require_certificate true\n"
        ));
        assert!(m.contains("max_connections -1\n"));

        let r = rumqttd_config(18831, &LIMITS, Some(&files));
        assert!(r.ends_with(
            "    [v4.1.tls]\n    capath = \"/tmp/b/certs/ca.pem\"\n    \
             certpath = \"/tmp/b/certs/server.pem\"\n    keypath = \"/tmp/b/certs/server.key\"\n"
        ));
        // Still one listener, inside [v4.1].
        assert_eq!(r.matches("listen = ").count(), 1);
    }

    #[test]
    fn wardmq_scope_follows_the_config() {
        let d = wardmq_scope(None).unwrap();
        assert_eq!(
            d.cert_arn("ab"),
            "arn:aws:iot:us-east-1:123456789012:cert/ab"
        );
        let text = "[aws]\nregion = \"eu-west-3\"\naccount = \"000000000042\"\n";
        let s = wardmq_scope(Some(text)).unwrap();
        assert_eq!(
            s.cert_arn("ab"),
            "arn:aws:iot:eu-west-3:000000000042:cert/ab"
        );
        // The generated config has no [aws]: wardmq's defaults.
        let g = wardmq_scope(Some(&wardmq_config(&LIMITS, true, false))).unwrap();
        assert_eq!(g, d);
    }

    #[test]
    fn the_bench_pki_registers_in_wardmqs_registry() {
        let pki = BenchPki::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let scope = wardmq_scope(None).unwrap();
        register_bench_pki(dir.path(), &pki, scope.clone()).unwrap();
        // Reopened as wardmq would: the device certificate is usable and
        // the allow-all policy applies to it.
        let registry = Registry::open(dir.path().join("registry.redb"), scope).unwrap();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pki.device_cert_pem.as_bytes())
            .unwrap();
        let id = wardmq_broker::net::identity::certificate_id(der.as_ref());
        assert!(registry.certificate_usable(&id));
        let policies = registry.effective_policies(&id, None);
        assert_eq!(policies.len(), 1);
        assert_eq!(policies[0].0, WARDMQ_BENCH_POLICY);
        assert_eq!(
            registry.trust_material().active_cas,
            vec![pki.ca_pem.clone()]
        );
    }

    #[test]
    fn free_ports_are_on_loopback_and_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }
}
