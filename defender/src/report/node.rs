//! A format-neutral document tree that both decoders (JSON and CBOR)
//! produce, so one schema walk serves both formats.
//!
//! Maps keep every entry in order, duplicates included: `serde_json::Value`
//! would silently keep the last of two equal keys, and a report that says
//! `header` twice (or `header` and `hed`) is ambiguous and must be refused.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    /// Any integer that fits in a u64.
    UInt(u64),
    /// A negative integer (CBOR can carry down to -2^64).
    NegInt(i128),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Array(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The node's kind, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::UInt(_) | Node::NegInt(_) => "an integer",
            Node::Float(_) => "a floating-point number",
            Node::Text(_) => "a string",
            Node::Bytes(_) => "a byte string",
            Node::Array(_) => "an array",
            Node::Map(_) => "an object",
        }
    }
}

/// Why a payload could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

/// Decodes a JSON document. serde_json refuses trailing data and nests at
/// most 128 levels, so hostile input cannot exhaust the stack.
pub(crate) fn decode_json(payload: &[u8]) -> Result<Node, DecodeError> {
    serde_json::from_slice(payload).map_err(|e| DecodeError(format!("invalid JSON: {e}")))
}

/// Decodes one CBOR data item and refuses trailing bytes (a second item
/// would otherwise be silently ignored). ciborium nests at most 256 levels
/// and grows strings as it reads them rather than trusting a length header.
pub(crate) fn decode_cbor(payload: &[u8]) -> Result<Node, DecodeError> {
    let mut rest = payload;
    let node: Node = ciborium::de::from_reader(&mut rest)
        .map_err(|e| DecodeError(format!("invalid CBOR: {e}")))?;
    if !rest.is_empty() {
        return Err(DecodeError(format!(
            "invalid CBOR: {} trailing bytes after the report",
            rest.len()
        )));
    }
    Ok(node)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

/// How many elements to reserve up front at most: a CBOR header can claim
/// billions of elements that the payload does not hold.
const MAX_PREALLOC: usize = 64;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON or CBOR value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => Node::UInt(u),
            Err(_) => Node::NegInt(i128::from(v)),
        })
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        match u64::try_from(v) {
            Ok(u) => Ok(Node::UInt(u)),
            Err(_) if v < 0 => Ok(Node::NegInt(v)),
            Err(_) => Err(E::custom("integer too large")),
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        u64::try_from(v)
            .map(Node::UInt)
            .map_err(|_| E::custom("integer too large"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Text(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Text(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Node, E> {
        Ok(Node::Bytes(v))
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(key) = map.next_key::<Node>()? {
            let Node::Text(key) = key else {
                // Reports are keyed by names; CBOR would allow any key type.
                return Err(de::Error::custom(format!(
                    "map keys must be strings, found {}",
                    key.kind()
                )));
            };
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
    // CBOR tags reach `visit_enum`, which the default refuses: reports use none.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(v: &ciborium::Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).expect("encode");
        out
    }

    #[test]
    fn json_keeps_duplicate_keys_in_order() {
        let n = decode_json(br#"{"a":1,"a":-2,"b":[true,null,1.5,"x"]}"#).expect("json");
        assert_eq!(
            n,
            Node::Map(vec![
                ("a".into(), Node::UInt(1)),
                ("a".into(), Node::NegInt(-2)),
                (
                    "b".into(),
                    Node::Array(vec![
                        Node::Bool(true),
                        Node::Null,
                        Node::Float(1.5),
                        Node::Text("x".into())
                    ])
                ),
            ])
        );
    }

    /// Found by the report_cbor fuzz target: a CBOR report and its JSON
    /// transcoding judged a number differently (`TooPrecise` echoes it).
    #[test]
    fn json_floats_are_read_exactly() {
        let x = 0.123_456_788_779_514_95_f64;
        assert_eq!(decode_json(x.to_string().as_bytes()), Ok(Node::Float(x)));
    }

    #[test]
    fn json_refuses_trailing_data_and_bad_utf8() {
        assert!(decode_json(b"{} {}").is_err());
        assert!(decode_json(b"{\"a\":\"\xff\"}").is_err());
        assert!(decode_json(b"").is_err());
    }

    #[test]
    fn json_deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(decode_json(deep.as_bytes()).is_err());
    }

    #[test]
    fn cbor_values_map_to_nodes() {
        use ciborium::Value as V;
        let v = V::Map(vec![
            (V::Text("n".into()), V::Integer((-5).into())),
            (V::Text("b".into()), V::Bytes(vec![1, 2])),
            (V::Text("f".into()), V::Float(0.25)),
        ]);
        assert_eq!(
            decode_cbor(&cbor(&v)).expect("cbor"),
            Node::Map(vec![
                ("n".into(), Node::NegInt(-5)),
                ("b".into(), Node::Bytes(vec![1, 2])),
                ("f".into(), Node::Float(0.25)),
            ])
        );
    }

    #[test]
    fn cbor_refuses_trailing_bytes_non_text_keys_and_tags() {
        use ciborium::Value as V;
        let mut two = cbor(&V::Map(vec![]));
        two.extend(cbor(&V::Map(vec![])));
        assert!(decode_cbor(&two).is_err());
        let int_key = V::Map(vec![(V::Integer(1.into()), V::Null)]);
        assert!(decode_cbor(&cbor(&int_key)).is_err());
        let tagged = V::Tag(1, Box::new(V::Integer(0.into())));
        assert!(decode_cbor(&cbor(&tagged)).is_err());
        assert!(decode_cbor(&[]).is_err());
    }

    #[test]
    fn cbor_deep_nesting_and_huge_length_claims_are_errors() {
        // 0x81 = array of one element, repeated: nesting far beyond the limit.
        assert!(decode_cbor(&[0x81; 100_000]).is_err());
        // 0x9b + 8 bytes: an array claiming 2^64-1 elements, then nothing.
        let claim = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_cbor(&claim).is_err());
        // A text string claiming 2^32 bytes.
        let text = [0x7a, 0xff, 0xff, 0xff, 0xff, b'a'];
        assert!(decode_cbor(&text).is_err());
    }
}
