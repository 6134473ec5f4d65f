use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::codec::{QoS, SubscriptionOptions};
use crate::topic;

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
pub struct Router {
    root: Node,
    /// (client, full filter) pairs, kept here so `len` need not walk the trie.
    len: usize,
}

/// One level of the trie. The subscriber sets are boxed options because most
/// nodes are intermediate levels that hold no subscriber at all.
#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    plus: Option<Box<Node>>,
    /// Subscribers of `<path to here>/#`; kept on the parent because `#`
    /// also matches the parent level itself.
    hash: Option<Box<Subscribers>>,
    /// Subscribers of the filter that ends exactly at this node.
    here: Option<Box<Subscribers>>,
}

#[derive(Default)]
struct Subscribers {
    plain: HashMap<Arc<str>, Subscription>,
    shared: HashMap<Box<str>, Group>,
}

/// A shared subscription group on one filter.
struct Group {
    /// Ordered so round-robin is predictable; groups are small, so the
    /// linear search on (un)subscribe is cheaper than a second index.
    members: Vec<(Arc<str>, Subscription)>,
    /// Index of the member to try first on the next message. Atomic because
    /// `route` runs concurrently under a shared lock.
    cursor: AtomicUsize,
}

/// One level of a filter as the trie sees it.
#[derive(Clone, Copy)]
enum Step<'a> {
    Literal(&'a str),
    Plus,
}

/// Where in the final node a filter's subscribers live.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Here,
    Hash,
}

/// A subscribe/unsubscribe filter split into what the trie needs.
struct Parsed<'a> {
    group: Option<&'a str>,
    steps: Vec<Step<'a>>,
    slot: Slot,
}

impl<'a> Parsed<'a> {
    /// `None` for a filter that is not valid: the codec validates filters
    /// before they get here, so ignoring one is safer than guessing.
    fn new(filter: &'a str) -> Option<Parsed<'a>> {
        let (group, plain) = match topic::parse_shared(filter) {
            Ok(Some(shared)) => (Some(shared.group), shared.filter),
            Ok(None) => (None, filter),
            Err(()) => return None,
        };
        if !topic::valid_topic_filter(plain) {
            return None;
        }
        let mut steps = Vec::new();
        let mut slot = Slot::Here;
        for level in plain.split('/') {
            match level {
                "+" => steps.push(Step::Plus),
                // Validation guarantees `#` is the last level.
                "#" => slot = Slot::Hash,
                _ => steps.push(Step::Literal(level)),
            }
        }
        Some(Parsed { group, steps, slot })
    }
}

impl Node {
    fn child(&self, step: Step<'_>) -> Option<&Node> {
        match step {
            Step::Literal(level) => self.children.get(level),
            Step::Plus => self.plus.as_deref(),
        }
    }

    fn child_mut(&mut self, step: Step<'_>) -> Option<&mut Node> {
        match step {
            Step::Literal(level) => self.children.get_mut(level),
            Step::Plus => self.plus.as_deref_mut(),
        }
    }

    fn child_or_insert(&mut self, step: Step<'_>) -> &mut Node {
        match step {
            Step::Literal(level) => self.children.entry(level.into()).or_default(),
            Step::Plus => self.plus.get_or_insert_with(Box::default),
        }
    }

    fn remove_child(&mut self, step: Step<'_>) {
        match step {
            Step::Literal(level) => {
                self.children.remove(level);
            }
            Step::Plus => self.plus = None,
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut Option<Box<Subscribers>> {
        match slot {
            Slot::Here => &mut self.here,
            Slot::Hash => &mut self.hash,
        }
    }

    fn child_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some())
    }

    /// Moves the children out so they are dropped by an explicit loop.
    fn take_children(&mut self, into: &mut Vec<Node>) {
        into.extend(self.children.drain().map(|(_, child)| child));
        if let Some(plus) = self.plus.take() {
            into.push(*plus);
        }
    }
}

impl Drop for Node {
    // A filter may have tens of thousands of levels; the default recursive
    // drop of such a chain would overflow the stack.
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        while let Some(mut node) = pending.pop() {
            node.take_children(&mut pending);
        }
    }
}

