//! `wardmq certs init` and `wardmq certs device`, run as a user would in a
//! temp directory; the results are checked on disk, with `openssl verify`
//! and in the registry (opened after the command exits).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use wardmq::pki;
use wardmq_broker::authz;
use wardmq_broker::registry::{CaCertificateStatus, CertificateStatus, PageRequest, Registry};

const TIMEOUT: Duration = Duration::from_secs(60);

fn wardmq(args: &[&str], dir: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wardmq"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wardmq");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("poll wardmq").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("wardmq {args:?} still running after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}

fn ok(args: &[&str], dir: &Path) -> String {
    let out = wardmq(args, dir);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wardmq {args:?} failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn registry(dir: &Path) -> Registry {
    Registry::open(dir.join("data/registry.redb"), pki::default_scope()).expect("registry opens")
}

fn der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .as_ref()
        .to_vec()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `openssl verify` output, or None (with a message) when openssl is absent.
fn openssl_verify(dir: &Path, args: &[&str]) -> Option<Output> {
    if !pki::openssl_available() {
        eprintln!("SKIPPED openssl checks: openssl is not installed (apt-get install openssl)");
        return None;
    }
    Some(
        Command::new("openssl")
            .arg("verify")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl"),
    )
}

fn assert_verifies(out: Option<Output>, what: &str) {
    if let Some(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(": OK"),
            "{what}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn init_writes_the_pki_and_registers_the_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let out = ok(
        &["certs", "init", "--data", "data", "--host", "broker.test"],
        dir,
    );
    assert!(out.contains("wrote certs/ca.pem"), "{out}");

    for f in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        assert!(dir.join("certs").join(f).is_file(), "{f} missing");
    }
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.join("certs/ca.key")), 0o600);
        assert_eq!(mode(&dir.join("certs/server.key")), 0o600);
    }

    // server.pem is the server certificate then the CA.
    let chain = std::fs::read_to_string(dir.join("certs/server.pem")).expect("server.pem");
    let ca_pem = std::fs::read_to_string(dir.join("certs/ca.pem")).expect("ca.pem");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(chain.ends_with(&ca_pem));

    assert_verifies(
        openssl_verify(
            dir,
            &[
                "-CAfile",
                "certs/ca.pem",
                "-purpose",
                "sslserver",
                "certs/server.pem",
            ],
        ),
        "server.pem against ca.pem",
    );

    let server_der = der(&dir.join("certs/server.pem"));
    let (_, server) = x509_parser::parse_x509_certificate(&server_der).expect("parses");
    let san = server
        .subject_alternative_name()
        .expect("ok")
        .expect("SAN")
        .value
        .general_names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    for want in [
        "DNSName(\"localhost\")",
        "IPAddress([127, 0, 0, 1])",
        "IPAddress([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])",
        "DNSName(\"broker.test\")",
    ] {
        assert!(san.contains(want), "{want} not in {san}");
    }

    let reg = registry(dir);
    let ca_id = sha256_hex(&der(&dir.join("certs/ca.pem")));
    let ca = reg.ca_certificate(&ca_id).expect("CA registered");
    assert_eq!(ca.status, CaCertificateStatus::Active);
    assert_eq!(ca.facts.subject_cn.as_deref(), Some("wardmq dev CA"));
}

#[test]
fn init_twice_keeps_everything_and_force_replaces_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(&["certs", "init", "--data", "data"], dir);
    let read = |f: &str| std::fs::read(dir.join("certs").join(f)).expect("file");
    let before: Vec<Vec<u8>> = ["ca.pem", "ca.key", "server.pem", "server.key"]
        .iter()
        .map(|f| read(f))
        .collect();

    let out = ok(&["certs", "init", "--data", "data"], dir);
    assert!(out.contains("kept  certs/ca.pem"), "{out}");
    let after: Vec<Vec<u8>> = ["ca.pem", "ca.key", "server.pem", "server.key"]
        .iter()
        .map(|f| read(f))
        .collect();
    assert_eq!(before, after);
    {
        let reg = registry(dir);
        assert_eq!(
            reg.list_ca_certificates(&PageRequest::default())
                .expect("list")
                .items
                .len(),
            1
        );
    }

    ok(&["certs", "init", "--data", "data", "--force"], dir);
    assert_ne!(read("ca.pem"), before[0]);
    assert_ne!(read("server.key"), before[3]);
    let reg = registry(dir);
    let new_id = sha256_hex(&der(&dir.join("certs/ca.pem")));
    assert_eq!(
        reg.ca_certificate(&new_id).map(|c| c.status),
        Some(CaCertificateStatus::Active)
    );
}

