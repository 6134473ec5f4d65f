use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use wardmq_broker::authz::{self, Action, Context, Request, Resource};
use wardmq_broker::registry::{CertificateStatus, Registry};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM certificate")
        .as_ref()
        .to_vec()
}

/// (clientAuth, serverAuth) from the EKU extension.
fn eku(cert: &X509Certificate<'_>) -> (bool, bool) {
    let eku = cert
        .extended_key_usage()
        .expect("well-formed")
        .expect("EKU present");
    (eku.value.client_auth, eku.value.server_auth)
}

fn check_signed(cert_pem: &str, ca: &Issuer) {
    let cert_der = der(cert_pem);
    let ca_der = der(ca.cert_pem());
    let (_, cert) = X509Certificate::from_der(&cert_der).expect("cert parses");
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).expect("CA parses");
    cert.verify_signature(Some(ca_cert.public_key()))
        .expect("signed by the CA");
    assert_eq!(cert.issuer(), ca_cert.subject());
}

fn general_name(n: &GeneralName<'_>) -> String {
    match n {
        GeneralName::DNSName(d) => (*d).to_owned(),
        GeneralName::IPAddress(b) => match b.len() {
            4 => IpAddr::from(<[u8; 4]>::try_from(*b).expect("4 bytes")).to_string(),
            16 => IpAddr::from(<[u8; 16]>::try_from(*b).expect("16 bytes")).to_string(),
            _ => panic!("bad IP SAN {b:?}"),
        },
        other => panic!("unexpected SAN {other:?}"),
    }
}

fn unix(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs()).expect("fits")
}

fn registry(dir: &std::path::Path) -> Registry {
    Registry::open(registry_path(dir), default_scope()).expect("registry opens")
}

#[test]
fn ca_is_a_ca_and_loads_back_from_its_files() {
    let ca = Issuer::generate(issue::CA_COMMON_NAME).expect("CA");
    let ca_der = der(ca.cert_pem());
    let (_, cert) = X509Certificate::from_der(&ca_der).expect("parses");
    assert!(cert.is_ca());
    let ku = cert.key_usage().expect("ok").expect("key usage").value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok()),
        Some("wardmq dev CA")
    );
    let years = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!(years >= 10 * 365 * 24 * 3600, "{years}");

    // An issuer read back from PEM signs certificates the original verifies.
    let loaded = Issuer::from_pem(ca.cert_pem(), &ca.key_pem()).expect("loads");
    let issued = issue_device_cert(&loaded, "d1", &CertOptions::default()).expect("issues");
    check_signed(&issued.cert_pem, &ca);

    // A key that is not the certificate's is refused up front.
    let other = unrelated_ca().expect("CA");
    let err = Issuer::from_pem(ca.cert_pem(), &other.key_pem()).expect_err("mismatch");
    assert!(err.to_string().contains("does not belong"), "{err:#}");
    // So is a leaf certificate posing as a CA.
    let err = Issuer::from_pem(&issued.cert_pem, &issued.key_pem).expect_err("not a CA");
    assert!(err.to_string().contains("not a CA"), "{err:#}");
}

#[test]
fn device_cert_is_a_client_cert_for_its_name() {
    let ca = Issuer::generate(issue::CA_COMMON_NAME).expect("CA");
    let issued = issue_device_cert(&ca, "sensor-7", &CertOptions::default()).expect("issues");
    check_signed(&issued.cert_pem, &ca);
    let d = der(&issued.cert_pem);
    let (_, cert) = X509Certificate::from_der(&d).expect("parses");
    assert!(!cert.is_ca());
    assert_eq!(eku(&cert), (true, false));
    let ku = cert.key_usage().expect("ok").expect("key usage").value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    let cn = cert.subject().iter_common_name().next().expect("CN");
    assert_eq!(cn.as_str().ok(), Some("sensor-7"));
    let now = unix(SystemTime::now());
    assert!(cert.validity().not_before.timestamp() <= now);
    let left = cert.validity().not_after.timestamp() - now;
    assert!((364 * 86_400..=366 * 86_400).contains(&left), "{left}");
    assert!(issued.key_pem.contains("BEGIN PRIVATE KEY"));
    // The Debug form never shows the key.
    assert!(!format!("{issued:?}").contains("PRIVATE"));
}

