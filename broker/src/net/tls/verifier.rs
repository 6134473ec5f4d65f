//! The client-certificate verifier for device listeners: checks a device's
//! certificate against the current [`TrustSnapshot`] and says precisely why
//! it refuses one.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::rejection::CertRejection;
use super::trust::{TrustSnapshot, TrustStore};
use crate::net::identity::certificate_id;

/// Smallest RSA modulus we accept (NIST SP 800-57; ring's own floor too).
const MIN_RSA_BITS: usize = 2048;

/// Verifies device certificates for a mutual-TLS listener. Client
/// authentication is mandatory.
#[derive(Debug)]
pub struct DeviceVerifier {
    store: Arc<TrustStore>,
    algs: WebPkiSupportedAlgorithms,
}

impl DeviceVerifier {
    /// A verifier reading trust from `store` at every handshake, and
    /// verifying signatures with the ring provider's algorithms.
    pub fn new(store: Arc<TrustStore>) -> Self {
        Self {
            store,
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    /// The store this verifier reads.
    pub fn store(&self) -> &Arc<TrustStore> {
        &self.store
    }

    /// Decides whether a device may connect with this certificate (and the
    /// chain it sent) at `now`. `Ok` carries the id of the ACTIVE CA it
    /// chained to, or `None` for a certificate registered without a CA.
    pub fn verify_device(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Option<String>, CertRejection> {
        check_end_entity(end_entity.as_ref(), now)?;
        let snapshot = self.store.snapshot();
        // Registered without a CA: the exact certificate, nothing else. Tried
        // first because such certificates are often self-signed with
        // CA:TRUE (`openssl req -x509` does that by default), which chain
        // building would refuse as a CA used as an end entity.
        let id = certificate_id(end_entity.as_ref());
        if let Some(der) = snapshot.caless.get(&id) {
            if der.as_ref() == end_entity.as_ref() {
                return Ok(None);
            }
        }
        match self.chain_to_ca(&snapshot, end_entity, intermediates, now)? {
            Some(ca_id) => Ok(Some(ca_id)),
            None => Err(CertRejection::UnknownCa),
        }
    }

    /// `Ok(None)` when no ACTIVE CA issued the chain; any other chain
    /// failure is reported as such.
    fn chain_to_ca(
        &self,
        snapshot: &TrustSnapshot,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Option<String>, CertRejection> {
        if snapshot.anchors.is_empty() {
            return Ok(None);
        }
        let ee = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| CertRejection::from_webpki(&e))?;
        // A registered CA may be a root or an intermediate: either way it is
        // an anchor, and the device may send the certificates between.
        let path = match ee.verify_for_usage(
            self.algs.all,
            &snapshot.anchors,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        ) {
            Ok(path) => path,
            Err(webpki::Error::UnknownIssuer) => return Ok(None),
            Err(e) => return Err(CertRejection::from_webpki(&e)),
        };
        let anchor = path.anchor();
        let ca = snapshot
            .anchors
            .iter()
            .position(|a| std::ptr::eq(a, anchor))
            .and_then(|i| snapshot.cas.get(i))
            .ok_or(CertRejection::InvalidChain)?;
        // Revocation by the registered CA's own CRL: it covers the
        // certificate the CA signed, which is the device certificate or the
        // first intermediate below the CA.
        if let Some(crl) = &ca.crl {
            let issued: &webpki::Cert<'_> = match path.intermediate_certificates().next_back() {
                Some(cert) => cert,
                None => path.end_entity(),
            };
            if crl.parsed.issuer() == issued.issuer()
                && crl
                    .parsed
                    .find_serial(issued.serial())
                    .map_err(|e| CertRejection::from_webpki(&e))?
                    .is_some()
            {
                return Err(CertRejection::Revoked);
            }
        }
        Ok(Some(ca.id.clone()))
    }
}

/// Checks on the device certificate alone, before any chain building, so
/// the reason reported is the most specific one.
fn check_end_entity(der: &[u8], now: UnixTime) -> Result<(), CertRejection> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|_| CertRejection::BadEncoding)?;
    if !rest.is_empty() {
        return Err(CertRejection::BadEncoding);
    }
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(CertRejection::NotYetValid);
    }
    if now > validity.not_after.timestamp() {
        return Err(CertRejection::Expired);
    }
    check_key(cert.public_key())?;
    check_usage(&cert)
}

/// RSA >= 2048 bits, EC on P-256 or P-384, or Ed25519: what ring verifies
/// and what AWS IoT accepts for device certificates.
fn check_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(), CertRejection> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_PKCS1_RSAENCRYPTION {
        return match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) if rsa_bits(rsa.modulus) >= MIN_RSA_BITS => Ok(()),
            Ok(PublicKey::RSA(_)) => Err(CertRejection::WeakKey),
            _ => Err(CertRejection::BadEncoding),
        };
    }
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| Oid::try_from(p).ok());
        return match curve {
            Some(c) if c == OID_EC_P256 || c == OID_NIST_EC_P384 => Ok(()),
            _ => Err(CertRejection::UnsupportedKey),
        };
    }
    if *alg == OID_SIG_ED25519 {
        return Ok(());
    }
    Err(CertRejection::UnsupportedKey)
}

/// Bits in an unsigned big-endian integer (x509-parser's own `key_size`
/// rounds to whole bytes).
fn rsa_bits(modulus: &[u8]) -> usize {
    let digits = match modulus.iter().position(|&b| b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    let top_zeros = digits.first().map_or(0, |b| b.leading_zeros() as usize);
    digits.len() * 8 - top_zeros
}

/// A device certificate must allow signing (the handshake signature) and
/// client authentication, when it restricts its usage at all.
fn check_usage(cert: &X509Certificate<'_>) -> Result<(), CertRejection> {
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.digital_signature() => return Err(CertRejection::WrongUsage),
        Ok(_) => {}
        Err(_) => return Err(CertRejection::BadEncoding),
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) if !eku.value.client_auth => Err(CertRejection::WrongUsage),
        Ok(_) => Ok(()),
        Err(_) => Err(CertRejection::BadEncoding),
    }
}

impl ClientCertVerifier for DeviceVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No hints. Devices registered without a CA (often self-signed) chain to
    /// no listed name, and some TLS stacks withhold a certificate whose issuer
    /// is not hinted; the hints would also go stale when the snapshot is
    /// swapped (rustls borrows them for the verifier's life) and would tell
    /// any unauthenticated client which CAs we trust.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.verify_device(end_entity, intermediates, now) {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(reason) => Err(reason.to_rustls()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
