//! The mutual-TLS device listener: handshakes within a deadline, refusals
//! counted by reason, the verified certificate becomes the connection's
//! principal. The trust snapshot follows the registry: CA status changes and
//! new registrations take effect on the next handshake.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;

use crate::hub::Hub;
use crate::net::handshake_pool;
use crate::net::tcp::accept_loop;
use crate::net::tls::{DeviceAcceptor, TrustSnapshot, TrustStore};
use crate::registry::Registry;
use crate::session::{self, Principal};

pub(crate) async fn listen_tls(
    listener: TcpListener,
    acceptor: Arc<DeviceAcceptor>,
    hub: Arc<Hub>,
    permits: Arc<Semaphore>,
) {
    accept_loop(listener, hub, permits, move |hub, stream, peer| {
        let acceptor = acceptor.clone();
        async move {
            let Some((tls, principal)) = handshake(acceptor, &hub, stream, peer).await else {
                return;
            };
            session::serve(hub, tls, peer, principal).await;
        }
    })
    .await;
}

/// The TLS handshake, on the handshake threads, and the device's
/// principal. The stream is boxed: the rustls connection is over 1 KiB,
/// and a boxed one is not duplicated in the states of the futures it
/// moves through.
async fn handshake(
    acceptor: Arc<DeviceAcceptor>,
    hub: &Hub,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(Box<TlsStream<TcpStream>>, Principal)> {
    let accepted = handshake_pool::run(async move {
        acceptor
            .accept(stream)
            .await
            .map(|(tls, id)| (Box::new(tls), id))
    })
    .await?;
    match accepted {
        Ok((tls, identity)) => {
            let principal = Principal::Certificate {
                id: identity.certificate_id,
                common_name: identity.common_name,
                issuing_ca: identity.issuing_ca_id.map(|ca| (ca, identity.serial)),
            };
            Some((tls, principal))
        }
        Err(failure) => {
            tracing::info!(%peer, reason = failure.as_str(), "TLS handshake refused");
            hub.observer.tls_handshake_failed(peer, failure.as_str());
            None
        }
    }
}

/// The trust snapshot for the registry as it is now (CRLs kept from
/// `current`). Unparsable PEM is skipped with a warning.
pub(crate) fn snapshot_from(registry: &Registry, current: &TrustSnapshot) -> TrustSnapshot {
    let material = registry.trust_material();
    let ders = |pems: &[String]| -> Vec<CertificateDer<'static>> {
        pems.iter()
            .filter_map(|pem| match CertificateDer::from_pem_slice(pem.as_bytes()) {
                Ok(der) => Some(der),
                Err(e) => {
                    tracing::warn!(error = %e, "registered certificate PEM unreadable; not trusted");
                    None
                }
            })
            .collect()
    };
    match current.with_registry(ders(&material.active_cas), ders(&material.without_ca)) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            tracing::error!(error = %e, "registered CA unusable; keeping the previous trust");
            current.clone()
        }
    }
}

/// Keeps `store` in step with the registry until the broker stops.
pub(crate) fn follow_registry(registry: Registry, store: Arc<TrustStore>, hub: &Arc<Hub>) {
    let mut changes = registry.changes();
    let mut shutdown = hub.shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = shutdown.wait_for(|s| *s) => return,
            }
            // Read-modify-write under the store's writer lock, so a CRL the
            // watcher loads meanwhile is not lost.
            let _ = store.update(|current| {
                Ok::<_, std::convert::Infallible>(snapshot_from(&registry, current))
            });
        }
    });
}
