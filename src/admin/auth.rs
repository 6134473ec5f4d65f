//! Authentication of admin requests: every request must carry a valid
//! SigV4 signature by one of the configured access keys. The middleware
//! buffers the body (the signature covers its hash), enforcing the body
//! limit on the way, and hands the same bytes on to the handler.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
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
