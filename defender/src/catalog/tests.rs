//! The catalog's rules, error paths and durability. Spec test cases are
//! named where a test covers one (§13).

use serde_json::{json, Value};
use tempfile::TempDir;
use wardmq_broker::registry::{Registry, Scope, ThingGroupProperties};

use super::*;
use crate::detect::model::CustomMetricType;
use crate::store::StoreError;

struct Fixture {
    dir: TempDir,
    registry: Registry,
    catalog: Catalog,
}

fn scope() -> Scope {
    Scope::new("us-east-1", "123456789012")
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry =
            Registry::open(dir.path().join("registry.redb"), scope()).expect("registry opens");
        let db = DefenderDb::open(dir.path()).expect("defender.redb opens");
        let catalog = Catalog::open(&db, registry.clone()).expect("catalog opens");
        Fixture {
            dir,
            registry,
            catalog,
        }
    }

    /// Drops the catalog and opens the same file again.
    fn reopen(self) -> Fixture {
        let Fixture {
            dir,
            registry,
            catalog,
        } = self;
        // redb locks the file: the old handle must be gone first.
        drop(catalog);
        let db = DefenderDb::open(dir.path()).expect("defender.redb reopens");
        let catalog = Catalog::open(&db, registry.clone()).expect("catalog reopens");
        Fixture {
            dir,
            registry,
            catalog,
        }
    }

    fn group(&self, name: &str, parent: Option<&str>) -> String {
        self.registry
            .create_thing_group(name, parent, ThingGroupProperties::default())
            .expect("group created");
        scope_arn(&format!("thinggroup/{name}"))
    }

    fn profile(&self, name: &str, members: Value) -> Arc<SecurityProfile> {
        self.catalog
            .create_security_profile(name, members_of(members))
            .expect("profile created")
    }

    fn dimension(&self, name: &str, values: &[&str]) -> Arc<Dimension> {
        self.catalog
            .create_dimension(
                name,
                DimensionType::TopicFilter,
                strings(values),
                &format!("token-{name}"),
            )
            .expect("dimension created")
    }

    fn metric(&self, name: &str, metric_type: CustomMetricType) -> Arc<CustomMetric> {
        self.catalog
            .create_custom_metric(name, metric_type, None, &format!("token-{name}"))
            .expect("custom metric created")
    }

    fn names(&self, filter: ProfileFilter<'_>) -> Vec<String> {
        self.catalog
            .list_security_profiles(filter, None, None)
            .expect("lists")
            .items
            .iter()
            .map(|p| p.security_profile_name.clone())
            .collect()
    }
}

fn scope_arn(resource: &str) -> String {
    model::arn(&scope(), resource)
}

