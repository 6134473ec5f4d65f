//! A minimal MQTT 3.1.1 client on `mqttbytes`, an MQTT codec independent of
//! wardmq's own, so the bench cannot share a bug with the broker it measures.
//!
//! The transport is a boxed byte stream: plain TCP, or (with `--tls`) the
//! socket wrapped in a tokio-rustls client stream in `dial`, presenting the
//! bench's device certificate; the scenarios never see the difference.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use mqttbytes::v4::{self, Packet};
use mqttbytes::QoS;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;

/// Largest packet the bench accepts from a broker: the biggest payload it
/// sends plus headers, with room to spare.
const MAX_PACKET: usize = 16 * 1024 * 1024;

/// Connections per loopback source address. Linux hands out about 28k
/// ephemeral ports per source address, so staying well below that leaves room
/// for the broker's own and other sockets.
pub const CONNS_PER_SOURCE: usize = 20_000;

/// Read and write buffers of a new connection; an idle one gives them back.
const BUFFER: usize = 64 * 1024;
/// Free room `fill` makes in the read buffer before reading.
const MIN_READ: usize = 4096;

/// How long a broker gets to answer CONNECT or SUBSCRIBE.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Keep-alive announced in CONNECT. Runs are far shorter, so clients never
/// need to ping, and idle connections are not dropped mid-run.
const KEEP_ALIVE_SECS: u16 = 600;

/// Any byte stream a client can speak MQTT over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How clients reach the broker.
#[derive(Clone, Debug)]
pub enum Transport {
    Tcp,
    /// Mutual TLS with the bench's device certificate.
    Tls(Arc<TlsClient>),
}

impl Transport {
    /// The same transport with fresh per-run state (what was negotiated).
    pub fn for_run(&self) -> Transport {
        match self {
            Transport::Tcp => Transport::Tcp,
            Transport::Tls(t) => Transport::Tls(Arc::new(TlsClient::new(t.config.clone()))),
        }
    }

    /// What the first TLS handshake of the run negotiated, e.g.
    /// `TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519`.
    pub fn negotiated(&self) -> Option<String> {
        match self {
            Transport::Tcp => None,
            Transport::Tls(t) => t.negotiated.get().cloned(),
        }
    }
}

/// The client side of mutual TLS: one rustls configuration shared by every
/// connection of a run.
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    connector: TlsConnector,
    negotiated: OnceLock<String>,
}

impl TlsClient {
    pub fn new(config: Arc<rustls::ClientConfig>) -> Self {
        Self {
            connector: TlsConnector::from(config.clone()),
            config,
            negotiated: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient").finish_non_exhaustive()
    }
}

/// Where clients connect; always a loopback address.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub transport: Transport,
}

impl Endpoint {
    /// Refuses anything but 127.0.0.0/8: the bench floods its target, so it
    /// must only ever hit a broker on this machine.
    pub fn new(addr: SocketAddr, transport: Transport) -> Result<Self> {
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => Ok(Self { addr, transport }),
            other => bail!("refusing to load {other}: the bench only targets 127.0.0.0/8"),
        }
    }
}

/// Connections opened by this process so far; each takes the next index.
static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);

/// A fresh connection index. Indices never repeat within a process, so
/// successive runs move on to new source addresses instead of fighting over
/// ports still in TIME_WAIT from the previous run.
pub fn next_index() -> usize {
    NEXT_INDEX.fetch_add(1, Ordering::Relaxed)
}

/// Moves the next connection to a fresh source address. Called before each
/// run, so no run binds ports on an address whose range the previous run
/// left full of TIME_WAIT sockets (which slows the kernel's port search and
/// would charge the bench's delay to whichever broker runs next).
/// The first run of a process starts at a pseudo-random address, since the
/// previous bench process may have just filled 127.0.0.1's port range.
pub fn new_run() {
    let _ = NEXT_INDEX.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
        let slot = if i == 0 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as usize)
                .unwrap_or(0);
            (nanos ^ std::process::id() as usize) % 254
        } else {
            i.div_ceil(CONNS_PER_SOURCE)
        };
        Some(slot * CONNS_PER_SOURCE)
    });
}

/// The loopback source address for the `index`-th connection: 127.0.0.1 for
/// the first `CONNS_PER_SOURCE`, then 127.0.0.2, and so on up to
/// 127.0.0.254 before wrapping, so runs can exceed the ephemeral-port limit
/// of one address pair.
pub fn source_addr(index: usize) -> Ipv4Addr {
    let n = 1 + (index / CONNS_PER_SOURCE) % 254;
    Ipv4Addr::new(127, 0, 0, u8::try_from(n).unwrap_or(1))
}

