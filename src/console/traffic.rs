//! Fleet traffic for the overview: which clients are connected and how many
//! messages and bytes went through, read from the counters every connection
//! already keeps (an `Observer`, so the PUBLISH path gains nothing).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use wardmq_broker::codec::Protocol;
use wardmq_broker::observer::{ConnCounters, Observer, TopicCounters};

/// Samples kept for the overview's rate chart, one per `SAMPLE_EVERY`.
const SAMPLES: usize = 120;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Messages and bytes in and out, summed over connections.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Totals {
    fn add(&mut self, c: &ConnCounters) {
        self.messages_in += c.publishes_in.load(Ordering::Relaxed);
        self.messages_out += c.publishes_out.load(Ordering::Relaxed);
        self.bytes_in += c.bytes_in.load(Ordering::Relaxed);
        self.bytes_out += c.bytes_out.load(Ordering::Relaxed);
    }
}

/// Per-second rates between two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub messages_in: f64,
    pub messages_out: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
}

#[derive(Default)]
struct Inner {
    /// Live connections by (client ID, peer).
    open: HashMap<(Arc<str>, SocketAddr), Arc<ConnCounters>>,
    /// What closed connections counted, so totals never go back.
    closed: Totals,
    samples: VecDeque<(Instant, Totals)>,
}

#[derive(Default)]
pub struct Traffic {
    inner: Mutex<Inner>,
}

impl Traffic {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn connected_count(&self) -> usize {
        self.lock().open.len()
    }

    pub fn is_connected(&self, client_id: &str) -> bool {
        self.lock().open.keys().any(|(id, _)| **id == *client_id)
    }

    fn totals(inner: &Inner) -> Totals {
        let mut t = inner.closed;
        for c in inner.open.values() {
            t.add(c);
        }
        t
    }

    /// Records the current totals; `run_sampler` calls it every
    /// `SAMPLE_EVERY`.
    pub fn sample(&self) {
        let mut inner = self.lock();
        let current = Self::totals(&inner);
        inner.samples.push_back((Instant::now(), current));
        while inner.samples.len() > SAMPLES {
            inner.samples.pop_front();
        }
    }

    /// The rate series (seconds before now, oldest first) and the rate
    /// since the newest sample at least a second old.
    pub fn rates(&self) -> (Vec<(f64, Rates)>, Rates) {
        let inner = self.lock();
        let now = Instant::now();
        let current = Self::totals(&inner);
        let mut series = Vec::new();
        let mut prev: Option<&(Instant, Totals)> = None;
        for s in &inner.samples {
            if let Some(p) = prev {
                series.push((now.duration_since(s.0).as_secs_f64(), rate(p, s)));
            }
            prev = Some(s);
        }
        let latest = inner
            .samples
            .iter()
            .rev()
            .find(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1))
            .map(|s| rate(s, &(now, current)))
            .unwrap_or_default();
        (series, latest)
    }
}

/// Samples `traffic` every `SAMPLE_EVERY` until the runtime stops.
pub async fn run_sampler(traffic: Arc<Traffic>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tick.tick().await;
        traffic.sample();
    }
}

fn rate(a: &(Instant, Totals), b: &(Instant, Totals)) -> Rates {
    let secs = b.0.duration_since(a.0).as_secs_f64().max(0.001);
    let d = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
    Rates {
        messages_in: d(a.1.messages_in, b.1.messages_in),
        messages_out: d(a.1.messages_out, b.1.messages_out),
        bytes_in: d(a.1.bytes_in, b.1.bytes_in),
        bytes_out: d(a.1.bytes_out, b.1.bytes_out),
    }
}

impl Observer for Traffic {
    fn connected(
        &self,
        client_id: &str,
        peer: SocketAddr,
        _protocol: Protocol,
        counters: &Arc<ConnCounters>,
    ) -> Option<Arc<dyn TopicCounters>> {
        self.lock()
            .open
            .insert((client_id.into(), peer), counters.clone());
        None
    }

    fn disconnected(&self, client_id: &str, peer: SocketAddr, _graceful: bool) {
        let mut inner = self.lock();
        if let Some(c) = inner.open.remove(&(Arc::from(client_id), peer)) {
            inner.closed.add(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_connections_and_keeps_closed_totals() {
        let t = Traffic::default();
        let peer: SocketAddr = ([127, 0, 0, 1], 1000).into();
        let c = Arc::new(ConnCounters::default());
        t.connected("dev", peer, Protocol::V5, &c);
        c.publishes_in.store(3, Ordering::Relaxed);
        assert_eq!(t.connected_count(), 1);
        assert!(t.is_connected("dev"));
        t.disconnected("dev", peer, true);
        assert_eq!(t.connected_count(), 0);
        assert_eq!(Traffic::totals(&t.lock()).messages_in, 3);
    }

    #[test]
    fn rates_between_samples() {
        let t = Traffic::default();
        let peer: SocketAddr = ([127, 0, 0, 1], 1000).into();
        let c = Arc::new(ConnCounters::default());
        t.connected("dev", peer, Protocol::V5, &c);
        t.sample();
        c.publishes_in.store(50, Ordering::Relaxed);
        t.sample();
        let (series, _) = t.rates();
        assert_eq!(series.len(), 1);
        assert!(series[0].1.messages_in > 0.0);
    }
}
