//! How long one datapoint period of a large fleet takes: 100,000 things ×
//! 10 behaviours judged and fed to the alarm book. Ignored by default;
//! run with `cargo test -p wardmq-defender --release -- --ignored --nocapture fleet_period`.
//! It prints the time and asserts none (machines differ).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{AlarmBook, AlarmConfig, AlarmKey, ViolationIdGen};
use crate::detect::evaluate::{CompiledBehavior, Measurement};
use crate::detect::model::{Behavior, Timestamp};

#[test]
#[ignore = "timing; run explicitly"]
fn fleet_period_100k_things_10_behaviors() {
    const THINGS: usize = 100_000;
    let behaviors: Vec<(Arc<Behavior>, CompiledBehavior, Arc<str>)> = (0..10)
        .map(|i| {
            let b: Behavior = serde_json::from_value(json!({
                "name": format!("b{i}"), "metric": "aws:num-messages-sent",
                "criteria": {"comparisonOperator": "less-than", "value": {"count": 100 + i},
                             "durationSeconds": 300, "consecutiveDatapointsToAlarm": 2}
            }))
            .expect("parses");
            let c = CompiledBehavior::compile(&b).expect("compiles");
            let name: Arc<str> = Arc::from(b.name.as_str());
            (Arc::new(b), c, name)
        })
        .collect();
    let profile: Arc<str> = Arc::from("sp");
    let things: Vec<Arc<str>> = (0..THINGS)
        .map(|i| Arc::from(format!("thing-{i}")))
        .collect();
    let keys: Vec<Vec<AlarmKey>> = things
        .iter()
        .map(|t| {
            behaviors
                .iter()
                .map(|(_, _, n)| AlarmKey::new(t, &profile, n))
                .collect()
        })
        .collect();
    let mut book = AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(0));

    for period in 0..3u64 {
        let now = Timestamp::from_secs(period * 300);
        let start = Instant::now();
        let mut events = 0usize;
        events += book.sweep(now).len();
        for (i, thing_keys) in keys.iter().enumerate() {
            // 1 % of things misbehave, so the book holds some state.
            let sent = if i % 100 == 0 { 1000 } else { 10 };
            let m = Measurement::Count(sent);
            for ((b, c, _), key) in behaviors.iter().zip(thing_keys) {
                let outcome = c.evaluate(Some(&m), None);
                events += usize::from(book.observe(key, b, outcome, now).is_some());
            }
        }
        let took = start.elapsed();
        println!(
            "period {period}: {} datapoints in {took:?} ({:.0} ns each), {events} events, {} keys tracked",
            THINGS * behaviors.len(),
            took.as_nanos() as f64 / (THINGS * behaviors.len()) as f64,
            book.tracked()
        );
    }
}
