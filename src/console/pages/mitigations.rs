//! Mitigation actions, Detect mitigation tasks and their executions, and
//! starting a task for one alarm (the alarms page posts here).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;
use wardmq_defender::detect::model::Timestamp;
use wardmq_defender::mitigation::model::{ActionType, DetectTarget};
use wardmq_defender::mitigation::{DetectExecutionFilter, DetectTaskInput, Mitigation};

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
        Ok::<_, wardmq_defender::mitigation::MitigationError>((actions, tasks, executions))
    })
    .await;
    let (actions, tasks, mut executions) = match listed {
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
                            td { (json(&t.task_status)) }
                            td { (layout::time_ms(t.task_start_time.as_millis())) }
                            td { (t.task_statistics.actions_executed) }
                            td { (t.task_statistics.actions_skipped) }
                            td { (t.task_statistics.actions_failed) }
                        }
                    }
                }
            }
        }
        h2 { "Executions" }
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
                            td { (json(&e.status)) }
                            td { (e.task_id) }
                            td class="small" { (e.violation_id) }
                            td class="small" { (e.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    layout::page("Mitigations", &auth, "/console/mitigations", body)
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
