//! A per-connection memo of decisions, so a device publishing to the same
//! few topics does not re-run the policy engine on every packet.
//!
//! Bounded (cleared wholesale when full: devices use few topics, so an LRU
//! would buy nothing but bookkeeping) and tagged with a generation number the
//! broker bumps whenever policies, attachments or the thing change; a lookup
//! under a newer generation empties the cache first.

use std::collections::HashMap;

use super::eval::Decision;
use super::request::{Action, Resource};

/// Default bound on cached decisions per connection.
pub const DEFAULT_CAPACITY: usize = 256;

#[derive(Debug)]
pub struct DecisionCache {
    generation: u64,
    capacity: usize,
    /// One map per action, so a lookup borrows the resource instead of
    /// building an owned (action, resource) key.
    entries: [HashMap<Resource, Decision>; Action::ALL.len()],
    len: usize,
}

impl Default for DecisionCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions (at least one).
    pub fn new(capacity: usize) -> Self {
        DecisionCache {
            generation: 0,
            capacity: capacity.max(1),
            entries: Default::default(),
            len: 0,
        }
    }

    /// The decision cached for `action` on `resource` under `generation`.
    pub fn get(
        &mut self,
        generation: u64,
        action: Action,
        resource: &Resource,
    ) -> Option<&Decision> {
        self.sync(generation);
        self.entries[action as usize].get(resource)
    }

    /// Remembers `decision`, computed under `generation`.
    pub fn insert(
        &mut self,
        generation: u64,
        action: Action,
        resource: Resource,
        decision: Decision,
    ) {
        self.sync(generation);
        if self.len >= self.capacity {
            self.clear();
        }
        if self.entries[action as usize]
            .insert(resource, decision)
            .is_none()
        {
            self.len += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn clear(&mut self) {
        for map in &mut self.entries {
            map.clear();
        }
        self.len = 0;
    }

    /// Drops everything cached under another generation.
    fn sync(&mut self, generation: u64) {
        if generation != self.generation {
            self.clear();
            self.generation = generation;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(allowed: bool) -> Decision {
        Decision {
            allowed,
            reason: String::new(),
        }
    }

    #[test]
    fn hit_miss_and_generation() {
        let mut c = DecisionCache::default();
        let t = Resource::topic("a");
        assert_eq!(c.get(1, Action::Publish, &t), None);
        c.insert(1, Action::Publish, t.clone(), d(true));
        assert_eq!(c.get(1, Action::Publish, &t), Some(&d(true)));
        assert_eq!(c.get(1, Action::Receive, &t), None);
        assert_eq!(c.get(1, Action::Publish, &Resource::topicfilter("a")), None);
        // Policies changed: the old decision must not be served.
        assert_eq!(c.get(2, Action::Publish, &t), None);
        assert!(c.is_empty());
    }

    #[test]
    fn bounded() {
        let mut c = DecisionCache::new(3);
        for i in 0..3 {
            c.insert(
                0,
                Action::Publish,
                Resource::topic(format!("t{i}")),
                d(true),
            );
        }
        assert_eq!(c.len(), 3);
        c.insert(0, Action::Publish, Resource::topic("t3"), d(false));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.get(0, Action::Publish, &Resource::topic("t3")),
            Some(&d(false))
        );
    }
}
