//! What a mitigation call refused; each variant is one AWS IoT error.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MitigationError {
    /// `InvalidRequestException` (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// `ResourceNotFoundException` (404).
    #[error("{0}")]
    NotFound(String),
    /// `ResourceAlreadyExistsException` (409).
    #[error("{message}")]
    AlreadyExists {
        message: String,
        id: String,
        arn: String,
    },
    /// `TaskAlreadyExistsException` (400, as the model has it).
    #[error("{0}")]
    TaskAlreadyExists(String),
    /// `LimitExceededException` (HTTP 410, as the model has it).
    #[error("{0}")]
    LimitExceeded(String),
    /// A bad `nextToken` or `maxResults` (400), or storage failing (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MitigationError {
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "InvalidRequestException",
            Self::NotFound(_) => "ResourceNotFoundException",
            Self::AlreadyExists { .. } => "ResourceAlreadyExistsException",
            Self::TaskAlreadyExists(_) => "TaskAlreadyExistsException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::Store(StoreError::Storage(_)) => "InternalFailureException",
            Self::Store(_) => "InvalidRequestException",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) | Self::TaskAlreadyExists(_) => 400,
            Self::NotFound(_) => 404,
            Self::AlreadyExists { .. } => 409,
            Self::LimitExceeded(_) => 410,
            Self::Store(StoreError::Storage(_)) => 500,
            Self::Store(_) => 400,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }
}
