//! Device Defender Audit: the account audit configuration, on-demand and
//! scheduled audit tasks running the checks of spec §5.2 on the broker's
//! real data (registry, CRL files, the connection log), findings kept 90
//! days, suppressions, and an SNS-shaped notification per finished task.
//!
//! ```text
//!  admin API ──▶ Audit (config, schedules, suppressions, tasks: in memory + defender.redb)
//!                  │ StartOnDemandAuditTask / scheduler tick
//!                  ▼
//!         worker thread `wardmq-audit`: one task at a time, check by check
//!           registry ─┐  CRL files ─┐  ConnectionLog (an Observer) ─┐
//!                     ▼             ▼                               ▼
//!                   findings ──(one redb commit per check)──▶ defender.redb
//!                     └─ on completion ──▶ Notify(targetArn, JSON) ──▶ alert sink
//! ```
//!
//! The API is synchronous; calls that write wait for a redb commit, so
//! async callers use `spawn_blocking`. Audits never run on the caller's
//! thread.

pub mod checks;
pub mod connlog;
pub mod model;
pub mod schedule;

mod certs;
mod conns;
mod crl;
mod error;
mod inventory;
mod outcome;
mod policy;
mod roca;
mod runner;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;
use wardmq_broker::registry::Registry;

pub use certs::{KeyCache, KeyVerdict};
pub use checks::{CheckName, ConfigName, Severity};
pub use connlog::{Both, ConnectionLog};
pub use error::AuditError;
pub use model::*;

use crate::detect::model::Timestamp;
use crate::store::{
    page_sorted, AuditStore, AuditWrite, DefenderDb, FindingFilter, FindingScope, Fingerprint,
    Page, StoredSuppression, TokenKind, AUDIT_DEFAULT_PAGE,
};

/// Where finished tasks' notifications go: (the `targetArn` of the SNS
/// notification target, the JSON body). Must not block.
pub type Notify = Arc<dyn Fn(&str, Vec<u8>) + Send + Sync>;

/// Findings and tasks are kept this long (the model: 90 days).
pub const RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// Most scheduled audits (AWS's quota could not be confirmed).
pub const MAX_SCHEDULED_AUDITS: usize = 100;
/// Most suppressions.
pub const MAX_SUPPRESSIONS: usize = 10_000;
/// Most tasks in progress or waiting at once; more is LimitExceeded.
pub const MAX_TASKS_IN_PROGRESS: usize = 10;

#[derive(Clone, Debug)]
pub struct AuditSettings {
    /// The device listener's CRL files, by CA id (`[[listeners.crl]]`).
    pub crls: Vec<(String, PathBuf)>,
    /// The alert sinks a notification target may name; `None` accepts any
    /// SNS ARN.
    pub alert_sinks: Option<Vec<String>>,
    /// Connections the connection log keeps.
    pub connection_log_capacity: usize,
    /// How often the scheduler looks for due audits.
    pub scheduler_tick: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            crls: Vec::new(),
            alert_sinks: None,
            connection_log_capacity: connlog::DEFAULT_CAPACITY,
            scheduler_tick: Duration::from_secs(1),
        }
    }
}

/// UpdateAccountAuditConfiguration's input.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationUpdate {
    pub role_arn: Option<String>,
    pub audit_notification_target_configurations:
        Option<BTreeMap<AuditNotificationType, AuditNotificationTarget>>,
    /// Keyed by the name as sent, so an unknown name gets a message of its own.
    pub audit_check_configurations: Option<BTreeMap<String, AuditCheckConfiguration>>,
}

/// CreateScheduledAudit's and UpdateScheduledAudit's input.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledAuditInput {
    pub frequency: Option<AuditFrequency>,
    pub day_of_month: Option<String>,
    pub day_of_week: Option<DayOfWeek>,
    pub target_check_names: Option<Vec<String>>,
    /// Accepted, not applied (there is no tagging API).
    pub tags: Option<serde_json::Value>,
}

/// The suppression calls' input.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionInput {
    pub check_name: String,
    pub resource_identifier: ResourceIdentifier,
    pub expiration_date: Option<Timestamp>,
    pub suppress_indefinitely: Option<bool>,
    pub description: Option<String>,
    pub client_request_token: Option<String>,
}

/// ListAuditFindings' input.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingsQuery {
    pub task_id: Option<String>,
    pub check_name: Option<String>,
    pub resource_identifier: Option<ResourceIdentifier>,
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub list_suppressed_findings: Option<bool>,
}

/// ListAuditSuppressions' input.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionsQuery {
    pub check_name: Option<String>,
    pub resource_identifier: Option<ResourceIdentifier>,
    pub ascending_order: Option<bool>,
    pub next_token: Option<String>,
    pub max_results: Option<u32>,
}

/// ListAuditTasks' filters.
#[derive(Clone, Debug)]
pub struct TaskFilter {
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    pub task_type: Option<AuditTaskType>,
    pub task_status: Option<AuditTaskStatus>,
}

enum Work {
    Run {
        task_id: String,
        window_start: Timestamp,
    },
    Stop,
}

#[derive(Default)]
struct State {
    /// `None` until the first UpdateAccountAuditConfiguration, and again
    /// after DeleteAccountAuditConfiguration.
    config: Option<AccountAuditConfiguration>,
    scheduled: BTreeMap<String, ScheduledAudit>,
    suppressions: BTreeMap<Vec<u8>, StoredSuppression>,
    tasks: BTreeMap<String, AuditTask>,
    /// The task the worker is running.
    running: Option<String>,
    /// Cancellation asked of the running task.
    cancel_requested: HashSet<String>,
}

