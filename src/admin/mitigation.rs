//! Device Defender mitigation: mitigation actions (Create, Update,
//! Describe, List, DeleteMitigationAction), audit mitigation tasks
//! (Start, Cancel, Describe, ListAuditMitigationActionsTasks,
//! ListAuditMitigationActionsExecutions), Detect mitigation tasks (Start,
//! Cancel, Describe, ListDetectMitigationActionsTasks,
//! ListDetectMitigationActionsExecutions) and the tagging calls
//! (TagResource, UntagResource, ListTagsForResource) for security
//! profiles and mitigation actions, on `wardmq_defender::mitigation`
//! (503 when the defender is disabled).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_defender::mitigation::model::{ActionType, ExecutionStatus, TaskStatus};
use wardmq_defender::mitigation::{
    ActionInput, AuditTaskFilter, AuditTaskInput, DetectExecutionFilter, DetectTaskInput,
    Mitigation, MitigationError, Tag,
};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, Query};
use super::server::{AppState, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/mitigationactions/actions", get(list_actions))
        .route(
            "/mitigationactions/actions/{actionName}",
            post(create_action)
                .patch(update_action)
                .get(describe_action)
                .delete(delete_action),
        )
        .route("/audit/mitigationactions/tasks", get(list_audit_tasks))
        .route(
            "/audit/mitigationactions/tasks/{taskId}",
            post(start_audit_task).get(describe_audit_task),
        )
        .route(
            "/audit/mitigationactions/tasks/{taskId}/cancel",
            put(cancel_audit_task),
        )
        .route(
            "/audit/mitigationactions/executions",
            get(list_audit_executions),
        )
        .route("/detect/mitigationactions/tasks", get(list_detect_tasks))
        .route(
            "/detect/mitigationactions/tasks/{taskId}",
            put(start_detect_task).get(describe_detect_task),
        )
        .route(
            "/detect/mitigationactions/tasks/{taskId}/cancel",
            put(cancel_detect_task),
        )
        .route(
            "/detect/mitigationactions/executions",
            get(list_detect_executions),
        )
        .route("/tags", post(tag_resource).get(list_tags))
        .route("/untag", post(untag_resource))
}

impl From<MitigationError> for ApiError {
    fn from(e: MitigationError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut out = ApiError::new(status, e.aws_code(), e.to_string());
        if let MitigationError::AlreadyExists { id, arn, .. } = &e {
            out.extra.push(("resourceId", id.clone()));
            out.extra.push(("resourceArn", arn.clone()));
        }
        out
    }
}

fn mitigation(state: &AppState) -> Result<Mitigation, ApiError> {
    state.mitigation.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Device Defender mitigation is not enabled on this server ([defender] enabled = false)",
        )
    })
}

/// Drops the members wardmq keeps for itself from a task's JSON.
fn api_task(v: Value) -> Value {
    let mut v = v;
    if let Some(o) = v.as_object_mut() {
        o.remove("clientRequestToken");
        o.remove("auditTaskIds");
    }
    v
}

// ---- actions ----

async fn create_action(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: ActionInput = body(&raw)?;
    let m = mitigation(&state)?;
    let (arn, id) = blocking(move || m.create_action(&name, input)).await?;
    Ok(ok(json!({ "actionArn": arn, "actionId": id })))
}

async fn update_action(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: ActionInput = body(&raw)?;
    let m = mitigation(&state)?;
    let (arn, id) = blocking(move || m.update_action(&name, input)).await?;
    Ok(ok(json!({ "actionArn": arn, "actionId": id })))
}

async fn describe_action(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    Ok(ok(json!(mitigation(&state)?.describe_action(&name)?)))
}

async fn list_actions(State(state): State<Shared>, q: Query) -> ApiResult {
    let action_type = match q.get("actionType") {
        None => None,
        Some(t) => Some(ActionType::parse(t).ok_or_else(|| {
            ApiError::invalid(format!("actionType: {t:?} is not a mitigation action type"))
        })?),
    };
    let (max, token) = q.defender_page()?;
    let p = mitigation(&state)?.list_actions(action_type, max, token.as_deref())?;
    let ids: Vec<Value> = p
        .items
        .iter()
        .map(|a| {
            json!({"actionName": a.action_name, "actionArn": a.action_arn,
                   "creationDate": a.creation_date})
        })
        .collect();
    Ok(ok(
        json!({ "actionIdentifiers": ids, "nextToken": p.next_token }),
    ))
}

async fn delete_action(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let m = mitigation(&state)?;
    blocking(move || m.delete_action(&name)).await?;
    Ok(empty())
}

// ---- audit tasks ----

async fn start_audit_task(
    State(state): State<Shared>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: AuditTaskInput = body(&raw)?;
    let m = mitigation(&state)?;
    let id = blocking(move || m.start_audit_task(&id, input)).await?;
    Ok(ok(json!({ "taskId": id })))
}

