//! The collector: the broker's observer for the cloud-side metrics, and the
//! period close that turns what it saw into a [`PeriodSnapshot`].
//!
//! State is split over shards (each a `Mutex<HashMap>` of things) so that a
//! connect on one thing does not wait for a period close walking another
//! shard. Locks are taken only on rare events and at the period's end;
//! PUBLISHes never touch them.
//!
//! Memory: a thing costs its map entry (key `Arc<str>` + `ThingState`,
//! 177 bytes, about 270 with the table's spare capacity), its name (16
//! bytes of `Arc` header + the name), and while connected one `LiveConn`
//! (64 bytes) and its period's address (17 bytes): about 380 bytes per
//! connected thing, 300 per disconnected one (38 MB / 30 MB for 100,000).
//! With dimensions, a `DimAcc` (about 90 bytes) per dimension and one
//! `ConnTopicCounters` per connection. `bench.rs` prints the figures. A thing
//! with no live connection is forgotten after `forget_after_periods` periods
//! with nothing to report; one that was connected is kept until its
//! disconnect is `keep_disconnected` old, so `aws:disconnect-duration` keeps
//! rising for the rules that watch it.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wardmq_broker::codec::Protocol;
use wardmq_broker::codec::QoS;
use wardmq_broker::observer::{ConnCounters, DropReason, Observer, Rejection, TopicCounters};

use super::dimension::{topic_of_arn, ConnTopicCounters, DimensionFilters, TopicDimension};
use super::ip::{IpBook, IpEvent};
use super::snapshot::PeriodSnapshot;
use super::thing::{LiveConn, ThingState};
use crate::detect::model::Timestamp;

const SHARDS: usize = 16;

/// Things whose client IDs hash to one shard.
type Shard = Mutex<HashMap<Arc<str>, ThingState>>;

/// A source of the current time; tests drive their own.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Periods with nothing to report after which a thing with no live
    /// connection is forgotten.
    pub forget_after_periods: u32,
    /// How long a disconnected thing is kept (and its disconnect duration
    /// reported). Two days by default: AWS invalidates an alarm after two
    /// days without data, so longer would report into nothing.
    pub keep_disconnected: Duration,
    /// Distinct source addresses counted per period; the rest only in the
    /// broker-wide totals.
    pub max_tracked_ips: usize,
    /// Length of an `aws:disconnect-duration` minute in milliseconds:
    /// 60,000, shorter when the defender's timeline is compressed
    /// (`DefenderSettings::time_scale`).
    pub minute_ms: u64,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            forget_after_periods: 2,
            keep_disconnected: Duration::from_secs(2 * 24 * 3600),
            max_tracked_ips: 65_536,
            minute_ms: 60_000,
        }
    }
}

/// Lock poisoning means a panic elsewhere while holding the lock; counts
/// are plain numbers that stay meaningful, so carry on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn system_now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(ms)
}

pub struct Collector {
    config: CollectorConfig,
    clock: Clock,
    hasher: RandomState,
    shards: Box<[Shard]>,
    ips: Mutex<IpBook>,
    /// Messages dropped this period (`BrokerCounts::messages_dropped`).
    dropped: AtomicU64,
    /// Read on connects, authorization failures and period ends; written
    /// when profiles change.
    dimensions: RwLock<Arc<DimensionFilters>>,
    period_start: Mutex<Timestamp>,
}

impl Collector {
    pub fn new(config: CollectorConfig) -> Self {
        Self::with_clock(config, Arc::new(system_now))
    }

    pub fn with_clock(config: CollectorConfig, clock: Clock) -> Self {
        let start = clock();
        Self {
            config,
            clock,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            ips: Mutex::default(),
            dropped: AtomicU64::new(0),
            dimensions: RwLock::default(),
            period_start: Mutex::new(start),
        }
    }

