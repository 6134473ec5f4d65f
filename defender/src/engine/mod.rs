//! The defender at run time: the broker's observer counts, a worker thread
//! closes a period every `datapoint_period` and judges it, device reports
//! are answered on the connection's task and judged on the worker, alarms
//! are kept in redb and alerts routed to their sinks.
//!
//! ```text
//!  broker ──Observer──▶ Collector ──close_period──┐
//!  broker ──report topic──▶ Defender::on_publish ─┤ (bounded queue)
//!                                                 ▼
//!                            worker thread: judge ▶ AlarmBook ▶ redb
//!                                                 └▶ AlertSender (sinks)
//! ```
//!
//! The worker is the only writer of alarms, so evaluation needs no lock
//! beyond the book's mutex, which API reads share.

mod broker_profile;
mod config;
mod ml;
mod period;
mod reports;
mod tally;
mod worker;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod ml_tests;
#[cfg(test)]
mod tests;

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use wardmq_broker::observer::Observer;
use wardmq_broker::registry::Registry;

pub use broker_profile::{BROKER_THING, PROFILE as BROKER_PROFILE};
pub use config::{
    store_dimension, Compiled, DetectConfig, MetricRef, Profile, ProfileConfig, Rule, Series,
    Target,
};
pub use ml::{ModelSummary, FLEET_THING};
pub use period::PeriodStats;
pub use tally::{event_type, Tally, ViolationCounts, EVALUATION_BOUNDS_S};

use crate::alarms::{AlarmBook, AlarmConfig, ViolationIdGen};
use crate::detect::model::{
    ActiveViolation, DimensionValueOperator, Timestamp, VerificationState, ViolationEvent,
};
use crate::metrics::{Collector, CollectorConfig};
use crate::report::{DeviceReport, ReportThrottle};
use crate::settings::DefenderSettings;
use crate::store::{
    list_active, page_sorted, DefenderDb, Fingerprint, MetricDatum, Page, SeriesKey, StoreError,
    TokenKind, ViolationFilter,
};

/// Where violation events go when their profile has an alert target.
/// Implemented by the alert router; tests record.
pub trait AlertSender: Send + Sync + 'static {
    /// An event that is not suppressed, of a profile whose
    /// `alertTargetArn` is `target_arn`. Must not block.
    fn send(&self, target_arn: &str, event: &ViolationEvent);
}

/// Receives every violation event once it is committed, suppressed or
/// not (automatic mitigation). Called on the evaluation worker: it must
/// not block.
pub trait EventHook: Send + Sync + 'static {
    fn committed(&self, event: &ViolationEvent);
}

/// Device reports waiting for the worker; beyond it reports are refused
/// as throttled rather than queued without bound.
const REPORT_QUEUE: usize = 10_000;

/// Work for the worker thread besides closing periods.
enum Work {
    Report {
        thing: Arc<str>,
        report: Box<DeviceReport>,
        at: Timestamp,
    },
    /// The configuration changed: invalidate what it no longer monitors.
    Reconfigured,
    /// Close the period now (tests and shutdown flush).
    CloseNow(SyncSender<PeriodStats>),
    Stop,
}

pub(crate) struct Shared {
    settings: DefenderSettings,
    collector: Arc<Collector>,
    db: DefenderDb,
    registry: Option<Registry>,
    config: RwLock<Arc<Compiled>>,
    book: Mutex<AlarmBook>,
    throttle: Mutex<ReportThrottle>,
    alerts: Arc<dyn AlertSender>,
    /// Set once, after start (the mitigation is built on the defender).
    hook: std::sync::OnceLock<Arc<dyn EventHook>>,
    broker_profile: broker_profile::BrokerProfile,
    last_period: Mutex<PeriodStats>,
    totals: tally::Totals,
    ml: Mutex<ml::Models>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(ms)
}

