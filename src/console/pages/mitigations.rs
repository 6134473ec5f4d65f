//! Mitigation actions, Detect and audit mitigation tasks and their
//! executions, and starting a Detect task for one alarm (the alarms page
//! posts here; the audit page starts audit tasks itself).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;
use wardmq_defender::detect::model::Timestamp;
use wardmq_defender::mitigation::model::{
    ActionType, AuditExecution, AuditMitigationTask, CheckStatistics, DetectTarget,
};
use wardmq_defender::mitigation::{
    AuditTaskFilter, DetectExecutionFilter, DetectTaskInput, Mitigation,
};

use crate::console::auth::random_token;
use crate::console::layout::{self, now_ms};
use crate::console::session::{checked_form, Authed, Params};
use crate::console::{blocking, Ctx};

/// How far back the page lists tasks.
const DAYS: u64 = 7;

/// The names of the actions a Detect task may run (AWS allows only
/// ADD_THINGS_TO_THING_GROUP there), for the alarms page's form.
pub fn detect_actions(m: &Mitigation) -> Vec<String> {
    m.list_actions(Some(ActionType::AddThingsToThingGroup), Some(250), None)
        .map(|p| p.items.into_iter().map(|a| a.action_name).collect())
        .unwrap_or_default()
}

/// The alarms page's "Start mitigation" form for one violation.
pub fn start_form(auth: &Authed, violation_id: &str, actions: &[String]) -> Markup {
    html! {
        @if actions.is_empty() {
            span class="small muted" title="Create an ADD_THINGS_TO_THING_GROUP mitigation action first" { "No Detect action defined" }
        } @else {
            form class="inline" method="post" action="/console/mitigations/start" {
                (layout::csrf(auth))
                input type="hidden" name="violation_id" value=(violation_id);
                select name="action" aria-label="Mitigation action" {
                    @for a in actions { option value=(a) { (a) } }
                }
                button type="submit" class="secondary" { "Start mitigation" }
            }
        }
    }
}

