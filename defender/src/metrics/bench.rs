//! Memory and time for a fleet of 100,000 things. Ignored by default; run
//! with `cargo test -p wardmq-defender --release -- --ignored --nocapture metrics::bench`.
//! They print their figures and assert nothing machines disagree on.

use std::mem::size_of;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use wardmq_broker::codec::Protocol;
use wardmq_broker::observer::{ConnCounters, Observer};

use super::thing::{LiveConn, ThingState};
use super::{Collector, CollectorConfig};
use crate::detect::model::Timestamp;

const THINGS: usize = 100_000;

fn fleet() -> (Collector, Vec<Arc<ConnCounters>>) {
    let c = Collector::new(CollectorConfig::default());
    let counters = (0..THINGS)
        .map(|i| {
            let k = Arc::new(ConnCounters::default());
            let peer = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1883));
            c.connected(&format!("thing-{i:06}"), peer, Protocol::V5, &k);
            k
        })
        .collect();
    (c, counters)
}

/// An estimate from the structures' sizes: hashbrown stores (key, value)
/// inline plus one control byte per bucket, at a load factor of 7/8 at
/// best and 7/16 just after growing (we take the middle, ~0.65).
#[test]
#[ignore = "measurement; run explicitly"]
fn bytes_per_thing_100k() {
    let (c, _counters) = fleet();
    assert_eq!(c.tracked(), THINGS);
    let entry = size_of::<Arc<str>>() + size_of::<ThingState>() + 1;
    let table = entry as f64 / 0.65;
    let name = 16 + "thing-000000".len();
    let conn = size_of::<LiveConn>();
    // The per-period address vector (one address, allocated at connect).
    let ips = size_of::<std::net::IpAddr>();
    let connected = table + (name + conn + ips) as f64;
    let disconnected = table + name as f64;
    println!(
        "ThingState {} B, LiveConn {} B; per connected thing ≈ {connected:.0} B \
         ({:.1} MB for {THINGS}); per disconnected thing ≈ {disconnected:.0} B \
         (ConnCounters, owned by the broker: {} B)",
        size_of::<ThingState>(),
        conn,
        connected * THINGS as f64 / 1e6,
        size_of::<ConnCounters>(),
    );
}

#[test]
#[ignore = "timing; run explicitly"]
fn close_period_100k_things() {
    let (c, counters) = fleet();
    for round in 1..=3u64 {
        for k in &counters {
            k.publishes_in.fetch_add(3, Ordering::Relaxed);
            k.max_message_bytes.fetch_max(100, Ordering::Relaxed);
            k.publishes_out.fetch_add(1, Ordering::Relaxed);
        }
        let t = Instant::now();
        let s = c.close_period(Timestamp::from_secs(round * 300));
        let took = t.elapsed();
        let points = s.datapoints().count();
        println!("close_period, {THINGS} connected things: {took:?} ({points} datapoints)");
        assert_eq!(s.things.len(), THINGS);
    }
}
