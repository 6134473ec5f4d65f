//! The admin API as operators use it: `wardmq serve` in a child process,
//! driven by the real `aws` CLI and by boto3 (tests/admin/boto3_registry.py),
//! so request signing, URL encoding, pagination and error parsing are
//! botocore's, not ours.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::wardmq::Wardmq;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::Value;

/// A CA (cert PEM, key PEM) and certificates it signs.
struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA");
        let key_pem = key.serialize_pem();
        Ca {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        }
    }

    fn device(&self, cn: &str) -> String {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .signed_by(&key, &self.issuer)
            .expect("device cert")
            .pem()
    }
}

fn self_signed(cn: &str) -> String {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.self_signed(&key).expect("cert").pem()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

const ALLOW_CONNECT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;

#[test]
fn aws_cli_drives_the_registry() {
    let issuing = Ca::new("wardmq dev CA");
    let w = Wardmq::start(Some(&(issuing.cert_pem.clone(), issuing.key_pem.clone())));

    // --- CA and device certificates
    let ca = Ca::new("fleet CA");
    let ca_file = w.write("ca.pem", &ca.cert_pem);
    let reg = w.aws(&[
        "register-ca-certificate",
        "--ca-certificate",
        &ca_file,
        "--set-as-active",
    ]);
    let ca_id = s(&reg["certificateId"]).to_owned();
    let described = w.aws(&["describe-ca-certificate", "--certificate-id", &ca_id]);
    assert_eq!(described["certificateDescription"]["status"], "ACTIVE");
    assert_eq!(
        w.aws(&["list-ca-certificates"])["certificates"][0]["certificateId"],
        ca_id.as_str()
    );

    let dev_file = w.write("dev1.pem", &ca.device("dev1"));
    let dev = w.aws(&[
        "register-certificate",
        "--certificate-pem",
        &dev_file,
        "--ca-certificate-pem",
        &ca_file,
        "--status",
        "ACTIVE",
    ]);
    let dev_id = s(&dev["certificateId"]).to_owned();
    let dev_arn = s(&dev["certificateArn"]).to_owned();
    assert_eq!(
        dev_arn,
        format!("arn:aws:iot:us-east-1:123456789012:cert/{dev_id}")
    );
    let by_ca = w.aws(&["list-certificates-by-ca", "--ca-certificate-id", &ca_id]);
    assert_eq!(by_ca["certificates"][0]["certificateId"], dev_id.as_str());

    let lone_file = w.write("lone.pem", &self_signed("lone"));
    let lone = w.aws(&[
        "register-certificate-without-ca",
        "--certificate-pem",
        &lone_file,
    ]);
    let lone_id = s(&lone["certificateId"]).to_owned();
    let desc = w.aws(&["describe-certificate", "--certificate-id", &lone_id]);
    assert_eq!(desc["certificateDescription"]["status"], "INACTIVE");
    assert!(desc["certificateDescription"]["caCertificateId"].is_null());
    assert!(desc["certificateDescription"]["creationDate"].is_number());

    let keys = w.aws(&["create-keys-and-certificate", "--set-as-active"]);
    assert!(s(&keys["certificatePem"]).contains("BEGIN CERTIFICATE"));
    assert!(s(&keys["keyPair"]["PrivateKey"]).contains("PRIVATE KEY"));
    let issued_id = s(&keys["certificateId"]).to_owned();
    w.aws(&[
        "update-certificate",
        "--certificate-id",
        &issued_id,
        "--new-status",
        "INACTIVE",
    ]);
    let desc = w.aws(&["describe-certificate", "--certificate-id", &issued_id]);
    assert_eq!(desc["certificateDescription"]["status"], "INACTIVE");
    // marker/pageSize pagination, followed by hand: the CLI passes
    // --page-size through as the operation's own pageSize here.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec!["list-certificates", "--page-size", "1"];
        if let Some(m) = &marker {
            args.extend(["--marker", m.as_str()]);
        }
        let page = w.aws(&args);
        assert_eq!(page["certificates"].as_array().map(Vec::len), Some(1));
        seen.push(s(&page["certificates"][0]["certificateId"]).to_owned());
        marker = page["nextMarker"].as_str().map(str::to_owned);
        if marker.is_none() {
            break;
        }
    }
    let mut expected = vec![dev_id.clone(), lone_id.clone(), issued_id.clone()];
    expected.sort();
    assert_eq!(seen, expected);
    w.aws(&["delete-certificate", "--certificate-id", &issued_id]);
    w.aws_fails(
        &["describe-certificate", "--certificate-id", &issued_id],
        "ResourceNotFoundException",
        404,
    );

    // --- policies and versions
    let doc = w.write("allow.json", ALLOW_CONNECT);
    let p = w.aws(&[
        "create-policy",
        "--policy-name",
        "p1",
        "--policy-document",
        &doc,
    ]);
    assert_eq!(p["policyVersionId"], "1");
    for _ in 0..4 {
        w.aws(&[
            "create-policy-version",
            "--policy-name",
            "p1",
            "--policy-document",
            &doc,
        ]);
    }
    w.aws_fails(
        &[
            "create-policy-version",
            "--policy-name",
            "p1",
            "--policy-document",
            &doc,
        ],
        "VersionsLimitExceededException",
        409,
    );
    w.aws(&[
        "set-default-policy-version",
        "--policy-name",
        "p1",
        "--policy-version-id",
        "3",
    ]);
    assert_eq!(
        w.aws(&["get-policy", "--policy-name", "p1"])["defaultVersionId"],
        "3"
    );
    let versions = w.aws(&["list-policy-versions", "--policy-name", "p1"]);
    assert_eq!(versions["policyVersions"].as_array().map(Vec::len), Some(5));
    let v3 = w.aws(&[
        "get-policy-version",
        "--policy-name",
        "p1",
        "--policy-version-id",
        "3",
    ]);
    assert_eq!(v3["isDefaultVersion"], true);
    w.aws(&[
        "delete-policy-version",
        "--policy-name",
        "p1",
        "--policy-version-id",
        "5",
    ]);
    let bad = w.write(
        "bad.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe"}]}"#,
    );
    let err = w.aws_fails(
        &[
            "create-policy",
            "--policy-name",
            "bad",
            "--policy-document",
            &bad,
        ],
        "MalformedPolicyException",
        400,
    );
    assert!(err.contains("Effect"), "the problem is named");

    // --- groups with parents
    w.aws(&["create-thing-group", "--thing-group-name", "plant"]);
    let child = w.aws(&[
        "create-thing-group",
        "--thing-group-name",
        "line1",
        "--parent-group-name",
        "plant",
        "--thing-group-properties",
        "thingGroupDescription=first line,attributePayload={attributes={floor=2}}",
    ]);
    let group_arn = s(&child["thingGroupArn"]).to_owned();
    let g = w.aws(&["describe-thing-group", "--thing-group-name", "line1"]);
    assert_eq!(g["thingGroupMetadata"]["parentGroupName"], "plant");
    assert_eq!(
        g["thingGroupMetadata"]["rootToParentThingGroups"][0]["groupName"],
        "plant"
    );
    assert_eq!(
        g["thingGroupProperties"]["attributePayload"]["attributes"]["floor"],
        "2"
    );
    let updated = w.aws(&[
        "update-thing-group",
        "--thing-group-name",
        "line1",
        "--thing-group-properties",
        "thingGroupDescription=renamed",
        "--expected-version",
        "1",
    ]);
    assert_eq!(updated["version"], 2);
    let children = w.aws(&["list-thing-groups", "--parent-group", "plant"]);
    assert_eq!(children["thingGroups"][0]["groupName"], "line1");

    // --- policy attachments
    w.aws(&["attach-policy", "--policy-name", "p1", "--target", &dev_arn]);
    w.aws(&[
        "attach-policy",
        "--policy-name",
        "p1",
        "--target",
        &group_arn,
    ]);
    let targets = w.aws(&["list-targets-for-policy", "--policy-name", "p1"]);
    assert_eq!(targets["targets"].as_array().map(Vec::len), Some(2));
    let attached = w.aws(&["list-attached-policies", "--target", &dev_arn]);
    assert_eq!(attached["policies"][0]["policyName"], "p1");
    w.aws(&[
        "detach-policy",
        "--policy-name",
        "p1",
        "--target",
        &group_arn,
    ]);
    let attached = w.aws(&["list-attached-policies", "--target", &group_arn]);
    assert_eq!(attached["policies"].as_array().map(Vec::len), Some(0));

    // --- things, principals, membership
    for t in ["t1", "t2", "t3"] {
        w.aws(&[
            "create-thing",
            "--thing-name",
            t,
            "--attribute-payload",
            "attributes={model=x}",
        ]);
    }
    w.aws(&[
        "attach-thing-principal",
        "--thing-name",
        "t1",
        "--principal",
        &dev_arn,
    ]);
    let principals = w.aws(&["list-thing-principals", "--thing-name", "t1"]);
    assert_eq!(principals["principals"][0], dev_arn.as_str());
    let things = w.aws(&["list-principal-things", "--principal", &dev_arn]);
    assert_eq!(things["things"][0], "t1");
    w.aws(&[
        "add-thing-to-thing-group",
        "--thing-group-name",
        "line1",
        "--thing-name",
        "t2",
    ]);
    let members = w.aws(&["list-things-in-thing-group", "--thing-group-name", "line1"]);
    assert_eq!(members["things"][0], "t2");
    let recursive = w.aws(&[
        "list-things-in-thing-group",
        "--thing-group-name",
        "plant",
        "--recursive",
    ]);
    assert_eq!(recursive["things"][0], "t2");
    let groups = w.aws(&["list-thing-groups-for-thing", "--thing-name", "t2"]);
    assert_eq!(groups["thingGroups"][0]["groupName"], "line1");
    w.aws(&[
        "update-thing",
        "--thing-name",
        "t3",
        "--attribute-payload",
        "attributes={model=y}",
    ]);
    assert_eq!(
        w.aws(&["describe-thing", "--thing-name", "t3"])["version"],
        2
    );

    // Pagination by hand: one per page, following nextToken.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec!["list-things", "--max-results", "1", "--no-paginate"];
        if let Some(t) = &token {
            args.extend(["--next-token", t.as_str()]);
        }
        let page = w.aws(&args);
        let items = page["things"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 1, "{page}");
        names.push(s(&items[0]["thingName"]).to_owned());
        token = page["nextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["t1", "t2", "t3"]);
    let filtered = w.aws(&[
        "list-things",
        "--attribute-name",
        "model",
        "--attribute-value",
        "y",
    ]);
    assert_eq!(filtered["things"][0]["thingName"], "t3");

    // A thing with a principal cannot go; detached, it can.
    w.aws_fails(
        &["delete-thing", "--thing-name", "t1"],
        "InvalidRequestException",
        400,
    );
    w.aws(&[
        "detach-thing-principal",
        "--thing-name",
        "t1",
        "--principal",
        &dev_arn,
    ]);
    w.aws(&["delete-thing", "--thing-name", "t1"]);
    w.aws(&[
        "remove-thing-from-thing-group",
        "--thing-group-name",
        "line1",
        "--thing-name",
        "t2",
    ]);
    w.aws(&["delete-thing-group", "--thing-group-name", "line1"]);

    // --- logging
    w.aws(&["set-v2-logging-options", "--default-log-level", "INFO"]);
    assert_eq!(
        w.aws(&["get-v2-logging-options"])["defaultLogLevel"],
        "INFO"
    );
    w.aws(&[
        "set-v2-logging-level",
        "--log-target",
        "targetType=THING_GROUP,targetName=plant",
        "--log-level",
        "DEBUG",
    ]);
    let levels = w.aws(&["list-v2-logging-levels"]);
    assert_eq!(levels["logTargetConfigurations"][0]["logLevel"], "DEBUG");
    w.aws(&[
        "delete-v2-logging-level",
        "--target-type",
        "THING_GROUP",
        "--target-name",
        "plant",
    ]);
    let levels = w.aws(&["list-v2-logging-levels"]);
    assert_eq!(
        levels["logTargetConfigurations"].as_array().map(Vec::len),
        Some(0)
    );

    // --- errors
    w.aws_fails(
        &["describe-thing", "--thing-name", "nope"],
        "ResourceNotFoundException",
        404,
    );
    w.aws_fails(
        &[
            "create-thing-group",
            "--thing-group-name",
            "x",
            "--parent-group-name",
            "nope",
        ],
        "ResourceNotFoundException",
        404,
    );
    w.aws_fails(
        &[
            "update-certificate",
            "--certificate-id",
            &dev_id,
            "--new-status",
            "PENDING_TRANSFER",
        ],
        "InvalidRequestException",
        400,
    );
}

