//! The alarm state machine (spec §7.1, §7.2): one small state per
//! (thing, profile, behaviour, dimension), fed one datapoint outcome at a
//! time, emitting `in-alarm`, `alarm-cleared` and `alarm-invalidated`.
//!
//! | state | input | next / event |
//! |---|---|---|
//! | normal, n violating in a row | violating | n+1; at A: in alarm, `in-alarm` with a new ID |
//! | normal | compliant | n := 0 |
//! | in alarm, m compliant in a row | compliant | m+1; at C: normal, `alarm-cleared` |
//! | in alarm | violating | m := 0; last value and time updated, no event |
//! | in alarm | no data for longer than the invalidation period | `alarm-invalidated`, gone |
//!
//! Choices the spec leaves open:
//! - **No data** is not a datapoint: it neither continues nor breaks a
//!   streak. A violating streak older than the invalidation period is
//!   forgotten, not continued.
//! - **Invalidation happens in [`AlarmBook::sweep`]** only; the evaluator
//!   sweeps once per datapoint period, after observing that period's
//!   datapoints. An alarm whose data resumes in the period it would have
//!   expired therefore continues rather than being invalidated and raised
//!   again under a new ID.
//! - A clock that steps back never moves `lastData` backwards.
//! - `alarm-invalidated` carries no `metricValue` (there is no new value);
//!   `alarm-cleared` carries the compliant value that cleared it.
//! - **Suppressed** behaviours change state and emit events exactly like
//!   others; the event's `behavior.suppressAlerts` tells sinks to stay quiet
//!   ([`ViolationEvent::suppressed`]).
//!
//! Memory: a key whose last datapoint complied and that is not in alarm is
//! not stored at all, so a healthy fleet costs nothing. A stored key costs
//! its [`AlarmKey`] (64 bytes: four shared `Arc<str>` names, which callers
//! intern per thing and per profile) plus a 16-byte [`Entry`] in the map,
//! about 90 bytes with the table's overhead; an alarm adds one boxed
//! [`Alarm`] (see the `sizes` test) plus its last value's list, if any.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ids::{ViolationId, ViolationIdGen};
use crate::detect::evaluate::DatapointOutcome;
use crate::detect::model::{
    ActiveViolation, Behavior, MetricValue, Timestamp, VerificationState, ViolationEvent,
    ViolationEventAdditionalInfo, ViolationEventType,
};

/// AWS invalidates after more than two days without data.
pub const DEFAULT_INVALIDATE_AFTER_MS: u64 = 2 * 24 * 3600 * 1000;
/// `VerificationStateDescription` max length.
pub const MAX_VERIFICATION_DESCRIPTION: usize = 1000;

/// What an alarm is about. Names are `Arc<str>` so the millions of keys of a
/// large fleet share one copy of each thing and profile name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmKey {
    pub thing_name: Arc<str>,
    pub security_profile_name: Arc<str>,
    pub behavior_name: Arc<str>,
    /// The behaviour's dimension (name, or name and operator), so that
    /// pointing a behaviour at another dimension starts a fresh alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<Arc<str>>,
}

