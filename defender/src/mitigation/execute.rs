//! Doing what a mitigation action says, on the live broker through the
//! registry (whose change notifications reach every connection at once):
//! deactivating a certificate or CA, moving things into groups, replacing
//! a policy's default version, raising a log level, publishing to a sink.

use std::sync::Arc;

use serde_json::json;
use wardmq_broker::registry::{
    CaCertificateStatus, CertificateStatus, LogLevel, LogTarget, LogTargetType, LoggingOptions,
    PageRequest, Registry, RegistryError, MAX_POLICY_VERSIONS,
};

use super::model::{ActionDefinition, ActionType};
use super::validate::sns_sink;
use crate::audit::model::AuditFinding;
use crate::detect::model::ViolationEvent;

/// Hands a JSON body to the alert sink an SNS topic ARN names; `Err` when
/// it names none.
pub type SnsPublish = Arc<dyn Fn(&str, Vec<u8>) -> Result<(), String> + Send + Sync>;

/// The policy document REPLACE_DEFAULT_POLICY_VERSION installs. IoT
/// policy documents need a statement, so "blank" is an explicit deny of
/// every IoT action: whoever the policy is attached to loses everything,
/// whatever their other policies allow (deny wins).
pub const BLANK_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*","Resource":"*"}]}"#;

/// What an action is applied to.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    /// An audit finding (its non-compliant resource).
    Finding(&'a AuditFinding),
    /// A thing, from a Detect violation.
    Thing {
        thing: &'a str,
        event: Option<&'a ViolationEvent>,
    },
}

/// Why one execution failed: an error code and a message, as the
/// executions list shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecError {
    pub code: String,
    pub message: String,
}

