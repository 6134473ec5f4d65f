//! The accept loop both listeners share, and the plain TCP listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::hub::Hub;
use crate::observer::Rejection;
use crate::session;

/// Accepts until shutdown and runs `serve` on its own task for each
/// connection. Each connection holds a permit of `permits` for its whole
/// life, which bounds connections and lets shutdown wait for them all.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    hub: Arc<Hub>,
    permits: Arc<Semaphore>,
    serve: F,
) where
    F: Fn(Arc<Hub>, TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = hub.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off, don't spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Dropping the stream closes it: a refused socket costs no
        // handshake and holds no slot.
        if let Err(why) = hub.admission.admit(peer.ip()) {
            tracing::debug!(%peer, reason = why.as_str(), "connection rate exceeded; refusing");
            hub.observer.connection_rejected(peer, why);
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; refusing");
            hub.observer
                .connection_rejected(peer, Rejection::MaxConnections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        hub.observer.connection_accepted(peer);
        let task = serve(hub.clone(), stream, peer);
        tokio::spawn(async move {
            task.await;
            drop(permit);
        });
    }
}

/// Plain TCP: every client is the anonymous principal.
pub(crate) async fn listen_tcp(listener: TcpListener, hub: Arc<Hub>, permits: Arc<Semaphore>) {
    accept_loop(listener, hub, permits, |hub, stream, peer| {
        session::serve(hub, stream, peer, session::Principal::Anonymous)
    })
    .await;
}
