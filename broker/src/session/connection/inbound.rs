//! What the client sends after CONNECT: publishes, acknowledgements,
//! subscriptions, DISCONNECT.

use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
    pub(super) async fn on_publish(&mut self, p: Publish) -> Option<Exit> {
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
        if let Some(t) = &self.topic_counters {
            t.publish_in(&topic, p.payload.len());
        }
        if !limits.topic_fits(&topic) {
            // v5 QoS 1/2 can be told and go on; QoS 0 and 3.1.1 cannot.
            if self.v5() && p.qos != QoS::AtMostOnce {
                let mut a = Ack::new(p.pkid);
                a.reason = reason::TOPIC_NAME_INVALID;
                let a = match p.qos {
                    QoS::ExactlyOnce => Packet::PubRec(a),
                    _ => Packet::PubAck(a),
                };
                return self.ack_in_order(a, None).await;
            }
            return Some(self.violation(
                reason::TOPIC_NAME_INVALID,
                "topic longer or deeper than the limits",
            ));
        }
        if let Some(level) = self.access.device_log() {
            let detail = format!("topic={topic} bytes={} qos={:?}", p.payload.len(), p.qos);
            device_event(
                level,
                &self.client_id,
                self.access.thing_name(),
                "publish",
                &detail,
            );
        }

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
            return self.answer(ack(reason::SUCCESS)).await;
        }

        if p.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(&p.payload).is_err()
        {
            return self
                .answer(ack(self.refusal(reason::PAYLOAD_FORMAT_INVALID)))
                .await;
        }

        let may_publish = self.allowed(Action::Publish, Resource::topic(topic.clone()))
            && (!p.retain || self.allowed(Action::RetainPublish, Resource::topic(topic.clone())));
        if !may_publish {
            return self.answer(ack(self.refusal(reason::NOT_AUTHORIZED))).await;
        }

        // Replacing or clearing a retained message is always allowed; a new
        // one past the cap is refused whole rather than routed unretained,
        // so the publisher is not told "quota" for a message others got.
        // (Checked before routing: concurrent publishers may overshoot by
        // a message each.)
        if p.retain && !p.payload.is_empty() && {
            let retained = self.hub.retained.read();
            retained.len() >= self.hub.settings.limits.max_retained_messages
                && !retained.contains(&topic)
        } {
            tracing::warn!(client_id = %self.client_id, %topic, "retained message limit reached; publish refused");
            return self.answer(ack(self.refusal(reason::QUOTA_EXCEEDED))).await;
        }

        // The only cost for topics outside the prefix: one `starts_with`.
        let consumed = match &self.hub.interceptor {
            Some(hook) if topic.starts_with(&*hook.prefix) => {
                match hook
                    .interceptor
                    .intercept(&self.client_id, &topic, &p.payload)
                {
                    Intercepted::Route => None,
                    Intercepted::Consume(replies) => Some(replies),
                }
            }
            _ => None,
        };

        let mut ops = Vec::new();
        let code = match consumed {
            Some(replies) => {
                self.publish_replies(replies, &mut ops);
                // Handled by the broker: success, whoever else listens.
                reason::SUCCESS
            }
            None => {
                let message = Arc::new(Message::from_publish(&p, topic, self.client_id.clone()));
                let started = Instant::now();
                let routed = self.hub.publish(message, &mut ops, &mut self.scratch);
                self.counters.route_latency.record(started.elapsed());
                if p.qos != QoS::AtMostOnce && self.paused.is_none() {
                    if let Some(session) = routed.backlogged {
                        self.paused = Some((session, Instant::now() + FLOW_CONTROL_MAX_PAUSE));
                    }
                }
                if routed.sessions == 0 && self.v5() {
                    reason::NO_MATCHING_SUBSCRIBERS
                } else {
                    reason::SUCCESS
                }
            }
        };
        // Consumed or routed, a QoS 2 publish completes the usual way.
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

    /// Sends `ack` (if the QoS has one) for a publish that changes nothing
    /// in the store: a retransmission or a refusal.
    async fn answer(&mut self, ack: Option<Packet>) -> Option<Exit> {
        match ack {
            Some(a) => self.ack_in_order(a, None).await,
            None => None,
        }
    }

    /// A publish refusal's reason code. 3.1.1 cannot say no: the publish
    /// is acknowledged and dropped, as Mosquitto does.
    fn refusal(&self, code: u8) -> u8 {
        if self.v5() {
            code
        } else {
            reason::SUCCESS
        }
    }

    /// Publishes an interceptor's replies as the broker: QoS 0, not
    /// retained, so they add no store ops and never pause this publisher.
    fn publish_replies(&mut self, replies: Vec<Reply>, ops: &mut Vec<Op>) {
        for r in replies {
            let routed = self.hub.publish_own(
                &r.topic,
                r.payload.into(),
                QoS::AtMostOnce,
                false,
                ops,
                &mut self.scratch,
            );
            if routed.is_none() {
                tracing::warn!(client_id = %self.client_id, topic = %r.topic, "interceptor reply has an invalid topic; dropped");
            }
        }
    }

    /// PUBACK or PUBCOMP: the outgoing message is done.
    pub(super) async fn complete(&mut self, pkid: u16, qos: QoS) {
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

    pub(super) async fn on_pubrec(&mut self, a: Ack) -> Option<Exit> {
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

    pub(super) async fn on_subscribe(&mut self, s: Subscribe) -> Option<Exit> {
        let identifier = s.properties.subscription_identifiers.first().copied();
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        let mut to_send = Vec::new();
        for (filter, options) in &s.filters {
            if let Some(level) = self.access.device_log() {
                device_event(
                    level,
                    &self.client_id,
                    self.access.thing_name(),
                    "subscribe",
                    filter,
                );
            }
            let limits = &self.hub.settings.limits;
            // 3.1.1 has one failure code for everything.
            let refuse = |code: u8| if self.v5() { code } else { 0x80 };
            if !limits.topic_fits(filter) {
                reasons.push(refuse(reason::TOPIC_FILTER_INVALID));
                continue;
            }
            let quota_full = {
                let st = self.session.state.lock();
                st.subscriptions.len() >= limits.max_subscriptions_per_client
                    && !st.subscriptions.contains_key(filter.as_str())
            };
            if quota_full {
                reasons.push(refuse(reason::QUOTA_EXCEEDED));
                continue;
            }
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

    pub(super) async fn on_unsubscribe(&mut self, u: Unsubscribe) -> Option<Exit> {
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
    pub(super) async fn persist_session_now(&mut self) -> Option<Exit> {
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

    pub(super) fn on_disconnect(&mut self, d: Disconnect) -> Exit {
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
}
