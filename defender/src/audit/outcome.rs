//! What a check produces before the runner numbers, times and suppresses
//! it.

use super::model::Resource;

/// One non-compliant resource, as a check reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub resource: Resource,
    pub related: Vec<Resource>,
    pub reason: String,
    pub code: &'static str,
}

/// A check's result: how many resources it looked at, and the drafts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub total: u64,
    pub drafts: Vec<Draft>,
    /// A note for the check's `message` (e.g. a CRL that could not be
    /// used); the check still completed.
    pub note: Option<String>,
}

/// Reason codes (spec §5.2), plus wardmq's own for short keys.
pub mod codes {
    pub const CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES: &str =
        "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES";
    pub const DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS: &str =
        "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS";
    pub const CERTIFICATE_APPROACHING_EXPIRATION: &str = "CERTIFICATE_APPROACHING_EXPIRATION";
    pub const CERTIFICATE_PAST_EXPIRATION: &str = "CERTIFICATE_PAST_EXPIRATION";
    pub const CERTIFICATE_PAST_AGE_THRESHOLD: &str = "CERTIFICATE_PAST_AGE_THRESHOLD";
    pub const CVE_2017_15361: &str = "CERTIFICATE_KEY_VULNERABILITY_CVE-2017-15361";
    /// Not an AWS code: AWS refuses RSA keys under 2048 bits at
    /// registration, wardmq registers them and reports them here.
    pub const CERTIFICATE_KEY_TOO_SHORT: &str = "CERTIFICATE_KEY_TOO_SHORT";
    pub const CERTIFICATE_REVOKED_BY_ISSUER: &str = "CERTIFICATE_REVOKED_BY_ISSUER";
    pub const INTERMEDIATE_CA_REVOKED_BY_ISSUER: &str = "INTERMEDIATE_CA_REVOKED_BY_ISSUER";
    pub const ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS: &str =
        "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS";
    pub const POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT: &str =
        "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT";
    pub const TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS: &str =
        "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS";
    pub const LOGGING_DISABLED: &str = "LOGGING_DISABLED";
}
