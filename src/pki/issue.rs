//! Issuing certificates with rcgen: the dev CA, the server certificate,
//! device certificates, and the deliberately flawed certificates other
//! tests need (expired, not yet valid, wrong purpose, self-signed, from an
//! unrelated CA, RSA-1024). Pure apart from the clock and, for RSA-1024,
//! the `openssl` command. Keys are ECDSA P-256 unless the name says otherwise.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

/// The dev CA's subject common name.
pub const CA_COMMON_NAME: &str = "wardmq dev CA";
/// The server certificate's subject common name.
pub const SERVER_COMMON_NAME: &str = "wardmq dev server";

const DAY: Duration = Duration::from_secs(24 * 3600);
/// CA: 10 years, so a dev checkout never sees its root expire.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Server: 2 years, under the 825-day limit some TLS clients enforce.
pub const SERVER_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
/// Device: 1 year.
pub const DEVICE_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// notBefore is backdated by this much (CA, server and device alike) so that
/// a peer whose clock is a little behind ours does not see a fresh
/// certificate as not yet valid.
const BACKDATE: Duration = Duration::from_secs(3600);

/// A CA that can sign: its certificate and its signing key.
pub struct Issuer {
    cert_pem: String,
    /// rcgen's issuer holds the key and the subject, key identifier and key
    /// usages it copies into issued certificates. When loaded from files it
    /// is rebuilt from the certificate, so it signs exactly as the issuer
    /// that wrote them.
    inner: rcgen::Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Issuer {
    // The key stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

impl Issuer {
    /// A new self-signed CA (CA:true, keyCertSign + cRLSign, 10 years).
    pub fn generate(common_name: &str) -> Result<Issuer> {
        let key = new_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = SystemTime::now();
        set_validity(
            &mut params,
            now.checked_sub(BACKDATE).unwrap_or(now),
            CA_VALIDITY,
        )?;
        params.serial_number = Some(serial());
        let cert = params
            .self_signed(&key)
            .context("cannot sign the CA certificate")?;
        Ok(Issuer {
            cert_pem: cert.pem(),
            inner: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA in `cert_pem` with the private key in `key_pem` (PKCS#8).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Issuer> {
        let key = KeyPair::from_pem(key_pem).context("cannot read the CA private key")?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| anyhow!("no PEM certificate in the CA file: {e}"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| anyhow!("cannot parse the CA certificate: {e}"))?;
        // A mismatched pair would sign certificates nobody can verify;
        // better to say so now than at the device's handshake.
        if cert.public_key().raw != key.subject_public_key_info().as_slice() {
            bail!("the CA private key does not belong to the CA certificate");
        }
        if !cert.is_ca() {
            bail!("the CA certificate is not a CA (basicConstraints CA is not set)");
        }
        let inner = rcgen::Issuer::from_ca_cert_der(&der, key)
            .context("cannot use the CA certificate as an issuer")?;
        Ok(Issuer {
            cert_pem: cert_pem.to_owned(),
            inner,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM. Write it with mode 0600.
    pub fn key_pem(&self) -> String {
        self.inner.key().serialize_pem()
    }

    fn sign(&self, params: &CertificateParams, public_key: &impl PublicKeyData) -> Result<String> {
        let cert = params
            .signed_by(public_key, &self.inner)
            .context("cannot sign the certificate")?;
        Ok(cert.pem())
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// What a device certificate says besides its subject.
#[derive(Debug, Clone)]
pub struct CertOptions {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Extended key usage clientAuth (what a device presents).
    pub client_auth: bool,
    /// Extended key usage serverAuth.
    pub server_auth: bool,
}

impl Default for CertOptions {
    /// A normal device certificate: clientAuth only, valid from an hour ago
    /// for one year.
    fn default() -> Self {
        let now = SystemTime::now();
        CertOptions {
            not_before: now.checked_sub(BACKDATE).unwrap_or(now),
            not_after: now + DEVICE_VALIDITY,
            client_auth: true,
            server_auth: false,
        }
    }
}

/// A device certificate for `common_name` with a fresh P-256 key, signed by
/// `ca`: keyUsage digitalSignature, CA:false. This is what the admin API's
/// CreateKeysAndCertificate returns.
pub fn issue_device_cert(ca: &Issuer, common_name: &str, opts: &CertOptions) -> Result<Issued> {
    let key = new_key()?;
    let cert_pem = ca.sign(&device_params(common_name, opts)?, &key)?;
    Ok(Issued {
        cert_pem,
        key_pem: key.serialize_pem(),
    })
}

/// The TLS listener's certificate: SANs localhost, 127.0.0.1, ::1 and
/// `extra_hosts` (names or IP addresses), EKU serverAuth, 2 years.
pub fn issue_server_cert(ca: &Issuer, extra_hosts: &[String]) -> Result<Issued> {
    let key = new_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name(SERVER_COMMON_NAME);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial());
    let now = SystemTime::now();
    set_validity(
        &mut params,
        now.checked_sub(BACKDATE).unwrap_or(now),
        SERVER_VALIDITY,
    )?;
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
    for h in extra_hosts {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    for h in &hosts {
        let san = match h.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if is_dns_name(h) => SanType::DnsName(
                h.clone()
                    .try_into()
                    .with_context(|| format!("{h:?} is not a valid host name"))?,
            ),
            Err(_) => bail!("{h:?} is neither an IP address nor a DNS name"),
        };
        params.subject_alt_names.push(san);
    }
    let cert_pem = ca.sign(&params, &key)?;
    Ok(Issued {
        cert_pem,
        key_pem: key.serialize_pem(),
    })
}

// ---- flawed certificates, for tests of what the broker must refuse ----

/// A device certificate that expired a day ago (valid for the 30 days before).
pub fn expired_device_cert(ca: &Issuer, common_name: &str) -> Result<Issued> {
    let now = SystemTime::now();
    let opts = CertOptions {
        not_before: now.checked_sub(31 * DAY).unwrap_or(now),
        not_after: now.checked_sub(DAY).unwrap_or(now),
        ..CertOptions::default()
    };
    issue_device_cert(ca, common_name, &opts)
}

/// A device certificate whose validity starts tomorrow.
pub fn not_yet_valid_device_cert(ca: &Issuer, common_name: &str) -> Result<Issued> {
    let now = SystemTime::now();
    let opts = CertOptions {
        not_before: now + DAY,
        not_after: now + 31 * DAY,
        ..CertOptions::default()
    };
    issue_device_cert(ca, common_name, &opts)
}

/// A certificate from the right CA but for the wrong purpose: EKU
/// serverAuth only, so a device presenting it must be refused.
pub fn server_auth_only_cert(ca: &Issuer, common_name: &str) -> Result<Issued> {
    let opts = CertOptions {
        client_auth: false,
        server_auth: true,
        ..CertOptions::default()
    };
    issue_device_cert(ca, common_name, &opts)
}

/// A self-signed device certificate (clientAuth, CA:false), as used with
/// RegisterCertificateWithoutCA.
pub fn self_signed_device_cert(common_name: &str) -> Result<Issued> {
    let key = new_key()?;
    let params = device_params(common_name, &CertOptions::default())?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the certificate")?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A second CA that has nothing to do with the dev CA.
pub fn unrelated_ca() -> Result<Issuer> {
    Issuer::generate("wardmq unrelated test CA")
}

/// A device certificate with a 1024-bit RSA key (too weak: audits must flag
/// it, `DEVICE_CERTIFICATE_KEY_QUALITY_CHECK`), signed by `ca`.
///
/// rcgen cannot generate RSA keys and ring refuses to load ones under 2048
/// bits, so `openssl` makes the key and gives us its public half; rcgen only
/// needs the public key to issue. Errors if `openssl` is not installed.
pub fn rsa1024_device_cert(ca: &Issuer, common_name: &str) -> Result<Issued> {
    let key_pem = openssl(&["genrsa", "1024"], b"")
        .context("cannot generate an RSA-1024 key with `openssl genrsa`")?;
    let public = openssl(
        &["rsa", "-RSAPublicKey_out", "-outform", "DER"],
        key_pem.as_slice(),
    )
    .context("cannot extract the RSA public key with `openssl rsa`")?;
    let key_pem = String::from_utf8(key_pem).context("openssl wrote a non-UTF-8 key")?;
    let cert_pem = ca.sign(
        &device_params(common_name, &CertOptions::default())?,
        &RsaPublicKey(public),
    )?;
    Ok(Issued { cert_pem, key_pem })
}

/// Whether the `openssl` command can be run (tests that need it skip
/// with a message otherwise).
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A PKCS#1 RSAPublicKey, which is what rcgen puts in the certificate's
/// subjectPublicKey for RSA.
struct RsaPublicKey(Vec<u8>);

impl PublicKeyData for RsaPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

fn openssl(args: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `openssl` (is it installed?)")?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .context("cannot write to openssl's standard input")?;
    }
    let out = child
        .wait_with_output()
        .context("cannot wait for openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Letters, digits and hyphens in dot-separated labels, optionally behind
/// one leading `*.`; rcgen would accept any ASCII, which TLS clients would
/// then fail to match.
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn device_params(common_name: &str, opts: &CertOptions) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if opts.client_auth {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    if opts.server_auth {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial());
    params.not_before = OffsetDateTime::from(opts.not_before);
    params.not_after = OffsetDateTime::from(opts.not_after);
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, from: SystemTime, len: Duration) -> Result<()> {
    params.not_before = OffsetDateTime::from(from);
    params.not_after = OffsetDateTime::from(
        from.checked_add(len)
            .context("validity end is out of range")?,
    );
    Ok(())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("cannot generate a P-256 key")
}

/// 16 random bytes, top bit clear so the DER INTEGER stays positive and
/// 16 bytes long; RFC 5280 wants serials unique per CA, which random
/// 127-bit values are in practice.
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from(bytes.to_vec())
}
