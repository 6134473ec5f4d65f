//! One task per connection: CONNECT, then a loop that reads packets, sends
//! what the session's queue allows, writes acknowledgements once they are
//! durable, and enforces keep-alive, until the client leaves, breaks the
//! protocol, is taken over, or the broker shuts down.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, watch};
use tokio::time::{sleep_until, timeout, Instant};

use crate::authz::{Action, Resource};
use crate::codec::{
    reason, Ack, ConnAck, Connect, DecodeError, Disconnect, LastWill, Packet, Properties, Protocol,
    Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use crate::hub::Hub;
use crate::message::{now_ms, Message, MessageProperties};
use crate::net::transport::ReadError;
use crate::net::Transport;
use crate::observer::{ConnCounters, DropReason};
use crate::router::{Delivery, Subscription};
use crate::session::access::{Access, NotActive, Principal};
use crate::session::{Entry, Session};
use crate::store::{Op, OutState, StoreError};

type AckFuture = Pin<Box<dyn Future<Output = Result<Packet, StoreError>> + Send>>;

/// Why the loop ended; decides the will and the DISCONNECT sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// DISCONNECT 0x00 from the client: the will is discarded.
    Graceful,
    /// Any other end: the will is published.
    Abnormal,
}

/// Serves one accepted connection to its end.
pub(crate) async fn serve<S>(hub: Arc<Hub>, stream: S, peer: SocketAddr, principal: Principal)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut t = Transport::new(stream);
    let limits = &hub.settings.limits;
    let first = timeout(
        limits.connect_timeout,
        t.read_packet(None, limits.max_packet_size),
    )
    .await;
    let connect = match first {
        Ok(Ok(Packet::Connect(c))) => c,
        Ok(Err(ReadError::Decode(DecodeError::UnsupportedProtocol(level)))) => {
            tracing::debug!(%peer, level, "unsupported protocol level");
            // §3.1.4: answer in the 3.1.1 form, which every level can read.
            let refuse = ConnAck {
                session_present: false,
                reason: reason::UNSUPPORTED_PROTOCOL_VERSION,
                properties: Properties::default(),
            };
            let _ = t.queue(&Packet::ConnAck(refuse), Protocol::V311);
            t.close().await;
            hub.observer
                .connect_refused(peer, None, reason::UNSUPPORTED_PROTOCOL_VERSION);
            return;
        }
        Ok(Err(ReadError::Decode(e))) => {
            tracing::debug!(%peer, error = %e, "bad CONNECT");
            hub.observer.protocol_violation(peer, None, e.reason_code());
            t.close().await;
            return;
        }
        Ok(Ok(_)) | Ok(Err(_)) => return,
        Err(_) => {
            tracing::debug!(%peer, "no CONNECT in time");
            hub.observer
                .connect_refused(peer, None, reason::MAXIMUM_CONNECT_TIME);
            return;
        }
    };
    let Some(mut conn) = Connection::accept(hub, t, peer, connect, principal).await else {
        return;
    };
    let exit = conn.run().await;
    conn.finish(exit).await;
}

