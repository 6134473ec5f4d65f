"""Drives wardmq's Detect configuration API with boto3: security profiles,
their targets, dimensions and custom metrics (spec §13 cases 5, 6, 7, 11,
24 and 38, the API halves).

Usage: boto3_detect_config.py ENDPOINT_URL
Credentials come from AWS_SHARED_CREDENTIALS_FILE. Prints
"boto3 detect config: ok" when every check passed; any failure raises.
"""

import json
import sys

import boto3
from botocore.config import Config

from boto3_registry import REGION, expect_error, signed

ACCOUNT = "123456789012"


def arn(resource):
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:{resource}"


def rule(name, metric, criteria, **extra):
    return {"name": name, "metric": metric, "criteria": criteria, **extra}


def count(op, n, duration=300, **extra):
    return {"comparisonOperator": op, "value": {"count": n}, "durationSeconds": duration, **extra}


def invalid(iot, behaviors, *fragments):
    """The behaviours are refused by ValidateSecurityProfileBehaviors and
    by CreateSecurityProfile, with every fragment in the messages. Sent
    without botocore's own checks (it refuses consecutiveDatapointsToAlarm
    0 itself), so the server's are the ones tested."""
    iot = unchecked(iot)
    out = iot.validate_security_profile_behaviors(behaviors=behaviors)
    assert out["valid"] is False, out
    messages = " | ".join(e["errorMessage"] for e in out["validationErrors"])
    for f in fragments:
        assert f in messages, (f, messages)
    msg = expect_error("InvalidRequestException", 400, iot.create_security_profile, securityProfileName="refused", behaviors=behaviors)
    for f in fragments:
        assert f in msg, (f, msg)


def unchecked(iot):
    return boto3.client(
        "iot",
        endpoint_url=iot.meta.endpoint_url,
        region_name=REGION,
        config=Config(parameter_validation=False),
    )


def validation(iot):
    # Case 5: consecutive datapoints out of 1..10.
    for n in (0, 11):
        invalid(iot, [rule("b", "aws:num-messages-sent", count("less-than", 5, consecutiveDatapointsToAlarm=n))], f"consecutiveDatapointsToAlarm is {n}")
    # Case 6: windows.
    invalid(iot, [rule("b", "aws:num-messages-sent", count("less-than", 5, duration=120))], "durationSeconds 120")
    invalid(
        iot,
        [rule("ip", "aws:source-ip-address", {"comparisonOperator": "not-in-cidr-set", "value": {"cidrs": ["12.8.0.0/16"]}, "durationSeconds": 300})],
        "list-based metric 'aws:source-ip-address'",
    )
    # Case 7: operators that do not fit the metric, both reported at once.
    invalid(
        iot,
        [
            rule("sent", "aws:num-messages-sent", count("in-cidr-set", 5)),
            rule("ports", "aws:listening-tcp-ports", {"comparisonOperator": "in-set", "value": {"ports": [8888]}}),
        ],
        "'in-cidr-set' cannot be used with metric 'aws:num-messages-sent'",
        "'in-set' cannot be used with metric 'aws:listening-tcp-ports'",
    )
    ok = iot.validate_security_profile_behaviors(behaviors=[rule("fine", "aws:num-authorization-failures", count("greater-than", 5))])
    assert ok["valid"] is True and ok.get("validationErrors", []) == [], ok
    assert iot.list_security_profiles()["securityProfileIdentifiers"] == []
    expect_error("InvalidRequestException", 400, iot.create_security_profile, securityProfileName="bad:name!")


