//! Device certificates and CA certificates: registration, status, deletion.
//!
//! AWS rules applied (from the API model's documentation, and AWS IoT
//! behaviour where the model is silent; the latter are marked "assumed"):
//! - `certificateId` is the lowercase SHA-256 hex of the DER.
//! - Register: status ACTIVE, INACTIVE or REVOKED (default INACTIVE); the
//!   same certificate twice is `ResourceAlreadyExists`. With a CA: the CA
//!   must be registered and must have signed the certificate; without an
//!   explicit CA PEM the CA is found by subject = the certificate's issuer
//!   (more than one match: the caller must name it, as AWS says).
//!   Registering under an INACTIVE CA is `CertificateState` (assumed).
//! - UpdateCertificate: PENDING_TRANSFER and PENDING_ACTIVATION cannot be
//!   set (the model: "will result in an exception"); REGISTER_INACTIVE is
//!   deprecated and refused; a certificate in PENDING_TRANSFER cannot be
//!   changed; REVOKED is final (assumed: AWS refuses to reactivate revoked
//!   certificates); activating a certificate whose CA is INACTIVE is
//!   `CertificateState` (assumed). Setting the current status is a no-op.
//! - DeleteCertificate: refused while ACTIVE (`CertificateState`) or
//!   attached to a thing (`DeleteConflict`); attached policies are also a
//!   `DeleteConflict` unless `force_delete`, which detaches them.
//! - CA: must be a CA certificate (basicConstraints CA); at most 10 with
//!   the same subject (`LimitExceeded`); delete refused while ACTIVE
//!   (`CertificateState`) or while device certificates reference it
//!   (`CertificateState`, assumed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::{Link, Op, State};
use super::{
    names, now, pem, random_hex, Change, Page, PageRequest, Registry, RegistryError, Result,
};

/// AWS's `CertificateStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
    PendingTransfer,
    RegisterInactive,
    PendingActivation,
}

impl CertificateStatus {
    pub const ALL: [Self; 6] = [
        Self::Active,
        Self::Inactive,
        Self::Revoked,
        Self::PendingTransfer,
        Self::RegisterInactive,
        Self::PendingActivation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
            Self::PendingTransfer => "PENDING_TRANSFER",
            Self::RegisterInactive => "REGISTER_INACTIVE",
            Self::PendingActivation => "PENDING_ACTIVATION",
        }
    }
}

impl std::str::FromStr for CertificateStatus {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| RegistryError::invalid(format!("unknown certificate status {s:?}")))
    }
}

/// AWS's `CACertificateStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CaCertificateStatus {
    Active,
    Inactive,
}

impl CaCertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }
}

impl std::str::FromStr for CaCertificateStatus {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ACTIVE" => Ok(Self::Active),
            "INACTIVE" => Ok(Self::Inactive),
            _ => Err(RegistryError::invalid(format!(
                "unknown CA certificate status {s:?}"
            ))),
        }
    }
}

/// AWS's `AutoRegistrationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AutoRegistrationStatus {
    Enable,
    Disable,
}

impl AutoRegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enable => "ENABLE",
            Self::Disable => "DISABLE",
        }
    }
}

impl std::str::FromStr for AutoRegistrationStatus {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ENABLE" => Ok(Self::Enable),
            "DISABLE" => Ok(Self::Disable),
            _ => Err(RegistryError::invalid(format!(
                "unknown auto registration status {s:?}"
            ))),
        }
    }
}

/// `CertificateValidity`, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

/// Facts parsed from the certificate at registration, for audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    /// RFC 4514-style subject DN.
    pub subject: String,
    pub subject_cn: Option<String>,
    pub issuer: String,
    /// Serial number as colon-separated hex.
    pub serial: String,
    /// "RSA", "EC", "DSA", "ED25519" or the key algorithm's OID.
    pub key_algorithm: String,
    /// Key size in bits (0 when unknown).
    pub key_size: u32,
    /// Signature algorithm OID.
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub self_signed: bool,
}