fn members_of(v: Value) -> ProfileMembers {
    serde_json::from_value(v).expect("test members parse")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn behavior(name: &str, metric: &str, count: u64) -> Value {
    json!({"name": name, "metric": metric,
           "criteria": {"comparisonOperator": "less-than", "value": {"count": count},
                        "durationSeconds": 300}})
}

/// The error's AWS code and status, for matching.
fn code(e: &CatalogError) -> (&'static str, u16) {
    (e.aws_code(), e.http_status())
}

/// Asserts `r` failed with `want` (code, status); its message.
fn fails<T: std::fmt::Debug>(r: Result<T, CatalogError>, want: (&str, u16)) -> String {
    let e = r.expect_err("the call fails");
    assert_eq!(code(&e), want, "{e}");
    e.to_string()
}

const INVALID: (&str, u16) = ("InvalidRequestException", 400);
const NOT_FOUND: (&str, u16) = ("ResourceNotFoundException", 404);
const EXISTS: (&str, u16) = ("ResourceAlreadyExistsException", 409);
const CONFLICT: (&str, u16) = ("VersionConflictException", 409);
const LIMIT: (&str, u16) = ("LimitExceededException", 410);

// --- security profiles ---

#[test]
fn create_sets_arn_version_and_dates() {
    let f = Fixture::new();
    let p = f.profile(
        "sp",
        json!({"securityProfileDescription": "d",
               "behaviors": [behavior("b", "aws:num-messages-sent", 10)]}),
    );
    assert_eq!(
        p.security_profile_arn.as_deref(),
        Some("arn:aws:iot:us-east-1:123456789012:securityprofile/sp")
    );
    assert_eq!(p.version, Some(1));
    assert!(p.creation_date.is_some());
    assert_eq!(p.creation_date, p.last_modified_date);
    assert_eq!(f.catalog.snapshot().profile("sp"), Some(&p));
    let again = f
        .catalog
        .create_security_profile("sp", ProfileMembers::default())
        .expect_err("name taken");
    assert_eq!(code(&again), EXISTS);
    assert!(
        matches!(again, CatalogError::AlreadyExists { ref arn, .. } if arn.ends_with(":securityprofile/sp"))
    );
}

#[test]
fn malformed_profiles_list_every_error() {
    // Spec cases 5, 6 and 7 in one profile.
    let f = Fixture::new();
    let e = fails(f
        .catalog
        .create_security_profile(
            "sp",
            members_of(json!({"behaviors": [
                {"name": "a", "metric": "aws:num-messages-sent",
                 "criteria": {"comparisonOperator": "less-than", "value": {"count": 1},
                              "durationSeconds": 300, "consecutiveDatapointsToAlarm": 0}},
                {"name": "c", "metric": "aws:num-messages-sent",
                 "criteria": {"comparisonOperator": "less-than", "value": {"count": 1},
                              "durationSeconds": 300, "consecutiveDatapointsToClear": 11}},
                {"name": "d", "metric": "aws:num-messages-sent",
                 "criteria": {"comparisonOperator": "less-than", "value": {"count": 1},
                              "durationSeconds": 120}},
                {"name": "ip", "metric": "aws:source-ip-address",
                 "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["10.0.0.0/8"]},
                              "durationSeconds": 300}},
                {"name": "op", "metric": "aws:num-messages-sent",
                 "criteria": {"comparisonOperator": "in-cidr-set", "value": {"count": 1},
                              "durationSeconds": 300}},
                {"name": "ports", "metric": "aws:listening-tcp-ports",
                 "criteria": {"comparisonOperator": "in-set", "value": {"ports": [22]}}}
            ],
            "alertTargets": {"SNS": {"alertTargetArn": "", "roleArn": "short"}},
            "metricsExportConfig": {"mqttTopic": "", "roleArn": "arn:aws:iam::123456789012:role/x"}})),
        ), INVALID);
    let m = e.to_string();
    for fragment in [
        "consecutiveDatapointsToAlarm is 0",
        "consecutiveDatapointsToClear is 11",
        "durationSeconds 120",
        "durationSeconds cannot be used with list-based metric 'aws:source-ip-address'",
        "comparisonOperator 'in-cidr-set' cannot be used with metric 'aws:num-messages-sent'",
        "comparisonOperator 'in-set' cannot be used with metric 'aws:listening-tcp-ports'",
        "alertTargets.SNS.roleArn",
        "alertTargets.SNS.alertTargetArn",
        "metricsExportConfig.mqttTopic",
    ] {
        assert!(m.contains(fragment), "{m:?} lacks {fragment:?}");
    }
    assert!(!m.contains("metricsExportConfig.roleArn"), "{m}");
    assert!(f.catalog.snapshot().profiles.is_empty());
    fails(
        f.catalog
            .create_security_profile("bad name", ProfileMembers::default()),
        INVALID,
    );
}

#[test]
fn at_most_100_behaviors() {
    let f = Fixture::new();
    let many: Vec<Value> = (0..101)
        .map(|i| behavior(&format!("b{i}"), "aws:num-disconnects", 5))
        .collect();
    let e = f
        .catalog
        .create_security_profile("sp", members_of(json!({ "behaviors": many[..101] })))
        .expect_err("101 behaviours");
    assert!(e.to_string().contains("at most 100 behaviors"), "{e}");
    f.profile("sp", json!({ "behaviors": many[..100] }));
}

