//! The Detect configuration's records, for [`crate::catalog`]: security
//! profiles, dimensions and custom metrics by name, and the profile ->
//! target attachments. The catalog keeps all of it in memory and comes
//! here only to load it at open and to commit a change: each change is one
//! durable transaction that also bumps a generation counter.
//!
//! Records are a version byte and JSON (the types' own serde forms, as for
//! the alarm book): a handful of small records, written by hand.

use std::sync::Arc;

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{storage, StoreError};
use super::handle::DbHandle;
use super::tables::{
    CATALOG_ATTACHMENTS, CATALOG_CUSTOM_METRICS, CATALOG_DIMENSIONS, CATALOG_GENERATION,
    CATALOG_PROFILES, COUNTERS,
};
use crate::catalog::{CustomMetric, Dimension, Target};
use crate::detect::model::SecurityProfile;

const RECORD_V1: u8 = 1;

/// One change to the configuration.
#[derive(Clone, Debug)]
pub(crate) enum CatalogWrite {
    PutProfile(Arc<SecurityProfile>),
    DeleteProfile(String),
    PutDimension(Arc<Dimension>),
    DeleteDimension(String),
    PutCustomMetric(Arc<CustomMetric>),
    DeleteCustomMetric(String),
    Attach { profile: String, target: Target },
    Detach { profile: String, target: Target },
}

/// Everything stored, as [`CatalogStore::load`] finds it.
#[derive(Debug, Default)]
pub(crate) struct CatalogContents {
    pub(crate) profiles: Vec<SecurityProfile>,
    pub(crate) dimensions: Vec<Dimension>,
    pub(crate) custom_metrics: Vec<CustomMetric>,
    pub(crate) attachments: Vec<(String, Target)>,
    pub(crate) generation: u64,
}

#[derive(Clone)]
pub(crate) struct CatalogStore {
    db: DbHandle,
}

impl CatalogStore {
    pub(crate) fn new(db: DbHandle) -> Self {
        Self { db }
    }

    /// Reads every record. One that does not decode is logged and skipped
    /// (as elsewhere in this store): the broker starts without that item
    /// rather than not at all.
    pub(crate) fn load(&self) -> Result<CatalogContents, StoreError> {
        let txn = self.db.begin_read()?;
        let mut out = CatalogContents {
            profiles: load_records(&txn, CATALOG_PROFILES)?,
            dimensions: load_records(&txn, CATALOG_DIMENSIONS)?,
            custom_metrics: load_records(&txn, CATALOG_CUSTOM_METRICS)?,
            ..CatalogContents::default()
        };
        let table = txn.open_table(CATALOG_ATTACHMENTS).map_err(storage)?;
        for row in table.iter().map_err(storage)? {
            let (key, _) = row.map_err(storage)?;
            match decode_attachment(key.value()) {
                Some(a) => out.attachments.push(a),
                None => tracing::error!("stored attachment key does not decode; skipped"),
            }
        }
        let counters = txn.open_table(COUNTERS).map_err(storage)?;
        out.generation = counters
            .get(CATALOG_GENERATION)
            .map_err(storage)?
            .map_or(0, |g| g.value());
        Ok(out)
    }

    /// Applies `writes` in one durable transaction; returns the new
    /// generation.
    pub(crate) fn commit(&self, writes: &[CatalogWrite]) -> Result<u64, StoreError> {
        let txn = self.db.begin_write()?;
        for w in writes {
            apply(&txn, w)?;
        }
        let generation = {
            let mut counters = txn.open_table(COUNTERS).map_err(storage)?;
            let next = counters
                .get(CATALOG_GENERATION)
                .map_err(storage)?
                .map_or(0, |g| g.value())
                + 1;
            counters.insert(CATALOG_GENERATION, next).map_err(storage)?;
            next
        };
        txn.commit()?;
        Ok(generation)
    }
}

