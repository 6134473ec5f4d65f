//! TOPIC_FILTER dimensions: which topics a behaviour's counts are limited
//! to, and the per-connection counters that split a device's messages by
//! them.
//!
//! Every connection gets a [`ConnTopicCounters`]. Each PUBLISH loads the
//! connection's current slot set (an `arc-swap` load: lock-free, no
//! allocation), matches its topic against each dimension's filters (the
//! client ID was substituted when the set was built) and bumps one relaxed
//! atomic per dimension, so IN and NOT_IN are both exact. With no dimension
//! the set is empty and a PUBLISH costs that one load.
//!
//! When the dimension set changes, the collector re-points each live
//! connection at a set built from the new filters the next time it reads it
//! (period close or disconnect). Counts of a dimension whose name and
//! filters did not change carry over; a dimension that is new or changed
//! gets no message datapoint for that one period (its count would cover
//! only part of it) and exact ones from the next. A PUBLISH racing the
//! re-pointing may bump the old set after its last read: at most the
//! messages in flight at that instant go uncounted in the dimension.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use wardmq_broker::topic::matches;

/// AWS's policy variable for the client ID inside a dimension's filters.
const CLIENT_ID_VARIABLE: &str = "${iot:ClientId}";

/// One TOPIC_FILTER dimension as a profile uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDimension {
    pub name: Arc<str>,
    /// MQTT topic filters (`+`, `#`), possibly with `${iot:ClientId}`.
    pub filters: Vec<String>,
}

/// Every dimension some behaviour uses, as one immutable snapshot. Its
/// `generation` changes with every `Collector::set_dimensions`, so
/// counters built from an older one are recognised.
#[derive(Debug, Default)]
pub struct DimensionFilters {
    pub(crate) generation: u64,
    pub(crate) dims: Vec<TopicDimension>,
}

impl DimensionFilters {
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn dimensions(&self) -> &[TopicDimension] {
        &self.dims
    }

    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    /// Which dimensions `topic` falls in for `client_id`: one bool per
    /// dimension. Used on rare events (authorization failures), so the
    /// variable is substituted on the fly.
    pub(crate) fn matching(&self, client_id: &str, topic: &str) -> Vec<bool> {
        self.dims
            .iter()
            .map(|d| {
                d.filters
                    .iter()
                    .any(|f| matches(&substitute(f, client_id), topic))
            })
            .collect()
    }
}

fn substitute(filter: &str, client_id: &str) -> String {
    filter.replace(CLIENT_ID_VARIABLE, client_id)
}

/// Index 0 counts messages whose topic matches the dimension's filters
/// (IN), index 1 those that match none (NOT_IN).
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) name: Arc<str>,
    filters: Box<[String]>,
    pub(crate) sent: [AtomicU64; 2],
    pub(crate) received: [AtomicU64; 2],
    pub(crate) max_bytes: [AtomicU64; 2],
}

impl Slot {
    /// The same dimension with the same filters (so its counts mean the
    /// same thing).
    pub(crate) fn same_as(&self, other: &Slot) -> bool {
        self.name == other.name && self.filters == other.filters
    }

    fn side(&self, topic: &str) -> usize {
        if self.filters.iter().any(|f| matches(f, topic)) {
            0
        } else {
            1
        }
    }
}

/// A connection's counters for one dimension set: one slot per dimension,
/// in the set's order.
#[derive(Debug, Default)]
pub(crate) struct SlotSet {
    pub(crate) generation: u64,
    pub(crate) slots: Box<[Slot]>,
}

impl SlotSet {
    fn new(client_id: &str, filters: &DimensionFilters) -> Self {
        let slots = filters
            .dims
            .iter()
            .map(|d| Slot {
                name: d.name.clone(),
                filters: d.filters.iter().map(|f| substitute(f, client_id)).collect(),
                ..Slot::default()
            })
            .collect();
        Self {
            generation: filters.generation,
            slots,
        }
    }
}

/// One connection's message counts split by every dimension. Bumped by the
/// connection task, read (with `swap`) only by the collector, so each
/// message is counted in exactly one period.
#[derive(Debug)]
pub struct ConnTopicCounters {
    client_id: Box<str>,
    current: ArcSwap<SlotSet>,
}

