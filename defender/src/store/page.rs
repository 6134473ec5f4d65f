//! Pages and `nextToken`s.
//!
//! A token is opaque to clients but checked by us: it carries a version,
//! which list it belongs to, a fingerprint of the query that made it and a
//! checksum, then the position to resume after. A token from another query
//! (other thing, other time range, other filters), a truncated or edited
//! one, or any other string is [`StoreError::InvalidToken`], never a
//! silently wrong page. Tokens hold a position, not a snapshot: records
//! written or expired between two pages show up or vanish as they would in
//! a fresh query, and none is returned twice.

use super::error::StoreError;

/// `MaxResults`: 1 to 250 in the model.
pub const MAX_RESULTS: u32 = 250;

/// One page of a list, as the AWS list operations return it.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `None` on the last page (AWS: "null if there are no additional
    /// results"), so a client never fetches an empty page.
    pub next_token: Option<String>,
}

/// Which list a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TokenKind {
    MetricValues = 1,
    ViolationEvents = 2,
    ActiveViolations = 3,
    SecurityProfiles = 4,
    ProfileTargets = 5,
    TargetProfiles = 6,
    Dimensions = 7,
    CustomMetrics = 8,
    ModelSummaries = 9,
    // The audit's lists, numbered apart from the Detect ones.
    AuditFindingsByTask = 20,
    AuditFindingsByTime = 21,
    AuditTasks = 22,
    ScheduledAudits = 23,
    AuditSuppressions = 24,
    RelatedResources = 25,
    MitigationActions = 30,
    AuditMitigationTasks = 31,
    AuditMitigationExecutions = 32,
    DetectMitigationTasks = 33,
    DetectMitigationExecutions = 34,
    Tags = 35,
}

const TOKEN_V1: u8 = 1;

/// The page size for `maxResults`: absent means the largest page; outside
/// 1..=250 is the request's fault.
pub(crate) fn page_size(max_results: Option<u32>) -> Result<usize, StoreError> {
    match max_results {
        None => Ok(MAX_RESULTS as usize),
        Some(n @ 1..=MAX_RESULTS) => Ok(n as usize),
        Some(n) => Err(StoreError::InvalidRequest(format!(
            "maxResults must be between 1 and {MAX_RESULTS}, got {n}"
        ))),
    }
}

/// One page of an in-memory list that is in ascending order of a unique
/// `key` (the catalog's lists): the items after the token's position, at
/// most `max_results` of them.
pub(crate) fn page_sorted<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> Vec<u8>,
    kind: TokenKind,
    query: Fingerprint,
    max_results: Option<u32>,
    next_token: Option<&str>,
) -> Result<Page<T>, StoreError> {
    let limit = page_size(max_results)?;
    let after = next_token
        .map(|t| decode_token(t, kind, query))
        .transpose()?;
    let mut rest = items
        .into_iter()
        .filter(|item| after.as_ref().is_none_or(|a| key(item) > *a))
        .peekable();
    let mut out = Vec::new();
    while out.len() < limit {
        match rest.next() {
            Some(item) => out.push(item),
            None => break,
        }
    }
    let next_token = match (rest.peek(), out.last()) {
        (Some(_), Some(last)) => Some(encode_token(kind, query, &key(last))),
        _ => None,
    };
    Ok(Page {
        items: out,
        next_token,
    })
}

/// A stable fingerprint of a query's parameters. FNV-1a rather than std's
/// hasher: tokens must stay valid across restarts and Rust versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint(u64);

impl Fingerprint {
    pub(crate) fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(mut self, b: &[u8]) -> Self {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    /// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    pub(crate) fn field(self, b: &[u8]) -> Self {
        self.bytes(&(b.len() as u64).to_le_bytes()).bytes(b)
    }

    pub(crate) fn opt(self, b: Option<&[u8]>) -> Self {
        match b {
            None => self.bytes(&[0]),
            Some(b) => self.bytes(&[1]).field(b),
        }
    }

    pub(crate) fn u64(self, n: u64) -> Self {
        self.bytes(&n.to_le_bytes())
    }
}

/// `[version][kind][fingerprint: 8][position][checksum: 4]`, in hex.
pub(crate) fn encode_token(kind: TokenKind, query: Fingerprint, position: &[u8]) -> String {
    let mut raw = Vec::with_capacity(14 + position.len());
    raw.push(TOKEN_V1);
    raw.push(kind as u8);
    raw.extend_from_slice(&query.0.to_le_bytes());
    raw.extend_from_slice(position);
    let sum = checksum(&raw);
    raw.extend_from_slice(&sum);
    let mut s = String::with_capacity(raw.len() * 2);
    for b in raw {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    s
}

/// The position a token resumes after, if it is one of ours for exactly
/// this kind of list and this query.
pub(crate) fn decode_token(
    token: &str,
    kind: TokenKind,
    query: Fingerprint,
) -> Result<Vec<u8>, StoreError> {
    let raw = from_hex(token).ok_or(StoreError::InvalidToken)?;
    let (body, sum) = raw
        .split_last_chunk::<4>()
        .ok_or(StoreError::InvalidToken)?;
    if checksum(body) != *sum {
        return Err(StoreError::InvalidToken);
    }
    match body {
        [TOKEN_V1, k, rest @ ..] if *k == kind as u8 => {
            let (fp, position) = rest
                .split_first_chunk::<8>()
                .ok_or(StoreError::InvalidToken)?;
            if u64::from_le_bytes(*fp) != query.0 {
                return Err(StoreError::InvalidToken);
            }
            Ok(position.to_vec())
        }
        _ => Err(StoreError::InvalidToken),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn from_hex(s: &str) -> Option<Vec<u8>> {
    // Tokens are short; a huge one is garbage, not worth decoding.
    if s.len() % 2 != 0 || s.len() > 4096 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

fn checksum(b: &[u8]) -> [u8; 4] {
    let h = Fingerprint::new().bytes(b).0;
    ((h >> 32) as u32 ^ h as u32).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_query() {
        let q = Fingerprint::new().field(b"thing").u64(5);
        let t = encode_token(TokenKind::MetricValues, q, &[1, 2, 3]);
        assert_eq!(
            decode_token(&t, TokenKind::MetricValues, q).expect("ours"),
            vec![1, 2, 3]
        );
        let other = Fingerprint::new().field(b"thing").u64(6);
        for bad in [
            decode_token(&t, TokenKind::MetricValues, other),
            decode_token(&t, TokenKind::ViolationEvents, q),
            decode_token(&t[..t.len() - 2], TokenKind::MetricValues, q),
            decode_token("zz", TokenKind::MetricValues, q),
            decode_token("", TokenKind::MetricValues, q),
        ] {
            assert!(matches!(bad, Err(StoreError::InvalidToken)));
        }
        // One changed digit is caught by the checksum.
        let mut edited = t.into_bytes();
        edited[24] = if edited[24] == b'0' { b'1' } else { b'0' };
        let edited = String::from_utf8(edited).expect("hex");
        assert!(decode_token(&edited, TokenKind::MetricValues, q).is_err());
    }

    #[test]
    fn fingerprint_fields_do_not_run_together() {
        let a = Fingerprint::new().field(b"ab").field(b"c");
        let b = Fingerprint::new().field(b"a").field(b"bc");
        assert_ne!(a, b);
        assert_ne!(
            Fingerprint::new().opt(None),
            Fingerprint::new().opt(Some(b""))
        );
    }

    #[test]
    fn page_size_follows_the_model() {
        assert_eq!(page_size(None).expect("default"), 250);
        assert_eq!(page_size(Some(1)).expect("min"), 1);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(251)).is_err());
    }
}