#[test]
fn server_cert_names_loopback_and_extra_hosts() {
    let ca = Issuer::generate(issue::CA_COMMON_NAME).expect("CA");
    let hosts = vec!["broker.example".to_owned(), "10.0.0.5".to_owned()];
    let issued = issue_server_cert(&ca, &hosts).expect("issues");
    check_signed(&issued.cert_pem, &ca);
    let d = der(&issued.cert_pem);
    let (_, cert) = X509Certificate::from_der(&d).expect("parses");
    assert_eq!(eku(&cert), (false, true));
    let san = cert
        .subject_alternative_name()
        .expect("ok")
        .expect("SAN")
        .value
        .general_names
        .iter()
        .map(general_name)
        .collect::<Vec<_>>();
    assert_eq!(
        san,
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "broker.example",
            "10.0.0.5"
        ]
    );
    assert!(issue_server_cert(&ca, &["bad host!".to_owned()]).is_err());
}

#[test]
fn flawed_certificates_are_flawed_as_named() {
    let ca = Issuer::generate(issue::CA_COMMON_NAME).expect("CA");
    let now = unix(SystemTime::now());

    let expired = expired_device_cert(&ca, "old").expect("issues");
    check_signed(&expired.cert_pem, &ca);
    let d = der(&expired.cert_pem);
    let (_, c) = X509Certificate::from_der(&d).expect("parses");
    assert!(c.validity().not_after.timestamp() < now);

    let early = not_yet_valid_device_cert(&ca, "early").expect("issues");
    let d = der(&early.cert_pem);
    let (_, c) = X509Certificate::from_der(&d).expect("parses");
    assert!(c.validity().not_before.timestamp() > now);

    let server_only = server_auth_only_cert(&ca, "wrong-purpose").expect("issues");
    check_signed(&server_only.cert_pem, &ca);
    let d = der(&server_only.cert_pem);
    let (_, c) = X509Certificate::from_der(&d).expect("parses");
    assert_eq!(eku(&c), (false, true));

    let own = self_signed_device_cert("loner").expect("issues");
    let d = der(&own.cert_pem);
    let (_, c) = X509Certificate::from_der(&d).expect("parses");
    assert_eq!(c.subject(), c.issuer());
    assert!(!c.is_ca());
    c.verify_signature(None).expect("self-signed");

    let other = unrelated_ca().expect("CA");
    let stranger = issue_device_cert(&other, "stranger", &CertOptions::default()).expect("ok");
    let d = der(&stranger.cert_pem);
    let (_, c) = X509Certificate::from_der(&d).expect("parses");
    let ca_der = der(ca.cert_pem());
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).expect("parses");
    assert!(c.verify_signature(Some(ca_cert.public_key())).is_err());

    // What the registry makes of them: the self-signed one registers
    // without a CA, the stranger does not register under the dev CA.
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry(dir.path());
    reg.register_ca_certificate(ca.cert_pem(), true, false)
        .expect("CA registers");
    reg.register_certificate_without_ca(&own.cert_pem, Some(CertificateStatus::Active))
        .expect("self-signed registers without a CA");
    assert!(reg
        .register_certificate(&stranger.cert_pem, Some(ca.cert_pem()), None)
        .is_err());
    reg.register_certificate(&expired.cert_pem, Some(ca.cert_pem()), None)
        .expect("an expired certificate still registers, as in AWS");
}

