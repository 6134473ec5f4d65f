//! ML Detect in the live engine: one [`Detector`] per (profile, ML
//! behaviour), the same code `wardmq defender replay` runs, fed each
//! period's datapoints on the data clock. Its judgements go through the
//! alarm state machine like any rule's: one per device, and one for the
//! profile as a whole under the reserved thing name [`FLEET_THING`] when
//! the fleet gate folds many devices' alarms into one.
//!
//! Cloud-side datapoints are the period's counts; device-side and custom
//! ones are the latest value a device reported during the period (a
//! device reports once per period, like AWS's five-minute reports).
//!
//! The data clock: period n (the one ending at n × `datapoint_period` of
//! wall time) starts at (n − 1) × `ml_period_secs` data-clock seconds, so a
//! model's day is 86 400 / `ml_period_secs` periods at any real period.
//! Models live in memory. At the first period after a start they are
//! rebuilt from the datapoints the metric store kept (as far back as the
//! training window and the retention allow), replayed period by period
//! without raising alarms, so a restart costs no collection time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::config::{Compiled, MetricRef};
use super::period::alarm_key;
use super::Shared;
use crate::alarms::AlarmKey;
use crate::detect::evaluate::DatapointOutcome;
use crate::detect::model::{Behavior, MetricValue, Timestamp, ViolationEvent};
use crate::ml::clock;
use crate::ml::detector::TrainingSummary;
use crate::ml::{
    workload, Detector, DetectorConfig, Judgement, Level, MetricKind, ModelStatus, PeriodResult,
};
use crate::settings::DefenderSettings;

/// The thing name of a profile-level (fleet-wide) ML alarm: it holds the
/// alarm of its profile and behaviour when many of the profile's devices
/// turn anomalous at the same datapoint. Thing names cannot contain `$`
/// (the registry's and the report topic's rule), so no device has it; a
/// client that connects with this ID is left out of the models.
pub const FLEET_THING: &str = "$fleet";

/// One thing's value for one ML behaviour in the period being closed.
pub(crate) struct MlPoint {
    pub profile: usize,
    pub rule: usize,
    pub thing: Arc<str>,
    pub value: f64,
}

/// A model's (profile, behaviour) names.
type ModelKey = (Arc<str>, Arc<str>);

/// One period's datapoints of one behaviour, by thing.
type Values = Vec<(Arc<str>, f64)>;

/// One ML behaviour's judgement of a period, before it becomes outcomes.
struct Judged {
    profile: usize,
    rule: usize,
    confidence: Level,
    result: PeriodResult,
    values: Values,
}

/// One datapoint for the alarm state machine.
pub(crate) struct MlOutcome {
    pub key: AlarmKey,
    pub behavior: Arc<Behavior>,
    pub outcome: DatapointOutcome,
    pub judgement: Judgement,
}

impl MlOutcome {
    /// Adds the judgement's score, observed and expected value to an event
    /// this datapoint caused (our extension of the additional info).
    pub fn annotate(&self, event: &mut ViolationEvent) {
        let info = event
            .violation_event_additional_info
            .get_or_insert_with(Default::default);
        let j = &self.judgement;
        info.score = Some(j.score);
        info.observed = Some(j.observed);
        info.expected = Some(j.expected);
    }
}

/// GetBehaviorModelTrainingSummaries' row, times in wall-clock time.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSummary {
    pub profile: String,
    pub behavior: String,
    pub status: ModelStatus,
    pub datapoints_collection_percentage: f64,
    pub training_data_collection_start: Option<Timestamp>,
    pub last_model_refresh: Option<Timestamp>,
}

pub(crate) struct Models {
    detector: DetectorConfig,
    period_ms: u64,
    detectors: HashMap<ModelKey, Detector>,
    /// Device-side and custom values reported since the last period
    /// closed, by (profile, behaviour) and thing; a later report replaces
    /// an earlier one. Keyed by name: the configuration may change before
    /// the period closes.
    reported: HashMap<ModelKey, HashMap<Arc<str>, f64>>,
    /// Whether the stored datapoints were replayed (once, at the first
    /// period).
    seeded: bool,
}

/// The confidence of an ML behaviour; `None` for other behaviours.
/// Validation admits only the metrics ML Detect supports (spec §8: six
/// cloud-side, seven device-side, `number` custom metrics, dimensions on
/// four cloud-side ones), and the rule's series carries the dimension.
fn ml_confidence(config: &Compiled, profile: usize, rule: usize) -> Option<Level> {
    let r = &config.profiles[profile].rules[rule];
    if !r.compiled.is_machine_learning() {
        return None;
    }
    let ml = r.behavior.criteria.as_ref()?.ml_detection_config?;
    Some(Level::from(ml.confidence_level))
}

