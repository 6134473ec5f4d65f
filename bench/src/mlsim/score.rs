//! Scoring alarms against the simulator's labels: recall (all attacks,
//! per kind, burst attacks within one datapoint), time to detect,
//! precision, and false alarms per 1000 device-days.

use std::collections::BTreeMap;

use wardmq_defender::ml::replay::METRICS;

use super::fleet::{Attack, AttackKind, Fleet, CAUSES, PERIOD};

/// An alarm counts for an attack when raised from its first datapoint to
/// an hour after its last.
const DETECT_GRACE: i64 = 3600;
/// An alarm on an attacked device up to a day after the attack is the
/// attack's aftermath (the day window), not a false alarm.
const AFTERMATH: i64 = 86_400;

/// A raised alarm: when, on which device (`None`: profile-level), on
/// which metric (an index into the replay's `METRICS`).
#[derive(Clone, Copy, Debug)]
pub struct Raised {
    pub ts: i64,
    pub device: Option<usize>,
    pub metric: usize,
    pub score: f64,
}

/// A false alarm with the simulator's account of it, for `false-*.csv`.
#[derive(Clone, Debug)]
pub struct FalseAlarm {
    pub raised: Raised,
    pub cause: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct Score {
    pub alarms: usize,
    pub false_alarms: usize,
    pub fleet_alarms: usize,
    pub fa_per_1000: f64,
    pub precision: f64,
    pub recall: f64,
    pub burst_recall_1dp: f64,
    /// The same, counted from the attack's first observable datapoint
    /// (`Attack::first_seen`): an exfiltration that starts while the
    /// device sends nothing shows nothing until its first message.
    pub burst_recall_1dp_seen: f64,
    /// Median datapoints from attack start to alarm (1 = the first).
    pub median_ttd: f64,
    pub by_kind: BTreeMap<&'static str, (usize, usize)>,
    /// False alarms by the benign nuisance behind them (`fleet::CAUSES`).
    pub by_cause: BTreeMap<&'static str, usize>,
    /// False alarms by metric.
    pub by_metric: BTreeMap<&'static str, usize>,
    pub false_list: Vec<FalseAlarm>,
}

pub fn score(raised: &[Raised], fleet: &Fleet, device_days: f64, from: i64) -> Score {
    let attacks: &[Attack] = &fleet.attacks;
    let mut s = Score::default();
    let mut attacked: BTreeMap<usize, Vec<&Attack>> = BTreeMap::new();
    for a in attacks {
        attacked.entry(a.device).or_default().push(a);
    }
    let mut tp = 0;
    for r in raised.iter().filter(|r| r.ts >= from) {
        s.alarms += 1;
        let metric = METRICS.get(r.metric).map_or("?", |(_, m)| m);
        let cause = match r.device {
            None => {
                s.fleet_alarms += 1;
                CAUSES[6]
            }
            Some(d) => {
                let explained = attacked.get(&d).is_some_and(|v| {
                    v.iter()
                        .any(|a| r.ts >= a.start && r.ts < a.end + AFTERMATH)
                });
                if explained {
                    tp += 1;
                    continue;
                }
                fleet.nuisance(d, r.ts, metric)
            }
        };
        s.false_alarms += 1;
        *s.by_cause.entry(cause).or_default() += 1;
        *s.by_metric.entry(metric).or_default() += 1;
        s.false_list.push(FalseAlarm { raised: *r, cause });
    }
    let mut ttds = Vec::new();
    let (mut caught, mut bursts, mut bursts_1dp, mut bursts_1dp_seen) = (0, 0, 0, 0);
    for a in attacks {
        let first = raised
            .iter()
            .filter(|r| {
                r.device == Some(a.device) && r.ts >= a.start && r.ts <= a.end + DETECT_GRACE
            })
            .map(|r| r.ts)
            .min();
        let e = s.by_kind.entry(a.kind.name()).or_default();
        e.0 += 1;
        if a.kind.burst() {
            bursts += 1;
        }
        if let Some(t) = first {
            caught += 1;
            e.1 += 1;
            let ttd = (t - a.start) / PERIOD + 1;
            ttds.push(ttd as f64);
            if a.kind.burst() && ttd <= 1 {
                bursts_1dp += 1;
            }
            let seen = a.first_seen.unwrap_or(a.start);
            if a.kind.burst() && t < seen + PERIOD {
                bursts_1dp_seen += 1;
            }
        }
    }
    let pct = |n: usize, d: usize| {
        if d == 0 {
            0.0
        } else {
            100.0 * n as f64 / d as f64
        }
    };
    s.recall = pct(caught, attacks.len());
    s.burst_recall_1dp = pct(bursts_1dp, bursts);
    s.burst_recall_1dp_seen = pct(bursts_1dp_seen, bursts);
    s.precision = pct(tp, s.alarms);
    s.fa_per_1000 = if device_days > 0.0 {
        s.false_alarms as f64 * 1000.0 / device_days
    } else {
        0.0
    };
    ttds.sort_by(f64::total_cmp);
    s.median_ttd = ttds.get(ttds.len() / 2).copied().unwrap_or(f64::NAN);
    s
}

pub fn kinds_header() -> String {
    AttackKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" | ")
}

pub fn kinds_row(s: &Score) -> String {
    AttackKind::ALL
        .iter()
        .map(|k| {
            let (n, c) = s.by_kind.get(k.name()).copied().unwrap_or((0, 0));
            format!("{c}/{n}")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

pub fn causes_header() -> String {
    CAUSES.join(" | ")
}

pub fn causes_row(s: &Score) -> String {
    CAUSES
        .iter()
        .map(|c| s.by_cause.get(c).copied().unwrap_or(0).to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

pub fn metrics_header() -> String {
    METRICS
        .iter()
        .map(|(_, m)| m.trim_start_matches("aws:"))
        .collect::<Vec<_>>()
        .join(" | ")
}

pub fn metrics_row(s: &Score) -> String {
    METRICS
        .iter()
        .map(|(_, m)| s.by_metric.get(m).copied().unwrap_or(0).to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::super::fleet::{Attack, AttackKind, Fleet, PERIOD, T0};
    use super::*;

    /// An exfiltration whose device sent nothing for its first two
    /// datapoints, caught at its first message: late from the attack's
    /// start, on time from its first observable datapoint. An alarm on
    /// another device is a listed false alarm.
    #[test]
    fn bursts_count_from_the_start_and_from_the_first_observable_datapoint() {
        let mut fleet = Fleet::new(1, 10, 4, 0, 2);
        let at = T0 + 2 * 86_400;
        fleet.attacks = vec![Attack {
            device: 3,
            kind: AttackKind::Exfiltration,
            start: at,
            end: at + 12 * PERIOD,
            intensity: 5.0,
            first_seen: Some(at + 2 * PERIOD),
        }];
        let caught = Raised {
            ts: at + 2 * PERIOD,
            device: Some(3),
            metric: 5,
            score: 9.0,
        };
        let other = Raised {
            device: Some(4),
            ..caught
        };
        let s = score(&[caught, other], &fleet, 10.0, at);
        assert_eq!(s.recall, 100.0);
        assert_eq!(s.burst_recall_1dp, 0.0);
        assert_eq!(s.burst_recall_1dp_seen, 100.0);
        assert_eq!(s.false_alarms, 1);
        assert_eq!(s.false_list.len(), 1);
        assert_eq!(s.false_list[0].raised.device, Some(4));
    }
}
