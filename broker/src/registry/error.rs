//! Registry errors. Each variant is one AWS IoT error code, so the admin
//! API maps them 1:1 (`ResourceNotFoundException`, ...) without guessing.

/// What a registry call refused, or why storage failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// `ResourceNotFoundException` (404).
    #[error("{kind} {id} does not exist")]
    ResourceNotFound { kind: &'static str, id: String },
    /// `ResourceAlreadyExistsException` (409); AWS returns the id and ARN.
    #[error("{kind} {id} already exists")]
    ResourceAlreadyExists {
        kind: &'static str,
        id: String,
        arn: String,
    },
    /// `InvalidRequestException` (400): a malformed name, token or value.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// `VersionConflictException` (409): `expectedVersion` did not match.
    #[error("{kind} {id}: expected version {expected} but the current version is {actual}")]
    VersionConflict {
        kind: &'static str,
        id: String,
        expected: u64,
        actual: u64,
    },
    /// `DeleteConflictException` (409): something still refers to it.
    #[error("cannot delete: {0}")]
    DeleteConflict(String),
    /// `CertificateStateException` (406): not allowed in this status.
    #[error("certificate state: {0}")]
    CertificateState(String),
    /// `VersionsLimitExceededException` (409): a policy has 5 versions.
    #[error("policy {0} already has the maximum of 5 versions; delete one first")]
    VersionsLimitExceeded(String),
    /// `LimitExceededException` (410).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// `CertificateValidationException` (400): bad PEM, bad certificate, or
    /// a certificate its CA did not sign.
    #[error("certificate validation: {0}")]
    CertificateValidation(String),
    /// `MalformedPolicyException` (400): the document breaks a size rule.
    /// Document semantics are checked by the caller (the authz module).
    #[error("malformed policy: {0}")]
    MalformedPolicy(String),
    /// `InternalFailureException` (500): the redb file could not be read or
    /// written. The in-memory model is unchanged when this is returned.
    #[error("registry storage: {0}")]
    Storage(String),
}

impl RegistryError {
    /// The AWS error code (the `x-amzn-ErrorType` / `__type` value).
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::ResourceNotFound { .. } => "ResourceNotFoundException",
            Self::ResourceAlreadyExists { .. } => "ResourceAlreadyExistsException",
            Self::InvalidRequest(_) => "InvalidRequestException",
            Self::VersionConflict { .. } => "VersionConflictException",
            Self::DeleteConflict(_) => "DeleteConflictException",
            Self::CertificateState(_) => "CertificateStateException",
            Self::VersionsLimitExceeded(_) => "VersionsLimitExceededException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::CertificateValidation(_) => "CertificateValidationException",
            Self::MalformedPolicy(_) => "MalformedPolicyException",
            Self::Storage(_) => "InternalFailureException",
        }
    }

    /// The HTTP status AWS uses for this code.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::ResourceNotFound { .. } => 404,
            Self::ResourceAlreadyExists { .. }
            | Self::VersionConflict { .. }
            | Self::DeleteConflict(_)
            | Self::VersionsLimitExceeded(_) => 409,
            Self::CertificateState(_) => 406,
            Self::LimitExceeded(_) => 410,
            Self::InvalidRequest(_) | Self::CertificateValidation(_) | Self::MalformedPolicy(_) => {
                400
            }
            Self::Storage(_) => 500,
        }
    }

    pub(crate) fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::ResourceNotFound {
            kind,
            id: id.into(),
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }

    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        Self::Storage(e.to_string())
    }
}
