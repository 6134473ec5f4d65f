//! The worker thread: runs audit tasks one at a time, check by check, and
//! starts scheduled audits when they are due. It is the only writer of
//! the task it runs; a cancellation of that task is a request it honours
//! between checks.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::certs;
use super::checks::{CheckName, ConfigName};
use super::connlog::{LogExtract, WINDOW_MS};
use super::conns;
use super::crl::{Issuers, Revocations};
use super::inventory::Inventory;
use super::model::{
    AccountAuditConfiguration, AuditCheckDetails, AuditCheckRunStatus, AuditFinding,
    AuditNotificationType, AuditTask, AuditTaskStatus, AuditTaskType, Resource, ResourceIdentifier,
    ResourceType,
};
use super::outcome::{codes, Draft, Outcome};
use super::policy;
use super::schedule;
use super::{lock, random_uuid, suppression_key, Audit, Inner, Work, RETENTION};
use crate::detect::model::Timestamp;
use crate::store::{AuditWrite, StoredSuppression};

/// How often expired findings and tasks are deleted.
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);

pub(super) fn spawn(inner: Arc<Inner>, queue: Receiver<Work>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("wardmq-audit".into())
        .spawn(move || run(&inner, &queue))
}

fn run(inner: &Arc<Inner>, queue: &Receiver<Work>) {
    let mut last_sweep: Option<Instant> = None;
    loop {
        match queue.recv_timeout(inner.settings.scheduler_tick) {
            Ok(Work::Run {
                task_id,
                window_start,
            }) => run_task(inner, &task_id, window_start),
            Ok(Work::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        for (task_id, window_start) in due_scheduled(inner) {
            run_task(inner, &task_id, window_start);
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= RETENTION_SWEEP) {
            last_sweep = Some(Instant::now());
            sweep(inner);
        }
    }
}

/// Deletes findings and tasks older than the retention.
fn sweep(inner: &Inner) {
    let now = (inner.clock)();
    let cutoff = Timestamp::from_millis(
        now.as_millis()
            .saturating_sub(u64::try_from(RETENTION.as_millis()).unwrap_or(u64::MAX)),
    );
    match inner.store.expire(cutoff) {
        Ok(n) if n > 0 => tracing::info!(findings = n, "expired audit findings deleted"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot delete expired audit findings"),
    }
    lock(&inner.state)
        .tasks
        .retain(|_, t| t.task_start_time.as_millis() >= cutoff.as_millis());
}

/// Starts a task for every scheduled audit due today that has not run
/// today; returns (task id, start of its connection window).
fn due_scheduled(inner: &Inner) -> Vec<(String, Timestamp)> {
    let now = (inner.clock)();
    let today = schedule::day_of(now.as_millis());
    let mut st = lock(&inner.state);
    let due: Vec<String> = st
        .scheduled
        .values()
        .filter(|a| a.last_run_day != Some(today) && schedule::due_on(a, today))
        .map(|a| a.scheduled_audit_name.clone())
        .collect();
    let mut out = Vec::new();
    for name in due {
        let Some(mut sa) = st.scheduled.get(&name).cloned() else {
            continue;
        };
        // From where the last run's window ended, or the full 31 days.
        let window_start = sa.last_run_time.unwrap_or(Timestamp::from_millis(
            now.as_millis().saturating_sub(WINDOW_MS),
        ));
        sa.last_run_day = Some(today);
        sa.last_run_time = Some(now);
        let task = Audit::new_task(
            &sa.target_check_names,
            AuditTaskType::ScheduledAuditTask,
            Some(&name),
            now,
        );
        let writes = [
            AuditWrite::PutScheduled(sa.clone()),
            AuditWrite::PutTask(task.clone()),
        ];
        if let Err(e) = inner.store.commit(&writes) {
            tracing::error!(scheduled_audit = %name, error = %e, "cannot start a scheduled audit");
            continue;
        }
        tracing::info!(scheduled_audit = %name, task_id = %task.task_id, "scheduled audit started");
        out.push((task.task_id.clone(), window_start));
        st.scheduled.insert(name, sa);
        st.tasks.insert(task.task_id.clone(), task);
    }
    out
}

/// Marks every unfinished check FAILED and the task FAILED.
pub(super) fn fail_remaining(task: &mut AuditTask, message: &str, now: Timestamp) {
    for d in task.audit_details.values_mut() {
        if d.check_run_status == AuditCheckRunStatus::InProgress {
            d.check_run_status = AuditCheckRunStatus::Failed;
            d.message = Some(message.to_owned());
        }
    }
    task.task_status = AuditTaskStatus::Failed;
    task.task_end_time = Some(now);
}

/// Marks every unfinished check CANCELED and the task CANCELED.
pub(super) fn cancel_remaining(task: &mut AuditTask, now: Timestamp) {
    for d in task.audit_details.values_mut() {
        if d.check_run_status == AuditCheckRunStatus::InProgress {
            d.check_run_status = AuditCheckRunStatus::Canceled;
        }
    }
    task.task_status = AuditTaskStatus::Canceled;
    task.task_end_time = Some(now);
}

fn threshold(config: &AccountAuditConfiguration, check: CheckName, name: ConfigName) -> u32 {
    config
        .audit_check_configurations
        .get(&check)
        .and_then(|c| c.configuration.get(&name))
        .and_then(|v| v.parse().ok())
        .unwrap_or(name.range_and_default().2)
}

/// What a task's checks share, fetched once and only if needed.
struct Context<'a> {
    inner: &'a Inner,
    inventory: Inventory<'a>,
    revocations: OnceCell<Revocations>,
    log: OnceCell<LogExtract>,
    window_start: Timestamp,
    now: Timestamp,
}

impl Context<'_> {
    fn revocations(&self) -> &Revocations {
        self.revocations.get_or_init(|| {
            Revocations::load(&self.inner.settings.crls, self.inventory.ca_certificates())
        })
    }

    fn log(&self) -> &LogExtract {
        self.log
            .get_or_init(|| self.inner.log.extract(self.window_start, self.now))
    }

    fn run(&self, check: CheckName, config: &AccountAuditConfiguration) -> Outcome {
        let now_s = i64::try_from(self.now.as_millis() / 1000).unwrap_or(i64::MAX);
        match check {
            CheckName::DeviceCertificateShared => conns::shared_certificates(self.log(), self.now),
            CheckName::ConflictingClientIds => conns::conflicting_client_ids(self.log()),
            CheckName::DeviceCertificateExpiring => certs::expiring_devices(
                self.inventory.certificates(),
                now_s,
                threshold(config, check, ConfigName::CertExpirationThresholdInDays),
            ),
            CheckName::CaCertificateExpiring => certs::expiring_cas(
                self.inventory.ca_certificates(),
                now_s,
                threshold(config, check, ConfigName::CertExpirationThresholdInDays),
            ),
            CheckName::DeviceCertificateAge => certs::device_age(
                self.inventory.certificates(),
                now_s,
                threshold(config, check, ConfigName::CertAgeThresholdInDays),
            ),
            CheckName::DeviceCertificateKeyQuality => {
                let mut keys = lock(&self.inner.keys);
                certs::key_quality_devices(self.inventory.certificates(), &mut keys)
            }
            CheckName::CaCertificateKeyQuality => {
                let mut keys = lock(&self.inner.keys);
                certs::key_quality_cas(self.inventory.ca_certificates(), &mut keys)
            }
            CheckName::RevokedDeviceCertificateStillActive => {
                let revocations = self.revocations();
                let issuers = Issuers::new(self.inventory.ca_certificates());
                certs::revoked_devices(self.inventory.certificates(), &issuers, revocations)
            }
            CheckName::RevokedCaCertificateStillActive => {
                let revocations = self.revocations();
                let issuers = Issuers::new(self.inventory.ca_certificates());
                certs::revoked_cas(self.inventory.ca_certificates(), &issuers, revocations)
            }
            CheckName::IntermediateCaRevokedForActiveDeviceCertificates => {
                let revocations = self.revocations();
                let cas = self.inventory.ca_certificates();
                let issuers = Issuers::new(cas);
                certs::intermediate_revoked(
                    self.inventory.certificates(),
                    cas,
                    &issuers,
                    revocations,
                )
            }
            CheckName::IotPolicyOverlyPermissive => self.policies(true),
            CheckName::IotPolicyPotentialMisConfiguration => self.policies(false),
            CheckName::LoggingDisabled => {
                let options = self.inventory.logging();
                let mut out = Outcome {
                    total: 1,
                    ..Outcome::default()
                };
                let why = if options.disable_all_logs {
                    Some("disableAllLogs is set in the v2 logging options")
                } else if options.default_log_level == wardmq_broker::registry::LogLevel::Disabled {
                    Some("the default log level is DISABLED")
                } else {
                    None
                };
                if let Some(why) = why {
                    out.drafts.push(Draft {
                        resource: Resource::new(
                            ResourceType::AccountSettings,
                            ResourceIdentifier::account(self.inventory.account()),
                        ),
                        related: Vec::new(),
                        reason: format!("Device activity logging is disabled: {why}."),
                        code: codes::LOGGING_DISABLED,
                    });
                }
                out
            }
            // Refused when enabled; never reached.
            CheckName::AuthenticatedCognitoRoleOverlyPermissive
            | CheckName::UnauthenticatedCognitoRoleOverlyPermissive
            | CheckName::IotRoleAliasAllowsAccessToUnusedServices
            | CheckName::IotRoleAliasOverlyPermissive => Outcome::default(),
        }
    }

    fn policies(&self, permissive: bool) -> Outcome {
        let mut out = Outcome::default();
        for p in self.inventory.policies() {
            let Some(doc) = p.default_document() else {
                continue;
            };
            out.total += 1;
            let parsed = match wardmq_broker::authz::Policy::parse(&p.name, doc) {
                Ok(parsed) => parsed,
                Err(e) => {
                    tracing::warn!(policy = %p.name, error = %e, "stored policy does not parse; not audited");
                    continue;
                }
            };
            let resource = Resource::new(
                ResourceType::IotPolicy,
                ResourceIdentifier::policy_version(&p.name, p.default_version_id),
            );
            if permissive {
                let broad = policy::overly_permissive(&parsed);
                if !broad.is_empty() {
                    out.drafts.push(Draft {
                        resource,
                        related: Vec::new(),
                        reason: format!(
                            "The policy allows data-plane actions on a broad set of devices: {}.",
                            broad.join("; ")
                        ),
                        code: codes::ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS,
                    });
                }
            } else {
                for (code, reason) in policy::misconfigurations(&parsed) {
                    out.drafts.push(Draft {
                        resource: resource.clone(),
                        related: Vec::new(),
                        reason,
                        code,
                    });
                }
            }
        }
        out
    }
}

/// Turns a check's drafts into findings (suppressions applied) and its
/// details. Counts are of distinct resources; a suppressed resource is
/// counted in `suppressedNonCompliantResourcesCount` only, so a check whose
/// only findings are suppressed is compliant.
pub(super) fn finalize(
    task: &AuditTask,
    check: CheckName,
    outcome: Outcome,
    suppressions: &BTreeMap<Vec<u8>, StoredSuppression>,
    now: Timestamp,
) -> (AuditCheckDetails, Vec<AuditFinding>) {
    let mut non_compliant = BTreeSet::new();
    let mut suppressed = BTreeSet::new();
    let mut findings = Vec::with_capacity(outcome.drafts.len());
    for d in outcome.drafts {
        let identifier = d.resource.resource_identifier.canonical();
        let key = suppression_key(check, &identifier);
        let is_suppressed = suppressions
            .get(&key)
            .is_some_and(|s| s.suppression.in_force(now));
        if is_suppressed {
            suppressed.insert(key);
        } else {
            non_compliant.insert(key);
        }
        findings.push(AuditFinding {
            finding_id: random_uuid(),
            task_id: task.task_id.clone(),
            check_name: check,
            task_start_time: task.task_start_time,
            finding_time: now,
            severity: check.severity(),
            non_compliant_resource: d.resource,
            related_resources: d.related,
            reason_for_non_compliance: d.reason,
            reason_for_non_compliance_code: d.code.to_owned(),
            is_suppressed,
        });
    }
    let suppressed_only = suppressed.difference(&non_compliant).count() as u64;
    let compliant = non_compliant.is_empty();
    let details = AuditCheckDetails {
        check_run_status: if compliant {
            AuditCheckRunStatus::CompletedCompliant
        } else {
            AuditCheckRunStatus::CompletedNonCompliant
        },
        check_compliant: Some(compliant),
        total_resources_count: Some(outcome.total.max(non_compliant.len() as u64)),
        non_compliant_resources_count: Some(non_compliant.len() as u64),
        suppressed_non_compliant_resources_count: Some(suppressed_only),
        error_code: None,
        message: outcome.note,
    };
    (details, findings)
}

fn run_task(inner: &Inner, task_id: &str, window_start: Timestamp) {
    let (checks, config, suppressions) = {
        let mut st = lock(&inner.state);
        let Some(task) = st.tasks.get(task_id) else {
            return;
        };
        if task.task_status != AuditTaskStatus::InProgress {
            // Canceled while it waited.
            let task = task.clone();
            notify(inner, &st, &task);
            return;
        }
        let checks: Vec<CheckName> = task.audit_details.keys().copied().collect();
        let config = st.config.clone().unwrap_or_default();
        let suppressions = st.suppressions.clone();
        st.running = Some(task_id.to_owned());
        (checks, config, suppressions)
    };
    let started = Instant::now();
    let ctx = Context {
        inner,
        inventory: Inventory::new(&inner.registry),
        revocations: OnceCell::new(),
        log: OnceCell::new(),
        window_start,
        now: (inner.clock)(),
    };
    let mut seq: u32 = 0;
    for check in checks {
        let canceled = lock(&inner.state).cancel_requested.remove(task_id);
        if canceled {
            finish(inner, task_id, cancel_remaining);
            return;
        }
        let enabled = config
            .audit_check_configurations
            .get(&check)
            .is_some_and(|c| c.enabled)
            && lock(&inner.state)
                .config
                .as_ref()
                .and_then(|c| c.audit_check_configurations.get(&check))
                .is_some_and(|c| c.enabled);
        let check_started = Instant::now();
        let (details, findings) = if enabled {
            // A bug in one check fails that check, not the worker.
            let ran =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.run(check, &config)));
            let task = lock(&inner.state).tasks.get(task_id).cloned();
            let Some(task) = task else { return };
            match ran {
                Ok(outcome) => finalize(&task, check, outcome, &suppressions, (inner.clock)()),
                Err(_) => {
                    tracing::error!(task_id, %check, "audit check panicked");
                    (
                        AuditCheckDetails {
                            check_run_status: AuditCheckRunStatus::Failed,
                            message: Some("internal error while running the check".into()),
                            ..AuditCheckDetails::in_progress()
                        },
                        Vec::new(),
                    )
                }
            }
        } else {
            (
                AuditCheckDetails {
                    check_run_status: AuditCheckRunStatus::Failed,
                    error_code: Some("AUDIT_CHECK_DISABLED".into()),
                    message: Some(format!("{check} was disabled before the audit ran it")),
                    ..AuditCheckDetails::in_progress()
                },
                Vec::new(),
            )
        };
        tracing::debug!(task_id, %check, findings = findings.len(),
            ms = check_started.elapsed().as_millis() as u64, "audit check done");
        let count = u32::try_from(findings.len()).unwrap_or(u32::MAX);
        let mut task = match lock(&inner.state).tasks.get(task_id).cloned() {
            Some(t) => t,
            None => return,
        };
        task.audit_details.insert(check, details);
        let writes = [
            AuditWrite::Findings {
                first_seq: seq,
                findings,
            },
            AuditWrite::PutTask(task.clone()),
        ];
        seq = seq.saturating_add(count);
        if let Err(e) = inner.store.commit(&writes) {
            tracing::error!(task_id, error = %e, "cannot store audit findings");
            finish(inner, task_id, |t, now| {
                fail_remaining(t, &format!("storing findings failed: {e}"), now);
            });
            return;
        }
        lock(&inner.state).tasks.insert(task_id.to_owned(), task);
        inner.changed.notify_all();
    }
    finish(inner, task_id, |t, now| {
        let failed = t
            .audit_details
            .values()
            .any(|d| d.check_run_status == AuditCheckRunStatus::Failed);
        t.task_status = if failed {
            AuditTaskStatus::Failed
        } else {
            AuditTaskStatus::Completed
        };
        t.task_end_time = Some(now);
    });
    tracing::info!(
        task_id,
        ms = started.elapsed().as_millis() as u64,
        "audit finished"
    );
}

