//! Training one (profile, metric) model from its trailing window.
//!
//! Counts: a profile shape `S(daytype, hour)` (mean 1 over a week), a level
//! per device (expected datapoint count is `L · S`), a profile prior for
//! devices with little or no history, and dispersions (extra variance
//! beyond Poisson, as a squared coefficient of variation) at the scale of
//! one datapoint, one hour and one day.
//!
//! Sizes: per device the centre and spread of log(bytes), and the day-to-day
//! spread of daily means.

use std::collections::HashMap;
use std::sync::Arc;

use super::clock;
use super::history::{DayRecord, SeriesHistory};

/// What a metric counts, which decides the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Events per datapoint (messages, connections, failures, bytes, packets).
    Count,
    /// Message size in bytes: judged on its logarithm.
    Size,
}

impl MetricKind {
    /// The model a metric needs: sizes are judged on their logarithm,
    /// everything ML Detect supports besides is a count.
    pub fn of_metric(metric: &str) -> Self {
        if metric == "aws:message-byte-size" {
            MetricKind::Size
        } else {
            MetricKind::Count
        }
    }
}

/// Busy devices (at least this many events a day) get their level from the
/// median of daily ratios; rarer ones from the empirical-Bayes estimate.
const BUSY_EVENTS_PER_DAY: f64 = 20.0;
/// Quiet hours keep a small expectation, so one message at night is not
/// infinitely surprising.
const SHAPE_FLOOR: f64 = 0.02;
/// Dispersion used when the data cannot estimate it.
const DEFAULT_DISPERSION: [f64; 3] = [0.5, 0.3, 0.2];
const MIN_DISPERSION: f64 = 0.01;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceModel {
    /// Count: expected events per datapoint at shape 1. Size: mean log bytes.
    pub level: f64,
    /// Size only: spread of log bytes per datapoint.
    pub spread: f64,
    /// Size only: the largest log bytes seen in training. The largest
    /// message of a period has a heavier tail than a log-normal, so a
    /// single datapoint counts only above what the device has done before.
    pub top: f64,
    /// Days of the device's own data behind `level`.
    pub own_days: u32,
    /// Extra multiplicative variance from not knowing the level well
    /// (large for a device the model has not seen).
    pub extra: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub kind: MetricKind,
    /// [daytype][hour], weekly mean 1.
    pub shape: [[f64; 24]; 2],
    /// Dispersion for windows of one datapoint, one hour, one day.
    pub dispersion: [f64; 3],
    /// Count: pooled events per datapoint at shape 1. Size: median centre.
    pub prior_level: f64,
    /// Variance of ln(level) (count) or of centres (size) across devices.
    pub level_spread: f64,
    /// Size: spread of a new device; day-to-day variance of daily means.
    pub prior_spread: f64,
    pub day_var: f64,
    pub devices: HashMap<Arc<str>, DeviceModel>,
}

impl Model {
    pub fn shape_at(&self, ts: i64) -> f64 {
        self.shape[clock::daytype(ts)][clock::hour_of_day(ts)]
    }

    /// The device's model, or the profile prior for a device not seen in
    /// training.
    pub fn device(&self, name: &str) -> DeviceModel {
        self.devices.get(name).copied().unwrap_or(DeviceModel {
            level: self.prior_level,
            spread: self.prior_spread,
            top: self.prior_level
                + 2.326 * (self.prior_spread * self.prior_spread + self.level_spread).sqrt(),
            own_days: 0,
            extra: self.level_spread,
        })
    }

    /// Trains on the days `[from, to]` of every series.
    pub fn train(
        kind: MetricKind,
        series: &[(&Arc<str>, &SeriesHistory)],
        from: i64,
        to: i64,
        periods_per_day: f64,
    ) -> Model {
        match kind {
            MetricKind::Count => train_counts(series, from, to, periods_per_day),
            MetricKind::Size => train_sizes(series, from, to),
        }
    }