impl AlarmKey {
    pub fn new(thing: &Arc<str>, profile: &Arc<str>, behavior: &Arc<str>) -> Self {
        Self {
            thing_name: Arc::clone(thing),
            security_profile_name: Arc::clone(profile),
            behavior_name: Arc::clone(behavior),
            dimension: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmConfig {
    /// An alarm whose key got no datapoint for longer than this is
    /// invalidated. Default two days (AWS).
    pub invalidate_after_ms: u64,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        Self {
            invalidate_after_ms: DEFAULT_INVALIDATE_AFTER_MS,
        }
    }
}

/// One key's state. Small on purpose: see the module notes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Entry {
    /// Not in alarm, `bad` (≥ 1) violating datapoints in a row so far.
    Pending {
        bad: u8,
        last_data: Timestamp,
    },
    InAlarm(Box<Alarm>),
}

/// A raised alarm: everything ListActiveViolations shows and the later
/// events of the same violation repeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    id: ViolationId,
    /// The behaviour as last evaluated, shared with the profile.
    behavior: Arc<Behavior>,
    violation_start_time: Timestamp,
    last_violation_time: Timestamp,
    last_violation_value: MetricValue,
    last_data: Timestamp,
    /// Compliant datapoints in a row since the last violating one.
    good: u8,
    verification_state: VerificationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verification_state_description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerificationError {
    /// No active violation has this ID; it may be in the violation history,
    /// which the caller updates instead.
    #[error("no active violation with id {0}")]
    NotActive(String),
    #[error(
        "verificationStateDescription is longer than {MAX_VERIFICATION_DESCRIPTION} characters"
    )]
    DescriptionTooLong,
    #[error("verificationStateDescription must not contain control characters")]
    DescriptionHasControlCharacters,
}

/// Checks a verification description against the model (≤ 1000 characters,
/// pattern `[^\p{Cntrl}]*`). Public so the history store applies the same
/// rule to past violations.
pub fn check_verification_description(d: &str) -> Result<(), VerificationError> {
    if d.chars().count() > MAX_VERIFICATION_DESCRIPTION {
        return Err(VerificationError::DescriptionTooLong);
    }
    if d.chars().any(char::is_control) {
        return Err(VerificationError::DescriptionHasControlCharacters);
    }
    Ok(())
}

/// Every alarm of the broker, serialisable as a whole so it survives a
/// restart (the ID counter included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmBook {
    config: AlarmConfig,
    ids: ViolationIdGen,
    #[serde(with = "pairs")]
    entries: HashMap<AlarmKey, Entry>,
}

impl AlarmBook {
    pub fn new(config: AlarmConfig, ids: ViolationIdGen) -> Self {
        Self {
            config,
            ids,
            entries: HashMap::new(),
        }
    }

    pub fn config(&self) -> AlarmConfig {
        self.config
    }

    /// Changes the configuration, e.g. after loading a stored book.
    pub fn set_config(&mut self, config: AlarmConfig) {
        self.config = config;
    }

    /// Keys with state (a violating streak or an alarm).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// Feeds one datapoint's outcome for `key`, judged against `behavior`
    /// (whose consecutive counts and suppression apply, and which events
    /// carry). Returns the event this datapoint caused, if any.
    pub fn observe(
        &mut self,
        key: &AlarmKey,
        behavior: &Arc<Behavior>,
        outcome: DatapointOutcome,
        now: Timestamp,
    ) -> Option<ViolationEvent> {
        let to_alarm = behavior.datapoints_to_alarm();
        let to_clear = behavior.datapoints_to_clear();
        let stale_after = self.config.invalidate_after_ms;
        match (self.entries.get_mut(key), outcome) {
            (_, DatapointOutcome::NoData) => None,

            (None, DatapointOutcome::NotViolating(_)) => None,
            (Some(Entry::Pending { .. }), DatapointOutcome::NotViolating(_)) => {
                self.entries.remove(key);
                None
            }
            (None, DatapointOutcome::Violating(value)) => {
                self.violating_while_normal(key, behavior, 0, to_alarm, value, now)
            }
            (Some(Entry::Pending { bad, last_data }), DatapointOutcome::Violating(value)) => {
                // A streak interrupted by a long silence is not consecutive.
                let so_far = if now.millis_since(*last_data) > stale_after {
                    0
                } else {
                    u32::from(*bad)
                };
                self.violating_while_normal(key, behavior, so_far, to_alarm, value, now)
            }

            (Some(Entry::InAlarm(a)), DatapointOutcome::Violating(value)) => {
                a.good = 0;
                a.last_violation_value = value;
                a.last_violation_time = a.last_violation_time.max(now);
                a.last_data = a.last_data.max(now);
                refresh_behavior(a, behavior);
                None
            }
            (Some(Entry::InAlarm(a)), DatapointOutcome::NotViolating(value)) => {
                a.good = a.good.saturating_add(1);
                a.last_data = a.last_data.max(now);
                refresh_behavior(a, behavior);
                if u32::from(a.good) < to_clear {
                    return None;
                }
                let Some(Entry::InAlarm(a)) = self.entries.remove(key) else {
                    return None;
                };
                Some(event(
                    key,
                    &a,
                    ViolationEventType::AlarmCleared,
                    Some(value),
                    now,
                ))
            }
        }
    }

