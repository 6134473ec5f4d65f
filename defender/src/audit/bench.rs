//! An audit of 100,000 certificates and 10,000 policies with every check
//! wardmq runs (issue 5's target: under 10 seconds). Ignored by default;
//! run with
//! `cargo test -p wardmq-defender --release -- --ignored --nocapture audit::bench`.
//!
//! The fixture is written straight into `registry.redb` in the registry's
//! own format (registering 100,000 certificates through the API costs an
//! fsync each), then the registry is opened as `wardmq serve` opens it.
//! 90,000 certificates are registered without a CA (as
//! CreateKeysAndCertificate registers them), 10,000 under a registered CA;
//! 5% have RSA keys (1% of those with the ROCA fingerprint), 1% expire
//! within 30 days, 2% are older than a year. 10% of the policies are broad,
//! 5% deny with MQTT wildcards. The connection log holds 100,000
//! connections, 100 certificates shared and 100 client IDs taken over.
//! Setup is not timed; the audit is, twice (the second run has the key
//! verdicts cached).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PublicKeyData, SerialNumber,
    SignatureAlgorithm,
};
use redb::{Database, TableDefinition};
use wardmq_broker::net::identity::certificate_id;
use wardmq_broker::registry::{
    CertFacts, Certificate, CertificateStatus, Policy as RegistryPolicy, PolicyVersion, Registry,
    Scope, Validity,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

const CERTS: usize = 100_000;
/// Certificates registered under the CA; `WARDMQ_BENCH_UNDER_CA` overrides
/// it (listing them pages the registry, which is quadratic per CA).
const UNDER_CA: usize = 10_000;

fn under_ca() -> usize {
    std::env::var("WARDMQ_BENCH_UNDER_CA")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(UNDER_CA)
        .min(CERTS)
}
const POLICIES: usize = 10_000;
const CONNECTIONS: usize = 100_000;

/// The registry file's one table, as `broker/src/registry/store.rs` has it.
const RECORDS: TableDefinition<(u8, &[u8]), &[u8]> = TableDefinition::new("registry");
const CERT: u8 = 2;
const CA: u8 = 3;
const POLICY: u8 = 4;

struct Rsa(Vec<u8>);

impl PublicKeyData for Rsa {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// PKCS#1 RSAPublicKey { n, e = 65537 }.
fn rsa(n: &[u8]) -> Rsa {
    fn len(n: usize, out: &mut Vec<u8>) {
        if n < 128 {
            out.push(n as u8);
        } else {
            let b: Vec<u8> = n
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | b.len() as u8);
            out.extend(b);
        }
    }
    fn uint(v: &[u8], out: &mut Vec<u8>) {
        let mut body = Vec::new();
        if v[0] & 0x80 != 0 {
            body.push(0);
        }
        body.extend_from_slice(v);
        out.push(0x02);
        len(body.len(), out);
        out.extend(body);
    }
    let mut body = Vec::new();
    uint(n, &mut body);
    uint(&[1, 0, 1], &mut body);
    let mut out = vec![0x30];
    len(body.len(), &mut out);
    out.extend(body);
    Rsa(out)
}

fn facts_of(pem: &str) -> (String, Validity, CertFacts) {
    let der = super::crl::pem_der(pem).expect("PEM");
    let (_, cert) = X509Certificate::from_der(&der).expect("X.509");
    let (alg, size) = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => ("RSA", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(k)) => ("EC", k.key_size()),
        _ => ("UNKNOWN", 0),
    };
    (
        certificate_id(&der),
        Validity {
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        },
        CertFacts {
            subject: cert.subject().to_string(),
            subject_cn: None,
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            key_algorithm: alg.into(),
            key_size: size as u32,
            signature_algorithm: cert.signature_algorithm.algorithm.to_id_string(),
            is_ca: cert.is_ca(),
            self_signed: cert.subject() == cert.issuer(),
        },
    )
}

fn now_plus(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(days)
}

