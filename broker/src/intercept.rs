//! A hook for services that live next to the broker and answer devices
//! over MQTT (the defender's device metrics reports on
//! `$aws/things/{thing}/defender/metrics/{json,cbor}`): an authorized
//! PUBLISH under one topic prefix is handed to an [`Interceptor`] before it
//! is routed, and the interceptor may consume it and answer with messages
//! the broker publishes itself.
//!
//! The prefix is read once, when the broker starts, so every other PUBLISH
//! pays one `starts_with` and nothing else.

use std::sync::Arc;

/// Sees the PUBLISHes under its prefix before they are routed.
pub trait Interceptor: Send + Sync + 'static {
    /// Topic prefix this interceptor wants (e.g. `"$aws/things/"`); other
    /// topics never reach it. Read once, when the broker starts.
    fn prefix(&self) -> &str;

    /// An authorized PUBLISH from `client_id` on `topic` (after topic-alias
    /// resolution). Called inline on the publisher's connection task, so it
    /// must be quick and must not block. A QoS 1 PUBLISH the client
    /// retransmits is seen again; a QoS 2 one only once.
    fn intercept(&self, client_id: &str, topic: &str, payload: &[u8]) -> Intercepted;
}

/// What becomes of an intercepted PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intercepted {
    /// Routed (and retained) as if it had not been intercepted.
    Route,
    /// Neither routed nor retained; the client's PUBLISH is acknowledged
    /// with success all the same. Each reply is published by the broker at
    /// QoS 0, not retained, to whoever subscribes to its topic and may
    /// receive it (`iot:Receive`); a reply with an invalid topic name is
    /// dropped and logged.
    Consume(Vec<Reply>),
}

/// A message the broker publishes in answer to an intercepted PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// The interceptor with its prefix read once.
pub(crate) struct Hook {
    pub prefix: Box<str>,
    pub interceptor: Arc<dyn Interceptor>,
}

impl Hook {
    pub fn new(interceptor: Arc<dyn Interceptor>) -> Hook {
        Hook {
            prefix: interceptor.prefix().into(),
            interceptor,
        }
    }
}
