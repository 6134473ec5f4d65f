//! Device Defender Audit: the account audit configuration
//! (Describe/Update/DeleteAccountAuditConfiguration), audit tasks
//! (StartOnDemandAuditTask, CancelAuditTask, DescribeAuditTask,
//! ListAuditTasks), findings (ListAuditFindings, DescribeAuditFinding,
//! ListRelatedResourcesForAuditFinding), scheduled audits (Create, Update,
//! Describe, List, DeleteScheduledAudit) and suppressions (Create,
//! Describe, Update, Delete, ListAuditSuppressions), on
//! `wardmq_defender::audit` (503 `ServiceUnavailableException` when the
//! defender is disabled).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_defender::audit::{
    Audit, AuditError, AuditTask, ConfigurationUpdate, FindingsQuery, ResourceIdentifier,
    ScheduledAudit, ScheduledAuditInput, SuppressionInput, SuppressionsQuery, TaskFilter,
};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, Query};
use super::server::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/audit/configuration",
            get(describe_configuration)
                .patch(update_configuration)
                .delete(delete_configuration),
        )
        .route("/audit/tasks", post(start_task).get(list_tasks))
        .route("/audit/tasks/{taskId}", get(describe_task))
        .route("/audit/tasks/{taskId}/cancel", put(cancel_task))
        .route("/audit/findings", post(list_findings))
        .route("/audit/findings/{findingId}", get(describe_finding))
        .route("/audit/relatedResources", get(list_related_resources))
        .route("/audit/scheduledaudits", get(list_scheduled))
        .route(
            "/audit/scheduledaudits/{scheduledAuditName}",
            post(create_scheduled)
                .patch(update_scheduled)
                .get(describe_scheduled)
                .delete(delete_scheduled),
        )
        .route("/audit/suppressions/create", post(create_suppression))
        .route("/audit/suppressions/update", patch(update_suppression))
        .route("/audit/suppressions/describe", post(describe_suppression))
        .route("/audit/suppressions/delete", post(delete_suppression))
        .route("/audit/suppressions/list", post(list_suppressions))
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut out = ApiError::new(status, e.aws_code(), e.to_string());
        if let AuditError::AlreadyExists { id, arn, .. } = &e {
            out.extra.push(("resourceId", id.clone()));
            if let Some(arn) = arn {
                out.extra.push(("resourceArn", arn.clone()));
            }
        }
        out
    }
}

fn audit(state: &Shared) -> Result<Audit, ApiError> {
    state.audit.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Device Defender Audit is not enabled on this server ([defender] enabled = false)",
        )
    })
}

// ---- configuration ----

async fn describe_configuration(State(state): State<Shared>) -> ApiResult {
    Ok(ok(json!(audit(&state)?.describe_configuration())))
}

async fn update_configuration(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let update: ConfigurationUpdate = body(&raw)?;
    let a = audit(&state)?;
    blocking(move || a.update_configuration(update)).await?;
    Ok(empty())
}

async fn delete_configuration(State(state): State<Shared>, q: Query) -> ApiResult {
    let delete_scheduled = q.flag("deleteScheduledAudits")?;
    let a = audit(&state)?;
    blocking(move || a.delete_configuration(delete_scheduled)).await?;
    Ok(empty())
}

// ---- tasks ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartIn {
    target_check_names: Vec<String>,
}

async fn start_task(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: StartIn = body(&raw)?;
    let a = audit(&state)?;
    let id = blocking(move || a.start_on_demand_audit_task(&input.target_check_names)).await?;
    Ok(ok(json!({ "taskId": id })))
}

fn task_json(t: &AuditTask) -> Value {
    json!({
        "taskStatus": t.task_status,
        "taskType": t.task_type,
        "taskStartTime": t.task_start_time,
        "taskStatistics": t.statistics(),
        "scheduledAuditName": t.scheduled_audit_name,
        "auditDetails": t.audit_details,
    })
}

async fn describe_task(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    Ok(ok(task_json(&audit(&state)?.describe_audit_task(&id)?)))
}

async fn cancel_task(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let a = audit(&state)?;
    blocking(move || a.cancel_audit_task(&id)).await?;
    Ok(empty())
}

