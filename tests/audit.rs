//! Device Defender Audit against a live `wardmq serve`: the boto3 script
//! (tests/admin/boto3_audit.py) drives spec section 13 cases 27–34 and 40
//! with real mutual-TLS devices; this side makes the certificates it
//! registers, receives the audit notification on a webhook alert sink, and
//! repeats the API's refusals with the `aws` CLI.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::wardmq::Wardmq;
use common::TIMEOUT;
use serde_json::Value;
use wardmq::pki::{self, CertOptions, Issuer};

const DAY: Duration = Duration::from_secs(86_400);

/// A webhook receiver on 127.0.0.1 that answers 200 to every POST and
/// keeps the bodies (HTTP/1.1 with keep-alive, as the alert sink speaks it).
struct Hook {
    port: u16,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

fn hook() -> Hook {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let keep = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut write = stream.try_clone().expect("clone");
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    keep.lock().expect("lock").push(body);
                    let _ = write.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    Hook { port, bodies }
}

/// The device certificates the script registers, signed by a CA of their
/// own (registered without a CA, like certificates from another PKI).
fn write_certs(dir: &Path) {
    let ca = Issuer::generate("wardmq audit test CA").expect("CA");
    let now = SystemTime::now();
    let write = |name: &str, not_before: SystemTime, not_after: SystemTime| {
        let opts = CertOptions {
            not_before,
            not_after,
            ..CertOptions::default()
        };
        let issued = pki::issue_device_cert(&ca, name, &opts).expect("issues");
        std::fs::write(dir.join(format!("{name}.pem")), issued.cert_pem).expect("write");
    };
    write("soon", now - DAY, now + 29 * DAY);
    write("past", now - 40 * DAY, now - DAY);
    write("inactive", now - 40 * DAY, now - DAY);
    // Age counts from notBefore: 365 days (and a minute) is past the
    // default 365-day threshold, 364 days is not.
    write(
        "old",
        now - 365 * DAY - Duration::from_secs(60),
        now + 400 * DAY,
    );
    write("young", now - 364 * DAY, now + 400 * DAY);
    if pki::openssl_available() {
        let weak = pki::rsa1024_device_cert(&ca, "rsa1024").expect("RSA-1024");
        std::fs::write(dir.join("rsa1024.pem"), weak.cert_pem).expect("write");
    } else {
        eprintln!("openssl not installed: the RSA-1024 key quality case is skipped");
    }
}

#[test]
fn boto3_audit_cases_27_to_34_and_40() {
    let hook = hook();
    let extra = format!(
        "[[defender.alert_sinks]]\nname = \"audits\"\nkind = \"webhook\"\n\
         url = \"http://127.0.0.1:{}/hook\"\nsecret = \"s3cret\"\n",
        hook.port
    );
    let w = Wardmq::start_defender(&extra);
    let certs = tempfile::tempdir().expect("temp dir");
    write_certs(certs.path());
    let out = w.run_python(
        "tests/admin/boto3_audit.py",
        &[
            &w.tls_port.to_string(),
            &w.ca_file().display().to_string(),
            &certs.path().display().to_string(),
        ],
        "boto3 audit: ok",
        TIMEOUT * 6,
    );
    // Case 34: one notification for the audit with one non-compliant check,
    // counts only.
    let task_id = out
        .lines()
        .find_map(|l| l.strip_prefix("notify-task: "))
        .expect("the script names the notified audit")
        .to_owned();
    let deadline = Instant::now() + TIMEOUT;
    let body = loop {
        let found = hook.bodies.lock().expect("lock").iter().find_map(|b| {
            let v: Value = serde_json::from_slice(b).ok()?;
            (v["taskId"] == task_id.as_str()).then_some(v)
        });
        if let Some(v) = found {
            break v;
        }
        assert!(Instant::now() < deadline, "no notification for {task_id}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(body["accountId"], "123456789012");
    assert_eq!(body["taskStatus"], "COMPLETED");
    assert_eq!(body["taskType"], "ON_DEMAND_AUDIT_TASK");
    assert_eq!(body["nonCompliantChecksCount"], 1);
    assert_eq!(body["compliantChecksCount"], 1);
    assert_eq!(body["totalChecksCount"], 2);
    assert!(body["taskStartTime"]
        .as_u64()
        .is_some_and(|ms| ms > 1_600_000_000_000));
    let details = body["auditDetails"].as_array().expect("auditDetails");
    let conflicting = details
        .iter()
        .find(|d| d["checkName"] == "CONFLICTING_CLIENT_IDS_CHECK")
        .expect("the check's details");
    assert_eq!(conflicting["checkRunStatus"], "COMPLETED_NON_COMPLIANT");
    assert_eq!(conflicting["nonCompliantResourcesCount"], 1);
    assert!(
        !body.to_string().contains("findingId"),
        "the notification carries counts only"
    );
    // Only the audits run while the target was enabled were notified.
    let notified = hook.bodies.lock().expect("lock").len();
    assert_eq!(notified, 1, "notifications: {notified}");
}

#[test]
fn aws_cli_refusals() {
    let w = Wardmq::start_defender("");
    // Case 27: the first configuration must enable a check.
    let disabled = w.write(
        "disabled.json",
        r#"{"LOGGING_DISABLED_CHECK": {"enabled": false}}"#,
    );
    w.aws_fails(
        &[
            "update-account-audit-configuration",
            "--audit-check-configurations",
            &disabled,
        ],
        "InvalidRequestException",
        400,
    );
    let enabled = w.write(
        "enabled.json",
        r#"{"LOGGING_DISABLED_CHECK": {"enabled": true}, "DEVICE_CERT_APPROACHING_EXPIRATION_CHECK": {"enabled": true}}"#,
    );
    w.aws(&[
        "update-account-audit-configuration",
        "--audit-check-configurations",
        &enabled,
    ]);
    let described = w.aws(&["describe-account-audit-configuration"]);
    assert_eq!(
        described["auditCheckConfigurations"]["DEVICE_CERTIFICATE_EXPIRING_CHECK"]["enabled"], true,
        "the legacy name enabled the current check"
    );
    w.aws_fails(
        &[
            "start-on-demand-audit-task",
            "--target-check-names",
            "DEVICE_CERTIFICATE_SHARED_CHECK",
        ],
        "InvalidRequestException",
        400,
    );
    // Case 28: schedule rules.
    for args in [
        vec!["--frequency", "MONTHLY"],
        vec!["--frequency", "WEEKLY"],
        vec!["--frequency", "MONTHLY", "--day-of-month", "32"],
    ] {
        let mut all = vec![
            "create-scheduled-audit",
            "--scheduled-audit-name",
            "s",
            "--target-check-names",
            "LOGGING_DISABLED_CHECK",
        ];
        all.extend(args);
        w.aws_fails(&all, "InvalidRequestException", 400);
    }
    // Case 40: taskId or a time range, not both, not neither.
    let task = w.aws(&[
        "start-on-demand-audit-task",
        "--target-check-names",
        "LOGGING_DISABLED_CHECK",
    ]);
    let task_id = task["taskId"].as_str().expect("taskId").to_owned();
    w.aws_fails(
        &[
            "list-audit-findings",
            "--task-id",
            &task_id,
            "--start-time",
            "2026-01-01T00:00:00Z",
            "--end-time",
            "2030-01-01T00:00:00Z",
        ],
        "InvalidRequestException",
        400,
    );
    w.aws_fails(&["list-audit-findings"], "InvalidRequestException", 400);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let t = w.aws(&["describe-audit-task", "--task-id", &task_id]);
        if t["taskStatus"] != "IN_PROGRESS" {
            assert_eq!(t["taskStatus"], "COMPLETED");
            assert_eq!(
                t["auditDetails"]["LOGGING_DISABLED_CHECK"]["checkRunStatus"],
                "COMPLETED_COMPLIANT"
            );
            assert_eq!(t["taskStatistics"]["compliantChecks"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "the audit did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let found = w.aws(&["list-audit-findings", "--task-id", &task_id]);
    assert_eq!(found["findings"], serde_json::json!([]));
    // A suppression twice is 409.
    let create = [
        "create-audit-suppression",
        "--check-name",
        "LOGGING_DISABLED_CHECK",
        "--resource-identifier",
        "account=123456789012",
        "--suppress-indefinitely",
    ];
    w.aws(&create);
    w.aws_fails(&create, "ResourceAlreadyExistsException", 409);
}
