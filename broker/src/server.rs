//! Starting and stopping the broker: opens the store, recovers sessions and
//! retained messages, binds the listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::authz::Policy;
use crate::hub::Hub;
use crate::net::listen_tcp;
use crate::observer::{NoopObserver, Observer};
use crate::registry::Registry;
use crate::settings::Settings;
use crate::store::Store;

/// Store batches allowed to wait for the writer before publishers wait.
const STORE_QUEUE_DEPTH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("anonymous policy: {0}")]
    Policy(#[from] crate::authz::PolicyError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the broker works with besides its settings.
pub struct Services {
    /// Things, certificates, policies. Without one, only anonymous (plain
    /// TCP) clients can be served.
    pub registry: Option<Registry>,
    pub observer: Arc<dyn Observer>,
}

impl Default for Services {
    fn default() -> Services {
        Services {
            registry: None,
            observer: Arc::new(NoopObserver),
        }
    }
}

/// A running broker.
pub struct Server {
    hub: Arc<Hub>,
    tcp_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    permits: Arc<Semaphore>,
    max_connections: u32,
}

impl Server {
    /// Starts the broker; returns once every listener is bound.
    pub async fn start(settings: Settings) -> Result<Server, StartError> {
        Server::start_with(settings, Services::default()).await
    }

    /// Starts the broker with a registry and an observer.
    pub async fn start_with(settings: Settings, services: Services) -> Result<Server, StartError> {
        let anonymous = settings
            .anonymous_policies
            .iter()
            .enumerate()
            .map(|(i, doc)| Policy::parse(&format!("anonymous-{i}"), doc).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| StartError::DataDir {
            path: settings.data_dir.display().to_string(),
            source,
        })?;
        let path = settings.data_dir.join("wardmq.redb");
        let (store, recovered) = Store::open(&path, STORE_QUEUE_DEPTH)?;
        tracing::info!(
            sessions = recovered.sessions.len(),
            retained = recovered.retained.len(),
            path = %path.display(),
            "store opened"
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        // Semaphore permits are u32-sized internally; cap accordingly.
        let max_connections =
            u32::try_from(settings.limits.max_connections).unwrap_or(u32::MAX >> 4);
        let permits = Arc::new(Semaphore::new(max_connections as usize));
        let tcp = settings.tcp;
        let hub = Arc::new(Hub::new(settings, store, services, anonymous, shutdown_rx));
        hub.recover(recovered);

        let mut tcp_addr = None;
        if let Some(addr) = tcp {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            tcp_addr = Some(bound);
            tokio::spawn(listen_tcp(listener, hub.clone(), permits.clone()));
        }
        Ok(Server {
            hub,
            tcp_addr,
            shutdown,
            permits,
            max_connections,
        })
    }

    /// The bound TCP listener address, if it is enabled.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Broker-wide counters.
    pub fn stats(&self) -> &crate::hub::Stats {
        &self.hub.stats
    }

    /// Stops accepting, closes every connection (v5 clients get DISCONNECT
    /// 0x8B; wills without a delay are published) and waits until every
    /// store write has been committed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        // Every connection holds a permit until it has finished.
        let all = self.permits.acquire_many(self.max_connections);
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 10 s; stopping anyway");
        }
        self.hub.store.clone().close().await;
        tracing::info!("broker stopped");
    }
}
