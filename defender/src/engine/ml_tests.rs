//! The live engine's ML models on a fake data clock: each period's end is
//! given, never read from the wall, so weeks of datapoints take no time.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::config::{Compiled, DetectConfig, ProfileConfig, Target};
use super::ml::{MlPoint, ModelSummary, Models, FLEET_THING};
use crate::alarms::{AlarmBook, AlarmConfig, ViolationIdGen};
use crate::detect::evaluate::DatapointOutcome;
use crate::detect::model::{ConfidenceLevel, Timestamp, ViolationEventType};
use crate::ml::replay::ml_behavior;
use crate::ml::tests::poisson;
use crate::ml::{Level, ModelGate, ModelStatus};
use crate::settings::DefenderSettings;

const METRIC: &str = "aws:num-messages-sent";
/// Periods in a data-clock day at the default 300 s.
const DAY: u64 = 288;
/// The period ending at a UTC midnight (2024-06-03, a Monday).
const START: u64 = 19_877 * DAY;

/// One profile on every thing with one HIGH ML behaviour.
fn detect_config() -> DetectConfig {
    DetectConfig {
        profiles: vec![ProfileConfig {
            name: "ml".into(),
            behaviors: vec![ml_behavior(METRIC, Level::High, 1)],
            targets: vec![Target::AllThings],
            alert_target_arn: None,
            retain: Vec::new(),
        }],
        ..DetectConfig::default()
    }
}

fn config() -> Compiled {
    Compiled::new(&detect_config())
}

fn models(gate: ModelGate) -> Models {
    Models::new(&DefenderSettings {
        datapoint_period: Duration::from_secs(1),
        ml_gate: gate,
        ..DefenderSettings::default()
    })
}

/// The end of period `n` counted from [`START`], at a 1 s real period.
fn end(n: u64) -> Timestamp {
    Timestamp::from_millis((START + n) * 1000)
}

fn points(values: &[(String, f64)]) -> Vec<MlPoint> {
    values
        .iter()
        .map(|(thing, value)| MlPoint {
            profile: 0,
            rule: 0,
            thing: Arc::from(thing.as_str()),
            value: *value,
        })
        .collect()
}

/// `devices` devices sending Poisson(5) messages each period, for `days`
/// days of periods starting at period `from`.
fn feed(m: &mut Models, c: &Compiled, rng: &mut StdRng, devices: usize, from: u64, days: u64) {
    for n in from..from + days * DAY {
        let v: Vec<(String, f64)> = (0..devices)
            .map(|i| (format!("dev-{i}"), poisson(rng, 5.0)))
            .collect();
        m.judge(c, end(n), &points(&v));
    }
}

/// A model gate that builds from four days of a few devices.
fn quick_gate() -> ModelGate {
    ModelGate {
        min_days: 3,
        min_datapoints: 2000,
        ..ModelGate::default()
    }
}

/// `devices` devices of Poisson(5) for four days (seeded with `seed`):
/// an ACTIVE model, its configuration and the generator to go on with.
fn active(devices: usize, seed: u64) -> (Compiled, StdRng, Models) {
    let c = config();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut m = models(quick_gate());
    feed(&mut m, &c, &mut rng, devices, 1, 4);
    assert_eq!(summary(&m, &c).status, ModelStatus::Active);
    (c, rng, m)
}

fn summary(m: &Models, c: &Compiled) -> ModelSummary {
    let s = m.summaries(c, Some("ml"));
    assert_eq!(s.len(), 1, "{s:?}");
    s.into_iter().next().expect("one")
}

#[test]
fn no_data_yet_is_pending_at_zero() {
    let s = summary(&models(ModelGate::default()), &config());
    assert_eq!(s.status, ModelStatus::PendingBuild);
    assert_eq!(s.datapoints_collection_percentage, 0.0);
    assert_eq!(s.training_data_collection_start, None);
    assert_eq!((s.profile.as_str(), s.behavior.as_str()), ("ml", METRIC));
}

