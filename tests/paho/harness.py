"""Small synchronous wrapper around paho-mqtt for the end-to-end tests.

Each scenario script takes the broker's port as its first argument, runs its
checks with `check(...)`, and exits non-zero on the first failure. Every wait
is bounded.
"""

import queue
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

TIMEOUT = 10.0
V5 = mqtt.MQTTv5
V311 = mqtt.MQTTv311


def port():
    return int(sys.argv[1])


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def props(kind, **kw):
    p = Properties(kind)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def unique(prefix="c"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Client:
    """A connected paho client whose received messages land in a queue."""

    def __init__(self, client_id=None, protocol=V5, clean=True, keepalive=30,
                 connect_props=None, will=None, auto_ack=True):
        self.client_id = client_id if client_id is not None else unique()
        self.protocol = protocol
        kw = {}
        if protocol != V5:
            kw["clean_session"] = clean
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=protocol, **kw)
        if not auto_ack:
            self.c.manual_ack_set(True)
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = {}
        self.unsubacks = {}
        self.disconnects = queue.Queue()
        self.lock = threading.Lock()
        self.c.on_connect = lambda c, u, flags, rc, p: self.connack.put((flags, rc, p))
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = lambda c, u, flags, rc, p: self.disconnects.put(rc)
        if will:
            self.c.will_set(**will)
        ckw = {"keepalive": keepalive}
        if protocol == V5:
            ckw["clean_start"] = clean
            ckw["properties"] = connect_props
        self.c.connect("127.0.0.1", port(), **ckw)
        self.c.loop_start()
        flags, rc, p = self.connack.get(timeout=TIMEOUT)
        self.session_present = flags.session_present
        self.reason = rc
        self.connack_props = p

    def _on_subscribe(self, c, u, mid, reasons, p):
        with self.lock:
            self.subacks[mid] = reasons

    def _on_unsubscribe(self, c, u, mid, reasons, p):
        with self.lock:
            self.unsubacks[mid] = reasons

    def _wait(self, table, mid):
        end = time.time() + TIMEOUT
        while time.time() < end:
            with self.lock:
                if mid in table:
                    return table.pop(mid)
            time.sleep(0.01)
        raise TimeoutError(f"no ack for mid {mid}")

    def subscribe(self, topic, qos=0, no_local=False, rap=False, rh=0, sub_id=None):
        if self.protocol == V5:
            opts = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=rap,
                                    retainHandling=rh)
            p = None
            if sub_id is not None:
                p = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id)
            rc, mid = self.c.subscribe(topic, options=opts, properties=p)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        return self._wait(self.subacks, mid)

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        return self._wait(self.unsubacks, mid)

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=TIMEOUT)
        assert info.is_published(), f"publish to {topic} not acknowledged"
        return info

    def recv(self, timeout=TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def recv_all(self, quiet=0.5):
        """Everything that arrives until `quiet` seconds pass with nothing."""
        out = []
        while True:
            m = self.recv(timeout=quiet)
            if m is None:
                return out
            out.append(m)

    def disconnect(self, reason=None, properties=None):
        if self.protocol == V5 and reason is not None:
            self.c.disconnect(reasoncode=mqtt.ReasonCode(PacketTypes.DISCONNECT, identifier=reason),
                              properties=properties)
        else:
            self.c.disconnect(properties=properties)
        self.c.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT (an abnormal end)."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            sock.close()
