//! ListActiveViolations: active violations live in the alarm book (in
//! memory, saved by [`super::ViolationStore`]); this pages them.

use super::error::StoreError;
use super::filter::ViolationFilter;
use super::page::{decode_token, encode_token, page_size, Fingerprint, Page, TokenKind};
use crate::alarms::AlarmBook;
use crate::detect::model::ActiveViolation;

/// One page of `book`'s active violations that match `filter`, in
/// violation-ID order: the book's map has no order, and the ID is stable
/// for a violation's life, so a token (the last ID returned) stays valid
/// while alarms come and go. Cost: one pass over the book per page.
pub fn list_active(
    book: &AlarmBook,
    filter: &ViolationFilter,
    max_results: Option<u32>,
    next_token: Option<&str>,
) -> Result<Page<ActiveViolation>, StoreError> {
    let limit = page_size(max_results)?;
    let query = filter.fingerprint(Fingerprint::new());
    let after = next_token
        .map(|t| decode_token(t, TokenKind::ActiveViolations, query))
        .transpose()?;
    let mut matching: Vec<ActiveViolation> = book
        .active()
        .filter(|a| filter.matches_active(a))
        .filter(|a| {
            after
                .as_deref()
                .is_none_or(|after| a.violation_id.as_bytes() > after)
        })
        .collect();
    matching.sort_unstable_by(|a, b| a.violation_id.cmp(&b.violation_id));
    let more = matching.len() > limit;
    matching.truncate(limit);
    let next_token = match matching.last() {
        Some(last) if more => Some(encode_token(
            TokenKind::ActiveViolations,
            query,
            last.violation_id.as_bytes(),
        )),
        _ => None,
    };
    Ok(Page {
        items: matching,
        next_token,
    })
}