#[test]
fn five_devices_for_fourteen_days_stay_pending_seven_build() {
    // Spec case 26: 5 × 288 × 14 = 20,160 < 25,000.
    let c = config();
    let mut rng = StdRng::seed_from_u64(1);
    let mut m = models(ModelGate::default());
    feed(&mut m, &c, &mut rng, 5, 1, 14);
    // The first period of day 14 trains on days 0–13.
    m.judge(&c, end(14 * DAY + 1), &[]);
    let s = summary(&m, &c);
    assert_eq!(s.status, ModelStatus::PendingBuild);
    assert!(
        (s.datapoints_collection_percentage - 80.64).abs() < 1e-9,
        "{s:?}"
    );
    // Collection started with the first datapoint, in wall time.
    assert_eq!(s.training_data_collection_start, Some(end(1)));
    assert_eq!(s.last_model_refresh, None);

    let mut m = models(ModelGate::default());
    feed(&mut m, &c, &mut rng, 7, 1, 14);
    m.judge(&c, end(14 * DAY + 1), &[]);
    let s = summary(&m, &c);
    assert_eq!(s.status, ModelStatus::Active, "{s:?}");
    assert_eq!(s.datapoints_collection_percentage, 100.0);
    // Refreshed with the period starting at the data clock's midnight.
    assert_eq!(s.last_model_refresh, Some(end(14 * DAY + 1)));
}

#[test]
fn failing_builds_expire() {
    let gate = ModelGate {
        min_days: 2,
        min_datapoints: 1000,
        max_failed_builds: 3,
        fast_start_days: 0,
    };
    let c = config();
    let mut m = models(gate);
    let mut status = Vec::new();
    for day in 0..6 {
        // Ten datapoints a day: never the 1,000 a build needs.
        for n in 1..=DAY {
            let v = if n <= 10 {
                vec![("dev-0".to_owned(), 3.0)]
            } else {
                Vec::new()
            };
            m.judge(&c, end(day * DAY + n), &points(&v));
        }
        status.push(summary(&m, &c).status);
    }
    use ModelStatus::*;
    // Builds fail from day 2 (the first with two days of data); the third
    // failure, on day 4, expires the model, for good.
    assert_eq!(
        status,
        [
            PendingBuild,
            PendingBuild,
            PendingBuild,
            PendingBuild,
            Expired,
            Expired
        ]
    );
}

#[test]
fn an_active_model_alarms_high_on_a_burst() {
    let (c, mut rng, mut m) = active(8, 7);

    let mut book = AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(0));
    let at = 4 * DAY + 1;
    let mut v: Vec<(String, f64)> = (0..8)
        .map(|i| (format!("dev-{i}"), poisson(&mut rng, 5.0)))
        .collect();
    v[3].1 = 400.0;
    let out = m.judge(&c, end(at), &points(&v));
    // One per device, and the fleet's (not violating: one device is no
    // fleet event).
    assert_eq!(out.len(), 9);
    let mut events = Vec::new();
    for o in out {
        let violating = matches!(o.outcome, DatapointOutcome::Violating(_));
        assert_eq!(
            violating,
            &*o.key.thing_name == "dev-3",
            "{}",
            o.key.thing_name
        );
        if let Some(mut e) = book.observe(&o.key, &o.behavior, o.outcome.clone(), end(at)) {
            o.annotate(&mut e);
            events.push(e);
        }
    }
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.violation_event_type, ViolationEventType::InAlarm);
    assert_eq!(e.thing_name, "dev-3");
    let info = e.violation_event_additional_info.expect("additional info");
    assert_eq!(info.confidence_level, Some(ConfidenceLevel::High));
    // Our extension: a HIGH score, and the burst against a few expected.
    let (score, observed, expected) = (
        info.score.expect("score"),
        info.observed.expect("observed"),
        info.expected.expect("expected"),
    );
    assert!(score >= 8.0, "{info:?}");
    assert!(observed >= 400.0 && expected < 100.0, "{info:?}");
    let json = serde_json::to_value(e).expect("json");

    // The operator marks it BENIGN_POSITIVE: the same burst right after is
    // dev-3's new normal, while another device's equal burst still alarms.
    let burst = |m: &mut Models, n: u64, who: usize, rng: &mut StdRng| {
        let mut v: Vec<(String, f64)> = (0..8)
            .map(|i| (format!("dev-{i}"), poisson(rng, 5.0)))
            .collect();
        v[who].1 = 400.0;
        m.judge(&c, end(n), &points(&v))
            .into_iter()
            .filter(|o| matches!(o.outcome, DatapointOutcome::Violating(_)))
            .map(|o| o.key.thing_name.to_string())
            .collect::<Vec<_>>()
    };
    m.accept("ml", METRIC, "dev-3", end(at), end(at + 1));
    assert_eq!(burst(&mut m, at + 1, 3, &mut rng), Vec::<String>::new());
    assert_eq!(burst(&mut m, at + 2, 5, &mut rng), ["dev-5"]);
    assert_eq!(
        json["violationEventAdditionalInfo"]["confidenceLevel"],
        "HIGH"
    );
    assert!(json["violationEventAdditionalInfo"]["score"].is_number());
}

