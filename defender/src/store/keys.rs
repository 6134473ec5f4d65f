//! Byte layouts of the stores' keys. Every key is built here, so the
//! ordering guarantees the stores rely on are stated in one place.
//!
//! Keys are raw bytes compared with memcmp (redb's `&[u8]`), not `&str` or
//! tuples: a `&str` key is decoded with a panicking UTF-8 check, and a
//! damaged file must not crash the broker at start.

use super::error::StoreError;

/// One metric series: a thing's values of one metric, for one dimension
/// (`""` when the behaviour has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey<'a> {
    pub thing: &'a str,
    pub metric: &'a str,
    pub dimension: &'a str,
}

impl<'a> SeriesKey<'a> {
    pub fn new(thing: &'a str, metric: &'a str, dimension: &'a str) -> Self {
        Self {
            thing,
            metric,
            dimension,
        }
    }
}

/// Appends `series` as three u16-length-prefixed names. Length prefixes
/// (rather than separators) keep any byte legal in a name and make
/// ("ab", "c") and ("a", "bc") distinct series.
pub(crate) fn put_series(out: &mut Vec<u8>, series: &SeriesKey<'_>) -> Result<(), StoreError> {
    for name in [series.thing, series.metric, series.dimension] {
        let len = u16::try_from(name.len()).map_err(|_| {
            StoreError::InvalidRequest(format!("name too long: {} bytes", name.len()))
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    Ok(())
}

/// The (thing, metric, dimension) a series prefix holds; `None` unless it
/// is exactly three well-formed names.
pub(crate) fn parse_series(mut prefix: &[u8]) -> Option<[&str; 3]> {
    let mut names = [""; 3];
    for name in &mut names {
        let (len, rest) = prefix.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (bytes, rest) = rest.split_at_checked(len)?;
        *name = std::str::from_utf8(bytes).ok()?;
        prefix = rest;
    }
    prefix.is_empty().then_some(names)
}

/// The series prefix alone, for building range bounds.
pub(crate) fn series_prefix(series: &SeriesKey<'_>) -> Result<Vec<u8>, StoreError> {
    let mut out =
        Vec::with_capacity(6 + series.thing.len() + series.metric.len() + series.dimension.len());
    put_series(&mut out, series)?;
    Ok(out)
}

/// Datapoint key: series prefix then the big-endian timestamp, so one
/// series' datapoints are contiguous and in time order: a time range of one
/// series is one range scan.
pub(crate) fn datapoint_key(prefix: &[u8], ts_ms: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&ts_ms.to_be_bytes());
    k
}

/// Time-index key: the big-endian timestamp then the series prefix, so
/// everything older than a cutoff is one range at the front of the table.
pub(crate) fn time_index_key(ts_ms: u64, prefix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + prefix.len());
    k.extend_from_slice(&ts_ms.to_be_bytes());
    k.extend_from_slice(prefix);
    k
}

/// The datapoint key a time-index key points at (the same bytes, rotated).
/// The timestamp and series prefix of a time-index key.
pub(crate) fn split_time_index(index_key: &[u8]) -> Option<(u64, &[u8])> {
    split_u64_front(index_key)
}

pub(crate) fn datapoint_key_from_index(index_key: &[u8]) -> Option<Vec<u8>> {
    let (ts, prefix) = split_u64_front(index_key)?;
    Some(datapoint_key(prefix, ts))
}

/// The timestamp at the end of a datapoint key.
pub(crate) fn datapoint_ts(key: &[u8]) -> Option<u64> {
    let at = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key.get(at..)?.try_into().ok()?))
}

/// Violation event key: event time then a store-wide sequence number, both
/// big-endian: time-ordered, and unique even for events of the same
/// millisecond.
pub(crate) const EVENT_KEY_LEN: usize = 16;

pub(crate) fn event_key(time_ms: u64, seq: u64) -> [u8; EVENT_KEY_LEN] {
    let mut k = [0u8; EVENT_KEY_LEN];
    k[..8].copy_from_slice(&time_ms.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Index from a violation ID to its events: u8-length-prefixed ID, then
/// the event key. The prefix keeps one ID's entries contiguous.
pub(crate) fn violation_index_prefix(violation_id: &str) -> Result<Vec<u8>, StoreError> {
    let len = u8::try_from(violation_id.len())
        .map_err(|_| StoreError::InvalidRequest("violationId is longer than 255 bytes".into()))?;
    let mut k = Vec::with_capacity(1 + violation_id.len() + EVENT_KEY_LEN);
    k.push(len);
    k.extend_from_slice(violation_id.as_bytes());
    Ok(k)
}

pub(crate) fn violation_index_key(
    violation_id: &str,
    event_key: &[u8; EVENT_KEY_LEN],
) -> Result<Vec<u8>, StoreError> {
    let mut k = violation_index_prefix(violation_id)?;
    k.extend_from_slice(event_key);
    Ok(k)
}

/// The event key at the end of a violation-index key.
pub(crate) fn event_key_from_index(index_key: &[u8]) -> Option<[u8; EVENT_KEY_LEN]> {
    let at = index_key.len().checked_sub(EVENT_KEY_LEN)?;
    index_key.get(at..)?.try_into().ok()
}

/// The smallest key strictly greater than every key starting with
/// `prefix`, or `None` when there is none (all bytes 0xFF): the exclusive
/// end of a prefix range.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn split_u64_front(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_unambiguous_and_time_ordered() {
        let a = series_prefix(&SeriesKey::new("ab", "c", "")).expect("fits");
        let b = series_prefix(&SeriesKey::new("a", "bc", "")).expect("fits");
        assert_ne!(a, b);
        assert!(datapoint_key(&a, 1) < datapoint_key(&a, 2));
        assert!(datapoint_key(&a, 255) < datapoint_key(&a, 256));
        let ik = time_index_key(42, &a);
        assert_eq!(datapoint_key_from_index(&ik), Some(datapoint_key(&a, 42)));
        assert_eq!(datapoint_ts(&datapoint_key(&a, 42)), Some(42));
        assert_eq!(split_time_index(&ik), Some((42, a.as_slice())));
        assert_eq!(parse_series(&a), Some(["ab", "c", ""]));
        assert_eq!(parse_series(&b), Some(["a", "bc", ""]));
        // Truncated, or with bytes left over: not a series.
        assert_eq!(parse_series(&a[..a.len() - 1]), None);
        assert_eq!(parse_series(&ik), None);
    }

    #[test]
    fn overlong_names_are_refused() {
        let long = "x".repeat(70_000);
        assert!(series_prefix(&SeriesKey::new(&long, "m", "")).is_err());
        assert!(violation_index_prefix(&long).is_err());
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
        let k = violation_index_key("abc", &event_key(5, 6)).expect("fits");
        assert_eq!(event_key_from_index(&k), Some(event_key(5, 6)));
    }
}
