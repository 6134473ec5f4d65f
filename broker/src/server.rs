//! Starting and stopping the broker: opens the store, recovers sessions and
//! retained messages, binds the listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::authz::Policy;
use crate::hub::Hub;
use crate::intercept::Interceptor;
use crate::net::tls::{
    server_config, CrlWatcher, CrlWatcherHandle, DeviceAcceptor, DeviceVerifier, TrustSnapshot,
    TrustStore,
};
use crate::net::{follow_registry, listen_tcp, listen_tls, snapshot_from};
use crate::observer::{NoopObserver, Observer};
use crate::publisher::Publisher;
use crate::registry::Registry;
use crate::settings::{Settings, TlsSettings};
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
    #[error("the TLS listener needs a registry")]
    TlsWithoutRegistry,
    #[error("cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] crate::net::tls::TlsError),
    #[error("the publisher handed in Services is already bound to another server")]
    PublisherInUse,
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
    /// Sees authorized PUBLISHes under its topic prefix before they are
    /// routed, and may consume and answer them (see `intercept`).
    pub interceptor: Option<Arc<dyn Interceptor>>,
    /// Bound to this server when it starts, so a component made before the
    /// server (the defender) can publish and disconnect through it.
    pub publisher: Publisher,
}

impl Default for Services {
    fn default() -> Services {
        Services {
            registry: None,
            observer: Arc::new(NoopObserver),
            interceptor: None,
            publisher: Publisher::new(),
        }
    }
}

/// A running broker.
pub struct Server {
    hub: Arc<Hub>,
    tcp_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    /// Stops the CRL watcher when the server is dropped.
    _crl_watcher: Option<CrlWatcherHandle>,
    shutdown: watch::Sender<bool>,
    permits: Arc<Semaphore>,
    max_connections: u32,
    publisher: Publisher,
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
        let publisher = services.publisher.clone();
        let hub = Arc::new(Hub::new(settings, store, services, anonymous, shutdown_rx));
        // Before recovery and the listeners start tasks: a failed start
        // leaves nothing running.
        if !publisher.bind(&hub, tokio::runtime::Handle::current()) {
            return Err(StartError::PublisherInUse);
        }
        hub.recover(recovered);

        let (tls_addr, crl_watcher) = match hub.settings.tls.clone() {
            Some(tls) => {
                let (addr, watcher) = start_tls(&hub, &tls, permits.clone()).await?;
                (Some(addr), Some(watcher))
            }
            None => (None, None),
        };
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
            tls_addr,
            _crl_watcher: crl_watcher,
            shutdown,
            permits,
            max_connections,
            publisher,
        })
    }

    /// The bound TCP listener address, if it is enabled.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The bound mutual-TLS listener address, if it is enabled.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Publishes and disconnects as this broker (the handle given in
    /// `Services`, or a fresh one bound at start).
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Broker-wide counters.
    pub fn stats(&self) -> &crate::hub::Stats {
        &self.hub.stats
    }

    /// Stops accepting, closes every connection (v5 clients get DISCONNECT
    /// 0x8B), publishes every will, those still waiting for their delay
    /// included, and waits until every store write has been committed.
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
        self.hub.publish_pending_wills().await;
        self.hub.store.clone().close().await;
        tracing::info!("broker stopped");
    }
}

/// Binds the device listener with a trust snapshot that follows the
/// registry and CRL files that are watched.
async fn start_tls(
    hub: &Arc<Hub>,
    tls: &TlsSettings,
    permits: Arc<Semaphore>,
) -> Result<(SocketAddr, CrlWatcherHandle), StartError> {
    let registry = hub.registry.clone().ok_or(StartError::TlsWithoutRegistry)?;
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| StartError::TlsFile {
            path: path.display().to_string(),
            source,
        })
    };
    let chain = read(&tls.cert_chain)?;
    let key = read(&tls.key)?;
    let store = Arc::new(TrustStore::new(snapshot_from(
        &registry,
        &TrustSnapshot::empty(),
    )));
    let verifier = Arc::new(DeviceVerifier::new(store.clone()));
    let config = server_config(&chain, &key, verifier.clone())?;
    let acceptor = Arc::new(DeviceAcceptor::new(config, verifier, tls.handshake_timeout));
    let listener = TcpListener::bind(tls.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: tls.addr,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| StartError::Bind {
        addr: tls.addr,
        source,
    })?;
    let _ = hub.trust.set(store.clone());
    follow_registry(registry, store.clone(), hub);
    // CRLs are in force before the first handshake, not a poll later.
    let mut crl_watcher = CrlWatcher::new(store, tls.crls.clone());
    crl_watcher.poll().await;
    let watcher = crl_watcher.spawn();
    tokio::spawn(listen_tls(listener, acceptor, hub.clone(), permits));
    Ok((bound, watcher))
}
