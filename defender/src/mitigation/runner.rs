//! The `wardmq-mitigation` worker thread: runs audit and Detect
//! mitigation tasks one at a time, and the automatic runs of Detect
//! alarms, recording every execution.
//!
//! Rules (spec §9): a target's actions run in order; when one fails, the
//! rest are SKIPPED for that finding or violation, the others still get
//! theirs; nothing is rolled back. A cancel is seen between targets:
//! what is still PENDING becomes CANCELED.

use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::execute::{ExecError, Subject};
use super::model::{
    ActionDefinition, AuditExecution, CheckStatistics, DetectExecution, DetectMitigationTask,
    DetectStatistics, DetectTarget, ExecutionStatus, TaskStatus,
};
use super::{now, random_uuid, DetectRecord, Inner, Job};
use crate::audit::model::AuditFinding;
use crate::audit::FindingsQuery;
use crate::detect::model::{Timestamp, ViolationEvent, ViolationEventType};
use crate::store::ViolationFilter;

pub(crate) fn spawn(inner: Arc<Inner>, queue: Receiver<Job>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("wardmq-mitigation".into())
        .spawn(move || {
            while let Ok(job) = queue.recv() {
                match job {
                    Job::Audit(id) => run_audit(&inner, &id),
                    Job::Detect(id) => run_detect(&inner, &id),
                    Job::Auto(event) => run_auto(&inner, &event),
                    Job::Stop => break,
                }
            }
        })
}

fn canceled(inner: &Inner, task_id: &str) -> bool {
    canceled_in(&inner.state(), task_id)
}

/// The findings an audit task's target selects.
fn audit_findings(inner: &Inner, task_id: &str) -> Result<Vec<AuditFinding>, String> {
    let audit = inner.audit.as_ref().ok_or("the audit is not running")?;
    let target = inner
        .state()
        .audit
        .get(task_id)
        .map(|r| r.task.target.clone())
        .ok_or("task vanished")?;
    if let Some(ids) = &target.finding_ids {
        return ids
            .iter()
            .map(|id| audit.finding(id).map_err(|e| e.to_string()))
            .collect();
    }
    let mut query = FindingsQuery {
        max_results: Some(250),
        ..FindingsQuery::default()
    };
    match &target.audit_task_id {
        Some(id) => query.task_id = Some(id.clone()),
        // A reason-code filter has no task: every finding still kept.
        None => {
            query.start_time = Some(Timestamp::from_millis(0));
            query.end_time = Some(now());
        }
    }
    let mut out = Vec::new();
    loop {
        let page = audit
            .list_audit_findings(&query)
            .map_err(|e| e.to_string())?;
        for f in page.items {
            // Listings trim related resources; actions want the whole
            // finding.
            out.push(audit.finding(&f.finding_id).unwrap_or(f));
        }
        match page.next_token {
            Some(t) => query.next_token = Some(t),
            None => break,
        }
    }
    if let Some(filter) = &target.audit_check_to_reason_code_filter {
        out.retain(|f| {
            filter.iter().any(|(check, codes)| {
                crate::audit::checks::CheckName::parse(check) == Some(f.check_name)
                    && codes.contains(&f.reason_for_non_compliance_code)
            })
        });
    }
    Ok(out)
}

