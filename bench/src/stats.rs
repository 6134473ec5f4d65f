//! Latency histograms, rates and ratios: the arithmetic behind every number
//! the bench reports.

use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Longest latency the histogram can hold: anything slower is clamped, since
/// a minute-long delivery is already a failure worth seeing as "max".
const MAX_TRACKABLE_NS: u64 = 60_000_000_000;

/// End-to-end latencies in nanoseconds, 3 significant digits.
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Latency {
    pub fn new() -> Result<Self> {
        let hist = Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, 3)
            .context("creating latency histogram")?;
        Ok(Self { hist })
    }

    pub fn record_ns(&mut self, ns: u64) {
        // saturating_record clamps to the trackable range instead of failing:
        // one absurd sample must not abort a run.
        self.hist.saturating_record(ns.max(1));
    }

    pub fn merge(&mut self, other: &Latency) -> Result<()> {
        self.hist
            .add(&other.hist)
            .context("merging latency histograms")
    }

    pub fn summary(&self) -> LatencySummary {
        let us = |q: f64| self.hist.value_at_quantile(q) as f64 / 1_000.0;
        let count = self.hist.len();
        if count == 0 {
            return LatencySummary::default();
        }
        LatencySummary {
            count,
            p50_us: us(0.50),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: self.hist.max() as f64 / 1_000.0,
        }
    }
}

/// Percentiles of one latency histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// Events per second; 0 for an empty interval rather than infinity.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        count as f64 / secs
    }
}

/// `a / b`, or `None` when either side is missing or `b` is not positive.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}

/// A ratio as the report shows it: `1.23×`, or `–` when unknown.
pub fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
        None => "–".to_string(),
    }
}

/// A rate with a k/M suffix: `950`, `12.3k`, `1.05M`.
pub fn fmt_rate(r: f64) -> String {
    if r >= 1_000_000.0 {
        format!("{:.2}M", r / 1_000_000.0)
    } else if r >= 1_000.0 {
        format!("{:.1}k", r / 1_000.0)
    } else {
        format!("{r:.0}")
    }
}

/// Microseconds shown as milliseconds with a precision that fits the size.
pub fn fmt_ms(us: f64) -> String {
    let ms = us / 1_000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.3}")
    }
}

/// Median of some values (mean of the middle two for an even count), used
/// to fold repeated rounds into one row; `None` for no values.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a broken fixture should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn known_values_give_known_percentiles() {
        let mut l = Latency::new().unwrap();
        // 1..=1000 µs, one sample each.
        for us in 1..=1000u64 {
            l.record_ns(us * 1_000);
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        // 3 significant digits: each value is within 0.1% of the exact one.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.p50_us, 500.0), "p50 {}", s.p50_us);
        assert!(close(s.p99_us, 990.0), "p99 {}", s.p99_us);
        assert!(close(s.p999_us, 999.0), "p99.9 {}", s.p999_us);
        assert!(close(s.max_us, 1000.0), "max {}", s.max_us);
    }

    #[test]
    fn a_single_outlier_shows_only_at_the_top() {
        let mut l = Latency::new().unwrap();
        for _ in 0..999 {
            l.record_ns(100_000); // 100 µs
        }
        l.record_ns(50_000_000); // 50 ms
        let s = l.summary();
        assert!((s.p99_us - 100.0).abs() < 0.2);
        assert!((s.p999_us - 100.0).abs() < 0.2);
        assert!((s.max_us - 50_000.0).abs() < 50.0);
    }

    #[test]
    fn merging_adds_counts_and_absurd_values_are_clamped() {
        let mut a = Latency::new().unwrap();
        let mut b = Latency::new().unwrap();
        a.record_ns(1_000);
        b.record_ns(u64::MAX);
        a.merge(&b).unwrap();
        let s = a.summary();
        assert_eq!(s.count, 2);
        assert!(s.max_us <= MAX_TRACKABLE_NS as f64 / 1_000.0 * 1.001);
    }

    #[test]
    fn empty_histogram_summarises_to_zeroes() {
        assert_eq!(Latency::new().unwrap().summary(), LatencySummary::default());
    }

    #[test]
    fn rates_from_counts_and_durations() {
        assert_eq!(rate(1_000, Duration::from_secs(2)), 500.0);
        assert_eq!(rate(5, Duration::from_millis(500)), 10.0);
        assert_eq!(rate(7, Duration::ZERO), 0.0);
    }

    #[test]
    fn ratios_and_their_formatting() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(fmt_ratio(Some(1.5)), "1.50×");
        assert_eq!(fmt_ratio(Some(0.123)), "0.12×");
        assert_eq!(fmt_ratio(Some(12.34)), "12.3×");
        assert_eq!(fmt_ratio(Some(250.0)), "250×");
        assert_eq!(fmt_ratio(None), "–");
    }

    #[test]
    fn rate_and_latency_formatting() {
        assert_eq!(fmt_rate(950.0), "950");
        assert_eq!(fmt_rate(12_345.0), "12.3k");
        assert_eq!(fmt_rate(1_050_000.0), "1.05M");
        assert_eq!(fmt_ms(250.0), "0.250");
        assert_eq!(fmt_ms(12_340.0), "12.3");
        assert_eq!(fmt_ms(250_000.0), "250");
    }

    #[test]
    fn median_of_rounds() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