    /// Refits one device from its usable days in `[from, to]` under the
    /// current shape and prior (an accepted shift, at once).
    pub fn refit_device(&mut self, name: &Arc<str>, h: &SeriesHistory, from: i64, to: i64) {
        let days: Vec<&DayRecord> = h.usable(from, to).collect();
        let fitted = match self.kind {
            MetricKind::Count => fit_count_device(
                &self.shape,
                &days,
                self.prior_level,
                self.dispersion[2],
                self.level_spread,
            ),
            MetricKind::Size => fit_size_device(&days, self),
        };
        match fitted {
            Some(d) => {
                self.devices.insert(Arc::clone(name), d);
            }
            None => {
                self.devices.remove(name);
            }
        }
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Squared robust standard deviation (1.4826 · MAD)².
fn robust_var(v: &mut [f64]) -> Option<f64> {
    if v.len() < 3 {
        return None;
    }
    let m = median(v)?;
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&mut dev)?;
    Some((1.4826 * mad).powi(2))
}

fn as_f64(n: u32) -> f64 {
    f64::from(n)
}

/// Expected events of a day at level 1: Σ over observed hours of n · S.
fn day_exposure(shape: &[[f64; 24]; 2], d: &DayRecord) -> f64 {
    let dt = clock::daytype_of_day(d.day);
    d.hours
        .iter()
        .zip(shape[dt].iter())
        .map(|(h, s)| as_f64(h.n) * s)
        .sum()
}

fn train_counts(
    series: &[(&Arc<str>, &SeriesHistory)],
    from: i64,
    to: i64,
    periods_per_day: f64,
) -> Model {
    // Per device: usable days and mean events per datapoint.
    let usable: Vec<(&Arc<str>, Vec<&DayRecord>, f64)> = series
        .iter()
        .filter_map(|(name, h)| {
            let days: Vec<&DayRecord> = h.usable(from, to).collect();
            let n: u32 = days.iter().map(|d| d.n()).sum();
            if n == 0 {
                return None;
            }
            let mean = days.iter().map(|d| d.sum()).sum::<f64>() / as_f64(n);
            Some((*name, days, mean))
        })
        .collect();

    let shape = fit_shape(&usable, periods_per_day);

    // Profile prior: pooled events per unit exposure.
    let (mut sx, mut se) = (0.0, 0.0);
    for (_, days, _) in &usable {
        for d in days {
            sx += d.sum();
            se += day_exposure(&shape, d);
        }
    }
    let prior_level = if se > 0.0 { (sx / se).max(1e-6) } else { 1e-6 };

    // Levels with a provisional dispersion, then the dispersion under those
    // levels, then levels again with it (the EB shrinkage needs neither).
    let mut devices = HashMap::new();
    for (name, days, _) in &usable {
        if let Some(d) = fit_count_device(&shape, days, prior_level, DEFAULT_DISPERSION[2], 0.0) {
            devices.insert(Arc::clone(*name), d);
        }
    }
    let dispersion = fit_dispersion(&shape, &usable, &devices);

    let mut logs: Vec<f64> = devices
        .values()
        .filter(|d| d.level > 0.0)
        .map(|d| d.level.ln())
        .collect();
    let level_spread = robust_var(&mut logs).unwrap_or(1.0).max(dispersion[2]);
    for d in devices.values_mut() {
        d.extra = level_extra(d.own_days, dispersion[2], level_spread);
    }

    Model {
        kind: MetricKind::Count,
        shape,
        dispersion,
        prior_level,
        level_spread,
        prior_spread: 0.0,
        day_var: 0.0,
        devices,
    }
}

/// Uncertainty of a level estimated from `own_days` days: a day's level
/// wanders by `day_disp`, so n days pin it to `day_disp / n`; none at all
/// leaves the spread of levels across the fleet.
fn level_extra(own_days: u32, day_disp: f64, level_spread: f64) -> f64 {
    if own_days == 0 {
        level_spread
    } else {
        day_disp / as_f64(own_days)
    }
}

fn fit_count_device(
    shape: &[[f64; 24]; 2],
    days: &[&DayRecord],
    prior_level: f64,
    day_disp: f64,
    level_spread: f64,
) -> Option<DeviceModel> {
    if days.is_empty() {
        return None;
    }
    let own_days = u32::try_from(days.len()).unwrap_or(u32::MAX);
    let total: f64 = days.iter().map(|d| d.sum()).sum();
    let exposure: f64 = days.iter().map(|d| day_exposure(shape, d)).sum();
    let busy = total / as_f64(own_days) >= BUSY_EVENTS_PER_DAY;
    let level = if busy {
        let mut ratios: Vec<f64> = days
            .iter()
            .filter_map(|d| {
                let e = day_exposure(shape, d);
                (e > 0.0).then(|| d.sum() / e)
            })
            .collect();
        median(&mut ratios)?
    } else {
        // Empirical Bayes: one pseudo-event at the profile's rate.
        (1.0 + total) / (1.0 / prior_level + exposure)
    };
    Some(DeviceModel {
        level: level.max(1e-9),
        spread: 0.0,
        top: 0.0,
        own_days,
        extra: level_extra(own_days, day_disp, level_spread),
    })
}

/// Median over busy devices of (bucket mean / device mean); pooled when
/// fewer than three devices are busy; flat when there is nothing to learn.
fn fit_shape(usable: &[(&Arc<str>, Vec<&DayRecord>, f64)], periods_per_day: f64) -> [[f64; 24]; 2] {
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); 48];
    let mut pooled = [(0.0f64, 0.0f64); 48];
    for (_, days, mean) in usable {
        if *mean <= 0.0 {
            continue;
        }
        let mut acc = [(0.0f64, 0u32); 48];
        for d in days {
            let dt = clock::daytype_of_day(d.day);
            for (h, agg) in d.hours.iter().enumerate() {
                let b = dt * 24 + h;
                acc[b].0 += agg.sum;
                acc[b].1 += agg.n;
            }
        }
        let busy = mean * periods_per_day >= BUSY_EVENTS_PER_DAY;
        for (b, (s, n)) in acc.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            pooled[b].0 += s;
            pooled[b].1 += mean * as_f64(*n);
            if busy {
                buckets[b].push(s / as_f64(*n) / mean);
            }
        }
    }
    let busy_devices = buckets.iter().map(Vec::len).max().unwrap_or(0);
    // A handful of busy devices among many quiet ones (attacked devices
    // whose days were learned, on a metric that is rare for the fleet) are
    // outliers, not the fleet's rhythm: their median needs a tenth of the
    // devices behind it.
    let enough_busy = busy_devices >= 3.max(usable.len().div_ceil(10));
    let pooled_events: f64 = pooled.iter().map(|p| p.0).sum();
    let mut raw = [[None::<f64>; 24]; 2];
    for (b, values) in buckets.iter_mut().enumerate() {
        let v = if enough_busy {
            median(values)
        } else if pooled_events >= 1000.0 && pooled[b].1 > 0.0 {
            Some(pooled[b].0 / pooled[b].1)
        } else {
            None
        };
        raw[b / 24][b % 24] = v;
    }
    let mut shape = [[1.0; 24]; 2];
    for dt in 0..2 {
        for h in 0..24 {
            // A daytype not seen yet borrows the other one's hour.
            shape[dt][h] = raw[dt][h].or(raw[1 - dt][h]).unwrap_or(1.0);
        }
    }
    let week_mean =
        (5.0 * shape[0].iter().sum::<f64>() + 2.0 * shape[1].iter().sum::<f64>()) / 168.0;
    if week_mean > 0.0 {
        for row in &mut shape {
            for s in row.iter_mut() {
                *s = (*s / week_mean).max(SHAPE_FLOOR);
            }
        }
    } else {
        shape = [[1.0; 24]; 2];
    }
    shape
}

