//! The audit's records, for [`crate::audit`]: the account audit
//! configuration, scheduled audits, suppressions and tasks (a handful of
//! small records, all kept in memory and loaded at open) and the findings
//! (possibly many, read from here).
//!
//! Findings are keyed by (task id, 0, sequence number), so one task's
//! findings are one range scan; a second table indexes them by (finding
//! time, task id, 0, sequence) for the time-range form of
//! ListAuditFindings and for retention; a third maps finding ids to keys.
//! Records are a version byte and JSON, as in the catalog.

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{storage, StoreError};
use super::handle::DbHandle;
use super::page::{decode_token, encode_token, page_size, Fingerprint, TokenKind};
use super::tables::{
    AUDIT_CONFIG, AUDIT_FINDINGS, AUDIT_FINDINGS_BY_TIME, AUDIT_FINDING_IDS, AUDIT_SCHEDULED,
    AUDIT_SUPPRESSIONS, AUDIT_TASKS,
};
use super::Page;
use crate::audit::checks::CheckName;
use crate::audit::model::{
    AccountAuditConfiguration, AuditFinding, AuditSuppression, AuditTask, ResourceIdentifier,
    ScheduledAudit,
};
use crate::detect::model::Timestamp;

const RECORD_V1: u8 = 1;
const CONFIG_KEY: &[u8] = b"account";

/// A suppression as stored: the API shape plus the token it was created
/// with (a token may not be reused for another suppression).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredSuppression {
    #[serde(flatten)]
    pub(crate) suppression: AuditSuppression,
    pub(crate) client_request_token: String,
}

/// One change to the audit's records.
#[derive(Clone, Debug)]
pub(crate) enum AuditWrite {
    /// `None` deletes the configuration (DeleteAccountAuditConfiguration).
    Config(Option<AccountAuditConfiguration>),
    PutScheduled(ScheduledAudit),
    DeleteScheduled(String),
    PutSuppression(Vec<u8>, Box<StoredSuppression>),
    DeleteSuppression(Vec<u8>),
    PutTask(AuditTask),
    /// Findings of a task, numbered from `first_seq`.
    Findings {
        first_seq: u32,
        findings: Vec<AuditFinding>,
    },
}

/// What [`AuditStore::load`] finds.
#[derive(Debug, Default)]
pub(crate) struct AuditContents {
    pub(crate) config: Option<AccountAuditConfiguration>,
    pub(crate) scheduled: Vec<ScheduledAudit>,
    pub(crate) suppressions: Vec<(Vec<u8>, StoredSuppression)>,
    pub(crate) tasks: Vec<AuditTask>,
}

/// Which findings a list wants, besides the task or time range.
#[derive(Clone, Debug, Default)]
pub(crate) struct FindingFilter {
    pub(crate) check_name: Option<CheckName>,
    /// Canonical form (see `ResourceIdentifier::canonical`).
    pub(crate) resource_identifier: Option<ResourceIdentifier>,
    /// `Some(true)`: only suppressed findings; `Some(false)`: only the
    /// others; `None`: both.
    pub(crate) list_suppressed: Option<bool>,
}

impl FindingFilter {
    fn admits(&self, f: &AuditFinding) -> bool {
        self.check_name.is_none_or(|c| c == f.check_name)
            && self.list_suppressed.is_none_or(|s| s == f.is_suppressed)
            && self
                .resource_identifier
                .as_ref()
                .is_none_or(|r| r.matches(&f.non_compliant_resource.resource_identifier))
    }

    fn fingerprint(&self, base: Fingerprint) -> Fingerprint {
        let resource = self
            .resource_identifier
            .as_ref()
            .and_then(|r| serde_json::to_vec(r).ok());
        base.opt(self.check_name.map(|c| c.as_str().as_bytes()))
            .opt(resource.as_deref())
            .opt(
                self.list_suppressed
                    .map(|s| if s { &b"1"[..] } else { &b"0"[..] }),
            )
    }
}

/// Where ListAuditFindings looks.
#[derive(Clone, Debug)]
pub(crate) enum FindingScope<'a> {
    Task(&'a str),
    /// Finding time within [start, end], inclusive.
    Time(Timestamp, Timestamp),
}

/// The audits' default page size (the model: "The default is 25").
pub(crate) const AUDIT_DEFAULT_PAGE: u32 = 25;

#[derive(Clone)]
pub(crate) struct AuditStore {
    db: DbHandle,
}

impl AuditStore {
    pub(crate) fn new(db: DbHandle) -> Self {
        Self { db }
    }

    /// Everything but the findings. Records that do not decode are logged
    /// and skipped.
    pub(crate) fn load(&self) -> Result<AuditContents, StoreError> {
        let txn = self.db.begin_read()?;
        let config = load_records::<AccountAuditConfiguration>(&txn, AUDIT_CONFIG)?
            .into_iter()
            .next()
            .map(|(_, c)| c);
        Ok(AuditContents {
            config,
            scheduled: load_records(&txn, AUDIT_SCHEDULED)?
                .into_iter()
                .map(|(_, s)| s)
                .collect(),
            suppressions: load_records(&txn, AUDIT_SUPPRESSIONS)?,
            tasks: load_records(&txn, AUDIT_TASKS)?
                .into_iter()
                .map(|(_, t)| t)
                .collect(),
        })
    }

