"""Device Defender metrics reports end to end (spec §13 cases 9, 17-24,
the report halves): real devices over mutual TLS (paho-mqtt, MQTT 5)
publish reports on $aws/things/{thing}/defender/metrics/{json,cbor} and
read the broker's answers on .../accepted and .../rejected; boto3
configures security profiles and custom metrics and reads
ListActiveViolations, ListViolationEvents and ListMetricValues.

Usage: reports.py ADMIN_URL CASE TLS_PORT CA_FILE WORK_DIR

Devices are made over the admin API (CreateKeysAndCertificate, signed by
the dev CA the listener trusts), each with a policy of its own; their keys
go to WORK_DIR. Prints "reports CASE: ok" when every check passed; the
first failed check exits non-zero. Every wait is bounded.

Self-contained on purpose (no tests/paho harness, no cbor2): the few CBOR
items a report and its reply need are encoded and decoded here.
"""

import datetime
import json
import os
import queue
import ssl
import struct
import sys
import time

import boto3
import paho.mqtt.client as mqtt
from botocore.exceptions import ClientError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ADMIN, CASE, PORT, CA_FILE, WORK = sys.argv[1:6]
PORT = int(PORT)
REGION = "us-east-1"
ACCOUNT = "123456789012"
ALL_THINGS = f"arn:aws:iot:{REGION}:{ACCOUNT}:all/things"
# Evaluation of reports is asynchronous ("upon receipt", on the defender's
# worker): results are polled for at most this long.
POLL = 5.0
# How long to listen before concluding that no message comes.
QUIET = 1.5

iot = boto3.client("iot", endpoint_url=ADMIN, region_name=REGION)


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def until(fn, limit=POLL, every=0.1):
    """Calls fn until it returns something truthy; the last result."""
    end = time.monotonic() + limit
    while True:
        got = fn()
        if got or time.monotonic() > end:
            return got
        time.sleep(every)


# ---------------------------------------------------------------- CBOR

def cbor(v):
    """RFC 8949 encoding of None, bools, ints, floats, str, bytes, lists
    and dicts (definite lengths only)."""

    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | ai]) + n.to_bytes(size, "big")
        raise ValueError(n)

    if v is None:
        return b"\xf6"
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, (list, tuple)):
        return head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(type(v))


def uncbor(data):
    """Decodes one CBOR item that must fill `data` exactly."""

    def item(i):
        ib = data[i]
        major, ai = ib >> 5, ib & 31
        i += 1
        if major == 7:
            simple = {20: False, 21: True, 22: None}
            if ai in simple:
                return simple[ai], i
            fmt = {25: ">e", 26: ">f", 27: ">d"}[ai]
            size = struct.calcsize(fmt)
            return struct.unpack(fmt, data[i:i + size])[0], i + size
        if ai < 24:
            n = ai
        elif ai <= 27:
            size = 1 << (ai - 24)
            n = int.from_bytes(data[i:i + size], "big")
            i += size
        else:
            raise ValueError(f"indefinite length at {i - 1}")
        if major == 0:
            return n, i
        if major == 1:
            return -1 - n, i
        if major == 2:
            return bytes(data[i:i + n]), i + n
        if major == 3:
            return data[i:i + n].decode(), i + n
        if major == 4:
            out = []
            for _ in range(n):
                x, i = item(i)
                out.append(x)
            return out, i
        if major == 5:
            out = {}
            for _ in range(n):
                k, i = item(i)
                out[k], i = item(i)
            return out, i
        return item(i)  # major 6: a tag, ignored

    value, end = item(0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} trailing bytes")
    return value


check(uncbor(cbor({"a": [1, -2, 1.5, "x", None, True, 1 << 40]})) == {"a": [1, -2, 1.5, "x", None, True, 1 << 40]}, "the CBOR helpers round-trip")


# ------------------------------------------------------------- devices