#[test]
fn rsa1024_device_cert_has_a_weak_key_and_the_ca_signature() {
    if !openssl_available() {
        eprintln!("SKIPPED: openssl is not installed (apt-get install openssl)");
        return;
    }
    let ca = Issuer::generate(issue::CA_COMMON_NAME).expect("CA");
    let issued = rsa1024_device_cert(&ca, "weak").expect("issues");
    check_signed(&issued.cert_pem, &ca);
    let d = der(&issued.cert_pem);
    let (_, c) = X509Certificate::from_der(&d).expect("parses");
    match c.public_key().parsed().expect("key parses") {
        x509_parser::public_key::PublicKey::RSA(k) => assert_eq!(k.key_size(), 1024),
        other => panic!("not RSA: {other:?}"),
    }
    assert!(issued.key_pem.contains("PRIVATE KEY"));
    // The registry sees the same facts the audit will use.
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry(dir.path());
    reg.register_ca_certificate(ca.cert_pem(), true, false)
        .expect("CA registers");
    let cert = reg
        .register_certificate(&issued.cert_pem, Some(ca.cert_pem()), None)
        .expect("registers");
    assert_eq!(
        (cert.facts.key_algorithm.as_str(), cert.facts.key_size),
        ("RSA", 1024)
    );
}

#[test]
fn subject_key_identifier_links_device_to_ca() {
    // Chain building in TLS stacks follows AKI -> SKI; an issuer loaded
    // from files must keep the CA's key identifier.
    let ca = Issuer::generate(issue::CA_COMMON_NAME).expect("CA");
    let loaded = Issuer::from_pem(ca.cert_pem(), &ca.key_pem()).expect("loads");
    let issued = issue_device_cert(&loaded, "d", &CertOptions::default()).expect("issues");
    let ca_der = der(ca.cert_pem());
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).expect("parses");
    let d = der(&issued.cert_pem);
    let (_, c) = X509Certificate::from_der(&d).expect("parses");
    let ski = ca_cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });
    let aki = c
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(k) => {
                k.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        });
    assert!(ski.is_some());
    assert_eq!(ski, aki);
}

fn decide(policy: &authz::Policy, ctx: &Context, action: Action, resource: Resource) -> bool {
    let scope = authz::Scope {
        region: DEFAULT_REGION.to_owned(),
        account: DEFAULT_ACCOUNT.to_owned(),
    };
    authz::evaluate(&[policy], &scope, ctx, &Request::new(action, resource)).allowed
}

#[test]
fn default_policy_parses_and_grants_only_the_devices_own_topics() {
    let policy = authz::Policy::parse(DEFAULT_POLICY_NAME, DEFAULT_POLICY_DOCUMENT)
        .unwrap_or_else(|e| panic!("{e}"));
    let attached = Context {
        client_id: "dev1".to_owned(),
        thing_name: Some("dev1".to_owned()),
        is_attached: true,
        ..Context::default()
    };
    let allow = |ctx: &Context, a: Action, r: Resource| decide(&policy, ctx, a, r);

    assert!(allow(&attached, Action::Connect, Resource::client("dev1")));
    assert!(!allow(&attached, Action::Connect, Resource::client("dev2")));
    for a in [Action::Publish, Action::Receive] {
        assert!(allow(&attached, a, Resource::topic("dev1/hello")));
        assert!(allow(&attached, a, Resource::topic("dev1/a/b")));
        assert!(!allow(&attached, a, Resource::topic("dev2/hello")));
        assert!(!allow(&attached, a, Resource::topic("dev1")));
    }
    assert!(allow(
        &attached,
        Action::Subscribe,
        Resource::topicfilter("dev1/#")
    ));
    assert!(allow(
        &attached,
        Action::Subscribe,
        Resource::topicfilter("dev1/+/x")
    ));
    assert!(!allow(
        &attached,
        Action::Subscribe,
        Resource::topicfilter("#")
    ));
    assert!(!allow(
        &attached,
        Action::Subscribe,
        Resource::topicfilter("dev2/#")
    ));
    assert!(!allow(
        &attached,
        Action::RetainPublish,
        Resource::topic("dev1/x")
    ));

    let defender = "$aws/things/dev1/defender/metrics";
    for fmt in ["json", "cbor"] {
        assert!(allow(
            &attached,
            Action::Publish,
            Resource::topic(format!("{defender}/{fmt}"))
        ));
        for reply in ["accepted", "rejected"] {
            let t = format!("{defender}/{fmt}/{reply}");
            assert!(allow(
                &attached,
                Action::Subscribe,
                Resource::topicfilter(t.clone())
            ));
            assert!(allow(
                &attached,
                Action::Receive,
                Resource::topic(t.clone())
            ));
            assert!(!allow(&attached, Action::Publish, Resource::topic(t)));
        }
    }
    assert!(!allow(
        &attached,
        Action::Subscribe,
        Resource::topicfilter(format!("{defender}/#"))
    ));
    assert!(!allow(
        &attached,
        Action::Publish,
        Resource::topic("$aws/things/dev2/defender/metrics/json")
    ));

    // A certificate not attached to the thing gets nothing, even as dev1.
    let detached = Context {
        is_attached: false,
        ..attached.clone()
    };
    assert!(!allow(&detached, Action::Connect, Resource::client("dev1")));
    assert!(!allow(
        &detached,
        Action::Publish,
        Resource::topic("dev1/hello")
    ));
    // No thing: the variables do not resolve, so nothing matches.
    let no_thing = Context::new("dev1");
    assert!(!allow(&no_thing, Action::Connect, Resource::client("dev1")));
}

