//! The in-memory read model and the one change type ([`Op`]) that both the
//! redb file and this model apply, so what is on disk and what is in
//! memory cannot drift: a mutation is a list of ops, written to redb
//! first and applied here only once the commit succeeded; opening the
//! registry replays the stored records as the same ops.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::certs::{CaCertificate, Certificate};
use super::groups::ThingGroup;
use super::logging::{LogLevel, LogTarget, LoggingOptions};
use super::policies::Policy;
use super::things::Thing;

/// The many-to-many relations the registry keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Link {
    /// (thing name, principal ARN)
    ThingPrincipal,
    /// (policy name, target ARN)
    PolicyTarget,
    /// (group name, thing name)
    GroupThing,
}

/// One durable change.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    PutThing(Thing),
    DeleteThing(String),
    PutCert(Certificate),
    DeleteCert(String),
    PutCa(CaCertificate),
    DeleteCa(String),
    PutPolicy(Policy),
    DeletePolicy(String),
    PutGroup(ThingGroup),
    DeleteGroup(String),
    Link(Link, String, String),
    Unlink(Link, String, String),
    PutLogging(LoggingOptions),
    PutLogLevel(LogTarget, LogLevel),
    DeleteLogLevel(LogTarget),
}

/// Two sorted sets per relation so both directions are a range scan.
#[derive(Debug, Default)]
pub(crate) struct Relation {
    pub(crate) forward: BTreeSet<(String, String)>,
    pub(crate) backward: BTreeSet<(String, String)>,
}

impl Relation {
    fn insert(&mut self, a: String, b: String) {
        self.backward.insert((b.clone(), a.clone()));
        self.forward.insert((a, b));
    }

    fn remove(&mut self, a: &str, b: &str) {
        self.forward.remove(&(a.to_owned(), b.to_owned()));
        self.backward.remove(&(b.to_owned(), a.to_owned()));
    }

    pub(crate) fn contains(&self, a: &str, b: &str) -> bool {
        self.forward.contains(&(a.to_owned(), b.to_owned()))
    }

    fn range<'a>(
        set: &'a BTreeSet<(String, String)>,
        key: &'a str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        set.range((key.to_owned(), String::new())..)
            .take_while(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every `b` linked from `a`, sorted.
    pub(crate) fn of<'a>(&'a self, a: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        Self::range(&self.forward, a)
    }

    /// Every `a` linked to `b`, sorted.
    pub(crate) fn to<'a>(&'a self, b: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        Self::range(&self.backward, b)
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) things: BTreeMap<String, Thing>,
    pub(crate) certs: BTreeMap<String, Certificate>,
    pub(crate) cas: BTreeMap<String, CaCertificate>,
    pub(crate) policies: BTreeMap<String, Policy>,
    pub(crate) groups: BTreeMap<String, ThingGroup>,
    pub(crate) thing_principals: Relation,
    pub(crate) policy_targets: Relation,
    pub(crate) group_things: Relation,
    pub(crate) logging: LoggingOptions,
    pub(crate) log_levels: BTreeMap<LogTarget, LogLevel>,
}

impl State {
    pub(crate) fn apply(&mut self, op: Op) {
        match op {
            Op::PutThing(t) => {
                self.things.insert(t.name.clone(), t);
            }
            Op::DeleteThing(n) => {
                self.things.remove(&n);
            }
            Op::PutCert(c) => {
                self.certs.insert(c.id.clone(), c);
            }
            Op::DeleteCert(id) => {
                self.certs.remove(&id);
            }
            Op::PutCa(c) => {
                self.cas.insert(c.id.clone(), c);
            }
            Op::DeleteCa(id) => {
                self.cas.remove(&id);
            }
            Op::PutPolicy(p) => {
                self.policies.insert(p.name.clone(), p);
            }
            Op::DeletePolicy(n) => {
                self.policies.remove(&n);
            }
            Op::PutGroup(g) => {
                self.groups.insert(g.name.clone(), g);
            }
            Op::DeleteGroup(n) => {
                self.groups.remove(&n);
            }
            Op::Link(kind, a, b) => self.relation(kind).insert(a, b),
            Op::Unlink(kind, a, b) => self.relation(kind).remove(&a, &b),
            Op::PutLogging(o) => self.logging = o,
            Op::PutLogLevel(t, l) => {
                self.log_levels.insert(t, l);
            }
            Op::DeleteLogLevel(t) => {
                self.log_levels.remove(&t);
            }
        }
    }

    fn relation(&mut self, kind: Link) -> &mut Relation {
        match kind {
            Link::ThingPrincipal => &mut self.thing_principals,
            Link::PolicyTarget => &mut self.policy_targets,
            Link::GroupThing => &mut self.group_things,
        }
    }

    /// The group and its ancestors, nearest first. The parent chain is
    /// acyclic by construction (a parent must exist before its child and
    /// never changes), and capped anyway so a damaged file cannot loop.
    pub(crate) fn group_chain(&self, name: &str) -> Vec<&ThingGroup> {
        let mut out = Vec::new();
        let mut next = self.groups.get(name);
        while let Some(g) = next {
            if out.len() > super::groups::MAX_DEPTH {
                break;
            }
            out.push(g);
            next = g.parent.as_deref().and_then(|p| self.groups.get(p));
        }
        out
    }
}