def dimensions(iot, endpoint):
    # Case 11, API half.
    out = iot.create_dimension(name="TopicFilterForAuthMessages", type="TOPIC_FILTER", stringValues=["device/+/auth"], clientRequestToken="dim-1")
    assert (out["name"], out["arn"]) == ("TopicFilterForAuthMessages", arn("dimension/TopicFilterForAuthMessages")), out
    # The same token and input: the same answer; another token: taken.
    again = iot.create_dimension(name="TopicFilterForAuthMessages", type="TOPIC_FILTER", stringValues=["device/+/auth"], clientRequestToken="dim-1")
    assert again["arn"] == out["arn"], again
    expect_error("ResourceAlreadyExistsException", 409, iot.create_dimension, name="TopicFilterForAuthMessages", type="TOPIC_FILTER", stringValues=["x"])
    expect_error("InvalidRequestException", 400, iot.create_dimension, name="bad", type="TOPIC_FILTER", stringValues=["a/#/b"])
    expect_error("InvalidRequestException", 400, iot.create_dimension, name="many", type="TOPIC_FILTER", stringValues=[f"t/{i}" for i in range(101)])
    # boto3 fills clientRequestToken itself when it is not given.
    iot.create_dimension(name="AdminTopics", type="TOPIC_FILTER", stringValues=["admin/#"])

    updated = iot.update_dimension(name="TopicFilterForAuthMessages", stringValues=["device/+/auth", "device/+/login"])
    assert updated["type"] == "TOPIC_FILTER" and updated["stringValues"] == ["device/+/auth", "device/+/login"], updated
    assert updated["lastModifiedDate"] >= updated["creationDate"], updated
    described = iot.describe_dimension(name="TopicFilterForAuthMessages")
    assert described["stringValues"] == updated["stringValues"], described
    expect_error("ResourceNotFoundException", 404, iot.describe_dimension, name="ghost")
    expect_error("ResourceNotFoundException", 404, iot.update_dimension, name="ghost", stringValues=["a"])
    # UpdateDimension has no `type`; boto3 will not send one, so send it raw.
    status, headers, body = signed(endpoint, "PATCH", "/dimensions/TopicFilterForAuthMessages", json.dumps({"type": "OTHER", "stringValues": ["a"]}).encode())
    assert status == 400 and headers.get("x-amzn-ErrorType") == "InvalidRequestException", (status, body)
    assert b"cannot be changed" in body, body

    names, token = [], None
    while True:
        page = iot.list_dimensions(maxResults=1, **({"nextToken": token} if token else {}))
        names += page["dimensionNames"]
        token = page.get("nextToken")
        if not token:
            break
    assert names == ["AdminTopics", "TopicFilterForAuthMessages"], names

    # Operator omitted: stored as given (evaluated as IN).
    iot.create_security_profile(
        securityProfileName="auth-messages",
        behaviors=[rule("auth", "aws:num-messages-sent", count("less-than", 10), metricDimension={"dimensionName": "TopicFilterForAuthMessages"})],
    )
    b = iot.describe_security_profile(securityProfileName="auth-messages")["behaviors"][0]
    assert b["metricDimension"] == {"dimensionName": "TopicFilterForAuthMessages"}, b
    profiles = iot.list_security_profiles(dimensionName="TopicFilterForAuthMessages")["securityProfileIdentifiers"]
    assert [p["name"] for p in profiles] == ["auth-messages"], profiles
    expect_error("ResourceNotFoundException", 404, iot.list_security_profiles, dimensionName="ghost")
    # In use: cannot be deleted; unknown dimensions are invalid in behaviours.
    msg = expect_error("InvalidRequestException", 400, iot.delete_dimension, name="TopicFilterForAuthMessages")
    assert "auth-messages" in msg, msg
    invalid(iot, [rule("d", "aws:num-messages-sent", count("less-than", 1), metricDimension={"dimensionName": "ghost"})], "not a defined dimension")
    iot.delete_dimension(name="AdminTopics")
    iot.delete_dimension(name="AdminTopics")  # already gone: still fine


