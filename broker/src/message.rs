//! An application message as the broker keeps it: one `Arc<Message>` is
//! shared by every subscriber's queue entry, so fan-out copies no payload.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::{Properties, Publish, QoS, UserProperty};

/// The v5 properties that travel with a message from publisher to
/// subscribers (§3.3.2.3); the rest belong to one hop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageProperties {
    pub payload_format_indicator: Option<u8>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Bytes,
    /// The QoS it was published with (the upper bound for delivery).
    pub qos: QoS,
    pub retain: bool,
    pub properties: MessageProperties,
    /// Unix time in milliseconds after which it must not be delivered
    /// (from the v5 Message Expiry Interval); `None` never expires.
    pub expires_at_ms: Option<u64>,
    /// Client ID of the publisher, for No Local; [`BROKER_PUBLISHER`] for
    /// messages the broker publishes itself.
    pub publisher: Arc<str>,
}

/// The publisher of the broker's own messages: empty, which no client ID
/// can be (an empty client ID is replaced by an assigned one at CONNECT),
/// so No Local never hides them from a client.
pub const BROKER_PUBLISHER: &str = "";

impl Message {
    /// Builds the message a PUBLISH carries (topic already resolved from any
    /// topic alias).
    pub fn from_publish(publish: &Publish, topic: Arc<str>, publisher: Arc<str>) -> Message {
        let p = &publish.properties;
        Message {
            topic,
            payload: publish.payload.clone(),
            qos: publish.qos,
            retain: publish.retain,
            properties: MessageProperties {
                payload_format_indicator: p.payload_format_indicator,
                content_type: p.content_type.clone(),
                response_topic: p.response_topic.clone(),
                correlation_data: p.correlation_data.clone(),
                user_properties: p.user_properties.clone(),
            },
            expires_at_ms: p
                .message_expiry_interval
                .map(|s| now_ms().saturating_add(u64::from(s) * 1000)),
            publisher,
        }
    }

    /// A message the broker publishes itself, with no properties.
    pub fn from_broker(topic: Arc<str>, payload: Bytes, qos: QoS, retain: bool) -> Message {
        Message {
            topic,
            payload,
            qos,
            retain,
            properties: MessageProperties::default(),
            expires_at_ms: None,
            publisher: BROKER_PUBLISHER.into(),
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms >= at)
    }

    /// The v5 properties for delivering it now: the remaining expiry
    /// interval, and the subscription identifiers of the matching filters.
    pub fn delivery_properties(&self, now_ms: u64, subscription_ids: &[u32]) -> Properties {
        let p = &self.properties;
        Properties {
            payload_format_indicator: p.payload_format_indicator,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.clone(),
            user_properties: p.user_properties.clone(),
            message_expiry_interval: self.expires_at_ms.map(|at| {
                u32::try_from(at.saturating_sub(now_ms).div_ceil(1000)).unwrap_or(u32::MAX)
            }),
            subscription_identifiers: subscription_ids.to_vec(),
            ..Properties::default()
        }
    }

    /// Approximate bytes this message holds, for queue byte limits.
    pub fn size(&self) -> usize {
        self.topic.len() + self.payload.len() + 64
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
