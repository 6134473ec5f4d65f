//! One report per thing per minimum interval (AWS: "Devices are throttled
//! to one metric report every 5 minutes", spec §6.3).
//!
//! Only reports that pass the throttle count: a throttled or malformed
//! report does not restart the interval, so a device whose clock runs a
//! little fast is not locked out for good.
//!
//! Memory is bounded two ways. A thing whose last report is older than the
//! interval is forgotten (it would be accepted anyway, so forgetting changes
//! no decision), which keeps only things that reported within the last
//! interval. And at most `max_things` are kept: past that the oldest is
//! forgotten early, which at worst lets that one thing report early.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::error::ReportError;

/// AWS's interval.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(300);
/// The shortest interval that may be configured (DESIGN: datapoint period down to 1 s).
pub const SHORTEST_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Default bound on remembered things (~150 bytes each).
pub const DEFAULT_MAX_THINGS: usize = 100_000;

/// A throttle setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleConfigError {
    #[error("report interval {0:?} is shorter than the minimum of 1 s")]
    IntervalTooShort(Duration),
    #[error("the throttle must be allowed to remember at least one thing")]
    NoCapacity,
}

#[derive(Debug)]
pub struct ReportThrottle {
    min_interval: Duration,
    max_things: usize,
    /// Each remembered thing's last accepted report.
    last: HashMap<String, Instant>,
    /// The same accepts, oldest first, to find what to forget without a
    /// scan. An entry whose time no longer matches `last` is stale and
    /// skipped (possible only if callers pass times out of order).
    order: VecDeque<(Instant, String)>,
}

