//! Metric datapoints per (thing, metric, dimension), for ListMetricValues.
//!
//! Layout: the primary table is keyed (series, timestamp), so one series'
//! datapoints between two times are a single range scan. A second table
//! keyed (timestamp, series) lets [`MetricStore::expire`] delete old
//! datapoints by reading only what it deletes, instead of visiting every
//! series. It costs one more insert per datapoint, but those inserts land
//! at the end of the index (a period's timestamps are the newest) and are
//! cheap.
//!
//! Order: pages are **oldest first**. The model does not say; time order is
//! what charts and baselines consume, and it makes the token a plain
//! timestamp.

use std::ops::Bound;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{decode_metric_value, encode_metric_value};
use super::error::{storage, StoreError};
use super::handle::DbHandle;
use super::keys::{
    datapoint_key, datapoint_key_from_index, datapoint_ts, parse_series, series_prefix,
    split_time_index, time_index_key, SeriesKey,
};
use super::page::{decode_token, encode_token, page_size, Fingerprint, Page, TokenKind};
use super::tables::{METRIC_BY_TIME, METRIC_POINTS};
use crate::detect::model::{MetricValue, Timestamp};

/// `MetricDatum` as ListMetricValues returns it. The detect model has no
/// such shape yet; it belongs there once the API needs it elsewhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricDatum {
    pub timestamp: Timestamp,
    pub value: MetricValue,
}

/// Index entries expired per batch: bounds the memory one `expire` call
/// uses however far behind it is.
const EXPIRE_BATCH: usize = 65_536;

#[derive(Clone)]
pub struct MetricStore {
    db: DbHandle,
}

impl MetricStore {
    pub(crate) fn new(db: DbHandle) -> Self {
        Self { db }
    }

    /// Stores a period's datapoints in one transaction. A datapoint for a
    /// (series, timestamp) already stored replaces it.
    pub fn put_period(
        &self,
        points: &[(SeriesKey<'_>, Timestamp, &MetricValue)],
    ) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(points.len());
        let mut index = Vec::with_capacity(points.len());
        let mut value = Vec::new();
        for (series, ts, v) in points {
            let prefix = series_prefix(series)?;
            value.clear();
            encode_metric_value(v, &mut value);
            index.push(time_index_key(ts.as_millis(), &prefix));
            rows.push((datapoint_key(&prefix, ts.as_millis()), value.clone()));
        }
        // Key order turns a million scattered inserts into one pass over
        // the B-tree: each page is visited once, while it is hot.
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        index.sort_unstable();
        index.dedup();
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(METRIC_POINTS).map_err(storage)?;
            for (k, v) in &rows {
                table.insert(k.as_slice(), v.as_slice()).map_err(storage)?;
            }
            let mut by_time = txn.open_table(METRIC_BY_TIME).map_err(storage)?;
            append_or_insert(&mut by_time, &index)?;
        }
        txn.commit()
    }

