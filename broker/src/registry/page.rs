//! Pagination shared by every list call: results come in a stable order
//! (by the sort key of each list, usually the name), and the token is the
//! hex of the last key returned, prefixed so a token from another kind of
//! cursor is recognisably foreign. Keys are stable across restarts, so a
//! token stays valid after a reopen; entries added behind the cursor are
//! simply not seen by that walk.

use super::RegistryError;

/// AWS's default page size for registry lists (`ListCertificates` says 25).
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// `RegistryMaxResults` / `PageSize`: 1..=250.
pub const MAX_PAGE_SIZE: usize = 250;

const PREFIX: &str = "wmq1-";

/// One page of results and the token for the next one (`None` at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// A request for one page: `max_results` (1..=250, default 25) and the
/// token returned by the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub max_results: Option<usize>,
    pub next_token: Option<String>,
}

impl PageRequest {
    pub fn new(max_results: Option<usize>, next_token: Option<String>) -> Self {
        Self {
            max_results,
            next_token,
        }
    }
}

pub(crate) fn encode_token(key: &str) -> String {
    let mut s = String::with_capacity(PREFIX.len() + key.len() * 2);
    s.push_str(PREFIX);
    for b in key.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub(crate) fn decode_token(token: &str) -> Result<String, RegistryError> {
    let bad = || RegistryError::invalid(format!("invalid nextToken {token:?}"));
    let hex = token.strip_prefix(PREFIX).ok_or_else(bad)?;
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// Cuts one page out of `items`, which must already be sorted by `key`
/// with unique keys. Resumes strictly after the key in the token.
pub(crate) fn paginate<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> String,
    req: &PageRequest,
) -> Result<Page<T>, RegistryError> {
    let max = req.max_results.unwrap_or(DEFAULT_PAGE_SIZE);
    if max == 0 || max > MAX_PAGE_SIZE {
        return Err(RegistryError::invalid(format!(
            "maxResults must be between 1 and {MAX_PAGE_SIZE}, got {max}"
        )));
    }
    let after = match &req.next_token {
        Some(t) => Some(decode_token(t)?),
        None => None,
    };
    let mut iter = items
        .into_iter()
        .map(|item| (key(&item), item))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .peekable();
    let mut out = Vec::with_capacity(max.min(64));
    let mut last = None;
    while out.len() < max {
        match iter.next() {
            Some((k, item)) => {
                last = Some(k);
                out.push(item);
            }
            None => break,
        }
    }
    let next_token = match (iter.peek(), last) {
        (Some(_), Some(k)) => Some(encode_token(&k)),
        _ => None,
    };
    Ok(Page {
        items: out,
        next_token,
    })
}
