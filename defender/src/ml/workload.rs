//! Messages sent and received rising together: a change of workload.
//!
//! A device whose messages sent and messages received both rose over the
//! last day, by about the same factor, is doing more of what it always did
//! (its backend polls it more often, a feature went live, its reporting
//! interval changed). The attacks a volume alarm is for move one direction:
//! a publish flood, a slow drift or night-time traffic are messages sent,
//! harvesting a broker's topics is messages received. Such a change still
//! alarms at LOW and MEDIUM; HIGH, the level an operator may let act on its
//! own (automatic quarantine), needs the one-sided change, or a burst
//! beyond what the change explains (a flood during a firmware wave). When
//! one metric accepts the change as its new normal, the other does too.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::detector::{Detector, PeriodResult, RecentWindow};
use super::level::Level;

/// The two metrics of a workload.
pub const SENT: &str = "aws:num-messages-sent";
pub const RECEIVED: &str = "aws:num-messages-received";

/// "About the same factor": the two windows' observed/expected ratios
/// within this factor of each other.
pub const SAME_FACTOR: f64 = 2.0;

/// A window "rose" when its score (the windows' Bonferroni-corrected
/// `−log10 p`) is at least this: p below 1 % after the correction. The
/// metric that alarmed passes by far; this asks whether the other metric
/// shows the same change rather than whether it alarms on its own, which a
/// quiet direction (a meter receives a tenth of what it sends) would not
/// for hours.
pub const CORROBORATE: f64 = 2.0;

/// The largest change a workload explains at a datapoint: the other
/// metric's rise over any window, or this one's over the day, at least 1.
fn explained(own: &[RecentWindow; 3], other: &[RecentWindow; 3]) -> f64 {
    let ratio = |w: &RecentWindow| {
        if w.expected > 0.0 {
            w.observed / w.expected
        } else {
            1.0
        }
    };
    other
        .iter()
        .chain(std::iter::once(&own[2]))
        .map(ratio)
        .fold(1.0, f64::max)
}

/// The `i`-th and `j`-th elements of `s`, both mutably; `None` if they
/// are the same or out of range. (`get_disjoint_mut` needs Rust 1.86.)
pub fn two_mut<T>(s: &mut [T], i: usize, j: usize) -> Option<(&mut T, &mut T)> {
    if i == j || i.max(j) >= s.len() {
        return None;
    }
    let (lo, hi) = s.split_at_mut(i.max(j));
    let (first, second) = (&mut lo[i.min(j)], &mut hi[0]);
    Some(if i < j {
        (first, second)
    } else {
        (second, first)
    })
}

/// Whether two windows' observed/expected ratios are within
/// [`SAME_FACTOR`] of each other.
pub fn same_factor(a: &RecentWindow, b: &RecentWindow) -> bool {
    a.expected > 0.0
        && b.expected > 0.0
        && a.observed > 0.0
        && b.observed > 0.0
        && ((a.observed / a.expected).ln() - (b.observed / b.expected).ln()).abs()
            <= SAME_FACTOR.ln()
}

/// Whether two windows of the same span (the datapoint, the last hour, or
/// the last day) show one change of workload: both rose and by about the
/// same factor.
pub fn same_rise(a: &RecentWindow, b: &RecentWindow) -> bool {
    let rose = |w: &RecentWindow| w.score >= CORROBORATE && w.observed > w.expected;
    rose(a) && rose(b) && same_factor(a, b)
}

/// A level shift one metric of the pair accepted at this period's
/// retrain becomes the other's too when the other went through it: flagged
/// since the same day, and changed the same way by about the same factor.
/// A workload change is one new normal; otherwise the quieter direction,
/// capped so far, loses its cap when the other accepts, and alarms at HIGH.
/// Returns the devices whose shift was carried.
fn carry_shifts(from: &Detector, to: &mut Detector, ts: i64) -> Vec<Arc<str>> {
    let mut carried = Vec::new();
    for (device, since) in from.shifts_accepted_at(ts) {
        let (Some(a), Some(b)) = (
            from.change_since(device, *since),
            to.change_since(device, *since),
        ) else {
            continue;
        };
        let same_way = (a > 1.0) == (b > 1.0) && (a.ln() - b.ln()).abs() <= SAME_FACTOR.ln();
        if same_way && to.accept_with(device, *since, ts) {
            carried.push(Arc::clone(device));
        }
    }
    carried
}

