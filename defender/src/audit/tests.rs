//! The audit end to end inside the crate: a registry and defender.redb in
//! a temp dir, certificates made with rcgen, the worker thread running
//! real tasks. Spec §13 cases 27–34 and 40 at this level; `tests/audit.rs`
//! repeats them over the AWS API against a live broker.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, RevokedCertParams, SerialNumber,
    SignatureAlgorithm,
};
use serde_json::{json, Value};
use wardmq_broker::registry::{CertificateStatus, LoggingOptions, Registry, Scope};

use super::*;

/// What the notifier was handed: (target ARN, body).
type Sent = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

const WAIT: Duration = Duration::from_secs(20);

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    registry: Registry,
    db: DefenderDb,
    audit: Audit,
    sent: Sent,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.audit.shutdown();
    }
}

fn fixture_with(crls: Vec<(String, PathBuf)>) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = Registry::open(
        dir.path().join("registry.redb"),
        Scope::new("us-east-1", "123456789012"),
    )
    .expect("registry");
    let db = DefenderDb::open(dir.path()).expect("db");
    let sent = Arc::new(Mutex::new(Vec::new()));
    let audit = open_audit(&db, &registry, crls, sent.clone());
    Fixture {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        registry,
        db,
        audit,
        sent,
    }
}

fn open_audit(
    db: &DefenderDb,
    registry: &Registry,
    crls: Vec<(String, PathBuf)>,
    sent: Sent,
) -> Audit {
    let notify: Notify = Arc::new(move |arn: &str, body: Vec<u8>| {
        sent.lock().expect("lock").push((arn.to_owned(), body));
    });
    Audit::open(
        db,
        registry.clone(),
        AuditSettings {
            crls,
            alert_sinks: Some(vec!["audits".into()]),
            connection_log_capacity: 1000,
            scheduler_tick: Duration::from_millis(20),
        },
        Some(notify),
    )
    .expect("audit opens")
}

fn fixture() -> Fixture {
    fixture_with(Vec::new())
}

fn enable(audit: &Audit, checks: &[&str]) {
    let mut map = BTreeMap::new();
    for c in checks {
        map.insert(
            (*c).to_owned(),
            AuditCheckConfiguration {
                enabled: true,
                configuration: BTreeMap::new(),
            },
        );
    }
    audit
        .update_configuration(ConfigurationUpdate {
            audit_check_configurations: Some(map),
            ..ConfigurationUpdate::default()
        })
        .expect("enables");
}

fn names(checks: &[&str]) -> Vec<String> {
    checks.iter().map(|c| (*c).to_owned()).collect()
}

/// Runs an on-demand audit of `checks` and returns the finished task and
/// its findings.
fn run(audit: &Audit, checks: &[&str]) -> (AuditTask, Vec<AuditFinding>) {
    let id = audit
        .start_on_demand_audit_task(&names(checks))
        .expect("starts");
    let task = audit.wait_for_task(&id, WAIT).expect("task exists");
    assert_ne!(task.task_status, AuditTaskStatus::InProgress, "finished");
    let findings = audit
        .list_audit_findings(&FindingsQuery {
            task_id: Some(id),
            max_results: Some(250),
            ..FindingsQuery::default()
        })
        .expect("lists")
        .items;
    (task, findings)
}

fn invalid(r: Result<impl std::fmt::Debug, AuditError>) -> String {
    match r {
        Err(e) if e.http_status() == 400 => e.to_string(),
        other => panic!("expected a 400, got {other:?}"),
    }
}

// ---- certificates ----

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn days(d: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(d)
}

fn ca(cn: &str, issuer: Option<&Ca>, serial: u64) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = days(-10);
    params.not_after = days(3650);
    params.key_identifier_method = KeyIdMethod::Sha256;
    let key = KeyPair::generate().expect("key");
    let pem = match issuer {
        Some(i) => params
            .signed_by(&key, &rcgen::Issuer::from_params(&i.params, &i.key))
            .expect("signs")
            .pem(),
        None => params.self_signed(&key).expect("self-signs").pem(),
    };
    Ca { params, key, pem }
}

fn leaf_params(cn: &str, serial: u64, not_before: i64, not_after: i64) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = days(not_before);
    params.not_after = days(not_after);
    params
}

fn leaf(cn: &str, issuer: &Ca, serial: u64, not_before: i64, not_after: i64) -> String {
    let key = KeyPair::generate().expect("key");
    leaf_params(cn, serial, not_before, not_after)
        .signed_by(
            &key,
            &rcgen::Issuer::from_params(&issuer.params, &issuer.key),
        )
        .expect("signs")
        .pem()
}

/// An RSA public key with a chosen modulus (no private key needed: the
/// issuer signs).
struct RsaKey(Vec<u8>);

impl PublicKeyData for RsaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 128 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der_uint(v: &[u8], out: &mut Vec<u8>) {
    let mut body = Vec::new();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(v);
    out.push(0x02);
    der_len(body.len(), out);
    out.extend(body);
}

/// PKCS#1 RSAPublicKey { n, e = 65537 }.
fn rsa_public_key(n: &[u8]) -> RsaKey {
    let mut body = Vec::new();
    der_uint(n, &mut body);
    der_uint(&[1, 0, 1], &mut body);
    let mut out = vec![0x30];
    der_len(body.len(), &mut out);
    out.extend(body);
    RsaKey(out)
}

fn rsa_leaf(cn: &str, issuer: &Ca, serial: u64, modulus: &[u8]) -> String {
    leaf_params(cn, serial, -1, 365)
        .signed_by(
            &rsa_public_key(modulus),
            &rcgen::Issuer::from_params(&issuer.params, &issuer.key),
        )
        .expect("signs")
        .pem()
}

fn big_mul(n: &mut Vec<u8>, f: u64) {
    let mut carry = 0u64;
    for b in n.iter_mut().rev() {
        let v = u64::from(*b) * f + carry;
        *b = (v & 0xFF) as u8;
        carry = v >> 8;
    }
    while carry > 0 {
        n.insert(0, (carry & 0xFF) as u8);
        carry >>= 8;
    }
}

fn register(f: &Fixture, pem: &str) -> String {
    f.registry
        .register_certificate_without_ca(pem, Some(CertificateStatus::Active))
        .expect("registers")
        .id
}

