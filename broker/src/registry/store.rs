//! The registry's redb file: one table of (kind, key) -> postcard record.
//!
//! Keys are raw bytes, not `&str`: redb decodes `&str` keys with a
//! panicking UTF-8 check, and a damaged file must give an error, not a
//! crash. Every mutating call is one write transaction committed with
//! redb's default (immediate, fsync) durability before the call returns.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::state::{Link, Op, State};
use super::RegistryError;

const RECORDS: TableDefinition<(u8, &[u8]), &[u8]> = TableDefinition::new("registry");

// Kind bytes are part of the file format: never renumber.
const THING: u8 = 1;
const CERT: u8 = 2;
const CA: u8 = 3;
const POLICY: u8 = 4;
const GROUP: u8 = 5;
const THING_PRINCIPAL: u8 = 6;
const POLICY_TARGET: u8 = 7;
const GROUP_THING: u8 = 8;
const LOGGING: u8 = 9;
const LOG_LEVEL: u8 = 10;

const LOGGING_KEY: &[u8] = b"options";

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RegistryError> {
    postcard::to_stdvec(value)
        .map_err(|e| RegistryError::Storage(format!("encoding a registry record: {e}")))
}

fn decode<T: DeserializeOwned>(kind: u8, bytes: &[u8]) -> Result<T, RegistryError> {
    postcard::from_bytes(bytes).map_err(|e| {
        RegistryError::Storage(format!("registry record of kind {kind} is damaged: {e}"))
    })
}

fn link_kind(link: Link) -> u8 {
    match link {
        Link::ThingPrincipal => THING_PRINCIPAL,
        Link::PolicyTarget => POLICY_TARGET,
        Link::GroupThing => GROUP_THING,
    }
}

pub(crate) fn open(path: &Path) -> Result<(Database, State), RegistryError> {
    let db = reopen(path)?;
    // Create the table so the read below can open it unconditionally.
    let txn = db.begin_write().map_err(RegistryError::storage)?;
    txn.open_table(RECORDS).map_err(RegistryError::storage)?;
    txn.commit().map_err(RegistryError::storage)?;
    let state = load(&db)?;
    Ok((db, state))
}

/// The file alone, without loading it (redb repairs it if a failed commit
/// left it dirty).
pub(crate) fn reopen(path: &Path) -> Result<Database, RegistryError> {
    Database::create(path).map_err(|e| {
        RegistryError::Storage(format!("opening registry file {}: {e}", path.display()))
    })
}

fn load(db: &Database) -> Result<State, RegistryError> {
    let txn = db.begin_read().map_err(RegistryError::storage)?;
    let table = txn.open_table(RECORDS).map_err(RegistryError::storage)?;
    let mut state = State::default();
    for entry in table.iter().map_err(RegistryError::storage)? {
        let (k, v) = entry.map_err(RegistryError::storage)?;
        let (kind, _key) = k.value();
        let v = v.value();
        let op = match kind {
            THING => Op::PutThing(decode(kind, v)?),
            CERT => Op::PutCert(decode(kind, v)?),
            CA => Op::PutCa(decode(kind, v)?),
            POLICY => Op::PutPolicy(decode(kind, v)?),
            GROUP => Op::PutGroup(decode(kind, v)?),
            THING_PRINCIPAL | POLICY_TARGET | GROUP_THING => {
                let link = match kind {
                    THING_PRINCIPAL => Link::ThingPrincipal,
                    POLICY_TARGET => Link::PolicyTarget,
                    _ => Link::GroupThing,
                };
                let (a, b): (String, String) = decode(kind, v)?;
                Op::Link(link, a, b)
            }
            LOGGING => Op::PutLogging(decode(kind, v)?),
            LOG_LEVEL => {
                let (target, level) = decode(kind, v)?;
                Op::PutLogLevel(target, level)
            }
            // A newer wardmq may have written kinds we do not know; keep
            // them on disk untouched rather than refusing to start.
            other => {
                tracing::warn!(kind = other, "skipping unknown registry record kind");
                continue;
            }
        };
        state.apply(op);
    }
    Ok(state)
}

/// (kind, key, value to store or `None` to delete).
type Record = (u8, Vec<u8>, Option<Vec<u8>>);

/// The [`Record`] for one op. Link and
/// log-level records carry their full key in the value as well, so
/// loading never has to parse keys.
fn record(op: &Op) -> Result<Record, RegistryError> {
    Ok(match op {
        Op::PutThing(t) => (THING, t.name.as_bytes().to_vec(), Some(encode(t)?)),
        Op::DeleteThing(n) => (THING, n.as_bytes().to_vec(), None),
        Op::PutCert(c) => (CERT, c.id.as_bytes().to_vec(), Some(encode(c)?)),
        Op::DeleteCert(id) => (CERT, id.as_bytes().to_vec(), None),
        Op::PutCa(c) => (CA, c.id.as_bytes().to_vec(), Some(encode(c)?)),
        Op::DeleteCa(id) => (CA, id.as_bytes().to_vec(), None),
        Op::PutPolicy(p) => (POLICY, p.name.as_bytes().to_vec(), Some(encode(p)?)),
        Op::DeletePolicy(n) => (POLICY, n.as_bytes().to_vec(), None),
        Op::PutGroup(g) => (GROUP, g.name.as_bytes().to_vec(), Some(encode(g)?)),
        Op::DeleteGroup(n) => (GROUP, n.as_bytes().to_vec(), None),
        Op::Link(kind, a, b) => {
            let pair = encode(&(a, b))?;
            (link_kind(*kind), pair.clone(), Some(pair))
        }
        Op::Unlink(kind, a, b) => (link_kind(*kind), encode(&(a, b))?, None),
        Op::PutLogging(o) => (LOGGING, LOGGING_KEY.to_vec(), Some(encode(o)?)),
        Op::PutLogLevel(t, l) => (LOG_LEVEL, encode(t)?, Some(encode(&(t, l))?)),
        Op::DeleteLogLevel(t) => (LOG_LEVEL, encode(t)?, None),
    })
}

/// Writes all ops in one transaction and commits durably.
pub(crate) fn commit(db: &Database, ops: &[Op]) -> Result<(), RegistryError> {
    let records = ops.iter().map(record).collect::<Result<Vec<_>, _>>()?;
    let txn = db.begin_write().map_err(RegistryError::storage)?;
    {
        let mut table = txn.open_table(RECORDS).map_err(RegistryError::storage)?;
        for (kind, key, value) in &records {
            match value {
                Some(v) => {
                    table
                        .insert((*kind, key.as_slice()), v.as_slice())
                        .map_err(RegistryError::storage)?;
                }
                None => {
                    table
                        .remove((*kind, key.as_slice()))
                        .map_err(RegistryError::storage)?;
                }
            }
        }
    }
    txn.commit().map_err(RegistryError::storage)
}
