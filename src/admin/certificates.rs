//! Device certificates: RegisterCertificate, RegisterCertificateWithoutCA,
//! CreateKeysAndCertificate, UpdateCertificate, DescribeCertificate,
//! ListCertificates, ListCertificatesByCA, DeleteCertificate.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_broker::registry::{Certificate, CertificateStatus, Page, Scope};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, enum_field, Query};
use super::server::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/certificate/register", post(register_certificate))
        .route(
            "/certificate/register-no-ca",
            post(register_certificate_without_ca),
        )
        .route("/keys-and-certificate", post(create_keys_and_certificate))
        .route("/certificates", get(list_certificates))
        .route(
            "/certificates/{certificateId}",
            get(describe_certificate)
                .put(update_certificate)
                .delete(delete_certificate),
        )
        .route(
            "/certificates-by-ca/{caCertificateId}",
            get(list_certificates_by_ca),
        )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterIn {
    certificate_pem: String,
    ca_certificate_pem: Option<String>,
    status: Option<String>,
}

/// The status to register with: `status` wins over the deprecated
/// `setAsActive` query flag.
fn initial_status(input: &RegisterIn, q: &Query) -> Result<Option<CertificateStatus>, ApiError> {
    if let Some(s) = &input.status {
        return enum_field("status", s).map(Some);
    }
    Ok(q.bool("setAsActive")?
        .and_then(|active| active.then_some(CertificateStatus::Active)))
}

fn registered(scope: &Scope, cert: &Certificate) -> Value {
    json!({
        "certificateArn": scope.cert_arn(&cert.id),
        "certificateId": cert.id,
    })
}

async fn register_certificate(State(state): State<Shared>, q: Query, raw: Bytes) -> ApiResult {
    let input: RegisterIn = body(&raw)?;
    let status = initial_status(&input, &q)?;
    let registry = state.registry.clone();
    let cert = blocking(move || {
        registry.register_certificate(
            &input.certificate_pem,
            input.ca_certificate_pem.as_deref(),
            status,
        )
    })
    .await?;
    Ok(ok(registered(state.registry.scope(), &cert)))
}

async fn register_certificate_without_ca(
    State(state): State<Shared>,
    q: Query,
    raw: Bytes,
) -> ApiResult {
    let input: RegisterIn = body(&raw)?;
    let status = initial_status(&input, &q)?;
    let registry = state.registry.clone();
    let cert =
        blocking(move || registry.register_certificate_without_ca(&input.certificate_pem, status))
            .await?;
    Ok(ok(registered(state.registry.scope(), &cert)))
}

/// Issues a key pair and certificate with the configured CA and registers
/// the certificate without a CA, as AWS-issued certificates are (they
/// carry no `caCertificateId`).
async fn create_keys_and_certificate(State(state): State<Shared>, q: Query) -> ApiResult {
    let status = if q.flag("setAsActive")? {
        CertificateStatus::Active
    } else {
        CertificateStatus::Inactive
    };
    if state.issuer.is_none() {
        return Err(ApiError::invalid("no issuing CA configured"));
    }
    let app = state.clone();
    // Key generation and the registry commit both block briefly.
    let (issued, cert) = blocking(move || {
        let issuer = app
            .issuer
            .as_ref()
            .ok_or_else(|| ApiError::invalid("no issuing CA configured"))?;
        let issued = issuer.issue().map_err(ApiError::internal)?;
        let cert = app
            .registry
            .register_certificate_without_ca(&issued.certificate_pem, Some(status))?;
        Ok::<_, ApiError>((issued, cert))
    })
    .await?;
    let scope = state.registry.scope();
    Ok(ok(json!({
        "certificateArn": scope.cert_arn(&cert.id),
        "certificateId": cert.id,
        "certificatePem": issued.certificate_pem,
        "keyPair": {
            "PublicKey": issued.public_key_pem,
            "PrivateKey": issued.private_key_pem,
        },
    })))
}

async fn update_certificate(
    State(state): State<Shared>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult {
    let status: CertificateStatus = enum_field("newStatus", q.required("newStatus")?)?;
    let registry = state.registry.clone();
    blocking(move || registry.update_certificate(&id, status)).await?;
    Ok(empty())
}

async fn describe_certificate(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let cert = state
        .registry
        .certificate(&id)
        .ok_or_else(|| ApiError::not_found(format!("certificate {id} does not exist")))?;
    let scope = state.registry.scope();
    Ok(ok(json!({
        "certificateDescription": {
            "certificateArn": scope.cert_arn(&cert.id),
            "certificateId": cert.id,
            "caCertificateId": cert.ca_certificate_id,
            "status": cert.status.as_str(),
            "certificatePem": cert.pem,
            "ownedBy": cert.owned_by,
            "creationDate": cert.creation_date,
            "lastModifiedDate": cert.last_modified_date,
            "customerVersion": cert.customer_version,
            "generationId": cert.generation_id,
            "validity": {
                "notBefore": cert.validity.not_before,
                "notAfter": cert.validity.not_after,
            },
            "certificateMode": "DEFAULT",
        }
    })))
}

async fn delete_certificate(
    State(state): State<Shared>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult {
    let force = q.flag("forceDelete")?;
    let registry = state.registry.clone();
    blocking(move || registry.delete_certificate(&id, force)).await?;
    Ok(empty())
}

fn certificate_list(scope: &Scope, page: Page<Certificate>) -> Value {
    let certificates: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            json!({
                "certificateArn": scope.cert_arn(&c.id),
                "certificateId": c.id,
                "status": c.status.as_str(),
                "certificateMode": "DEFAULT",
                "creationDate": c.creation_date,
            })
        })
        .collect();
    json!({ "certificates": certificates, "nextMarker": page.next_token })
}

async fn list_certificates(State(state): State<Shared>, q: Query) -> ApiResult {
    // isAscendingOrder is accepted and ignored: pages follow the id order,
    // which keeps markers stable (see ARCHITECTURE.md).
    q.bool("isAscendingOrder")?;
    let page = state.registry.list_certificates(&q.marker_page()?)?;
    Ok(ok(certificate_list(state.registry.scope(), page)))
}

async fn list_certificates_by_ca(
    State(state): State<Shared>,
    Path(ca_id): Path<String>,
    q: Query,
) -> ApiResult {
    q.bool("isAscendingOrder")?;
    let page = state
        .registry
        .list_certificates_by_ca(&ca_id, &q.marker_page()?)?;
    Ok(ok(certificate_list(state.registry.scope(), page)))
}
