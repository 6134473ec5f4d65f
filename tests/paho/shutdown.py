"""Client roles for the graceful-shutdown test (tests/shutdown.rs).

  shutdown.py PORT setup
      makes two persistent v5 sessions (expiry 3600) and leaves them
      offline: "watcher" subscribed to will/# and "reader" to data/# (QoS 1).
  shutdown.py PORT clients
      connects wills (all QoS 1): "v5-now" (v5, no delay, session expiry 0),
      "v5-later" (v5, Will Delay Interval 600, session expiry 3600),
      "v311" (3.1.1, clean session) and "bye" (v5, disconnects normally
      with 0x00, so its will must never be published); then publishes QoS 1
      to data/n, printing "acked N" per PUBACK; prints "ready" once all are
      connected and "disconnected CLIENT REASON" when the broker closes a
      connection; runs until killed.
  shutdown.py PORT collect
      resumes both persistent sessions and prints "got CLIENT TOPIC PAYLOAD"
      for every message in 3 s, then "done".
"""

import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

port = int(sys.argv[1])
role = sys.argv[2]
out = threading.Lock()


def say(line):
    with out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def client(cid, v5=True, expiry=None, will=None, will_delay=None, clean=True, on_message=None):
    proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    kwargs = {} if v5 else {"clean_session": clean}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=proto, **kwargs)
    if will:
        props = None
        if will_delay is not None:
            props = Properties(PacketTypes.WILLMESSAGE)
            props.WillDelayInterval = will_delay
        c.will_set(f"will/{cid}", will, qos=1, properties=props)
    if on_message:
        c.on_message = on_message
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.on_disconnect = lambda client, u, flags, rc, p: say(f"disconnected {cid} {rc.value}")
    args = {}
    if v5:
        props = Properties(PacketTypes.CONNECT)
        if expiry:
            props.SessionExpiryInterval = expiry
        args = {"clean_start": clean, "properties": props}
    c.connect("127.0.0.1", port, keepalive=30, **args)
    c.loop_start()
    assert connected.wait(10), f"{cid} did not connect"
    return c


if role == "setup":
    for cid, flt in [("watcher", "will/#"), ("reader", "data/#")]:
        c = client(cid, expiry=3600, clean=True)
        done = threading.Event()
        c.on_subscribe = lambda *a: done.set()
        c.subscribe(flt, qos=1)
        assert done.wait(10), f"{cid} not subscribed"
        c.disconnect()
        c.loop_stop()
    say("setup done")

elif role == "clients":
    client("v5-now", will="now")
    client("v5-later", expiry=3600, will="later", will_delay=600)
    client("v311", v5=False, will="v311")
    bye = client("bye", will="bye")
    bye.disconnect()
    bye.loop_stop()
    pub = client("publisher")
    # Never held across publish(): paho calls on_publish under its own
    # lock, which publish() takes too.
    lock = threading.Lock()
    pending, early = {}, {}

    def on_publish(c, u, mid, rc, p):
        with lock:
            n = pending.pop(mid, None)
            if n is None:  # the PUBACK beat the bookkeeping below
                early[mid] = rc.value
                return
        if rc.value < 0x80:
            say(f"acked {n}")

    pub.on_publish = on_publish
    say("ready")
    for n in range(100000):
        info = pub.publish("data/n", str(n), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            break
        with lock:
            rc = early.pop(info.mid, None)
            if rc is None:
                pending[info.mid] = n
        if rc is not None and rc < 0x80:
            say(f"acked {n}")
        time.sleep(0.002)
    time.sleep(60)

elif role == "collect":
    for cid in ["watcher", "reader"]:
        client(
            cid,
            expiry=3600,
            clean=False,
            on_message=lambda cl, u, m, cid=cid: say(f"got {cid} {m.topic} {m.payload.decode()}"),
        )
    time.sleep(3)
    say("done")
