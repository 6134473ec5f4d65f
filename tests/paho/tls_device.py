"""A device over mutual TLS with paho (MQTT 5).

  tls_device.py PORT CAFILE CERT KEY CLIENT_ID MODE

MODE "policy": checks that publishing and subscribing outside the policy are
refused with 0x87 while its own topics work, then exits.
MODE "hold": connects, prints "connected", then waits (up to 20 s) for the
broker to cut the connection and prints "cut REASON".
"""

import ssl
import sys
import time

from harness import Client, PacketTypes, check, props  # noqa: F401
import paho.mqtt.client as mqtt

port, cafile, cert, key, cid, mode = sys.argv[1:7]
port = int(port)

c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
c.tls_set(ca_certs=cafile, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
events = []
c.on_connect = lambda cl, u, f, rc, p: events.append(("connack", rc.value))
c.on_disconnect = lambda cl, u, f, rc, p: events.append(("disconnect", rc.value))
acks = {}
c.on_publish = lambda cl, u, mid, rc, p: acks.__setitem__(mid, rc.value)
subacks = {}
c.on_subscribe = lambda cl, u, mid, rcs, p: subacks.__setitem__(mid, [r.value for r in rcs])
got = []
c.on_message = lambda cl, u, m: got.append((m.topic, m.payload))
c.connect("127.0.0.1", port, keepalive=30)
c.loop_start()


def wait(cond, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


check(wait(lambda: events), "CONNACK received")
check(events[0] == ("connack", 0), f"connected over mutual TLS: {events[0]}")

if mode == "policy":
    _, mid = c.subscribe(f"{cid}/in", qos=1)
    check(wait(lambda: mid in subacks) and subacks[mid] == [1], "subscribe to its own topic granted")
    _, mid = c.subscribe("other/#", qos=1)
    check(wait(lambda: mid in subacks) and subacks[mid] == [0x87], "subscribe outside the policy refused with 0x87")
    info = c.publish(f"{cid}/in", b"mine", qos=1)
    check(wait(lambda: info.mid in acks) and acks[info.mid] in (0, 0x10), "publish to its own topic accepted")
    check(wait(lambda: got), "and delivered back to it")
    info = c.publish("other/topic", b"x", qos=1)
    check(wait(lambda: info.mid in acks) and acks[info.mid] == 0x87, "publish outside the policy refused with 0x87")
    c.disconnect()
    c.loop_stop()
elif mode == "hold":
    print("connected", flush=True)
    start = time.time()
    if wait(lambda: len(events) > 1, 20.0):
        print(f"cut {events[1][1]} after {time.time() - start:.3f}", flush=True)
    c.loop_stop()
print("all ok", flush=True)
