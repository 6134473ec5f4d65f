//! The web console: server-rendered pages over the same Rust APIs the admin
//! handlers use (registry, catalog, defender, audit), mounted on the admin
//! listener under `/console/` and outside the SigV4 layer. Operators log in
//! with a password; every change is a POST carrying the session's CSRF token.

// Helpers return `Result<_, Response>`: the error is the page to answer
// with, built once on a rare path; boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod chart;
mod headers;
mod layout;
mod pages;
mod session;
pub mod traffic;

use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};

pub use auth::Origin;
use auth::{Gate, Password};
use traffic::Traffic;

use crate::admin::server::Shared;

/// What the console keeps besides the admin API's state.
pub struct Console {
    gate: Gate,
    cookie_secure: bool,
    traffic: Arc<Traffic>,
}

impl Console {
    /// Reads the password file, creating it with a generated password on
    /// first start. Returns the password too when it was just generated,
    /// so the caller can show it once.
    pub fn open(
        user: String,
        password_file: &std::path::Path,
        session: Duration,
        cookie_secure: bool,
        traffic: Arc<Traffic>,
    ) -> Result<(Console, Option<String>), String> {
        let (password, origin, shown) = Password::load_or_create(password_file)?;
        tokio::spawn(traffic::run_sampler(traffic.clone()));
        let console = Console {
            gate: Gate::new(user, password, session),
            cookie_secure,
            traffic,
        };
        Ok((console, (origin == Origin::Created).then_some(shown)))
    }
}

/// Handlers' state: the admin API's and the console's own.
#[derive(Clone)]
pub struct Ctx {
    pub app: Shared,
    pub console: Arc<Console>,
}

/// The console's routes; everything else goes to `api`.
pub fn router(app: Shared, console: Arc<Console>, api: Router) -> Router {
    let ctx = Ctx { app, console };
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/static/console.css", get(css))
        .route("/console/static/live.js", get(live_js))
        .route("/console/static/icon.svg", get(icon))
        .route(
            "/console/login",
            get(session::login_page).post(session::login),
        )
        .route("/console/logout", post(session::logout))
        .route("/console/", get(pages::overview::page))
        .route("/console/devices", get(pages::devices::list))
        .route("/console/devices/{name}", get(pages::devices::detail))
        .route("/console/alarms", get(pages::alarms::page))
        .route("/console/alarms/verify", post(pages::alarms::verify))
        .route("/console/profiles", get(pages::profiles::list))
        .route(
            "/console/profiles/{name}",
            get(pages::profiles::detail).post(pages::profiles::update),
        )
        .route("/console/audit", get(pages::audit::page))
        .route("/console/audit/run", post(pages::audit::run))
        .route("/console/audit/suppress", post(pages::audit::suppress))
        .route("/console/audit/mitigate", post(pages::audit::mitigate))
        .route("/console/certificates", get(pages::certificates::page))
        .route(
            "/console/certificates/status",
            post(pages::certificates::set_status),
        )
        .route(
            "/console/cas/status",
            post(pages::certificates::set_ca_status),
        )
        .route("/console/mitigations", get(pages::mitigations::page))
        .route(
            "/console/mitigations/start",
            axum::routing::post(pages::mitigations::start),
        )
        .route("/console/live", get(pages::live::page))
        .route("/console/live/stream", get(pages::live::stream))
        .layer(middleware::from_fn(headers::secure))
        .with_state(ctx)
        .fallback_service(api)
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/console.css"),
    )
        .into_response()
}

async fn live_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/live.js"),
    )
        .into_response()
}

async fn icon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        include_str!("static/icon.svg"),
    )
        .into_response()
}

/// Runs a registry, catalog or audit call on the blocking pool (writes
/// wait for an fsync) and turns its error into text for the page.
pub async fn blocking<T, E, F>(f: F) -> Result<T, String>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("internal error: {e}")),
    }
}