fn resource_ids(findings: &[AuditFinding], check: CheckName) -> Vec<String> {
    let mut v: Vec<String> = findings
        .iter()
        .filter(|f| f.check_name == check)
        .map(|f| {
            let r = &f.non_compliant_resource.resource_identifier;
            r.device_certificate_id
                .clone()
                .or_else(|| r.ca_certificate_id.clone())
                .or_else(|| r.client_id.clone())
                .unwrap_or_default()
        })
        .collect();
    v.sort();
    v
}

// ---- case 27 ----

#[test]
fn configuration_gates() {
    let f = fixture();
    let a = &f.audit;
    // Describe lists every check, all disabled, before any configuration.
    let d = a.describe_configuration();
    assert_eq!(d.audit_check_configurations.len(), 17);
    assert!(d.audit_check_configurations.values().all(|c| !c.enabled));
    // First call with nothing enabled.
    let m = invalid(a.update_configuration(ConfigurationUpdate {
        audit_check_configurations: Some(BTreeMap::from([(
            "LOGGING_DISABLED_CHECK".to_owned(),
            AuditCheckConfiguration::default(),
        )])),
        ..ConfigurationUpdate::default()
    }));
    assert!(m.contains("at least one check"), "{m}");
    let m = invalid(a.update_configuration(ConfigurationUpdate::default()));
    assert!(m.contains("at least one check"), "{m}");
    // Cognito and role-alias checks cannot be enabled.
    let m = invalid(a.update_configuration(ConfigurationUpdate {
        audit_check_configurations: Some(BTreeMap::from([(
            "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK".to_owned(),
            AuditCheckConfiguration {
                enabled: true,
                ..AuditCheckConfiguration::default()
            },
        )])),
        ..ConfigurationUpdate::default()
    }));
    assert!(m.contains("Cognito") && m.contains("self-hosted"), "{m}");
    let m = invalid(a.update_configuration(ConfigurationUpdate {
        audit_check_configurations: Some(BTreeMap::from([(
            "NOT_A_CHECK".to_owned(),
            AuditCheckConfiguration::default(),
        )])),
        ..ConfigurationUpdate::default()
    }));
    assert!(m.contains("NOT_A_CHECK"), "{m}");
    // Legacy names are aliases.
    enable(a, &["LOGGING_DISABLED_CHECK", "REVOKED_CA_CERT_CHECK"]);
    assert!(a
        .enabled()
        .contains(&CheckName::RevokedCaCertificateStillActive));
    // A disabled check cannot be audited.
    let m = invalid(a.start_on_demand_audit_task(&names(&["DEVICE_CERTIFICATE_SHARED_CHECK"])));
    assert!(m.contains("not enabled"), "{m}");
    assert!(a.start_on_demand_audit_task(&[]).is_err());
    // A check a scheduled audit uses cannot be disabled.
    a.create_scheduled_audit(
        "daily",
        ScheduledAuditInput {
            frequency: Some(AuditFrequency::Daily),
            target_check_names: Some(names(&["LOGGING_DISABLED_CHECK"])),
            ..ScheduledAuditInput::default()
        },
    )
    .expect("creates");
    let m = invalid(a.update_configuration(ConfigurationUpdate {
        audit_check_configurations: Some(BTreeMap::from([(
            "LOGGING_DISABLED_CHECK".to_owned(),
            AuditCheckConfiguration::default(),
        )])),
        ..ConfigurationUpdate::default()
    }));
    assert!(m.contains("daily"), "{m}");
    // Delete needs deleteScheduledAudits while scheduled audits exist.
    invalid(a.delete_configuration(false));
    a.delete_configuration(true).expect("deletes");
    assert!(a
        .describe_configuration()
        .audit_check_configurations
        .values()
        .all(|c| !c.enabled));
    assert!(matches!(
        a.describe_scheduled_audit("daily"),
        Err(AuditError::NotFound(_))
    ));
    assert!(matches!(
        a.delete_configuration(true),
        Err(AuditError::NotFound(_))
    ));
    // After a delete, the next update is a first one again.
    invalid(a.update_configuration(ConfigurationUpdate::default()));
}

#[test]
fn check_configuration_values_and_targets() {
    let f = fixture();
    let a = &f.audit;
    let with = |check: &str, key: ConfigName, v: &str| ConfigurationUpdate {
        audit_check_configurations: Some(BTreeMap::from([(
            check.to_owned(),
            AuditCheckConfiguration {
                enabled: true,
                configuration: BTreeMap::from([(key, v.to_owned())]),
            },
        )])),
        ..ConfigurationUpdate::default()
    };
    let age = "DEVICE_CERTIFICATE_AGE_CHECK";
    invalid(a.update_configuration(with(age, ConfigName::CertAgeThresholdInDays, "29")));
    invalid(a.update_configuration(with(age, ConfigName::CertAgeThresholdInDays, "3653")));
    invalid(a.update_configuration(with(age, ConfigName::CertExpirationThresholdInDays, "60")));
    a.update_configuration(with(age, ConfigName::CertAgeThresholdInDays, "30"))
        .expect("in range");
    // Notification targets name an alert sink by SNS ARN.
    let target = |arn: &str| ConfigurationUpdate {
        audit_notification_target_configurations: Some(BTreeMap::from([(
            AuditNotificationType::Sns,
            AuditNotificationTarget {
                target_arn: Some(arn.to_owned()),
                role_arn: None,
                enabled: true,
            },
        )])),
        ..ConfigurationUpdate::default()
    };
    invalid(a.update_configuration(target("https://example.com")));
    let m = invalid(a.update_configuration(target("arn:aws:sns:us-east-1:123456789012:other")));
    assert!(m.contains("audits"), "{m}");
    a.update_configuration(target("arn:aws:sns:us-east-1:123456789012:audits"))
        .expect("a known sink");
    let d = a.describe_configuration();
    assert_eq!(
        d.audit_check_configurations[&CheckName::DeviceCertificateAge].configuration
            [&ConfigName::CertAgeThresholdInDays],
        "30"
    );
    assert!(d.audit_notification_target_configurations[&AuditNotificationType::Sns].enabled);
}

// ---- case 28 ----

