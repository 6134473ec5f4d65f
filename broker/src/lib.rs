//! wardmq's broker core: MQTT codec, sessions, routing, storage.
//!
//! The broker never depends on the defender: it reports what devices do
//! through an observer trait and obeys a control handle.

#![forbid(unsafe_code)]

pub mod codec;
pub mod message;
pub mod router;
pub mod server;
pub mod settings;
pub mod store;
pub mod topic;