impl ExecError {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<RegistryError> for ExecError {
    fn from(e: RegistryError) -> Self {
        Self::new(e.aws_code(), e.to_string())
    }
}

fn missing(what: &str) -> ExecError {
    ExecError::new(
        "InvalidRequestException",
        format!("the target has no {what} this action applies to"),
    )
}

/// Every item of a paged registry list.
fn all<T>(
    mut list: impl FnMut(&PageRequest) -> Result<wardmq_broker::registry::Page<T>, RegistryError>,
) -> Result<Vec<T>, RegistryError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = list(&PageRequest::new(Some(250), token))?;
        out.extend(page.items);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

#[derive(Clone)]
pub struct Executor {
    registry: Registry,
    sns: SnsPublish,
}

impl Executor {
    pub fn new(registry: Registry, sns: SnsPublish) -> Self {
        Self { registry, sns }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Applies `action` to `subject` for task `task_id`.
    pub fn run(
        &self,
        task_id: &str,
        action: &ActionDefinition,
        subject: Subject<'_>,
    ) -> Result<(), ExecError> {
        let kind = action
            .action_type()
            .ok_or_else(|| ExecError::new("InvalidRequestException", "action has no params"))?;
        let p = &action.action_params;
        match kind {
            ActionType::UpdateDeviceCertificate => {
                for id in self.device_certificates(subject)? {
                    self.registry
                        .update_certificate(&id, CertificateStatus::Inactive)?;
                }
                Ok(())
            }
            ActionType::UpdateCaCertificate => {
                for id in self.ca_certificates(subject)? {
                    self.registry.update_ca_certificate(
                        &id,
                        Some(CaCertificateStatus::Inactive),
                        None,
                    )?;
                }
                Ok(())
            }
            ActionType::AddThingsToThingGroup => {
                let groups = p
                    .add_things_to_thing_group_params
                    .as_ref()
                    .map(|g| g.thing_group_names.clone())
                    .unwrap_or_default();
                // Every group must exist before anything moves, so a typo
                // fails the action without a half-done membership.
                if let Some(g) = groups
                    .iter()
                    .find(|g| self.registry.thing_group(g).is_none())
                {
                    return Err(ExecError::new(
                        "ResourceNotFoundException",
                        format!("thing group {g} does not exist"),
                    ));
                }
                for thing in self.things(subject)? {
                    for g in &groups {
                        self.registry.add_thing_to_thing_group(g, &thing)?;
                    }
                }
                Ok(())
            }
            ActionType::ReplaceDefaultPolicyVersion => {
                let name = match subject {
                    Subject::Finding(f) => f
                        .non_compliant_resource
                        .resource_identifier
                        .policy_version_identifier
                        .as_ref()
                        .and_then(|p| p.policy_name.clone()),
                    Subject::Thing { .. } => None,
                }
                .ok_or_else(|| missing("policy"))?;
                self.replace_default_version(&name)
            }
            ActionType::EnableIotLogging => {
                let params = p
                    .enable_iot_logging_params
                    .as_ref()
                    .ok_or_else(|| missing("logging parameters"))?;
                let level: LogLevel = params.log_level.parse()?;
                match subject {
                    Subject::Finding(_) => {
                        // The account's logging (LOGGING_DISABLED_CHECK).
                        self.registry.set_logging_options(LoggingOptions {
                            role_arn: Some(params.role_arn_for_logging.clone()),
                            default_log_level: level,
                            disable_all_logs: false,
                        })?;
                    }
                    Subject::Thing { thing, .. } => {
                        // One device: its client ID is its thing name.
                        self.registry.set_log_level(
                            LogTarget {
                                target_type: LogTargetType::ClientId,
                                target_name: Some(thing.to_owned()),
                            },
                            level,
                        )?;
                    }
                }
                Ok(())
            }
            ActionType::PublishFindingToSns => {
                let topic = p
                    .publish_finding_to_sns_params
                    .as_ref()
                    .map(|s| s.topic_arn.as_str())
                    .ok_or_else(|| missing("topic"))?;
                if sns_sink(topic).is_none() {
                    return Err(ExecError::new(
                        "InvalidRequestException",
                        format!("{topic} is not an SNS topic ARN"),
                    ));
                }
                let body = match subject {
                    Subject::Finding(f) => json!({
                        "taskId": task_id, "findingId": f.finding_id,
                        "actionName": action.name, "actionId": action.id, "finding": f,
                    }),
                    Subject::Thing { thing, event } => json!({
                        "taskId": task_id, "thingName": thing,
                        "actionName": action.name, "actionId": action.id,
                        "violationEvent": event,
                    }),
                };
                let bytes = serde_json::to_vec(&body)
                    .map_err(|e| ExecError::new("InternalFailureException", e.to_string()))?;
                (self.sns)(topic, bytes).map_err(|m| ExecError::new("InvalidRequestException", m))
            }
        }
    }

    /// Reverses what `action` did to `thing`, where that has a meaning:
    /// leaving the groups ADD_THINGS_TO_THING_GROUP put it in, removing
    /// the log level ENABLE_IOT_LOGGING set. Certificates are never
    /// reactivated automatically (AWS: reactivation is manual only).
    pub fn undo(&self, action: &ActionDefinition, thing: &str) -> Result<bool, ExecError> {
        match action.action_type() {
            Some(ActionType::AddThingsToThingGroup) => {
                if let Some(p) = &action.action_params.add_things_to_thing_group_params {
                    for g in &p.thing_group_names {
                        self.registry.remove_thing_from_thing_group(g, thing)?;
                    }
                }
                Ok(true)
            }
            Some(ActionType::EnableIotLogging) => {
                self.registry.delete_log_level(LogTarget {
                    target_type: LogTargetType::ClientId,
                    target_name: Some(thing.to_owned()),
                })?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A new default version with [`BLANK_POLICY`]. At the version limit
    /// the oldest non-default version makes room (AWS's action would fail
    /// there, leaving the permissive version in force).
    fn replace_default_version(&self, name: &str) -> Result<(), ExecError> {
        let policy = self.registry.policy(name).ok_or_else(|| {
            ExecError::new("ResourceNotFoundException", format!("no policy {name}"))
        })?;
        if policy.versions.len() >= MAX_POLICY_VERSIONS {
            if let Some(oldest) = policy
                .versions
                .keys()
                .find(|v| **v != policy.default_version_id)
            {
                self.registry
                    .delete_policy_version(name, &oldest.to_string())?;
            }
        }
        self.registry
            .create_policy_version(name, BLANK_POLICY, true)?;
        Ok(())
    }

    /// The device certificates of a subject: a finding's, or those
    /// attached to a thing.
    fn device_certificates(&self, subject: Subject<'_>) -> Result<Vec<String>, ExecError> {
        match subject {
            Subject::Finding(f) => f
                .non_compliant_resource
                .resource_identifier
                .device_certificate_id
                .clone()
                .map(|id| vec![id])
                .ok_or_else(|| missing("device certificate")),
            Subject::Thing { thing, .. } => {
                let principals = all(|p| self.registry.list_thing_principals(thing, p))?;
                let scope = self.registry.scope();
                let ids: Vec<String> = principals
                    .iter()
                    .filter_map(|arn| scope.cert_id_of(arn).map(str::to_owned))
                    .collect();
                if ids.is_empty() {
                    return Err(missing("certificate attached"));
                }
                Ok(ids)
            }
        }
    }

    fn ca_certificates(&self, subject: Subject<'_>) -> Result<Vec<String>, ExecError> {
        match subject {
            Subject::Finding(f) => f
                .non_compliant_resource
                .resource_identifier
                .ca_certificate_id
                .clone()
                .map(|id| vec![id])
                .ok_or_else(|| missing("CA certificate")),
            Subject::Thing { .. } => {
                let mut cas: Vec<String> = self
                    .device_certificates(subject)?
                    .iter()
                    .filter_map(|id| self.registry.certificate(id)?.ca_certificate_id)
                    .collect();
                cas.sort();
                cas.dedup();
                if cas.is_empty() {
                    return Err(missing("CA certificate"));
                }
                Ok(cas)
            }
        }
    }

    /// The things of a subject: the thing itself, or the things a
    /// finding's device certificate is attached to.
    fn things(&self, subject: Subject<'_>) -> Result<Vec<String>, ExecError> {
        match subject {
            Subject::Thing { thing, .. } => Ok(vec![thing.to_owned()]),
            Subject::Finding(_) => {
                let mut out = Vec::new();
                for id in self.device_certificates(subject)? {
                    let arn = self.registry.scope().cert_arn(&id);
                    out.extend(all(|p| self.registry.list_principal_things(&arn, p))?);
                }
                if out.is_empty() {
                    return Err(missing("thing attached to the certificate"));
                }
                Ok(out)
            }
        }
    }
}
