//! The audit's AWS shapes, with the member names of the API model, so the
//! admin API serialises them as they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::checks::{CheckName, ConfigName, Severity};
use crate::detect::model::Timestamp;

/// `ResourceType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceType {
    DeviceCertificate,
    CaCertificate,
    IotPolicy,
    CognitoIdentityPool,
    ClientId,
    AccountSettings,
    RoleAlias,
    IamRole,
    IssuerCertificate,
}

/// `PolicyVersionIdentifier`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionIdentifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version_id: Option<String>,
}

/// `IssuerCertificateIdentifier`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerCertificateIdentifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_certificate_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_certificate_serial_number: Option<String>,
}

/// `ResourceIdentifier`: one of its members identifies the resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceIdentifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_certificate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito_identity_pool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version_identifier: Option<PolicyVersionIdentifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_alias_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_certificate_identifier: Option<IssuerCertificateIdentifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_certificate_arn: Option<String>,
}

impl ResourceIdentifier {
    pub fn device_certificate(id: &str) -> Self {
        Self {
            device_certificate_id: Some(id.to_owned()),
            ..Self::default()
        }
    }

    pub fn ca_certificate(id: &str) -> Self {
        Self {
            ca_certificate_id: Some(id.to_owned()),
            ..Self::default()
        }
    }

    pub fn client(id: &str) -> Self {
        Self {
            client_id: Some(id.to_owned()),
            ..Self::default()
        }
    }

    pub fn policy_version(name: &str, version: u64) -> Self {
        Self {
            policy_version_identifier: Some(PolicyVersionIdentifier {
                policy_name: Some(name.to_owned()),
                policy_version_id: Some(version.to_string()),
            }),
            ..Self::default()
        }
    }

    pub fn account(account: &str) -> Self {
        Self {
            account: Some(account.to_owned()),
            ..Self::default()
        }
    }

    /// The same identifier in the form findings use, so a suppression or
    /// a filter written with `0x…` or upper-case hex still matches:
    /// certificate ids lower-case without `0x`.
    pub fn canonical(&self) -> Self {
        let cert = |id: &Option<String>| {
            id.as_ref().map(|s| {
                s.strip_prefix("0x")
                    .or_else(|| s.strip_prefix("0X"))
                    .unwrap_or(s)
                    .to_ascii_lowercase()
            })
        };
        let mut out = self.clone();
        out.device_certificate_id = cert(&self.device_certificate_id);
        out.ca_certificate_id = cert(&self.ca_certificate_id);
        if let Some(i) = &mut out.issuer_certificate_identifier {
            i.issuer_id = cert(&i.issuer_id);
        }
        out
    }

    /// How many members are set (a suppression must name exactly one
    /// resource).
    pub fn members_set(&self) -> usize {
        [
            self.device_certificate_id.is_some(),
            self.ca_certificate_id.is_some(),
            self.cognito_identity_pool_id.is_some(),
            self.client_id.is_some(),
            self.policy_version_identifier.is_some(),
            self.account.is_some(),
            self.iam_role_arn.is_some(),
            self.role_alias_arn.is_some(),
            self.issuer_certificate_identifier.is_some(),
            self.device_certificate_arn.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count()
    }

    /// Whether every member set in `self` (a filter) has the same value in
    /// `other`.
    pub fn matches(&self, other: &ResourceIdentifier) -> bool {
        fn same<T: PartialEq>(filter: &Option<T>, value: &Option<T>) -> bool {
            filter.is_none() || filter == value
        }
        same(&self.device_certificate_id, &other.device_certificate_id)
            && same(&self.ca_certificate_id, &other.ca_certificate_id)
            && same(
                &self.cognito_identity_pool_id,
                &other.cognito_identity_pool_id,
            )
            && same(&self.client_id, &other.client_id)
            && same(
                &self.policy_version_identifier,
                &other.policy_version_identifier,
            )
            && same(&self.account, &other.account)
            && same(&self.iam_role_arn, &other.iam_role_arn)
            && same(&self.role_alias_arn, &other.role_alias_arn)
            && same(
                &self.issuer_certificate_identifier,
                &other.issuer_certificate_identifier,
            )
            && same(&self.device_certificate_arn, &other.device_certificate_arn)
    }
}

/// `NonCompliantResource` and `RelatedResource` (the same three members).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub resource_type: ResourceType,
    pub resource_identifier: ResourceIdentifier,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_info: BTreeMap<String, String>,
}

impl Resource {
    pub fn new(resource_type: ResourceType, resource_identifier: ResourceIdentifier) -> Self {
        Self {
            resource_type,
            resource_identifier,
            additional_info: BTreeMap::new(),
        }
    }

    pub fn info(mut self, key: &str, value: impl Into<String>) -> Self {
        self.additional_info.insert(key.to_owned(), value.into());
        self
    }
}

/// `AuditFinding`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditFinding {
    pub finding_id: String,
    pub task_id: String,
    pub check_name: CheckName,
    pub task_start_time: Timestamp,
    pub finding_time: Timestamp,
    pub severity: Severity,
    pub non_compliant_resource: Resource,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_resources: Vec<Resource>,
    pub reason_for_non_compliance: String,
    pub reason_for_non_compliance_code: String,
    pub is_suppressed: bool,
}

/// How many related resources DescribeAuditFinding and ListAuditFindings
/// show; ListRelatedResourcesForAuditFinding pages through all of them
/// (the model: "not limited to 10 resources").
pub const RELATED_RESOURCES_SHOWN: usize = 10;