pub(crate) struct Inner {
    store: AuditStore,
    registry: Registry,
    settings: AuditSettings,
    log: Arc<ConnectionLog>,
    notify: Option<Notify>,
    state: Mutex<State>,
    /// Signalled whenever a task changes.
    changed: Condvar,
    keys: Mutex<KeyCache>,
    work: SyncSender<Work>,
    clock: fn() -> Timestamp,
}

/// The audit service. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    inner: Arc<Inner>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn random_uuid() -> String {
    let h = random_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The key a suppression and the findings it covers share.
pub(crate) fn suppression_key(check: CheckName, resource: &ResourceIdentifier) -> Vec<u8> {
    let mut key = check.as_str().as_bytes().to_vec();
    key.push(0);
    // Struct fields serialise in a fixed order, so equal identifiers give
    // equal bytes.
    key.extend(serde_json::to_vec(&resource.canonical()).unwrap_or_default());
    key
}

fn valid_token(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_description(d: &str) -> Result<(), AuditError> {
    if d.chars().count() > 1000 {
        return Err(AuditError::invalid(
            "description must be at most 1000 characters",
        ));
    }
    if d.chars().any(|c| c.is_control()) {
        return Err(AuditError::invalid(
            "description must not contain control characters",
        ));
    }
    Ok(())
}

fn valid_certificate_id(field: &str, id: &str) -> Result<(), AuditError> {
    let hex = id
        .strip_prefix("0x")
        .or_else(|| id.strip_prefix("0X"))
        .unwrap_or(id);
    if id.len() == 64 && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(AuditError::invalid(format!(
            "resourceIdentifier.{field}: {id:?} is not a certificate id (64 hex characters)"
        )))
    }
}

/// Checks a suppression's resource identifier: exactly one member, each
/// well-formed.
fn valid_identifier(r: &ResourceIdentifier) -> Result<(), AuditError> {
    if r.members_set() != 1 {
        return Err(AuditError::invalid(
            "resourceIdentifier must have exactly one member",
        ));
    }
    if let Some(id) = &r.device_certificate_id {
        valid_certificate_id("deviceCertificateId", id)?;
    }
    if let Some(id) = &r.ca_certificate_id {
        valid_certificate_id("caCertificateId", id)?;
    }
    if let Some(a) = &r.account {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuditError::invalid(
                "resourceIdentifier.account must be 12 digits",
            ));
        }
    }
    if let Some(p) = &r.policy_version_identifier {
        if p.policy_name.as_deref().is_none_or(str::is_empty) {
            return Err(AuditError::invalid(
                "resourceIdentifier.policyVersionIdentifier.policyName is required",
            ));
        }
        if p.policy_version_id
            .as_deref()
            .is_some_and(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(AuditError::invalid(
                "resourceIdentifier.policyVersionIdentifier.policyVersionId must be digits",
            ));
        }
    }
    if r.client_id.as_deref().is_some_and(str::is_empty) {
        return Err(AuditError::invalid("resourceIdentifier.clientId is empty"));
    }
    Ok(())
}

impl Audit {
    /// Loads the audit's records from `db` and starts the worker thread.
    /// Tasks a previous run left in progress are marked FAILED.
    pub fn open(
        db: &DefenderDb,
        registry: Registry,
        settings: AuditSettings,
        notify: Option<Notify>,
    ) -> Result<Audit, AuditError> {
        Self::open_with_clock(db, registry, settings, notify, crate::engine::now)
    }

