use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::Database;
use tokio::sync::{mpsc, oneshot, watch};

use super::tables::{self, storage};
use super::{Op, Recovered, StoreError};

/// Most batches folded into one write transaction, so one huge backlog
/// cannot delay every waiter in it behind a single very long commit.
const MAX_GROUP: usize = 4096;

/// After a failed write, how long batches are refused at once before the
/// writer tries the file again: a full disk is not freed in microseconds,
/// and each try may cost a repair of the file.
const REOPEN_BACKOFF: Duration = Duration::from_millis(500);

type Reply = oneshot::Sender<Result<(), StoreError>>;

enum Msg {
    Batch(Vec<Op>, Reply),
    /// Stop accepting batches; commit what is queued, then exit.
    Close,
}

/// Handle to the store; cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    tx: mpsc::Sender<Msg>,
    health: Arc<Health>,
    /// Turns `true` once the writer has released the database file.
    done: watch::Receiver<bool>,
}

/// What the writer reports about itself, read by metrics.
#[derive(Default)]
struct Health {
    commits: AtomicU64,
    /// Batches answered with an error (not durable).
    failures: AtomicU64,
    /// The last write failed and none has succeeded since.
    degraded: AtomicBool,
}

/// Completes when the batch it was returned for is durable.
pub struct Commit {
    rx: oneshot::Receiver<Result<(), StoreError>>,
}

impl Store {
    /// Opens (or creates) the redb file at `path`, reads back everything
    /// durable, and starts the group-commit writer thread. `queue_depth`
    /// bounds the batches waiting for the writer.
    ///
    /// Records that fail to decode are logged and left out of the
    /// [`Recovered`] state (but stay in the file); a file that cannot be
    /// opened is an error. Blocks on file I/O while it reads everything, so
    /// call it before serving or from `spawn_blocking`.
    pub fn open(path: &Path, queue_depth: usize) -> Result<(Store, Recovered), StoreError> {
        let db = Database::create(path).map_err(storage)?;
        tables::create_tables(&db)?;
        let recovered = tables::recover(&db)?;

        // tokio's channel panics on a zero capacity.
        let (tx, rx) = mpsc::channel(queue_depth.max(1));
        let health = Arc::new(Health::default());
        let (done_tx, done) = watch::channel(false);
        let mut writer = Writer {
            path: path.to_path_buf(),
            db: Some(db),
            health: Arc::clone(&health),
            next_reopen: Instant::now(),
        };
        std::thread::Builder::new()
            .name("wardmq-store".into())
            .spawn(move || {
                writer.run(rx);
                // Release the file lock before anyone waiting in `close`
                // is told the store is shut.
                drop(writer);
                let _ = done_tx.send(true);
            })
            .map_err(storage)?;

        let store = Store {
            shared: Arc::new(Shared { tx, health, done }),
        };
        Ok((store, recovered))
    }