#[test]
fn scheduled_audit_validation_and_runs() {
    let f = fixture();
    let a = &f.audit;
    enable(a, &["LOGGING_DISABLED_CHECK"]);
    let input =
        |freq: AuditFrequency, dom: Option<&str>, dow: Option<DayOfWeek>| ScheduledAuditInput {
            frequency: Some(freq),
            day_of_month: dom.map(str::to_owned),
            day_of_week: dow,
            target_check_names: Some(names(&["LOGGING_DISABLED_CHECK"])),
            tags: None,
        };
    let m = invalid(a.create_scheduled_audit("m", input(AuditFrequency::Monthly, None, None)));
    assert!(m.contains("dayOfMonth"), "{m}");
    let m = invalid(a.create_scheduled_audit("w", input(AuditFrequency::Weekly, None, None)));
    assert!(m.contains("dayOfWeek"), "{m}");
    invalid(a.create_scheduled_audit("b", input(AuditFrequency::Biweekly, None, None)));
    invalid(a.create_scheduled_audit("m", input(AuditFrequency::Monthly, Some("32"), None)));
    invalid(a.create_scheduled_audit("m", input(AuditFrequency::Monthly, Some("0"), None)));
    invalid(a.create_scheduled_audit("bad name", input(AuditFrequency::Daily, None, None)));
    invalid(a.create_scheduled_audit(
        "d",
        input(AuditFrequency::Daily, None, Some(DayOfWeek::Mon)),
    ));
    let arn = a
        .create_scheduled_audit("m31", input(AuditFrequency::Monthly, Some("31"), None))
        .expect("31 is valid");
    assert_eq!(arn, "arn:aws:iot:us-east-1:123456789012:scheduledaudit/m31");
    assert!(matches!(
        a.create_scheduled_audit("m31", input(AuditFrequency::Monthly, Some("LAST"), None)),
        Err(AuditError::AlreadyExists { .. })
    ));
    a.create_scheduled_audit(
        "wk",
        input(AuditFrequency::Weekly, None, Some(DayOfWeek::Sun)),
    )
    .expect("weekly");
    // Update: MONTHLY → WEEKLY needs a day of the week; then it drops the day of the month.
    invalid(a.update_scheduled_audit(
        "m31",
        ScheduledAuditInput {
            frequency: Some(AuditFrequency::Weekly),
            ..ScheduledAuditInput::default()
        },
    ));
    a.update_scheduled_audit(
        "m31",
        ScheduledAuditInput {
            frequency: Some(AuditFrequency::Weekly),
            day_of_week: Some(DayOfWeek::Fri),
            ..ScheduledAuditInput::default()
        },
    )
    .expect("updates");
    let d = a.describe_scheduled_audit("m31").expect("exists");
    assert_eq!(d.frequency, AuditFrequency::Weekly);
    assert_eq!(d.day_of_month, None);
    assert!(matches!(
        a.update_scheduled_audit("nope", ScheduledAuditInput::default()),
        Err(AuditError::NotFound(_))
    ));
    let page = a.list_scheduled_audits(Some(1), None).expect("lists");
    assert_eq!(page.items.len(), 1);
    let rest = a
        .list_scheduled_audits(Some(1), page.next_token.as_deref())
        .expect("next page");
    assert_eq!(rest.items[0].scheduled_audit_name, "wk");
    assert!(rest.next_token.is_none());
    a.delete_scheduled_audit("wk").expect("deletes");
    assert!(matches!(
        a.delete_scheduled_audit("wk"),
        Err(AuditError::NotFound(_))
    ));

    // A DAILY audit runs on the day it is created, once. (The weekly and
    // monthly ones above may run too, when today is their day.)
    a.create_scheduled_audit("every-day", input(AuditFrequency::Daily, None, None))
        .expect("daily");
    let daily_runs = || {
        a.list_audit_tasks(
            &TaskFilter {
                start_time: Timestamp::from_millis(crate::engine::now().as_millis() - 60_000),
                end_time: Timestamp::from_millis(crate::engine::now().as_millis() + 60_000),
                task_type: Some(AuditTaskType::ScheduledAuditTask),
                task_status: None,
            },
            None,
            None,
        )
        .expect("lists")
        .items
        .into_iter()
        .filter(|t| t.scheduled_audit_name.as_deref() == Some("every-day"))
        .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + WAIT;
    let task = loop {
        if let Some(t) = daily_runs().first() {
            break t.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled audit never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let done = a.wait_for_task(&task.task_id, WAIT).expect("task");
    assert_eq!(done.task_status, AuditTaskStatus::Completed);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(daily_runs().len(), 1, "once a day");
}

// ---- cases 29, 30 ----

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn shared_certificate_and_conflicting_client_ids() {
    let f = fixture();
    let a = &f.audit;
    enable(
        a,
        &[
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            "CONFLICTING_CLIENT_IDS_CHECK",
        ],
    );
    let cert = "ab".repeat(32);
    let other = "cd".repeat(32);
    let log = a.connection_log();
    let now = crate::engine::now();
    let t = |s: u64| Timestamp::from_millis(now.as_millis() - 100_000 + s * 1000);
    // Two simultaneous sessions, a and b, with one certificate.
    log.connected_at("a", Some(&cert), addr(1), t(0));
    log.connected_at("b", Some(&cert), addr(2), t(1));
    // Sequential sessions of another certificate: fine.
    log.connected_at("c", Some(&other), addr(3), t(2));
    log.disconnected_at("c", addr(3), t(3));
    log.connected_at("d", Some(&other), addr(4), t(4));
    log.disconnected_at("d", addr(4), t(5));
    // A takeover of client ID x.
    log.connected_at("x", Some(&other), addr(5), t(6));
    log.taken_over_at("x", addr(5), addr(6), t(7));
    log.disconnected_at("x", addr(5), t(7));
    log.connected_at("x", Some(&other), addr(6), t(7));
    let (task, findings) = run(
        a,
        &[
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            "CONFLICTING_CLIENT_IDS_CHECK",
        ],
    );
    assert_eq!(task.task_status, AuditTaskStatus::Completed);
    assert_eq!(
        resource_ids(&findings, CheckName::DeviceCertificateShared),
        vec![cert.clone()]
    );
    let shared = findings
        .iter()
        .find(|f| f.check_name == CheckName::DeviceCertificateShared)
        .expect("finding");
    assert_eq!(shared.severity, Severity::Critical);
    assert_eq!(
        shared.non_compliant_resource.resource_type,
        ResourceType::DeviceCertificate
    );
    assert_eq!(
        shared.reason_for_non_compliance_code,
        "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES"
    );
    let d = &task.audit_details[&CheckName::DeviceCertificateShared];
    assert_eq!(
        d.check_run_status,
        AuditCheckRunStatus::CompletedNonCompliant
    );
    assert_eq!(d.non_compliant_resources_count, Some(1));
    assert_eq!(d.total_resources_count, Some(2));
    let conflict = findings
        .iter()
        .find(|f| f.check_name == CheckName::ConflictingClientIds)
        .expect("finding");
    assert_eq!(conflict.severity, Severity::High);
    assert_eq!(
        conflict
            .non_compliant_resource
            .resource_identifier
            .client_id
            .as_deref(),
        Some("x")
    );
    assert_eq!(
        conflict.reason_for_non_compliance_code,
        "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS"
    );
    let stats = task.statistics();
    assert_eq!((stats.total_checks, stats.non_compliant_checks), (2, 2));
}

// ---- case 31 ----

#[test]
fn expiring_and_aging_certificates() {
    let f = fixture();
    let a = &f.audit;
    let root = ca("root", None, 1);
    let soon = register(&f, &leaf("soon", &root, 10, -1, 29));
    let past = register(&f, &leaf("past", &root, 11, -40, -1));
    let _fine = register(&f, &leaf("fine", &root, 12, -1, 40));
    let inactive = f
        .registry
        .register_certificate_without_ca(
            &leaf("off", &root, 13, -40, -1),
            Some(CertificateStatus::Inactive),
        )
        .expect("registers")
        .id;
    let old = register(&f, &leaf("old", &root, 14, -365, 400));
    let _young = register(&f, &leaf("young", &root, 15, -364, 400));
    enable(
        a,
        &[
            "DEVICE_CERTIFICATE_EXPIRING_CHECK",
            "DEVICE_CERTIFICATE_AGE_CHECK",
        ],
    );
    let (task, findings) = run(
        a,
        &[
            "DEVICE_CERTIFICATE_EXPIRING_CHECK",
            "DEVICE_CERTIFICATE_AGE_CHECK",
        ],
    );
    let mut expiring = vec![soon.clone(), past.clone()];
    expiring.sort();
    assert_eq!(
        resource_ids(&findings, CheckName::DeviceCertificateExpiring),
        expiring
    );
    assert!(!resource_ids(&findings, CheckName::DeviceCertificateExpiring).contains(&inactive));
    let code = |id: &str| {
        findings
            .iter()
            .find(|f| {
                f.non_compliant_resource
                    .resource_identifier
                    .device_certificate_id
                    .as_deref()
                    == Some(id)
            })
            .map(|f| (f.reason_for_non_compliance_code.clone(), f.severity))
    };
    assert_eq!(
        code(&soon),
        Some((
            "CERTIFICATE_APPROACHING_EXPIRATION".into(),
            Severity::Medium
        ))
    );
    assert_eq!(
        code(&past),
        Some(("CERTIFICATE_PAST_EXPIRATION".into(), Severity::Medium))
    );
    assert_eq!(
        resource_ids(&findings, CheckName::DeviceCertificateAge),
        vec![old.clone()]
    );
    let age = findings
        .iter()
        .find(|f| f.check_name == CheckName::DeviceCertificateAge)
        .expect("age finding");
    assert_eq!(age.severity, Severity::Low);
    assert_eq!(
        age.reason_for_non_compliance_code,
        "CERTIFICATE_PAST_AGE_THRESHOLD"
    );
    assert_eq!(
        task.audit_details[&CheckName::DeviceCertificateExpiring].total_resources_count,
        Some(5),
        "the INACTIVE certificate is not evaluated"
    );
}

#[test]
fn key_quality_of_devices_and_cas() {
    let f = fixture();
    let a = &f.audit;
    let root = ca("root", None, 1);
    // ROCA: 65537^128 has the fingerprint (see roca.rs), 2049+ bits.
    let mut roca_n = vec![1u8];
    for _ in 0..128 {
        big_mul(&mut roca_n, 65537);
    }
    let roca = register(&f, &rsa_leaf("roca", &root, 20, &roca_n));
    // A 1024-bit modulus of no particular form: too short.
    let mut short_n = vec![0xC3u8; 128];
    short_n[127] = 0x45;
    let short = register(&f, &rsa_leaf("short", &root, 21, &short_n));
    // A 2048-bit ordinary modulus: fine (0xC3… is odd, ≡ 0 mod 3 breaks the fingerprint).
    let mut ok_n = vec![0xC3u8; 256];
    ok_n[255] = 0x45;
    let _ok = register(&f, &rsa_leaf("rsa-ok", &root, 22, &ok_n));
    let _ec = register(&f, &leaf("ec", &root, 23, -1, 365));
    f.registry
        .register_ca_certificate(&root.pem, true, false)
        .expect("CA registers");
    enable(
        a,
        &[
            "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK",
            "CA_CERTIFICATE_KEY_QUALITY_CHECK",
        ],
    );
    let (task, findings) = run(
        a,
        &[
            "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK",
            "CA_CERTIFICATE_KEY_QUALITY_CHECK",
        ],
    );
    let mut bad = vec![roca.clone(), short.clone()];
    bad.sort();
    assert_eq!(
        resource_ids(&findings, CheckName::DeviceCertificateKeyQuality),
        bad
    );
    for finding in &findings {
        let id = finding
            .non_compliant_resource
            .resource_identifier
            .device_certificate_id
            .as_deref();
        let expected = if id == Some(roca.as_str()) {
            "CERTIFICATE_KEY_VULNERABILITY_CVE-2017-15361"
        } else {
            "CERTIFICATE_KEY_TOO_SHORT"
        };
        assert_eq!(finding.reason_for_non_compliance_code, expected);
        assert_eq!(finding.severity, Severity::Critical);
    }
    assert_eq!(
        task.audit_details[&CheckName::CaCertificateKeyQuality].check_run_status,
        AuditCheckRunStatus::CompletedCompliant
    );
}

#[test]
fn crl_revocations_of_devices_cas_and_intermediates() {
    let tmp = tempfile::tempdir().expect("dir");
    let root = ca("root", None, 1);
    let inter = ca("intermediate", Some(&root), 2);
    let direct = leaf("direct", &root, 3, -1, 365);
    let under_inter = leaf("under-inter", &inter, 4, -1, 365);
    let crl = CertificateRevocationListParams {
        this_update: days(-1),
        next_update: days(30),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: [2u64, 3]
            .into_iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(s),
                revocation_time: days(-1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&rcgen::Issuer::from_params(&root.params, &root.key))
    .expect("CRL");
    let crl_path = tmp.path().join("root.crl");
    std::fs::write(&crl_path, crl.pem().expect("pem")).expect("write");
    let root_id =
        wardmq_broker::net::identity::certificate_id(&crl::pem_der(&root.pem).expect("der"));
    let bad_path = tmp.path().join("missing.crl");
    let f = fixture_with(vec![
        (root_id.clone(), crl_path),
        ("ee".repeat(32), bad_path),
    ]);
    let a = &f.audit;
    f.registry
        .register_ca_certificate(&root.pem, true, false)
        .expect("root");
    let inter_id = f
        .registry
        .register_ca_certificate(&inter.pem, true, false)
        .expect("intermediate")
        .id;
    let direct_id = f
        .registry
        .register_certificate(&direct, Some(&root.pem), Some(CertificateStatus::Active))
        .expect("direct")
        .id;
    let under_id = f
        .registry
        .register_certificate(
            &under_inter,
            Some(&inter.pem),
            Some(CertificateStatus::Active),
        )
        .expect("under intermediate")
        .id;
    let checks = [
        "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
        "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
        "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
    ];
    enable(a, &checks);
    let (task, findings) = run(a, &checks);
    assert_eq!(
        resource_ids(&findings, CheckName::RevokedDeviceCertificateStillActive),
        vec![direct_id.clone()]
    );
    assert_eq!(
        resource_ids(&findings, CheckName::RevokedCaCertificateStillActive),
        vec![inter_id.clone()]
    );
    assert_eq!(
        resource_ids(
            &findings,
            CheckName::IntermediateCaRevokedForActiveDeviceCertificates
        ),
        vec![under_id.clone()]
    );
    let inter_finding = findings
        .iter()
        .find(|f| f.check_name == CheckName::IntermediateCaRevokedForActiveDeviceCertificates)
        .expect("finding");
    assert_eq!(
        inter_finding.reason_for_non_compliance_code,
        "INTERMEDIATE_CA_REVOKED_BY_ISSUER"
    );
    assert!(
        inter_finding.related_resources.is_empty(),
        "paged separately"
    );
    let related = a
        .list_related_resources(&inter_finding.finding_id, None, None)
        .expect("related")
        .items;
    assert_eq!(related.len(), 1);
    assert_eq!(related[0].resource_type, ResourceType::IssuerCertificate);
    assert_eq!(
        related[0]
            .resource_identifier
            .issuer_certificate_identifier
            .as_ref()
            .and_then(|i| i.issuer_id.as_deref()),
        Some(inter_id.as_str())
    );
    // The unusable CRL is named in the message; the checks still ran.
    let d = &task.audit_details[&CheckName::RevokedDeviceCertificateStillActive];
    assert!(
        d.message
            .as_deref()
            .is_some_and(|m| m.contains("missing.crl")),
        "{d:?}"
    );
    assert_eq!(
        d.check_run_status,
        AuditCheckRunStatus::CompletedNonCompliant
    );
}

// ---- case 32 ----

#[test]
fn policy_checks() {
    let f = fixture();
    let a = &f.audit;
    let arn = "arn:aws:iot:us-east-1:123456789012";
    let doc = |s: Value| json!({"Version": "2012-10-17", "Statement": s}).to_string();
    f.registry
        .create_policy(
            "broad",
            &doc(json!([{"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{arn}:client/*")}])),
        )
        .expect("policy");
    f.registry
        .create_policy(
            "scoped",
            &doc(json!([
                {"Effect": "Allow", "Action": "iot:Connect",
                 "Resource": format!("{arn}:client/${{iot:Connection.Thing.ThingName}}"),
                 "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
                {"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{arn}:topic/$aws/things/*")}
            ])),
        )
        .expect("policy");
    f.registry
        .create_policy(
            "deny-wildcard",
            &doc(json!([
                {"Effect": "Allow", "Action": "iot:Subscribe",
                 "Resource": format!("{arn}:topicfilter/building/${{iot:Connection.Thing.ThingName}}/*")},
                {"Effect": "Deny", "Action": "iot:Subscribe",
                 "Resource": format!("{arn}:topicfilter/building/control_room/#")}
            ])),
        )
        .expect("policy");
    enable(
        a,
        &[
            "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
            "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
        ],
    );
    let (task, findings) = run(
        a,
        &[
            "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
            "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK",
        ],
    );
    let by = |check: CheckName| -> Vec<(String, String, String, Severity)> {
        findings
            .iter()
            .filter(|f| f.check_name == check)
            .map(|f| {
                let p = f
                    .non_compliant_resource
                    .resource_identifier
                    .policy_version_identifier
                    .clone()
                    .unwrap_or_default();
                (
                    p.policy_name.unwrap_or_default(),
                    p.policy_version_id.unwrap_or_default(),
                    f.reason_for_non_compliance_code.clone(),
                    f.severity,
                )
            })
            .collect()
    };
    assert_eq!(
        by(CheckName::IotPolicyOverlyPermissive),
        vec![(
            "broad".into(),
            "1".into(),
            "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS".into(),
            Severity::Critical
        )]
    );
    assert_eq!(
        by(CheckName::IotPolicyPotentialMisConfiguration),
        vec![(
            "deny-wildcard".into(),
            "1".into(),
            "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT".into(),
            Severity::Medium
        )]
    );
    assert_eq!(
        task.audit_details[&CheckName::IotPolicyOverlyPermissive].total_resources_count,
        Some(3)
    );
}

#[test]
fn logging_disabled() {
    let f = fixture();
    let a = &f.audit;
    enable(a, &["LOGGING_DISABLED_CHECK"]);
    let (task, findings) = run(a, &["LOGGING_DISABLED_CHECK"]);
    assert!(findings.is_empty(), "ERROR level logging by default");
    assert_eq!(
        task.audit_details[&CheckName::LoggingDisabled].check_compliant,
        Some(true)
    );
    f.registry
        .set_logging_options(LoggingOptions {
            disable_all_logs: true,
            ..LoggingOptions::default()
        })
        .expect("sets");
    let (_, findings) = run(a, &["LOGGING_DISABLED_CHECK"]);
    assert_eq!(findings.len(), 1);
    assert_eq!(
        findings[0]
            .non_compliant_resource
            .resource_identifier
            .account
            .as_deref(),
        Some("123456789012")
    );
    assert_eq!(
        findings[0].non_compliant_resource.resource_type,
        ResourceType::AccountSettings
    );
}

// ---- case 33 ----

#[test]
fn suppressions() {
    let f = fixture();
    let a = &f.audit;
    enable(a, &["DEVICE_CERTIFICATE_SHARED_CHECK"]);
    let cert = "0f".repeat(32);
    let log = a.connection_log();
    let now = crate::engine::now();
    log.connected_at(
        "a",
        Some(&cert),
        addr(1),
        Timestamp::from_millis(now.as_millis() - 5000),
    );
    log.connected_at(
        "b",
        Some(&cert),
        addr(2),
        Timestamp::from_millis(now.as_millis() - 4000),
    );
    let input = |token: &str| SuppressionInput {
        check_name: "DEVICE_CERTIFICATE_SHARED_CHECK".into(),
        resource_identifier: ResourceIdentifier::device_certificate(&cert.to_uppercase()),
        suppress_indefinitely: Some(true),
        description: Some("lab bench".into()),
        client_request_token: Some(token.into()),
        ..SuppressionInput::default()
    };
    // Validation.
    invalid(a.create_suppression(SuppressionInput {
        client_request_token: None,
        ..input("t")
    }));
    invalid(a.create_suppression(SuppressionInput {
        suppress_indefinitely: None,
        ..input("t")
    }));
    invalid(a.create_suppression(SuppressionInput {
        expiration_date: Some(Timestamp::from_secs(1)),
        suppress_indefinitely: None,
        ..input("t")
    }));
    invalid(a.create_suppression(SuppressionInput {
        resource_identifier: ResourceIdentifier {
            client_id: Some("a".into()),
            device_certificate_id: Some(cert.clone()),
            ..ResourceIdentifier::default()
        },
        ..input("t")
    }));
    invalid(a.create_suppression(SuppressionInput {
        description: Some("bell\u{7}".into()),
        ..input("t")
    }));
    a.create_suppression(input("t1")).expect("creates");
    assert!(matches!(
        a.create_suppression(input("t2")),
        Err(AuditError::AlreadyExists { .. })
    ));
    let described = a
        .describe_suppression(
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            &ResourceIdentifier::device_certificate(&cert),
        )
        .expect("describes");
    assert_eq!(described.suppress_indefinitely, Some(true));
    assert_eq!(
        described
            .resource_identifier
            .device_certificate_id
            .as_deref(),
        Some(cert.as_str())
    );

    let (task, findings) = run(a, &["DEVICE_CERTIFICATE_SHARED_CHECK"]);
    assert_eq!(findings.len(), 1);
    assert!(findings[0].is_suppressed);
    let d = &task.audit_details[&CheckName::DeviceCertificateShared];
    assert_eq!(d.check_run_status, AuditCheckRunStatus::CompletedCompliant);
    assert_eq!(d.check_compliant, Some(true));
    assert_eq!(d.suppressed_non_compliant_resources_count, Some(1));
    assert_eq!(d.non_compliant_resources_count, Some(0));
    let only_unsuppressed = a
        .list_audit_findings(&FindingsQuery {
            task_id: Some(task.task_id.clone()),
            list_suppressed_findings: Some(false),
            ..FindingsQuery::default()
        })
        .expect("lists");
    assert!(only_unsuppressed.items.is_empty());

    // Update to an expiry in the past is refused; to the future, fine.
    invalid(a.update_suppression(SuppressionInput {
        suppress_indefinitely: Some(false),
        expiration_date: Some(Timestamp::from_secs(1)),
        ..input("ignored")
    }));
    let tomorrow = Timestamp::from_millis(now.as_millis() + 86_400_000);
    a.update_suppression(SuppressionInput {
        suppress_indefinitely: Some(false),
        expiration_date: Some(tomorrow),
        description: None,
        ..input("ignored")
    })
    .expect("updates");
    let listed = a
        .list_suppressions(&SuppressionsQuery {
            check_name: Some("DEVICE_CERTIFICATE_SHARED_CHECK".into()),
            ..SuppressionsQuery::default()
        })
        .expect("lists");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].expiration_date, Some(tomorrow));
    assert_eq!(listed.items[0].description.as_deref(), Some("lab bench"));

    a.delete_suppression(
        "DEVICE_CERTIFICATE_SHARED_CHECK",
        &ResourceIdentifier::device_certificate(&cert),
    )
    .expect("deletes");
    a.delete_suppression(
        "DEVICE_CERTIFICATE_SHARED_CHECK",
        &ResourceIdentifier::device_certificate(&cert),
    )
    .expect("deleting again succeeds");
    let (task, findings) = run(a, &["DEVICE_CERTIFICATE_SHARED_CHECK"]);
    assert!(!findings[0].is_suppressed);
    assert_eq!(
        task.audit_details[&CheckName::DeviceCertificateShared].check_run_status,
        AuditCheckRunStatus::CompletedNonCompliant
    );
}

// ---- case 34 ----

#[test]
fn notification_on_completion() {
    let f = fixture();
    let a = &f.audit;
    enable(
        a,
        &["DEVICE_CERTIFICATE_SHARED_CHECK", "LOGGING_DISABLED_CHECK"],
    );
    a.update_configuration(ConfigurationUpdate {
        audit_notification_target_configurations: Some(BTreeMap::from([(
            AuditNotificationType::Sns,
            AuditNotificationTarget {
                target_arn: Some("arn:aws:sns:us-east-1:123456789012:audits".into()),
                role_arn: Some("arn:aws:iam::123456789012:role/audit".into()),
                enabled: true,
            },
        )])),
        ..ConfigurationUpdate::default()
    })
    .expect("target");
    let cert = "1a".repeat(32);
    let log = a.connection_log();
    let now = crate::engine::now().as_millis();
    log.connected_at(
        "a",
        Some(&cert),
        addr(1),
        Timestamp::from_millis(now - 5000),
    );
    log.connected_at(
        "b",
        Some(&cert),
        addr(2),
        Timestamp::from_millis(now - 4000),
    );
    let (task, _) = run(
        a,
        &["DEVICE_CERTIFICATE_SHARED_CHECK", "LOGGING_DISABLED_CHECK"],
    );
    let sent = f.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "arn:aws:sns:us-east-1:123456789012:audits");
    let body: Value = serde_json::from_slice(&sent[0].1).expect("JSON");
    assert_eq!(body["accountId"], "123456789012");
    assert_eq!(body["taskId"], task.task_id);
    assert_eq!(body["taskStatus"], "COMPLETED");
    assert_eq!(body["taskType"], "ON_DEMAND_AUDIT_TASK");
    assert_eq!(body["nonCompliantChecksCount"], 1);
    assert_eq!(body["compliantChecksCount"], 1);
    assert_eq!(body["totalChecksCount"], 2);
    assert_eq!(body["failedChecksCount"], 0);
    assert_eq!(body["taskStartTime"], task.task_start_time.as_millis());
    let details = body["auditDetails"].as_array().expect("array");
    let shared = details
        .iter()
        .find(|d| d["checkName"] == "DEVICE_CERTIFICATE_SHARED_CHECK")
        .expect("detail");
    assert_eq!(shared["checkRunStatus"], "COMPLETED_NON_COMPLIANT");
    assert_eq!(shared["nonCompliantResourcesCount"], 1);
    assert!(body.get("findings").is_none() && !sent[0].1.windows(9).any(|w| w == b"findingId"));
}