impl Subscribers {
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.shared.is_empty()
    }

    /// Returns true if the subscription is new.
    fn insert(&mut self, group: Option<&str>, client: &Arc<str>, sub: Subscription) -> bool {
        let Some(group) = group else {
            return self.plain.insert(Arc::clone(client), sub).is_none();
        };
        let group = self.shared.entry(group.into()).or_insert_with(|| Group {
            members: Vec::new(),
            cursor: AtomicUsize::new(0),
        });
        match group.members.iter_mut().find(|(c, _)| c == client) {
            Some((_, existing)) => {
                *existing = sub;
                false
            }
            None => {
                group.members.push((Arc::clone(client), sub));
                true
            }
        }
    }

    fn remove(&mut self, group_name: Option<&str>, client: &str) -> bool {
        let Some(group_name) = group_name else {
            return self.plain.remove(client).is_some();
        };
        let Some(group) = self.shared.get_mut(group_name) else {
            return false;
        };
        let Some(pos) = group.members.iter().position(|(c, _)| &**c == client) else {
            return false;
        };
        group.members.remove(pos);
        if group.members.is_empty() {
            self.shared.remove(group_name);
        }
        true
    }

    fn deliver(
        &self,
        publisher: &str,
        online: &dyn Fn(&str) -> bool,
        out: &mut HashMap<Arc<str>, Delivery>,
    ) {
        for (client, sub) in &self.plain {
            if sub.options.no_local && **client == *publisher {
                continue;
            }
            merge(out, client, sub);
        }
        // No Local is not checked here: it is a protocol error on a shared
        // subscription, so the codec never lets one through.
        for group in self.shared.values() {
            if let Some((client, sub)) = group.pick(online) {
                merge(out, client, sub);
            }
        }
    }
}

impl Group {
    /// The member that gets the next message: the first online one from the
    /// cursor on, or the one at the cursor if nobody is online (its session
    /// queues the message).
    fn pick(&self, online: &dyn Fn(&str) -> bool) -> Option<&(Arc<str>, Subscription)> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let mut current = self.cursor.load(Ordering::Relaxed);
        loop {
            let start = current % n;
            let chosen = (0..n)
                .map(|i| (start + i) % n)
                .find(|&i| self.members.get(i).is_some_and(|(c, _)| online(c)))
                .unwrap_or(start);
            // Compare-and-swap so concurrent routes each advance the cursor
            // once instead of both picking the same member.
            match self.cursor.compare_exchange_weak(
                current,
                chosen + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return self.members.get(chosen),
                Err(actual) => current = actual,
            }
        }
    }
}

