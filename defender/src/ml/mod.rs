//! ML Detect: learned per-device baselines with confidence levels.
//!
//! Pure and clock-free: every function takes the data's own time (epoch
//! seconds), so the live engine and `wardmq defender replay` run the same
//! code on the same inputs and get the same alarms.
//!
//! | file | one sentence |
//! |---|---|
//! | `clock.rs` | the data clock: days, hours, weekday/weekend |
//! | `level.rs` | confidence levels and the score thresholds that map to them |
//! | `tail.rs` | upper-tail probabilities (negative binomial, normal) as scores |
//! | `history.rs` | the trailing window a model trains on, per device and day, hourly aggregates |
//! | `model.rs` | training: profile shape, dispersion, profile prior, per-device levels |
//! | `status.rs` | the model lifecycle PENDING_BUILD → ACTIVE → EXPIRED |
//! | `detector.rs` | one (profile, behaviour): judging a period, fleet gate, daily retrain, accepted shifts |
//! | `workload.rs` | messages sent and received rising together: a workload change, not HIGH |
//! | `replay.rs` | the offline replay of a metrics CSV through detector and alarm state machine |
//!
//! The method is section 3 of `ml-detect.md`: an expected count
//! `μ = L_device · S_profile(hour, daytype)`, negative-binomial tails on
//! windows of 1 datapoint, 1 hour and 1 day, and a Bonferroni-corrected
//! score `s = max_w(−log10 p_w) − log10(windows)` mapped to LOW / MEDIUM /
//! HIGH. Choices are listed in ARCHITECTURE.md, "ML Detect".

pub mod clock;
pub mod detector;
pub mod history;
pub mod level;
pub mod model;
pub mod replay;
pub mod status;
pub mod tail;
pub mod workload;

pub use detector::{Detector, DetectorConfig, Judgement, MetricKind, PeriodResult};
pub use level::Level;
pub use status::{ModelGate, ModelStatus};

#[cfg(test)]
pub(crate) mod tests;
