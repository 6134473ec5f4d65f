//! One ML model's life: a (profile, behaviour) detector fed one datapoint
//! period at a time, in data-clock order. At the first period of each day
//! it retrains from the trailing window (so it never reads ahead), then
//! judges every device that has a datapoint, applies the fleet gate, and
//! records the datapoints and the days they flag.
//!
//! Scoring (counts): for windows of one datapoint, one hour and one day,
//! observed `X` against expected `M = Σ L·S`, negative-binomial upper tail
//! with the window's dispersion (plus the device's level uncertainty); a
//! window counts only when `X − M ≥ min_excess`. Sizes: normal tail of
//! log(bytes) on one datapoint and on the hour's mean, only when the size
//! is at least `size_ratio` times the device's usual. The score is the best
//! window's `−log10 p` less `log10(windows)` (Bonferroni).

use std::collections::HashMap;
use std::sync::Arc;

use super::clock;
use super::history::{DayRecord, SeriesHistory};
use super::level::Level;
pub use super::model::MetricKind;
use super::model::{DeviceModel, Model};
use super::status::{ModelGate, ModelStatus};
use super::tail::{nb_upper_score, normal_upper_score};
use crate::detect::evaluate::DatapointOutcome;
use crate::detect::model::MetricValue;

#[derive(Clone, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Seconds between datapoints on the data clock (AWS: 300).
    pub period_secs: i64,
    /// Trailing training window, days.
    pub window_days: u32,
    /// Scores at which LOW, MEDIUM and HIGH start.
    pub thresholds: [f64; 3],
    /// A count window is judged only when it exceeds its expectation by
    /// this many events (one failure on a quiet device is never an alarm).
    pub min_excess: f64,
    /// A size is judged only when at least this many times the device's
    /// usual top (its 99th percentile).
    pub size_ratio: f64,
    /// Share of a profile's judged devices reaching LOW at the same
    /// datapoint that makes it one fleet-wide anomaly instead.
    pub fleet_fraction: f64,
    /// ... and never fewer devices than this.
    pub fleet_min_devices: usize,
    /// The fleet gate counts devices whose anomaly began within this many
    /// datapoints, not only those anomalous at this one: a firmware wave
    /// lifts its devices over hours (busy ones cross first). Devices
    /// anomalous for longer (an earlier attack's day window) are not part
    /// of a new fleet-wide change, unless they joined one while it was.
    /// Data-clock seconds; one period or less = devices anomalous at this
    /// datapoint (the gate without memory).
    pub fleet_memory_secs: i64,
    /// A device's alarm level is held this long below
    /// LOW: a level shift's hour window hovers around the threshold before
    /// the day window takes over (`ml-detect.md` step 6: one alarm per
    /// level change; clear after an hour). Data-clock seconds; one period
    /// or less = no hold through dips.
    pub hold_secs: i64,
    /// A device flagged (MEDIUM or more) this many days in a row has a new
    /// normal: its level is refitted from those days. 0 = never.
    pub accept_after_days: u32,
    /// A device with fewer own training days alarms at HIGH only.
    pub new_device_days: u32,
    pub gate: ModelGate,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            period_secs: 300,
            window_days: 14,
            thresholds: [4.5, 6.5, 8.0],
            min_excess: 3.0,
            size_ratio: 2.0,
            fleet_fraction: 0.02,
            fleet_min_devices: 5,
            fleet_memory_secs: 6 * clock::HOUR_SECS,
            hold_secs: clock::HOUR_SECS,
            accept_after_days: 3,
            new_device_days: 3,
            gate: ModelGate::default(),
        }
    }
}

/// The verdict on one device (or, for the fleet, the profile) at one
/// datapoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// Empty for the profile-level fleet judgement.
    pub device: Arc<str>,
    pub score: f64,
    /// The level the score reaches, before gates.
    pub raw_level: Option<Level>,
    /// The level an alarm may use: after the HIGH-only gates (fast start,
    /// new device) and the fleet gate.
    pub level: Option<Level>,
    /// The observed and expected value of the window that scored highest
    /// (events in the window; bytes for sizes; devices for the fleet).
    pub observed: f64,
    pub expected: f64,
    /// Datapoints in that window.
    pub window: u32,
}

