//! One period of a fleet of 100,000 things × 10 behaviours through the
//! whole engine: collector close, profile resolution, fleet percentile,
//! alarm state machine, the redb commit and the datapoints kept. Ignored
//! by default; run with
//! `cargo test -p wardmq-defender --release -- --ignored --nocapture engine::bench`.
//! It prints its figures and asserts only what holds on any machine.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;
use wardmq_broker::codec::Protocol;
use wardmq_broker::observer::ConnCounters;

use super::*;
use crate::detect::model::Behavior;

const THINGS: usize = 100_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn behaviors() -> Vec<Behavior> {
    let count = |name: &str, metric: &str, op: &str, n: u64| {
        json!({"name": name, "metric": metric,
               "criteria": {"comparisonOperator": op, "value": {"count": n}, "durationSeconds": 300}})
    };
    [
        count("sent", "aws:num-messages-sent", "less-than", 90),
        count("received", "aws:num-messages-received", "less-than", 1000),
        count("authz", "aws:num-authorization-failures", "less-than", 5),
        count("attempts", "aws:num-connection-attempts", "less-than", 10),
        count("disconnects", "aws:num-disconnects", "less-than", 10),
        json!({"name": "size", "metric": "aws:message-byte-size",
               "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": 4096}}}),
        json!({"name": "ip", "metric": "aws:source-ip-address",
               "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["10.0.0.0/8"]}}}),
        json!({"name": "offline", "metric": "aws:disconnect-duration",
               "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": 60}}}),
        json!({"name": "p90", "metric": "aws:num-messages-sent",
               "criteria": {"comparisonOperator": "less-than-equals",
                            "statisticalThreshold": {"statistic": "p90"}, "durationSeconds": 300}}),
        count("sent-10min", "aws:num-messages-sent", "less-than", 180)
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o["name"] = json!("sent-10min");
                o["criteria"]["durationSeconds"] = json!(600);
                serde_json::Value::Object(o)
            })
            .unwrap_or_default(),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).expect("behavior"))
    .collect()
}

#[derive(Default)]
struct Discard;

impl AlertSender for Discard {
    fn send(&self, _: &str, _: &ViolationEvent) {}
}

#[test]
#[ignore = "measurement; run explicitly"]
fn fleet_period_100k_things_10_behaviours() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = DefenderDb::open(dir.path()).expect("db");
    let before = rss_kib();
    let d =
        Defender::start(DefenderSettings::default(), db, None, Arc::new(Discard)).expect("start");
    d.set_config(&DetectConfig {
        profiles: vec![ProfileConfig {
            name: "fleet".into(),
            behaviors: behaviors(),
            targets: vec![Target::AllThings],
            alert_target_arn: Some("arn:aws:sns:us-east-1:1:x".into()),
            retain: Vec::new(),
        }],
        ..DetectConfig::default()
    });
    let observer = d.observer();
    let counters: Vec<Arc<ConnCounters>> = (0..THINGS)
        .map(|i| {
            let k = Arc::new(ConnCounters::default());
            let peer = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1883));
            observer.connected(&format!("thing-{i:06}"), peer, Protocol::V5, &k);
            k
        })
        .collect();
    let connected = rss_kib();
    for period in 0..3u64 {
        for (i, k) in counters.iter().enumerate() {
            // 1% of the fleet sends too much; the rest 10..=89 messages.
            let n = if i % 100 == 0 {
                500
            } else {
                10 + (i as u64 + period) % 80
            };
            k.publishes_in.fetch_add(n, Ordering::Relaxed);
            k.max_message_bytes.fetch_max(256, Ordering::Relaxed);
        }
        let s = d.close_period_now();
        println!(
            "period {period}: {} things, {} judgments, {} events, {} datapoints kept; \
             collect {:?}, judge {:?}, commit {:?}, store {:?}; total {:?}",
            s.things,
            s.judgments,
            s.events,
            s.stored,
            s.collect,
            s.judge,
            s.commit,
            s.store,
            s.collect + s.judge + s.commit + s.store
        );
        assert_eq!(s.things, THINGS);
    }
    let after = rss_kib();
    println!(
        "RSS: {:.0} B per connected thing (collector, ConnCounters included); \
         {:.0} B per thing after three periods (alarms, windows, redb cache)",
        (connected.saturating_sub(before) * 1024) as f64 / THINGS as f64,
        (after.saturating_sub(before) * 1024) as f64 / THINGS as f64,
    );
    let active = d
        .list_active_violations(&ViolationFilter::default(), Some(250), None)
        .expect("list");
    assert!(!active.items.is_empty(), "the noisy 1% is in alarm");
    d.shutdown();
}
