"""Monitoring end to end against `wardmq serve` with one-second datapoint
periods and `sys_interval = 1`: devices are registered things talking
MQTT 5 over mutual TLS (paho), the registry and Detect set up with boto3.

Usage: monitoring.py ADMIN_URL CA_FILE TLS_PORT WORKDIR metrics TOKEN
       monitoring.py ADMIN_URL CA_FILE TLS_PORT WORKDIR sys

metrics: /metrics (behind bearer TOKEN) parses with prometheus_client's
parser, and its counters move with MQTT traffic, a refused CONNECT, a
failed TLS handshake, an alarm, an ML model, a mitigation and a request
with an unknown key. The Grafana dashboard queries exactly the families
/metrics exposes. Prints "metrics: ok".

sys: a client allowed $SYS receives $SYS/broker/clients/connected, one
whose policy does not allow it receives nothing, and no client can
publish there. Prints "sys: ok".
"""

import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "defender"))

import boto3  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from fleet import ACCOUNT, REGION, Device, Fleet, behavior, count, policy, wait_for  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


def register(fleet, name, policy_name=None, document=None):
    """A thing with its own certificate and, if given, a policy."""
    if policy_name:
        fleet._policy(policy_name, document)
    out = fleet.iot.create_keys_and_certificate(setAsActive=True)
    cert = os.path.join(fleet.workdir, f"{name}.pem")
    key = os.path.join(fleet.workdir, f"{name}.key")
    with open(cert, "w") as f:
        f.write(out["certificatePem"])
    with open(key, "w") as f:
        f.write(out["keyPair"]["PrivateKey"])
    fleet.iot.create_thing(thingName=name)
    fleet.iot.attach_thing_principal(thingName=name, principal=out["certificateArn"])
    if policy_name:
        fleet.iot.attach_policy(policyName=policy_name, target=out["certificateArn"])
    return Device(fleet, name, cert, key)