struct Connection<S> {
    hub: Arc<Hub>,
    t: Transport<S>,
    peer: SocketAddr,
    protocol: Protocol,
    client_id: Arc<str>,
    session: Arc<Session>,
    conn_id: u64,
    kicked: oneshot::Receiver<u8>,
    access: Access,
    /// Registry change notifications, for certificate principals.
    registry_changes: Option<watch::Receiver<u64>>,
    /// Trust (CRL) changes, with the (CA id, serial) to look for.
    revocation: Option<(watch::Receiver<u64>, String, String)>,
    counters: Arc<ConnCounters>,
    /// Effective keep-alive; zero disables the check.
    keep_alive: Duration,
    will: Option<LastWill>,
    /// Outgoing QoS 1/2 messages allowed unacknowledged.
    window: usize,
    client_max_packet: u32,
    client_alias_max: u16,
    inbound_aliases: HashMap<u16, Arc<str>>,
    outbound_aliases: HashMap<Arc<str>, u16>,
    /// Acknowledgements waiting for their store commit, in arrival order
    /// (PUBACKs must go out in the order the PUBLISHes came in).
    acks: FuturesOrdered<AckFuture>,
    /// Inbound QoS 1 publishes not yet acknowledged.
    pending_qos1: usize,
    scratch: HashMap<Arc<str>, Delivery>,
    to_send: Vec<Entry>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
    /// Validates CONNECT, attaches the session and sends CONNACK.
    async fn accept(
        hub: Arc<Hub>,
        mut t: Transport<S>,
        peer: SocketAddr,
        connect: Connect,
        principal: Principal,
    ) -> Option<Connection<S>> {
        let limits = hub.settings.limits.clone();
        let protocol = connect.protocol;
        let v5 = protocol == Protocol::V5;
        let mut ack_props = Properties::default();

        let refuse = |t: &mut Transport<S>, code: u8| {
            let packet = Packet::ConnAck(ConnAck {
                session_present: false,
                reason: code,
                properties: Properties::default(),
            });
            let _ = t.queue(&packet, protocol);
        };

        let client_id: Arc<str> = if connect.client_id.is_empty() {
            if !v5 && !connect.clean_start {
                // §3.1.3.1: 3.1.1 needs an ID to resume a session.
                refuse(&mut t, reason::CLIENT_IDENTIFIER_NOT_VALID);
                t.close().await;
                hub.observer
                    .connect_refused(peer, None, reason::CLIENT_IDENTIFIER_NOT_VALID);
                return None;
            }
            let id: Arc<str> = format!("auto-{:032x}", rand::random::<u128>()).into();
            if v5 {
                ack_props.assigned_client_identifier = Some(id.to_string());
            }
            id
        } else if connect.client_id.len() > limits.max_client_id_len {
            refuse(&mut t, reason::CLIENT_IDENTIFIER_NOT_VALID);
            t.close().await;
            hub.observer.connect_refused(
                peer,
                Some(&connect.client_id),
                reason::CLIENT_IDENTIFIER_NOT_VALID,
            );
            return None;
        } else {
            connect.client_id.as_str().into()
        };

        let registry_changes = match (&principal, &hub.registry) {
            (Principal::Certificate { .. }, Some(r)) => Some(r.changes()),
            _ => None,
        };
        let revocation = match (&principal, hub.trust.get()) {
            (
                Principal::Certificate {
                    issuing_ca: Some((ca, serial)),
                    ..
                },
                Some(trust),
            ) => Some((trust.subscribe(), ca.clone(), serial.clone())),
            _ => None,
        };
        let mut access = match Access::load(&hub, principal, &client_id) {
            Ok(access) => access,
            Err(NotActive) => {
                tracing::info!(client_id = %client_id, %peer, "connection refused: certificate not active");
                let arn = Resource::client(client_id.to_string()).arn(&hub.settings.scope);
                hub.observer
                    .authorization_failure(&client_id, peer, Action::Connect.name(), &arn);
                refuse(&mut t, reason::NOT_AUTHORIZED);
                t.close().await;
                hub.observer
                    .connect_refused(peer, Some(&client_id), reason::NOT_AUTHORIZED);
                return None;
            }
        };
        let mut allowed = authorize(
            &hub,
            &mut access,
            peer,
            &client_id,
            Action::Connect,
            Resource::client(client_id.to_string()),
        );
        if let Some(will) = &connect.will {
            allowed = allowed
                && authorize(
                    &hub,
                    &mut access,
                    peer,
                    &client_id,
                    Action::Publish,
                    Resource::topic(will.topic.clone()),
                )
                && (!will.retain
                    || authorize(
                        &hub,
                        &mut access,
                        peer,
                        &client_id,
                        Action::RetainPublish,
                        Resource::topic(will.topic.clone()),
                    ));
        }
        if !allowed {
            refuse(&mut t, reason::NOT_AUTHORIZED);
            t.close().await;
            hub.observer
                .connect_refused(peer, Some(&client_id), reason::NOT_AUTHORIZED);
            return None;
        }

        let max_expiry = u32::try_from(limits.max_session_expiry.as_secs()).unwrap_or(u32::MAX);
        let expiry_interval = if v5 {
            let asked = connect.properties.session_expiry_interval.unwrap_or(0);
            if asked > max_expiry {
                ack_props.session_expiry_interval = Some(max_expiry);
            }
            asked.min(max_expiry)
        } else if connect.clean_start {
            0
        } else {
            max_expiry
        };

        let mut keep_alive = connect.keep_alive;
        if limits.max_keep_alive > 0 && (keep_alive == 0 || keep_alive > limits.max_keep_alive) {
            keep_alive = limits.max_keep_alive;
            if v5 {
                ack_props.server_keep_alive = Some(keep_alive);
            }
        }

        let mut ops = Vec::new();
        let attached = hub
            .attach(
                &client_id,
                connect.clean_start,
                v5,
                expiry_interval,
                peer,
                &mut ops,
            )
            .await;
        let durable = match hub.store.submit(ops).await {
            Ok(commit) => commit.wait().await,
            Err(e) => Err(e),
        };
        if let Err(e) = durable {
            tracing::error!(client_id = %client_id, error = %e, "cannot persist session");
            refuse(&mut t, reason::SERVER_UNAVAILABLE);
            t.close().await;
            let mut ops = Vec::new();
            hub.detach(&attached.session, attached.conn_id, &mut ops);
            hub.persist(ops).await;
            return None;
        }

        if v5 {
            ack_props.receive_maximum = Some(limits.receive_maximum);
            ack_props.maximum_packet_size = Some(limits.max_packet_size);
            ack_props.topic_alias_maximum = Some(limits.topic_alias_maximum);
        }
        let connack = Packet::ConnAck(ConnAck {
            session_present: attached.session_present,
            reason: reason::SUCCESS,
            properties: ack_props,
        });
        let _ = t.queue(&connack, protocol);

        let client_receive_max = connect.properties.receive_maximum.unwrap_or(u16::MAX);
        let counters = Arc::new(ConnCounters::default());
        hub.observer
            .connected(&client_id, peer, protocol, &counters);
        tracing::debug!(client_id = %client_id, %peer, ?protocol, "connected");
        Some(Connection {
            window: usize::from(limits.max_inflight.min(client_receive_max)),
            client_max_packet: connect.properties.maximum_packet_size.unwrap_or(u32::MAX),
            client_alias_max: connect.properties.topic_alias_maximum.unwrap_or(0),
            hub,
            t,
            peer,
            protocol,
            client_id,
            session: attached.session,
            conn_id: attached.conn_id,
            kicked: attached.kicked,
            access,
            registry_changes,
            revocation,
            counters,
            keep_alive: Duration::from_secs(u64::from(keep_alive)),
            will: connect.will,
            inbound_aliases: HashMap::new(),
            outbound_aliases: HashMap::new(),
            acks: FuturesOrdered::new(),
            pending_qos1: 0,
            scratch: HashMap::new(),
            to_send: Vec::new(),
        })
    }

