//! Unit tests of the mitigation handle against a real registry and store:
//! actions survive a restart, and the Detect task rules refuse what the
//! spec refuses before anything runs.

use std::sync::Arc;

use serde_json::json;
use wardmq_broker::registry::{Registry, Scope};

use super::*;
use crate::store::DefenderDb;

fn open(dir: &std::path::Path) -> (Mitigation, DefenderDb) {
    let registry = Registry::open(
        dir.join("registry.redb"),
        Scope::new("us-east-1", "123456789012"),
    )
    .expect("registry");
    let db = DefenderDb::open(dir).expect("db");
    let sns: SnsPublish = Arc::new(|_: &str, _: Vec<u8>| Ok(()));
    let m = Mitigation::open(&db, registry, None, sns, Some(vec!["ops".into()])).expect("open");
    (m, db)
}

fn input(params: serde_json::Value) -> ActionInput {
    serde_json::from_value(json!({
        "roleArn": "arn:aws:iam::123456789012:role/wardmq",
        "actionParams": params,
    }))
    .expect("input")
}

#[test]
fn actions_persist_and_validate() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (m, _db) = open(dir.path());
        let (arn, _) = m
            .create_action(
                "q",
                input(json!({"addThingsToThingGroupParams": {"thingGroupNames": ["Quarantine"]}})),
            )
            .expect("created");
        assert_eq!(arn, "arn:aws:iot:us-east-1:123456789012:mitigationaction/q");
        assert!(matches!(
            m.create_action(
                "q",
                input(json!({"addThingsToThingGroupParams": {"thingGroupNames": ["G"]}}))
            ),
            Err(MitigationError::AlreadyExists { .. })
        ));
        let bad_sink = m.create_action(
            "s",
            input(
                json!({"publishFindingToSnsParams": {"topicArn": "arn:aws:sns:us-east-1:1:nope"}}),
            ),
        );
        assert!(matches!(bad_sink, Err(MitigationError::InvalidRequest(_))));
        m.shutdown();
    }
    let (m, _db) = open(dir.path());
    let a = m.describe_action("q").expect("kept across a restart");
    assert_eq!(a.action_type, ActionType::AddThingsToThingGroup);
    m.delete_action("q").expect("deleted");
    m.delete_action("q")
        .expect("deleting a missing action succeeds");
    assert!(matches!(
        m.describe_action("q"),
        Err(MitigationError::NotFound(_))
    ));
    m.shutdown();
}

#[test]
fn detect_tasks_refuse_bad_input_before_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (m, _db) = open(dir.path());
    let task = |actions: Vec<&str>| -> DetectTaskInput {
        serde_json::from_value(json!({
            "target": {"securityProfileName": "p"},
            "actions": actions,
            "clientRequestToken": "t",
        }))
        .expect("input")
    };
    // No defender attached: Detect is not running.
    assert!(matches!(
        m.start_detect_task("t1", task(vec!["q"])),
        Err(MitigationError::InvalidRequest(_))
    ));
    assert!(matches!(
        m.start_detect_task("t1", task(vec!["q"; 6])),
        Err(MitigationError::InvalidRequest(_))
    ));
    assert!(matches!(
        m.start_detect_task("bad id", task(vec!["q"])),
        Err(MitigationError::InvalidRequest(_))
    ));
    m.shutdown();
}

#[test]
fn blank_policy_is_a_valid_document() {
    let parsed = wardmq_broker::authz::Policy::parse("blank", BLANK_POLICY);
    assert!(parsed.is_ok(), "{parsed:?}");
}
