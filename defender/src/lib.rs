//! wardmq's defender: what AWS IoT Device Defender does, inside the broker.
//! It depends on the broker's public API (the `Observer` trait, the
//! registry); the broker never depends on it.

#![forbid(unsafe_code)]

pub mod alarms;
pub mod alerts;
pub mod audit;
pub mod catalog;
pub mod detect;
pub mod engine;
pub mod metrics;
pub mod mitigation;
pub mod ml;
pub mod report;
pub mod settings;
pub mod store;
