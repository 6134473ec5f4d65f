//! The invariants fuzzing checks on device reports: parsing never panics;
//! a payload that decodes, transcoded to the other format (JSON ⇄ CBOR),
//! gets exactly the same verdict, since one schema walk serves both; and
//! every verdict has a reply that encodes and decodes again.

use super::node::{decode_cbor, decode_json, Node};
use super::{accepted_reply, parse_report, rejected_reply, ReportFormat, MAX_REPORT_SIZE};

/// Deeper documents are not transcoded: serde_json stops at 128 levels,
/// ciborium at 256, so the two formats legitimately disagree past that.
const MAX_TRANSCODE_DEPTH: usize = 100;

/// Fuzz and smoke-test entry point: `data` is a report payload received on
/// the `format` topic.
///
/// # Panics
///
/// When an invariant above does not hold.
pub fn fuzz_check(format: ReportFormat, data: &[u8]) {
    let verdict = parse_report(format, data);
    let reply = match &verdict {
        Ok(report) => accepted_reply(format, "thing", report.report_id, 0),
        Err(rejection) => rejected_reply(format, "thing", rejection.report_id, &rejection.error, 0),
    };
    let reply = reply.unwrap_or_else(|e| panic!("{verdict:?}: {e}"));
    let decoded = match format {
        ReportFormat::Json => decode_json(&reply),
        ReportFormat::Cbor => decode_cbor(&reply),
    };
    assert!(decoded.is_ok(), "reply to {verdict:?} does not decode");

    if data.len() > MAX_REPORT_SIZE {
        return;
    }
    let (node, other) = match format {
        ReportFormat::Json => (decode_json(data), ReportFormat::Cbor),
        ReportFormat::Cbor => (decode_cbor(data), ReportFormat::Json),
    };
    let Ok(node) = node else { return };
    let transcoded = match other {
        ReportFormat::Json => to_json(&node, 0),
        ReportFormat::Cbor => to_cbor(&node, 0),
    };
    let Some(transcoded) = transcoded.filter(|t| t.len() <= MAX_REPORT_SIZE) else {
        return;
    };
    assert_eq!(
        parse_report(other, &transcoded),
        verdict,
        "the {} transcoding {:?} disagrees",
        other.as_str(),
        String::from_utf8_lossy(&transcoded)
    );
}

/// JSON text for `node`, or `None` if JSON cannot say the same thing
/// (byte strings, non-finite floats, integers below i64, deep nesting).
/// Written by hand because `serde_json::Value` would merge duplicate keys,
/// which the report parser must see.
fn to_json(node: &Node, depth: usize) -> Option<Vec<u8>> {
    if depth > MAX_TRANSCODE_DEPTH {
        return None;
    }
    Some(match node {
        Node::Null => b"null".to_vec(),
        Node::Bool(b) => text(b)?,
        Node::UInt(u) => text(u)?,
        Node::NegInt(n) => text(&i64::try_from(*n).ok()?)?,
        Node::Float(f) if f.is_finite() => text(f)?,
        Node::Float(_) | Node::Bytes(_) => return None,
        Node::Text(s) => text(s)?,
        Node::Array(items) => {
            let mut out = b"[".to_vec();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(to_json(item, depth + 1)?);
            }
            out.push(b']');
            out
        }
        Node::Map(entries) => {
            let mut out = b"{".to_vec();
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(text(key)?);
                out.push(b':');
                out.extend(to_json(value, depth + 1)?);
            }
            out.push(b'}');
            out
        }
    })
}

/// One scalar's JSON text through serde_json (escapes, float formatting).
fn text<T: serde::Serialize>(value: &T) -> Option<Vec<u8>> {
    serde_json::to_vec(value).ok()
}

/// CBOR for `node` (every node has one), or `None` past the depth limit.
fn to_cbor(node: &Node, depth: usize) -> Option<Vec<u8>> {
    let value = cbor_value(node, depth)?;
    let mut out = Vec::new();
    ciborium::ser::into_writer(&value, &mut out).ok()?;
    Some(out)
}

fn cbor_value(node: &Node, depth: usize) -> Option<ciborium::Value> {
    use ciborium::Value as V;
    if depth > MAX_TRANSCODE_DEPTH {
        return None;
    }
    Some(match node {
        Node::Null => V::Null,
        Node::Bool(b) => V::Bool(*b),
        Node::UInt(u) => V::Integer((*u).into()),
        Node::NegInt(n) => V::Integer((*n).try_into().ok()?),
        Node::Float(f) => V::Float(*f),
        Node::Text(s) => V::Text(s.clone()),
        Node::Bytes(b) => V::Bytes(b.clone()),
        Node::Array(items) => V::Array(
            items
                .iter()
                .map(|item| cbor_value(item, depth + 1))
                .collect::<Option<_>>()?,
        ),
        Node::Map(entries) => V::Map(
            entries
                .iter()
                .map(|(k, v)| Some((V::Text(k.clone()), cbor_value(v, depth + 1)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::fuzz_check;
    use crate::report::ReportFormat;

    /// The report_json and report_cbor fuzz targets' inputs, on stable Rust.
    #[test]
    fn fuzz_inputs_hold_the_invariants() {
        for (target, format) in [
            ("report_json", ReportFormat::Json),
            ("report_cbor", ReportFormat::Cbor),
        ] {
            let n =
                wardmq_broker::fuzz_corpus::replay(env!("CARGO_MANIFEST_DIR"), target, |data| {
                    fuzz_check(format, data)
                });
            assert!(n > 10, "only {n} inputs for {target}");
        }
    }
}
