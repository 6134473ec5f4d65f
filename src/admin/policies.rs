//! Policies, their versions and their attachments: CreatePolicy, GetPolicy,
//! DeletePolicy, ListPolicies, CreatePolicyVersion, GetPolicyVersion,
//! ListPolicyVersions, SetDefaultPolicyVersion, DeletePolicyVersion,
//! AttachPolicy, DetachPolicy, ListAttachedPolicies, ListTargetsForPolicy
//! and the legacy AttachPrincipalPolicy, DetachPrincipalPolicy,
//! ListPrincipalPolicies.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_broker::authz;
use wardmq_broker::registry::{Page, Policy, Scope};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, header, Query};
use super::server::Shared;

/// The header the legacy principal-policy calls carry the principal in.
const IOT_PRINCIPAL_HEADER: &str = "x-amzn-iot-principal";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/policies", get(list_policies))
        .route(
            "/policies/{policyName}",
            get(get_policy).post(create_policy).delete(delete_policy),
        )
        .route(
            "/policies/{policyName}/version",
            get(list_policy_versions).post(create_policy_version),
        )
        .route(
            "/policies/{policyName}/version/{policyVersionId}",
            get(get_policy_version)
                .patch(set_default_policy_version)
                .delete(delete_policy_version),
        )
        .route(
            "/target-policies/{policyName}",
            put(attach_policy).post(detach_policy),
        )
        .route("/attached-policies/{target}", post(list_attached_policies))
        .route(
            "/policy-targets/{policyName}",
            post(list_targets_for_policy),
        )
        .route("/principal-policies", get(list_principal_policies))
        .route(
            "/principal-policies/{policyName}",
            put(attach_principal_policy).delete(detach_principal_policy),
        )
}

/// Checks a document with the same parser the broker enforces policies
/// with, so a stored policy can always be evaluated. The problems are
/// listed in the message, all at once.
fn check_document(document: &str) -> Result<(), ApiError> {
    // A placeholder name: the policy name is checked (as an
    // InvalidRequestException) by the registry, not reported as a
    // document problem here.
    authz::Policy::parse("policy", document)
        .map(drop)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MalformedPolicyException",
                format!(
                    "the policy document is invalid: {}",
                    e.problems().join("; ")
                ),
            )
        })
}

fn version_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid(format!("policyVersionId {id:?} must be digits")))
}

