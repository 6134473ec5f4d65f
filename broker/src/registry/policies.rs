//! IoT policies and their versions.
//!
//! AWS rules applied: CreatePolicy makes version "1" the default; version
//! ids count up and are never reused; at most 5 versions
//! (`VersionsLimitExceeded`); the default version cannot be deleted with
//! DeletePolicyVersion (`DeleteConflict`); DeletePolicy is refused while
//! the policy is attached or has non-default versions (`DeleteConflict`).
//! The document must have 1..=2048 non-whitespace characters
//! (`MalformedPolicy`); what it says is checked by the caller (the authz
//! module parses it) before it gets here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::Op;
use super::{names, now, random_hex, Change, Page, PageRequest, Registry, RegistryError, Result};

/// AWS: "A managed policy can have up to five versions."
pub const MAX_POLICY_VERSIONS: usize = 5;
/// AWS: "maximum length of 2048, excluding whitespace".
pub const MAX_DOCUMENT_CHARS: usize = 2048;

/// One stored version of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub document: String,
    pub create_date: f64,
}

/// A policy with all its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub default_version_id: u64,
    pub versions: BTreeMap<u64, PolicyVersion>,
    /// The id the next version gets (ids are never reused).
    pub next_version_id: u64,
    pub creation_date: f64,
    pub last_modified_date: f64,
    pub generation_id: String,
}

impl Policy {
    /// The document of the default (operative) version.
    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .get(&self.default_version_id)
            .map(|v| v.document.as_str())
    }
}

fn check_document(doc: &str) -> Result<()> {
    let chars = doc.chars().filter(|c| !c.is_whitespace()).count();
    if chars == 0 || chars > MAX_DOCUMENT_CHARS {
        return Err(RegistryError::MalformedPolicy(format!(
            "the policy document must have 1 to {MAX_DOCUMENT_CHARS} characters excluding whitespace, got {chars}"
        )));
    }
    Ok(())
}

fn version_id(id: &str) -> Result<u64> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RegistryError::invalid(format!(
            "policy version id {id:?} must be digits"
        )));
    }
    id.parse()
        .map_err(|_| RegistryError::invalid(format!("policy version id {id:?} is out of range")))
}

fn touch(p: &mut Policy) {
    p.last_modified_date = now();
    p.generation_id = random_hex(16);
}

impl Registry {
    /// `CreatePolicy`.
    pub fn create_policy(&self, name: &str, document: &str) -> Result<Policy> {
        names::policy_name(name)?;
        check_document(document)?;
        self.write(|s, batch| {
            if s.policies.contains_key(name) {
                return Err(RegistryError::ResourceAlreadyExists {
                    kind: "policy",
                    id: name.to_owned(),
                    arn: self.scope().policy_arn(name),
                });
            }
            let t = now();
            let policy = Policy {
                name: name.to_owned(),
                default_version_id: 1,
                versions: BTreeMap::from([(
                    1,
                    PolicyVersion {
                        document: document.to_owned(),
                        create_date: t,
                    },
                )]),
                next_version_id: 2,
                creation_date: t,
                last_modified_date: t,
                generation_id: random_hex(16),
            };
            batch.op(Op::PutPolicy(policy.clone()));
            batch.event(Change::PolicyChanged {
                name: name.to_owned(),
            });
            Ok(policy)
        })
    }

    /// `GetPolicy` (and `GetPolicyVersion` via [`Policy::versions`]).
    pub fn policy(&self, name: &str) -> Option<Policy> {
        self.read(|s| s.policies.get(name).cloned())
    }

    /// `ListPolicies`, ordered by name.
    pub fn list_policies(&self, page: &PageRequest) -> Result<Page<Policy>> {
        self.read(|s| super::page::paginate(s.policies.values().cloned(), |p| p.name.clone(), page))
    }

    /// `CreatePolicyVersion`; returns the new version id.
    pub fn create_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<u64> {
        names::policy_name(name)?;
        check_document(document)?;
        self.write(|s, batch| {
            let current = s
                .policies
                .get(name)
                .ok_or_else(|| RegistryError::not_found("policy", name))?;
            if current.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(RegistryError::VersionsLimitExceeded(name.to_owned()));
            }
            let mut p = current.clone();
            let id = p.next_version_id;
            p.next_version_id += 1;
            p.versions.insert(
                id,
                PolicyVersion {
                    document: document.to_owned(),
                    create_date: now(),
                },
            );
            if set_as_default {
                p.default_version_id = id;
                batch.event(Change::PolicyChanged {
                    name: name.to_owned(),
                });
            }
            touch(&mut p);
            batch.op(Op::PutPolicy(p));
            Ok(id)
        })
    }

    /// `SetDefaultPolicyVersion`.
    pub fn set_default_policy_version(&self, name: &str, version: &str) -> Result<()> {
        names::policy_name(name)?;
        let id = version_id(version)?;
        self.write(|s, batch| {
            let current = s
                .policies
                .get(name)
                .ok_or_else(|| RegistryError::not_found("policy", name))?;
            if !current.versions.contains_key(&id) {
                return Err(RegistryError::not_found(
                    "policy version",
                    format!("{name} version {id}"),
                ));
            }
            if current.default_version_id == id {
                return Ok(());
            }
            let mut p = current.clone();
            p.default_version_id = id;
            touch(&mut p);
            batch.op(Op::PutPolicy(p));
            batch.event(Change::PolicyChanged {
                name: name.to_owned(),
            });
            Ok(())
        })
    }

    /// `DeletePolicyVersion`.
    pub fn delete_policy_version(&self, name: &str, version: &str) -> Result<()> {
        names::policy_name(name)?;
        let id = version_id(version)?;
        self.write(|s, batch| {
            let current = s.policies.get(name).ok_or_else(|| RegistryError::not_found("policy", name))?;
            if !current.versions.contains_key(&id) {
                return Err(RegistryError::not_found("policy version", format!("{name} version {id}")));
            }
            if current.default_version_id == id {
                return Err(RegistryError::DeleteConflict(format!(
                    "version {id} is the default version of policy {name}; use DeletePolicy to delete it"
                )));
            }
            let mut p = current.clone();
            p.versions.remove(&id);
            touch(&mut p);
            batch.op(Op::PutPolicy(p));
            Ok(())
        })
    }

    /// `DeletePolicy`.
    pub fn delete_policy(&self, name: &str) -> Result<()> {
        names::policy_name(name)?;
        self.write(|s, batch| {
            let current = s
                .policies
                .get(name)
                .ok_or_else(|| RegistryError::not_found("policy", name))?;
            let targets: Vec<&str> = s.policy_targets.of(name).collect();
            if !targets.is_empty() {
                return Err(RegistryError::DeleteConflict(format!(
                    "policy {name} is attached to {}; detach it first",
                    targets.join(", ")
                )));
            }
            if current.versions.len() > 1 {
                return Err(RegistryError::DeleteConflict(format!(
                    "policy {name} has {} non-default version(s); delete them first",
                    current.versions.len() - 1
                )));
            }
            batch.op(Op::DeletePolicy(name.to_owned()));
            batch.event(Change::PolicyChanged {
                name: name.to_owned(),
            });
            Ok(())
        })
    }
}
