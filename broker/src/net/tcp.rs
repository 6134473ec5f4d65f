//! Plain TCP listener: accepts within the connection limit and hands each
//! socket to its own task.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::hub::Hub;
use crate::session;

/// Accepts until shutdown. Each connection holds a permit of `permits`
/// for its whole life, which bounds connections and lets shutdown wait for
/// them all.
pub(crate) async fn listen_tcp(listener: TcpListener, hub: Arc<Hub>, permits: Arc<Semaphore>) {
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
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; refusing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        hub.observer.connection_accepted(peer);
        let hub = hub.clone();
        tokio::spawn(async move {
            session::serve(hub, stream, peer, session::Principal::Anonymous).await;
            drop(permit);
        });
    }
}
