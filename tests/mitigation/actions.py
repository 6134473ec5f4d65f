"""The mitigation action types mitigation.py does not drive, end to end
with boto3 against `wardmq serve` and real mutual-TLS devices (paho,
MQTT 5), plus a cancel in the middle of an audit mitigation task and the
`wardmq_defender_mitigations_total` counter on /metrics.

- ca: UPDATE_CA_CERTIFICATE on a CA_CERTIFICATE_EXPIRING_CHECK finding
  cuts every connected device under that CA and refuses new ones.
- policy: REPLACE_DEFAULT_POLICY_VERSION on an
  IOT_POLICY_OVERLY_PERMISSIVE_CHECK finding takes effect on a live
  connection (the broker disconnects it with 0x87).
- logging: ENABLE_IOT_LOGGING on an audit finding sets the account's v2
  options; run automatically on a Detect alarm it makes the broker log
  that device's activity at DEBUG (read from its standard error) on its
  live connection, until the alarm clears.
- cancel: CancelAuditMitigationActionsTask mid-task leaves the findings
  it reached COMPLETED and the rest CANCELED, with nothing rolled back; a
  canceled Detect task records the violations it did not reach SKIPPED.

Arguments: ENDPOINT CA_FILE TLS_PORT WORKDIR BROKER_LOG_FILE
"""

import os
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "defender"))
sys.path.insert(0, os.path.join(HERE, "..", "monitoring"))
sys.path.insert(0, HERE)

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402
from fleet import ALLOW_ALL, Device, Fleet, run_cases, wait_for  # noqa: E402
from mitigation import ROLE, accepted, action, brute_force_profile, wait_task  # noqa: E402
from monitoring import connack_of, scrape, value  # noqa: E402

NOT_AUTHORIZED = 0x87


def audit(f, check):
    """An on-demand audit of one check; its findings."""
    f.iot.update_account_audit_configuration(auditCheckConfigurations={check: {"enabled": True}})
    task = f.iot.start_on_demand_audit_task(targetCheckNames=[check])["taskId"]
    wait_for(f"the {check} audit", lambda: f.iot.describe_audit_task(taskId=task)["taskStatus"] == "COMPLETED")
    out, token = [], None
    while True:
        kw = dict(taskId=task, maxResults=250)
        if token:
            kw["nextToken"] = token
        page = f.iot.list_audit_findings(**kw)
        out += page["findings"]
        token = page.get("nextToken")
        if not token:
            return task, out


# ------------------------------------------------------------ certificates


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(cn, days, issuer=None, ca=False):
    """(cert PEM, key PEM): a CA, a device certificate signed by `issuer`
    (cert, key), or a self-signed device certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    issuer_name, signer = (_name(cn), key) if issuer is None else (issuer[0].subject, issuer[1])
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = b.sign(signer, hashes.SHA256())
    return cert, key


def pem(cert, key):
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def thing_with(f, name, cert_pem, key_pem, cert_arn, policy_name):
    """A thing whose certificate is `cert_arn`, with `policy_name` attached."""
    paths = [os.path.join(f.workdir, f"{name}.{ext}") for ext in ("pem", "key")]
    for p, text in zip(paths, (cert_pem, key_pem)):
        with open(p, "w") as fh:
            fh.write(text)
    f.iot.create_thing(thingName=name)
    f.iot.attach_thing_principal(thingName=name, principal=cert_arn)
    f.iot.attach_policy(policyName=policy_name, target=cert_arn)
    return Device(f, name, *paths)


def refused(dev):
    """The device cannot get a session: its handshake or CONNECT is refused."""
    try:
        return connack_of(dev) != 0
    except (AssertionError, ssl.SSLError, OSError):
        return True


def track_disconnect(dev):
    """Records the reason of the broker's DISCONNECT (or of the loss)."""
    dev.reason = None
    gone = dev.client.on_disconnect

    def on_disconnect(cl, u, flags, rc, p):
        dev.reason = rc.value
        gone(cl, u, flags, rc, p)

    dev.client.on_disconnect = on_disconnect


# ------------------------------------------------------------------ cases