    /// Queues a batch; waits only if the writer's queue is full.
    pub async fn submit(&self, ops: Vec<Op>) -> Result<Commit, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .tx
            .send(Msg::Batch(ops, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(Commit { rx })
    }

    /// Write transactions committed so far (each may hold many batches);
    /// for metrics, and to observe group commit in tests.
    pub fn commits(&self) -> u64 {
        self.shared.health.commits.load(Ordering::Relaxed)
    }

    /// Batches that could not be made durable and were answered with an
    /// error, since open.
    pub fn write_failures(&self) -> u64 {
        self.shared.health.failures.load(Ordering::Relaxed)
    }

    /// Whether the last write failed (a full disk, an I/O error) and none
    /// has succeeded since: durable writes are being refused.
    pub fn degraded(&self) -> bool {
        self.shared.health.degraded.load(Ordering::Relaxed)
    }

    /// Shuts the store down cleanly: every batch already submitted (from
    /// any clone) is committed and its [`Commit`] completed, later
    /// `submit`s on other clones fail with [`StoreError::Closed`], and this
    /// returns once the writer thread has released the database file, so
    /// the same path can be opened again right away.
    ///
    /// Simply dropping every clone also commits what is queued, but does
    /// not wait for it.
    pub async fn close(self) {
        // An error means the writer is already stopping; wait all the same.
        let _ = self.shared.tx.send(Msg::Close).await;
        let mut done = self.shared.done.clone();
        drop(self);
        // `Err` means the writer thread ended without reporting (it
        // panicked); the file is released either way.
        let _ = done.wait_for(|done| *done).await;
    }
}

impl Commit {
    /// Waits until the batch is durable.
    pub async fn wait(self) -> Result<(), StoreError> {
        self.rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// The writer thread's state. redb refuses every operation after an I/O
/// error until the database is reopened, so a failed write drops the
/// handle and a later batch opens the file again: that is how the store
/// comes back on its own once space returns.
struct Writer {
    path: PathBuf,
    /// `None` after a failed write, until a reopen succeeds.
    db: Option<Database>,
    health: Arc<Health>,
    /// No reopen is tried before this.
    next_reopen: Instant,
}

impl Writer {
    /// Block for one batch, take whatever else is already waiting, and
    /// make the whole group durable with a single fsync.
    fn run(&mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut group: Vec<(Vec<Op>, Reply)> = Vec::new();
        // Ends when the channel is closed (by `close` or by the last `Store`
        // clone dropping) and drained.
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Batch(ops, reply) => group.push((ops, reply)),
                    // Refuse new batches, but keep draining those already
                    // queued so each gets an answer.
                    Msg::Close => rx.close(),
                }
                if group.len() < MAX_GROUP {
                    next = rx.try_recv().ok();
                }
            }
            if group.is_empty() {
                continue;
            }
            self.commit_group(&mut group);
        }
    }

    fn commit_group(&mut self, group: &mut Vec<(Vec<Op>, Reply)>) {
        // The group shares one fate: redb only fails a write for storage
        // reasons (I/O, a full disk), which a retry of each batch alone
        // would hit again.
        let result = self.write(group.iter().map(|(ops, _)| ops.as_slice()));
        let h = &self.health;
        match &result {
            Ok(()) => {
                h.commits.fetch_add(1, Ordering::Relaxed);
                if h.degraded.swap(false, Ordering::Relaxed) {
                    tracing::warn!("store writable again; durable writes accepted");
                }
            }
            Err(e) => {
                h.failures.fetch_add(group.len() as u64, Ordering::Relaxed);
                // One ERROR per outage: under load every group fails.
                if h.degraded.swap(true, Ordering::Relaxed) {
                    tracing::debug!(error = %e, batches = group.len(), "store write refused");
                } else {
                    tracing::error!(error = %e, batches = group.len(), "store write failed; refusing durable writes until the store is writable again");
                }
            }
        }
        for (_, reply) in group.drain(..) {
            // The submitter may have stopped waiting; nothing to do then.
            let _ = reply.send(result.clone());
        }
    }

    /// Applies batches in order in one write transaction and commits it with
    /// the default (immediate, fsync) durability. Any failure aborts the
    /// whole transaction, leaving none of its batches applied, and drops
    /// the database handle so a later write starts from a fresh one.
    fn write<'a>(&mut self, batches: impl Iterator<Item = &'a [Op]>) -> Result<(), StoreError> {
        let result = write(self.open()?, batches);
        if result.is_err() {
            self.db = None;
            self.next_reopen = Instant::now() + REOPEN_BACKOFF;
        }
        result
    }

    /// The open database, reopening it if a write failed (at most once per
    /// [`REOPEN_BACKOFF`]). Opening repairs a file a failed commit left
    /// dirty.
    fn open(&mut self) -> Result<&Database, StoreError> {
        if self.db.is_none() {
            let now = Instant::now();
            if now < self.next_reopen {
                return Err(StoreError::Unavailable);
            }
            self.next_reopen = now + REOPEN_BACKOFF;
            self.db = Some(Database::create(&self.path).map_err(storage)?);
        }
        self.db.as_ref().ok_or(StoreError::Unavailable)
    }
}

/// One write transaction over `batches`; dropping it on error aborts it.
fn write<'a>(db: &Database, batches: impl Iterator<Item = &'a [Op]>) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(storage)?;
    for ops in batches {
        tables::apply(&txn, ops)?;
    }
    txn.commit().map_err(storage)
}
