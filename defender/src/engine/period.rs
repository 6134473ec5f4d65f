//! One period's evaluation of the cloud-side metrics, and the commit that
//! every judgment (period or device report) ends in: alarm book and history
//! in one redb transaction, then alerts.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{Compiled, MetricRef, Series};
use super::ml::{MlPoint, FLEET_THING};
use super::Shared;
use crate::alarms::AlarmKey;
use crate::detect::evaluate::{DatapointOutcome, Measurement};
use crate::detect::model::{MetricValue, Timestamp, ViolationEvent};
use crate::detect::percentile::fleet_threshold;
use crate::metrics::{CloudMetric, ThingPeriod};
use crate::store::{retention_cutoff, SeriesKey};

/// The last values of rules whose `durationSeconds` spans several periods,
/// per alarm key. Only things with data this period keep theirs: a gap
/// restarts the window.
pub(crate) type Windows = HashMap<AlarmKey, VecDeque<u64>>;

/// One rule's datapoint for one thing.
pub(crate) struct Judgment {
    pub key: AlarmKey,
    pub profile: usize,
    pub rule: usize,
    pub measurement: Measurement,
}

pub(crate) fn alarm_key(
    thing: &Arc<str>,
    config: &Compiled,
    profile: usize,
    rule: usize,
) -> AlarmKey {
    let p = &config.profiles[profile];
    let r = &p.rules[rule];
    let mut key = AlarmKey::new(thing, &p.name, &r.name);
    key.dimension = r.key_dimension.clone();
    key
}

fn cloud_measurement(period: &ThingPeriod, series: &Series) -> Option<Measurement> {
    let MetricRef::Cloud(metric) = series.metric else {
        return None;
    };
    let dim = series
        .dimension
        .as_ref()
        .map(|(name, op)| (name.as_ref(), *op));
    period.measurement(metric, dim)
}

/// Sums (or, for message sizes, takes the largest of) the last `periods`
/// values; the window moves from `old` to `next`.
fn windowed(
    old: &mut Windows,
    next: &mut Windows,
    key: &AlarmKey,
    periods: usize,
    largest: bool,
    m: Measurement,
) -> Measurement {
    let Measurement::Count(n) = m else {
        return m;
    };
    let mut w = old.remove(key).unwrap_or_default();
    w.push_back(n);
    while w.len() > periods {
        w.pop_front();
    }
    let value = if largest {
        w.iter().copied().max().unwrap_or(n)
    } else {
        w.iter().sum()
    };
    next.insert(key.clone(), w);
    Measurement::Count(value)
}

/// What one period's evaluation did and how long each step took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PeriodStats {
    pub end: Timestamp,
    /// Things with data in the period.
    pub things: usize,
    /// Datapoints judged against a behaviour.
    pub judgments: usize,
    pub events: usize,
    /// Datapoints kept for ListMetricValues.
    pub stored: usize,
    /// Reading the counts (the collector's period close).
    pub collect: Duration,
    /// Resolving profiles, fleet thresholds, the alarm state machine.
    pub judge: Duration,
    /// Saving the alarm book and events (one transaction) and alerting.
    pub commit: Duration,
    /// Writing the kept datapoints and expiring old ones.
    pub store: Duration,
}

/// Closes the collector's period at `now` and judges it.
pub(crate) fn close(shared: &Shared, windows: &mut Windows, now: Timestamp) -> PeriodStats {
    let started = Instant::now();
    let config = shared.config();
    let snapshot = shared.collector.close_period(now);
    let collected = Instant::now();
    let mut judgments = Vec::new();
    let mut stored: Vec<(Arc<str>, &Series, MetricValue)> = Vec::new();
    let mut next_windows = Windows::new();
    let mut ml_points = Vec::new();
    for (thing, period) in &snapshot.things {
        let profiles = shared.profiles_for(&config, thing);
        for &pi in &profiles {
            let profile = &config.profiles[pi];
            for (ri, rule) in profile.rules.iter().enumerate() {
                let Some(m) = cloud_measurement(period, &rule.series) else {
                    continue;
                };
                if rule.compiled.is_machine_learning() {
                    if let Some(value) = m.as_scalar() {
                        ml_points.push(MlPoint {
                            profile: pi,
                            rule: ri,
                            thing: thing.clone(),
                            value,
                        });
                    }
                    continue;
                }
                let key = alarm_key(thing, &config, pi, ri);
                let m = if rule.periods > 1 {
                    let largest =
                        rule.series.metric == MetricRef::Cloud(CloudMetric::MessageByteSize);
                    windowed(windows, &mut next_windows, &key, rule.periods, largest, m)
                } else {
                    m
                };
                judgments.push(Judgment {
                    key,
                    profile: pi,
                    rule: ri,
                    measurement: m,
                });
            }
            for series in &profile.stored {
                if let Some(m) = cloud_measurement(period, series) {
                    stored.push((thing.clone(), series, m.to_metric_value()));
                }
            }
        }
    }
    *windows = next_windows;

    let fleet = fleet_thresholds(shared, &config, &judgments);
    let ml = {
        let mut models = super::lock(&shared.ml);
        ml_points.extend(models.take_reported(&config));
        models.seed(shared, &config, now);
        models.judge(&config, now, &ml_points)
    };
    let mut book = shared.book();
    let mut events = Vec::new();
    for j in &judgments {
        let rule = &config.profiles[j.profile].rules[j.rule];
        let fleet_value = fleet.get(&(j.profile, j.rule)).copied();
        if rule.compiled.statistic().is_some() && fleet_value.is_none() {
            continue;
        }
        let outcome = rule.compiled.evaluate(Some(&j.measurement), fleet_value);
        if outcome == DatapointOutcome::NoData {
            continue;
        }
        events.extend(book.observe(&j.key, &rule.behavior, outcome, now));
    }
    for o in ml {
        if let Some(mut e) = book.observe(&o.key, &o.behavior, o.outcome.clone(), now) {
            o.annotate(&mut e);
            events.push(e);
        }
    }
    events.extend(shared.broker_profile.judge(&mut book, &snapshot, now));
    events.extend(book.sweep(now));
    events.extend(book.invalidate_where(now, |k| !shared.monitors(&config, k)));
    let judged = Instant::now();
    commit(shared, &config, &book, &events);
    drop(book);
    let committed = Instant::now();

    store_datapoints(shared, now, &stored);
    expire(shared, now);
    let stats = PeriodStats {
        end: now,
        things: snapshot.things.len(),
        judgments: judgments.len() + ml_points.len(),
        events: events.len(),
        stored: stored.len(),
        collect: collected - started,
        judge: judged - collected,
        commit: committed - judged,
        store: committed.elapsed(),
    };
    tracing::debug!(?stats, "period judged");
    stats
}

