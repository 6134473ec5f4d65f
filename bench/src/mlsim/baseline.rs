//! Static thresholds on the same data, the comparison ML must beat:
//! per-device thresholds (a quantile or a multiple of the device's own
//! training maximum) and per-profile quantiles (Rules Detect's
//! statistical thresholds), each metric alarming like an ML behaviour
//! (raise when above, clear after the same number of compliant datapoints).

use super::fleet::{Fleet, Row, PROFILES};
use super::score::Raised;

/// Metrics judged: the CSV's counts and the largest message (value index).
const METRICS: [usize; 6] = [0, 1, 2, 3, 4, 6];

enum Rule {
    DeviceQuantile(f64),
    DeviceMax(f64),
    ProfileQuantile(f64),
}

impl Rule {
    fn name(&self) -> String {
        match self {
            Rule::DeviceQuantile(q) => format!("per-device p{}", q * 100.0),
            Rule::DeviceMax(m) => format!("per-device {m}×max"),
            Rule::ProfileQuantile(q) => format!("per-profile p{}", q * 100.0),
        }
    }
}

const RULES: [Rule; 10] = [
    Rule::DeviceQuantile(0.99),
    Rule::DeviceQuantile(0.999),
    Rule::DeviceMax(1.0),
    Rule::DeviceMax(1.5),
    Rule::DeviceMax(2.0),
    Rule::DeviceMax(3.0),
    Rule::ProfileQuantile(0.99),
    Rule::ProfileQuantile(0.999),
    Rule::ProfileQuantile(0.9999),
    Rule::ProfileQuantile(1.0),
];

pub struct Baselines {
    clear_after: u8,
    /// Training values per device and metric.
    train: Vec<[Vec<f32>; 6]>,
    /// Thresholds per rule, device, metric.
    thresholds: Vec<Vec<[f64; 6]>>,
    /// Compliant datapoints since raised, per rule, device, metric; None when not in alarm.
    state: Vec<Vec<[Option<u8>; 6]>>,
    raised: Vec<Vec<Raised>>,
}

fn quantile(v: &mut [f32], q: f64) -> f64 {
    if v.is_empty() {
        return f64::INFINITY;
    }
    v.sort_by(f32::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    f64::from(v[rank - 1])
}

impl Baselines {
    pub fn new(devices: usize, clear_after: u32) -> Self {
        Self {
            clear_after: u8::try_from(clear_after).unwrap_or(u8::MAX),
            train: (0..devices).map(|_| Default::default()).collect(),
            thresholds: Vec::new(),
            state: (0..RULES.len()).map(|_| vec![[None; 6]; devices]).collect(),
            raised: vec![Vec::new(); RULES.len()],
        }
    }

    pub fn learn(&mut self, r: &Row) {
        for (m, &i) in METRICS.iter().enumerate() {
            if i == 6 && r.values[i] <= 0.0 {
                continue;
            }
            self.train[r.device][m].push(r.values[i] as f32);
        }
    }

    pub fn fit(&mut self, fleet: &Fleet) {
        let devices = self.train.len();
        let mut pooled: Vec<[Vec<f32>; 6]> =
            (0..PROFILES.len()).map(|_| Default::default()).collect();
        for (d, series) in self.train.iter().enumerate() {
            for m in 0..6 {
                pooled[fleet.devices[d].profile][m].extend_from_slice(&series[m]);
            }
        }
        self.thresholds = RULES
            .iter()
            .map(|rule| {
                let per_profile: Vec<[f64; 6]> = match rule {
                    Rule::ProfileQuantile(q) => pooled
                        .iter_mut()
                        .map(|p| std::array::from_fn(|m| quantile(&mut p[m], *q)))
                        .collect(),
                    _ => Vec::new(),
                };
                (0..devices)
                    .map(|d| {
                        std::array::from_fn(|m| match rule {
                            Rule::DeviceQuantile(q) => quantile(&mut self.train[d][m], *q),
                            Rule::DeviceMax(k) => quantile(&mut self.train[d][m], 1.0) * k,
                            Rule::ProfileQuantile(_) => per_profile[fleet.devices[d].profile][m],
                        })
                    })
                    .collect()
            })
            .collect();
    }

    pub fn judge(&mut self, r: &Row) {
        for (k, thresholds) in self.thresholds.iter().enumerate() {
            for (m, &i) in METRICS.iter().enumerate() {
                let v = r.values[i];
                if i == 6 && v <= 0.0 {
                    continue;
                }
                let over = v > thresholds[r.device][m] && v >= 1.0;
                let st = &mut self.state[k][r.device][m];
                match (*st, over) {
                    (None, true) => {
                        *st = Some(0);
                        self.raised[k].push(Raised {
                            ts: r.ts,
                            device: Some(r.device),
                            metric: m,
                            // A static rule has no score; the value it saw.
                            score: v,
                        });
                    }
                    (Some(_), true) => *st = Some(0),
                    (Some(g), false) => {
                        *st = if g + 1 >= self.clear_after {
                            None
                        } else {
                            Some(g + 1)
                        };
                    }
                    (None, false) => {}
                }
            }
        }
    }

    pub fn raised(&self) -> Vec<(String, Vec<Raised>)> {
        RULES
            .iter()
            .zip(&self.raised)
            .map(|(r, v)| (r.name(), v.clone()))
            .collect()
    }
}