def custom_metrics(iot):
    # Case 24, API half.
    expect_error("InvalidRequestException", 400, iot.create_custom_metric, metricName="aws:battery", metricType="number", clientRequestToken="m-0")
    out = iot.create_custom_metric(metricName="batteryPercentage", metricType="number", displayName="Battery", clientRequestToken="m-1")
    assert out["metricArn"] == arn("custommetric/batteryPercentage"), out
    same = iot.create_custom_metric(metricName="batteryPercentage", metricType="number", displayName="Battery", clientRequestToken="m-1")
    assert same["metricArn"] == out["metricArn"]
    expect_error("ResourceAlreadyExistsException", 409, iot.create_custom_metric, metricName="batteryPercentage", metricType="string-list", clientRequestToken="m-2")
    iot.create_custom_metric(metricName="apps", metricType="string-list")
    d = iot.update_custom_metric(metricName="batteryPercentage", displayName="Battery level")
    assert d["displayName"] == "Battery level" and d["metricType"] == "number", d
    d = iot.describe_custom_metric(metricName="batteryPercentage")
    assert d["metricArn"] == out["metricArn"] and d["displayName"] == "Battery level", d
    expect_error("ResourceNotFoundException", 404, iot.describe_custom_metric, metricName="ghost")
    paged = [n for p in iot.get_paginator("list_custom_metrics").paginate(PaginationConfig={"PageSize": 1}) for n in p["metricNames"]]
    assert paged == ["apps", "batteryPercentage"], paged

    # A dimension on a custom metric is invalid (case 11).
    invalid(
        iot,
        [rule("bat", "batteryPercentage", {"comparisonOperator": "greater-than", "value": {"number": 10}}, metricDimension={"dimensionName": "TopicFilterForAuthMessages"})],
        "metricDimension cannot be used with custom metric",
    )
    iot.create_security_profile(
        securityProfileName="battery",
        behaviors=[rule("low", "batteryPercentage", {"comparisonOperator": "greater-than", "value": {"number": 10}})],
    )
    msg = expect_error("InvalidRequestException", 400, iot.delete_custom_metric, metricName="batteryPercentage")
    assert "battery" in msg, msg
    users = iot.list_security_profiles(metricName="batteryPercentage")["securityProfileIdentifiers"]
    assert users == [{"name": "battery", "arn": arn("securityprofile/battery")}], users
    expect_error("InvalidRequestException", 400, iot.list_security_profiles, metricName="batteryPercentage", dimensionName="TopicFilterForAuthMessages")
    iot.update_security_profile(securityProfileName="battery", deleteBehaviors=True)
    iot.delete_custom_metric(metricName="batteryPercentage")
    assert iot.list_custom_metrics()["metricNames"] == ["apps"]


