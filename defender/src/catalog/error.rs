//! What a catalog call refused. Each variant is one AWS IoT error, so the
//! admin API maps them 1:1 without reading messages.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// `InvalidRequestException` (400): malformed input, every problem in
    /// one message; or a deletion of something still in use.
    #[error("{0}")]
    InvalidRequest(String),
    /// `ResourceNotFoundException` (404).
    #[error("{kind} {name} does not exist")]
    NotFound { kind: &'static str, name: String },
    /// `ResourceAlreadyExistsException` (409); AWS returns the id and ARN.
    #[error("{kind} {name} already exists")]
    AlreadyExists {
        kind: &'static str,
        name: String,
        arn: String,
    },
    /// `VersionConflictException` (409): `expectedVersion` did not match.
    #[error(
        "security profile {name}: expected version {expected} but the current version is {actual}"
    )]
    VersionConflict {
        name: String,
        expected: i64,
        actual: i64,
    },
    /// `LimitExceededException` (HTTP 410, as the model has it).
    #[error("{0}")]
    LimitExceeded(String),
    /// A bad `nextToken` or `maxResults` (400), or storage failing (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CatalogError {
    /// The AWS error code (`x-amzn-ErrorType`).
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "InvalidRequestException",
            Self::NotFound { .. } => "ResourceNotFoundException",
            Self::AlreadyExists { .. } => "ResourceAlreadyExistsException",
            Self::VersionConflict { .. } => "VersionConflictException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::Store(StoreError::Storage(_)) => "InternalFailureException",
            Self::Store(_) => "InvalidRequestException",
        }
    }

    /// The HTTP status the model gives that code.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) => 400,
            Self::NotFound { .. } => 404,
            Self::AlreadyExists { .. } | Self::VersionConflict { .. } => 409,
            Self::LimitExceeded(_) => 410,
            Self::Store(StoreError::Storage(_)) => 500,
            Self::Store(_) => 400,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }

    pub(crate) fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            name: name.into(),
        }
    }

    /// DetachSecurityProfile of a profile from a target it is not on.
    pub(crate) fn not_attached(profile: &str, target_arn: &str) -> Self {
        Self::NotFound {
            kind: "attachment of security profile",
            name: format!("{profile} to {target_arn}"),
        }
    }
}
