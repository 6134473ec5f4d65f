//! What `GET /metrics` reports: the broker's counters and gauges, the
//! defender's evaluation totals, alert delivery and audit tasks, in the
//! Prometheus text format. Everything is read at scrape time from counters
//! that exist anyway; see ARCHITECTURE.md "Monitoring" for the names.

pub mod broker;
mod defender;
pub mod exposition;

use std::sync::Arc;
use std::time::Instant;

use wardmq_broker::observer::{Rejection, LATENCY_BOUNDS_US};
use wardmq_broker::publisher::Publisher;
use wardmq_defender::alerts::AlertRouter;
use wardmq_defender::audit::Audit;
use wardmq_defender::engine::Defender;
use wardmq_defender::mitigation::Mitigation;

use crate::defend::Defend;

use broker::{refusal_name, BrokerCounters, DROP_REASONS};
use exposition::{Exposition, Kind};

/// Everything a scrape reads.
pub struct Metrics {
    pub broker: Arc<BrokerCounters>,
    publisher: Publisher,
    defender: Option<Defender>,
    alerts: Option<Arc<AlertRouter>>,
    audit: Option<Audit>,
    mitigation: Option<Mitigation>,
    started: Instant,
}

impl Metrics {
    /// `broker` must be (part of) the observer the broker was started with,
    /// and `publisher` the handle bound to it.
    pub fn new(broker: Arc<BrokerCounters>, publisher: Publisher) -> Metrics {
        Metrics {
            broker,
            publisher,
            defender: None,
            alerts: None,
            audit: None,
            mitigation: None,
            started: Instant::now(),
        }
    }

