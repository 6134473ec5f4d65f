use std::collections::HashMap;

use crate::topic;

/// Retained messages by topic, searchable by filter.
pub struct RetainedTree<V> {
    root: RetainedNode<V>,
    len: usize,
}

/// One topic level. The root stands for no level at all: every topic,
/// even "" or "/x", has at least one level, so the root never holds a value.
struct RetainedNode<V> {
    children: HashMap<Box<str>, RetainedNode<V>>,
    value: Option<V>,
}

impl<V> RetainedNode<V> {
    fn new() -> Self {
        RetainedNode {
            children: HashMap::new(),
            value: None,
        }
    }
}

impl<V> Drop for RetainedNode<V> {
    // A topic may have tens of thousands of levels; the default recursive
    // drop of such a chain would overflow the stack.
    fn drop(&mut self) {
        let mut pending: Vec<RetainedNode<V>> = self.children.drain().map(|(_, c)| c).collect();
        while let Some(mut node) = pending.pop() {
            pending.extend(node.children.drain().map(|(_, c)| c));
        }
    }
}

/// Pushes every value in `node`'s subtree, `node` included. `top_level`
/// marks the root's children, where `$` topics must be left out.
fn collect_subtree<V: Clone>(node: &RetainedNode<V>, top_level: bool, out: &mut Vec<V>) {
    out.extend(node.value.iter().cloned());
    let mut stack: Vec<&RetainedNode<V>> = node
        .children
        .iter()
        .filter(|(level, _)| !(top_level && level.starts_with('$')))
        .map(|(_, child)| child)
        .collect();
    while let Some(node) = stack.pop() {
        out.extend(node.value.iter().cloned());
        stack.extend(node.children.values());
    }
}

impl<V: Clone> RetainedTree<V> {
    pub fn new() -> Self {
        RetainedTree {
            root: RetainedNode::new(),
            len: 0,
        }
    }

