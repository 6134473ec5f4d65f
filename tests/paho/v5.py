"""MQTT 5.0 with paho: shared subscriptions, no-local, subscription
identifiers, overlapping subscriptions, retain handling, retain as
published, properties passed through, message and session expiry, will
delay, topic aliases from the client, assigned client IDs, server limits."""

import time

from harness import V5, Client, PacketTypes, check, props, unique

t = unique("t")
pub = Client()

# Assigned client ID and the server's limits in CONNACK.
anon = Client("")
ack = anon.connack_props
check(getattr(ack, "AssignedClientIdentifier", "").startswith("auto-"), "empty client id gets an assigned one")
check(getattr(ack, "ReceiveMaximum", 0) > 0 and getattr(ack, "MaximumPacketSize", 0) > 0,
      "CONNACK carries Receive Maximum and Maximum Packet Size")
anon.disconnect()

# Shared subscription: each message to exactly one member, spread across them.
a, b = Client(), Client()
a.subscribe(f"$share/g/{t}/s", qos=1)
b.subscribe(f"$share/g/{t}/s", qos=1)
for i in range(10):
    pub.publish(f"{t}/s", str(i).encode(), qos=1)
ga = [m.payload for m in a.recv_all()]
gb = [m.payload for m in b.recv_all()]
check(sorted(ga + gb, key=int) == [str(i).encode() for i in range(10)], "shared group: every message once")
check(len(ga) == 5 and len(gb) == 5, f"shared group: round-robin ({len(ga)}/{len(gb)})")

# No local.
nl = Client()
nl.subscribe(f"{t}/nl", qos=1, no_local=True)
nl.publish(f"{t}/nl", b"mine", qos=1)
check(nl.recv(timeout=0.7) is None, "no-local: own message not delivered")
pub.publish(f"{t}/nl", b"theirs", qos=1)
m = nl.recv()
check(m is not None and m.payload == b"theirs", "no-local: others' messages delivered")

# Overlapping subscriptions: one copy, highest QoS, every identifier.
ov = Client()
ov.subscribe(f"{t}/o/+", qos=0, sub_id=7)
ov.subscribe(f"{t}/o/#", qos=1, sub_id=9)
pub.publish(f"{t}/o/x", b"ov", qos=1)
got = ov.recv_all()
check(len(got) == 1, f"overlapping subscriptions deliver one copy ({len(got)})")
m = got[0]
check(m.qos == 1, "at the highest granted QoS")
check(sorted(getattr(m.properties, "SubscriptionIdentifier", [])) == [7, 9], "carrying every subscription identifier")

# Properties passed through.
p = props(PacketTypes.PUBLISH, ResponseTopic=f"{t}/reply", CorrelationData=b"\x01\x02",
          ContentType="text/plain", UserProperty=[("k", "v"), ("k", "w")], PayloadFormatIndicator=1)
pp = Client()
pp.subscribe(f"{t}/props", qos=1)
pub.publish(f"{t}/props", b"hello", qos=1, properties=p)
m = pp.recv()
mp = m.properties
check(mp.ResponseTopic == f"{t}/reply" and mp.CorrelationData == b"\x01\x02", "response topic and correlation data passed through")
check(mp.ContentType == "text/plain" and mp.UserProperty == [("k", "v"), ("k", "w")], "content type and user properties (order, repeats) kept")

# Retain handling and retain as published.
pub.publish(f"{t}/ret", b"kept", qos=1, retain=True)
r0 = Client()
r0.subscribe(f"{t}/ret", qos=1, rh=0)
check(r0.recv() is not None, "retain handling 0 sends retained")
r0.subscribe(f"{t}/ret", qos=1, rh=0)
check(r0.recv() is not None, "retain handling 0 sends again on resubscribe")
r1 = Client()
r1.subscribe(f"{t}/ret", qos=1, rh=1)
check(r1.recv() is not None, "retain handling 1 sends on a new subscription")
r1.subscribe(f"{t}/ret", qos=1, rh=1)
check(r1.recv(timeout=0.7) is None, "retain handling 1 does not send on an existing one")
r2 = Client()
r2.subscribe(f"{t}/ret", qos=1, rh=2)
check(r2.recv(timeout=0.7) is None, "retain handling 2 never sends")
rap = Client()
rap.subscribe(f"{t}/rap", qos=1, rap=True)
norap = Client()
norap.subscribe(f"{t}/rap", qos=1)
pub.publish(f"{t}/rap", b"x", qos=1, retain=True)
check(rap.recv().retain, "retain as published keeps the flag")
check(not norap.recv().retain, "without it the flag is cleared")
pub.publish(f"{t}/rap", b"", qos=1, retain=True)