    fn violating_while_normal(
        &mut self,
        key: &AlarmKey,
        behavior: &Arc<Behavior>,
        so_far: u32,
        to_alarm: u32,
        value: MetricValue,
        now: Timestamp,
    ) -> Option<ViolationEvent> {
        let bad = so_far.saturating_add(1);
        if bad < to_alarm {
            // `to_alarm` ≤ 10 after validation; saturate rather than wrap if
            // an unvalidated behaviour asks for more.
            let bad = u8::try_from(bad).unwrap_or(u8::MAX);
            self.entries.insert(
                key.clone(),
                Entry::Pending {
                    bad,
                    last_data: now,
                },
            );
            return None;
        }
        let alarm = Alarm {
            id: self.ids.next_id(),
            behavior: Arc::clone(behavior),
            violation_start_time: now,
            last_violation_time: now,
            last_violation_value: value,
            last_data: now,
            good: 0,
            verification_state: VerificationState::Unknown,
            verification_state_description: None,
        };
        let ev = event(
            key,
            &alarm,
            ViolationEventType::InAlarm,
            Some(alarm.last_violation_value.clone()),
            now,
        );
        self.entries
            .insert(key.clone(), Entry::InAlarm(Box::new(alarm)));
        Some(ev)
    }

    /// Invalidates alarms with no data for longer than the configured period
    /// and forgets stale violating streaks. Run once per datapoint period.
    pub fn sweep(&mut self, now: Timestamp) -> Vec<ViolationEvent> {
        let limit = self.config.invalidate_after_ms;
        self.remove_where(now, |_, last_data| now.millis_since(last_data) > limit)
    }

    /// Invalidates every alarm whose key matches, now: the device left the
    /// profile's targets, the behaviour or profile was deleted, the thing
    /// was deleted ("no longer monitored", spec §7.1).
    pub fn invalidate_where(
        &mut self,
        now: Timestamp,
        mut matches: impl FnMut(&AlarmKey) -> bool,
    ) -> Vec<ViolationEvent> {
        self.remove_where(now, |k, _| matches(k))
    }

    fn remove_where(
        &mut self,
        now: Timestamp,
        mut remove: impl FnMut(&AlarmKey, Timestamp) -> bool,
    ) -> Vec<ViolationEvent> {
        let mut events = Vec::new();
        self.entries.retain(|key, entry| {
            let last_data = match entry {
                Entry::Pending { last_data, .. } => *last_data,
                Entry::InAlarm(a) => a.last_data,
            };
            if !remove(key, last_data) {
                return true;
            }
            if let Entry::InAlarm(a) = entry {
                events.push(event(
                    key,
                    a,
                    ViolationEventType::AlarmInvalidated,
                    None,
                    now,
                ));
            }
            false
        });
        // HashMap order is random; callers and tests want a stable order.
        events.sort_by(|a, b| a.violation_id.cmp(&b.violation_id));
        events
    }