fn existing(state: &Shared, name: &str) -> Result<Policy, ApiError> {
    state
        .registry
        .policy(name)
        .ok_or_else(|| ApiError::not_found(format!("policy {name} does not exist")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentIn {
    policy_document: String,
}

async fn create_policy(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: DocumentIn = body(&raw)?;
    check_document(&input.policy_document)?;
    let registry = state.registry.clone();
    let policy = blocking(move || registry.create_policy(&name, &input.policy_document)).await?;
    Ok(ok(json!({
        "policyName": policy.name,
        "policyArn": state.registry.scope().policy_arn(&policy.name),
        "policyDocument": policy.default_document(),
        "policyVersionId": policy.default_version_id.to_string(),
    })))
}

async fn get_policy(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let p = existing(&state, &name)?;
    Ok(ok(json!({
        "policyName": p.name,
        "policyArn": state.registry.scope().policy_arn(&p.name),
        "policyDocument": p.default_document(),
        "defaultVersionId": p.default_version_id.to_string(),
        "creationDate": p.creation_date,
        "lastModifiedDate": p.last_modified_date,
        "generationId": p.generation_id,
    })))
}

async fn delete_policy(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let registry = state.registry.clone();
    blocking(move || registry.delete_policy(&name)).await?;
    Ok(empty())
}

fn policy_list(scope: &Scope, page: Page<String>) -> Value {
    let policies: Vec<Value> = page
        .items
        .iter()
        .map(|name| json!({ "policyName": name, "policyArn": scope.policy_arn(name) }))
        .collect();
    json!({ "policies": policies, "nextMarker": page.next_token })
}

async fn list_policies(State(state): State<Shared>, q: Query) -> ApiResult {
    q.bool("isAscendingOrder")?;
    let page = state.registry.list_policies(&q.marker_page()?)?;
    let names = Page {
        items: page.items.into_iter().map(|p| p.name).collect(),
        next_token: page.next_token,
    };
    Ok(ok(policy_list(state.registry.scope(), names)))
}

async fn create_policy_version(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
    raw: Bytes,
) -> ApiResult {
    let input: DocumentIn = body(&raw)?;
    let set_as_default = q.flag("setAsDefault")?;
    check_document(&input.policy_document)?;
    let registry = state.registry.clone();
    let policy_name = name.clone();
    let document = input.policy_document.clone();
    let id =
        blocking(move || registry.create_policy_version(&policy_name, &document, set_as_default))
            .await?;
    Ok(ok(json!({
        "policyArn": state.registry.scope().policy_arn(&name),
        "policyDocument": input.policy_document,
        "policyVersionId": id.to_string(),
        "isDefaultVersion": set_as_default,
    })))
}

async fn get_policy_version(
    State(state): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    let id = version_id(&version)?;
    let p = existing(&state, &name)?;
    let v = p
        .versions
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("policy {name} has no version {version}")))?;
    Ok(ok(json!({
        "policyArn": state.registry.scope().policy_arn(&p.name),
        "policyName": p.name,
        "policyDocument": v.document,
        "policyVersionId": id.to_string(),
        "isDefaultVersion": id == p.default_version_id,
        "creationDate": v.create_date,
        // Versions are immutable: last modified when created.
        "lastModifiedDate": v.create_date,
        "generationId": p.generation_id,
    })))
}

async fn list_policy_versions(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let p = existing(&state, &name)?;
    let versions: Vec<Value> = p
        .versions
        .iter()
        .rev()
        .map(|(id, v)| {
            json!({
                "versionId": id.to_string(),
                "isDefaultVersion": *id == p.default_version_id,
                "createDate": v.create_date,
            })
        })
        .collect();
    Ok(ok(json!({ "policyVersions": versions })))
}

async fn set_default_policy_version(
    State(state): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    let registry = state.registry.clone();
    blocking(move || registry.set_default_policy_version(&name, &version)).await?;
    Ok(empty())
}

async fn delete_policy_version(
    State(state): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    let registry = state.registry.clone();
    blocking(move || registry.delete_policy_version(&name, &version)).await?;
    Ok(empty())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetIn {
    target: String,
}

async fn attach_policy(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: TargetIn = body(&raw)?;
    let registry = state.registry.clone();
    blocking(move || registry.attach_policy(&name, &input.target)).await?;
    Ok(empty())
}

async fn detach_policy(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: TargetIn = body(&raw)?;
    let registry = state.registry.clone();
    blocking(move || registry.detach_policy(&name, &input.target)).await?;
    Ok(empty())
}

/// `recursive` is accepted but not applied: the policies of a group's
/// ancestors are not listed (see ARCHITECTURE.md).
async fn list_attached_policies(
    State(state): State<Shared>,
    Path(target): Path<String>,
    q: Query,
) -> ApiResult {
    q.bool("recursive")?;
    let page = state
        .registry
        .list_attached_policies(&target, &q.marker_page()?)?;
    Ok(ok(policy_list(state.registry.scope(), page)))
}

async fn list_targets_for_policy(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult {
    let page = state
        .registry
        .list_targets_for_policy(&name, &q.marker_page()?)?;
    Ok(ok(
        json!({ "targets": page.items, "nextMarker": page.next_token }),
    ))
}

async fn attach_principal_policy(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let principal = header(&headers, IOT_PRINCIPAL_HEADER)?.to_owned();
    let registry = state.registry.clone();
    blocking(move || registry.attach_policy(&name, &principal)).await?;
    Ok(empty())
}

async fn detach_principal_policy(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let principal = header(&headers, IOT_PRINCIPAL_HEADER)?.to_owned();
    let registry = state.registry.clone();
    blocking(move || registry.detach_policy(&name, &principal)).await?;
    Ok(empty())
}

async fn list_principal_policies(
    State(state): State<Shared>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult {
    let principal = header(&headers, IOT_PRINCIPAL_HEADER)?;
    q.bool("isAscendingOrder")?;
    let page = state
        .registry
        .list_attached_policies(principal, &q.marker_page()?)?;
    Ok(ok(policy_list(state.registry.scope(), page)))
}