fn write_registry(path: &std::path::Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bench CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.not_before = now_plus(-1);
    ca_params.not_after = now_plus(3650);
    let ca_key = KeyPair::generate().expect("key");
    let ca_pem = ca_params.self_signed(&ca_key).expect("CA").pem();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let device_key = KeyPair::generate().expect("key");
    // 65537^128 (2049 bits) has the ROCA fingerprint (see roca.rs).
    let mut roca = vec![1u8];
    for _ in 0..128 {
        let mut carry = 0u64;
        for b in roca.iter_mut().rev() {
            let v = u64::from(*b) * 65537 + carry;
            *b = (v & 0xFF) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            roca.insert(0, (carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    let mut plain_n = vec![0xC3u8; 256];
    plain_n[255] = 0x45;

    let db = Database::create(path).expect("registry file");
    let txn = db.begin_write().expect("txn");
    let under_ca = under_ca();
    println!("{under_ca} certificates under the registered CA");
    {
        let mut t = txn.open_table(RECORDS).expect("table");
        let (ca_id, ca_validity, ca_facts) = facts_of(&ca_pem);
        let ca = wardmq_broker::registry::CaCertificate {
            id: ca_id.clone(),
            pem: ca_pem.clone(),
            status: wardmq_broker::registry::CaCertificateStatus::Active,
            auto_registration_status: wardmq_broker::registry::AutoRegistrationStatus::Disable,
            owned_by: "123456789012".into(),
            creation_date: 1.0,
            last_modified_date: 1.0,
            customer_version: 1,
            generation_id: "g".into(),
            validity: ca_validity,
            facts: ca_facts,
        };
        let bytes = postcard::to_stdvec(&ca).expect("encode");
        t.insert((CA, ca_id.as_bytes()), bytes.as_slice())
            .expect("insert");
        for i in 0..CERTS {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.distinguished_name
                .push(DnType::CommonName, format!("device-{i}"));
            p.serial_number = Some(SerialNumber::from(i as u64 + 1000));
            let (before, after) = match i % 100 {
                0 => (-10, 20),       // expiring
                1 | 2 => (-400, 400), // old
                _ => (-10, 700),
            };
            p.not_before = now_plus(before);
            p.not_after = now_plus(after);
            let pem = if i % 20 == 5 {
                let n = if i % 2000 == 5 { &roca } else { &plain_n };
                p.signed_by(&rsa(n), &issuer).expect("sign").pem()
            } else {
                p.signed_by(&device_key, &issuer).expect("sign").pem()
            };
            let (id, validity, facts) = facts_of(&pem);
            let cert = Certificate {
                id: id.clone(),
                pem,
                status: CertificateStatus::Active,
                ca_certificate_id: (i < under_ca).then(|| ca_id.clone()),
                owned_by: "123456789012".into(),
                creation_date: 1.0,
                last_modified_date: 1.0,
                customer_version: 1,
                generation_id: "g".into(),
                validity,
                facts,
            };
            let bytes = postcard::to_stdvec(&cert).expect("encode");
            t.insert((CERT, id.as_bytes()), bytes.as_slice())
                .expect("insert");
        }
        let arn = "arn:aws:iot:us-east-1:123456789012";
        for i in 0..POLICIES {
            let statement = match i % 20 {
                0 | 1 => format!(
                    r#"{{"Effect":"Allow","Action":["iot:Connect","iot:Publish"],"Resource":"{arn}:*"}}"#
                ),
                2 => format!(
                    r#"{{"Effect":"Deny","Action":"iot:Subscribe","Resource":"{arn}:topicfilter/fleet/{i}/#"}}"#
                ),
                _ => format!(
                    r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{arn}:client/${{iot:Connection.Thing.ThingName}}",
                        "Condition":{{"Bool":{{"iot:Connection.Thing.IsAttached":"true"}}}}}},
                       {{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],
                        "Resource":"{arn}:topic/fleet/${{iot:Connection.Thing.ThingName}}/*"}},
                       {{"Effect":"Allow","Action":"iot:Subscribe",
                        "Resource":"{arn}:topicfilter/fleet/${{iot:Connection.Thing.ThingName}}/*"}}"#
                ),
            };
            let name = format!("policy-{i:05}");
            let policy = RegistryPolicy {
                name: name.clone(),
                default_version_id: 1,
                versions: BTreeMap::from([(
                    1,
                    PolicyVersion {
                        document: format!(
                            r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#
                        ),
                        create_date: 1.0,
                    },
                )]),
                next_version_id: 2,
                creation_date: 1.0,
                last_modified_date: 1.0,
                generation_id: "g".into(),
            };
            let bytes = postcard::to_stdvec(&policy).expect("encode");
            t.insert((POLICY, name.as_bytes()), bytes.as_slice())
                .expect("insert");
        }
    }
    txn.commit().expect("commit");
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "bench: run with --release -- --ignored --nocapture audit::bench"]
fn audit_of_100k_certificates_and_10k_policies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.redb");
    let t0 = Instant::now();
    write_registry(&path);
    println!("fixture written in {:?}", t0.elapsed());
    let t0 = Instant::now();
    let registry =
        Registry::open(&path, Scope::new("us-east-1", "123456789012")).expect("registry opens");
    println!("registry opened in {:?}", t0.elapsed());
    let db = DefenderDb::open(dir.path()).expect("db");
    let audit = Audit::open(
        &db,
        registry,
        AuditSettings {
            connection_log_capacity: CONNECTIONS * 2,
            ..AuditSettings::default()
        },
        None,
    )
    .expect("audit");
    let log = audit.connection_log();
    let now = crate::engine::now().as_millis();
    for i in 0..CONNECTIONS {
        let peer = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 40000));
        let cert = format!("{:064x}", i % (CONNECTIONS - 100));
        let at = Timestamp::from_millis(now - 3_600_000 + i as u64);
        log.connected_at(&format!("client-{i}"), Some(&cert), peer, at);
        if i % 1000 == 0 {
            log.taken_over_at(&format!("client-{i}"), peer, peer, at);
        }
    }
    let checks: Vec<String> = CheckName::ALL
        .iter()
        .filter(|c| c.unsupported_reason().is_none())
        .map(|c| c.as_str().to_owned())
        .collect();
    audit
        .update_configuration(ConfigurationUpdate {
            audit_check_configurations: Some(
                checks
                    .iter()
                    .map(|c| {
                        (
                            c.clone(),
                            AuditCheckConfiguration {
                                enabled: true,
                                configuration: BTreeMap::new(),
                            },
                        )
                    })
                    .collect(),
            ),
            ..ConfigurationUpdate::default()
        })
        .expect("enables");
    let rss_before = rss_kib();
    for run in ["first run", "second run (key verdicts cached)"] {
        let t0 = Instant::now();
        let id = audit.start_on_demand_audit_task(&checks).expect("starts");
        let task = audit
            .wait_for_task(&id, Duration::from_secs(600))
            .expect("task");
        let elapsed = t0.elapsed();
        assert_eq!(task.task_status, AuditTaskStatus::Completed, "{task:?}");
        println!("{run}: {} checks in {elapsed:?}", task.audit_details.len());
        for (check, d) in &task.audit_details {
            println!(
                "  {check:<62} {:?} total {:>6} non-compliant {:>5}",
                d.check_run_status,
                d.total_resources_count.unwrap_or(0),
                d.non_compliant_resources_count.unwrap_or(0)
            );
        }
        assert_eq!(
            task.audit_details[&CheckName::DeviceCertificateKeyQuality].total_resources_count,
            Some(CERTS as u64)
        );
        assert_eq!(
            task.audit_details[&CheckName::IotPolicyOverlyPermissive].total_resources_count,
            Some(POLICIES as u64)
        );
    }
    println!(
        "RSS {} MiB before the audits, {} MiB after",
        rss_before / 1024,
        rss_kib() / 1024
    );
    audit.shutdown();
}