#[test]
fn update_replaces_given_members_and_bumps_the_version() {
    // Spec case 38, first half.
    let f = Fixture::new();
    let created = f.profile(
        "sp",
        json!({"securityProfileDescription": "d",
               "behaviors": [behavior("b", "aws:num-messages-sent", 10)],
               "additionalMetricsToRetainV2": [{"metric": "aws:num-disconnects"}]}),
    );
    let update = |members: Value, delete: Value, expected: Option<i64>| {
        f.catalog.update_security_profile(
            "sp",
            ProfileUpdate {
                members: members_of(members),
                delete: serde_json::from_value(delete).expect("flags parse"),
                expected_version: expected,
            },
        )
    };
    let p = update(
        json!({"behaviors": [behavior("b2", "aws:num-messages-received", 3)]}),
        json!({}),
        Some(1),
    )
    .expect("updated");
    assert_eq!(p.version, Some(2));
    assert_eq!(p.creation_date, created.creation_date);
    assert!(p.last_modified_date >= created.last_modified_date);
    assert_eq!(p.security_profile_description.as_deref(), Some("d"));
    assert_eq!(p.behaviors.as_ref().map(|b| b[0].name.as_str()), Some("b2"));
    assert!(p.additional_metrics_to_retain_v2.is_some());

    let stale = fails(update(json!({}), json!({}), Some(1)), CONFLICT);
    assert!(
        stale.to_string().contains("current version is 2"),
        "{stale}"
    );

    let p = update(
        json!({}),
        json!({"deleteBehaviors": true, "deleteAdditionalMetricsToRetain": true}),
        None,
    )
    .expect("cleared");
    assert_eq!(p.version, Some(3));
    assert_eq!(p.behaviors, None);
    assert_eq!(p.additional_metrics_to_retain_v2, None);

    let clash = fails(
        update(
            json!({"behaviors": [], "metricsExportConfig":
               {"mqttTopic": "t", "roleArn": "arn:aws:iam::123456789012:role/x"}}),
            json!({"deleteBehaviors": true, "deleteMetricsExportConfig": true}),
            None,
        ),
        INVALID,
    );
    let m = clash.to_string();
    assert!(
        m.contains("deleteBehaviors") && m.contains("deleteMetricsExportConfig"),
        "{m}"
    );

    fails(
        update(
            json!({"behaviors": [behavior("x", "aws:nope", 1)]}),
            json!({}),
            None,
        ),
        INVALID,
    );
    assert_eq!(
        f.catalog.snapshot().profile("sp").and_then(|p| p.version),
        Some(3)
    );

    fails(
        f.catalog
            .update_security_profile("nope", ProfileUpdate::default()),
        NOT_FOUND,
    );
}

#[test]
fn delete_checks_the_version_and_forgets_missing_profiles() {
    let f = Fixture::new();
    f.profile("sp", json!({}));
    fails(f.catalog.delete_security_profile("sp", Some(7)), CONFLICT);
    f.catalog
        .delete_security_profile("sp", Some(1))
        .expect("deleted");
    assert!(f.catalog.snapshot().profiles.is_empty());
    f.catalog
        .delete_security_profile("sp", Some(1))
        .expect("deleting what is gone succeeds");
}

