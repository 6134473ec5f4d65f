//! The alarm book snapshot and the violation event history.
//!
//! Events are keyed (event time, sequence number), so a time range is one
//! range scan and pages come out **oldest first** (the model does not say;
//! time order matches ListMetricValues and keeps tokens a plain position).
//! The filters are applied while scanning: events are few next to
//! datapoints (one per alarm transition), and a page stops as soon as it is
//! full. A second table maps violation ID -> its events, for
//! PutVerificationStateOnViolation.

use std::ops::Bound;

use redb::{ReadableTable, Table, WriteTransaction};

use super::codec::{decode_event, encode_event, event_violation_id};
use super::error::{storage, StoreError};
use super::filter::ViolationFilter;
use super::handle::DbHandle;
use super::keys::{
    event_key, event_key_from_index, prefix_end, violation_index_key, violation_index_prefix,
    EVENT_KEY_LEN,
};
use super::page::{decode_token, encode_token, page_size, Fingerprint, Page, TokenKind};
use super::tables::{ALARM_BOOK, COUNTERS, EVENTS, EVENTS_BY_VIOLATION, EVENT_SEQ, SNAPSHOTS};
use crate::alarms::state::check_verification_description;
use crate::alarms::{AlarmBook, VerificationError};
use crate::detect::model::{Timestamp, VerificationState, ViolationEvent};

/// Version byte in front of the book's JSON.
const BOOK_V1: u8 = 1;
/// Expired events handled per batch, to bound memory.
const EXPIRE_BATCH: usize = 65_536;

#[derive(Clone)]
pub struct ViolationStore {
    db: DbHandle,
}

impl ViolationStore {
    pub(crate) fn new(db: DbHandle) -> Self {
        Self { db }
    }

    /// Replaces the stored alarm book.
    pub fn save_alarm_book(&self, book: &AlarmBook) -> Result<(), StoreError> {
        self.record(book, &[])
    }

    /// Saves the book and appends the events it produced, in one
    /// transaction: after a crash the history and the alarms agree (no
    /// `in-alarm` event for an alarm the book forgot, or the reverse).
    pub fn record(&self, book: &AlarmBook, events: &[ViolationEvent]) -> Result<(), StoreError> {
        let book = encode_book(book)?;
        let txn = self.db.begin_write()?;
        put_book(&txn, &book)?;
        append_events(&txn, events)?;
        txn.commit()
    }