impl Judgement {
    /// The datapoint outcome the alarm state machine gets for a behaviour
    /// at `confidence`; the value is the datapoint's observed value.
    pub fn outcome(&self, confidence: Level, value: f64) -> DatapointOutcome {
        // Counts and byte sizes are whole and non-negative.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.outcome_of(
            confidence,
            MetricValue {
                count: Some(value.max(0.0).round() as u64),
                ..MetricValue::default()
            },
        )
    }

    /// The same, carrying `value` as it is (a custom metric's `number`).
    pub fn outcome_of(&self, confidence: Level, value: MetricValue) -> DatapointOutcome {
        if self.violates(confidence) {
            DatapointOutcome::Violating(value)
        } else {
            DatapointOutcome::NotViolating(value)
        }
    }

    /// Whether a behaviour at `confidence` alarms on this judgement.
    pub fn violates(&self, confidence: Level) -> bool {
        self.level.is_some_and(|l| l >= confidence)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeriodResult {
    /// One per device judged; a device with no judgement had no data.
    pub devices: Vec<Judgement>,
    /// The fleet-wide judgement, when the model judges at all.
    pub fleet: Option<Judgement>,
    /// Devices whose alarm the fleet gate folded into `fleet`.
    pub fleet_suppressed: usize,
}

/// A device's last hour or day on a count metric (see
/// [`Detector::recent_windows`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecentWindow {
    pub observed: f64,
    pub expected: f64,
    pub score: f64,
}

/// What GetBehaviorModelTrainingSummaries shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingSummary {
    pub status: ModelStatus,
    pub datapoints_collection_percentage: f64,
    /// Epoch seconds of the first datapoint seen.
    pub training_data_collection_start: Option<i64>,
    /// Epoch seconds (the data clock's midnight) of the last build.
    pub last_model_refresh: Option<i64>,
}

/// Missed datapoints whose expectation a device's first datapoint after a
/// gap may carry (two hours at five-minute periods).
const CATCH_UP: i64 = 24;

/// A device keeps its own alarm in a fleet event only with a score above
/// the fleet's typical one by the HIGH threshold and by this fraction of it.
const OWN_FACTOR: f64 = 0.5;

/// One datapoint or one hour, observed and expected, kept in single
/// precision: a device holds 36 of them per metric, and a window's sum is
/// taken in double precision (see [`Window`]).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Slot {
    /// Period or hour number; `i32::MIN` for none.
    key: i32,
    x: f32,
    m: f32,
    n: u32,
}

const EMPTY: Slot = Slot {
    key: i32::MIN,
    x: 0.0,
    m: 0.0,
    n: 0,
};

/// Periods and hours since 1970 fit an `i32` until the year 20,000.
fn slot_key(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MIN)
}

/// A window's observed and expected events and its datapoints.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Window {
    x: f64,
    m: f64,
    n: u32,
}

/// The recent past a window needs: the last hour's datapoints and the
/// last 24 hourly sums, observed and expected.
#[derive(Clone, Debug, PartialEq)]
struct Online {
    recent: Vec<Slot>,
    hours: [Slot; 24],
    /// The period of the device's previous datapoint.
    last_period: Option<i64>,
}

impl Online {
    fn new(per_hour: usize) -> Self {
        Self {
            recent: vec![EMPTY; per_hour.max(1)],
            hours: [EMPTY; 24],
            last_period: None,
        }
    }

    /// Datapoints missed since the previous one (0 when there is none).
    fn gap(&self, period: i64) -> i64 {
        self.last_period.map_or(0, |p| (period - p - 1).max(0))
    }

    fn push(&mut self, period: i64, hour: i64, x: f64, m: f64) {
        self.last_period = Some(self.last_period.map_or(period, |p| p.max(period)));
        let len = i64::try_from(self.recent.len()).unwrap_or(1);
        let i = usize::try_from(period.rem_euclid(len)).unwrap_or(0);
        #[allow(clippy::cast_possible_truncation)]
        let (x, m) = (x as f32, m as f32);
        self.recent[i] = Slot {
            key: slot_key(period),
            x,
            m,
            n: 1,
        };
        let j = usize::try_from(hour.rem_euclid(24)).unwrap_or(0);
        if self.hours[j].key != slot_key(hour) {
            self.hours[j] = Slot {
                key: slot_key(hour),
                ..EMPTY
            };
        }
        let h = &mut self.hours[j];
        h.x += x;
        h.m += m;
        h.n += 1;
    }

    fn recent_sum(&self, period: i64) -> Window {
        let len = i64::try_from(self.recent.len()).unwrap_or(1);
        sum(self
            .recent
            .iter()
            .filter(|s| s.n > 0 && i64::from(s.key) > period - len && i64::from(s.key) <= period))
    }

