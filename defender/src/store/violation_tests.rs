//! ViolationStore and active-violation paging against real redb files.

use std::sync::Arc;

use tempfile::TempDir;

use super::*;
use crate::alarms::{AlarmBook, AlarmConfig, AlarmKey, ViolationIdGen};
use crate::detect::evaluate::DatapointOutcome;
use crate::detect::model::{
    Behavior, BehaviorCriteria, BehaviorCriteriaType, ComparisonOperator, ConfidenceLevel,
    MachineLearningDetectionConfig, MetricValue, StatisticalThreshold, Timestamp,
    VerificationState, ViolationEvent, ViolationEventType,
};

fn open(dir: &TempDir) -> DefenderDb {
    DefenderDb::open(dir.path()).expect("opens")
}

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn behavior(kind: BehaviorCriteriaType, suppressed: bool) -> Behavior {
    let mut criteria = BehaviorCriteria {
        comparison_operator: Some(ComparisonOperator::LessThan),
        value: Some(MetricValue::count(5)),
        duration_seconds: Some(300),
        ..BehaviorCriteria::default()
    };
    match kind {
        BehaviorCriteriaType::Static => {}
        BehaviorCriteriaType::Statistical => {
            criteria.value = None;
            criteria.statistical_threshold = Some(StatisticalThreshold {
                statistic: Some("p90".into()),
            });
        }
        BehaviorCriteriaType::MachineLearning => {
            criteria = BehaviorCriteria {
                ml_detection_config: Some(MachineLearningDetectionConfig {
                    confidence_level: ConfidenceLevel::High,
                }),
                ..BehaviorCriteria::default()
            };
        }
    }
    Behavior {
        name: "b".into(),
        metric: Some("aws:num-authorization-failures".into()),
        criteria: Some(criteria),
        suppress_alerts: suppressed.then_some(true),
        ..Behavior::default()
    }
}

fn event(id: &str, thing: &str, profile: &str, time: u64) -> ViolationEvent {
    ViolationEvent {
        violation_id: id.into(),
        thing_name: thing.into(),
        security_profile_name: profile.into(),
        behavior: behavior(BehaviorCriteriaType::Static, false),
        metric_value: Some(MetricValue::count(9)),
        violation_event_type: ViolationEventType::InAlarm,
        violation_event_time: t(time),
        ..ViolationEvent::default()
    }
}

fn ids(page: &Page<ViolationEvent>) -> Vec<&str> {
    page.items.iter().map(|e| e.violation_id.as_str()).collect()
}

fn all(store: &ViolationStore, filter: &ViolationFilter) -> Vec<String> {
    store
        .list_events(t(0), t(100_000), filter, None, None)
        .expect("lists")
        .items
        .into_iter()
        .map(|e| e.violation_id)
        .collect()
}

/// A book with one active alarm on thing `thing`, and its in-alarm event.
fn alarmed_book(thing: &str) -> (AlarmBook, ViolationEvent) {
    let mut book = AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(11));
    let key = AlarmKey::new(&Arc::from(thing), &Arc::from("sp"), &Arc::from("b"));
    let b = Arc::new(behavior(BehaviorCriteriaType::Static, false));
    let ev = book
        .observe(
            &key,
            &b,
            DatapointOutcome::Violating(MetricValue::count(9)),
            t(300),
        )
        .expect("in-alarm");
    (book, ev)
}

#[test]
fn alarm_book_and_history_survive_a_restart() {
    let dir = TempDir::new().expect("tempdir");
    let (book, ev) = alarmed_book("dev-1");
    {
        let v = open(&dir).violations();
        assert!(v.load_alarm_book().expect("loads").is_none(), "fresh file");
        v.record(&book, std::slice::from_ref(&ev)).expect("records");
    }
    let v = open(&dir).violations();
    let mut back = v.load_alarm_book().expect("loads").expect("stored");
    assert_eq!(back, book);
    let active = back
        .active_violation(&ev.violation_id)
        .expect("still active after reopen");
    assert_eq!(active.thing_name, "dev-1");
    assert_eq!(active.violation_start_time, t(300));
    // The restored book carries the alarm on: clearing it emits the same ID.
    let key = AlarmKey::new(&Arc::from("dev-1"), &Arc::from("sp"), &Arc::from("b"));
    let b = Arc::new(behavior(BehaviorCriteriaType::Static, false));
    let cleared = back
        .observe(
            &key,
            &b,
            DatapointOutcome::NotViolating(MetricValue::count(0)),
            t(600),
        )
        .expect("cleared");
    assert_eq!(cleared.violation_id, ev.violation_id);
    let history = v
        .list_events(t(0), t(1000), &ViolationFilter::default(), None, None)
        .expect("lists");
    assert_eq!(history.items, vec![ev]);
}

