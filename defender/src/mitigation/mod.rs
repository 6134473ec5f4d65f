//! Mitigation: named actions (Create/Update/Describe/List/Delete
//! MitigationAction), audit and Detect mitigation tasks that apply them to
//! findings and violations, and automatic mitigation of Detect alarms
//! (wardmq's extension: a security profile tagged
//! `wardmq:auto-mitigation` runs the named actions when any of its
//! behaviours goes in-alarm, and with `wardmq:undo-on-clear=true` undoes
//! them when the alarm clears).
//!
//! Everything is held in memory and written through to `defender.redb`.
//! Tasks and automatic runs execute on one worker thread (`runner.rs`);
//! the API calls only validate, record and queue.

pub mod error;
pub mod execute;
pub mod model;
pub mod validate;

mod runner;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use wardmq_broker::registry::{Registry, Scope};

use crate::audit::checks::CheckName;
use crate::audit::Audit;
use crate::detect::model::{Timestamp, ViolationEvent};
use crate::engine::{Defender, EventHook};
use crate::store::{
    page_sorted, DefenderDb, Fingerprint, MitigationStore, MitigationTable, Page, TokenKind,
};

pub use error::MitigationError;
pub use execute::{Executor, SnsPublish, BLANK_POLICY};
use model::{
    ActionDefinition, ActionParams, ActionType, AuditExecution, AuditMitigationTask, AuditTarget,
    DetectExecution, DetectMitigationTask, DetectStatistics, DetectTarget, ExecutionStatus,
    MitigationAction, OccurrenceRange, TaskStatus,
};

/// The tag naming the actions a security profile runs automatically.
pub const AUTO_MITIGATION_TAG: &str = "wardmq:auto-mitigation";
/// The tag (`true`) asking for the actions to be undone when the alarm
/// clears.
pub const UNDO_ON_CLEAR_TAG: &str = "wardmq:undo-on-clear";

/// Jobs waiting for the worker; beyond it an automatic run is dropped
/// (and counted), and a task start is refused (LimitExceeded).
const QUEUE: usize = 1000;
/// Tags per resource (AWS's limit).
const MAX_TAGS: usize = 50;

type Result<T> = std::result::Result<T, MitigationError>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now() -> Timestamp {
    crate::engine::now()
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A version-4-shaped UUID from 128 random bits.
fn random_uuid() -> String {
    let h = random_hex();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// An audit mitigation task with its executions, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AuditRecord {
    pub(crate) task: AuditMitigationTask,
    pub(crate) executions: Vec<AuditExecution>,
}

/// A Detect mitigation task with its executions, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DetectRecord {
    pub(crate) task: DetectMitigationTask,
    pub(crate) executions: Vec<DetectExecution>,
}

#[derive(Default)]
pub(crate) struct State {
    actions: BTreeMap<String, MitigationAction>,
    pub(crate) audit: BTreeMap<String, AuditRecord>,
    pub(crate) detect: BTreeMap<String, DetectRecord>,
    tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Tasks asked to stop.
    pub(crate) cancel: HashSet<String>,
}

pub(crate) enum Job {
    Audit(String),
    Detect(String),
    Auto(Box<ViolationEvent>),
    Stop,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    pub(crate) store: MitigationStore,
    pub(crate) exec: Executor,
    pub(crate) audit: Option<Audit>,
    pub(crate) defender: OnceLock<Defender>,
    scope: Scope,
    sinks: Option<Vec<String>>,
    work: SyncSender<Job>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Automatic runs dropped because the queue was full.
    pub(crate) auto_dropped: AtomicU64,
    /// Executions that ended, by (action type, result), for `/metrics`.
    finished: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Inner {
    /// Counts one execution that ended (ran, failed, was skipped or
    /// canceled); `action` is `None` when its definition was missing.
    pub(crate) fn finished(&self, action: Option<&ActionDefinition>, status: ExecutionStatus) {
        let kind = action
            .and_then(ActionDefinition::action_type)
            .map_or("UNKNOWN", ActionType::as_str);
        let result = match status {
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Successful => "successful",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Canceled => "canceled",
            ExecutionStatus::Skipped => "skipped",
            // Not an end; never counted.
            ExecutionStatus::InProgress | ExecutionStatus::Pending => return,
        };
        *lock(&self.finished).entry((kind, result)).or_default() += 1;
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn save_audit(&self, r: &AuditRecord) {
        if let Err(e) = self
            .store
            .put(MitigationTable::AuditTasks, &r.task.task_id, Some(r))
        {
            tracing::error!(error = %e, task = %r.task.task_id, "cannot save mitigation task");
        }
    }

    pub(crate) fn save_detect(&self, r: &DetectRecord) {
        if let Err(e) = self
            .store
            .put(MitigationTable::DetectTasks, &r.task.task_id, Some(r))
        {
            tracing::error!(error = %e, task = %r.task.task_id, "cannot save mitigation task");
        }
    }

    /// The security profile's automatic actions and whether to undo them.
    pub(crate) fn auto_config(&self, profile: &str) -> Option<(Vec<ActionDefinition>, bool)> {
        let arn = crate::catalog::security_profile_arn(&self.scope, profile);
        let st = self.state();
        let tags = st.tags.get(&arn)?;
        let names = tags.get(AUTO_MITIGATION_TAG)?;
        let undo = tags
            .get(UNDO_ON_CLEAR_TAG)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let mut defs = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match st.actions.get(name) {
                Some(a) => defs.push(a.definition()),
                None => tracing::warn!(
                    profile,
                    action = name,
                    "automatic mitigation names an action that does not exist; skipped"
                ),
            }
        }
        Some((defs, undo))
    }
}

/// The mitigation service. Cheap to clone.
#[derive(Clone)]
pub struct Mitigation {
    inner: Arc<Inner>,
}

/// CreateMitigationAction's and UpdateMitigationAction's body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionInput {
    pub role_arn: Option<String>,
    pub action_params: Option<ActionParams>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
}

