//! The CA that `CreateKeysAndCertificate` issues device certificates
//! with: the dev PKI's CA certificate and key, loaded at start. AWS signs
//! these with its own CA; here the operator's CA does, so devices trust
//! the same chain as for certificates they register themselves.

use std::path::Path;

use rcgen::{
    date_time_ymd, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};

/// Issued certificates expire when AWS's do (31 Dec 2049), so a device
/// never has to be re-provisioned because of the dev CA's choice.
const NOT_AFTER: (i32, u8, u8) = (2049, 12, 31);

/// A CA able to sign device certificates.
pub struct Issuer {
    issuer: rcgen::Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

/// A freshly issued certificate and its key pair, all PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_pem: String,
    pub public_key_pem: String,
    pub private_key_pem: String,
}

impl Issuer {
    /// Loads the CA from its certificate and key files. Both files absent
    /// means no issuer (`Ok(None)`); one without the other, or files that
    /// do not parse, are configuration errors.
    pub fn load(cert: &Path, key: &Path) -> Result<Option<Issuer>, String> {
        match (cert.exists(), key.exists()) {
            (false, false) => return Ok(None),
            (true, false) => return Err(format!("{} is missing", key.display())),
            (false, true) => return Err(format!("{} is missing", cert.display())),
            (true, true) => {}
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        Issuer::from_pem(&read(cert)?, &read(key)?)
            .map(Some)
            .map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))
    }

    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Issuer, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("invalid CA private key: {e}"))?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| format!("invalid CA certificate: {e}"))?;
        Ok(Issuer { issuer })
    }

    /// A new ECDSA P-256 key pair and a client certificate for it.
    pub fn issue(&self) -> Result<Issued, String> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| format!("cannot generate a key pair: {e}"))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "wardmq device certificate");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        // An hour back tolerates devices whose clocks run a little slow.
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        params.not_after = date_time_ymd(NOT_AFTER.0, NOT_AFTER.1, NOT_AFTER.2);
        let mut serial: [u8; 16] = rand::random();
        // Positive and without a leading zero byte, as RFC 5280 asks.
        serial[0] = (serial[0] & 0x7f) | 0x40;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("cannot sign the certificate: {e}"))?;
        Ok(Issued {
            certificate_pem: cert.pem(),
            public_key_pem: key.public_key_pem(),
            private_key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn test_ca() -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-signed");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn issues_p256_client_certificates() {
        let (cert, key) = test_ca();
        let issuer = Issuer::from_pem(&cert, &key).expect("issuer");
        let issued = issuer.issue().expect("issued");
        assert!(issued
            .certificate_pem
            .starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(issued.private_key_pem.contains("PRIVATE KEY"));
        assert!(issued.public_key_pem.contains("PUBLIC KEY"));
        assert!(Issuer::from_pem("junk", &key).is_err());
        assert!(Issuer::from_pem(&cert, "junk").is_err());
    }

    #[test]
    fn missing_files_mean_no_issuer() {
        let dir = tempfile::tempdir().expect("dir");
        let cert = dir.path().join("ca.pem");
        let key = dir.path().join("ca.key");
        assert!(matches!(Issuer::load(&cert, &key), Ok(None)));
        std::fs::write(&cert, "x").expect("write");
        assert!(Issuer::load(&cert, &key).is_err());
    }
}