    fn day_sum(&self, hour: i64) -> Window {
        sum(self
            .hours
            .iter()
            .filter(|s| s.n > 0 && i64::from(s.key) > hour - 24 && i64::from(s.key) <= hour))
    }

    /// The datapoint of `period`, if the device has one.
    fn at(&self, period: i64) -> Window {
        sum(self
            .recent
            .iter()
            .filter(|s| s.n > 0 && i64::from(s.key) == period))
    }
}

fn sum<'a>(it: impl Iterator<Item = &'a Slot>) -> Window {
    it.fold(Window::default(), |a, s| Window {
        x: a.x + f64::from(s.x),
        m: a.m + f64::from(s.m),
        n: a.n + s.n,
    })
}

#[derive(Clone, Debug)]
struct Series {
    history: SeriesHistory,
    online: Online,
    /// The level the device's last judgement kept: a level is held while
    /// the score stays at LOW or more, and through dips shorter than
    /// `hold_secs`, so a level shift raises one alarm instead of one
    /// each time its score dips and climbs back.
    held: Option<Level>,
    /// Datapoints since the score last reached LOW (saturating).
    calm: u16,
    /// A gate across metrics capped this anomaly ([`Detector::cap`]);
    /// forgotten when the held level lapses.
    capped: bool,
}

impl Series {
    /// The held level lapses, and with it the anomaly's cap.
    fn lapse(&mut self) {
        self.held = None;
        self.capped = false;
    }

    /// A new normal (an accepted shift): the windows start afresh.
    fn restart(&mut self, per_hour: usize) {
        self.online = Online::new(per_hour);
        self.lapse();
    }
}

/// Whether a device may alarm at HIGH only: the model is on its fast
/// start, or the device has fewer own training days than a new device
/// needs.
fn high_only(cfg: &DetectorConfig, fast_start: bool, dm: &DeviceModel) -> bool {
    fast_start || dm.own_days < cfg.new_device_days
}

pub struct Detector {
    cfg: DetectorConfig,
    kind: MetricKind,
    series: HashMap<Arc<str>, Series>,
    model: Option<Model>,
    /// The model may only raise HIGH (fast start).
    high_only: bool,
    trained_day: Option<i64>,
    first_ts: Option<i64>,
    status: ModelStatus,
    failed_builds: u32,
    last_refresh: Option<i64>,
    window_datapoints: u64,
    /// The period of the last retrain and the level shifts accepted at it
    /// (device, first day of the new normal), by the retrain or carried
    /// from another metric ([`Detector::accept_with`]).
    accepted: (i64, Vec<(Arc<str>, i64)>),
    /// Devices anomalous (LOW or more) within the fleet memory: when the
    /// anomaly began, when last seen, and the highest score meanwhile.
    recent: HashMap<Arc<str>, Spell>,
}

/// One device's current (or just ended) anomaly, for the fleet gate.
#[derive(Clone, Copy, Debug)]
struct Spell {
    onset: i64,
    last: i64,
    peak: f64,
    /// Folded into a fleet event: stays folded until the spell ends.
    folded: bool,
}

struct Scored {
    score: f64,
    observed: f64,
    expected: f64,
    window: u32,
}