/// The datapoint outcome of `judgement` at `confidence`, carrying `value`
/// in the member the metric's behaviours use: `number` for custom metrics,
/// `count` for the built-ins and for the fleet (devices anomalous).
fn outcome(j: &Judgement, confidence: Level, value: f64, number: bool) -> DatapointOutcome {
    if !number {
        return j.outcome(confidence, value);
    }
    j.outcome_of(
        confidence,
        MetricValue {
            number: Some(value),
            ..MetricValue::default()
        },
    )
}

/// The period (n, ending at n × `period_ms`) a stored datapoint belongs
/// to. Cloud-side ones are stored by the close of their period, just after
/// its end; reports during it, before its end.
fn period_of(metric: &MetricRef, at: Timestamp, period_ms: u64) -> u64 {
    let n = at.as_millis() / period_ms;
    if metric.is_cloud() {
        n
    } else {
        n + 1
    }
}

/// Every (profile, rule) the models judge, in configuration order.
fn ml_rules(config: &Compiled) -> impl Iterator<Item = (usize, usize)> + '_ {
    config.profiles.iter().enumerate().flat_map(move |(pi, p)| {
        (0..p.rules.len()).filter_map(move |ri| ml_confidence(config, pi, ri).map(|_| (pi, ri)))
    })
}