# Message expiry: an expired retained message is not delivered; the rest of
# the interval is forwarded.
pub.publish(f"{t}/exp", b"short", qos=1, retain=True,
            properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
pub.publish(f"{t}/exp2", b"long", qos=1, retain=True,
            properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=100))
time.sleep(1.5)
e = Client()
e.subscribe(f"{t}/exp", qos=1)
check(e.recv(timeout=0.7) is None, "expired retained message not delivered")
e.subscribe(f"{t}/exp2", qos=1)
m = e.recv()
check(m is not None and 0 < m.properties.MessageExpiryInterval <= 99, "remaining expiry interval forwarded")
pub.publish(f"{t}/exp2", b"", qos=1, retain=True)

# Topic alias from the client.
al = Client()
al.subscribe(f"{t}/alias", qos=1)
pub.publish(f"{t}/alias", b"one", qos=1, properties=props(PacketTypes.PUBLISH, TopicAlias=3))
pub.publish("", b"two", qos=1, properties=props(PacketTypes.PUBLISH, TopicAlias=3))
got = [(m.topic, m.payload) for m in al.recv_all()]
check(got == [(f"{t}/alias", b"one"), (f"{t}/alias", b"two")], f"client topic alias resolved: {got}")

# Session expiry: kept within the interval, gone after it.
cid = unique("sess")
s = Client(cid, clean=False, connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=2))
s.subscribe(f"{t}/se", qos=1)
s.disconnect()
pub.publish(f"{t}/se", b"while away", qos=1)
s = Client(cid, clean=False, connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=2))
check(s.session_present, "session present within its expiry interval")
m = s.recv()
check(m is not None and m.payload == b"while away", "queued message delivered after reconnect")
s.disconnect()
time.sleep(3)
s = Client(cid, clean=False, connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=2))
check(not s.session_present, "session gone after its expiry interval")
s.disconnect()

# Will delay: cancelled by a reconnect in time, published otherwise.
watch = Client()
watch.subscribe(f"{t}/wd", qos=1)
wid = unique("will")
will = {"topic": f"{t}/wd", "payload": b"late", "qos": 1,
        "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=2)}
exp = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
w = Client(wid, clean=False, will=will, connect_props=exp)
w.drop()
time.sleep(0.5)
w = Client(wid, clean=False, connect_props=exp)
check(watch.recv(timeout=2.5) is None, "delayed will cancelled by a reconnect")
w.disconnect()
w = Client(wid, clean=False, will=will, connect_props=exp)
w.drop()
check(watch.recv(timeout=0.8) is None, "delayed will not sent before its delay")
m = watch.recv(timeout=4)
check(m is not None and m.payload == b"late", "delayed will sent after its delay")
# DISCONNECT with reason 0x04 sends the will.
w = Client(wid, clean=True, will={"topic": f"{t}/wd", "payload": b"asked", "qos": 1})
w.disconnect(reason=4)
m = watch.recv()
check(m is not None and m.payload == b"asked", "DISCONNECT 0x04 publishes the will")

# A will delay longer than the session: sent when the session ends.
w = Client(unique("short"), clean=True, will={"topic": f"{t}/wd", "payload": b"session over", "qos": 1,
           "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=30)},
           connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=1))
w.drop()
check(watch.recv(timeout=0.5) is None, "will waits for the session to end")
m = watch.recv(timeout=3)
check(m is not None and m.payload == b"session over", "will sent at session end (before its 30 s delay)")

# Topics starting with $ are not matched by a leading wildcard.
wild = Client()
wild.subscribe("#", qos=0)
wild.subscribe("+/dollar", qos=0)
dollar = Client()
dollar.subscribe("$test/#", qos=0)
pub.publish("$test/dollar", b"d", qos=1)
m = dollar.recv()
check(m is not None and m.topic == "$test/dollar", "$ topic matched by an explicit filter")
got = [m.topic for m in wild.recv_all()]
check("$test/dollar" not in got, f"$ topic not matched by # or +/...: {got}")

# PUBACK says when nobody was subscribed.
info = pub.c.publish(f"{t}/nobody", b"x", qos=1)
info.wait_for_publish(timeout=10)
check(info.is_published(), "publish with no subscribers still acknowledged")

print("all ok")