#[test]
fn models_of_removed_behaviours_are_dropped() {
    let c = config();
    let mut m = models(ModelGate::default());
    m.judge(&c, end(1), &points(&[("dev-0".to_owned(), 1.0)]));
    assert!(summary(&m, &c).training_data_collection_start.is_some());
    m.judge(&Compiled::new(&DetectConfig::default()), end(2), &[]);
    assert!(summary(&m, &c).training_data_collection_start.is_none());
}

struct NoAlerts;

impl super::AlertSender for NoAlerts {
    fn send(&self, _: &str, _: &crate::detect::model::ViolationEvent) {}
}

/// Three devices' datapoints of [`METRIC`] in the series of `dimension`
/// (a store dimension) for the last 700 one-second periods (two model
/// days and more), as an earlier run stored them; the first one's time.
fn store_history(db: &crate::store::DefenderDb, dimension: &str) -> Timestamp {
    use crate::store::SeriesKey;

    let now_s = super::now().as_millis() / 1000;
    let value = crate::detect::model::MetricValue {
        count: Some(5),
        ..Default::default()
    };
    let things = ["dev-0", "dev-1", "dev-2"];
    let rows: Vec<_> = things
        .iter()
        .flat_map(|t| {
            (0..700).map(|k| {
                (
                    SeriesKey::new(t, METRIC, dimension),
                    Timestamp::from_millis((now_s - 700 + k) * 1000),
                    &value,
                )
            })
        })
        .collect();
    db.metrics().put_period(&rows).expect("store");
    Timestamp::from_millis((now_s - 700) * 1000)
}

/// A defender on `db` with one-second periods and a gate two model days
/// of three devices pass.
fn restart(db: crate::store::DefenderDb, config: &DetectConfig) -> super::Defender {
    let settings = DefenderSettings {
        datapoint_period: Duration::from_secs(1),
        ml_gate: ModelGate {
            min_days: 1,
            min_datapoints: 500,
            ..ModelGate::default()
        },
        ..DefenderSettings::default()
    };
    let d = super::Defender::start(settings, db, None, Arc::new(NoAlerts)).expect("start");
    d.set_config(config);
    d
}

#[test]
fn a_restart_rebuilds_models_from_stored_datapoints() {
    use crate::store::{DefenderDb, ViolationFilter};

    let dir = tempfile::tempdir().expect("tmp");
    let db = DefenderDb::open(dir.path()).expect("db");
    let first = store_history(&db, "");
    let d = restart(db, &detect_config());
    let before = d.model_summaries(None);
    assert_eq!(before[0].status, ModelStatus::PendingBuild);
    d.close_period_now();
    let s = d.model_summaries(Some("ml"));
    assert_eq!(s[0].status, ModelStatus::Active, "{s:?}");
    assert_eq!(s[0].training_data_collection_start, Some(first));
    let active = d
        .list_active_violations(&ViolationFilter::default(), None, None)
        .expect("list");
    assert!(active.items.is_empty(), "history raised {:?}", active.items);
    d.shutdown();
}