fn run_audit(inner: &Inner, task_id: &str) {
    let findings = match audit_findings(inner, task_id) {
        Ok(f) => f,
        Err(message) => {
            tracing::error!(task = task_id, %message, "audit mitigation task failed to start");
            let mut st = inner.state();
            if let Some(r) = st.audit.get_mut(task_id) {
                r.task.task_status = TaskStatus::Failed;
                r.task.end_time = Some(now());
                let r = r.clone();
                drop(st);
                inner.save_audit(&r);
            }
            return;
        }
    };
    // Every execution is recorded PENDING first, so a cancel can mark
    // what never ran.
    let (mapping, defs) = {
        let mut st = inner.state();
        let Some(r) = st.audit.get_mut(task_id) else {
            return;
        };
        let mapping = r.task.audit_check_to_actions_mapping.clone();
        let defs = r.task.actions_definition.clone();
        let mut audit_tasks: Vec<String> = findings.iter().map(|f| f.task_id.clone()).collect();
        audit_tasks.sort();
        audit_tasks.dedup();
        r.task.audit_task_ids = audit_tasks;
        for f in &findings {
            let Some(names) = mapping.get(f.check_name.as_str()) else {
                continue;
            };
            r.task
                .task_statistics
                .entry(f.check_name.as_str().to_owned())
                .or_default()
                .total_findings_count += 1;
            for n in names {
                let id = defs
                    .iter()
                    .find(|d| d.name == *n)
                    .map(|d| d.id.clone())
                    .unwrap_or_default();
                r.executions.push(AuditExecution {
                    task_id: task_id.to_owned(),
                    finding_id: f.finding_id.clone(),
                    action_name: n.clone(),
                    action_id: id,
                    status: ExecutionStatus::Pending,
                    start_time: None,
                    end_time: None,
                    error_code: None,
                    message: None,
                });
            }
        }
        let r = r.clone();
        drop(st);
        inner.save_audit(&r);
        (mapping, defs)
    };
    let mut any_failed = false;
    let mut was_canceled = false;
    for f in &findings {
        let Some(names) = mapping.get(f.check_name.as_str()) else {
            continue;
        };
        let check = f.check_name.as_str().to_owned();
        if canceled(inner, task_id) {
            was_canceled = true;
            break;
        }
        let mut outcome: Result<(), ()> = Ok(());
        let mut skip_reason: Option<String> = f
            .is_suppressed
            .then(|| "the finding is suppressed".to_owned());
        let suppressed = skip_reason.is_some();
        for name in names {
            let def = defs.iter().find(|d| d.name == *name);
            let started = now();
            let result: Option<Result<(), ExecError>> = match (&skip_reason, def) {
                (Some(_), _) => None,
                (None, None) => Some(Err(ExecError {
                    code: "ResourceNotFoundException".into(),
                    message: format!("no mitigation action {name}"),
                })),
                (None, Some(d)) => Some(inner.exec.run(task_id, d, Subject::Finding(f))),
            };
            let (status, code, message) = match &result {
                None => (ExecutionStatus::Skipped, None, skip_reason.clone()),
                Some(Ok(())) => (ExecutionStatus::Completed, None, None),
                Some(Err(e)) => {
                    outcome = Err(());
                    skip_reason = Some(format!("skipped after action {name} failed"));
                    (
                        ExecutionStatus::Failed,
                        Some(e.code.clone()),
                        Some(e.message.clone()),
                    )
                }
            };
            inner.finished(def, status);
            if let Some(Err(e)) = &result {
                tracing::warn!(task = task_id, finding = %f.finding_id, action = %name, error = %e.message, "mitigation action failed");
            }
            let mut st = inner.state();
            if let Some(r) = st.audit.get_mut(task_id) {
                if let Some(e) = r.executions.iter_mut().find(|e| {
                    e.finding_id == f.finding_id
                        && e.action_name == *name
                        && e.status == ExecutionStatus::Pending
                }) {
                    e.status = status;
                    e.start_time = Some(started);
                    e.end_time = Some(now());
                    e.error_code = code;
                    e.message = message;
                }
            }
        }
        let mut st = inner.state();
        if let Some(r) = st.audit.get_mut(task_id) {
            let stats = r.task.task_statistics.entry(check).or_default();
            if suppressed {
                stats.skipped_findings_count += 1;
            } else if outcome.is_err() {
                stats.failed_findings_count += 1;
                any_failed = true;
            } else {
                stats.succeeded_findings_count += 1;
            }
            let r = r.clone();
            drop(st);
            inner.save_audit(&r);
        }
    }
    let mut st = inner.state();
    if canceled_in(&st, task_id) {
        was_canceled = true;
    }
    st.cancel.remove(task_id);
    let Some(r) = st.audit.get_mut(task_id) else {
        return;
    };
    if was_canceled {
        let mut by_check: BTreeMap<String, CheckStatistics> = r.task.task_statistics.clone();
        for e in &mut r.executions {
            if e.status == ExecutionStatus::Pending {
                e.status = ExecutionStatus::Canceled;
                inner.finished(
                    defs.iter().find(|d| d.name == e.action_name),
                    ExecutionStatus::Canceled,
                );
            }
        }
        // A finding none of whose actions ran counts as canceled.
        for f in &findings {
            let mine: Vec<&AuditExecution> = r
                .executions
                .iter()
                .filter(|e| e.finding_id == f.finding_id)
                .collect();
            if !mine.is_empty() && mine.iter().all(|e| e.status == ExecutionStatus::Canceled) {
                by_check
                    .entry(f.check_name.as_str().to_owned())
                    .or_default()
                    .canceled_findings_count += 1;
            }
        }
        r.task.task_statistics = by_check;
    }
    r.task.task_status = if was_canceled {
        TaskStatus::Canceled
    } else if any_failed {
        TaskStatus::Failed
    } else {
        TaskStatus::Completed
    };
    r.task.end_time = Some(now());
    let r = r.clone();
    drop(st);
    tracing::info!(task = task_id, status = ?r.task.task_status, "audit mitigation task finished");
    inner.save_audit(&r);
}