#[test]
fn wrongly_signed_request_gets_403_invalid_signature_exception() {
    let w = Wardmq::start(None);
    let text = std::fs::read_to_string(&w.credentials).expect("credentials file");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("aws_access_key_id = "))
        .expect("key id");
    let wrong = w.dir.path().join("wrong-credentials");
    std::fs::write(
        &wrong,
        format!(
            "[default]\naws_access_key_id = {id}\naws_secret_access_key = {}\n",
            "x".repeat(40)
        ),
    )
    .expect("write");
    let out = w.aws_with(&wrong, &["--debug", "list-things"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("(InvalidSignatureException)"),
        "{}",
        err.lines().last().unwrap_or("")
    );
    assert!(err.contains("HTTP/1.1\" 403 "));

    // Unknown key.
    std::fs::write(
        &wrong,
        "[default]\naws_access_key_id = AKIAAAAAAAAAAAAAAAAA\naws_secret_access_key = x\n",
    )
    .expect("write");
    let out = w.aws_with(&wrong, &["list-things"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(UnrecognizedClientException)"));
}

/// Sends one raw HTTP/1.1 request and returns the whole response.
fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.write_all(request).expect("send");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn unsigned_and_oversized_requests_are_refused_in_aws_shape() {
    let w = Wardmq::start(None);
    let response = raw_http(
        w.addr(),
        b"GET /things HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-amzn-errortype: missingauthenticationtokenexception"),
        "{response}"
    );
    assert!(response.contains(r#"{"message":"#), "{response}");

    let response = raw_http(
        w.addr(),
        b"POST /things/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n{}",
    );
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response
        .to_ascii_lowercase()
        .contains("x-amzn-errortype: requestentitytoolargeexception"));
}

#[test]
fn boto3_registry_script() {
    Wardmq::start(None).run_boto3("boto3_registry.py", "boto3 registry: ok");
}

/// The whole loop an operator relies on: a device connected over mutual
/// TLS is cut within a second of `aws iot update-certificate ... INACTIVE`,
/// and cannot come back.
#[test]
fn deactivating_a_certificate_with_the_aws_cli_cuts_the_live_device() {
    let w = Wardmq::start_with(None, true);
    let certs = w.dir.path().join("certs");
    let mut device = Command::new("python3")
        .arg(repo_root().join("tests/paho/tls_device.py"))
        .arg(w.tls_port.to_string())
        .arg(certs.join("ca.pem"))
        .arg(certs.join("devices/demo-device.pem"))
        .arg(certs.join("devices/demo-device.key"))
        .args(["demo-device", "hold"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let (tx, rx) = mpsc::channel();
    let stdout = device.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    while !rx
        .recv_timeout(TIMEOUT)
        .expect("device output")
        .starts_with("connected")
    {}

    let listed = w.aws(&["list-certificates"]);
    let certificates = listed["certificates"].as_array().expect("certificates");
    assert_eq!(certificates.len(), 1, "just the demo device: {listed}");
    let id = s(&certificates[0]["certificateId"]).to_owned();
    w.aws(&[
        "update-certificate",
        "--certificate-id",
        &id,
        "--new-status",
        "INACTIVE",
    ]);
    // The change was committed before the CLI got its answer, so the cut
    // must follow within a second of the CLI returning.
    let answered = std::time::Instant::now();
    let cut = rx.recv_timeout(TIMEOUT).expect("connection cut");
    let waited = answered.elapsed();
    let _ = device.kill();
    let _ = device.wait();
    assert!(cut.starts_with("cut 135"), "cut with 0x87: {cut}");
    assert!(
        waited < std::time::Duration::from_secs(1),
        "within a second: {waited:?}"
    );

    // The printed command no longer works.
    let words: Vec<&str> = w.try_it.split_whitespace().collect();
    let out = run_with_timeout(
        Command::new(words[0])
            .args(&words[1..])
            .current_dir(w.dir.path()),
        TIMEOUT,
    );
    assert!(
        !out.status.success(),
        "an INACTIVE certificate cannot connect: `{}` said {}{}",
        w.try_it,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every operation of the AWS IoT model, unsigned, is refused with 403
/// (none bypasses SigV4); ten wrong signatures from one address then make
/// it wait (429 ThrottlingException, even with the right key), and each is
/// counted in `wardmq_admin_auth_failures_total`.
#[test]
fn no_route_skips_sigv4_and_key_guessing_is_throttled() {
    let w = Wardmq::start(None);
    let out = w.run_python(
        "tests/admin/auth_walls.py",
        &[],
        "auth walls: ok",
        std::time::Duration::from_secs(120),
    );
    let walked: usize = out
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("routes walked");
    assert!(
        walked > 200,
        "the IoT model has hundreds of operations: {walked}"
    );
    assert_eq!(
        common::metric(&w.admin, "wardmq_admin_auth_failures_total"),
        10.0
    );
}