#[test]
fn list_pages_and_filters() {
    let f = Fixture::new();
    f.dimension("auth", &["device/+/auth"]);
    f.metric("batteryPercentage", CustomMetricType::Number);
    for i in 0..5 {
        f.profile(&format!("sp{i}"), json!({}));
    }
    f.profile(
        "with-dim",
        json!({"behaviors": [{"name": "b", "metric": "aws:num-messages-sent",
                              "metricDimension": {"dimensionName": "auth"},
                              "criteria": {"comparisonOperator": "less-than",
                                           "value": {"count": 5}, "durationSeconds": 300}}]}),
    );
    f.profile(
        "with-metric",
        json!({"additionalMetricsToRetainV2": [{"metric": "batteryPercentage"}]}),
    );

    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = f
            .catalog
            .list_security_profiles(ProfileFilter::default(), Some(2), token.as_deref())
            .expect("page");
        assert!(page.items.len() <= 2);
        all.extend(page.items.iter().map(|p| p.security_profile_name.clone()));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(
        all,
        ["sp0", "sp1", "sp2", "sp3", "sp4", "with-dim", "with-metric"]
    );

    let by_dim = ProfileFilter {
        dimension_name: Some("auth"),
        ..ProfileFilter::default()
    };
    assert_eq!(f.names(by_dim), ["with-dim"]);
    let by_metric = ProfileFilter {
        metric_name: Some("batteryPercentage"),
        ..ProfileFilter::default()
    };
    assert_eq!(f.names(by_metric), ["with-metric"]);
    let builtin = ProfileFilter {
        metric_name: Some("aws:num-messages-sent"),
        ..ProfileFilter::default()
    };
    assert_eq!(f.names(builtin), ["with-dim"]);

    let both = ProfileFilter {
        dimension_name: Some("auth"),
        metric_name: Some("batteryPercentage"),
    };
    fails(f.catalog.list_security_profiles(both, None, None), INVALID);
    for unknown in [
        ProfileFilter {
            dimension_name: Some("nope"),
            ..ProfileFilter::default()
        },
        ProfileFilter {
            metric_name: Some("nope"),
            ..ProfileFilter::default()
        },
    ] {
        fails(
            f.catalog.list_security_profiles(unknown, None, None),
            NOT_FOUND,
        );
    }

    // A token only continues the list it came from.
    let page = f
        .catalog
        .list_security_profiles(ProfileFilter::default(), Some(1), None)
        .expect("page");
    let token = page.next_token.expect("more");
    let e = f
        .catalog
        .list_security_profiles(by_dim, Some(1), Some(&token))
        .expect_err("foreign token");
    assert!(matches!(e, CatalogError::Store(StoreError::InvalidToken)));
    assert_eq!(code(&e), INVALID);
    fails(f.catalog.list_dimensions(Some(1), Some(&token)), INVALID);
    fails(
        f.catalog
            .list_security_profiles(ProfileFilter::default(), Some(251), None),
        INVALID,
    );
}

#[test]
fn validate_behaviors_uses_the_defined_metrics_and_dimensions() {
    let f = Fixture::new();
    let b: Vec<crate::detect::model::Behavior> = serde_json::from_value(json!([
        {"name": "bat", "metric": "batteryPercentage",
         "criteria": {"comparisonOperator": "greater-than", "value": {"number": 10}}}
    ]))
    .expect("parses");
    assert!(!f.catalog.validate_behaviors(&b).valid);
    f.metric("batteryPercentage", CustomMetricType::Number);
    assert!(f.catalog.validate_behaviors(&b).valid);
    let dim: Vec<crate::detect::model::Behavior> = serde_json::from_value(json!([
        {"name": "d", "metric": "aws:num-messages-sent",
         "metricDimension": {"dimensionName": "auth"},
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 1},
                      "durationSeconds": 300}}
    ]))
    .expect("parses");
    let r = f.catalog.validate_behaviors(&dim);
    assert!(
        !r.valid
            && r.validation_errors[0]
                .error_message
                .contains("not a defined dimension")
    );
    f.dimension("auth", &["a/#"]);
    assert!(f.catalog.validate_behaviors(&dim).valid);
}

// --- targets ---

