//! What an audit reads from the registry, fetched once per task and only
//! if some check of the task needs it.
//!
//! Certificates are gathered without paging the whole list: paging
//! `ListCertificates` re-walks the list from its start on every page, so
//! 100,000 certificates took 8 s that way. Instead, certificates
//! registered without a CA come from [`Registry::trust_material`] (one
//! pass; each is then looked up by id) and the others page
//! `ListCertificatesByCA` per registered CA. That last walk is still
//! quadratic in the size of one CA's population; a bulk read accessor on
//! the registry would remove it.

use std::cell::OnceCell;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use wardmq_broker::net::identity::certificate_id;
use wardmq_broker::registry::{
    CaCertificate, Certificate, LoggingOptions, PageRequest, Policy, Registry, RegistryError,
};

/// The largest page the registry serves.
const PAGE: usize = 250;

pub(crate) struct Inventory<'r> {
    registry: &'r Registry,
    certs: OnceCell<Vec<Certificate>>,
    cas: OnceCell<Vec<CaCertificate>>,
    policies: OnceCell<Vec<Policy>>,
}

impl<'r> Inventory<'r> {
    pub(crate) fn new(registry: &'r Registry) -> Self {
        Self {
            registry,
            certs: OnceCell::new(),
            cas: OnceCell::new(),
            policies: OnceCell::new(),
        }
    }

    /// Every device certificate, whatever its status.
    pub(crate) fn certificates(&self) -> &[Certificate] {
        self.certs.get_or_init(|| {
            let mut out = Vec::new();
            for pem in self.registry.trust_material().without_ca {
                let Ok(der) = CertificateDer::from_pem_slice(pem.as_bytes()) else {
                    continue;
                };
                // Deleted between the two reads: simply not audited.
                if let Some(c) = self.registry.certificate(&certificate_id(der.as_ref())) {
                    out.push(c);
                }
            }
            for ca in self.ca_certificates() {
                let by_ca = page_all(|req| self.registry.list_certificates_by_ca(&ca.id, req));
                out.extend(by_ca);
            }
            out
        })
    }

    /// Every registered CA certificate.
    pub(crate) fn ca_certificates(&self) -> &[CaCertificate] {
        self.cas
            .get_or_init(|| page_all(|req| self.registry.list_ca_certificates(req)))
    }

    /// Every policy (with all its versions).
    pub(crate) fn policies(&self) -> &[Policy] {
        self.policies
            .get_or_init(|| page_all(|req| self.registry.list_policies(req)))
    }

    pub(crate) fn logging(&self) -> LoggingOptions {
        self.registry.logging_options()
    }

    pub(crate) fn account(&self) -> &str {
        &self.registry.scope().account
    }
}

fn page_all<T>(
    mut fetch: impl FnMut(&PageRequest) -> Result<wardmq_broker::registry::Page<T>, RegistryError>,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        match fetch(&PageRequest::new(Some(PAGE), token)) {
            Ok(page) => {
                out.extend(page.items);
                match page.next_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            Err(e) => {
                // A token of ours that the registry refuses (the list
                // changed under it in a way it cannot resume from):
                // audit what we have.
                tracing::warn!(error = %e, "registry listing stopped early during an audit");
                break;
            }
        }
    }
    out
}