#[test]
fn device_is_issued_registered_attached_and_verifies_as_a_client() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(&["certs", "init", "--data", "data"], dir);
    let out = ok(&["certs", "device", "sensor-1", "--data", "data"], dir);
    assert!(
        out.contains(
            "mosquitto_pub --cafile certs/ca.pem --cert certs/devices/sensor-1.pem \
             --key certs/devices/sensor-1.key -h localhost -p 8883 -i sensor-1 \
             -t sensor-1/hello -m hi"
        ),
        "{out}"
    );

    let cert_path = dir.join("certs/devices/sensor-1.pem");
    let key_path = dir.join("certs/devices/sensor-1.key");
    assert!(cert_path.is_file() && key_path.is_file());
    #[cfg(unix)]
    assert_eq!(mode(&key_path), 0o600);

    if let Some(out) = openssl_verify(
        dir,
        &[
            "-CAfile",
            "certs/ca.pem",
            "-purpose",
            "sslclient",
            "-show_chain",
            "certs/devices/sensor-1.pem",
        ],
    ) {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_verifies(Some(out), "device against ca.pem as sslclient");
        assert!(text.contains("sensor-1"), "{text}");
        // The same check with the server purpose must fail: clientAuth only.
        let server = openssl_verify(
            dir,
            &[
                "-CAfile",
                "certs/ca.pem",
                "-purpose",
                "sslserver",
                "certs/devices/sensor-1.pem",
            ],
        )
        .expect("openssl present");
        assert!(
            !server.status.success(),
            "device cert passed as a server cert"
        );
        let purposes = Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-purpose",
                "-in",
                "certs/devices/sensor-1.pem",
            ])
            .current_dir(dir)
            .output()
            .expect("run openssl x509");
        let purposes = String::from_utf8_lossy(&purposes.stdout).into_owned();
        assert!(purposes.contains("SSL client : Yes"), "{purposes}");
        assert!(purposes.contains("SSL server : No"), "{purposes}");
    }

    let reg = registry(dir);
    let id = sha256_hex(&der(&cert_path));
    let cert = reg.certificate(&id).expect("certificate registered");
    assert_eq!(cert.status, CertificateStatus::Active);
    let ca_id = sha256_hex(&der(&dir.join("certs/ca.pem")));
    assert_eq!(cert.ca_certificate_id.as_deref(), Some(ca_id.as_str()));
    assert!(reg.thing("sensor-1").is_some(), "thing exists");
    let arn = reg.scope().cert_arn(&id);
    let principals = reg
        .list_thing_principals("sensor-1", &PageRequest::default())
        .expect("list")
        .items;
    assert_eq!(principals, vec![arn.clone()]);
    let attached = reg
        .list_attached_policies(&arn, &PageRequest::default())
        .expect("list")
        .items;
    assert_eq!(attached, vec![pki::DEFAULT_POLICY_NAME.to_owned()]);
    let policy = reg.policy(pki::DEFAULT_POLICY_NAME).expect("policy");
    let doc = policy.default_document().expect("document");
    authz::Policy::parse(pki::DEFAULT_POLICY_NAME, doc).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn device_twice_keeps_the_certificate_and_second_device_shares_the_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(&["certs", "init", "--data", "data"], dir);
    ok(&["certs", "device", "a", "--data", "data"], dir);
    let first = std::fs::read(dir.join("certs/devices/a.pem")).expect("a.pem");
    let out = ok(&["certs", "device", "a", "--data", "data"], dir);
    assert!(out.contains("kept"), "{out}");
    assert_eq!(
        std::fs::read(dir.join("certs/devices/a.pem")).expect("a.pem"),
        first
    );
    ok(&["certs", "device", "b", "--data", "data"], dir);

    let reg = registry(dir);
    let targets = reg
        .list_targets_for_policy(pki::DEFAULT_POLICY_NAME, &PageRequest::default())
        .expect("list")
        .items;
    assert_eq!(targets.len(), 2, "{targets:?}");
    let policy = reg.policy(pki::DEFAULT_POLICY_NAME).expect("policy");
    assert_eq!(policy.versions.len(), 1, "created once");
}

#[test]
fn device_refuses_bad_names_and_a_missing_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let out = wardmq(&["certs", "device", "x", "--data", "data"], dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wardmq certs init"));

    ok(&["certs", "init", "--data", "data"], dir);
    let out = wardmq(&["certs", "device", "../escape", "--data", "data"], dir);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a valid thing name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("certs/escape.pem").exists());
}
