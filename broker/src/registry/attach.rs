//! Attachments: principals (certificate ARNs) to things, and policies to
//! targets (certificate ARNs or thing-group ARNs).
//!
//! AWS rules applied: both ends must exist (`ResourceNotFound`); attaching
//! twice is a no-op; detaching something not attached succeeds. Assumed
//! from the AWS IoT quotas: at most 10 policies per target
//! (`LimitExceeded`). Only certificate principals are supported (no
//! Cognito identities), and `thingPrincipalType` (EXCLUSIVE_THING) is not.

use super::state::{Link, Op, State};
use super::{names, Change, Page, PageRequest, Registry, RegistryError, Result};

/// AWS IoT quota: policies attached to one certificate or group.
pub const MAX_POLICIES_PER_TARGET: usize = 10;

impl Registry {
    /// The certificate id a principal ARN names, if it is registered.
    fn existing_cert<'a>(&self, s: &State, principal: &'a str) -> Result<&'a str> {
        let id = self.scope().cert_id_of(principal).ok_or_else(|| {
            RegistryError::invalid(format!(
                "principal {principal:?} is not a certificate ARN of this account and region"
            ))
        })?;
        if !s.certs.contains_key(id) {
            return Err(RegistryError::not_found("certificate", id));
        }
        Ok(id)
    }

    /// `AttachThingPrincipal`.
    pub fn attach_thing_principal(&self, thing: &str, principal: &str) -> Result<()> {
        names::thing_name(thing)?;
        self.write(|s, batch| {
            if !s.things.contains_key(thing) {
                return Err(RegistryError::not_found("thing", thing));
            }
            self.existing_cert(s, principal)?;
            if !s.thing_principals.contains(thing, principal) {
                batch.op(Op::Link(
                    Link::ThingPrincipal,
                    thing.to_owned(),
                    principal.to_owned(),
                ));
                batch.event(Change::ThingPrincipal {
                    thing: thing.to_owned(),
                    principal: principal.to_owned(),
                    attached: true,
                });
            }
            Ok(())
        })
    }

    /// `DetachThingPrincipal`.
    pub fn detach_thing_principal(&self, thing: &str, principal: &str) -> Result<()> {
        names::thing_name(thing)?;
        self.write(|s, batch| {
            if !s.things.contains_key(thing) {
                return Err(RegistryError::not_found("thing", thing));
            }
            if s.thing_principals.contains(thing, principal) {
                batch.op(Op::Unlink(
                    Link::ThingPrincipal,
                    thing.to_owned(),
                    principal.to_owned(),
                ));
                batch.event(Change::ThingPrincipal {
                    thing: thing.to_owned(),
                    principal: principal.to_owned(),
                    attached: false,
                });
            }
            Ok(())
        })
    }

    /// `ListThingPrincipals`, ordered by principal ARN.
    pub fn list_thing_principals(&self, thing: &str, page: &PageRequest) -> Result<Page<String>> {
        self.read(|s| {
            if !s.things.contains_key(thing) {
                return Err(RegistryError::not_found("thing", thing));
            }
            super::page::paginate(
                s.thing_principals.of(thing).map(str::to_owned),
                String::clone,
                page,
            )
        })
    }

    /// `ListPrincipalThings`, ordered by thing name.
    pub fn list_principal_things(
        &self,
        principal: &str,
        page: &PageRequest,
    ) -> Result<Page<String>> {
        self.read(|s| {
            self.existing_cert(s, principal)?;
            super::page::paginate(
                s.thing_principals.to(principal).map(str::to_owned),
                String::clone,
                page,
            )
        })
    }

    /// Whether `thing` has the certificate `cert_id` attached (the policy
    /// `iot:Connection.Thing.IsAttached` condition).
    pub fn is_attached(&self, thing: &str, cert_id: &str) -> bool {
        let arn = self.scope().cert_arn(cert_id);
        self.read(|s| s.thing_principals.contains(thing, &arn))
    }

    fn check_target(&self, s: &State, target: &str) -> Result<()> {
        if self.scope().cert_id_of(target).is_some() {
            self.existing_cert(s, target)?;
            return Ok(());
        }
        if let Some(group) = self.scope().group_name_of(target) {
            if !s.groups.contains_key(group) {
                return Err(RegistryError::not_found("thing group", group));
            }
            return Ok(());
        }
        Err(RegistryError::invalid(format!(
            "policy target {target:?} is neither a certificate ARN nor a thing-group ARN of this account and region"
        )))
    }

    /// `AttachPolicy`.
    pub fn attach_policy(&self, policy: &str, target: &str) -> Result<()> {
        names::policy_name(policy)?;
        self.write(|s, batch| {
            if !s.policies.contains_key(policy) {
                return Err(RegistryError::not_found("policy", policy));
            }
            self.check_target(s, target)?;
            if s.policy_targets.contains(policy, target) {
                return Ok(());
            }
            if s.policy_targets.to(target).count() >= MAX_POLICIES_PER_TARGET {
                return Err(RegistryError::LimitExceeded(format!(
                    "{target} already has {MAX_POLICIES_PER_TARGET} policies attached"
                )));
            }
            batch.op(Op::Link(
                Link::PolicyTarget,
                policy.to_owned(),
                target.to_owned(),
            ));
            batch.event(Change::PolicyAttachment {
                policy: policy.to_owned(),
                target: target.to_owned(),
                attached: true,
            });
            Ok(())
        })
    }

    /// `DetachPolicy`.
    pub fn detach_policy(&self, policy: &str, target: &str) -> Result<()> {
        names::policy_name(policy)?;
        self.write(|s, batch| {
            if !s.policies.contains_key(policy) {
                return Err(RegistryError::not_found("policy", policy));
            }
            if s.policy_targets.contains(policy, target) {
                batch.op(Op::Unlink(
                    Link::PolicyTarget,
                    policy.to_owned(),
                    target.to_owned(),
                ));
                batch.event(Change::PolicyAttachment {
                    policy: policy.to_owned(),
                    target: target.to_owned(),
                    attached: false,
                });
            }
            Ok(())
        })
    }

    /// `ListAttachedPolicies` for a target ARN, ordered by policy name.
    pub fn list_attached_policies(&self, target: &str, page: &PageRequest) -> Result<Page<String>> {
        self.read(|s| {
            self.check_target(s, target)?;
            super::page::paginate(
                s.policy_targets.to(target).map(str::to_owned),
                String::clone,
                page,
            )
        })
    }

    /// `ListTargetsForPolicy`, ordered by target ARN.
    pub fn list_targets_for_policy(
        &self,
        policy: &str,
        page: &PageRequest,
    ) -> Result<Page<String>> {
        self.read(|s| {
            if !s.policies.contains_key(policy) {
                return Err(RegistryError::not_found("policy", policy));
            }
            super::page::paginate(
                s.policy_targets.of(policy).map(str::to_owned),
                String::clone,
                page,
            )
        })
    }
}
