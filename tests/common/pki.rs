//! A throwaway PKI for the TLS tests, written as PEM files in a temp dir
//! so that external clients (mosquitto, paho) can use them.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};

pub type Ca = CertifiedIssuer<'static, KeyPair>;

fn p256() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key")
}

fn named(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p
}

pub fn ca(cn: &str) -> Ca {
    let mut p = named(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, p256()).expect("ca")
}

/// Paths of a certificate and its key on disk.
#[derive(Clone)]
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub pem: String,
}

fn write(dir: &Path, name: &str, cert_pem: String, key: &KeyPair) -> Files {
    let cert = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &cert_pem).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    Files {
        cert,
        key: key_path,
        pem: cert_pem,
    }
}

pub fn write_ca(dir: &Path, name: &str, ca: &Ca) -> PathBuf {
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, ca.pem()).expect("write ca");
    path
}

pub fn server(dir: &Path, ca: &Ca) -> Files {
    let mut p = named("localhost");
    p.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().expect("dns")),
        SanType::IpAddress("127.0.0.1".parse().expect("ip")),
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = p256();
    let cert = p.signed_by(&key, &**ca).expect("server cert");
    write(dir, "server", cert.pem(), &key)
}

pub struct DeviceSpec {
    pub serial: u8,
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
    pub eku: Vec<ExtendedKeyUsagePurpose>,
}

impl Default for DeviceSpec {
    fn default() -> Self {
        DeviceSpec {
            serial: 1,
            not_before: (2020, 1, 1),
            not_after: (2090, 1, 1),
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
        }
    }
}

fn device_params(cn: &str, spec: &DeviceSpec) -> CertificateParams {
    let mut p = named(cn);
    p.serial_number = Some(SerialNumber::from_slice(&[0x20, spec.serial]));
    let (y, m, d) = spec.not_before;
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = spec.not_after;
    p.not_after = rcgen::date_time_ymd(y, m, d);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = spec.eku.clone();
    p
}

pub fn device(dir: &Path, ca: &Ca, cn: &str, spec: DeviceSpec) -> Files {
    let key = p256();
    let cert = device_params(cn, &spec)
        .signed_by(&key, &**ca)
        .expect("device cert");
    write(dir, cn, cert.pem(), &key)
}

pub fn self_signed_device(dir: &Path, cn: &str) -> Files {
    let key = p256();
    let cert = device_params(cn, &DeviceSpec::default())
        .self_signed(&key)
        .expect("self-signed");
    write(dir, cn, cert.pem(), &key)
}

/// An RSA-1024 device certificate (rcgen cannot make RSA keys; openssl can).
pub fn rsa1024_device(dir: &Path, ca: &Ca, cn: &str) -> Files {
    let key_path = dir.join(format!("{cn}.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
        ])
        .arg(&key_path)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl genpkey");
    let pub_out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key_path)
        .output()
        .expect("openssl pkey");
    let spki = rcgen::SubjectPublicKeyInfo::from_pem(&String::from_utf8_lossy(&pub_out.stdout))
        .expect("spki");
    let cert = device_params(cn, &DeviceSpec::default())
        .signed_by(&spki, &**ca)
        .expect("rsa cert");
    let cert_path = dir.join(format!("{cn}.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write");
    Files {
        cert: cert_path,
        key: key_path,
        pem: cert.pem(),
    }
}

/// A CRL from `ca` revoking the given device serials.
pub fn crl(dir: &Path, ca: &Ca, serials: &[u8], number: u8) -> PathBuf {
    let crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2024, 1, 1),
        next_update: rcgen::date_time_ymd(2090, 1, 1),
        crl_number: SerialNumber::from_slice(&[number]),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|&s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[0x20, s]),
                revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&**ca)
    .expect("crl");
    let path = dir.join("ca.crl.pem");
    std::fs::write(&path, crl.pem().expect("crl pem")).expect("write crl");
    path
}