/// `Tag`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// StartAuditMitigationActionsTask's body.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditTaskInput {
    pub target: AuditTarget,
    pub audit_check_to_actions_mapping: BTreeMap<String, Vec<String>>,
    pub client_request_token: String,
}

/// StartDetectMitigationActionsTask's body.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectTaskInput {
    pub target: DetectTarget,
    pub actions: Vec<String>,
    pub violation_event_occurrence_range: Option<OccurrenceRange>,
    pub include_only_active_violations: Option<bool>,
    pub include_suppressed_alerts: Option<bool>,
    pub client_request_token: String,
}

/// ListAuditMitigationActionsTasks' filter.
#[derive(Clone, Debug, Default)]
pub struct AuditTaskFilter {
    pub audit_task_id: Option<String>,
    pub finding_id: Option<String>,
    pub task_status: Option<TaskStatus>,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
}

/// ListDetectMitigationActionsExecutions' filter.
#[derive(Clone, Debug, Default)]
pub struct DetectExecutionFilter {
    pub task_id: Option<String>,
    pub violation_id: Option<String>,
    pub thing_name: Option<String>,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
}

fn fp_opt(f: Fingerprint, s: &Option<String>) -> Fingerprint {
    f.opt(s.as_deref().map(str::as_bytes))
}