impl Shared {
    fn config(&self) -> Arc<Compiled> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn book(&self) -> MutexGuard<'_, AlarmBook> {
        lock(&self.book)
    }

    /// Whether an alarm is still monitored: its behaviour exists.
    fn monitors(&self, config: &Compiled, key: &crate::alarms::AlarmKey) -> bool {
        if *key.security_profile_name == *broker_profile::PROFILE {
            return self.broker_profile.monitors(&key.behavior_name);
        }
        config.monitors(
            &key.security_profile_name,
            &key.behavior_name,
            key.dimension.as_deref(),
        )
    }

    /// The alert target of a profile's events.
    fn alert_target<'c>(&'c self, config: &'c Compiled, profile: &str) -> Option<&'c str> {
        if profile == broker_profile::PROFILE {
            return self.broker_profile.alert_target_arn.as_deref();
        }
        config
            .profiles
            .iter()
            .find(|p| *p.name == *profile)
            .and_then(|p| p.alert_target_arn.as_deref())
    }

    /// The profiles that apply to `thing`, resolved against the registry
    /// only as far as some target needs it.
    /// Indices into `config.profiles`.
    fn profiles_for(&self, config: &Compiled, thing: &str) -> Vec<usize> {
        let registered = config.needs_registration
            && self
                .registry
                .as_ref()
                .is_some_and(|r| r.thing(thing).is_some());
        let groups = match (&self.registry, config.needs_groups) {
            (Some(r), true) => r.thing_groups_with_ancestors(thing),
            _ => Vec::new(),
        };
        (0..config.profiles.len())
            .filter(|&i| config.profiles[i].applies_to(registered, &groups))
            .collect()
    }
}