#[test]
fn every_list_violation_events_filter() {
    let dir = TempDir::new().expect("tempdir");
    let v = open(&dir).violations();
    let mut events = vec![
        event("a", "dev-1", "sp1", 100),
        event("b", "dev-2", "sp1", 200),
        event("c", "dev-1", "sp2", 300),
    ];
    let mut d = event("d", "dev-3", "sp2", 400);
    d.behavior = behavior(BehaviorCriteriaType::Statistical, true);
    let mut e = event("e", "dev-3", "sp3", 500);
    e.behavior = behavior(BehaviorCriteriaType::MachineLearning, false);
    e.verification_state = VerificationState::FalsePositive;
    events.extend([d, e]);
    v.append(&events).expect("appends");

    let f = ViolationFilter::default;
    assert_eq!(all(&v, &f()), ["a", "b", "c", "d", "e"], "oldest first");
    let thing = ViolationFilter {
        thing_name: Some("dev-1".into()),
        ..f()
    };
    assert_eq!(all(&v, &thing), ["a", "c"]);
    let profile = ViolationFilter {
        security_profile_name: Some("sp2".into()),
        ..f()
    };
    assert_eq!(all(&v, &profile), ["c", "d"]);
    for (kind, want) in [
        (BehaviorCriteriaType::Static, vec!["a", "b", "c"]),
        (BehaviorCriteriaType::Statistical, vec!["d"]),
        (BehaviorCriteriaType::MachineLearning, vec!["e"]),
    ] {
        let by_kind = ViolationFilter {
            behavior_criteria_type: Some(kind),
            ..f()
        };
        assert_eq!(all(&v, &by_kind), want, "{kind:?}");
    }
    let suppressed = ViolationFilter {
        list_suppressed_alerts: Some(true),
        ..f()
    };
    assert_eq!(all(&v, &suppressed), ["d"]);
    let unsuppressed = ViolationFilter {
        list_suppressed_alerts: Some(false),
        ..f()
    };
    assert_eq!(all(&v, &unsuppressed), ["a", "b", "c", "e"]);
    let fp = ViolationFilter {
        verification_state: Some(VerificationState::FalsePositive),
        ..f()
    };
    assert_eq!(all(&v, &fp), ["e"]);
    let unknown = ViolationFilter {
        verification_state: Some(VerificationState::Unknown),
        ..f()
    };
    assert_eq!(all(&v, &unknown), ["a", "b", "c", "d"]);
    let combined = ViolationFilter {
        thing_name: Some("dev-3".into()),
        security_profile_name: Some("sp2".into()),
        ..f()
    };
    assert_eq!(all(&v, &combined), ["d"]);
    // The time range is inclusive at both ends.
    let range = v
        .list_events(t(200), t(400), &f(), None, None)
        .expect("lists");
    assert_eq!(ids(&range), ["b", "c", "d"]);
    assert!(matches!(
        v.list_events(t(5), t(4), &f(), None, None),
        Err(StoreError::InvalidRequest(_))
    ));
}

#[test]
fn events_page_through_three_pages_with_a_filter() {
    let dir = TempDir::new().expect("tempdir");
    let v = open(&dir).violations();
    // 14 events, 7 for dev-1; two share a millisecond.
    let mut events: Vec<_> = (0..14)
        .map(|i| {
            let thing = if i % 2 == 0 { "dev-1" } else { "dev-2" };
            event(&format!("v{i:02}"), thing, "sp", 100 + i)
        })
        .collect();
    events[2].violation_event_time = events[0].violation_event_time;
    v.append(&events).expect("appends");
    let filter = ViolationFilter {
        thing_name: Some("dev-1".into()),
        ..ViolationFilter::default()
    };
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = v
            .list_events(t(0), t(1000), &filter, Some(3), token.as_deref())
            .expect("lists");
        pages += 1;
        seen.extend(page.items.iter().map(|e| e.violation_id.clone()));
        match page.next_token {
            Some(next) => {
                // A token only works for the query that made it.
                let other = ViolationFilter::default();
                assert!(matches!(
                    v.list_events(t(0), t(1000), &other, Some(3), Some(&next)),
                    Err(StoreError::InvalidToken)
                ));
                token = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["v00", "v02", "v04", "v06", "v08", "v10", "v12"]);
    assert!(matches!(
        v.list_events(t(0), t(1000), &filter, Some(3), Some("00ff")),
        Err(StoreError::InvalidToken)
    ));
}

#[test]
fn verification_state_reaches_active_record_and_history() {
    let dir = TempDir::new().expect("tempdir");
    let (mut book, ev) = alarmed_book("dev-1");
    let id = ev.violation_id.clone();
    {
        let v = open(&dir).violations();
        v.record(&book, std::slice::from_ref(&ev)).expect("records");
        v.put_verification_state(
            &mut book,
            &id,
            VerificationState::TruePositive,
            Some("confirmed by the lab".into()),
        )
        .expect("sets");
        let active = book.active_violation(&id).expect("active");
        assert_eq!(active.verification_state, VerificationState::TruePositive);
        let tp = ViolationFilter {
            verification_state: Some(VerificationState::TruePositive),
            ..ViolationFilter::default()
        };
        let page = v
            .list_events(t(0), t(1000), &tp, None, None)
            .expect("lists");
        assert_eq!(page.items.len(), 1);
        assert_eq!(
            page.items[0].verification_state_description.as_deref(),
            Some("confirmed by the lab")
        );
    }
    // Both survive a restart: the book was saved in the same transaction.
    let v = open(&dir).violations();
    let back = v.load_alarm_book().expect("loads").expect("stored");
    let active = back.active_violation(&id).expect("active");
    assert_eq!(active.verification_state, VerificationState::TruePositive);
    let history = v
        .list_events(t(0), t(1000), &ViolationFilter::default(), None, None)
        .expect("lists");
    assert_eq!(
        history.items[0].verification_state,
        VerificationState::TruePositive
    );
}

#[test]
fn verification_state_on_a_past_violation_and_errors() {
    let dir = TempDir::new().expect("tempdir");
    let v = open(&dir).violations();
    let mut book = AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(1));
    let mut cleared = event("old", "dev-1", "sp", 200);
    cleared.violation_event_type = ViolationEventType::AlarmCleared;
    v.append(&[
        event("old", "dev-1", "sp", 100),
        cleared,
        event("other", "dev-2", "sp", 150),
    ])
    .expect("appends");
    // Not active: only the history changes, both of its events.
    v.put_verification_state(&mut book, "old", VerificationState::BenignPositive, None)
        .expect("sets");
    let benign = ViolationFilter {
        verification_state: Some(VerificationState::BenignPositive),
        ..ViolationFilter::default()
    };
    assert_eq!(all(&v, &benign), ["old", "old"]);
    assert!(matches!(
        v.put_verification_state(&mut book, "nope", VerificationState::TruePositive, None),
        Err(StoreError::ViolationNotFound(_))
    ));
    for bad in ["x".repeat(1001), "line\nbreak".to_owned()] {
        assert!(matches!(
            v.put_verification_state(&mut book, "old", VerificationState::TruePositive, Some(bad)),
            Err(StoreError::Verification(_))
        ));
    }
    assert_eq!(
        all(&v, &benign),
        ["old", "old"],
        "refused updates change nothing"
    );
}