/// An ML behaviour with a TOPIC_FILTER dimension (spec §8 allows one on
/// messages sent) learns its own series: the stored history of the
/// dimension builds its model, and none of it reaches the behaviour on
/// all messages.
#[test]
fn a_dimensioned_model_is_rebuilt_from_its_own_series() {
    use crate::detect::model::{DimensionValueOperator, MetricDimension};
    use crate::store::DefenderDb;

    let dir = tempfile::tempdir().expect("tmp");
    let db = DefenderDb::open(dir.path()).expect("db");
    let first = store_history(&db, "telemetry");
    let mut config = detect_config();
    let mut in_dim = ml_behavior(METRIC, Level::High, 1);
    in_dim.name = "telemetry-ml".into();
    in_dim.metric_dimension = Some(MetricDimension {
        dimension_name: "telemetry".into(),
        operator: Some(DimensionValueOperator::In),
    });
    config.profiles[0].behaviors.push(in_dim);
    config
        .dimensions
        .insert("telemetry".into(), vec!["t/#".into()]);
    let d = restart(db, &config);
    d.close_period_now();
    let s = d.model_summaries(Some("ml"));
    let status: Vec<_> = s
        .iter()
        .map(|s| {
            (
                s.behavior.as_str(),
                s.status,
                s.training_data_collection_start,
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            (METRIC, ModelStatus::PendingBuild, None),
            ("telemetry-ml", ModelStatus::Active, Some(first)),
        ]
    );
    d.shutdown();
}

/// 30 devices, a model trained on four days of Poisson(5), and then every
/// device jumps at the same datapoint: the fleet gate folds the 30 device
/// alarms into one profile-level alarm, which clears once the jump has
/// left the model's windows, with no device alarm at any point.
#[test]
fn a_fleet_wide_jump_is_one_profile_level_alarm() {
    let (c, mut rng, mut m) = active(30, 11);

    let mut book = AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(0));
    let mut events = Vec::new();
    let at = 4 * DAY + 1;
    for n in at..at + 24 {
        let v: Vec<(String, f64)> = (0..30)
            .map(|i| {
                let x = poisson(&mut rng, 5.0);
                (format!("dev-{i}"), if n == at { x + 400.0 } else { x })
            })
            .collect();
        let out = m.judge(&c, end(n), &points(&v));
        // One outcome per device and one for the fleet.
        assert_eq!(out.len(), 31, "period {n}");
        for o in out {
            let violating = matches!(o.outcome, DatapointOutcome::Violating(_));
            assert!(
                !violating || &*o.key.thing_name == FLEET_THING,
                "device alarm at period {n}: {:?}",
                o.judgement
            );
            if let Some(mut e) = book.observe(&o.key, &o.behavior, o.outcome.clone(), end(n)) {
                o.annotate(&mut e);
                events.push((n, e));
            }
        }
    }
    let kinds: Vec<_> = events
        .iter()
        .map(|(n, e)| (*n, e.thing_name.as_str(), e.violation_event_type))
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0], (at, FLEET_THING, ViolationEventType::InAlarm));
    assert_eq!(kinds[1].1, FLEET_THING);
    assert_eq!(kinds[1].2, ViolationEventType::AlarmCleared);
    let e = &events[0].1;
    assert_eq!(
        (e.security_profile_name.as_str(), e.behavior.name.as_str()),
        ("ml", METRIC)
    );
    // The value is how many devices were anomalous.
    assert_eq!(e.metric_value.as_ref().and_then(|v| v.count), Some(30));
    let info = e.violation_event_additional_info.expect("additional info");
    assert_eq!(info.confidence_level, Some(ConfidenceLevel::High));
    assert_eq!(info.observed, Some(30.0));
}

/// A fleet-wide step (every device from 5 to 40 messages a period) is a
/// `$fleet` alarm that lasts while the devices stay anomalous; an
/// operator's BENIGN_POSITIVE on it makes the new level every device's
/// normal at once: the alarm clears and no device alarms instead.
#[test]
fn benign_positive_on_the_fleet_alarm_accepts_the_fleet_change() {
    let run = |accept: bool| {
        let (c, mut rng, mut m) = active(30, 12);
        let at = 4 * DAY + 100;
        let mut violating = Vec::new();
        for n in at..at + 36 {
            if accept && n == at + 6 {
                m.accept("ml", METRIC, FLEET_THING, end(at), end(n));
            }
            let v: Vec<(String, f64)> = (0..30)
                .map(|i| (format!("dev-{i}"), poisson(&mut rng, 40.0)))
                .collect();
            for o in m.judge(&c, end(n), &points(&v)) {
                if matches!(o.outcome, DatapointOutcome::Violating(_)) && n >= at + 6 {
                    violating.push((n, o.key.thing_name.to_string()));
                }
            }
        }
        violating
    };
    let kept = run(false);
    assert!(kept.iter().any(|(_, t)| t == FLEET_THING), "{kept:?}");
    assert_eq!(run(true), Vec::<(u64, String)>::new());
}

/// A client whose ID is the reserved fleet name is not modelled, so it
/// can neither hold nor clear the profile-level alarm.
#[test]
fn the_fleet_name_is_not_a_device() {
    let c = config();
    let mut m = models(ModelGate::default());
    m.judge(&c, end(1), &points(&[(FLEET_THING.to_owned(), 3.0)]));
    assert_eq!(summary(&m, &c).training_data_collection_start, None);
}

mod live {
    //! Device-side and custom ML behaviours through the running defender:
    //! device reports on the report topic, a real `defender.redb` holding
    //! the history the models are rebuilt from at the first period, the
    //! worker, the alarm book, alerts and the violation counters.

    use std::time::Duration;

    use serde_json::json;

