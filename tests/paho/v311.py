"""MQTT 3.1.1 with paho: QoS 0/1/2 both ways, retained, persistent session,
will on an abnormal end, empty client IDs."""

import time

import paho.mqtt.client as mqtt

from harness import V311, Client, check, unique

t = unique("t")

# QoS downgrade and delivery at every level.
sub = Client(protocol=V311)
check(sub.subscribe(f"{t}/q/#", qos=1)[0].value == 1, "SUBACK grants QoS 1")
pub = Client(protocol=V311)
for qos in (0, 1, 2):
    pub.publish(f"{t}/q/{qos}", f"m{qos}".encode(), qos=qos)
got = sorted((m.topic, m.qos, m.payload) for m in sub.recv_all())
check(got == [(f"{t}/q/0", 0, b"m0"), (f"{t}/q/1", 1, b"m1"), (f"{t}/q/2", 1, b"m2")],
      f"delivered at min(publish, granted) QoS: {got}")

# QoS 2 subscription receives QoS 2 exactly once.
sub2 = Client(protocol=V311)
sub2.subscribe(f"{t}/two", qos=2)
for i in range(20):
    pub.publish(f"{t}/two", str(i).encode(), qos=2)
got = [m.payload for m in sub2.recv_all()]
check(got == [str(i).encode() for i in range(20)], "20 QoS 2 messages, in order, once each")

# Retained: set, replace, read by a late subscriber, delete with empty payload.
pub.publish(f"{t}/r", b"old", qos=1, retain=True)
pub.publish(f"{t}/r", b"new", qos=1, retain=True)
late = Client(protocol=V311)
late.subscribe(f"{t}/r", qos=1)
m = late.recv()
check(m is not None and m.payload == b"new" and m.retain, "late subscriber gets the latest retained message with the retain flag")
pub.publish(f"{t}/r", b"", qos=1, retain=True)
later = Client(protocol=V311)
later.subscribe(f"{t}/r", qos=1)
check(later.recv(timeout=0.7) is None, "empty retained payload deletes it")

# A live subscriber receives a retained publish without the retain flag.
pub.publish(f"{t}/q/live", b"x", qos=1, retain=True)
m = sub.recv()
check(m is not None and not m.retain, "live delivery clears the retain flag")
pub.publish(f"{t}/q/live", b"", qos=1, retain=True)
sub.recv_all()

# Persistent session: offline messages are queued and delivered on return.
cid = unique("persist")
p = Client(cid, protocol=V311, clean=False)
p.subscribe(f"{t}/p", qos=1)
p.disconnect()
for i in range(5):
    pub.publish(f"{t}/p", f"off{i}".encode(), qos=1)
p = Client(cid, protocol=V311, clean=False)
check(p.session_present, "session present on return")
got = [m.payload for m in p.recv_all()]
check(got == [f"off{i}".encode() for i in range(5)], f"queued QoS 1 messages delivered in order: {got}")
p.disconnect()
# Clean session discards it.
p = Client(cid, protocol=V311, clean=True)
check(not p.session_present, "clean session starts fresh")
p.disconnect()

# Will message on an abnormal end, not on a clean DISCONNECT.
watcher = Client(protocol=V311)
watcher.subscribe(f"{t}/will", qos=1)
w = Client(protocol=V311, will={"topic": f"{t}/will", "payload": b"gone", "qos": 1})
w.drop()
m = watcher.recv()
check(m is not None and m.payload == b"gone", "will published when the connection drops")
w = Client(protocol=V311, will={"topic": f"{t}/will", "payload": b"gone2", "qos": 1})
w.disconnect()
check(watcher.recv(timeout=0.7) is None, "no will after a clean DISCONNECT")

# Empty client ID: accepted with clean session, refused without.
anon = Client("", protocol=V311, clean=True)
check(anon.reason == 0, "empty client id with clean session accepted")
anon.disconnect()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", protocol=V311, clean_session=True)
# paho refuses to send an empty id with clean_session=False itself, so send
# the CONNECT by hand.
import socket

s = socket.create_connection(("127.0.0.1", int(__import__("sys").argv[1])), timeout=5)
s.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x00, 0, 60, 0, 0]))
check(s.recv(4) == bytes([0x20, 2, 0, 2]), "empty client id without clean session refused with code 2")
s.close()

for cl in (sub, sub2, pub, late, later, watcher):
    cl.disconnect()
print("all ok")
