"""Admin writes for the disk-full test (tests/disk_full.rs): things (the
registry, registry.redb) or security profiles (the defender,
defender.redb), each large so the file must grow.

  disk_full_writes.py ENDPOINT KIND fill PREFIX MAX
      creates PREFIX-0, PREFIX-1, ... until one is refused or MAX exist;
      prints "acked NAME" for each answered 200, then "refused NAME CODE".
  disk_full_writes.py ENDPOINT KIND retry NAME
      creates NAME, retrying for up to 20 s; prints "acked NAME".
  disk_full_writes.py ENDPOINT KIND list
      prints "KIND NAME" for every one.

KIND is "thing" or "profile". Credentials come from
AWS_SHARED_CREDENTIALS_FILE.
"""

import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, kind, role = sys.argv[1], sys.argv[2], sys.argv[3]


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# No retries: each refusal must show.
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
iot = boto3.client("iot", endpoint_url=endpoint, region_name="us-east-1", config=cfg)


def create_thing(name):
    # Three attributes at the 800-character value limit.
    attrs = {f"a{k}": (name + "-") * (800 // (len(name) + 1)) for k in range(3)}
    iot.create_thing(thingName=name, attributePayload={"attributes": attrs})


def create_profile(name):
    # A description at its 1000-character limit and 50 behaviours with
    # 128-character names: about 10 KB stored per profile.
    behaviors = [
        {
            "name": f"b{k}-".ljust(128, "x"),
            "metric": "aws:num-messages-sent",
            "criteria": {"comparisonOperator": "greater-than", "value": {"count": k}, "durationSeconds": 300},
        }
        for k in range(50)
    ]
    iot.create_security_profile(
        securityProfileName=name,
        securityProfileDescription=(name + "-") * (1000 // (len(name) + 1)),
        behaviors=behaviors,
    )


def names():
    if kind == "thing":
        for page in iot.get_paginator("list_things").paginate():
            yield from (t["thingName"] for t in page["things"])
    else:
        for page in iot.get_paginator("list_security_profiles").paginate():
            yield from (p["name"] for p in page["securityProfileIdentifiers"])


create = create_thing if kind == "thing" else create_profile

if role == "fill":
    prefix, most = sys.argv[4], int(sys.argv[5])
    for i in range(most):
        name = f"{prefix}-{i}"
        try:
            create(name)
        except ClientError as e:
            say(f"refused {name} {e.response['Error']['Code']}")
            break
        say(f"acked {name}")
elif role == "retry":
    name = sys.argv[4]
    end = time.time() + 20
    while True:
        try:
            create(name)
            break
        except ClientError:
            if time.time() > end:
                raise
            time.sleep(0.2)
    say(f"acked {name}")
elif role == "list":
    for name in names():
        say(f"{kind} {name}")