    /// ListMetricValues: one series' datapoints with `start <= timestamp <=
    /// end` (both ends inclusive, so `endTime = now` includes now), oldest
    /// first, at most `max_results` (1..=250, default 250) per page.
    pub fn list(
        &self,
        series: &SeriesKey<'_>,
        start: Timestamp,
        end: Timestamp,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<MetricDatum>, StoreError> {
        if start > end {
            return Err(StoreError::InvalidRequest(
                "startTime must not be after endTime".into(),
            ));
        }
        let limit = page_size(max_results)?;
        let prefix = series_prefix(series)?;
        let query = Fingerprint::new()
            .field(series.thing.as_bytes())
            .field(series.metric.as_bytes())
            .field(series.dimension.as_bytes())
            .u64(start.as_millis())
            .u64(end.as_millis());
        let lower = match next_token {
            None => Bound::Included(datapoint_key(&prefix, start.as_millis())),
            Some(t) => {
                let pos = decode_token(t, TokenKind::MetricValues, query)?;
                let after: [u8; 8] = pos.try_into().map_err(|_| StoreError::InvalidToken)?;
                Bound::Excluded(datapoint_key(&prefix, u64::from_be_bytes(after)))
            }
        };
        let upper = Bound::Included(datapoint_key(&prefix, end.as_millis()));

        let txn = self.db.begin_read()?;
        let table = txn.open_table(METRIC_POINTS).map_err(storage)?;
        let range = table
            .range::<&[u8]>((
                lower.as_ref().map(Vec::as_slice),
                upper.as_ref().map(Vec::as_slice),
            ))
            .map_err(storage)?;
        let mut items = Vec::with_capacity(limit.min(64));
        let mut more = false;
        for row in range {
            let (k, v) = row.map_err(storage)?;
            let Some(ts) = datapoint_ts(k.value()) else {
                continue;
            };
            let Some(value) = decode_metric_value(v.value()) else {
                tracing::warn!(
                    thing = series.thing,
                    metric = series.metric,
                    ts,
                    "skipping a metric datapoint that does not decode"
                );
                continue;
            };
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(MetricDatum {
                timestamp: Timestamp::from_millis(ts),
                value,
            });
        }
        let next_token = match items.last() {
            Some(last) if more => Some(encode_token(
                TokenKind::MetricValues,
                query,
                &last.timestamp.as_millis().to_be_bytes(),
            )),
            _ => None,
        };
        Ok(Page { items, next_token })
    }

    /// Every datapoint of `metric` with the store dimension `dimension`
    /// (`""` for none, see `engine::store_dimension`) stored at `from` or
    /// later and before `to`, oldest first, to `visit(timestamp, thing,
    /// value)`. Reads the time index, so the cost is what the range holds.
    pub fn scan_metric(
        &self,
        metric: &str,
        dimension: &str,
        from: Timestamp,
        to: Timestamp,
        mut visit: impl FnMut(Timestamp, &str, &MetricValue),
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let points = txn.open_table(METRIC_POINTS).map_err(storage)?;
        let by_time = txn.open_table(METRIC_BY_TIME).map_err(storage)?;
        let (lo, hi) = (from.as_millis().to_be_bytes(), to.as_millis().to_be_bytes());
        for row in by_time
            .range::<&[u8]>(lo.as_slice()..hi.as_slice())
            .map_err(storage)?
        {
            let (k, _) = row.map_err(storage)?;
            let Some((ts, prefix)) = split_time_index(k.value()) else {
                continue;
            };
            let Some([thing, m, d]) = parse_series(prefix) else {
                continue;
            };
            if m != metric || d != dimension {
                continue;
            }
            let Some(v) = points
                .get(datapoint_key(prefix, ts).as_slice())
                .map_err(storage)?
            else {
                continue;
            };
            if let Some(value) = decode_metric_value(v.value()) {
                visit(Timestamp::from_millis(ts), thing, &value);
            }
        }
        Ok(())
    }

    /// Deletes every datapoint older than `before` (strictly), in one
    /// transaction. Returns how many were deleted. Work is proportional to
    /// what is deleted, not to what is kept.
    pub fn expire(&self, before: Timestamp) -> Result<u64, StoreError> {
        let cutoff = before.as_millis().to_be_bytes();
        let txn = self.db.begin_write()?;
        let mut removed = 0u64;
        {
            let mut points = txn.open_table(METRIC_POINTS).map_err(storage)?;
            let mut by_time = txn.open_table(METRIC_BY_TIME).map_err(storage)?;
            loop {
                // Every index key of a timestamp < cutoff sorts before the
                // bare 8-byte cutoff; those of the cutoff itself sort after.
                let mut batch = Vec::new();
                for row in by_time
                    .extract_from_if::<&[u8], _>(..cutoff.as_slice(), |_, _| true)
                    .map_err(storage)?
                    .take(EXPIRE_BATCH)
                {
                    let (k, _) = row.map_err(storage)?;
                    batch.push(k.value().to_vec());
                }
                if batch.is_empty() {
                    break;
                }
                let mut keys: Vec<Vec<u8>> = batch
                    .iter()
                    .filter_map(|k| datapoint_key_from_index(k))
                    .collect();
                keys.sort_unstable();
                for k in &keys {
                    if points.remove(k.as_slice()).map_err(storage)?.is_some() {
                        removed += 1;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(removed)
    }
}

/// Inserts sorted, distinct `keys`. When they all sort after the table's
/// last key (a new period: the usual case for the time index) they go in
/// through one cursor at the end, which redb buffers into whole leaves
/// instead of descending the tree per key; otherwise one by one.
fn append_or_insert(
    table: &mut redb::Table<'_, &'static [u8], ()>,
    keys: &[Vec<u8>],
) -> Result<(), StoreError> {
    let Some(first) = keys.first() else {
        return Ok(());
    };
    let appendable = match table.last().map_err(storage)? {
        Some((last, _)) => last.value() < first.as_slice(),
        None => true,
    };
    if appendable {
        let mut cursor = table
            .upper_bound_mut(Bound::<&[u8]>::Unbounded)
            .map_err(storage)?;
        for k in keys {
            cursor.insert_before(k.as_slice(), ()).map_err(storage)?;
        }
        cursor.close().map_err(storage)?;
    } else {
        for k in keys {
            table.insert(k.as_slice(), ()).map_err(storage)?;
        }
    }
    Ok(())
}
