//! Broker-wide and per-source-IP event counts for one period, for the
//! broker-level profiles (CONNECT floods, brute force from one address):
//! attacks that have no thing behind them.

use std::collections::HashMap;
use std::net::IpAddr;

/// What one source address did in a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpCounts {
    /// TCP connections accepted (before TLS and CONNECT).
    pub connections: u64,
    /// CONNECTs that led to a session.
    pub connects: u64,
    pub tls_handshake_failures: u64,
    /// CONNECTs refused (CONNACK >= 0x80) or never sent.
    pub connect_refusals: u64,
    pub authorization_failures: u64,
    pub protocol_violations: u64,
}

/// The same, for the whole broker, plus what has no address of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerCounts {
    pub totals: IpCounts,
    pub disconnects: u64,
    pub takeovers: u64,
    /// Messages for a session the broker did not deliver, any reason.
    pub messages_dropped: u64,
    /// Events from addresses beyond `max_tracked_ips` this period: counted
    /// in `totals`, not per address.
    pub untracked_ip_events: u64,
}

/// Which counter an event bumps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IpEvent {
    Connection,
    Connect,
    TlsFailure,
    Refusal,
    AuthorizationFailure,
    ProtocolViolation,
}

impl IpCounts {
    fn bump(&mut self, e: IpEvent) {
        let c = match e {
            IpEvent::Connection => &mut self.connections,
            IpEvent::Connect => &mut self.connects,
            IpEvent::TlsFailure => &mut self.tls_handshake_failures,
            IpEvent::Refusal => &mut self.connect_refusals,
            IpEvent::AuthorizationFailure => &mut self.authorization_failures,
            IpEvent::ProtocolViolation => &mut self.protocol_violations,
        };
        *c += 1;
    }
}

/// The current period's counts. Bounded: at most `max_ips` addresses per
/// period (a flood from a whole botnet must not grow memory without limit);
/// the map is emptied at every period's end.
#[derive(Debug, Default)]
pub(crate) struct IpBook {
    pub(crate) per_ip: HashMap<IpAddr, IpCounts>,
    pub(crate) broker: BrokerCounts,
}

impl IpBook {
    pub(crate) fn record(&mut self, ip: IpAddr, e: IpEvent, max_ips: usize) {
        self.broker.totals.bump(e);
        if let Some(c) = self.per_ip.get_mut(&ip) {
            c.bump(e);
        } else if self.per_ip.len() < max_ips {
            self.per_ip.entry(ip).or_default().bump(e);
        } else {
            self.broker.untracked_ip_events += 1;
        }
    }

    /// This period's counts; the book starts the next one empty.
    pub(crate) fn take(&mut self) -> (HashMap<IpAddr, IpCounts>, BrokerCounts) {
        (
            std::mem::take(&mut self.per_ip),
            std::mem::take(&mut self.broker),
        )
    }
}