    /// Applies `writes` in one durable transaction.
    pub(crate) fn commit(&self, writes: &[AuditWrite]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        for w in writes {
            apply(&txn, w)?;
        }
        txn.commit()
    }

    /// One finding by id.
    pub(crate) fn finding(&self, finding_id: &str) -> Result<Option<AuditFinding>, StoreError> {
        let txn = self.db.begin_read()?;
        let ids = txn.open_table(AUDIT_FINDING_IDS).map_err(storage)?;
        let Some(key) = ids.get(finding_id.as_bytes()).map_err(storage)? else {
            return Ok(None);
        };
        let findings = txn.open_table(AUDIT_FINDINGS).map_err(storage)?;
        let value = findings.get(key.value()).map_err(storage)?;
        Ok(value.and_then(|v| decode::<AuditFinding>(v.value()).ok()))
    }

    /// One page of ListAuditFindings.
    pub(crate) fn list_findings(
        &self,
        scope: &FindingScope<'_>,
        filter: &FindingFilter,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<AuditFinding>, StoreError> {
        let limit = page_size(Some(max_results.unwrap_or(AUDIT_DEFAULT_PAGE)))?;
        let (kind, base) = match scope {
            FindingScope::Task(id) => (
                TokenKind::AuditFindingsByTask,
                Fingerprint::new().field(id.as_bytes()),
            ),
            FindingScope::Time(start, end) => {
                if end.as_millis() < start.as_millis() {
                    return Err(StoreError::InvalidRequest(
                        "endTime is before startTime".into(),
                    ));
                }
                (
                    TokenKind::AuditFindingsByTime,
                    Fingerprint::new()
                        .u64(start.as_millis())
                        .u64(end.as_millis()),
                )
            }
        };
        let query = filter.fingerprint(base);
        let after = next_token
            .map(|t| decode_token(t, kind, query))
            .transpose()?;
        let txn = self.db.begin_read()?;
        let findings = txn.open_table(AUDIT_FINDINGS).map_err(storage)?;
        let mut out = Vec::new();
        let mut last_key: Option<Vec<u8>> = None;
        let mut more = false;
        // Walks (position key, finding key) pairs in order.
        let mut visit = |pos: &[u8], finding_key: &[u8]| -> Result<bool, StoreError> {
            if out.len() == limit {
                more = true;
                return Ok(false);
            }
            let Some(v) = findings.get(finding_key).map_err(storage)? else {
                return Ok(true);
            };
            match decode::<AuditFinding>(v.value()) {
                Ok(f) if filter.admits(&f) => {
                    out.push(f);
                    last_key = Some(pos.to_vec());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "stored audit finding does not decode; skipped")
                }
            }
            Ok(true)
        };
        match scope {
            FindingScope::Task(id) => {
                let prefix = task_prefix(id);
                let from = after.clone().unwrap_or_else(|| prefix.clone());
                for row in findings.range(from.as_slice()..).map_err(storage)? {
                    let (k, _) = row.map_err(storage)?;
                    let k = k.value();
                    if !k.starts_with(&prefix) {
                        break;
                    }
                    if after.as_deref() == Some(k) {
                        continue;
                    }
                    if !visit(k, k)? {
                        break;
                    }
                }
            }
            FindingScope::Time(start, end) => {
                let index = txn.open_table(AUDIT_FINDINGS_BY_TIME).map_err(storage)?;
                let from = after
                    .clone()
                    .unwrap_or_else(|| start.as_millis().to_be_bytes().to_vec());
                let stop = end.as_millis().saturating_add(1).to_be_bytes();
                for row in index
                    .range(from.as_slice()..stop.as_slice())
                    .map_err(storage)?
                {
                    let (k, _) = row.map_err(storage)?;
                    let k = k.value();
                    if after.as_deref() == Some(k) {
                        continue;
                    }
                    let Some(finding_key) = k.get(8..) else {
                        continue;
                    };
                    if !visit(k, finding_key)? {
                        break;
                    }
                }
            }
        }
        let next_token = match (more, last_key) {
            (true, Some(k)) => Some(encode_token(kind, query, &k)),
            _ => None,
        };
        Ok(Page {
            items: out,
            next_token,
        })
    }

