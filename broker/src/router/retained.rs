/// Retained messages by topic, searchable by filter.
pub struct RetainedTree<V> {
    _v: std::marker::PhantomData<V>,
}

impl<V: Clone> RetainedTree<V> {
    pub fn new() -> Self {
        todo!("router agent")
    }

    /// Sets the retained message for `topic` (a valid topic name); returns
    /// the one it replaced.
    pub fn insert(&mut self, topic: &str, value: V) -> Option<V> {
        let _ = (topic, value);
        todo!("router agent")
    }

    pub fn remove(&mut self, topic: &str) -> Option<V> {
        let _ = topic;
        todo!("router agent")
    }

    /// Appends to `out` every retained value whose topic matches `filter`
    /// (plain, valid; `$` topics not matched by a leading wildcard).
    pub fn matching(&self, filter: &str, out: &mut Vec<V>) {
        let _ = (filter, out);
        todo!("router agent")
    }

    pub fn len(&self) -> usize {
        todo!("router agent")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V: Clone> Default for RetainedTree<V> {
    fn default() -> Self {
        Self::new()
    }
}