    /// With a clock of the caller's (tests).
    pub fn open_with_clock(
        db: &DefenderDb,
        registry: Registry,
        settings: AuditSettings,
        notify: Option<Notify>,
        clock: fn() -> Timestamp,
    ) -> Result<Audit, AuditError> {
        let store = db.audit();
        let contents = store.load()?;
        let mut state = State {
            config: contents.config,
            scheduled: contents
                .scheduled
                .into_iter()
                .map(|s| (s.scheduled_audit_name.clone(), s))
                .collect(),
            suppressions: contents.suppressions.into_iter().collect(),
            tasks: contents
                .tasks
                .into_iter()
                .map(|t| (t.task_id.clone(), t))
                .collect(),
            ..State::default()
        };
        let now = clock();
        let mut interrupted = Vec::new();
        for t in state.tasks.values_mut() {
            if t.task_status == AuditTaskStatus::InProgress {
                t.task_status = AuditTaskStatus::Failed;
                t.task_end_time = Some(now);
                for d in t.audit_details.values_mut() {
                    if d.check_run_status == AuditCheckRunStatus::InProgress {
                        d.check_run_status = AuditCheckRunStatus::Failed;
                        d.message = Some("wardmq stopped while the audit ran".into());
                    }
                }
                interrupted.push(AuditWrite::PutTask(t.clone()));
            }
        }
        store.commit(&interrupted)?;
        let log = Arc::new(ConnectionLog::with_clock(
            settings.connection_log_capacity,
            clock,
        ));
        let (work, queue) = sync_channel(MAX_TASKS_IN_PROGRESS * 2);
        let inner = Arc::new(Inner {
            store,
            registry,
            settings,
            log,
            notify,
            state: Mutex::new(state),
            changed: Condvar::new(),
            keys: Mutex::default(),
            work,
            clock,
        });
        let handle = runner::spawn(inner.clone(), queue)
            .map_err(|e| AuditError::Store(crate::store::StoreError::Storage(e.to_string())))?;
        Ok(Audit {
            inner,
            worker: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// The connection log the broker must feed (an `Observer`; combine it
    /// with another one with [`Both`]).
    pub fn connection_log(&self) -> Arc<ConnectionLog> {
        self.inner.log.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    fn scheduled_arn(&self, name: &str) -> String {
        let scope = self.inner.registry.scope();
        format!(
            "arn:aws:iot:{}:{}:scheduledaudit/{name}",
            scope.region, scope.account
        )
    }

    /// Stops the worker after the task it is running.
    pub fn shutdown(&self) {
        let _ = self.inner.work.send(Work::Stop);
        let handle = lock(&self.worker).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    // ---- account audit configuration ----

    /// DescribeAccountAuditConfiguration: every check, enabled or not.
    pub fn describe_configuration(&self) -> AccountAuditConfiguration {
        let mut c = self.state().config.clone().unwrap_or_default();
        for &check in CheckName::ALL {
            c.audit_check_configurations.entry(check).or_default();
        }
        c
    }

    /// UpdateAccountAuditConfiguration.
    pub fn update_configuration(&self, update: ConfigurationUpdate) -> Result<(), AuditError> {
        let mut st = self.state();
        let first = st.config.is_none();
        let mut cfg = st.config.clone().unwrap_or_default();
        let mut problems = Vec::new();
        if let Some(role) = update.role_arn {
            if !(20..=2048).contains(&role.len()) {
                problems.push("roleArn must be 20 to 2048 characters".to_owned());
            }
            cfg.role_arn = Some(role);
        }
        if let Some(targets) = update.audit_notification_target_configurations {
            for (kind, target) in targets {
                match &target.target_arn {
                    Some(arn) => match crate::alerts::sink_name(arn) {
                        None => problems.push(format!(
                            "auditNotificationTargetConfigurations.SNS.targetArn {arn:?} is not an \
                             SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME, NAME an alert sink)"
                        )),
                        Some(name) => {
                            if let Some(known) = &self.inner.settings.alert_sinks {
                                if !known.iter().any(|k| k == name) {
                                    problems.push(format!(
                                        "auditNotificationTargetConfigurations.SNS.targetArn names the \
                                         alert sink {name:?}, which is not one of [[defender.alert_sinks]] ({})",
                                        known.join(", ")
                                    ));
                                }
                            }
                        }
                    },
                    None if target.enabled => problems.push(
                        "auditNotificationTargetConfigurations.SNS.targetArn is required when enabled"
                            .to_owned(),
                    ),
                    None => {}
                }
                if target.target_arn.as_ref().is_some_and(|a| a.len() > 2048) {
                    problems.push("targetArn must be at most 2048 characters".to_owned());
                }
                cfg.audit_notification_target_configurations
                    .insert(kind, target);
            }
        }
        if let Some(checks) = update.audit_check_configurations {
            for (name, mut c) in checks {
                let Some(check) = CheckName::parse(&name) else {
                    problems.push(format!(
                        "auditCheckConfigurations: {name:?} is not an audit check name"
                    ));
                    continue;
                };
                if c.enabled {
                    if let Some(why) = check.unsupported_reason() {
                        problems.push(format!(
                            "{check} cannot be enabled: it {why}. It does not apply to a self-hosted broker"
                        ));
                        continue;
                    }
                }
                for (key, value) in &c.configuration {
                    if !check.config_names().contains(key) {
                        problems.push(format!(
                            "auditCheckConfigurations.{check}.configuration: {} does not apply to this check",
                            key.as_str()
                        ));
                        continue;
                    }
                    let (min, max, _) = key.range_and_default();
                    if !value.parse::<u32>().is_ok_and(|v| (min..=max).contains(&v)) {
                        problems.push(format!(
                            "auditCheckConfigurations.{check}.configuration.{}: {value:?} must be a \
                             whole number of days from {min} to {max}",
                            key.as_str()
                        ));
                    }
                }
                if c.configuration.is_empty() {
                    if let Some(old) = cfg.audit_check_configurations.get(&check) {
                        c.configuration = old.configuration.clone();
                    }
                }
                cfg.audit_check_configurations.insert(check, c);
            }
        }
        if first && !cfg.audit_check_configurations.values().any(|c| c.enabled) {
            problems.push(
                "the first UpdateAccountAuditConfiguration must enable at least one check in \
                 auditCheckConfigurations"
                    .to_owned(),
            );
        }
        for sa in st.scheduled.values() {
            for check in &sa.target_check_names {
                if !cfg
                    .audit_check_configurations
                    .get(check)
                    .is_some_and(|c| c.enabled)
                {
                    problems.push(format!(
                        "{check} cannot be disabled: the scheduled audit {} uses it; remove it from \
                         the scheduled audit or delete the scheduled audit first",
                        sa.scheduled_audit_name
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(AuditError::InvalidRequest(problems.join("; ")));
        }
        self.inner
            .store
            .commit(&[AuditWrite::Config(Some(cfg.clone()))])?;
        st.config = Some(cfg);
        Ok(())
    }

    /// DeleteAccountAuditConfiguration.
    pub fn delete_configuration(&self, delete_scheduled_audits: bool) -> Result<(), AuditError> {
        let mut st = self.state();
        if st.config.is_none() {
            return Err(AuditError::NotFound(
                "the account has no audit configuration".into(),
            ));
        }
        if !st.scheduled.is_empty() && !delete_scheduled_audits {
            return Err(AuditError::invalid(format!(
                "scheduled audits use the audit configuration ({}); set deleteScheduledAudits or \
                 delete them first",
                st.scheduled.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let mut writes = vec![AuditWrite::Config(None)];
        writes.extend(
            st.scheduled
                .keys()
                .map(|n| AuditWrite::DeleteScheduled(n.clone())),
        );
        self.inner.store.commit(&writes)?;
        st.config = None;
        st.scheduled.clear();
        Ok(())
    }

    /// The enabled, supported checks among `names`, or the 400 naming the
    /// first problem.
    fn enabled_checks(&self, st: &State, names: &[String]) -> Result<Vec<CheckName>, AuditError> {
        if names.is_empty() {
            return Err(AuditError::invalid(
                "targetCheckNames must name at least one check",
            ));
        }
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for n in names {
            let Some(check) = CheckName::parse(n) else {
                problems.push(format!(
                    "targetCheckNames: {n:?} is not an audit check name"
                ));
                continue;
            };
            if let Some(why) = check.unsupported_reason() {
                problems.push(format!(
                    "{check} does not apply to a self-hosted broker: it {why}"
                ));
                continue;
            }
            let enabled = st
                .config
                .as_ref()
                .and_then(|c| c.audit_check_configurations.get(&check))
                .is_some_and(|c| c.enabled);
            if !enabled {
                problems.push(format!(
                    "{check} is not enabled; enable it with UpdateAccountAuditConfiguration"
                ));
                continue;
            }
            if !out.contains(&check) {
                out.push(check);
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(AuditError::InvalidRequest(problems.join("; ")))
        }
    }

    // ---- tasks ----

    fn new_task(
        checks: &[CheckName],
        task_type: AuditTaskType,
        scheduled: Option<&str>,
        now: Timestamp,
    ) -> AuditTask {
        AuditTask {
            task_id: random_hex(),
            task_status: AuditTaskStatus::InProgress,
            task_type,
            task_start_time: now,
            scheduled_audit_name: scheduled.map(str::to_owned),
            audit_details: checks
                .iter()
                .map(|&c| (c, AuditCheckDetails::in_progress()))
                .collect(),
            task_end_time: None,
        }
    }

    /// StartOnDemandAuditTask: returns the task id.
    pub fn start_on_demand_audit_task(
        &self,
        target_check_names: &[String],
    ) -> Result<String, AuditError> {
        let mut st = self.state();
        let checks = self.enabled_checks(&st, target_check_names)?;
        let busy = st
            .tasks
            .values()
            .filter(|t| t.task_status == AuditTaskStatus::InProgress)
            .count();
        if busy >= MAX_TASKS_IN_PROGRESS {
            return Err(AuditError::LimitExceeded(format!(
                "{busy} audits are in progress or waiting; at most {MAX_TASKS_IN_PROGRESS} may be"
            )));
        }
        let now = self.now();
        let task = Self::new_task(&checks, AuditTaskType::OnDemandAuditTask, None, now);
        let id = task.task_id.clone();
        self.inner
            .store
            .commit(&[AuditWrite::PutTask(task.clone())])?;
        st.tasks.insert(id.clone(), task);
        let window_start =
            Timestamp::from_millis(now.as_millis().saturating_sub(connlog::WINDOW_MS));
        match self.inner.work.try_send(Work::Run {
            task_id: id.clone(),
            window_start,
        }) {
            Ok(()) => Ok(id),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                // Not queued: it will never run.
                let now = self.now();
                if let Some(t) = st.tasks.get_mut(&id) {
                    runner::fail_remaining(t, "the audit worker is not running", now);
                    let _ = self.inner.store.commit(&[AuditWrite::PutTask(t.clone())]);
                }
                Err(AuditError::LimitExceeded(
                    "the audit worker cannot take another task now".into(),
                ))
            }
        }
    }

    /// CancelAuditTask. A waiting task is canceled at once; the running
    /// one at its next check, which this call waits for (up to 10 s).
    pub fn cancel_audit_task(&self, task_id: &str) -> Result<(), AuditError> {
        let mut st = self.state();
        let Some(task) = st.tasks.get(task_id) else {
            return Err(AuditError::NotFound(format!("no audit task {task_id}")));
        };
        if task.task_status != AuditTaskStatus::InProgress {
            return Err(AuditError::invalid(format!(
                "audit task {task_id} is not IN_PROGRESS"
            )));
        }
        if st.running.as_deref() == Some(task_id) {
            st.cancel_requested.insert(task_id.to_owned());
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while st
                .tasks
                .get(task_id)
                .is_some_and(|t| t.task_status == AuditTaskStatus::InProgress)
            {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                st = self
                    .inner
                    .changed
                    .wait_timeout(st, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            return Ok(());
        }
        let now = self.now();
        let mut task = task.clone();
        runner::cancel_remaining(&mut task, now);
        self.inner
            .store
            .commit(&[AuditWrite::PutTask(task.clone())])?;
        st.tasks.insert(task_id.to_owned(), task);
        self.inner.changed.notify_all();
        Ok(())
    }

    /// DescribeAuditTask.
    pub fn describe_audit_task(&self, task_id: &str) -> Result<AuditTask, AuditError> {
        self.state()
            .tasks
            .get(task_id)
            .cloned()
            .ok_or_else(|| AuditError::NotFound(format!("no audit task {task_id}")))
    }

    /// ListAuditTasks: tasks that started in [startTime, endTime].
    pub fn list_audit_tasks(
        &self,
        filter: &TaskFilter,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<AuditTask>, AuditError> {
        let now = self.now();
        let oldest = now.as_millis().saturating_sub(RETENTION.as_millis() as u64);
        if filter.start_time.as_millis() < oldest.saturating_sub(86_400_000) {
            return Err(AuditError::invalid(
                "startTime is before the 90 days audit information is kept",
            ));
        }
        if filter.end_time.as_millis() < filter.start_time.as_millis() {
            return Err(AuditError::invalid("endTime is before startTime"));
        }
        let st = self.state();
        let mut tasks: Vec<AuditTask> = st
            .tasks
            .values()
            .filter(|t| {
                let s = t.task_start_time.as_millis();
                s >= filter.start_time.as_millis()
                    && s <= filter.end_time.as_millis()
                    && filter.task_type.is_none_or(|k| k == t.task_type)
                    && filter.task_status.is_none_or(|k| k == t.task_status)
            })
            .cloned()
            .collect();
        drop(st);
        tasks.sort_by(|a, b| {
            (a.task_start_time.as_millis(), &a.task_id)
                .cmp(&(b.task_start_time.as_millis(), &b.task_id))
        });
        let query = Fingerprint::new()
            .u64(filter.start_time.as_millis())
            .u64(filter.end_time.as_millis())
            .opt(filter.task_type.map(|t| task_type_name(t).as_bytes()))
            .opt(filter.task_status.map(|s| task_status_name(s).as_bytes()));
        Ok(page_sorted(
            tasks,
            |t| {
                let mut k = t.task_start_time.as_millis().to_be_bytes().to_vec();
                k.extend_from_slice(t.task_id.as_bytes());
                k
            },
            TokenKind::AuditTasks,
            query,
            Some(max_results.unwrap_or(AUDIT_DEFAULT_PAGE)),
            next_token,
        )?)
    }

    /// Tasks kept (90 days), counted by (task type, task status), as
    /// the API spells them: what a metrics scrape reports.
    pub fn task_counts(&self) -> std::collections::BTreeMap<(&'static str, &'static str), u64> {
        let mut counts = std::collections::BTreeMap::new();
        for t in self.state().tasks.values() {
            let key = (task_type_name(t.task_type), task_status_name(t.task_status));
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until the task is no longer IN_PROGRESS, at most `timeout`.
    pub fn wait_for_task(&self, task_id: &str, timeout: Duration) -> Option<AuditTask> {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.state();
        loop {
            match st.tasks.get(task_id) {
                Some(t) if t.task_status != AuditTaskStatus::InProgress => return Some(t.clone()),
                None => return None,
                Some(_) => {}
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return st.tasks.get(task_id).cloned();
            }
            st = self
                .inner
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    // ---- findings ----

    /// ListAuditFindings: `taskId` or `startTime` + `endTime`, not both.
    pub fn list_audit_findings(&self, q: &FindingsQuery) -> Result<Page<AuditFinding>, AuditError> {
        let scope = match (&q.task_id, q.start_time, q.end_time) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(AuditError::invalid(
                    "specify either taskId or startTime and endTime, not both",
                ))
            }
            (Some(id), None, None) => FindingScope::Task(id),
            (None, Some(s), Some(e)) => FindingScope::Time(s, e),
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(AuditError::invalid(
                    "startTime and endTime must be given together",
                ))
            }
            (None, None, None) => {
                return Err(AuditError::invalid(
                    "specify either taskId or startTime and endTime",
                ))
            }
        };
        let filter = FindingFilter {
            check_name: q
                .check_name
                .as_deref()
                .map(|n| CheckName::parse_or_err("checkName", n))
                .transpose()
                .map_err(AuditError::InvalidRequest)?,
            resource_identifier: q.resource_identifier.as_ref().map(|r| r.canonical()),
            list_suppressed: q.list_suppressed_findings,
        };
        let page = self.inner.store.list_findings(
            &scope,
            &filter,
            q.max_results,
            q.next_token.as_deref().filter(|t| !t.is_empty()),
        )?;
        Ok(Page {
            items: page.items.iter().map(AuditFinding::for_listing).collect(),
            next_token: page.next_token,
        })
    }

    /// DescribeAuditFinding.
    pub fn describe_audit_finding(&self, finding_id: &str) -> Result<AuditFinding, AuditError> {
        self.finding(finding_id).map(|f| f.for_listing())
    }

    /// The finding with all its related resources (for mitigation).
    pub fn finding(&self, finding_id: &str) -> Result<AuditFinding, AuditError> {
        self.inner
            .store
            .finding(finding_id)?
            .ok_or_else(|| AuditError::NotFound(format!("no audit finding {finding_id}")))
    }

    /// ListRelatedResourcesForAuditFinding.
    pub fn list_related_resources(
        &self,
        finding_id: &str,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<Resource>, AuditError> {
        let f = self.finding(finding_id)?;
        let indexed: Vec<(u32, Resource)> = f
            .related_resources
            .into_iter()
            .enumerate()
            .map(|(i, r)| (u32::try_from(i).unwrap_or(u32::MAX), r))
            .collect();
        let page = page_sorted(
            indexed,
            |(i, _)| i.to_be_bytes().to_vec(),
            TokenKind::RelatedResources,
            Fingerprint::new().field(finding_id.as_bytes()),
            Some(max_results.unwrap_or(AUDIT_DEFAULT_PAGE)),
            next_token,
        )?;
        Ok(Page {
            items: page.items.into_iter().map(|(_, r)| r).collect(),
            next_token: page.next_token,
        })
    }

    // ---- scheduled audits ----

    fn build_scheduled(
        &self,
        st: &State,
        name: &str,
        base: Option<&ScheduledAudit>,
        input: ScheduledAuditInput,
    ) -> Result<ScheduledAudit, AuditError> {
        let frequency = match (input.frequency, base) {
            (Some(f), _) => f,
            (None, Some(b)) => b.frequency,
            (None, None) => return Err(AuditError::invalid("frequency is required")),
        };
        if let Some(d) = &input.day_of_month {
            if !schedule::valid_day_of_month(d) {
                return Err(AuditError::invalid(format!(
                    "dayOfMonth {d:?} must be 1 to 31 or LAST"
                )));
            }
        }
        let changed_frequency = base.is_some_and(|b| b.frequency != frequency);
        let kept = base.filter(|_| !changed_frequency);
        let day_of_month = input
            .day_of_month
            .clone()
            .or_else(|| kept.and_then(|b| b.day_of_month.clone()));
        let day_of_week = input
            .day_of_week
            .or_else(|| kept.and_then(|b| b.day_of_week));
        match frequency {
            AuditFrequency::Monthly => {
                if day_of_month.is_none() {
                    return Err(AuditError::invalid(
                        "dayOfMonth is required for MONTHLY audits",
                    ));
                }
                if input.day_of_week.is_some() {
                    return Err(AuditError::invalid(
                        "dayOfWeek applies only to WEEKLY and BIWEEKLY audits",
                    ));
                }
            }
            AuditFrequency::Weekly | AuditFrequency::Biweekly => {
                if day_of_week.is_none() {
                    return Err(AuditError::invalid(
                        "dayOfWeek is required for WEEKLY and BIWEEKLY audits",
                    ));
                }
                if input.day_of_month.is_some() {
                    return Err(AuditError::invalid(
                        "dayOfMonth applies only to MONTHLY audits",
                    ));
                }
            }
            AuditFrequency::Daily => {
                if input.day_of_month.is_some() || input.day_of_week.is_some() {
                    return Err(AuditError::invalid(
                        "DAILY audits take neither dayOfMonth nor dayOfWeek",
                    ));
                }
            }
        }
        let (day_of_month, day_of_week) = match frequency {
            AuditFrequency::Monthly => (day_of_month, None),
            AuditFrequency::Weekly | AuditFrequency::Biweekly => (None, day_of_week),
            AuditFrequency::Daily => (None, None),
        };
        let target_check_names = match (&input.target_check_names, base) {
            (Some(names), _) => self.enabled_checks(st, names)?,
            (None, Some(b)) => b.target_check_names.clone(),
            (None, None) => return Err(AuditError::invalid("targetCheckNames is required")),
        };
        let today = schedule::day_of(self.now().as_millis());
        let schedule_changed = base.is_none_or(|b| {
            b.frequency != frequency
                || b.day_of_month != day_of_month
                || b.day_of_week != day_of_week
        });
        Ok(ScheduledAudit {
            scheduled_audit_name: name.to_owned(),
            scheduled_audit_arn: self.scheduled_arn(name),
            frequency,
            day_of_month,
            day_of_week,
            target_check_names,
            anchor_day: match base {
                Some(b) if !schedule_changed => b.anchor_day,
                _ => today,
            },
            last_run_day: base.and_then(|b| b.last_run_day),
            last_run_time: base.and_then(|b| b.last_run_time),
        })
    }

    fn valid_scheduled_name(name: &str) -> Result<(), AuditError> {
        if (1..=128).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Ok(())
        } else {
            Err(AuditError::invalid(format!(
                "scheduledAuditName {name:?} must be 1 to 128 characters of a-z A-Z 0-9 _ -"
            )))
        }
    }

    /// CreateScheduledAudit: returns its ARN.
    pub fn create_scheduled_audit(
        &self,
        name: &str,
        input: ScheduledAuditInput,
    ) -> Result<String, AuditError> {
        Self::valid_scheduled_name(name)?;
        let mut st = self.state();
        if st.scheduled.contains_key(name) {
            return Err(AuditError::AlreadyExists {
                message: format!("scheduled audit {name} already exists"),
                id: name.to_owned(),
                arn: Some(self.scheduled_arn(name)),
            });
        }
        if st.scheduled.len() >= MAX_SCHEDULED_AUDITS {
            return Err(AuditError::LimitExceeded(format!(
                "at most {MAX_SCHEDULED_AUDITS} scheduled audits"
            )));
        }
        let sa = self.build_scheduled(&st, name, None, input)?;
        self.inner
            .store
            .commit(&[AuditWrite::PutScheduled(sa.clone())])?;
        let arn = sa.scheduled_audit_arn.clone();
        st.scheduled.insert(name.to_owned(), sa);
        Ok(arn)
    }

    /// UpdateScheduledAudit: returns its ARN.
    pub fn update_scheduled_audit(
        &self,
        name: &str,
        input: ScheduledAuditInput,
    ) -> Result<String, AuditError> {
        let mut st = self.state();
        let Some(base) = st.scheduled.get(name).cloned() else {
            return Err(AuditError::NotFound(format!("no scheduled audit {name}")));
        };
        let sa = self.build_scheduled(&st, name, Some(&base), input)?;
        self.inner
            .store
            .commit(&[AuditWrite::PutScheduled(sa.clone())])?;
        let arn = sa.scheduled_audit_arn.clone();
        st.scheduled.insert(name.to_owned(), sa);
        Ok(arn)
    }

    /// DescribeScheduledAudit.
    pub fn describe_scheduled_audit(&self, name: &str) -> Result<ScheduledAudit, AuditError> {
        self.state()
            .scheduled
            .get(name)
            .cloned()
            .ok_or_else(|| AuditError::NotFound(format!("no scheduled audit {name}")))
    }

    /// ListScheduledAudits, by name.
    pub fn list_scheduled_audits(
        &self,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<ScheduledAudit>, AuditError> {
        let all: Vec<ScheduledAudit> = self.state().scheduled.values().cloned().collect();
        Ok(page_sorted(
            all,
            |s| s.scheduled_audit_name.as_bytes().to_vec(),
            TokenKind::ScheduledAudits,
            Fingerprint::new(),
            Some(max_results.unwrap_or(AUDIT_DEFAULT_PAGE)),
            next_token,
        )?)
    }

    /// DeleteScheduledAudit.
    pub fn delete_scheduled_audit(&self, name: &str) -> Result<(), AuditError> {
        let mut st = self.state();
        if !st.scheduled.contains_key(name) {
            return Err(AuditError::NotFound(format!("no scheduled audit {name}")));
        }
        self.inner
            .store
            .commit(&[AuditWrite::DeleteScheduled(name.to_owned())])?;
        st.scheduled.remove(name);
        Ok(())
    }

    // ---- suppressions ----

    fn suppression_target(input: &SuppressionInput) -> Result<(CheckName, Vec<u8>), AuditError> {
        let check = CheckName::parse_or_err("checkName", &input.check_name)
            .map_err(AuditError::InvalidRequest)?;
        valid_identifier(&input.resource_identifier)?;
        Ok((check, suppression_key(check, &input.resource_identifier)))
    }

    fn suppression_terms(
        &self,
        expiration_date: Option<Timestamp>,
        suppress_indefinitely: Option<bool>,
        description: Option<&str>,
    ) -> Result<(), AuditError> {
        if let Some(d) = description {
            valid_description(d)?;
        }
        match (expiration_date, suppress_indefinitely) {
            (Some(_), Some(true)) => Err(AuditError::invalid(
                "give either expirationDate or suppressIndefinitely=true, not both",
            )),
            (None, None | Some(false)) => Err(AuditError::invalid(
                "give expirationDate or suppressIndefinitely=true",
            )),
            (Some(e), _) if e.as_millis() <= self.now().as_millis() => {
                Err(AuditError::invalid("expirationDate must be in the future"))
            }
            _ => Ok(()),
        }
    }

    /// CreateAuditSuppression.
    pub fn create_suppression(&self, input: SuppressionInput) -> Result<(), AuditError> {
        let (check, key) = Self::suppression_target(&input)?;
        let token = input
            .client_request_token
            .clone()
            .ok_or_else(|| AuditError::invalid("clientRequestToken is required"))?;
        if !valid_token(&token) {
            return Err(AuditError::invalid(
                "clientRequestToken must be 1 to 64 characters of a-z A-Z 0-9 - _",
            ));
        }
        self.suppression_terms(
            input.expiration_date,
            input.suppress_indefinitely,
            input.description.as_deref(),
        )?;
        let mut st = self.state();
        if st.suppressions.contains_key(&key) {
            return Err(AuditError::AlreadyExists {
                message: format!("a suppression of {check} for this resource already exists"),
                id: input.check_name.clone(),
                arn: None,
            });
        }
        if st
            .suppressions
            .values()
            .any(|s| s.client_request_token == token)
        {
            return Err(AuditError::invalid(format!(
                "clientRequestToken {token} was already used for another suppression"
            )));
        }
        if st.suppressions.len() >= MAX_SUPPRESSIONS {
            return Err(AuditError::LimitExceeded(format!(
                "at most {MAX_SUPPRESSIONS} audit suppressions"
            )));
        }
        let stored = StoredSuppression {
            suppression: AuditSuppression {
                check_name: check,
                resource_identifier: input.resource_identifier.canonical(),
                expiration_date: input.expiration_date,
                suppress_indefinitely: input.suppress_indefinitely,
                description: input.description,
            },
            client_request_token: token,
        };
        self.inner.store.commit(&[AuditWrite::PutSuppression(
            key.clone(),
            Box::new(stored.clone()),
        )])?;
        st.suppressions.insert(key, stored);
        Ok(())
    }

    /// DescribeAuditSuppression.
    pub fn describe_suppression(
        &self,
        check_name: &str,
        resource_identifier: &ResourceIdentifier,
    ) -> Result<AuditSuppression, AuditError> {
        let check =
            CheckName::parse_or_err("checkName", check_name).map_err(AuditError::InvalidRequest)?;
        let key = suppression_key(check, resource_identifier);
        self.state()
            .suppressions
            .get(&key)
            .map(|s| s.suppression.clone())
            .ok_or_else(|| {
                AuditError::NotFound(format!("no suppression of {check} for this resource"))
            })
    }

    /// UpdateAuditSuppression: changes the members given.
    pub fn update_suppression(&self, input: SuppressionInput) -> Result<(), AuditError> {
        let (check, key) = Self::suppression_target(&input)?;
        let mut st = self.state();
        let Some(old) = st.suppressions.get(&key).cloned() else {
            return Err(AuditError::NotFound(format!(
                "no suppression of {check} for this resource"
            )));
        };
        let mut new = old;
        match (input.expiration_date, input.suppress_indefinitely) {
            (Some(e), Some(true)) => {
                self.suppression_terms(Some(e), Some(true), None)?;
            }
            (Some(e), _) => {
                new.suppression.expiration_date = Some(e);
                new.suppression.suppress_indefinitely = input.suppress_indefinitely;
            }
            (None, Some(true)) => {
                new.suppression.expiration_date = None;
                new.suppression.suppress_indefinitely = Some(true);
            }
            (None, Some(false)) => {
                if new.suppression.expiration_date.is_none() {
                    return Err(AuditError::invalid(
                        "suppressIndefinitely=false needs an expirationDate",
                    ));
                }
                new.suppression.suppress_indefinitely = Some(false);
            }
            (None, None) => {}
        }
        if let Some(d) = &input.description {
            valid_description(d)?;
            new.suppression.description = Some(d.clone());
        }
        self.suppression_terms(
            new.suppression.expiration_date,
            new.suppression.suppress_indefinitely,
            None,
        )?;
        self.inner.store.commit(&[AuditWrite::PutSuppression(
            key.clone(),
            Box::new(new.clone()),
        )])?;
        st.suppressions.insert(key, new);
        Ok(())
    }

    /// DeleteAuditSuppression (deleting one that does not exist succeeds:
    /// the model has no ResourceNotFound for it).
    pub fn delete_suppression(
        &self,
        check_name: &str,
        resource_identifier: &ResourceIdentifier,
    ) -> Result<(), AuditError> {
        let check =
            CheckName::parse_or_err("checkName", check_name).map_err(AuditError::InvalidRequest)?;
        let key = suppression_key(check, resource_identifier);
        let mut st = self.state();
        if st.suppressions.contains_key(&key) {
            self.inner
                .store
                .commit(&[AuditWrite::DeleteSuppression(key.clone())])?;
            st.suppressions.remove(&key);
        }
        Ok(())
    }

    /// ListAuditSuppressions, by expiration date (indefinite ones last
    /// in ascending order).
    pub fn list_suppressions(
        &self,
        q: &SuppressionsQuery,
    ) -> Result<Page<AuditSuppression>, AuditError> {
        let check = q
            .check_name
            .as_deref()
            .map(|n| CheckName::parse_or_err("checkName", n))
            .transpose()
            .map_err(AuditError::InvalidRequest)?;
        let filter = q.resource_identifier.as_ref().map(|r| r.canonical());
        let ascending = q.ascending_order.unwrap_or(true);
        let mut items: Vec<(Vec<u8>, AuditSuppression)> = self
            .state()
            .suppressions
            .iter()
            .filter(|(_, s)| {
                check.is_none_or(|c| c == s.suppression.check_name)
                    && filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&s.suppression.resource_identifier))
            })
            .map(|(k, s)| {
                let exp = match (
                    s.suppression.suppress_indefinitely,
                    s.suppression.expiration_date,
                ) {
                    (Some(true), _) | (_, None) => u64::MAX,
                    (_, Some(e)) => e.as_millis(),
                };
                let exp = if ascending { exp } else { u64::MAX - exp };
                let mut key = exp.to_be_bytes().to_vec();
                key.extend_from_slice(k);
                (key, s.suppression.clone())
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let query = Fingerprint::new()
            .opt(check.map(|c| c.as_str().as_bytes()))
            .opt(
                filter
                    .as_ref()
                    .and_then(|f| serde_json::to_vec(f).ok())
                    .as_deref(),
            )
            .u64(u64::from(ascending));
        let page = page_sorted(
            items,
            |(k, _)| k.clone(),
            TokenKind::AuditSuppressions,
            query,
            Some(q.max_results.unwrap_or(AUDIT_DEFAULT_PAGE)),
            q.next_token.as_deref().filter(|t| !t.is_empty()),
        )?;
        Ok(Page {
            items: page.items.into_iter().map(|(_, s)| s).collect(),
            next_token: page.next_token,
        })
    }

    /// The checks enabled now (for tests and the console).
    pub fn enabled(&self) -> BTreeSet<CheckName> {
        self.state()
            .config
            .as_ref()
            .map(|c| {
                c.audit_check_configurations
                    .iter()
                    .filter(|(_, v)| v.enabled)
                    .map(|(k, _)| *k)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn task_type_name(t: AuditTaskType) -> &'static str {
    match t {
        AuditTaskType::OnDemandAuditTask => "ON_DEMAND_AUDIT_TASK",
        AuditTaskType::ScheduledAuditTask => "SCHEDULED_AUDIT_TASK",
    }
}

fn task_status_name(s: AuditTaskStatus) -> &'static str {
    match s {
        AuditTaskStatus::InProgress => "IN_PROGRESS",
        AuditTaskStatus::Completed => "COMPLETED",
        AuditTaskStatus::Failed => "FAILED",
        AuditTaskStatus::Canceled => "CANCELED",
    }
}
