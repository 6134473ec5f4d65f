//! Authentication of admin requests: every request must carry a valid
//! SigV4 signature by one of the configured access keys. The middleware
//! buffers the body (the signature covers its hash), enforcing the body
//! limit on the way, and hands the same bytes on to the handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_LENGTH, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::credentials::Credentials;
use super::error::ApiError;
use super::server::AppState;
use super::sigv4;

/// Largest request body accepted (AWS IoT's own requests are far
/// smaller; policy documents are at most 2 KiB, certificates a few KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub async fn require_signature(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let from = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // A throttled address is refused before its signature is looked at.
    if let Some(wait) = from.and_then(|ip| state.auth_failures.throttled(ip)) {
        return throttled(wait);
    }
    // Refuse a declared oversize body before reading any of it.
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return ApiError::too_large(MAX_BODY_BYTES).into_response();
    }
    // Past the declared length, only a chunked body over the limit (or a
    // connection gone mid-body, which nobody will read about) fails here.
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::too_large(MAX_BODY_BYTES).into_response(),
    };
    match authenticate(&state.credentials, &parts, &bytes, SystemTime::now()) {
        Ok(access_key_id) => {
            tracing::debug!(
                method = %parts.method,
                path = parts.uri.path(),
                access_key_id,
                "admin request"
            );
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => {
            // Guesses only: a wrong signature or an unknown key. Unsigned
            // or malformed requests reveal nothing about a secret.
            if matches!(
                e.code,
                "InvalidSignatureException" | "UnrecognizedClientException"
            ) {
                state.auth_failures.failed(from);
            }
            tracing::info!(
                method = %parts.method,
                path = parts.uri.path(),
                code = e.code,
                "admin request refused"
            );
            e.into_response()
        }
    }
}

/// 429 in the AWS error shape, with the seconds left in `Retry-After`.
fn throttled(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "ThrottlingException",
        format!("too many failed authentications from this address; retry in {secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(RETRY_AFTER, v);
    }
    r
}

/// Verifies the request's SigV4 signature against the accepted keys and
/// returns the access key id that signed it.
pub fn authenticate(
    credentials: &Credentials,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<String, ApiError> {
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let request = sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    sigv4::verify(&request, now, |id| credentials.secret(id))
        .map(|principal| principal.access_key_id)
        .map_err(ApiError::from)
}
