//! What the broker sends: queued messages within the window, with
//! topic aliases, expiry, size and `iot:Receive` checks.

use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
    /// Writes what the session's queue allows into the write buffer.
    pub(super) fn send_queued(&mut self) {
        {
            let mut st = self.session.state.lock();
            // A connection whose session was taken from it sends nothing
            // more from the session's queue.
            if st.attachment.as_ref().map(|a| a.conn_id) != Some(self.conn_id) {
                return;
            }
            st.queue.next_to_send(self.window, &mut self.to_send);
        }
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
            if !self.allowed(Action::Receive, Resource::topic(r.message.topic.clone())) {
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
                Ok(_) => {
                    self.counters.publish_out(r.message.payload.len());
                    if let Some(t) = &self.topic_counters {
                        t.publish_out(&r.message.topic);
                    }
                }
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
    pub(super) fn apply_outbound_alias(&mut self, publish: &mut Publish, topic: &Arc<str>) {
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
}
