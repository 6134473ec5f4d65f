use std::path::Path;

use super::{Op, Recovered, StoreError};

/// Handle to the store; cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Store {}

/// Completes when the batch it was returned for is durable.
pub struct Commit {}

impl Store {
    /// Opens (or creates) the redb file at `path`, reads back everything
    /// durable, and starts the group-commit writer thread. `queue_depth`
    /// bounds the batches waiting for the writer.
    pub fn open(path: &Path, queue_depth: usize) -> Result<(Store, Recovered), StoreError> {
        let _ = (path, queue_depth);
        todo!("store agent")
    }

    /// Queues a batch; waits only if the writer's queue is full.
    pub async fn submit(&self, ops: Vec<Op>) -> Result<Commit, StoreError> {
        let _ = ops;
        todo!("store agent")
    }
}

impl Commit {
    /// Waits until the batch is durable.
    pub async fn wait(self) -> Result<(), StoreError> {
        todo!("store agent")
    }
}
