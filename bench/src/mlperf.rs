//! `wardmq-bench mlperf`: ML Detect's performance targets on a synthetic
//! fleet (10,000 devices by default): model state per device, CPU per
//! device per datapoint, and the daily retrain of the whole fleet's
//! 14-day window. One count detector and one size detector are measured;
//! a device's figures are five counts plus one size (the cloud-side
//! metrics).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wardmq_defender::ml::{clock, Detector, DetectorConfig, MetricKind, ModelStatus};

use crate::mlsim::fleet::{poisson, rhythm, Rhythm, PERIOD, PER_DAY, T0};

#[derive(Args, Clone)]
pub struct MlperfArgs {
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Days of history before the timed retrain (the training window).
    #[arg(long, default_value_t = 14)]
    days: i64,
    /// Periods judged (and timed) after the retrain.
    #[arg(long, default_value_t = 288)]
    judged: i64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Count metrics of a device besides its message size.
const COUNTS: f64 = 5.0;

struct Measured {
    state_bytes: usize,
    history_bytes: usize,
    retrain: Duration,
    judge_us: f64,
}

fn measure(a: &MlperfArgs, kind: MetricKind) -> Result<Measured> {
    let mut rng = StdRng::seed_from_u64(a.seed);
    // Levels from 0.05 to 500 events per datapoint; sizes 50 B to 50 kB.
    let devices: Vec<(Arc<str>, f64)> = (0..a.devices)
        .map(|i| {
            let level = 0.05 * 10f64.powf(rng.random_range(0.0..4.0));
            (Arc::from(format!("dev-{i:05}")), level)
        })
        .collect();
    let values = |rng: &mut StdRng, ts: i64| -> Vec<(Arc<str>, f64)> {
        let r = rhythm(Rhythm::Daylight, ts);
        devices
            .iter()
            .map(|(n, l)| {
                #[allow(clippy::cast_precision_loss)]
                let x = poisson(rng, l * r) as f64;
                let v = match kind {
                    MetricKind::Count => x,
                    MetricKind::Size => 50.0 * l.max(1.0) * (1.0 + 0.1 * rng.random::<f64>()),
                };
                (Arc::clone(n), v)
            })
            .collect()
    };
    let mut det = Detector::new(kind, DetectorConfig::default());
    for p in 0..a.days * PER_DAY {
        let ts = T0 + p * PERIOD;
        let v = values(&mut rng, ts);
        det.judge_period(ts, &v);
    }
    let started = Instant::now();
    det.retrain(clock::day(T0) + a.days);
    let retrain = started.elapsed();
    ensure!(
        det.summary().status == ModelStatus::Active,
        "the model is not ACTIVE after {} days",
        a.days
    );
    let mut judging = Duration::ZERO;
    for p in 0..a.judged {
        let ts = T0 + a.days * 86_400 + p * PERIOD;
        let v = values(&mut rng, ts);
        let started = Instant::now();
        det.judge_period(ts, &v);
        judging += started.elapsed();
    }
    let (state_bytes, history_bytes) = det.state_bytes_per_device();
    #[allow(clippy::cast_precision_loss)]
    let judge_us = judging.as_secs_f64() * 1e6 / (a.devices as f64 * a.judged.max(1) as f64);
    Ok(Measured {
        state_bytes,
        history_bytes,
        retrain,
        judge_us,
    })
}

pub fn run(a: &MlperfArgs) -> Result<()> {
    let c = measure(a, MetricKind::Count)?;
    let s = measure(a, MetricKind::Size)?;
    #[allow(clippy::cast_precision_loss)]
    let rows: [(&str, f64, f64); 4] = [
        (
            "model + online state, bytes",
            c.state_bytes as f64,
            s.state_bytes as f64,
        ),
        (
            "training history, bytes",
            c.history_bytes as f64,
            s.history_bytes as f64,
        ),
        ("CPU per datapoint, µs", c.judge_us, s.judge_us),
        (
            "retrain of all devices, s",
            c.retrain.as_secs_f64(),
            s.retrain.as_secs_f64(),
        ),
    ];
    println!(
        "ML Detect, {} devices, {} days of history, {} periods judged\n",
        a.devices, a.days, a.judged
    );
    println!("| per (device, metric) | count | size | per device (5 counts + size) |");
    println!("|---|---|---|---|");
    for (name, count, size) in rows {
        println!(
            "| {name} | {count:.2} | {size:.2} | {:.2} |",
            COUNTS * count + size
        );
    }
    Ok(())
}
