"""Device Defender Audit against a live `wardmq serve`, driven by boto3 and
real mutual-TLS devices (paho-mqtt), as an operator would: spec section 13
cases 27-34 and 40.

Usage: boto3_audit.py ENDPOINT_URL TLS_PORT SERVER_CA_FILE CERTS_DIR
CERTS_DIR holds device certificates made by the Rust side (tests/audit.rs):
soon.pem (expires in 29 days), past.pem (expired), inactive.pem (expired,
registered INACTIVE), old.pem (valid since 365 days), young.pem (since 364
days) and, if openssl was available, rsa1024.pem.
Prints "notify-task: ID" for the audit whose notification the Rust side
checks, and "boto3 audit: ok" when every check passed; any failure raises.
"""

import datetime
import json
import os
import ssl
import sys
import tempfile
import time

import boto3
import paho.mqtt.client as mqtt
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
SUPPORTED = [
    "CA_CERTIFICATE_EXPIRING_CHECK",
    "CA_CERTIFICATE_KEY_QUALITY_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "DEVICE_CERTIFICATE_AGE_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK",
    "LOGGING_DISABLED_CHECK",
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
]


def expect_error(code, status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (got, got_status) == (code, status), (got, got_status, e)
        return e.response["Error"].get("Message", "")
    raise AssertionError(f"expected {code}")


def wait(cond, limit=15.0):
    end = time.time() + limit
    while time.time() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class Device:
    """A paho MQTT 5 client over mutual TLS that stays connected."""

    def __init__(self, port, cafile, cert, key, client_id):
        self.events = []
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.c.tls_set(
            ca_certs=cafile, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        self.c.on_connect = lambda cl, u, f, rc, p: self.events.append(("connack", rc.value))
        self.c.on_disconnect = lambda cl, u, f, rc, p: self.events.append(("disconnect", rc.value))
        # Taken over: stay down, so paho does not reconnect and take it back.
        self.c.reconnect_delay_set(min_delay=60, max_delay=120)
        self.c.connect("127.0.0.1", port, keepalive=60)
        self.c.loop_start()
        wait(lambda: self.events)
        assert self.events[0] == ("connack", 0), (client_id, self.events)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def run_audit(iot, checks):
    task_id = iot.start_on_demand_audit_task(targetCheckNames=checks)["taskId"]
    task = wait(
        lambda: (
            t
            if (t := iot.describe_audit_task(taskId=task_id))["taskStatus"] != "IN_PROGRESS"
            else None
        )
    )
    assert task["taskStatus"] == "COMPLETED", task
    assert task["taskType"] == "ON_DEMAND_AUDIT_TASK"
    findings = []
    token = None
    while True:
        args = {"taskId": task_id, "maxResults": 2}
        if token:
            args["nextToken"] = token
        page = iot.list_audit_findings(**args)
        findings += page["findings"]
        token = page.get("nextToken")
        if not token:
            break
    return task_id, task, findings


def of(findings, check):
    return [f for f in findings if f["checkName"] == check]


def cert_ids(findings, check):
    return sorted(
        f["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]
        for f in of(findings, check)
    )


def main(endpoint, tls_port, server_ca, certs_dir):
    tls_port = int(tls_port)
    iot = boto3.client("iot", endpoint_url=endpoint, region_name=REGION)
    tmp = tempfile.mkdtemp()

    # ---- case 27: configuration gates ----
    expect_error(
        "InvalidRequestException", 400, iot.update_account_audit_configuration,
        auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": False}},
    )
    msg = expect_error(
        "InvalidRequestException", 400, iot.update_account_audit_configuration,
        auditCheckConfigurations={"IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK": {"enabled": True}},
    )
    assert "role alias" in msg and "self-hosted" in msg, msg
    expect_error(
        "InvalidRequestException", 400, iot.update_account_audit_configuration,
        auditCheckConfigurations={
            "DEVICE_CERTIFICATE_AGE_CHECK": {
                "enabled": True, "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "29"}},
        },
    )
    checks = {c: {"enabled": True} for c in SUPPORTED}
    checks["DEVICE_CERTIFICATE_AGE_CHECK"]["configuration"] = {"CERT_AGE_THRESHOLD_IN_DAYS": "365"}
    iot.update_account_audit_configuration(
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/audit", auditCheckConfigurations=checks
    )
    described = iot.describe_account_audit_configuration()
    cfg = described["auditCheckConfigurations"]
    assert len(cfg) == 17, cfg.keys()
    assert all(cfg[c]["enabled"] for c in SUPPORTED)
    assert not cfg["AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK"]["enabled"]
    assert cfg["DEVICE_CERTIFICATE_AGE_CHECK"]["configuration"] == {
        "CERT_AGE_THRESHOLD_IN_DAYS": "365"}
    assert described["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/audit"
    expect_error(
        "InvalidRequestException", 400, iot.start_on_demand_audit_task,
        targetCheckNames=["UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK"],
    )

    # ---- case 28: scheduled audits ----
    expect_error(
        "InvalidRequestException", 400, iot.create_scheduled_audit,
        scheduledAuditName="monthly", frequency="MONTHLY",
        targetCheckNames=["LOGGING_DISABLED_CHECK"],
    )
    expect_error(
        "InvalidRequestException", 400, iot.create_scheduled_audit,
        scheduledAuditName="weekly", frequency="WEEKLY",
        targetCheckNames=["LOGGING_DISABLED_CHECK"],
    )
    expect_error(
        "InvalidRequestException", 400, iot.create_scheduled_audit,
        scheduledAuditName="monthly", frequency="MONTHLY", dayOfMonth="32",
        targetCheckNames=["LOGGING_DISABLED_CHECK"],
    )
    arn = iot.create_scheduled_audit(
        scheduledAuditName="monthly", frequency="MONTHLY", dayOfMonth="31",
        targetCheckNames=["LOGGING_DISABLED_CHECK"],
    )["scheduledAuditArn"]
    assert arn == f"{ARN}:scheduledaudit/monthly", arn
    expect_error(
        "ResourceAlreadyExistsException", 409, iot.create_scheduled_audit,
        scheduledAuditName="monthly", frequency="DAILY",
        targetCheckNames=["LOGGING_DISABLED_CHECK"],
    )
    iot.create_scheduled_audit(
        scheduledAuditName="weekly", frequency="WEEKLY", dayOfWeek="SUN",
        targetCheckNames=["DEVICE_CERTIFICATE_EXPIRING_CHECK"],
    )
    d = iot.describe_scheduled_audit(scheduledAuditName="monthly")
    assert (d["frequency"], d["dayOfMonth"], d["targetCheckNames"]) == (
        "MONTHLY", "31", ["LOGGING_DISABLED_CHECK"]), d
    iot.update_scheduled_audit(scheduledAuditName="monthly", dayOfMonth="LAST")
    assert iot.describe_scheduled_audit(scheduledAuditName="monthly")["dayOfMonth"] == "LAST"
    listed = iot.list_scheduled_audits()["scheduledAudits"]
    assert [s["scheduledAuditName"] for s in listed] == ["monthly", "weekly"], listed
    # A check a scheduled audit uses cannot be disabled.
    msg = expect_error(
        "InvalidRequestException", 400, iot.update_account_audit_configuration,
        auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": False}},
    )
    assert "monthly" in msg, msg
    iot.delete_scheduled_audit(scheduledAuditName="weekly")
    expect_error("ResourceNotFoundException", 404, iot.delete_scheduled_audit,
                 scheduledAuditName="weekly")
    # A DAILY audit runs on the day it is created.
    iot.create_scheduled_audit(
        scheduledAuditName="daily", frequency="DAILY", targetCheckNames=["LOGGING_DISABLED_CHECK"],
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    window = {"startTime": now - datetime.timedelta(hours=1),
              "endTime": now + datetime.timedelta(hours=1)}
    scheduled = wait(lambda: iot.list_audit_tasks(taskType="SCHEDULED_AUDIT_TASK", **window)["tasks"])
    task = iot.describe_audit_task(taskId=scheduled[0]["taskId"])
    assert task["scheduledAuditName"] == "daily", task
    assert task["taskType"] == "SCHEDULED_AUDIT_TASK"

    # ---- cases 29, 30: shared certificate, client ID takeover ----
    def provision(name):
        k = iot.create_keys_and_certificate(setAsActive=True)
        cert, key = os.path.join(tmp, f"{name}.pem"), os.path.join(tmp, f"{name}.key")
        with open(cert, "w") as f:
            f.write(k["certificatePem"])
        with open(key, "w") as f:
            f.write(k["keyPair"]["PrivateKey"])
        iot.attach_policy(policyName="audit-devices", target=k["certificateArn"])
        return k["certificateId"], cert, key

    iot.create_policy(
        policyName="audit-devices",
        policyDocument=policy({"Effect": "Allow", "Action": "iot:Connect",
                               "Resource": f"{ARN}:client/*"}),
    )
    shared_id, shared_cert, shared_key = provision("shared")
    other_id, other_cert, other_key = provision("other")
    a = Device(tls_port, server_ca, shared_cert, shared_key, "a")
    b = Device(tls_port, server_ca, shared_cert, shared_key, "b")
    # Sequential sessions of one certificate are fine.
    for cid in ["c", "d"]:
        Device(tls_port, server_ca, other_cert, other_key, cid).close()
    # Client ID x taken over by a second connection.
    x1 = Device(tls_port, server_ca, other_cert, other_key, "x")
    x2 = Device(tls_port, server_ca, other_cert, other_key, "x")
    wait(lambda: any(e[0] == "disconnect" for e in x1.events))
    assert ("disconnect", 0x8E) in x1.events, x1.events
    _, task, findings = run_audit(
        iot, ["DEVICE_CERTIFICATE_SHARED_CHECK", "CONFLICTING_CLIENT_IDS_CHECK"])
    assert cert_ids(findings, "DEVICE_CERTIFICATE_SHARED_CHECK") == [shared_id], findings
    shared = of(findings, "DEVICE_CERTIFICATE_SHARED_CHECK")[0]
    assert shared["severity"] == "CRITICAL"
    assert shared["nonCompliantResource"]["resourceType"] == "DEVICE_CERTIFICATE"
    assert shared["reasonForNonComplianceCode"] == "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES"
    assert len(shared["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]) == 64
    assert not shared["isSuppressed"]
    details = task["auditDetails"]["DEVICE_CERTIFICATE_SHARED_CHECK"]
    assert details["checkRunStatus"] == "COMPLETED_NON_COMPLIANT", details
    assert details["nonCompliantResourcesCount"] == 1, details
    conflict = of(findings, "CONFLICTING_CLIENT_IDS_CHECK")
    assert [f["nonCompliantResource"]["resourceIdentifier"]["clientId"] for f in conflict] == ["x"]
    assert conflict[0]["severity"] == "HIGH"
    assert conflict[0]["reasonForNonComplianceCode"] == "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS"
    assert conflict[0]["nonCompliantResource"]["resourceType"] == "CLIENT_ID"
    assert task["taskStatistics"]["nonCompliantChecks"] == 2, task["taskStatistics"]
    # Related resources of the shared finding: the two client IDs.
    related = iot.list_related_resources_for_audit_finding(findingId=shared["findingId"])
    assert sorted(r["resourceIdentifier"]["clientId"] for r in related["relatedResources"]) == [
        "a", "b"], related
    for d in (a, b, x2):
        d.close()
    x1.c.loop_stop()

    # ---- case 31: expiry, age, key quality ----
    def register(name, status="ACTIVE"):
        with open(os.path.join(certs_dir, f"{name}.pem")) as f:
            pem = f.read()
        return iot.register_certificate_without_ca(certificatePem=pem, status=status)[
            "certificateId"]

    soon, past, old, young = (register(n) for n in ["soon", "past", "old", "young"])
    inactive = register("inactive", "INACTIVE")
    weak = None
    if os.path.exists(os.path.join(certs_dir, "rsa1024.pem")):
        weak = register("rsa1024")
    _, task, findings = run_audit(
        iot,
        ["DEVICE_CERTIFICATE_EXPIRING_CHECK", "DEVICE_CERTIFICATE_AGE_CHECK",
         "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK"],
    )
    expiring = {f["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]:
                (f["reasonForNonComplianceCode"], f["severity"])
                for f in of(findings, "DEVICE_CERTIFICATE_EXPIRING_CHECK")}
    assert expiring.get(soon) == ("CERTIFICATE_APPROACHING_EXPIRATION", "MEDIUM"), expiring
    assert expiring.get(past) == ("CERTIFICATE_PAST_EXPIRATION", "MEDIUM"), expiring
    assert inactive not in expiring, "an INACTIVE certificate is not evaluated"
    aged = of(findings, "DEVICE_CERTIFICATE_AGE_CHECK")
    aged_ids = cert_ids(findings, "DEVICE_CERTIFICATE_AGE_CHECK")
    assert old in aged_ids and young not in aged_ids, aged_ids
    assert all(f["severity"] == "LOW" for f in aged)
    assert all(f["reasonForNonComplianceCode"] == "CERTIFICATE_PAST_AGE_THRESHOLD" for f in aged)
    if weak:
        weak_findings = [f for f in of(findings, "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK")
                         if f["nonCompliantResource"]["resourceIdentifier"][
                             "deviceCertificateId"] == weak]
        assert len(weak_findings) == 1, findings
        assert weak_findings[0]["severity"] == "CRITICAL"
        assert weak_findings[0]["reasonForNonComplianceCode"] == "CERTIFICATE_KEY_TOO_SHORT"

    # ---- case 32: policies ----
    iot.create_policy(policyName="p-broad", policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"}))
    iot.create_policy(policyName="p-scoped", policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
         "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}}))
    iot.create_policy(policyName="p-receive", policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/$aws/things/*"}))
    iot.create_policy(policyName="p-deny", policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": f"{ARN}:topicfilter/building/${{iot:Connection.Thing.ThingName}}/*"},
        {"Effect": "Deny", "Action": "iot:Subscribe",
         "Resource": f"{ARN}:topicfilter/building/control_room/#"}))
    _, task, findings = run_audit(
        iot, ["IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK"])
    broad = {f["nonCompliantResource"]["resourceIdentifier"]["policyVersionIdentifier"]["policyName"]: f
             for f in of(findings, "IOT_POLICY_OVERLY_PERMISSIVE_CHECK")}
    assert "p-broad" in broad and "p-scoped" not in broad and "p-receive" not in broad, broad.keys()
    f = broad["p-broad"]
    assert f["severity"] == "CRITICAL"
    assert f["reasonForNonComplianceCode"] == "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"
    assert f["nonCompliantResource"]["resourceType"] == "IOT_POLICY"
    assert f["nonCompliantResource"]["resourceIdentifier"]["policyVersionIdentifier"] == {
        "policyName": "p-broad", "policyVersionId": "1"}
    mis = of(findings, "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK")
    assert [(m["nonCompliantResource"]["resourceIdentifier"]["policyVersionIdentifier"][
        "policyName"], m["severity"], m["reasonForNonComplianceCode"]) for m in mis] == [
        ("p-deny", "MEDIUM", "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT")], mis

    # ---- case 33: suppressions ----
    ident = {"deviceCertificateId": shared_id}
    iot.create_audit_suppression(
        checkName="DEVICE_CERTIFICATE_SHARED_CHECK", resourceIdentifier=ident,
        suppressIndefinitely=True, description="lab bench", clientRequestToken="supp-1")
    expect_error(
        "ResourceAlreadyExistsException", 409, iot.create_audit_suppression,
        checkName="DEVICE_CERTIFICATE_SHARED_CHECK", resourceIdentifier=ident,
        suppressIndefinitely=True, clientRequestToken="supp-2")
    d = iot.describe_audit_suppression(
        checkName="DEVICE_CERTIFICATE_SHARED_CHECK", resourceIdentifier=ident)
    assert d["suppressIndefinitely"] is True and d["description"] == "lab bench", d
    _, task, findings = run_audit(iot, ["DEVICE_CERTIFICATE_SHARED_CHECK"])
    assert len(findings) == 1 and findings[0]["isSuppressed"] is True, findings
    details = task["auditDetails"]["DEVICE_CERTIFICATE_SHARED_CHECK"]
    assert details["checkRunStatus"] == "COMPLETED_COMPLIANT", details
    assert details["checkCompliant"] is True
    assert details["suppressedNonCompliantResourcesCount"] == 1, details
    tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    iot.update_audit_suppression(
        checkName="DEVICE_CERTIFICATE_SHARED_CHECK", resourceIdentifier=ident,
        suppressIndefinitely=False, expirationDate=tomorrow)
    listed = iot.list_audit_suppressions(checkName="DEVICE_CERTIFICATE_SHARED_CHECK")["suppressions"]
    assert len(listed) == 1 and "expirationDate" in listed[0], listed
    expect_error(
        "ResourceNotFoundException", 404, iot.describe_audit_suppression,
        checkName="CONFLICTING_CLIENT_IDS_CHECK", resourceIdentifier={"clientId": "x"})

    # ---- case 34: the notification of a finished audit ----
    iot.update_account_audit_configuration(auditNotificationTargetConfigurations={
        "SNS": {"targetArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:audits",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/notify", "enabled": True}})
    expect_error(
        "InvalidRequestException", 400, iot.update_account_audit_configuration,
        auditNotificationTargetConfigurations={"SNS": {
            "targetArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:nobody", "enabled": True}})
    task_id, task, findings = run_audit(iot, ["CONFLICTING_CLIENT_IDS_CHECK", "LOGGING_DISABLED_CHECK"])
    assert task["taskStatistics"]["nonCompliantChecks"] == 1, task
    print(f"notify-task: {task_id}", flush=True)
    iot.update_account_audit_configuration(auditNotificationTargetConfigurations={
        "SNS": {"targetArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:audits", "enabled": False}})

    # ---- case 40 and the other finding/task calls ----
    now = datetime.datetime.now(datetime.timezone.utc)
    window = {"startTime": now - datetime.timedelta(hours=1),
              "endTime": now + datetime.timedelta(minutes=5)}
    msg = expect_error("InvalidRequestException", 400, iot.list_audit_findings,
                       taskId=task_id, **window)
    assert "not both" in msg, msg
    expect_error("InvalidRequestException", 400, iot.list_audit_findings)
    expect_error("InvalidRequestException", 400, iot.list_audit_findings,
                 startTime=window["startTime"])
    in_window = iot.list_audit_findings(maxResults=250, **window)["findings"]
    assert any(f["findingId"] == shared["findingId"] for f in in_window)
    only_suppressed = iot.list_audit_findings(
        maxResults=250, listSuppressedFindings=True, **window)["findings"]
    assert only_suppressed and all(f["isSuppressed"] for f in only_suppressed)
    by_check = iot.list_audit_findings(
        checkName="CONFLICTING_CLIENT_IDS_CHECK", resourceIdentifier={"clientId": "x"},
        **window)["findings"]
    assert by_check and all(f["checkName"] == "CONFLICTING_CLIENT_IDS_CHECK" for f in by_check)
    one = iot.describe_audit_finding(findingId=shared["findingId"])["finding"]
    assert one["taskId"] == shared["taskId"] and one["checkName"] == shared["checkName"]
    expect_error("ResourceNotFoundException", 404, iot.describe_audit_finding, findingId="nope")
    tasks = iot.list_audit_tasks(taskType="ON_DEMAND_AUDIT_TASK", taskStatus="COMPLETED",
                                 **window)["tasks"]
    assert len(tasks) == 5, tasks
    expect_error("InvalidRequestException", 400, iot.cancel_audit_task, taskId=task_id)
    expect_error("ResourceNotFoundException", 404, iot.describe_audit_task, taskId="nope")
    iot.delete_audit_suppression(
        checkName="DEVICE_CERTIFICATE_SHARED_CHECK", resourceIdentifier=ident)
    assert iot.list_audit_suppressions()["suppressions"] == []

    # ---- case 27, end: deleting the configuration ----
    expect_error("InvalidRequestException", 400, iot.delete_account_audit_configuration)
    iot.delete_account_audit_configuration(deleteScheduledAudits=True)
    cfg = iot.describe_account_audit_configuration()["auditCheckConfigurations"]
    assert not any(c["enabled"] for c in cfg.values()), cfg
    assert iot.list_scheduled_audits()["scheduledAudits"] == []
    expect_error("InvalidRequestException", 400, iot.start_on_demand_audit_task,
                 targetCheckNames=["LOGGING_DISABLED_CHECK"])
    print("boto3 audit: ok", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