impl ConnTopicCounters {
    pub(crate) fn new(client_id: &str, filters: &DimensionFilters) -> Self {
        Self {
            client_id: client_id.into(),
            current: ArcSwap::from_pointee(SlotSet::new(client_id, filters)),
        }
    }

    /// The set counted into now.
    pub(crate) fn slots(&self) -> Arc<SlotSet> {
        self.current.load_full()
    }

    /// Counts into a set built from `filters` from now on; returns the set
    /// counted into until now and the new one.
    pub(crate) fn repoint(&self, filters: &DimensionFilters) -> (Arc<SlotSet>, Arc<SlotSet>) {
        let new = Arc::new(SlotSet::new(&self.client_id, filters));
        (self.current.swap(new.clone()), new)
    }

    /// A PUBLISH from the device on `topic` (after topic-alias resolution)
    /// with a payload of `bytes`.
    pub fn publish_in(&self, topic: &str, bytes: usize) {
        for s in self.current.load().slots.iter() {
            let i = s.side(topic);
            s.sent[i].fetch_add(1, Ordering::Relaxed);
            s.max_bytes[i].fetch_max(bytes as u64, Ordering::Relaxed);
        }
    }

    /// A PUBLISH delivered to the device on `topic`.
    pub fn publish_out(&self, topic: &str) {
        for s in self.current.load().slots.iter() {
            s.received[s.side(topic)].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the broker calls: the connection holds these counters (handed back
/// by `Collector::connected`) and bumps them for every PUBLISH in and out.
impl wardmq_broker::observer::TopicCounters for ConnTopicCounters {
    fn publish_in(&self, topic: &str, bytes: usize) {
        ConnTopicCounters::publish_in(self, topic, bytes);
    }

    fn publish_out(&self, topic: &str) {
        ConnTopicCounters::publish_out(self, topic);
    }
}

/// The topic an authorization failure was about, from its resource ARN
/// (`arn:aws:iot:REGION:ACCOUNT:topic/a/b` or `…:topicfilter/a/+`); `None`
/// for `client/…` (iot:Connect), which no topic dimension can match.
pub(crate) fn topic_of_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    resource
        .strip_prefix("topic/")
        .or_else(|| resource.strip_prefix("topicfilter/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(dims: &[(&str, &[&str])]) -> DimensionFilters {
        DimensionFilters {
            generation: 1,
            dims: dims
                .iter()
                .map(|(n, f)| TopicDimension {
                    name: (*n).into(),
                    filters: f.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn arn_topics() {
        assert_eq!(
            topic_of_arn("arn:aws:iot:eu-west-1:1:topic/a/b:c"),
            Some("a/b:c")
        );
        assert_eq!(topic_of_arn("arn:aws:iot:r:1:topicfilter/a/+"), Some("a/+"));
        assert_eq!(topic_of_arn("arn:aws:iot:r:1:client/x"), None);
        assert_eq!(topic_of_arn("nonsense"), None);
    }

    #[test]
    fn split_in_and_not_in_with_client_id() {
        let f = filters(&[
            ("auth", &["device/+/auth"]),
            ("own", &["d/${iot:ClientId}/#"]),
        ]);
        let c = ConnTopicCounters::new("c1", &f);
        c.publish_in("device/1/auth", 10);
        c.publish_in("device/1/data", 20);
        c.publish_in("d/c1/x", 5);
        c.publish_out("d/c2/x");
        let set = c.slots();
        let s = &set.slots;
        let get = |a: &[AtomicU64; 2]| [a[0].load(Ordering::Relaxed), a[1].load(Ordering::Relaxed)];
        assert_eq!(get(&s[0].sent), [1, 2]);
        assert_eq!(get(&s[0].max_bytes), [10, 20]);
        assert_eq!(get(&s[1].sent), [1, 2]);
        assert_eq!(get(&s[1].received), [0, 1]);
        assert_eq!(f.matching("c1", "d/c1/y"), vec![false, true]);
    }
}