def case_ca(f):
    """A CA expiring in 20 days: the audit finds it, UPDATE_CA_CERTIFICATE
    sets it INACTIVE, and all three devices under it are cut at once."""
    f._policy("allow-all", ALLOW_ALL)
    ca_cert, ca_key = certificate("mitigation-ca", 20, ca=True)
    ca_pem, _ = pem(ca_cert, ca_key)
    ca_id = f.iot.register_ca_certificate(caCertificate=ca_pem, setAsActive=True)["certificateId"]
    devices = []
    for i in range(3):
        cert, key = certificate(f"ca-dev-{i}", 300, issuer=(ca_cert, ca_key))
        cert_pem, key_pem = pem(cert, key)
        arn = f.iot.register_certificate(certificatePem=cert_pem, caCertificatePem=ca_pem,
                                         status="ACTIVE")["certificateArn"]
        devices.append(thing_with(f, f"ca-dev-{i}", cert_pem, key_pem, arn, "allow-all").connect())
    for d in devices:
        track_disconnect(d)
        assert accepted(d.publish(f"ca/{d.name}"))
    _, findings = audit(f, "CA_CERTIFICATE_EXPIRING_CHECK")
    mine = [x for x in findings if x["nonCompliantResource"]["resourceIdentifier"].get("caCertificateId") == ca_id]
    assert len(mine) == 1, findings
    action(f, "ca-off", {"updateCACertificateParams": {"action": "DEACTIVATE"}})
    t0 = time.time()
    f.iot.start_audit_mitigation_actions_task(
        taskId="ca", target={"findingIds": [mine[0]["findingId"]]},
        auditCheckToActionsMapping={"CA_CERTIFICATE_EXPIRING_CHECK": ["ca-off"]}, clientRequestToken="ca")
    for d in devices:
        d._gone.wait(5)
    cut = time.time() - t0
    assert all(d._gone.is_set() for d in devices), "devices under the INACTIVE CA still connected"
    assert all(d.reason == NOT_AUTHORIZED for d in devices), [d.reason for d in devices]
    t = wait_task(f, "ca")
    assert t["taskStatus"] == "COMPLETED", t
    ex = f.iot.list_audit_mitigation_actions_executions(taskId="ca", findingId=mine[0]["findingId"])
    assert [e["status"] for e in ex["actionsExecutions"]] == ["COMPLETED"], ex
    ca = f.iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert ca["status"] == "INACTIVE", ca
    for d in devices:
        d.client.loop_stop()
        assert refused(d), f"{d.name} connected again under the INACTIVE CA"
    print(f"ca-cut-ms: {cut * 1000:.0f} (3 devices, from the StartAuditMitigationActionsTask call)", flush=True)
    assert cut < 1.0, f"cut after {cut:.3f}s"
    print("ok ca", flush=True)


def case_policy(f):
    """An iot:* policy on a live device: REPLACE_DEFAULT_POLICY_VERSION
    makes a blank (deny-all) version the default, and the broker
    disconnects the device at once (0x87) and refuses it after."""
    f.iot.create_policy(policyName="wide", policyDocument=ALLOW_ALL)
    dev = f.device("wide-dev", "ok-only")
    arn = f.iot.list_thing_principals(thingName="wide-dev")["principals"][0]
    f.iot.attach_policy(policyName="wide", target=arn)
    dev.connect()
    track_disconnect(dev)
    assert accepted(dev.publish("anywhere/x")), "the wide policy is in force"
    _, findings = audit(f, "IOT_POLICY_OVERLY_PERMISSIVE_CHECK")
    mine = [x for x in findings
            if x["nonCompliantResource"]["resourceIdentifier"].get("policyVersionIdentifier", {}).get("policyName")
            == "wide"]
    assert len(mine) == 1, findings
    action(f, "blank", {"replaceDefaultPolicyVersionParams": {"templateName": "BLANK_POLICY"}})
    t0 = time.time()
    f.iot.start_audit_mitigation_actions_task(
        taskId="policy", target={"findingIds": [mine[0]["findingId"]]},
        auditCheckToActionsMapping={"IOT_POLICY_OVERLY_PERMISSIVE_CHECK": ["blank"]}, clientRequestToken="policy")
    dev._gone.wait(5)
    cut = time.time() - t0
    assert dev._gone.is_set(), "the device kept its connection under a deny-all default version"
    assert dev.reason == NOT_AUTHORIZED, dev.reason
    t = wait_task(f, "policy")
    assert t["taskStatus"] == "COMPLETED", t
    p = f.iot.get_policy(policyName="wide")
    assert p["defaultVersionId"] == "2", p
    assert '"Deny"' in p["policyDocument"], p["policyDocument"]
    assert len(f.iot.list_policy_versions(policyName="wide")["policyVersions"]) == 2
    dev.client.loop_stop()
    assert connack_of(dev) == NOT_AUTHORIZED, "a reconnect under the blank version must be refused"
    print(f"policy: the broker sent DISCONNECT 0x87 to the live device {cut * 1000:.0f} ms after the "
          f"StartAuditMitigationActionsTask call; its reconnect gets CONNACK 0x87", flush=True)
    assert cut < 1.0, f"cut after {cut:.3f}s"
    print("ok policy", flush=True)