/// A device certificate (`CertificateDescription`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub id: String,
    pub pem: String,
    pub status: CertificateStatus,
    pub ca_certificate_id: Option<String>,
    pub owned_by: String,
    pub creation_date: f64,
    pub last_modified_date: f64,
    pub customer_version: u64,
    pub generation_id: String,
    pub validity: Validity,
    pub facts: CertFacts,
}

/// See [`Registry::trust_material`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustMaterial {
    pub active_cas: Vec<String>,
    pub without_ca: Vec<String>,
}

/// A CA certificate (`CACertificateDescription`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaCertificate {
    pub id: String,
    pub pem: String,
    pub status: CaCertificateStatus,
    pub auto_registration_status: AutoRegistrationStatus,
    pub owned_by: String,
    pub creation_date: f64,
    pub last_modified_date: f64,
    pub customer_version: u64,
    pub generation_id: String,
    pub validity: Validity,
    pub facts: CertFacts,
}

/// AWS: "You can register up to 10 CA certificates with the same CA
/// subject field per Amazon Web Services account."
pub const MAX_CAS_PER_SUBJECT: usize = 10;

fn already_exists(kind: &'static str, id: &str, arn: String) -> RegistryError {
    RegistryError::ResourceAlreadyExists {
        kind,
        id: id.to_owned(),
        arn,
    }
}

fn registrable_status(status: Option<CertificateStatus>) -> Result<CertificateStatus> {
    match status.unwrap_or(CertificateStatus::Inactive) {
        s @ (CertificateStatus::Active
        | CertificateStatus::Inactive
        | CertificateStatus::Revoked) => Ok(s),
        s => Err(RegistryError::invalid(format!(
            "a certificate cannot be registered with status {}",
            s.as_str()
        ))),
    }
}

impl Registry {
    /// `RegisterCertificate`: a device certificate issued by a registered
    /// CA. `ca_pem` names the CA; without it the CA is found by subject.
    pub fn register_certificate(
        &self,
        pem_text: &str,
        ca_pem: Option<&str>,
        status: Option<CertificateStatus>,
    ) -> Result<Certificate> {
        let status = registrable_status(status)?;
        let parsed = pem::parse(pem_text)?;
        let ca_id = match ca_pem {
            Some(ca) => Some(pem::parse(ca)?.id),
            None => None,
        };
        self.write(|s, batch| {
            let ca = match ca_id {
                Some(id) => s.cas.get(&id).ok_or_else(|| {
                    RegistryError::CertificateValidation(format!("CA certificate {id} is not registered"))
                })?,
                None => {
                    let mut matches = s.cas.values().filter(|c| c.facts.subject == parsed.facts.issuer);
                    let first = matches.next().ok_or_else(|| {
                        RegistryError::CertificateValidation(format!(
                            "no registered CA certificate has the subject {:?} (the certificate's issuer); \
                             register the CA or use RegisterCertificateWithoutCA",
                            parsed.facts.issuer
                        ))
                    })?;
                    if matches.next().is_some() {
                        return Err(RegistryError::invalid(format!(
                            "more than one registered CA has the subject {:?}; pass caCertificatePem",
                            parsed.facts.issuer
                        )));
                    }
                    first
                }
            };
            if ca.status != CaCertificateStatus::Active {
                return Err(RegistryError::CertificateState(format!(
                    "CA certificate {} is INACTIVE",
                    ca.id
                )));
            }
            let ca_der = pem::parse(&ca.pem)?.der;
            pem::signed_by(&parsed.der, &ca_der)?;
            let ca_id = ca.id.clone();
            self.put_new_cert(s, batch, pem_text, parsed, status, Some(ca_id))
        })
    }

    /// `RegisterCertificateWithoutCA`.
    pub fn register_certificate_without_ca(
        &self,
        pem_text: &str,
        status: Option<CertificateStatus>,
    ) -> Result<Certificate> {
        let status = registrable_status(status)?;
        let parsed = pem::parse(pem_text)?;
        self.write(|s, batch| self.put_new_cert(s, batch, pem_text, parsed, status, None))
    }