async fn cancel_audit_task(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    mitigation(&state)?.cancel_audit_task(&id)?;
    Ok(empty())
}

async fn describe_audit_task(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let t = mitigation(&state)?.describe_audit_task(&id)?;
    let mut v = api_task(json!(t));
    if let Some(o) = v.as_object_mut() {
        o.remove("taskId");
    }
    Ok(ok(v))
}

async fn list_audit_tasks(State(state): State<Shared>, q: Query) -> ApiResult {
    let filter = AuditTaskFilter {
        audit_task_id: q.get("auditTaskId").map(str::to_owned),
        finding_id: q.get("findingId").map(str::to_owned),
        task_status: q.model_enum::<TaskStatus>("taskStatus")?,
        start_time: q.required_time("startTime")?,
        end_time: q.required_time("endTime")?,
    };
    let (max, token) = q.defender_page()?;
    let p = mitigation(&state)?.list_audit_tasks(&filter, max, token.as_deref())?;
    let tasks: Vec<Value> = p
        .items
        .iter()
        .map(|t| json!({"taskId": t.task_id, "startTime": t.start_time, "taskStatus": t.task_status}))
        .collect();
    Ok(ok(json!({ "tasks": tasks, "nextToken": p.next_token })))
}

async fn list_audit_executions(State(state): State<Shared>, q: Query) -> ApiResult {
    let task = q.required("taskId")?.to_owned();
    let finding = q.required("findingId")?.to_owned();
    let status = q.model_enum::<ExecutionStatus>("actionStatus")?;
    let (max, token) = q.defender_page()?;
    let p = mitigation(&state)?.list_audit_executions(
        &task,
        &finding,
        status,
        max,
        token.as_deref(),
    )?;
    Ok(ok(
        json!({ "actionsExecutions": p.items, "nextToken": p.next_token }),
    ))
}

// ---- Detect tasks ----

async fn start_detect_task(
    State(state): State<Shared>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: DetectTaskInput = body(&raw)?;
    let m = mitigation(&state)?;
    let id = blocking(move || m.start_detect_task(&id, input)).await?;
    Ok(ok(json!({ "taskId": id })))
}

async fn cancel_detect_task(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    mitigation(&state)?.cancel_detect_task(&id)?;
    Ok(empty())
}

async fn describe_detect_task(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let t = mitigation(&state)?.describe_detect_task(&id)?;
    Ok(ok(json!({ "taskSummary": api_task(json!(t)) })))
}

async fn list_detect_tasks(State(state): State<Shared>, q: Query) -> ApiResult {
    let start = q.required_time("startTime")?;
    let end = q.required_time("endTime")?;
    let (max, token) = q.defender_page()?;
    let p = mitigation(&state)?.list_detect_tasks(start, end, max, token.as_deref())?;
    let tasks: Vec<Value> = p.items.iter().map(|t| api_task(json!(t))).collect();
    Ok(ok(json!({ "tasks": tasks, "nextToken": p.next_token })))
}

async fn list_detect_executions(State(state): State<Shared>, q: Query) -> ApiResult {
    let filter = DetectExecutionFilter {
        task_id: q.get("taskId").map(str::to_owned),
        violation_id: q.get("violationId").map(str::to_owned),
        thing_name: q.get("thingName").map(str::to_owned),
        start_time: q.time("startTime")?,
        end_time: q.time("endTime")?,
    };
    let (max, token) = q.defender_page()?;
    let p = mitigation(&state)?.list_detect_executions(&filter, max, token.as_deref())?;
    Ok(ok(
        json!({ "actionsExecutions": p.items, "nextToken": p.next_token }),
    ))
}

// ---- tags ----

/// Whether a security profile exists (the catalog owns them).
fn profile_exists(state: &AppState) -> impl Fn(&str) -> bool + '_ {
    move |name: &str| {
        state
            .catalog
            .as_ref()
            .is_some_and(|c| c.security_profile(name).is_ok())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TagIn {
    resource_arn: String,
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UntagIn {
    resource_arn: String,
    tag_keys: Vec<String>,
}

async fn tag_resource(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: TagIn = body(&raw)?;
    let m = mitigation(&state)?;
    m.tag_resource(&input.resource_arn, input.tags, &profile_exists(&state))?;
    Ok(empty())
}

async fn untag_resource(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: UntagIn = body(&raw)?;
    let m = mitigation(&state)?;
    m.untag_resource(
        &input.resource_arn,
        &input.tag_keys,
        &profile_exists(&state),
    )?;
    Ok(empty())
}

async fn list_tags(State(state): State<Shared>, q: Query) -> ApiResult {
    let arn = q.required("resourceArn")?.to_owned();
    let token = q.get("nextToken").filter(|t| !t.is_empty());
    let m = mitigation(&state)?;
    let p = m.list_tags(&arn, token, &profile_exists(&state))?;
    Ok(ok(json!({ "tags": p.items, "nextToken": p.next_token })))
}
