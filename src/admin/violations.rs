//! Detect results: ListActiveViolations, ListViolationEvents,
//! PutVerificationStateOnViolation and ListMetricValues.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use wardmq_defender::detect::model::{DimensionValueOperator, VerificationState};
use wardmq_defender::engine::Defender;
use wardmq_defender::store::{StoreError, ViolationFilter};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, Query};
use super::server::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/active-violations", get(list_active_violations))
        .route("/violation-events", get(list_violation_events))
        .route(
            "/violations/verification-state/{violationId}",
            post(put_verification_state),
        )
        .route("/metric-values", get(list_metric_values))
}

pub fn defender(state: &Shared) -> Result<Defender, ApiError> {
    state.defender.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "the defender is disabled ([defender] enabled = false)",
        )
    })
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidToken
            | StoreError::InvalidRequest(_)
            | StoreError::Verification(_) => ApiError::invalid(e.to_string()),
            StoreError::ViolationNotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Storage(_) => ApiError::internal(e.to_string()),
        }
    }
}

fn filter(q: &Query) -> Result<ViolationFilter, ApiError> {
    Ok(ViolationFilter {
        thing_name: q.get("thingName").map(str::to_owned),
        security_profile_name: q.get("securityProfileName").map(str::to_owned),
        behavior_criteria_type: q.model_enum("behaviorCriteriaType")?,
        list_suppressed_alerts: q.bool("listSuppressedAlerts")?,
        verification_state: q.model_enum("verificationState")?,
    })
}

async fn list_active_violations(State(state): State<Shared>, q: Query) -> ApiResult {
    let d = defender(&state)?;
    let filter = filter(&q)?;
    let (max, token) = q.defender_page()?;
    let page = blocking(move || d.list_active_violations(&filter, max, token.as_deref())).await?;
    Ok(ok(json!({
        "activeViolations": page.items,
        "nextToken": page.next_token,
    })))
}

async fn list_violation_events(State(state): State<Shared>, q: Query) -> ApiResult {
    let d = defender(&state)?;
    let (start, end) = (q.required_time("startTime")?, q.required_time("endTime")?);
    let filter = filter(&q)?;
    let (max, token) = q.defender_page()?;
    let page =
        blocking(move || d.list_violation_events(start, end, &filter, max, token.as_deref()))
            .await?;
    Ok(ok(json!({
        "violationEvents": page.items,
        "nextToken": page.next_token,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationIn {
    verification_state: VerificationState,
    verification_state_description: Option<String>,
}

async fn put_verification_state(
    State(state): State<Shared>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let d = defender(&state)?;
    let input: VerificationIn = body(&raw)?;
    blocking(move || {
        d.put_verification_state(
            &id,
            input.verification_state,
            input.verification_state_description,
        )
    })
    .await?;
    Ok(empty())
}

async fn list_metric_values(State(state): State<Shared>, q: Query) -> ApiResult {
    let d = defender(&state)?;
    let thing = q.required("thingName")?.to_owned();
    let metric = q.required("metricName")?.to_owned();
    let (start, end) = (q.required_time("startTime")?, q.required_time("endTime")?);
    let operator: Option<DimensionValueOperator> = q.model_enum("dimensionValueOperator")?;
    let dimension = q.get("dimensionName").map(str::to_owned);
    if dimension.is_none() && operator.is_some() {
        return Err(ApiError::invalid(
            "dimensionValueOperator needs a dimensionName",
        ));
    }
    let (max, token) = q.defender_page()?;
    let page = blocking(move || {
        let dim = dimension
            .as_deref()
            .map(|n| (n, operator.unwrap_or(DimensionValueOperator::In)));
        d.list_metric_values(&thing, &metric, dim, start, end, max, token.as_deref())
    })
    .await?;
    Ok(ok(json!({
        "metricDatumList": page.items,
        "nextToken": page.next_token,
    })))
}