#[test]
fn attach_detach_and_the_five_profile_limit() {
    // Spec case 38, second half.
    let f = Fixture::new();
    let g = f.group("fleet", None);
    for i in 0..6 {
        f.profile(&format!("sp{i}"), json!({}));
    }
    for i in 0..5 {
        f.catalog
            .attach_security_profile(&format!("sp{i}"), &g)
            .expect("attached");
    }
    f.catalog
        .attach_security_profile("sp0", &g)
        .expect("attaching again is a no-op");
    fails(f.catalog.attach_security_profile("sp5", &g), LIMIT);
    // The limit is per target.
    let all = scope_arn("all/things");
    f.catalog
        .attach_security_profile("sp5", &all)
        .expect("other target");

    let missing_group = fails(
        f.catalog
            .attach_security_profile("sp0", &scope_arn("thinggroup/ghost")),
        NOT_FOUND,
    );
    assert!(missing_group.to_string().contains("ghost"));
    fails(f.catalog.attach_security_profile("nope", &g), NOT_FOUND);
    for bad in [
        "arn:aws:iot:us-east-1:999999999999:all/things",
        "arn:aws:iot:us-east-1:123456789012:thing/t",
        "all/things",
    ] {
        fails(f.catalog.attach_security_profile("sp0", bad), INVALID);
    }

    let targets = f
        .catalog
        .list_targets_for_security_profile("sp0", None, None)
        .expect("lists");
    assert_eq!(targets.items, [Target::ThingGroup("fleet".into())]);
    fails(
        f.catalog
            .list_targets_for_security_profile("nope", None, None),
        NOT_FOUND,
    );

    f.catalog
        .detach_security_profile("sp0", &g)
        .expect("detached");
    fails(f.catalog.detach_security_profile("sp0", &g), NOT_FOUND);
    f.catalog
        .attach_security_profile("sp5", &g)
        .expect("room again");

    // Deleting a profile detaches it everywhere.
    f.catalog
        .delete_security_profile("sp5", None)
        .expect("deleted");
    let snap = f.catalog.snapshot();
    assert_eq!(snap.targets_of("sp5").count(), 0);
    assert!(!snap.attachments.contains_key(&Target::AllThings));
    assert_eq!(
        snap.profiles_for_target(&Target::ThingGroup("fleet".into()))
            .count(),
        4
    );
}

#[test]
fn profiles_for_target_and_for_thing() {
    let f = Fixture::new();
    let parent = f.group("parent", None);
    let child = f.group("child", Some("parent"));
    f.group("other", None);
    for (p, t) in [
        ("on-parent", parent.clone()),
        ("on-child", child.clone()),
        ("on-all", scope_arn("all/things")),
        ("on-registered", scope_arn("all/registered-things")),
        ("on-unregistered", scope_arn("all/unregistered-things")),
    ] {
        f.profile(p, json!({}));
        f.catalog.attach_security_profile(p, &t).expect("attached");
    }
    let list = |arn: &str, recursive: bool| -> Vec<(String, String)> {
        f.catalog
            .list_security_profiles_for_target(arn, recursive, None, None)
            .expect("lists")
            .items
            .into_iter()
            .map(|m| (m.profile, m.target.resource()))
            .collect()
    };
    let row = |p: &str, r: &str| (p.to_owned(), r.to_owned());
    assert_eq!(
        list(&parent, false),
        [row("on-parent", "thinggroup/parent")]
    );
    assert_eq!(
        list(&parent, true),
        [
            row("on-child", "thinggroup/child"),
            row("on-parent", "thinggroup/parent")
        ]
    );
    assert_eq!(list(&child, true), [row("on-child", "thinggroup/child")]);
    assert_eq!(list(&scope_arn("thinggroup/other"), true), []);
    assert_eq!(
        list(&scope_arn("all/things"), true),
        [row("on-all", "all/things")]
    );
    fails(
        f.catalog.list_security_profiles_for_target(
            &scope_arn("thinggroup/ghost"),
            false,
            None,
            None,
        ),
        NOT_FOUND,
    );

    // Paging over the recursive listing.
    let first = f
        .catalog
        .list_security_profiles_for_target(&parent, true, Some(1), None)
        .expect("page 1");
    let token = first.next_token.expect("second page");
    let second = f
        .catalog
        .list_security_profiles_for_target(&parent, true, Some(1), Some(&token))
        .expect("page 2");
    assert_eq!(second.items[0].profile, "on-parent");
    assert_eq!(second.next_token, None);

    // What the evaluator asks: a registered thing in `child` (with its
    // ancestors), and an unregistered client in no group.
    let snap = f.catalog.snapshot();
    let groups = f.registry.thing_group_ancestors("child");
    let mut chain: Vec<&str> = groups.iter().map(String::as_str).collect();
    chain.push("child");
    let applied: Vec<&str> = snap.profiles_for_thing(true, chain).into_iter().collect();
    assert_eq!(
        applied,
        ["on-all", "on-child", "on-parent", "on-registered"]
    );
    let applied: Vec<&str> = snap.profiles_for_thing(false, []).into_iter().collect();
    assert_eq!(applied, ["on-all", "on-unregistered"]);
}