fn merge(out: &mut HashMap<Arc<str>, Delivery>, client: &Arc<str>, sub: &Subscription) {
    let apply = |d: &mut Delivery| {
        d.qos = d.qos.max(sub.options.qos);
        d.retain_as_published |= sub.options.retain_as_published;
        if let Some(id) = sub.identifier {
            d.subscription_ids.push(id);
        }
    };
    // Look up by &str first so the common repeat hit costs no Arc clone.
    if let Some(d) = out.get_mut(&**client) {
        apply(d);
    } else {
        let mut d = Delivery::default();
        apply(&mut d);
        out.insert(Arc::clone(client), d);
    }
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds or replaces `client`'s subscription to `filter` (plain or
    /// `$share/{group}/{filter}`, already validated). Returns true if the
    /// client had no subscription to that exact filter before.
    ///
    /// An invalid filter is ignored (returns false).
    pub fn subscribe(&mut self, client: &Arc<str>, filter: &str, sub: Subscription) -> bool {
        let Some(parsed) = Parsed::new(filter) else {
            return false;
        };
        let mut node = &mut self.root;
        for &step in &parsed.steps {
            node = node.child_or_insert(step);
        }
        let subs = node.slot_mut(parsed.slot).get_or_insert_with(Box::default);
        let new = subs.insert(parsed.group, client, sub);
        if new {
            self.len += 1;
        }
        new
    }

    /// Removes `client`'s subscription to `filter`; true if it existed.
    pub fn unsubscribe(&mut self, client: &str, filter: &str) -> bool {
        let Some(parsed) = Parsed::new(filter) else {
            return false;
        };
        let mut node = &mut self.root;
        for &step in &parsed.steps {
            node = match node.child_mut(step) {
                Some(child) => child,
                None => return false,
            };
        }
        let slot = node.slot_mut(parsed.slot);
        let Some(subs) = slot else {
            return false;
        };
        if !subs.remove(parsed.group, client) {
            return false;
        }
        if subs.is_empty() {
            *slot = None;
        }
        self.len -= 1;
        self.prune(&parsed.steps);
        true
    }

    /// Removes the longest tail of `steps` whose nodes hold nothing but the
    /// path itself, so churn does not leave empty levels behind.
    fn prune(&mut self, steps: &[Step<'_>]) {
        // First pass (shared borrows): find the shallowest depth from which
        // every node down to the end of the path is removable.
        let mut cut = None;
        let mut node = &self.root;
        for (depth, &step) in steps.iter().enumerate() {
            let Some(child) = node.child(step) else {
                return;
            };
            let is_last = depth + 1 == steps.len();
            let only_path = child.here.is_none()
                && child.hash.is_none()
                && child.child_count() == usize::from(!is_last);
            if !only_path {
                cut = None;
            } else if cut.is_none() {
                cut = Some(depth);
            }
            node = child;
        }
        // Second pass: detach that subtree from its parent.
        let Some(cut) = cut else {
            return;
        };
        let mut parent = &mut self.root;
        for &step in steps.iter().take(cut) {
            parent = match parent.child_mut(step) {
                Some(child) => child,
                None => return,
            };
        }
        if let Some(&step) = steps.get(cut) {
            parent.remove_child(step);
        }
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
        self.route_counting(topic, publisher, online, out);
    }

    /// `route`, returning how many trie nodes it visited (for tests).
    fn route_counting(
        &self,
        topic: &str,
        publisher: &str,
        online: &dyn Fn(&str) -> bool,
        out: &mut HashMap<Arc<str>, Delivery>,
    ) -> usize {
        out.clear();
        let dollar = topic.starts_with('$');
        let mut visited = 0;
        // Explicit stack rather than recursion: a topic can have ~64k levels.
        // Each entry: node, the rest of the topic after the node's level
        // (None once all levels are consumed), and whether it is the root.
        let mut stack: Vec<(&Node, Option<&str>, bool)> = vec![(&self.root, Some(topic), true)];
        while let Some((node, rest, is_root)) = stack.pop() {
            visited += 1;
            // §4.7.2: `$` topics are not matched by a leading wildcard.
            let wildcards = !(is_root && dollar);
            if wildcards {
                if let Some(subs) = &node.hash {
                    subs.deliver(publisher, online, out);
                }
            }
            let Some(rest) = rest else {
                if let Some(subs) = &node.here {
                    subs.deliver(publisher, online, out);
                }
                continue;
            };
            let (level, next) = match rest.split_once('/') {
                Some((level, next)) => (level, Some(next)),
                None => (rest, None),
            };
            if let Some(child) = node.children.get(level) {
                stack.push((child, next, false));
            }
            if wildcards {
                if let Some(plus) = &node.plus {
                    stack.push((plus, next, false));
                }
            }
        }
        visited
    }

    /// Number of (client, filter) subscriptions held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Trie nodes including the root, for tests of pruning.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.values());
            stack.extend(node.plus.as_deref());
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    fn sub(qos: QoS, identifier: Option<u32>) -> Subscription {
        Subscription {
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
            identifier,
        }
    }

    fn id(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn all_online(_: &str) -> bool {
        true
    }

    fn route(router: &Router, topic: &str, publisher: &str) -> HashMap<Arc<str>, Delivery> {
        let mut out = HashMap::new();
        router.route(topic, publisher, &all_online, &mut out);
        out
    }

    #[test]
    fn overlapping_subscriptions_merge() {
        let mut r = Router::new();
        let c = id("c");
        assert!(r.subscribe(&c, "a/+", sub(QoS::AtMostOnce, Some(1))));
        assert!(r.subscribe(&c, "a/#", sub(QoS::ExactlyOnce, Some(2))));
        assert!(r.subscribe(&c, "a/b", sub(QoS::AtLeastOnce, None)));
        let mut rap = sub(QoS::AtMostOnce, Some(3));
        rap.options.retain_as_published = true;
        assert!(r.subscribe(&c, "#", rap));
        assert_eq!(r.len(), 4);

        let out = route(&r, "a/b", "p");
        assert_eq!(out.len(), 1);
        let d = &out[&c];
        assert_eq!(d.qos, QoS::ExactlyOnce);
        assert!(d.retain_as_published);
        let mut ids = d.subscription_ids.clone();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2, 3]);

        // `a/#` matches its parent level; `a/+` and `a/b` do not.
        let out = route(&r, "a", "p");
        let mut ids = out[&c].subscription_ids.clone();
        ids.sort_unstable();
        assert_eq!(ids, [2, 3]);
    }

    #[test]
    fn replacing_options_is_not_new() {
        let mut r = Router::new();
        let c = id("c");
        assert!(r.subscribe(&c, "a", sub(QoS::AtMostOnce, None)));
        assert!(!r.subscribe(&c, "a", sub(QoS::ExactlyOnce, Some(9))));
        assert_eq!(r.len(), 1);
        assert_eq!(route(&r, "a", "p")[&c].qos, QoS::ExactlyOnce);
        // A shared subscription to the same filter is a different one.
        assert!(r.subscribe(&c, "$share/g/a", sub(QoS::AtMostOnce, None)));
        assert!(r.subscribe(&c, "$share/h/a", sub(QoS::AtMostOnce, None)));
        assert!(!r.subscribe(&c, "$share/h/a", sub(QoS::AtLeastOnce, None)));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn no_local_skips_publisher() {
        let mut r = Router::new();
        let (a, b) = (id("a"), id("b"));
        let mut nl = sub(QoS::AtLeastOnce, Some(1));
        nl.options.no_local = true;
        r.subscribe(&a, "t", nl);
        r.subscribe(&b, "t", nl);
        let out = route(&r, "t", "a");
        assert_eq!(out.keys().cloned().collect::<Vec<_>>(), vec![b.clone()]);
        // Another subscription of the publisher without No Local still counts.
        r.subscribe(&a, "+", sub(QoS::AtMostOnce, Some(2)));
        let out = route(&r, "t", "a");
        assert_eq!(out[&a].subscription_ids, [2]);
        assert_eq!(out[&a].qos, QoS::AtMostOnce);
    }

    #[test]
    fn dollar_topics_and_hash_parent() {
        let mut r = Router::new();
        let c = id("c");
        r.subscribe(&c, "#", sub(QoS::AtMostOnce, None));
        r.subscribe(&c, "+/x", sub(QoS::AtMostOnce, None));
        assert!(route(&r, "$SYS/x", "p").is_empty());
        r.subscribe(&c, "$SYS/#", sub(QoS::AtMostOnce, None));
        assert_eq!(route(&r, "$SYS/x", "p").len(), 1);
        assert_eq!(route(&r, "$SYS", "p").len(), 1);
        // Empty levels are levels.
        assert_eq!(route(&r, "/x", "p").len(), 1);
    }

    fn shared_counts(
        r: &Router,
        topic: &str,
        online: &dyn Fn(&str) -> bool,
        rounds: usize,
    ) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        let mut out = HashMap::new();
        for _ in 0..rounds {
            r.route(topic, "p", online, &mut out);
            assert_eq!(out.len(), 1, "exactly one member per group");
            for client in out.keys() {
                *counts.entry(client.to_string()).or_insert(0) += 1;
            }
        }
        counts
    }

    #[test]
    fn shared_round_robin() {
        let mut r = Router::new();
        for name in ["m0", "m1", "m2", "m3"] {
            r.subscribe(&id(name), "$share/g/s/+", sub(QoS::AtLeastOnce, None));
        }
        // Evenly among all online members, in order.
        let mut out = HashMap::new();
        let mut order = Vec::new();
        for _ in 0..4 {
            r.route("s/1", "p", &all_online, &mut out);
            order.extend(out.keys().map(|k| k.to_string()));
        }
        assert_eq!(order, ["m0", "m1", "m2", "m3"]);
        let counts = shared_counts(&r, "s/1", &all_online, 400);
        assert!(counts.values().all(|&n| n == 100), "{counts:?}");

        // Offline members are skipped; the rest still share evenly.
        let online = |c: &str| c != "m1" && c != "m2";
        let counts = shared_counts(&r, "s/1", &online, 400);
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert_eq!(counts.get("m0"), Some(&200));
        assert_eq!(counts.get("m3"), Some(&200));

        // Nobody online: still one member each time, still rotating.
        let counts = shared_counts(&r, "s/1", &|_| false, 400);
        assert!(counts.values().all(|&n| n == 100), "{counts:?}");

        // The group survives a member leaving.
        assert!(r.unsubscribe("m0", "$share/g/s/+"));
        assert!(!r.unsubscribe("m0", "$share/g/s/+"));
        let counts = shared_counts(&r, "s/1", &all_online, 300);
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert!(counts.values().all(|&n| n == 100), "{counts:?}");
    }

    #[test]
    fn shared_round_robin_is_exact_under_concurrent_routes() {
        let mut r = Router::new();
        for name in ["m0", "m1", "m2", "m3"] {
            r.subscribe(&id(name), "$share/g/t", sub(QoS::AtMostOnce, None));
        }
        let r = &r;
        let per_thread: Vec<BTreeMap<String, usize>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(move || shared_counts(r, "t", &all_online, 1000)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        assert_eq!(per_thread.len(), 4);
        let mut total: BTreeMap<String, usize> = BTreeMap::new();
        for counts in per_thread {
            for (client, n) in counts {
                *total.entry(client).or_insert(0) += n;
            }
        }
        assert_eq!(total.len(), 4, "{total:?}");
        assert!(total.values().all(|&n| n == 1000), "{total:?}");
    }

    #[test]
    fn shared_and_plain_merge_into_one_delivery() {
        let mut r = Router::new();
        let c = id("c");
        r.subscribe(&c, "$share/g/a/b", sub(QoS::ExactlyOnce, Some(1)));
        r.subscribe(&c, "a/+", sub(QoS::AtMostOnce, Some(2)));
        let out = route(&r, "a/b", "p");
        assert_eq!(out.len(), 1);
        assert_eq!(out[&c].qos, QoS::ExactlyOnce);
        let mut ids = out[&c].subscription_ids.clone();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn unsubscribe_prunes() {
        let mut r = Router::new();
        let c = id("c");
        let filters: Vec<String> = (0..1000)
            .map(|i| match i % 4 {
                0 => format!("a/{i}/x"),
                1 => format!("+/{i}/#"),
                2 => format!("$share/g{}/a/+/{i}", i % 7),
                _ => format!("{i}//+"),
            })
            .collect();
        for f in &filters {
            assert!(r.subscribe(&c, f, sub(QoS::AtMostOnce, None)));
        }
        assert_eq!(r.len(), 1000);
        assert!(r.node_count() > 1000);
        assert!(!r.unsubscribe("other", &filters[0]));
        assert!(!r.unsubscribe("c", "a/nope/x"));
        for f in &filters {
            assert!(r.unsubscribe("c", f), "{f}");
        }
        assert_eq!(r.len(), 0);
        assert!(r.is_empty());
        assert_eq!(r.node_count(), 1);
        // Pruning keeps nodes other subscriptions still need.
        r.subscribe(&c, "a/b", sub(QoS::AtMostOnce, None));
        r.subscribe(&c, "a/b/c/d", sub(QoS::AtMostOnce, None));
        r.unsubscribe("c", "a/b/c/d");
        assert_eq!(r.node_count(), 3);
        assert_eq!(route(&r, "a/b", "p").len(), 1);
    }

    #[test]
    fn invalid_filters_are_ignored() {
        let mut r = Router::new();
        let c = id("c");
        for f in ["", "a/#/b", "$share/g", "$share//a", "a+"] {
            assert!(!r.subscribe(&c, f, sub(QoS::AtMostOnce, None)), "{f}");
            assert!(!r.unsubscribe("c", f), "{f}");
        }
        assert!(r.is_empty());
        assert_eq!(r.node_count(), 1);
        assert!(route(&r, "a/+", "p").is_empty());
    }

    #[test]
    fn route_visits_only_needed_nodes() {
        let mut r = Router::new();
        let clients: Vec<Arc<str>> = (0..10_000).map(|i| id(&format!("c{i}"))).collect();
        for (i, c) in clients.iter().enumerate() {
            r.subscribe(c, &format!("dev/{i}/state"), sub(QoS::AtMostOnce, None));
        }
        let mut out = HashMap::new();
        let visited = r.route_counting("dev/4242/state", "p", &all_online, &mut out);
        assert_eq!(
            out.keys().cloned().collect::<Vec<_>>(),
            vec![clients[4242].clone()]
        );
        // root, dev, 4242, state
        assert_eq!(visited, 4);
        let visited = r.route_counting("dev/x/state", "p", &all_online, &mut out);
        assert!(out.is_empty());
        assert_eq!(visited, 2);
    }

    #[test]
    fn very_deep_filters_do_not_overflow() {
        let levels = 32_000;
        let filter = vec!["+"; levels].join("/");
        let topic = vec!["x"; levels].join("/");
        let mut r = Router::new();
        let c = id("c");
        assert!(r.subscribe(&c, &filter, sub(QoS::AtMostOnce, None)));
        assert_eq!(route(&r, &topic, "p").len(), 1);
        let other = Router::new();
        drop(std::mem::replace(&mut r, other));
        let mut r = Router::new();
        r.subscribe(&c, &filter, sub(QoS::AtMostOnce, None));
        assert!(r.unsubscribe("c", &filter));
        assert_eq!(r.node_count(), 1);
    }

    #[test]
    fn router_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Router>();
    }

    const FILTER_LEVELS: &[&str] = &["+", "#", "$SYS", "", "a", "b"];
    const TOPIC_LEVELS: &[&str] = &["$SYS", "", "a", "b"];

    fn filter_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(FILTER_LEVELS), 1..5)
            .prop_map(|levels| levels.join("/"))
            .prop_filter("valid filter", |f| topic::valid_topic_filter(f))
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOPIC_LEVELS), 1..5)
            .prop_map(|levels| levels.join("/"))
            .prop_filter("valid topic", |t| topic::valid_topic_name(t))
    }

    #[derive(Debug, Clone)]
    struct Op {
        subscribe: bool,
        client: u8,
        /// Groups are per client so the chosen member is deterministic; the
        /// round-robin among several members is tested separately.
        shared: bool,
        filter: String,
        qos: u8,
        no_local: bool,
        identifier: Option<u32>,
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        (
            prop::bool::weighted(0.75),
            0u8..4,
            any::<bool>(),
            filter_strategy(),
            0u8..3,
            any::<bool>(),
            prop::option::of(1u32..100),
        )
            .prop_map(
                |(subscribe, client, shared, filter, qos, no_local, identifier)| Op {
                    subscribe,
                    client,
                    shared,
                    filter,
                    qos,
                    no_local: no_local && !shared,
                    identifier,
                },
            )
    }

    fn full_filter(op: &Op) -> String {
        if op.shared {
            format!("$share/g{}/{}", op.client, op.filter)
        } else {
            op.filter.clone()
        }
    }

    proptest! {
        #[test]
        fn route_matches_brute_force(
            ops in prop::collection::vec(op_strategy(), 0..40),
            topics in prop::collection::vec(topic_strategy(), 1..10),
            publisher in 0u8..4,
        ) {
            let mut router = Router::new();
            let mut model: BTreeMap<(String, String), Subscription> = BTreeMap::new();
            for op in &ops {
                let client = format!("c{}", op.client);
                let full = full_filter(op);
                if op.subscribe {
                    let s = Subscription {
                        options: SubscriptionOptions {
                            qos: QoS::from_u8(op.qos).unwrap_or_default(),
                            no_local: op.no_local,
                            ..SubscriptionOptions::default()
                        },
                        identifier: op.identifier,
                    };
                    let new = router.subscribe(&id(&client), &full, s);
                    prop_assert_eq!(new, model.insert((client, full), s).is_none());
                } else {
                    let existed = router.unsubscribe(&client, &full);
                    prop_assert_eq!(existed, model.remove(&(client, full)).is_some());
                }
                prop_assert_eq!(router.len(), model.len());
            }

            let publisher = format!("c{publisher}");
            for t in &topics {
                let mut expected: BTreeMap<String, (QoS, Vec<u32>)> = BTreeMap::new();
                for ((client, full), s) in &model {
                    let plain = match topic::parse_shared(full) {
                        Ok(Some(shared)) => shared.filter,
                        _ => full.as_str(),
                    };
                    if !topic::matches(plain, t) || (s.options.no_local && *client == publisher) {
                        continue;
                    }
                    let e = expected.entry(client.clone()).or_insert((QoS::AtMostOnce, Vec::new()));
                    e.0 = e.0.max(s.options.qos);
                    e.1.extend(s.identifier);
                }
                let out = route(&router, t, &publisher);
                let mut got: BTreeMap<String, (QoS, Vec<u32>)> = BTreeMap::new();
                for (client, d) in out {
                    let mut ids = d.subscription_ids.clone();
                    ids.sort_unstable();
                    got.insert(client.to_string(), (d.qos, ids));
                }
                for e in expected.values_mut() {
                    e.1.sort_unstable();
                }
                prop_assert_eq!(
                    got.keys().collect::<BTreeSet<_>>(),
                    expected.keys().collect::<BTreeSet<_>>(),
                    "topic {:?}", t
                );
                prop_assert_eq!(got, expected, "topic {:?}", t);
            }

            for (client, full) in model.keys() {
                prop_assert!(router.unsubscribe(client, full));
            }
            prop_assert!(router.is_empty());
            prop_assert_eq!(router.node_count(), 1);
        }
    }
}