    fn v5(&self) -> bool {
        self.protocol == Protocol::V5
    }

    /// Sends DISCONNECT with `code` (v5 only; 3.1.1 has none to send).
    fn disconnect_with(&mut self, code: u8, why: &str) {
        if self.v5() {
            let mut d = Disconnect::new(code);
            d.properties.reason_string = Some(why.to_owned());
            let _ = self.t.queue(&Packet::Disconnect(d), self.protocol);
        }
    }

    /// A client fault: count it, tell the client why (v5), end abnormally.
    fn violation(&mut self, code: u8, why: &str) -> Exit {
        tracing::debug!(client_id = %self.client_id, code, why, "closing on protocol violation");
        self.hub
            .observer
            .protocol_violation(self.peer, Some(&self.client_id), code);
        self.disconnect_with(code, why);
        Exit::Abnormal
    }

    /// Asks the policies; a denial is logged and reported.
    fn allowed(&mut self, action: Action, resource: Resource) -> bool {
        authorize(
            &self.hub,
            &mut self.access,
            self.peer,
            &self.client_id,
            action,
            resource,
        )
    }

    /// The registry changed: reload this connection's policies and cut it
    /// if its certificate is no longer active or it may no longer connect.
    fn recheck_access(&mut self) -> Option<Exit> {
        let hub = self.hub.clone();
        if let Err(NotActive) = self.access.reload(&hub) {
            tracing::info!(client_id = %self.client_id, "certificate no longer active; closing");
            self.disconnect_with(reason::NOT_AUTHORIZED, "certificate no longer active");
            return Some(Exit::Abnormal);
        }
        let client = Resource::client(self.client_id.to_string());
        if !self.allowed(Action::Connect, client) {
            self.disconnect_with(reason::NOT_AUTHORIZED, "no longer allowed to connect");
            return Some(Exit::Abnormal);
        }
        None
    }

    fn is_revoked(&self) -> bool {
        match (&self.revocation, self.hub.trust.get()) {
            (Some((_, ca, serial)), Some(trust)) => trust.snapshot().is_revoked(ca, serial),
            _ => false,
        }
    }

