"""Steady traffic for tests/ml_detect.rs: DEVICES registered things on
mutual TLS (fleet.py) each publishing 3 messages a second, until WORKDIR/stop
appears or 90 s pass. When WORKDIR/attack appears, dev-0 sends one burst of
300 messages (prints "attacked"); when WORKDIR/attack-all appears, every
device sends 300 at once (prints "attacked all"), interleaved so that a
period boundary cannot split the fleet's burst between devices. Prints
"ready" once every device is connected.

Usage: ml_fleet.py ENDPOINT CA_FILE TLS_PORT WORKDIR DEVICES
"""

import os
import sys
import time

from fleet import Fleet


def main(endpoint, ca, port, workdir, devices):
    f = Fleet(endpoint, ca, port, workdir, "unused", workdir)
    fleet = [f.device(f"dev-{i}").connect() for i in range(int(devices))]
    print("ready", flush=True)
    attacked = attacked_all = False
    deadline = time.time() + 90
    while time.time() < deadline and not os.path.exists(os.path.join(workdir, "stop")):
        tick = time.time()
        if not attacked and os.path.exists(os.path.join(workdir, "attack")):
            fleet[0].publish("ml/burst", n=300)
            attacked = True
            print("attacked", flush=True)
        if not attacked_all and os.path.exists(os.path.join(workdir, "attack-all")):
            for _ in range(30):
                for d in fleet:
                    d.publish("ml/burst", n=10)
            attacked_all = True
            print("attacked all", flush=True)
        for d in fleet:
            d.publish("ml/steady", n=3)
        time.sleep(max(0.0, 1.0 - (time.time() - tick)))
    for d in fleet:
        d.disconnect()
    print("ml fleet: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