impl Models {
    pub fn new(settings: &DefenderSettings) -> Self {
        Self {
            detector: DetectorConfig {
                period_secs: settings.ml_period_secs.max(1),
                gate: settings.ml_gate,
                ..DetectorConfig::default()
            },
            period_ms: u64::try_from(settings.datapoint_period.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            detectors: HashMap::new(),
            reported: HashMap::new(),
            seeded: false,
        }
    }

    /// Replays the stored datapoints of every ML behaviour's series from
    /// the training window before the period ending at `now`, each to the
    /// profiles that target its thing today; a device's latest report in a
    /// period stands for it. Their verdicts are dropped: history raises no
    /// alarm. Runs once; a store error leaves the models to collect anew.
    pub fn seed(&mut self, shared: &Shared, config: &Compiled, now: Timestamp) {
        if std::mem::replace(&mut self.seeded, true) {
            return;
        }
        let periods =
            i64::from(self.detector.window_days) * clock::DAY_SECS / self.detector.period_secs;
        let span = u64::try_from(periods)
            .unwrap_or(0)
            .saturating_mul(self.period_ms);
        let from = Timestamp::from_millis(now.as_millis().saturating_sub(span));
        // Reports of the period being closed are in `reported` already.
        let period_ms = self.period_ms;
        let current = now.as_millis() / period_ms;
        let mut series: Vec<(&MetricRef, String)> = ml_rules(config)
            .map(|(pi, ri)| {
                let s = &config.profiles[pi].rules[ri].series;
                (&s.metric, s.store_dimension())
            })
            .collect();
        series.sort_unstable_by(|a, b| (a.0.name(), &a.1).cmp(&(b.0.name(), &b.1)));
        series.dedup();
        type Latest = HashMap<(usize, usize, Arc<str>), f64>;
        let mut by_period: BTreeMap<u64, Latest> = BTreeMap::new();
        let mut profiles: HashMap<String, Vec<usize>> = HashMap::new();
        for (metric, dimension) in series {
            let scanned = shared.db.metrics().scan_metric(
                metric.name(),
                &dimension,
                from,
                now,
                |at, thing, v| {
                    let n = period_of(metric, at, period_ms);
                    if n >= current || thing == FLEET_THING {
                        return;
                    }
                    let Some(value) = v.count.map(|c| c as f64).or(v.number) else {
                        return;
                    };
                    let targeted = profiles
                        .entry(thing.to_owned())
                        .or_insert_with(|| shared.profiles_for(config, thing));
                    let thing: Arc<str> = Arc::from(thing);
                    for (pi, ri) in ml_rules(config) {
                        let s = &config.profiles[pi].rules[ri].series;
                        if s.metric == *metric
                            && s.store_dimension() == dimension
                            && targeted.contains(&pi)
                        {
                            by_period
                                .entry(n)
                                .or_default()
                                .insert((pi, ri, Arc::clone(&thing)), value);
                        }
                    }
                },
            );
            if let Err(error) = scanned {
                tracing::error!(%error, "cannot read stored datapoints for ML Detect");
                return;
            }
        }
        let periods = by_period.len();
        for (n, latest) in by_period {
            let points: Vec<MlPoint> = latest
                .into_iter()
                .map(|((profile, rule, thing), value)| MlPoint {
                    profile,
                    rule,
                    thing,
                    value,
                })
                .collect();
            let end = Timestamp::from_millis(n.saturating_mul(period_ms));
            self.judge(config, end, &points);
        }
        if periods > 0 {
            tracing::info!(periods, "ML Detect models rebuilt from stored datapoints");
        }
    }

    /// A device-side or custom `value` that `thing` reported for ML
    /// behaviour `rule` of `profile`, judged when the period closes.
    pub fn report(
        &mut self,
        config: &Compiled,
        profile: usize,
        rule: usize,
        thing: &Arc<str>,
        value: f64,
    ) {
        if ml_confidence(config, profile, rule).is_none() || **thing == *FLEET_THING {
            return;
        }
        self.reported
            .entry(Self::key(config, profile, rule))
            .or_default()
            .insert(Arc::clone(thing), value);
    }

    /// The values reported since the last close, for the behaviours
    /// `config` still has; the rest are dropped.
    pub fn take_reported(&mut self, config: &Compiled) -> Vec<MlPoint> {
        let mut reported = std::mem::take(&mut self.reported);
        let mut out = Vec::new();
        for (pi, ri) in ml_rules(config) {
            let Some(things) = reported.remove(&Self::key(config, pi, ri)) else {
                continue;
            };
            out.extend(things.into_iter().map(|(thing, value)| MlPoint {
                profile: pi,
                rule: ri,
                thing,
                value,
            }));
        }
        out
    }

    fn key(config: &Compiled, profile: usize, rule: usize) -> ModelKey {
        let p = &config.profiles[profile];
        (Arc::clone(&p.name), Arc::clone(&p.rules[rule].name))
    }

    /// The data-clock start of the period ending at `end`.
    pub fn data_ts(&self, end: Timestamp) -> i64 {
        let n = i64::try_from(end.as_millis() / self.period_ms).unwrap_or(i64::MAX);
        (n - 1).saturating_mul(self.detector.period_secs)
    }

    /// The wall-clock end of the period starting at `data_ts`.
    fn wall(&self, data_ts: i64) -> Timestamp {
        let n = u64::try_from(data_ts.div_euclid(self.detector.period_secs)).unwrap_or(0);
        Timestamp::from_millis((n + 1).saturating_mul(self.period_ms))
    }

    /// Judges the period ending at `end`: every ML behaviour of `config`
    /// gets its period (empty ones too, so models train on schedule), and
    /// models of behaviours no longer configured are dropped.
    pub fn judge(
        &mut self,
        config: &Compiled,
        end: Timestamp,
        points: &[MlPoint],
    ) -> Vec<MlOutcome> {
        let ts = self.data_ts(end);
        let mut values: HashMap<(usize, usize), Values> = HashMap::new();
        for p in points.iter().filter(|p| *p.thing != *FLEET_THING) {
            values
                .entry((p.profile, p.rule))
                .or_default()
                .push((Arc::clone(&p.thing), p.value));
        }
        let rules: Vec<(usize, usize)> = ml_rules(config).collect();
        self.detectors.retain(|k, _| {
            rules
                .iter()
                .any(|&(pi, ri)| Self::key(config, pi, ri) == *k)
        });
        let mut judged: Vec<Judged> = Vec::new();
        for (pi, ri) in rules {
            let Some(confidence) = ml_confidence(config, pi, ri) else {
                continue;
            };
            let rule = &config.profiles[pi].rules[ri];
            let cfg = &self.detector;
            let det = self
                .detectors
                .entry(Self::key(config, pi, ri))
                .or_insert_with(|| {
                    Detector::new(
                        MetricKind::of_metric(rule.series.metric.name()),
                        cfg.clone(),
                    )
                });
            let vals = values.remove(&(pi, ri)).unwrap_or_default();
            let result = det.judge_period(ts, &vals);
            judged.push(Judged {
                profile: pi,
                rule: ri,
                confidence,
                result,
                values: vals,
            });
        }
        self.workload(config, ts, &mut judged);
        let mut out = Vec::new();
        for Judged {
            profile: pi,
            rule: ri,
            confidence,
            result,
            values: vals,
        } in judged
        {
            let rule = &config.profiles[pi].rules[ri];
            // After the workload gate, which may carry a shift between metrics.
            if let Some(det) = self.detectors.get(&Self::key(config, pi, ri)) {
                for (device, since) in det.shifts_accepted_at(ts) {
                    tracing::info!(%device, profile = %rule.name, since, "ML baseline changed");
                }
            }
            let number = matches!(rule.series.metric, MetricRef::Custom(_));
            let by_device: HashMap<&str, f64> = vals.iter().map(|(d, v)| (&**d, *v)).collect();
            for j in &result.devices {
                let value = by_device.get(&*j.device).copied().unwrap_or(0.0);
                out.push(MlOutcome {
                    key: alarm_key(&j.device, config, pi, ri),
                    behavior: Arc::clone(&rule.behavior),
                    outcome: outcome(j, confidence, value, number),
                    judgement: j.clone(),
                });
            }
            // Every period the model judges gives the profile-level alarm
            // a datapoint, so it clears once the fleet is back to normal.
            if let Some(f) = result.fleet {
                out.push(MlOutcome {
                    key: alarm_key(&Arc::from(FLEET_THING), config, pi, ri),
                    behavior: Arc::clone(&rule.behavior),
                    outcome: f.outcome(confidence, f.observed),
                    judgement: f,
                });
            }
        }
        out
    }

    /// The workload gate (`ml::workload`) on each profile's pairs of
    /// messages-sent and messages-received behaviours with the same
    /// dimension (or none).
    fn workload(&mut self, config: &Compiled, ts: i64, judged: &mut [Judged]) {
        let series = |j: &Judged| &config.profiles[j.profile].rules[j.rule].series;
        for a in 0..judged.len() {
            if series(&judged[a]).metric.name() != workload::SENT {
                continue;
            }
            let Some(b) = (0..judged.len()).find(|&b| {
                judged[b].profile == judged[a].profile
                    && series(&judged[b]).metric.name() == workload::RECEIVED
                    && series(&judged[b]).dimension == series(&judged[a]).dimension
            }) else {
                continue;
            };
            let ka = Self::key(config, judged[a].profile, judged[a].rule);
            let kb = Self::key(config, judged[b].profile, judged[b].rule);
            let Some(mut da) = self.detectors.remove(&ka) else {
                continue;
            };
            let Some(mut db) = self.detectors.remove(&kb) else {
                self.detectors.insert(ka, da);
                continue;
            };
            if let Some((ja, jb)) = workload::two_mut(judged, a, b) {
                workload::workload_gate((&mut da, &mut ja.result), (&mut db, &mut jb.result), ts);
            }
            self.detectors.insert(ka, da);
            self.detectors.insert(kb, db);
        }
    }

    /// A BENIGN_POSITIVE on `thing`'s alarm of (`profile`, `behavior`)
    /// that started at `since`: what the device did since is its normal
    /// (`Detector::accept_now`); on `$fleet`, what every device of the
    /// fleet event did (`Detector::accept_fleet`). Nothing for other
    /// behaviours.
    pub fn accept(
        &mut self,
        profile: &str,
        behavior: &str,
        thing: &str,
        since: Timestamp,
        now: Timestamp,
    ) {
        let (since, now) = (self.data_ts(since), self.data_ts(now));
        if let Some(d) = self
            .detectors
            .iter_mut()
            .find(|((p, b), _)| **p == *profile && **b == *behavior)
            .map(|(_, d)| d)
        {
            if thing == FLEET_THING {
                d.accept_fleet(since, now);
            } else {
                d.accept_now(thing, since, now);
            }
        }
    }

    /// One summary per ML behaviour of `config`, of `profile` only when
    /// given. A behaviour with no data yet is PENDING_BUILD at 0 %.
    pub fn summaries(&self, config: &Compiled, profile: Option<&str>) -> Vec<ModelSummary> {
        ml_rules(config)
            .filter(|&(pi, _)| profile.is_none_or(|p| *config.profiles[pi].name == *p))
            .map(|(pi, ri)| {
                let key = Self::key(config, pi, ri);
                let s = self.detectors.get(&key).map_or(
                    TrainingSummary {
                        status: ModelStatus::PendingBuild,
                        datapoints_collection_percentage: 0.0,
                        training_data_collection_start: None,
                        last_model_refresh: None,
                    },
                    Detector::summary,
                );
                ModelSummary {
                    profile: key.0.to_string(),
                    behavior: key.1.to_string(),
                    status: s.status,
                    datapoints_collection_percentage: s.datapoints_collection_percentage,
                    training_data_collection_start: s
                        .training_data_collection_start
                        .map(|t| self.wall(t)),
                    last_model_refresh: s.last_model_refresh.map(|t| self.wall(t)),
                }
            })
            .collect()
    }
}
