//! The broker's counters as the metrics endpoint sees them: an
//! [`Observer`] that counts rare events (connects, refusals, TLS failures,
//! drops) as they happen, and keeps a handle on every live connection's
//! own [`ConnCounters`] so PUBLISH traffic is summed at scrape time rather
//! than counted twice on the hot path.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use wardmq_broker::codec::reason;
use wardmq_broker::codec::{Protocol, QoS};
use wardmq_broker::observer::{
    ConnCounters, DropReason, Observer, Rejection, TopicCounters, LATENCY_BOUNDS_US,
};

/// Distinct label values kept per labelled counter; past it, new values
/// count under `other` (the labels come from a fixed set today, but a
/// bound keeps a future free-form one from growing the exposition).
const MAX_LABELS: usize = 64;

/// One histogram bucket per latency bound, plus `+Inf`.
const BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// Traffic totals, summed over connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub publishes_in: u64,
    pub bytes_in: u64,
    pub publishes_out: u64,
    pub bytes_out: u64,
    pub route_buckets: [u64; BUCKETS],
    pub route_sum_ns: u64,
}

impl Traffic {
    fn add(&mut self, c: &ConnCounters) {
        self.publishes_in += c.publishes_in.load(Relaxed);
        self.bytes_in += c.bytes_in.load(Relaxed);
        self.publishes_out += c.publishes_out.load(Relaxed);
        self.bytes_out += c.bytes_out.load(Relaxed);
        for (total, b) in self.route_buckets.iter_mut().zip(&c.route_latency.buckets) {
            *total += b.load(Relaxed);
        }
        self.route_sum_ns += c.route_latency.sum_ns.load(Relaxed);
    }
}

#[derive(Default)]
struct Live {
    /// By (client ID, peer): one live connection each (a takeover's new
    /// connection comes from another port).
    conns: HashMap<(String, SocketAddr), Arc<ConnCounters>>,
    /// What connections that ended had counted.
    retired: Traffic,
}

/// Broker event counters since start.
pub struct BrokerCounters {
    live: Mutex<Live>,
    accepted: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
    connected: AtomicU64,
    refused: [AtomicU64; 256],
    tls_failures: Labelled,
    disconnects_graceful: AtomicU64,
    disconnects_other: AtomicU64,
    takeovers: AtomicU64,
    protocol_violations: AtomicU64,
    authorization_failures: Labelled,
    dropped: [AtomicU64; 4],
}

impl Default for BrokerCounters {
    fn default() -> Self {
        BrokerCounters {
            live: Mutex::default(),
            accepted: AtomicU64::new(0),
            rejected: Default::default(),
            connected: AtomicU64::new(0),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            tls_failures: Labelled::default(),
            disconnects_graceful: AtomicU64::new(0),
            disconnects_other: AtomicU64::new(0),
            takeovers: AtomicU64::new(0),
            protocol_violations: AtomicU64::new(0),
            authorization_failures: Labelled::default(),
            dropped: Default::default(),
        }
    }
}

/// Counts by a string label, bounded by [`MAX_LABELS`].
#[derive(Default)]
struct Labelled(Mutex<BTreeMap<String, u64>>);

impl Labelled {
    fn add(&self, label: &str) {
        let mut m = lock(&self.0);
        if let Some(n) = m.get_mut(label) {
            *n += 1;
        } else if m.len() < MAX_LABELS {
            m.insert(label.to_owned(), 1);
        } else {
            *m.entry("other".to_owned()).or_default() += 1;
        }
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        lock(&self.0).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every drop reason, with its label (index = position in `dropped`).
pub const DROP_REASONS: [(DropReason, &str); 4] = [
    (DropReason::QueueFull, "queue_full"),
    (DropReason::Expired, "expired"),
    (DropReason::TooLargeForClient, "too_large_for_client"),
    (DropReason::NotAuthorized, "not_authorized"),
];

fn drop_index(r: DropReason) -> usize {
    DROP_REASONS.iter().position(|(d, _)| *d == r).unwrap_or(0)
}

/// A CONNACK reason code's label.
pub fn refusal_name(code: u8) -> &'static str {
    match code {
        reason::UNSPECIFIED_ERROR => "unspecified_error",
        reason::MALFORMED_PACKET => "malformed_packet",
        reason::PROTOCOL_ERROR => "protocol_error",
        reason::IMPLEMENTATION_SPECIFIC_ERROR => "implementation_specific_error",
        reason::UNSUPPORTED_PROTOCOL_VERSION => "unsupported_protocol_version",
        reason::CLIENT_IDENTIFIER_NOT_VALID => "client_identifier_not_valid",
        reason::BAD_USER_NAME_OR_PASSWORD => "bad_user_name_or_password",
        reason::NOT_AUTHORIZED => "not_authorized",
        reason::SERVER_UNAVAILABLE => "server_unavailable",
        reason::SERVER_BUSY => "server_busy",
        reason::BANNED => "banned",
        reason::SERVER_SHUTTING_DOWN => "server_shutting_down",
        reason::BAD_AUTHENTICATION_METHOD => "bad_authentication_method",
        reason::KEEP_ALIVE_TIMEOUT => "keep_alive_timeout",
        reason::PACKET_TOO_LARGE => "packet_too_large",
        reason::QUOTA_EXCEEDED => "quota_exceeded",
        reason::CONNECTION_RATE_EXCEEDED => "connection_rate_exceeded",
        _ => "other",
    }
}

/// A point-in-time copy of [`BrokerCounters`].
#[derive(Clone, Debug, Default)]
pub struct BrokerSnapshot {
    pub connections: usize,
    pub traffic: Traffic,
    pub accepted: u64,
    /// In [`Rejection::ALL`] order.
    pub rejected: [u64; Rejection::ALL.len()],
    pub connected: u64,
    /// (code, count) for codes with a count.
    pub refused: Vec<(u8, u64)>,
    pub tls_failures: BTreeMap<String, u64>,
    pub disconnects_graceful: u64,
    pub disconnects_other: u64,
    pub takeovers: u64,
    pub protocol_violations: u64,
    pub authorization_failures: BTreeMap<String, u64>,
    /// In [`DROP_REASONS`] order.
    pub dropped: [u64; 4],
}

impl BrokerCounters {
    /// Live connections and the traffic totals since start.
    pub fn traffic(&self) -> (usize, Traffic) {
        let live = lock(&self.live);
        let mut t = live.retired;
        for c in live.conns.values() {
            t.add(c);
        }
        (live.conns.len(), t)
    }

