//! ML Detect in the live engine: one [`Detector`] per (profile, ML
//! behaviour), the same code `wardmq defender replay` runs, fed each
//! period's cloud-side datapoints on the data clock. Its judgements go
//! through the alarm state machine like any rule's.
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
use crate::detect::model::{Behavior, Timestamp, ViolationEvent};
use crate::ml::clock;
use crate::ml::detector::TrainingSummary;
use crate::ml::{Detector, DetectorConfig, Judgement, Level, MetricKind, ModelStatus};
use crate::settings::DefenderSettings;

/// One thing's value for one ML behaviour in the period being closed.
pub(crate) struct MlPoint {
    pub profile: usize,
    pub rule: usize,
    pub thing: Arc<str>,
    pub value: f64,
}

/// One period's datapoints of one behaviour, by thing.
type Values = Vec<(Arc<str>, f64)>;

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
    detectors: HashMap<(Arc<str>, Arc<str>), Detector>,
    /// Whether the stored datapoints were replayed (once, at the first
    /// period).
    seeded: bool,
}

/// The confidence of an ML behaviour whose metric the detector learns
/// (cloud-side counts and message sizes, no dimension); `None` otherwise.
fn ml_confidence(config: &Compiled, profile: usize, rule: usize) -> Option<Level> {
    let r = &config.profiles[profile].rules[rule];
    if !r.compiled.is_machine_learning()
        || !matches!(r.series.metric, MetricRef::Cloud(_))
        || r.series.dimension.is_some()
    {
        return None;
    }
    let ml = r.behavior.criteria.as_ref()?.ml_detection_config?;
    Some(Level::from(ml.confidence_level))
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
            seeded: false,
        }
    }

    /// Replays the stored datapoints of every ML behaviour's metric from
    /// the training window before `now`, each to the profiles that target
    /// its thing today. Their verdicts are dropped: history raises no
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
        let mut metrics: Vec<&str> = ml_rules(config)
            .map(|(pi, ri)| config.profiles[pi].rules[ri].series.metric.name())
            .collect();
        metrics.sort_unstable();
        metrics.dedup();
        let mut by_period: BTreeMap<u64, Vec<MlPoint>> = BTreeMap::new();
        let mut profiles: HashMap<String, Vec<usize>> = HashMap::new();
        for metric in metrics {
            let scanned = shared
                .db
                .metrics()
                .scan_metric(metric, from, now, |at, thing, v| {
                    let Some(value) = v.count.map(|c| c as f64).or(v.number) else {
                        return;
                    };
                    let targeted = profiles
                        .entry(thing.to_owned())
                        .or_insert_with(|| shared.profiles_for(config, thing));
                    let thing: Arc<str> = Arc::from(thing);
                    for (pi, ri) in ml_rules(config) {
                        let rule = &config.profiles[pi].rules[ri];
                        if rule.series.metric.name() == metric && targeted.contains(&pi) {
                            by_period.entry(at.as_millis()).or_default().push(MlPoint {
                                profile: pi,
                                rule: ri,
                                thing: Arc::clone(&thing),
                                value,
                            });
                        }
                    }
                });
            if let Err(error) = scanned {
                tracing::error!(%error, "cannot read stored datapoints for ML Detect");
                return;
            }
        }
        let periods = by_period.len();
        for (at, points) in by_period {
            self.judge(config, Timestamp::from_millis(at), &points);
        }
        if periods > 0 {
            tracing::info!(periods, "ML Detect models rebuilt from stored datapoints");
        }
    }

    fn key(config: &Compiled, profile: usize, rule: usize) -> (Arc<str>, Arc<str>) {
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
        for p in points {
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
        let mut out = Vec::new();
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
            // The fleet judgement has no thing to alarm on: left out.
            let by_device: HashMap<&str, f64> = vals.iter().map(|(d, v)| (&**d, *v)).collect();
            for j in &result.devices {
                let value = by_device.get(&*j.device).copied().unwrap_or(0.0);
                out.push(MlOutcome {
                    key: alarm_key(&j.device, config, pi, ri),
                    behavior: Arc::clone(&rule.behavior),
                    outcome: j.outcome(confidence, value),
                    judgement: j.clone(),
                });
            }
            for (device, since) in det.take_shifts() {
                tracing::info!(%device, profile = %rule.name, since, "ML baseline changed");
            }
        }
        out
    }

    /// A BENIGN_POSITIVE on `thing`'s alarm of (`profile`, `behavior`)
    /// that started at `since`: what the device did since is its normal
    /// (`Detector::accept_now`). Nothing for other behaviours.
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
            d.accept_now(thing, since, now);
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