fn fit_dispersion(
    shape: &[[f64; 24]; 2],
    usable: &[(&Arc<str>, Vec<&DayRecord>, f64)],
    devices: &HashMap<Arc<str>, DeviceModel>,
) -> [f64; 3] {
    let mut day_logs = Vec::new();
    let mut inv_m = Vec::new();
    let (mut hour_num, mut hour_den) = (0.0, 0.0);
    let (mut in_num, mut in_den) = (0.0, 0.0);
    for (name, days, _) in usable {
        let Some(dm) = devices.get(*name) else {
            continue;
        };
        for d in days {
            let m_day = dm.level * day_exposure(shape, d);
            let x_day = d.sum();
            if m_day >= BUSY_EVENTS_PER_DAY && x_day > 0.0 {
                day_logs.push((x_day / m_day).ln());
                inv_m.push(1.0 / m_day);
            }
            let dt = clock::daytype_of_day(d.day);
            for (h, agg) in d.hours.iter().enumerate() {
                if agg.n == 0 {
                    continue;
                }
                let n = as_f64(agg.n);
                let m = dm.level * shape[dt][h] * n;
                if m >= 5.0 {
                    hour_num += (agg.sum - m).powi(2) - m;
                    hour_den += m * m;
                }
                if agg.n >= 2 && agg.sum > 0.0 {
                    let mean = agg.sum / n;
                    let var = (agg.sumsq - agg.sum * agg.sum / n) / (n - 1.0);
                    in_num += n * (var - mean);
                    in_den += n * mean * mean;
                }
            }
        }
    }
    let day = match robust_var(&mut day_logs) {
        Some(v) => {
            let poisson = inv_m.iter().sum::<f64>()
                / as_f64(u32::try_from(inv_m.len()).unwrap_or(u32::MAX)).max(1.0);
            (v - poisson).max(MIN_DISPERSION)
        }
        None => DEFAULT_DISPERSION[2],
    };
    let hour = if hour_den > 0.0 {
        (hour_num / hour_den).max(day)
    } else {
        DEFAULT_DISPERSION[1].max(day)
    };
    let within = if in_den > 0.0 {
        (in_num / in_den).max(0.0)
    } else {
        DEFAULT_DISPERSION[0]
    };
    [
        (hour + within).max(MIN_DISPERSION),
        hour.max(MIN_DISPERSION),
        day,
    ]
}

