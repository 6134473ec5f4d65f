//! The mitigation shapes, with the member names of the API model, so the
//! admin API serialises them as they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::detect::model::Timestamp;

/// `MitigationActionType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionType {
    UpdateDeviceCertificate,
    UpdateCaCertificate,
    AddThingsToThingGroup,
    ReplaceDefaultPolicyVersion,
    EnableIotLogging,
    PublishFindingToSns,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdateDeviceCertificate => "UPDATE_DEVICE_CERTIFICATE",
            Self::UpdateCaCertificate => "UPDATE_CA_CERTIFICATE",
            Self::AddThingsToThingGroup => "ADD_THINGS_TO_THING_GROUP",
            Self::ReplaceDefaultPolicyVersion => "REPLACE_DEFAULT_POLICY_VERSION",
            Self::EnableIotLogging => "ENABLE_IOT_LOGGING",
            Self::PublishFindingToSns => "PUBLISH_FINDING_TO_SNS",
        }
    }

    pub fn parse(s: &str) -> Option<ActionType> {
        [
            Self::UpdateDeviceCertificate,
            Self::UpdateCaCertificate,
            Self::AddThingsToThingGroup,
            Self::ReplaceDefaultPolicyVersion,
            Self::EnableIotLogging,
            Self::PublishFindingToSns,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// `UpdateDeviceCertificateParams` / `UpdateCACertificateParams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeactivateParams {
    pub action: String,
}

/// `AddThingsToThingGroupParams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddThingsToThingGroupParams {
    pub thing_group_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_dynamic_groups: Option<bool>,
}

/// `ReplaceDefaultPolicyVersionParams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplaceDefaultPolicyVersionParams {
    pub template_name: String,
}

/// `EnableIoTLoggingParams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnableIotLoggingParams {
    pub role_arn_for_logging: String,
    pub log_level: String,
}

/// `PublishFindingToSnsParams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishFindingToSnsParams {
    pub topic_arn: String,
}

/// `MitigationActionParams`: exactly one member is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_device_certificate_params: Option<DeactivateParams>,
    #[serde(
        default,
        rename = "updateCACertificateParams",
        skip_serializing_if = "Option::is_none"
    )]
    pub update_ca_certificate_params: Option<DeactivateParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_things_to_thing_group_params: Option<AddThingsToThingGroupParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_default_policy_version_params: Option<ReplaceDefaultPolicyVersionParams>,
    #[serde(
        default,
        rename = "enableIoTLoggingParams",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_iot_logging_params: Option<EnableIotLoggingParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_finding_to_sns_params: Option<PublishFindingToSnsParams>,
}

impl ActionParams {
    /// The types of the members that are set.
    pub fn types_set(&self) -> Vec<ActionType> {
        let mut out = Vec::new();
        if self.update_device_certificate_params.is_some() {
            out.push(ActionType::UpdateDeviceCertificate);
        }
        if self.update_ca_certificate_params.is_some() {
            out.push(ActionType::UpdateCaCertificate);
        }
        if self.add_things_to_thing_group_params.is_some() {
            out.push(ActionType::AddThingsToThingGroup);
        }
        if self.replace_default_policy_version_params.is_some() {
            out.push(ActionType::ReplaceDefaultPolicyVersion);
        }
        if self.enable_iot_logging_params.is_some() {
            out.push(ActionType::EnableIotLogging);
        }
        if self.publish_finding_to_sns_params.is_some() {
            out.push(ActionType::PublishFindingToSns);
        }
        out
    }
}

/// A mitigation action as stored and described.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MitigationAction {
    pub action_name: String,
    pub action_type: ActionType,
    pub action_arn: String,
    pub action_id: String,
    pub role_arn: String,
    pub action_params: ActionParams,
    pub creation_date: Timestamp,
    pub last_modified_date: Timestamp,
}

impl MitigationAction {
    /// The `MitigationAction` shape tasks show in `actionsDefinition`.
    pub fn definition(&self) -> ActionDefinition {
        ActionDefinition {
            name: self.action_name.clone(),
            id: self.action_id.clone(),
            role_arn: self.role_arn.clone(),
            action_params: self.action_params.clone(),
        }
    }
}

/// `MitigationAction` (the definition a task ran with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionDefinition {
    pub name: String,
    pub id: String,
    pub role_arn: String,
    pub action_params: ActionParams,
}

impl ActionDefinition {
    pub fn action_type(&self) -> Option<ActionType> {
        self.action_params.types_set().first().copied()
    }
}

/// `AuditMitigationActionsTaskStatus` / `DetectMitigationActionsTaskStatus`
/// share IN_PROGRESS, FAILED and CANCELED; the audit's success is
/// COMPLETED, Detect's SUCCESSFUL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    InProgress,
    Completed,
    Successful,
    Failed,
    Canceled,
}

/// Execution statuses of both families (`AuditMitigationActionsExecutionStatus`
/// and `DetectMitigationActionExecutionStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    InProgress,
    Completed,
    Successful,
    Failed,
    Canceled,
    Skipped,
    Pending,
}

/// `AuditMitigationActionsTaskTarget`: exactly one member is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_check_to_reason_code_filter: Option<BTreeMap<String, Vec<String>>>,
}

/// `TaskStatisticsForAuditCheck`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatistics {
    pub total_findings_count: u64,
    pub failed_findings_count: u64,
    pub succeeded_findings_count: u64,
    pub skipped_findings_count: u64,
    pub canceled_findings_count: u64,
}

/// An audit mitigation actions task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditMitigationTask {
    pub task_id: String,
    pub task_status: TaskStatus,
    pub start_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    pub task_statistics: BTreeMap<String, CheckStatistics>,
    pub target: AuditTarget,
    pub audit_check_to_actions_mapping: BTreeMap<String, Vec<String>>,
    pub actions_definition: Vec<ActionDefinition>,
    /// Not in the API: the token it was started with.
    #[serde(default)]
    pub client_request_token: String,
    /// Not in the API: the audit tasks its findings come from (for the
    /// `auditTaskId` filter of ListAuditMitigationActionsTasks).
    #[serde(default)]
    pub audit_task_ids: Vec<String>,
}

/// `AuditMitigationActionExecutionMetadata`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditExecution {
    pub task_id: String,
    pub finding_id: String,
    pub action_name: String,
    pub action_id: String,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `DetectMitigationActionsTaskTarget`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_profile_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior_name: Option<String>,
}

/// `ViolationEventOccurrenceRange`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OccurrenceRange {
    pub start_time: Timestamp,
    pub end_time: Timestamp,
}

/// `DetectMitigationActionsTaskStatistics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectStatistics {
    pub actions_executed: u64,
    pub actions_skipped: u64,
    pub actions_failed: u64,
}

/// `DetectMitigationActionsTaskSummary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectMitigationTask {
    pub task_id: String,
    pub task_status: TaskStatus,
    pub task_start_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_end_time: Option<Timestamp>,
    pub target: DetectTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation_event_occurrence_range: Option<OccurrenceRange>,
    pub only_active_violations_included: bool,
    pub suppressed_alerts_included: bool,
    pub actions_definition: Vec<ActionDefinition>,
    pub task_statistics: DetectStatistics,
    #[serde(default, skip_serializing)]
    pub client_request_token: String,
}

/// `DetectMitigationActionExecution`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectExecution {
    pub task_id: String,
    pub violation_id: String,
    pub action_name: String,
    pub thing_name: String,
    pub execution_start_date: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_end_date: Option<Timestamp>,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
