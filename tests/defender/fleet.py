"""Helpers for the end-to-end Detect tests: devices that are registered
things with their own certificates and talk MQTT 5 over mutual TLS
(paho), security profiles on thing groups, the violation and metric-value
APIs read with boto3, the webhook receiver's record (tests/rules_detect.rs
writes one file per request), and pacing to the defender's datapoint
periods.

The server runs with `datapoint_seconds = 1`: a period ends at every whole
wall-clock second and is judged right then; a behaviour's
`durationSeconds = 300` is one period. To put events into one period, the
tests wait until the previous period's datapoint is visible (so its close
is over), send, and check they finished before the next boundary.

Self-contained on purpose: only boto3 and paho-mqtt.
"""

import hashlib
import hmac
import json
import math
import os
import ssl
import sys
import threading
import time
import traceback

import boto3
import paho.mqtt.client as mqtt
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "123456789012"
SINK = "hook"
ALERTS = {
    "SNS": {
        "alertTargetArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{SINK}",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/x",
    }
}


def policy(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


ALLOW_ALL = policy([{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}])
# Connects, and publishes only under ok/: anything else is an
# authorization failure (aws:num-authorization-failures).
OK_ONLY = policy(
    [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/ok/*"},
    ]
)


class Slow(AssertionError):
    """The machine did not keep up with the one-second periods."""


def run_cases(fleet, cases, label):
    """Runs each (name, fn) of `cases` with `fleet`, goes on after a failure
    so one run reports every broken case; prints `LABEL: ok` when all pass.
    Returns the exit status and each case's result by name."""
    failed = False
    results = {}
    for name, fn in cases:
        try:
            results[name] = fn(fleet)
        except Exception:
            failed = True
            print(f"FAILED case {name}", flush=True)
            traceback.print_exc()
            sys.stdout.flush()
    if not failed:
        print(f"{label}: ok", flush=True)
    return (1 if failed else 0), results


def wait_for(what, fn, limit=8.0, every=0.05):
    """Polls `fn` until it returns something truthy; fails naming `what`
    and the last value after `limit` seconds."""
    end = time.time() + limit
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.time() > end:
            raise AssertionError(f"timed out after {limit}s waiting for {what}; last: {last!r}")
        time.sleep(every)


def expect_error(code, status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), (got, e)
        return e.response["Error"].get("Message", "")
    raise AssertionError(f"expected {code} ({status})")


def count(op, n, duration=300, **extra):
    return {"comparisonOperator": op, "value": {"count": n}, "durationSeconds": duration, **extra}


def behavior(name, metric, criteria, **extra):
    return {"name": name, "metric": metric, "criteria": criteria, **extra}


class Device:
    """A registered thing with its own certificate; client ID = thing name."""

    def __init__(self, fleet, name, cert, key):
        self.fleet = fleet
        self.name = name
        self.cert = cert
        self.key = key
        self.client = None
        self._lock = threading.Lock()
        self._acks = {}
        self._connack = None
        self._gone = threading.Event()

    def connect(self):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.name, protocol=mqtt.MQTTv5)
        c.tls_set(
            ca_certs=self.fleet.ca_file, certfile=self.cert, keyfile=self.key, tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        c.max_inflight_messages_set(100)
        self._connack = None
        self._gone.clear()
        self._acks = {}

        def on_connect(cl, u, flags, rc, p):
            self._connack = rc.value

        def on_publish(cl, u, mid, rc, p):
            with self._lock:
                self._acks[mid] = rc.value

        def on_disconnect(cl, u, flags, rc, p):
            self._gone.set()

        c.on_connect = on_connect
        c.on_publish = on_publish
        c.on_disconnect = on_disconnect
        c.connect("127.0.0.1", self.fleet.tls_port, keepalive=30)
        c.loop_start()
        self.client = c
        wait_for(f"{self.name}'s CONNACK", lambda: self._connack is not None, limit=10)
        assert self._connack == 0, f"{self.name}: CONNACK reason {self._connack:#x}"
        return self

    def publish(self, topic, n=1, size=10, qos=1):
        """Publishes `n` messages of `size` bytes and, at QoS 1, waits for
        every PUBACK; returns their reason codes (0x87: not authorized)."""
        payload = b"x" * size
        infos = [self.client.publish(topic, payload, qos=qos) for _ in range(n)]
        for i in infos:
            assert i.rc == mqtt.MQTT_ERR_SUCCESS, f"{self.name}: publish failed locally: {i.rc}"
        if qos == 0:
            for i in infos:
                i.wait_for_publish(5)
            return []
        mids = [i.mid for i in infos]

        def acked():
            with self._lock:
                return all(m in self._acks for m in mids)

        wait_for(f"{self.name}'s {n} PUBACKs on {topic}", acked, limit=5, every=0.005)
        with self._lock:
            return [self._acks.pop(m) for m in mids]

    def disconnect(self):
        self.client.disconnect()
        self._gone.wait(5)
        self.client.loop_stop()
        self.client = None


class Fleet:
    def __init__(self, endpoint, ca_file, tls_port, hook_dir, secret, workdir):
        self.iot = boto3.client("iot", endpoint_url=endpoint, region_name=REGION)
        # Without botocore's own checks, so the server's are the ones tested.
        self.unchecked = boto3.client(
            "iot", endpoint_url=endpoint, region_name=REGION, config=Config(parameter_validation=False)
        )
        self.ca_file = ca_file
        self.tls_port = int(tls_port)
        self.hook_dir = hook_dir
        self.secret = secret.encode()
        self.workdir = workdir
        self.start = time.time() - 5
        self._policies = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ registry

    def _policy(self, name, document):
        with self._lock:
            if name in self._policies:
                return
            self.iot.create_policy(policyName=name, policyDocument=document)
            self._policies.add(name)

    def device(self, name, policy_name="allow-all", groups=()):
        document = {"allow-all": ALLOW_ALL, "ok-only": OK_ONLY}[policy_name]
        self._policy(policy_name, document)
        out = self.iot.create_keys_and_certificate(setAsActive=True)
        cert = os.path.join(self.workdir, f"{name}.pem")
        key = os.path.join(self.workdir, f"{name}.key")
        with open(cert, "w") as f:
            f.write(out["certificatePem"])
        with open(key, "w") as f:
            f.write(out["keyPair"]["PrivateKey"])
        self.iot.create_thing(thingName=name)
        self.iot.attach_thing_principal(thingName=name, principal=out["certificateArn"])
        self.iot.attach_policy(policyName=policy_name, target=out["certificateArn"])
        for g in groups:
            self.iot.add_thing_to_thing_group(thingGroupName=g, thingName=name)
        return Device(self, name, cert, key)

    def profile(self, name, group, behaviors, alerts=True, **extra):
        """A security profile attached to a new thing group `group`."""
        arn = self.iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
        kw = dict(securityProfileName=name, behaviors=behaviors, **extra)
        if alerts:
            kw["alertTargets"] = ALERTS
        self.iot.create_security_profile(**kw)
        self.iot.attach_security_profile(securityProfileName=name, securityProfileTargetArn=arn)

    # ------------------------------------------------------------- results

    def events(self, thing, **filters):
        """ListViolationEvents of `thing` since the test started, oldest first."""
        out, token = [], None
        while True:
            kw = dict(startTime=self.start, endTime=time.time() + 60, thingName=thing, maxResults=250, **filters)
            if token:
                kw["nextToken"] = token
            page = self.iot.list_violation_events(**kw)
            out += page["violationEvents"]
            token = page.get("nextToken")
            if not token:
                return out

    def active(self, thing, **filters):
        out, token = [], None
        while True:
            kw = dict(thingName=thing, maxResults=250, **filters)
            if token:
                kw["nextToken"] = token
            page = self.iot.list_active_violations(**kw)
            out += page["activeViolations"]
            token = page.get("nextToken")
            if not token:
                return out

    def datums(self, thing, metric, dimension=None, operator=None, since=None):
        """ListMetricValues: [(epoch seconds, value)], oldest first."""
        out, token = [], None
        while True:
            kw = dict(
                thingName=thing,
                metricName=metric,
                startTime=since if since is not None else self.start,
                endTime=time.time() + 60,
                maxResults=250,
            )
            if dimension:
                kw["dimensionName"] = dimension
            if operator:
                kw["dimensionValueOperator"] = operator
            if token:
                kw["nextToken"] = token
            page = self.iot.list_metric_values(**kw)
            out += [(d["timestamp"].timestamp(), d["value"]) for d in page["metricDatumList"]]
            token = page.get("nextToken")
            if not token:
                return out

    def hooks(self):
        """Every webhook request received so far, oldest first, as
        (method, path, signature header, raw body). Written by the Rust
        receiver as NNNNN.req: request line, signature, body."""
        out = []
        for f in sorted(os.listdir(self.hook_dir)):
            if not f.endswith(".req"):
                continue
            with open(os.path.join(self.hook_dir, f), "rb") as fh:
                line, sig, body = fh.read().split(b"\n", 2)
            method, path = line.decode().split(" ", 1)
            out.append((method, path, sig.decode(), body))
        return out

    def alerts(self, thing):
        """The alerts the webhook received for `thing`: each checked for
        its signature and the SNS message shape (spec §7.5), parsed."""
        out = []
        for method, path, sig, body in self.hooks():
            want = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            assert method == "POST" and path == "/hooks/wardmq", (method, path)
            assert hmac.compare_digest(sig, want), f"bad signature {sig!r} for {body!r}"
            msg = json.loads(body)
            if msg.get("thingName") != thing:
                continue
            keys = set(msg)
            required = {
                "violationEventTime",
                "thingName",
                "behavior",
                "violationEventType",
                "violationId",
                "securityProfileName",
                "verificationState",
            }
            assert required <= keys <= required | {"metricValue"}, sorted(keys)
            assert isinstance(msg["violationEventTime"], int), msg
            out.append(msg)
        return out


def check_alerts_match(fleet, thing, events, limit=5.0):
    """The webhook received exactly `events` (ViolationEvents from the API)
    for `thing`, in order, with times in milliseconds."""

    def got():
        a = fleet.alerts(thing)
        return a if len(a) >= len(events) else None

    alerts = wait_for(f"{len(events)} webhook alerts for {thing}", got, limit=limit)
    assert len(alerts) == len(events), (alerts, events)
    for a, e in zip(alerts, events):
        assert a["violationEventType"] == e["violationEventType"], (a, e)
        assert a["violationId"] == e["violationId"], (a, e)
        assert a["securityProfileName"] == e["securityProfileName"], (a, e)
        assert a["behavior"]["name"] == e["behavior"]["name"], (a, e)
        assert a.get("metricValue") == e.get("metricValue"), (a, e)
        assert a["violationEventTime"] == round(e["violationEventTime"].timestamp() * 1000), (a, e)
    return alerts


def summary(events):
    """(behavior, type, count or cidrs) per event, for compact asserts."""
    out = []
    for e in events:
        v = e.get("metricValue")
        if v is not None:
            v = v.get("count", v.get("cidrs"))
        out.append((e["behavior"]["name"], e["violationEventType"], v))
    return out


class Pacer:
    """Consecutive one-second periods for a thing whose datapoints of
    `metric` are stored (the behaviour's metric or a retained one)."""

    def __init__(self, fleet, thing, metric, dimension=None, operator=None):
        self.fleet = fleet
        self.thing = thing
        self.metric = metric
        self.dimension = dimension
        self.operator = operator
        self.boundary = None
        self.windows = []

    def _closed(self, b):
        d = self.fleet.datums(self.thing, self.metric, self.dimension, self.operator, since=b)
        return d and d[-1][0] >= b

    def next(self):
        """Waits for the start of the next period: after its boundary and
        after the previous period's close is visible (datapoint stored,
        alarms judged). Returns the boundary; what is sent before
        `done()` lands in the period that ends a second later."""
        b = math.floor(time.time()) + 1 if self.boundary is None else self.boundary + 1
        now = time.time()
        if now > b + 0.5:
            raise Slow(f"{self.thing}: period after {b} started {now - b:.2f}s ago; windows so far {self.windows}")
        time.sleep(max(0.0, b + 0.02 - now))
        try:
            wait_for(f"{self.thing}: the period ending at {b} judged", lambda: self._closed(b), limit=0.6, every=0.02)
        except AssertionError as e:
            raise Slow(str(e)) from None
        if time.time() > b + 0.6:
            raise Slow(f"{self.thing}: period ending at {b} judged only {time.time() - b:.2f}s later")
        self.boundary = b
        self.windows.append(b)
        return b

    def done(self):
        """What was sent since `next()` is in the broker's counts, and the
        period has not ended yet."""
        late = time.time() - self.boundary
        if late > 0.95:
            raise Slow(f"{self.thing}: sending took until {late:.2f}s into the period")

    def datum_of(self, window_start, datums):
        """The datapoint of the period that began at `window_start`."""
        hits = [v for t, v in datums if window_start + 1 <= t < window_start + 1.9]
        return hits[0] if hits else None