/// The running defender. Cheap to clone.
#[derive(Clone)]
pub struct Defender {
    shared: Arc<Shared>,
    work: SyncSender<Work>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Defender {
    /// Opens the alarm book stored in `db` (alarms survive a restart) and
    /// starts the worker thread.
    pub fn start(
        settings: DefenderSettings,
        db: DefenderDb,
        registry: Option<Registry>,
        alerts: Arc<dyn AlertSender>,
    ) -> Result<Defender, StoreError> {
        let alarm_config = AlarmConfig {
            invalidate_after_ms: u64::try_from(settings.invalidate_after.as_millis())
                .unwrap_or(u64::MAX),
        };
        let book = match db.violations().load_alarm_book()? {
            Some(mut book) => {
                book.set_config(alarm_config);
                book
            }
            None => AlarmBook::new(alarm_config, ViolationIdGen::new(now().as_millis())),
        };
        let minute_ms = (60_000.0 * settings.time_scale()).round().max(1.0) as u64;
        let collector = Arc::new(Collector::new(CollectorConfig {
            minute_ms,
            ..CollectorConfig::default()
        }));
        let throttle = ReportThrottle::new(
            settings.report_min_interval,
            crate::report::DEFAULT_MAX_THINGS,
        )
        .map_err(|e| StoreError::InvalidRequest(e.to_string()))?;
        let settings_broker = settings.broker_profile.clone();
        let models = ml::Models::new(&settings);
        let shared = Arc::new(Shared {
            settings,
            collector,
            db,
            registry,
            config: RwLock::default(),
            book: Mutex::new(book),
            throttle: Mutex::new(throttle),
            alerts,
            hook: std::sync::OnceLock::new(),
            broker_profile: broker_profile::BrokerProfile::new(&settings_broker),
            last_period: Mutex::default(),
            totals: tally::Totals::default(),
            ml: Mutex::new(models),
        });
        let (work, queue) = sync_channel(REPORT_QUEUE);
        let handle = worker::spawn(shared.clone(), queue)?;
        Ok(Defender {
            shared,
            work,
            worker: Arc::new(Mutex::new(Some(handle))),
        })
    }

    pub fn settings(&self) -> &DefenderSettings {
        &self.shared.settings
    }

    /// The broker's observer: counts every thing's cloud-side metrics.
    pub fn observer(&self) -> Arc<dyn Observer> {
        self.shared.collector.clone()
    }

    pub fn collector(&self) -> &Arc<Collector> {
        &self.shared.collector
    }

    /// Replaces the Rules Detect configuration. Alarms of behaviours that
    /// no longer exist are invalidated on the worker.
    pub fn set_config(&self, config: &DetectConfig) {
        let compiled = Compiled::new(config);
        self.shared
            .collector
            .set_dimensions(compiled.dimensions.clone());
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(compiled);
        // A full queue will get to it at the next reconfiguration or period
        // end, which invalidates stale keys too.
        let _ = self.work.try_send(Work::Reconfigured);
    }

    /// Installs the hook that sees every committed violation event. Only
    /// the first call counts.
    pub fn set_event_hook(&self, hook: Arc<dyn EventHook>) {
        if self.shared.hook.set(hook).is_err() {
            tracing::warn!("a violation event hook is already installed; ignored");
        }
    }

    /// Closes the current period now and waits until it is judged.
    pub fn close_period_now(&self) -> PeriodStats {
        let (done, wait) = sync_channel(1);
        if self.work.send(Work::CloseNow(done)).is_err() {
            return PeriodStats::default();
        }
        wait.recv().unwrap_or_default()
    }

    /// What evaluation did since start (Prometheus counters).
    pub fn tally(&self) -> Tally {
        self.shared.totals.snapshot()
    }

    /// `defender.redb`'s health (refused operations, degraded now).
    pub fn store_health(&self) -> crate::store::StoreHealth {
        self.shared.db.health()
    }

    /// The last period's evaluation.
    pub fn last_period(&self) -> PeriodStats {
        *lock(&self.shared.last_period)
    }

    /// The ML models of `profile`, or of every profile, in configuration
    /// order.
    pub fn model_summaries(&self, profile: Option<&str>) -> Vec<ModelSummary> {
        let config = self.shared.config();
        lock(&self.shared.ml).summaries(&config, profile)
    }

    /// GetBehaviorModelTrainingSummaries: a page of
    /// [`Self::model_summaries`] by (profile, behaviour); `maxResults` is
    /// 1–10 as in the model.
    pub fn model_training_summaries(
        &self,
        profile: Option<&str>,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<ModelSummary>, StoreError> {
        if let Some(n) = max_results.filter(|n| !(1..=10).contains(n)) {
            return Err(StoreError::InvalidRequest(format!(
                "maxResults must be between 1 and 10, got {n}"
            )));
        }
        let mut all = self.model_summaries(profile);
        let key = |s: &ModelSummary| {
            let mut k = s.profile.as_bytes().to_vec();
            k.push(0);
            k.extend_from_slice(s.behavior.as_bytes());
            k
        };
        all.sort_by_key(key);
        page_sorted(
            all,
            key,
            TokenKind::ModelSummaries,
            Fingerprint::new().opt(profile.map(str::as_bytes)),
            Some(max_results.unwrap_or(10)),
            next_token,
        )
    }

    /// ListActiveViolations.
    pub fn list_active_violations(
        &self,
        filter: &ViolationFilter,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<ActiveViolation>, StoreError> {
        list_active(&self.shared.book(), filter, max_results, next_token)
    }

    /// ListViolationEvents.
    pub fn list_violation_events(
        &self,
        start: Timestamp,
        end: Timestamp,
        filter: &ViolationFilter,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<ViolationEvent>, StoreError> {
        self.shared
            .db
            .violations()
            .list_events(start, end, filter, max_results, next_token)
    }

    /// PutVerificationStateOnViolation: on the active alarm (if any) and
    /// on every stored event of the violation.
    pub fn put_verification_state(
        &self,
        violation_id: &str,
        state: VerificationState,
        description: Option<String>,
    ) -> Result<(), StoreError> {
        let mut book = self.shared.book();
        let benign = (state == VerificationState::BenignPositive)
            .then(|| book.active_violation(violation_id))
            .flatten();
        self.shared.db.violations().put_verification_state(
            &mut book,
            violation_id,
            state,
            description,
        )?;
        drop(book);
        // An operator's "this is normal" on an ML alarm: the device's
        // baseline takes what it did since the alarm began at once.
        if let Some(a) = benign {
            lock(&self.shared.ml).accept(
                &a.security_profile_name,
                &a.behavior.name,
                &a.thing_name,
                a.violation_start_time,
                now(),
            );
        }
        Ok(())
    }

    /// ListMetricValues.
    #[allow(clippy::too_many_arguments)]
    pub fn list_metric_values(
        &self,
        thing: &str,
        metric: &str,
        dimension: Option<(&str, DimensionValueOperator)>,
        start: Timestamp,
        end: Timestamp,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<MetricDatum>, StoreError> {
        let dimension = store_dimension(dimension);
        self.shared.db.metrics().list(
            &SeriesKey::new(thing, metric, &dimension),
            start,
            end,
            max_results,
            next_token,
        )
    }

    /// Stops the worker after it has judged what it holds and saved the
    /// alarm book.
    pub fn shutdown(&self) {
        let _ = self.work.send(Work::Stop);
        let handle = lock(&self.worker).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn enqueue(&self, work: Work) -> bool {
        match self.work.try_send(work) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}
