//! The trailing window a model trains on: per (device, metric) one record
//! per day with hourly aggregates (count, sum, sum of squares) and the
//! highest level the device reached that day. Hourly aggregates are enough
//! for the shape (24 hours × weekday/weekend), the device level, and the
//! hour- and day-scale dispersion; the sum of squares gives the spread of
//! datapoints within an hour.
//!
//! Live, the engine rebuilds it from the metric store; the replay keeps it
//! as it reads. Either way nothing newer than the datapoint being judged
//! is in it.

use std::collections::VecDeque;

use super::clock;
use super::level::Level;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HourAgg {
    pub n: u32,
    pub sum: f64,
    pub sumsq: f64,
    /// The largest value (values are never negative: counts, log bytes).
    pub max: f64,
}

impl HourAgg {
    pub fn add(&mut self, v: f64) {
        self.max = self.max.max(v);
        self.n += 1;
        self.sum += v;
        self.sumsq += v * v;
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DayRecord {
    pub day: i64,
    pub hours: [HourAgg; 24],
    /// Highest level a device alarm reached on this day (before the fleet
    /// gate removed it, if it did not). MEDIUM or more keeps the day out of
    /// training.
    pub flag: Option<Level>,
    /// The fleet gate folded a MEDIUM-or-higher anomaly of this device into
    /// a profile-level one: the fleet changed, and this device with it.
    pub folded: bool,
}

impl DayRecord {
    fn new(day: i64) -> Self {
        Self {
            day,
            hours: [HourAgg::default(); 24],
            flag: None,
            folded: false,
        }
    }

    pub fn n(&self) -> u32 {
        self.hours.iter().map(|h| h.n).sum()
    }

    pub fn sum(&self) -> f64 {
        self.hours.iter().map(|h| h.sum).sum()
    }

    /// Days an alarm of at least MEDIUM marked stay out of training.
    pub fn excluded(&self) -> bool {
        self.flag.is_some_and(|l| l >= Level::Medium)
    }
}

/// One series' days, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesHistory {
    pub days: VecDeque<DayRecord>,
    /// Training ignores days before this one: a level shift was accepted.
    pub shift_start: Option<i64>,
}

impl SeriesHistory {
    fn today(&mut self, day: i64) -> &mut DayRecord {
        let fresh = self.days.back().is_none_or(|d| d.day < day);
        if fresh {
            self.days.push_back(DayRecord::new(day));
        }
        // Out-of-order data (a clock stepping back) lands on the newest day
        // rather than rewriting the past.
        let last = self.days.len() - 1;
        &mut self.days[last]
    }

    pub fn record(&mut self, ts: i64, value: f64) {
        let h = clock::hour_of_day(ts);
        self.today(clock::day(ts)).hours[h].add(value);
    }

    /// The device alarmed on its own: if the fleet gate folded it earlier
    /// today, it has since left the fleet's change (an attack that joined a
    /// fleet event by chance), so the day is not learned as a new normal.
    pub fn flag(&mut self, ts: i64, level: Level) {
        let d = self.today(clock::day(ts));
        d.flag = Some(d.flag.map_or(level, |f| f.max(level)));
        d.folded = false;
    }

    pub fn fold(&mut self, ts: i64) {
        self.today(clock::day(ts)).folded = true;
    }

    /// Whether the fleet gate folded an anomaly of this device on `day`.
    pub fn folded_on(&self, day: i64) -> bool {
        self.days.iter().any(|d| d.day == day && d.folded)
    }

    /// Forgets days before `first_day`.
    pub fn prune(&mut self, first_day: i64) {
        while self.days.front().is_some_and(|d| d.day < first_day) {
            self.days.pop_front();
        }
        if self.shift_start.is_some_and(|s| s < first_day) {
            self.shift_start = None;
        }
    }

    /// Days in `[from, to]` training may use.
    pub fn usable(&self, from: i64, to: i64) -> impl Iterator<Item = &DayRecord> + '_ {
        let from = from.max(self.shift_start.unwrap_or(i64::MIN));
        self.days
            .iter()
            .filter(move |d| d.day >= from && d.day <= to && !d.excluded() && d.n() > 0)
    }

    /// Datapoints in `[from, to]`, excluded days included (they were
    /// collected; `datapointsCollectionPercentage` counts them).
    pub fn datapoints(&self, from: i64, to: i64) -> u64 {
        self.days
            .iter()
            .filter(|d| d.day >= from && d.day <= to)
            .map(|d| u64::from(d.n()))
            .sum()
    }

    /// The mean datapoint from day `since` on, over the mean of the days
    /// before it that training could use.
    pub fn change_since(&self, since: i64) -> Option<f64> {
        let (mut after, mut before) = ((0.0, 0u32), (0.0, 0u32));
        for d in &self.days {
            let side = if d.day >= since {
                &mut after
            } else if !d.excluded() {
                &mut before
            } else {
                continue;
            };
            side.0 += d.sum();
            side.1 += d.n();
        }
        let mean = |(sum, n): (f64, u32)| (n > 0).then(|| sum / f64::from(n));
        let (a, b) = (mean(after)?, mean(before)?);
        (b > 0.0).then(|| a / b)
    }

    /// Accepts a level shift: the last `n` days before `day` all excluded
    /// means the device now behaves differently, for good. They rejoin
    /// training and older days leave it. Returns whether it happened.
    pub fn accept_if_shifted(&mut self, day: i64, n: u32) -> bool {
        if n == 0 {
            return false;
        }
        let first = day - i64::from(n);
        let run = self
            .days
            .iter()
            .filter(|d| d.day >= first && d.day < day && d.excluded())
            .count();
        if run < usize::try_from(n).unwrap_or(usize::MAX) {
            return false;
        }
        self.accept_from(first);
        true
    }

    /// The device's behaviour since `day` is its new normal (an operator's
    /// BENIGN_POSITIVE, or an accepted shift).
    pub fn accept_from(&mut self, day: i64) {
        for d in self.days.iter_mut().filter(|d| d.day >= day) {
            d.flag = None;
        }
        self.shift_start = Some(day);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_flags_and_shifts() {
        let mut h = SeriesHistory::default();
        for day in 0..5 {
            h.record(day * 86_400 + 3_600, 10.0);
            if day >= 2 {
                h.flag(day * 86_400 + 7_200, Level::High);
            }
        }
        assert_eq!(h.usable(0, 4).count(), 2);
        assert_eq!(h.datapoints(0, 4), 5);
        assert!(!h.accept_if_shifted(5, 4));
        assert!(h.accept_if_shifted(5, 3));
        assert_eq!(h.usable(0, 4).map(|d| d.day).collect::<Vec<_>>(), [2, 3, 4]);
        h.prune(3);
        assert_eq!(h.days.len(), 2);
        assert_eq!(h.shift_start, None);
    }
}
