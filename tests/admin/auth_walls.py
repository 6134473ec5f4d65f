"""No admin route without SigV4, and key guessing is throttled.

Usage: auth_walls.py ENDPOINT_URL
Credentials come from AWS_SHARED_CREDENTIALS_FILE. Prints
"auth walls: ok ROUTES" when every check passed; any failure raises.

1. Every operation of the AWS IoT model (botocore's), sent unsigned with
   its method and its path (parameters filled in), is answered 403
   MissingAuthenticationTokenException in the AWS error shape: a route
   wardmq serves cannot skip the signature check.
2. Ten requests signed with a wrong secret get 403 InvalidSignature; the
   eleventh, and then even a correctly signed one, get 429
   ThrottlingException with Retry-After.
"""

import json
import re
import sys
import urllib.error
import urllib.request

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
endpoint = sys.argv[1]


def unsigned(method, path):
    req = urllib.request.Request(endpoint + path, method=method, data=b"{}" if method in ("POST", "PUT", "PATCH") else None)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


model = botocore.session.get_session().get_service_model("iot")
walked = 0
for name in model.operation_names:
    http = model.operation_model(name).http
    path = re.sub(r"\{[^}]+\}", "x", http["requestUri"])
    status, headers, body = unsigned(http["method"], path)
    kind = {k.lower(): v for k, v in headers.items()}.get("x-amzn-errortype", "")
    assert status == 403 and kind.startswith("MissingAuthenticationTokenException"), (
        name, http["method"], path, status, kind, body)
    assert "message" in json.loads(body), (name, body)
    walked += 1

key_id = None
for line in open(__import__("os").environ["AWS_SHARED_CREDENTIALS_FILE"]):
    if line.startswith("aws_access_key_id"):
        key_id = line.split("=", 1)[1].strip()
no_retry = Config(retries={"total_max_attempts": 1, "mode": "standard"})
wrong = boto3.client("iot", endpoint_url=endpoint, region_name=REGION,
                     aws_access_key_id=key_id, aws_secret_access_key="x" * 40, config=no_retry)
right = boto3.client("iot", endpoint_url=endpoint, region_name=REGION, config=no_retry)


def error_of(client):
    try:
        client.list_things()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["ResponseMetadata"]["HTTPHeaders"]
    raise AssertionError("request succeeded")


right.list_things()
for i in range(10):
    code, status, _ = error_of(wrong)
    assert (code, status) == ("InvalidSignatureException", 403), (i, code, status)
for client in (wrong, right):
    code, status, headers = error_of(client)
    assert (code, status) == ("ThrottlingException", 429), (code, status)
    assert 1 <= int(headers["retry-after"]) <= 60, headers
print(f"auth walls: ok {walked}")