impl AuditFinding {
    /// The finding as DescribeAuditFinding and ListAuditFindings show it:
    /// at most [`RELATED_RESOURCES_SHOWN`] related resources, and none for
    /// the intermediate-CA check (the model says to page them with
    /// ListRelatedResourcesForAuditFinding).
    pub fn for_listing(&self) -> AuditFinding {
        let mut f = self.clone();
        if f.check_name == CheckName::IntermediateCaRevokedForActiveDeviceCertificates {
            f.related_resources.clear();
        } else {
            f.related_resources.truncate(RELATED_RESOURCES_SHOWN);
        }
        f
    }
}

/// `AuditTaskStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditTaskStatus {
    InProgress,
    Completed,
    Failed,
    Canceled,
}

/// `AuditTaskType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditTaskType {
    OnDemandAuditTask,
    ScheduledAuditTask,
}

/// `AuditCheckRunStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditCheckRunStatus {
    InProgress,
    WaitingForDataCollection,
    Canceled,
    CompletedCompliant,
    CompletedNonCompliant,
    Failed,
}

/// `AuditCheckDetails`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditCheckDetails {
    pub check_run_status: AuditCheckRunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_compliant: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_resources_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_compliant_resources_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_non_compliant_resources_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AuditCheckDetails {
    pub fn in_progress() -> Self {
        Self {
            check_run_status: AuditCheckRunStatus::InProgress,
            check_compliant: None,
            total_resources_count: None,
            non_compliant_resources_count: None,
            suppressed_non_compliant_resources_count: None,
            error_code: None,
            message: None,
        }
    }
}

/// `TaskStatistics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatistics {
    pub total_checks: u32,
    pub in_progress_checks: u32,
    pub waiting_for_data_collection_checks: u32,
    pub compliant_checks: u32,
    pub non_compliant_checks: u32,
    pub failed_checks: u32,
    pub canceled_checks: u32,
}

impl TaskStatistics {
    pub fn of(details: &BTreeMap<CheckName, AuditCheckDetails>) -> Self {
        let mut s = TaskStatistics {
            total_checks: u32::try_from(details.len()).unwrap_or(u32::MAX),
            ..Self::default()
        };
        for d in details.values() {
            let n = match d.check_run_status {
                AuditCheckRunStatus::InProgress => &mut s.in_progress_checks,
                AuditCheckRunStatus::WaitingForDataCollection => {
                    &mut s.waiting_for_data_collection_checks
                }
                AuditCheckRunStatus::Canceled => &mut s.canceled_checks,
                AuditCheckRunStatus::CompletedCompliant => &mut s.compliant_checks,
                AuditCheckRunStatus::CompletedNonCompliant => &mut s.non_compliant_checks,
                AuditCheckRunStatus::Failed => &mut s.failed_checks,
            };
            *n += 1;
        }
        s
    }
}

/// One audit task: DescribeAuditTask, and what ListAuditTasks lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditTask {
    pub task_id: String,
    pub task_status: AuditTaskStatus,
    pub task_type: AuditTaskType,
    pub task_start_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_audit_name: Option<String>,
    pub audit_details: BTreeMap<CheckName, AuditCheckDetails>,
    /// When it ended (not in the API; kept for the record and retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_end_time: Option<Timestamp>,
}

impl AuditTask {
    pub fn statistics(&self) -> TaskStatistics {
        TaskStatistics::of(&self.audit_details)
    }
}

/// `AuditCheckConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditCheckConfiguration {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configuration: BTreeMap<ConfigName, String>,
}

/// `AuditNotificationTarget`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditNotificationTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub enabled: bool,
}

/// `AuditNotificationType`: only `SNS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuditNotificationType {
    #[serde(rename = "SNS")]
    Sns,
}

/// DescribeAccountAuditConfiguration's answer, and what is stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAuditConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub audit_notification_target_configurations:
        BTreeMap<AuditNotificationType, AuditNotificationTarget>,
    #[serde(default)]
    pub audit_check_configurations: BTreeMap<CheckName, AuditCheckConfiguration>,
}

/// `AuditFrequency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditFrequency {
    Daily,
    Weekly,
    Biweekly,
    Monthly,
}

/// `DayOfWeek`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DayOfWeek {
    Sun,
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
}

impl DayOfWeek {
    /// 0 = Sunday … 6 = Saturday.
    pub fn index(self) -> u32 {
        self as u32
    }
}

/// A scheduled audit (DescribeScheduledAudit's members), with what the
/// scheduler keeps about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledAudit {
    pub scheduled_audit_name: String,
    pub scheduled_audit_arn: String,
    pub frequency: AuditFrequency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_month: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_week: Option<DayOfWeek>,
    pub target_check_names: Vec<CheckName>,
    /// Days since 1970-01-01 (UTC) of the creation or last schedule
    /// change: the first day it may run, and the anchor of BIWEEKLY.
    pub anchor_day: i64,
    /// The UTC day it last started a task, so it runs once per due day,
    /// also across restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_day: Option<i64>,
    /// When its last task started, for the connection checks' window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_time: Option<Timestamp>,
}

/// `AuditSuppression`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditSuppression {
    pub check_name: CheckName,
    pub resource_identifier: ResourceIdentifier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_indefinitely: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl AuditSuppression {
    /// Whether it suppresses findings at `now`.
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.suppress_indefinitely == Some(true)
            || self
                .expiration_date
                .is_none_or(|end| end.as_millis() > now.as_millis())
    }
}
