//! Fleet percentiles for statistical thresholds (spec §7.3).
//!
//! **Interpolation: nearest rank, no interpolation.** For N values sorted
//! ascending and percentile p, the threshold is the value at rank
//! `ceil(p/100 × N)` (1-based), clamped to 1..=N; so p0 is the minimum and
//! p100 the maximum. Why: AWS gives the definition "if p90 = 123 then 90 %
//! of all measurements were below 123" and no method; nearest rank always
//! returns a value some device actually produced (a count threshold stays a
//! whole count, no 9.1 messages), is exact on small fleets, is what the
//! spec's test case 15 expects (values 1..=10, p90 = 9), and needs no
//! floating-point tie-breaking. The rank is computed in integers on the
//! statistic's hundredths of a percent, so `p99.99` of 10,000 devices is rank
//! 9,999 exactly rather than whatever `0.9999 * 10000.0` rounds to.

use std::fmt;
use std::str::FromStr;

/// One of the statistics the model's pattern allows, held in hundredths of
/// a percent (p99.99 = 9999, p100 = 10000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Statistic(u16);

/// The model's pattern `(p0|p0\.1|p0\.01|p1|p10|p50|p90|p99|p99\.9|p99\.99|p100)`.
pub const STATISTICS: [&str; 11] = [
    "p0", "p0.1", "p0.01", "p1", "p10", "p50", "p90", "p99", "p99.9", "p99.99", "p100",
];

const HUNDREDTHS: [u16; 11] = [0, 10, 1, 100, 1000, 5000, 9000, 9900, 9990, 9999, 10000];

impl FromStr for Statistic {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        STATISTICS
            .iter()
            .position(|x| *x == s)
            .map(|i| Statistic(HUNDREDTHS[i]))
            .ok_or(())
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match HUNDREDTHS.iter().position(|h| *h == self.0) {
            Some(i) => f.write_str(STATISTICS[i]),
            None => write!(f, "p{}", f64::from(self.0) / 100.0),
        }
    }
}

impl Statistic {
    /// The 1-based nearest rank among `n` values (`n` ≥ 1).
    pub fn rank(self, n: usize) -> usize {
        let n = n as u128;
        let rank = (u128::from(self.0) * n).div_ceil(10_000);
        rank.clamp(1, n.max(1)) as usize
    }
}

/// Why no threshold could be computed; the behaviour then does not fire for
/// that period (spec test case 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoThreshold {
    /// Fewer reporting devices than the configured minimum.
    TooFewDevices,
    /// AWS: percentiles are "not available when any custom value is
    /// negative".
    NegativeValue,
    /// NaN or infinity in the input.
    NotFinite,
}

/// The fleet threshold for one period: the nearest-rank percentile of the
/// values every device of the profile produced over the same window. Sorts
/// `values` in place (callers pass a scratch buffer they reuse).
pub fn fleet_threshold(
    values: &mut [f64],
    statistic: Statistic,
    min_devices: usize,
) -> Result<f64, NoThreshold> {
    if values.len() < min_devices.max(1) {
        return Err(NoThreshold::TooFewDevices);
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(NoThreshold::NotFinite);
    }
    if values.iter().any(|v| *v < 0.0) {
        return Err(NoThreshold::NegativeValue);
    }
    let rank = statistic.rank(values.len());
    // select_nth is O(N) where a full sort is O(N log N); the fleet can be
    // 100,000 devices.
    let (_, nth, _) = values.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Ok(*nth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> Statistic {
        s.parse().expect("valid statistic")
    }

    #[test]
    fn every_pattern_value_parses_and_prints_back() {
        for s in STATISTICS {
            assert_eq!(st(s).to_string(), s);
        }
        for bad in ["p", "p95", "P90", "90", "p100.0", "p0.001", " p90"] {
            assert!(bad.parse::<Statistic>().is_err(), "{bad}");
        }
    }

    #[test]
    fn nearest_rank_on_one_to_ten() {
        let r = |s: &str| {
            let mut v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
            fleet_threshold(&mut v, st(s), 1).expect("threshold")
        };
        assert_eq!(r("p0"), 1.0);
        assert_eq!(r("p0.01"), 1.0);
        assert_eq!(r("p10"), 1.0);
        assert_eq!(r("p50"), 5.0);
        assert_eq!(r("p90"), 9.0);
        assert_eq!(r("p99"), 10.0);
        assert_eq!(r("p100"), 10.0);
    }

    #[test]
    fn rank_is_exact_in_integers() {
        assert_eq!(st("p99.99").rank(10_000), 9_999);
        assert_eq!(st("p99.9").rank(1000), 999);
        assert_eq!(st("p0.1").rank(1000), 1);
        assert_eq!(st("p0.1").rank(1001), 2);
        assert_eq!(st("p100").rank(1), 1);
        assert_eq!(st("p0").rank(5), 1);
    }

    #[test]
    fn no_threshold_cases() {
        let mut v = vec![1.0, -2.0, 3.0];
        assert_eq!(
            fleet_threshold(&mut v, st("p50"), 1),
            Err(NoThreshold::NegativeValue)
        );
        let mut v = vec![1.0, f64::NAN];
        assert_eq!(
            fleet_threshold(&mut v, st("p50"), 1),
            Err(NoThreshold::NotFinite)
        );
        let mut v = vec![1.0, 2.0];
        assert_eq!(
            fleet_threshold(&mut v, st("p50"), 3),
            Err(NoThreshold::TooFewDevices)
        );
        assert_eq!(
            fleet_threshold(&mut [], st("p50"), 0),
            Err(NoThreshold::TooFewDevices)
        );
    }
}
