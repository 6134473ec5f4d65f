//! The redb tables of `defender.redb`. Layouts of the keys are in
//! [`super::keys`], of the values in [`super::codec`].

use redb::{Database, TableDefinition};

use super::error::{storage, StoreError};

/// Datapoint key (series, timestamp) -> encoded `MetricValue`.
pub(crate) const METRIC_POINTS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("metric_points");
/// (timestamp, series) -> nothing: lets expiry find old datapoints without
/// visiting every series.
pub(crate) const METRIC_BY_TIME: TableDefinition<&[u8], ()> =
    TableDefinition::new("metric_by_time");
/// Event key (time, seq) -> encoded `ViolationEvent`.
pub(crate) const EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("violation_events");
/// (violation ID, event key) -> nothing: finds a violation's events for a
/// verification-state update.
pub(crate) const EVENTS_BY_VIOLATION: TableDefinition<&[u8], ()> =
    TableDefinition::new("violation_events_by_id");
/// Single records by name: the alarm book snapshot.
pub(crate) const SNAPSHOTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("snapshots");
/// Counters by name: the next event sequence number.
pub(crate) const COUNTERS: TableDefinition<&[u8], u64> = TableDefinition::new("counters");

/// The Detect configuration (`crate::catalog`): security profile name ->
/// encoded `SecurityProfile`.
pub(crate) const CATALOG_PROFILES: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("catalog_profiles");
/// Dimension name -> encoded `catalog::Dimension`.
pub(crate) const CATALOG_DIMENSIONS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("catalog_dimensions");
/// Custom metric name -> encoded `catalog::CustomMetric`.
pub(crate) const CATALOG_CUSTOM_METRICS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("catalog_custom_metrics");
/// (profile name, 0, target resource) -> nothing: which profile is
/// attached to which target.
pub(crate) const CATALOG_ATTACHMENTS: TableDefinition<&[u8], ()> =
    TableDefinition::new("catalog_attachments");

/// The audit (`crate::audit`): the account audit configuration (one
/// record).
pub(crate) const AUDIT_CONFIG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit_config");
/// Scheduled audit name -> encoded `ScheduledAudit`.
pub(crate) const AUDIT_SCHEDULED: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("audit_scheduled");
/// Suppression key (check, resource) -> encoded `StoredSuppression`.
pub(crate) const AUDIT_SUPPRESSIONS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("audit_suppressions");
/// Task id -> encoded `AuditTask`.
pub(crate) const AUDIT_TASKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit_tasks");
/// (task id, 0, sequence) -> encoded `AuditFinding`.
pub(crate) const AUDIT_FINDINGS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("audit_findings");
/// (finding time, finding key) -> nothing: the time-range lists and
/// retention.
pub(crate) const AUDIT_FINDINGS_BY_TIME: TableDefinition<&[u8], ()> =
    TableDefinition::new("audit_findings_by_time");
/// Finding id -> finding key.
pub(crate) const AUDIT_FINDING_IDS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("audit_finding_ids");

/// Mitigation (`crate::mitigation`): action name -> encoded
/// `MitigationAction`.
pub(crate) const MITIGATION_ACTIONS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("mitigation_actions");
/// Audit mitigation task id -> encoded (task, executions).
pub(crate) const MITIGATION_AUDIT_TASKS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("mitigation_audit_tasks");
/// Detect mitigation task id -> encoded (task, executions).
pub(crate) const MITIGATION_DETECT_TASKS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("mitigation_detect_tasks");
/// Resource ARN -> encoded tags (security profiles, mitigation actions).
pub(crate) const MITIGATION_TAGS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("mitigation_tags");

pub(crate) const ALARM_BOOK: &[u8] = b"alarm_book";
pub(crate) const EVENT_SEQ: &[u8] = b"event_seq";
/// Bumped by every catalog write, so snapshot generations never repeat,
/// not even across restarts.
pub(crate) const CATALOG_GENERATION: &[u8] = b"catalog_generation";

/// Creates any missing table, so read transactions can open them all
/// unconditionally.
pub(crate) fn create_all(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(storage)?;
    txn.open_table(METRIC_POINTS).map_err(storage)?;
    txn.open_table(METRIC_BY_TIME).map_err(storage)?;
    txn.open_table(EVENTS).map_err(storage)?;
    txn.open_table(EVENTS_BY_VIOLATION).map_err(storage)?;
    txn.open_table(SNAPSHOTS).map_err(storage)?;
    txn.open_table(COUNTERS).map_err(storage)?;
    txn.open_table(CATALOG_PROFILES).map_err(storage)?;
    txn.open_table(CATALOG_DIMENSIONS).map_err(storage)?;
    txn.open_table(CATALOG_CUSTOM_METRICS).map_err(storage)?;
    txn.open_table(CATALOG_ATTACHMENTS).map_err(storage)?;
    txn.open_table(AUDIT_CONFIG).map_err(storage)?;
    txn.open_table(AUDIT_SCHEDULED).map_err(storage)?;
    txn.open_table(AUDIT_SUPPRESSIONS).map_err(storage)?;
    txn.open_table(AUDIT_TASKS).map_err(storage)?;
    txn.open_table(AUDIT_FINDINGS).map_err(storage)?;
    txn.open_table(AUDIT_FINDINGS_BY_TIME).map_err(storage)?;
    txn.open_table(AUDIT_FINDING_IDS).map_err(storage)?;
    txn.open_table(MITIGATION_ACTIONS).map_err(storage)?;
    txn.open_table(MITIGATION_AUDIT_TASKS).map_err(storage)?;
    txn.open_table(MITIGATION_DETECT_TASKS).map_err(storage)?;
    txn.open_table(MITIGATION_TAGS).map_err(storage)?;
    txn.commit().map_err(storage)
}
