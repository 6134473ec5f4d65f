//! One thing's state between periods: its live connections (with the
//! counter values last read from each) and what its ended connections and
//! events added to the current period.
//!
//! Counters are read as deltas against the last value read, never reset:
//! the broker's `ConnCounters` may have other readers. Each increment is
//! therefore counted in exactly one period: the one whose read first sees
//! it. A connection that ends mid-period is read one last time and its
//! delta folded into the period, so it still counts.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use wardmq_broker::observer::ConnCounters;

use super::dimension::{ConnTopicCounters, DimensionFilters, Slot};
use super::snapshot::{DimensionCounts, DimensionMessages, ThingCounts, ThingPeriod};
use crate::detect::model::Timestamp;

/// At most this many distinct source IPs are kept per thing and period (a
/// device cycling through addresses must not grow memory; the first ones
/// are enough to judge an `in-cidr-set` rule).
pub(crate) const MAX_IPS_PER_PERIOD: usize = 16;

#[derive(Debug)]
pub(crate) struct LiveConn {
    pub(crate) peer: SocketAddr,
    pub(crate) counters: Arc<ConnCounters>,
    last_in: u64,
    last_out: u64,
    pub(crate) topics: Arc<ConnTopicCounters>,
}

impl LiveConn {
    pub(crate) fn new(
        peer: SocketAddr,
        counters: &Arc<ConnCounters>,
        topics: Arc<ConnTopicCounters>,
    ) -> Self {
        // Whatever the counters hold already (nothing, normally) belongs to
        // no period of ours.
        let last_in = counters.publishes_in.load(Ordering::Relaxed);
        let last_out = counters.publishes_out.load(Ordering::Relaxed);
        Self {
            peer,
            counters: counters.clone(),
            last_in,
            last_out,
            topics,
        }
    }
}

/// Per-dimension accumulation for the current period (by name, as the
/// dimension set can change between periods).
#[derive(Debug, Default)]
pub(crate) struct DimAcc {
    name: Arc<str>,
    messages: DimensionMessages,
    auth: [u64; 2],
    /// Some connection counted part of this period with other filters.
    stale: bool,
}

#[derive(Debug, Default)]
pub(crate) struct PeriodAcc {
    /// The thing did something this period (so it gets count datapoints).
    pub(crate) active: bool,
    pub(crate) counts: ThingCounts,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) dims: Vec<DimAcc>,
}

#[derive(Debug, Default)]
pub(crate) struct ThingState {
    /// Usually zero or one; two during a takeover.
    pub(crate) conns: Vec<LiveConn>,
    pub(crate) period: PeriodAcc,
    /// Set when the last live connection ended, cleared on connect.
    pub(crate) disconnected_since: Option<Timestamp>,
    /// Periods in a row with nothing to report.
    pub(crate) idle_periods: u32,
}

