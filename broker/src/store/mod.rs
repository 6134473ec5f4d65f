//! Durable state in one redb file: persistent sessions (subscriptions,
//! queued and inflight QoS 1/2 messages, inbound QoS 2 packet ids) and
//! retained messages.
//!
//! Writes go through one writer thread that group-commits: it takes every
//! batch waiting in its bounded channel, applies them all in one write
//! transaction, commits once (fsync), then completes each batch's
//! [`Commit`]. A caller that must not acknowledge before durability awaits
//! the `Commit`; batches from one caller are applied in submission order.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::{QoS, SubscriptionOptions};
use crate::message::Message;

mod tables;
#[cfg(test)]
mod tests;
mod writer;

pub use writer::{Commit, Store};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("storage: record could not be decoded: {0}")]
    Corrupt(String),
    #[error("storage: writer has stopped")]
    Closed,
    /// A recent write failed and the store is not retried yet.
    #[error("storage: unavailable after a failed write")]
    Unavailable,
}

/// A persistent session's durable record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub v5: bool,
    /// Session Expiry Interval in seconds; `u32::MAX` never expires.
    pub expiry_interval: u32,
    pub subscriptions: Vec<StoredSubscription>,
    /// Unix ms of the last disconnect; `None` while connected (a crash
    /// leaves it `None`, and recovery treats the restart time as the
    /// disconnect time).
    pub disconnected_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSubscription {
    /// As subscribed, `$share/{group}/` prefix included.
    pub filter: String,
    pub options: SubscriptionOptions,
    pub identifier: Option<u32>,
}

/// Where an outgoing QoS 1/2 message stands with its subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutState {
    /// Not yet acknowledged (PUBLISH may or may not have been sent).
    Publish,
    /// QoS 2: PUBREC received; only PUBREL/PUBCOMP remain. Must never be
    /// published again.
    Released,
}

/// One message queued for (or in flight to) one persistent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecord {
    pub message: Arc<Message>,
    /// Delivery QoS (after downgrade to the subscription's maximum).
    pub qos: QoS,
    /// Packet id assigned at enqueue time (0 for QoS 0).
    pub pkid: u16,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    pub state: OutState,
}

/// One durable change. Keys: sessions by client ID; queue entries by
/// (client ID, sequence number), so a session's queue reads back in order.
#[derive(Debug, Clone)]
pub enum Op {
    PutSession {
        client_id: Arc<str>,
        record: SessionRecord,
    },
    /// Removes the session with its queue and inbound packet ids.
    DeleteSession {
        client_id: Arc<str>,
    },
    PutQueued {
        client_id: Arc<str>,
        seq: u64,
        record: QueuedRecord,
    },
    DeleteQueued {
        client_id: Arc<str>,
        seq: u64,
    },
    /// An inbound QoS 2 packet id received and not yet released by PUBREL.
    PutInbound {
        client_id: Arc<str>,
        pkid: u16,
    },
    DeleteInbound {
        client_id: Arc<str>,
        pkid: u16,
    },
    PutRetained {
        topic: Arc<str>,
        message: Arc<Message>,
    },
    DeleteRetained {
        topic: Arc<str>,
    },
}

/// A persistent session as read back at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSession {
    pub client_id: Arc<str>,
    pub record: SessionRecord,
    /// In sequence order.
    pub queue: Vec<(u64, QueuedRecord)>,
    pub inbound: Vec<u16>,
}

/// Everything durable, read once when the store opens.
#[derive(Debug, Default)]
pub struct Recovered {
    pub sessions: Vec<RecoveredSession>,
    pub retained: Vec<Arc<Message>>,
}
