"""Client roles for the disk-full test (tests/disk_full.rs), MQTT 5.

  disk_full.py PORT keep           persistent session "keeper" subscribes to
      demo-device/q/# (QoS 1), prints "subscribed" and goes offline, so
      every message for it must be stored.
  disk_full.py PORT drain SECONDS  resumes "keeper" and prints "got TOPIC"
      for every message until SECONDS pass with nothing new.
  disk_full.py PORT device CA CERT KEY   the demo device over mutual TLS;
      reads "pub TOPIC SIZE RETAIN" lines on stdin, publishes each QoS 1
      and prints "ack TOPIC CODE" (the PUBACK reason code, or "none" when no
      PUBACK came) before reading the next.
"""

import ssl
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


def client(cid):
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)


def keeper(clean):
    c = client("keeper")
    connected = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: connected.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", port, keepalive=30, clean_start=clean, properties=props)
    c.loop_start()
    if not connected.wait(10):
        say("no connack")
        sys.exit(1)
    return c


if role == "keep":
    c = keeper(True)
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    c.subscribe("demo-device/q/#", qos=1)
    if not subscribed.wait(10):
        say("no suback")
        sys.exit(1)
    c.disconnect()
    c.loop_stop()
    say("subscribed")

elif role == "drain":
    quiet = float(sys.argv[3])
    last = [time.time()]
    c = client("keeper")
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600

    def on_message(cl, u, m):
        last[0] = time.time()
        say(f"got {m.topic}")

    c.on_message = on_message
    c.connect("127.0.0.1", port, keepalive=30, clean_start=False, properties=props)
    c.loop_start()
    while time.time() - last[0] < quiet:
        time.sleep(0.1)
    c.disconnect()
    c.loop_stop()
    say("drained")

elif role == "device":
    cafile, cert, key = sys.argv[3:6]
    c = client("demo-device")
    c.tls_set(ca_certs=cafile, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    connected = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: connected.set()
    acks = {}
    lock = threading.Lock()

    def on_publish(cl, u, mid, rc, p):
        with lock:
            acks[mid] = rc.value

    c.on_publish = on_publish
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    if not connected.wait(10):
        say("no connack")
        sys.exit(1)
    say("connected")
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != "pub":
            break
        topic, size, retain = words[1], int(words[2]), words[3] == "1"
        # Distinct bytes per message, so nothing shares storage.
        payload = (topic.encode() * (size // len(topic) + 1))[:size]
        info = c.publish(topic, payload, qos=1, retain=retain)
        end = time.time() + 10
        code = "none"
        while time.time() < end:
            with lock:
                if info.mid in acks:
                    code = str(acks.pop(info.mid))
                    break
            time.sleep(0.005)
        say(f"ack {topic} {code}")
    c.disconnect()
    c.loop_stop()
