//! The rules a mitigation request must follow: names, the one-member
//! params of each action type, task ids, targets, limits, and which action
//! types apply to which audit check (spec §5.2, §9).

use super::error::MitigationError;
use super::model::{ActionParams, ActionType, AuditTarget, DetectTarget};
use crate::audit::checks::CheckName;

/// Actions per check (audit task) and per Detect task.
pub const MAX_ACTIONS: usize = 5;
/// Finding ids, violation ids, reason codes per target.
pub const MAX_TARGET_IDS: usize = 25;
/// Thing groups of one ADD_THINGS_TO_THING_GROUP action.
pub const MAX_THING_GROUPS: usize = 10;
/// Mitigation actions kept (AWS's quota could not be confirmed).
pub const MAX_ACTIONS_DEFINED: usize = 1000;

fn invalid(msg: impl Into<String>) -> MitigationError {
    MitigationError::invalid(msg)
}

fn pattern(field: &str, value: &str, max: usize, extra: &[u8]) -> Result<(), MitigationError> {
    if value.is_empty() || value.len() > max {
        return Err(invalid(format!(
            "{field} must be 1 to {max} characters long, got {}",
            value.len()
        )));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    {
        return Err(invalid(format!(
            "{field} {value:?} may contain only letters, digits and {}",
            String::from_utf8_lossy(extra)
        )));
    }
    Ok(())
}

/// `MitigationActionName`: 1–128 of `[a-zA-Z0-9_-]`.
pub fn action_name(name: &str) -> Result<(), MitigationError> {
    pattern("actionName", name, 128, b"_-")
}

/// `MitigationActionsTaskId`: 1–128 of `[a-zA-Z0-9_-]`.
pub fn task_id(id: &str) -> Result<(), MitigationError> {
    pattern("taskId", id, 128, b"_-")
}

/// `ClientRequestToken`: 1–64 of `[a-zA-Z0-9_-]`.
pub fn client_request_token(token: &str) -> Result<(), MitigationError> {
    pattern("clientRequestToken", token, 64, b"_-")
}

/// `RoleArn`: 20–2048 characters. There is no IAM; it is kept and shown.
pub fn role_arn(field: &str, arn: &str) -> Result<(), MitigationError> {
    if arn.len() < 20 || arn.len() > 2048 {
        return Err(invalid(format!(
            "{field} must be 20 to 2048 characters long"
        )));
    }
    Ok(())
}

/// The SNS sink an `arn:aws:sns:REGION:ACCOUNT:NAME` names.
pub fn sns_sink(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:sns:")?;
    let mut parts = rest.splitn(3, ':');
    let (_region, _account, name) = (parts.next()?, parts.next()?, parts.next()?);
    (!name.is_empty()).then_some(name)
}

/// Checks `params` and returns the action's type. `sinks` are the alert
/// sinks a `topicArn` may name (`None`: any).
pub fn params(
    params: &ActionParams,
    sinks: Option<&[String]>,
) -> Result<ActionType, MitigationError> {
    let set = params.types_set();
    let [kind] = set.as_slice() else {
        return Err(invalid(format!(
            "actionParams must have exactly one member, got {}",
            set.len()
        )));
    };
    match kind {
        ActionType::UpdateDeviceCertificate | ActionType::UpdateCaCertificate => {
            let p = params
                .update_device_certificate_params
                .as_ref()
                .or(params.update_ca_certificate_params.as_ref());
            if p.is_none_or(|p| p.action != "DEACTIVATE") {
                return Err(invalid("action must be DEACTIVATE"));
            }
        }
        ActionType::AddThingsToThingGroup => {
            let names = params
                .add_things_to_thing_group_params
                .as_ref()
                .map(|p| p.thing_group_names.as_slice())
                .unwrap_or_default();
            if names.is_empty() || names.len() > MAX_THING_GROUPS {
                return Err(invalid(format!(
                    "thingGroupNames must have 1 to {MAX_THING_GROUPS} names, got {}",
                    names.len()
                )));
            }
            for n in names {
                pattern("thingGroupNames", n, 128, b":_-")?;
            }
        }
        ActionType::ReplaceDefaultPolicyVersion => {
            let t = params
                .replace_default_policy_version_params
                .as_ref()
                .map(|p| p.template_name.as_str());
            if t != Some("BLANK_POLICY") {
                return Err(invalid("templateName must be BLANK_POLICY"));
            }
        }
        ActionType::EnableIotLogging => {
            if let Some(p) = &params.enable_iot_logging_params {
                role_arn("roleArnForLogging", &p.role_arn_for_logging)?;
                match p.log_level.as_str() {
                    "DEBUG" | "INFO" | "ERROR" | "WARN" => {}
                    "DISABLED" => {
                        return Err(invalid(
                            "logLevel DISABLED is not allowed: the action enables logging",
                        ))
                    }
                    other => {
                        return Err(invalid(format!(
                            "logLevel {other:?} must be DEBUG, INFO, ERROR or WARN"
                        )))
                    }
                }
            }
        }
        ActionType::PublishFindingToSns => {
            if let Some(p) = &params.publish_finding_to_sns_params {
                if p.topic_arn.len() > 350 {
                    return Err(invalid("topicArn must be at most 350 characters long"));
                }
                let Some(name) = sns_sink(&p.topic_arn) else {
                    return Err(invalid(format!(
                        "topicArn {:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
                        p.topic_arn
                    )));
                };
                if sinks.is_some_and(|s| !s.iter().any(|x| x == name)) {
                    return Err(invalid(format!(
                        "topicArn names {name:?}, which is not one of the configured alert sinks"
                    )));
                }
            }
        }
    }
    Ok(*kind)
}

/// The action types besides PUBLISH_FINDING_TO_SNS that apply to a
/// check's findings (spec §5.2).
pub fn applicable(check: CheckName) -> &'static [ActionType] {
    use ActionType::*;
    use CheckName::*;
    match check {
        DeviceCertificateShared
        | DeviceCertificateExpiring
        | DeviceCertificateKeyQuality
        | DeviceCertificateAge
        | RevokedDeviceCertificateStillActive
        | IntermediateCaRevokedForActiveDeviceCertificates => {
            &[UpdateDeviceCertificate, AddThingsToThingGroup]
        }
        CaCertificateExpiring | CaCertificateKeyQuality | RevokedCaCertificateStillActive => {
            &[UpdateCaCertificate]
        }
        IotPolicyOverlyPermissive => &[ReplaceDefaultPolicyVersion],
        LoggingDisabled => &[EnableIotLogging],
        _ => &[],
    }
}

