//! What one connection may do: who it is, the policies in force for it,
//! and the decisions made so far. Reloaded whenever the registry reports a
//! change that can affect authorization, so a new default policy version, a
//! group move or a deactivated certificate takes effect on live connections.

use std::sync::Arc;

use crate::authz::{evaluate, Action, Context, Decision, DecisionCache, Policy, Request, Resource};
use crate::hub::Hub;
use crate::registry::LogLevel;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A plain-TCP client: the configured anonymous policies apply, and it
    /// is an unregistered thing for the defender.
    Anonymous,
    /// A client certificate verified in the TLS handshake.
    Certificate {
        /// Lowercase SHA-256 hex of the certificate's DER.
        id: String,
        common_name: Option<String>,
        /// The registered CA it chained to, and its serial (hex), so a new
        /// CRL from that CA can cut the live connection.
        issuing_ca: Option<(String, Vec<u8>)>,
    },
}

/// The certificate (or its CA) is not ACTIVE, or is unknown: the
/// connection may not (or may no longer) be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotActive;

/// Never served in practice (see `check`); a safe answer if it were.
static DENIED: Decision = Decision {
    allowed: false,
    reason: String::new(),
};

pub(crate) struct Access {
    principal: Principal,
    ctx: Context,
    policies: Vec<Arc<Policy>>,
    cache: DecisionCache,
    /// The registry change number the policies were loaded at.
    generation: u64,
    /// The v2 log level a target sets for this device (client ID,
    /// certificate or thing group), if any: its activity is then logged
    /// at that level (`device_log`).
    log_level: Option<LogLevel>,
}

impl Access {
    /// Loads the principal's policies and thing for `client_id`.
    pub fn load(hub: &Hub, principal: Principal, client_id: &str) -> Result<Access, NotActive> {
        let mut access = Access {
            principal,
            ctx: Context::new(client_id),
            policies: Vec::new(),
            cache: DecisionCache::default(),
            generation: 0,
            log_level: None,
        };
        access.reload(hub)?;
        Ok(access)
    }

    /// Re-reads everything from the registry (after a change).
    pub fn reload(&mut self, hub: &Hub) -> Result<(), NotActive> {
        let Principal::Certificate {
            id, common_name, ..
        } = &self.principal
        else {
            self.policies = hub.anonymous_policies.clone();
            self.log_level = hub
                .registry
                .as_ref()
                .and_then(|r| r.device_log_level(&self.ctx.client_id, None, None));
            return Ok(());
        };
        let Some(registry) = &hub.registry else {
            return Err(NotActive);
        };
        self.generation = *registry.changes().borrow();
        if !registry.certificate_usable(id) {
            return Err(NotActive);
        }
        // AWS IoT's convention: the thing is the one named by the client ID,
        // and it counts only if attached to this certificate.
        let client_id = self.ctx.client_id.clone();
        let attached = registry.is_attached(&client_id, id);
        let thing = attached.then(|| registry.thing(&client_id)).flatten();
        self.ctx = Context {
            client_id,
            thing_name: thing.as_ref().map(|t| t.name.clone()),
            thing_type_name: thing.as_ref().and_then(|t| t.thing_type_name.clone()),
            thing_attributes: thing.map(|t| t.attributes).unwrap_or_default(),
            certificate_common_name: common_name.clone(),
            is_attached: attached,
        };
        self.log_level = registry.device_log_level(
            &self.ctx.client_id,
            Some(id),
            self.ctx.thing_name.as_deref(),
        );
        self.policies = registry
            .effective_policies(id, self.ctx.thing_name.as_deref())
            .into_iter()
            .filter_map(|(name, document)| hub.parsed_policy(&name, &document))
            .collect();
        Ok(())
    }

    /// The level to log this device's activity at; `None` when no target
    /// names it (nothing is logged per device) or it is DISABLED.
    pub fn device_log(&self) -> Option<LogLevel> {
        self.log_level.filter(|l| *l != LogLevel::Disabled)
    }

    /// The thing this connection acts as, if attached.
    pub fn thing_name(&self) -> Option<&str> {
        self.ctx.thing_name.as_deref()
    }

    /// Decides `action` on `resource`, from the cache when it can.
    pub fn check(&mut self, hub: &Hub, action: Action, resource: &Resource) -> &Decision {
        let generation = self.generation;
        if self.cache.get(generation, action, resource).is_none() {
            let request = Request::new(action, resource.clone());
            let decision = evaluate(&self.policies, &hub.settings.scope, &self.ctx, &request);
            self.cache
                .insert(generation, action, request.resource, decision);
        }
        // Just inserted if it was missing; the capacity is at least one.
        self.cache
            .get(generation, action, resource)
            .unwrap_or(&DENIED)
    }
}