// --- dimensions ---

#[test]
fn dimensions_crud_and_idempotent_create() {
    // Spec case 11, API half.
    let f = Fixture::new();
    let d = f.dimension("TopicFilterForAuthMessages", &["device/+/auth"]);
    assert_eq!(
        dimension_arn(f.catalog.scope(), &d.name),
        "arn:aws:iot:us-east-1:123456789012:dimension/TopicFilterForAuthMessages"
    );
    let generation = f.catalog.snapshot().generation;
    let again = f.dimension("TopicFilterForAuthMessages", &["device/+/auth"]);
    assert_eq!(again, d, "same token and input: the first answer");
    assert_eq!(
        f.catalog.snapshot().generation,
        generation,
        "nothing written"
    );

    fails(
        f.catalog.create_dimension(
            &d.name,
            DimensionType::TopicFilter,
            strings(&["device/+/auth"]),
            "another",
        ),
        EXISTS,
    );
    fails(
        f.catalog.create_dimension(
            &d.name,
            DimensionType::TopicFilter,
            strings(&["x"]),
            &d.client_request_token,
        ),
        EXISTS,
    );
    fails(
        f.catalog.create_dimension(
            "second",
            DimensionType::TopicFilter,
            strings(&["x"]),
            &d.client_request_token,
        ),
        INVALID,
    );
    for (name, values, token) in [
        ("bad name", vec!["a"], "t"),
        ("ok", vec![], "t"),
        ("ok", vec!["a/#/b"], "t"),
        ("ok", vec!["a"], "bad token"),
    ] {
        fails(
            f.catalog
                .create_dimension(name, DimensionType::TopicFilter, strings(&values), token),
            INVALID,
        );
    }

    let updated = f
        .catalog
        .update_dimension(&d.name, strings(&["device/+/auth", "admin/#"]))
        .expect("updated");
    assert_eq!(updated.dimension_type, DimensionType::TopicFilter);
    assert_eq!(updated.creation_date, d.creation_date);
    assert_eq!(updated.string_values.len(), 2);
    fails(
        f.catalog.update_dimension("nope", strings(&["a"])),
        NOT_FOUND,
    );
    fails(f.catalog.update_dimension(&d.name, vec![]), INVALID);
    assert_eq!(f.catalog.dimension(&d.name).expect("describes"), updated);
    fails(f.catalog.dimension("nope"), NOT_FOUND);

    // A dimension on a custom metric is invalid (case 11).
    f.metric("batteryPercentage", CustomMetricType::Number);
    let e = f
        .catalog
        .create_security_profile(
            "sp",
            members_of(json!({"behaviors": [
                {"name": "b", "metric": "batteryPercentage",
                 "metricDimension": {"dimensionName": "TopicFilterForAuthMessages"},
                 "criteria": {"comparisonOperator": "greater-than", "value": {"number": 10}}}]})),
        )
        .expect_err("dimension on a custom metric");
    assert!(
        e.to_string()
            .contains("metricDimension cannot be used with custom metric"),
        "{e}"
    );

    // In use: refused, naming the profile; free again once unused.
    f.profile(
        "uses-dim",
        json!({"additionalMetricsToRetainV2": [{"metric": "aws:num-messages-sent",
               "metricDimension": {"dimensionName": "TopicFilterForAuthMessages"}}]}),
    );
    let e = fails(f.catalog.delete_dimension(&d.name), INVALID);
    assert!(e.to_string().contains("uses-dim"), "{e}");
    f.catalog
        .delete_security_profile("uses-dim", None)
        .expect("deleted");
    f.catalog.delete_dimension(&d.name).expect("deleted");
    f.catalog.delete_dimension(&d.name).expect("already gone");
    assert!(f.catalog.snapshot().dimensions.is_empty());
}

