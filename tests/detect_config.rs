//! The Detect configuration API (security profiles, targets, dimensions,
//! custom metrics) as operators use it: `wardmq serve` in a child process,
//! driven by boto3 (tests/admin/boto3_detect_config.py) and by the `aws`
//! CLI, so signing, parameter serialisation and error parsing are
//! botocore's.

mod common;

use common::wardmq::Wardmq;

#[test]
fn boto3_detect_config_script() {
    Wardmq::start(None).run_boto3("boto3_detect_config.py", "boto3 detect config: ok");
}

#[test]
fn aws_cli_configures_detect() {
    let w = Wardmq::start(None);
    let listed = w.aws(&["list-security-profiles"]);
    assert_eq!(listed["securityProfileIdentifiers"], serde_json::json!([]));

    let behaviors = w.write(
        "behaviors.json",
        r#"[{"name": "auth-failures", "metric": "aws:num-authorization-failures",
             "criteria": {"comparisonOperator": "less-than", "value": {"count": 5},
                          "durationSeconds": 300, "consecutiveDatapointsToAlarm": 2}}]"#,
    );
    let created = w.aws(&[
        "create-security-profile",
        "--security-profile-name",
        "fleet",
        "--behaviors",
        &behaviors,
    ]);
    assert_eq!(
        created["securityProfileArn"],
        "arn:aws:iot:us-east-1:123456789012:securityprofile/fleet"
    );
    let updated = w.aws(&[
        "update-security-profile",
        "--security-profile-name",
        "fleet",
        "--security-profile-description",
        "every device",
        "--expected-version",
        "1",
    ]);
    assert_eq!(updated["version"], 2);
    // Case 38 over the CLI: a stale version is 409, a sixth profile on one
    // target is 410.
    w.aws_fails(
        &[
            "update-security-profile",
            "--security-profile-name",
            "fleet",
            "--expected-version",
            "1",
        ],
        "VersionConflictException",
        409,
    );
    let all = "arn:aws:iot:us-east-1:123456789012:all/registered-things";
    for i in 0..6 {
        let name = format!("p{i}");
        w.aws(&["create-security-profile", "--security-profile-name", &name]);
        let attach = [
            "attach-security-profile",
            "--security-profile-name",
            &name,
            "--security-profile-target-arn",
            all,
        ];
        if i < 5 {
            w.aws(&attach);
        } else {
            w.aws_fails(&attach, "LimitExceededException", 410);
        }
    }
    let mapped = w.aws(&[
        "list-security-profiles-for-target",
        "--security-profile-target-arn",
        all,
    ]);
    let mappings = mapped["securityProfileTargetMappings"]
        .as_array()
        .expect("mappings");
    assert_eq!(mappings.len(), 5);
    assert_eq!(mappings[0]["target"]["arn"], all);

    // Dimensions and custom metrics (the CLI fills clientRequestToken).
    let dim = w.aws(&[
        "create-dimension",
        "--name",
        "auth",
        "--type",
        "TOPIC_FILTER",
        "--string-values",
        "device/+/auth",
    ]);
    assert_eq!(
        dim["arn"],
        "arn:aws:iot:us-east-1:123456789012:dimension/auth"
    );
    w.aws_fails(
        &[
            "create-custom-metric",
            "--metric-name",
            "aws:battery",
            "--metric-type",
            "number",
        ],
        "InvalidRequestException",
        400,
    );
    let metric = w.aws(&[
        "create-custom-metric",
        "--metric-name",
        "batteryPercentage",
        "--metric-type",
        "number",
    ]);
    assert_eq!(
        metric["metricArn"],
        "arn:aws:iot:us-east-1:123456789012:custommetric/batteryPercentage"
    );
    let listed = w.aws(&["list-dimensions"]);
    assert_eq!(listed["dimensionNames"], serde_json::json!(["auth"]));
}