fn canceled_in(st: &super::State, task_id: &str) -> bool {
    st.cancel.contains(task_id)
}

/// A violation a Detect task acts on: (violation id, thing, its event).
type Target = (String, String, Option<ViolationEvent>);

fn detect_violations(inner: &Inner, task: &DetectMitigationTask) -> Result<Vec<Target>, String> {
    let defender = inner.defender.get().ok_or("Detect is not running")?;
    let range = task.violation_event_occurrence_range;
    let in_range = |t: Timestamp| range.is_none_or(|r| t >= r.start_time && t <= r.end_time);
    let filter = ViolationFilter {
        security_profile_name: task.target.security_profile_name.clone(),
        ..ViolationFilter::default()
    };
    let behavior_ok = |b: &str| task.target.behavior_name.as_ref().is_none_or(|n| n == b);
    let wanted = |id: &str| {
        task.target
            .violation_ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|v| v == id))
    };
    let mut out: Vec<Target> = Vec::new();
    // Active violations.
    let mut token = None;
    loop {
        let page = defender
            .list_active_violations(&filter, Some(250), token.as_deref())
            .map_err(|e| e.to_string())?;
        for a in page.items {
            let suppressed_ok = task.suppressed_alerts_included || !a.behavior.suppresses_alerts();
            if wanted(&a.violation_id)
                && behavior_ok(&a.behavior.name)
                && suppressed_ok
                && in_range(a.violation_start_time)
                && !out.iter().any(|(v, _, _)| *v == a.violation_id)
            {
                out.push((a.violation_id, a.thing_name, None));
            }
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    if task.only_active_violations_included {
        return Ok(out);
    }
    // And those in the history (in-alarm events).
    let (start, end) = range.map_or((Timestamp::from_millis(0), now()), |r| {
        (r.start_time, r.end_time)
    });
    let mut token = None;
    loop {
        let page = defender
            .list_violation_events(start, end, &filter, Some(250), token.as_deref())
            .map_err(|e| e.to_string())?;
        for e in page.items {
            let suppressed_ok = task.suppressed_alerts_included || !e.suppressed();
            if e.violation_event_type == ViolationEventType::InAlarm
                && wanted(&e.violation_id)
                && behavior_ok(&e.behavior.name)
                && suppressed_ok
                && !out.iter().any(|(v, _, _)| *v == e.violation_id)
            {
                out.push((e.violation_id.clone(), e.thing_name.clone(), Some(e)));
            }
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(out)
}

/// Runs `defs` in order on one thing, appending an execution per action
/// to `execs`; returns the statistics' increments.
fn run_on_thing(
    inner: &Inner,
    task_id: &str,
    violation_id: &str,
    thing: &str,
    event: Option<&ViolationEvent>,
    defs: &[ActionDefinition],
    execs: &mut Vec<DetectExecution>,
) -> DetectStatistics {
    let mut stats = DetectStatistics::default();
    let mut failed = false;
    for d in defs {
        let started = now();
        let (status, code, message) = if failed {
            stats.actions_skipped += 1;
            (
                ExecutionStatus::Skipped,
                None,
                Some("skipped after an earlier action failed".to_owned()),
            )
        } else {
            match inner.exec.run(task_id, d, Subject::Thing { thing, event }) {
                Ok(()) => {
                    stats.actions_executed += 1;
                    (ExecutionStatus::Successful, None, None)
                }
                Err(e) => {
                    failed = true;
                    stats.actions_failed += 1;
                    tracing::warn!(task = task_id, thing, action = %d.name, error = %e.message, "mitigation action failed");
                    (ExecutionStatus::Failed, Some(e.code), Some(e.message))
                }
            }
        };
        inner.finished(Some(d), status);
        execs.push(DetectExecution {
            task_id: task_id.to_owned(),
            violation_id: violation_id.to_owned(),
            action_name: d.name.clone(),
            thing_name: thing.to_owned(),
            execution_start_date: started,
            execution_end_date: Some(now()),
            status,
            error_code: code,
            message,
        });
    }
    stats
}

fn add(total: &mut DetectStatistics, s: DetectStatistics) {
    total.actions_executed += s.actions_executed;
    total.actions_skipped += s.actions_skipped;
    total.actions_failed += s.actions_failed;
}

fn finish_detect(inner: &Inner, task_id: &str, was_canceled: bool) {
    let mut st = inner.state();
    st.cancel.remove(task_id);
    let Some(r) = st.detect.get_mut(task_id) else {
        return;
    };
    r.task.task_status = if was_canceled {
        TaskStatus::Canceled
    } else if r.task.task_statistics.actions_failed > 0 {
        TaskStatus::Failed
    } else {
        TaskStatus::Successful
    };
    r.task.task_end_time = Some(now());
    let r = r.clone();
    drop(st);
    tracing::info!(task = task_id, status = ?r.task.task_status, "detect mitigation task finished");
    inner.save_detect(&r);
}

fn run_detect(inner: &Inner, task_id: &str) {
    let Some(task) = inner.state().detect.get(task_id).map(|r| r.task.clone()) else {
        return;
    };
    let targets = match detect_violations(inner, &task) {
        Ok(t) => t,
        Err(message) => {
            tracing::error!(task = task_id, %message, "detect mitigation task failed");
            if let Some(r) = inner.state().detect.get_mut(task_id) {
                r.task.task_statistics.actions_failed += 1;
            }
            finish_detect(inner, task_id, false);
            return;
        }
    };
    let mut was_canceled = false;
    for (i, (violation, thing, event)) in targets.iter().enumerate() {
        if canceled_in(&inner.state(), task_id) {
            was_canceled = true;
            skip_canceled(inner, task_id, &task.actions_definition, &targets[i..]);
            break;
        }
        let mut execs = Vec::new();
        let stats = run_on_thing(
            inner,
            task_id,
            violation,
            thing,
            event.as_ref(),
            &task.actions_definition,
            &mut execs,
        );
        let mut st = inner.state();
        if let Some(r) = st.detect.get_mut(task_id) {
            r.executions.extend(execs);
            add(&mut r.task.task_statistics, stats);
            let r = r.clone();
            drop(st);
            inner.save_detect(&r);
        }
    }
    let was_canceled = was_canceled || canceled_in(&inner.state(), task_id);
    finish_detect(inner, task_id, was_canceled);
}

/// A canceled Detect task's violations not reached: Detect executions
/// have no CANCELED status, so each of their actions is recorded SKIPPED,
/// and the operator sees which violations were left unmitigated.
fn skip_canceled(inner: &Inner, task_id: &str, defs: &[ActionDefinition], rest: &[Target]) {
    let at = now();
    let mut st = inner.state();
    let Some(r) = st.detect.get_mut(task_id) else {
        return;
    };
    for (violation, thing, _) in rest {
        for d in defs {
            inner.finished(Some(d), ExecutionStatus::Skipped);
            r.task.task_statistics.actions_skipped += 1;
            r.executions.push(DetectExecution {
                task_id: task_id.to_owned(),
                violation_id: violation.clone(),
                action_name: d.name.clone(),
                thing_name: thing.clone(),
                execution_start_date: at,
                execution_end_date: Some(at),
                status: ExecutionStatus::Skipped,
                error_code: None,
                message: Some("the task was canceled before this violation".to_owned()),
            });
        }
    }
    let r = r.clone();
    drop(st);
    inner.save_detect(&r);
}

/// An automatic run: the profile's actions on an alarm, their undo when
/// it clears. Recorded as a Detect mitigation task `auto-<uuid>`.
fn run_auto(inner: &Inner, event: &ViolationEvent) {
    let Some((defs, undo)) = inner.auto_config(&event.security_profile_name) else {
        return;
    };
    if defs.is_empty() {
        return;
    }
    let undoing = match event.violation_event_type {
        ViolationEventType::InAlarm => false,
        ViolationEventType::AlarmCleared | ViolationEventType::AlarmInvalidated if undo => true,
        _ => return,
    };
    let task_id = format!("auto-{}", random_uuid());
    let started = now();
    let mut execs = Vec::new();
    let mut stats = DetectStatistics::default();
    if undoing {
        // Reverse order, so the last thing done is the first undone.
        for d in defs.iter().rev() {
            let at = now();
            let (status, code, message) = match inner.exec.undo(d, &event.thing_name) {
                Ok(true) => {
                    stats.actions_executed += 1;
                    (
                        ExecutionStatus::Successful,
                        None,
                        Some("undone: the alarm cleared".to_owned()),
                    )
                }
                Ok(false) => {
                    stats.actions_skipped += 1;
                    (
                        ExecutionStatus::Skipped,
                        None,
                        Some("this action has no undo".to_owned()),
                    )
                }
                Err(e) => {
                    stats.actions_failed += 1;
                    (ExecutionStatus::Failed, Some(e.code), Some(e.message))
                }
            };
            inner.finished(Some(d), status);
            execs.push(DetectExecution {
                task_id: task_id.clone(),
                violation_id: event.violation_id.clone(),
                action_name: d.name.clone(),
                thing_name: event.thing_name.clone(),
                execution_start_date: at,
                execution_end_date: Some(now()),
                status,
                error_code: code,
                message,
            });
        }
        tracing::info!(
            thing = %event.thing_name,
            profile = %event.security_profile_name,
            violation = %event.violation_id,
            task = %task_id,
            "automatic mitigation undone: the alarm cleared"
        );
    } else {
        stats = run_on_thing(
            inner,
            &task_id,
            &event.violation_id,
            &event.thing_name,
            Some(event),
            &defs,
            &mut execs,
        );
        // The datapoint's period ended at the event time; the actions'
        // registry writes are durable and announced to the connections
        // when `run` returns.
        let confined_ms = now().millis_since(event.violation_event_time);
        tracing::info!(
            thing = %event.thing_name,
            profile = %event.security_profile_name,
            behavior = %event.behavior.name,
            violation = %event.violation_id,
            task = %task_id,
            failed = stats.actions_failed,
            confined_ms,
            "automatic mitigation applied"
        );
    }
    let record = DetectRecord {
        task: DetectMitigationTask {
            task_id: task_id.clone(),
            task_status: if stats.actions_failed > 0 {
                TaskStatus::Failed
            } else {
                TaskStatus::Successful
            },
            task_start_time: started,
            task_end_time: Some(now()),
            target: DetectTarget {
                violation_ids: Some(vec![event.violation_id.clone()]),
                security_profile_name: None,
                behavior_name: None,
            },
            violation_event_occurrence_range: None,
            only_active_violations_included: !undoing,
            suppressed_alerts_included: true,
            actions_definition: defs,
            task_statistics: stats,
            client_request_token: String::new(),
        },
        executions: execs,
    };
    inner.save_detect(&record);
    inner.state().detect.insert(task_id, record);
}
