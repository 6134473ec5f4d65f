//! Turning a PEM certificate into what the registry stores: its id
//! (SHA-256 of the DER, AWS's `certificateId`) and the parsed facts that
//! audits need later (validity, subject, issuer, key), so nothing has to
//! re-parse X.509 on a hot path.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::certs::{CertFacts, Validity};
use super::RegistryError;

/// `CertificatePem` is at most 65536 characters in the AWS model.
const MAX_PEM_LEN: usize = 65_536;

/// A parsed certificate: canonical id, DER, and its facts.
pub(crate) struct Parsed {
    pub(crate) id: String,
    pub(crate) der: Vec<u8>,
    pub(crate) validity: Validity,
    pub(crate) facts: CertFacts,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::CertificateValidation(msg.into())
}

pub use crate::net::identity::certificate_id;

/// Parses the first certificate in `pem`.
pub(crate) fn parse(pem: &str) -> Result<Parsed, RegistryError> {
    if pem.is_empty() || pem.len() > MAX_PEM_LEN {
        return Err(invalid(format!(
            "certificate PEM must be 1 to {MAX_PEM_LEN} characters"
        )));
    }
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| invalid(format!("no PEM certificate found: {e}")))?;
    let der = der.as_ref().to_vec();
    let (rest, cert) = X509Certificate::from_der(&der)
        .map_err(|e| invalid(format!("not a valid X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after the certificate's DER"));
    }
    let validity = Validity {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    };
    let spki = cert.public_key();
    let (key_algorithm, key_size) = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => ("RSA", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(k)) => ("EC", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::DSA(k)) => ("DSA", k.len() * 8),
        _ => ("UNKNOWN", 0),
    };
    // Ed25519 keys parse as Unknown; name them by OID so audits can see them.
    let key_algorithm = match (
        key_algorithm,
        spki.algorithm.algorithm.to_id_string().as_str(),
    ) {
        ("UNKNOWN", "1.3.101.112") => "ED25519".to_owned(),
        ("UNKNOWN", oid) => oid.to_owned(),
        (name, _) => name.to_owned(),
    };
    let subject_cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let facts = CertFacts {
        subject: cert.subject().to_string(),
        subject_cn,
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        key_algorithm,
        key_size: u32::try_from(key_size).unwrap_or(u32::MAX),
        signature_algorithm: cert.signature_algorithm.algorithm.to_id_string(),
        is_ca: cert.is_ca(),
        self_signed: cert.subject() == cert.issuer(),
    };
    Ok(Parsed {
        id: certificate_id(&der),
        der,
        validity,
        facts,
    })
}

/// Whether `cert_der` carries a valid signature by `ca_der`'s key.
pub(crate) fn signed_by(cert_der: &[u8], ca_der: &[u8]) -> Result<(), RegistryError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| invalid(format!("not a valid X.509 certificate: {e}")))?;
    let (_, ca) = X509Certificate::from_der(ca_der)
        .map_err(|e| invalid(format!("CA is not a valid X.509 certificate: {e}")))?;
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| invalid(format!("the certificate is not signed by the CA: {e}")))
}
