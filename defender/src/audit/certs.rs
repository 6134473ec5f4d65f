//! The certificate checks: expiring (device and CA), age, key quality
//! (device and CA), revoked device, revoked CA, and intermediate CA
//! revoked. Device checks look at certificates that are ACTIVE or
//! PENDING_TRANSFER, CA checks at ACTIVE CA certificates, as AWS's check
//! pages say.

use std::collections::HashMap;

use wardmq_broker::registry::{CaCertificate, CaCertificateStatus, Certificate, CertificateStatus};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::crl::{pem_der, Issuers, Revocations};
use super::model::{IssuerCertificateIdentifier, Resource, ResourceIdentifier, ResourceType};
use super::outcome::{codes, Draft, Outcome};
use super::roca;
use super::schedule::civil;

const DAY_S: i64 = 86_400;

/// What a certificate's key is like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    Fine,
    /// RSA key with the ROCA fingerprint (CVE-2017-15361).
    Roca,
    /// Shorter than wardmq accepts: RSA or DSA under 2048 bits, EC under
    /// 256 (the device listener refuses these at the handshake).
    Short {
        bits: u32,
    },
}

/// Key verdicts by certificate id: certificates never change under an id,
/// so a verdict holds for the life of the process.
pub type KeyCache = HashMap<String, KeyVerdict>;

pub(crate) fn device_in_scope(c: &Certificate) -> bool {
    matches!(
        c.status,
        CertificateStatus::Active | CertificateStatus::PendingTransfer
    )
}

pub(crate) fn ca_in_scope(c: &CaCertificate) -> bool {
    c.status == CaCertificateStatus::Active
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(DAY_S));
    let s = secs.rem_euclid(DAY_S);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn device(id: &str) -> Resource {
    Resource::new(
        ResourceType::DeviceCertificate,
        ResourceIdentifier::device_certificate(id),
    )
}

fn ca(id: &str) -> Resource {
    Resource::new(
        ResourceType::CaCertificate,
        ResourceIdentifier::ca_certificate(id),
    )
}

fn expiry_draft(
    resource: Resource,
    not_after: i64,
    now: i64,
    threshold_days: u32,
) -> Option<Draft> {
    if not_after <= now {
        Some(Draft {
            resource,
            related: Vec::new(),
            reason: format!("The certificate expired at {}.", utc(not_after)),
            code: codes::CERTIFICATE_PAST_EXPIRATION,
        })
    } else if not_after - now <= i64::from(threshold_days) * DAY_S {
        let days = (not_after - now) / DAY_S;
        Some(Draft {
            resource,
            related: Vec::new(),
            reason: format!(
                "The certificate expires in {days} days, at {} (threshold: {threshold_days} days).",
                utc(not_after)
            ),
            code: codes::CERTIFICATE_APPROACHING_EXPIRATION,
        })
    } else {
        None
    }
}

/// DEVICE_CERTIFICATE_EXPIRING_CHECK. `now` in unix seconds.
pub(crate) fn expiring_devices(certs: &[Certificate], now: i64, threshold_days: u32) -> Outcome {
    let mut out = Outcome::default();
    for c in certs.iter().filter(|c| device_in_scope(c)) {
        out.total += 1;
        out.drafts.extend(expiry_draft(
            device(&c.id),
            c.validity.not_after,
            now,
            threshold_days,
        ));
    }
    out
}

/// CA_CERTIFICATE_EXPIRING_CHECK.
pub(crate) fn expiring_cas(cas: &[CaCertificate], now: i64, threshold_days: u32) -> Outcome {
    let mut out = Outcome::default();
    for c in cas.iter().filter(|c| ca_in_scope(c)) {
        out.total += 1;
        out.drafts.extend(expiry_draft(
            ca(&c.id),
            c.validity.not_after,
            now,
            threshold_days,
        ));
    }
    out
}

/// DEVICE_CERTIFICATE_AGE_CHECK: a certificate's age counts from its
/// notBefore (the registry cannot tell when a certificate was first
/// activated, and a certificate cannot be in use before notBefore).
pub(crate) fn device_age(certs: &[Certificate], now: i64, threshold_days: u32) -> Outcome {
    let mut out = Outcome::default();
    for c in certs.iter().filter(|c| device_in_scope(c)) {
        out.total += 1;
        let age = now - c.validity.not_before;
        if age >= i64::from(threshold_days) * DAY_S {
            out.drafts.push(Draft {
                resource: device(&c.id),
                related: Vec::new(),
                reason: format!(
                    "The certificate has been valid for {} days, since {} (threshold: {threshold_days} days).",
                    age / DAY_S,
                    utc(c.validity.not_before)
                ),
                code: codes::CERTIFICATE_PAST_AGE_THRESHOLD,
            });
        }
    }
    out
}

