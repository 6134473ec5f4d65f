//! The audit checks AWS IoT Device Defender defines (spec §5.2): their API
//! names, the legacy names older documents and SNS schemas use (accepted
//! on input, never emitted), severities, and which of them a self-hosted
//! broker can run at all.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `AuditFindingSeverity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

/// A `ConfigName` of `CheckCustomConfiguration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfigName {
    CertAgeThresholdInDays,
    CertExpirationThresholdInDays,
}

impl ConfigName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CertAgeThresholdInDays => "CERT_AGE_THRESHOLD_IN_DAYS",
            Self::CertExpirationThresholdInDays => "CERT_EXPIRATION_THRESHOLD_IN_DAYS",
        }
    }

    /// The allowed range and the default, in days (the check pages:
    /// 30 to 3652 for both; 365 for the age, 30 for the expiration).
    pub fn range_and_default(self) -> (u32, u32, u32) {
        match self {
            Self::CertAgeThresholdInDays => (30, 3652, 365),
            Self::CertExpirationThresholdInDays => (30, 3652, 30),
        }
    }
}

macro_rules! checks {
    ($($variant:ident = $name:literal, $severity:ident;)*) => {
        /// An audit check, by its current API name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CheckName {
            $($variant,)*
        }

        impl CheckName {
            /// Every check AWS defines, in the order
            /// DescribeAccountAuditConfiguration lists them.
            pub const ALL: &'static [CheckName] = &[$(CheckName::$variant,)*];

            /// The API name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckName::$variant => $name,)*
                }
            }

            pub fn severity(self) -> Severity {
                match self {
                    $(CheckName::$variant => Severity::$severity,)*
                }
            }
        }
    };
}

checks! {
    AuthenticatedCognitoRoleOverlyPermissive = "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", Critical;
    CaCertificateExpiring = "CA_CERTIFICATE_EXPIRING_CHECK", Medium;
    CaCertificateKeyQuality = "CA_CERTIFICATE_KEY_QUALITY_CHECK", Critical;
    ConflictingClientIds = "CONFLICTING_CLIENT_IDS_CHECK", High;
    DeviceCertificateAge = "DEVICE_CERTIFICATE_AGE_CHECK", Low;
    DeviceCertificateExpiring = "DEVICE_CERTIFICATE_EXPIRING_CHECK", Medium;
    DeviceCertificateKeyQuality = "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", Critical;
    DeviceCertificateShared = "DEVICE_CERTIFICATE_SHARED_CHECK", Critical;
    IntermediateCaRevokedForActiveDeviceCertificates = "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK", Critical;
    IotPolicyOverlyPermissive = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK", Critical;
    IotPolicyPotentialMisConfiguration = "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK", Medium;
    IotRoleAliasAllowsAccessToUnusedServices = "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK", Medium;
    IotRoleAliasOverlyPermissive = "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", Critical;
    LoggingDisabled = "LOGGING_DISABLED_CHECK", Low;
    RevokedCaCertificateStillActive = "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", Critical;
    RevokedDeviceCertificateStillActive = "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", Medium;
    UnauthenticatedCognitoRoleOverlyPermissive = "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", Critical;
}

/// Names from older AWS documents (the 2019 mitigation and suppression
/// tables, the first SNS schema, the misconfiguration check's own page)
/// and the current name each stands for.
const LEGACY: &[(&str, CheckName)] = &[
    (
        "CA_CERT_APPROACHING_EXPIRATION_CHECK",
        CheckName::CaCertificateExpiring,
    ),
    (
        "DEVICE_CERT_APPROACHING_EXPIRATION_CHECK",
        CheckName::DeviceCertificateExpiring,
    ),
    (
        "REVOKED_CA_CERT_CHECK",
        CheckName::RevokedCaCertificateStillActive,
    ),
    (
        "REVOKED_DEVICE_CERT_CHECK",
        CheckName::RevokedDeviceCertificateStillActive,
    ),
    (
        "IOT_POLICY_UNRESTRICTED_CHECK",
        CheckName::IotPolicyOverlyPermissive,
    ),
    (
        "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
        CheckName::IotPolicyPotentialMisConfiguration,
    ),
];