/// Opens the byte stream (TCP, and TLS with the endpoint's client
/// configuration) from source address `src`, within the handshake timeout.
pub async fn dial(ep: &Endpoint, src: Ipv4Addr) -> Result<Box<dyn Io>> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, dial_untimed(ep, src))
        .await
        .map_err(|_| anyhow!("connecting to {} timed out", ep.addr))?
}

async fn dial_untimed(ep: &Endpoint, src: Ipv4Addr) -> Result<Box<dyn Io>> {
    let socket = TcpSocket::new_v4().context("creating socket")?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(src), 0))
        .with_context(|| format!("binding source address {src}"))?;
    let stream = socket
        .connect(ep.addr)
        .await
        .with_context(|| format!("connecting {src} -> {}", ep.addr))?;
    // Small MQTT packets would otherwise wait for Nagle; every broker under
    // test sets the same on its side.
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    match &ep.transport {
        Transport::Tcp => Ok(Box::new(stream)),
        Transport::Tls(tls) => {
            // The server certificate names 127.0.0.1; the broker listens
            // there whatever source address the client uses.
            let name = rustls::pki_types::ServerName::IpAddress(ep.addr.ip().into());
            let stream = tls
                .connector
                .connect(name, stream)
                .await
                .with_context(|| format!("TLS handshake {src} -> {}", ep.addr))?;
            tls.negotiated.get_or_init(|| {
                let (_, c) = stream.get_ref();
                format!(
                    "{} {} {}",
                    c.protocol_version()
                        .map_or("?".to_string(), |v| format!("{v:?}")),
                    c.negotiated_cipher_suite()
                        .map_or("?".to_string(), |s| format!("{:?}", s.suite())),
                    c.negotiated_key_exchange_group()
                        .map_or("?".to_string(), |g| format!("{:?}", g.name())),
                )
            });
            Ok(Box::new(stream))
        }
    }
}

fn codec(e: mqttbytes::Error) -> anyhow::Error {
    anyhow!("MQTT codec: {e}")
}

/// One MQTT connection with its own read and write buffers.
pub struct Conn {
    io: Box<dyn Io>,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Conn {
    /// Dials from `src`, sends CONNECT and waits for a successful CONNACK.
    pub async fn connect(
        ep: &Endpoint,
        src: Ipv4Addr,
        client_id: &str,
        clean: bool,
    ) -> Result<Self> {
        let io = dial(ep, src).await?;
        Self::over(io).handshake(client_id, clean).await
    }

    /// A connection over a stream `dial` opened, before CONNECT.
    pub fn over(io: Box<dyn Io>) -> Self {
        Self {
            io,
            rbuf: BytesMut::with_capacity(BUFFER),
            wbuf: BytesMut::with_capacity(BUFFER),
        }
    }

    /// Sends CONNECT and waits for a successful CONNACK.
    pub async fn handshake(mut self, client_id: &str, clean: bool) -> Result<Self> {
        let mut connect = v4::Connect::new(client_id);
        connect.keep_alive = KEEP_ALIVE_SECS;
        connect.clean_session = clean;
        connect.write(&mut self.wbuf).map_err(codec)?;
        self.flush().await?;
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.read_packet()).await {
            Ok(Ok(Packet::ConnAck(ack))) if ack.code == v4::ConnectReturnCode::Success => Ok(self),
            Ok(Ok(Packet::ConnAck(ack))) => bail!("CONNACK refused: {:?}", ack.code),
            Ok(Ok(other)) => bail!("expected CONNACK, got {other:?}"),
            Ok(Err(e)) => Err(e.context("waiting for CONNACK")),
            Err(_) => bail!("no CONNACK within {HANDSHAKE_TIMEOUT:?}"),
        }
    }

