//! Why a device certificate was refused, and how that reason travels through
//! rustls (which only carries an `Error`) back to the listener that counts it.
//!
//! Where rustls has its own `CertificateError` variant we use it, so the
//! device gets the matching TLS alert (certificate_expired, unknown_ca, ...);
//! the rest travel as `CertificateError::Other` holding a [`Rejected`].

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::{CertificateError, OtherError};

/// A typed reason for refusing a device certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertRejection {
    /// notAfter is before the handshake time (of the certificate or of a
    /// certificate in its chain).
    Expired,
    /// notBefore is after the handshake time.
    NotYetValid,
    /// Chains to no ACTIVE registered CA and is not registered without a CA.
    UnknownCa,
    /// Listed in the CRL of the registered CA that issued it.
    Revoked,
    /// RSA modulus under 2048 bits.
    WeakKey,
    /// A key type or curve we do not accept (only RSA >= 2048, P-256, P-384
    /// and Ed25519 are).
    UnsupportedKey,
    /// KeyUsage without digitalSignature, ExtendedKeyUsage without
    /// clientAuth, or a CA certificate used as a device certificate.
    WrongUsage,
    /// Not parseable DER X.509 (or an unsupported version / critical extension).
    BadEncoding,
    /// A signature in the chain, or the handshake signature, does not verify.
    BadSignature,
    /// A signature algorithm the ring provider does not support.
    UnsupportedAlgorithm,
    /// Any other chain problem: path length, name constraints, path too long.
    InvalidChain,
}

impl CertRejection {
    /// A stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::UnknownCa => "unknown_ca",
            Self::Revoked => "revoked",
            Self::WeakKey => "weak_key",
            Self::UnsupportedKey => "unsupported_key",
            Self::WrongUsage => "wrong_usage",
            Self::BadEncoding => "bad_encoding",
            Self::BadSignature => "bad_signature",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::InvalidChain => "invalid_chain",
        }
    }

    /// The error handed to rustls, which also picks the TLS alert.
    pub fn to_rustls(self) -> rustls::Error {
        let e = match self {
            Self::Expired => CertificateError::Expired,
            Self::NotYetValid => CertificateError::NotValidYet,
            Self::UnknownCa => CertificateError::UnknownIssuer,
            Self::Revoked => CertificateError::Revoked,
            Self::WrongUsage => CertificateError::InvalidPurpose,
            Self::BadEncoding => CertificateError::BadEncoding,
            Self::BadSignature => CertificateError::BadSignature,
            Self::WeakKey
            | Self::UnsupportedKey
            | Self::UnsupportedAlgorithm
            | Self::InvalidChain => CertificateError::Other(OtherError(Arc::new(Rejected(self)))),
        };
        rustls::Error::InvalidCertificate(e)
    }

    /// Recovers the reason from a rustls error raised while verifying a client
    /// certificate. `None` for errors that are not about the certificate.
    pub fn from_rustls(err: &rustls::Error) -> Option<Self> {
        let rustls::Error::InvalidCertificate(e) = err else {
            return None;
        };
        #[allow(deprecated)] // UnsupportedSignatureAlgorithm is still produced by older paths.
        let r = match e {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Self::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Self::NotYetValid
            }
            CertificateError::UnknownIssuer => Self::UnknownCa,
            CertificateError::Revoked => Self::Revoked,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Self::WrongUsage
            }
            CertificateError::BadEncoding | CertificateError::UnhandledCriticalExtension => {
                Self::BadEncoding
            }
            CertificateError::BadSignature => Self::BadSignature,
            CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                Self::UnsupportedAlgorithm
            }
            CertificateError::Other(OtherError(inner)) => match inner.downcast_ref::<Rejected>() {
                Some(Rejected(r)) => *r,
                None => Self::InvalidChain,
            },
            _ => Self::InvalidChain,
        };
        Some(r)
    }

    /// Recovers the reason from the `io::Error` a tokio-rustls handshake
    /// returns (it wraps the rustls error with `ErrorKind::InvalidData`).
    pub fn from_io(err: &io::Error) -> Option<Self> {
        err.get_ref()?
            .downcast_ref::<rustls::Error>()
            .and_then(Self::from_rustls)
    }

    /// Maps a webpki chain-verification error.
    pub(crate) fn from_webpki(err: &webpki::Error) -> Self {
        use webpki::Error as E;
        #[allow(deprecated)] // match the deprecated variants too: webpki may still return them.
        match err {
            E::CertExpired { .. } | E::InvalidCertValidity => Self::Expired,
            E::CertNotValidYet { .. } => Self::NotYetValid,
            E::UnknownIssuer => Self::UnknownCa,
            E::CertRevoked => Self::Revoked,
            E::RequiredEkuNotFound
            | E::RequiredEkuNotFoundContext(_)
            | E::EmptyEkuExtension
            | E::CaUsedAsEndEntity
            | E::EndEntityUsedAsCa => Self::WrongUsage,
            E::BadDer
            | E::BadDerTime
            | E::TrailingData(_)
            | E::MalformedExtensions
            | E::ExtensionValueInvalid
            | E::InvalidSerialNumber
            | E::UnsupportedCertVersion
            | E::UnsupportedCriticalExtension => Self::BadEncoding,
            E::InvalidSignatureForPublicKey => Self::BadSignature,
            E::UnsupportedSignatureAlgorithm
            | E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKey
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => Self::UnsupportedAlgorithm,
            _ => Self::InvalidChain,
        }
    }
}

impl fmt::Display for CertRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The payload of `CertificateError::Other` for reasons rustls has no
/// variant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub CertRejection);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device certificate rejected: {}", self.0)
    }
}

impl std::error::Error for Rejected {}
