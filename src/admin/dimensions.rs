//! Dimensions: CreateDimension, UpdateDimension, DescribeDimension,
//! ListDimensions, DeleteDimension.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_defender::catalog::{dimension_arn, Catalog, Dimension, DimensionType};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, Query};
use super::security_profiles::{catalog, page_params};
use super::server::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/dimensions", get(list_dimensions))
        .route(
            "/dimensions/{name}",
            get(describe_dimension)
                .post(create_dimension)
                .patch(update_dimension)
                .delete(delete_dimension),
        )
}

/// DescribeDimension's shape (UpdateDimension answers the same).
fn dimension_json(catalog: &Catalog, d: &Dimension) -> Value {
    json!({
        "name": d.name,
        "arn": dimension_arn(catalog.scope(), &d.name),
        "type": d.dimension_type,
        "stringValues": d.string_values,
        "creationDate": d.creation_date,
        "lastModifiedDate": d.last_modified_date,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateIn {
    #[serde(rename = "type")]
    dimension_type: DimensionType,
    string_values: Vec<String>,
    client_request_token: String,
}

async fn create_dimension(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: CreateIn = body(&raw)?;
    let catalog = catalog(&state)?;
    let c = catalog.clone();
    let d = blocking(move || {
        c.create_dimension(
            &name,
            input.dimension_type,
            input.string_values,
            &input.client_request_token,
        )
    })
    .await?;
    Ok(ok(json!({
        "name": d.name,
        "arn": dimension_arn(catalog.scope(), &d.name),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateIn {
    string_values: Vec<String>,
    /// Not a member of UpdateDimension; read only to refuse a change
    /// instead of ignoring it.
    #[serde(rename = "type")]
    dimension_type: Option<String>,
}

async fn update_dimension(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: UpdateIn = body(&raw)?;
    let catalog = catalog(&state)?;
    if let Some(wanted) = &input.dimension_type {
        let current = catalog.dimension(&name)?.dimension_type;
        if wanted != current.as_str() {
            return Err(ApiError::invalid(format!(
                "the type of dimension {name} is {} and cannot be changed; delete the dimension and create it again",
                current.as_str()
            )));
        }
    }
    let c = catalog.clone();
    let d = blocking(move || c.update_dimension(&name, input.string_values)).await?;
    Ok(ok(dimension_json(&catalog, &d)))
}

async fn describe_dimension(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let catalog = catalog(&state)?;
    let d = catalog.dimension(&name)?;
    Ok(ok(dimension_json(&catalog, &d)))
}

async fn delete_dimension(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let catalog = catalog(&state)?;
    blocking(move || catalog.delete_dimension(&name)).await?;
    Ok(empty())
}

async fn list_dimensions(State(state): State<Shared>, q: Query) -> ApiResult {
    let (max_results, next_token) = page_params(&q)?;
    let page = catalog(&state)?.list_dimensions(max_results, next_token)?;
    Ok(ok(json!({
        "dimensionNames": page.items,
        "nextToken": page.next_token,
    })))
}