    pub fn with_defender(mut self, d: &Defend) -> Self {
        self.defender = Some(d.defender.clone());
        self.alerts = Some(d.alerts.clone());
        self.audit = Some(d.audit.clone());
        self.mitigation = Some(d.mitigation.clone());
        self
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// The whole exposition.
    pub fn render(&self) -> String {
        let mut e = Exposition::new();
        self.write_broker(&mut e);
        if let Some(d) = &self.defender {
            defender::write(&mut e, d, self.alerts.as_deref(), self.audit.as_ref());
        }
        if let Some(m) = &self.mitigation {
            defender::write_mitigation(&mut e, m);
        }
        e.finish()
    }

    fn write_broker(&self, e: &mut Exposition) {
        let s = self.broker.snapshot();
        let t = &s.traffic;
        e.family(
            "wardmq_build_info",
            "Version of the running broker.",
            Kind::Gauge,
        )
        .sample(
            "wardmq_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        e.single(
            "wardmq_uptime_seconds",
            "Seconds since the broker started.",
            Kind::Gauge,
            self.uptime().as_secs_f64(),
        );
        e.single(
            "wardmq_connections",
            "Client connections with a session (after CONNACK).",
            Kind::Gauge,
            s.connections as f64,
        );
        e.single(
            "wardmq_connections_accepted",
            "Network connections accepted, before TLS and CONNECT.",
            Kind::Counter,
            s.accepted as f64,
        );
        e.family(
            "wardmq_connections_rejected",
            "Network connections closed right after accept, before TLS, by reason.",
            Kind::Counter,
        );
        for (why, n) in Rejection::ALL.iter().zip(s.rejected) {
            e.sample(
                "wardmq_connections_rejected_total",
                &[("reason", why.as_str())],
                n as f64,
            );
        }
        e.single(
            "wardmq_connects",
            "CONNECTs accepted (a session served).",
            Kind::Counter,
            s.connected as f64,
        );
        e.family(
            "wardmq_connects_refused",
            "CONNECTs refused, by CONNACK reason.",
            Kind::Counter,
        );
        for (code, n) in &s.refused {
            let hex = format!("0x{code:02x}");
            e.sample(
                "wardmq_connects_refused_total",
                &[("reason", refusal_name(*code)), ("code", &hex)],
                *n as f64,
            );
        }
        e.family(
            "wardmq_tls_handshake_failures",
            "Device TLS handshakes that failed, by reason.",
            Kind::Counter,
        );
        for (reason, n) in &s.tls_failures {
            e.sample(
                "wardmq_tls_handshake_failures_total",
                &[("reason", reason)],
                *n as f64,
            );
        }
        e.family(
            "wardmq_disconnects",
            "Connections that ended, graceful (DISCONNECT 0x00) or not.",
            Kind::Counter,
        )
        .sample(
            "wardmq_disconnects_total",
            &[("kind", "graceful")],
            s.disconnects_graceful as f64,
        )
        .sample(
            "wardmq_disconnects_total",
            &[("kind", "other")],
            s.disconnects_other as f64,
        );
        e.single(
            "wardmq_session_takeovers",
            "Connections closed because their client ID connected again.",
            Kind::Counter,
            s.takeovers as f64,
        );
        e.single(
            "wardmq_protocol_violations",
            "Connections closed for breaking the MQTT protocol.",
            Kind::Counter,
            s.protocol_violations as f64,
        );
        e.family(
            "wardmq_authorization_failures",
            "Requests a policy denied, by IoT action.",
            Kind::Counter,
        );
        for (action, n) in &s.authorization_failures {
            e.sample(
                "wardmq_authorization_failures_total",
                &[("action", action)],
                *n as f64,
            );
        }
        e.single(
            "wardmq_messages_received",
            "PUBLISH packets received from clients.",
            Kind::Counter,
            t.publishes_in as f64,
        );
        e.single(
            "wardmq_messages_sent",
            "PUBLISH packets sent to clients.",
            Kind::Counter,
            t.publishes_out as f64,
        );
        e.single(
            "wardmq_bytes_received",
            "Payload bytes of PUBLISH packets received.",
            Kind::Counter,
            t.bytes_in as f64,
        );
        e.single(
            "wardmq_bytes_sent",
            "Payload bytes of PUBLISH packets sent.",
            Kind::Counter,
            t.bytes_out as f64,
        );
        e.family(
            "wardmq_messages_dropped",
            "Messages for a session not delivered, by reason.",
            Kind::Counter,
        );
        for ((_, label), n) in DROP_REASONS.iter().zip(s.dropped) {
            e.sample(
                "wardmq_messages_dropped_total",
                &[("reason", label)],
                n as f64,
            );
        }
        let bounds: Vec<f64> = LATENCY_BOUNDS_US
            .iter()
            .map(|us| *us as f64 / 1e6)
            .collect();
        e.family(
            "wardmq_publish_route_seconds",
            "Time to authorize, match and queue a client PUBLISH for every subscriber.",
            Kind::Histogram,
        )
        .histogram(
            "wardmq_publish_route_seconds",
            &[],
            &bounds,
            &t.route_buckets,
            t.route_sum_ns as f64 / 1e9,
        );
        if let Some(g) = self.publisher.gauges() {
            e.single(
                "wardmq_sessions",
                "Sessions held, connected or not.",
                Kind::Gauge,
                g.sessions as f64,
            );
            e.single(
                "wardmq_sessions_online",
                "Sessions with a live connection.",
                Kind::Gauge,
                g.sessions_online as f64,
            );
            e.single(
                "wardmq_sessions_expired",
                "Sessions ended by their expiry interval.",
                Kind::Counter,
                g.sessions_expired as f64,
            );
            e.single(
                "wardmq_subscriptions",
                "Subscriptions held (client, filter).",
                Kind::Gauge,
                g.subscriptions as f64,
            );
            e.single(
                "wardmq_retained_messages",
                "Retained messages held.",
                Kind::Gauge,
                g.retained_messages as f64,
            );
            e.single(
                "wardmq_queued_messages",
                "Messages waiting in session queues (unsent or unacknowledged).",
                Kind::Gauge,
                g.queued_messages as f64,
            );
            e.single(
                "wardmq_queued_bytes",
                "Payload bytes waiting in session queues.",
                Kind::Gauge,
                g.queued_bytes as f64,
            );
            e.single(
                "wardmq_store_write_failures",
                "Session/retained store writes that could not be made durable (refused to clients).",
                Kind::Counter,
                g.store_write_failures as f64,
            );
            e.single(
                "wardmq_store_degraded",
                "1 while the session/retained store's last write failed (a full disk, an I/O error).",
                Kind::Gauge,
                f64::from(u8::from(g.store_degraded)),
            );
        }
    }
}