    /// Deletes findings found before `cutoff` and tasks that started
    /// before it. Returns how many findings went.
    pub(crate) fn expire(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let mut removed = 0;
        {
            let mut index = txn.open_table(AUDIT_FINDINGS_BY_TIME).map_err(storage)?;
            let mut findings = txn.open_table(AUDIT_FINDINGS).map_err(storage)?;
            let mut ids = txn.open_table(AUDIT_FINDING_IDS).map_err(storage)?;
            let stop = cutoff.as_millis().to_be_bytes();
            let old: Vec<Vec<u8>> = index
                .range(..stop.as_slice())
                .map_err(storage)?
                .map(|r| r.map(|(k, _)| k.value().to_vec()).map_err(storage))
                .collect::<Result<_, _>>()?;
            for k in old {
                index.remove(k.as_slice()).map_err(storage)?;
                let Some(finding_key) = k.get(8..) else {
                    continue;
                };
                let id = findings
                    .remove(finding_key)
                    .map_err(storage)?
                    .and_then(|v| decode::<AuditFinding>(v.value()).ok())
                    .map(|f| f.finding_id);
                if let Some(id) = id {
                    ids.remove(id.as_bytes()).map_err(storage)?;
                }
                removed += 1;
            }
            let mut tasks = txn.open_table(AUDIT_TASKS).map_err(storage)?;
            let mut expired = Vec::new();
            for row in tasks.iter().map_err(storage)? {
                let (k, v) = row.map_err(storage)?;
                if decode::<AuditTask>(v.value())
                    .is_ok_and(|t| t.task_start_time.as_millis() < cutoff.as_millis())
                {
                    expired.push(k.value().to_vec());
                }
            }
            for k in expired {
                tasks.remove(k.as_slice()).map_err(storage)?;
            }
        }
        txn.commit()?;
        Ok(removed)
    }
}

fn task_prefix(task_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(task_id.len() + 1);
    k.extend_from_slice(task_id.as_bytes());
    k.push(0);
    k
}

fn finding_key(task_id: &str, seq: u32) -> Vec<u8> {
    let mut k = task_prefix(task_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![RECORD_V1];
    serde_json::to_writer(&mut bytes, record).map_err(storage)?;
    Ok(bytes)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&RECORD_V1, json)) => serde_json::from_slice(json).map_err(|e| e.to_string()),
        _ => Err("unknown record version".to_owned()),
    }
}

fn put<T: Serialize>(
    txn: &WriteTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    key: &[u8],
    record: &T,
) -> Result<(), StoreError> {
    let bytes = encode(record)?;
    let mut t = txn.open_table(table).map_err(storage)?;
    t.insert(key, bytes.as_slice()).map_err(storage)?;
    Ok(())
}

fn remove(
    txn: &WriteTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    key: &[u8],
) -> Result<(), StoreError> {
    let mut t = txn.open_table(table).map_err(storage)?;
    t.remove(key).map_err(storage)?;
    Ok(())
}

fn apply(txn: &WriteTransaction, w: &AuditWrite) -> Result<(), StoreError> {
    match w {
        AuditWrite::Config(Some(c)) => put(txn, AUDIT_CONFIG, CONFIG_KEY, c),
        AuditWrite::Config(None) => remove(txn, AUDIT_CONFIG, CONFIG_KEY),
        AuditWrite::PutScheduled(s) => {
            put(txn, AUDIT_SCHEDULED, s.scheduled_audit_name.as_bytes(), s)
        }
        AuditWrite::DeleteScheduled(name) => remove(txn, AUDIT_SCHEDULED, name.as_bytes()),
        AuditWrite::PutSuppression(key, s) => put(txn, AUDIT_SUPPRESSIONS, key, s),
        AuditWrite::DeleteSuppression(key) => remove(txn, AUDIT_SUPPRESSIONS, key),
        AuditWrite::PutTask(t) => put(txn, AUDIT_TASKS, t.task_id.as_bytes(), t),
        AuditWrite::Findings {
            first_seq,
            findings,
        } => {
            let mut main = txn.open_table(AUDIT_FINDINGS).map_err(storage)?;
            let mut index = txn.open_table(AUDIT_FINDINGS_BY_TIME).map_err(storage)?;
            let mut ids = txn.open_table(AUDIT_FINDING_IDS).map_err(storage)?;
            for (i, f) in findings.iter().enumerate() {
                let seq = first_seq.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
                let key = finding_key(&f.task_id, seq);
                main.insert(key.as_slice(), encode(f)?.as_slice())
                    .map_err(storage)?;
                let mut time_key = f.finding_time.as_millis().to_be_bytes().to_vec();
                time_key.extend_from_slice(&key);
                index.insert(time_key.as_slice(), ()).map_err(storage)?;
                ids.insert(f.finding_id.as_bytes(), key.as_slice())
                    .map_err(storage)?;
            }
            Ok(())
        }
    }
}

fn load_records<T: DeserializeOwned>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<&[u8], &[u8]>,
) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
    let t = txn.open_table(table).map_err(storage)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(storage)? {
        let (key, value) = row.map_err(storage)?;
        match decode(value.value()) {
            Ok(record) => out.push((key.value().to_vec(), record)),
            Err(error) => tracing::error!(
                table = table.name(),
                key = %String::from_utf8_lossy(key.value()),
                %error,
                "stored audit record does not decode; skipped"
            ),
        }
    }
    Ok(out)
}
