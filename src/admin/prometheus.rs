//! `GET /metrics`: the Prometheus scrape, the one API route without SigV4
//! (Prometheus cannot sign). Open to whoever reaches the admin listener
//! (loopback by default) unless `monitoring.metrics_token` is set, in which
//! case it wants `Authorization: Bearer TOKEN`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::server::Shared;
use crate::metrics::exposition::{Exposition, Kind, CONTENT_TYPE};

pub fn routes() -> Router<Shared> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        if !bearer_matches(&headers, token) {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UnauthorizedException",
                "/metrics wants the configured bearer token (Authorization: Bearer TOKEN)",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    let Some(metrics) = state.metrics.clone() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "metrics are not collected by this server",
        )
        .into_response();
    };
    // Walking every session for the gauges is not for a runtime worker.
    let auth_failures = state.auth_failures.total();
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(mut body) => {
            body.push_str(&admin_families(auth_failures));
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
        }
        Err(e) => ApiError::internal(format!("metrics could not be gathered: {e}")).into_response(),
    }
}

/// The admin listener's own counters, which live in its state rather
/// than in the broker's.
fn admin_families(auth_failures: u64) -> String {
    let mut e = Exposition::new();
    e.single(
        "wardmq_admin_auth_failures",
        "Admin API requests with a bad or unknown SigV4 key, and failed console logins.",
        Kind::Counter,
        auth_failures as f64,
    );
    e.finish()
}

/// Compares digests so the time taken says nothing about the token.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.as_bytes())
}