// ---- case 40 and the finding calls ----

#[test]
fn list_findings_rules_and_pages() {
    let f = fixture();
    let a = &f.audit;
    enable(a, &["DEVICE_CERTIFICATE_SHARED_CHECK"]);
    let log = a.connection_log();
    let now = crate::engine::now().as_millis();
    for i in 0..3u16 {
        let cert = format!("{:064x}", i + 1);
        log.connected_at(
            "a",
            Some(&cert),
            addr(10 * i + 1),
            Timestamp::from_millis(now - 5000),
        );
        log.connected_at(
            "b",
            Some(&cert),
            addr(10 * i + 2),
            Timestamp::from_millis(now - 4000),
        );
    }
    let (task, findings) = run(a, &["DEVICE_CERTIFICATE_SHARED_CHECK"]);
    assert_eq!(findings.len(), 3);
    let start = Timestamp::from_millis(now - 60_000);
    let end = Timestamp::from_millis(crate::engine::now().as_millis() + 60_000);
    let m = invalid(a.list_audit_findings(&FindingsQuery {
        task_id: Some(task.task_id.clone()),
        start_time: Some(start),
        end_time: Some(end),
        ..FindingsQuery::default()
    }));
    assert!(m.contains("not both"), "{m}");
    invalid(a.list_audit_findings(&FindingsQuery::default()));
    invalid(a.list_audit_findings(&FindingsQuery {
        start_time: Some(start),
        ..FindingsQuery::default()
    }));
    invalid(a.list_audit_findings(&FindingsQuery {
        task_id: Some(task.task_id.clone()),
        max_results: Some(251),
        ..FindingsQuery::default()
    }));
    // By time, a page at a time.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = a
            .list_audit_findings(&FindingsQuery {
                start_time: Some(start),
                end_time: Some(end),
                max_results: Some(2),
                next_token: token.clone(),
                ..FindingsQuery::default()
            })
            .expect("page");
        seen.extend(page.items.into_iter().map(|f| f.finding_id));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    // A token belongs to its query.
    let page = a
        .list_audit_findings(&FindingsQuery {
            task_id: Some(task.task_id.clone()),
            max_results: Some(1),
            ..FindingsQuery::default()
        })
        .expect("page");
    invalid(a.list_audit_findings(&FindingsQuery {
        start_time: Some(start),
        end_time: Some(end),
        next_token: page.next_token.clone(),
        ..FindingsQuery::default()
    }));
    // Filters.
    let by_resource = a
        .list_audit_findings(&FindingsQuery {
            task_id: Some(task.task_id.clone()),
            resource_identifier: Some(ResourceIdentifier::device_certificate(&format!(
                "0x{:064x}",
                2
            ))),
            ..FindingsQuery::default()
        })
        .expect("filtered");
    assert_eq!(
        by_resource.items.len(),
        1,
        "0x and upper case are the same id"
    );
    let by_resource = a
        .list_audit_findings(&FindingsQuery {
            task_id: Some(task.task_id.clone()),
            resource_identifier: Some(ResourceIdentifier::device_certificate(&format!(
                "{:064X}",
                2
            ))),
            check_name: Some("DEVICE_CERTIFICATE_SHARED_CHECK".into()),
            ..FindingsQuery::default()
        })
        .expect("filtered");
    assert_eq!(by_resource.items.len(), 1);
    let other_check = a
        .list_audit_findings(&FindingsQuery {
            task_id: Some(task.task_id.clone()),
            check_name: Some("LOGGING_DISABLED_CHECK".into()),
            ..FindingsQuery::default()
        })
        .expect("filtered");
    assert!(other_check.items.is_empty());
    // Describe and related resources.
    let one = a.describe_audit_finding(&seen[0]).expect("describes");
    assert_eq!(one.task_id, task.task_id);
    assert_eq!(one.related_resources.len(), 2);
    let related = a
        .list_related_resources(&seen[0], Some(1), None)
        .expect("related");
    assert_eq!(related.items.len(), 1);
    assert!(related.next_token.is_some());
    assert!(matches!(
        a.describe_audit_finding("nope"),
        Err(AuditError::NotFound(_))
    ));
    assert!(matches!(
        a.list_related_resources("nope", None, None),
        Err(AuditError::NotFound(_))
    ));
}

