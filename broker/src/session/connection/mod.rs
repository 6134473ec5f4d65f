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
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, watch};
use tokio::time::{sleep_until, timeout, Instant};

use crate::authz::{Action, Resource};
use crate::codec::{
    reason, Ack, ConnAck, Connect, DecodeError, Disconnect, LastWill, Packet, Properties, Protocol,
    Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use crate::hub::Hub;
use crate::intercept::{Intercepted, Reply};
use crate::message::{now_ms, Message, MessageProperties};
use crate::net::transport::ReadError;
use crate::net::Transport;
use crate::observer::{ConnCounters, DropReason, TopicCounters};
use crate::registry::LogLevel;
use crate::router::{Delivery, Subscription};
use crate::session::access::{Access, NotActive, Principal};
use crate::session::{Entry, Session};
use crate::store::{Op, OutState, StoreError};

mod accept;
mod inbound;
mod outbound;

/// The longest a QoS 1/2 publisher is paused for a backlogged subscriber
/// before it goes on (and that subscriber's queue limit applies).
const FLOW_CONTROL_MAX_PAUSE: Duration = Duration::from_secs(1);
/// How often a paused publisher looks at the subscriber's backlog.
const FLOW_CONTROL_POLL: Duration = Duration::from_millis(5);

/// An acknowledgement once its store ops are durable, or with the error
/// that kept them from being so.
type AckFuture = Pin<Box<dyn Future<Output = Result<Packet, (Packet, StoreError)>> + Send>>;

/// Why the loop ended; decides the will and the DISCONNECT sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// DISCONNECT 0x00 from the client: the will is discarded.
    Graceful,
    /// Any other end: the will is published.
    Abnormal,
}

/// Serves one accepted connection to its end.
///
/// The connection's task holds this future for its whole life, and an
/// async state machine is as large as its largest state. So everything
/// needed only briefly (reading and checking CONNECT, the teardown) runs in
/// boxed futures, and the task holds only the `Connection` and the loop.
pub(crate) async fn serve<S>(hub: Arc<Hub>, stream: S, peer: SocketAddr, principal: Principal)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(mut conn) = Box::pin(connect(hub, stream, peer, principal)).await else {
        return;
    };
    let exit = conn.run().await;
    Box::pin(conn.finish(exit)).await;
}