    use super::super::tests::{report, start_with, Fixture, ARN};
    use super::super::{DetectConfig, ProfileConfig, Target, FLEET_THING};
    use super::{ml_behavior, Level, ModelGate, ModelStatus};
    use crate::detect::model::{
        ConfidenceLevel, CustomMetricType, MetricValue, Timestamp, ViolationEventType,
    };
    use crate::settings::DefenderSettings;
    use crate::store::{DefenderDb, SeriesKey};

    const CONNS: &str = "aws:num-established-tcp-connections";
    const SESSIONS: &str = "sessions";
    const DEVICES: usize = 30;
    /// Stored history: four model days of 12 one-hour periods (hour-long
    /// periods, so the worker closes none on its own during a test).
    const HISTORY: u64 = 48;

    /// A device's usual values in period `k`: a few connections, about
    /// twenty sessions, varying a little.
    fn usual(i: usize, k: u64) -> (u64, f64) {
        let j = i as u64 + k;
        (4 + j % 3, 20.0 + (j % 5) as f64)
    }

    /// A defender whose store holds [`HISTORY`] periods of every device's
    /// reports, with one profile of two HIGH ML behaviours on them.
    fn start() -> Fixture {
        let dir = tempfile::tempdir().expect("tmp");
        let db = DefenderDb::open(dir.path()).expect("db");
        let period_s = 3600;
        let now_n = super::super::now().as_millis() / 1000 / period_s;
        let mut values = Vec::new();
        for k in 0..HISTORY {
            // Mid-period, as a report arrives.
            let at = Timestamp::from_millis(((now_n - HISTORY + k) * period_s + 1800) * 1000);
            for i in 0..DEVICES {
                let (conns, sessions) = usual(i, k);
                let thing = format!("dev-{i}");
                values.push((
                    thing.clone(),
                    CONNS,
                    at,
                    MetricValue {
                        count: Some(conns),
                        ..MetricValue::default()
                    },
                ));
                values.push((
                    thing,
                    SESSIONS,
                    at,
                    MetricValue {
                        number: Some(sessions),
                        ..MetricValue::default()
                    },
                ));
            }
        }
        let rows: Vec<_> = values
            .iter()
            .map(|(thing, metric, at, v)| (SeriesKey::new(thing, metric, ""), *at, v))
            .collect();
        db.metrics().put_period(&rows).expect("store history");
        drop(db);
        let mut behaviors = vec![
            ml_behavior(CONNS, Level::High, 3),
            ml_behavior(SESSIONS, Level::High, 3),
        ];
        behaviors[1].name = "sessions-ml".into();
        let config = DetectConfig {
            profiles: vec![ProfileConfig {
                name: "ml".into(),
                behaviors,
                targets: vec![Target::AllThings],
                alert_target_arn: Some(ARN.into()),
                retain: Vec::new(),
            }],
            custom_metrics: [(SESSIONS.to_owned(), CustomMetricType::Number)].into(),
            ..DetectConfig::default()
        };
        let settings = DefenderSettings {
            datapoint_period: Duration::from_secs(period_s),
            ml_period_secs: 7200,
            ml_gate: ModelGate {
                min_days: 1,
                min_datapoints: 500,
                ..ModelGate::default()
            },
            ..DefenderSettings::default()
        };
        start_with(dir, settings, &config)
    }

    /// Every device reports once; `jump` says which report jumped.
    fn report_all(f: &Fixture, jump: impl Fn(usize) -> bool) {
        for i in 0..DEVICES {
            let (mut conns, mut sessions) = usual(i, HISTORY);
            if jump(i) {
                (conns, sessions) = (300, 2000.0);
            }
            let topic = format!("$aws/things/dev-{i}/defender/metrics/json");
            let body = json!({
                "header": {"report_id": 1, "version": "1.0"},
                "metrics": {"tcp_connections": {"established_connections": {"total": conns}}},
                "custom_metrics": {SESSIONS: [{"number": sessions}]}
            });
            let replies = f
                .defender
                .on_publish(&topic, &report(body))
                .expect("consumed");
            assert_eq!(replies[0].0, format!("{topic}/accepted"));
        }
    }