#[test]
fn dimension_and_custom_metric_limits() {
    let f = Fixture::new();
    for i in 0..MAX_DIMENSIONS {
        f.dimension(&format!("d{i}"), &["a"]);
    }
    fails(
        f.catalog
            .create_dimension("one-more", DimensionType::TopicFilter, strings(&["a"]), "t"),
        LIMIT,
    );
    let page = f.catalog.list_dimensions(None, None).expect("lists");
    assert_eq!(page.items.len(), MAX_DIMENSIONS);
    assert_eq!(page.next_token, None);
    for i in 0..MAX_CUSTOM_METRICS {
        f.metric(&format!("m{i}"), CustomMetricType::StringList);
    }
    fails(
        f.catalog
            .create_custom_metric("one-more", CustomMetricType::Number, None, "t"),
        LIMIT,
    );
    // ListCustomMetrics pages by 25 unless told otherwise.
    let page = f.catalog.list_custom_metrics(None, None).expect("lists");
    assert_eq!(page.items.len(), 25);
    assert!(page.next_token.is_some());
}

// --- custom metrics ---

#[test]
fn custom_metric_lifecycle() {
    // Spec case 24, API half.
    let f = Fixture::new();
    fails(
        f.catalog
            .create_custom_metric("aws:battery", CustomMetricType::Number, None, "t1"),
        INVALID,
    );
    let m = f
        .catalog
        .create_custom_metric(
            "batteryPercentage",
            CustomMetricType::Number,
            Some("Battery".into()),
            "t2",
        )
        .expect("created");
    assert_eq!(
        custom_metric_arn(f.catalog.scope(), &m.metric_name),
        "arn:aws:iot:us-east-1:123456789012:custommetric/batteryPercentage"
    );
    let same = f
        .catalog
        .create_custom_metric(
            "batteryPercentage",
            CustomMetricType::Number,
            Some("Battery".into()),
            "t2",
        )
        .expect("retry");
    assert_eq!(same, m);
    fails(
        f.catalog.create_custom_metric(
            "batteryPercentage",
            CustomMetricType::StringList,
            None,
            "t3",
        ),
        EXISTS,
    );
    fails(
        f.catalog
            .create_custom_metric("x", CustomMetricType::Number, Some("tab\t".into()), "t4"),
        INVALID,
    );

    let renamed = f
        .catalog
        .update_custom_metric("batteryPercentage", "Battery level".into())
        .expect("updated");
    assert_eq!(renamed.display_name.as_deref(), Some("Battery level"));
    assert_eq!(renamed.metric_type, CustomMetricType::Number);
    fails(
        f.catalog.update_custom_metric("nope", "x".into()),
        NOT_FOUND,
    );
    assert_eq!(
        f.catalog
            .custom_metric("batteryPercentage")
            .expect("describes"),
        renamed
    );

    f.profile(
        "battery",
        json!({"behaviors": [{"name": "low", "metric": "batteryPercentage",
               "criteria": {"comparisonOperator": "greater-than", "value": {"number": 10}}}]}),
    );
    let e = fails(f.catalog.delete_custom_metric("batteryPercentage"), INVALID);
    assert!(e.to_string().contains("battery"), "{e}");
    let users = f.names(ProfileFilter {
        metric_name: Some("batteryPercentage"),
        ..ProfileFilter::default()
    });
    assert_eq!(users, ["battery"]);
    f.catalog
        .update_security_profile(
            "battery",
            ProfileUpdate {
                delete: DeleteFlags {
                    delete_behaviors: true,
                    ..DeleteFlags::default()
                },
                ..ProfileUpdate::default()
            },
        )
        .expect("behaviour removed");
    f.catalog
        .delete_custom_metric("batteryPercentage")
        .expect("deleted");
    f.catalog
        .delete_custom_metric("batteryPercentage")
        .expect("already gone");
    assert!(f
        .catalog
        .snapshot()
        .catalogue
        .get("batteryPercentage")
        .is_none());
}