pub async fn page(State(ctx): State<Ctx>, auth: Authed, Params(q): Params) -> Response {
    let Some(m) = ctx.app.mitigation.clone() else {
        return layout::page(
            "Mitigations",
            &auth,
            "/console/mitigations",
            html! { p { "The defender is disabled." } },
        );
    };
    let since = Timestamp::from_millis(now_ms().saturating_sub(DAYS * 86_400_000));
    let now = Timestamp::from_millis(now_ms());
    let listed = blocking(move || {
        let actions = m.list_actions(None, Some(250), None)?.items;
        let mut tasks = m.list_detect_tasks(since, now, Some(250), None)?.items;
        tasks.reverse();
        let executions = m
            .list_detect_executions(
                &DetectExecutionFilter {
                    start_time: Some(since),
                    ..DetectExecutionFilter::default()
                },
                Some(250),
                None,
            )?
            .items;
        let mut audit_tasks = m
            .list_audit_tasks(
                &AuditTaskFilter {
                    audit_task_id: None,
                    finding_id: None,
                    task_status: None,
                    start_time: since,
                    end_time: now,
                },
                Some(250),
                None,
            )?
            .items;
        audit_tasks.reverse();
        let mut audit_executions = Vec::new();
        for t in &audit_tasks {
            audit_executions.extend(m.audit_task_executions(&t.task_id)?);
        }
        Ok::<_, wardmq_defender::mitigation::MitigationError>((
            actions,
            tasks,
            executions,
            (audit_tasks, audit_executions),
        ))
    })
    .await;
    let (actions, tasks, mut executions, audit) = match listed {
        Ok(l) => l,
        Err(e) => return layout::error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    executions.reverse();
    let body = html! {
        (layout::flash(&q))
        h2 { "Mitigation actions" }
        @if actions.is_empty() {
            p class="muted" { "None. Create them with " code { "aws iot create-mitigation-action" } "." }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Type" } th { "Parameters" } } }
                tbody {
                    @for a in &actions {
                        tr {
                            td { (a.action_name) }
                            td { (a.action_type.as_str()) }
                            td { code class="small" { (json(&a.action_params)) } }
                        }
                    }
                }
            }
        }
        h2 { "Detect mitigation tasks (last " (DAYS) " days)" }
        @if tasks.is_empty() {
            p class="muted" { "None." }
        } @else {
            table {
                thead { tr { th { "Task" } th { "Status" } th { "Started" } th { "Executed" } th { "Skipped" } th { "Failed" } } }
                tbody {
                    @for t in &tasks {
                        tr {
                            td { (t.task_id) }
                            td { span class=(format!("pill {}", json(&t.task_status))) { (json(&t.task_status)) } }
                            td { (layout::time_ms(t.task_start_time.as_millis())) }
                            td { (t.task_statistics.actions_executed) }
                            td { (t.task_statistics.actions_skipped) }
                            td { (t.task_statistics.actions_failed) }
                        }
                    }
                }
            }
        }
        h2 { "Detect executions" }
        @if executions.is_empty() {
            p class="muted" { "None." }
        } @else {
            table class="executions" {
                thead { tr { th { "Thing" } th { "Action" } th { "Status" } th { "Task" } th { "Violation" } th { "Message" } } }
                tbody {
                    @for e in &executions {
                        tr {
                            td { (e.thing_name) }
                            td { (e.action_name) }
                            td { span class=(format!("pill {}", json(&e.status))) { (json(&e.status)) } }
                            td { (e.task_id) }
                            td class="small" { (e.violation_id) }
                            td class="small" { (e.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        (audit_tables(&audit.0, &audit.1))
    };
    layout::page("Mitigations", &auth, "/console/mitigations", body)
}

/// Audit mitigation tasks (newest first) and their executions by finding.
fn audit_tables(tasks: &[AuditMitigationTask], executions: &[AuditExecution]) -> Markup {
    html! {
        h2 { "Audit mitigation tasks (last " (DAYS) " days)" }
        @if tasks.is_empty() {
            p class="muted" { "None. Start one from the audit page's findings." }
        } @else {
            table class="audit-tasks" {
                thead { tr { th { "Task" } th { "Status" } th { "Started" } th { "Checks → actions" } th { "Succeeded" } th { "Failed" } th { "Skipped" } th { "Canceled" } } }
                tbody {
                    @for t in tasks {
                        @let s = totals(t);
                        tr {
                            td { (t.task_id) }
                            td { span class=(format!("pill {}", json(&t.task_status))) { (json(&t.task_status)) } }
                            td { (layout::time_ms(t.start_time.as_millis())) }
                            td class="small" {
                                @for (check, names) in &t.audit_check_to_actions_mapping {
                                    (check) " → " (names.join(", ")) br;
                                }
                            }
                            td { (s.succeeded_findings_count) }
                            td { (s.failed_findings_count) }
                            td { (s.skipped_findings_count) }
                            td { (s.canceled_findings_count) }
                        }
                    }
                }
            }
        }
        h2 { "Audit executions" }
        @if executions.is_empty() {
            p class="muted" { "None." }
        } @else {
            table class="audit-executions" {
                thead { tr { th { "Finding" } th { "Action" } th { "Status" } th { "Task" } th { "Message" } } }
                tbody {
                    @for e in executions {
                        tr {
                            td class="small" { code class="id" title=(e.finding_id) { (e.finding_id) } }
                            td { (e.action_name) }
                            td { span class=(format!("pill {}", json(&e.status))) { (json(&e.status)) } }
                            td { (e.task_id) }
                            td class="small" { (e.message.as_deref().or(e.error_code.as_deref()).unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// A task's statistics summed over its checks.
fn totals(t: &AuditMitigationTask) -> CheckStatistics {
    t.task_statistics
        .values()
        .fold(CheckStatistics::default(), |a, s| CheckStatistics {
            total_findings_count: a.total_findings_count + s.total_findings_count,
            failed_findings_count: a.failed_findings_count + s.failed_findings_count,
            succeeded_findings_count: a.succeeded_findings_count + s.succeeded_findings_count,
            skipped_findings_count: a.skipped_findings_count + s.skipped_findings_count,
            canceled_findings_count: a.canceled_findings_count + s.canceled_findings_count,
        })
}

/// Serialized the way the API shows it (enums as AWS spells them).
fn json<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

/// Starts a Detect mitigation task running one action on one violation.
pub async fn start(State(ctx): State<Ctx>, auth: Authed, raw: Bytes) -> Response {
    let f = match checked_form(&auth, &raw) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(m) = ctx.app.mitigation.clone() else {
        return layout::error(StatusCode::SERVICE_UNAVAILABLE, "the defender is disabled");
    };
    let (Some(violation), Some(action)) = (
        f.get("violation_id").filter(|s| !s.is_empty()).cloned(),
        f.get("action").filter(|s| !s.is_empty()).cloned(),
    ) else {
        return layout::error(
            StatusCode::BAD_REQUEST,
            "violation_id and action are required",
        );
    };
    let task_id = format!("console-{}", random_token(16));
    let input = DetectTaskInput {
        target: DetectTarget {
            violation_ids: Some(vec![violation]),
            ..DetectTarget::default()
        },
        actions: vec![action.clone()],
        violation_event_occurrence_range: None,
        include_only_active_violations: None,
        include_suppressed_alerts: Some(true),
        client_request_token: random_token(32),
    };
    let result = blocking(move || m.start_detect_task(&task_id, input))
        .await
        .map(|id| format!("Started {action} as task {id}."));
    layout::after("/console/mitigations", result)
}
