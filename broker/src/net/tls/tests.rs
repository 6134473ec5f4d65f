//! Real loopback handshakes: a tokio-rustls client with its own certificate
//! against a [`DeviceAcceptor`] on 127.0.0.1:0, with a fresh rcgen PKI per
//! test (ECDSA P-256 for speed).

#![allow(clippy::unwrap_used)] // tests: a failed setup step should panic loudly

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber, SubjectPublicKeyInfo, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{ClientConfig, HandshakeKind, RootCertStore, SignatureAlgorithm, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;
use crate::net::identity::{certificate_id, DeviceIdentity};

/// Every test gets this long, start to finish.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

async fn run<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out");
}

// ---------------------------------------------------------------- PKI

type Ca = CertifiedIssuer<'static, KeyPair>;

fn p256() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn root_ca(cn: &str) -> Ca {
    CertifiedIssuer::self_signed(ca_params(cn), p256()).unwrap()
}

fn intermediate_ca(cn: &str, parent: &Ca) -> Ca {
    CertifiedIssuer::signed_by(ca_params(cn), p256(), &**parent).unwrap()
}

/// A device certificate and key, with the chain it presents.
struct Device {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Device {
    fn der(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }
}

fn device_params(cn: &str, serial: u8) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(SerialNumber::from_slice(&[0x10, serial]));
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2090, 1, 1);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p
}

fn device_with(ca: &Ca, params: CertificateParams) -> Device {
    let key = p256();
    let cert = params.signed_by(&key, &**ca).unwrap();
    Device {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

fn device(ca: &Ca, cn: &str, serial: u8) -> Device {
    device_with(ca, device_params(cn, serial))
}

fn self_signed_device(cn: &str) -> Device {
    let key = p256();
    let cert = device_params(cn, 1).self_signed(&key).unwrap();
    Device {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

fn crl(ca: &Ca, revoked_serials: &[u8], number: u8) -> CertificateRevocationListDer<'static> {
    signed_crl(ca, revoked_serials, number).der().clone()
}

fn signed_crl(ca: &Ca, revoked_serials: &[u8], number: u8) -> rcgen::CertificateRevocationList {
    CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2024, 1, 1),
        next_update: rcgen::date_time_ymd(2090, 1, 1),
        crl_number: SerialNumber::from_slice(&[number]),
        issuing_distribution_point: None,
        revoked_certs: revoked_serials
            .iter()
            .map(|&s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[0x10, s]),
                revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&**ca)
    .unwrap()
}

fn snapshot(cas: &[&Ca], caless: &[&Device]) -> TrustSnapshot {
    TrustSnapshot::new(
        cas.iter().map(|c| c.der().clone()),
        caless.iter().map(|d| d.der().clone()),
    )
    .unwrap()
}

fn ca_id(ca: &Ca) -> String {
    certificate_id(ca.der().as_ref())
}

// ---------------------------------------------------------------- server

type Outcome = Result<DeviceIdentity, HandshakeFailure>;

struct Server {
    addr: std::net::SocketAddr,
    results: mpsc::UnboundedReceiver<Outcome>,
    roots: Arc<RootCertStore>,
    store: Arc<TrustStore>,
    acceptor: Arc<DeviceAcceptor>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(trust: TrustSnapshot) -> Server {
    start_with_timeout(trust, Duration::from_secs(5)).await
}

/// A device listener that reports each handshake's outcome and, on success,
/// writes "ok" and closes.
async fn start_with_timeout(trust: TrustSnapshot, handshake_timeout: Duration) -> Server {
    let store = Arc::new(TrustStore::new(trust));
    let verifier = Arc::new(DeviceVerifier::new(Arc::clone(&store)));
    let (server_ca, config) = server_identity(&verifier);
    let acceptor = Arc::new(DeviceAcceptor::new(config, verifier, handshake_timeout));
    let server_acceptor = Arc::clone(&acceptor);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, results) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = Arc::clone(&acceptor);
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok((mut tls, identity)) => {
                        let _ = tx.send(Ok(identity));
                        let _ = tls.write_all(b"ok").await;
                        let _ = tls.shutdown().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        }
    });

    let mut roots = RootCertStore::empty();
    roots.add(server_ca.der().clone()).unwrap();
    Server {
        addr,
        results,
        roots: Arc::new(roots),
        store,
        acceptor: server_acceptor,
        task,
    }
}

