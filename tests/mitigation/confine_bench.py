"""Bench: how fast automatic mitigation confines devices. 20 devices
brute-force authorization in the same one-second period; each is
quarantined by the `quarantine` action (config/quarantine.md) when its
datapoint closes. Measured from the violation event's time (the close of
the violating datapoint's period), per device:

  (a) the automatic execution's end (executionEndDate), and
  (b) the first publish outside quarantine/{thing} refused: the device
      probes ok/probe at QoS 1 every 5 ms until a PUBACK says 0x87.

Prints p50/p99 (p99 of 20 is the slowest). Arguments:
ENDPOINT CA_FILE TLS_PORT WORKDIR QUARANTINE_POLICY_FILE [DEVICES]
"""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "defender"))
sys.path.insert(0, HERE)

from fleet import Fleet, wait_for  # noqa: E402
from mitigation import setup_quarantine  # noqa: E402

NOT_AUTHORIZED = 0x87


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def main(endpoint, ca, port, workdir, policy_file, n="20"):
    f = Fleet(endpoint, ca, port, workdir, "unused", workdir)
    setup_quarantine(f, policy_file, undo=False)
    devices = [f.device(f"bench-{i:02}", "ok-only", groups=["bf-devices"]).connect() for i in range(int(n))]
    refused_at = {}

    def probe(d):
        end = time.time() + 10
        while time.time() < end:
            if d.publish("ok/probe") == [NOT_AUTHORIZED]:
                refused_at[d.name] = time.time()
                return
            time.sleep(0.005)

    # Start just after a period boundary so every burst lands in one period.
    time.sleep(1.05 - time.time() % 1)
    bursts = [threading.Thread(target=lambda d=d: d.publish("bad/x", n=8)) for d in devices]
    for t in bursts:
        t.start()
    for t in bursts:
        t.join()
    probes = [threading.Thread(target=probe, args=(d,)) for d in devices]
    for t in probes:
        t.start()
    for t in probes:
        t.join()
    executed, refused = [], []
    for d in devices:
        ev = wait_for(f"{d.name}'s in-alarm event", lambda d=d: [
            e for e in f.events(d.name) if e["violationEventType"] == "in-alarm"])[0]
        closed = ev["violationEventTime"].timestamp()
        ex = wait_for(f"{d.name}'s automatic execution", lambda ev=ev: [
            e for e in f.iot.list_detect_mitigation_actions_executions(
                violationId=ev["violationId"])["actionsExecutions"] if e["status"] == "SUCCESSFUL"])[0]
        executed.append((ex["executionEndDate"].timestamp() - closed) * 1000)
        assert d.name in refused_at, f"{d.name}: no publish refused within 10 s"
        refused.append((refused_at[d.name] - closed) * 1000)
        d.disconnect()
    for label, xs in (("execution end", executed), ("first publish refused", refused)):
        print(f"confine {label}: p50 {percentile(xs, 50):.0f} ms, p99 {percentile(xs, 99):.0f} ms, "
              f"max {max(xs):.0f} ms over {len(xs)} devices (from the datapoint close)", flush=True)
    assert percentile(refused, 99) < 1000, "target: confined within 1 s"
    print("confine bench: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
