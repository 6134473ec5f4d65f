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
    mitigation, policies, principals, security_profiles, things, violations,
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
    /// Mitigation actions and tasks; their routes answer 503 without one.
    pub mitigation: Option<wardmq_defender::mitigation::Mitigation>,
}

pub type Shared = Arc<AppState>;

/// The full API as an axum router (also used by in-process tests).
pub fn router(state: Shared) -> Router {
    Router::new()
        .merge(things::routes())
        .merge(certificates::routes())
        .merge(ca_certificates::routes())
        .merge(policies::routes())
        .merge(principals::routes())
        .merge(groups::routes())
        .merge(logging::routes())
        .merge(violations::routes())
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
        let app = router(Arc::new(state));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
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
