//! Mutual-TLS for device listeners: the rustls server configuration, the
//! handshake with its timeout, and the typed identity and refusal reasons
//! that come out of it.
//!
//! Trust (CAs, CRLs, CA-less certificates) lives in a [`TrustStore`] that is
//! swapped as a whole; the [`DeviceVerifier`] reads it at every handshake.

mod crl_watcher;
mod rejection;
mod trust;
mod verifier;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::NoServerSessionStorage;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

pub use crl_watcher::{CrlWatcher, CrlWatcherHandle, CRL_POLL_INTERVAL};
pub use rejection::{CertRejection, Rejected};
pub use trust::{BadCaCertificate, CrlError, TrustSnapshot, TrustStore};
pub use verifier::DeviceVerifier;

use super::identity::DeviceIdentity;

/// ALPN names we answer to. Devices need not offer ALPN at all; one that
/// offers only other names is refused (RFC 7301 no_application_protocol).
/// AWS IoT devices on port 443 offer `x-amzn-mqtt-ca`.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"mqtt", b"x-amzn-mqtt-ca"];

/// Building the server configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server certificate chain: {0}")]
    CertificatePem(String),
    #[error("server certificate chain PEM holds no certificate")]
    NoCertificate,
    #[error("server private key: {0}")]
    KeyPem(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Why a device's handshake did not produce a connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeFailure {
    /// The device's certificate was refused.
    #[error("certificate rejected: {0}")]
    Rejected(CertRejection),
    /// The device sent no certificate.
    #[error("no client certificate")]
    NoCertificate,
    /// The handshake did not finish within the handshake timeout.
    #[error("handshake timed out")]
    Timeout,
    /// A TLS protocol failure that is not about the certificate (no common
    /// cipher suite or ALPN name, a fatal alert from the device, ...).
    #[error("TLS error: {0}")]
    Tls(rustls::Error),
    /// The socket failed or closed during the handshake.
    #[error("handshake i/o error: {0}")]
    Io(io::Error),
}

impl HandshakeFailure {
    /// The certificate reason, if this was a refused certificate.
    pub fn rejection(&self) -> Option<CertRejection> {
        match self {
            Self::Rejected(r) => Some(*r),
            _ => None,
        }
    }

    /// A stable label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rejected(r) => r.as_str(),
            Self::NoCertificate => "no_certificate",
            Self::Timeout => "timeout",
            Self::Tls(_) => "tls_error",
            Self::Io(_) => "io_error",
        }
    }

    /// Classifies the error tokio-rustls returns from a server handshake.
    pub fn from_io(err: io::Error) -> Self {
        let tls = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        match tls {
            Some(rustls::Error::NoCertificatesPresented) => Self::NoCertificate,
            Some(e) => match CertRejection::from_rustls(&e) {
                Some(r) => Self::Rejected(r),
                None => Self::Tls(e),
            },
            None => Self::Io(err),
        }
    }
}

/// The rustls configuration for a device listener: mutual TLS through
/// `verifier`, TLS 1.2 and 1.3 on the ring provider, optional ALPN, and no
/// session resumption at all (a resumed session would skip the
/// client-certificate check).
pub fn server_config(
    server_cert_chain_pem: &[u8],
    server_key_pem: &[u8],
    verifier: Arc<DeviceVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(server_cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::CertificatePem(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(server_key_pem)
        .map_err(|e| TlsError::KeyPem(e.to_string()))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;

    // No resumption: no session-id cache (TLS 1.2), no TLS 1.3 tickets. The
    // builder's ticketer already produces no TLS 1.2 tickets; keep it.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Accepts device connections: the handshake under a timeout, then the
/// device's identity typed from its certificate.
pub struct DeviceAcceptor {
    /// Swapped as a whole when the server certificate is rotated.
    config: ArcSwap<ServerConfig>,
    verifier: Arc<DeviceVerifier>,
    handshake_timeout: Duration,
}

impl DeviceAcceptor {
    /// `config` should come from [`server_config`] with the same `verifier`.
    pub fn new(
        config: Arc<ServerConfig>,
        verifier: Arc<DeviceVerifier>,
        handshake_timeout: Duration,
    ) -> Self {
        Self {
            config: ArcSwap::new(config),
            verifier,
            handshake_timeout,
        }
    }

    /// Uses `config` for handshakes from now on (server certificate rotation).
    pub fn replace_config(&self, config: Arc<ServerConfig>) {
        self.config.store(config);
    }

    /// Runs the TLS handshake on `stream` and types the device's identity.
    pub async fn accept<IO>(
        &self,
        stream: IO,
    ) -> Result<(TlsStream<IO>, DeviceIdentity), HandshakeFailure>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.load_full());
        let tls = match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await
        {
            Err(_elapsed) => return Err(HandshakeFailure::Timeout),
            Ok(Err(e)) => return Err(HandshakeFailure::from_io(e)),
            Ok(Ok(tls)) => tls,
        };
        let identity = self.identify(&tls)?;
        Ok((tls, identity))
    }

    /// rustls only says the chain was verified, not which CA it chained to,
    /// so ask the verifier again (same rules, current snapshot). If trust
    /// changed during the handshake and the device no longer passes, it is
    /// refused: that is what a later handshake would do.
    fn identify<IO>(&self, tls: &TlsStream<IO>) -> Result<DeviceIdentity, HandshakeFailure> {
        let (_, conn) = tls.get_ref();
        let Some((end_entity, intermediates)) =
            conn.peer_certificates().and_then(|c| c.split_first())
        else {
            return Err(HandshakeFailure::NoCertificate);
        };
        let ca_id = self
            .verifier
            .verify_device(end_entity, intermediates, UnixTime::now())
            .map_err(HandshakeFailure::Rejected)?;
        DeviceIdentity::from_certificate(end_entity.as_ref(), ca_id)
            .map_err(|_| HandshakeFailure::Rejected(CertRejection::BadEncoding))
    }
}