    /// The stored alarm book, or `None` if there is none yet. A book that
    /// does not decode is logged and treated as absent: the broker starts
    /// with no alarms rather than not at all.
    pub fn load_alarm_book(&self) -> Result<Option<AlarmBook>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS).map_err(storage)?;
        let Some(raw) = table.get(ALARM_BOOK).map_err(storage)? else {
            return Ok(None);
        };
        let raw = raw.value();
        let decoded = match raw.split_first() {
            Some((&BOOK_V1, json)) => serde_json::from_slice(json).map_err(|e| e.to_string()),
            _ => Err("unknown alarm book version".to_owned()),
        };
        match decoded {
            Ok(book) => Ok(Some(book)),
            Err(error) => {
                tracing::error!(%error, "stored alarm book does not decode; starting without alarms");
                Ok(None)
            }
        }
    }

    /// Appends events to the history, in one transaction.
    pub fn append(&self, events: &[ViolationEvent]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        append_events(&txn, events)?;
        txn.commit()
    }

    /// ListViolationEvents: events with `start <= violationEventTime <=
    /// end` (both inclusive) that match `filter`, oldest first, at most
    /// `max_results` (1..=250, default 250) per page.
    pub fn list_events(
        &self,
        start: Timestamp,
        end: Timestamp,
        filter: &ViolationFilter,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<ViolationEvent>, StoreError> {
        if start > end {
            return Err(StoreError::InvalidRequest(
                "startTime must not be after endTime".into(),
            ));
        }
        let limit = page_size(max_results)?;
        let query = filter.fingerprint(
            Fingerprint::new()
                .u64(start.as_millis())
                .u64(end.as_millis()),
        );
        let lower = match next_token {
            None => Bound::Included(event_key(start.as_millis(), 0)),
            Some(t) => {
                let pos = decode_token(t, TokenKind::ViolationEvents, query)?;
                let after: [u8; EVENT_KEY_LEN] =
                    pos.try_into().map_err(|_| StoreError::InvalidToken)?;
                Bound::Excluded(after)
            }
        };
        let upper = Bound::Included(event_key(end.as_millis(), u64::MAX));

        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS).map_err(storage)?;
        let range = table
            .range::<&[u8]>((
                lower.as_ref().map(|k| k.as_slice()),
                upper.as_ref().map(|k| k.as_slice()),
            ))
            .map_err(storage)?;
        let mut items = Vec::with_capacity(limit.min(64));
        let mut last_key = None;
        let mut more = false;
        for row in range {
            let (k, v) = row.map_err(storage)?;
            let event = match decode_event(v.value()) {
                Ok(e) => e,
                Err(error) => {
                    tracing::warn!(%error, "skipping a violation event that does not decode");
                    continue;
                }
            };
            if !filter.matches_event(&event) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            last_key = Some(k.value().to_vec());
            items.push(event);
        }
        let next_token = match last_key {
            Some(k) if more => Some(encode_token(TokenKind::ViolationEvents, query, &k)),
            _ => None,
        };
        Ok(Page { items, next_token })
    }

    /// PutVerificationStateOnViolation. The state belongs to the violation,
    /// so it is set on the active alarm in `book` (if the violation is
    /// still active, so its later events carry it) and on every stored
    /// event of the violation (so ListViolationEvents filters by it), and
    /// the book is saved, all in one transaction. A violation that is
    /// neither active nor in the history is [`StoreError::ViolationNotFound`].
    pub fn put_verification_state(
        &self,
        book: &mut AlarmBook,
        violation_id: &str,
        state: VerificationState,
        description: Option<String>,
    ) -> Result<(), StoreError> {
        if let Some(d) = &description {
            check_verification_description(d).map_err(StoreError::Verification)?;
        }
        let prefix = violation_index_prefix(violation_id)?;
        let previous = book.active_violation(violation_id);
        if previous.is_some() {
            match book.set_verification_state(violation_id, state, description.clone()) {
                Ok(()) => {}
                Err(VerificationError::NotActive(_)) => {}
                Err(e) => return Err(StoreError::Verification(e)),
            }
        }
        let restore = |book: &mut AlarmBook| {
            if let Some(p) = &previous {
                // Puts back what was there; it passed these checks before.
                let _ = book.set_verification_state(
                    violation_id,
                    p.verification_state,
                    p.verification_state_description.clone(),
                );
            }
        };
        let result = (|| {
            let txn = self.db.begin_write()?;
            let updated = update_history(&txn, &prefix, state, description.as_deref())?;
            if previous.is_none() && updated == 0 {
                return Err(StoreError::ViolationNotFound(violation_id.to_owned()));
            }
            if previous.is_some() {
                put_book(&txn, &encode_book(book)?)?;
            }
            txn.commit()
        })();
        if result.is_err() {
            restore(book);
        }
        result
    }

    /// Deletes every event older than `before` (strictly), in one
    /// transaction. Returns how many were deleted.
    pub fn expire_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        let cutoff = event_key(before.as_millis(), 0);
        let txn = self.db.begin_write()?;
        let mut removed = 0u64;
        {
            let mut events = txn.open_table(EVENTS).map_err(storage)?;
            let mut by_id = txn.open_table(EVENTS_BY_VIOLATION).map_err(storage)?;
            loop {
                let mut index_keys = Vec::new();
                let mut n = 0usize;
                for row in events
                    .extract_from_if::<&[u8], _>(..cutoff.as_slice(), |_, _| true)
                    .map_err(storage)?
                    .take(EXPIRE_BATCH)
                {
                    let (k, v) = row.map_err(storage)?;
                    n += 1;
                    let key: Option<[u8; EVENT_KEY_LEN]> = k.value().try_into().ok();
                    // An event whose ID cannot be read leaves a dangling
                    // index entry; lookups skip those.
                    if let (Some(key), Some(id)) = (key, event_violation_id(v.value())) {
                        if let Ok(ik) = violation_index_key(id, &key) {
                            index_keys.push(ik);
                        }
                    }
                }
                if n == 0 {
                    break;
                }
                removed += n as u64;
                index_keys.sort_unstable();
                for k in &index_keys {
                    by_id.remove(k.as_slice()).map_err(storage)?;
                }
            }
        }
        txn.commit()?;
        Ok(removed)
    }
}