    #[test]
    fn device_side_and_custom_models_build_and_alarm_on_a_jump() {
        let f = start();
        // Nothing judged yet: the models wait for the first period.
        let before = f.defender.model_summaries(Some("ml"));
        assert!(
            before.iter().all(|s| s.status == ModelStatus::PendingBuild),
            "{before:?}"
        );
        report_all(&f, |i| i == 3);
        f.defender.close_period_now();
        let summaries = f.defender.model_summaries(Some("ml"));
        assert_eq!(summaries.len(), 2, "{summaries:?}");
        for s in &summaries {
            assert_eq!(s.status, ModelStatus::Active, "{s:?}");
        }
        let mut active = f.active();
        active.sort_by(|a, b| a.behavior.name.cmp(&b.behavior.name));
        let seen: Vec<_> = active
            .iter()
            .map(|a| (a.thing_name.as_str(), a.behavior.name.as_str()))
            .collect();
        assert_eq!(seen, [("dev-3", CONNS), ("dev-3", "sessions-ml")]);
        let value = |k: usize| active[k].last_violation_value.clone().expect("value");
        assert_eq!(value(0).count, Some(300));
        // A custom metric's value is a number, as its behaviours use.
        assert_eq!((value(1).count, value(1).number), (None, Some(2000.0)));
        for a in &active {
            let info = a.violation_event_additional_info.expect("info");
            assert_eq!(info.confidence_level, Some(ConfidenceLevel::High));
        }
        let alerts = super::super::lock(&f.alerts.0).clone();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(alerts
            .iter()
            .all(|(arn, e)| arn == ARN && e.thing_name == "dev-3"));
    }

    #[test]
    fn a_fleet_wide_report_jump_is_one_alarm_per_behaviour() {
        let f = start();
        report_all(&f, |_| true);
        f.defender.close_period_now();
        let mut active = f.active();
        active.sort_by(|a, b| a.behavior.name.cmp(&b.behavior.name));
        let seen: Vec<_> = active
            .iter()
            .map(|a| (a.thing_name.as_str(), a.behavior.name.as_str()))
            .collect();
        assert_eq!(seen, [(FLEET_THING, CONNS), (FLEET_THING, "sessions-ml")]);
        // The fleet's value counts the anomalous devices, for both.
        for a in &active {
            let v = a.last_violation_value.clone().expect("value");
            assert_eq!(v.count, Some(DEVICES as u64), "{a:?}");
        }
        let events = f.events();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events.iter().all(|e| e.thing_name == FLEET_THING
            && e.violation_event_type == ViolationEventType::InAlarm));
        let alerts = super::super::lock(&f.alerts.0).clone();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        let tally = f.defender.tally();
        assert_eq!(
            tally
                .violations
                .get(&("ml".to_owned(), CONNS.to_owned(), "in-alarm")),
            Some(&1)
        );
    }
}

/// The live engine pairs a profile's messages-sent and messages-received
/// ML behaviours: a device doing more of both by the same factor is not
/// HIGH (a change of workload, `ml::workload`), one sending alone is.
#[test]
fn sent_and_received_rising_together_is_not_high() {
    const RECEIVED: &str = "aws:num-messages-received";
    let c = Compiled::new(&DetectConfig {
        profiles: vec![ProfileConfig {
            name: "ml".into(),
            behaviors: vec![
                ml_behavior(METRIC, Level::High, 1),
                ml_behavior(RECEIVED, Level::High, 1),
            ],
            targets: vec![Target::AllThings],
            alert_target_arn: None,
            retain: Vec::new(),
        }],
        ..DetectConfig::default()
    });
    let mut rng = StdRng::seed_from_u64(7);
    let mut m = models(quick_gate());
    let period = |rng: &mut StdRng, sent: &[(usize, f64)], recv: &[(usize, f64)]| {
        let mut v = Vec::new();
        for rule in 0..2 {
            for i in 0..8 {
                let over = if rule == 0 { sent } else { recv };
                let value = over
                    .iter()
                    .find(|(d, _)| *d == i)
                    .map_or_else(|| poisson(rng, 5.0), |(_, x)| *x);
                v.push(MlPoint {
                    profile: 0,
                    rule,
                    thing: Arc::from(format!("dev-{i}").as_str()),
                    value,
                });
            }
        }
        v
    };
    for n in 1..=4 * DAY {
        let v = period(&mut rng, &[], &[]);
        m.judge(&c, end(n), &v);
    }
    let v = period(&mut rng, &[(3, 60.0), (5, 60.0)], &[(3, 60.0)]);
    let mut high: Vec<String> = m
        .judge(&c, end(4 * DAY + 1), &v)
        .into_iter()
        .filter(|o| matches!(o.outcome, DatapointOutcome::Violating(_)))
        .map(|o| format!("{} {}", o.key.thing_name, o.behavior.name))
        .collect();
    high.sort();
    assert_eq!(high, [format!("dev-5 {METRIC}")]);
}