    async fn run(&mut self) -> Exit {
        let mut shutdown = self.hub.shutdown.clone();
        let max_packet = self.hub.settings.limits.max_packet_size;
        // 1.5 × keep-alive (§3.1.2.10).
        let grace = self.keep_alive + self.keep_alive / 2;
        let mut deadline = Instant::now() + grace;
        loop {
            self.send_queued();
            if self.t.has_pending_writes() {
                if let Err(e) = self.t.flush().await {
                    tracing::debug!(client_id = %self.client_id, error = %e, "write failed");
                    return Exit::Abnormal;
                }
            }
            enum Event {
                AccessChanged,
                TrustChanged,
                Read(Result<(), ReadError>),
                Ack(Result<Box<Packet>, StoreError>),
                Wake,
                KeepAlive,
                Kicked(u8),
                Shutdown,
            }
            let event = tokio::select! {
                r = &mut self.kicked => Event::Kicked(r.unwrap_or(reason::SESSION_TAKEN_OVER)),
                _ = shutdown.wait_for(|s| *s) => Event::Shutdown,
                _ = registry_changed(&mut self.registry_changes) => Event::AccessChanged,
                _ = trust_changed(&mut self.revocation) => Event::TrustChanged,
                Some(a) = self.acks.next(), if !self.acks.is_empty() => Event::Ack(a.map(Box::new)),
                r = self.t.fill() => Event::Read(r),
                _ = self.session.wake.notified() => Event::Wake,
                _ = sleep_until(deadline), if !grace.is_zero() => Event::KeepAlive,
            };
            match event {
                Event::AccessChanged => {
                    if let Some(exit) = self.recheck_access() {
                        return exit;
                    }
                }
                Event::TrustChanged => {
                    if self.is_revoked() {
                        tracing::info!(client_id = %self.client_id, "certificate revoked by a new CRL; closing");
                        self.disconnect_with(reason::NOT_AUTHORIZED, "certificate revoked");
                        return Exit::Abnormal;
                    }
                }
                Event::Read(Err(ReadError::Closed)) => return Exit::Abnormal,
                Event::Read(Err(ReadError::Io(e))) => {
                    tracing::debug!(client_id = %self.client_id, error = %e, "read failed");
                    return Exit::Abnormal;
                }
                Event::Read(Err(ReadError::Decode(e))) => {
                    return self.violation(e.reason_code(), &e.to_string());
                }
                Event::Read(Ok(())) => {
                    deadline = Instant::now() + grace;
                    loop {
                        match self.t.next_packet(Some(self.protocol), max_packet) {
                            Ok(Some(packet)) => {
                                if let Some(exit) = self.handle(packet).await {
                                    return exit;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return self.violation(e.reason_code(), &e.to_string()),
                        }
                    }
                }
                Event::Ack(Ok(packet)) => {
                    if matches!(*packet, Packet::PubAck(_)) {
                        self.pending_qos1 = self.pending_qos1.saturating_sub(1);
                    }
                    let _ = self.t.queue(&packet, self.protocol);
                }
                Event::Ack(Err(e)) => {
                    tracing::error!(client_id = %self.client_id, error = %e, "store failed; closing");
                    self.disconnect_with(reason::UNSPECIFIED_ERROR, "storage failure");
                    return Exit::Abnormal;
                }
                Event::Wake => {}
                Event::KeepAlive => {
                    tracing::debug!(client_id = %self.client_id, "keep-alive timeout");
                    self.disconnect_with(reason::KEEP_ALIVE_TIMEOUT, "keep-alive timeout");
                    return Exit::Abnormal;
                }
                Event::Kicked(code) => {
                    self.disconnect_with(code, "session taken over");
                    return Exit::Abnormal;
                }
                Event::Shutdown => {
                    self.disconnect_with(reason::SERVER_SHUTTING_DOWN, "server shutting down");
                    return Exit::Abnormal;
                }
            }
        }
    }

    /// Handles one packet; `Some` ends the connection.
    async fn handle(&mut self, packet: Packet) -> Option<Exit> {
        match packet {
            Packet::Publish(p) => self.on_publish(p).await,
            Packet::PubAck(a) => {
                self.complete(a.pkid, QoS::AtLeastOnce).await;
                None
            }
            Packet::PubRec(a) => self.on_pubrec(a).await,
            Packet::PubRel(a) => {
                let (known, persistent) = {
                    let mut st = self.session.state.lock();
                    (st.inbound.remove(&a.pkid), st.persistent())
                };
                if known && persistent {
                    self.hub
                        .persist(vec![Op::DeleteInbound {
                            client_id: self.client_id.clone(),
                            pkid: a.pkid,
                        }])
                        .await;
                }
                let mut comp = Ack::new(a.pkid);
                if !known {
                    comp.reason = reason::PACKET_IDENTIFIER_NOT_FOUND;
                }
                self.ack_in_order(Packet::PubComp(comp), None).await
            }
            Packet::PubComp(a) => {
                self.complete(a.pkid, QoS::ExactlyOnce).await;
                None
            }
            Packet::Subscribe(s) => self.on_subscribe(s).await,
            Packet::Unsubscribe(u) => self.on_unsubscribe(u).await,
            Packet::PingReq => {
                let _ = self.t.queue(&Packet::PingResp, self.protocol);
                None
            }
            Packet::Disconnect(d) => Some(self.on_disconnect(d)),
            Packet::Auth(_) => Some(self.violation(
                reason::PROTOCOL_ERROR,
                "AUTH without an authentication method",
            )),
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => Some(self.violation(
                reason::PROTOCOL_ERROR,
                "packet type not allowed from a client",
            )),
        }
    }

    /// Queues an acknowledgement behind those already waiting, to be sent
    /// once `ops` (if any) are durable.
    async fn ack_in_order(&mut self, ack: Packet, ops: Option<Vec<Op>>) -> Option<Exit> {
        let commit = match ops {
            Some(ops) if !ops.is_empty() => match self.hub.store.submit(ops).await {
                Ok(commit) => Some(commit),
                Err(e) => {
                    tracing::error!(error = %e, "store unavailable");
                    self.disconnect_with(reason::UNSPECIFIED_ERROR, "storage failure");
                    return Some(Exit::Abnormal);
                }
            },
            _ => None,
        };
        self.acks.push_back(Box::pin(async move {
            if let Some(commit) = commit {
                commit.wait().await?;
            }
            Ok(ack)
        }));
        None
    }

    async fn on_publish(&mut self, p: Publish) -> Option<Exit> {
        let limits = &self.hub.settings.limits;
        self.counters.publish_in(p.payload.len());
        if !p.properties.subscription_identifiers.is_empty() {
            // §3.3.4: only the server sends them.
            return Some(self.violation(
                reason::PROTOCOL_ERROR,
                "subscription identifier on a client PUBLISH",
            ));
        }

        let topic: Arc<str> = match p.properties.topic_alias {
            Some(alias) if alias == 0 || alias > limits.topic_alias_maximum => {
                return Some(
                    self.violation(reason::TOPIC_ALIAS_INVALID, "topic alias out of range"),
                );
            }
            Some(alias) if p.topic.is_empty() => match self.inbound_aliases.get(&alias) {
                Some(topic) => topic.clone(),
                None => {
                    return Some(self.violation(reason::PROTOCOL_ERROR, "unknown topic alias"));
                }
            },
            Some(alias) => {
                let topic: Arc<str> = p.topic.as_str().into();
                self.inbound_aliases.insert(alias, topic.clone());
                topic
            }
            None => p.topic.as_str().into(),
        };

        if p.qos != QoS::AtMostOnce {
            let inflight = self.pending_qos1 + self.session.state.lock().inbound.len();
            if inflight >= usize::from(limits.receive_maximum) {
                return Some(self.violation(
                    reason::RECEIVE_MAXIMUM_EXCEEDED,
                    "more unacknowledged publishes than Receive Maximum",
                ));
            }
        }

        let ack = |reason: u8| {
            let mut a = Ack::new(p.pkid);
            a.reason = reason;
            match p.qos {
                QoS::AtLeastOnce => Some(Packet::PubAck(a)),
                QoS::ExactlyOnce => Some(Packet::PubRec(a)),
                QoS::AtMostOnce => None,
            }
        };

        // A retransmitted QoS 2 publish we already hold: acknowledge only.
        if p.qos == QoS::ExactlyOnce && self.session.state.lock().inbound.contains(&p.pkid) {
            return match ack(reason::SUCCESS) {
                Some(a) => self.ack_in_order(a, None).await,
                None => None,
            };
        }

        if p.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(&p.payload).is_err()
        {
            return match ack(reason::PAYLOAD_FORMAT_INVALID) {
                Some(a) if self.v5() => self.ack_in_order(a, None).await,
                _ => None,
            };
        }

        let may_publish = self.allowed(Action::Publish, Resource::topic(topic.to_string()))
            && (!p.retain
                || self.allowed(Action::RetainPublish, Resource::topic(topic.to_string())));
        if !may_publish {
            // 3.1.1 cannot say no: the publish is acknowledged and dropped,
            // as Mosquitto does; v5 gets 0x87.
            let code = if self.v5() {
                reason::NOT_AUTHORIZED
            } else {
                reason::SUCCESS
            };
            return match ack(code) {
                Some(a) => self.ack_in_order(a, None).await,
                None => None,
            };
        }

        let message = Arc::new(Message::from_publish(&p, topic, self.client_id.clone()));
        let mut ops = Vec::new();
        let delivered = self.hub.publish(message, &mut ops, &mut self.scratch);
        if p.qos == QoS::ExactlyOnce {
            let persistent = {
                let mut st = self.session.state.lock();
                st.inbound.insert(p.pkid);
                st.persistent()
            };
            if persistent {
                ops.push(Op::PutInbound {
                    client_id: self.client_id.clone(),
                    pkid: p.pkid,
                });
            }
        }
        let code = if delivered == 0 && self.v5() {
            reason::NO_MATCHING_SUBSCRIBERS
        } else {
            reason::SUCCESS
        };
        match ack(code) {
            Some(a) => {
                if p.qos == QoS::AtLeastOnce {
                    self.pending_qos1 += 1;
                }
                self.ack_in_order(a, Some(ops)).await
            }
            None => {
                self.hub.persist(ops).await;
                None
            }
        }
    }

    /// PUBACK or PUBCOMP: the outgoing message is done.
    async fn complete(&mut self, pkid: u16, qos: QoS) {
        let done = {
            let mut st = self.session.state.lock();
            st.queue
                .complete(pkid, qos)
                .map(|seq| (seq, st.persistent()))
        };
        match done {
            Some((seq, true)) => {
                self.hub
                    .persist(vec![Op::DeleteQueued {
                        client_id: self.client_id.clone(),
                        seq,
                    }])
                    .await;
            }
            Some((_, false)) => {}
            None => {
                tracing::debug!(client_id = %self.client_id, pkid, "acknowledgement for unknown packet id")
            }
        }
        // A slot in the window opened.
        self.session.wake.notify_one();
    }

    async fn on_pubrec(&mut self, a: Ack) -> Option<Exit> {
        if a.reason >= 0x80 {
            // The client refused the message: it is finished (§4.3.3).
            let done = {
                let mut st = self.session.state.lock();
                let seq = st.queue.release(a.pkid).map(|(seq, _)| seq);
                let removed = seq.and_then(|seq| st.queue.remove_seq(seq)).map(|e| e.seq);
                removed.map(|seq| (seq, st.persistent()))
            };
            if let Some((seq, true)) = done {
                self.hub
                    .persist(vec![Op::DeleteQueued {
                        client_id: self.client_id.clone(),
                        seq,
                    }])
                    .await;
            }
            self.session.wake.notify_one();
            return None;
        }
        let (released, persistent) = {
            let mut st = self.session.state.lock();
            let released = st.queue.release(a.pkid);
            let again = released.is_none() && st.queue.is_released(a.pkid);
            (
                released.map(Some).or(again.then_some(None)),
                st.persistent(),
            )
        };
        let mut rel = Ack::new(a.pkid);
        match released {
            // First PUBREC: PUBREL only once "released" is durable, or a
            // restart could publish the message a second time.
            Some(Some((seq, record))) if persistent => {
                let op = Op::PutQueued {
                    client_id: self.client_id.clone(),
                    seq,
                    record,
                };
                self.ack_in_order(Packet::PubRel(rel), Some(vec![op])).await
            }
            Some(_) => self.ack_in_order(Packet::PubRel(rel), None).await,
            None => {
                rel.reason = reason::PACKET_IDENTIFIER_NOT_FOUND;
                self.ack_in_order(Packet::PubRel(rel), None).await
            }
        }
    }

    async fn on_subscribe(&mut self, s: Subscribe) -> Option<Exit> {
        let identifier = s.properties.subscription_identifiers.first().copied();
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        let mut to_send = Vec::new();
        for (filter, options) in &s.filters {
            if !self.allowed(Action::Subscribe, Resource::topicfilter(filter.clone())) {
                reasons.push(reason::NOT_AUTHORIZED);
                continue;
            }
            let sub = Subscription {
                options: *options,
                identifier,
            };
            self.hub
                .subscribe(&self.session, filter, sub, &mut retained);
            if !retained.is_empty() {
                to_send.push((*options, std::mem::take(&mut retained)));
            }
            reasons.push(options.qos as u8);
        }
        if let Some(exit) = self.persist_session_now().await {
            return Some(exit);
        }
        let suback = Packet::SubAck(SubAck {
            pkid: s.pkid,
            reasons,
            properties: Properties::default(),
        });
        let _ = self.t.queue(&suback, self.protocol);
        let mut ops = Vec::new();
        for (options, messages) in to_send {
            self.hub
                .send_retained(&self.session, options, identifier, messages, &mut ops);
        }
        self.hub.persist(ops).await;
        None
    }

    async fn on_unsubscribe(&mut self, u: Unsubscribe) -> Option<Exit> {
        let reasons: Vec<u8> = u
            .filters
            .iter()
            .map(|f| {
                if self.hub.unsubscribe(&self.session, f) {
                    reason::SUCCESS
                } else {
                    reason::NO_SUBSCRIPTION_EXISTED
                }
            })
            .collect();
        if let Some(exit) = self.persist_session_now().await {
            return Some(exit);
        }
        let unsuback = Packet::UnsubAck(UnsubAck {
            pkid: u.pkid,
            reasons,
            properties: Properties::default(),
        });
        let _ = self.t.queue(&unsuback, self.protocol);
        None
    }

    /// Makes the session's subscriptions durable before they are
    /// acknowledged (persistent sessions only).
    async fn persist_session_now(&mut self) -> Option<Exit> {
        // Nothing to do (and no exit) for a session that is not persistent.
        let record = {
            let st = self.session.state.lock();
            st.persistent().then(|| st.record())
        }?;
        let op = Op::PutSession {
            client_id: self.client_id.clone(),
            record,
        };
        let durable = match self.hub.store.submit(vec![op]).await {
            Ok(commit) => commit.wait().await,
            Err(e) => Err(e),
        };
        match durable {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot persist subscriptions");
                self.disconnect_with(reason::UNSPECIFIED_ERROR, "storage failure");
                Some(Exit::Abnormal)
            }
        }
    }

    fn on_disconnect(&mut self, d: Disconnect) -> Exit {
        if let Some(expiry) = d.properties.session_expiry_interval {
            let mut st = self.session.state.lock();
            if st.expiry_interval == 0 && expiry != 0 {
                drop(st);
                // §3.14.2.2.2
                return self.violation(
                    reason::PROTOCOL_ERROR,
                    "session expiry set on DISCONNECT after connecting with 0",
                );
            }
            let max = u32::try_from(self.hub.settings.limits.max_session_expiry.as_secs())
                .unwrap_or(u32::MAX);
            st.expiry_interval = expiry.min(max);
        }
        if d.reason == reason::DISCONNECT_WITH_WILL {
            Exit::Abnormal
        } else {
            Exit::Graceful
        }
    }

    /// Writes what the session's queue allows into the write buffer.
    fn send_queued(&mut self) {
        self.session
            .state
            .lock()
            .queue
            .next_to_send(self.window, &mut self.to_send);
        if self.to_send.is_empty() {
            return;
        }
        let now = now_ms();
        let mut finished = Vec::new();
        let mut entries = std::mem::take(&mut self.to_send);
        for e in entries.drain(..) {
            let r = &e.record;
            if r.state == OutState::Released {
                let _ = self
                    .t
                    .queue(&Packet::PubRel(Ack::new(r.pkid)), self.protocol);
                continue;
            }
            if r.message.is_expired(now) {
                finished.push((e.seq, r.qos, DropReason::Expired));
                continue;
            }
            if !self.allowed(
                Action::Receive,
                Resource::topic(r.message.topic.to_string()),
            ) {
                finished.push((e.seq, r.qos, DropReason::NotAuthorized));
                continue;
            }
            let mut publish = Publish {
                dup: e.dup && r.qos != QoS::AtMostOnce,
                qos: r.qos,
                retain: r.retain,
                topic: r.message.topic.to_string(),
                pkid: r.pkid,
                properties: Properties::default(),
                payload: r.message.payload.clone(),
            };
            if self.v5() {
                publish.properties = r.message.delivery_properties(now, &r.subscription_ids);
                self.apply_outbound_alias(&mut publish, &r.message.topic);
            }
            let packet = Packet::Publish(publish);
            if crate::codec::encoded_len(&packet, self.protocol) > self.client_max_packet as usize {
                // §3.1.2.11.4: discard as if sent.
                finished.push((e.seq, r.qos, DropReason::TooLargeForClient));
                continue;
            }
            match self.t.queue(&packet, self.protocol) {
                Ok(_) => self.counters.publish_out(r.message.payload.len()),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot encode a queued message");
                    finished.push((e.seq, r.qos, DropReason::TooLargeForClient));
                }
            }
        }
        self.to_send = entries;
        if finished.is_empty() {
            return;
        }
        let mut ops = Vec::new();
        {
            let mut st = self.session.state.lock();
            let persistent = st.persistent();
            for (seq, qos, why) in &finished {
                self.hub.dropped(&self.client_id, *qos, *why);
                if *qos != QoS::AtMostOnce && st.queue.remove_seq(*seq).is_some() && persistent {
                    ops.push(Op::DeleteQueued {
                        client_id: self.client_id.clone(),
                        seq: *seq,
                    });
                }
            }
        }
        self.session.wake.notify_one();
        if !ops.is_empty() {
            let store = self.hub.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.submit(ops).await {
                    tracing::error!(error = %e, "cannot queue a store write");
                }
            });
        }
    }

    /// Uses (or assigns) a topic alias when the client accepts them.
    fn apply_outbound_alias(&mut self, publish: &mut Publish, topic: &Arc<str>) {
        if self.client_alias_max == 0 {
            return;
        }
        if let Some(alias) = self.outbound_aliases.get(topic) {
            publish.properties.topic_alias = Some(*alias);
            publish.topic.clear();
            return;
        }
        let next = self.outbound_aliases.len() + 1;
        if next <= usize::from(self.client_alias_max) {
            let alias = u16::try_from(next).unwrap_or(u16::MAX);
            self.outbound_aliases.insert(topic.clone(), alias);
            publish.properties.topic_alias = Some(alias);
        }
    }

    /// Flushes, publishes the will if due, and lets go of the session.
    async fn finish(mut self, exit: Exit) {
        self.t.close().await;
        let expiry = self.session.state.lock().expiry_interval;
        if let (Exit::Abnormal, Some(will)) = (exit, self.will.take()) {
            // A delay at least as long as the session: the session's end
            // sends it (see `Hub::discard`).
            let delay = if self.v5() {
                will.properties.will_delay_interval.unwrap_or(0).min(expiry)
            } else {
                0
            };
            let message = Arc::new(will_message(will, self.client_id.clone()));
            if delay == 0 {
                // Inline, so that it is out before a shutdown completes.
                let mut ops = Vec::new();
                self.hub.publish(message, &mut ops, &mut self.scratch);
                self.hub.persist(ops).await;
            } else {
                let delay = Duration::from_secs(u64::from(delay));
                self.hub.defer_will(&self.session, message, delay);
            }
        }
        let mut ops = Vec::new();
        self.hub.detach(&self.session, self.conn_id, &mut ops);
        self.hub.persist(ops).await;
        self.hub
            .observer
            .disconnected(&self.client_id, self.peer, exit == Exit::Graceful);
        tracing::debug!(client_id = %self.client_id, ?exit, "disconnected");
    }
}

