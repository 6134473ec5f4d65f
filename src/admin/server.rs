//! The admin HTTP server: the router of every operation (one module per
//! resource family adds its routes), the middleware stack and the
//! listener's life cycle.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wardmq_broker::registry::Registry;
use wardmq_defender::catalog::Catalog;

use super::credentials::Credentials;
use super::issuer::Issuer;
use super::{
    audit, auth, ca_certificates, certificates, custom_metrics, dimensions, error, groups, logging,
    mitigation, ml_models, policies, principals, prometheus, security_profiles, things, violations,
};

/// What every handler works with.
pub struct AppState {
    pub registry: Registry,
    pub credentials: Credentials,
    pub issuer: Option<Issuer>,
    /// `None` when the defender is disabled.
    pub defender: Option<wardmq_defender::engine::Defender>,
    /// The Detect configuration; its routes answer 503 without one.
    pub catalog: Option<Catalog>,
    /// Device Defender Audit; its routes answer 503 without one.
    pub audit: Option<wardmq_defender::audit::Audit>,
    /// The web console, mounted beside the API when set.
    pub console: Option<Arc<crate::console::Console>>,

    /// What `/metrics` reports; it answers 503 without.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Bearer token `/metrics` wants; `None` leaves it open.
    pub metrics_token: Option<String>,
    /// Mitigation actions and tasks; their routes answer 503 without one.
    pub mitigation: Option<wardmq_defender::mitigation::Mitigation>,
    /// Failed SigV4 requests and console logins, per source address.
    pub auth_failures: super::throttle::AuthFailures,
}

pub type Shared = Arc<AppState>;

/// The full API as an axum router (also used by in-process tests).
pub fn router(state: Shared) -> Router {
    // Prometheus cannot sign: `/metrics` sits in front of the signed API,
    // which gets every other path with its own fallback and layers intact.
    prometheus::routes()
        .layer(middleware::from_fn(error::aws_shape))
        .with_state(state.clone())
        .fallback_service(signed(state))
}

/// Every AWS operation, behind SigV4.
fn signed(state: Shared) -> Router {
    Router::new()
        .merge(things::routes())
        .merge(certificates::routes())
        .merge(ca_certificates::routes())
        .merge(policies::routes())
        .merge(principals::routes())
        .merge(groups::routes())
        .merge(logging::routes())
        .merge(violations::routes())
        .merge(ml_models::routes())
        .merge(security_profiles::routes())
        .merge(dimensions::routes())
        .merge(custom_metrics::routes())
        .merge(audit::routes())
        .merge(mitigation::routes())
        // The auth middleware enforces the limit while buffering; this
        // keeps handlers' own body extraction at the same bound.
        .layer(DefaultBodyLimit::max(auth::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_signature,
        ))
        .layer(middleware::from_fn(error::aws_shape))
        .with_state(state)
}

/// A running admin API.
pub struct AdminServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Binds `listen` (port 0 picks a free port) and serves until
    /// [`AdminServer::shutdown`].
    pub async fn start(listen: SocketAddr, state: AppState) -> std::io::Result<AdminServer> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(state);
        let api = router(state.clone());
        // The console lives outside the SigV4 layer; whatever it does not
        // route goes to the API, so API paths behave exactly as before.
        let app = match state.console.clone() {
            Some(console) => crate::console::router(state, console, api),
            None => api,
        };
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            // The peer address limits console login attempts per source.
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                // Either a stop request or the sender gone ends it.
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "admin API stopped");
            }
        });
        Ok(AdminServer { addr, stop, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in progress finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