    /// The alarms currently raised (ListActiveViolations), in no order.
    /// Every key with a streak or an alarm.
    pub fn keys(&self) -> impl Iterator<Item = &AlarmKey> + '_ {
        self.entries.keys()
    }

    pub fn active(&self) -> impl Iterator<Item = ActiveViolation> + '_ {
        self.entries.iter().filter_map(|(key, e)| match e {
            Entry::InAlarm(a) => Some(active(key, a)),
            Entry::Pending { .. } => None,
        })
    }

    /// The active violation with this ID, if any.
    pub fn active_violation(&self, violation_id: &str) -> Option<ActiveViolation> {
        let id: ViolationId = violation_id.parse().ok()?;
        self.entries.iter().find_map(|(key, e)| match e {
            Entry::InAlarm(a) if a.id == id => Some(active(key, a)),
            _ => None,
        })
    }

    /// PutVerificationStateOnViolation for an active violation. Later
    /// events of the violation carry the new state. A linear scan: this is
    /// a rare operator action, and an index would cost every alarm memory.
    pub fn set_verification_state(
        &mut self,
        violation_id: &str,
        state: VerificationState,
        description: Option<String>,
    ) -> Result<(), VerificationError> {
        if let Some(d) = &description {
            check_verification_description(d)?;
        }
        let not_active = || VerificationError::NotActive(violation_id.to_owned());
        let id: ViolationId = violation_id.parse().map_err(|()| not_active())?;
        let alarm = self
            .entries
            .values_mut()
            .find_map(|e| match e {
                Entry::InAlarm(a) if a.id == id => Some(a),
                _ => None,
            })
            .ok_or_else(not_active)?;
        alarm.verification_state = state;
        alarm.verification_state_description = description;
        Ok(())
    }
}

/// Keeps the alarm's behaviour current (an updated threshold or
/// suppression shows in later events) without a clone when unchanged.
fn refresh_behavior(a: &mut Alarm, behavior: &Arc<Behavior>) {
    if !Arc::ptr_eq(&a.behavior, behavior) {
        a.behavior = Arc::clone(behavior);
    }
}

/// ML behaviours report their confidence level on every event.
fn additional_info(b: &Behavior) -> Option<ViolationEventAdditionalInfo> {
    let ml = b.criteria.as_ref()?.ml_detection_config?;
    Some(ViolationEventAdditionalInfo {
        confidence_level: Some(ml.confidence_level),
        ..ViolationEventAdditionalInfo::default()
    })
}

fn event(
    key: &AlarmKey,
    a: &Alarm,
    kind: ViolationEventType,
    metric_value: Option<MetricValue>,
    now: Timestamp,
) -> ViolationEvent {
    ViolationEvent {
        violation_id: a.id.to_string(),
        thing_name: key.thing_name.to_string(),
        security_profile_name: key.security_profile_name.to_string(),
        behavior: (*a.behavior).clone(),
        metric_value,
        violation_event_additional_info: additional_info(&a.behavior),
        violation_event_type: kind,
        verification_state: a.verification_state,
        verification_state_description: a.verification_state_description.clone(),
        violation_event_time: now,
        violation_start_time: Some(a.violation_start_time),
    }
}

fn active(key: &AlarmKey, a: &Alarm) -> ActiveViolation {
    ActiveViolation {
        violation_id: a.id.to_string(),
        thing_name: key.thing_name.to_string(),
        security_profile_name: key.security_profile_name.to_string(),
        behavior: (*a.behavior).clone(),
        last_violation_value: Some(a.last_violation_value.clone()),
        violation_event_additional_info: additional_info(&a.behavior),
        verification_state: a.verification_state,
        verification_state_description: a.verification_state_description.clone(),
        last_violation_time: a.last_violation_time,
        violation_start_time: a.violation_start_time,
    }
}

/// A map with struct keys as a list of pairs: JSON objects only take string
/// keys, and a list also suits postcard.
mod pairs {
    use super::*;