/// Mean, spread, day-to-day variance, days and largest value of log sizes.
fn size_stats(days: &[&DayRecord]) -> Option<(f64, f64, f64, u32, f64)> {
    let (mut n, mut s, mut ss) = (0u32, 0.0, 0.0);
    let top = days
        .iter()
        .flat_map(|d| d.hours.iter())
        .filter(|h| h.n > 0)
        .map(|h| h.max)
        .fold(0.0, f64::max);
    let mut daily = Vec::new();
    for d in days {
        let dn = d.n();
        if dn == 0 {
            continue;
        }
        let ds = d.sum();
        n += dn;
        s += ds;
        ss += d.hours.iter().map(|h| h.sumsq).sum::<f64>();
        daily.push(ds / as_f64(dn));
    }
    if n == 0 {
        return None;
    }
    let nf = as_f64(n);
    let mean = s / nf;
    let var = (ss / nf - mean * mean).max(0.0);
    let day_var = if daily.len() >= 2 {
        let dm = daily.iter().sum::<f64>() / daily.len() as f64;
        daily.iter().map(|x| (x - dm).powi(2)).sum::<f64>() / (daily.len() - 1) as f64
    } else {
        0.0
    };
    Some((
        mean,
        var.sqrt(),
        day_var,
        u32::try_from(daily.len()).unwrap_or(u32::MAX),
        top,
    ))
}

fn fit_size_device(days: &[&DayRecord], m: &Model) -> Option<DeviceModel> {
    let (mean, spread, _, own_days, top) = size_stats(days)?;
    Some(DeviceModel {
        level: mean,
        spread: spread.max(0.05),
        top,
        own_days,
        extra: level_extra(own_days, m.day_var, m.level_spread),
    })
}

fn train_sizes(series: &[(&Arc<str>, &SeriesHistory)], from: i64, to: i64) -> Model {
    let mut stats = Vec::new();
    for (name, h) in series {
        let days: Vec<&DayRecord> = h.usable(from, to).collect();
        if let Some(s) = size_stats(&days) {
            stats.push((Arc::clone(*name), s));
        }
    }
    let mut centres: Vec<f64> = stats.iter().map(|(_, s)| s.0).collect();
    let mut spreads: Vec<f64> = stats.iter().map(|(_, s)| s.1).collect();
    let mut day_vars: Vec<f64> = stats.iter().map(|(_, s)| s.2).collect();
    let prior_level = median(&mut centres.clone()).unwrap_or(0.0);
    let level_spread = robust_var(&mut centres).unwrap_or(1.0);
    let prior_spread = median(&mut spreads).unwrap_or(0.5).max(0.05);
    let day_var = median(&mut day_vars).unwrap_or(0.01).max(1e-4);
    let mut m = Model {
        kind: MetricKind::Size,
        shape: [[1.0; 24]; 2],
        dispersion: [0.0; 3],
        prior_level,
        level_spread,
        prior_spread,
        day_var,
        devices: HashMap::new(),
    };
    for (name, (mean, spread, _, own_days, top)) in stats {
        m.devices.insert(
            name,
            DeviceModel {
                level: mean,
                spread: spread.max(0.05),
                top,
                own_days,
                extra: level_extra(own_days, day_var, level_spread),
            },
        );
    }
    m
}
