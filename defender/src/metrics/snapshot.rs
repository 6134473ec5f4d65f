//! What one period produced: per thing, the value of each cloud-side metric
//! (and of each dimension), plus the broker-wide and per-IP counts. Values
//! are kept compact per thing and turned into [`Measurement`]s on request,
//! so a period of 100,000 things is not 800,000 separate allocations.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::ip::{BrokerCounts, IpCounts};
use crate::detect::evaluate::Measurement;
use crate::detect::model::{DimensionValueOperator, Timestamp};

/// The eight cloud-side (broker-measured) metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloudMetric {
    MessageByteSize,
    NumMessagesSent,
    NumMessagesReceived,
    NumAuthorizationFailures,
    SourceIpAddress,
    NumConnectionAttempts,
    NumDisconnects,
    DisconnectDuration,
}

impl CloudMetric {
    pub const ALL: [CloudMetric; 8] = [
        Self::MessageByteSize,
        Self::NumMessagesSent,
        Self::NumMessagesReceived,
        Self::NumAuthorizationFailures,
        Self::SourceIpAddress,
        Self::NumConnectionAttempts,
        Self::NumDisconnects,
        Self::DisconnectDuration,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MessageByteSize => "aws:message-byte-size",
            Self::NumMessagesSent => "aws:num-messages-sent",
            Self::NumMessagesReceived => "aws:num-messages-received",
            Self::NumAuthorizationFailures => "aws:num-authorization-failures",
            Self::SourceIpAddress => "aws:source-ip-address",
            Self::NumConnectionAttempts => "aws:num-connection-attempts",
            Self::NumDisconnects => "aws:num-disconnects",
            Self::DisconnectDuration => "aws:disconnect-duration",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A thing's counts for the period. Present when the thing was connected
/// or did something during it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThingCounts {
    pub messages_sent: u64,
    pub messages_received: u64,
    pub authorization_failures: u64,
    pub connection_attempts: u64,
    pub disconnects: u64,
    /// Largest payload sent; `None` when no message was.
    pub max_message_bytes: Option<u64>,
}

/// One dimension's split of a thing's counts. Index 0 is IN (topic matches
/// a filter), index 1 NOT_IN (matches none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimensionCounts {
    pub name: Arc<str>,
    /// `None` when a connection of this period predates the dimension (see
    /// `dimension.rs`): no datapoint rather than a wrong one.
    pub messages: Option<DimensionMessages>,
    pub authorization_failures: [u64; 2],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DimensionMessages {
    pub sent: [u64; 2],
    pub received: [u64; 2],
    /// Largest payload sent on each side; `None` when none was.
    pub max_bytes: [Option<u64>; 2],
}

/// Everything one thing produced in a period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThingPeriod {
    pub counts: Option<ThingCounts>,
    /// Sorted, deduplicated; empty when the thing was not connected.
    pub source_ips: Vec<IpAddr>,
    /// Whole minutes since its last connection ended (0 while connected);
    /// `None` for a thing that never connected.
    pub disconnect_minutes: Option<u64>,
    pub dimensions: Vec<DimensionCounts>,
}

fn side(op: DimensionValueOperator) -> usize {
    match op {
        DimensionValueOperator::In => 0,
        DimensionValueOperator::NotIn => 1,
    }
}

impl ThingPeriod {
    /// The datapoint of `metric` (limited to `dimension`, a name and its
    /// operator, for the metrics that take one), or `None` for no datapoint.
    /// A dimension on `aws:source-ip-address` does not change the value (an
    /// address has no topic); on the other metrics it is ignored.
    pub fn measurement(
        &self,
        metric: CloudMetric,
        dimension: Option<(&str, DimensionValueOperator)>,
    ) -> Option<Measurement> {
        use CloudMetric::*;
        let dim_counts = |name: &str| self.dimensions.iter().find(|d| &*d.name == name);
        match (metric, dimension) {
            (SourceIpAddress, _) => {
                (!self.source_ips.is_empty()).then(|| Measurement::Ips(self.source_ips.clone()))
            }
            (DisconnectDuration, _) => self.disconnect_minutes.map(Measurement::Count),
            (NumMessagesSent | NumMessagesReceived | MessageByteSize, Some((name, op))) => {
                let m = dim_counts(name)?.messages?;
                let i = side(op);
                match metric {
                    NumMessagesSent => Some(Measurement::Count(m.sent[i])),
                    NumMessagesReceived => Some(Measurement::Count(m.received[i])),
                    _ => m.max_bytes[i].map(Measurement::Count),
                }
            }
            (NumAuthorizationFailures, Some((name, op))) => Some(Measurement::Count(
                dim_counts(name)?.authorization_failures[side(op)],
            )),
            _ => {
                let c = self.counts?;
                match metric {
                    NumMessagesSent => Some(c.messages_sent),
                    NumMessagesReceived => Some(c.messages_received),
                    NumAuthorizationFailures => Some(c.authorization_failures),
                    NumConnectionAttempts => Some(c.connection_attempts),
                    NumDisconnects => Some(c.disconnects),
                    _ => c.max_message_bytes,
                }
                .map(Measurement::Count)
            }
        }
    }
}

/// One datapoint, keyed by (thing, metric, dimension).
#[derive(Clone, Debug, PartialEq)]
pub struct Datapoint<'a> {
    pub thing: &'a Arc<str>,
    pub metric: CloudMetric,
    pub dimension: Option<(&'a Arc<str>, DimensionValueOperator)>,
    pub measurement: Measurement,
}

/// The period that ended at `end`.
#[derive(Clone, Debug, Default)]
pub struct PeriodSnapshot {
    pub start: Timestamp,
    pub end: Timestamp,
    pub things: HashMap<Arc<str>, ThingPeriod>,
    pub broker: BrokerCounts,
    pub per_ip: HashMap<IpAddr, IpCounts>,
}

impl PeriodSnapshot {
    pub fn measurement(
        &self,
        thing: &str,
        metric: CloudMetric,
        dimension: Option<(&str, DimensionValueOperator)>,
    ) -> Option<Measurement> {
        self.things.get(thing)?.measurement(metric, dimension)
    }

    /// Every datapoint of the period: each thing's metrics without a
    /// dimension, then each dimension's IN and NOT_IN values.
    pub fn datapoints(&self) -> impl Iterator<Item = Datapoint<'_>> + '_ {
        use DimensionValueOperator::{In, NotIn};
        self.things.iter().flat_map(|(thing, p)| {
            let plain = CloudMetric::ALL.into_iter().filter_map(move |metric| {
                Some(Datapoint {
                    thing,
                    metric,
                    dimension: None,
                    measurement: p.measurement(metric, None)?,
                })
            });
            let dimensional = p.dimensions.iter().flat_map(move |d| {
                [
                    CloudMetric::NumMessagesSent,
                    CloudMetric::NumMessagesReceived,
                    CloudMetric::MessageByteSize,
                    CloudMetric::NumAuthorizationFailures,
                ]
                .into_iter()
                .flat_map(move |metric| {
                    [In, NotIn].into_iter().filter_map(move |op| {
                        Some(Datapoint {
                            thing,
                            metric,
                            dimension: Some((&d.name, op)),
                            measurement: p.measurement(metric, Some((&d.name, op)))?,
                        })
                    })
                })
            });
            plain.chain(dimensional)
        })
    }
}