impl Detector {
    pub fn new(kind: MetricKind, cfg: DetectorConfig) -> Self {
        Self {
            cfg,
            kind,
            series: HashMap::new(),
            model: None,
            high_only: false,
            trained_day: None,
            first_ts: None,
            status: ModelStatus::PendingBuild,
            failed_builds: 0,
            last_refresh: None,
            window_datapoints: 0,
            accepted: (i64::MIN, Vec::new()),
            recent: HashMap::new(),
        }
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    pub fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    pub fn devices(&self) -> usize {
        self.series.len()
    }

    pub fn summary(&self) -> TrainingSummary {
        TrainingSummary {
            status: self.status,
            datapoints_collection_percentage: self
                .cfg
                .gate
                .collection_percentage(self.window_datapoints),
            training_data_collection_start: self.first_ts,
            last_model_refresh: self.last_refresh,
        }
    }

    /// The level shifts accepted at the period starting at `ts` (none if
    /// the model did not retrain then): (device, first day of the new
    /// normal). The engine logs them as "baseline changed".
    pub fn shifts_accepted_at(&self, ts: i64) -> &[(Arc<str>, i64)] {
        if self.accepted.0 == ts {
            &self.accepted.1
        } else {
            &[]
        }
    }

    /// How much `device`'s mean datapoint changed from before day `since`
    /// (days kept for training) to since (all days): `None` without data
    /// on both sides.
    pub fn change_since(&self, device: &str, since: i64) -> Option<f64> {
        self.series.get(device)?.history.change_since(since)
    }

    /// Another metric accepted a level shift of `device` from day `since`
    /// that this one went through too (flagged since then): it becomes
    /// this metric's new normal as well, as at a retrain.
    pub fn accept_with(&mut self, device: &str, since: i64, now: i64) -> bool {
        let flagged = self.series.get(device).is_some_and(|s| {
            s.history
                .days
                .iter()
                .any(|d| d.day >= since && d.excluded())
        });
        if flagged {
            self.accept_now(device, since * clock::DAY_SECS, now);
            if let Some((name, _)) = self.series.get_key_value(device) {
                if self.accepted.0 != now {
                    self.accepted = (now, Vec::new());
                }
                self.accepted.1.push((Arc::clone(name), since));
            }
        }
        flagged
    }

    /// Approximate bytes held per device: (the trained model and the
    /// online windows judging needs, the training history). Hash-table
    /// overhead is left out.
    pub fn state_bytes_per_device(&self) -> (usize, usize) {
        use std::mem::size_of;
        let n = self.series.len().max(1);
        let online: usize = self
            .series
            .iter()
            .map(|(k, s)| k.len() + size_of::<Online>() + s.online.recent.len() * size_of::<Slot>())
            .sum();
        let model = self.model.as_ref().map_or(0, |m| {
            m.devices
                .keys()
                .map(|k| k.len() + size_of::<DeviceModel>())
                .sum()
        });
        let history: usize = self
            .series
            .values()
            .map(|s| size_of::<SeriesHistory>() + s.history.days.len() * size_of::<DayRecord>())
            .sum();
        let fleet = self
            .recent
            .keys()
            .map(|k| k.len() + size_of::<(Arc<str>, Spell)>())
            .sum::<usize>();
        ((online + model + fleet) / n, history / n)
    }

    /// A count metric's datapoint, last hour and last 24 hours for
    /// `device`, when it has a datapoint in the period starting at `ts` and
    /// the model judges: observed and expected events and each window's
    /// score (the windows of [`score_count`], Bonferroni-corrected the same
    /// way).
    pub fn recent_windows(&self, device: &str, ts: i64) -> Option<[RecentWindow; 3]> {
        let (model, online, period) = self.counted_at(device, ts)?;
        let extra = model.device(device).extra;
        let judge = |w: Window, inv_k: f64| RecentWindow {
            observed: w.x,
            expected: w.m,
            score: self.window_score(w.x, w.m, inv_k),
        };
        Some([
            judge(online.at(period), model.dispersion[0] + extra),
            judge(online.recent_sum(period), model.dispersion[1] + extra),
            judge(
                online.day_sum(clock::hour_no(ts)),
                model.dispersion[2] + extra,
            ),
        ])
    }

    /// The score of `device`'s datapoint in the period starting at `ts`
    /// with its expectation `factor` times higher: what is left of its
    /// anomaly once a change of that size is allowed for. `None` when
    /// [`Detector::recent_windows`] would be.
    pub fn score_scaled(&self, device: &str, ts: i64, factor: f64) -> Option<f64> {
        let (model, online, period) = self.counted_at(device, ts)?;
        let w = online.at(period);
        let inv_k = model.dispersion[0] + model.device(device).extra;
        Some(self.window_score(w.x, w.m * factor, inv_k))
    }

    /// The count model and `device`'s online windows, with the period of
    /// `ts`, when the device has a datapoint in that period.
    fn counted_at(&self, device: &str, ts: i64) -> Option<(&Model, &Online, i64)> {
        if self.kind != MetricKind::Count {
            return None;
        }
        let model = self.model.as_ref()?;
        let online = &self.series.get(device)?.online;
        let period = ts.div_euclid(self.cfg.period_secs.max(1));
        (online.last_period == Some(period)).then_some((model, online, period))
    }

    /// A count window's score, Bonferroni-corrected as in [`score_count`].
    fn window_score(&self, x: f64, m: f64, inv_k: f64) -> f64 {
        if x - m >= self.cfg.min_excess {
            (nb_upper_score(x, m, inv_k) - 3f64.log10()).max(0.0)
        } else {
            0.0
        }
    }

    /// Lowers a judgement of this period to at most `level` after the fact
    /// (a gate across metrics, see [`super::workload`]), with the level
    /// the device holds, and remembers that this anomaly was capped (see
    /// [`Detector::capped`]). A device that may alarm at HIGH only (new,
    /// fast start) then has no alarm.
    pub fn cap(&mut self, judgement: &mut Judgement, level: Level) {
        let Some(s) = self.series.get_mut(&judgement.device) else {
            return;
        };
        s.capped = true;
        if s.held.is_some_and(|l| l > level) {
            s.held = Some(level);
        }
        if judgement.level.is_some_and(|l| l > level) {
            let high_only = self.model.as_ref().map_or(self.high_only, |m| {
                high_only(&self.cfg, self.high_only, &m.device(&judgement.device))
            });
            judgement.level = (!high_only).then_some(level);
        }
    }

    /// Whether the device's current anomaly was capped by [`Detector::cap`]
    /// (until its held level lapses, or [`Detector::uncap`]).
    pub fn capped(&self, device: &str) -> bool {
        self.series.get(device).is_some_and(|s| s.capped)
    }

    /// Lifts the cap of [`Detector::cap`].
    pub fn uncap(&mut self, device: &str) {
        if let Some(s) = self.series.get_mut(device) {
            s.capped = false;
        }
    }

    /// Whole datapoints in `secs` of the data clock, at least one.
    fn periods(&self, secs: i64) -> i64 {
        (secs / self.cfg.period_secs.max(1)).max(1)
    }

    fn periods_per_hour(&self) -> usize {
        usize::try_from(clock::HOUR_SECS / self.cfg.period_secs.max(1)).unwrap_or(1)
    }

    /// Builds (or fails to build) the model for `day` from the days before
    /// it; returns the level shifts it accepted. Runs by itself at each
    /// day's first period.
    pub fn retrain(&mut self, day: i64) -> Vec<(Arc<str>, i64)> {
        self.trained_day = Some(day);
        let window = i64::from(self.cfg.window_days);
        let from = day - window;
        let to = day - 1;
        let per_hour = self.periods_per_hour();
        self.series.retain(|_, s| {
            s.history.prune(from);
            !s.history.days.is_empty()
        });
        let mut accepted = Vec::new();
        for (name, s) in &mut self.series {
            // A device that changed with its fleet yesterday (a firmware
            // wave) has a new normal from then; one flagged alone for
            // `accept_after_days` days too.
            let since = if s.history.folded_on(day - 1) {
                s.history.accept_from(day - 1);
                Some(day - 1)
            } else if s.history.accept_if_shifted(day, self.cfg.accept_after_days) {
                Some(day - i64::from(self.cfg.accept_after_days))
            } else {
                None
            };
            if let Some(since) = since {
                s.restart(per_hour);
                accepted.push((Arc::clone(name), since));
            }
        }
        self.window_datapoints = self
            .series
            .values()
            .map(|s| s.history.datapoints(from, to))
            .sum();
        let span = self.first_ts.map_or(0, |t| {
            u32::try_from((day - clock::day(t)).clamp(0, window)).unwrap_or(0)
        });
        let gate = self.cfg.gate;
        let periods_per_day = (clock::DAY_SECS / self.cfg.period_secs.max(1)) as f64;
        let histories = || {
            self.series
                .iter()
                .map(|(k, s)| (k, &s.history))
                .collect::<Vec<_>>()
        };
        if gate.ready(span, self.window_datapoints) {
            self.model = Some(Model::train(
                self.kind,
                &histories(),
                from,
                to,
                periods_per_day,
            ));
            self.status = ModelStatus::Active;
            self.high_only = false;
            self.failed_builds = 0;
            self.last_refresh = Some(day * clock::DAY_SECS);
            return accepted;
        }
        if span >= gate.min_days {
            self.failed_builds += 1;
        }
        if self.failed_builds >= gate.max_failed_builds && gate.max_failed_builds > 0 {
            self.status = ModelStatus::Expired;
            self.model = None;
            return accepted;
        }
        if self.status == ModelStatus::Active {
            // Keep judging with the last model while builds are retried.
            return accepted;
        }
        if gate.fast_start_days > 0 && span >= gate.fast_start_days && self.window_datapoints > 0 {
            self.model = Some(Model::train(
                self.kind,
                &histories(),
                from,
                to,
                periods_per_day,
            ));
            self.high_only = true;
            self.last_refresh = Some(day * clock::DAY_SECS);
        }
        accepted
    }

    /// An operator marked the device's alarm BENIGN_POSITIVE: what it did
    /// since `since` is normal. Takes effect at once.
    pub fn accept_now(&mut self, device: &str, since: i64, now: i64) {
        let per_hour = self.periods_per_hour();
        let from_window = clock::day(now) - i64::from(self.cfg.window_days);
        let Some((name, _)) = self.series.get_key_value(device) else {
            return;
        };
        let name = Arc::clone(name);
        let start = clock::day(since);
        let Some(s) = self.series.get_mut(device) else {
            return;
        };
        s.history.accept_from(start);
        s.restart(per_hour);
        if let Some(m) = &mut self.model {
            m.refit_device(&name, &s.history, start.max(from_window), clock::day(now));
        }
    }

    /// An operator marked the profile-level alarm BENIGN_POSITIVE: every
    /// device of the fleet event takes what it did since `since` as its
    /// normal at once (instead of at the next retrain), and the event,
    /// with no members left, clears.
    pub fn accept_fleet(&mut self, since: i64, now: i64) {
        let period = now.div_euclid(self.cfg.period_secs.max(1));
        let members: Vec<Arc<str>> = self
            .recent
            .iter()
            .filter(|(_, s)| self.member(s, period))
            .map(|(d, _)| Arc::clone(d))
            .collect();
        for d in members {
            self.accept_now(&d, since, now);
            self.recent.remove(&d);
        }
    }

    /// Judges one period: `values` holds each device's datapoint for the
    /// period starting at `ts` (data-clock epoch seconds).
    pub fn judge_period(&mut self, ts: i64, values: &[(Arc<str>, f64)]) -> PeriodResult {
        let day = clock::day(ts);
        if self.trained_day != Some(day) {
            self.accepted = (ts, self.retrain(day));
        }
        if self.first_ts.is_none() && !values.is_empty() {
            self.first_ts = Some(ts);
        }
        let per_hour = self.periods_per_hour();
        let hold = u16::try_from(self.periods(self.cfg.hold_secs)).unwrap_or(u16::MAX);
        let period = ts.div_euclid(self.cfg.period_secs.max(1));
        let hour = clock::hour_no(ts);
        let mut result = PeriodResult::default();

        for (name, value) in values {
            let s = self
                .series
                .entry(Arc::clone(name))
                .or_insert_with(|| Series {
                    history: SeriesHistory::default(),
                    online: Online::new(per_hour),
                    held: None,
                    calm: u16::MAX,
                    capped: false,
                });
            let x = match self.kind {
                MetricKind::Count => value.max(0.0),
                MetricKind::Size if *value > 0.0 => value.ln(),
                // No message, no size.
                MetricKind::Size => continue,
            };
            s.history.record(ts, x);
            let Some(model) = &self.model else {
                continue;
            };
            let dm = model.device(name);
            let expected = match self.kind {
                // A device back from a gap may send what it buffered: the
                // missed datapoints' expectation (at most CATCH_UP of
                // them) joins its first one.
                MetricKind::Count => {
                    let missed = s.online.gap(period).min(CATCH_UP);
                    #[allow(clippy::cast_precision_loss)]
                    let catch_up = 1.0 + missed as f64;
                    dm.level * model.shape_at(ts) * catch_up
                }
                MetricKind::Size => 1.0,
            };
            s.online.push(period, hour, x, expected);
            let scored = match self.kind {
                MetricKind::Count => score_count(&self.cfg, model, &dm, &s.online, period, hour),
                MetricKind::Size => score_size(&self.cfg, model, &dm, &s.online, period, *value),
            };
            let raw_level = Level::of_score(scored.score, self.cfg.thresholds);
            let high_only = high_only(&self.cfg, self.high_only, &dm);
            s.calm = if raw_level.is_some() {
                0
            } else {
                s.calm.saturating_add(1)
            };
            if s.calm >= hold {
                s.lapse();
            }
            let level = raw_level
                .max(s.held)
                .filter(|l| !high_only || *l == Level::High);
            result.devices.push(Judgement {
                device: Arc::clone(name),
                score: scored.score,
                raw_level,
                level,
                observed: scored.observed,
                expected: scored.expected,
                window: scored.window,
            });
        }
        if self.model.is_none() {
            return result;
        }
        self.remember(period, &result);
        self.fleet_gate(period, &mut result);
        // Poisoning resistance: a device's anomalous day stays out of
        // training. A fleet-wide change is not an attack on one device and
        // should be learned, so folded alarms flag nothing.
        let fleet_event = result.fleet_suppressed > 0;
        // Devices that crossed before the fleet had enough of them to
        // count as a fleet event changed with it too.
        for (name, _) in self.recent.iter().filter(|(_, s)| s.folded) {
            if let Some(s) = self.series.get_mut(name) {
                s.history.fold(ts);
            }
        }
        for j in &result.devices {
            if j.raw_level.is_none() {
                continue;
            }
            let Some(s) = self.series.get_mut(&j.device) else {
                continue;
            };
            s.held = j.level;
            let Some(l) = j.raw_level.filter(|l| *l >= Level::Medium) else {
                continue;
            };
            {
                if fleet_event && j.level.is_none() {
                    s.history.fold(ts);
                } else {
                    s.history.flag(ts, l);
                }
            }
        }
        result
    }

    /// Updates the fleet memory with this period's anomalous devices. A
    /// spell survives short dips (a clear takes the fleet memory
    /// without an anomaly), so a device hovering around LOW has one onset.
    fn remember(&mut self, period: i64, result: &PeriodResult) {
        let memory = self.periods(self.cfg.fleet_memory_secs);
        self.recent.retain(|_, s| s.last > period - memory);
        for j in result.devices.iter().filter(|j| j.raw_level.is_some()) {
            let e = self.recent.entry(Arc::clone(&j.device)).or_insert(Spell {
                onset: period,
                last: period,
                peak: j.score,
                folded: false,
            });
            e.last = period;
            e.peak = e.peak.max(j.score);
        }
    }

    /// Whether a remembered anomaly is part of a fleet-wide change: it
    /// began recently, or it already joined one.
    fn member(&self, s: &Spell, period: i64) -> bool {
        s.folded || s.onset > period - self.periods(self.cfg.fleet_memory_secs)
    }

    fn fleet_gate(&mut self, period: i64, result: &mut PeriodResult) {
        let judged = result.devices.len();
        let mut members: Vec<f64> = self
            .recent
            .values()
            .filter(|s| self.member(s, period))
            .map(|s| s.peak)
            .collect();
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let need = self
            .cfg
            .fleet_min_devices
            .max((self.cfg.fleet_fraction * judged as f64).ceil() as usize)
            .max(1);
        let own = event_members(&mut members, self.cfg.thresholds[2]);
        let mut fleet = Judgement {
            device: Arc::from(""),
            score: 0.0,
            raw_level: None,
            level: None,
            observed: members.len() as f64,
            expected: need as f64,
            window: 1,
        };
        // The event lasts while its devices do: once none has been
        // anomalous for `hold_secs` it clears like a device alarm, though
        // its spells stay in memory (a device joining later rejoins it).
        let hold = self.periods(self.cfg.hold_secs);
        let live = self
            .recent
            .values()
            .any(|s| self.member(s, period) && s.last > period - hold);
        if members.len() >= need {
            fleet.score = event_score(&members, need);
            fleet.raw_level = Level::of_score(fleet.score, self.cfg.thresholds).filter(|_| live);
            fleet.level = fleet
                .raw_level
                .filter(|l| !self.high_only || *l == Level::High);
            let memory = self.periods(self.cfg.fleet_memory_secs);
            for s in self.recent.values_mut() {
                s.folded = s.peak < own && (s.folded || s.onset > period - memory);
            }
            // While the event lasts its devices' alarms are its alarm; a
            // device that climbs far above it (an attack that joined by
            // chance) gets its own.
            for j in &mut result.devices {
                let folded = self.recent.get(&j.device).is_some_and(|s| s.folded);
                if folded && j.raw_level.is_some() && j.score < own {
                    j.level = None;
                    result.fleet_suppressed += 1;
                }
            }
        }
        result.fleet = Some(fleet);
    }
}

/// Sorts the peak scores of a possible fleet event's devices and leaves
/// those below the returned score: a device far more anomalous than the
/// fleet's typical one (a flood during a firmware wave) keeps its own alarm
/// and is not part of the event. "Far" grows with the event: in a large
/// fleet-wide burst, devices' scores (−log10 p, often 50 or more) differ
/// by more than a HIGH threshold (`high`) through their own dispersion.
fn event_members(peaks: &mut Vec<f64>, high: f64) -> f64 {
    peaks.sort_by(f64::total_cmp);
    let own = peaks
        .get(peaks.len() / 2)
        .map_or(f64::INFINITY, |&typical| {
            typical + high.max(typical * OWN_FACTOR)
        });
    peaks.retain(|&peak| peak < own);
    own
}

/// The score of a fleet event of `peaks` (sorted, at least `need`): a
/// level its typical device reached and at least `need` devices did. A
/// few anomalies lingering after a firmware wave, one of them HIGH, are
/// not a HIGH fleet event.
fn event_score(peaks: &[f64], need: usize) -> f64 {
    peaks[peaks.len() / 2].min(peaks[peaks.len() - need])
}

fn score_count(
    cfg: &DetectorConfig,
    model: &Model,
    dm: &DeviceModel,
    online: &Online,
    period: i64,
    hour: i64,
) -> Scored {
    let d = model.dispersion;
    let last = online.recent_sum(period);
    let one = online.at(period);
    let windows = [
        (one, d[0] + dm.extra),
        (last, d[1] + dm.extra),
        (online.day_sum(hour), d[2] + dm.extra),
    ];
    let mut best = Scored {
        score: 0.0,
        observed: one.x,
        expected: one.m,
        window: 1,
    };
    for (w, inv_k) in windows {
        if w.n == 0 || w.x - w.m < cfg.min_excess {
            continue;
        }
        // Cheap pre-check: far inside the normal band the tail is not
        // worth computing.
        let sd = (w.m + inv_k * w.m * w.m).sqrt();
        if sd > 0.0 && (w.x - w.m) / sd < 2.0 {
            continue;
        }
        let s = nb_upper_score(w.x, w.m, inv_k);
        if s > best.score {
            best = Scored {
                score: s,
                observed: w.x,
                expected: w.m,
                window: w.n,
            };
        }
    }
    best.score = (best.score - 3f64.log10()).max(0.0);
    best
}

/// The standard normal's 99th percentile.
const Z99: f64 = 2.326;

fn score_size(
    cfg: &DetectorConfig,
    model: &Model,
    dm: &DeviceModel,
    online: &Online,
    period: i64,
    bytes: f64,
) -> Scored {
    let usual = dm.level.exp();
    let mut best = Scored {
        score: 0.0,
        observed: bytes,
        expected: usual,
        window: 1,
    };
    // Sizes count only well above the device's usual top (its 99th
    // percentile under the log-normal fit): a firmware update making
    // messages 30% larger is not exfiltration.
    let ratio = cfg.size_ratio.ln();
    let lx = bytes.max(1.0).ln();
    let sd1 = (dm.spread * dm.spread + dm.extra).sqrt();
    if lx >= dm.level + Z99 * sd1 + ratio && lx > dm.top {
        best.score = normal_upper_score((lx - dm.level) / sd1);
    }
    let last = online.recent_sum(period);
    if last.n > 1 {
        let n = f64::from(last.n);
        let mean = last.x / n;
        let sd = (dm.spread * dm.spread / n + model.day_var + dm.extra).sqrt();
        if mean >= dm.level + Z99 * sd + ratio {
            let s = normal_upper_score((mean - dm.level) / sd);
            if s > best.score {
                best = Scored {
                    score: s,
                    observed: mean.exp(),
                    expected: usual,
                    window: last.n,
                };
            }
        }
    }
    best.score = (best.score - 2f64.log10()).max(0.0);
    best
}

#[cfg(test)]
mod tests {
    use super::{event_members, event_score};

