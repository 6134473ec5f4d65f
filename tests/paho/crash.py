"""Client roles for the crash tests (tests/durability.rs).

  crash.py PORT subscribe CLIENT_ID   persistent v5 subscriber to crash/#
      (QoS 2); prints "got TOPIC PAYLOAD" for every message, reconnecting
      by itself when the broker goes away; runs until killed.
  crash.py PORT publish START COUNT   publishes crash/q1 (QoS 1) and
      crash/q2 (QoS 2) alternately; prints "acked TOPIC PAYLOAD" once the
      broker has acknowledged each; exits when done or when the broker dies.
"""

import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

port = int(sys.argv[1])
role = sys.argv[2]


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if role == "subscribe":
    cid = sys.argv[3]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600

    def on_connect(client, userdata, flags, rc, p):
        say(f"connected {int(flags.session_present)} {rc.value}")
        if rc.value == 0 and not flags.session_present:
            client.subscribe("crash/#", qos=2)

    c.on_connect = on_connect
    c.on_subscribe = lambda *a: say("subscribed")
    c.on_message = lambda client, u, m: say(f"got {m.topic} {m.payload.decode()}")
    c.connect("127.0.0.1", port, keepalive=5, clean_start=False, properties=props)
    c.loop_forever(retry_first_connection=True)

elif role == "publish":
    start, count = int(sys.argv[3]), int(sys.argv[4])
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{start}", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(20)
    # mid -> (topic, payload) of messages not yet acknowledged, and reason
    # codes of acknowledgements that came before their mid was recorded.
    # paho calls on_publish holding its own message lock, and publish()
    # takes that lock: so `lock` is never held across publish() (that
    # deadlocked the publisher under load).
    pending, early = {}, {}
    lock = threading.Lock()

    def report(topic, payload, code):
        if code < 0x80:
            say(f"acked {topic} {payload}")
        else:
            say(f"refused {topic} {payload} {code}")

    def on_publish(client, userdata, mid, rc, p):
        with lock:
            entry = pending.pop(mid, None)
            if entry is None:
                early[mid] = rc.value
        if entry is not None:
            report(*entry, rc.value)

    def on_disconnect(client, userdata, flags, rc, p):
        say(f"disconnected {rc}")
        gone.set()

    gone = threading.Event()
    c.on_publish = on_publish
    c.on_disconnect = on_disconnect
    c.connect("127.0.0.1", port, keepalive=5)
    c.loop_start()
    for i in range(start, start + count):
        if gone.is_set():
            break
        qos = 1 if i % 2 else 2
        topic = f"crash/q{qos}"
        info = c.publish(topic, str(i), qos=qos)
        with lock:
            code = early.pop(info.mid, None)
            if code is None:
                pending[info.mid] = (topic, str(i))
        if code is not None:
            report(topic, str(i), code)
        if i % 20 == 0:
            time.sleep(0.01)
    end = time.time() + 10
    while time.time() < end and not gone.is_set():
        with lock:
            if not pending:
                break
        time.sleep(0.05)
    c.loop_stop()
