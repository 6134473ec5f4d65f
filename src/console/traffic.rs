//! Fleet traffic for the overview: which clients are connected and how many
//! messages and bytes went through per second, sampled from the broker
//! counters `/metrics` keeps (one observer tracks live connections for both).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::metrics::broker::BrokerCounters;

/// Samples kept for the overview's rate chart, one per `SAMPLE_EVERY`.
const SAMPLES: usize = 120;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Messages and bytes in and out since start.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Per-second rates between two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub messages_in: f64,
    pub messages_out: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
}

pub struct Traffic {
    counters: Arc<BrokerCounters>,
    samples: Mutex<VecDeque<(Instant, Totals)>>,
}

impl Traffic {
    pub fn new(counters: Arc<BrokerCounters>) -> Self {
        Self {
            counters,
            samples: Mutex::default(),
        }
    }

    fn samples(&self) -> MutexGuard<'_, VecDeque<(Instant, Totals)>> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn connected_count(&self) -> usize {
        self.counters.traffic().0
    }

    pub fn is_connected(&self, client_id: &str) -> bool {
        self.counters.is_connected(client_id)
    }

    fn totals(&self) -> Totals {
        let t = self.counters.traffic().1;
        Totals {
            messages_in: t.publishes_in,
            messages_out: t.publishes_out,
            bytes_in: t.bytes_in,
            bytes_out: t.bytes_out,
        }
    }

    /// Records the current totals; `run_sampler` calls it every
    /// `SAMPLE_EVERY`.
    pub fn sample(&self) {
        let current = self.totals();
        let mut samples = self.samples();
        samples.push_back((Instant::now(), current));
        while samples.len() > SAMPLES {
            samples.pop_front();
        }
    }

    /// The rate series (seconds before now, oldest first) and the rate
    /// since the newest sample at least a second old.
    pub fn rates(&self) -> (Vec<(f64, Rates)>, Rates) {
        let current = self.totals();
        let samples = self.samples();
        let now = Instant::now();
        let mut series = Vec::new();
        let mut prev: Option<&(Instant, Totals)> = None;
        for s in samples.iter() {
            if let Some(p) = prev {
                series.push((now.duration_since(s.0).as_secs_f64(), rate(p, s)));
            }
            prev = Some(s);
        }
        let latest = samples
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;

    use wardmq_broker::codec::Protocol;
    use wardmq_broker::observer::{ConnCounters, Observer};

    use super::*;

    fn traffic() -> (Arc<BrokerCounters>, Traffic) {
        let counters = Arc::new(BrokerCounters::default());
        (counters.clone(), Traffic::new(counters))
    }

    #[test]
    fn counts_connections_and_keeps_closed_totals() {
        let (b, t) = traffic();
        let peer: SocketAddr = ([127, 0, 0, 1], 1000).into();
        let c = Arc::new(ConnCounters::default());
        b.connected("dev", peer, Protocol::V5, &c);
        c.publishes_in.store(3, Ordering::Relaxed);
        assert_eq!(t.connected_count(), 1);
        assert!(t.is_connected("dev"));
        b.disconnected("dev", peer, true);
        assert_eq!(t.connected_count(), 0);
        assert_eq!(t.totals().messages_in, 3);
    }

    #[test]
    fn rates_between_samples() {
        let (b, t) = traffic();
        let peer: SocketAddr = ([127, 0, 0, 1], 1000).into();
        let c = Arc::new(ConnCounters::default());
        b.connected("dev", peer, Protocol::V5, &c);
        t.sample();
        c.publishes_in.store(50, Ordering::Relaxed);
        t.sample();
        let (series, _) = t.rates();
        assert_eq!(series.len(), 1);
        assert!(series[0].1.messages_in > 0.0);
    }
}
