//! The connection log the device-certificate-shared and conflicting-client-ID
//! checks read: what connected, with which certificate and client ID,
//! from where, when and until when, and which connections were knocked off
//! by another one with the same client ID. It is an `Observer`, fed by the
//! broker on connection tasks: each event takes one short mutex.
//!
//! Bounded: at most `capacity` connections are kept (the oldest finished
//! ones go first), and nothing older than the longest audit window
//! (31 days). It lives in memory: a restart starts a fresh log.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use wardmq_broker::codec::{Protocol, QoS};
use wardmq_broker::observer::{ConnCounters, DropReason, Observer, Rejection, TopicCounters};

use crate::detect::model::Timestamp;

/// The longest window a check looks back (AWS: 31 days).
pub const WINDOW_MS: u64 = 31 * 86_400_000;

/// Connections kept by default (about 150 bytes each).
pub const DEFAULT_CAPACITY: usize = 200_000;

/// One connection, as the checks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub client_id: Arc<str>,
    /// The device certificate's id; `None` for plain-TCP clients.
    pub certificate_id: Option<Arc<str>>,
    pub peer: SocketAddr,
    pub connected: Timestamp,
    /// `None` while connected.
    pub disconnected: Option<Timestamp>,
}

impl ConnectionRecord {
    /// Whether it was connected at some point in [start, end].
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.connected.as_millis() <= end.as_millis()
            && self
                .disconnected
                .is_none_or(|d| d.as_millis() >= start.as_millis())
    }
}

/// A connection knocked off by another one with its client ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Takeover {
    pub client_id: Arc<str>,
    pub at: Timestamp,
    pub old_peer: SocketAddr,
    pub new_peer: SocketAddr,
    /// The certificates of the old and the new connection, when known.
    pub old_certificate_id: Option<Arc<str>>,
    pub new_certificate_id: Option<Arc<str>>,
}

/// What the checks read: a copy of the log in one window.
#[derive(Clone, Debug, Default)]
pub struct LogExtract {
    pub connections: Vec<ConnectionRecord>,
    pub takeovers: Vec<Takeover>,
}

#[derive(Default)]
struct Inner {
    /// Oldest first.
    records: VecDeque<(u64, ConnectionRecord)>,
    /// Open connections by (client ID, peer): their sequence numbers.
    open: HashMap<(Arc<str>, SocketAddr), u64>,
    takeovers: VecDeque<Takeover>,
    next_seq: u64,
}

pub struct ConnectionLog {
    inner: Mutex<Inner>,
    capacity: usize,
    clock: fn() -> Timestamp,
}