impl CheckName {
    /// A current or legacy name; `None` for anything else.
    pub fn parse(name: &str) -> Option<CheckName> {
        CheckName::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == name)
            .or_else(|| LEGACY.iter().find(|(n, _)| *n == name).map(|(_, c)| *c))
    }

    /// Like [`CheckName::parse`], with the 400 message for an unknown name.
    pub fn parse_or_err(field: &str, name: &str) -> Result<CheckName, String> {
        CheckName::parse(name)
            .ok_or_else(|| format!("{field}: {name:?} is not an audit check name"))
    }

    /// Why the check cannot run on a self-hosted broker, if it cannot:
    /// the Cognito checks audit identity pools and the role-alias checks
    /// audit IAM roles, and wardmq has neither.
    pub fn unsupported_reason(self) -> Option<&'static str> {
        match self {
            Self::AuthenticatedCognitoRoleOverlyPermissive
            | Self::UnauthenticatedCognitoRoleOverlyPermissive => Some(
                "audits Amazon Cognito identity pool roles; wardmq authenticates devices with \
                 X.509 certificates and has no Cognito identity pools",
            ),
            Self::IotRoleAliasAllowsAccessToUnusedServices | Self::IotRoleAliasOverlyPermissive => {
                Some(
                    "audits the IAM roles behind role aliases; wardmq has no credentials provider, \
                     role aliases or IAM roles",
                )
            }
            _ => None,
        }
    }

    /// The configuration keys the check takes.
    pub fn config_names(self) -> &'static [ConfigName] {
        match self {
            Self::DeviceCertificateAge => &[ConfigName::CertAgeThresholdInDays],
            Self::DeviceCertificateExpiring | Self::CaCertificateExpiring => {
                &[ConfigName::CertExpirationThresholdInDays]
            }
            _ => &[],
        }
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CheckName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CheckName::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an audit check name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_legacy_names_are_aliases() {
        assert_eq!(CheckName::ALL.len(), 17);
        for &c in CheckName::ALL {
            assert_eq!(CheckName::parse(c.as_str()), Some(c));
        }
        assert_eq!(
            CheckName::parse("REVOKED_CA_CERT_CHECK"),
            Some(CheckName::RevokedCaCertificateStillActive)
        );
        assert_eq!(
            CheckName::parse("IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK"),
            Some(CheckName::IotPolicyPotentialMisConfiguration)
        );
        assert_eq!(CheckName::parse("logging_disabled_check"), None);
        let json = serde_json::to_string(&CheckName::parse(
            "DEVICE_CERT_APPROACHING_EXPIRATION_CHECK",
        ))
        .unwrap_or_default();
        assert_eq!(json, "\"DEVICE_CERTIFICATE_EXPIRING_CHECK\"");
    }

    #[test]
    fn severities_follow_the_spec() {
        assert_eq!(
            CheckName::DeviceCertificateShared.severity(),
            Severity::Critical
        );
        assert_eq!(CheckName::ConflictingClientIds.severity(), Severity::High);
        assert_eq!(
            CheckName::DeviceCertificateExpiring.severity(),
            Severity::Medium
        );
        assert_eq!(CheckName::DeviceCertificateAge.severity(), Severity::Low);
        assert_eq!(
            CheckName::RevokedDeviceCertificateStillActive.severity(),
            Severity::Medium
        );
        assert_eq!(
            CheckName::RevokedCaCertificateStillActive.severity(),
            Severity::Critical
        );
        assert_eq!(
            CheckName::IotPolicyPotentialMisConfiguration.severity(),
            Severity::Medium
        );
        assert_eq!(CheckName::LoggingDisabled.severity(), Severity::Low);
        let unsupported = CheckName::ALL
            .iter()
            .filter(|c| c.unsupported_reason().is_some())
            .count();
        assert_eq!(unsupported, 4);
    }
}