    fn shard(&self, client_id: &str) -> MutexGuard<'_, HashMap<Arc<str>, ThingState>> {
        // The modulo keeps the index in range; the cast loses only bits the
        // modulo drops anyway.
        let i = (self.hasher.hash_one(client_id) % SHARDS as u64) as usize;
        lock(&self.shards[i])
    }

    /// Runs `f` on `client_id`'s state, creating it if new. Looked up by
    /// `&str` first so that an event for a known thing allocates nothing.
    fn with_thing(&self, client_id: &str, f: impl FnOnce(&mut ThingState)) {
        let mut map = self.shard(client_id);
        match map.get_mut(client_id) {
            Some(st) => f(st),
            None => {
                let mut st = ThingState::default();
                f(&mut st);
                map.insert(client_id.into(), st);
            }
        }
    }

    fn filters(&self) -> Arc<DimensionFilters> {
        self.dimensions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record_ip(&self, peer: SocketAddr, e: IpEvent) {
        lock(&self.ips).record(peer.ip(), e, self.config.max_tracked_ips);
    }

    /// Replaces the TOPIC_FILTER dimensions behaviours use. Live
    /// connections follow at their next read (see `dimension.rs`).
    pub fn set_dimensions(&self, dims: Vec<TopicDimension>) {
        let mut guard = self
            .dimensions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if guard.dims == dims {
            return;
        }
        let generation = guard.generation.wrapping_add(1);
        *guard = Arc::new(DimensionFilters { generation, dims });
    }

    pub fn dimension_filters(&self) -> Arc<DimensionFilters> {
        self.filters()
    }

    /// The per-topic counters of `client_id`'s connection from `peer`, which
    /// the broker bumps on every PUBLISH in and out.
    pub fn topic_counters(
        &self,
        client_id: &str,
        peer: SocketAddr,
    ) -> Option<Arc<ConnTopicCounters>> {
        let shard = self.shard(client_id);
        let st = shard.get(client_id)?;
        st.conns
            .iter()
            .find(|c| c.peer == peer)
            .map(|c| c.topics.clone())
    }

    /// When `client_id`'s last connection ended, if it is not connected now.
    pub fn disconnected_since(&self, client_id: &str) -> Option<Timestamp> {
        let shard = self.shard(client_id);
        let st = shard.get(client_id)?;
        st.conns
            .is_empty()
            .then_some(st.disconnected_since)
            .flatten()
    }

    /// How many things are tracked.
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Ends the period at `now`: every thing's datapoints (deltas since the
    /// previous close), the broker-wide and per-IP counts; forgets idle
    /// things.
    pub fn close_period(&self, now: Timestamp) -> PeriodSnapshot {
        let filters = self.filters();
        let keep_ms = u64::try_from(self.config.keep_disconnected.as_millis()).unwrap_or(u64::MAX);
        let mut things = HashMap::new();
        for shard in self.shards.iter() {
            let mut map = lock(shard);
            map.retain(|name, st| {
                if let Some(p) = st.close(now, &filters, self.config.minute_ms) {
                    things.insert(name.clone(), p);
                }
                !st.forgettable(now, self.config.forget_after_periods, keep_ms)
            });
        }
        let (per_ip, mut broker) = lock(&self.ips).take();
        broker.messages_dropped = self.dropped.swap(0, Ordering::Relaxed);
        let start = std::mem::replace(&mut *lock(&self.period_start), now);
        PeriodSnapshot {
            start,
            end: now,
            things,
            broker,
            per_ip,
        }
    }
}

impl Observer for Collector {
    fn connection_accepted(&self, peer: SocketAddr) {
        self.record_ip(peer, IpEvent::Connection);
    }

    /// A refused attempt is still one: a flood the admission control cuts
    /// short must keep the address's connection-attempt alarm raised.
    fn connection_rejected(&self, peer: SocketAddr, _why: Rejection) {
        self.record_ip(peer, IpEvent::Connection);
    }

    fn tls_handshake_failed(&self, peer: SocketAddr, _reason: &str) {
        self.record_ip(peer, IpEvent::TlsFailure);
    }

    fn connect_refused(&self, peer: SocketAddr, client_id: Option<&str>, _reason: u8) {
        self.record_ip(peer, IpEvent::Refusal);
        // Without a client ID there is no thing to charge the attempt to;
        // the per-IP count still has it.
        if let Some(id) = client_id {
            self.with_thing(id, |st| {
                st.period.active = true;
                st.period.counts.connection_attempts += 1;
            });
        }
    }

    fn connected(
        &self,
        client_id: &str,
        peer: SocketAddr,
        _protocol: Protocol,
        counters: &Arc<ConnCounters>,
    ) -> Option<Arc<dyn TopicCounters>> {
        self.record_ip(peer, IpEvent::Connect);
        let topics = Arc::new(ConnTopicCounters::new(client_id, &self.filters()));
        self.with_thing(client_id, |st| {
            st.period.active = true;
            st.period.counts.connection_attempts += 1;
            st.period.add_ip(peer.ip());
            st.disconnected_since = None;
            // One connection is the rule, two only during a takeover.
            st.conns.reserve_exact(1);
            st.conns.push(LiveConn::new(peer, counters, topics.clone()));
        });
        // The broker bumps them on every PUBLISH.
        Some(topics)
    }

    fn session_taken_over(&self, _client_id: &str, _old_peer: SocketAddr, _new_peer: SocketAddr) {
        lock(&self.ips).broker.takeovers += 1;
    }

    fn protocol_violation(&self, peer: SocketAddr, _client_id: Option<&str>, _reason: u8) {
        self.record_ip(peer, IpEvent::ProtocolViolation);
    }

    fn disconnected(&self, client_id: &str, peer: SocketAddr, _graceful: bool) {
        lock(&self.ips).broker.disconnects += 1;
        let now = (self.clock)();
        let filters = self.filters();
        self.with_thing(client_id, |st| {
            st.period.active = true;
            st.period.counts.disconnects += 1;
            if let Some(i) = st.conns.iter().position(|c| c.peer == peer) {
                let mut conn = st.conns.swap_remove(i);
                st.period.fold(&mut conn, &filters);
                // Connected during this period, so its address counts.
                st.period.add_ip(conn.peer.ip());
            }
            if st.conns.is_empty() {
                st.disconnected_since = Some(now);
            }
        });
    }

    fn message_dropped(&self, _client_id: &str, _qos: QoS, _reason: DropReason) {
        // A flood to a stuck subscriber drops at the publishers' rate: no lock.
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn authorization_failure(
        &self,
        client_id: &str,
        peer: SocketAddr,
        _action: &str,
        resource: &str,
    ) {
        self.record_ip(peer, IpEvent::AuthorizationFailure);
        let filters = self.filters();
        // A failure with no topic (iot:Connect) matches no filter: NOT_IN.
        let matched = match topic_of_arn(resource) {
            Some(topic) => filters.matching(client_id, topic),
            None => vec![false; filters.dims.len()],
        };
        self.with_thing(client_id, |st| {
            st.period.active = true;
            st.period.add_auth_failure(&filters, &matched);
        });
    }
}