fn will_message(will: LastWill, publisher: Arc<str>) -> Message {
    let p = will.properties;
    Message {
        topic: will.topic.into(),
        payload: will.payload,
        qos: will.qos,
        retain: will.retain,
        expires_at_ms: p
            .message_expiry_interval
            .map(|s| now_ms().saturating_add(u64::from(s) * 1000)),
        properties: MessageProperties {
            payload_format_indicator: p.payload_format_indicator,
            content_type: p.content_type,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties: p.user_properties,
        },
        publisher,
    }
}

/// Decides `action` on `resource` for a connection; a denial is logged and
/// reported to the observer as an authorization failure.
fn authorize(
    hub: &Hub,
    access: &mut Access,
    peer: SocketAddr,
    client_id: &str,
    action: Action,
    resource: Resource,
) -> bool {
    let decision = access.check(hub, action, &resource);
    if decision.allowed {
        return true;
    }
    let arn = resource.arn(&hub.settings.scope);
    tracing::info!(client_id, %peer, action = action.name(), resource = %arn, why = %decision.reason, "not authorized");
    hub.observer
        .authorization_failure(client_id, peer, action.name(), &arn);
    false
}

/// Completes when the registry reports a change; never without one.
async fn registry_changed(changes: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = changes {
        if rx.changed().await.is_ok() {
            return;
        }
        // The registry is gone (shutting down): stop listening.
        *changes = None;
    }
    std::future::pending().await
}

/// Completes when the device listener's trust changed (a new CRL).
async fn trust_changed(revocation: &mut Option<(watch::Receiver<u64>, String, String)>) {
    if let Some((rx, _, _)) = revocation {
        if rx.changed().await.is_ok() {
            return;
        }
        *revocation = None;
    }
    std::future::pending().await
}
