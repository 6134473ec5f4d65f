//! DEVICE_CERTIFICATE_SHARED_CHECK and CONFLICTING_CLIENT_IDS_CHECK, on
//! the connection log of one window.
//!
//! - Shared: one certificate with two connections under different client
//!   IDs at the same time (sequential sessions are fine). One finding per
//!   certificate; its related resources are the client IDs, each with
//!   its first connection time in the window (`CONNECTION_TIME`), its
//!   last disconnection (`DISCONNECTION_TIME`, absent while connected,
//!   epoch milliseconds) and address (`SOURCE_ADDRESS`).
//! - Conflicting: a connection knocked off by another with its client ID.
//!   One finding per client ID, with how often (`TAKEOVER_COUNT`) and when
//!   (`DISCONNECTION_TIMES`, the first ten, epoch milliseconds); the
//!   certificates involved are its related resources. Every takeover
//!   counts, also one by the same certificate (a device that reconnects
//!   before its old connection timed out looks exactly like a clone).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::connlog::{ConnectionRecord, LogExtract};
use super::model::{Resource, ResourceIdentifier, ResourceType};
use super::outcome::{codes, Draft, Outcome};
use crate::detect::model::Timestamp;

pub(crate) fn shared_certificates(log: &LogExtract, now: Timestamp) -> Outcome {
    let mut by_cert: HashMap<&str, Vec<&ConnectionRecord>> = HashMap::new();
    for r in &log.connections {
        if let Some(c) = &r.certificate_id {
            by_cert.entry(c).or_default().push(r);
        }
    }
    let mut out = Outcome {
        total: by_cert.len() as u64,
        ..Outcome::default()
    };
    let end_of = |r: &ConnectionRecord| r.disconnected.unwrap_or(now).as_millis();
    let mut certs: Vec<_> = by_cert.into_iter().collect();
    certs.sort_by_key(|(c, _)| *c);
    for (cert, mut records) in certs {
        records.sort_by_key(|r| r.connected.as_millis());
        let mut involved: BTreeSet<&str> = BTreeSet::new();
        let mut active: Vec<&ConnectionRecord> = Vec::new();
        for r in &records {
            let start = r.connected.as_millis();
            active.retain(|a| end_of(a) > start);
            for a in &active {
                if a.client_id != r.client_id {
                    involved.insert(&a.client_id);
                    involved.insert(&r.client_id);
                }
            }
            active.push(r);
        }
        if involved.is_empty() {
            continue;
        }
        let related = involved
            .iter()
            .map(|client| {
                let mine: Vec<&&ConnectionRecord> = records
                    .iter()
                    .filter(|r| &*r.client_id == *client)
                    .collect();
                let mut res =
                    Resource::new(ResourceType::ClientId, ResourceIdentifier::client(client));
                if let Some(first) = mine.first() {
                    res = res
                        .info("CONNECTION_TIME", first.connected.as_millis().to_string())
                        .info("SOURCE_ADDRESS", first.peer.to_string());
                }
                if let Some(d) = mine
                    .iter()
                    .filter_map(|r| r.disconnected)
                    .max_by_key(|d| d.as_millis())
                {
                    if mine.iter().all(|r| r.disconnected.is_some()) {
                        res = res.info("DISCONNECTION_TIME", d.as_millis().to_string());
                    }
                }
                res
            })
            .collect();
        let names: Vec<&str> = involved.iter().copied().collect();
        out.drafts.push(Draft {
            resource: Resource::new(
                ResourceType::DeviceCertificate,
                ResourceIdentifier::device_certificate(cert),
            ),
            related,
            reason: format!(
                "The certificate was used by {} connections with different client IDs at the same time ({}).",
                names.len(),
                names.join(", ")
            ),
            code: codes::CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES,
        });
    }
    out
}