fn apply(txn: &WriteTransaction, w: &CatalogWrite) -> Result<(), StoreError> {
    match w {
        CatalogWrite::PutProfile(p) => put(txn, CATALOG_PROFILES, &p.security_profile_name, &**p),
        CatalogWrite::DeleteProfile(name) => remove(txn, CATALOG_PROFILES, name),
        CatalogWrite::PutDimension(d) => put(txn, CATALOG_DIMENSIONS, &d.name, &**d),
        CatalogWrite::DeleteDimension(name) => remove(txn, CATALOG_DIMENSIONS, name),
        CatalogWrite::PutCustomMetric(m) => put(txn, CATALOG_CUSTOM_METRICS, &m.metric_name, &**m),
        CatalogWrite::DeleteCustomMetric(name) => remove(txn, CATALOG_CUSTOM_METRICS, name),
        CatalogWrite::Attach { profile, target } => {
            let mut t = txn.open_table(CATALOG_ATTACHMENTS).map_err(storage)?;
            t.insert(attachment_key(profile, target).as_slice(), ())
                .map_err(storage)?;
            Ok(())
        }
        CatalogWrite::Detach { profile, target } => {
            let mut t = txn.open_table(CATALOG_ATTACHMENTS).map_err(storage)?;
            t.remove(attachment_key(profile, target).as_slice())
                .map_err(storage)?;
            Ok(())
        }
    }
}

fn put<T: Serialize>(
    txn: &WriteTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    name: &str,
    record: &T,
) -> Result<(), StoreError> {
    let mut bytes = vec![RECORD_V1];
    serde_json::to_writer(&mut bytes, record).map_err(storage)?;
    let mut t = txn.open_table(table).map_err(storage)?;
    t.insert(name.as_bytes(), bytes.as_slice())
        .map_err(storage)?;
    Ok(())
}

fn remove(
    txn: &WriteTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    name: &str,
) -> Result<(), StoreError> {
    let mut t = txn.open_table(table).map_err(storage)?;
    t.remove(name.as_bytes()).map_err(storage)?;
    Ok(())
}

fn load_records<T: DeserializeOwned>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<&[u8], &[u8]>,
) -> Result<Vec<T>, StoreError> {
    let t = txn.open_table(table).map_err(storage)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(storage)? {
        let (key, value) = row.map_err(storage)?;
        let decoded = match value.value().split_first() {
            Some((&RECORD_V1, json)) => serde_json::from_slice(json).map_err(|e| e.to_string()),
            _ => Err("unknown record version".to_owned()),
        };
        match decoded {
            Ok(record) => out.push(record),
            Err(error) => tracing::error!(
                table = table.name(),
                key = %String::from_utf8_lossy(key.value()),
                %error,
                "stored catalog record does not decode; skipped"
            ),
        }
    }
    Ok(out)
}

/// Profile name, a 0 byte (names cannot hold one), the target's resource.
fn attachment_key(profile: &str, target: &Target) -> Vec<u8> {
    let mut key = Vec::with_capacity(profile.len() + 32);
    key.extend_from_slice(profile.as_bytes());
    key.push(0);
    key.extend_from_slice(target.resource().as_bytes());
    key
}

fn decode_attachment(key: &[u8]) -> Option<(String, Target)> {
    let at = key.iter().position(|&b| b == 0)?;
    let profile = std::str::from_utf8(&key[..at]).ok()?;
    let target = Target::from_resource(std::str::from_utf8(&key[at + 1..]).ok()?)?;
    Some((profile.to_owned(), target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_keys_round_trip() {
        let t = Target::ThingGroup("g".into());
        assert_eq!(
            decode_attachment(&attachment_key("sp", &t)),
            Some(("sp".to_owned(), t))
        );
        assert_eq!(decode_attachment(b"no-separator"), None);
        assert_eq!(decode_attachment(b"sp\0all/nothing"), None);
    }

    #[test]
    fn a_damaged_record_is_skipped_and_the_rest_loads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = super::super::DefenderDb::open(dir.path()).expect("opens");
        let store = db.catalog();
        let profile = SecurityProfile {
            security_profile_name: "good".into(),
            ..SecurityProfile::default()
        };
        let generation = store
            .commit(&[
                CatalogWrite::PutProfile(Arc::new(profile.clone())),
                CatalogWrite::Attach {
                    profile: "good".into(),
                    target: Target::AllThings,
                },
            ])
            .expect("commits");
        assert_eq!(generation, 1);
        let txn = db.db.begin_write().expect("txn");
        {
            let mut t = txn.open_table(CATALOG_PROFILES).expect("table");
            t.insert(b"bad".as_slice(), b"\x01{not json".as_slice())
                .expect("insert");
            let mut a = txn.open_table(CATALOG_ATTACHMENTS).expect("table");
            a.insert(b"junk".as_slice(), ()).expect("insert");
        }
        txn.commit().expect("commit");
        let loaded = store.load().expect("loads");
        assert_eq!(loaded.profiles, vec![profile]);
        assert_eq!(
            loaded.attachments,
            vec![("good".to_owned(), Target::AllThings)]
        );
        assert_eq!(loaded.generation, 1);
    }
}