impl Mitigation {
    /// Loads the records from `db` and starts the worker. `sinks` are the
    /// alert sinks a PUBLISH_FINDING_TO_SNS topic may name (`None`: any).
    pub fn open(
        db: &DefenderDb,
        registry: Registry,
        audit: Option<Audit>,
        sns: SnsPublish,
        sinks: Option<Vec<String>>,
    ) -> Result<Mitigation> {
        let store = db.mitigation();
        let mut state = State {
            actions: store.load(MitigationTable::Actions)?.into_iter().collect(),
            audit: store
                .load(MitigationTable::AuditTasks)?
                .into_iter()
                .collect(),
            detect: store
                .load(MitigationTable::DetectTasks)?
                .into_iter()
                .collect(),
            tags: store.load(MitigationTable::Tags)?.into_iter().collect(),
            cancel: HashSet::new(),
        };
        // Tasks cut short by a stop: AWS has no "interrupted", FAILED is
        // the honest status; their pending executions are CANCELED.
        let mut interrupted = Vec::new();
        for r in state.audit.values_mut() {
            if r.task.task_status == TaskStatus::InProgress {
                r.task.task_status = TaskStatus::Failed;
                r.task.end_time = Some(now());
                for e in &mut r.executions {
                    if matches!(
                        e.status,
                        ExecutionStatus::Pending | ExecutionStatus::InProgress
                    ) {
                        e.status = ExecutionStatus::Canceled;
                        e.message = Some("wardmq stopped before the task finished".into());
                    }
                }
                interrupted.push(r.clone());
            }
        }
        let mut interrupted_detect = Vec::new();
        for r in state.detect.values_mut() {
            if r.task.task_status == TaskStatus::InProgress {
                r.task.task_status = TaskStatus::Failed;
                r.task.task_end_time = Some(now());
                interrupted_detect.push(r.clone());
            }
        }
        let scope = registry.scope().clone();
        let (work, queue) = sync_channel(QUEUE);
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            store,
            exec: Executor::new(registry, sns),
            audit,
            defender: OnceLock::new(),
            scope,
            sinks,
            work,
            worker: Mutex::new(None),
            auto_dropped: AtomicU64::new(0),
            finished: Mutex::new(BTreeMap::new()),
        });
        for r in &interrupted {
            inner.save_audit(r);
        }
        for r in &interrupted_detect {
            inner.save_detect(r);
        }
        let handle = runner::spawn(inner.clone(), queue).map_err(|e| {
            MitigationError::Store(crate::store::StoreError::Storage(e.to_string()))
        })?;
        *lock(&inner.worker) = Some(handle);
        Ok(Mitigation { inner })
    }

    /// Gives the Detect tasks their violations, and hooks automatic
    /// mitigation into the defender's committed events.
    pub fn attach_defender(&self, defender: &Defender) {
        let _ = self.inner.defender.set(defender.clone());
        defender.set_event_hook(Arc::new(self.clone()));
    }

    /// Stops the worker after the job in progress (blocking join).
    pub fn shutdown(&self) {
        let _ = self.inner.work.send(Job::Stop);
        if let Some(h) = lock(&self.inner.worker).take() {
            let _ = h.join();
        }
    }

    /// Automatic runs dropped because the worker's queue was full.
    pub fn auto_dropped(&self) -> u64 {
        self.inner.auto_dropped.load(Ordering::Relaxed)
    }

    /// Executions that ended since start, by (action type, result:
    /// completed, successful, failed, skipped or canceled).
    pub fn executions_finished(&self) -> Vec<((&'static str, &'static str), u64)> {
        lock(&self.inner.finished)
            .iter()
            .map(|(k, n)| (*k, *n))
            .collect()
    }

    fn action_arn(&self, name: &str) -> String {
        crate::catalog::arn(&self.inner.scope, &format!("mitigationaction/{name}"))
    }

    // ---- actions ----

    /// CreateMitigationAction: returns (actionArn, actionId).
    pub fn create_action(&self, name: &str, input: ActionInput) -> Result<(String, String)> {
        validate::action_name(name)?;
        let role = input
            .role_arn
            .ok_or_else(|| MitigationError::invalid("roleArn is required"))?;
        validate::role_arn("roleArn", &role)?;
        let params = input
            .action_params
            .ok_or_else(|| MitigationError::invalid("actionParams is required"))?;
        let kind = validate::params(&params, self.inner.sinks.as_deref())?;
        let tags = input.tags.unwrap_or_default();
        check_tags(&tags)?;
        let arn = self.action_arn(name);
        let mut st = self.inner.state();
        if st.actions.contains_key(name) {
            return Err(MitigationError::AlreadyExists {
                message: format!("mitigation action {name} already exists"),
                id: name.to_owned(),
                arn,
            });
        }
        if st.actions.len() >= validate::MAX_ACTIONS_DEFINED {
            return Err(MitigationError::LimitExceeded(format!(
                "at most {} mitigation actions can exist",
                validate::MAX_ACTIONS_DEFINED
            )));
        }
        let at = now();
        let action = MitigationAction {
            action_name: name.to_owned(),
            action_type: kind,
            action_arn: arn.clone(),
            action_id: random_uuid(),
            role_arn: role,
            action_params: params,
            creation_date: at,
            last_modified_date: at,
        };
        self.inner
            .store
            .put(MitigationTable::Actions, name, Some(&action))?;
        if !tags.is_empty() {
            let map: BTreeMap<String, String> = tags
                .into_iter()
                .map(|t| (t.key, t.value.unwrap_or_default()))
                .collect();
            self.inner
                .store
                .put(MitigationTable::Tags, &arn, Some(&map))?;
            st.tags.insert(arn.clone(), map);
        }
        let id = action.action_id.clone();
        st.actions.insert(name.to_owned(), action);
        Ok((arn, id))
    }

    /// UpdateMitigationAction. The type may change with the params (the
    /// model allows any params).
    pub fn update_action(&self, name: &str, input: ActionInput) -> Result<(String, String)> {
        validate::action_name(name)?;
        if input.tags.is_some() {
            return Err(MitigationError::invalid(
                "UpdateMitigationAction has no tags member (use TagResource)",
            ));
        }
        if let Some(r) = &input.role_arn {
            validate::role_arn("roleArn", r)?;
        }
        let kind = input
            .action_params
            .as_ref()
            .map(|p| validate::params(p, self.inner.sinks.as_deref()))
            .transpose()?;
        let mut st = self.inner.state();
        let current = st
            .actions
            .get(name)
            .ok_or_else(|| MitigationError::NotFound(format!("no mitigation action {name}")))?;
        let mut new = current.clone();
        if let Some(r) = input.role_arn {
            new.role_arn = r;
        }
        if let (Some(p), Some(k)) = (input.action_params, kind) {
            new.action_params = p;
            new.action_type = k;
        }
        new.last_modified_date = now();
        self.inner
            .store
            .put(MitigationTable::Actions, name, Some(&new))?;
        let out = (new.action_arn.clone(), new.action_id.clone());
        st.actions.insert(name.to_owned(), new);
        Ok(out)
    }

    /// DescribeMitigationAction.
    pub fn describe_action(&self, name: &str) -> Result<MitigationAction> {
        self.inner
            .state()
            .actions
            .get(name)
            .cloned()
            .ok_or_else(|| MitigationError::NotFound(format!("no mitigation action {name}")))
    }

    /// ListMitigationActions, by name.
    pub fn list_actions(
        &self,
        action_type: Option<ActionType>,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<MitigationAction>> {
        let items: Vec<MitigationAction> = self
            .inner
            .state()
            .actions
            .values()
            .filter(|a| action_type.is_none_or(|t| a.action_type == t))
            .cloned()
            .collect();
        let query = Fingerprint::new().opt(action_type.map(|t| t.as_str().as_bytes()));
        Ok(page_sorted(
            items,
            |a| a.action_name.as_bytes().to_vec(),
            TokenKind::MitigationActions,
            query,
            max_results,
            next_token,
        )?)
    }

    /// DeleteMitigationAction. Deleting a missing action succeeds (the
    /// model has no ResourceNotFound for it); tasks keep the definition
    /// they ran with.
    pub fn delete_action(&self, name: &str) -> Result<()> {
        validate::action_name(name)?;
        let arn = self.action_arn(name);
        let mut st = self.inner.state();
        if st.actions.remove(name).is_some() {
            self.inner
                .store
                .put::<MitigationAction>(MitigationTable::Actions, name, None)?;
        }
        if st.tags.remove(&arn).is_some() {
            self.inner
                .store
                .put::<BTreeMap<String, String>>(MitigationTable::Tags, &arn, None)?;
        }
        Ok(())
    }

    /// The definitions of `names`, in order; 404 naming the first missing.
    fn definitions(&self, st: &State, names: &[String]) -> Result<Vec<MitigationAction>> {
        names
            .iter()
            .map(|n| {
                st.actions
                    .get(n)
                    .cloned()
                    .ok_or_else(|| MitigationError::NotFound(format!("no mitigation action {n}")))
            })
            .collect()
    }

    fn enqueue(&self, job: Job) -> Result<()> {
        match self.inner.work.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(MitigationError::LimitExceeded(
                "too many mitigation tasks are waiting; try again later".into(),
            )),
            Err(TrySendError::Disconnected(_)) => Err(MitigationError::Store(
                crate::store::StoreError::Storage("the mitigation worker has stopped".into()),
            )),
        }
    }

    // ---- audit tasks ----

    /// StartAuditMitigationActionsTask.
    pub fn start_audit_task(&self, task_id: &str, input: AuditTaskInput) -> Result<String> {
        validate::task_id(task_id)?;
        validate::client_request_token(&input.client_request_token)?;
        validate::audit_target(&input.target)?;
        let audit = self
            .inner
            .audit
            .clone()
            .ok_or_else(|| MitigationError::invalid("the audit is not running"))?;
        if input.audit_check_to_actions_mapping.is_empty() {
            return Err(MitigationError::invalid(
                "auditCheckToActionsMapping must map at least one check",
            ));
        }
        let mut mapping = BTreeMap::new();
        {
            let st = self.inner.state();
            if let Some(r) = st.audit.get(task_id) {
                return if r.task.client_request_token == input.client_request_token
                    && r.task.target == input.target
                {
                    Ok(task_id.to_owned())
                } else {
                    Err(MitigationError::TaskAlreadyExists(format!(
                        "an audit mitigation actions task {task_id} already exists"
                    )))
                };
            }
            for (check, names) in &input.audit_check_to_actions_mapping {
                let c = CheckName::parse_or_err("auditCheckToActionsMapping", check)
                    .map_err(MitigationError::InvalidRequest)?;
                validate::action_count(
                    &format!("auditCheckToActionsMapping.{check}"),
                    names.len(),
                )?;
                for a in self.definitions(&st, names)? {
                    if !validate::applies(c, a.action_type) {
                        return Err(MitigationError::invalid(format!(
                            "action {} ({}) cannot mitigate {}; it allows {}",
                            a.action_name,
                            a.action_type.as_str(),
                            c.as_str(),
                            std::iter::once("PUBLISH_FINDING_TO_SNS")
                                .chain(validate::applicable(c).iter().map(|t| t.as_str()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
                mapping.insert(c, names.clone());
            }
        }
        // The target must exist now; its findings are read on the worker.
        if let Some(id) = &input.target.audit_task_id {
            audit
                .describe_audit_task(id)
                .map_err(|e| MitigationError::NotFound(e.to_string()))?;
        }
        if let Some(ids) = &input.target.finding_ids {
            for id in ids {
                audit
                    .finding(id)
                    .map_err(|e| MitigationError::NotFound(e.to_string()))?;
            }
        }
        let mut st = self.inner.state();
        if st.audit.contains_key(task_id) {
            return Err(MitigationError::TaskAlreadyExists(format!(
                "an audit mitigation actions task {task_id} already exists"
            )));
        }
        let mut defs: Vec<ActionDefinition> = Vec::new();
        for names in mapping.values() {
            for a in self.definitions(&st, names)? {
                if !defs.iter().any(|d| d.name == a.action_name) {
                    defs.push(a.definition());
                }
            }
        }
        let record = AuditRecord {
            task: AuditMitigationTask {
                task_id: task_id.to_owned(),
                task_status: TaskStatus::InProgress,
                start_time: now(),
                end_time: None,
                task_statistics: BTreeMap::new(),
                target: input.target,
                audit_check_to_actions_mapping: mapping
                    .into_iter()
                    .map(|(c, n)| (c.as_str().to_owned(), n))
                    .collect(),
                actions_definition: defs,
                client_request_token: input.client_request_token,
                audit_task_ids: Vec::new(),
            },
            executions: Vec::new(),
        };
        self.inner.save_audit(&record);
        st.audit.insert(task_id.to_owned(), record);
        drop(st);
        self.enqueue(Job::Audit(task_id.to_owned()))?;
        Ok(task_id.to_owned())
    }

    /// CancelAuditMitigationActionsTask: only a task IN_PROGRESS; its
    /// pending executions become CANCELED, finished ones stay (no
    /// rollback).
    pub fn cancel_audit_task(&self, task_id: &str) -> Result<()> {
        let mut st = self.inner.state();
        let r = st.audit.get(task_id).ok_or_else(|| {
            MitigationError::NotFound(format!("no audit mitigation actions task {task_id}"))
        })?;
        if r.task.task_status != TaskStatus::InProgress {
            return Err(MitigationError::invalid(format!(
                "task {task_id} is not in progress"
            )));
        }
        st.cancel.insert(task_id.to_owned());
        Ok(())
    }

    /// DescribeAuditMitigationActionsTask.
    pub fn describe_audit_task(&self, task_id: &str) -> Result<AuditMitigationTask> {
        self.inner
            .state()
            .audit
            .get(task_id)
            .map(|r| r.task.clone())
            .ok_or_else(|| {
                MitigationError::NotFound(format!("no audit mitigation actions task {task_id}"))
            })
    }

    /// ListAuditMitigationActionsTasks, by start time.
    pub fn list_audit_tasks(
        &self,
        f: &AuditTaskFilter,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<AuditMitigationTask>> {
        let st = self.inner.state();
        let mut items: Vec<AuditMitigationTask> = st
            .audit
            .values()
            .filter(|r| {
                let t = &r.task;
                t.start_time >= f.start_time
                    && t.start_time <= f.end_time
                    && f.task_status.is_none_or(|s| t.task_status == s)
                    && f.audit_task_id.as_ref().is_none_or(|id| {
                        t.audit_task_ids.contains(id) || t.target.audit_task_id.as_ref() == Some(id)
                    })
                    && f.finding_id
                        .as_ref()
                        .is_none_or(|id| r.executions.iter().any(|e| &e.finding_id == id))
            })
            .map(|r| r.task.clone())
            .collect();
        drop(st);
        items.sort_by(|a, b| (a.start_time, &a.task_id).cmp(&(b.start_time, &b.task_id)));
        let mut q = Fingerprint::new()
            .u64(f.start_time.as_millis())
            .u64(f.end_time.as_millis());
        q = fp_opt(q, &f.audit_task_id);
        q = fp_opt(q, &f.finding_id);
        q = q.opt(
            f.task_status
                .map(|s| format!("{s:?}").into_bytes())
                .as_deref(),
        );
        Ok(page_sorted(
            items,
            |t| sort_key(t.start_time, &t.task_id),
            TokenKind::AuditMitigationTasks,
            q,
            max_results,
            next_token,
        )?)
    }

    /// ListAuditMitigationActionsExecutions: one task's executions for
    /// one finding, optionally of one status, in the order they ran.
    pub fn list_audit_executions(
        &self,
        task_id: &str,
        finding_id: &str,
        status: Option<ExecutionStatus>,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<AuditExecution>> {
        let st = self.inner.state();
        let items: Vec<(usize, AuditExecution)> = st
            .audit
            .get(task_id)
            .map(|r| {
                r.executions
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.finding_id == finding_id)
                    .filter(|(_, e)| status.is_none_or(|s| e.status == s))
                    .map(|(i, e)| (i, e.clone()))
                    .collect()
            })
            .unwrap_or_default();
        drop(st);
        let q = Fingerprint::new()
            .field(task_id.as_bytes())
            .field(finding_id.as_bytes())
            .opt(status.map(|s| format!("{s:?}").into_bytes()).as_deref());
        let page = page_sorted(
            items,
            |(i, _)| (*i as u64).to_be_bytes().to_vec(),
            TokenKind::AuditMitigationExecutions,
            q,
            max_results,
            next_token,
        )?;
        Ok(Page {
            items: page.items.into_iter().map(|(_, e)| e).collect(),
            next_token: page.next_token,
        })
    }

    /// Every execution of one audit task, in the order they ran (the
    /// console's view; the API lists them one finding at a time).
    pub fn audit_task_executions(&self, task_id: &str) -> Result<Vec<AuditExecution>> {
        self.inner
            .state()
            .audit
            .get(task_id)
            .map(|r| r.executions.clone())
            .ok_or_else(|| {
                MitigationError::NotFound(format!("no audit mitigation actions task {task_id}"))
            })
    }

    // ---- Detect tasks ----

    /// StartDetectMitigationActionsTask.
    pub fn start_detect_task(&self, task_id: &str, input: DetectTaskInput) -> Result<String> {
        validate::task_id(task_id)?;
        validate::client_request_token(&input.client_request_token)?;
        validate::detect_target(&input.target)?;
        validate::action_count("actions", input.actions.len())?;
        if let Some(r) = &input.violation_event_occurrence_range {
            if r.end_time < r.start_time {
                return Err(MitigationError::invalid(
                    "violationEventOccurrenceRange.endTime is before its startTime",
                ));
            }
        }
        if self.inner.defender.get().is_none() {
            return Err(MitigationError::invalid("Detect is not running"));
        }
        let mut st = self.inner.state();
        if let Some(r) = st.detect.get(task_id) {
            return if r.task.client_request_token == input.client_request_token
                && r.task.target == input.target
            {
                Ok(task_id.to_owned())
            } else {
                Err(MitigationError::TaskAlreadyExists(format!(
                    "a detect mitigation actions task {task_id} already exists"
                )))
            };
        }
        let defs = self.definitions(&st, &input.actions)?;
        if let Some(a) = defs
            .iter()
            .find(|a| a.action_type != ActionType::AddThingsToThingGroup)
        {
            return Err(MitigationError::invalid(format!(
                "action {} is {}; Detect mitigation allows only ADD_THINGS_TO_THING_GROUP",
                a.action_name,
                a.action_type.as_str()
            )));
        }
        let record = DetectRecord {
            task: DetectMitigationTask {
                task_id: task_id.to_owned(),
                task_status: TaskStatus::InProgress,
                task_start_time: now(),
                task_end_time: None,
                target: input.target,
                violation_event_occurrence_range: input.violation_event_occurrence_range,
                only_active_violations_included: input
                    .include_only_active_violations
                    .unwrap_or(false),
                suppressed_alerts_included: input.include_suppressed_alerts.unwrap_or(false),
                actions_definition: defs.iter().map(MitigationAction::definition).collect(),
                task_statistics: DetectStatistics::default(),
                client_request_token: input.client_request_token,
            },
            executions: Vec::new(),
        };
        self.inner.save_detect(&record);
        st.detect.insert(task_id.to_owned(), record);
        drop(st);
        self.enqueue(Job::Detect(task_id.to_owned()))?;
        Ok(task_id.to_owned())
    }

    /// CancelDetectMitigationActionsTask.
    pub fn cancel_detect_task(&self, task_id: &str) -> Result<()> {
        let mut st = self.inner.state();
        let r = st.detect.get(task_id).ok_or_else(|| {
            MitigationError::NotFound(format!("no detect mitigation actions task {task_id}"))
        })?;
        if r.task.task_status != TaskStatus::InProgress {
            return Err(MitigationError::invalid(format!(
                "task {task_id} is not in progress"
            )));
        }
        st.cancel.insert(task_id.to_owned());
        Ok(())
    }

    /// DescribeDetectMitigationActionsTask.
    pub fn describe_detect_task(&self, task_id: &str) -> Result<DetectMitigationTask> {
        self.inner
            .state()
            .detect
            .get(task_id)
            .map(|r| r.task.clone())
            .ok_or_else(|| {
                MitigationError::NotFound(format!("no detect mitigation actions task {task_id}"))
            })
    }

    /// ListDetectMitigationActionsTasks, by start time.
    pub fn list_detect_tasks(
        &self,
        start: Timestamp,
        end: Timestamp,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<DetectMitigationTask>> {
        let mut items: Vec<DetectMitigationTask> = self
            .inner
            .state()
            .detect
            .values()
            .filter(|r| r.task.task_start_time >= start && r.task.task_start_time <= end)
            .map(|r| r.task.clone())
            .collect();
        items.sort_by(|a, b| (a.task_start_time, &a.task_id).cmp(&(b.task_start_time, &b.task_id)));
        let q = Fingerprint::new()
            .u64(start.as_millis())
            .u64(end.as_millis());
        Ok(page_sorted(
            items,
            |t| sort_key(t.task_start_time, &t.task_id),
            TokenKind::DetectMitigationTasks,
            q,
            max_results,
            next_token,
        )?)
    }

    /// ListDetectMitigationActionsExecutions, by start time.
    pub fn list_detect_executions(
        &self,
        f: &DetectExecutionFilter,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<DetectExecution>> {
        let st = self.inner.state();
        let mut items: Vec<(Vec<u8>, DetectExecution)> = Vec::new();
        for r in st.detect.values() {
            if f.task_id.as_ref().is_some_and(|t| *t != r.task.task_id) {
                continue;
            }
            for (i, e) in r.executions.iter().enumerate() {
                let keep = f.violation_id.as_ref().is_none_or(|v| *v == e.violation_id)
                    && f.thing_name.as_ref().is_none_or(|t| *t == e.thing_name)
                    && f.start_time.is_none_or(|s| e.execution_start_date >= s)
                    && f.end_time.is_none_or(|s| e.execution_start_date <= s);
                if keep {
                    let mut key = sort_key(e.execution_start_date, &r.task.task_id);
                    key.push(0);
                    key.extend_from_slice(&(i as u64).to_be_bytes());
                    items.push((key, e.clone()));
                }
            }
        }
        drop(st);
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut q = fp_opt(Fingerprint::new(), &f.task_id);
        q = fp_opt(q, &f.violation_id);
        q = fp_opt(q, &f.thing_name);
        q = q
            .opt(
                f.start_time
                    .map(|t| t.as_millis().to_be_bytes().to_vec())
                    .as_deref(),
            )
            .opt(
                f.end_time
                    .map(|t| t.as_millis().to_be_bytes().to_vec())
                    .as_deref(),
            );
        let page = page_sorted(
            items,
            |(k, _)| k.clone(),
            TokenKind::DetectMitigationExecutions,
            q,
            max_results,
            next_token,
        )?;
        Ok(Page {
            items: page.items.into_iter().map(|(_, e)| e).collect(),
            next_token: page.next_token,
        })
    }

    /// Waits (polling) until a task is no longer IN_PROGRESS; for tests.
    pub fn wait_for_task(&self, task_id: &str, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let done = {
                let st = self.inner.state();
                let a = st.audit.get(task_id).map(|r| r.task.task_status);
                let d = st.detect.get(task_id).map(|r| r.task.task_status);
                a.or(d).is_some_and(|s| s != TaskStatus::InProgress)
            };
            if done {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    // ---- tags ----

    /// Whether `arn` is a resource whose tags we keep: a mitigation action
    /// that exists, or a security profile (`profile_exists` answers for
    /// those, since the catalog owns them).
    fn taggable(&self, arn: &str, profile_exists: &dyn Fn(&str) -> bool) -> Result<()> {
        let prefix = crate::catalog::arn(&self.inner.scope, "");
        let resource = arn.strip_prefix(prefix.as_str()).ok_or_else(|| {
            MitigationError::invalid(format!(
                "{arn} is not a resource ARN of this account and region"
            ))
        })?;
        let exists = if let Some(name) = resource.strip_prefix("securityprofile/") {
            profile_exists(name)
        } else if let Some(name) = resource.strip_prefix("mitigationaction/") {
            self.inner.state().actions.contains_key(name)
        } else {
            return Err(MitigationError::invalid(format!(
                "tags are kept for security profiles and mitigation actions, not {arn}"
            )));
        };
        if !exists {
            return Err(MitigationError::NotFound(format!("no resource {arn}")));
        }
        Ok(())
    }

    /// TagResource.
    pub fn tag_resource(
        &self,
        arn: &str,
        tags: Vec<Tag>,
        profile_exists: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        self.taggable(arn, profile_exists)?;
        check_tags(&tags)?;
        let mut st = self.inner.state();
        let mut map = st.tags.get(arn).cloned().unwrap_or_default();
        for t in tags {
            map.insert(t.key, t.value.unwrap_or_default());
        }
        if map.len() > MAX_TAGS {
            return Err(MitigationError::LimitExceeded(format!(
                "a resource can have at most {MAX_TAGS} tags"
            )));
        }
        validate_auto_tags(&map)?;
        self.inner
            .store
            .put(MitigationTable::Tags, arn, Some(&map))?;
        st.tags.insert(arn.to_owned(), map);
        Ok(())
    }

    /// UntagResource.
    pub fn untag_resource(
        &self,
        arn: &str,
        keys: &[String],
        profile_exists: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        self.taggable(arn, profile_exists)?;
        let mut st = self.inner.state();
        let Some(mut map) = st.tags.get(arn).cloned() else {
            return Ok(());
        };
        for k in keys {
            map.remove(k);
        }
        if map.is_empty() {
            self.inner
                .store
                .put::<BTreeMap<String, String>>(MitigationTable::Tags, arn, None)?;
            st.tags.remove(arn);
        } else {
            self.inner
                .store
                .put(MitigationTable::Tags, arn, Some(&map))?;
            st.tags.insert(arn.to_owned(), map);
        }
        Ok(())
    }

    /// ListTagsForResource, by key.
    pub fn list_tags(
        &self,
        arn: &str,
        next_token: Option<&str>,
        profile_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Page<Tag>> {
        self.taggable(arn, profile_exists)?;
        let items: Vec<Tag> = self
            .inner
            .state()
            .tags
            .get(arn)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| Tag {
                        key: k.clone(),
                        value: Some(v.clone()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(page_sorted(
            items,
            |t| t.key.as_bytes().to_vec(),
            TokenKind::Tags,
            Fingerprint::new().field(arn.as_bytes()),
            None,
            next_token,
        )?)
    }

    /// Drops a deleted security profile's tags.
    pub fn forget_resource(&self, arn: &str) -> Result<()> {
        let mut st = self.inner.state();
        if st.tags.remove(arn).is_some() {
            self.inner
                .store
                .put::<BTreeMap<String, String>>(MitigationTable::Tags, arn, None)?;
        }
        Ok(())
    }
}

impl EventHook for Mitigation {
    /// Every committed violation event: the ones that start or end
    /// automatic mitigation are queued for the worker. Never blocks.
    fn committed(&self, event: &ViolationEvent) {
        if self
            .inner
            .auto_config(&event.security_profile_name)
            .is_none()
        {
            return;
        }
        if let Err(TrySendError::Full(_)) =
            self.inner.work.try_send(Job::Auto(Box::new(event.clone())))
        {
            self.inner.auto_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                thing = %event.thing_name,
                violation = %event.violation_id,
                "automatic mitigation dropped: the mitigation queue is full"
            );
        }
    }
}

fn sort_key(t: Timestamp, id: &str) -> Vec<u8> {
    let mut k = t.as_millis().to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(MitigationError::invalid(format!(
            "at most {MAX_TAGS} tags, got {}",
            tags.len()
        )));
    }
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 {
            return Err(MitigationError::invalid(
                "a tag Key must be 1 to 128 characters long",
            ));
        }
        if t.value.as_ref().is_some_and(|v| v.len() > 256) {
            return Err(MitigationError::invalid(
                "a tag Value must be at most 256 characters long",
            ));
        }
    }
    Ok(())
}

/// The automatic-mitigation tags must be usable: action names and a
/// boolean.
fn validate_auto_tags(map: &BTreeMap<String, String>) -> Result<()> {
    if let Some(names) = map.get(AUTO_MITIGATION_TAG) {
        for n in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            validate::action_name(n)?;
        }
    }
    if let Some(v) = map.get(UNDO_ON_CLEAR_TAG) {
        if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
            return Err(MitigationError::invalid(format!(
                "{UNDO_ON_CLEAR_TAG} must be true or false, got {v:?}"
            )));
        }
    }
    Ok(())
}
