"""Mitigation end to end (spec section 13, cases 35-37, and automatic
quarantine) with boto3 against `wardmq serve`, real mutual-TLS devices
(paho, MQTT 5) and one-second datapoint periods.

Arguments: ENDPOINT CA_FILE TLS_PORT WORKDIR QUARANTINE_POLICY_FILE
"""

import hashlib
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "defender"))

from fleet import ACCOUNT, REGION, Device, Fleet, behavior, count, expect_error, run_cases, wait_for  # noqa: E402

ROLE = f"arn:aws:iam::{ACCOUNT}:role/wardmq"
SNS = f"arn:aws:sns:{REGION}:{ACCOUNT}:hook"


def action(f, name, params):
    return f.iot.create_mitigation_action(actionName=name, roleArn=ROLE, actionParams=params)


def accepted(codes):
    """PUBACK success: 0, or 0x10 (no matching subscribers)."""
    return all(c in (0, 0x10) for c in codes)


def wait_task(f, task_id, kind="audit"):
    if kind == "audit":
        get = lambda: f.iot.describe_audit_mitigation_actions_task(taskId=task_id)  # noqa: E731
        return wait_for(f"task {task_id}", lambda: (lambda t: t if t["taskStatus"] != "IN_PROGRESS" else None)(get()))
    get = lambda: f.iot.describe_detect_mitigation_actions_task(taskId=task_id)["taskSummary"]  # noqa: E731
    return wait_for(f"task {task_id}", lambda: (lambda t: t if t["taskStatus"] != "IN_PROGRESS" else None)(get()))