impl Default for ReportThrottle {
    fn default() -> Self {
        ReportThrottle {
            min_interval: DEFAULT_MIN_INTERVAL,
            max_things: DEFAULT_MAX_THINGS,
            last: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl ReportThrottle {
    pub fn new(min_interval: Duration, max_things: usize) -> Result<Self, ThrottleConfigError> {
        if min_interval < SHORTEST_MIN_INTERVAL {
            return Err(ThrottleConfigError::IntervalTooShort(min_interval));
        }
        if max_things == 0 {
            return Err(ThrottleConfigError::NoCapacity);
        }
        Ok(ReportThrottle {
            min_interval,
            max_things,
            ..ReportThrottle::default()
        })
    }

    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// How many things are remembered now.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Accepts (and records) a valid report from `thing` at `now`, or
    /// refuses it with [`ReportError::Throttled`] if the thing's previous
    /// accepted report is less than the interval old.
    pub fn check(&mut self, thing: &str, now: Instant) -> Result<(), ReportError> {
        self.forget_expired(now);
        if let Some(prev) = self.last.get(thing) {
            let elapsed = now.saturating_duration_since(*prev);
            if elapsed < self.min_interval {
                return Err(ReportError::Throttled {
                    elapsed,
                    min_interval: self.min_interval,
                });
            }
        } else {
            while self.last.len() >= self.max_things {
                if !self.forget_oldest() {
                    break;
                }
            }
        }
        self.last.insert(thing.to_owned(), now);
        self.order.push_back((now, thing.to_owned()));
        if self.order.len() > 2 * self.max_things {
            self.rebuild_order();
        }
        Ok(())
    }

    fn forget_expired(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.min_interval {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Drops the oldest queue entry and, if it is current, its thing.
    /// Returns false when there is nothing left to drop.
    fn forget_oldest(&mut self) -> bool {
        let Some((at, thing)) = self.order.pop_front() else {
            return false;
        };
        if self.last.get(&thing) == Some(&at) {
            self.last.remove(&thing);
        }
        true
    }

    /// Rebuilds the queue from the map, dropping stale entries; needed only
    /// when out-of-order times left many of them.
    fn rebuild_order(&mut self) {
        let mut entries: Vec<(Instant, String)> =
            self.last.iter().map(|(t, at)| (*at, t.clone())).collect();
        entries.sort();
        self.order = entries.into();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::report::ErrorCode;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn spec_13_case_21_second_report_within_300s_is_throttled() {
        let mut t = ReportThrottle::default();
        let t0 = Instant::now();
        assert_eq!(t.check("T1", t0), Ok(()));
        let err = t.check("T1", t0 + secs(120)).expect_err("throttled");
        assert_eq!(err.code(), ErrorCode::Throttled);
        assert_eq!(
            err,
            ReportError::Throttled {
                elapsed: secs(120),
                min_interval: secs(300)
            }
        );
        // The throttled report did not restart the interval.
        assert_eq!(t.check("T1", t0 + secs(300)), Ok(()));
        assert!(t.check("T1", t0 + secs(599)).is_err());
        assert_eq!(t.check("T1", t0 + secs(600)), Ok(()));
    }

    #[test]
    fn things_are_independent() {
        let mut t = ReportThrottle::default();
        let t0 = Instant::now();
        assert_eq!(t.check("a", t0), Ok(()));
        assert_eq!(t.check("b", t0), Ok(()));
        assert!(t.check("a", t0 + secs(1)).is_err());
        assert!(t.check("b", t0 + secs(1)).is_err());
    }

    #[test]
    fn configurable_down_to_one_second() {
        let mut t = ReportThrottle::new(secs(1), 10).expect("config");
        let t0 = Instant::now();
        assert_eq!(t.check("a", t0), Ok(()));
        assert!(t.check("a", t0 + Duration::from_millis(999)).is_err());
        assert_eq!(t.check("a", t0 + secs(1)), Ok(()));
        assert_eq!(
            ReportThrottle::new(Duration::from_millis(999), 10).map(|_| ()),
            Err(ThrottleConfigError::IntervalTooShort(
                Duration::from_millis(999)
            ))
        );
        assert_eq!(
            ReportThrottle::new(secs(1), 0).map(|_| ()),
            Err(ThrottleConfigError::NoCapacity)
        );
    }

    #[test]
    fn things_not_seen_for_an_interval_are_forgotten() {
        let mut t = ReportThrottle::new(secs(10), 1000).expect("config");
        let t0 = Instant::now();
        for i in 0..100 {
            t.check(&format!("t{i}"), t0).expect("first report");
        }
        assert_eq!(t.len(), 100);
        t.check("late", t0 + secs(10)).expect("late");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_cap_forgets_the_oldest_first() {
        let mut t = ReportThrottle::new(secs(300), 3).expect("config");
        let t0 = Instant::now();
        for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            t.check(name, t0 + secs(i as u64)).expect("accept");
        }
        assert_eq!(t.len(), 3);
        // "a" was forgotten early; the others are still throttled.
        assert_eq!(t.check("a", t0 + secs(5)), Ok(()));
        assert!(t.check("c", t0 + secs(5)).is_err());
        assert!(t.check("d", t0 + secs(5)).is_err());
    }

    #[test]
    fn time_going_backwards_throttles_and_does_not_panic() {
        let mut t = ReportThrottle::new(secs(5), 2).expect("config");
        let t0 = Instant::now() + secs(1000);
        t.check("a", t0).expect("accept");
        let err = t.check("a", t0 - secs(100)).expect_err("throttled");
        assert_eq!(
            err,
            ReportError::Throttled {
                elapsed: Duration::ZERO,
                min_interval: secs(5)
            }
        );
    }

    proptest! {
        /// Against a model that remembers everything: with a cap the
        /// decisions agree, and memory stays within the cap.
        #[test]
        fn matches_a_model_and_stays_bounded(
            steps in prop::collection::vec((0usize..20, 0u64..4000), 1..300),
            interval in 1u64..10,
        ) {
            let interval = secs(interval);
            let mut t = ReportThrottle::new(interval, 1000).expect("config");
            let mut model: HashMap<usize, Instant> = HashMap::new();
            let mut now = Instant::now();
            for (thing, advance_ms) in steps {
                now += Duration::from_millis(advance_ms);
                let want = match model.get(&thing) {
                    Some(prev) if now.duration_since(*prev) < interval => false,
                    _ => {
                        model.insert(thing, now);
                        true
                    }
                };
                let got = t.check(&format!("thing-{thing}"), now).is_ok();
                prop_assert_eq!(got, want);
                prop_assert!(t.order.len() == t.last.len());
            }
        }

        #[test]
        fn the_cap_is_never_exceeded(
            steps in prop::collection::vec((0usize..50, 0u64..3000, any::<bool>()), 1..300),
            cap in 1usize..8,
        ) {
            let mut t = ReportThrottle::new(secs(2), cap).expect("config");
            let base = Instant::now() + secs(10_000);
            let mut now = base;
            for (thing, ms, back) in steps {
                // Times may also go backwards, as a careless caller might pass.
                now = if back {
                    now.checked_sub(Duration::from_millis(ms)).unwrap_or(base)
                } else {
                    now + Duration::from_millis(ms)
                };
                let _ = t.check(&format!("{thing}"), now);
                prop_assert!(t.len() <= cap);
                prop_assert!(t.order.len() <= 2 * cap);
            }
        }
    }
}