/// Each statistical rule's threshold over the devices of its profile that
/// have a datapoint this period (spec §7.3: nearest rank, see
/// `detect/percentile.rs`). Absent when there are too few devices or a
/// value is negative: the rule then judges nobody this period.
fn fleet_thresholds(
    shared: &Shared,
    config: &Compiled,
    judgments: &[Judgment],
) -> HashMap<(usize, usize), f64> {
    let mut values: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
    for j in judgments {
        let rule = &config.profiles[j.profile].rules[j.rule];
        if rule.compiled.statistic().is_some() {
            if let Some(x) = j.measurement.as_scalar() {
                values.entry((j.profile, j.rule)).or_default().push(x);
            }
        }
    }
    values
        .into_iter()
        .filter_map(|(k, mut v)| {
            let rule = &config.profiles[k.0].rules[k.1];
            let statistic = rule.compiled.statistic()?;
            fleet_threshold(&mut v, statistic, shared.settings.statistical_min_devices)
                .ok()
                .map(|t| (k, t))
        })
        .collect()
}

/// Saves the book with `events` in one transaction, then sends the alerts
/// of those that are not suppressed. A store failure is logged: the
/// alarms stay in memory and are saved with the next commit.
pub(crate) fn commit(
    shared: &Shared,
    config: &Compiled,
    book: &crate::alarms::AlarmBook,
    events: &[ViolationEvent],
) {
    if let Err(error) = shared.db.violations().record(book, events) {
        tracing::error!(%error, "cannot save alarms");
    }
    shared.totals.events(events);
    for e in events {
        tracing::info!(
            thing = %e.thing_name,
            profile = %e.security_profile_name,
            behavior = %e.behavior.name,
            event = ?e.violation_event_type,
            violation = %e.violation_id,
            "violation event"
        );
        // Mitigation acts on things; a fleet-wide alarm has none.
        if let Some(hook) = shared.hook.get().filter(|_| *e.thing_name != *FLEET_THING) {
            hook.committed(e);
        }
        if e.suppressed() {
            continue;
        }
        if let Some(arn) = shared.alert_target(config, &e.security_profile_name) {
            shared.alerts.send(arn, e);
        }
    }
}

/// Keeps the datapoints of every series a profile uses or retains, once
/// per (thing, series).
pub(crate) fn store_datapoints(
    shared: &Shared,
    at: Timestamp,
    points: &[(Arc<str>, &Series, MetricValue)],
) {
    if points.is_empty() {
        return;
    }
    let dims: Vec<String> = points.iter().map(|(_, s, _)| s.store_dimension()).collect();
    let mut rows: Vec<(SeriesKey<'_>, Timestamp, &MetricValue)> = points
        .iter()
        .zip(&dims)
        .map(|((thing, series, value), dim)| {
            (SeriesKey::new(thing, series.metric.name(), dim), at, value)
        })
        .collect();
    rows.sort_unstable_by(|a, b| {
        (a.0.thing, a.0.metric, a.0.dimension).cmp(&(b.0.thing, b.0.metric, b.0.dimension))
    });
    rows.dedup_by(|a, b| a.0 == b.0);
    if let Err(error) = shared.db.metrics().put_period(&rows) {
        tracing::error!(%error, "cannot store metric datapoints");
    }
}

fn expire(shared: &Shared, now: Timestamp) {
    let s = &shared.settings;
    if let Err(error) = shared
        .db
        .metrics()
        .expire(retention_cutoff(now, s.metric_retention))
    {
        tracing::error!(%error, "cannot expire metric datapoints");
    }
    if let Err(error) = shared
        .db
        .violations()
        .expire_events(retention_cutoff(now, s.violation_retention))
    {
        tracing::error!(%error, "cannot expire violation events");
    }
}
