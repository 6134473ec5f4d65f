"""Defender writes for the disk-full test (tests/disk_full.rs).

  disk_full_profiles.py ENDPOINT fill PREFIX MAX
      creates security profiles PREFIX-0, PREFIX-1, ... (each large, so
      defender.redb must grow) until one is refused or MAX exist; prints
      "acked NAME" for each answered 200, then "refused NAME CODE".
  disk_full_profiles.py ENDPOINT retry NAME
      creates NAME, retrying for up to 20 s; prints "acked NAME".
  disk_full_profiles.py ENDPOINT list
      prints "profile NAME" for every security profile.

Credentials come from AWS_SHARED_CREDENTIALS_FILE.
"""

import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, role = sys.argv[1], sys.argv[2]


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# No retries: each refusal must show.
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
iot = boto3.client("iot", endpoint_url=endpoint, region_name="us-east-1", config=cfg)


def create(name):
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


if role == "fill":
    prefix, most = sys.argv[3], int(sys.argv[4])
    for i in range(most):
        name = f"{prefix}-{i}"
        try:
            create(name)
        except ClientError as e:
            say(f"refused {name} {e.response['Error']['Code']}")
            break
        say(f"acked {name}")
elif role == "retry":
    name = sys.argv[3]
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
    for page in iot.get_paginator("list_security_profiles").paginate():
        for p in page["securityProfileIdentifiers"]:
            say(f"profile {p['name']}")
