//! Audit: run an on-demand audit of every enabled check, read a task's
//! findings by severity, suppress a finding's resource, and start an audit
//! mitigation actions task for the findings selected.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde_json::Value;
use std::collections::BTreeMap;

use wardmq_defender::audit::checks::CheckName;
use wardmq_defender::audit::{Audit, ResourceIdentifier, SuppressionInput};
use wardmq_defender::detect::model::Timestamp;
use wardmq_defender::mitigation::model::{AuditTarget, MitigationAction};
use wardmq_defender::mitigation::{validate, AuditTaskInput};

use super::data;
use crate::console::auth::random_token;
use crate::console::layout::{self, csrf, now_ms, text, time_json};
use crate::console::session::{checked_form, form_values, urlencode, Authed, Params};
use crate::console::{blocking, Ctx};

const SEVERITIES: [&str; 4] = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];

fn audit(ctx: &Ctx) -> Result<Audit, Response> {
    ctx.app.audit.clone().ok_or_else(|| {
        layout::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit is disabled ([defender] enabled = false)",
        )
    })
}

fn enabled_checks(a: &Audit) -> Vec<String> {
    let config = serde_json::to_value(a.describe_configuration()).unwrap_or_default();
    config["auditCheckConfigurations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, c)| c["enabled"] == true)
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A resource identifier as `name value` pairs of its leaves, e.g.
/// `policyName allow-all, policyVersionId 1`.
fn resource_label(v: &Value) -> String {
    fn leaves(v: &Value, key: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| leaves(x, k, out)),
            other => out.push(format!("{key} {}", text(other))),
        }
    }
    let mut out = Vec::new();
    leaves(v, "", &mut out);
    out.join(", ")
}

