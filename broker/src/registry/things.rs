//! Things: create, describe, update (with optimistic versioning), delete,
//! list.
//!
//! AWS rules applied: names `[a-zA-Z0-9:_-]+` (1..=128); CreateThing is
//! idempotent for the same configuration and `ResourceAlreadyExists`
//! otherwise; version starts at 1 and every update increments it; an
//! `expectedVersion` mismatch is `VersionConflict`; DeleteThing of a
//! missing thing succeeds. Attributes: up to 3 without a thing type, up to
//! 50 with one (the AWS IoT quota); an UpdateThing with `merge` adds or
//! replaces attributes and removes those given an empty value, without
//! `merge` replaces the whole set. Assumed: a thing with principals still
//! attached cannot be deleted (`InvalidRequest`), as AWS IoT has answered;
//! thing types are free text here (no thing-type registry yet).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::{Link, Op};
use super::{names, now, random_uuid, Change, Page, PageRequest, Registry, RegistryError, Result};

/// A thing (`DescribeThingResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thing {
    pub name: String,
    pub thing_id: String,
    pub thing_type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub version: u64,
    pub creation_date: f64,
}

/// `AttributePayload`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributePayload {
    pub attributes: BTreeMap<String, String>,
    /// Merge into the existing attributes instead of replacing them.
    pub merge: bool,
}

/// The optional parts of `UpdateThing`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingUpdate {
    pub thing_type_name: Option<String>,
    pub remove_thing_type: bool,
    pub attribute_payload: Option<AttributePayload>,
    pub expected_version: Option<u64>,
}

/// Attribute quota of a thing without / with a thing type.
pub const MAX_ATTRIBUTES_UNTYPED: usize = 3;
pub const MAX_ATTRIBUTES_TYPED: usize = 50;

pub(crate) fn check_attributes(attrs: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in attrs {
        names::attribute_name(k)?;
        names::attribute_value(v)?;
    }
    Ok(())
}

