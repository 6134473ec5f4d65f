//! The defender's durable stores, in one redb file (`defender.redb` in the
//! data directory):
//!
//! - [`MetricStore`]: every retained metric datapoint, for ListMetricValues
//!   and for baselines;
//! - [`ViolationStore`]: the alarm book snapshot (so alarms survive a
//!   restart) and the violation event history, for ListViolationEvents and
//!   PutVerificationStateOnViolation;
//! - the Detect configuration of [`crate::catalog`] (security profiles,
//!   dimensions, custom metrics, attachments);
//! - the audit's records of [`crate::audit`] (configuration, scheduled
//!   audits, suppressions, tasks, findings).
//!
//! The API is synchronous and every call that writes is one redb
//! transaction, committed durably before it returns: async callers use
//! `spawn_blocking`. Reads never block writes (redb MVCC).
//!
//! Recovery: redb repairs an interrupted file itself at open; a record
//! that does not decode (a damaged value, a future version) is logged and
//! skipped rather than failing the list or the start.

mod active;
mod audit_store;
mod catalog_store;
mod codec;
mod error;
mod filter;
mod keys;
mod metric_store;
mod mitigation_store;
mod page;
mod tables;
mod violation_store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redb::Database;

pub use active::list_active;
pub use error::StoreError;
pub use filter::ViolationFilter;
pub use keys::SeriesKey;
pub use metric_store::{MetricDatum, MetricStore};
pub use page::{Page, MAX_RESULTS};
pub use violation_store::ViolationStore;

pub(crate) use audit_store::{
    AuditStore, AuditWrite, FindingFilter, FindingScope, StoredSuppression, AUDIT_DEFAULT_PAGE,
};
pub(crate) use catalog_store::{CatalogStore, CatalogWrite};
pub(crate) use mitigation_store::{MitigationStore, MitigationTable};
pub(crate) use page::{page_sorted, Fingerprint, TokenKind};

use error::storage;

/// The file name inside the data directory.
pub const FILE_NAME: &str = "defender.redb";

/// Metric datapoints kept by default. AWS does not document its retention;
/// third-party clients query at most 14 days back, and ML baselines train
/// on the trailing 14 days (spec §7.6, §8).
pub const DEFAULT_METRIC_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);
/// Violation history kept by default: "up to 14 days" (spec §10).
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// The oldest timestamp to keep when `retention` is kept at `now`: the
/// cutoff to pass to the `expire` calls.
pub fn retention_cutoff(
    now: crate::detect::model::Timestamp,
    retention: Duration,
) -> crate::detect::model::Timestamp {
    let ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    crate::detect::model::Timestamp::from_millis(now.as_millis().saturating_sub(ms))
}

/// redb's page cache. Its default (1 GiB) would let a large fleet's
/// datapoints take a gigabyte of memory in a week; the writes are append-like
/// and the reads (ListMetricValues) short ranges, so a small cache suffices.
const CACHE_BYTES: usize = 64 << 20;

/// The open database. Cheap to clone; both stores share it.
#[derive(Clone)]
pub struct DefenderDb {
    db: Arc<Database>,
    path: PathBuf,
}

impl DefenderDb {
    /// Opens (or creates) `defender.redb` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(&data_dir.join(FILE_NAME))
    }

    /// Opens (or creates) the database at exactly `path`.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(storage)?;
        tables::create_all(&db)?;
        Ok(Self {
            db: Arc::new(db),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metrics(&self) -> MetricStore {
        MetricStore::new(Arc::clone(&self.db))
    }

    pub fn violations(&self) -> ViolationStore {
        ViolationStore::new(Arc::clone(&self.db))
    }

    /// For [`crate::audit::Audit::open`], which owns the records.
    pub(crate) fn audit(&self) -> AuditStore {
        AuditStore::new(Arc::clone(&self.db))
    }

    /// For [`crate::mitigation::Mitigation::open`], which owns the records.
    pub(crate) fn mitigation(&self) -> MitigationStore {
        MitigationStore::new(Arc::clone(&self.db))
    }

    /// For [`crate::catalog::Catalog::open`], which owns the records.
    pub(crate) fn catalog(&self) -> CatalogStore {
        CatalogStore::new(Arc::clone(&self.db))
    }
}

#[cfg(test)]
mod metric_tests;
#[cfg(test)]
mod violation_tests;
