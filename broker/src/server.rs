//! Starting and stopping the broker: opens the store, recovers sessions and
//! retained messages, binds the listeners.

use std::net::SocketAddr;

use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running broker.
pub struct Server {}

impl Server {
    /// Starts the broker; returns once every listener is bound.
    pub async fn start(settings: Settings) -> Result<Server, StartError> {
        let _ = settings;
        todo!("core")
    }

    /// The bound TCP listener address, if it is enabled.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        todo!("core")
    }

    /// Stops accepting, closes every connection (wills published as the
    /// spec says) and flushes the store.
    pub async fn shutdown(self) {
        todo!("core")
    }
}