/// Reads CONNECT within the connect timeout and accepts or refuses it.
async fn connect<S>(
    hub: Arc<Hub>,
    stream: S,
    peer: SocketAddr,
    principal: Principal,
) -> Option<Connection<S>>
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
            return None;
        }
        Ok(Err(ReadError::Decode(e))) => {
            tracing::debug!(%peer, error = %e, "bad CONNECT");
            hub.observer.protocol_violation(peer, None, e.reason_code());
            t.close().await;
            return None;
        }
        Ok(Ok(_)) | Ok(Err(_)) => return None,
        Err(_) => {
            tracing::debug!(%peer, "no CONNECT in time");
            hub.observer
                .connect_refused(peer, None, reason::MAXIMUM_CONNECT_TIME);
            return None;
        }
    };
    Connection::accept(hub, t, peer, connect, principal).await
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
    revocation: Option<(watch::Receiver<u64>, String, Vec<u8>)>,
    counters: Arc<ConnCounters>,
    /// The observer's per-topic counts for this connection, if it wants them.
    topic_counters: Option<Arc<dyn TopicCounters>>,
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
    /// Reading is paused until this subscriber's backlog drains (or the
    /// instant passes): flow control, see `Routed::backlogged`.
    paused: Option<(Arc<Session>, Instant)>,
    to_send: Vec<Entry>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
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
        let client = Resource::client(self.client_id.clone());
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

    /// An acknowledgement whose store commit completed (or failed).
    fn ack_ready(&mut self, ready: Result<Packet, (Packet, StoreError)>) -> Option<Exit> {
        match ready {
            Ok(packet) => {
                if matches!(packet, Packet::PubAck(_)) {
                    self.pending_qos1 = self.pending_qos1.saturating_sub(1);
                }
                let _ = self.t.queue(&packet, self.protocol);
                None
            }
            Err((packet, e)) => self.not_durable(packet, e),
        }
    }

    /// A PUBLISH whose store ops failed is refused, never acknowledged as
    /// a success: MQTT 5 has a failure reason code for that, and the
    /// connection goes on (QoS 0 and non-persistent traffic need no
    /// store); MQTT 3.1.1 has none, so the connection is closed unanswered
    /// and the client sends the message again when it reconnects.
    fn not_durable(&mut self, packet: Packet, e: StoreError) -> Option<Exit> {
        let refused = match (self.v5(), packet) {
            (true, Packet::PubAck(mut a)) => {
                self.pending_qos1 = self.pending_qos1.saturating_sub(1);
                a.reason = reason::UNSPECIFIED_ERROR;
                Packet::PubAck(a)
            }
            (true, Packet::PubRec(mut a)) => {
                // A failed PUBREC ends the exchange (§4.3.3): no PUBREL follows.
                self.session.state.lock().inbound.remove(&a.pkid);
                a.reason = reason::UNSPECIFIED_ERROR;
                Packet::PubRec(a)
            }
            _ => {
                tracing::error!(client_id = %self.client_id, error = %e, "store failed; closing");
                self.disconnect_with(reason::UNSPECIFIED_ERROR, "storage failure");
                return Some(Exit::Abnormal);
            }
        };
        // The store logs the outage once; this is per message.
        tracing::debug!(client_id = %self.client_id, error = %e, "publish not durable; refused");
        let _ = self.t.queue(&refused, self.protocol);
        None
    }

    async fn run(&mut self) -> Exit {
        let mut shutdown = self.hub.shutdown.clone();
        let max_packet = self.hub.settings.limits.max_packet_size;
        // 1.5 × keep-alive (§3.1.2.10).
        let grace = self.keep_alive + self.keep_alive / 2;
        let mut deadline = Instant::now() + grace;
        loop {
            // Acknowledgements already durable go out in this same write.
            while let Some(Some(ready)) = self.acks.next().now_or_never() {
                if let Some(exit) = self.ack_ready(ready) {
                    return exit;
                }
            }
            self.send_queued();
            if self.t.has_pending_writes() {
                if let Err(e) = self.t.flush().await {
                    tracing::debug!(client_id = %self.client_id, error = %e, "write failed");
                    return Exit::Abnormal;
                }
            }
            enum Event {
                Paused,
                AccessChanged,
                TrustChanged,
                Read(Result<(), ReadError>),
                Ack(Box<Result<Packet, (Packet, StoreError)>>),
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
                Some(a) = self.acks.next(), if !self.acks.is_empty() => Event::Ack(Box::new(a)),
                r = self.t.fill(), if self.paused.is_none() => Event::Read(r),
                _ = tokio::time::sleep(FLOW_CONTROL_POLL), if self.paused.is_some() => Event::Paused,
                _ = self.session.wake.notified() => Event::Wake,
                _ = sleep_until(deadline), if !grace.is_zero() => Event::KeepAlive,
            };
            match event {
                Event::Paused => {
                    // Not reading is our doing: don't count it as silence.
                    deadline = Instant::now() + grace;
                    if let Some((session, until)) = &self.paused {
                        let drained = !session.is_online()
                            || session.state.lock().queue.len() <= self.hub.low_water();
                        if drained || Instant::now() >= *until {
                            self.paused = None;
                            // Packets read before the pause are still waiting.
                            if let Some(exit) = self.handle_buffered(max_packet).await {
                                return exit;
                            }
                        }
                    }
                }
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
                    if let Some(exit) = self.handle_buffered(max_packet).await {
                        return exit;
                    }
                }
                Event::Ack(ready) => {
                    if let Some(exit) = self.ack_ready(*ready) {
                        return exit;
                    }
                }
                Event::Wake => {}
                Event::KeepAlive => {
                    tracing::debug!(client_id = %self.client_id, "keep-alive timeout");
                    self.disconnect_with(reason::KEEP_ALIVE_TIMEOUT, "keep-alive timeout");
                    return Exit::Abnormal;
                }
                Event::Kicked(code) => {
                    let why = if code == reason::SESSION_TAKEN_OVER {
                        "session taken over"
                    } else {
                        tracing::info!(client_id = %self.client_id, code, "disconnected by the broker");
                        "disconnected by the broker"
                    };
                    self.disconnect_with(code, why);
                    return Exit::Abnormal;
                }
                Event::Shutdown => {
                    self.disconnect_with(reason::SERVER_SHUTTING_DOWN, "server shutting down");
                    return Exit::Abnormal;
                }
            }
        }
    }

    /// Handles the complete packets already read, until flow control
    /// pauses this publisher; `Some` ends the connection.
    async fn handle_buffered(&mut self, max_packet: u32) -> Option<Exit> {
        while self.paused.is_none() {
            match self.t.next_packet(Some(self.protocol), max_packet) {
                // Boxed so the handlers' state is allocated only while a
                // packet is handled, not held by every idle connection.
                Ok(Some(packet)) => {
                    if let Some(exit) = Box::pin(self.handle(packet)).await {
                        return Some(exit);
                    }
                }
                Ok(None) => break,
                Err(e) => return Some(self.violation(e.reason_code(), &e.to_string())),
            }
        }
        None
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
            match commit {
                Some(commit) => match commit.wait().await {
                    Ok(()) => Ok(ack),
                    Err(e) => Err((ack, e)),
                },
                None => Ok(ack),
            }
        }));
        None
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
        if let Some(level) = self.access.device_log() {
            device_event(
                level,
                &self.client_id,
                self.access.thing_name(),
                "disconnect",
                if exit == Exit::Graceful {
                    "graceful"
                } else {
                    "abnormal"
                },
            );
        }
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
    let reserved;
    let decision = match (&action, &resource) {
        (Action::Publish | Action::RetainPublish, Resource::Topic(t))
            if crate::topic::is_broker_only(t) =>
        {
            reserved = crate::authz::Decision {
                allowed: false,
                reason: "$SYS topics are published by the broker only".to_owned(),
            };
            &reserved
        }
        _ => access.check(hub, action, &resource),
    };
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
/// One event of a device whose v2 log level is set (ENABLE_IOT_LOGGING,
/// SetV2LoggingLevel), at that level, under the `wardmq::device` target.
/// Callers check `Access::device_log` first, so devices without a level
/// cost one branch.
pub(super) fn device_event(
    level: LogLevel,
    client_id: &str,
    thing: Option<&str>,
    event: &str,
    detail: &str,
) {
    let thing = thing.unwrap_or("");
    match level {
        LogLevel::Debug => {
            tracing::debug!(target: "wardmq::device", client_id, thing, event, detail, "device activity")
        }
        LogLevel::Info => {
            tracing::info!(target: "wardmq::device", client_id, thing, event, detail, "device activity")
        }
        LogLevel::Warn => {
            tracing::warn!(target: "wardmq::device", client_id, thing, event, detail, "device activity")
        }
        LogLevel::Error => {
            tracing::error!(target: "wardmq::device", client_id, thing, event, detail, "device activity")
        }
        LogLevel::Disabled => {}
    }
}

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
async fn trust_changed(revocation: &mut Option<(watch::Receiver<u64>, String, Vec<u8>)>) {
    if let Some((rx, _, _)) = revocation {
        if rx.changed().await.is_ok() {
            return;
        }
        *revocation = None;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    /// Every connection's task holds this future for its whole life; keep
    /// the per-connection packet handlers out of it (they are boxed).
    #[test]
    fn an_idle_connection_task_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("dir");
            let (store, _) =
                crate::store::Store::open(&dir.path().join("x.redb"), 16).expect("store");
            let (_tx, rx) = tokio::sync::watch::channel(false);
            let hub = Arc::new(crate::hub::Hub::new(
                crate::settings::Settings::default(),
                store,
                crate::server::Services::default(),
                vec![],
                rx,
            ));
            let (stream, _peer) = tokio::io::duplex(64);
            let peer = "127.0.0.1:1".parse().expect("addr");
            let task = super::serve(hub, stream, peer, super::Principal::Anonymous);
            let size = std::mem::size_of_val(&task);
            assert!(size < 3 * 1024, "connection task is {size} bytes");
        });
    }

    /// The size of what `f` returns, without calling it.
    fn returned_size<A, R, F: FnOnce(A) -> R>(_: &F) -> usize {
        std::mem::size_of::<R>()
    }

    /// The TLS listener boxes the stream (rustls' connection is over 1 KiB);
    /// the connection task for it stays as small as for plain TCP.
    #[test]
    fn an_idle_tls_connection_task_stays_small() {
        type Tls = Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;
        let peer: std::net::SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let serve = |(hub, tls): (Arc<crate::hub::Hub>, Tls)| {
            super::serve(hub, tls, peer, super::Principal::Anonymous)
        };
        let size = returned_size(&serve);
        assert!(size < 3 * 1024, "TLS connection task is {size} bytes");
    }
}
