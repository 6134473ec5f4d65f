//! Custom metrics: CreateCustomMetric, UpdateCustomMetric,
//! DescribeCustomMetric, ListCustomMetrics, DeleteCustomMetric.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_defender::catalog::{custom_metric_arn, Catalog, CustomMetric};
use wardmq_defender::detect::model::CustomMetricType;

use super::error::{empty, ok, ApiResult};
use super::request::{blocking, body, Query};
use super::security_profiles::{catalog, page_params};
use super::server::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/custom-metrics", get(list_custom_metrics))
        .route(
            "/custom-metric/{metricName}",
            get(describe_custom_metric)
                .post(create_custom_metric)
                .patch(update_custom_metric)
                .delete(delete_custom_metric),
        )
}

/// DescribeCustomMetric's shape (UpdateCustomMetric answers the same).
fn metric_json(catalog: &Catalog, m: &CustomMetric) -> Value {
    json!({
        "metricName": m.metric_name,
        "metricArn": custom_metric_arn(catalog.scope(), &m.metric_name),
        "metricType": m.metric_type,
        "displayName": m.display_name,
        "creationDate": m.creation_date,
        "lastModifiedDate": m.last_modified_date,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateIn {
    metric_type: CustomMetricType,
    display_name: Option<String>,
    client_request_token: String,
}

async fn create_custom_metric(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: CreateIn = body(&raw)?;
    let catalog = catalog(&state)?;
    let c = catalog.clone();
    let m = blocking(move || {
        c.create_custom_metric(
            &name,
            input.metric_type,
            input.display_name,
            &input.client_request_token,
        )
    })
    .await?;
    Ok(ok(json!({
        "metricName": m.metric_name,
        "metricArn": custom_metric_arn(catalog.scope(), &m.metric_name),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateIn {
    display_name: String,
}

async fn update_custom_metric(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: UpdateIn = body(&raw)?;
    let catalog = catalog(&state)?;
    let c = catalog.clone();
    let m = blocking(move || c.update_custom_metric(&name, input.display_name)).await?;
    Ok(ok(metric_json(&catalog, &m)))
}

async fn describe_custom_metric(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult {
    let catalog = catalog(&state)?;
    let m = catalog.custom_metric(&name)?;
    Ok(ok(metric_json(&catalog, &m)))
}

async fn delete_custom_metric(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let catalog = catalog(&state)?;
    blocking(move || catalog.delete_custom_metric(&name)).await?;
    Ok(empty())
}

async fn list_custom_metrics(State(state): State<Shared>, q: Query) -> ApiResult {
    let (max_results, next_token) = page_params(&q)?;
    let page = catalog(&state)?.list_custom_metrics(max_results, next_token)?;
    Ok(ok(json!({
        "metricNames": page.items,
        "nextToken": page.next_token,
    })))
}