impl ConnectionLog {
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, crate::engine::now)
    }

    /// With a test clock.
    pub fn with_clock(capacity: usize, clock: fn() -> Timestamp) -> Self {
        Self {
            inner: Mutex::default(),
            capacity: capacity.max(1),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a connection that was accepted (CONNACK sent).
    pub fn connected_at(
        &self,
        client_id: &str,
        certificate_id: Option<&str>,
        peer: SocketAddr,
        at: Timestamp,
    ) {
        let mut g = self.lock();
        let client: Arc<str> = client_id.into();
        let seq = g.next_seq;
        g.next_seq += 1;
        // A takeover recorded just before this connection came up names
        // it as the newcomer: fill in its certificate.
        if let Some(t) = g.takeovers.iter_mut().rev().take(8).find(|t| {
            *t.client_id == *client_id && t.new_peer == peer && t.new_certificate_id.is_none()
        }) {
            t.new_certificate_id = certificate_id.map(Arc::from);
        }
        g.open.insert((client.clone(), peer), seq);
        g.records.push_back((
            seq,
            ConnectionRecord {
                client_id: client,
                certificate_id: certificate_id.map(Arc::from),
                peer,
                connected: at,
                disconnected: None,
            },
        ));
        self.trim(&mut g, at);
    }

    /// Records the end of a connection.
    pub fn disconnected_at(&self, client_id: &str, peer: SocketAddr, at: Timestamp) {
        let mut g = self.lock();
        let key: (Arc<str>, SocketAddr) = (client_id.into(), peer);
        let Some(seq) = g.open.remove(&key) else {
            return;
        };
        // Sequence numbers grow along the deque: binary search.
        if let Ok(i) = g.records.binary_search_by_key(&seq, |(s, _)| *s) {
            g.records[i].1.disconnected = Some(at);
        }
    }

    /// Records that the connection of `client_id` from `old_peer` is being
    /// closed because `new_peer` connected with the same client ID.
    pub fn taken_over_at(
        &self,
        client_id: &str,
        old_peer: SocketAddr,
        new_peer: SocketAddr,
        at: Timestamp,
    ) {
        let mut g = self.lock();
        let key: (Arc<str>, SocketAddr) = (client_id.into(), old_peer);
        let old_certificate_id = g.open.get(&key).and_then(|seq| {
            g.records
                .binary_search_by_key(seq, |(s, _)| *s)
                .ok()
                .and_then(|i| g.records[i].1.certificate_id.clone())
        });
        g.takeovers.push_back(Takeover {
            client_id: key.0,
            at,
            old_peer,
            new_peer,
            old_certificate_id,
            new_certificate_id: None,
        });
        while g.takeovers.len() > self.capacity {
            g.takeovers.pop_front();
        }
    }

    /// Drops what is older than the window, then finished connections
    /// beyond the capacity, oldest first. Open connections stay (their
    /// number is bounded by the broker's connection limit).
    fn trim(&self, g: &mut Inner, now: Timestamp) {
        let horizon = now.as_millis().saturating_sub(WINDOW_MS);
        while g
            .takeovers
            .front()
            .is_some_and(|t| t.at.as_millis() < horizon)
        {
            g.takeovers.pop_front();
        }
        while g.records.len() > self.capacity
            || g.records
                .front()
                .is_some_and(|(_, r)| r.disconnected.is_some_and(|d| d.as_millis() < horizon))
        {
            let Some((_, front)) = g.records.pop_front() else {
                break;
            };
            if front.disconnected.is_none() {
                // Still connected and the log is full: forget it; its
                // disconnect then finds nothing to close.
                g.open.remove(&(front.client_id.clone(), front.peer));
            }
        }
    }

    /// The connections that overlap [start, end] and the takeovers in it.
    pub fn extract(&self, start: Timestamp, end: Timestamp) -> LogExtract {
        let g = self.lock();
        LogExtract {
            connections: g
                .records
                .iter()
                .filter(|(_, r)| r.overlaps(start, end))
                .map(|(_, r)| r.clone())
                .collect(),
            takeovers: g
                .takeovers
                .iter()
                .filter(|t| {
                    t.at.as_millis() >= start.as_millis() && t.at.as_millis() <= end.as_millis()
                })
                .cloned()
                .collect(),
        }
    }

    /// How many connections it holds.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Observer for ConnectionLog {
    fn device_connected(&self, client_id: &str, certificate_id: Option<&str>, peer: SocketAddr) {
        self.connected_at(client_id, certificate_id, peer, (self.clock)());
    }

    fn session_taken_over(&self, client_id: &str, old_peer: SocketAddr, new_peer: SocketAddr) {
        self.taken_over_at(client_id, old_peer, new_peer, (self.clock)());
    }

    fn disconnected(&self, client_id: &str, peer: SocketAddr, _graceful: bool) {
        self.disconnected_at(client_id, peer, (self.clock)());
    }
}

/// Two observers as one: every event goes to both, in order. The first
/// one's per-topic counters are the ones the broker calls.
pub struct Both {
    first: Arc<dyn Observer>,
    second: Arc<dyn Observer>,
}

impl Both {
    pub fn new(first: Arc<dyn Observer>, second: Arc<dyn Observer>) -> Self {
        Self { first, second }
    }
}

impl Observer for Both {
    fn connection_accepted(&self, peer: SocketAddr) {
        self.first.connection_accepted(peer);
        self.second.connection_accepted(peer);
    }

    fn connection_rejected(&self, peer: SocketAddr, why: Rejection) {
        self.first.connection_rejected(peer, why);
        self.second.connection_rejected(peer, why);
    }

    fn tls_handshake_failed(&self, peer: SocketAddr, reason: &str) {
        self.first.tls_handshake_failed(peer, reason);
        self.second.tls_handshake_failed(peer, reason);
    }

    fn connect_refused(&self, peer: SocketAddr, client_id: Option<&str>, reason: u8) {
        self.first.connect_refused(peer, client_id, reason);
        self.second.connect_refused(peer, client_id, reason);
    }

    fn connected(
        &self,
        client_id: &str,
        peer: SocketAddr,
        protocol: Protocol,
        counters: &Arc<ConnCounters>,
    ) -> Option<Arc<dyn TopicCounters>> {
        let topic = self.first.connected(client_id, peer, protocol, counters);
        let _ = self.second.connected(client_id, peer, protocol, counters);
        topic
    }

    fn device_connected(&self, client_id: &str, certificate_id: Option<&str>, peer: SocketAddr) {
        self.first.device_connected(client_id, certificate_id, peer);
        self.second
            .device_connected(client_id, certificate_id, peer);
    }

    fn session_taken_over(&self, client_id: &str, old_peer: SocketAddr, new_peer: SocketAddr) {
        self.first.session_taken_over(client_id, old_peer, new_peer);
        self.second
            .session_taken_over(client_id, old_peer, new_peer);
    }

    fn protocol_violation(&self, peer: SocketAddr, client_id: Option<&str>, reason: u8) {
        self.first.protocol_violation(peer, client_id, reason);
        self.second.protocol_violation(peer, client_id, reason);
    }

    fn disconnected(&self, client_id: &str, peer: SocketAddr, graceful: bool) {
        self.first.disconnected(client_id, peer, graceful);
        self.second.disconnected(client_id, peer, graceful);
    }

    fn authorization_failure(
        &self,
        client_id: &str,
        peer: SocketAddr,
        action: &str,
        resource: &str,
    ) {
        self.first
            .authorization_failure(client_id, peer, action, resource);
        self.second
            .authorization_failure(client_id, peer, action, resource);
    }

    fn message_dropped(&self, client_id: &str, qos: QoS, reason: DropReason) {
        self.first.message_dropped(client_id, qos, reason);
        self.second.message_dropped(client_id, qos, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn records_connections_and_takeovers() {
        let log = ConnectionLog::new(10);
        log.connected_at("a", Some("c1"), addr(1), t(0));
        log.taken_over_at("a", addr(1), addr(2), t(5));
        log.disconnected_at("a", addr(1), t(5));
        log.connected_at("a", Some("c2"), addr(2), t(6));
        let x = log.extract(t(0), t(10));
        assert_eq!(x.connections.len(), 2);
        assert_eq!(x.connections[0].disconnected, Some(t(5)));
        assert_eq!(x.connections[1].disconnected, None);
        assert_eq!(x.takeovers.len(), 1);
        assert_eq!(x.takeovers[0].old_certificate_id.as_deref(), Some("c1"));
        assert_eq!(x.takeovers[0].new_certificate_id.as_deref(), Some("c2"));
        // Outside the window.
        assert!(log.extract(t(11), t(20)).takeovers.is_empty());
        assert_eq!(log.extract(t(11), t(20)).connections.len(), 1, "still open");
    }

    #[test]
    fn bounded_by_capacity_and_window() {
        let log = ConnectionLog::new(3);
        for i in 0..5u16 {
            log.connected_at("c", None, addr(i), t(u64::from(i)));
            log.disconnected_at("c", addr(i), t(u64::from(i)));
        }
        assert_eq!(log.len(), 3);
        // Old finished ones fall out of the window.
        let later = t(WINDOW_MS / 1000 + 100);
        log.connected_at("d", None, addr(9), later);
        assert_eq!(log.len(), 1);
    }
}
