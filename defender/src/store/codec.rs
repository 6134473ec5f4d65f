//! Value encodings. The model types serialise for AWS's JSON (optional
//! members skipped, timestamps as integer or float seconds), which a
//! non-self-describing format like postcard cannot read back. So:
//!
//! - a [`MetricValue`], stored a million times per period, gets a compact
//!   hand-written binary form (a `count` takes 3 to 11 bytes);
//! - violation events and the alarm book, written rarely, are JSON, the
//!   form their types were designed for (and the one their tests pin).
//!
//! Every encoding starts with a version byte so the layout can change
//! without a migration of old records.

use crate::detect::model::{MetricValue, ViolationEvent};

const METRIC_VALUE_V1: u8 = 1;
const EVENT_V1: u8 = 1;

const HAS_COUNT: u8 = 1;
const HAS_CIDRS: u8 = 1 << 1;
const HAS_PORTS: u8 = 1 << 2;
const HAS_NUMBER: u8 = 1 << 3;
const HAS_NUMBERS: u8 = 1 << 4;
const HAS_STRINGS: u8 = 1 << 5;

/// Version, a bitmask of the members set, then each set member in model
/// order. Every member is kept (not only the first) so a value reads back
/// exactly as it was written.
pub(crate) fn encode_metric_value(v: &MetricValue, out: &mut Vec<u8>) {
    out.push(METRIC_VALUE_V1);
    let mut mask = 0;
    for (set, bit) in [
        (v.count.is_some(), HAS_COUNT),
        (v.cidrs.is_some(), HAS_CIDRS),
        (v.ports.is_some(), HAS_PORTS),
        (v.number.is_some(), HAS_NUMBER),
        (v.numbers.is_some(), HAS_NUMBERS),
        (v.strings.is_some(), HAS_STRINGS),
    ] {
        if set {
            mask |= bit;
        }
    }
    out.push(mask);
    if let Some(n) = v.count {
        put_varint(out, n);
    }
    if let Some(c) = &v.cidrs {
        put_strings(out, c);
    }
    if let Some(p) = &v.ports {
        put_varint(out, p.len() as u64);
        for port in p {
            out.extend_from_slice(&port.to_be_bytes());
        }
    }
    if let Some(x) = v.number {
        out.extend_from_slice(&x.to_le_bytes());
    }
    if let Some(xs) = &v.numbers {
        put_varint(out, xs.len() as u64);
        for x in xs {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    if let Some(s) = &v.strings {
        put_strings(out, s);
    }
}

/// The inverse of [`encode_metric_value`]. `None` for anything it did not
/// write: unknown version or bits, truncation, trailing bytes, bad UTF-8.
pub(crate) fn decode_metric_value(bytes: &[u8]) -> Option<MetricValue> {
    let mut r = Reader(bytes);
    if r.byte()? != METRIC_VALUE_V1 {
        return None;
    }
    let mask = r.byte()?;
    if mask & !(HAS_COUNT | HAS_CIDRS | HAS_PORTS | HAS_NUMBER | HAS_NUMBERS | HAS_STRINGS) != 0 {
        return None;
    }
    let mut v = MetricValue::default();
    if mask & HAS_COUNT != 0 {
        v.count = Some(r.varint()?);
    }
    if mask & HAS_CIDRS != 0 {
        v.cidrs = Some(r.strings()?);
    }
    if mask & HAS_PORTS != 0 {
        let n = r.len(2)?;
        let mut p = Vec::with_capacity(n);
        for _ in 0..n {
            p.push(u16::from_be_bytes(r.array()?));
        }
        v.ports = Some(p);
    }
    if mask & HAS_NUMBER != 0 {
        v.number = Some(f64::from_le_bytes(r.array()?));
    }
    if mask & HAS_NUMBERS != 0 {
        let n = r.len(8)?;
        let mut xs = Vec::with_capacity(n);
        for _ in 0..n {
            xs.push(f64::from_le_bytes(r.array()?));
        }
        v.numbers = Some(xs);
    }
    if mask & HAS_STRINGS != 0 {
        v.strings = Some(r.strings()?);
    }
    r.0.is_empty().then_some(v)
}

/// Version, the violation ID (u8 length), then the event as JSON. The ID
/// is outside the JSON so that expiring an event can clean its index entry
/// without parsing it.
pub(crate) fn encode_event(e: &ViolationEvent) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(e)?;
    let id = e.violation_id.as_bytes();
    let mut out = Vec::with_capacity(2 + id.len() + json.len());
    out.push(EVENT_V1);
    // Callers check the length first (keys::violation_index_prefix); a
    // longer ID would make an unreadable record, never a wrong one.
    out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(id);
    out.extend_from_slice(&json);
    Ok(out)
}

/// The violation ID of an encoded event, without parsing the event.
pub(crate) fn event_violation_id(bytes: &[u8]) -> Option<&str> {
    let mut r = Reader(bytes);
    if r.byte()? != EVENT_V1 {
        return None;
    }
    let n = usize::from(r.byte()?);
    std::str::from_utf8(r.take(n)?).ok()
}

pub(crate) fn decode_event(bytes: &[u8]) -> Result<ViolationEvent, String> {
    let mut r = Reader(bytes);
    match r.byte() {
        Some(EVENT_V1) => {}
        other => return Err(format!("unknown event record version {other:?}")),
    }
    let n = usize::from(r.byte().ok_or("truncated event record")?);
    r.take(n).ok_or("truncated event record")?;
    serde_json::from_slice(r.0).map_err(|e| e.to_string())
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_strings(out: &mut Vec<u8>, v: &[String]) {
    put_varint(out, v.len() as u64);
    for s in v {
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
}

/// A cursor over a record that never reads past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7F).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A list length, refused if the remaining bytes cannot hold that many
    /// elements of at least `min_size` bytes: a damaged length must not
    /// make us allocate gigabytes.
    fn len(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n.checked_mul(min_size)? <= self.0.len()).then_some(n)
    }

    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.len(1)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::try_from(self.varint()?).ok()?;
            v.push(String::from_utf8(self.take(len)?.to_vec()).ok()?);
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = MetricValue> {
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(proptest::collection::vec("[0-9./]{0,18}", 0..4)),
            proptest::option::of(proptest::collection::vec(any::<u16>(), 0..4)),
            proptest::option::of(any::<f64>()),
            proptest::option::of(proptest::collection::vec(any::<f64>(), 0..4)),
            proptest::option::of(proptest::collection::vec(".{0,8}", 0..4)),
        )
            .prop_map(
                |(count, cidrs, ports, number, numbers, strings)| MetricValue {
                    count,
                    cidrs,
                    ports,
                    number,
                    numbers,
                    strings,
                },
            )
    }

    /// Bitwise float comparison, so NaN round-trips count as equal.
    fn same(a: &MetricValue, b: &MetricValue) -> bool {
        let bits = |v: &Option<Vec<f64>>| {
            v.as_ref()
                .map(|xs| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        };
        a.count == b.count
            && a.cidrs == b.cidrs
            && a.ports == b.ports
            && a.number.map(f64::to_bits) == b.number.map(f64::to_bits)
            && bits(&a.numbers) == bits(&b.numbers)
            && a.strings == b.strings
    }

    proptest! {
        #[test]
        fn metric_values_round_trip(v in value()) {
            let mut buf = Vec::new();
            encode_metric_value(&v, &mut buf);
            let back = decode_metric_value(&buf).expect("decodes");
            prop_assert!(same(&v, &back));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_metric_value(&bytes);
            let _ = decode_event(&bytes);
            let _ = event_violation_id(&bytes);
        }
    }

    #[test]
    fn a_count_is_small_and_trailing_bytes_are_refused() {
        let mut buf = Vec::new();
        encode_metric_value(&MetricValue::count(300), &mut buf);
        assert_eq!(buf.len(), 4);
        buf.push(0);
        assert_eq!(decode_metric_value(&buf), None);
    }

    #[test]
    fn events_round_trip_and_expose_their_id() {
        let e = ViolationEvent {
            violation_id: "abc".into(),
            thing_name: "t".into(),
            ..ViolationEvent::default()
        };
        let buf = encode_event(&e).expect("encodes");
        assert_eq!(event_violation_id(&buf), Some("abc"));
        assert_eq!(decode_event(&buf).expect("decodes"), e);
    }
}