    pub fn serialize<S: Serializer>(m: &HashMap<AlarmKey, Entry>, s: S) -> Result<S::Ok, S::Error> {
        // Sorted, so a stored book is byte-stable for the same state.
        let mut v: Vec<(&AlarmKey, &Entry)> = m.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HashMap<AlarmKey, Entry>, D::Error> {
        let v = Vec::<(AlarmKey, Entry)>::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::model::{BehaviorCriteria, ComparisonOperator};
    use proptest::prelude::*;
    use std::collections::HashSet;
    use DatapointOutcome::{NoData, NotViolating, Violating};

    pub(crate) fn behavior(to_alarm: Option<u32>, to_clear: Option<u32>) -> Arc<Behavior> {
        Arc::new(Behavior {
            name: "b".into(),
            metric: Some("aws:num-authorization-failures".into()),
            criteria: Some(BehaviorCriteria {
                comparison_operator: Some(ComparisonOperator::LessThan),
                value: Some(MetricValue::count(5)),
                duration_seconds: Some(300),
                consecutive_datapoints_to_alarm: to_alarm,
                consecutive_datapoints_to_clear: to_clear,
                ..BehaviorCriteria::default()
            }),
            ..Behavior::default()
        })
    }

    fn key(thing: &str) -> AlarmKey {
        AlarmKey::new(&Arc::from(thing), &Arc::from("sp"), &Arc::from("b"))
    }

    fn book() -> AlarmBook {
        AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(0))
    }

    fn bad(n: u64) -> DatapointOutcome {
        Violating(MetricValue::count(n))
    }
    fn good(n: u64) -> DatapointOutcome {
        NotViolating(MetricValue::count(n))
    }
    fn t(min: u64) -> Timestamp {
        Timestamp::from_secs(min * 60)
    }
    const DAY_MIN: u64 = 24 * 60;

    #[test]
    fn alarm_after_n_clear_after_m() {
        let (mut bk, b, k) = (book(), behavior(Some(3), Some(2)), key("t"));
        assert_eq!(bk.observe(&k, &b, bad(9), t(0)), None);
        assert_eq!(bk.observe(&k, &b, bad(9), t(5)), None);
        assert_eq!(bk.tracked(), 1);
        let e = bk
            .observe(&k, &b, bad(9), t(10))
            .expect("in-alarm at the third");
        assert_eq!(e.violation_event_type, ViolationEventType::InAlarm);
        assert_eq!(e.violation_start_time, Some(t(10)));
        assert_eq!(bk.observe(&k, &b, good(1), t(15)), None);
        let c = bk
            .observe(&k, &b, good(1), t(20))
            .expect("cleared at the second");
        assert_eq!(c.violation_event_type, ViolationEventType::AlarmCleared);
        assert_eq!(c.violation_id, e.violation_id);
        assert_eq!(c.metric_value, Some(MetricValue::count(1)));
        assert_eq!(bk.tracked(), 0, "a compliant key costs nothing");
    }

    #[test]
    fn compliant_datapoint_breaks_the_streak() {
        let (mut bk, b, k) = (book(), behavior(Some(2), None), key("t"));
        assert_eq!(bk.observe(&k, &b, bad(9), t(0)), None);
        assert_eq!(bk.observe(&k, &b, good(1), t(5)), None);
        assert_eq!(bk.tracked(), 0);
        assert_eq!(bk.observe(&k, &b, bad(9), t(10)), None);
        assert!(bk.observe(&k, &b, bad(9), t(15)).is_some());
    }

    #[test]
    fn no_data_neither_continues_nor_breaks() {
        let (mut bk, b, k) = (book(), behavior(Some(2), Some(2)), key("t"));
        bk.observe(&k, &b, bad(9), t(0));
        assert_eq!(bk.observe(&k, &b, NoData, t(5)), None);
        assert!(bk.observe(&k, &b, bad(9), t(10)).is_some());
        bk.observe(&k, &b, good(0), t(15));
        assert_eq!(bk.observe(&k, &b, NoData, t(20)), None);
        assert!(bk.observe(&k, &b, good(0), t(25)).is_some());
    }

    #[test]
    fn stale_streak_is_forgotten() {
        let (mut bk, b, k) = (book(), behavior(Some(2), None), key("t"));
        bk.observe(&k, &b, bad(9), t(0));
        assert_eq!(
            bk.observe(&k, &b, bad(9), t(3 * DAY_MIN)),
            None,
            "three days later: a new streak"
        );
        assert!(bk.observe(&k, &b, bad(9), t(3 * DAY_MIN + 5)).is_some());
    }

    #[test]
    fn violating_in_alarm_updates_last_value_and_resets_clear_count() {
        let (mut bk, b, k) = (book(), behavior(None, Some(2)), key("t"));
        bk.observe(&k, &b, bad(7), t(0)).expect("in-alarm");
        bk.observe(&k, &b, good(1), t(5));
        assert_eq!(bk.observe(&k, &b, bad(9), t(10)), None);
        let a = bk.active().next().expect("active");
        assert_eq!(a.last_violation_value, Some(MetricValue::count(9)));
        assert_eq!(a.last_violation_time, t(10));
        assert_eq!(a.violation_start_time, t(0));
        assert_eq!(
            bk.observe(&k, &b, good(1), t(15)),
            None,
            "clear count restarted"
        );
        assert!(bk.observe(&k, &b, good(1), t(20)).is_some());
    }

    #[test]
    fn invalidated_after_the_period_without_data() {
        let (mut bk, b, k) = (book(), behavior(None, None), key("t"));
        let e = bk.observe(&k, &b, bad(9), t(0)).expect("in-alarm");
        assert!(
            bk.sweep(t(2 * DAY_MIN)).is_empty(),
            "exactly two days: not yet"
        );
        let inv = bk.sweep(Timestamp::from_millis(t(2 * DAY_MIN).as_millis() + 1));
        assert_eq!(inv.len(), 1);
        assert_eq!(
            inv[0].violation_event_type,
            ViolationEventType::AlarmInvalidated
        );
        assert_eq!(inv[0].violation_id, e.violation_id);
        assert_eq!(inv[0].metric_value, None);
        assert_eq!(bk.active().count(), 0);
        assert_eq!(bk.tracked(), 0);
    }

    #[test]
    fn invalidation_period_is_configurable() {
        let mut bk = AlarmBook::new(
            AlarmConfig {
                invalidate_after_ms: 60_000,
            },
            ViolationIdGen::new(0),
        );
        let (b, k) = (behavior(Some(3), None), key("t"));
        bk.observe(&k, &b, bad(9), t(0));
        assert!(
            bk.sweep(t(2)).is_empty(),
            "a pending streak is forgotten silently"
        );
        assert_eq!(bk.tracked(), 0);
    }

    #[test]
    fn invalidate_where_for_unmonitored_things() {
        let (mut bk, b) = (book(), behavior(None, None));
        for th in ["a", "b", "c"] {
            bk.observe(&key(th), &b, bad(9), t(0)).expect("in-alarm");
        }
        let ev = bk.invalidate_where(t(1), |k| &*k.thing_name != "b");
        assert_eq!(ev.len(), 2);
        assert!(ev
            .iter()
            .all(|e| e.violation_event_type == ViolationEventType::AlarmInvalidated));
        let left: Vec<_> = bk.active().map(|a| a.thing_name).collect();
        assert_eq!(left, vec!["b".to_owned()]);
    }

    #[test]
    fn ids_are_stable_and_fresh_per_violation() {
        let (mut bk, b, k) = (book(), behavior(None, Some(1)), key("t"));
        let first = bk
            .observe(&k, &b, bad(9), t(0))
            .expect("in-alarm")
            .violation_id;
        assert_eq!(bk.observe(&k, &b, bad(9), t(5)), None);
        assert_eq!(
            bk.active().next().map(|a| a.violation_id),
            Some(first.clone())
        );
        let cleared = bk.observe(&k, &b, good(0), t(10)).expect("cleared");
        assert_eq!(cleared.violation_id, first);
        let second = bk
            .observe(&k, &b, bad(9), t(15))
            .expect("in-alarm")
            .violation_id;
        assert_ne!(second, first);
        // Same seed, same sequence: tests and replays are reproducible.
        let mut again = book();
        assert_eq!(
            again.observe(&k, &b, bad(9), t(0)).map(|e| e.violation_id),
            Some(first)
        );
    }

    #[test]
    fn verification_state() {
        let (mut bk, b, k) = (book(), behavior(None, None), key("t"));
        let e = bk.observe(&k, &b, bad(9), t(0)).expect("in-alarm");
        assert_eq!(e.verification_state, VerificationState::Unknown);
        for s in [
            VerificationState::TruePositive,
            VerificationState::BenignPositive,
            VerificationState::FalsePositive,
        ] {
            bk.set_verification_state(&e.violation_id, s, Some("lab device".into()))
                .expect("active");
            let a = bk.active_violation(&e.violation_id).expect("active");
            assert_eq!(a.verification_state, s);
            assert_eq!(
                a.verification_state_description.as_deref(),
                Some("lab device")
            );
        }
        assert_eq!(
            bk.set_verification_state(
                &e.violation_id,
                VerificationState::Unknown,
                Some("x".repeat(1001))
            ),
            Err(VerificationError::DescriptionTooLong)
        );
        assert_eq!(
            bk.set_verification_state(
                &e.violation_id,
                VerificationState::Unknown,
                Some("a\u{7}".into())
            ),
            Err(VerificationError::DescriptionHasControlCharacters)
        );
        assert!(bk
            .set_verification_state(
                &e.violation_id,
                VerificationState::Unknown,
                Some("x".repeat(1000))
            )
            .is_ok());
        bk.set_verification_state(&e.violation_id, VerificationState::FalsePositive, None)
            .expect("active");
        let c = bk.observe(&k, &b, good(0), t(5)).expect("cleared");
        assert_eq!(
            c.verification_state,
            VerificationState::FalsePositive,
            "later events carry it"
        );
        assert!(matches!(
            bk.set_verification_state(&e.violation_id, VerificationState::TruePositive, None),
            Err(VerificationError::NotActive(_))
        ));
        assert!(matches!(
            bk.set_verification_state("not-an-id", VerificationState::TruePositive, None),
            Err(VerificationError::NotActive(_))
        ));
    }

    #[test]
    fn suppressed_alerts_still_change_state() {
        let mut sb = (*behavior(None, None)).clone();
        sb.suppress_alerts = Some(true);
        let (mut bk, b, k) = (book(), Arc::new(sb), key("t"));
        let e = bk
            .observe(&k, &b, bad(9), t(0))
            .expect("in-alarm even when suppressed");
        assert!(e.suppressed());
        assert!(bk
            .active()
            .next()
            .is_some_and(|a| a.behavior.suppresses_alerts()));
        assert!(bk
            .observe(&k, &b, good(0), t(5))
            .is_some_and(|c| c.suppressed()));
        let plain = book()
            .observe(&k, &behavior(None, None), bad(9), t(0))
            .expect("in-alarm");
        assert!(!plain.suppressed());
    }

    #[test]
    fn ml_events_carry_confidence() {
        use crate::detect::model::{ConfidenceLevel, MachineLearningDetectionConfig};
        let b = Arc::new(Behavior {
            name: "ml".into(),
            criteria: Some(BehaviorCriteria {
                ml_detection_config: Some(MachineLearningDetectionConfig {
                    confidence_level: ConfidenceLevel::High,
                }),
                ..BehaviorCriteria::default()
            }),
            ..Behavior::default()
        });
        let e = book()
            .observe(&key("t"), &b, bad(1), t(0))
            .expect("in-alarm");
        assert_eq!(
            e.violation_event_additional_info
                .and_then(|i| i.confidence_level),
            Some(ConfidenceLevel::High)
        );
    }

    #[test]
    fn survives_a_restart() {
        let (mut bk, b) = (book(), behavior(Some(2), Some(2)));
        bk.observe(&key("pending"), &b, bad(9), t(0));
        bk.observe(&key("alarm"), &b, bad(9), t(0));
        let id = bk
            .observe(&key("alarm"), &b, bad(9), t(5))
            .expect("in-alarm")
            .violation_id;
        bk.observe(&key("alarm"), &b, good(0), t(10));
        let json = serde_json::to_string(&bk).expect("serialises");
        let mut back: AlarmBook = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, bk);
        // The ID counter carries on: the restored book hands out the ID the
        // original would have, not the first ID again.
        let once = behavior(None, None);
        let from_original = bk
            .clone()
            .observe(&key("x"), &once, bad(9), t(15))
            .map(|e| e.violation_id);
        let from_restored = back
            .clone()
            .observe(&key("x"), &once, bad(9), t(15))
            .map(|e| e.violation_id);
        assert_eq!(from_original, from_restored);
        assert_ne!(from_restored, Some(id.clone()));
        // The pending streak and the clear count carry on too.
        assert!(back.observe(&key("pending"), &b, bad(9), t(15)).is_some());
        let c = back
            .observe(&key("alarm"), &b, good(0), t(15))
            .expect("cleared");
        assert_eq!(c.violation_id, id);
    }