def policy(thing_var=True, report_for=(), replies_of=(), wide=False):
    """A device policy: connect as its own thing, publish its own reports
    (and those of `report_for`), subscribe to and receive its own replies
    (and those of `replies_of`). `wide`: any $aws/things/ topic, and
    publishing there with RETAIN (iot:RetainPublish)."""
    arn = "arn:aws:iot:*:*:"
    me = "${iot:Connection.Thing.ThingName}" if thing_var else None
    things = [t for t in (me,) if t] + list(report_for)
    readers = [t for t in (me,) if t] + list(replies_of)
    pub = [f"{arn}topic/$aws/things/{t}/defender/metrics/{f}" for t in things for f in ("json", "cbor")]
    sub = [f"{arn}topicfilter/$aws/things/{t}/defender/metrics/{f}/*" for t in readers for f in ("json", "cbor")]
    recv = [f"{arn}topic/$aws/things/{t}/defender/metrics/{f}/*" for t in readers for f in ("json", "cbor")]
    if wide:
        pub, sub, recv = [f"{arn}topic/$aws/things/*"], [f"{arn}topicfilter/$aws/things/*"], [f"{arn}topic/$aws/things/*"]
    statements = [{"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}client/${{iot:Connection.Thing.ThingName}}"}]
    actions = [("iot:Publish", pub), ("iot:Subscribe", sub), ("iot:Receive", recv)]
    if wide:
        actions.append(("iot:RetainPublish", pub))
    for action, res in actions:
        if res:
            statements.append({"Effect": "Allow", "Action": action, "Resource": res})
    return {"Version": "2012-10-17", "Statement": statements}


def make_device(name, doc):
    """A registered thing with a certificate from CreateKeysAndCertificate
    and `doc` attached as its policy; the PEM paths."""
    iot.create_thing(thingName=name)
    keys = iot.create_keys_and_certificate(setAsActive=True)
    cert = os.path.join(WORK, f"{name}.pem")
    key = os.path.join(WORK, f"{name}.key")
    with open(cert, "w") as f:
        f.write(keys["certificatePem"])
    with open(key, "w") as f:
        f.write(keys["keyPair"]["PrivateKey"])
    os.chmod(key, 0o600)
    iot.create_policy(policyName=f"{name}-policy", policyDocument=json.dumps(doc))
    iot.attach_policy(policyName=f"{name}-policy", target=keys["certificateArn"])
    iot.attach_thing_principal(thingName=name, principal=keys["certificateArn"])
    return cert, key