def case_35(f):
    """Applicability and action validation; the actions CRUD."""
    # Two params, and logging DISABLED: 400.
    expect_error(
        "InvalidRequestException", 400, f.unchecked.create_mitigation_action, actionName="two", roleArn=ROLE,
        actionParams={"updateDeviceCertificateParams": {"action": "DEACTIVATE"},
                      "publishFindingToSnsParams": {"topicArn": SNS}},
    )
    expect_error(
        "InvalidRequestException", 400, f.unchecked.create_mitigation_action, actionName="log", roleArn=ROLE,
        actionParams={"enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "DISABLED"}},
    )
    out = action(f, "deactivate", {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}})
    assert out["actionArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:mitigationaction/deactivate", out
    action(f, "notify", {"publishFindingToSnsParams": {"topicArn": SNS}})
    action(f, "log-debug", {"enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "DEBUG"}})
    expect_error("ResourceAlreadyExistsException", 409, action, f, "notify",
                 {"publishFindingToSnsParams": {"topicArn": SNS}})
    d = f.iot.describe_mitigation_action(actionName="deactivate")
    assert d["actionType"] == "UPDATE_DEVICE_CERTIFICATE" and d["roleArn"] == ROLE, d
    f.iot.update_mitigation_action(actionName="log-debug", actionParams={
        "enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "INFO"}})
    d = f.iot.describe_mitigation_action(actionName="log-debug")
    assert d["actionParams"]["enableIoTLoggingParams"]["logLevel"] == "INFO", d
    names = [a["actionName"] for a in f.iot.list_mitigation_actions(actionType="UPDATE_DEVICE_CERTIFICATE")["actionIdentifiers"]]
    assert names == ["deactivate"], names
    f.iot.delete_mitigation_action(actionName="log-debug")
    expect_error("ResourceNotFoundException", 404, f.iot.describe_mitigation_action, actionName="log-debug")
    # CONFLICTING_CLIENT_IDS_CHECK allows only PUBLISH_FINDING_TO_SNS.
    msg = expect_error(
        "InvalidRequestException", 400, f.iot.start_audit_mitigation_actions_task, taskId="t35",
        target={"auditTaskId": "0" * 32},
        auditCheckToActionsMapping={"CONFLICTING_CLIENT_IDS_CHECK": ["deactivate"]}, clientRequestToken="t35",
    )
    assert "PUBLISH_FINDING_TO_SNS" in msg, msg
    print("ok case 35", flush=True)


def case_36(f):
    """Order and failure on audit findings; a deactivated certificate cuts
    its live device within a second."""
    f.iot.update_account_audit_configuration(
        auditCheckConfigurations={"DEVICE_CERTIFICATE_SHARED_CHECK": {"enabled": True}})
    shared = []
    for name in ("s1", "s2"):
        d = f.device(name, "allow-all").connect()
        clone = Device(f, name + "-clone", d.cert, d.key).connect()
        shared.append((d, clone))
    task = f.iot.start_on_demand_audit_task(targetCheckNames=["DEVICE_CERTIFICATE_SHARED_CHECK"])["taskId"]
    wait_for("the audit", lambda: f.iot.describe_audit_task(taskId=task)["taskStatus"] == "COMPLETED")
    findings = f.iot.list_audit_findings(taskId=task)["findings"]
    assert len(findings) == 2, findings
    action(f, "to-missing-group", {"addThingsToThingGroupParams": {"thingGroupNames": ["NoSuchGroup"]}})
    f.iot.start_audit_mitigation_actions_task(
        taskId="t36", target={"auditTaskId": task},
        auditCheckToActionsMapping={"DEVICE_CERTIFICATE_SHARED_CHECK": ["to-missing-group", "deactivate"]},
        clientRequestToken="t36")
    t = wait_task(f, "t36")
    assert t["taskStatus"] == "FAILED", t
    stats = t["taskStatistics"]["DEVICE_CERTIFICATE_SHARED_CHECK"]
    assert stats["totalFindingsCount"] == 2 and stats["failedFindingsCount"] == 2, stats
    for fi in findings:
        ex = f.iot.list_audit_mitigation_actions_executions(taskId="t36", findingId=fi["findingId"])["actionsExecutions"]
        got = [(e["actionName"], e["status"]) for e in ex]
        assert got == [("to-missing-group", "FAILED"), ("deactivate", "SKIPPED")], got
        assert ex[0]["errorCode"] == "ResourceNotFoundException", ex[0]
    # The certificates are untouched (B skipped): the devices are still on.
    for d, c in shared:
        assert d.client.is_connected() and c.client.is_connected()
    expect_error("TaskAlreadyExistsException", 400, f.iot.start_audit_mitigation_actions_task, taskId="t36",
                 target={"auditTaskId": task},
                 auditCheckToActionsMapping={"DEVICE_CERTIFICATE_SHARED_CHECK": ["deactivate"]},
                 clientRequestToken="other")
    expect_error("InvalidRequestException", 400, f.iot.cancel_audit_mitigation_actions_task, taskId="t36")
    # Now [notify, deactivate] on one finding: both run; its devices are cut.
    first = findings[0]
    cert = first["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]
    victims = [p for p in shared if cert_id(f, p[0]) == cert][0]
    t0 = time.time()
    f.iot.start_audit_mitigation_actions_task(
        taskId="t36b", target={"findingIds": [first["findingId"]]},
        auditCheckToActionsMapping={"DEVICE_CERTIFICATE_SHARED_CHECK": ["notify", "deactivate"]},
        clientRequestToken="t36b")
    for d in victims:
        d._gone.wait(5)
    cut = time.time() - t0
    assert all(d._gone.is_set() for d in victims), "devices still connected"
    assert cut < 1.0, f"cut after {cut:.3f}s"
    t = wait_task(f, "t36b")
    assert t["taskStatus"] == "COMPLETED", t
    ex = f.iot.list_audit_mitigation_actions_executions(taskId="t36b", findingId=first["findingId"])["actionsExecutions"]
    assert [(e["actionName"], e["status"]) for e in ex] == [("notify", "COMPLETED"), ("deactivate", "COMPLETED")], ex
    assert f.iot.describe_certificate(certificateId=cert)["certificateDescription"]["status"] == "INACTIVE"
    listed = f.iot.list_audit_mitigation_actions_tasks(startTime=f.start, endTime=time.time() + 60, auditTaskId=task)
    # Both ran on that audit's findings.
    assert [x["taskId"] for x in listed["tasks"]] == ["t36", "t36b"], listed
    print(f"cut-ms: {cut * 1000:.0f}", flush=True)
    print("ok case 36", flush=True)


def cert_id(f, device):
    """certificateId: SHA-256 hex of the certificate's DER."""
    with open(device.cert) as fh:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(fh.read())).hexdigest()


def brute_force_profile(f, name, group, tags=None):
    b = behavior("authz", "aws:num-authorization-failures", count("less-than", 5, consecutiveDatapointsToAlarm=1,
                                                                  consecutiveDatapointsToClear=1))
    arn = f.iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
    kw = dict(securityProfileName=name, behaviors=[b])
    if tags:
        kw["tags"] = tags
    f.iot.create_security_profile(**kw)
    f.iot.attach_security_profile(securityProfileName=name, securityProfileTargetArn=arn)


def case_37(f):
    """Detect mitigation: limits, applicability, active violations only."""
    f.iot.create_thing_group(thingGroupName="Quarantine37")
    action(f, "q37", {"addThingsToThingGroupParams": {"thingGroupNames": ["Quarantine37"]}})
    tgt = {"securityProfileName": "p37", "behaviorName": "authz"}
    expect_error("InvalidRequestException", 400, f.iot.start_detect_mitigation_actions_task, taskId="d0",
                 target=tgt, actions=["deactivate"], clientRequestToken="d0")
    expect_error("InvalidRequestException", 400, f.unchecked.start_detect_mitigation_actions_task, taskId="d0",
                 target=tgt, actions=["q37"] * 6, clientRequestToken="d0")
    expect_error("InvalidRequestException", 400, f.unchecked.start_detect_mitigation_actions_task, taskId="d0",
                 target={"violationIds": [f"v-{i}" for i in range(26)]}, actions=["q37"], clientRequestToken="d0")
    brute_force_profile(f, "p37", "g37")
    bad = f.device("b37", "ok-only", groups=["g37"]).connect()
    good = f.device("c37", "ok-only", groups=["g37"]).connect()
    wait_for("b37 and c37 in alarm (0 failures is compliant; 6 is not)", lambda: (
        bad.publish("denied/x", n=6), f.active("b37"))[1], limit=10, every=1.1)
    f.iot.start_detect_mitigation_actions_task(taskId="d37", target=tgt, actions=["q37"],
                                               includeOnlyActiveViolations=True, clientRequestToken="d37")
    t = wait_task(f, "d37", "detect")
    assert t["taskStatus"] == "SUCCESSFUL", t
    ex = f.iot.list_detect_mitigation_actions_executions(taskId="d37")["actionsExecutions"]
    assert [(e["thingName"], e["status"]) for e in ex] == [("b37", "SUCCESSFUL")], ex
    members = f.iot.list_things_in_thing_group(thingGroupName="Quarantine37")["things"]
    assert members == ["b37"], members
    expect_error("TaskAlreadyExistsException", 400, f.iot.start_detect_mitigation_actions_task, taskId="d37",
                 target=tgt, actions=["q37"], clientRequestToken="again")
    bad.disconnect()
    good.disconnect()
    print("ok case 37", flush=True)


def setup_quarantine(f, policy_file, undo=True):
    """config/quarantine.md's setup: the Quarantine group with its policy,
    the `quarantine` action, and profile `bf` (brute force, on group
    bf-devices) running it automatically."""
    with open(policy_file) as fh:
        doc = fh.read()
    qarn = f.iot.create_thing_group(thingGroupName="Quarantine")["thingGroupArn"]
    f.iot.create_policy(policyName="Quarantine", policyDocument=doc)
    f.iot.attach_policy(policyName="Quarantine", target=qarn)
    action(f, "quarantine", {"addThingsToThingGroupParams": {"thingGroupNames": ["Quarantine"]}})
    tags = [{"Key": "wardmq:auto-mitigation", "Value": "quarantine"}]
    if undo:
        tags.append({"Key": "wardmq:undo-on-clear", "Value": "true"})
    brute_force_profile(f, "bf", "bf-devices", tags=tags)


def quarantine(f, policy_file):
    """A device brute-forcing authorization is quarantined automatically,
    can then publish only to quarantine/{thing}, and leaves quarantine
    when the alarm clears."""
    setup_quarantine(f, policy_file)
    tags = f.iot.list_tags_for_resource(resourceArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:securityprofile/bf")["tags"]
    assert {t["Key"] for t in tags} == {"wardmq:auto-mitigation", "wardmq:undo-on-clear"}, tags
    # Its own policy allows connecting and publishing under ok/.
    dev = f.device("mallory", "ok-only", groups=["bf-devices"]).connect()
    assert accepted(dev.publish("ok/hello"))
    # Brute force: 8 publishes its policy denies in one period.
    assert dev.publish("bad/x", n=8) == [0x87] * 8
    in_q = wait_for("mallory in quarantine", lambda: "mallory" in f.iot.list_things_in_thing_group(
        thingGroupName="Quarantine")["things"], limit=10)
    assert in_q
    assert dev.publish("ok/hello") == [0x87], "publish outside quarantine/ must be refused"
    assert accepted(dev.publish("quarantine/mallory")), "its quarantine topic stays open"
    ev = [e for e in f.events("mallory") if e["violationEventType"] == "in-alarm"][0]
    ex = wait_for("the automatic execution", lambda: [
        e for e in f.iot.list_detect_mitigation_actions_executions(violationId=ev["violationId"])["actionsExecutions"]
        if e["status"] == "SUCCESSFUL"])
    assert ex[0]["taskId"].startswith("auto-"), ex
    confined_ms = (ex[0]["executionEndDate"].timestamp() - ev["violationEventTime"].timestamp()) * 1000
    print(f"confined-ms: {confined_ms:.0f}", flush=True)
    # Calm again: the alarm clears and the undo takes it out.
    wait_for("mallory out of quarantine", lambda: "mallory" not in f.iot.list_things_in_thing_group(
        thingGroupName="Quarantine")["things"], limit=10)
    assert accepted(dev.publish("ok/hello"))
    dev.disconnect()
    print("ok quarantine", flush=True)


def main(endpoint, ca, port, workdir, policy_file):
    f = Fleet(endpoint, ca, port, workdir, "unused", workdir)
    status, _ = run_cases(f, [("35", case_35), ("36", case_36), ("37", case_37),
                              ("quarantine", lambda f: quarantine(f, policy_file))], "mitigation")
    return status


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
