//! The broker's own voice for code outside it: the defender's MQTT alert
//! sink publishes with it, and its mitigation closes connections with it.
//!
//! A [`Publisher`] can exist before the server does, because the defender
//! is built first (it is the server's observer and interceptor): make one
//! with `Publisher::new()`, give a clone to the defender and one to
//! `Services::publisher`, and `Server::start_with` binds it.
//! `Server::publisher()` returns the same handle.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;

use crate::codec::QoS;
use crate::hub::{Hub, Routed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The server has not started yet, or has shut down.
    #[error("the broker is not running")]
    NotRunning,
    /// Empty, too long, or with a wildcard or U+0000 in it.
    #[error("invalid topic name")]
    InvalidTopic,
}

/// Publishes as the broker and closes client connections. Cheap to clone
/// (one `Arc`); usable from any task or thread, async or not.
///
/// Messages go through the same routing as a client's (retained, shared
/// subscriptions, per-subscriber QoS) and each subscriber's connection
/// checks `iot:Receive` before delivering one. Their publisher is the
/// broker ([`crate::message::BROKER_PUBLISHER`]), never a client.
///
/// Do not call it from an `Observer` method: some run while the broker
/// holds a session lock that publishing or disconnecting takes. Hand the
/// work to a task instead.
#[derive(Clone, Default)]
pub struct Publisher {
    bound: Arc<OnceLock<Bound>>,
}

struct Bound {
    /// Weak: the hub owns the observer, which may own this handle, and a
    /// strong reference would keep the hub (and its store) alive forever.
    hub: Weak<Hub>,
    /// Where store writes from sync callers are submitted.
    runtime: tokio::runtime::Handle,
}

impl Publisher {
    /// A handle bound to no server yet: it publishes nothing until the
    /// `Server::start_with` it is given to (in `Services`) binds it.
    pub fn new() -> Publisher {
        Publisher::default()
    }

    /// True once a server has bound it (it stays bound after shutdown).
    pub fn is_bound(&self) -> bool {
        self.bound.get().is_some()
    }

    /// Binds it to a starting server; false if it already was.
    pub(crate) fn bind(&self, hub: &Arc<Hub>, runtime: tokio::runtime::Handle) -> bool {
        let bound = Bound {
            hub: Arc::downgrade(hub),
            runtime,
        };
        self.bound.set(bound).is_ok()
    }

    /// The running hub.
    fn hub(&self) -> Result<(Arc<Hub>, &tokio::runtime::Handle), PublishError> {
        let bound = self.bound.get().ok_or(PublishError::NotRunning)?;
        let hub = bound.hub.upgrade().ok_or(PublishError::NotRunning)?;
        if *hub.shutdown.borrow() {
            return Err(PublishError::NotRunning);
        }
        Ok((hub, &bound.runtime))
    }

    /// Publishes `payload` on `topic` as the broker; returns how many
    /// sessions it was queued for. Never waits: the message is in every
    /// subscriber's queue on return, and the store writes it causes (a
    /// retained message, QoS 1/2 copies for persistent sessions) are
    /// submitted in the background, as for a will. Use
    /// [`Publisher::publish_durable`] to wait for them.
    ///
    /// A retained message with an empty payload clears the topic's
    /// retained message, as a client's would.
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<usize, PublishError> {
        let (hub, runtime) = self.hub()?;
        let mut ops = Vec::new();
        let routed = route(&hub, topic, payload.into(), qos, retain, &mut ops)?;
        if !ops.is_empty() {
            runtime.spawn(async move { hub.persist(ops).await });
        }
        Ok(routed.sessions)
    }

    /// Like [`Publisher::publish`], but returns only once the store writes
    /// it causes are durable, as a client's QoS 1 PUBLISH is acknowledged:
    /// a retained message or a copy queued for a persistent session then
    /// survives a crash. Calls from one task are written in order.
    pub async fn publish_durable(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<usize, PublishError> {
        let (hub, _) = self.hub()?;
        let mut ops = Vec::new();
        let routed = route(&hub, topic, payload.into(), qos, retain, &mut ops)?;
        if !ops.is_empty() {
            let committed = match hub.store.submit(ops).await {
                Ok(commit) => commit.wait().await,
                Err(e) => Err(e),
            };
            // Only a store that stopped (the broker is shutting down) or
            // failed ends up here; either way the broker cannot keep it.
            if let Err(e) = committed {
                tracing::error!(error = %e, topic, "broker publish not durable");
                return Err(PublishError::NotRunning);
            }
        }
        Ok(routed.sessions)
    }

    /// What the running broker holds now (sessions, subscriptions,
    /// retained messages, queue depths); `None` when it is not running.
    pub fn gauges(&self) -> Option<crate::hub::Gauges> {
        self.hub().ok().map(|(hub, _)| hub.gauges())
    }

    /// Closes the live connection of `client_id`, if it has one: a v5
    /// client gets DISCONNECT with `reason` (say 0x98 Administrative
    /// action, or 0x87 Not authorized), a 3.1.1 client just a closed
    /// connection. As for any disconnect not asked for by the client, its
    /// will is published; its session stays for its expiry interval.
    /// Returns false if the client is not connected, or its connection is
    /// already being closed (taken over, or disconnected before).
    pub fn disconnect(&self, client_id: &str, reason: u8) -> bool {
        self.hub()
            .is_ok_and(|(hub, _)| hub.disconnect(client_id, reason))
    }
}

fn route(
    hub: &Hub,
    topic: &str,
    payload: Bytes,
    qos: QoS,
    retain: bool,
    ops: &mut Vec<crate::store::Op>,
) -> Result<Routed, PublishError> {
    // Publishes from outside are rare: a fresh scratch map costs nothing
    // that matters and needs no lock.
    let mut scratch = HashMap::new();
    hub.publish_own(topic, payload, qos, retain, ops, &mut scratch)
        .ok_or(PublishError::InvalidTopic)
}