pub async fn page(State(ctx): State<Ctx>, auth: Authed, Params(q): Params) -> Response {
    let a = match audit(&ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let checks = enabled_checks(&a);
    let tasks = data::tasks(&a, 30).await;
    let selected = q.get("task").cloned().or_else(|| {
        tasks
            .as_ref()
            .ok()
            .and_then(|t| t.first())
            .and_then(|t| t["taskId"].as_str().map(str::to_owned))
    });
    let findings = match &selected {
        Some(id) => data::findings(&a, id).await,
        None => Ok(Vec::new()),
    };
    let actions = match &findings {
        Ok(f) if !f.is_empty() => audit_actions(&ctx, f).await,
        _ => Vec::new(),
    };
    let body = html! {
        (layout::flash(&q))
        section class="toolbar" {
            form method="post" action="/console/audit/run" class="inline" {
                (csrf(&auth))
                button type="submit" disabled[checks.is_empty()] { "Run audit now" }
            }
            span class="muted" {
                @if checks.is_empty() {
                    "No check is enabled; enable checks with " code { "aws iot update-account-audit-configuration" } "."
                } @else {
                    "Enabled checks (" (checks.len()) "): " (checks.join(", "))
                }
            }
        }
        div class="grid2" {
            section {
                h2 { "Findings" @if let Some(id) = &selected { " of task " code { (id) } } }
                @match &findings {
                    Err(e) => p class="flash error" { (e) },
                    Ok(f) if f.is_empty() => p class="muted" { "No findings." },
                    Ok(f) => {
                        @for sev in SEVERITIES {
                            @let these: Vec<&Value> = f.iter().filter(|x| x["severity"] == sev).collect();
                            @if !these.is_empty() {
                                h3 { span class=(format!("sev {sev}")) { (sev) } " (" (these.len()) ")" }
                                table { tbody { @for x in these { tr {
                                    @if !actions.is_empty() {
                                        td class="pick" { input type="checkbox" name="finding" form="mitigate" value=(text(&x["findingId"])) aria-label="Select this finding to mitigate"; }
                                    }
                                    td { (text(&x["checkName"])) br;
                                         span class="small muted" { (text(&x["reasonForNonCompliance"])) } }
                                    td class="small" { (resource_label(&x["nonCompliantResource"]["resourceIdentifier"])) }
                                    td {
                                        @if x["isSuppressed"] == true { span class="pill" { "suppressed" } }
                                        @else {
                                            form class="inline" method="post" action="/console/audit/suppress" {
                                                (csrf(&auth))
                                                input type="hidden" name="check" value=(text(&x["checkName"]));
                                                input type="hidden" name="resource" value=(x["nonCompliantResource"]["resourceIdentifier"].to_string());
                                                input type="hidden" name="task" value=(selected.as_deref().unwrap_or(""));
                                                select name="days" aria-label="Suppress for" {
                                                    option value="7" { "7 days" } option value="30" { "30 days" } option value="0" { "indefinitely" }
                                                }
                                                button type="submit" { "Suppress" }
                                            }
                                        }
                                    }
                                } } } }
                            }
                        }
                        (mitigate_form(&auth, selected.as_deref(), &actions))
                    }
                }
            }
            section {
                h2 { "Tasks (30 days)" }
                @match &tasks {
                    Err(e) => p class="flash error" { (e) },
                    Ok(t) if t.is_empty() => p class="muted" { "No audit has run." },
                    Ok(t) => table { thead { tr { th { "Started" } th { "Type" } th { "Status" } } } tbody {
                        @for x in t { tr {
                            td { a href=(format!("/console/audit?task={}", urlencode(x["taskId"].as_str().unwrap_or("")))) { (time_json(&x["taskStartTime"])) } }
                            td class="small" { (text(&x["taskType"])) }
                            td { span class=(format!("pill {}", text(&x["taskStatus"]))) { (text(&x["taskStatus"])) } }
                        } }
                    } },
                }
            }
        }
    };
    layout::page("Audit", &auth, "/console/audit", body)
}

pub async fn run(State(ctx): State<Ctx>, auth: Authed, raw: Bytes) -> Response {
    if let Err(r) = checked_form(&auth, &raw) {
        return r;
    }
    let a = match audit(&ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let checks = enabled_checks(&a);
    let result = blocking(move || a.start_on_demand_audit_task(&checks)).await;
    match result {
        Ok(id) => layout::after(
            &format!("/console/audit?task={}", urlencode(&id)),
            Ok(format!("Audit {id} started.")),
        ),
        Err(e) => layout::after("/console/audit", Err(e)),
    }
}

pub async fn suppress(State(ctx): State<Ctx>, auth: Authed, raw: Bytes) -> Response {
    let f = match checked_form(&auth, &raw) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let a = match audit(&ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let resource: ResourceIdentifier = match f.get("resource").map(|r| serde_json::from_str(r)) {
        Some(Ok(r)) => r,
        _ => {
            return layout::error(
                StatusCode::BAD_REQUEST,
                "resource is not a resource identifier",
            )
        }
    };
    let days: u64 = match f.get("days").map(|d| d.parse::<u64>()) {
        Some(Ok(d)) if d <= 3650 => d,
        _ => {
            return layout::error(
                StatusCode::BAD_REQUEST,
                "days must be a whole number from 0 to 3650",
            )
        }
    };
    let input = SuppressionInput {
        check_name: f.get("check").cloned().unwrap_or_default(),
        resource_identifier: resource,
        expiration_date: (days > 0).then(|| Timestamp::from_millis(now_ms() + days * 86_400_000)),
        suppress_indefinitely: (days == 0).then_some(true),
        description: Some(format!(
            "suppressed from the console by {}",
            auth.session.user
        )),
        client_request_token: Some(crate::console::auth::random_token(32)),
    };
    let back = match f.get("task").filter(|t| !t.is_empty()) {
        Some(t) => format!("/console/audit?task={}", urlencode(t)),
        None => "/console/audit".to_owned(),
    };
    let result = blocking(move || a.create_suppression(input))
        .await
        .map(|()| "Suppressed.".to_owned());
    layout::after(&back, result)
}

/// The actions that may mitigate some finding on the page (by their
/// check, as StartAuditMitigationActionsTask allows them).
async fn audit_actions(ctx: &Ctx, findings: &[Value]) -> Vec<MitigationAction> {
    let Some(m) = ctx.app.mitigation.clone() else {
        return Vec::new();
    };
    let checks: Vec<CheckName> = findings
        .iter()
        .filter_map(|f| f["checkName"].as_str().and_then(CheckName::parse))
        .collect();
    blocking(move || m.list_actions(None, Some(250), None))
        .await
        .map(|p| {
            p.items
                .into_iter()
                .filter(|a| checks.iter().any(|c| validate::applies(*c, a.action_type)))
                .collect()
        })
        .unwrap_or_default()
}

/// One form for the findings ticked above (their checkboxes belong to it
/// through `form="mitigate"`, so it needs no script and no nesting).
fn mitigate_form(auth: &Authed, task: Option<&str>, actions: &[MitigationAction]) -> maud::Markup {
    html! {
        @if actions.is_empty() {
            p class="small muted" {
                "No mitigation action applies to these findings; create one with "
                code { "aws iot create-mitigation-action" } "."
            }
        } @else {
            form id="mitigate" class="inline mitigate" method="post" action="/console/audit/mitigate" {
                (csrf(auth))
                input type="hidden" name="task" value=(task.unwrap_or(""));
                span class="small muted" { "Selected findings:" }
                select name="action" aria-label="Mitigation action" {
                    @for a in actions {
                        option value=(a.action_name) { (a.action_name) " (" (a.action_type.as_str()) ")" }
                    }
                }
                button type="submit" { "Mitigate" }
            }
        }
    }
}

/// Starts an audit mitigation actions task (`console-<random>`) running
/// one action on the findings selected: the same call as
/// StartAuditMitigationActionsTask, so it refuses what the API would.
pub async fn mitigate(State(ctx): State<Ctx>, auth: Authed, raw: Bytes) -> Response {
    let f = match checked_form(&auth, &raw) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let a = match audit(&ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(m) = ctx.app.mitigation.clone() else {
        return layout::error(StatusCode::SERVICE_UNAVAILABLE, "the defender is disabled");
    };
    let back = match f.get("task").filter(|t| !t.is_empty()) {
        Some(t) => format!("/console/audit?task={}", urlencode(t)),
        None => "/console/audit".to_owned(),
    };
    let findings = form_values(&raw, "finding");
    let Some(action) = f.get("action").filter(|s| !s.is_empty()).cloned() else {
        return layout::after(&back, Err("Choose a mitigation action.".to_owned()));
    };
    if findings.is_empty() {
        return layout::after(
            &back,
            Err("Select at least one finding to mitigate.".to_owned()),
        );
    }
    let task_id = format!("console-{}", random_token(16));
    let n = findings.len();
    let act = action.clone();
    let result = blocking(move || {
        // Every selected finding's check maps to the chosen action.
        let mut mapping = BTreeMap::new();
        for id in &findings {
            let check = a.finding(id).map_err(|e| e.to_string())?.check_name;
            mapping.insert(check.as_str().to_owned(), vec![act.clone()]);
        }
        let input = AuditTaskInput {
            target: AuditTarget {
                finding_ids: Some(findings),
                ..AuditTarget::default()
            },
            audit_check_to_actions_mapping: mapping,
            client_request_token: random_token(32),
        };
        m.start_audit_task(&task_id, input)
            .map_err(|e| e.to_string())
    })
    .await;
    match result {
        Ok(id) => layout::after(
            "/console/mitigations",
            Ok(format!(
                "Started {action} on {n} finding(s) as audit mitigation task {id}."
            )),
        ),
        Err(e) => layout::after(&back, Err(e)),
    }
}
