//! wardmq's broker core: MQTT codec, sessions, routing, storage.
//!
//! The broker never depends on the defender: it reports what devices do
//! through [`observer::Observer`] and obeys a control handle.

#![forbid(unsafe_code)]

pub mod authz;
pub mod codec;
pub mod fuzz_corpus;
mod hub;
pub mod intercept;
pub mod message;
pub mod net;
pub mod observer;
pub mod publisher;
pub mod registry;
pub mod router;
pub mod scope;
pub mod server;
mod session;
pub mod settings;
pub mod store;
pub mod topic;

pub use hub::{Gauges, Stats};
pub use session::Principal;
