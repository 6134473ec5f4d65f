//! The CRLs the revocation checks read: the same files the broker's device
//! listener loads (`[[listeners.crl]]`, one per CA id), read again at each
//! audit and held to the broker's rules: a CRL counts only if the CA it is
//! configured for is registered, names that CA as its issuer and is signed
//! by its key. A file that breaks a rule is skipped and named in the
//! check's `message`.
//!
//! Issuers: a certificate registered with a CA was issued by it (the
//! registry checked the signature). For anything else (certificates
//! registered without a CA, CA certificates) the issuer is the registered
//! CA whose subject is the certificate's issuer name and whose key
//! verifies its signature; signatures are only verified when a finding
//! depends on them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use wardmq_broker::registry::CaCertificate;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// The revoked serials (colon hex, as the registry stores serials) of each
/// CA with a usable CRL.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    by_ca: HashMap<String, HashSet<String>>,
    /// Files that could not be used, for the check's message.
    pub(crate) problems: Vec<String>,
}

impl Revocations {
    /// Loads `files` ((CA id, path)) against the registered `cas`.
    pub(crate) fn load(files: &[(String, PathBuf)], cas: &[CaCertificate]) -> Self {
        let mut out = Revocations::default();
        for (ca_id, path) in files {
            match load_one(ca_id, path, cas) {
                Ok(serials) => {
                    out.by_ca.entry(ca_id.clone()).or_default().extend(serials);
                }
                Err(e) => {
                    tracing::warn!(ca_id, path = %path.display(), error = %e, "CRL not used by the audit");
                    out.problems
                        .push(format!("CRL {} for CA {ca_id}: {e}", path.display()));
                }
            }
        }
        out
    }

    /// Whether CA `ca_id`'s CRL lists `serial`.
    pub(crate) fn revokes(&self, ca_id: &str, serial: &str) -> bool {
        self.by_ca.get(ca_id).is_some_and(|s| s.contains(serial))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_ca.is_empty()
    }

    /// The note for a check's `message`, if some CRL was skipped.
    pub(crate) fn note(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            format!(
                "some CRLs could not be used and were skipped: {}",
                self.problems.join("; ")
            )
        })
    }
}

fn load_one(
    ca_id: &str,
    path: &std::path::Path,
    cas: &[CaCertificate],
) -> Result<Vec<String>, String> {
    let ca = cas
        .iter()
        .find(|c| c.id == ca_id)
        .ok_or("the CA is not registered")?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let trimmed = bytes.trim_ascii_start();
    let der = if trimmed.starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::from_pem_slice(trimmed)
            .map_err(|e| format!("no PEM CRL: {e}"))?
            .as_ref()
            .to_vec()
    } else {
        bytes.clone()
    };
    let (_, crl) =
        CertificateRevocationList::from_der(&der).map_err(|e| format!("not a valid CRL: {e}"))?;
    let ca_der = pem_der(&ca.pem).ok_or("the CA's PEM does not decode")?;
    let (_, ca_cert) =
        X509Certificate::from_der(&ca_der).map_err(|_| "the CA certificate does not parse")?;
    if crl.issuer().as_raw() != ca_cert.subject().as_raw() {
        return Err("its issuer is not the CA's subject".into());
    }
    crl.verify_signature(ca_cert.public_key())
        .map_err(|_| "it is not signed by the CA's key")?;
    Ok(crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial_as_string())
        .collect())
}

/// The DER of the first certificate in a PEM text.
pub(crate) fn pem_der(pem: &str) -> Option<Vec<u8>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|d| d.as_ref().to_vec())
}

/// Whether `cert_pem` carries a valid signature by `issuer_pem`'s key.
pub(crate) fn signed_by(cert_pem: &str, issuer_pem: &str) -> bool {
    let (Some(cert), Some(issuer)) = (pem_der(cert_pem), pem_der(issuer_pem)) else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, issuer))) = (
        X509Certificate::from_der(&cert),
        X509Certificate::from_der(&issuer),
    ) else {
        return false;
    };
    cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Registered CAs by subject, for issuer lookups.
pub(crate) struct Issuers<'a> {
    cas: &'a [CaCertificate],
    by_subject: HashMap<&'a str, Vec<usize>>,
    by_id: HashMap<&'a str, usize>,
    /// (child id, candidate CA index) → verified.
    verified: std::cell::RefCell<HashMap<(String, usize), bool>>,
}

impl<'a> Issuers<'a> {
    pub(crate) fn new(cas: &'a [CaCertificate]) -> Self {
        let mut by_subject: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_id = HashMap::new();
        for (i, ca) in cas.iter().enumerate() {
            by_subject
                .entry(ca.facts.subject.as_str())
                .or_default()
                .push(i);
            by_id.insert(ca.id.as_str(), i);
        }
        Self {
            cas,
            by_subject,
            by_id,
            verified: std::cell::RefCell::default(),
        }
    }

    pub(crate) fn ca(&self, id: &str) -> Option<&'a CaCertificate> {
        self.by_id.get(id).map(|&i| &self.cas[i])
    }

    /// Registered CAs that may have issued a certificate with issuer name
    /// `issuer` (not yet verified), other than `exclude` (a CA is not its
    /// own issuer here: roots are self-signed).
    pub(crate) fn candidates(&self, issuer: &str, exclude: &str) -> Vec<&'a CaCertificate> {
        self.by_subject
            .get(issuer)
            .into_iter()
            .flatten()
            .map(|&i| &self.cas[i])
            .filter(|ca| ca.id != exclude)
            .collect()
    }

    /// Whether `ca` signed the certificate `child_id` / `child_pem`
    /// (memoised).
    pub(crate) fn verify(&self, child_id: &str, child_pem: &str, ca: &CaCertificate) -> bool {
        let Some(&i) = self.by_id.get(ca.id.as_str()) else {
            return false;
        };
        let key = (child_id.to_owned(), i);
        if let Some(&v) = self.verified.borrow().get(&key) {
            return v;
        }
        let v = signed_by(child_pem, &ca.pem);
        self.verified.borrow_mut().insert(key, v);
        v
    }

    /// The verified issuer of CA certificate `ca`, if it is registered.
    pub(crate) fn issuer_of_ca(&self, ca: &CaCertificate) -> Option<&'a CaCertificate> {
        if ca.facts.self_signed {
            return None;
        }
        self.candidates(&ca.facts.issuer, &ca.id)
            .into_iter()
            .find(|p| self.verify(&ca.id, &ca.pem, p))
    }
}
