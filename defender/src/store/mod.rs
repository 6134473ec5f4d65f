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
//! Recovery: redb repairs an interrupted file itself at open, and the
//! shared handle reopens the file after a storage error (a full disk), so
//! no restart is needed once space returns; a record
//! that does not decode (a damaged value, a future version) is logged and
//! skipped rather than failing the list or the start.

mod active;
mod audit_store;
mod catalog_store;
mod codec;
mod error;
mod filter;
mod handle;
mod keys;
mod metric_store;
mod mitigation_store;
mod page;
mod tables;
mod violation_store;

use std::path::Path;
use std::time::Duration;

pub use active::list_active;
pub use error::StoreError;
pub use filter::ViolationFilter;
pub use handle::StoreHealth;
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

use handle::DbHandle;

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

/// The open database. Cheap to clone; every store shares its one handle,
/// which reopens the file after a storage error (`handle.rs`).
#[derive(Clone)]
pub struct DefenderDb {
    db: DbHandle,
}

impl DefenderDb {
    /// Opens (or creates) `defender.redb` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(&data_dir.join(FILE_NAME))
    }

    /// Opens (or creates) the database at exactly `path`.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            db: DbHandle::open(path)?,
        })
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Refused operations and whether the file is unusable right now.
    pub fn health(&self) -> StoreHealth {
        self.db.health()
    }

    pub fn metrics(&self) -> MetricStore {
        MetricStore::new(self.db.clone())
    }

    pub fn violations(&self) -> ViolationStore {
        ViolationStore::new(self.db.clone())
    }

    /// For [`crate::audit::Audit::open`], which owns the records.
    pub(crate) fn audit(&self) -> AuditStore {
        AuditStore::new(self.db.clone())
    }

    /// For [`crate::mitigation::Mitigation::open`], which owns the records.
    pub(crate) fn mitigation(&self) -> MitigationStore {
        MitigationStore::new(self.db.clone())
    }

    /// For [`crate::catalog::Catalog::open`], which owns the records.
    pub(crate) fn catalog(&self) -> CatalogStore {
        CatalogStore::new(self.db.clone())
    }
}

#[cfg(test)]
mod metric_tests;
#[cfg(test)]
mod violation_tests;