/// Applies a payload to existing attributes, AWS-style.
pub(crate) fn merge_attributes(
    current: &BTreeMap<String, String>,
    payload: &AttributePayload,
) -> BTreeMap<String, String> {
    if !payload.merge {
        return payload.attributes.clone();
    }
    let mut out = current.clone();
    for (k, v) in &payload.attributes {
        if v.is_empty() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn check_quota(thing: &Thing) -> Result<()> {
    let max = if thing.thing_type_name.is_some() {
        MAX_ATTRIBUTES_TYPED
    } else {
        MAX_ATTRIBUTES_UNTYPED
    };
    if thing.attributes.len() > max {
        return Err(RegistryError::invalid(format!(
            "thing {} would have {} attributes; the maximum is {max} {}",
            thing.name,
            thing.attributes.len(),
            if thing.thing_type_name.is_some() {
                "for a thing with a thing type"
            } else {
                "for a thing without a thing type"
            }
        )));
    }
    Ok(())
}

fn check_expected(name: &str, expected: Option<u64>, actual: u64) -> Result<()> {
    match expected {
        Some(e) if e != actual => Err(RegistryError::VersionConflict {
            kind: "thing",
            id: name.to_owned(),
            expected: e,
            actual,
        }),
        _ => Ok(()),
    }
}

impl Registry {
    /// `CreateThing`.
    pub fn create_thing(
        &self,
        name: &str,
        thing_type_name: Option<&str>,
        attributes: BTreeMap<String, String>,
    ) -> Result<Thing> {
        names::thing_name(name)?;
        if let Some(t) = thing_type_name {
            names::thing_like("thing type name", t)?;
        }
        check_attributes(&attributes)?;
        self.write(|s, batch| {
            if let Some(existing) = s.things.get(name) {
                if existing.thing_type_name.as_deref() == thing_type_name
                    && existing.attributes == attributes
                {
                    return Ok(existing.clone());
                }
                return Err(RegistryError::ResourceAlreadyExists {
                    kind: "thing",
                    id: name.to_owned(),
                    arn: self.scope().thing_arn(name),
                });
            }
            let thing = Thing {
                name: name.to_owned(),
                thing_id: random_uuid(),
                thing_type_name: thing_type_name.map(str::to_owned),
                attributes,
                version: 1,
                creation_date: now(),
            };
            check_quota(&thing)?;
            batch.op(Op::PutThing(thing.clone()));
            batch.event(Change::ThingCreated {
                thing: name.to_owned(),
            });
            Ok(thing)
        })
    }

    /// `DescribeThing`.
    pub fn thing(&self, name: &str) -> Option<Thing> {
        self.read(|s| s.things.get(name).cloned())
    }

    /// `UpdateThing`; returns the new version.
    pub fn update_thing(&self, name: &str, update: ThingUpdate) -> Result<Thing> {
        names::thing_name(name)?;
        if let Some(t) = &update.thing_type_name {
            names::thing_like("thing type name", t)?;
        }
        if update.remove_thing_type && update.thing_type_name.is_some() {
            return Err(RegistryError::invalid(
                "thingTypeName and removeThingType cannot both be given",
            ));
        }
        if let Some(p) = &update.attribute_payload {
            check_attributes(&p.attributes)?;
        }
        self.write(|s, batch| {
            let current = s
                .things
                .get(name)
                .ok_or_else(|| RegistryError::not_found("thing", name))?;
            check_expected(name, update.expected_version, current.version)?;
            let mut thing = current.clone();
            if update.remove_thing_type {
                thing.thing_type_name = None;
            }
            if let Some(t) = &update.thing_type_name {
                thing.thing_type_name = Some(t.clone());
            }
            if let Some(p) = &update.attribute_payload {
                thing.attributes = merge_attributes(&thing.attributes, p);
            }
            check_quota(&thing)?;
            thing.version += 1;
            batch.op(Op::PutThing(thing.clone()));
            batch.event(Change::ThingUpdated {
                thing: name.to_owned(),
            });
            Ok(thing)
        })
    }

    /// `DeleteThing`. Also removes the thing from its groups.
    pub fn delete_thing(&self, name: &str, expected_version: Option<u64>) -> Result<()> {
        names::thing_name(name)?;
        self.write(|s, batch| {
            let Some(thing) = s.things.get(name) else {
                return Ok(());
            };
            check_expected(name, expected_version, thing.version)?;
            let principals: Vec<&str> = s.thing_principals.of(name).collect();
            if !principals.is_empty() {
                return Err(RegistryError::invalid(format!(
                    "thing {name} still has principals attached ({}); detach them first",
                    principals.join(", ")
                )));
            }
            let groups: Vec<&str> = s.group_things.to(name).collect();
            for g in &groups {
                batch.op(Op::Unlink(
                    Link::GroupThing,
                    (*g).to_owned(),
                    name.to_owned(),
                ));
            }
            if !groups.is_empty() {
                batch.event(Change::MembershipChanged {
                    thing: name.to_owned(),
                });
            }
            batch.op(Op::DeleteThing(name.to_owned()));
            batch.event(Change::ThingDeleted {
                thing: name.to_owned(),
            });
            Ok(())
        })
    }

    /// `ListThings`, ordered by name, optionally filtered by an attribute
    /// (exact value, or prefix with `use_prefix_attribute_value`) and type.
    pub fn list_things(
        &self,
        attribute: Option<(&str, &str)>,
        use_prefix_attribute_value: bool,
        thing_type_name: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Thing>> {
        self.read(|s| {
            let things = s.things.values().filter(|t| {
                let type_ok =
                    thing_type_name.is_none_or(|ty| t.thing_type_name.as_deref() == Some(ty));
                let attr_ok = attribute.is_none_or(|(k, v)| {
                    t.attributes.get(k).is_some_and(|have| {
                        if use_prefix_attribute_value {
                            have.starts_with(v)
                        } else {
                            have == v
                        }
                    })
                });
                type_ok && attr_ok
            });
            super::page::paginate(things.cloned(), |t| t.name.clone(), page)
        })
    }
}
