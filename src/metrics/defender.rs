//! The defender's part of the exposition.

use wardmq_defender::alerts::AlertRouter;
use wardmq_defender::audit::Audit;
use wardmq_defender::engine::{Defender, EVALUATION_BOUNDS_S};
use wardmq_defender::mitigation::Mitigation;
use wardmq_defender::ml::ModelStatus;

use super::exposition::{Exposition, Kind};

pub(super) fn write(
    e: &mut Exposition,
    d: &Defender,
    alerts: Option<&AlertRouter>,
    audit: Option<&Audit>,
) {
    let t = d.tally();
    e.single(
        "wardmq_defender_evaluations",
        "Datapoint periods evaluated.",
        Kind::Counter,
        t.evaluations as f64,
    );
    e.family(
        "wardmq_defender_evaluation_seconds",
        "Time to evaluate one datapoint period (collect, judge, commit, store).",
        Kind::Histogram,
    )
    .histogram(
        "wardmq_defender_evaluation_seconds",
        &[],
        &EVALUATION_BOUNDS_S,
        &t.evaluation_buckets,
        t.evaluation_seconds_sum,
    );
    e.single(
        "wardmq_defender_datapoints",
        "Datapoints judged against a behaviour.",
        Kind::Counter,
        t.datapoints as f64,
    );
    e.single(
        "wardmq_defender_things_evaluated",
        "Things with data, summed over evaluated periods.",
        Kind::Counter,
        t.things_evaluated as f64,
    );
    e.single(
        "wardmq_defender_datapoints_stored",
        "Datapoints kept for ListMetricValues.",
        Kind::Counter,
        t.datapoints_stored as f64,
    );
    let store = d.store_health();
    e.single(
        "wardmq_defender_store_write_failures",
        "defender.redb operations refused by a storage error (a full disk, an I/O error).",
        Kind::Counter,
        store.failures as f64,
    );
    e.single(
        "wardmq_defender_store_degraded",
        "1 from a failed defender.redb operation to the next successful write.",
        Kind::Gauge,
        f64::from(u8::from(store.degraded)),
    );
    e.single(
        "wardmq_defender_last_evaluation_things",
        "Things with data in the last evaluated period.",
        Kind::Gauge,
        d.last_period().things as f64,
    );
    e.family(
        "wardmq_defender_violation_events",
        "Violation events, by security profile, behaviour and event type.",
        Kind::Counter,
    );
    for ((profile, behavior, kind), n) in &t.violations {
        e.sample(
            "wardmq_defender_violation_events_total",
            &[("profile", profile), ("behavior", behavior), ("type", kind)],
            *n as f64,
        );
    }
    let models = d.model_summaries(None);
    if !models.is_empty() {
        e.family(
            "wardmq_defender_model_status",
            "ML Detect model lifecycle: 1 for the status each (profile, behaviour) model is in, 0 for the others.",
            Kind::Gauge,
        );
        for m in &models {
            for status in [
                ModelStatus::PendingBuild,
                ModelStatus::Active,
                ModelStatus::Expired,
            ] {
                e.sample(
                    "wardmq_defender_model_status",
                    &[
                        ("profile", &m.profile),
                        ("behavior", &m.behavior),
                        ("status", status.as_str()),
                    ],
                    if m.status == status { 1.0 } else { 0.0 },
                );
            }
        }
    }
    if let Some(router) = alerts {
        let sinks = router.stats();
        e.family("wardmq_defender_alerts", "Alerts by sink and outcome (sent, failed after every attempt, dropped by a full queue).", Kind::Counter);
        for s in &sinks {
            for (result, n) in [
                ("sent", s.sent),
                ("failed", s.failed),
                ("dropped", s.dropped),
            ] {
                e.sample(
                    "wardmq_defender_alerts_total",
                    &[("sink", &s.name), ("result", result)],
                    n as f64,
                );
            }
        }
        e.family(
            "wardmq_defender_alert_queue",
            "Alerts waiting in a sink's queue.",
            Kind::Gauge,
        );
        for s in &sinks {
            e.sample(
                "wardmq_defender_alert_queue",
                &[("sink", &s.name)],
                s.queued as f64,
            );
        }
        e.single(
            "wardmq_defender_alerts_unknown_sink",
            "Alerts for a sink name no configured sink has.",
            Kind::Counter,
            router.unknown_sink() as f64,
        );
    }
    if let Some(audit) = audit {
        e.family(
            "wardmq_audit_tasks",
            "Audit tasks kept (90 days), by type and status.",
            Kind::Gauge,
        );
        for ((kind, status), n) in audit.task_counts() {
            e.sample(
                "wardmq_audit_tasks",
                &[("type", kind), ("status", status)],
                n as f64,
            );
        }
    }
}

pub(super) fn write_mitigation(e: &mut Exposition, m: &Mitigation) {
    e.family(
        "wardmq_defender_mitigations",
        "Mitigation action executions that ended (tasks and automatic runs), by action type and result (completed, successful, failed, skipped, canceled).",
        Kind::Counter,
    );
    for ((kind, result), n) in m.executions_finished() {
        e.sample(
            "wardmq_defender_mitigations_total",
            &[("type", kind), ("result", result)],
            n as f64,
        );
    }
    e.single(
        "wardmq_defender_mitigations_dropped",
        "Automatic mitigation runs dropped because the mitigation queue was full.",
        Kind::Counter,
        m.auto_dropped() as f64,
    );
}