/// A fresh server CA and a "localhost" certificate under it, as a config.
fn server_identity(verifier: &Arc<DeviceVerifier>) -> (Ca, Arc<rustls::ServerConfig>) {
    let server_ca = root_ca("Server CA");
    let server_key = p256();
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &*server_ca)
        .unwrap();
    let chain_pem = format!("{}{}", server_cert.pem(), server_ca.pem());
    let config = server_config(
        chain_pem.as_bytes(),
        server_key.serialize_pem().as_bytes(),
        Arc::clone(verifier),
    )
    .unwrap();
    (server_ca, config)
}

// ---------------------------------------------------------------- client

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(server: &Server, device: &Device) -> Arc<ClientConfig> {
    client_config_versions(server, device, rustls::DEFAULT_VERSIONS)
}

fn client_config_versions(
    server: &Server,
    device: &Device,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(Arc::clone(&server.roots))
            .with_client_auth_cert(device.chain.clone(), device.key.clone_key())
            .unwrap(),
    )
}

/// What the client saw.
#[derive(Debug)]
struct ClientSide {
    /// The server's "ok" arrived: the connection was accepted.
    accepted: bool,
    kind: Option<HandshakeKind>,
    alpn: Option<Vec<u8>>,
}

/// Connects, reads until the server closes, and returns both sides' views.
async fn connect(server: &mut Server, config: Arc<ClientConfig>) -> (ClientSide, Outcome) {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientSide {
        accepted: false,
        kind: None,
        alpn: None,
    };
    // With TLS 1.3 the client finishes its handshake before the server has
    // judged its certificate; a refusal shows up as an alert on first read.
    if let Ok(mut tls) = connector.connect(name, tcp).await {
        let mut buf = Vec::new();
        let read = tls.read_to_end(&mut buf).await;
        client.accepted = read.is_ok() && buf == b"ok";
        let conn = tls.get_ref().1;
        client.kind = conn.handshake_kind();
        client.alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    }
    let outcome = server.results.recv().await.unwrap();
    (client, outcome)
}

async fn expect_accepted(server: &mut Server, device: &Device) -> DeviceIdentity {
    let config = client_config(server, device);
    let (client, outcome) = connect(server, config).await;
    let identity = outcome.unwrap();
    assert!(client.accepted, "client did not get the server's data");
    identity
}

