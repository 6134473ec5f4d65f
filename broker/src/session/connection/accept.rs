//! CONNECT: client ID, authorization, session attach, CONNACK.

use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
    /// Validates CONNECT, attaches the session and sends CONNACK.
    pub(super) async fn accept(
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
        let certificate_id = match &principal {
            Principal::Certificate { id, .. } => Some(id.clone()),
            Principal::Anonymous => None,
        };
        let mut access = match Access::load(&hub, principal, &client_id) {
            Ok(access) => access,
            Err(NotActive) => {
                tracing::info!(client_id = %client_id, %peer, "connection refused: certificate not active");
                let arn = Resource::client(client_id.clone()).arn(&hub.settings.scope);
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
            Resource::client(client_id.clone()),
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
        // A clean session changes nothing durable: no store round trip.
        let durable = if ops.is_empty() {
            Ok(())
        } else {
            match hub.store.submit(ops).await {
                Ok(commit) => commit.wait().await,
                Err(e) => Err(e),
            }
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
        let topic_counters = hub
            .observer
            .connected(&client_id, peer, protocol, &counters);
        hub.observer
            .device_connected(&client_id, certificate_id.as_deref(), peer);
        tracing::debug!(client_id = %client_id, %peer, ?protocol, "connected");
        if let Some(level) = access.device_log() {
            device_event(
                level,
                &client_id,
                access.thing_name(),
                "connect",
                &peer.to_string(),
            );
        }
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
            topic_counters,
            keep_alive: Duration::from_secs(u64::from(keep_alive)),
            will: connect.will,
            inbound_aliases: HashMap::new(),
            outbound_aliases: HashMap::new(),
            acks: FuturesOrdered::new(),
            pending_qos1: 0,
            scratch: HashMap::new(),
            paused: None,
            to_send: Vec::new(),
        })
    }
}