pub(crate) fn conflicting_client_ids(log: &LogExtract) -> Outcome {
    let seen: BTreeSet<&str> = log
        .connections
        .iter()
        .map(|r| &*r.client_id)
        .chain(log.takeovers.iter().map(|t| &*t.client_id))
        .collect();
    let mut by_client: BTreeMap<&str, Vec<&super::connlog::Takeover>> = BTreeMap::new();
    for t in &log.takeovers {
        by_client.entry(&t.client_id).or_default().push(t);
    }
    let mut out = Outcome {
        total: seen.len() as u64,
        ..Outcome::default()
    };
    for (client, takeovers) in by_client {
        let times: Vec<String> = takeovers
            .iter()
            .take(10)
            .map(|t| t.at.as_millis().to_string())
            .collect();
        let certs: BTreeSet<&str> = takeovers
            .iter()
            .flat_map(|t| {
                [
                    t.old_certificate_id.as_deref(),
                    t.new_certificate_id.as_deref(),
                ]
            })
            .flatten()
            .collect();
        let peers: BTreeSet<String> = takeovers
            .iter()
            .flat_map(|t| [t.old_peer.to_string(), t.new_peer.to_string()])
            .collect();
        out.drafts.push(Draft {
            resource: Resource::new(ResourceType::ClientId, ResourceIdentifier::client(client))
                .info("TAKEOVER_COUNT", takeovers.len().to_string())
                .info("DISCONNECTION_TIMES", times.join(",")),
            related: certs
                .iter()
                .map(|c| {
                    Resource::new(
                        ResourceType::DeviceCertificate,
                        ResourceIdentifier::device_certificate(c),
                    )
                })
                .collect(),
            reason: format!(
                "A connection with this client ID was knocked off {} time(s) by another connection \
                 with the same client ID (addresses: {}).",
                takeovers.len(),
                peers.into_iter().collect::<Vec<_>>().join(", ")
            ),
            code: codes::DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::connlog::ConnectionLog;
    use std::net::SocketAddr;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn overlapping_sessions_of_one_certificate_are_shared() {
        let log = ConnectionLog::new(100);
        log.connected_at("a", Some("cert1"), addr(1), t(0));
        log.connected_at("b", Some("cert1"), addr(2), t(10));
        log.disconnected_at("b", addr(2), t(20));
        let o = shared_certificates(&log.extract(t(0), t(30)), t(30));
        assert_eq!(o.total, 1);
        assert_eq!(o.drafts.len(), 1);
        let d = &o.drafts[0];
        assert_eq!(d.code, codes::CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES);
        assert_eq!(
            d.resource
                .resource_identifier
                .device_certificate_id
                .as_deref(),
            Some("cert1")
        );
        assert_eq!(d.related.len(), 2);
        assert_eq!(
            d.related[1].additional_info["DISCONNECTION_TIME"],
            t(20).as_millis().to_string()
        );
        assert!(
            !d.related[0]
                .additional_info
                .contains_key("DISCONNECTION_TIME"),
            "a is still connected"
        );
    }

    #[test]
    fn sequential_sessions_and_same_client_are_not_shared() {
        let log = ConnectionLog::new(100);
        log.connected_at("a", Some("cert1"), addr(1), t(0));
        log.disconnected_at("a", addr(1), t(5));
        log.connected_at("b", Some("cert1"), addr(2), t(6));
        log.disconnected_at("b", addr(2), t(9));
        // The same client ID twice at once is a takeover, not sharing.
        log.connected_at("c", Some("cert2"), addr(3), t(10));
        log.connected_at("c", Some("cert2"), addr(4), t(11));
        let o = shared_certificates(&log.extract(t(0), t(30)), t(30));
        assert_eq!(o.total, 2);
        assert!(o.drafts.is_empty(), "{:?}", o.drafts);
    }

    #[test]
    fn takeovers_are_conflicting_client_ids() {
        let log = ConnectionLog::new(100);
        log.connected_at("x", Some("c1"), addr(1), t(0));
        log.taken_over_at("x", addr(1), addr(2), t(3));
        log.disconnected_at("x", addr(1), t(3));
        log.connected_at("x", Some("c2"), addr(2), t(3));
        log.connected_at("y", None, addr(5), t(4));
        let o = conflicting_client_ids(&log.extract(t(0), t(10)));
        assert_eq!(o.total, 2);
        assert_eq!(o.drafts.len(), 1);
        let d = &o.drafts[0];
        assert_eq!(
            d.resource.resource_identifier.client_id.as_deref(),
            Some("x")
        );
        assert_eq!(d.resource.additional_info["TAKEOVER_COUNT"], "1");
        assert_eq!(d.related.len(), 2);
        assert_eq!(d.code, codes::DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS);
    }
}
