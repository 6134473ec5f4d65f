"""Drives wardmq's admin API with boto3, as an operator's script would.

Usage: boto3_registry.py ENDPOINT_URL
Credentials come from AWS_SHARED_CREDENTIALS_FILE. Prints
"boto3 registry: ok" when every check passed; any failure raises.
"""

import json
import sys
import urllib.error
import urllib.request

import boto3
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

REGION = "us-east-1"
ALLOW = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}],
    }
)


def expect_error(code, status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (got, got_status) == (code, status), (got, got_status, e)
        return e.response["Error"].get("Message", "")
    raise AssertionError(f"expected {code}")


def signed(endpoint, method, path, body=b""):
    """A request signed like botocore signs it, sent with urllib, so routes
    that no boto3 operation reaches can be tested."""
    creds = botocore.session.Session().get_credentials()
    req = AWSRequest(method=method, url=endpoint + path, data=body)
    SigV4Auth(creds, "iot", REGION).add_auth(req)
    raw = urllib.request.Request(
        req.url, data=body or None, method=method, headers=dict(req.headers.items())
    )
    try:
        with urllib.request.urlopen(raw, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def main(endpoint):
    iot = boto3.client("iot", endpoint_url=endpoint, region_name=REGION)

    # Things and pagination (maxResults 1, follow nextToken).
    for i in range(5):
        out = iot.create_thing(thingName=f"dev-{i}", attributePayload={"attributes": {"n": str(i)}})
        assert out["thingArn"].endswith(f":thing/dev-{i}"), out
    names, token = [], None
    while True:
        kw = {"maxResults": 1}
        if token:
            kw["nextToken"] = token
        page = iot.list_things(**kw)
        assert len(page["things"]) == 1, page
        names += [t["thingName"] for t in page["things"]]
        token = page.get("nextToken")
        if not token:
            break
    assert names == [f"dev-{i}" for i in range(5)], names
    paged = [
        t["thingName"]
        for p in iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 2})
        for t in p["things"]
    ]
    assert paged == names, paged
    d = iot.describe_thing(thingName="dev-3")
    assert d["attributes"] == {"n": "3"} and d["version"] == 1, d
    iot.update_thing(thingName="dev-3", attributePayload={"attributes": {"x": "y"}, "merge": True}, expectedVersion=1)
    assert iot.describe_thing(thingName="dev-3")["attributes"] == {"n": "3", "x": "y"}
    expect_error("VersionConflictException", 409, iot.update_thing, thingName="dev-3", expectedVersion=1)
    expect_error("ResourceNotFoundException", 404, iot.describe_thing, thingName="ghost")
    expect_error("ResourceAlreadyExistsException", 409, iot.create_thing, thingName="dev-1", thingTypeName="other")

    # Groups with parents and membership.
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="floor1", parentGroupName="site")
    iot.add_thing_to_thing_group(thingGroupName="floor1", thingName="dev-0")
    iot.add_thing_to_thing_group(thingGroupArn=iot.describe_thing_group(thingGroupName="site")["thingGroupArn"], thingName="dev-1")
    assert iot.list_things_in_thing_group(thingGroupName="site", recursive=True)["things"] == ["dev-0", "dev-1"]
    groups = iot.list_thing_groups(maxResults=1)
    assert len(groups["thingGroups"]) == 1 and "nextToken" in groups, groups
    assert [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="dev-0")["thingGroups"]] == ["floor1"]

    # Policies: five versions at most, default version, attach to a group.
    iot.create_policy(policyName="pub", policyDocument=ALLOW)
    for _ in range(4):
        iot.create_policy_version(policyName="pub", policyDocument=ALLOW, setAsDefault=True)
    expect_error("VersionsLimitExceededException", 409, iot.create_policy_version, policyName="pub", policyDocument=ALLOW)
    assert iot.get_policy(policyName="pub")["defaultVersionId"] == "5"
    iot.set_default_policy_version(policyName="pub", policyVersionId="2")
    assert iot.get_policy_version(policyName="pub", policyVersionId="2")["isDefaultVersion"] is True
    expect_error("DeleteConflictException", 409, iot.delete_policy_version, policyName="pub", policyVersionId="2")
    msg = expect_error("MalformedPolicyException", 400, iot.create_policy, policyName="bad", policyDocument='{"Version":"2012-10-17"}')
    assert "Statement" in msg, msg
    site_arn = iot.describe_thing_group(thingGroupName="site")["thingGroupArn"]
    iot.attach_policy(policyName="pub", target=site_arn)
    assert iot.list_targets_for_policy(policyName="pub")["targets"] == [site_arn]
    assert [p["policyName"] for p in iot.list_attached_policies(target=site_arn)["policies"]] == ["pub"]
    expect_error("DeleteConflictException", 409, iot.delete_policy, policyName="pub")
    assert [p["policyName"] for p in iot.list_policies(pageSize=1)["policies"]] == ["pub"]

    # Certificates: no issuer configured on this server.
    msg = expect_error("InvalidRequestException", 400, iot.create_keys_and_certificate, setAsActive=True)
    assert "no issuing CA configured" in msg, msg
    expect_error("CertificateValidationException", 400, iot.register_certificate_without_ca, certificatePem="not a pem")
    expect_error("InvalidRequestException", 400, iot.attach_thing_principal, thingName="dev-0", principal="arn:aws:iot:us-east-1:123456789012:thing/x")

    # Logging.
    iot.set_v2_logging_options(defaultLogLevel="WARN", disableAllLogs=False)
    opts = iot.get_v2_logging_options()
    assert opts["defaultLogLevel"] == "WARN" and opts["disableAllLogs"] is False, opts
    iot.set_v2_logging_level(logTarget={"targetType": "CLIENT_ID", "targetName": "dev-0"}, logLevel="DEBUG")
    levels = iot.list_v2_logging_levels(targetType="CLIENT_ID")["logTargetConfigurations"]
    assert levels == [{"logTarget": {"targetType": "CLIENT_ID", "targetName": "dev-0"}, "logLevel": "DEBUG"}], levels
    msg = expect_error("InvalidRequestException", 400, iot.set_v2_logging_level, logTarget={"targetType": "THING_GROUP", "targetName": "ghost"}, logLevel="INFO")

    # Routes no operation reaches, signed so they pass authentication.
    status, headers, body = signed(endpoint, "GET", "/no-such-operation")
    assert status == 404 and headers.get("x-amzn-ErrorType") == "UnknownOperationException", (status, headers)
    assert "message" in json.loads(body)
    status, headers, _ = signed(endpoint, "PUT", "/things")
    assert status == 405 and headers.get("x-amzn-ErrorType") == "MethodNotAllowedException", (status, headers)
    status, headers, body = signed(endpoint, "POST", "/policies/p2", b'{"policyDocument": 5}')
    assert status == 400 and headers.get("x-amzn-ErrorType") == "InvalidRequestException", (status, headers)
    assert "policyDocument" in json.loads(body)["message"], body
    status, headers, body = signed(endpoint, "POST", "/policies/p2", b"{not json")
    assert status == 400 and headers.get("x-amzn-ErrorType") == "InvalidRequestException", (status, headers)
    status, headers, body = signed(endpoint, "POST", "/policies/p2", b"{}")
    assert status == 400 and "policyDocument" in json.loads(body)["message"], body

    # Unsigned: 403 with the AWS error header.
    try:
        urllib.request.urlopen(endpoint + "/things", timeout=10)
        raise AssertionError("unsigned request succeeded")
    except urllib.error.HTTPError as e:
        assert e.code == 403, e.code
        assert e.headers.get("x-amzn-ErrorType") == "MissingAuthenticationTokenException", dict(e.headers)

    print("boto3 registry: ok")


if __name__ == "__main__":
    main(sys.argv[1])
