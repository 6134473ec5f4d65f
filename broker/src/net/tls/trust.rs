//! What the device verifier trusts: the registry's ACTIVE CAs, their CRLs,
//! and the certificates registered without a CA. A snapshot is immutable and
//! swapped as a whole `Arc`, so a handshake sees one consistent view without
//! taking a lock.
//!
//! Device certificate *status* (ACTIVE / INACTIVE / REVOKED) is not here: the
//! broker checks it after the handshake against the registry, where it can
//! change without rebuilding trust.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor};
use tokio::sync::watch;
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::net::identity::certificate_id;

/// A registered CA certificate that cannot be used as a trust anchor.
#[derive(Debug, thiserror::Error)]
#[error("CA certificate {id} is not a usable X.509 certificate")]
pub struct BadCaCertificate {
    pub id: String,
}

/// Why a CRL was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("CRL is not valid DER: {0}")]
    BadEncoding(String),
    #[error("CRL issuer is not the subject of CA {ca_id}")]
    WrongIssuer { ca_id: String },
    #[error("CRL is not signed by CA {ca_id}")]
    BadSignature { ca_id: String },
    #[error("no PEM or DER CRL found: {0}")]
    BadPem(String),
}

/// One ACTIVE registered CA.
#[derive(Debug, Clone)]
pub(crate) struct CaEntry {
    pub(crate) id: String,
    pub(crate) der: CertificateDer<'static>,
    /// This CA's CRL, already checked against the CA's key.
    pub(crate) crl: Option<Arc<Crl>>,
}

/// A CRL parsed once, with the DER kept so it can be re-checked against a
/// CA that appears later.
#[derive(Debug)]
pub(crate) struct Crl {
    pub(crate) der: CertificateRevocationListDer<'static>,
    pub(crate) parsed: CertRevocationList<'static>,
}

impl Crl {
    fn parse(der: CertificateRevocationListDer<'static>) -> Result<Self, CrlError> {
        let owned = OwnedCertRevocationList::from_der(der.as_ref())
            .map_err(|e| CrlError::BadEncoding(format!("{e:?}")))?;
        Ok(Self {
            der,
            parsed: CertRevocationList::Owned(owned),
        })
    }

    /// The CRL must name the CA as issuer and be signed by its key; otherwise
    /// it would either revoke nothing or revoke another CA's serials.
    fn check_against(&self, ca: &CaEntry) -> Result<(), CrlError> {
        let wrong_issuer = || CrlError::WrongIssuer {
            ca_id: ca.id.clone(),
        };
        let (_, ca_cert) =
            X509Certificate::from_der(ca.der.as_ref()).map_err(|_| wrong_issuer())?;
        let (_, crl) = CertificateRevocationList::from_der(self.der.as_ref())
            .map_err(|e| CrlError::BadEncoding(e.to_string()))?;
        if crl.issuer().as_raw() != ca_cert.subject().as_raw() {
            return Err(wrong_issuer());
        }
        crl.verify_signature(ca_cert.public_key())
            .map_err(|_| CrlError::BadSignature {
                ca_id: ca.id.clone(),
            })
    }
}

/// An immutable view of everything the device verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustSnapshot {
    /// ACTIVE CAs, in registry order.
    pub(crate) cas: Vec<CaEntry>,
    /// Trust anchors for `cas`, same order (index i belongs to `cas[i]`).
    pub(crate) anchors: Vec<TrustAnchor<'static>>,
    /// CRLs by CA id. Kept for CAs that are not ACTIVE too, so a CA that is
    /// reactivated gets its CRL back without waiting for the file to change.
    crls: HashMap<String, Arc<Crl>>,
    /// Certificates registered without a CA, by certificate id.
    pub(crate) caless: HashMap<String, CertificateDer<'static>>,
}

