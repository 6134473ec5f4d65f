use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::Database;
use tokio::sync::{mpsc, oneshot, watch};

use super::tables::{self, storage};
use super::{Op, Recovered, StoreError};

/// Most batches folded into one write transaction, so one huge backlog
/// cannot delay every waiter in it behind a single very long commit.
const MAX_GROUP: usize = 4096;

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
    commits: Arc<AtomicU64>,
    /// Turns `true` once the writer has released the database file.
    done: watch::Receiver<bool>,
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
        let commits = Arc::new(AtomicU64::new(0));
        let (done_tx, done) = watch::channel(false);
        let counter = Arc::clone(&commits);
        std::thread::Builder::new()
            .name("wardmq-store".into())
            .spawn(move || {
                run(&db, rx, &counter);
                // Release the file lock before anyone waiting in `close`
                // is told the store is shut.
                drop(db);
                let _ = done_tx.send(true);
            })
            .map_err(storage)?;

        let store = Store {
            shared: Arc::new(Shared { tx, commits, done }),
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
        self.shared.commits.load(Ordering::Relaxed)
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

/// The writer loop: block for one batch, take whatever else is already
/// waiting, and make the whole group durable with a single fsync.
fn run(db: &Database, mut rx: mpsc::Receiver<Msg>, commits: &AtomicU64) {
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
        commit_group(db, &mut group, commits);
    }
}

fn commit_group(db: &Database, group: &mut Vec<(Vec<Op>, Reply)>, commits: &AtomicU64) {
    // The group shares one fate: redb only fails a write for storage
    // reasons (I/O, a full disk), which a retry of each batch alone would
    // hit again.
    let result = write(db, group.iter().map(|(ops, _)| ops.as_slice()));
    match &result {
        Ok(()) => _ = commits.fetch_add(1, Ordering::Relaxed),
        Err(e) => tracing::error!(error = %e, batches = group.len(), "store write failed"),
    }
    for (_, reply) in group.drain(..) {
        let answer = match &result {
            Ok(()) => Ok(()),
            Err(StoreError::Storage(e)) => Err(StoreError::Storage(e.clone())),
            Err(StoreError::Corrupt(e)) => Err(StoreError::Corrupt(e.clone())),
            Err(StoreError::Closed) => Err(StoreError::Closed),
        };
        // The submitter may have stopped waiting; nothing to do then.
        let _ = reply.send(answer);
    }
}

/// Applies batches in order in one write transaction and commits it with
/// the default (immediate, fsync) durability. Any failure aborts the whole
/// transaction, leaving none of its batches applied.
fn write<'a>(db: &Database, batches: impl Iterator<Item = &'a [Op]>) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(storage)?;
    for ops in batches {
        // Dropping `txn` on error aborts it.
        tables::apply(&txn, ops)?;
    }
    txn.commit().map_err(storage)
}