async fn list_tasks(State(state): State<Shared>, q: Query) -> ApiResult {
    let filter = TaskFilter {
        start_time: q.required_time("startTime")?,
        end_time: q.required_time("endTime")?,
        task_type: q.model_enum("taskType")?,
        task_status: q.model_enum("taskStatus")?,
    };
    let (max, token) = q.defender_page()?;
    let page = audit(&state)?.list_audit_tasks(&filter, max, token.as_deref())?;
    let tasks: Vec<Value> = page
        .items
        .iter()
        .map(|t| json!({"taskId": t.task_id, "taskStatus": t.task_status, "taskType": t.task_type}))
        .collect();
    Ok(ok(json!({ "tasks": tasks, "nextToken": page.next_token })))
}

// ---- findings ----

async fn list_findings(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let query: FindingsQuery = body(&raw)?;
    let a = audit(&state)?;
    let page = blocking(move || a.list_audit_findings(&query)).await?;
    Ok(ok(
        json!({ "findings": page.items, "nextToken": page.next_token }),
    ))
}

async fn describe_finding(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let a = audit(&state)?;
    let finding = blocking(move || a.describe_audit_finding(&id)).await?;
    Ok(ok(json!({ "finding": finding })))
}

async fn list_related_resources(State(state): State<Shared>, q: Query) -> ApiResult {
    let id = q.required("findingId")?.to_owned();
    let (max, token) = q.defender_page()?;
    let a = audit(&state)?;
    let page = blocking(move || a.list_related_resources(&id, max, token.as_deref())).await?;
    Ok(ok(
        json!({ "relatedResources": page.items, "nextToken": page.next_token }),
    ))
}

// ---- scheduled audits ----

async fn create_scheduled(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: ScheduledAuditInput = body(&raw)?;
    let a = audit(&state)?;
    let arn = blocking(move || a.create_scheduled_audit(&name, input)).await?;
    Ok(ok(json!({ "scheduledAuditArn": arn })))
}

async fn update_scheduled(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: ScheduledAuditInput = body(&raw)?;
    let a = audit(&state)?;
    let arn = blocking(move || a.update_scheduled_audit(&name, input)).await?;
    Ok(ok(json!({ "scheduledAuditArn": arn })))
}

fn scheduled_json(s: &ScheduledAudit, with_checks: bool) -> Value {
    let mut v = json!({
        "scheduledAuditName": s.scheduled_audit_name,
        "scheduledAuditArn": s.scheduled_audit_arn,
        "frequency": s.frequency,
        "dayOfMonth": s.day_of_month,
        "dayOfWeek": s.day_of_week,
    });
    if with_checks {
        v["targetCheckNames"] = json!(s.target_check_names);
    }
    v
}

async fn describe_scheduled(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let s = audit(&state)?.describe_scheduled_audit(&name)?;
    Ok(ok(scheduled_json(&s, true)))
}

async fn list_scheduled(State(state): State<Shared>, q: Query) -> ApiResult {
    let (max, token) = q.defender_page()?;
    let page = audit(&state)?.list_scheduled_audits(max, token.as_deref())?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|s| scheduled_json(s, false))
        .collect();
    Ok(ok(
        json!({ "scheduledAudits": items, "nextToken": page.next_token }),
    ))
}

async fn delete_scheduled(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let a = audit(&state)?;
    blocking(move || a.delete_scheduled_audit(&name)).await?;
    Ok(empty())
}

// ---- suppressions ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuppressionKeyIn {
    check_name: String,
    resource_identifier: ResourceIdentifier,
}

async fn create_suppression(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: SuppressionInput = body(&raw)?;
    let a = audit(&state)?;
    blocking(move || a.create_suppression(input)).await?;
    Ok(empty())
}

async fn update_suppression(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: SuppressionInput = body(&raw)?;
    if input.client_request_token.is_some() {
        return Err(ApiError::invalid(
            "UpdateAuditSuppression has no clientRequestToken member",
        ));
    }
    let a = audit(&state)?;
    blocking(move || a.update_suppression(input)).await?;
    Ok(empty())
}

async fn describe_suppression(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: SuppressionKeyIn = body(&raw)?;
    let s = audit(&state)?.describe_suppression(&input.check_name, &input.resource_identifier)?;
    Ok(ok(json!(s)))
}

async fn delete_suppression(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: SuppressionKeyIn = body(&raw)?;
    let a = audit(&state)?;
    blocking(move || a.delete_suppression(&input.check_name, &input.resource_identifier)).await?;
    Ok(empty())
}

async fn list_suppressions(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let query: SuppressionsQuery = body(&raw)?;
    let page = audit(&state)?.list_suppressions(&query)?;
    Ok(ok(
        json!({ "suppressions": page.items, "nextToken": page.next_token }),
    ))
}
