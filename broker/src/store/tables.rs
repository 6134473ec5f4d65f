//! The redb layout: table definitions, applying [`Op`]s inside a write
//! transaction, and reading everything back at open.
//!
//! Keys hold client IDs and topics as raw bytes rather than `&str`: redb
//! decodes a `&str` key with a panicking UTF-8 check, and a damaged file
//! must not crash the broker at start. Text is validated here instead.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{Op, QueuedRecord, Recovered, RecoveredSession, SessionRecord, StoreError};
use crate::message::Message;

/// Client ID -> postcard [`SessionRecord`].
pub(super) const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// (client ID, seq) -> postcard [`QueuedRecord`]. Tuple keys compare field
/// by field, so one client's entries are contiguous and in seq order, and
/// a client ID that prefixes another ("a", "ab") never interleaves with it.
pub(super) const QUEUE: TableDefinition<(&[u8], u64), &[u8]> = TableDefinition::new("queue");
/// (client ID, packet id) of inbound QoS 2 messages awaiting PUBREL.
pub(super) const INBOUND: TableDefinition<(&[u8], u16), ()> = TableDefinition::new("inbound");
/// Topic -> postcard [`Message`].
pub(super) const RETAINED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("retained");

pub(super) fn storage(e: impl Display) -> StoreError {
    StoreError::Storage(e.to_string())
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Storage(format!("encoding a record: {e}")))
}

/// Creates any missing table, so later read transactions can open them all
/// unconditionally.
pub(super) fn create_tables(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(storage)?;
    txn.open_table(SESSIONS).map_err(storage)?;
    txn.open_table(QUEUE).map_err(storage)?;
    txn.open_table(INBOUND).map_err(storage)?;
    txn.open_table(RETAINED).map_err(storage)?;
    txn.commit().map_err(storage)
}

/// Applies one batch's ops, in order, to an open write transaction.
pub(super) fn apply(txn: &WriteTransaction, ops: &[Op]) -> Result<(), StoreError> {
    let mut sessions = txn.open_table(SESSIONS).map_err(storage)?;
    let mut queue = txn.open_table(QUEUE).map_err(storage)?;
    let mut inbound = txn.open_table(INBOUND).map_err(storage)?;
    let mut retained = txn.open_table(RETAINED).map_err(storage)?;
    for op in ops {
        match op {
            Op::PutSession { client_id, record } => {
                let bytes = encode(record)?;
                sessions
                    .insert(client_id.as_bytes(), bytes.as_slice())
                    .map_err(storage)?;
            }
            Op::DeleteSession { client_id } => {
                let id = client_id.as_bytes();
                sessions.remove(id).map_err(storage)?;
                queue
                    .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
                    .map_err(storage)?;
                inbound
                    .retain_in((id, 0)..=(id, u16::MAX), |_, _| false)
                    .map_err(storage)?;
            }
            Op::PutQueued {
                client_id,
                seq,
                record,
            } => {
                let bytes = encode(record)?;
                queue
                    .insert((client_id.as_bytes(), *seq), bytes.as_slice())
                    .map_err(storage)?;
            }
            Op::DeleteQueued { client_id, seq } => {
                queue
                    .remove((client_id.as_bytes(), *seq))
                    .map_err(storage)?;
            }
            Op::PutInbound { client_id, pkid } => {
                inbound
                    .insert((client_id.as_bytes(), *pkid), ())
                    .map_err(storage)?;
            }
            Op::DeleteInbound { client_id, pkid } => {
                inbound
                    .remove((client_id.as_bytes(), *pkid))
                    .map_err(storage)?;
            }
            Op::PutRetained { topic, message } => {
                let bytes = encode(message)?;
                retained
                    .insert(topic.as_bytes(), bytes.as_slice())
                    .map_err(storage)?;
            }
            Op::DeleteRetained { topic } => {
                retained.remove(topic.as_bytes()).map_err(storage)?;
            }
        }
    }
    Ok(())
}

/// Reads every durable record. Records that do not decode are logged and
/// skipped: one damaged entry must not keep the broker from starting, and
/// leaving it in place (rather than deleting it) keeps it for inspection or
/// for a build that can still read it.
pub(super) fn recover(db: &Database) -> Result<Recovered, StoreError> {
    let txn = db.begin_read().map_err(storage)?;
    let mut sessions: BTreeMap<Arc<str>, RecoveredSession> = BTreeMap::new();

    let table = txn.open_table(SESSIONS).map_err(storage)?;
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let Some(client_id) = text(key.value(), "sessions") else {
            continue;
        };
        match postcard::from_bytes::<SessionRecord>(value.value()) {
            Ok(record) => {
                let session = RecoveredSession {
                    client_id: client_id.clone(),
                    record,
                    queue: Vec::new(),
                    inbound: Vec::new(),
                };
                sessions.insert(client_id, session);
            }
            Err(e) => {
                tracing::warn!(%client_id, error = %e, "skipping undecodable session record");
            }
        }
    }

    let table = txn.open_table(QUEUE).map_err(storage)?;
    let mut orphan: Option<Arc<str>> = None;
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let (id, seq) = key.value();
        let Some(client_id) = text(id, "queue") else {
            continue;
        };
        let Some(session) = sessions.get_mut(&client_id) else {
            // One line per client, not per message: a lost session record
            // can strand a long queue.
            if orphan.as_ref() != Some(&client_id) {
                tracing::warn!(%client_id, "skipping queued messages of an unknown session");
                orphan = Some(client_id);
            }
            continue;
        };
        match postcard::from_bytes::<QueuedRecord>(value.value()) {
            // The table iterates in key order, so each queue comes out sorted.
            Ok(record) => session.queue.push((seq, record)),
            Err(e) => {
                tracing::warn!(%client_id, seq, error = %e, "skipping undecodable queued message");
            }
        }
    }

    let table = txn.open_table(INBOUND).map_err(storage)?;
    for entry in table.iter().map_err(storage)? {
        let (key, _) = entry.map_err(storage)?;
        let (id, pkid) = key.value();
        let Some(client_id) = text(id, "inbound") else {
            continue;
        };
        match sessions.get_mut(&client_id) {
            Some(session) => session.inbound.push(pkid),
            None => {
                tracing::warn!(%client_id, pkid, "skipping inbound packet id of an unknown session");
            }
        }
    }

    let mut retained = Vec::new();
    let table = txn.open_table(RETAINED).map_err(storage)?;
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let Some(topic) = text(key.value(), "retained") else {
            continue;
        };
        match postcard::from_bytes::<Message>(value.value()) {
            Ok(message) => retained.push(Arc::new(message)),
            Err(e) => tracing::warn!(%topic, error = %e, "skipping undecodable retained message"),
        }
    }

    Ok(Recovered {
        sessions: sessions.into_values().collect(),
        retained,
    })
}

fn text(bytes: &[u8], table: &str) -> Option<Arc<str>> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(Arc::from(s)),
        Err(_) => {
            tracing::warn!(table, key = ?bytes, "skipping record whose key is not UTF-8");
            None
        }
    }
}