/// Whether `kind` may mitigate `check`'s findings.
pub fn applies(check: CheckName, kind: ActionType) -> bool {
    kind == ActionType::PublishFindingToSns || applicable(check).contains(&kind)
}

/// An audit task's target: exactly one member, within the limits.
pub fn audit_target(t: &AuditTarget) -> Result<(), MitigationError> {
    let set = [
        t.audit_task_id.is_some(),
        t.finding_ids.is_some(),
        t.audit_check_to_reason_code_filter.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set != 1 {
        return Err(invalid(
            "target must have exactly one of auditTaskId, findingIds, auditCheckToReasonCodeFilter",
        ));
    }
    if let Some(id) = &t.audit_task_id {
        pattern("auditTaskId", id, 40, b"-")?;
    }
    if let Some(ids) = &t.finding_ids {
        if ids.is_empty() || ids.len() > MAX_TARGET_IDS {
            return Err(invalid(format!(
                "findingIds must have 1 to {MAX_TARGET_IDS} ids, got {}",
                ids.len()
            )));
        }
    }
    if let Some(filter) = &t.audit_check_to_reason_code_filter {
        if filter.is_empty() {
            return Err(invalid("auditCheckToReasonCodeFilter must name a check"));
        }
        for (check, codes) in filter {
            CheckName::parse_or_err("auditCheckToReasonCodeFilter", check)
                .map_err(MitigationError::InvalidRequest)?;
            if codes.is_empty() || codes.len() > MAX_TARGET_IDS {
                return Err(invalid(format!(
                    "auditCheckToReasonCodeFilter.{check} must have 1 to {MAX_TARGET_IDS} reason codes"
                )));
            }
        }
    }
    Ok(())
}

/// A Detect task's target: `violationIds`, or a security profile (with
/// an optional behavior), not both.
pub fn detect_target(t: &DetectTarget) -> Result<(), MitigationError> {
    match (&t.violation_ids, &t.security_profile_name, &t.behavior_name) {
        (Some(ids), None, None) => {
            if ids.is_empty() || ids.len() > MAX_TARGET_IDS {
                return Err(invalid(format!(
                    "violationIds must have 1 to {MAX_TARGET_IDS} ids, got {}",
                    ids.len()
                )));
            }
            for id in ids {
                pattern("violationIds", id, 128, b"-")?;
            }
            Ok(())
        }
        (None, Some(_), _) => Ok(()),
        (None, None, Some(_)) => Err(invalid("behaviorName needs securityProfileName")),
        (None, None, None) => Err(invalid(
            "target must have violationIds or securityProfileName (and behaviorName)",
        )),
        (Some(_), _, _) => Err(invalid(
            "target must have violationIds or securityProfileName, not both",
        )),
    }
}

/// The number of actions of a check or a Detect task.
pub fn action_count(field: &str, n: usize) -> Result<(), MitigationError> {
    if n == 0 || n > MAX_ACTIONS {
        return Err(invalid(format!(
            "{field} must name 1 to {MAX_ACTIONS} actions, got {n}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mitigation::model::{DeactivateParams, EnableIotLoggingParams};

    fn logging(level: &str) -> ActionParams {
        ActionParams {
            enable_iot_logging_params: Some(EnableIotLoggingParams {
                role_arn_for_logging: "arn:aws:iam::123456789012:role/log".into(),
                log_level: level.into(),
            }),
            ..ActionParams::default()
        }
    }

    #[test]
    fn params_need_exactly_one_member() {
        assert!(params(&ActionParams::default(), None).is_err());
        let mut two = logging("INFO");
        two.update_device_certificate_params = Some(DeactivateParams {
            action: "DEACTIVATE".into(),
        });
        let e = params(&two, None).err().map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("exactly one")));
        assert_eq!(
            params(&logging("INFO"), None).ok(),
            Some(ActionType::EnableIotLogging)
        );
    }

    #[test]
    fn logging_disabled_is_refused() {
        assert!(params(&logging("DISABLED"), None).is_err());
        assert!(params(&logging("LOUD"), None).is_err());
        for l in ["DEBUG", "INFO", "WARN", "ERROR"] {
            assert!(params(&logging(l), None).is_ok(), "{l}");
        }
    }

    #[test]
    fn deactivate_is_the_only_certificate_action() {
        let p = ActionParams {
            update_ca_certificate_params: Some(DeactivateParams {
                action: "REVOKE".into(),
            }),
            ..ActionParams::default()
        };
        assert!(params(&p, None).is_err());
    }

    #[test]
    fn sns_topics_name_a_sink() {
        let p = |arn: &str| ActionParams {
            publish_finding_to_sns_params: Some(super::super::model::PublishFindingToSnsParams {
                topic_arn: arn.into(),
            }),
            ..ActionParams::default()
        };
        let sinks = vec!["ops".to_owned()];
        assert!(params(&p("arn:aws:sns:us-east-1:123456789012:ops"), Some(&sinks)).is_ok());
        assert!(params(&p("arn:aws:sns:us-east-1:123456789012:nope"), Some(&sinks)).is_err());
        assert!(params(&p("not-an-arn"), None).is_err());
    }

    #[test]
    fn applicability_follows_the_spec() {
        use ActionType::*;
        assert!(!applies(
            CheckName::ConflictingClientIds,
            UpdateDeviceCertificate
        ));
        assert!(applies(
            CheckName::ConflictingClientIds,
            PublishFindingToSns
        ));
        assert!(applies(
            CheckName::DeviceCertificateShared,
            AddThingsToThingGroup
        ));
        assert!(!applies(
            CheckName::DeviceCertificateShared,
            UpdateCaCertificate
        ));
        assert!(applies(
            CheckName::CaCertificateExpiring,
            UpdateCaCertificate
        ));
        assert!(applies(
            CheckName::IotPolicyOverlyPermissive,
            ReplaceDefaultPolicyVersion
        ));
        assert!(applies(CheckName::LoggingDisabled, EnableIotLogging));
        assert!(!applies(
            CheckName::LoggingDisabled,
            UpdateDeviceCertificate
        ));
    }

    #[test]
    fn targets_and_limits() {
        assert!(audit_target(&AuditTarget::default()).is_err());
        let both = AuditTarget {
            audit_task_id: Some("abc".into()),
            finding_ids: Some(vec!["f".into()]),
            ..AuditTarget::default()
        };
        assert!(audit_target(&both).is_err());
        let many = AuditTarget {
            finding_ids: Some(vec!["f".into(); 26]),
            ..AuditTarget::default()
        };
        assert!(audit_target(&many).is_err());
        let ids = |n| DetectTarget {
            violation_ids: Some(vec!["v-1".into(); n]),
            ..DetectTarget::default()
        };
        assert!(detect_target(&ids(25)).is_ok());
        assert!(detect_target(&ids(26)).is_err());
        assert!(detect_target(&ids(0)).is_err());
        assert!(detect_target(&DetectTarget::default()).is_err());
        assert!(action_count("actions", 5).is_ok());
        assert!(action_count("actions", 6).is_err());
        assert!(action_count("actions", 0).is_err());
        assert!(task_id("ok-task_1").is_ok());
        assert!(task_id("bad task").is_err());
        assert!(action_name(&"a".repeat(129)).is_err());
    }
}
