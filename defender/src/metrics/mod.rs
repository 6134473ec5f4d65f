//! Cloud-side metrics: what the broker sees of each device, turned into one
//! datapoint per thing, metric and dimension per period.
//!
//! The [`Collector`] is the broker's [`Observer`](wardmq_broker::observer::Observer).
//! Rare events (connects, refusals, disconnects, authorization failures)
//! take a shard lock; the PUBLISH path only bumps the connection's own
//! atomics ([`ConnCounters`](wardmq_broker::observer::ConnCounters), and
//! [`ConnTopicCounters`] when a TOPIC_FILTER dimension exists), which
//! [`Collector::close_period`] reads once per period as deltas.
//!
//! The eight metrics and how a period's datapoint is made:
//!
//! | metric | datapoint |
//! |---|---|
//! | `aws:num-messages-sent` | PUBLISHes the device sent in the period (delta of `publishes_in`) |
//! | `aws:num-messages-received` | PUBLISHes delivered to the device (delta of `publishes_out`) |
//! | `aws:num-authorization-failures` | denied requests in the period |
//! | `aws:num-connection-attempts` | CONNECTs, accepted or refused |
//! | `aws:num-disconnects` | connections that ended |
//! | `aws:message-byte-size` | the **largest** payload in the period, only if a message was sent |
//! | `aws:source-ip-address` | every IP the thing was connected from during the period |
//! | `aws:disconnect-duration` | whole **minutes** since the last connection ended; 0 while connected |
//!
//! `aws:message-byte-size` is judged per message by AWS. A rule on it
//! (`less-than[-equals]`, the form that makes sense: "normal messages are
//! small") violates in a period exactly when some message in it did, which is
//! what the largest message says; one datapoint per period instead of per
//! message keeps the PUBLISH path to one `fetch_max`. `greater-than` rules
//! are judged on the largest message too (documented limitation).
//!
//! `aws:disconnect-duration` is in minutes because that is the unit the
//! behaviours are written in (spec §6.1, case 16); the exact moment is
//! available from [`Collector::disconnected_since`] for the export, which
//! reports seconds.

mod collector;
mod dimension;
mod ip;
mod snapshot;
mod thing;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

pub use collector::{Collector, CollectorConfig};
pub use dimension::{ConnTopicCounters, DimensionFilters, TopicDimension};
pub use ip::{BrokerCounts, IpCounts};
pub use snapshot::{
    CloudMetric, Datapoint, DimensionCounts, DimensionMessages, PeriodSnapshot, ThingCounts,
    ThingPeriod,
};