impl TrustSnapshot {
    /// A snapshot that trusts nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a snapshot from the registry's ACTIVE CA certificates and its
    /// certificates registered without a CA.
    pub fn new(
        active_cas: impl IntoIterator<Item = CertificateDer<'static>>,
        registered_without_ca: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, BadCaCertificate> {
        Self::empty().with_registry(active_cas, registered_without_ca)
    }

    /// The same CRLs with a new registry view (the registry calls this when
    /// a CA or a CA-less certificate is registered, activated or deactivated).
    pub fn with_registry(
        &self,
        active_cas: impl IntoIterator<Item = CertificateDer<'static>>,
        registered_without_ca: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, BadCaCertificate> {
        let mut cas = Vec::new();
        let mut anchors = Vec::new();
        for der in active_cas {
            let id = certificate_id(der.as_ref());
            if cas.iter().any(|c: &CaEntry| c.id == id) {
                continue;
            }
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|_| BadCaCertificate { id: id.clone() })?
                .to_owned();
            anchors.push(anchor);
            cas.push(CaEntry { id, der, crl: None });
        }
        let caless = registered_without_ca
            .into_iter()
            .map(|der| (certificate_id(der.as_ref()), der))
            .collect();
        let mut snapshot = Self {
            cas,
            anchors,
            crls: self.crls.clone(),
            caless,
        };
        snapshot.link_crls();
        Ok(snapshot)
    }

    /// The same snapshot with `crl` as CA `ca_id`'s CRL. If the CA is ACTIVE
    /// the CRL must be issued and signed by it; if it is not, the CRL is
    /// checked when the CA comes back.
    pub fn with_crl(
        &self,
        ca_id: &str,
        crl: CertificateRevocationListDer<'_>,
    ) -> Result<Self, CrlError> {
        let crl = Crl::parse(CertificateRevocationListDer::from(crl.as_ref().to_vec()))?;
        if let Some(ca) = self.cas.iter().find(|c| c.id == ca_id) {
            crl.check_against(ca)?;
        }
        let mut next = self.clone();
        next.crls.insert(ca_id.to_owned(), Arc::new(crl));
        next.link_crls();
        Ok(next)
    }

    /// The same snapshot without CA `ca_id`'s CRL.
    pub fn without_crl(&self, ca_id: &str) -> Self {
        let mut next = self.clone();
        next.crls.remove(ca_id);
        next.link_crls();
        next
    }

    /// Ids of the ACTIVE CAs.
    pub fn ca_ids(&self) -> impl Iterator<Item = &str> {
        self.cas.iter().map(|c| c.id.as_str())
    }

    /// The CRL loaded for CA `ca_id`, if any.
    pub fn crl(&self, ca_id: &str) -> Option<&CertificateRevocationListDer<'static>> {
        self.crls.get(ca_id).map(|c| &c.der)
    }

    /// Whether `certificate_id` is registered without a CA.
    /// Whether the CRL of CA `ca_id` lists `serial` (a certificate that CA
    /// issued directly), for re-checking live connections.
    pub fn is_revoked(&self, ca_id: &str, serial: &[u8]) -> bool {
        self.crls
            .get(ca_id)
            .is_some_and(|crl| matches!(crl.parsed.find_serial(serial), Ok(Some(_))))
    }

    pub fn is_registered_without_ca(&self, certificate_id: &str) -> bool {
        self.caless.contains_key(certificate_id)
    }

    /// Attaches each ACTIVE CA's CRL, dropping (and logging) any that does
    /// not belong to it, so verification never meets a CRL it cannot trust.
    fn link_crls(&mut self) {
        for ca in &mut self.cas {
            ca.crl = match self.crls.get(&ca.id) {
                Some(crl) => match crl.check_against(ca) {
                    Ok(()) => Some(Arc::clone(crl)),
                    Err(e) => {
                        tracing::warn!(ca_id = %ca.id, error = %e, "CRL ignored");
                        None
                    }
                },
                None => None,
            };
        }
    }
}

/// The current [`TrustSnapshot`], shared by the verifier (reads, lock-free)
/// and by whoever updates it: the registry and the [`super::CrlWatcher`].
#[derive(Debug)]
pub struct TrustStore {
    current: ArcSwap<TrustSnapshot>,
    /// Serialises read-modify-write updates so two writers (registry, CRL
    /// watcher) cannot lose each other's change. Readers never take it.
    writer: Mutex<()>,
    revision: watch::Sender<u64>,
}

impl TrustStore {
    pub fn new(snapshot: TrustSnapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(()),
            revision: watch::Sender::new(0),
        }
    }

    /// The snapshot handshakes use right now.
    pub fn snapshot(&self) -> Arc<TrustSnapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot as a whole.
    pub fn replace(&self, snapshot: TrustSnapshot) {
        let _w = self.writer.lock();
        self.current.store(Arc::new(snapshot));
        self.revision.send_modify(|r| *r += 1);
    }

    /// Notified after every change, so live connections can re-check
    /// themselves against a new CRL.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Derives the next snapshot from the current one; on error nothing
    /// changes.
    pub fn update<E>(
        &self,
        f: impl FnOnce(&TrustSnapshot) -> Result<TrustSnapshot, E>,
    ) -> Result<(), E> {
        let _w = self.writer.lock();
        let next = f(&self.current.load())?;
        self.current.store(Arc::new(next));
        self.revision.send_modify(|r| *r += 1);
        Ok(())
    }
}