def profiles_and_targets(iot):
    # Case 38: optimistic locking and the five-profile limit.
    out = iot.create_security_profile(
        securityProfileName="locked",
        securityProfileDescription="v1",
        behaviors=[rule("auth", "aws:num-authorization-failures", count("less-than", 5, consecutiveDatapointsToAlarm=2, consecutiveDatapointsToClear=2))],
        alertTargets={"SNS": {"alertTargetArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:ops", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/alerts"}},
        additionalMetricsToRetainV2=[{"metric": "aws:num-disconnects"}],
        tags=[{"Key": "team", "Value": "ops"}],
    )
    assert out["securityProfileArn"] == arn("securityprofile/locked"), out
    expect_error("ResourceAlreadyExistsException", 409, iot.create_security_profile, securityProfileName="locked")
    d = iot.describe_security_profile(securityProfileName="locked")
    assert d["version"] == 1 and d["securityProfileDescription"] == "v1", d
    u = iot.update_security_profile(securityProfileName="locked", securityProfileDescription="v2", expectedVersion=1)
    assert u["version"] == 2 and u["behaviors"] == d["behaviors"] and u["alertTargets"] == d["alertTargets"], u
    expect_error("VersionConflictException", 409, iot.update_security_profile, securityProfileName="locked", securityProfileDescription="v3", expectedVersion=1)
    expect_error("InvalidRequestException", 400, iot.update_security_profile, securityProfileName="locked", deleteBehaviors=True, behaviors=[])
    u = iot.update_security_profile(securityProfileName="locked", deleteAlertTargets=True, deleteAdditionalMetricsToRetain=True)
    assert u["version"] == 3 and "alertTargets" not in u and "additionalMetricsToRetainV2" not in u, u
    expect_error("ResourceNotFoundException", 404, iot.update_security_profile, securityProfileName="ghost", securityProfileDescription="x")
    expect_error("VersionConflictException", 409, iot.delete_security_profile, securityProfileName="locked", expectedVersion=1)

    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="floor1", parentGroupName="site")
    site = iot.describe_thing_group(thingGroupName="site")["thingGroupArn"]
    floor = iot.describe_thing_group(thingGroupName="floor1")["thingGroupArn"]
    for i in range(6):
        iot.create_security_profile(securityProfileName=f"sp{i}")
    for i in range(5):
        iot.attach_security_profile(securityProfileName=f"sp{i}", securityProfileTargetArn=site)
    iot.attach_security_profile(securityProfileName="sp0", securityProfileTargetArn=site)  # again: no-op
    expect_error("LimitExceededException", 410, iot.attach_security_profile, securityProfileName="sp5", securityProfileTargetArn=site)
    expect_error("ResourceNotFoundException", 404, iot.attach_security_profile, securityProfileName="sp5", securityProfileTargetArn=arn("thinggroup/ghost"))
    expect_error("ResourceNotFoundException", 404, iot.attach_security_profile, securityProfileName="ghost", securityProfileTargetArn=site)
    expect_error("InvalidRequestException", 400, iot.attach_security_profile, securityProfileName="sp5", securityProfileTargetArn="arn:aws:iot:us-east-1:999999999999:all/things")
    iot.attach_security_profile(securityProfileName="sp5", securityProfileTargetArn=floor)
    for target in ("all/things", "all/registered-things", "all/unregistered-things"):
        iot.attach_security_profile(securityProfileName="sp5", securityProfileTargetArn=arn(target))

    targets = [t["arn"] for t in iot.list_targets_for_security_profile(securityProfileName="sp5")["securityProfileTargets"]]
    assert targets == [arn("all/registered-things"), arn("all/things"), arn("all/unregistered-things"), floor], targets
    expect_error("ResourceNotFoundException", 404, iot.list_targets_for_security_profile, securityProfileName="ghost")

    def for_target(target, **kw):
        pages = iot.get_paginator("list_security_profiles_for_target").paginate(securityProfileTargetArn=target, PaginationConfig={"PageSize": 2}, **kw)
        return [(m["securityProfileIdentifier"]["name"], m["target"]["arn"]) for p in pages for m in p["securityProfileTargetMappings"]]

    assert for_target(site) == [(f"sp{i}", site) for i in range(5)]
    # recursive: "If true, return child groups too."
    assert for_target(site, recursive=True) == [("sp5", floor)] + [(f"sp{i}", site) for i in range(5)]
    assert for_target(floor, recursive=True) == [("sp5", floor)]
    assert for_target(arn("all/things")) == [("sp5", arn("all/things"))]
    expect_error("ResourceNotFoundException", 404, iot.list_security_profiles_for_target, securityProfileTargetArn=arn("thinggroup/ghost"))

    iot.detach_security_profile(securityProfileName="sp0", securityProfileTargetArn=site)
    expect_error("ResourceNotFoundException", 404, iot.detach_security_profile, securityProfileName="sp0", securityProfileTargetArn=site)
    iot.attach_security_profile(securityProfileName="sp5", securityProfileTargetArn=site)

    # Deleting a profile removes it and its attachments.
    iot.delete_security_profile(securityProfileName="sp5", expectedVersion=1)
    expect_error("ResourceNotFoundException", 404, iot.describe_security_profile, securityProfileName="sp5")
    assert for_target(arn("all/things")) == []
    iot.delete_security_profile(securityProfileName="sp5")  # already gone: still fine

    pages = iot.get_paginator("list_security_profiles").paginate(PaginationConfig={"PageSize": 2})
    names = [p["name"] for page in pages for p in page["securityProfileIdentifiers"]]
    assert names == ["auth-messages", "battery", "locked", "sp0", "sp1", "sp2", "sp3", "sp4"], names
    expect_error("InvalidRequestException", 400, iot.list_security_profiles, maxResults=251)


def main(endpoint):
    iot = boto3.client("iot", endpoint_url=endpoint, region_name=REGION)
    validation(iot)
    dimensions(iot, endpoint)
    custom_metrics(iot)
    profiles_and_targets(iot)
    print("boto3 detect config: ok")


if __name__ == "__main__":
    main(sys.argv[1])