    /// Documents the per-key cost quoted in the module notes.
    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<AlarmKey>(), 64);
        assert_eq!(std::mem::size_of::<Entry>(), 16);
        println!(
            "Alarm (boxed, per raised alarm): {} bytes",
            std::mem::size_of::<Alarm>()
        );
        assert!(std::mem::size_of::<Alarm>() <= 256);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Observe { thing: u8, outcome: u8, dt_min: u64 },
        Sweep { dt_min: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u8..3, 0u8..3, 0u64..10).prop_map(|(thing, outcome, dt_min)| Op::Observe { thing, outcome, dt_min }),
            1 => (0u64..(3 * DAY_MIN)).prop_map(|dt_min| Op::Sweep { dt_min }),
        ]
    }

    proptest! {
        /// Never a clear or an invalidation without the in-alarm before it;
        /// every in-alarm has a never-seen ID; later events reuse it; the
        /// active list is exactly the open violations.
        #[test]
        fn events_follow_the_lifecycle(
            to_alarm in 1u32..4,
            to_clear in 1u32..4,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut bk = book();
            let b = behavior(Some(to_alarm), Some(to_clear));
            let mut open: HashMap<String, String> = HashMap::new(); // thing -> id
            let mut seen: HashSet<String> = HashSet::new();
            let mut now = 0u64;
            for op in ops {
                let events = match op {
                    Op::Observe { thing, outcome, dt_min } => {
                        now += dt_min;
                        let o = match outcome { 0 => bad(9), 1 => good(0), _ => NoData };
                        bk.observe(&key(&format!("t{thing}")), &b, o, t(now)).into_iter().collect()
                    }
                    Op::Sweep { dt_min } => {
                        now += dt_min;
                        bk.sweep(t(now))
                    }
                };
                for e in events {
                    match e.violation_event_type {
                        ViolationEventType::InAlarm => {
                            prop_assert!(!open.contains_key(&e.thing_name));
                            prop_assert!(seen.insert(e.violation_id.clone()), "id reused");
                            open.insert(e.thing_name.clone(), e.violation_id.clone());
                        }
                        _ => {
                            let id = open.remove(&e.thing_name);
                            prop_assert_eq!(id.as_ref(), Some(&e.violation_id), "close without open");
                        }
                    }
                }
                let mut active: Vec<(String, String)> = bk.active().map(|a| (a.thing_name, a.violation_id)).collect();
                active.sort();
                let mut expect: Vec<(String, String)> = open.clone().into_iter().collect();
                expect.sort();
                prop_assert_eq!(active, expect);
            }
        }
    }
}
