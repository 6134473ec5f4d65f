//! A device's identity, typed once from its verified end-entity certificate
//! right after the TLS handshake. Raw DER goes no further than
//! [`DeviceIdentity::from_certificate`]: the rest of the broker sees ids,
//! names and times.

use std::fmt::Write as _;

use x509_parser::prelude::{FromDer, X509Certificate};

/// AWS IoT's `certificateId`: lowercase SHA-256 hex of the certificate's DER.
/// Used for device certificates and CA certificates alike.
pub fn certificate_id(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// Lowercase hex, no separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Who is on the other end of a mutual-TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// SHA-256 hex of the end-entity certificate's DER (the principal).
    pub certificate_id: String,
    /// The subject's first common name, if it has one and it is text.
    pub common_name: Option<String>,
    /// The issuer's distinguished name, RFC 4514 style (`CN=..., O=...`).
    pub issuer: String,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
    /// The ACTIVE registered CA the certificate chained to; `None` for a
    /// certificate registered without a CA.
    pub issuing_ca_id: Option<String>,
    /// Serial number: its DER integer bytes, as CRLs list them.
    pub serial: Vec<u8>,
}

/// The certificate could not be read (the verifier already parsed it, so
/// this only happens if the two parsers disagree).
#[derive(Debug, thiserror::Error)]
#[error("device certificate is not valid DER X.509")]
pub struct BadCertificate;

impl DeviceIdentity {
    /// Types the identity from the peer's end-entity certificate and the CA
    /// the verifier found for it.
    pub fn from_certificate(
        end_entity_der: &[u8],
        issuing_ca_id: Option<String>,
    ) -> Result<Self, BadCertificate> {
        let (rest, cert) = X509Certificate::from_der(end_entity_der).map_err(|_| BadCertificate)?;
        if !rest.is_empty() {
            return Err(BadCertificate);
        }
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let validity = cert.validity();
        Ok(Self {
            certificate_id: certificate_id(end_entity_der),
            common_name,
            issuer: cert.issuer().to_string(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            issuing_ca_id,
            serial: cert.raw_serial().to_vec(),
        })
    }
}