    fn put_new_cert(
        &self,
        s: &State,
        batch: &mut super::Batch,
        pem_text: &str,
        parsed: pem::Parsed,
        status: CertificateStatus,
        ca_certificate_id: Option<String>,
    ) -> Result<Certificate> {
        if s.certs.contains_key(&parsed.id) {
            return Err(already_exists(
                "certificate",
                &parsed.id,
                self.scope().cert_arn(&parsed.id),
            ));
        }
        let t = now();
        let cert = Certificate {
            id: parsed.id,
            pem: pem_text.to_owned(),
            status,
            ca_certificate_id,
            owned_by: self.scope().account.clone(),
            creation_date: t,
            last_modified_date: t,
            customer_version: 1,
            generation_id: random_hex(16),
            validity: parsed.validity,
            facts: parsed.facts,
        };
        batch.op(Op::PutCert(cert.clone()));
        batch.event(Change::CertificateStatus {
            id: cert.id.clone(),
            status: Some(status),
        });
        Ok(cert)
    }

    /// `DescribeCertificate`.
    pub fn certificate(&self, id: &str) -> Option<Certificate> {
        let id = id.strip_prefix("0x").unwrap_or(id).to_ascii_lowercase();
        self.read(|s| s.certs.get(&id).cloned())
    }

    /// What the TLS verifier trusts, as PEM: ACTIVE CA certificates, and
    /// certificates registered without a CA (whatever their status, which
    /// is checked after the handshake).
    pub fn trust_material(&self) -> TrustMaterial {
        self.read(|s| TrustMaterial {
            active_cas: s
                .cas
                .values()
                .filter(|ca| ca.status == CaCertificateStatus::Active)
                .map(|ca| ca.pem.clone())
                .collect(),
            without_ca: s
                .certs
                .values()
                .filter(|c| c.ca_certificate_id.is_none())
                .map(|c| c.pem.clone())
                .collect(),
        })
    }

    /// Whether a device presenting this certificate may connect: it is
    /// registered and ACTIVE, and so is its CA if it has one. `id` is the
    /// canonical lowercase id (as computed from the presented DER).
    pub fn certificate_usable(&self, id: &str) -> bool {
        self.read(|s| match s.certs.get(id) {
            Some(c) if c.status == CertificateStatus::Active => match &c.ca_certificate_id {
                Some(ca) => s
                    .cas
                    .get(ca)
                    .is_some_and(|ca| ca.status == CaCertificateStatus::Active),
                None => true,
            },
            _ => false,
        })
    }

    /// `ListCertificates`, ordered by certificate id.
    pub fn list_certificates(&self, page: &PageRequest) -> Result<Page<Certificate>> {
        self.read(|s| super::page::paginate(s.certs.values().cloned(), |c| c.id.clone(), page))
    }

