//! What can go wrong in the defender's stores, split by who caused it, so
//! the admin API can map each variant to an AWS error without parsing text.

use crate::alarms::VerificationError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A `nextToken` we did not issue, issued for another query, or
    /// damaged. The API answers `InvalidRequestException`.
    #[error("invalid nextToken")]
    InvalidToken,
    /// A request the store cannot serve as asked (bad `maxResults`, a time
    /// range that ends before it starts, a name too long to key). The API
    /// answers `InvalidRequestException` with this message.
    #[error("{0}")]
    InvalidRequest(String),
    /// PutVerificationStateOnViolation for an ID that is neither active nor
    /// in the history. The API answers `ResourceNotFoundException`.
    #[error("no violation with id {0}")]
    ViolationNotFound(String),
    /// A verification description that breaks the model's rules. The API
    /// answers `InvalidRequestException`.
    #[error(transparent)]
    Verification(VerificationError),
    /// The database failed (I/O, a damaged file, a full disk). Internal.
    #[error("defender store: {0}")]
    Storage(String),
}

/// Any redb error becomes an internal storage error with its text.
pub(crate) fn storage(e: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(e.to_string())
}
