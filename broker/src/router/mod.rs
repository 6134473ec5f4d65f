//! Who receives a message: the subscription trie (with shared
//! subscriptions) and the retained-message tree.

mod retained;
mod trie;

pub use retained::RetainedTree;
pub use trie::{Delivery, Router, Subscription};