/// Applies the final change, persists it, notifies and wakes waiters.
/// The notification is handed over under the state lock, so whoever sees
/// the task finished also sees its notification sent.
fn finish(inner: &Inner, task_id: &str, change: impl FnOnce(&mut AuditTask, Timestamp)) {
    let now = (inner.clock)();
    {
        let mut st = lock(&inner.state);
        st.running = None;
        st.cancel_requested.remove(task_id);
        let Some(task) = st.tasks.get_mut(task_id) else {
            return;
        };
        change(task, now);
        let task = task.clone();
        if let Err(e) = inner.store.commit(&[AuditWrite::PutTask(task.clone())]) {
            tracing::error!(task_id, error = %e, "cannot store the audit task's end");
        }
        notify(inner, &st, &task);
    }
    inner.changed.notify_all();
}

/// The SNS message of a finished task (spec §5.3): counts only.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification<'a> {
    account_id: &'a str,
    task_id: &'a str,
    task_status: AuditTaskStatus,
    task_type: AuditTaskType,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_audit_name: Option<&'a str>,
    failed_checks_count: u32,
    canceled_checks_count: u32,
    non_compliant_checks_count: u32,
    compliant_checks_count: u32,
    total_checks_count: u32,
    task_start_time: u64,
    audit_details: Vec<NotificationDetail<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationDetail<'a> {
    check_name: CheckName,
    check_run_status: AuditCheckRunStatus,
    non_compliant_resources_count: u64,
    total_resources_count: u64,
    suppressed_non_compliant_resources_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
}

