use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::{QoS, SubscriptionOptions};

/// One client's subscription to one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub options: SubscriptionOptions,
    /// v5 subscription identifier.
    pub identifier: Option<u32>,
}

/// What one client gets for one message after merging all its matching
/// subscriptions: a single copy at the highest granted QoS carrying every
/// matching subscription identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub qos: QoS,
    /// True if any matching subscription has Retain As Published.
    pub retain_as_published: bool,
    pub subscription_ids: Vec<u32>,
}

/// Subscription trie keyed by topic level.
#[derive(Default)]
pub struct Router {}

impl Router {
    pub fn new() -> Router {
        todo!("router agent")
    }

    /// Adds or replaces `client`'s subscription to `filter` (plain or
    /// `$share/{group}/{filter}`, already validated). Returns true if the
    /// client had no subscription to that exact filter before.
    pub fn subscribe(&mut self, client: &Arc<str>, filter: &str, sub: Subscription) -> bool {
        let _ = (client, filter, sub);
        todo!("router agent")
    }

    /// Removes `client`'s subscription to `filter`; true if it existed.
    pub fn unsubscribe(&mut self, client: &str, filter: &str) -> bool {
        let _ = (client, filter);
        todo!("router agent")
    }

    /// Finds every client that should receive a message on `topic`
    /// published by `publisher`, merging overlapping subscriptions into one
    /// [`Delivery`] per client in `out` (cleared first). Subscriptions with
    /// No Local skip the publisher. Each matching shared group delivers to
    /// one member, round-robin among those for which `online` is true (any
    /// member if none is online).
    pub fn route(
        &self,
        topic: &str,
        publisher: &str,
        online: &dyn Fn(&str) -> bool,
        out: &mut HashMap<Arc<str>, Delivery>,
    ) {
        let _ = (topic, publisher, online, out);
        todo!("router agent")
    }

    /// Number of (client, filter) subscriptions held.
    pub fn len(&self) -> usize {
        todo!("router agent")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