#[test]
fn tasks_cancel_list_and_survive_a_restart() {
    let f = fixture();
    let a = &f.audit;
    enable(a, &["LOGGING_DISABLED_CHECK"]);
    let (task, _) = run(a, &["LOGGING_DISABLED_CHECK"]);
    assert_eq!(task.task_type, AuditTaskType::OnDemandAuditTask);
    assert!(matches!(
        a.cancel_audit_task(&task.task_id),
        Err(AuditError::InvalidRequest(_))
    ));
    assert!(matches!(
        a.cancel_audit_task("nope"),
        Err(AuditError::NotFound(_))
    ));
    assert!(matches!(
        a.describe_audit_task("nope"),
        Err(AuditError::NotFound(_))
    ));
    let now = crate::engine::now().as_millis();
    let filter = |status: Option<AuditTaskStatus>| TaskFilter {
        start_time: Timestamp::from_millis(now - 60_000),
        end_time: Timestamp::from_millis(now + 60_000),
        task_type: None,
        task_status: status,
    };
    assert_eq!(
        a.list_audit_tasks(&filter(None), None, None)
            .expect("lists")
            .items
            .len(),
        1
    );
    assert!(a
        .list_audit_tasks(&filter(Some(AuditTaskStatus::Canceled)), None, None)
        .expect("lists")
        .items
        .is_empty());
    invalid(a.list_audit_tasks(
        &TaskFilter {
            start_time: Timestamp::from_secs(1),
            ..filter(None)
        },
        None,
        None,
    ));
    // Cancel: the in-memory rules, then a restart keeps everything.
    let mut t = Audit::new_task(
        &[
            CheckName::LoggingDisabled,
            CheckName::DeviceCertificateShared,
        ],
        AuditTaskType::OnDemandAuditTask,
        None,
        crate::engine::now(),
    );
    t.audit_details.insert(
        CheckName::LoggingDisabled,
        AuditCheckDetails {
            check_run_status: AuditCheckRunStatus::CompletedCompliant,
            ..AuditCheckDetails::in_progress()
        },
    );
    runner::cancel_remaining(&mut t, crate::engine::now());
    assert_eq!(t.task_status, AuditTaskStatus::Canceled);
    let s = t.statistics();
    assert_eq!((s.compliant_checks, s.canceled_checks), (1, 1));

    a.create_suppression(SuppressionInput {
        check_name: "LOGGING_DISABLED_CHECK".into(),
        resource_identifier: ResourceIdentifier::account("123456789012"),
        suppress_indefinitely: Some(true),
        client_request_token: Some("tok".into()),
        ..SuppressionInput::default()
    })
    .expect("suppression");
    a.shutdown();
    let again = open_audit(&f.db, &f.registry, Vec::new(), f.sent.clone());
    assert_eq!(
        again.describe_audit_task(&task.task_id).expect("kept"),
        task
    );
    assert!(again.enabled().contains(&CheckName::LoggingDisabled));
    assert_eq!(
        again
            .list_suppressions(&SuppressionsQuery::default())
            .expect("lists")
            .items
            .len(),
        1
    );
    again.shutdown();
    let _ = &f.dir;
}

