//! The state every connection shares: sessions by client ID, the router,
//! retained messages, the store. Connection tasks call in here to attach to
//! a session, publish, subscribe and leave.
//!
//! Lock order: router or retained before a session's state; never two
//! sessions at once; no lock is held across an `.await`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::RwLock;
use tokio::sync::{oneshot, watch, Notify};

use crate::authz::Policy;
use crate::codec::{QoS, RetainHandling, SubscriptionOptions};
use crate::intercept::Hook;
use crate::message::{now_ms, Message};
use crate::observer::{DropReason, Observer};
use crate::registry::Registry;
use crate::router::{Delivery, RetainedTree, Router, Subscription};
use crate::server::Services;
use crate::session::{Attachment, OutQueue, Pushed, Session, SessionState};
use crate::settings::Settings;
use crate::store::{Op, Recovered, Store};

/// Broker-wide counters (exported by later observability work).
#[derive(Debug, Default)]
pub struct Stats {
    pub messages_dropped: AtomicU64,
    pub sessions_expired: AtomicU64,
}

/// What the broker holds right now, read when asked (a metrics scrape,
/// a `$SYS` tick): it walks every session, so it is not for hot paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Sessions held, connected or not.
    pub sessions: usize,
    /// Sessions with a live connection.
    pub sessions_online: usize,
    /// (client, filter) subscriptions.
    pub subscriptions: usize,
    pub retained_messages: usize,
    /// Messages waiting in session queues (not yet sent or not yet acknowledged).
    pub queued_messages: usize,
    pub queued_bytes: usize,
    pub messages_dropped: u64,
    pub sessions_expired: u64,
    /// Store batches that could not be made durable.
    pub store_write_failures: u64,
    /// The store's last write failed: durable writes are being refused.
    pub store_degraded: bool,
}

/// How long a takeover waits for the old connection to let go.
const TAKEOVER_GRACE: Duration = Duration::from_secs(2);

/// A stored policy version: (name, document).
type PolicyKey = (String, String);

pub(crate) struct Hub {
    pub settings: Settings,
    /// Things, certificates and policies; `None` serves anonymous clients
    /// only (tests of the MQTT core).
    pub registry: Option<Registry>,
    /// What the device listener trusts (set when it starts), so live
    /// connections can re-check themselves against new CRLs.
    pub trust: std::sync::OnceLock<Arc<crate::net::tls::TrustStore>>,
    /// Parsed once at start from `settings.anonymous_policies`.
    pub anonymous_policies: Vec<Arc<Policy>>,
    /// Registry policy documents parsed once, by (name, document).
    parsed: parking_lot::Mutex<HashMap<PolicyKey, Option<Arc<Policy>>>>,
    pub sessions: DashMap<Arc<str>, Arc<Session>>,
    pub router: RwLock<Router>,
    pub retained: RwLock<RetainedTree<Arc<Message>>>,
    pub store: Store,
    pub observer: Arc<dyn Observer>,
    /// Consulted on PUBLISHes under its prefix, before routing.
    pub interceptor: Option<Hook>,
    pub stats: Stats,
    /// Connection-rate buckets both listeners check before any TLS work.
    pub admission: crate::net::Admission,
    next_conn_id: AtomicU64,
    /// Flips to true when the broker shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Where a published message went.
pub(crate) struct Routed {
    /// How many sessions it was queued for.
    pub sessions: usize,
    /// A connected subscriber whose queue is past the high-water mark.
    /// QoS 1/2 publishers pause reading until it drains (for at most
    /// `FLOW_CONTROL_MAX_PAUSE`), so a slow consumer slows its producers
    /// instead of making its queue drop acknowledged messages.
    pub backlogged: Option<Arc<Session>>,
}

/// What attaching a connection to a session gives the connection.
pub(crate) struct Attached {
    pub session: Arc<Session>,
    pub conn_id: u64,
    pub session_present: bool,
    /// Receives a reason code when another connection takes the session.
    pub kicked: oneshot::Receiver<u8>,
}

impl Hub {
    pub fn new(
        settings: Settings,
        store: Store,
        services: Services,
        anonymous_policies: Vec<Arc<Policy>>,
        shutdown: watch::Receiver<bool>,
    ) -> Hub {
        Hub {
            admission: crate::net::Admission::new(&settings.limits),
            settings,
            registry: services.registry,
            anonymous_policies,
            trust: Default::default(),
            parsed: Default::default(),
            sessions: DashMap::new(),
            router: RwLock::new(Router::new()),
            retained: RwLock::new(RetainedTree::new()),
            store,
            observer: services.observer,
            interceptor: services.interceptor.map(Hook::new),
            stats: Stats::default(),
            next_conn_id: AtomicU64::new(1),
            shutdown,
        }
    }

