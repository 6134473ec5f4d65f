//! The mitigation records, for [`crate::mitigation`]: actions, audit and
//! Detect mitigation tasks with their executions, and resource tags. All
//! are small and few (a task's executions are one record), loaded whole at
//! open and rewritten whole on change. Records are a version byte and
//! JSON, as in the catalog and the audit.

use redb::{ReadableTable, TableDefinition, TableHandle};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{storage, StoreError};
use super::handle::DbHandle;
use super::tables::{
    MITIGATION_ACTIONS, MITIGATION_AUDIT_TASKS, MITIGATION_DETECT_TASKS, MITIGATION_TAGS,
};

const RECORD_V1: u8 = 1;

/// Which table a record lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MitigationTable {
    /// Action name -> `MitigationAction`.
    Actions,
    /// Task id -> (task, executions).
    AuditTasks,
    /// Task id -> (task, executions).
    DetectTasks,
    /// Resource ARN -> tags.
    Tags,
}

impl MitigationTable {
    fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        match self {
            Self::Actions => MITIGATION_ACTIONS,
            Self::AuditTasks => MITIGATION_AUDIT_TASKS,
            Self::DetectTasks => MITIGATION_DETECT_TASKS,
            Self::Tags => MITIGATION_TAGS,
        }
    }
}

#[derive(Clone)]
pub(crate) struct MitigationStore {
    db: DbHandle,
}

impl MitigationStore {
    pub(crate) fn new(db: DbHandle) -> Self {
        Self { db }
    }

    /// Every record of `table`; ones that do not decode are logged and
    /// skipped.
    pub(crate) fn load<T: DeserializeOwned>(
        &self,
        table: MitigationTable,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table.def()).map_err(storage)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(storage)? {
            let (key, value) = row.map_err(storage)?;
            let key = String::from_utf8_lossy(key.value()).into_owned();
            match decode(value.value()) {
                Ok(record) => out.push((key, record)),
                Err(error) => tracing::error!(
                    table = table.def().name(),
                    %key,
                    %error,
                    "stored mitigation record does not decode; skipped"
                ),
            }
        }
        Ok(out)
    }

    /// Writes (`Some`) or deletes (`None`) one record, durably.
    pub(crate) fn put<T: Serialize>(
        &self,
        table: MitigationTable,
        key: &str,
        record: Option<&T>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(table.def()).map_err(storage)?;
            match record {
                Some(r) => {
                    let mut bytes = vec![RECORD_V1];
                    serde_json::to_writer(&mut bytes, r).map_err(storage)?;
                    t.insert(key.as_bytes(), bytes.as_slice())
                        .map_err(storage)?;
                }
                None => {
                    t.remove(key.as_bytes()).map_err(storage)?;
                }
            }
        }
        txn.commit()
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&RECORD_V1, json)) => serde_json::from_slice(json).map_err(|e| e.to_string()),
        _ => Err("unknown record version".to_owned()),
    }
}