fn max_opt(a: Option<u64>, b: u64) -> Option<u64> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl PeriodAcc {
    pub(crate) fn add_ip(&mut self, ip: IpAddr) {
        if !self.ips.contains(&ip) && self.ips.len() < MAX_IPS_PER_PERIOD {
            // Almost every thing has one address: no room for four.
            self.ips.reserve_exact(1);
            self.ips.push(ip);
        }
    }

    fn dim(&mut self, name: &Arc<str>) -> &mut DimAcc {
        let i = match self.dims.iter().position(|d| &d.name == name) {
            Some(i) => i,
            None => {
                self.dims.push(DimAcc {
                    name: name.clone(),
                    ..DimAcc::default()
                });
                self.dims.len() - 1
            }
        };
        &mut self.dims[i]
    }

    pub(crate) fn add_auth_failure(&mut self, filters: &DimensionFilters, matched: &[bool]) {
        self.counts.authorization_failures += 1;
        for (d, m) in filters.dims.iter().zip(matched) {
            self.dim(&d.name).auth[usize::from(!*m)] += 1;
        }
    }

    /// Reads what `conn` counted since its last read into this period.
    pub(crate) fn fold(&mut self, conn: &mut LiveConn, filters: &DimensionFilters) {
        let c = &conn.counters;
        let now_in = c.publishes_in.load(Ordering::Relaxed);
        let now_out = c.publishes_out.load(Ordering::Relaxed);
        // wrapping_sub: a u64 counter does not wrap in practice, but a
        // wrong value must not panic a debug build.
        self.counts.messages_sent += now_in.wrapping_sub(conn.last_in);
        self.counts.messages_received += now_out.wrapping_sub(conn.last_out);
        conn.last_in = now_in;
        conn.last_out = now_out;
        // Only this collector takes the maximum (documented on the field).
        let max = c.max_message_bytes.swap(0, Ordering::Relaxed);
        if max > 0 || self.counts.messages_sent > 0 {
            self.counts.max_message_bytes = max_opt(self.counts.max_message_bytes, max);
        }
        let set = conn.topics.slots();
        if set.generation == filters.generation {
            for s in set.slots.iter() {
                self.drain(s);
            }
            return;
        }
        // The dimension set changed since this connection's counters were
        // built: re-point them, keep what still means the same.
        let (old, new) = conn.topics.repoint(filters);
        for s in new.slots.iter() {
            match old.slots.iter().find(|o| o.same_as(s)) {
                Some(o) => self.drain(o),
                None => self.dim(&s.name).stale = true,
            }
        }
    }

    fn drain(&mut self, s: &Slot) {
        let m = &mut self.dim(&s.name).messages;
        for i in 0..2 {
            m.sent[i] += s.sent[i].swap(0, Ordering::Relaxed);
            m.received[i] += s.received[i].swap(0, Ordering::Relaxed);
            let max = s.max_bytes[i].swap(0, Ordering::Relaxed);
            if max > 0 || m.sent[i] > 0 {
                m.max_bytes[i] = max_opt(m.max_bytes[i], max);
            }
        }
    }
}

impl ThingState {
    /// Closes the period at `now`: reads every live connection, drops those
    /// the broker let go of without telling us, and returns the period's
    /// values (`None` when there is nothing to report).
    pub(crate) fn close(
        &mut self,
        now: Timestamp,
        filters: &DimensionFilters,
        minute_ms: u64,
    ) -> Option<ThingPeriod> {
        let mut period = std::mem::take(&mut self.period);
        for conn in &mut self.conns {
            period.fold(conn, filters);
            period.add_ip(conn.peer.ip());
        }
        // Safety net: a connection whose counters only we still hold has
        // ended; its last counts are in `period` already.
        let before = self.conns.len();
        self.conns.retain(|c| Arc::strong_count(&c.counters) > 1);
        if before > 0 && self.conns.is_empty() {
            self.disconnected_since = Some(now);
        }
        let active = period.active || !self.conns.is_empty() || before > 0;
        let disconnect_minutes = if !self.conns.is_empty() {
            Some(0)
        } else {
            self.disconnected_since
                .map(|t| now.millis_since(t) / minute_ms.max(1))
        };
        if !active && disconnect_minutes.is_none() {
            self.idle_periods = self.idle_periods.saturating_add(1);
            return None;
        }
        if active {
            self.idle_periods = 0;
        } else {
            self.idle_periods = self.idle_periods.saturating_add(1);
        }
        let mut ips = period.ips;
        ips.sort_unstable();
        let mut accs = period.dims;
        let dimensions = if active {
            filters
                .dims
                .iter()
                .map(|d| {
                    let acc = accs
                        .iter_mut()
                        .find(|a| a.name == d.name)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    DimensionCounts {
                        name: d.name.clone(),
                        messages: (!acc.stale).then_some(acc.messages),
                        authorization_failures: acc.auth,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Some(ThingPeriod {
            counts: active.then_some(period.counts),
            source_ips: ips,
            disconnect_minutes,
            dimensions,
        })
    }

    /// Nothing live, nothing for `idle_limit` periods, and the disconnect
    /// (if any) older than `keep_disconnected_ms`: the state can go.
    pub(crate) fn forgettable(
        &self,
        now: Timestamp,
        idle_limit: u32,
        keep_disconnected_ms: u64,
    ) -> bool {
        self.conns.is_empty()
            && self.idle_periods >= idle_limit
            && self
                .disconnected_since
                .is_none_or(|t| now.millis_since(t) >= keep_disconnected_ms)
    }
}