    pub fn gauges(&self) -> Gauges {
        let mut g = Gauges {
            subscriptions: self.router.read().len(),
            retained_messages: self.retained.read().len(),
            messages_dropped: self.stats.messages_dropped.load(Ordering::Relaxed),
            sessions_expired: self.stats.sessions_expired.load(Ordering::Relaxed),
            store_write_failures: self.store.write_failures(),
            store_degraded: self.store.degraded(),
            ..Gauges::default()
        };
        // Collected first: no map shard lock is held while a session's
        // state is locked.
        let sessions: Vec<Arc<Session>> = self.sessions.iter().map(|e| e.value().clone()).collect();
        for session in &sessions {
            g.sessions += 1;
            g.sessions_online += usize::from(session.is_online());
            let state = session.state.lock();
            g.queued_messages += state.queue.len();
            g.queued_bytes += state.queue.bytes();
        }
        g
    }

    /// A registry policy document, parsed once. A document the engine
    /// refuses (the registry only checks its size) grants nothing.
    pub fn parsed_policy(&self, name: &str, document: &str) -> Option<Arc<Policy>> {
        let key = (name.to_owned(), document.to_owned());
        self.parsed
            .lock()
            .entry(key)
            .or_insert_with(|| match Policy::parse(name, document) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    tracing::warn!(policy = name, error = %e, "stored policy does not parse; it grants nothing");
                    None
                }
            })
            .clone()
    }

    /// A session queue; `persistent` sessions get packet ids at enqueue
    /// (see `OutQueue`).
    fn new_queue(&self, persistent: bool) -> OutQueue {
        let l = &self.settings.limits;
        OutQueue::new(
            l.max_queued_messages,
            l.max_queued_bytes,
            l.queue_full_policy,
            persistent,
        )
    }

    /// Rebuilds sessions and retained messages read back from the store;
    /// every session starts offline with its expiry clock running from its
    /// recorded disconnect (or now, after a crash).
    pub fn recover(self: &Arc<Self>, recovered: Recovered) {
        let now = now_ms();
        {
            let mut retained = self.retained.write();
            for message in recovered.retained {
                retained.insert(&message.topic.clone(), message);
            }
        }
        for s in recovered.sessions {
            let mut queue = self.new_queue(true);
            for (seq, record) in s.queue {
                queue.restore(seq, record);
            }
            let disconnected_at = s.record.disconnected_at_ms.unwrap_or(now);
            let mut subscriptions = HashMap::new();
            {
                let mut router = self.router.write();
                for sub in s.record.subscriptions {
                    let value = Subscription {
                        options: sub.options,
                        identifier: sub.identifier,
                    };
                    router.subscribe(&s.client_id, &sub.filter, value);
                    subscriptions.insert(sub.filter, value);
                }
            }
            let state = SessionState {
                v5: s.record.v5,
                expiry_interval: s.record.expiry_interval,
                subscriptions,
                queue,
                inbound: s.inbound.into_iter().collect(),
                attachment: None,
                generation: 0,
                disconnected_at_ms: Some(disconnected_at),
                will: None,
                durable: true,
            };
            let expiry = u64::from(s.record.expiry_interval) * 1000;
            let remaining = (disconnected_at + expiry).saturating_sub(now);
            let session = Arc::new(Session::new(s.client_id.clone(), state));
            self.sessions.insert(s.client_id, session.clone());
            self.schedule_expiry(&session, 0, Duration::from_millis(remaining));
        }
    }

    /// Attaches a new connection to `client_id`'s session, taking it over
    /// from any connection that holds it, and starting it fresh when
    /// `clean_start` is set or none exists. Returns the store ops to make
    /// the change durable.
    pub async fn attach(
        self: &Arc<Self>,
        client_id: &Arc<str>,
        clean_start: bool,
        v5: bool,
        expiry_interval: u32,
        peer: SocketAddr,
        ops: &mut Vec<Op>,
    ) -> Attached {
        let conn_id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        loop {
            let existing = self.sessions.get(client_id).map(|s| s.value().clone());
            // Take the session from its current connection first, and wait
            // for that connection to let go, so two connections never serve
            // one session.
            if let Some(session) = &existing {
                let waiting = {
                    let mut st = session.state.lock();
                    st.attachment.as_mut().map(|a| {
                        if let Some(kick) = a.kick.take() {
                            let _ = kick.send(crate::codec::reason::SESSION_TAKEN_OVER);
                            self.observer.session_taken_over(client_id, a.peer, peer);
                        }
                        a.released.clone()
                    })
                };
                if let Some(released) = waiting {
                    let notified = released.notified();
                    tokio::pin!(notified);
                    // Registered before the re-check, so a release between the
                    // lock above and here is not missed.
                    notified.as_mut().enable();
                    let old = session.state.lock().attachment.as_ref().map(|a| a.conn_id);
                    if let Some(old) = old {
                        if tokio::time::timeout(TAKEOVER_GRACE, notified)
                            .await
                            .is_err()
                        {
                            // The old connection is stuck (say, writing to a
                            // peer that stopped reading): take the session
                            // anyway; its own detach will then do nothing.
                            tracing::warn!(client_id = %client_id, "old connection did not let go; taking its session");
                            let mut st = session.state.lock();
                            if st.attachment.as_ref().is_some_and(|a| a.conn_id == old) {
                                st.attachment = None;
                            }
                        }
                    }
                    continue;
                }
            }
            let (kick_tx, kicked) = oneshot::channel();
            let attachment = Attachment {
                conn_id,
                peer,
                kick: Some(kick_tx),
                released: Arc::new(Notify::new()),
            };
            let (session, session_present) = match existing {
                Some(session) if !clean_start => {
                    {
                        let mut st = session.state.lock();
                        if st.attachment.is_some() {
                            continue;
                        }
                        st.attachment = Some(attachment);
                        st.generation += 1;
                        st.v5 = v5;
                        st.expiry_interval = expiry_interval;
                        st.disconnected_at_ms = None;
                        // Resumed in time: a delayed will is not sent.
                        st.will = None;
                        st.queue.reset_for_reconnect();
                        if st.persistent() {
                            ops.push(Op::PutSession {
                                client_id: client_id.clone(),
                                record: st.record(),
                            });
                            st.durable = true;
                        } else if st.durable {
                            // It was persistent and is not any more.
                            ops.push(Op::DeleteSession {
                                client_id: client_id.clone(),
                            });
                            st.durable = false;
                        }
                    }
                    (session, true)
                }
                _ => {
                    if let Some(old) = existing {
                        if old.state.lock().attachment.is_some() {
                            continue;
                        }
                        self.discard(&old, ops);
                    }
                    let state = SessionState {
                        v5,
                        expiry_interval,
                        subscriptions: HashMap::new(),
                        queue: self.new_queue(expiry_interval > 0),
                        inbound: Default::default(),
                        attachment: Some(attachment),
                        generation: 1,
                        disconnected_at_ms: None,
                        will: None,
                        durable: expiry_interval > 0,
                    };
                    let session = Arc::new(Session::new(client_id.clone(), state));
                    if expiry_interval > 0 {
                        // Clears anything left under this ID (say, entries of
                        // an undecodable record) before the session is written.
                        ops.push(Op::DeleteSession {
                            client_id: client_id.clone(),
                        });
                        ops.push(Op::PutSession {
                            client_id: client_id.clone(),
                            record: session.state.lock().record(),
                        });
                    }
                    self.sessions.insert(client_id.clone(), session.clone());
                    (session, false)
                }
            };
            session.online.store(true, Ordering::Relaxed);
            return Attached {
                session,
                conn_id,
                session_present,
                kicked,
            };
        }
    }

    /// Ends a session: removes its subscriptions, queue and durable record,
    /// and publishes a will still waiting for its delay (§3.1.3.2: the will
    /// goes at the earlier of its delay and the session's end).
    fn discard(&self, session: &Arc<Session>, ops: &mut Vec<Op>) {
        let (will, durable) = {
            let mut st = session.state.lock();
            {
                let mut router = self.router.write();
                for filter in st.subscriptions.keys() {
                    router.unsubscribe(&session.client_id, filter);
                }
            }
            st.subscriptions.clear();
            st.queue.clear();
            st.inbound.clear();
            st.generation += 1;
            let durable = std::mem::take(&mut st.durable);
            (st.will.take(), durable)
        };
        if durable {
            ops.push(Op::DeleteSession {
                client_id: session.client_id.clone(),
            });
        }
        if let Some(will) = will {
            self.publish(will, ops, &mut HashMap::new());
        }
    }

    /// Tells the connection serving `client_id` to close with `reason`;
    /// false if none does, or it has been told already (see `attach`).
    pub fn disconnect(&self, client_id: &str, reason: u8) -> bool {
        let Some(session) = self.sessions.get(client_id).map(|s| s.value().clone()) else {
            return false;
        };
        let kick = session
            .state
            .lock()
            .attachment
            .as_mut()
            .and_then(|a| a.kick.take());
        kick.is_some_and(|kick| kick.send(reason).is_ok())
    }

    /// A connection lets go of its session. A session with expiry 0 ends
    /// now; others wait offline until they expire. Returns store ops.
    pub fn detach(self: &Arc<Self>, session: &Arc<Session>, conn_id: u64, ops: &mut Vec<Op>) {
        let (released, generation, expiry) = {
            let mut st = session.state.lock();
            let Some(a) = st.attachment.take_if(|a| a.conn_id == conn_id) else {
                return;
            };
            session.online.store(false, Ordering::Relaxed);
            st.disconnected_at_ms = Some(now_ms());
            (a.released, st.generation, st.expiry_interval)
        };
        if expiry == 0 {
            self.end_session(session, generation, ops);
        } else {
            ops.push(Op::PutSession {
                client_id: session.client_id.clone(),
                record: session.state.lock().record(),
            });
            self.schedule_expiry(session, generation, Duration::from_secs(u64::from(expiry)));
        }
        released.notify_waiters();
    }

    /// Ends a session if it is still at `generation` and offline.
    fn end_session(&self, session: &Arc<Session>, generation: u64, ops: &mut Vec<Op>) -> bool {
        {
            let st = session.state.lock();
            if st.generation != generation || st.attachment.is_some() {
                return false;
            }
        }
        let removed = self
            .sessions
            .remove_if(&session.client_id, |_, s| Arc::ptr_eq(s, session))
            .is_some();
        if removed {
            self.discard(session, ops);
        }
        removed
    }

    fn schedule_expiry(self: &Arc<Self>, session: &Arc<Session>, generation: u64, after: Duration) {
        if session.state.lock().expiry_interval == u32::MAX {
            return;
        }
        let hub = Arc::downgrade(self);
        let session = Arc::downgrade(session);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let (Some(hub), Some(session)) = (hub.upgrade(), session.upgrade()) else {
                return;
            };
            let mut ops = Vec::new();
            if hub.end_session(&session, generation, &mut ops) {
                hub.stats.sessions_expired.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(client_id = %session.client_id, "session expired");
                hub.persist(ops).await;
            }
        });
    }

    /// Writes ops without waiting for them (nobody is acknowledged on them).
    pub async fn persist(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        if let Err(e) = self.store.submit(ops).await {
            tracing::error!(error = %e, "cannot queue a store write");
        }
    }

    /// Holds `will` in the session and publishes it after `delay`, unless
    /// the session is resumed first (which drops it) or ends first (which
    /// publishes it, see `discard`).
    pub fn defer_will(
        self: &Arc<Self>,
        session: &Arc<Session>,
        will: Arc<Message>,
        delay: Duration,
    ) {
        let generation = {
            let mut st = session.state.lock();
            st.will = Some(will);
            st.generation
        };
        let hub = self.clone();
        let session = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let will = {
                let mut st = session.state.lock();
                if st.generation != generation {
                    return;
                }
                st.will.take()
            };
            if let Some(will) = will {
                let mut ops = Vec::new();
                hub.publish(will, &mut ops, &mut HashMap::new());
                hub.persist(ops).await;
            }
        });
    }

    /// Publishes every will still waiting for its delay. Called at
    /// shutdown: the delay timers do not outlive the process and wills are
    /// not stored, so waiting would lose them (see ARCHITECTURE.md, "Will").
    pub async fn publish_pending_wills(&self) {
        let sessions: Vec<Arc<Session>> = self.sessions.iter().map(|e| e.value().clone()).collect();
        let mut ops = Vec::new();
        for session in sessions {
            let will = session.state.lock().will.take();
            if let Some(will) = will {
                self.publish(will, &mut ops, &mut HashMap::new());
            }
        }
        self.persist(ops).await;
    }

    /// Retains and routes one message, queueing it for every subscriber.
    /// Pushes the store ops that make it durable for persistent sessions.
    pub fn publish(
        &self,
        message: Arc<Message>,
        ops: &mut Vec<Op>,
        scratch: &mut HashMap<Arc<str>, Delivery>,
    ) -> Routed {
        if message.retain {
            let mut retained = self.retained.write();
            if message.payload.is_empty() {
                if retained.remove(&message.topic).is_some() {
                    ops.push(Op::DeleteRetained {
                        topic: message.topic.clone(),
                    });
                }
            } else {
                retained.insert(&message.topic, message.clone());
                ops.push(Op::PutRetained {
                    topic: message.topic.clone(),
                    message: message.clone(),
                });
            }
        }
        {
            let online = |client: &str| self.sessions.get(client).is_some_and(|s| s.is_online());
            self.router
                .read()
                .route(&message.topic, &message.publisher, &online, scratch);
        }
        let mut routed = Routed {
            sessions: scratch.len(),
            backlogged: None,
        };
        for (client, delivery) in scratch.drain() {
            let Some(session) = self.sessions.get(&client).map(|s| s.value().clone()) else {
                continue;
            };
            let qos = message.qos.min(delivery.qos);
            let retain = message.retain && delivery.retain_as_published;
            let backlogged = self.enqueue(
                &session,
                &message,
                qos,
                retain,
                delivery.subscription_ids,
                ops,
            );
            if backlogged && qos != QoS::AtMostOnce && routed.backlogged.is_none() {
                routed.backlogged = Some(session);
            }
        }
        routed
    }

    /// Publishes a message of the broker's own (interceptor replies, the
    /// `Publisher` handle) like any other: every subscriber's connection
    /// checks `iot:Receive` before delivering it, as for every message.
    /// `None` if `topic` is not a valid topic name.
    pub fn publish_own(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        ops: &mut Vec<Op>,
        scratch: &mut HashMap<Arc<str>, Delivery>,
    ) -> Option<Routed> {
        if !crate::topic::valid_topic_name(topic) {
            return None;
        }
        let message = Message::from_broker(topic.into(), payload, qos, retain);
        Some(self.publish(Arc::new(message), ops, scratch))
    }

    /// Queues one message for one session and wakes its connection.
    /// Returns true if the session is connected and its queue is past the
    /// high-water mark: the publisher should slow down (see `Routed`).
    pub fn enqueue(
        &self,
        session: &Session,
        message: &Arc<Message>,
        qos: QoS,
        retain: bool,
        subscription_ids: Vec<u32>,
        ops: &mut Vec<Op>,
    ) -> bool {
        let mut st = session.state.lock();
        let persistent = st.persistent() && qos != QoS::AtMostOnce;
        let pushed = st
            .queue
            .push(message.clone(), qos, retain, subscription_ids);
        let seq = match pushed {
            Pushed::Queued(seq) => seq,
            Pushed::QueuedDroppingOldest { seq, dropped } => {
                self.dropped(
                    &session.client_id,
                    dropped.record.qos,
                    DropReason::QueueFull,
                );
                if st.persistent() && dropped.record.qos != QoS::AtMostOnce {
                    ops.push(Op::DeleteQueued {
                        client_id: session.client_id.clone(),
                        seq: dropped.seq,
                    });
                }
                seq
            }
            Pushed::Dropped => {
                let online = st.attachment.is_some();
                drop(st);
                self.dropped(&session.client_id, qos, DropReason::QueueFull);
                return online;
            }
        };
        if persistent {
            if let Some(entry) = st.queue.get(seq) {
                ops.push(Op::PutQueued {
                    client_id: session.client_id.clone(),
                    seq,
                    record: entry.record.clone(),
                });
            }
        }
        let online = st.attachment.is_some();
        let backlogged = online && st.queue.len() >= self.high_water();
        drop(st);
        if online {
            session.wake.notify_one();
        }
        backlogged
    }

    /// Queue length from which publishers to a connected session slow down:
    /// half the limit, but no more than a few windows' worth, since a longer
    /// backlog adds only latency, not throughput.
    pub fn high_water(&self) -> usize {
        let l = &self.settings.limits;
        (l.max_queued_messages / 2)
            .min(16 * usize::from(l.max_inflight))
            .max(1)
    }

    /// Queue length below which they go full speed again.
    pub fn low_water(&self) -> usize {
        self.high_water() / 2
    }

    pub fn dropped(&self, client_id: &str, qos: QoS, reason: DropReason) {
        self.stats.messages_dropped.fetch_add(1, Ordering::Relaxed);
        self.observer.message_dropped(client_id, qos, reason);
    }

    /// Adds or replaces a subscription; returns the retained messages to
    /// send for it (per its Retain Handling).
    pub fn subscribe(
        &self,
        session: &Session,
        filter: &str,
        subscription: Subscription,
        retained_out: &mut Vec<Arc<Message>>,
    ) {
        let is_new = self
            .router
            .write()
            .subscribe(&session.client_id, filter, subscription);
        session
            .state
            .lock()
            .subscriptions
            .insert(filter.to_owned(), subscription);
        let send_retained = match subscription.options.retain_handling {
            RetainHandling::OnSubscribe => true,
            RetainHandling::OnNewSubscribe => is_new,
            RetainHandling::Never => false,
        };
        // Retained messages are not sent for shared subscriptions (§4.8.2).
        if send_retained && !filter.starts_with("$share/") {
            self.retained.read().matching(filter, retained_out);
        }
    }

    /// Removes a subscription; true if it existed.
    pub fn unsubscribe(&self, session: &Session, filter: &str) -> bool {
        let existed = self.router.write().unsubscribe(&session.client_id, filter);
        session.state.lock().subscriptions.remove(filter);
        existed
    }

    /// Queues retained messages for a new subscription (retain flag set).
    pub fn send_retained(
        &self,
        session: &Session,
        options: SubscriptionOptions,
        identifier: Option<u32>,
        messages: Vec<Arc<Message>>,
        ops: &mut Vec<Op>,
    ) {
        let now = now_ms();
        for message in messages {
            if message.is_expired(now) {
                continue;
            }
            let qos = message.qos.min(options.qos);
            self.enqueue(
                session,
                &message,
                qos,
                true,
                identifier.into_iter().collect(),
                ops,
            );
        }
    }
}
