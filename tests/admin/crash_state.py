"""Registry, alarm and audit roles for the crash tests (tests/durability.rs).

  crash_state.py ENDPOINT mutate PREFIX
      creates things, overly permissive policies, thing groups and group
      memberships named after PREFIX, printing "acked KIND NAME" once the
      API has answered 200 for each; stops at the first failure (the broker
      was killed) or after 200 rounds.
  crash_state.py ENDPOINT audit
      runs an on-demand audit of IOT_POLICY_OVERLY_PERMISSIVE_CHECK to
      completion; prints "audited TASK_ID".
  crash_state.py ENDPOINT state
      prints one JSON line with what must survive a crash: things, policies,
      memberships, completed audit tasks with their finding ids, active
      violations and violation events.

Credentials come from AWS_SHARED_CREDENTIALS_FILE.
"""

import datetime
import json
import sys
import time

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"
CHECK = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"
WIDE = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def client(endpoint):
    # No retries: a request that failed because the broker died must show
    # as a failure, not be replayed against the restarted one.
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    return boto3.client("iot", endpoint_url=endpoint, region_name="us-east-1", config=cfg)


def pages(iot, op, key, **args):
    # boto3's paginators know each operation's token (ListPolicies pages
    # with marker/nextMarker, the rest with nextToken).
    return [x for page in iot.get_paginator(op).paginate(**args) for x in page.get(key, [])]


def mutate(iot, prefix):
    try:
        for i in range(200):
            thing, policy, group = f"{prefix}-t{i}", f"{prefix}-p{i}", f"{prefix}-g{i}"
            iot.create_thing(thingName=thing)
            say(f"acked thing {thing}")
            iot.create_policy(policyName=policy, policyDocument=WIDE)
            say(f"acked policy {policy}")
            iot.create_thing_group(thingGroupName=group)
            say(f"acked group {group}")
            iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
            say(f"acked member {group}/{thing}")
    except Exception as e:  # the broker was killed under us
        say(f"stopped {type(e).__name__}")


def audit(iot):
    iot.update_account_audit_configuration(
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/audit",
        auditCheckConfigurations={CHECK: {"enabled": True}},
    )
    task = iot.start_on_demand_audit_task(targetCheckNames=[CHECK])["taskId"]
    end = time.time() + 15
    while iot.describe_audit_task(taskId=task)["taskStatus"] == "IN_PROGRESS":
        assert time.time() < end, "audit did not finish"
        time.sleep(0.1)
    say(f"audited {task}")


def state(iot):
    now = datetime.datetime.now(datetime.timezone.utc)
    tasks = pages(iot, "list_audit_tasks",
        "tasks",
        startTime=now - datetime.timedelta(days=1),
        endTime=now + datetime.timedelta(hours=1),
    )
    findings = {}
    for t in tasks:
        if t["taskStatus"] == "COMPLETED":
            fs = pages(iot, "list_audit_findings", "findings", taskId=t["taskId"])
            findings[t["taskId"]] = sorted(f["findingId"] for f in fs)
    groups = pages(iot, "list_thing_groups", "thingGroups")
    members = []
    for g in groups:
        for t in pages(iot, "list_things_in_thing_group", "things", thingGroupName=g["groupName"]):
            members.append(f"{g['groupName']}/{t}")
    events = pages(iot, "list_violation_events",
        "violationEvents",
        startTime=now - datetime.timedelta(days=1),
        endTime=now + datetime.timedelta(hours=1),
    )
    say(
        json.dumps(
            {
                "thing": [t["thingName"] for t in pages(iot, "list_things", "things")],
                "policy": [p["policyName"] for p in pages(iot, "list_policies", "policies")],
                "group": [g["groupName"] for g in groups],
                "member": members,
                "findings": findings,
                "active": [
                    v["violationId"] for v in pages(iot, "list_active_violations", "activeViolations")
                ],
                "events": [f"{e['violationId']} {e['violationEventType']}" for e in events],
            }
        )
    )


def main(endpoint, role, *args):
    iot = client(endpoint)
    {"mutate": mutate, "audit": audit, "state": state}[role](iot, *args)


main(*sys.argv[1:])
