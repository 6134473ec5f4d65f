//! How the broker reports what devices do, without depending on whoever
//! listens (the defender, tests, metrics).
//!
//! Rare events (connects, refusals, takeovers, drops) are method calls.
//! The hot path is not: each connection owns a [`ConnCounters`] that it bumps
//! with relaxed atomic adds, and hands a clone of the `Arc` to the observer
//! once, at connect; the observer reads the counters on its own schedule.
//! Counts split by topic are the observer's business: it may hand back its
//! own [`TopicCounters`] at connect, which the connection then calls for
//! every PUBLISH in and out (and without one, calls nothing).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::codec::{Protocol, QoS};

/// Per-connection traffic counters, bumped inline by the connection task.
#[derive(Debug, Default)]
pub struct ConnCounters {
    pub publishes_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub publishes_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Largest PUBLISH payload received since a reader last took it with
    /// `swap(0)` (the defender's `aws:message-byte-size`, which AWS judges
    /// per message: the largest one decides a period for `less-than` rules).
    pub max_message_bytes: AtomicU64,
    /// How long routing each PUBLISH from this client took (authorized,
    /// matched and queued for every subscriber); per connection so that
    /// recording it touches no shared cache line.
    pub route_latency: LatencyBuckets,
}

/// Upper bounds, in microseconds, of the [`LatencyBuckets`] buckets (the
/// last bucket, above them all, is implicit).
pub const LATENCY_BOUNDS_US: [u64; 11] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000, 100_000];

/// A fixed-bucket latency histogram of relaxed atomics: recording is two
/// atomic adds, no lock, no allocation. Buckets are not cumulative.
#[derive(Debug, Default)]
pub struct LatencyBuckets {
    /// `buckets[i]` counts samples `<= LATENCY_BOUNDS_US[i]` and above the
    /// previous bound; the last one counts the rest.
    pub buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    /// Sum of all samples, in nanoseconds.
    pub sum_ns: AtomicU64,
}

impl LatencyBuckets {
    pub fn record(&self, elapsed: std::time::Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl ConnCounters {
    pub(crate) fn publish_in(&self, bytes: usize) {
        self.publishes_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
        self.max_message_bytes
            .fetch_max(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn publish_out(&self, bytes: usize) {
        self.publishes_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Per-connection counts split by topic (the defender's TOPIC_FILTER
/// dimensions), owned by the observer. Called inline on the connection
/// task for every PUBLISH, so implementations must be as cheap as
/// `ConnCounters`: no locks, no allocation, no blocking.
pub trait TopicCounters: Send + Sync {
    /// A PUBLISH from the client on `topic` (topic alias resolved) with a
    /// payload of `bytes`. Called for the same messages as
    /// `ConnCounters::publishes_in`, authorized or not, except one that
    /// breaks the protocol before its topic is known (it ends the
    /// connection).
    fn publish_in(&self, topic: &str, bytes: usize);

    /// A PUBLISH delivered to the client on `topic` (the same messages as
    /// `ConnCounters::publishes_out`).
    fn publish_out(&self, topic: &str);
}

/// Why a message meant for a session was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The session's queue was at its message or byte limit.
    QueueFull,
    /// The message expired before it could be sent.
    Expired,
    /// Larger than the client's Maximum Packet Size.
    TooLargeForClient,
    /// The subscriber's policies do not allow `iot:Receive` on the topic.
    NotAuthorized,
}

/// Why a new network connection was closed right after `accept()`,
/// before TLS or CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Its source address exceeded `limits.connection_rate_per_ip`.
    RateIp,
    /// The broker exceeded `limits.connection_rate`.
    RateGlobal,
    /// `limits.max_connections` connections were open.
    MaxConnections,
}

impl Rejection {
    pub const ALL: [Rejection; 3] = [
        Rejection::RateIp,
        Rejection::RateGlobal,
        Rejection::MaxConnections,
    ];

    /// Its metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::RateIp => "rate_ip",
            Rejection::RateGlobal => "rate_global",
            Rejection::MaxConnections => "max_connections",
        }
    }
}

/// Everything the broker reports. Every method has an empty default, so an
/// observer implements only what it needs. Calls happen on connection tasks:
/// implementations must be quick and must not block.
pub trait Observer: Send + Sync + 'static {
    /// A network connection was accepted (before CONNECT).
    fn connection_accepted(&self, _peer: SocketAddr) {}

    /// A network connection was closed at once by admission control
    /// (instead of `connection_accepted`): still a connection attempt.
    fn connection_rejected(&self, _peer: SocketAddr, _why: Rejection) {}

    /// A TLS handshake failed; `reason` names why (`expired`,
    /// `unknown_ca`, `revoked`, `no_certificate`, `timeout`, …).
    fn tls_handshake_failed(&self, _peer: SocketAddr, _reason: &str) {}

    /// CONNECT was refused (CONNACK reason >= 0x80) or never arrived.
    fn connect_refused(&self, _peer: SocketAddr, _client_id: Option<&str>, _reason: u8) {}

    /// A session is now served by this connection. Returning counters
    /// makes the connection call them for every PUBLISH in and out; `None`
    /// (the default) costs the PUBLISH path nothing.
    fn connected(
        &self,
        _client_id: &str,
        _peer: SocketAddr,
        _protocol: Protocol,
        _counters: &Arc<ConnCounters>,
    ) -> Option<Arc<dyn TopicCounters>> {
        None
    }

    /// The same connection as [`Observer::connected`], called right after
    /// it, with the id of the certificate the device presented (`None` on
    /// plain TCP). The audit's connection log needs the principal of each
    /// connection (shared certificates, client-ID takeovers).
    fn device_connected(&self, _client_id: &str, _certificate_id: Option<&str>, _peer: SocketAddr) {
    }

    /// A client ID connected while already connected elsewhere; the old
    /// connection is being closed (v5 reason 0x8E).
    fn session_taken_over(&self, _client_id: &str, _old_peer: SocketAddr, _new_peer: SocketAddr) {}

    /// A client broke the protocol (malformed packet, protocol error…);
    /// its connection is closed with `reason`.
    fn protocol_violation(&self, _peer: SocketAddr, _client_id: Option<&str>, _reason: u8) {}

    /// A connected session's connection ended. `graceful` is true when the
    /// client sent DISCONNECT with reason 0x00.
    fn disconnected(&self, _client_id: &str, _peer: SocketAddr, _graceful: bool) {}

    /// A policy denied `action` (`iot:Connect`, `iot:Publish`, …) on
    /// `resource` (its ARN) for this client.
    fn authorization_failure(
        &self,
        _client_id: &str,
        _peer: SocketAddr,
        _action: &str,
        _resource: &str,
    ) {
    }

    /// A message for `client_id` was dropped.
    fn message_dropped(&self, _client_id: &str, _qos: QoS, _reason: DropReason) {}
}

/// The observer used when nobody listens.
pub struct NoopObserver;

impl Observer for NoopObserver {}