async fn expect_refused(server: &mut Server, device: &Device, reason: CertRejection) {
    let config = client_config(server, device);
    let (client, outcome) = connect(server, config).await;
    assert!(!client.accepted);
    match outcome {
        Err(HandshakeFailure::Rejected(r)) => assert_eq!(r, reason),
        other => panic!("expected rejection {reason:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn valid_device_under_active_ca_is_accepted_with_its_identity() {
    run(async {
        let ca = root_ca("Fleet CA");
        let dev = device(&ca, "thermostat-1", 7);
        let mut server = start(snapshot(&[&ca], &[])).await;

        let id = expect_accepted(&mut server, &dev).await;

        let digest = ring::digest::digest(&ring::digest::SHA256, dev.der().as_ref());
        let expected_id: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(id.certificate_id, expected_id);
        assert_eq!(id.common_name.as_deref(), Some("thermostat-1"));
        assert_eq!(id.issuer, "CN=Fleet CA");
        assert_eq!(id.issuing_ca_id, Some(ca_id(&ca)));
        assert_eq!(id.serial, vec![0x10, 0x07]);
        assert_eq!(id.not_before, 1_577_836_800); // 2020-01-01
        assert_eq!(id.not_after, 3_786_912_000); // 2090-01-01
    })
    .await;
}

#[tokio::test]
async fn certificate_registered_without_ca_is_accepted_exactly() {
    run(async {
        let registered = self_signed_device("lonely-1");
        let stranger = self_signed_device("lonely-1");
        let mut server = start(snapshot(&[], &[&registered])).await;

        let id = expect_accepted(&mut server, &registered).await;
        assert_eq!(id.issuing_ca_id, None);
        assert_eq!(id.certificate_id, certificate_id(registered.der().as_ref()));

        // Same subject, different key: not the registered certificate.
        expect_refused(&mut server, &stranger, CertRejection::UnknownCa).await;

        // Self-signed with CA:TRUE (what `openssl req -x509` makes), while an
        // ACTIVE CA is also registered.
        let ca = root_ca("Fleet CA");
        let key = p256();
        let mut p = ca_params("lonely-ca-flagged");
        p.key_usages.clear();
        let flagged_cert = p.self_signed(&key).unwrap();
        let flagged = Device {
            chain: vec![flagged_cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        };
        server
            .store
            .replace(snapshot(&[&ca], &[&registered, &flagged]));
        assert_eq!(
            expect_accepted(&mut server, &flagged).await.issuing_ca_id,
            None
        );
        expect_accepted(&mut server, &registered).await;
    })
    .await;
}

#[tokio::test]
async fn unknown_ca_is_refused() {
    run(async {
        let ca = root_ca("Fleet CA");
        let other = root_ca("Someone Else");
        let mut server = start(snapshot(&[&ca], &[])).await;
        expect_refused(
            &mut server,
            &device(&other, "d", 1),
            CertRejection::UnknownCa,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn ca_that_is_not_active_is_refused() {
    run(async {
        let active = root_ca("Active CA");
        let inactive = root_ca("Inactive CA");
        let dev = device(&inactive, "d", 1);
        let mut server = start(snapshot(&[&active, &inactive], &[])).await;
        expect_accepted(&mut server, &dev).await;

        // The registry deactivates the CA: it leaves the snapshot.
        server
            .store
            .update(|s| s.with_registry([active.der().clone()], []))
            .unwrap();
        expect_refused(&mut server, &dev, CertRejection::UnknownCa).await;
    })
    .await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_are_refused() {
    run(async {
        let ca = root_ca("Fleet CA");
        let mut server = start(snapshot(&[&ca], &[])).await;

        let mut p = device_params("old", 1);
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
        expect_refused(&mut server, &device_with(&ca, p), CertRejection::Expired).await;

        let mut p = device_params("future", 2);
        p.not_before = rcgen::date_time_ymd(2080, 1, 1);
        expect_refused(
            &mut server,
            &device_with(&ca, p),
            CertRejection::NotYetValid,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn wrong_usage_is_refused() {
    run(async {
        let ca = root_ca("Fleet CA");
        let mut server = start(snapshot(&[&ca], &[])).await;

        let mut p = device_params("server-only", 1);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        expect_refused(&mut server, &device_with(&ca, p), CertRejection::WrongUsage).await;

        let mut p = device_params("no-signing", 2);
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        expect_refused(&mut server, &device_with(&ca, p), CertRejection::WrongUsage).await;

        // No KeyUsage / EKU at all restricts nothing.
        let mut p = device_params("unrestricted", 3);
        p.key_usages.clear();
        p.extended_key_usages.clear();
        expect_accepted(&mut server, &device_with(&ca, p)).await;
    })
    .await;
}

/// Presents an RSA certificate and signs with garbage: the server must
/// refuse the certificate before it ever looks at the handshake signature.
/// (ring refuses to load RSA keys under 2048 bits, so a real one can't sign.)
#[derive(Debug)]
struct FakeRsaKey;

impl SigningKey for FakeRsaKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::RSA_PSS_SHA256)
            .then(|| Box::new(FakeRsaKey) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

impl Signer for FakeRsaKey {
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(vec![0x42; 128])
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::RSA_PSS_SHA256
    }
}

#[derive(Debug)]
struct Always(Arc<CertifiedKey>);

impl ResolvesClientCert for Always {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the RSA-1024 test needs the `openssl` command");
    assert!(out.status.success(), "openssl {args:?} failed: {out:?}");
    out.stdout
}

#[tokio::test]
async fn rsa_1024_is_refused_as_weak() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        openssl(&["genrsa", "-out", "weak.key", "1024"], dir.path());
        let spki_pem = openssl(&["pkey", "-in", "weak.key", "-pubout"], dir.path());
        let spki = SubjectPublicKeyInfo::from_pem(std::str::from_utf8(&spki_pem).unwrap()).unwrap();

        let ca = root_ca("Fleet CA");
        let cert = device_params("weak", 1).signed_by(&spki, &*ca).unwrap();
        let mut server = start(snapshot(&[&ca], &[])).await;

        let certified = CertifiedKey::new(vec![cert.der().clone()], Arc::new(FakeRsaKey));
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(Arc::clone(&server.roots))
            .with_client_cert_resolver(Arc::new(Always(Arc::new(certified))));
        let (client, outcome) = connect(&mut server, Arc::new(config)).await;
        assert!(!client.accepted);
        assert!(matches!(
            outcome,
            Err(HandshakeFailure::Rejected(CertRejection::WeakKey))
        ));
    })
    .await;
}

#[tokio::test]
async fn revoked_by_the_cas_crl_is_refused() {
    run(async {
        let ca = root_ca("Fleet CA");
        let revoked = device(&ca, "stolen", 1);
        let fine = device(&ca, "fine", 2);
        let trust = snapshot(&[&ca], &[])
            .with_crl(&ca_id(&ca), crl(&ca, &[1], 1))
            .unwrap();
        let mut server = start(trust).await;

        expect_refused(&mut server, &revoked, CertRejection::Revoked).await;
        expect_accepted(&mut server, &fine).await;
    })
    .await;
}

#[test]
fn a_crl_from_another_ca_is_not_loaded() {
    let ca = root_ca("Fleet CA");
    let other = root_ca("Other CA");
    let trust = snapshot(&[&ca], &[]);
    let err = trust
        .with_crl(&ca_id(&ca), crl(&other, &[1], 1))
        .unwrap_err();
    assert!(matches!(err, CrlError::WrongIssuer { .. }), "{err:?}");

    // Same name, different key: the signature gives it away.
    let impostor = root_ca("Fleet CA");
    let err = trust
        .with_crl(&ca_id(&ca), crl(&impostor, &[1], 1))
        .unwrap_err();
    assert!(matches!(err, CrlError::BadSignature { .. }), "{err:?}");
}

/// Sets the file's mtime explicitly: two writes within the file system's
/// timestamp granularity must still count as a change.
fn write_crl(path: &Path, contents: &[u8], mtime_secs: u64) {
    std::fs::write(path, contents).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime_secs))
        .unwrap();
}

/// Polls the watcher until the store's CRL for `ca` equals `want`.
async fn wait_for_crl(server: &Server, ca: &str, want: &CertificateRevocationListDer<'_>) {
    loop {
        if server.store.snapshot().crl(ca).map(|c| c.as_ref()) == Some(want.as_ref()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn crl_file_rewritten_is_reloaded_and_bad_files_keep_the_previous_crl() {
    run(async {
        let ca = root_ca("Fleet CA");
        let dev = device(&ca, "soon-revoked", 5);
        let mut server = start(snapshot(&[&ca], &[])).await;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.crl");
        let empty = crl(&ca, &[], 1);
        write_crl(&path, empty.as_ref(), 1_000); // DER
                                                 // Live revocation promises a cut within a second of a CRL change.
        assert!(CRL_POLL_INTERVAL < Duration::from_secs(1));
        let watcher: CrlWatcherHandle =
            CrlWatcher::new(Arc::clone(&server.store), [(ca_id(&ca), path.clone())])
                .with_interval(Duration::from_millis(50))
                .spawn();
        wait_for_crl(&server, &ca_id(&ca), &empty).await;
        expect_accepted(&mut server, &dev).await;

        let revoking = signed_crl(&ca, &[5], 2);
        write_crl(&path, revoking.pem().unwrap().as_bytes(), 2_000); // PEM this time
        let revoking = revoking.der().clone();
        wait_for_crl(&server, &ca_id(&ca), &revoking).await;
        expect_refused(&mut server, &dev, CertRejection::Revoked).await;

        // A broken file and a CRL from the wrong CA are both ignored.
        write_crl(&path, b"not a crl", 3_000);
        tokio::time::sleep(Duration::from_millis(200)).await;
        write_crl(&path, crl(&root_ca("Other"), &[], 3).as_ref(), 4_000);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            server.store.snapshot().crl(&ca_id(&ca)).map(|c| c.as_ref()),
            Some(revoking.as_ref())
        );
        expect_refused(&mut server, &dev, CertRejection::Revoked).await;
        drop(watcher);
    })
    .await;
}

#[tokio::test]
async fn intermediate_chains() {
    run(async {
        let root = root_ca("Root CA");
        let inter = intermediate_ca("Issuing CA", &root);
        let mut sent_chain = device(&inter, "chained", 1);
        sent_chain.chain.push(inter.der().clone());
        let bare = Device {
            chain: vec![sent_chain.der().clone()],
            key: sent_chain.key.clone_key(),
        };

        // Root registered, device sends its intermediate.
        let mut server = start(snapshot(&[&root], &[])).await;
        let id = expect_accepted(&mut server, &sent_chain).await;
        assert_eq!(id.issuing_ca_id, Some(ca_id(&root)));
        assert_eq!(id.issuer, "CN=Issuing CA");
        // ...but without the intermediate there is no path.
        expect_refused(&mut server, &bare, CertRejection::UnknownCa).await;

        // The root revokes an intermediate: everything under it goes.
        let revoked_inter = {
            let mut p = ca_params("Revoked Issuing CA");
            p.serial_number = Some(SerialNumber::from_slice(&[0x10, 9]));
            CertifiedIssuer::signed_by(p, p256(), &*root).unwrap()
        };
        server
            .store
            .update(|s| s.with_crl(&ca_id(&root), crl(&root, &[9], 2)))
            .unwrap();
        let mut under_revoked = device(&revoked_inter, "orphan", 2);
        under_revoked.chain.push(revoked_inter.der().clone());
        expect_refused(&mut server, &under_revoked, CertRejection::Revoked).await;
        expect_accepted(&mut server, &sent_chain).await;

        // The intermediate itself registered: the bare certificate is enough.
        let mut server = start(snapshot(&[&inter], &[])).await;
        let id = expect_accepted(&mut server, &bare).await;
        assert_eq!(id.issuing_ca_id, Some(ca_id(&inter)));
        let id = expect_accepted(&mut server, &sent_chain).await;
        assert_eq!(id.issuing_ca_id, Some(ca_id(&inter)));
    })
    .await;
}

#[tokio::test]
async fn sessions_are_never_resumed() {
    run(async {
        let ca = root_ca("Fleet CA");
        let dev = device(&ca, "d", 1);
        let mut server = start(snapshot(&[&ca], &[])).await;
        for versions in [
            &[&rustls::version::TLS13][..],
            &[&rustls::version::TLS12][..],
        ] {
            // One config, so one client session cache across both connections.
            let config = client_config_versions(&server, &dev, versions);
            for _ in 0..2 {
                let (client, outcome) = connect(&mut server, Arc::clone(&config)).await;
                outcome.unwrap();
                assert!(client.accepted);
                assert_eq!(client.kind, Some(HandshakeKind::Full), "{versions:?}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn alpn_is_optional_and_aws_name_is_accepted() {
    run(async {
        let ca = root_ca("Fleet CA");
        let dev = device(&ca, "d", 1);
        let mut server = start(snapshot(&[&ca], &[])).await;

        let mut config = (*client_config(&server, &dev)).clone();
        config.alpn_protocols = vec![b"x-amzn-mqtt-ca".to_vec()];
        let (client, outcome) = connect(&mut server, Arc::new(config)).await;
        outcome.unwrap();
        assert_eq!(client.alpn.as_deref(), Some(&b"x-amzn-mqtt-ca"[..]));

        let config = client_config(&server, &dev);
        let (client, outcome) = connect(&mut server, config).await;
        outcome.unwrap();
        assert_eq!(client.alpn, None);
    })
    .await;
}

#[tokio::test]
async fn no_certificate_and_timeout_are_reported() {
    run(async {
        let ca = root_ca("Fleet CA");
        let mut server =
            start_with_timeout(snapshot(&[&ca], &[]), Duration::from_millis(300)).await;

        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(Arc::clone(&server.roots))
            .with_no_client_auth();
        let (client, outcome) = connect(&mut server, Arc::new(config)).await;
        assert!(!client.accepted);
        assert!(
            matches!(outcome, Err(HandshakeFailure::NoCertificate)),
            "{outcome:?}"
        );

        // A socket that never speaks.
        let _silent = TcpStream::connect(server.addr).await.unwrap();
        let outcome = server.results.recv().await.unwrap();
        assert!(
            matches!(outcome, Err(HandshakeFailure::Timeout)),
            "{outcome:?}"
        );
        assert_eq!(outcome.unwrap_err().as_str(), "timeout");
    })
    .await;
}

#[tokio::test]
async fn a_refusal_does_not_disturb_the_next_handshake() {
    run(async {
        let ca = root_ca("Fleet CA");
        let stranger = device(&root_ca("Stranger CA"), "x", 1);
        let dev = device(&ca, "d", 2);
        let mut server = start(snapshot(&[&ca], &[])).await;
        for _ in 0..3 {
            expect_refused(&mut server, &stranger, CertRejection::UnknownCa).await;
            expect_accepted(&mut server, &dev).await;
        }
        // Garbage instead of a ClientHello.
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let outcome = server.results.recv().await.unwrap();
        assert!(
            matches!(outcome, Err(HandshakeFailure::Tls(_))),
            "{outcome:?}"
        );
        expect_accepted(&mut server, &dev).await;
    })
    .await;
}

#[test]
fn every_rejection_survives_the_trip_through_rustls_and_io() {
    use CertRejection::*;
    let mut labels = std::collections::HashSet::new();
    for r in [
        Expired,
        NotYetValid,
        UnknownCa,
        Revoked,
        WeakKey,
        UnsupportedKey,
        WrongUsage,
        BadEncoding,
        BadSignature,
        UnsupportedAlgorithm,
        InvalidChain,
    ] {
        assert!(labels.insert(r.as_str()), "duplicate label {}", r.as_str());
        let err = r.to_rustls();
        assert_eq!(CertRejection::from_rustls(&err), Some(r));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
        assert_eq!(CertRejection::from_io(&io), Some(r));
        assert_eq!(HandshakeFailure::from_io(io).rejection(), Some(r));
    }
    assert_eq!(
        CertRejection::from_rustls(&rustls::Error::NoCertificatesPresented),
        None
    );
    // Reasons rustls has no variant for travel inside `Other`.
    let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) =
        WeakKey.to_rustls()
    else {
        panic!("WeakKey should travel as CertificateError::Other");
    };
    assert_eq!(other.0.downcast_ref::<Rejected>(), Some(&Rejected(WeakKey)));
}

#[test]
fn a_ca_that_is_not_a_certificate_is_reported() {
    let err =
        TrustSnapshot::new([CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])], []).unwrap_err();
    let BadCaCertificate { id } = err;
    assert_eq!(id, certificate_id(&[0x30, 0x03, 1, 2, 3]));
}

#[test]
fn server_config_refuses_bad_pem() {
    let store = Arc::new(TrustStore::new(TrustSnapshot::empty()));
    let verifier = Arc::new(DeviceVerifier::new(store));
    let key = p256();
    let err = server_config(b"", key.serialize_pem().as_bytes(), Arc::clone(&verifier));
    assert!(matches!(err, Err(TlsError::NoCertificate)));
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let err = server_config(cert.pem().as_bytes(), b"no key here", verifier);
    assert!(matches!(err, Err(TlsError::KeyPem(_))));
}

#[test]
fn snapshot_views_and_whole_replacement() {
    let ca = root_ca("Fleet CA");
    let lonely = self_signed_device("lonely");
    let trust = snapshot(&[&ca], &[&lonely])
        .with_crl(&ca_id(&ca), crl(&ca, &[1], 1))
        .unwrap();
    assert_eq!(trust.ca_ids().collect::<Vec<_>>(), [ca_id(&ca).as_str()]);
    assert!(trust.is_registered_without_ca(&certificate_id(lonely.der().as_ref())));
    assert!(trust.crl(&ca_id(&ca)).is_some());
    assert!(trust.without_crl(&ca_id(&ca)).crl(&ca_id(&ca)).is_none());

    // A registry update keeps the CRL, even across deactivation.
    let inactive = trust.with_registry([], []).unwrap();
    assert_eq!(inactive.ca_ids().count(), 0);
    let back = inactive.with_registry([ca.der().clone()], []).unwrap();
    assert!(back.crl(&ca_id(&ca)).is_some());

    let store = Arc::new(TrustStore::new(TrustSnapshot::empty()));
    let verifier = DeviceVerifier::new(Arc::clone(&store));
    verifier.store().replace(back);
    assert_eq!(store.snapshot().ca_ids().count(), 1);
}

#[tokio::test]
async fn server_certificate_can_be_rotated() {
    run(async {
        let ca = root_ca("Fleet CA");
        let dev = device(&ca, "d", 1);
        let mut server = start(snapshot(&[&ca], &[])).await;
        let old_roots = Arc::clone(&server.roots);

        let verifier = Arc::new(DeviceVerifier::new(Arc::clone(&server.store)));
        let (new_ca, config) = server_identity(&verifier);
        server.acceptor.replace_config(config);
        let mut roots = RootCertStore::empty();
        roots.add(new_ca.der().clone()).unwrap();
        server.roots = Arc::new(roots);
        expect_accepted(&mut server, &dev).await;

        // A client that only trusts the old server CA gives up.
        server.roots = old_roots;
        let config = client_config(&server, &dev);
        let (client, outcome) = connect(&mut server, config).await;
        assert!(!client.accepted);
        assert!(outcome.is_err());
    })
    .await;
}