// --- snapshots and durability ---

#[test]
fn every_write_publishes_a_new_generation() {
    let f = Fixture::new();
    let before = f.catalog.snapshot();
    f.profile("sp", json!({}));
    let after_profile = f.catalog.snapshot();
    assert!(after_profile.generation > before.generation);
    assert!(before.profiles.is_empty(), "old snapshots never change");
    f.metric("m", CustomMetricType::Number);
    let after_metric = f.catalog.snapshot();
    assert!(after_metric.generation > after_profile.generation);
    assert!(after_metric.catalogue.get("m").is_some());
    assert!(after_profile.catalogue.get("m").is_none());
    // Refused writes and no-ops publish nothing.
    let _ = f.catalog.delete_dimension("never-existed");
    let _ = f
        .catalog
        .create_security_profile("sp", ProfileMembers::default());
    assert_eq!(f.catalog.snapshot().generation, after_metric.generation);
    // Clones share the state.
    let other = f.catalog.clone();
    other.delete_security_profile("sp", None).expect("deleted");
    assert!(f.catalog.snapshot().profiles.is_empty());
}

#[test]
fn everything_survives_a_reopen() {
    let f = Fixture::new();
    let g = f.group("fleet", None);
    f.dimension("auth", &["device/+/auth"]);
    f.metric("batteryPercentage", CustomMetricType::Number);
    f.profile(
        "sp",
        json!({"securityProfileDescription": "kept",
               "behaviors": [{"name": "b", "metric": "aws:num-messages-sent",
                              "metricDimension": {"dimensionName": "auth", "operator": "NOT_IN"},
                              "criteria": {"comparisonOperator": "less-than",
                                           "value": {"count": 5}, "durationSeconds": 300}}],
               "alertTargets": {"SNS": {"alertTargetArn": "arn:aws:sns:us-east-1:123456789012:t",
                                        "roleArn": "arn:aws:iam::123456789012:role/r"}}}),
    );
    f.catalog
        .attach_security_profile("sp", &g)
        .expect("attached");
    f.catalog
        .attach_security_profile("sp", &scope_arn("all/unregistered-things"))
        .expect("attached");
    let before = f.catalog.snapshot();

    let f = f.reopen();
    let after = f.catalog.snapshot();
    assert_eq!(after.generation, before.generation);
    assert_eq!(after.profiles, before.profiles);
    assert_eq!(after.dimensions, before.dimensions);
    assert_eq!(after.custom_metrics, before.custom_metrics);
    assert_eq!(after.attachments, before.attachments);
    assert_eq!(after.catalogue, before.catalogue);

    // Generations keep growing after a restart.
    f.catalog
        .delete_security_profile("sp", None)
        .expect("deleted");
    let generation = f.catalog.snapshot().generation;
    assert!(generation > before.generation);
    let f = f.reopen();
    let snap = f.catalog.snapshot();
    assert_eq!(snap.generation, generation);
    assert!(snap.profiles.is_empty() && snap.attachments.is_empty());
    assert_eq!(snap.dimensions.len(), 1);
}

#[test]
fn durations_can_be_extended() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry =
        Registry::open(dir.path().join("registry.redb"), scope()).expect("registry opens");
    let db = DefenderDb::open(dir.path()).expect("opens");
    let catalog = Catalog::open_with_durations(&db, registry, vec![5, 300]).expect("catalog opens");
    catalog
        .create_security_profile(
            "fast",
            members_of(
                json!({"behaviors": [{"name": "b", "metric": "aws:num-messages-sent",
                "criteria": {"comparisonOperator": "less-than", "value": {"count": 5},
                             "durationSeconds": 5}}]}),
            ),
        )
        .expect("a 5 s window is allowed here");
}