class Device:
    """A paho MQTT 5 client over mutual TLS whose messages land in a queue."""

    def __init__(self, name, doc=None):
        self.name = name
        cert, key = make_device(name, doc or policy())
        self.messages = queue.Queue()
        self.events = queue.Queue()
        self.acks = {}
        self.subacks = {}
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=CA_FILE, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = lambda cl, u, f, rc, p: self.events.put(("connack", rc.value))
        c.on_disconnect = lambda cl, u, f, rc, p: self.events.put(("disconnect", rc.value))
        c.on_publish = lambda cl, u, mid, rc, p: self.acks.__setitem__(mid, rc.value)
        c.on_subscribe = lambda cl, u, mid, rcs, p: self.subacks.__setitem__(mid, [r.value for r in rcs])
        c.on_message = lambda cl, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.c = c
        c.connect("127.0.0.1", PORT, keepalive=30)
        c.loop_start()
        try:
            event = self.events.get(timeout=10)
        except queue.Empty:
            event = None
        check(event == ("connack", 0), f"{name} connected over mutual TLS ({event})")

    def subscribe(self, *filters):
        _, mid = self.c.subscribe([(f, 1) for f in filters])
        until(lambda: mid in self.subacks, 10)
        check(self.subacks.get(mid) == [1] * len(filters), f"{self.name} subscribed to {filters}: {self.subacks.get(mid)}")

    def publish(self, topic, payload, qos=1, retain=False, alias=None):
        """Publishes and waits for the PUBACK; its reason code. With
        `alias`, the PUBLISH carries that Topic Alias (and `topic` may be
        empty, to use an alias set before)."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        properties = None
        if alias is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.TopicAlias = alias
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        until(lambda: info.mid in self.acks, 10, 0.01)
        check(info.mid in self.acks, f"{self.name}: PUBACK for {topic!r}")
        return self.acks[info.mid]

    def report(self, payload, thing=None, fmt="json", **publish):
        """Publishes a report for `thing` (default its own) and returns the
        reply: (topic, decoded body)."""
        thing = thing or self.name
        if fmt == "cbor" and not isinstance(payload, bytes):
            payload = cbor(payload)
        topic = f"$aws/things/{thing}/defender/metrics/{fmt}"
        if publish.pop("alias_only", False):
            topic = ""
        rc = self.publish(topic, payload, **publish)
        check(rc < 0x80, f"{self.name}: the report for {thing!r} is acknowledged (reason {rc:#x})")
        return self.reply()

    def reply(self, limit=10):
        try:
            topic, body = self.messages.get(timeout=limit)
        except queue.Empty:
            check(False, f"{self.name}: a reply within {limit} s")
        decoded = uncbor(body) if "/cbor/" in topic else json.loads(body)
        return topic, decoded

    def quiet(self, limit=QUIET):
        """Nothing arrives for `limit` seconds."""
        try:
            got = self.messages.get(timeout=limit)
        except queue.Empty:
            return True
        print(f"unexpected message: {got!r}", flush=True)
        return False

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def accepted(dev, topic_reply, thing, report_id, fmt="json"):
    topic, body = topic_reply
    check(topic == f"$aws/things/{thing}/defender/metrics/{fmt}/accepted", f"accepted on {topic!r}")
    now_ms = time.time() * 1000
    check(body.get("status") == "ACCEPTED" and body.get("thingName") == thing and body.get("reportId") == report_id, f"ACCEPTED reply echoes thing and report id: {body}")
    ts = body.get("timestamp")
    check(isinstance(ts, int) and abs(ts - now_ms) < 60_000, f"reply timestamp is epoch milliseconds: {ts}")
    check(set(body) == {"thingName", "reportId", "status", "timestamp"}, f"accepted reply has exactly the documented members: {sorted(body)}")


def rejected(topic_reply, thing, code, report_id=None, fmt="json", message=None):
    topic, body = topic_reply
    check(topic == f"$aws/things/{thing}/defender/metrics/{fmt}/rejected", f"rejected on {topic!r}")
    details = body.get("statusDetails") or {}
    check(body.get("status") == "REJECTED" and body.get("thingName") == thing and details.get("ErrorCode") == code, f"REJECTED {code}: {body}")
    check(body.get("reportId") == report_id, f"reportId {report_id} in the rejection: {body.get('reportId')}")
    check(isinstance(details.get("ErrorMessage"), str) and details["ErrorMessage"], "an ErrorMessage")
    if message is not None:
        check(details["ErrorMessage"] == message, f"ErrorMessage {details['ErrorMessage']!r}")
    check(isinstance(body.get("timestamp"), int), "a timestamp")


def header(rid):
    return {"report_id": rid, "version": "1.0"}


def stats(bytes_out, bytes_in=100, packets_out=10, packets_in=5):
    return {"network_stats": {"bytes_in": bytes_in, "bytes_out": bytes_out, "packets_in": packets_in, "packets_out": packets_out}}


# ----------------------------------------------------------------- API

T0 = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)


def metric_values(thing, metric):
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
    out = iot.list_metric_values(thingName=thing, metricName=metric, startTime=T0, endTime=end)
    return [d["value"] for d in out["metricDatumList"]]


def wait_values(thing, metric, n):
    """Waits until `thing` has at least n datapoints of `metric`; them."""
    return until(lambda: (lambda v: v if len(v) >= n else None)(metric_values(thing, metric))) or metric_values(thing, metric)


def active(thing):
    return iot.list_active_violations(thingName=thing)["activeViolations"]


def events(thing):
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
    return iot.list_violation_events(startTime=T0, endTime=end, thingName=thing)["violationEvents"]


CONFIGURED = [0.0]


def profile(name, behaviors=(), retain=(), target=ALL_THINGS):
    kw = {"securityProfileName": name, "behaviors": list(behaviors)}
    if retain:
        kw["additionalMetricsToRetainV2"] = [{"metric": m} for m in retain]
    iot.create_security_profile(**kw)
    iot.attach_security_profile(securityProfileName=name, securityProfileTargetArn=target)
    CONFIGURED[0] = time.monotonic()


def settled():
    """The defender follows the catalog every 100 ms: give it a second
    after the last configuration write before reporting."""
    left = CONFIGURED[0] + 1.0 - time.monotonic()
    if left > 0:
        time.sleep(left)


def later(since, interval=1.0):
    """Sleeps until `interval` (the throttle, plus a margin) has passed
    since `since`, so the next report of the same thing is not throttled."""
    left = since + interval + 0.3 - time.monotonic()
    if left > 0:
        time.sleep(left)


# --------------------------------------------------------------- cases

def case_9():
    """aws:listening-tcp-ports in-port-set [8888]: [8888, 443] is in alarm,
    an empty list clears it; [8888] alone conforms."""
    behavior = {"name": "only-8888", "metric": "aws:listening-tcp-ports", "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [8888]}}}
    profile("c9-ports", [behavior])
    dev = Device("c9-ports")
    dev.subscribe("$aws/things/c9-ports/defender/metrics/json/+")
    good = Device("c9-good")
    good.subscribe("$aws/things/c9-good/defender/metrics/json/+")
    settled()

    ports = lambda *ps: {"listening_tcp_ports": {"ports": [{"port": p, "interface": "eth0"} for p in ps], "total": len(ps)}}
    accepted(dev, dev.report({"header": header(901), "metrics": ports(8888, 443)}), "c9-ports", 901)
    t1 = time.monotonic()
    accepted(good, good.report({"header": header(902), "metrics": ports(8888)}), "c9-good", 902)

    got = until(lambda: active("c9-ports"))
    check(len(got) == 1, f"one active violation for c9-ports: {got}")
    v = got[0]
    check(v["securityProfileName"] == "c9-ports" and v["behavior"]["name"] == "only-8888", f"on the ports profile's behaviour: {v}")
    check(sorted(v["lastViolationValue"]["ports"]) == [443, 8888], f"lastViolationValue.ports is the reported set: {v['lastViolationValue']}")
    ev = events("c9-ports")
    check([e["violationEventType"] for e in ev] == ["in-alarm"], f"one in-alarm event: {ev}")
    check(sorted(ev[0]["metricValue"]["ports"]) == [443, 8888], f"in-alarm metricValue.ports: {ev[0]['metricValue']}")
    # Its datapoint (the behaviour's metric is stored) comes after its judgment.
    check(wait_values("c9-good", "aws:listening-tcp-ports", 1) == [{"ports": [8888]}], "c9-good's report was judged")
    check(active("c9-good") == [] and events("c9-good") == [], "[8888] alone conforms: no violation for c9-good")

    later(t1)
    accepted(dev, dev.report({"header": header(903), "metrics": {"listening_tcp_ports": {"ports": [], "total": 0}}}), "c9-ports", 903)
    check(until(lambda: active("c9-ports") == []), "an empty port list clears the violation")
    ev = until(lambda: (lambda e: e if len(e) >= 2 else None)(events("c9-ports"))) or events("c9-ports")
    kinds = [e["violationEventType"] for e in ev]
    check(kinds == ["in-alarm", "alarm-cleared"], f"events in-alarm then alarm-cleared: {kinds}")
    check(ev[0]["violationId"] == ev[1]["violationId"], "one violation id from alarm to clear")
    check(dev.quiet(0.5), "one reply per report")
    dev.close()
    good.close()


def case_17():
    """A long-name JSON report is accepted and its bytes_out is the
    aws:all-bytes-out datum, because a profile retains that metric; a
    metric nothing uses or retains is not kept."""
    profile("c17-retain", retain=["aws:all-bytes-out"])
    dev = Device("c17-T1")
    dev.subscribe("$aws/things/c17-T1/defender/metrics/json/accepted", "$aws/things/c17-T1/defender/metrics/json/rejected")
    settled()
    report = {
        "header": {"report_id": 1530304554, "version": "1.0"},
        "metrics": {
            "listening_tcp_ports": {"ports": [{"interface": "eth0", "port": 24800}, {"interface": "eth0", "port": 22}], "total": 2},
            "listening_udp_ports": {"ports": [{"interface": "eth0", "port": 5353}], "total": 1},
            "network_stats": {"bytes_in": 29358693495, "bytes_out": 26485035, "packets_in": 10013573555, "packets_out": 11382615},
            "tcp_connections": {"established_connections": {"connections": [{"local_interface": "eth0", "local_port": 80, "remote_addr": "192.168.0.1:8000"}], "total": 1}},
        },
    }
    accepted(dev, dev.report(report), "c17-T1", 1530304554)
    got = wait_values("c17-T1", "aws:all-bytes-out", 1)
    check(got == [{"count": 26485035}], f"ListMetricValues(c17-T1, aws:all-bytes-out) is bytes_out: {got}")
    check(metric_values("c17-T1", "aws:all-bytes-in") == [], "aws:all-bytes-in is neither used nor retained: not kept")
    check(dev.quiet(0.5), "one reply per report")
    dev.close()


def case_18():
    """A short-name CBOR report is accepted with a CBOR reply on
    .../cbor/accepted and its values kept; a malformed CBOR payload and a
    JSON payload on the cbor topic get CBOR rejections."""
    profile("c18-retain", retain=["aws:listening-tcp-ports", "aws:num-listening-tcp-ports", "aws:all-packets-out"])
    dev = Device("c18-cbor")
    dev.subscribe("$aws/things/c18-cbor/defender/metrics/cbor/accepted", "$aws/things/c18-cbor/defender/metrics/cbor/rejected")
    settled()

    rejected(dev.report(b"\xa1\x63hed", fmt="cbor"), "c18-cbor", "InvalidPayload", fmt="cbor", message="Malformed metrics report")
    rejected(dev.report(json.dumps({"hed": {"rid": 7, "v": "1.0"}}).encode(), fmt="cbor"), "c18-cbor", "InvalidPayload", fmt="cbor")
    report = {
        "hed": {"rid": 1530304555, "v": "1.0"},
        "met": {
            "tp": {"pts": [{"pt": 8888, "if": "eth0"}, {"pt": 443}], "t": 2},
            "ns": {"bi": 10, "bo": 20, "pi": 3, "po": 4},
            "tc": {"ec": {"cs": [{"rad": "[2001:db8::1]:443", "lp": 50000, "li": "eth0"}], "t": 1}},
        },
    }
    accepted(dev, dev.report(report, fmt="cbor"), "c18-cbor", 1530304555, fmt="cbor")
    got = wait_values("c18-cbor", "aws:listening-tcp-ports", 1)
    check(len(got) == 1 and sorted(got[0]["ports"]) == [443, 8888], f"ListMetricValues(aws:listening-tcp-ports): {got}")
    check(metric_values("c18-cbor", "aws:num-listening-tcp-ports") == [{"count": 2}], "aws:num-listening-tcp-ports is the total")
    check(metric_values("c18-cbor", "aws:all-packets-out") == [{"count": 4}], "aws:all-packets-out is ns.po")
    check(dev.quiet(0.5), "one reply per report")
    dev.close()


def case_19():
    """A custom number sent as an object instead of a one-element array is
    InvalidPayload, "Malformed metrics report", exactly as AWS documents;
    as an array it is accepted (a rejection does not start the throttle)
    and kept."""
    iot.create_custom_metric(metricName="my_custom_metric", metricType="number", clientRequestToken="c19")
    profile("c19-retain", retain=["my_custom_metric"])
    dev = Device("c19-custom")
    dev.subscribe("$aws/things/c19-custom/defender/metrics/json/accepted", "$aws/things/c19-custom/defender/metrics/json/rejected")
    settled()
    bad = {"header": header(1901), "custom_metrics": {"my_custom_metric": {"number": 0}}}
    rejected(dev.report(bad), "c19-custom", "InvalidPayload", report_id=1901, message="Malformed metrics report")
    good = {"header": header(1902), "custom_metrics": {"my_custom_metric": [{"number": 0}]}}
    # QoS 2: handed to the defender once, so one reply.
    accepted(dev, dev.report(good, qos=2), "c19-custom", 1902)
    got = wait_values("c19-custom", "my_custom_metric", 1)
    check(got == [{"number": 0}], f"ListMetricValues(my_custom_metric) after the accepted report only: {got}")
    check(dev.quiet(0.5), "one reply per report")
    dev.close()


def case_20():
    """Reports missing a required block are InvalidPayload and store
    nothing; none of them starts the throttle, so the next valid report is
    accepted at once."""
    profile("c20-retain", retain=["aws:all-bytes-out"])
    dev = Device("c20-missing")
    dev.subscribe("$aws/things/c20-missing/defender/metrics/json/accepted", "$aws/things/c20-missing/defender/metrics/json/rejected")
    settled()
    cases = [
        ("no header", {"metrics": stats(1)}, None),
        ("header without report_id", {"header": {"version": "1.0"}, "metrics": stats(2)}, None),
        ("header without version", {"header": {"report_id": 2003}, "metrics": stats(3)}, 2003),
        ("neither metrics nor custom_metrics", {"header": header(2004)}, 2004),
        ("not JSON", b"{\"header\": ", None),
        ("not an object", [1, 2], None),
    ]
    for what, payload, rid in cases:
        print(f"-- {what}", flush=True)
        rejected(dev.report(payload), "c20-missing", "InvalidPayload", report_id=rid, message="Malformed metrics report")
    # A Topic Alias is resolved before the report is recognised: set it
    # with the topic, then use it alone.
    print("-- with a topic alias", flush=True)
    rejected(dev.report({"header": header(2005)}, alias=1), "c20-missing", "InvalidPayload", report_id=2005)
    rejected(dev.report({"header": header(2006)}, alias=1, alias_only=True), "c20-missing", "InvalidPayload", report_id=2006)
    time.sleep(0.5)
    check(metric_values("c20-missing", "aws:all-bytes-out") == [], "rejected reports store nothing")
    accepted(dev, dev.report({"header": header(2010), "metrics": stats(42)}, alias=1, alias_only=True), "c20-missing", 2010)
    got = wait_values("c20-missing", "aws:all-bytes-out", 1)
    check(got == [{"count": 42}], f"only the accepted report's value is kept: {got}")
    check(dev.quiet(0.5), "one reply per report")
    dev.close()


def case_21():
    """report_min_interval_secs = 2: a second report of the same thing
    inside the interval is Throttled and its values dropped; another thing
    is not affected; after the interval the thing is accepted again."""
    profile("c21-retain", retain=["aws:all-bytes-out"])
    dev = Device("c21-T1")
    dev.subscribe("$aws/things/c21-T1/defender/metrics/json/+")
    other = Device("c21-T2")
    other.subscribe("$aws/things/c21-T2/defender/metrics/json/+")
    settled()
    accepted(dev, dev.report({"header": header(2101), "metrics": stats(100)}), "c21-T1", 2101)
    first = time.monotonic()
    reply = dev.report({"header": header(2102), "metrics": stats(999)})
    check(time.monotonic() - first < 2.0, "the second report went out within the interval")
    rejected(reply, "c21-T1", "Throttled", report_id=2102)
    accepted(other, other.report({"header": header(2151), "metrics": stats(7)}), "c21-T2", 2151)
    time.sleep(0.5)
    check(wait_values("c21-T1", "aws:all-bytes-out", 1) == [{"count": 100}], "the first report's value stands, the throttled one's is dropped")
    later(first, 2.0)
    accepted(dev, dev.report({"header": header(2103), "metrics": stats(300)}), "c21-T1", 2103)
    got = wait_values("c21-T1", "aws:all-bytes-out", 2)
    check(got == [{"count": 100}, {"count": 300}], f"after the interval the next report counts: {got}")
    check(wait_values("c21-T2", "aws:all-bytes-out", 1) == [{"count": 7}], "the throttle is per thing")
    check(dev.quiet(0.3) and other.quiet(0.3), "one reply per report")
    dev.close()
    other.close()


def case_22():
    """A thing segment of 129 bytes, or with U+0007, is rejected with
    InvalidThingName on the /rejected topic built from that segment (in
    the request's format); 128 bytes is accepted. Reports are consumed:
    a subscriber to the report topics sees none, retained or not."""
    prober = Device("c22-prober", policy(wide=True))
    prober.subscribe(
        "$aws/things/+/defender/metrics/json/accepted",
        "$aws/things/+/defender/metrics/json/rejected",
        "$aws/things/+/defender/metrics/cbor/rejected",
        "$aws/things/+/defender/metrics/json",
        "$aws/things/+/defender/metrics/cbor",
    )
    body = {"header": header(2201), "metrics": stats(1)}
    for thing in ("a" * 129, "\u00e9" * 64 + "a", "bad\u0007name"):
        print(f"-- {thing!r} ({len(thing.encode())} bytes)", flush=True)
        rejected(prober.report(body, thing=thing), thing, "InvalidThingName")
    rejected(prober.report(body, thing="bad\u0007name", fmt="cbor"), "bad\u0007name", "InvalidThingName", fmt="cbor")
    edge = "c22-" + "b" * 124
    check(len(edge.encode()) == 128, "a 128-byte name")
    accepted(prober, prober.report(body, thing=edge, retain=True), edge, 2201)
    check(prober.quiet(0.5), "one reply per report, and no report is routed")
    prober.subscribe(f"$aws/things/{edge}/defender/metrics/json")
    check(prober.quiet(0.5), "a report published with RETAIN is not retained")
    prober.close()


def case_23():
    """Thing-1 may report on behalf of Thing-2 (its policy allows Thing-2's
    topic): the metrics are Thing-2's. Thing-3, whose policy does not allow
    Thing-4's topic, is refused (PUBACK 0x87): no reply, nothing kept."""
    profile("c23-retain", retain=["aws:all-bytes-out"])
    t1 = Device("c23-Thing-1", policy(report_for=["c23-Thing-2"], replies_of=["c23-Thing-2"]))
    t1.subscribe("$aws/things/c23-Thing-2/defender/metrics/json/accepted", "$aws/things/c23-Thing-2/defender/metrics/json/rejected")
    iot.create_thing(thingName="c23-Thing-2")
    t3 = Device("c23-Thing-3")
    t4 = Device("c23-Thing-4")
    t4.subscribe("$aws/things/c23-Thing-4/defender/metrics/json/+")
    settled()

    accepted(t1, t1.report({"header": header(2301), "metrics": stats(2323)}, thing="c23-Thing-2"), "c23-Thing-2", 2301)
    got = wait_values("c23-Thing-2", "aws:all-bytes-out", 1)
    check(got == [{"count": 2323}], f"the metrics are attributed to c23-Thing-2: {got}")
    check(metric_values("c23-Thing-1", "aws:all-bytes-out") == [], "c23-Thing-1 has none")

    rc = t3.publish("$aws/things/c23-Thing-4/defender/metrics/json", json.dumps({"header": header(2302), "metrics": stats(4444)}))
    check(rc == 0x87, f"c23-Thing-3's report for c23-Thing-4 is refused by its policy (reason {rc:#x})")
    check(t4.quiet() and t3.quiet(0.1), "and nobody gets a reply")
    check(metric_values("c23-Thing-4", "aws:all-bytes-out") == [], "nothing is kept for c23-Thing-4")
    # The refusal is not a lasting one: c23-Thing-4 reports for itself.
    accepted(t4, t4.report({"header": header(2303), "metrics": stats(4)}), "c23-Thing-4", 2303)
    check(wait_values("c23-Thing-4", "aws:all-bytes-out", 1) == [{"count": 4}], "c23-Thing-4's own report is kept")
    for d in (t1, t3, t4):
        d.close()


def case_24():
    """Custom metrics through reports: a defined `number` metric is kept
    and alarms on its behaviour; a `string-list` value with characters
    outside [A-Za-z:_-/.] ("bad value!") is accepted but not kept, and so
    is a value of the wrong type; a report naming an undefined metric is
    accepted; a defined metric nothing uses or retains is not kept."""
    iot.create_custom_metric(metricName="batteryPercentage", metricType="number", clientRequestToken="c24-a")
    iot.create_custom_metric(metricName="apps", metricType="string-list", clientRequestToken="c24-b")
    iot.create_custom_metric(metricName="temperature", metricType="number", clientRequestToken="c24-c")
    behavior = {"name": "battery-ok", "metric": "batteryPercentage", "criteria": {"comparisonOperator": "greater-than", "value": {"number": 20}}}
    profile("c24-battery", [behavior], retain=["apps"])
    try:
        iot.delete_custom_metric(metricName="batteryPercentage")
        check(False, "a custom metric in use cannot be deleted")
    except ClientError as e:
        check(e.response["Error"]["Code"] == "InvalidRequestException", "a custom metric in use cannot be deleted (400)")
    names = [p["name"] for p in iot.list_security_profiles(metricName="batteryPercentage")["securityProfileIdentifiers"]]
    check(names == ["c24-battery"], f"ListSecurityProfiles(metricName=batteryPercentage): {names}")
    dev = Device("c24-sensor")
    dev.subscribe("$aws/things/c24-sensor/defender/metrics/json/+")
    settled()

    def cm(battery, apps=None, **more):
        out = {"batteryPercentage": [battery]}
        if apps is not None:
            out["apps"] = [{"string_list": apps}]
        out.update(more)
        return out

    accepted(dev, dev.report({"header": header(2401), "custom_metrics": cm({"number": 80}, ["good-app", "a:b/c_d.e"], undefinedMetric=[{"number": 1}], temperature=[{"number": 21.5}])}), "c24-sensor", 2401)
    t = time.monotonic()
    check(wait_values("c24-sensor", "batteryPercentage", 1) == [{"number": 80}], "batteryPercentage 80 is kept")
    check(metric_values("c24-sensor", "apps") == [{"strings": ["good-app", "a:b/c_d.e"]}], "a valid string list is kept")
    check(metric_values("c24-sensor", "temperature") == [], "a defined metric no profile uses or retains is not kept")
    time.sleep(0.3)
    check(active("c24-sensor") == [], "80 is normal (greater-than 20): no violation")

    later(t)
    accepted(dev, dev.report({"header": header(2402), "custom_metrics": cm({"number": 10}, ["bad value!"])}), "c24-sensor", 2402)
    t = time.monotonic()
    got = until(lambda: active("c24-sensor"))
    check(len(got) == 1 and got[0]["behavior"]["name"] == "battery-ok", f"batteryPercentage 10 is in alarm: {got}")
    check(got[0]["lastViolationValue"] == {"number": 10}, f"lastViolationValue.number: {got[0].get('lastViolationValue')}")
    check(wait_values("c24-sensor", "batteryPercentage", 2) == [{"number": 80}, {"number": 10}], "both battery values are kept")
    check(metric_values("c24-sensor", "apps") == [{"strings": ["good-app", "a:b/c_d.e"]}], '"bad value!" was accepted but not kept')

    later(t)
    # The wrong type for apps (a number) is dropped too; the battery value is judged.
    accepted(dev, dev.report({"header": header(2403), "custom_metrics": {"batteryPercentage": [{"number": 55}], "apps": [{"number": 3}]}}), "c24-sensor", 2403)
    check(until(lambda: active("c24-sensor") == []), "batteryPercentage 55 clears the alarm")
    kinds = [e["violationEventType"] for e in (until(lambda: (lambda e: e if len(e) >= 2 else None)(events("c24-sensor"))) or [])]
    check(kinds == ["in-alarm", "alarm-cleared"], f"events: {kinds}")
    # Stored with the battery value, after the alarm book: wait for it first.
    check(wait_values("c24-sensor", "batteryPercentage", 3)[-1] == {"number": 55}, "the third battery value is kept")
    check(metric_values("c24-sensor", "apps") == [{"strings": ["good-app", "a:b/c_d.e"]}], "a value of the wrong type is not kept")
    check(dev.quiet(0.3), "one reply per report")
    dev.close()


CASES = {
    "9": case_9,
    "17": case_17,
    "18": case_18,
    "19": case_19,
    "20": case_20,
    "21": case_21,
    "22": case_22,
    "23": case_23,
    "24": case_24,
}

started = time.monotonic()
CASES[CASE]()
print(f"reports {CASE}: ok ({time.monotonic() - started:.1f} s)", flush=True)
