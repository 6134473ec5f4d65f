//! The broker-level profile (our extension): per source address and
//! broker-wide counts of connection attempts, TLS and CONNECT failures and
//! authorization failures, judged like any behaviour, so a flood of fresh
//! client IDs or unknown certificates raises an alarm with no thing behind
//! it. Its violations appear in the Violations API under the profile name
//! [`PROFILE`], with `thingName` `ip:ADDRESS` or [`BROKER_THING`].

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use crate::alarms::{AlarmBook, AlarmKey};
use crate::detect::evaluate::{CompiledBehavior, Measurement};
use crate::detect::model::{Behavior, Timestamp, ViolationEvent};
use crate::metrics::{BrokerCounts, IpCounts, PeriodSnapshot};
use crate::settings::{BrokerLimits, BrokerProfileSettings};

pub const PROFILE: &str = "wardmq:broker";
pub const BROKER_THING: &str = "$broker";

struct Rule {
    name: Arc<str>,
    behavior: Arc<Behavior>,
    compiled: CompiledBehavior,
    count: Count,
}

/// What a rule counts: something one address did, or something only the
/// broker as a whole has (a dropped message has no culprit address).
#[derive(Clone, Copy)]
enum Count {
    Ip(fn(&IpCounts) -> u64),
    Broker(fn(&BrokerCounts) -> u64),
}

pub(crate) struct BrokerProfile {
    profile: Arc<str>,
    per_ip: Vec<Rule>,
    broker: Vec<Rule>,
    pub alert_target_arn: Option<String>,
}

type Counter = (&'static str, &'static str, fn(&IpCounts) -> u64);

const COUNTERS: [Counter; 4] = [
    (
        "connection-attempts",
        "wardmq:num-connection-attempts",
        |c| c.connections,
    ),
    ("tls-failures", "wardmq:num-tls-failures", |c| {
        c.tls_handshake_failures
    }),
    ("connect-failures", "wardmq:num-connect-failures", |c| {
        c.connect_refusals
    }),
    (
        "authorization-failures",
        "wardmq:num-authorization-failures",
        |c| c.authorization_failures,
    ),
];

/// Messages the broker did not deliver (a subscriber's queue full, expired,
/// too large for the client, receive denied): broker-wide only.
const DROPPED: (&str, &str) = ("messages-dropped", "wardmq:num-messages-dropped");

fn rule(name: String, metric: &str, max: Option<u64>, count: Count) -> Option<Rule> {
    let behavior: Behavior = serde_json::from_value(json!({
        "name": name,
        "metric": metric,
        "criteria": {"comparisonOperator": "less-than-equals",
                     "value": {"count": max?}, "durationSeconds": 300}
    }))
    .ok()?;
    let compiled = CompiledBehavior::compile(&behavior).ok()?;
    Some(Rule {
        name: name.into(),
        behavior: Arc::new(behavior),
        compiled,
        count,
    })
}

fn rules(scope: &str, limits: &BrokerLimits) -> Vec<Rule> {
    let maxima = [
        limits.connection_attempts,
        limits.tls_failures,
        limits.connect_failures,
        limits.authorization_failures,
    ];
    COUNTERS
        .iter()
        .zip(maxima)
        .filter_map(|(&(name, metric, count), max)| {
            rule(format!("{name}-{scope}"), metric, max, Count::Ip(count))
        })
        .collect()
}

impl BrokerProfile {
    pub fn new(settings: &BrokerProfileSettings) -> Self {
        Self {
            profile: PROFILE.into(),
            per_ip: rules("per-ip", &settings.per_ip),
            broker: rules("broker", &settings.broker)
                .into_iter()
                .chain(rule(
                    format!("{}-broker", DROPPED.0),
                    DROPPED.1,
                    settings.broker_messages_dropped,
                    Count::Broker(|b| b.messages_dropped),
                ))
                .collect(),
            alert_target_arn: settings.alert_target_arn.clone(),
        }
    }

    /// Judges one period. An address in alarm that did nothing this period
    /// gets a zero datapoint, so its alarm clears once the flood stops.
    pub fn judge(
        &self,
        book: &mut AlarmBook,
        snapshot: &PeriodSnapshot,
        now: Timestamp,
    ) -> Vec<ViolationEvent> {
        let mut events = Vec::new();
        let count = |rule: &Rule, ip: &IpCounts| match rule.count {
            Count::Ip(f) => f(ip),
            Count::Broker(f) => f(&snapshot.broker),
        };
        let mut observe = |book: &mut AlarmBook, thing: &Arc<str>, rule: &Rule, n: u64| {
            let key = AlarmKey::new(thing, &self.profile, &rule.name);
            let outcome = rule.compiled.evaluate(Some(&Measurement::Count(n)), None);
            events.extend(book.observe(&key, &rule.behavior, outcome, now));
        };
        let mut seen = HashSet::new();
        for (ip, counts) in &snapshot.per_ip {
            let thing: Arc<str> = format!("ip:{ip}").into();
            for rule in &self.per_ip {
                observe(book, &thing, rule, count(rule, counts));
            }
            seen.insert(thing);
        }
        let broker: Arc<str> = BROKER_THING.into();
        for rule in &self.broker {
            observe(book, &broker, rule, count(rule, &snapshot.broker.totals));
        }
        let quiet: Vec<AlarmKey> = book
            .keys()
            .filter(|k| *k.security_profile_name == *PROFILE && !seen.contains(&k.thing_name))
            .filter(|k| *k.thing_name != *BROKER_THING)
            .cloned()
            .collect();
        for key in quiet {
            if let Some(rule) = self.per_ip.iter().find(|r| r.name == key.behavior_name) {
                observe(book, &key.thing_name, rule, 0);
            }
        }
        events
    }

    /// Whether an alarm key of this profile is still one of its rules.
    pub fn monitors(&self, behavior: &str) -> bool {
        self.per_ip
            .iter()
            .chain(&self.broker)
            .any(|r| &*r.name == behavior)
    }
}