    /// `ListCertificatesByCA`, ordered by certificate id.
    pub fn list_certificates_by_ca(
        &self,
        ca_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Certificate>> {
        let ca_id = names::certificate_id(ca_id)?;
        self.read(|s| {
            let certs = s
                .certs
                .values()
                .filter(|c| c.ca_certificate_id.as_deref() == Some(ca_id.as_str()))
                .cloned();
            super::page::paginate(certs, |c| c.id.clone(), page)
        })
    }

    /// `UpdateCertificate`.
    pub fn update_certificate(&self, id: &str, new_status: CertificateStatus) -> Result<()> {
        let id = names::certificate_id(id)?;
        match new_status {
            CertificateStatus::PendingTransfer | CertificateStatus::PendingActivation => {
                return Err(RegistryError::invalid(format!(
                    "status {} is used internally and cannot be set",
                    new_status.as_str()
                )));
            }
            CertificateStatus::RegisterInactive => {
                return Err(RegistryError::invalid(
                    "status REGISTER_INACTIVE is deprecated",
                ));
            }
            _ => {}
        }
        self.write(|s, batch| {
            let cert = s.certs.get(&id).ok_or_else(|| RegistryError::not_found("certificate", &id))?;
            if cert.status == new_status {
                return Ok(());
            }
            match cert.status {
                CertificateStatus::PendingTransfer => {
                    return Err(RegistryError::CertificateState(format!(
                        "certificate {id} is PENDING_TRANSFER; accept, reject or cancel the transfer first"
                    )));
                }
                CertificateStatus::Revoked => {
                    return Err(RegistryError::CertificateState(format!(
                        "certificate {id} is REVOKED; a revoked certificate cannot change status"
                    )));
                }
                _ => {}
            }
            if new_status == CertificateStatus::Active {
                if let Some(ca) = cert.ca_certificate_id.as_ref().and_then(|ca| s.cas.get(ca)) {
                    if ca.status != CaCertificateStatus::Active {
                        return Err(RegistryError::CertificateState(format!(
                            "certificate {id} cannot be activated while its CA {} is INACTIVE",
                            ca.id
                        )));
                    }
                }
            }
            let mut cert = cert.clone();
            cert.status = new_status;
            cert.last_modified_date = now();
            cert.customer_version += 1;
            cert.generation_id = random_hex(16);
            batch.op(Op::PutCert(cert));
            batch.event(Change::CertificateStatus {
                id: id.clone(),
                status: Some(new_status),
            });
            Ok(())
        })
    }

    /// `DeleteCertificate`.
    pub fn delete_certificate(&self, id: &str, force_delete: bool) -> Result<()> {
        let id = names::certificate_id(id)?;
        let arn = self.scope().cert_arn(&id);
        self.write(|s, batch| {
            let cert = s
                .certs
                .get(&id)
                .ok_or_else(|| RegistryError::not_found("certificate", &id))?;
            if cert.status == CertificateStatus::Active {
                return Err(RegistryError::CertificateState(format!(
                    "certificate {id} is ACTIVE; set it INACTIVE first"
                )));
            }
            let things: Vec<&str> = s.thing_principals.to(&arn).collect();
            if !things.is_empty() {
                return Err(RegistryError::DeleteConflict(format!(
                    "certificate {id} is attached to thing(s) {}; detach it first",
                    things.join(", ")
                )));
            }
            let policies: Vec<&str> = s.policy_targets.to(&arn).collect();
            if !policies.is_empty() && !force_delete {
                return Err(RegistryError::DeleteConflict(format!(
                    "certificate {id} has policies attached ({}); detach them or use forceDelete",
                    policies.join(", ")
                )));
            }
            for p in policies {
                batch.op(Op::Unlink(Link::PolicyTarget, p.to_owned(), arn.clone()));
                batch.event(Change::PolicyAttachment {
                    policy: p.to_owned(),
                    target: arn.clone(),
                    attached: false,
                });
            }
            batch.op(Op::DeleteCert(id.clone()));
            batch.event(Change::CertificateStatus {
                id: id.clone(),
                status: None,
            });
            Ok(())
        })
    }

    /// `RegisterCACertificate` (SNI_ONLY mode: no verification certificate).
    pub fn register_ca_certificate(
        &self,
        pem_text: &str,
        set_as_active: bool,
        allow_auto_registration: bool,
    ) -> Result<CaCertificate> {
        let parsed = pem::parse(pem_text)?;
        if !parsed.facts.is_ca {
            return Err(RegistryError::CertificateValidation(
                "the certificate is not a CA certificate (basicConstraints CA is not set)".into(),
            ));
        }
        self.write(|s, batch| {
            if s.cas.contains_key(&parsed.id) {
                return Err(already_exists("CA certificate", &parsed.id, self.scope().ca_arn(&parsed.id)));
            }
            let same_subject = s.cas.values().filter(|c| c.facts.subject == parsed.facts.subject).count();
            if same_subject >= MAX_CAS_PER_SUBJECT {
                return Err(RegistryError::LimitExceeded(format!(
                    "{MAX_CAS_PER_SUBJECT} CA certificates with the subject {:?} are already registered",
                    parsed.facts.subject
                )));
            }
            let t = now();
            let ca = CaCertificate {
                id: parsed.id,
                pem: pem_text.to_owned(),
                status: if set_as_active { CaCertificateStatus::Active } else { CaCertificateStatus::Inactive },
                auto_registration_status: if allow_auto_registration {
                    AutoRegistrationStatus::Enable
                } else {
                    AutoRegistrationStatus::Disable
                },
                owned_by: self.scope().account.clone(),
                creation_date: t,
                last_modified_date: t,
                customer_version: 1,
                generation_id: random_hex(16),
                validity: parsed.validity,
                facts: parsed.facts,
            };
            batch.op(Op::PutCa(ca.clone()));
            batch.event(Change::CaStatus { id: ca.id.clone(), status: Some(ca.status) });
            Ok(ca)
        })
    }

    /// `DescribeCACertificate`.
    pub fn ca_certificate(&self, id: &str) -> Option<CaCertificate> {
        let id = id.strip_prefix("0x").unwrap_or(id).to_ascii_lowercase();
        self.read(|s| s.cas.get(&id).cloned())
    }

    /// `ListCACertificates`, ordered by id.
    pub fn list_ca_certificates(&self, page: &PageRequest) -> Result<Page<CaCertificate>> {
        self.read(|s| super::page::paginate(s.cas.values().cloned(), |c| c.id.clone(), page))
    }

    /// `UpdateCACertificate` (status and/or auto-registration).
    pub fn update_ca_certificate(
        &self,
        id: &str,
        new_status: Option<CaCertificateStatus>,
        new_auto_registration: Option<AutoRegistrationStatus>,
    ) -> Result<()> {
        let id = names::certificate_id(id)?;
        self.write(|s, batch| {
            let ca = s
                .cas
                .get(&id)
                .ok_or_else(|| RegistryError::not_found("CA certificate", &id))?;
            let mut new = ca.clone();
            if let Some(st) = new_status {
                new.status = st;
            }
            if let Some(a) = new_auto_registration {
                new.auto_registration_status = a;
            }
            if new == *ca {
                return Ok(());
            }
            new.last_modified_date = now();
            new.customer_version += 1;
            new.generation_id = random_hex(16);
            if new.status != ca.status {
                batch.event(Change::CaStatus {
                    id: id.clone(),
                    status: Some(new.status),
                });
            }
            batch.op(Op::PutCa(new));
            Ok(())
        })
    }

    /// `DeleteCACertificate`.
    pub fn delete_ca_certificate(&self, id: &str) -> Result<()> {
        let id = names::certificate_id(id)?;
        self.write(|s, batch| {
            let ca = s.cas.get(&id).ok_or_else(|| RegistryError::not_found("CA certificate", &id))?;
            if ca.status == CaCertificateStatus::Active {
                return Err(RegistryError::CertificateState(format!(
                    "CA certificate {id} is ACTIVE; set it INACTIVE first"
                )));
            }
            let users = s
                .certs
                .values()
                .filter(|c| c.ca_certificate_id.as_deref() == Some(id.as_str()))
                .count();
            if users > 0 {
                return Err(RegistryError::CertificateState(format!(
                    "CA certificate {id} still has {users} registered device certificate(s); delete them first"
                )));
            }
            batch.op(Op::DeleteCa(id.clone()));
            batch.event(Change::CaStatus { id: id.clone(), status: None });
            Ok(())
        })
    }

    /// Counts of certificates by status (for metrics and audits).
    pub fn certificate_status_counts(&self) -> BTreeMap<CertificateStatus, usize> {
        self.read(|s| {
            let mut out = BTreeMap::new();
            for c in s.certs.values() {
                *out.entry(c.status).or_insert(0) += 1;
            }
            out
        })
    }
}