pub(crate) fn notification(account: &str, task: &AuditTask) -> Vec<u8> {
    let s = task.statistics();
    let n = Notification {
        account_id: account,
        task_id: &task.task_id,
        task_status: task.task_status,
        task_type: task.task_type,
        scheduled_audit_name: task.scheduled_audit_name.as_deref(),
        failed_checks_count: s.failed_checks,
        canceled_checks_count: s.canceled_checks,
        non_compliant_checks_count: s.non_compliant_checks,
        compliant_checks_count: s.compliant_checks,
        total_checks_count: s.total_checks,
        task_start_time: task.task_start_time.as_millis(),
        audit_details: task
            .audit_details
            .iter()
            .map(|(c, d)| NotificationDetail {
                check_name: *c,
                check_run_status: d.check_run_status,
                non_compliant_resources_count: d.non_compliant_resources_count.unwrap_or(0),
                total_resources_count: d.total_resources_count.unwrap_or(0),
                suppressed_non_compliant_resources_count: d
                    .suppressed_non_compliant_resources_count
                    .unwrap_or(0),
                message: d.message.as_deref(),
                error_code: d.error_code.as_deref(),
            })
            .collect(),
    };
    serde_json::to_vec(&n).unwrap_or_default()
}

/// Sends the notification of a finished task, if a target is enabled.
/// The notifier must not block (the alert router only queues).
fn notify(inner: &Inner, st: &super::State, task: &AuditTask) {
    let Some(notify) = &inner.notify else {
        return;
    };
    let target = st.config.as_ref().and_then(|c| {
        c.audit_notification_target_configurations
            .get(&AuditNotificationType::Sns)
            .filter(|t| t.enabled)
            .and_then(|t| t.target_arn.clone())
    });
    if let Some(arn) = target {
        notify(&arn, notification(&inner.registry.scope().account, task));
    }
}
