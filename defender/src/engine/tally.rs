//! Running totals of what evaluation did since start, for the Prometheus
//! exposition. Updated once per period or per commit, never per PUBLISH,
//! so a mutex around the per-behaviour map costs nothing that matters.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::lock;
use super::period::PeriodStats;
use crate::detect::model::{ViolationEvent, ViolationEventType};

/// Upper bounds, in seconds, of the evaluation-duration histogram buckets
/// (the `+Inf` bucket is implicit).
pub const EVALUATION_BOUNDS_S: [f64; 10] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// (security profile, behaviour, event type) → events.
pub type ViolationCounts = BTreeMap<(String, String, &'static str), u64>;

/// Totals since the defender started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Periods judged.
    pub evaluations: u64,
    /// Per bucket (not cumulative), the last one above every bound.
    pub evaluation_buckets: [u64; EVALUATION_BOUNDS_S.len() + 1],
    pub evaluation_seconds_sum: f64,
    /// Datapoints judged against a behaviour, in periods.
    pub datapoints: u64,
    /// Things with data, summed over periods.
    pub things_evaluated: u64,
    /// Datapoints kept for ListMetricValues.
    pub datapoints_stored: u64,
    pub violations: ViolationCounts,
}

#[derive(Default)]
pub(crate) struct Totals(Mutex<Tally>);

impl Totals {
    pub(crate) fn period(&self, stats: &PeriodStats) {
        let took = stats.collect + stats.judge + stats.commit + stats.store;
        let mut t = lock(&self.0);
        t.evaluations += 1;
        let s = took.as_secs_f64();
        let i = EVALUATION_BOUNDS_S
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(EVALUATION_BOUNDS_S.len());
        t.evaluation_buckets[i] += 1;
        t.evaluation_seconds_sum += s;
        t.datapoints += stats.judgments as u64;
        t.things_evaluated += stats.things as u64;
        t.datapoints_stored += stats.stored as u64;
    }

    pub(crate) fn events(&self, events: &[ViolationEvent]) {
        if events.is_empty() {
            return;
        }
        let mut t = lock(&self.0);
        for e in events {
            let key = (
                e.security_profile_name.clone(),
                e.behavior.name.clone(),
                event_type(e.violation_event_type),
            );
            *t.violations.entry(key).or_default() += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> Tally {
        lock(&self.0).clone()
    }
}

/// The AWS spelling of an event type (a Prometheus label value).
pub fn event_type(t: ViolationEventType) -> &'static str {
    match t {
        ViolationEventType::InAlarm => "in-alarm",
        ViolationEventType::AlarmCleared => "alarm-cleared",
        ViolationEventType::AlarmInvalidated => "alarm-invalidated",
    }
}
