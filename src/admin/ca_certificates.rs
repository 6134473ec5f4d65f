//! CA certificates: RegisterCACertificate, DescribeCACertificate,
//! UpdateCACertificate, ListCACertificates, DeleteCACertificate.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_broker::registry::{AutoRegistrationStatus, CaCertificateStatus};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, Query};
use super::server::Shared;

/// Registrations work like AWS's SNI_ONLY mode: no registration code and
/// no verification certificate are needed, since only an authenticated
/// operator can call this API.
const CERTIFICATE_MODE: &str = "SNI_ONLY";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/cacertificate", post(register_ca_certificate))
        .route(
            "/cacertificate/{caCertificateId}",
            get(describe_ca_certificate)
                .put(update_ca_certificate)
                .delete(delete_ca_certificate),
        )
        .route("/cacertificates", get(list_ca_certificates))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterCaIn {
    ca_certificate: String,
    /// Accepted for compatibility and not checked (see [`CERTIFICATE_MODE`]).
    #[allow(dead_code)] // read by serde only
    verification_certificate: Option<String>,
    registration_config: Option<Value>,
}

/// Just-in-time provisioning templates do not exist here; refusing them
/// is better than silently dropping them.
fn no_templates(config: Option<&Value>) -> Result<(), ApiError> {
    match config {
        Some(Value::Object(m)) if !m.is_empty() => Err(ApiError::invalid(
            "registrationConfig: provisioning templates are not supported",
        )),
        _ => Ok(()),
    }
}

async fn register_ca_certificate(State(state): State<Shared>, q: Query, raw: Bytes) -> ApiResult {
    let input: RegisterCaIn = body(&raw)?;
    no_templates(input.registration_config.as_ref())?;
    let active = q.flag("setAsActive")?;
    let auto = q.flag("allowAutoRegistration")?;
    let registry = state.registry.clone();
    let ca =
        blocking(move || registry.register_ca_certificate(&input.ca_certificate, active, auto))
            .await?;
    Ok(ok(json!({
        "certificateArn": state.registry.scope().ca_arn(&ca.id),
        "certificateId": ca.id,
    })))
}

async fn describe_ca_certificate(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let ca = state
        .registry
        .ca_certificate(&id)
        .ok_or_else(|| ApiError::not_found(format!("CA certificate {id} does not exist")))?;
    Ok(ok(json!({
        "certificateDescription": {
            "certificateArn": state.registry.scope().ca_arn(&ca.id),
            "certificateId": ca.id,
            "status": ca.status.as_str(),
            "certificatePem": ca.pem,
            "ownedBy": ca.owned_by,
            "creationDate": ca.creation_date,
            "autoRegistrationStatus": ca.auto_registration_status.as_str(),
            "lastModifiedDate": ca.last_modified_date,
            "customerVersion": ca.customer_version,
            "generationId": ca.generation_id,
            "validity": {
                "notBefore": ca.validity.not_before,
                "notAfter": ca.validity.not_after,
            },
            "certificateMode": CERTIFICATE_MODE,
        }
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateCaIn {
    registration_config: Option<Value>,
    /// Nothing to remove: there are no templates.
    #[allow(dead_code)] // read by serde only
    remove_auto_registration: Option<bool>,
}

async fn update_ca_certificate(
    State(state): State<Shared>,
    Path(id): Path<String>,
    q: Query,
    raw: Bytes,
) -> ApiResult {
    let input: UpdateCaIn = body(&raw)?;
    no_templates(input.registration_config.as_ref())?;
    let status = q.enumeration::<CaCertificateStatus>("newStatus")?;
    let auto = q.enumeration::<AutoRegistrationStatus>("newAutoRegistrationStatus")?;
    let registry = state.registry.clone();
    blocking(move || registry.update_ca_certificate(&id, status, auto)).await?;
    Ok(empty())
}

async fn list_ca_certificates(State(state): State<Shared>, q: Query) -> ApiResult {
    q.bool("isAscendingOrder")?;
    if q.get("templateName").is_some() {
        return Err(ApiError::invalid(
            "templateName: provisioning templates are not supported",
        ));
    }
    let page = state.registry.list_ca_certificates(&q.marker_page()?)?;
    let scope = state.registry.scope();
    let certificates: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            json!({
                "certificateArn": scope.ca_arn(&c.id),
                "certificateId": c.id,
                "status": c.status.as_str(),
                "creationDate": c.creation_date,
            })
        })
        .collect();
    Ok(ok(
        json!({ "certificates": certificates, "nextMarker": page.next_token }),
    ))
}

async fn delete_ca_certificate(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let registry = state.registry.clone();
    blocking(move || registry.delete_ca_certificate(&id)).await?;
    Ok(empty())
}