    /// Whether `client_id` has a live connection.
    pub fn is_connected(&self, client_id: &str) -> bool {
        lock(&self.live).conns.keys().any(|(id, _)| id == client_id)
    }

    pub fn snapshot(&self) -> BrokerSnapshot {
        let (connections, traffic) = self.traffic();
        BrokerSnapshot {
            connections,
            traffic,
            accepted: self.accepted.load(Relaxed),
            rejected: std::array::from_fn(|i| self.rejected[i].load(Relaxed)),
            connected: self.connected.load(Relaxed),
            refused: (0..=255u8)
                .filter_map(|code| {
                    let n = self.refused[usize::from(code)].load(Relaxed);
                    (n > 0).then_some((code, n))
                })
                .collect(),
            tls_failures: self.tls_failures.snapshot(),
            disconnects_graceful: self.disconnects_graceful.load(Relaxed),
            disconnects_other: self.disconnects_other.load(Relaxed),
            takeovers: self.takeovers.load(Relaxed),
            protocol_violations: self.protocol_violations.load(Relaxed),
            authorization_failures: self.authorization_failures.snapshot(),
            dropped: std::array::from_fn(|i| self.dropped[i].load(Relaxed)),
        }
    }
}

impl Observer for BrokerCounters {
    fn connection_accepted(&self, _peer: SocketAddr) {
        self.accepted.fetch_add(1, Relaxed);
    }

    fn connection_rejected(&self, _peer: SocketAddr, why: Rejection) {
        let i = Rejection::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejected[i].fetch_add(1, Relaxed);
    }

    fn tls_handshake_failed(&self, _peer: SocketAddr, reason: &str) {
        self.tls_failures.add(reason);
    }

    fn connect_refused(&self, _peer: SocketAddr, _client_id: Option<&str>, reason: u8) {
        self.refused[usize::from(reason)].fetch_add(1, Relaxed);
    }

    fn connected(
        &self,
        client_id: &str,
        peer: SocketAddr,
        _protocol: Protocol,
        counters: &Arc<ConnCounters>,
    ) -> Option<Arc<dyn TopicCounters>> {
        self.connected.fetch_add(1, Relaxed);
        lock(&self.live)
            .conns
            .insert((client_id.to_owned(), peer), counters.clone());
        None
    }

    fn session_taken_over(&self, _client_id: &str, _old: SocketAddr, _new: SocketAddr) {
        self.takeovers.fetch_add(1, Relaxed);
    }

    fn protocol_violation(&self, _peer: SocketAddr, _client_id: Option<&str>, _reason: u8) {
        self.protocol_violations.fetch_add(1, Relaxed);
    }

    fn disconnected(&self, client_id: &str, peer: SocketAddr, graceful: bool) {
        let ended = if graceful {
            &self.disconnects_graceful
        } else {
            &self.disconnects_other
        };
        ended.fetch_add(1, Relaxed);
        let mut live = lock(&self.live);
        if let Some(c) = live.conns.remove(&(client_id.to_owned(), peer)) {
            live.retired.add(&c);
        }
    }

    fn authorization_failure(&self, _client_id: &str, _peer: SocketAddr, action: &str, _r: &str) {
        self.authorization_failures.add(action);
    }

    fn message_dropped(&self, _client_id: &str, _qos: QoS, reason: DropReason) {
        self.dropped[drop_index(reason)].fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_survives_the_connection() {
        let b = BrokerCounters::default();
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let c = Arc::new(ConnCounters::default());
        b.connected("a", peer, Protocol::V5, &c);
        c.publishes_in.fetch_add(3, Relaxed);
        c.route_latency.record(std::time::Duration::from_micros(7));
        assert_eq!(b.snapshot().connections, 1);
        assert_eq!(b.snapshot().traffic.publishes_in, 3);
        b.disconnected("a", peer, true);
        c.publishes_in.fetch_add(1, Relaxed);
        let s = b.snapshot();
        assert_eq!((s.connections, s.traffic.publishes_in), (0, 3));
        assert_eq!(
            s.traffic.route_buckets[1], 1,
            "7 µs is in the <= 10 µs bucket"
        );
        assert_eq!(s.disconnects_graceful, 1);
    }

    #[test]
    fn labels_are_bounded() {
        let l = Labelled::default();
        for i in 0..(MAX_LABELS + 10) {
            l.add(&format!("r{i}"));
        }
        let s = l.snapshot();
        assert_eq!(s.len(), MAX_LABELS + 1);
        assert_eq!(s.get("other"), Some(&10));
    }
}