    /// Sets the retained message for `topic` (a valid topic name); returns
    /// the one it replaced.
    ///
    /// An invalid topic name is ignored (nothing stored, returns None):
    /// a wildcard stored as a literal level would answer filters it must not.
    pub fn insert(&mut self, topic: &str, value: V) -> Option<V> {
        if !topic::valid_topic_name(topic) {
            return None;
        }
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node
                .children
                .entry(level.into())
                .or_insert_with(RetainedNode::new);
        }
        let old = node.value.replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Whether `topic` holds a retained message.
    pub fn contains(&self, topic: &str) -> bool {
        let mut node = &self.root;
        for level in topic.split('/') {
            match node.children.get(level) {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.value.is_some()
    }

    pub fn remove(&mut self, topic: &str) -> Option<V> {
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node.children.get_mut(level)?;
        }
        let old = node.value.take()?;
        self.len -= 1;
        self.prune(topic);
        Some(old)
    }

    /// Removes the longest tail of `topic`'s path whose nodes hold nothing
    /// but the path itself, so churn does not leave empty levels behind.
    fn prune(&mut self, topic: &str) {
        let depth = topic.split('/').count();
        // First pass (shared borrows): the shallowest depth from which every
        // node down to the end of the path is removable.
        let mut cut = None;
        let mut node = &self.root;
        for (i, level) in topic.split('/').enumerate() {
            let Some(child) = node.children.get(level) else {
                return;
            };
            let is_last = i + 1 == depth;
            let only_path = child.value.is_none() && child.children.len() == usize::from(!is_last);
            if !only_path {
                cut = None;
            } else if cut.is_none() {
                cut = Some(i);
            }
            node = child;
        }
        // Second pass: detach that subtree from its parent.
        let Some(cut) = cut else {
            return;
        };
        let mut levels = topic.split('/');
        let mut parent = &mut self.root;
        for level in levels.by_ref().take(cut) {
            parent = match parent.children.get_mut(level) {
                Some(child) => child,
                None => return,
            };
        }
        if let Some(level) = levels.next() {
            parent.children.remove(level);
        }
    }

    /// Appends to `out` every retained value whose topic matches `filter`
    /// (plain, valid; `$` topics not matched by a leading wildcard).
    pub fn matching(&self, filter: &str, out: &mut Vec<V>) {
        // Explicit stack rather than recursion: a filter can have ~32k
        // levels. Each entry: node, the rest of the filter below it (None
        // once all levels are consumed), and whether it is the root.
        let mut stack: Vec<(&RetainedNode<V>, Option<&str>, bool)> =
            vec![(&self.root, Some(filter), true)];
        while let Some((node, rest, is_root)) = stack.pop() {
            let Some(rest) = rest else {
                out.extend(node.value.iter().cloned());
                continue;
            };
            let (level, next) = match rest.split_once('/') {
                Some((level, next)) => (level, Some(next)),
                None => (rest, None),
            };
            match level {
                // `#` also matches the parent level, so the node itself is
                // part of what it collects.
                "#" if next.is_none() => collect_subtree(node, is_root, out),
                "+" => {
                    for (child_level, child) in &node.children {
                        // §4.7.2: `$` topics are not matched by a leading
                        // wildcard.
                        if is_root && child_level.starts_with('$') {
                            continue;
                        }
                        stack.push((child, next, false));
                    }
                }
                _ => {
                    if let Some(child) = node.children.get(level) {
                        stack.push((child, next, false));
                    }
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tree nodes including the root, for tests of pruning.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.values());
        }
        count
    }
}

impl<V: Clone> Default for RetainedTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn matching(tree: &RetainedTree<String>, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        tree.matching(filter, &mut out);
        out.sort();
        out
    }

    #[test]
    fn insert_replace_remove() {
        let mut t = RetainedTree::new();
        assert_eq!(t.insert("a/b", 1), None);
        assert_eq!(t.insert("a/b", 2), Some(1));
        assert_eq!(t.insert("a", 3), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove("a/b/c"), None);
        assert_eq!(t.remove("a/b"), Some(2));
        assert_eq!(t.remove("a/b"), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.node_count(), 2);
        assert_eq!(t.remove("a"), Some(3));
        assert!(t.is_empty());
        assert_eq!(t.node_count(), 1);
    }

    #[test]
    fn invalid_topics_are_not_stored() {
        let mut t = RetainedTree::new();
        for bad in ["", "a/+", "#", "a\0"] {
            assert_eq!(t.insert(bad, 1), None);
        }
        assert!(t.is_empty());
        assert_eq!(t.node_count(), 1);
        assert_eq!(t.remove(""), None);
    }

    #[test]
    fn wildcards_and_dollar() {
        let mut t = RetainedTree::new();
        for topic in ["a", "a/b", "a/b/c", "a//b", "/x", "$SYS/up", "b/$x"] {
            t.insert(topic, topic.to_string());
        }
        assert_eq!(matching(&t, "a/#"), ["a", "a//b", "a/b", "a/b/c"]);
        assert_eq!(matching(&t, "a/+"), ["a/b"]);
        assert_eq!(matching(&t, "a/+/b"), ["a//b"]);
        assert_eq!(matching(&t, "+/x"), ["/x"]);
        assert_eq!(matching(&t, "#").len(), 6);
        assert!(!matching(&t, "#").contains(&"$SYS/up".to_string()));
        assert!(matching(&t, "+/up").is_empty());
        assert_eq!(matching(&t, "$SYS/#"), ["$SYS/up"]);
        assert_eq!(matching(&t, "b/+"), ["b/$x"]);
        assert_eq!(matching(&t, "a/b"), ["a/b"]);
        assert!(matching(&t, "a/b/c/d").is_empty());
    }

    #[test]
    fn churn_prunes() {
        let mut t = RetainedTree::new();
        let topics: Vec<String> = (0..1000).map(|i| format!("s/{}/{i}//x", i % 13)).collect();
        for topic in &topics {
            t.insert(topic, 0u8);
        }
        assert_eq!(t.len(), 1000);
        for topic in &topics {
            assert_eq!(t.remove(topic), Some(0));
        }
        assert!(t.is_empty());
        assert_eq!(t.node_count(), 1);
    }

    #[test]
    fn very_deep_topics_do_not_overflow() {
        let levels = 32_000;
        let topic = vec!["x"; levels].join("/");
        let filter = vec!["+"; levels].join("/");
        let mut t = RetainedTree::new();
        t.insert(&topic, 1u8);
        let mut out = Vec::new();
        t.matching(&filter, &mut out);
        t.matching("#", &mut out);
        assert_eq!(out, [1, 1]);
        drop(t);
        let mut t = RetainedTree::new();
        t.insert(&topic, 1u8);
        assert_eq!(t.remove(&topic), Some(1));
        assert_eq!(t.node_count(), 1);
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

    proptest! {
        #[test]
        fn matching_equals_brute_force(
            ops in prop::collection::vec((any::<bool>(), topic_strategy()), 0..40),
            filters in prop::collection::vec(filter_strategy(), 1..10),
        ) {
            let mut tree = RetainedTree::new();
            let mut model = BTreeMap::new();
            for (i, (insert, topic)) in ops.iter().enumerate() {
                if *insert {
                    let value = format!("{topic}#{i}");
                    prop_assert_eq!(tree.insert(topic, value.clone()), model.insert(topic.clone(), value));
                } else {
                    prop_assert_eq!(tree.remove(topic), model.remove(topic));
                }
                prop_assert_eq!(tree.len(), model.len());
            }
            for filter in &filters {
                let mut expected: Vec<String> = model
                    .iter()
                    .filter(|(topic, _)| topic::matches(filter, topic))
                    .map(|(_, v)| v.clone())
                    .collect();
                expected.sort();
                prop_assert_eq!(matching(&tree, filter), expected, "filter {:?}", filter);
            }
            for topic in model.keys() {
                prop_assert!(tree.remove(topic).is_some());
            }
            prop_assert!(tree.is_empty());
            prop_assert_eq!(tree.node_count(), 1);
        }
    }
}