/// Caps at MEDIUM the HIGH judgements (of the period starting at `ts`) of
/// devices whose messages sent and received rose together over the same
/// window (the datapoint, the last hour or the last day), and of devices
/// capped earlier in the same anomaly whose two day windows still rose by
/// about the same factor, unless the datapoint is HIGH beyond that
/// change; first carries a shift accepted on one metric to the other.
/// `sent` and `received` are one profile's detectors of the two metrics
/// (the same topic-filter dimension, if any) and what they just judged.
pub fn workload_gate(
    sent: (&mut Detector, &mut PeriodResult),
    received: (&mut Detector, &mut PeriodResult),
    ts: i64,
) {
    let (sd, sr) = sent;
    let (rd, rr) = received;
    // This period was judged on the old normal; the carried shift applies
    // from the next one.
    let mut carried = carry_shifts(sd, rd, ts);
    carried.extend(carry_shifts(rd, sd, ts));
    let high: HashSet<Arc<str>> = sr
        .devices
        .iter()
        .chain(rr.devices.iter())
        .filter(|j| j.level == Some(Level::High) && !j.device.is_empty())
        .map(|j| Arc::clone(&j.device))
        .collect();
    // Per device of a workload change: whether to cap sent, received.
    let mut caps: HashMap<Arc<str>, [bool; 2]> = HashMap::new();
    for d in high {
        let windows = sd.recent_windows(&d, ts).zip(rd.recent_windows(&d, ts));
        let workload =
            carried.contains(&d) || windows.is_some_and(|(a, b)| rose_together(sd, rd, &d, &a, &b));
        if !workload {
            continue;
        }
        // A datapoint still HIGH once the workload's change is allowed for
        // is a burst on top of it (a flood during a firmware wave): that
        // metric keeps its level.
        let burst = |det: &Detector, own: &[RecentWindow; 3], other: &[RecentWindow; 3]| {
            det.score_scaled(&d, ts, explained(own, other))
                .is_some_and(|s| s >= det.config().thresholds[2])
        };
        let cap = windows.map_or([true; 2], |(a, b)| [!burst(sd, &a, &b), !burst(rd, &b, &a)]);
        caps.insert(d, cap);
    }
    for (i, (det, r)) in [(sd, sr), (rd, rr)].into_iter().enumerate() {
        for j in r.devices.iter_mut() {
            if caps.get(&j.device).is_some_and(|c| c[i]) {
                det.cap(j, Level::Medium);
            }
        }
    }
}

/// Whether `d`'s messages sent (windows `a`) and received (`b`) rose
/// together over the same window, or still move together over the day
/// after an earlier cap (the quiet direction lags a datapoint or an hour).
/// When they part, the cap goes.
fn rose_together(
    sd: &mut Detector,
    rd: &mut Detector,
    d: &str,
    a: &[RecentWindow; 3],
    b: &[RecentWindow; 3],
) -> bool {
    if a.iter().zip(b).any(|(a, b)| same_rise(a, b)) {
        return true;
    }
    let capped = sd.capped(d) || rd.capped(d);
    if capped && same_factor(&a[2], &b[2]) {
        return true;
    }
    if capped {
        sd.uncap(d);
        rd.uncap(d);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::two_mut;

    #[test]
    fn two_mut_gives_both_in_the_order_asked() {
        let mut v = [1, 2, 3];
        let (a, b) = two_mut(&mut v, 2, 0).expect("distinct");
        (*a, *b) = (*b, *a);
        assert_eq!(v, [3, 2, 1]);
        assert!(two_mut(&mut v, 1, 1).is_none());
        assert!(two_mut(&mut v, 0, 3).is_none());
    }
}