#[test]
fn a_waiting_task_is_canceled_at_once_and_notified_when_dequeued() {
    let f = fixture();
    let a = &f.audit;
    enable(a, &["LOGGING_DISABLED_CHECK"]);
    a.update_configuration(ConfigurationUpdate {
        audit_notification_target_configurations: Some(BTreeMap::from([(
            AuditNotificationType::Sns,
            AuditNotificationTarget {
                target_arn: Some("arn:aws:sns:us-east-1:123456789012:audits".into()),
                role_arn: None,
                enabled: true,
            },
        )])),
        ..ConfigurationUpdate::default()
    })
    .expect("target");
    // A task that is recorded but not yet taken by the worker.
    let task = Audit::new_task(
        &[CheckName::LoggingDisabled],
        AuditTaskType::OnDemandAuditTask,
        None,
        crate::engine::now(),
    );
    let id = task.task_id.clone();
    a.state().tasks.insert(id.clone(), task);
    a.cancel_audit_task(&id).expect("cancels");
    let t = a.describe_audit_task(&id).expect("task");
    assert_eq!(t.task_status, AuditTaskStatus::Canceled);
    assert_eq!(
        t.audit_details[&CheckName::LoggingDisabled].check_run_status,
        AuditCheckRunStatus::Canceled
    );
    assert!(matches!(
        a.cancel_audit_task(&id),
        Err(AuditError::InvalidRequest(_))
    ));
    // The worker, when it reaches it, runs nothing and notifies.
    a.inner
        .work
        .send(Work::Run {
            task_id: id.clone(),
            window_start: Timestamp::from_millis(0),
        })
        .expect("queued");
    let deadline = std::time::Instant::now() + WAIT;
    while f.sent.lock().expect("lock").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no notification");
        std::thread::sleep(Duration::from_millis(10));
    }
    let body: Value = serde_json::from_slice(&f.sent.lock().expect("lock")[0].1).expect("JSON");
    assert_eq!(body["taskStatus"], "CANCELED");
    assert_eq!(body["canceledChecksCount"], 1);
}

