//! The development PKI: a throwaway CA, the TLS listener's server
//! certificate and device certificates registered the AWS IoT way
//! (certificate ACTIVE under its CA, attached to a thing of the same name,
//! with a least-privilege policy). Used by `wardmq certs`, by `wardmq serve`
//! on a fresh checkout, by the admin API's CreateKeysAndCertificate, and by
//! tests that need good and bad certificates.
//!
//! - [`issue`]: making certificates (no files, no registry);
//! - [`dev`]: the `certs/` layout and registering what was made.

use wardmq_broker::registry::Scope;

pub mod dev;
pub mod issue;

pub use dev::{
    device, ensure_dev_pki, init, DevPki, DeviceFiles, DeviceReport, InitReport, PkiPaths,
    DEFAULT_POLICY_DOCUMENT, DEFAULT_POLICY_NAME, DEFAULT_TLS_PORT, DEMO_DEVICE,
};
pub use issue::{
    expired_device_cert, issue_device_cert, issue_server_cert, not_yet_valid_device_cert,
    openssl_available, rsa1024_device_cert, self_signed_device_cert, server_auth_only_cert,
    unrelated_ca, CertOptions, Issued, Issuer,
};

/// AWS region the registry's ARNs use.
// TODO(admin API): read from the `[aws]` config section once it lands;
// this is the only place the default is written.
pub const DEFAULT_REGION: &str = "us-east-1";
/// AWS account id the registry's ARNs use.
// TODO(admin API): read from the `[aws]` config section once it lands.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// The registry scope until the `[aws]` config section exists.
pub fn default_scope() -> Scope {
    Scope::new(DEFAULT_REGION, DEFAULT_ACCOUNT)
}

/// The registry file inside a data directory.
pub fn registry_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("registry.redb")
}

#[cfg(test)]
mod tests;
