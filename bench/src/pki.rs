//! The bench's own PKI for `--tls`: a throwaway CA, a server certificate
//! for 127.0.0.1 that every broker under test presents, and one device
//! certificate that every bench client presents. Made in memory once per
//! bench process (ECDSA P-256 throughout, rcgen on ring) and written into
//! each broker's scratch directory.
//!
//! One shared device certificate keeps the wardmq setup to a single
//! registration (wardmq refuses certificates it does not know, even when
//! their CA is registered); no broker caches anything per certificate, so
//! every handshake still verifies the client's chain in full.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore};
use time::{Duration, OffsetDateTime};

/// The device certificate's subject common name.
pub const DEVICE_COMMON_NAME: &str = "wardmq-bench-device";

/// The certificates and keys of one bench run.
pub struct BenchPki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub device_cert_pem: String,
    device_cert_der: CertificateDer<'static>,
    device_key_der: Vec<u8>,
}

impl std::fmt::Debug for BenchPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchPki").finish_non_exhaustive()
    }
}

/// Where a broker finds the files, inside its scratch directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFiles {
    pub dir: PathBuf,
    /// The CA that signs device certificates (what the broker trusts).
    pub ca: PathBuf,
    /// The server certificate alone (the client trusts the CA directly).
    pub cert: PathBuf,
    /// Its PKCS#8 key.
    pub key: PathBuf,
}

impl ServerFiles {
    /// wardmq's layout: `ca.pem`, `server.pem`, `server.key` in one
    /// directory (no `ca.key`, so wardmq's dev-PKI bootstrap leaves the
    /// directory alone). The other brokers take the same files by path.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Valid from an hour ago (clock skew) for 30 days: long enough for any
/// run, short enough that a leaked scratch file is soon worthless.
fn validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(30);
}

/// A self-signed CA.
fn new_ca(common_name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name(common_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.serial_number = Some(SerialNumber::from(vec![1]));
    validity(&mut ca);
    CertifiedIssuer::self_signed(ca, ca_key).context("signing the CA certificate")
}

/// A device (client-auth) certificate `issuer` signed, and its key.
fn new_device(issuer: &CertifiedIssuer<'static, KeyPair>) -> Result<(Certificate, KeyPair)> {
    let device_key = KeyPair::generate().context("generating the device key")?;
    let mut device = CertificateParams::default();
    device.distinguished_name = name(DEVICE_COMMON_NAME);
    device.is_ca = IsCa::ExplicitNoCa;
    device.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    device.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    device.use_authority_key_identifier_extension = true;
    device.serial_number = Some(SerialNumber::from(vec![3]));
    validity(&mut device);
    let cert = device
        .signed_by(&device_key, issuer)
        .context("signing the device certificate")?;
    Ok((cert, device_key))
}

impl BenchPki {
    pub fn generate() -> Result<Self> {
        let issuer = new_ca("wardmq-bench CA")?;

        let server_key = KeyPair::generate().context("generating the server key")?;
        let mut server = CertificateParams::default();
        server.distinguished_name = name("wardmq-bench server");
        server.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into().context("SAN localhost")?),
        ];
        server.is_ca = IsCa::ExplicitNoCa;
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        server.serial_number = Some(SerialNumber::from(vec![2]));
        validity(&mut server);
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .context("signing the server certificate")?;

        let (device_cert, device_key) = new_device(&issuer)?;

        Ok(Self {
            ca_pem: issuer.pem(),
            ca_der: issuer.der().clone(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            device_cert_pem: device_cert.pem(),
            device_cert_der: device_cert.der().clone(),
            device_key_der: device_key.serialize_der(),
        })
    }

    /// Writes the broker's files into `dir` (created if needed).
    pub fn write_server_files(&self, dir: &Path) -> Result<ServerFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = ServerFiles::in_dir(dir);
        for (path, text) in [
            (&files.ca, &self.ca_pem),
            (&files.cert, &self.server_cert_pem),
            (&files.key, &self.server_key_pem),
        ] {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(files)
    }

    /// The clients' TLS configuration: trusts only the bench CA, presents
    /// the device certificate, ring provider, TLS 1.3 or 1.2, and no
    /// session resumption, so every connection is a full mutual-TLS
    /// handshake whatever the broker offers.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>> {
        self.client_config_with(
            self.device_cert_der.clone(),
            PrivatePkcs8KeyDer::from(self.device_key_der.clone()),
        )
    }

    /// Like `client_config`, but presenting a device certificate from a CA
    /// made just now, which no broker trusts: what a storm-p99 attacker
    /// offers. Same name and key type as the real one, so only the chain
    /// differs.
    pub fn unknown_ca_client_config(&self) -> Result<Arc<ClientConfig>> {
        let issuer = new_ca("wardmq-bench unknown CA")?;
        let (cert, key) = new_device(&issuer)?;
        self.client_config_with(
            cert.der().clone(),
            PrivatePkcs8KeyDer::from(key.serialize_der()),
        )
    }

    fn client_config_with(
        &self,
        cert: CertificateDer<'static>,
        key: PrivatePkcs8KeyDer<'static>,
    ) -> Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .context("adding the bench CA to the client's roots")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(key);
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key)
            .context("the device certificate and key")?;
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a broken fixture should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn makes_a_chain_the_client_accepts_and_writes_the_server_files() {
        let pki = BenchPki::generate().unwrap();
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.server_key_pem.contains("PRIVATE KEY"));
        assert_ne!(pki.device_cert_pem, pki.server_cert_pem);
        // The client config builds: the key matches the device certificate.
        let config = pki.client_config().unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());

        // The device certificate chains to the CA for client auth, as every
        // broker will check.
        let anchor = webpki_anchor(&pki.ca_der);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(anchor),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_client_cert(
                &pki.device_cert_der,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap();

        // storm-p99's attackers: a certificate from a CA nobody trusts,
        // which the same verifier refuses.
        let rogue = pki.unknown_ca_client_config().unwrap();
        let rogue_cert = rogue
            .client_auth_cert_resolver
            .resolve(&[], &[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap()
            .cert[0]
            .clone();
        assert_ne!(rogue_cert, pki.device_cert_der);
        assert!(verifier
            .verify_client_cert(&rogue_cert, &[], rustls::pki_types::UnixTime::now())
            .is_err());

        let dir = tempfile::tempdir().unwrap();
        let files = pki.write_server_files(&dir.path().join("certs")).unwrap();
        assert_eq!(files.ca.file_name().unwrap(), "ca.pem");
        assert_eq!(
            std::fs::read_to_string(&files.cert).unwrap(),
            pki.server_cert_pem
        );
        assert!(!files.dir.join("ca.key").exists());
    }

    fn webpki_anchor(ca: &CertificateDer<'static>) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        roots
    }
}