#[test]
fn findings_and_tasks_expire_after_90_days() {
    let f = fixture();
    let store = f.db.audit();
    let old = Timestamp::from_millis(1_000_000);
    let mut task = Audit::new_task(
        &[CheckName::LoggingDisabled],
        AuditTaskType::OnDemandAuditTask,
        None,
        old,
    );
    task.task_status = AuditTaskStatus::Completed;
    let finding = AuditFinding {
        finding_id: "f-old".into(),
        task_id: task.task_id.clone(),
        check_name: CheckName::LoggingDisabled,
        task_start_time: old,
        finding_time: old,
        severity: Severity::Low,
        non_compliant_resource: Resource::new(
            ResourceType::AccountSettings,
            ResourceIdentifier::account("123456789012"),
        ),
        related_resources: Vec::new(),
        reason_for_non_compliance: "x".into(),
        reason_for_non_compliance_code: "LOGGING_DISABLED".into(),
        is_suppressed: false,
    };
    store
        .commit(&[
            AuditWrite::PutTask(task.clone()),
            AuditWrite::Findings {
                first_seq: 0,
                findings: vec![finding.clone()],
            },
        ])
        .expect("commit");
    assert_eq!(store.finding("f-old").expect("reads"), Some(finding));
    let removed = store
        .expire(Timestamp::from_millis(2_000_000))
        .expect("expires");
    assert_eq!(removed, 1);
    assert_eq!(store.finding("f-old").expect("reads"), None);
    assert!(store.load().expect("loads").tasks.is_empty());
}
