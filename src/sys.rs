//! Broker statistics on `$SYS/broker/...`, as Mosquitto publishes them:
//! retained, every `sys_interval`, through the broker's own
//! [`Publisher`](wardmq_broker::publisher::Publisher), so only clients whose
//! policies allow `iot:Subscribe` and `iot:Receive` on them get them
//! (clients cannot publish there: see `wardmq_broker::topic::is_broker_only`).
//! A topic is republished only when its value changed, as Mosquitto does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wardmq_broker::codec::QoS;

use crate::metrics::Metrics;

/// Averaging windows of the `load/` topics, in seconds (1, 5, 15 minutes).
const LOAD_WINDOWS: [(u64, &str); 3] = [(60, "1min"), (300, "5min"), (900, "15min")];

/// Counters whose rate the `load/` topics report, per minute.
const LOADS: [&str; 5] = [
    "messages/received",
    "messages/sent",
    "bytes/received",
    "bytes/sent",
    "connections",
];

/// Starts the task; it ends when the broker stops.
pub fn start(metrics: Arc<Metrics>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sys = Sys::default();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // The gauges walk every session: not on a runtime worker.
            let m = metrics.clone();
            let Ok((back, values)) = tokio::task::spawn_blocking(move || {
                let values = sys.values(&m, interval);
                (sys, values)
            })
            .await
            else {
                return;
            };
            sys = back;
            for (topic, value) in values {
                if sys.published.get(&topic) == Some(&value) {
                    continue;
                }
                match metrics.publisher().publish(
                    &topic,
                    value.clone().into_bytes(),
                    QoS::AtMostOnce,
                    true,
                ) {
                    Ok(_) => {
                        sys.published.insert(topic, value);
                    }
                    // The broker stopped: nothing more to report.
                    Err(_) => return,
                }
            }
        }
    })
}

#[derive(Default)]
struct Sys {
    /// Last value published per topic.
    published: HashMap<String, String>,
    /// Counter values at the previous tick, by `LOADS` entry.
    previous: Option<[u64; LOADS.len()]>,
    /// Moving averages per minute, by `LOADS` entry and window.
    averages: [[f64; LOAD_WINDOWS.len()]; LOADS.len()],
}

impl Sys {
    fn values(&mut self, metrics: &Metrics, interval: Duration) -> Vec<(String, String)> {
        let s = metrics.broker.snapshot();
        let t = &s.traffic;
        let mut v = vec![
            (
                "$SYS/broker/version".to_owned(),
                format!("wardmq version {}", env!("CARGO_PKG_VERSION")),
            ),
            (
                "$SYS/broker/uptime".to_owned(),
                format!("{} seconds", metrics.uptime().as_secs()),
            ),
            (
                "$SYS/broker/clients/connected".to_owned(),
                s.connections.to_string(),
            ),
            (
                "$SYS/broker/messages/received".to_owned(),
                t.publishes_in.to_string(),
            ),
            (
                "$SYS/broker/messages/sent".to_owned(),
                t.publishes_out.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/received".to_owned(),
                t.publishes_in.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/sent".to_owned(),
                t.publishes_out.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/dropped".to_owned(),
                s.dropped.iter().sum::<u64>().to_string(),
            ),
            (
                "$SYS/broker/bytes/received".to_owned(),
                t.bytes_in.to_string(),
            ),
            ("$SYS/broker/bytes/sent".to_owned(), t.bytes_out.to_string()),
        ];
        if let Some(g) = metrics.publisher().gauges() {
            v.push((
                "$SYS/broker/clients/total".to_owned(),
                g.sessions.to_string(),
            ));
            v.push((
                "$SYS/broker/clients/disconnected".to_owned(),
                g.sessions.saturating_sub(g.sessions_online).to_string(),
            ));
            v.push((
                "$SYS/broker/subscriptions/count".to_owned(),
                g.subscriptions.to_string(),
            ));
            v.push((
                "$SYS/broker/retained messages/count".to_owned(),
                g.retained_messages.to_string(),
            ));
            v.push((
                "$SYS/broker/store/messages/count".to_owned(),
                g.queued_messages.to_string(),
            ));
            v.push((
                "$SYS/broker/store/messages/bytes".to_owned(),
                g.queued_bytes.to_string(),
            ));
        }
        let now = [
            t.publishes_in,
            t.publishes_out,
            t.bytes_in,
            t.bytes_out,
            s.connected,
        ];
        let secs = interval.as_secs_f64().max(f64::MIN_POSITIVE);
        if let Some(prev) = self.previous {
            for (i, name) in LOADS.iter().enumerate() {
                let per_minute = now[i].saturating_sub(prev[i]) as f64 * 60.0 / secs;
                for (w, (window, label)) in LOAD_WINDOWS.iter().enumerate() {
                    // Exponentially weighted, like Unix load averages and
                    // Mosquitto's `load/` topics.
                    let keep = (-secs / *window as f64).exp();
                    let avg = &mut self.averages[i][w];
                    *avg = per_minute + keep * (*avg - per_minute);
                    v.push((
                        format!("$SYS/broker/load/{name}/{label}"),
                        format!("{:.2}", *avg),
                    ));
                }
            }
        }
        self.previous = Some(now);
        v
    }
}
