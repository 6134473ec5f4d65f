//! The broker's runtime settings: plain values, already validated by the
//! binary's config layer (which owns the TOML file and its defaults).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::scope::Scope;

/// The policy plain-TCP clients get unless the config names others: allow
/// everything. The TCP listener is for local development and tests, and is
/// off by default.
pub const DEV_ANONYMOUS_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

/// What happens to a QoS 1/2 message for a session whose queue is full.
/// (QoS 0 messages are always dropped and counted.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFullPolicy {
    /// Drop the new message and count it.
    DropNew,
    /// Drop the oldest queued (not in-flight) message to make room.
    DropOldest,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Directory for the redb file (`wardmq.redb`); created if missing.
    pub data_dir: PathBuf,
    /// Plain TCP listener (for development and tests: its clients are
    /// anonymous); `None` disables it. Port 0 binds a free port.
    pub tcp: Option<SocketAddr>,
    /// Mutual-TLS device listener; `None` disables it. Needs a registry.
    pub tls: Option<TlsSettings>,
    pub limits: Limits,
    /// Region and account every ARN is built from.
    pub scope: Scope,
    /// Policy documents (JSON) for plain-TCP clients, which have no
    /// certificate to attach policies to.
    pub anonymous_policies: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub addr: SocketAddr,
    /// PEM: the server certificate, then any intermediates.
    pub cert_chain: PathBuf,
    pub key: PathBuf,
    /// CRL files (PEM or DER) by the id of the CA that issued them;
    /// reloaded when they change.
    pub crls: Vec<(String, PathBuf)>,
    pub handshake_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Maximum packet size the broker accepts (and announces in CONNACK).
    pub max_packet_size: u32,
    /// Receive Maximum the broker announces: inbound QoS 1/2 publishes a
    /// client may have unacknowledged; exceeding it disconnects with 0x93.
    pub receive_maximum: u16,
    /// Largest keep-alive accepted; larger (or 0) is replaced by this via
    /// Server Keep Alive (v5). 0 disables the cap.
    pub max_keep_alive: u16,
    /// Topic aliases a client may use towards the broker.
    pub topic_alias_maximum: u16,
    /// Per-session outgoing inflight window (the client's Receive Maximum
    /// lowers it further).
    pub max_inflight: u16,
    /// Per-session queue of messages waiting to be sent (inflight included).
    pub max_queued_messages: usize,
    pub max_queued_bytes: usize,
    pub queue_full_policy: QueueFullPolicy,
    /// Session expiry cap; also the expiry given to 3.1.1 persistent
    /// sessions, which have none of their own.
    pub max_session_expiry: Duration,
    /// Time a connection may take to send CONNECT.
    pub connect_timeout: Duration,
    pub max_client_id_len: usize,
    /// New connections a second one source address (IPv6: one /64) may
    /// open, checked before the TLS handshake; 0 turns the limit off.
    pub connection_rate_per_ip: u32,
    /// How many it may open at once after a quiet spell.
    pub connection_burst_per_ip: u32,
    /// New connections a second for the whole broker; 0 turns it off.
    pub connection_rate: u32,
    pub connection_burst: u32,
    /// Subscriptions one session may hold; more get SUBACK 0x97.
    pub max_subscriptions_per_client: usize,
    /// Longest topic name or filter, in bytes, and most `/`-separated
    /// levels: longer PUBLISH topics get 0x90, filters 0x8F.
    pub max_topic_len: usize,
    pub max_topic_levels: usize,
    /// Retained messages the broker holds; a retained PUBLISH on a new
    /// topic past it is refused (v5 QoS 1/2: 0x97).
    pub max_retained_messages: usize,
}

impl Limits {
    /// Whether a topic name or filter is within the length and level limits.
    pub fn topic_fits(&self, topic: &str) -> bool {
        topic.len() <= self.max_topic_len
            && topic.bytes().filter(|b| *b == b'/').count() < self.max_topic_levels
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 100_000,
            max_packet_size: 1024 * 1024,
            receive_maximum: 1024,
            max_keep_alive: 1200,
            topic_alias_maximum: 64,
            max_inflight: 64,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            queue_full_policy: QueueFullPolicy::DropNew,
            max_session_expiry: Duration::from_secs(7 * 24 * 3600),
            connect_timeout: Duration::from_secs(10),
            max_client_id_len: 128,
            connection_rate_per_ip: 20,
            connection_burst_per_ip: 100,
            connection_rate: 1000,
            connection_burst: 2000,
            max_subscriptions_per_client: 1000,
            max_topic_len: 1024,
            max_topic_levels: 32,
            max_retained_messages: 100_000,
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            data_dir: PathBuf::from("data"),
            tcp: None,
            tls: None,
            limits: Limits::default(),
            scope: Scope::new("us-east-1", "123456789012"),
            anonymous_policies: vec![DEV_ANONYMOUS_POLICY.to_owned()],
        }
    }
}
