//! Sessions: the state that outlives a connection (subscriptions, queued
//! and inflight messages, inbound QoS 2 ids), and the connection task that
//! serves one.

mod access;
mod connection;
mod queue;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

pub use access::Principal;
pub(crate) use connection::serve;
pub(crate) use queue::{Entry, OutQueue, Pushed};

use crate::router::Subscription;
use crate::store::{SessionRecord, StoredSubscription};

/// How the hub tells a live connection to go away.
pub(crate) struct Attachment {
    /// Identifies the connection, so a late detach cannot detach a newer one.
    pub conn_id: u64,
    pub peer: SocketAddr,
    /// Sends the reason code the connection closes with (0x8E takeover,
    /// or whatever `Publisher::disconnect` was given). Taken when used.
    pub kick: Option<oneshot::Sender<u8>>,
    /// Completes when the connection has let go of the session.
    pub released: Arc<Notify>,
}

pub(crate) struct SessionState {
    pub v5: bool,
    /// Seconds; 0 = ends with the connection.
    pub expiry_interval: u32,
    /// Full filter (with any `$share/` prefix) → subscription.
    pub subscriptions: HashMap<String, Subscription>,
    pub queue: OutQueue,
    /// Inbound QoS 2 ids received and not yet released by PUBREL.
    pub inbound: HashSet<u16>,
    pub attachment: Option<Attachment>,
    /// Bumped whenever a connection attaches or the session is replaced;
    /// delayed wills and expiry timers act only if it has not moved.
    pub generation: u64,
    pub disconnected_at_ms: Option<u64>,
    /// A will waiting for its delay to pass (or for the session to end).
    pub will: Option<Arc<crate::message::Message>>,
    /// The store may hold a record of this session, so ending it must
    /// delete that; sessions that were never persistent cost no write.
    pub durable: bool,
}

impl SessionState {
    pub fn persistent(&self) -> bool {
        self.expiry_interval > 0
    }

    pub fn record(&self) -> SessionRecord {
        SessionRecord {
            v5: self.v5,
            expiry_interval: self.expiry_interval,
            subscriptions: self
                .subscriptions
                .iter()
                .map(|(filter, sub)| StoredSubscription {
                    filter: filter.clone(),
                    options: sub.options,
                    identifier: sub.identifier,
                })
                .collect(),
            disconnected_at_ms: self.disconnected_at_ms,
        }
    }
}

pub(crate) struct Session {
    pub client_id: Arc<str>,
    pub state: Mutex<SessionState>,
    /// Wakes the serving connection when a message is queued.
    pub wake: Notify,
    /// Mirrors `state.attachment.is_some()` without taking the lock, for
    /// shared-subscription member choice on the publish path.
    pub online: AtomicBool,
}

impl Session {
    pub fn new(client_id: Arc<str>, state: SessionState) -> Session {
        Session {
            client_id,
            state: Mutex::new(state),
            wake: Notify::new(),
            online: AtomicBool::new(false),
        }
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }
}