/// The verdict on a key, from the facts the registry parsed at
/// registration and, for RSA, the modulus.
pub(crate) fn key_verdict(algorithm: &str, bits: u32, pem: &str) -> KeyVerdict {
    match algorithm {
        "RSA" => {
            if rsa_modulus(pem).is_some_and(|n| roca::has_fingerprint(&n)) {
                KeyVerdict::Roca
            } else if bits < 2048 {
                KeyVerdict::Short { bits }
            } else {
                KeyVerdict::Fine
            }
        }
        "DSA" if bits < 2048 => KeyVerdict::Short { bits },
        "EC" if bits < 256 => KeyVerdict::Short { bits },
        _ => KeyVerdict::Fine,
    }
}

fn rsa_modulus(pem: &str) -> Option<Vec<u8>> {
    let der = pem_der(pem)?;
    let (_, cert) = X509Certificate::from_der(&der).ok()?;
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => Some(k.modulus.to_vec()),
        _ => None,
    }
}

fn key_draft(resource: Resource, verdict: KeyVerdict, algorithm: &str) -> Option<Draft> {
    match verdict {
        KeyVerdict::Fine => None,
        KeyVerdict::Roca => Some(Draft {
            resource,
            related: Vec::new(),
            reason: "The RSA key has the fingerprint of keys generated by Infineon's RSALib \
                     (ROCA, CVE-2017-15361): its private key can be computed from the public key."
                .into(),
            code: codes::CVE_2017_15361,
        }),
        KeyVerdict::Short { bits } => Some(Draft {
            resource,
            related: Vec::new(),
            reason: format!(
                "The {algorithm} key is {bits} bits, shorter than the minimum \
                 (RSA and DSA: 2048, EC: 256)."
            ),
            code: codes::CERTIFICATE_KEY_TOO_SHORT,
        }),
    }
}

fn cached_verdict(
    cache: &mut KeyCache,
    id: &str,
    algorithm: &str,
    bits: u32,
    pem: &str,
) -> KeyVerdict {
    if let Some(v) = cache.get(id) {
        return *v;
    }
    let v = key_verdict(algorithm, bits, pem);
    cache.insert(id.to_owned(), v);
    v
}

/// DEVICE_CERTIFICATE_KEY_QUALITY_CHECK. Known-weak Debian keys
/// (CVE-2008-0166) are not looked for: the blocklists run to megabytes.
pub(crate) fn key_quality_devices(certs: &[Certificate], cache: &mut KeyCache) -> Outcome {
    let mut out = Outcome::default();
    for c in certs.iter().filter(|c| device_in_scope(c)) {
        out.total += 1;
        let alg = c.facts.key_algorithm.as_str();
        let v = cached_verdict(cache, &c.id, alg, c.facts.key_size, &c.pem);
        out.drafts.extend(key_draft(device(&c.id), v, alg));
    }
    out
}

/// CA_CERTIFICATE_KEY_QUALITY_CHECK.
pub(crate) fn key_quality_cas(cas: &[CaCertificate], cache: &mut KeyCache) -> Outcome {
    let mut out = Outcome::default();
    for c in cas.iter().filter(|c| ca_in_scope(c)) {
        out.total += 1;
        let alg = c.facts.key_algorithm.as_str();
        let v = cached_verdict(cache, &c.id, alg, c.facts.key_size, &c.pem);
        out.drafts.extend(key_draft(ca(&c.id), v, alg));
    }
    out
}

/// The registered CAs that may have issued device certificate `c`: the
/// one it was registered with, else those whose subject is its issuer.
fn device_issuers<'a>(c: &Certificate, issuers: &Issuers<'a>) -> Vec<&'a CaCertificate> {
    match &c.ca_certificate_id {
        Some(id) => issuers.ca(id).into_iter().collect(),
        None => issuers.candidates(&c.facts.issuer, ""),
    }
}

fn issued_by(c: &Certificate, candidate: &CaCertificate, issuers: &Issuers<'_>) -> bool {
    c.ca_certificate_id.as_deref() == Some(candidate.id.as_str())
        || issuers.verify(&c.id, &c.pem, candidate)
}

/// REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK.
pub(crate) fn revoked_devices(
    certs: &[Certificate],
    issuers: &Issuers<'_>,
    revocations: &Revocations,
) -> Outcome {
    let mut out = Outcome {
        note: revocations.note(),
        ..Outcome::default()
    };
    for c in certs.iter().filter(|c| device_in_scope(c)) {
        out.total += 1;
        if revocations.is_empty() {
            continue;
        }
        let revoker = device_issuers(c, issuers)
            .into_iter()
            .find(|i| revocations.revokes(&i.id, &c.facts.serial) && issued_by(c, i, issuers));
        if let Some(i) = revoker {
            out.drafts.push(Draft {
                resource: device(&c.id),
                related: vec![ca(&i.id)],
                reason: format!(
                    "The certificate (serial {}) is on the CRL of its CA {} but is still {} in the registry.",
                    c.facts.serial,
                    i.id,
                    c.status.as_str()
                ),
                code: codes::CERTIFICATE_REVOKED_BY_ISSUER,
            });
        }
    }
    out
}

/// The registered CAs revoked by their (registered) issuer: CA id → the
/// issuer whose CRL lists it.
fn revoked_cas_map<'a>(
    cas: &'a [CaCertificate],
    issuers: &Issuers<'a>,
    revocations: &Revocations,
) -> HashMap<&'a str, &'a CaCertificate> {
    let mut out = HashMap::new();
    if revocations.is_empty() {
        return out;
    }
    for c in cas {
        if let Some(p) = issuers.issuer_of_ca(c) {
            if revocations.revokes(&p.id, &c.facts.serial) {
                out.insert(c.id.as_str(), p);
            }
        }
    }
    out
}

/// REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK.
pub(crate) fn revoked_cas(
    cas: &[CaCertificate],
    issuers: &Issuers<'_>,
    revocations: &Revocations,
) -> Outcome {
    let revoked = revoked_cas_map(cas, issuers, revocations);
    let mut out = Outcome {
        note: revocations.note(),
        ..Outcome::default()
    };
    for c in cas.iter().filter(|c| ca_in_scope(c)) {
        out.total += 1;
        if let Some(p) = revoked.get(c.id.as_str()) {
            out.drafts.push(Draft {
                resource: ca(&c.id),
                related: vec![ca(&p.id)],
                reason: format!(
                    "The CA certificate (serial {}) is on the CRL of its issuer {} but is still ACTIVE.",
                    c.facts.serial, p.id
                ),
                code: codes::CERTIFICATE_REVOKED_BY_ISSUER,
            });
        }
    }
    out
}

/// INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK: device
/// certificates whose chain of registered CAs holds one that its own
/// issuer revoked. The finding's related resource is that CA, as an
/// ISSUER_CERTIFICATE.
pub(crate) fn intermediate_revoked(
    certs: &[Certificate],
    cas: &[CaCertificate],
    issuers: &Issuers<'_>,
    revocations: &Revocations,
) -> Outcome {
    let revoked = revoked_cas_map(cas, issuers, revocations);
    let mut out = Outcome {
        note: revocations.note(),
        ..Outcome::default()
    };
    // CA id → the revoked CA on its chain (itself included), memoised.
    let mut chain: HashMap<String, Option<String>> = HashMap::new();
    let mut revoked_on_chain = |start: &CaCertificate| -> Option<String> {
        if let Some(v) = chain.get(&start.id) {
            return v.clone();
        }
        let mut at = Some(start);
        let mut found = None;
        for _ in 0..8 {
            let Some(c) = at else { break };
            if revoked.contains_key(c.id.as_str()) {
                found = Some(c.id.clone());
                break;
            }
            at = issuers.issuer_of_ca(c);
        }
        chain.insert(start.id.clone(), found.clone());
        found
    };
    for c in certs.iter().filter(|c| device_in_scope(c)) {
        out.total += 1;
        if revoked.is_empty() {
            continue;
        }
        let hit = device_issuers(c, issuers).into_iter().find_map(|i| {
            let r = revoked_on_chain(i)?;
            issued_by(c, i, issuers).then_some(r)
        });
        let Some(r) = hit.and_then(|id| issuers.ca(&id)) else {
            continue;
        };
        let issuer = Resource::new(
            ResourceType::IssuerCertificate,
            ResourceIdentifier {
                issuer_certificate_identifier: Some(IssuerCertificateIdentifier {
                    issuer_certificate_subject: Some(r.facts.subject.clone()),
                    issuer_id: Some(r.id.clone()),
                    issuer_certificate_serial_number: Some(r.facts.serial.replace(':', "")),
                }),
                ..ResourceIdentifier::default()
            },
        );
        out.drafts.push(Draft {
            resource: device(&c.id),
            related: vec![issuer],
            reason: format!(
                "The certificate is {} but the intermediate CA {} ({}) on its chain is revoked by its issuer.",
                c.status.as_str(),
                r.id,
                r.facts.subject
            ),
            code: codes::INTERMEDIATE_CA_REVOKED_BY_ISSUER,
        });
    }
    out
}