#[test]
fn expire_events_removes_only_old_ones() {
    let dir = TempDir::new().expect("tempdir");
    {
        let v = open(&dir).violations();
        v.append(&[
            event("a", "dev-1", "sp", 100),
            event("b", "dev-1", "sp", 200),
            event("c", "dev-1", "sp", 300),
        ])
        .expect("appends");
        assert_eq!(v.expire_events(t(200)).expect("expires"), 1);
        assert_eq!(v.expire_events(t(200)).expect("expires"), 0);
    }
    let v = open(&dir).violations();
    assert_eq!(all(&v, &ViolationFilter::default()), ["b", "c"]);
    // The expired event's index entry went with it.
    let mut book = AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(1));
    assert!(matches!(
        v.put_verification_state(&mut book, "a", VerificationState::TruePositive, None),
        Err(StoreError::ViolationNotFound(_))
    ));
}

#[test]
fn damaged_records_are_skipped() {
    let dir = TempDir::new().expect("tempdir");
    let db = open(&dir);
    let v = db.violations();
    v.append(&[
        event("a", "dev-1", "sp", 100),
        event("b", "dev-1", "sp", 200),
    ])
    .expect("appends");
    {
        let txn = db.db.begin_write().expect("txn");
        {
            let mut events = txn.open_table(tables::EVENTS).expect("table");
            let k = keys::event_key(100_000, 0);
            events
                .insert(k.as_slice(), [1u8, 0, b'{'].as_slice())
                .expect("insert");
            let mut snaps = txn.open_table(tables::SNAPSHOTS).expect("table");
            snaps
                .insert(tables::ALARM_BOOK, [1u8, b'x'].as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    assert_eq!(all(&v, &ViolationFilter::default()), ["b"]);
    assert!(v.load_alarm_book().expect("not fatal").is_none());
}

#[test]
fn active_violations_page_in_id_order_with_filters() {
    let mut book = AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(5));
    let b = Arc::new(behavior(BehaviorCriteriaType::Static, false));
    let sb = Arc::new(behavior(BehaviorCriteriaType::Static, true));
    for i in 0..7 {
        let thing: Arc<str> = Arc::from(format!("dev-{i}"));
        let key = AlarmKey::new(&thing, &Arc::from("sp"), &Arc::from("b"));
        let beh = if i == 6 { &sb } else { &b };
        book.observe(
            &key,
            beh,
            DatapointOutcome::Violating(MetricValue::count(9)),
            t(300),
        )
        .expect("in-alarm");
    }
    let mut all_ids: Vec<String> = book.active().map(|a| a.violation_id).collect();
    all_ids.sort();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = list_active(
            &book,
            &ViolationFilter::default(),
            Some(3),
            token.as_deref(),
        )
        .expect("lists");
        pages += 1;
        seen.extend(page.items.into_iter().map(|a| a.violation_id));
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!((pages, &seen), (3, &all_ids));
    let suppressed = ViolationFilter {
        list_suppressed_alerts: Some(true),
        ..ViolationFilter::default()
    };
    let page = list_active(&book, &suppressed, None, None).expect("lists");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].thing_name, "dev-6");
    assert!(matches!(
        list_active(&book, &suppressed, None, Some("garbage")),
        Err(StoreError::InvalidToken)
    ));
}