fn encode_book(book: &AlarmBook) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![BOOK_V1];
    serde_json::to_writer(&mut out, book)
        .map_err(|e| StoreError::Storage(format!("encoding the alarm book: {e}")))?;
    Ok(out)
}

fn put_book(txn: &WriteTransaction, encoded: &[u8]) -> Result<(), StoreError> {
    let mut table = txn.open_table(SNAPSHOTS).map_err(storage)?;
    table.insert(ALARM_BOOK, encoded).map_err(storage)?;
    Ok(())
}

fn append_events(txn: &WriteTransaction, events: &[ViolationEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut counters = txn.open_table(COUNTERS).map_err(storage)?;
    let mut seq = counters
        .get(EVENT_SEQ)
        .map_err(storage)?
        .map_or(0, |v| v.value());
    let mut table = txn.open_table(EVENTS).map_err(storage)?;
    let mut by_id = txn.open_table(EVENTS_BY_VIOLATION).map_err(storage)?;
    for e in events {
        let key = event_key(e.violation_event_time.as_millis(), seq);
        seq = seq.wrapping_add(1);
        let index_key = violation_index_key(&e.violation_id, &key)?;
        let value = encode_event(e)
            .map_err(|err| StoreError::Storage(format!("encoding a violation event: {err}")))?;
        table
            .insert(key.as_slice(), value.as_slice())
            .map_err(storage)?;
        by_id.insert(index_key.as_slice(), ()).map_err(storage)?;
    }
    counters.insert(EVENT_SEQ, seq).map_err(storage)?;
    Ok(())
}

/// Sets the state on every stored event of one violation; returns how
/// many events it updated.
fn update_history(
    txn: &WriteTransaction,
    index_prefix: &[u8],
    state: VerificationState,
    description: Option<&str>,
) -> Result<u64, StoreError> {
    let by_id = txn.open_table(EVENTS_BY_VIOLATION).map_err(storage)?;
    let upper = match prefix_end(index_prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let mut keys = Vec::new();
    for row in by_id
        .range::<&[u8]>((
            Bound::Included(index_prefix),
            upper.as_ref().map(Vec::as_slice),
        ))
        .map_err(storage)?
    {
        let (k, _) = row.map_err(storage)?;
        if let Some(ek) = event_key_from_index(k.value()) {
            keys.push(ek);
        }
    }
    let mut events = txn.open_table(EVENTS).map_err(storage)?;
    let mut updated = 0;
    for key in keys {
        if let Some(e) = rewrite_event(&mut events, &key, state, description)? {
            events
                .insert(key.as_slice(), e.as_slice())
                .map_err(storage)?;
            updated += 1;
        }
    }
    Ok(updated)
}

/// The event at `key` with the new state, encoded; `None` if it expired
/// (dangling index entry) or does not decode (logged).
fn rewrite_event(
    events: &mut Table<'_, &'static [u8], &'static [u8]>,
    key: &[u8; EVENT_KEY_LEN],
    state: VerificationState,
    description: Option<&str>,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(raw) = events.get(key.as_slice()).map_err(storage)? else {
        return Ok(None);
    };
    let mut event = match decode_event(raw.value()) {
        Ok(e) => e,
        Err(error) => {
            tracing::warn!(%error, "skipping a violation event that does not decode");
            return Ok(None);
        }
    };
    event.verification_state = state;
    event.verification_state_description = description.map(str::to_owned);
    encode_event(&event)
        .map(Some)
        .map_err(|e| StoreError::Storage(format!("encoding a violation event: {e}")))
}