#[test]
fn ensure_dev_pki_makes_a_working_pki_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let reg = registry(dir.path());

    let first = ensure_dev_pki(&certs, &reg).expect("creates");
    assert!(first.created);
    let demo = first.demo_device.clone().expect("demo device");
    assert_eq!(demo.name, DEMO_DEVICE);
    assert!(first.paths.ca_cert.exists() && first.paths.server_key.exists());
    assert!(demo.cert.exists() && demo.key.exists());
    let ca_pem = std::fs::read_to_string(&first.paths.ca_cert).expect("ca.pem");

    let cert_pem = std::fs::read_to_string(&demo.cert).expect("demo cert");
    let id = sha256_hex(&der(&cert_pem));
    assert!(reg.certificate_usable(&id));
    assert!(reg.is_attached(DEMO_DEVICE, &id));
    let policies = reg.effective_policies(&id, Some(DEMO_DEVICE));
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].0, DEFAULT_POLICY_NAME);

    let line = first.try_it(DEFAULT_TLS_PORT).expect("line");
    assert!(
        line.contains("-i demo-device -t demo-device/hello"),
        "{line}"
    );
    assert!(line.contains("-p 8883"), "{line}");

    // A second start changes nothing.
    let second = ensure_dev_pki(&certs, &reg).expect("finds it");
    assert!(!second.created);
    assert_eq!(second.demo_device, first.demo_device);
    assert_eq!(
        std::fs::read_to_string(&first.paths.ca_cert).expect("ca.pem"),
        ca_pem
    );
}

#[test]
fn device_names_that_are_not_thing_names_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let reg = registry(dir.path());
    init(&certs, &reg, &[], false).expect("init");
    for bad in ["", "../evil", "a/b", "a.b", "sp ace"] {
        let err = device(&certs, &reg, bad, false).expect_err(bad);
        assert!(
            err.to_string().contains("not a valid thing name"),
            "{err:#}"
        );
    }
    assert!(!certs.join("devices").exists());
    let long = "x".repeat(129);
    assert!(device(&certs, &reg, &long, false).is_err());
}

#[test]
fn device_without_init_says_what_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry(dir.path());
    let err = device(&dir.path().join("certs"), &reg, "d", false).expect_err("no CA");
    assert!(err.to_string().contains("wardmq certs init"), "{err:#}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn validity_constants_are_as_documented() {
    assert_eq!(issue::CA_VALIDITY, Duration::from_secs(3650 * 86_400));
    assert_eq!(issue::SERVER_VALIDITY, Duration::from_secs(730 * 86_400));
    assert_eq!(issue::DEVICE_VALIDITY, Duration::from_secs(365 * 86_400));
}