    /// Camera anomalies after a firmware wave (a simulated fleet's): three
    /// attacks far above the rest keep their own alarms; of the six left,
    /// two reached HIGH and five reached 5.7, so the event is LOW, not the
    /// HIGH its upper median (8.2) gave while the attacks counted.
    #[test]
    fn a_fleet_event_is_as_high_as_its_quorum() {
        let mut peaks = vec![10.3, 53.7, 8.2, 97.8, 5.2, 5.7, 7.8, 7.3, 57.9];
        let own = event_members(&mut peaks, 8.0);
        assert!((own - 16.2).abs() < 1e-9, "{own}");
        assert_eq!(peaks, [5.2, 5.7, 7.3, 7.8, 8.2, 10.3]);
        assert!((event_score(&peaks, 5) - 5.7).abs() < 1e-9);
        // Seven devices, four of them HIGH: the typical one is HIGH but
        // only four reached it, fewer than the five an event needs.
        let peaks = [5.0, 5.5, 6.6, 8.1, 12.9, 13.7, 15.0];
        assert!((event_score(&peaks, 5) - 6.6).abs() < 1e-9);
        // A big event: its typical device decides.
        let peaks: Vec<f64> = (0..40).map(|i| 9.0 + f64::from(i) * 0.1).collect();
        assert!((event_score(&peaks, 5) - 11.0).abs() < 1e-9);
    }
}
