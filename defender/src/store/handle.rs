//! The one open `defender.redb` that every defender store shares, reopened
//! by itself after a storage error.
//!
//! redb refuses every operation after an I/O error (a full disk: ENOSPC,
//! EFBIG) until the database is reopened. So a transaction that fails to
//! begin or to commit drops the shared handle, and the next operation
//! opens the file again (redb repairs what the failed commit left), at
//! most once per [`REOPEN_BACKOFF`]; in between, operations fail at once.
//! The broker's session store and registry recover the same way
//! (ARCHITECTURE.md "Store: a full disk").

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::error::{storage, StoreError};
use super::tables;

/// After a failure, how long operations are refused at once before the
/// file is tried again: a full disk is not freed in microseconds, and each
/// try may cost a repair of the file.
const REOPEN_BACKOFF: Duration = Duration::from_millis(500);

/// redb's page cache. Its default (1 GiB) would let a large fleet's
/// datapoints take a gigabyte of memory in a week; the writes are append-like
/// and the reads (ListMetricValues) short ranges, so a small cache suffices.
const CACHE_BYTES: usize = 64 << 20;

/// Cheap to clone; clones share one open file.
#[derive(Clone)]
pub(crate) struct DbHandle {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    slot: RwLock<Slot>,
    /// From a failed operation to the next successful commit, so the
    /// outage is logged once (ERROR) and its end once (WARN).
    degraded: AtomicBool,
    /// Operations refused by a storage error, for /metrics.
    failures: AtomicU64,
}

/// The store's health for /metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// Operations refused by a storage error since start.
    pub failures: u64,
    /// From a failed operation to the next successful commit.
    pub degraded: bool,
}

struct Slot {
    /// `None` after a failure, until a reopen succeeds.
    db: Option<Arc<Database>>,
    /// No reopen is tried before this.
    next_reopen: Instant,
}

impl DbHandle {
    /// Opens (or creates) the database at `path`, with every table.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let db = open_file(path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                slot: RwLock::new(Slot {
                    db: Some(Arc::new(db)),
                    next_reopen: Instant::now(),
                }),
                degraded: AtomicBool::new(false),
                failures: AtomicU64::new(0),
            }),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn health(&self) -> StoreHealth {
        StoreHealth {
            failures: self.inner.failures.load(Ordering::Relaxed),
            degraded: self.inner.degraded.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        let db = self.db()?;
        db.begin_read().map_err(|e| self.failed(&db, e))
    }

    pub(crate) fn begin_write(&self) -> Result<Write<'_>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_write().map_err(|e| self.failed(&db, e))?;
        Ok(Write {
            txn,
            db,
            handle: self,
        })
    }

    /// The open database, reopening the file if an operation failed (at
    /// most once per [`REOPEN_BACKOFF`]).
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        // A lock is only poisoned by a panic while it was held; the slot is
        // consistent at every point, so its value is still good.
        if let Some(db) = &self
            .inner
            .slot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .db
        {
            return Ok(Arc::clone(db));
        }
        let mut slot = self
            .inner
            .slot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Another caller may have reopened it while this one waited.
        if let Some(db) = &slot.db {
            return Ok(Arc::clone(db));
        }
        let now = Instant::now();
        if now < slot.next_reopen {
            return Err(StoreError::Storage(
                "defender store unavailable after a failed write; reopening shortly".into(),
            ));
        }
        slot.next_reopen = now + REOPEN_BACKOFF;
        let db = Arc::new(open_file(&self.inner.path)?);
        slot.db = Some(Arc::clone(&db));
        Ok(db)
    }

    /// Drops `db` (if it is still the open one) so that the next operation
    /// reopens the file, and logs the first failure of an outage.
    fn failed(&self, db: &Arc<Database>, e: impl std::fmt::Display) -> StoreError {
        {
            let mut slot = self
                .inner
                .slot
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // A failure on a handle already replaced says nothing about
            // the new one.
            if slot.db.as_ref().is_some_and(|open| Arc::ptr_eq(open, db)) {
                slot.db = None;
                slot.next_reopen = Instant::now() + REOPEN_BACKOFF;
            }
        }
        self.inner.failures.fetch_add(1, Ordering::Relaxed);
        // One ERROR per outage: every period's writes fail while it lasts.
        if self.inner.degraded.swap(true, Ordering::Relaxed) {
            tracing::debug!(error = %e, "defender store operation refused");
        } else {
            tracing::error!(error = %e, "defender store write failed; refusing defender writes until the store is writable again");
        }
        storage(e)
    }

    fn committed(&self) {
        if self.inner.degraded.swap(false, Ordering::Relaxed) {
            tracing::warn!("defender store writable again");
        }
    }
}

/// A write transaction whose commit tells the handle how it went. Derefs
/// to redb's transaction for opening tables.
pub(crate) struct Write<'a> {
    txn: WriteTransaction,
    /// The database it was begun on, so a failure drops that one only.
    db: Arc<Database>,
    handle: &'a DbHandle,
}

impl Write<'_> {
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        match self.txn.commit() {
            Ok(()) => {
                self.handle.committed();
                Ok(())
            }
            Err(e) => Err(self.handle.failed(&self.db, e)),
        }
    }
}

impl Deref for Write<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        &self.txn
    }
}

/// The file with its page cache and every table, so read transactions can
/// open them all unconditionally. Opening repairs a file a failed commit
/// left dirty.
fn open_file(path: &Path) -> Result<Database, StoreError> {
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(storage)?;
    tables::create_all(&db)?;
    Ok(db)
}
