//! The webhook sink: an HTTP/1.1 POST per alert, signed, retried with
//! backoff. One sink delivers one alert at a time, so this is a client for a
//! single URL holding at most one connection, kept alive between alerts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

/// Carries `sha256=` and the lowercase hex HMAC-SHA256 of the request body,
/// keyed by the sink's `secret` (see [`signature`]).
pub const SIGNATURE_HEADER: &str = "x-wardmq-signature";

/// Wait before the second attempt; it doubles for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Response bodies are read (so the connection can carry the next alert) up
/// to this size; a receiver that answers more just costs a new connection.
const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// A kept-alive connection is reused only this soon after its last answer.
/// Receivers close idle connections (Node's default is after 5 s), and a
/// POST written onto a connection the server is closing fails for nothing.
const MAX_IDLE: Duration = Duration::from_secs(2);

/// The value of [`SIGNATURE_HEADER`] for `body`: `sha256=` followed by the
/// lowercase hex HMAC-SHA256 of the exact bytes, keyed by `secret`. A
/// receiver computes the same over the raw request body and compares in
/// constant time.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

fn new_mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of every length (long ones are hashed first).
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

pub(crate) struct Webhook {
    /// scheme://host/path for logs: the query is left out, it may hold a token.
    target: String,
    /// Host to connect to, IPv6 brackets removed.
    host: String,
    port: u16,
    /// `Host:` header, exactly the URL's authority.
    authority: String,
    /// What the request line carries: the URL's path and query.
    path: Uri,
    /// Only for https URLs, so plain http needs no trust store at all.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    secret: Vec<u8>,
    attempts: u32,
    timeout: Duration,
    conn: Option<Conn>,
}

/// A kept-alive connection and the task driving it.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
    idle_since: Instant,
}

impl Drop for Conn {
    /// Closes the socket now: a connection given up on (timeout, error) must
    /// not linger on a receiver that never answers.
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Webhook {
    /// Checks the URL and, for https, loads the OS trust store once. Fails
    /// here rather than on every alert: a sink that cannot work is a startup
    /// error.
    pub(crate) fn new(
        url: &str,
        secret: &str,
        attempts: u32,
        timeout: Duration,
    ) -> Result<Self, String> {
        Self::with_roots(url, secret, attempts, timeout, None)
    }

    /// As [`Self::new`], trusting only `roots` for https when given (tests).
    pub(crate) fn with_roots(
        url: &str,
        secret: &str,
        attempts: u32,
        timeout: Duration,
        roots: Option<RootCertStore>,
    ) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("`{url}` must start with http:// or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if authority.as_str().contains('@') {
            return Err(
                "credentials in the URL are not supported; put a token in the path or query".into(),
            );
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e| format!("`{url}`: {e}"))?;
        let tls = if https {
            let roots = match roots {
                Some(roots) => roots,
                None => native_roots()?,
            };
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
            Some((TlsConnector::from(Arc::new(tls_config(roots)?)), name))
        } else {
            None
        };
        Ok(Self {
            target: format!(
                "{}://{}{}",
                if https { "https" } else { "http" },
                authority,
                uri.path()
            ),
            host,
            port,
            authority: authority.as_str().to_owned(),
            path,
            tls,
            secret: secret.as_bytes().to_vec(),
            attempts: attempts.max(1),
            timeout,
            conn: None,
        })
    }

    /// Tries up to `attempts` times; true once the receiver answered 2xx.
    /// Connection errors, timeouts, 5xx and 429 are retried after a backoff;
    /// any other answer fails the alert at once (3xx too: redirects are not
    /// followed, the configured URL is meant to be the final one). A failed
    /// alert is logged with its body, the last record of it.
    pub(crate) async fn deliver(&mut self, sink: &str, body: Arc<[u8]>) -> bool {
        let signature = signature(&self.secret, &body);
        let body = Bytes::from_owner(body);
        let mut backoff = FIRST_BACKOFF;
        let mut tried = 0;
        let mut last_error = String::new();
        while tried < self.attempts {
            if tried > 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            tried += 1;
            let outcome = tokio::time::timeout(self.timeout, self.post(&body, &signature)).await;
            let retry = match outcome {
                Ok(Ok(status)) if status.is_success() => return true,
                Ok(Ok(status)) => {
                    last_error = format!("answered {status}");
                    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                }
                Ok(Err(e)) => {
                    last_error = e;
                    true
                }
                Err(_) => {
                    last_error = format!("no answer within {} ms", self.timeout.as_millis());
                    true
                }
            };
            tracing::debug!(sink, url = %self.target, attempt = tried, error = %last_error, "alert delivery attempt failed");
            if !retry {
                break;
            }
        }
        tracing::error!(
            sink,
            url = %self.target,
            attempts = tried,
            error = %last_error,
            alert = %String::from_utf8_lossy(&body),
            "alert not delivered"
        );
        false
    }

    /// One POST. The connection is taken out of `self` while in use, so a
    /// timeout (which drops this future) also drops the connection.
    async fn post(&mut self, body: &Bytes, signature: &str) -> Result<StatusCode, String> {
        let mut conn = match self.conn.take() {
            Some(c) if !c.sender.is_closed() && c.idle_since.elapsed() < MAX_IDLE => c,
            _ => self.connect().await?,
        };
        conn.sender
            .ready()
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        let request = Request::post(self.path.clone())
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("wardmq/", env!("CARGO_PKG_VERSION")))
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(body.clone()))
            .map_err(|e| format!("request: {e}"))?;
        let response = conn
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        if Limited::new(response.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await
            .is_ok()
        {
            conn.idle_since = Instant::now();
            self.conn = Some(conn);
        }
        Ok(status)
    }

    async fn connect(&self) -> Result<Conn, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect to {}:{}: {e}", self.host, self.port))?;
        // One small write per alert: don't let Nagle hold it back. Failing
        // to set it only costs latency.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(TokioIo::new(tcp)).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", self.host))?;
                handshake(TokioIo::new(tls)).await
            }
        }
    }
}

async fn handshake<T>(io: T) -> Result<Conn, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // The connection's own error also fails the pending request, which is
    // where it is reported.
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Conn {
        sender,
        driver,
        idle_since: Instant::now(),
    })
}

/// TLS for webhooks: ring, like the rest of wardmq (no aws-lc), HTTP/1.1.
fn tls_config(roots: RootCertStore) -> Result<ClientConfig, String> {
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The OS trust store, so an internal receiver signed by a private CA the
/// host already trusts works without extra configuration.
fn native_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_, unparsable) = roots.add_parsable_certificates(found.certs);
    if unparsable > 0 {
        tracing::warn!(
            unparsable,
            "alert webhooks: some system CA certificates could not be parsed"
        );
    }
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(String::new, |e| format!(" ({e})"));
        return Err(format!(
            "an https webhook needs CA certificates and the system has none{why}; install the OS CA bundle (ca-certificates)"
        ));
    }
    Ok(roots)
}
