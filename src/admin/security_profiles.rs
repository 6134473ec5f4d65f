//! Security profiles: CreateSecurityProfile, UpdateSecurityProfile,
//! DescribeSecurityProfile, ListSecurityProfiles, DeleteSecurityProfile,
//! ValidateSecurityProfileBehaviors, AttachSecurityProfile,
//! DetachSecurityProfile, ListTargetsForSecurityProfile,
//! ListSecurityProfilesForTarget. Also what the Detect configuration
//! routes share: the catalog handle, its errors, its pagination.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_defender::catalog::{
    security_profile_arn, Catalog, CatalogError, DeleteFlags, ProfileFilter, ProfileMembers,
    ProfileUpdate,
};
use wardmq_defender::detect::model::Behavior;

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, Query};
use super::server::{AppState, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/security-profiles", get(list_security_profiles))
        .route(
            "/security-profiles/{securityProfileName}",
            get(describe_security_profile)
                .post(create_security_profile)
                .patch(update_security_profile)
                .delete(delete_security_profile),
        )
        .route(
            "/security-profiles/{securityProfileName}/targets",
            get(list_targets_for_security_profile)
                .put(attach_security_profile)
                .delete(detach_security_profile),
        )
        .route(
            "/security-profiles-for-target",
            get(list_security_profiles_for_target),
        )
        .route(
            "/security-profile-behaviors/validate",
            post(validate_security_profile_behaviors),
        )
}

/// CreateSecurityProfile's `tags`.
#[derive(Deserialize)]
struct TagsIn {
    #[serde(default)]
    tags: Option<Vec<wardmq_defender::mitigation::Tag>>,
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut out = ApiError::new(status, e.aws_code(), e.to_string());
        if let CatalogError::AlreadyExists { name, arn, .. } = &e {
            out.extra.push(("resourceId", name.clone()));
            out.extra.push(("resourceArn", arn.clone()));
        }
        out
    }
}

/// The Detect configuration, or 503 when this server runs without one.
pub(super) fn catalog(state: &AppState) -> Result<Catalog, ApiError> {
    state.catalog.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Device Defender Detect is not enabled on this server",
        )
    })
}

/// `maxResults` and `nextToken` as the defender's lists take them.
pub(super) fn page_params(q: &Query) -> Result<(Option<u32>, Option<&str>), ApiError> {
    Ok((
        q.int("maxResults")?,
        q.get("nextToken").filter(|t| !t.is_empty()),
    ))
}

fn identifier(catalog: &Catalog, name: &str) -> Value {
    json!({ "name": name, "arn": security_profile_arn(catalog.scope(), name) })
}

async fn create_security_profile(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let members: ProfileMembers = body(&raw)?;
    // `tags` (not a ProfileMembers member) are kept by the mitigation,
    // which reads the automatic-mitigation tags.
    let tags: TagsIn = body(&raw)?;
    let catalog = catalog(&state)?;
    let p = blocking(move || catalog.create_security_profile(&name, members)).await?;
    if let (Some(tags), Some(m), Some(arn)) = (
        tags.tags.filter(|t| !t.is_empty()),
        &state.mitigation,
        &p.security_profile_arn,
    ) {
        let exists = |_: &str| true;
        m.tag_resource(arn, tags, &exists)?;
    }
    Ok(ok(json!({
        "securityProfileName": p.security_profile_name,
        "securityProfileArn": p.security_profile_arn,
    })))
}

async fn describe_security_profile(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult {
    Ok(ok(json!(catalog(&state)?.security_profile(&name)?)))
}

async fn update_security_profile(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
    raw: Bytes,
) -> ApiResult {
    // Both views of one body: the members to set and the flags that clear.
    let update = ProfileUpdate {
        members: body(&raw)?,
        delete: body::<DeleteFlags>(&raw)?,
        expected_version: q.int("expectedVersion")?,
    };
    let catalog = catalog(&state)?;
    let p = blocking(move || catalog.update_security_profile(&name, update)).await?;
    Ok(ok(json!(p)))
}

async fn delete_security_profile(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult {
    let expected = q.int("expectedVersion")?;
    let catalog = catalog(&state)?;
    let arn = security_profile_arn(catalog.scope(), &name);
    blocking(move || catalog.delete_security_profile(&name, expected)).await?;
    if let Some(m) = &state.mitigation {
        m.forget_resource(&arn)?;
    }
    Ok(empty())
}

async fn list_security_profiles(State(state): State<Shared>, q: Query) -> ApiResult {
    let catalog = catalog(&state)?;
    let (max_results, next_token) = page_params(&q)?;
    let filter = ProfileFilter {
        dimension_name: q.get("dimensionName"),
        metric_name: q.get("metricName"),
    };
    let page = catalog.list_security_profiles(filter, max_results, next_token)?;
    let ids: Vec<Value> = page
        .items
        .iter()
        .map(|p| identifier(&catalog, &p.security_profile_name))
        .collect();
    Ok(ok(json!({
        "securityProfileIdentifiers": ids,
        "nextToken": page.next_token,
    })))
}

#[derive(Debug, Deserialize)]
struct ValidateIn {
    behaviors: Vec<Behavior>,
}

async fn validate_security_profile_behaviors(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: ValidateIn = body(&raw)?;
    let result = catalog(&state)?.validate_behaviors(&input.behaviors);
    Ok(ok(json!(result)))
}

async fn attach_security_profile(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult {
    let target = q.required("securityProfileTargetArn")?.to_owned();
    let catalog = catalog(&state)?;
    blocking(move || catalog.attach_security_profile(&name, &target)).await?;
    Ok(empty())
}

async fn detach_security_profile(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult {
    let target = q.required("securityProfileTargetArn")?.to_owned();
    let catalog = catalog(&state)?;
    blocking(move || catalog.detach_security_profile(&name, &target)).await?;
    Ok(empty())
}

async fn list_targets_for_security_profile(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult {
    let catalog = catalog(&state)?;
    let (max_results, next_token) = page_params(&q)?;
    let page = catalog.list_targets_for_security_profile(&name, max_results, next_token)?;
    let targets: Vec<Value> = page
        .items
        .iter()
        .map(|t| json!({ "arn": t.arn(catalog.scope()) }))
        .collect();
    Ok(ok(json!({
        "securityProfileTargets": targets,
        "nextToken": page.next_token,
    })))
}

async fn list_security_profiles_for_target(State(state): State<Shared>, q: Query) -> ApiResult {
    let catalog = catalog(&state)?;
    let (max_results, next_token) = page_params(&q)?;
    let page = catalog.list_security_profiles_for_target(
        q.required("securityProfileTargetArn")?,
        q.flag("recursive")?,
        max_results,
        next_token,
    )?;
    let mappings: Vec<Value> = page
        .items
        .iter()
        .map(|m| {
            json!({
                "securityProfileIdentifier": identifier(&catalog, &m.profile),
                "target": { "arn": m.target.arn(catalog.scope()) },
            })
        })
        .collect();
    Ok(ok(json!({
        "securityProfileTargetMappings": mappings,
        "nextToken": page.next_token,
    })))
}
