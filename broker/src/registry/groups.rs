//! Static thing groups: the hierarchy and membership.
//!
//! AWS rules applied: names `[a-zA-Z0-9:_-]+` (1..=128); the parent is set
//! at creation and never changes; a hierarchy is at most 7 levels deep;
//! CreateThingGroup is idempotent for the same configuration; version
//! starts at 1, increments on update, `expectedVersion` mismatch is
//! `VersionConflict`; DeleteThingGroup of a missing group succeeds and is
//! refused while the group has child groups (`InvalidRequest`); deleting
//! a group drops its memberships and the policies attached to it. A thing
//! is in at most 10 groups, and never in two groups of one hierarchy
//! (AWS: "you cannot add a thing to more than one group in the same
//! hierarchy"), both `InvalidRequest` as AddThingToThingGroup has no
//! LimitExceeded error.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::state::{Link, Op, State};
use super::things::{check_attributes, merge_attributes, AttributePayload};
use super::{names, now, random_uuid, Change, Page, PageRequest, Registry, RegistryError, Result};

/// Maximum depth of a thing-group hierarchy (a root is depth 1).
pub const MAX_DEPTH: usize = 7;
/// Maximum number of groups one thing can belong to.
pub const MAX_GROUPS_PER_THING: usize = 10;

/// A thing group (`DescribeThingGroupResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThingGroup {
    pub name: String,
    pub id: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub version: u64,
    pub creation_date: f64,
}

/// `ThingGroupProperties`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingGroupProperties {
    pub description: Option<String>,
    pub attribute_payload: Option<AttributePayload>,
}

fn check_properties(p: &ThingGroupProperties) -> Result<()> {
    if let Some(d) = &p.description {
        names::description(d)?;
    }
    if let Some(a) = &p.attribute_payload {
        check_attributes(&a.attributes)?;
    }
    Ok(())
}

fn root_of<'a>(s: &'a State, group: &str) -> Option<&'a str> {
    s.group_chain(group).last().map(|g| g.name.as_str())
}

