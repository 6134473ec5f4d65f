//! Mutual TLS end to end: real clients (mosquitto, paho) with certificates
//! from a fresh PKI, a real registry, the device listener on a free port.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::pki::{self, DeviceSpec, Files};
use common::*;
use rcgen::ExtendedKeyUsagePurpose;
use wardmq_broker::observer::Observer;
use wardmq_broker::registry::{CertificateStatus, Registry, Scope, ThingGroupProperties};
use wardmq_broker::server::{Server, Services};
use wardmq_broker::settings::{Settings, TlsSettings};

/// The least-privilege device policy: connect as itself, use its topics.
const DEVICE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
 {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/${iot:Connection.Thing.ThingName}/*"},
 {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/${iot:Connection.Thing.ThingName}/*"}]}"#;

const DENY_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*","Resource":"*"}]}"#;

#[derive(Default)]
struct Counts {
    auth_failures: AtomicUsize,
    tls_failures: Mutex<Vec<String>>,
}

impl Observer for Counts {
    fn authorization_failure(&self, _: &str, _: SocketAddr, _: &str, _: &str) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }
    fn tls_handshake_failed(&self, _: SocketAddr, reason: &str) {
        self.tls_failures
            .lock()
            .expect("lock")
            .push(reason.to_owned());
    }
}

struct Fleet {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    ca_file: PathBuf,
    ca: pki::Ca,
    registry: Registry,
    server: Server,
    addr: SocketAddr,
    counts: Arc<Counts>,
}

impl Fleet {
    async fn start() -> Fleet {
        Fleet::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Fleet {
        let tmp = tempfile::tempdir().expect("dir");
        let dir = tmp.path().to_path_buf();
        let ca = pki::ca("test CA");
        let ca_file = pki::write_ca(&dir, "ca", &ca);
        let server_files = pki::server(&dir, &ca);
        let scope = Scope::new("us-east-1", "123456789012");
        let registry = Registry::open(dir.join("registry.redb"), scope).expect("registry");
        let ca_record = registry
            .register_ca_certificate(&ca.pem(), true, false)
            .expect("register CA");
        registry
            .create_policy("device", DEVICE_POLICY)
            .expect("policy");
        // Serial 9 is revoked by the CA's CRL.
        let crl = pki::crl(&dir, &ca, &[9], 1);
        let settings = Settings {
            data_dir: dir.join("data"),
            tcp: None,
            tls: Some(TlsSettings {
                addr: "127.0.0.1:0".parse().expect("addr"),
                cert_chain: server_files.cert,
                key: server_files.key,
                crls: vec![(ca_record.id, crl)],
                handshake_timeout: Duration::from_secs(5),
            }),
            ..Settings::default()
        };
        let mut settings = settings;
        tweak(&mut settings);
        let counts = Arc::new(Counts::default());
        let server = Server::start_with(
            settings,
            Services {
                registry: Some(registry.clone()),
                observer: counts.clone(),
                ..Services::default()
            },
        )
        .await
        .expect("start");
        let addr = server.tls_addr().expect("tls addr");
        Fleet {
            _dir: tmp,
            dir,
            ca_file,
            ca,
            registry,
            server,
            addr,
            counts,
        }
    }

    /// Issues, registers (with `status`) and provisions a device: thing,
    /// principal, policy.
    fn provision(&self, name: &str, spec: DeviceSpec, status: CertificateStatus) -> Files {
        let files = pki::device(&self.dir, &self.ca, name, spec);
        self.register(name, &files, status);
        files
    }

    fn register(&self, name: &str, files: &Files, status: CertificateStatus) -> String {
        let cert = self
            .registry
            .register_certificate(&files.pem, Some(&self.ca.pem()), Some(status))
            .expect("register cert");
        self.attach(name, &cert.id);
        cert.id
    }

    fn attach(&self, name: &str, cert_id: &str) {
        let arn = self.registry.scope().cert_arn(cert_id);
        self.registry
            .create_thing(name, None, BTreeMap::new())
            .expect("thing");
        self.registry
            .attach_thing_principal(name, &arn)
            .expect("principal");
        self.registry.attach_policy("device", &arn).expect("attach");
    }

    fn probe(&self) -> Probe<'_> {
        Probe {
            addr: self.addr,
            ca_file: &self.ca_file,
        }
    }
}

fn paho_tls(fleet: &Fleet, files: &Files, client_id: &str, mode: &str) -> std::process::Child {
    Command::new("python3")
        .arg(repo_root().join("tests/paho/tls_device.py"))
        .arg(fleet.addr.port().to_string())
        .arg(&fleet.ca_file)
        .arg(&files.cert)
        .arg(&files.key)
        .args([client_id, mode])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3")
}

fn ok_run(child: std::process::Child) -> String {
    let mut child = child;
    let out = wait_output(&mut child, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "paho failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_devices_connect_and_bad_certificates_are_refused() {
    let fleet = Fleet::start().await;
    let good = fleet.provision("dev-good", DeviceSpec::default(), CertificateStatus::Active);
    let expired = fleet.provision(
        "dev-expired",
        DeviceSpec {
            serial: 2,
            not_before: (2001, 1, 1),
            not_after: (2002, 1, 1),
            ..Default::default()
        },
        CertificateStatus::Active,
    );
    let inactive = fleet.provision(
        "dev-inactive",
        DeviceSpec {
            serial: 3,
            ..Default::default()
        },
        CertificateStatus::Inactive,
    );
    let revoked = fleet.provision(
        "dev-revoked",
        DeviceSpec {
            serial: 4,
            ..Default::default()
        },
        CertificateStatus::Revoked,
    );
    let crl_revoked = fleet.provision(
        "dev-crl",
        DeviceSpec {
            serial: 9,
            ..Default::default()
        },
        CertificateStatus::Active,
    );
    let wrong_usage = fleet.provision(
        "dev-server-eku",
        DeviceSpec {
            serial: 5,
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..Default::default()
        },
        CertificateStatus::Active,
    );
    // Unknown: issued by the right CA but never registered.
    let unknown = pki::device(&fleet.dir, &fleet.ca, "dev-unknown", DeviceSpec::default());
    // Wrong CA: a CA nobody registered.
    let stranger_ca = pki::ca("stranger CA");
    let wrong_ca = pki::device(
        &fleet.dir,
        &stranger_ca,
        "dev-wrong-ca",
        DeviceSpec::default(),
    );
    let weak = pki::rsa1024_device(&fleet.dir, &fleet.ca, "dev-weak");
    fleet.register("dev-weak", &weak, CertificateStatus::Active);
    // Registered without a CA (self-signed).
    let lonely = pki::self_signed_device(&fleet.dir, "dev-lonely");
    let lonely_id = fleet
        .registry
        .register_certificate_without_ca(&lonely.pem, Some(CertificateStatus::Active))
        .expect("without CA")
        .id;
    fleet.attach("dev-lonely", &lonely_id);

    let f = &fleet;
    let results = tokio::task::spawn_blocking({
        let cases = vec![
            ("valid", good.clone(), "dev-good"),
            ("registered without CA", lonely.clone(), "dev-lonely"),
            ("unknown", unknown, "dev-unknown"),
            ("expired", expired, "dev-expired"),
            ("INACTIVE", inactive, "dev-inactive"),
            ("REVOKED", revoked, "dev-revoked"),
            ("CRL-revoked", crl_revoked, "dev-crl"),
            ("wrong CA", wrong_ca, "dev-wrong-ca"),
            ("RSA-1024", weak, "dev-weak"),
            ("serverAuth-only", wrong_usage, "dev-server-eku"),
        ];
        let (addr, ca_file) = (f.addr, f.ca_file.clone());
        move || {
            cases
                .into_iter()
                .map(|(name, files, id)| {
                    let probe = Probe {
                        addr,
                        ca_file: &ca_file,
                    };
                    (name, probe.publish(&files, id, &format!("{id}/hello")))
                })
                .collect::<Vec<_>>()
        }
    })
    .await
    .expect("join");
    for (name, connected) in results {
        let expected = matches!(name, "valid" | "registered without CA");
        assert_eq!(connected, expected, "{name}: connected = {connected}");
    }
    let reasons = fleet.counts.tls_failures.lock().expect("lock").clone();
    for reason in [
        "expired",
        "unknown_ca",
        "revoked",
        "weak_key",
        "wrong_usage",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "handshake refusal {reason} counted: {reasons:?}"
        );
    }
    // INACTIVE, REVOKED and unknown certificates chain fine but are refused
    // at CONNECT, and counted as authorization failures.
    assert!(fleet.counts.auth_failures.load(Ordering::Relaxed) >= 3);
    fleet.server.shutdown().await;
}

/// Runs mosquitto_pub from a blocking thread.
struct Probe<'a> {
    addr: SocketAddr,
    ca_file: &'a Path,
}

impl Probe<'_> {
    fn publish(&self, files: &Files, client_id: &str, topic: &str) -> bool {
        // OpenSSL's default security level refuses to even present an
        // RSA-1024 key; lower it so the broker is the one that says no.
        let weak = client_id == "dev-weak";
        let out = run_with_timeout(
            Command::new("mosquitto_pub")
                .args(if weak {
                    &[
                        "--ciphers",
                        "DEFAULT:@SECLEVEL=0",
                        "--tls-version",
                        "tlsv1.2",
                    ][..]
                } else {
                    &[][..]
                })
                .args(["-h", "127.0.0.1", "-p", &self.addr.port().to_string()])
                .arg("--cafile")
                .arg(self.ca_file)
                .arg("--cert")
                .arg(&files.cert)
                .arg("--key")
                .arg(&files.key)
                .args(["-i", client_id, "-q", "1", "-t", topic, "-m", "hi"]),
            TIMEOUT,
        );
        out.status.success()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_limits_what_a_device_may_do_and_counts_denials() {
    let fleet = Fleet::start().await;
    let dev = fleet.provision("dev-p", DeviceSpec::default(), CertificateStatus::Active);
    let before = fleet.counts.auth_failures.load(Ordering::Relaxed);
    let child = paho_tls(&fleet, &dev, "dev-p", "policy");
    tokio::task::spawn_blocking(move || ok_run(child))
        .await
        .expect("join");
    let after = fleet.counts.auth_failures.load(Ordering::Relaxed);
    assert_eq!(
        after - before,
        2,
        "one refused subscribe, one refused publish"
    );
    // Connecting under another client ID than its thing is refused.
    let probe = fleet.probe();
    let publish = |id: &str| tokio::task::block_in_place(|| probe.publish(&dev, id, "dev-p/x"));
    assert!(!publish("someone-else"));
    assert!(publish("dev-p"));
    fleet.server.shutdown().await;
}

/// Starts a device holding its connection, applies `change`, and returns
/// how the connection ended.
async fn cut_by(
    fleet: &Fleet,
    name: &str,
    serial: u8,
    change: impl FnOnce(&Registry, &str),
) -> String {
    let dev = pki::device(
        &fleet.dir,
        &fleet.ca,
        name,
        DeviceSpec {
            serial,
            ..Default::default()
        },
    );
    let id = fleet.register(name, &dev, CertificateStatus::Active);
    let mut child = paho_tls(fleet, &dev, name, "hold");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    tokio::task::block_in_place(|| loop {
        let line = rx.recv_timeout(TIMEOUT).expect("device output");
        if line.starts_with("connected") {
            break;
        }
    });
    change(&fleet.registry, &id);
    let cut = tokio::task::block_in_place(|| rx.recv_timeout(TIMEOUT)).expect("connection cut");
    let _ = child.kill();
    let _ = child.wait();
    cut
}

fn seconds(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivating_a_certificate_cuts_the_live_connection_within_a_second() {
    let fleet = Fleet::start().await;
    let cut = cut_by(&fleet, "dev-live", 11, |r, id| {
        r.update_certificate(id, CertificateStatus::Inactive)
            .expect("deactivate");
    })
    .await;
    assert!(cut.starts_with("cut 135"), "cut with 0x87: {cut}");
    assert!(seconds(&cut) < 1.0, "within one second: {cut}");
    fleet.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_thing_into_a_denying_group_cuts_it_within_a_second() {
    let fleet = Fleet::start().await;
    fleet
        .registry
        .create_thing_group("quarantine", None, ThingGroupProperties::default())
        .expect("group");
    fleet
        .registry
        .create_policy("deny-all", DENY_ALL)
        .expect("policy");
    let group_arn = fleet.registry.scope().group_arn("quarantine");
    fleet
        .registry
        .attach_policy("deny-all", &group_arn)
        .expect("attach");
    let cut = cut_by(&fleet, "dev-moved", 12, |r, _| {
        r.add_thing_to_thing_group("quarantine", "dev-moved")
            .expect("move");
    })
    .await;
    assert!(cut.starts_with("cut 135"), "cut with 0x87: {cut}");
    assert!(seconds(&cut) < 1.0, "within one second: {cut}");
    fleet.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_crl_cuts_the_live_connection_of_a_revoked_device() {
    let fleet = Fleet::start().await;
    let (dir, ca) = (fleet.dir.clone(), &fleet.ca);
    let cut = cut_by(&fleet, "dev-crl-live", 13, |_, _| {
        // The CA publishes a new CRL that adds this device's serial.
        pki::crl(&dir, ca, &[9, 13], 2);
    })
    .await;
    assert!(cut.starts_with("cut 135"), "cut with 0x87: {cut}");
    assert!(seconds(&cut) < 1.0, "within one second: {cut}");
    fleet.server.shutdown().await;
}

/// Slow-loris: a socket that sends nothing, one that sends half a
/// ClientHello, and a device that completes the handshake and then sends
/// half a CONNECT are each closed once their deadline (1 s handshake,
/// 1 s CONNECT) has passed, not later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_and_connects_are_closed_in_time() {
    let fleet = Fleet::start_with(|s| {
        s.limits.connect_timeout = Duration::from_secs(1);
        if let Some(tls) = s.tls.as_mut() {
            tls.handshake_timeout = Duration::from_secs(1);
        }
    })
    .await;
    let good = fleet.provision("dev-slow", DeviceSpec::default(), CertificateStatus::Active);
    let addr = fleet.addr;
    let closed_after = move |first: &'static [u8]| {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.write_all(first).expect("write");
            s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
            let started = std::time::Instant::now();
            let mut buf = [0u8; 512];
            // A TLS alert may come first; the socket must then close.
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return started.elapsed(),
                    Ok(_) => {}
                }
            }
        })
    };
    // A record header announcing 200 bytes of handshake, then 4 of them.
    let partial_hello: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4];
    let (silent, partial) = tokio::join!(closed_after(&[]), closed_after(partial_hello));
    for (what, t) in [("silent", silent), ("partial ClientHello", partial)] {
        let t = t.expect("join");
        assert!(
            t >= Duration::from_millis(800) && t < Duration::from_millis(2500),
            "{what} socket closed after {t:?}, handshake timeout 1 s"
        );
    }
    let script = r#"
import socket, ssl, sys, time
port, ca, cert, key = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
ctx.load_cert_chain(cert, key)
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="localhost")
t.sendall(bytes([0x10, 20, 0, 4]))
start = time.monotonic()
t.settimeout(20)
try:
    data = t.recv(1)
except (OSError, ssl.SSLError):
    data = b""
print("closed %.3f %d" % (time.monotonic() - start, len(data)))
"#;
    let out = run_with_timeout(
        Command::new("python3")
            .args(["-c", script, &addr.port().to_string()])
            .arg(&fleet.ca_file)
            .arg(&good.cert)
            .arg(&good.key),
        TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (secs, bytes) = stdout
        .trim()
        .strip_prefix("closed ")
        .and_then(|r| r.split_once(' '))
        .unwrap_or_else(|| panic!("python: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    let secs: f64 = secs.parse().expect("seconds");
    assert_eq!(bytes, "0", "nothing is sent to a half-sent CONNECT");
    assert!(
        (0.8..2.5).contains(&secs),
        "a partial CONNECT was closed after {secs} s, connect timeout 1 s"
    );
    fleet.server.shutdown().await;
}