class Inbox:
    """A connected device's received messages, by topic."""

    def __init__(self, device):
        self.lock = threading.Lock()
        self.messages = []
        self.subacks = []
        device.client.on_message = self._message
        device.client.on_subscribe = self._subscribe

    def _message(self, c, u, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def _subscribe(self, c, u, mid, reason_codes, props):
        with self.lock:
            self.subacks.append([r.value for r in reason_codes])

    def on(self, topic):
        with self.lock:
            return [m for m in self.messages if m[0] == topic]


def connack_of(device):
    """Connects and returns the CONNACK reason instead of asserting success."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device.name, protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=device.fleet.ca_file, certfile=device.cert, keyfile=device.key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    got = []
    c.on_connect = lambda cl, u, f, rc, p: got.append(rc.value)
    c.connect("127.0.0.1", device.fleet.tls_port, keepalive=30)
    c.loop_start()
    try:
        wait_for(f"{device.name}'s CONNACK", lambda: got, limit=10)
    finally:
        c.loop_stop()
        c.disconnect()
    return got[0]


def tls_without_certificate(fleet):
    """A handshake with no client certificate: the broker refuses it."""
    ctx = ssl.create_default_context(cafile=fleet.ca_file)
    ctx.check_hostname = False
    import socket

    with socket.create_connection(("127.0.0.1", fleet.tls_port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw) as s:
                # TLS 1.3: the server's refusal arrives on the first read.
                s.recv(1)
        except (ssl.SSLError, ConnectionError, OSError):
            pass


# ------------------------------------------------------------------ metrics


def scrape(admin, token):
    req = urllib.request.Request(admin + "/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200, r.status
        ctype = r.headers["Content-Type"]
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        text = r.read().decode()
    types, samples = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def check_unauthorized(admin):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        req = urllib.request.Request(admin + "/metrics", headers=headers)
        try:
            urllib.request.urlopen(req, timeout=5)
        except urllib.error.HTTPError as e:
            assert e.code == 401, e.code
            assert e.headers["x-amzn-ErrorType"] == "UnauthorizedException", dict(e.headers)
            continue
        raise AssertionError(f"/metrics answered without the token ({headers})")


def metrics(fleet, admin, token):
    check_unauthorized(admin)
    types, before = scrape(admin, token)
    want_types = {
        "wardmq_connections": "gauge",
        "wardmq_messages_received": "counter",
        "wardmq_bytes_sent": "counter",
        "wardmq_connects_refused": "counter",
        "wardmq_messages_dropped": "counter",
        "wardmq_publish_route_seconds": "histogram",
        "wardmq_queued_messages": "gauge",
        "wardmq_defender_evaluation_seconds": "histogram",
        "wardmq_defender_violation_events": "counter",
        "wardmq_defender_alerts": "counter",
    }
    for name, typ in want_types.items():
        assert types.get(name) == typ, (name, types.get(name))

    fleet.profile(
        "m-prof",
        "m-group",
        [
            behavior("chatty", "aws:num-messages-sent", count("greater-than", 2)),
            behavior("learned", "aws:num-messages-sent", {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}),
        ],
    )
    pub = fleet.device("m-pub", groups=["m-group"]).connect()
    sub = fleet.device("m-sub").connect()
    inbox = Inbox(sub)
    sub.client.subscribe("m/t", qos=1)
    wait_for("SUBACK", lambda: inbox.subacks, limit=5)
    assert pub.publish("m/t", n=10, size=100) == [0] * 10
    wait_for("10 messages at the subscriber", lambda: len(inbox.on("m/t")) >= 10, limit=5)

    refused = register(fleet, "m-nopolicy")
    rc = connack_of(refused)
    assert rc == 0x87, f"CONNACK {rc:#x} for a certificate without a policy"
    tls_without_certificate(fleet)

    wait_for("m-pub in alarm", lambda: [e for e in fleet.events("m-pub") if e["violationEventType"] == "in-alarm"], limit=10)

    def moved():
        _, after = scrape(admin, token)
        d = lambda n, **l: value(after, n, **l) - value(before, n, **l)  # noqa: E731
        checks = {
            "messages received": d("wardmq_messages_received_total") >= 10,
            "bytes received": d("wardmq_bytes_received_total") >= 1000,
            "messages sent": d("wardmq_messages_sent_total") >= 10,
            "bytes sent": d("wardmq_bytes_sent_total") >= 1000,
            "connections": value(after, "wardmq_connections") >= 2,
            "connects": d("wardmq_connects_total") >= 2,
            "refused": d("wardmq_connects_refused_total", reason="not_authorized", code="0x87") >= 1,
            "tls failures": total(after, "wardmq_tls_handshake_failures_total")
            - total(before, "wardmq_tls_handshake_failures_total")
            >= 1,
            "subscriptions": value(after, "wardmq_subscriptions") >= 1,
            "route latency": d("wardmq_publish_route_seconds_count") >= 10,
            "route +Inf": d("wardmq_publish_route_seconds_bucket", le="+Inf") >= 10,
            "evaluations": d("wardmq_defender_evaluations_total") >= 1,
            "evaluation duration": d("wardmq_defender_evaluation_seconds_count") >= 1,
            "datapoints": d("wardmq_defender_datapoints_total") >= 1,
            "violation": value(
                after, "wardmq_defender_violation_events_total", profile="m-prof", behavior="chatty", type="in-alarm"
            )
            >= 1,
            "alert sent": value(after, "wardmq_defender_alerts_total", sink="hook", result="sent") >= 1,
            # pub, sub, the refused CONNECT and the certificate-less handshake
            "accepted": d("wardmq_connections_accepted_total") >= 4,
            "sessions online": value(after, "wardmq_sessions_online") >= 2,
            "model pending": value(
                after, "wardmq_defender_model_status", profile="m-prof", behavior="learned", status="PENDING_BUILD"
            )
            == 1
            and value(after, "wardmq_defender_model_status", profile="m-prof", behavior="learned", status="ACTIVE")
            == 0,
            "build info": any(n == "wardmq_build_info" and v == 1 for (n, _), v in after.items()),
            "uptime": value(after, "wardmq_uptime_seconds") > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        return None if bad else after

    try:
        wait_for("counters to move", moved, limit=8, every=0.25)
    except AssertionError:
        _, after = scrape(admin, token)
        moved_names = {k[0] for k in after}
        raise AssertionError(f"counters did not move; samples: {sorted(moved_names)}\n{after}") from None
    mitigation_moves(fleet, admin, token, pub.name)
    _, before_disconnect = scrape(admin, token)
    pub.disconnect()
    sub.disconnect()
    wait_for(
        "two graceful disconnects",
        lambda: value(scrape(admin, token)[1], "wardmq_disconnects_total", kind="graceful")
        - value(before_disconnect, "wardmq_disconnects_total", kind="graceful")
        >= 2,
        limit=5,
    )
    auth_failure_moves(admin, token)
    types, _ = scrape(admin, token)
    check_dashboard(types)
    print("metrics: ok", flush=True)


def mitigation_moves(fleet, admin, token, thing):
    """A Detect mitigation task on the alarm counts exactly one successful
    ADD_THINGS_TO_THING_GROUP execution."""
    name = "wardmq_defender_mitigations_total"
    labels = dict(type="ADD_THINGS_TO_THING_GROUP", result="successful")
    _, before = scrape(admin, token)
    fleet.iot.create_thing_group(thingGroupName="m-quarantine")
    fleet.iot.create_mitigation_action(
        actionName="m-quarantine",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/unused",
        actionParams={"addThingsToThingGroupParams": {"thingGroupNames": ["m-quarantine"]}},
    )
    # The alarm may have cleared by now; its violation is still a target.
    violation = [e for e in fleet.events(thing) if e["violationEventType"] == "in-alarm"][0]["violationId"]
    fleet.iot.start_detect_mitigation_actions_task(
        taskId="m-task", target={"violationIds": [violation]}, actions=["m-quarantine"], clientRequestToken="m-task"
    )
    wait_for("the mitigation counted", lambda: value(scrape(admin, token)[1], name, **labels) > value(before, name, **labels), limit=10)
    time.sleep(0.5)  # a second execution would be counted by now
    _, after = scrape(admin, token)
    assert value(after, name, **labels) - value(before, name, **labels) == 1, [
        (k, v) for k, v in after.items() if k[0] == name
    ]


def auth_failure_moves(admin, token):
    """An API request signed with an unknown key counts once."""
    name = "wardmq_admin_auth_failures_total"
    _, before = scrape(admin, token)
    stranger = boto3.client(
        "iot", endpoint_url=admin, region_name=REGION, aws_access_key_id="AKIDUNKNOWN", aws_secret_access_key="nope"
    )
    try:
        stranger.list_things()
        raise AssertionError("an unknown key was accepted")
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
    _, after = scrape(admin, token)
    assert value(after, name) - value(before, name) == 1, (value(before, name), value(after, name))


def check_dashboard(types):
    """The Grafana dashboard imports (an input for the datasource, a schema
    version), queries only metrics the server exposes, and every family the
    server exposes has a panel, so the two cannot drift apart."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config", "grafana", "wardmq.json")
    with open(path) as f:
        dash = json.load(f)
    assert isinstance(dash.get("schemaVersion"), int), "schemaVersion"
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"], dash["__inputs"]
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs, "no queries"
    queried = set()
    for e in exprs:
        for name in re.findall(r"\bwardmq_[a-z_]+", e):
            family = re.sub(r"_(total|bucket|sum|count)$", "", name)
            assert family in types, f"dashboard query {e!r} uses {name}, which /metrics does not expose"
            queried.add(family)
    missing = sorted(set(types) - queried)
    assert not missing, f"/metrics families without a dashboard panel: {missing}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids {ids}"
    # Panels tile the 24-column grid without overlapping.
    cells = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, (p["title"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


# ---------------------------------------------------------------------- sys

CONNECTED = "$SYS/broker/clients/connected"


def sys_topics(fleet):
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}"
    ok_only = policy(
        [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{arn}:topicfilter/ok/*"},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{arn}:topic/ok/*"},
        ]
    )
    allowed = fleet.device("s-allowed").connect()
    denied = register(fleet, "s-denied", "s-ok-only", ok_only).connect()
    a, d = Inbox(allowed), Inbox(denied)
    denied.client.subscribe(CONNECTED, qos=0)
    denied.client.subscribe("#", qos=0)
    allowed.client.subscribe(CONNECTED, qos=0)
    wait_for("the denied SUBACKs", lambda: len(d.subacks) >= 2, limit=5)
    assert d.subacks[0] == [0x87], d.subacks

    # The retained value first (from before these clients), then a tick's.
    wait_for(f"{CONNECTED} at the allowed client", lambda: a.on(CONNECTED), limit=5)
    wait_for(
        f"{CONNECTED} counting both clients",
        lambda: any(p.isdigit() and int(p) >= 2 for _, p, _ in a.on(CONNECTED)),
        limit=5,
    )

    # Forged statistics: refused (0x87) even with iot:* and not delivered.
    rcs = allowed.publish(CONNECTED, n=1, size=3)
    assert rcs == [0x87], rcs
    info = allowed.client.publish("$SYS/broker/uptime", b"0 seconds", qos=1, retain=True)
    info.wait_for_publish(5)

    time.sleep(2.5)  # two more $SYS ticks
    assert not d.messages, f"the client without $SYS rights received {d.messages}"
    assert all(p != b"xxx" for _, p, _ in a.on(CONNECTED)), a.on(CONNECTED)
    fresh = fleet.device("s-fresh").connect()
    f = Inbox(fresh)
    fresh.client.subscribe("$SYS/#", qos=0)
    wait_for("the retained uptime", lambda: f.on("$SYS/broker/uptime"), limit=5)
    assert all(p != b"0 seconds" for _, p, _ in f.on("$SYS/broker/uptime")), f.on("$SYS/broker/uptime")
    for topic in ["$SYS/broker/version", "$SYS/broker/messages/received", "$SYS/broker/bytes/sent",
                  "$SYS/broker/subscriptions/count", "$SYS/broker/retained messages/count",
                  "$SYS/broker/load/messages/received/1min"]:
        wait_for(topic, lambda t=topic: f.on(t), limit=5)
    version = f.on("$SYS/broker/version")[0][1].decode()
    assert version.startswith("wardmq version "), version
    for dev in (allowed, denied, fresh):
        dev.disconnect()
    print("sys: ok", flush=True)


def main():
    admin, ca, port, workdir, mode = sys.argv[1:6]
    fleet = Fleet(admin, ca, port, workdir, "unused", workdir)
    if mode == "metrics":
        metrics(fleet, admin, sys.argv[6])
    elif mode == "sys":
        sys_topics(fleet)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