impl Registry {
    /// `CreateThingGroup`.
    pub fn create_thing_group(
        &self,
        name: &str,
        parent: Option<&str>,
        properties: ThingGroupProperties,
    ) -> Result<ThingGroup> {
        names::group_name(name)?;
        if let Some(p) = parent {
            names::group_name(p)?;
        }
        check_properties(&properties)?;
        let attributes = properties
            .attribute_payload
            .map(|p| p.attributes)
            .unwrap_or_default();
        self.write(|s, batch| {
            if let Some(existing) = s.groups.get(name) {
                if existing.parent.as_deref() == parent
                    && existing.description == properties.description
                    && existing.attributes == attributes
                {
                    return Ok(existing.clone());
                }
                return Err(RegistryError::ResourceAlreadyExists {
                    kind: "thing group",
                    id: name.to_owned(),
                    arn: self.scope().group_arn(name),
                });
            }
            if let Some(p) = parent {
                if !s.groups.contains_key(p) {
                    return Err(RegistryError::not_found("thing group", p));
                }
                if s.group_chain(p).len() >= MAX_DEPTH {
                    return Err(RegistryError::invalid(format!(
                        "thing group {name} under {p} would be deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            let group = ThingGroup {
                name: name.to_owned(),
                id: random_uuid(),
                parent: parent.map(str::to_owned),
                description: properties.description,
                attributes,
                version: 1,
                creation_date: now(),
            };
            batch.op(Op::PutGroup(group.clone()));
            batch.event(Change::GroupChanged {
                group: name.to_owned(),
            });
            Ok(group)
        })
    }

    /// `DescribeThingGroup`.
    pub fn thing_group(&self, name: &str) -> Option<ThingGroup> {
        self.read(|s| s.groups.get(name).cloned())
    }

    /// The group's ancestors, root first (`rootToParentThingGroups`).
    pub fn thing_group_ancestors(&self, name: &str) -> Vec<String> {
        self.read(|s| {
            let mut chain: Vec<String> = s
                .group_chain(name)
                .iter()
                .skip(1)
                .map(|g| g.name.clone())
                .collect();
            chain.reverse();
            chain
        })
    }

    /// `UpdateThingGroup`; returns the new version.
    pub fn update_thing_group(
        &self,
        name: &str,
        properties: ThingGroupProperties,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        names::group_name(name)?;
        check_properties(&properties)?;
        self.write(|s, batch| {
            let current = s
                .groups
                .get(name)
                .ok_or_else(|| RegistryError::not_found("thing group", name))?;
            if let Some(e) = expected_version.filter(|e| *e != current.version) {
                return Err(RegistryError::VersionConflict {
                    kind: "thing group",
                    id: name.to_owned(),
                    expected: e,
                    actual: current.version,
                });
            }
            let mut g = current.clone();
            if let Some(d) = properties.description {
                g.description = Some(d);
            }
            if let Some(p) = &properties.attribute_payload {
                g.attributes = merge_attributes(&g.attributes, p);
            }
            g.version += 1;
            let version = g.version;
            batch.op(Op::PutGroup(g));
            batch.event(Change::GroupChanged {
                group: name.to_owned(),
            });
            Ok(version)
        })
    }

    /// `DeleteThingGroup`.
    pub fn delete_thing_group(&self, name: &str, expected_version: Option<u64>) -> Result<()> {
        names::group_name(name)?;
        let arn = self.scope().group_arn(name);
        self.write(|s, batch| {
            let Some(current) = s.groups.get(name) else {
                return Ok(());
            };
            if let Some(e) = expected_version.filter(|e| *e != current.version) {
                return Err(RegistryError::VersionConflict {
                    kind: "thing group",
                    id: name.to_owned(),
                    expected: e,
                    actual: current.version,
                });
            }
            let children: Vec<&str> = s
                .groups
                .values()
                .filter(|g| g.parent.as_deref() == Some(name))
                .map(|g| g.name.as_str())
                .collect();
            if !children.is_empty() {
                return Err(RegistryError::invalid(format!(
                    "thing group {name} still has child groups ({}); delete them first",
                    children.join(", ")
                )));
            }
            for thing in s.group_things.of(name) {
                batch.op(Op::Unlink(
                    Link::GroupThing,
                    name.to_owned(),
                    thing.to_owned(),
                ));
                batch.event(Change::MembershipChanged {
                    thing: thing.to_owned(),
                });
            }
            for policy in s.policy_targets.to(&arn) {
                batch.op(Op::Unlink(
                    Link::PolicyTarget,
                    policy.to_owned(),
                    arn.clone(),
                ));
                batch.event(Change::PolicyAttachment {
                    policy: policy.to_owned(),
                    target: arn.clone(),
                    attached: false,
                });
            }
            batch.op(Op::DeleteGroup(name.to_owned()));
            batch.event(Change::GroupChanged {
                group: name.to_owned(),
            });
            Ok(())
        })
    }

    /// `ListThingGroups`, ordered by name: all groups, or the children of
    /// `parent` (all descendants when `recursive`), filtered by prefix.
    pub fn list_thing_groups(
        &self,
        parent: Option<&str>,
        name_prefix: Option<&str>,
        recursive: bool,
        page: &PageRequest,
    ) -> Result<Page<ThingGroup>> {
        self.read(|s| {
            if let Some(p) = parent {
                if !s.groups.contains_key(p) {
                    return Err(RegistryError::not_found("thing group", p));
                }
            }
            let groups = s.groups.values().filter(|g| {
                let parent_ok = match parent {
                    None => true,
                    Some(p) if recursive => {
                        s.group_chain(&g.name).iter().skip(1).any(|a| a.name == p)
                    }
                    Some(p) => g.parent.as_deref() == Some(p),
                };
                parent_ok && name_prefix.is_none_or(|pre| g.name.starts_with(pre))
            });
            super::page::paginate(groups.cloned(), |g| g.name.clone(), page)
        })
    }

    /// `AddThingToThingGroup`.
    pub fn add_thing_to_thing_group(&self, group: &str, thing: &str) -> Result<()> {
        names::group_name(group)?;
        names::thing_name(thing)?;
        self.write(|s, batch| {
            if !s.groups.contains_key(group) {
                return Err(RegistryError::not_found("thing group", group));
            }
            if !s.things.contains_key(thing) {
                return Err(RegistryError::not_found("thing", thing));
            }
            if s.group_things.contains(group, thing) {
                return Ok(());
            }
            let current: Vec<&str> = s.group_things.to(thing).collect();
            if current.len() >= MAX_GROUPS_PER_THING {
                return Err(RegistryError::invalid(format!(
                    "thing {thing} is already in {MAX_GROUPS_PER_THING} thing groups, the maximum"
                )));
            }
            let root = root_of(s, group);
            if let Some(other) = current.iter().find(|g| root_of(s, g) == root) {
                return Err(RegistryError::invalid(format!(
                    "thing {thing} is already in thing group {other} of the same hierarchy as {group}"
                )));
            }
            batch.op(Op::Link(Link::GroupThing, group.to_owned(), thing.to_owned()));
            batch.event(Change::MembershipChanged { thing: thing.to_owned() });
            Ok(())
        })
    }

    /// `RemoveThingFromThingGroup` (a non-member is not an error).
    pub fn remove_thing_from_thing_group(&self, group: &str, thing: &str) -> Result<()> {
        names::group_name(group)?;
        names::thing_name(thing)?;
        self.write(|s, batch| {
            if !s.groups.contains_key(group) {
                return Err(RegistryError::not_found("thing group", group));
            }
            if !s.things.contains_key(thing) {
                return Err(RegistryError::not_found("thing", thing));
            }
            if s.group_things.contains(group, thing) {
                batch.op(Op::Unlink(
                    Link::GroupThing,
                    group.to_owned(),
                    thing.to_owned(),
                ));
                batch.event(Change::MembershipChanged {
                    thing: thing.to_owned(),
                });
            }
            Ok(())
        })
    }

    /// `ListThingsInThingGroup`, ordered by thing name; `recursive` adds
    /// the things of every descendant group (each thing once).
    pub fn list_things_in_thing_group(
        &self,
        group: &str,
        recursive: bool,
        page: &PageRequest,
    ) -> Result<Page<String>> {
        self.read(|s| {
            if !s.groups.contains_key(group) {
                return Err(RegistryError::not_found("thing group", group));
            }
            let mut things: BTreeSet<&str> = s.group_things.of(group).collect();
            if recursive {
                for g in s.groups.values() {
                    if s.group_chain(&g.name)
                        .iter()
                        .skip(1)
                        .any(|a| a.name == group)
                    {
                        things.extend(s.group_things.of(&g.name));
                    }
                }
            }
            super::page::paginate(things.into_iter().map(str::to_owned), String::clone, page)
        })
    }

    /// `ListThingGroupsForThing`: the groups the thing is directly in,
    /// ordered by name.
    pub fn list_thing_groups_for_thing(
        &self,
        thing: &str,
        page: &PageRequest,
    ) -> Result<Page<String>> {
        self.read(|s| {
            if !s.things.contains_key(thing) {
                return Err(RegistryError::not_found("thing", thing));
            }
            super::page::paginate(
                s.group_things.to(thing).map(str::to_owned),
                String::clone,
                page,
            )
        })
    }

    /// Every group the thing is in, with all their ancestors, each once,
    /// nearest first (for authorization and thing-group log levels).
    pub fn thing_groups_with_ancestors(&self, thing: &str) -> Vec<String> {
        self.read(|s| {
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for g in s.group_things.to(thing) {
                for a in s.group_chain(g) {
                    if seen.insert(a.name.as_str()) {
                        out.push(a.name.clone());
                    }
                }
            }
            out
        })
    }
}