def device_lines(log_file, thing, topic):
    """The broker's DEBUG device-activity lines for a publish of `thing`
    on `topic`."""
    with open(log_file, errors="replace") as fh:
        return [line for line in fh if "wardmq::device" in line and f'"{thing}"' in line
                and f"topic={topic} " in line]


def case_logging(f, log_file):
    """ENABLE_IOT_LOGGING: on a LOGGING_DISABLED_CHECK finding it sets the
    account's options; run automatically on a device's alarm, the broker
    logs that device's publishes at DEBUG on its live connection, and
    stops when the alarm clears (undo)."""
    f.iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="ERROR", disableAllLogs=True)
    _, findings = audit(f, "LOGGING_DISABLED_CHECK")
    assert len(findings) == 1, findings
    action(f, "log-on", {"enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "DEBUG"}})
    f.iot.start_audit_mitigation_actions_task(
        taskId="logging", target={"findingIds": [findings[0]["findingId"]]},
        auditCheckToActionsMapping={"LOGGING_DISABLED_CHECK": ["log-on"]}, clientRequestToken="logging")
    assert wait_task(f, "logging")["taskStatus"] == "COMPLETED"
    opts = f.iot.get_v2_logging_options()
    assert opts["defaultLogLevel"] == "DEBUG" and not opts["disableAllLogs"], opts

    brute_force_profile(f, "log-bf", "log-devices", tags=[
        {"Key": "wardmq:auto-mitigation", "Value": "log-on"},
        {"Key": "wardmq:undo-on-clear", "Value": "true"}])
    dev = f.device("chatty", "ok-only", groups=["log-devices"]).connect()
    assert accepted(dev.publish("ok/before"))
    assert dev.publish("bad/x", n=8) == [NOT_AUTHORIZED] * 8
    target = {"targetType": "CLIENT_ID", "targetName": "chatty"}
    wait_for("chatty's DEBUG log level", lambda: [
        x for x in f.iot.list_v2_logging_levels(targetType="CLIENT_ID")["logTargetConfigurations"]
        if x["logTarget"] == target and x["logLevel"] == "DEBUG"], limit=10)
    # The same connection, no reconnect: the new level is live (the
    # connection reloads on the registry's notification, asynchronously).
    time.sleep(0.2)
    assert accepted(dev.publish("ok/while-logged"))
    lines = wait_for("the broker's log of chatty's publish", lambda: device_lines(log_file, "chatty", "ok/while-logged"))
    assert all(" DEBUG " in line for line in lines), lines
    assert not device_lines(log_file, "chatty", "ok/before"), "logged before any level was set"
    print(f"logging: {lines[0].strip()}", flush=True)
    # Calm: the alarm clears, the undo deletes the level, logging stops.
    wait_for("chatty's log level deleted", lambda: not [
        x for x in f.iot.list_v2_logging_levels(targetType="CLIENT_ID")["logTargetConfigurations"]
        if x["logTarget"] == target], limit=10)
    time.sleep(0.2)
    assert accepted(dev.publish("ok/after"))
    time.sleep(0.5)
    assert not device_lines(log_file, "chatty", "ok/after"), "still logged after the level was deleted"
    dev.disconnect()
    print("ok logging", flush=True)


def case_cancel(f, findings_wanted=300):
    """A task over 300 findings is canceled once some are done: those stay
    done (certificates INACTIVE), the rest are CANCELED and untouched."""
    certs = [certificate(f"short-{i}", 10) for i in range(findings_wanted)]

    def register(c):
        cert_pem, _ = pem(*c)
        return f.iot.register_certificate_without_ca(certificatePem=cert_pem, status="ACTIVE")["certificateId"]

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(register, certs))
    audit_task, findings = audit(f, "DEVICE_CERTIFICATE_EXPIRING_CHECK")
    findings = [x for x in findings if x["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"] in ids]
    assert len(findings) == findings_wanted, len(findings)
    action(f, "cert-off", {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}})
    f.iot.start_audit_mitigation_actions_task(
        taskId="cancel", target={"auditTaskId": audit_task},
        auditCheckToActionsMapping={"DEVICE_CERTIFICATE_EXPIRING_CHECK": ["cert-off"]}, clientRequestToken="cancel")
    # A Detect task on chatty's violation (case logging) waits behind it
    # (one worker) and is canceled before it reaches the violation.
    f.iot.create_thing_group(thingGroupName="Cancel")
    action(f, "to-cancel", {"addThingsToThingGroupParams": {"thingGroupNames": ["Cancel"]}})
    f.iot.start_detect_mitigation_actions_task(
        taskId="detect-cancel", target={"securityProfileName": "log-bf"}, actions=["to-cancel"],
        clientRequestToken="detect-cancel")
    f.iot.cancel_detect_mitigation_actions_task(taskId="detect-cancel")

    def stats():
        t = f.iot.describe_audit_mitigation_actions_task(taskId="cancel")
        return t["taskStatistics"].get("DEVICE_CERTIFICATE_EXPIRING_CHECK", {})

    wait_for("the first finding mitigated", lambda: stats().get("succeededFindingsCount", 0) > 0, every=0.01)
    f.iot.cancel_audit_mitigation_actions_task(taskId="cancel")
    t = wait_task(f, "cancel")
    assert t["taskStatus"] == "CANCELED", t
    s = t["taskStatistics"]["DEVICE_CERTIFICATE_EXPIRING_CHECK"]
    done, canceled = s["succeededFindingsCount"], s["canceledFindingsCount"]
    assert done > 0 and canceled > 0, s
    assert s["failedFindingsCount"] == 0 and s["skippedFindingsCount"] == 0, s
    assert s["totalFindingsCount"] == done + canceled, s
    by_status = {"COMPLETED": 0, "CANCELED": 0}
    for x in findings:
        ex = f.iot.list_audit_mitigation_actions_executions(taskId="cancel", findingId=x["findingId"])
        (e,) = ex["actionsExecutions"]
        by_status[e["status"]] += 1
        cert = x["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]
        status = f.iot.describe_certificate(certificateId=cert)["certificateDescription"]["status"]
        # Nothing rolled back, nothing canceled touched.
        assert status == ("INACTIVE" if e["status"] == "COMPLETED" else "ACTIVE"), (e, status)
    assert by_status == {"COMPLETED": done, "CANCELED": canceled}, (by_status, s)
    d = wait_task(f, "detect-cancel", "detect")
    assert d["taskStatus"] == "CANCELED", d
    assert d["taskStatistics"] == {"actionsExecuted": 0, "actionsSkipped": 1, "actionsFailed": 0}, d
    ex = f.iot.list_detect_mitigation_actions_executions(taskId="detect-cancel")["actionsExecutions"]
    assert [(e["thingName"], e["status"]) for e in ex] == [("chatty", "SKIPPED")], ex
    assert f.iot.list_things_in_thing_group(thingGroupName="Cancel")["things"] == []
    print(f"cancel: {done} findings mitigated before the cancel, {canceled} CANCELED", flush=True)
    print("ok cancel", flush=True)
    return done, canceled


def check_metrics(f, admin, cancel_counts):
    """Every execution above is counted by type and result."""
    _, samples = scrape(admin, "unused")
    name = "wardmq_defender_mitigations_total"
    done, canceled = cancel_counts
    want = {
        ("UPDATE_CA_CERTIFICATE", "completed"): 1,
        ("REPLACE_DEFAULT_POLICY_VERSION", "completed"): 1,
        ("UPDATE_DEVICE_CERTIFICATE", "completed"): done,
        ("UPDATE_DEVICE_CERTIFICATE", "canceled"): canceled,
        ("ADD_THINGS_TO_THING_GROUP", "skipped"): 1,
    }
    for (kind, result), n in want.items():
        got = value(samples, name, type=kind, result=result)
        assert got == n, (kind, result, got, n)
    # The audit task's, the alarm's and the undo's.
    assert value(samples, name, type="ENABLE_IOT_LOGGING", result="completed") == 1
    assert value(samples, name, type="ENABLE_IOT_LOGGING", result="successful") == 2
    print("ok metrics", flush=True)


def main(endpoint, ca, port, workdir, log_file):
    f = Fleet(endpoint, ca, port, workdir, "unused", workdir)
    cases = [("ca", case_ca), ("policy", case_policy),
             ("logging", lambda f: case_logging(f, log_file)), ("cancel", case_cancel)]
    failed, results = run_cases(f, cases, "cases")
    # The counters are checked against what the cancel case counted.
    metrics = [("metrics", lambda f: check_metrics(f, endpoint, results.get("cancel")))]
    failed |= run_cases(f, metrics, "metrics")[0]
    if not failed:
        print("actions: ok", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