    /// Subscribes to one filter and waits for a SUBACK that grants it.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<()> {
        let mut sub = v4::Subscribe::new(filter, qos);
        sub.pkid = 1;
        sub.write(&mut self.wbuf).map_err(codec)?;
        self.flush().await?;
        let ack = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.read_packet())
            .await
            .map_err(|_| anyhow!("no SUBACK within {HANDSHAKE_TIMEOUT:?}"))??;
        match ack {
            Packet::SubAck(ack) => match ack.return_codes.first() {
                // A downgraded subscription would silently measure a
                // different QoS than the scenario names.
                Some(v4::SubscribeReasonCode::Success(granted)) if *granted as u8 >= qos as u8 => {
                    Ok(())
                }
                other => bail!("subscription to {filter} at {qos:?} not granted: {other:?}"),
            },
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }

    /// Gives back the buffers of a connection that will sit idle, so the
    /// bench's own memory does not limit how many it can hold.
    pub fn go_idle(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() {
            self.wbuf = BytesMut::new();
        }
    }

    /// Sends PINGREQ and waits for PINGRESP: the connection is still served.
    pub async fn ping(&mut self) -> Result<()> {
        v4::PingReq.write(&mut self.wbuf).map_err(codec)?;
        self.flush().await?;
        loop {
            if let Packet::PingResp = self.read_packet().await? {
                return Ok(());
            }
        }
    }

    /// Queues a packet in the write buffer; `flush` sends it.
    pub fn queue_publish(&mut self, publish: &v4::Publish) -> Result<()> {
        publish.write(&mut self.wbuf).map_err(codec)?;
        Ok(())
    }

    pub fn queue_ack(&mut self, ack: Ack) -> Result<()> {
        match ack {
            Ack::PubAck(id) => v4::PubAck::new(id).write(&mut self.wbuf),
            Ack::PubRec(id) => v4::PubRec::new(id).write(&mut self.wbuf),
            Ack::PubRel(id) => v4::PubRel::new(id).write(&mut self.wbuf),
            Ack::PubComp(id) => v4::PubComp::new(id).write(&mut self.wbuf),
        }
        .map_err(codec)?;
        Ok(())
    }

    pub fn queue_disconnect(&mut self) -> Result<()> {
        v4::Disconnect.write(&mut self.wbuf).map_err(codec)?;
        Ok(())
    }

    /// Bytes waiting to be sent.
    pub fn pending(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await.context("writing")?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// A packet already in the read buffer, if a whole one is there.
    pub fn try_packet(&mut self) -> Result<Option<Packet>> {
        match v4::read(&mut self.rbuf, MAX_PACKET) {
            Ok(p) => Ok(Some(p)),
            Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(codec(e)),
        }
    }

    /// Reads more bytes into the read buffer. Cancel-safe (`read_buf` either
    /// completes or reads nothing), so it can sit in a `select!`.
    pub async fn fill(&mut self) -> Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < MIN_READ {
            self.rbuf.reserve(MIN_READ);
        }
        let n = self.io.read_buf(&mut self.rbuf).await.context("reading")?;
        if n == 0 {
            bail!("broker closed the connection");
        }
        Ok(())
    }

    /// The next packet, reading as needed.
    pub async fn read_packet(&mut self) -> Result<Packet> {
        loop {
            if let Some(p) = self.try_packet()? {
                return Ok(p);
            }
            self.fill().await?;
        }
    }
}

/// Acknowledgements a client sends in the QoS 1 and 2 flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // named after the MQTT packets they are
pub enum Ack {
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
}

/// MQTT QoS from the number used on the command line and in reports.
pub fn qos(n: u8) -> Result<QoS> {
    match n {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        _ => bail!("QoS {n} does not exist"),
    }
}

/// Packet identifiers 1..=65535 in turn (0 is not a valid identifier).
pub fn next_pkid(id: &mut u16) -> u16 {
    *id = id.checked_add(1).unwrap_or(1);
    *id
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a broken fixture should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn source_addresses_spread_past_the_port_limit() {
        assert_eq!(source_addr(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(
            source_addr(CONNS_PER_SOURCE - 1),
            Ipv4Addr::new(127, 0, 0, 1)
        );
        assert_eq!(source_addr(CONNS_PER_SOURCE), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(
            source_addr(CONNS_PER_SOURCE * 253),
            Ipv4Addr::new(127, 0, 0, 254)
        );
        // Wraps to 127.0.0.1 rather than leaving 127.0.0.0/8's host range.
        assert_eq!(
            source_addr(CONNS_PER_SOURCE * 254),
            Ipv4Addr::new(127, 0, 0, 1)
        );
    }

    #[test]
    fn each_run_starts_on_a_fresh_source_address() {
        // The only test touching the global counter.
        let first = next_index();
        new_run();
        let a = next_index();
        assert_eq!(a % CONNS_PER_SOURCE, 0);
        assert!(a > first);
        assert_ne!(source_addr(a), source_addr(first));
        new_run();
        let b = next_index();
        assert_eq!(b, a + CONNS_PER_SOURCE);
        assert_eq!(source_addr(b).octets()[..3], [127, 0, 0]);
    }

    #[test]
    fn only_loopback_targets() {
        assert!(Endpoint::new("127.0.0.1:1883".parse().unwrap(), Transport::Tcp).is_ok());
        assert!(Endpoint::new("127.9.9.9:1883".parse().unwrap(), Transport::Tcp).is_ok());
        assert!(Endpoint::new("10.0.0.1:1883".parse().unwrap(), Transport::Tcp).is_err());
        assert!(Endpoint::new("[::1]:1883".parse().unwrap(), Transport::Tcp).is_err());
    }

    #[test]
    fn packet_ids_skip_zero() {
        let mut id = u16::MAX - 1;
        assert_eq!(next_pkid(&mut id), u16::MAX);
        assert_eq!(next_pkid(&mut id), 1);
    }
}
