//! The device registry: things, certificates, CA certificates, policies,
//! thing groups, their attachments and the v2 logging options, with the
//! semantics of the AWS IoT registry API. Durable in its own redb file
//! (`registry.redb` in the data dir), apart from the message store: admin
//! writes are rare, and keeping them out of the store's group-commit
//! writer keeps that writer simple.
//!
//! [`Registry`] is a cheap, cloneable handle. Its API is synchronous: every
//! mutating call is one redb write transaction, durable when the call
//! returns (an fsync, typically a few ms). Async callers on the admin path
//! should use `tokio::task::spawn_blocking` or accept the short block.
//! Reads never touch the file: they are served from an in-memory model
//! loaded at open, behind a `parking_lot::RwLock` that writers hold only
//! to apply an already-committed change, so the broker's hot paths (the
//! CONNECT-time lookups) never wait on an fsync.
//!
//! Changes that can affect authorization bump [`Registry::changes`]; each
//! change is also sent on [`Registry::events`] so the broker can cut the
//! connections of a deactivated certificate at once.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use redb::Database;
use tokio::sync::{broadcast, watch};

mod attach;
mod certs;
mod error;
mod groups;
mod logging;
mod names;
mod page;
mod pem;
mod policies;
mod state;
mod store;
#[cfg(test)]
mod tests;
mod things;

pub use certs::{
    AutoRegistrationStatus, CaCertificate, CaCertificateStatus, CertFacts, Certificate,
    CertificateStatus, TrustMaterial, Validity,
};
pub use error::RegistryError;
pub use groups::{ThingGroup, ThingGroupProperties, MAX_DEPTH, MAX_GROUPS_PER_THING};
pub use logging::{LogLevel, LogTarget, LogTargetType, LoggingOptions};
pub use page::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use policies::{Policy, PolicyVersion, MAX_POLICY_VERSIONS};
pub use things::{AttributePayload, Thing, ThingUpdate};

use state::{Op, State};

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

pub use crate::scope::Scope;

/// One registry change, as sent on [`Registry::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ThingCreated {
        thing: String,
    },
    ThingUpdated {
        thing: String,
    },
    ThingDeleted {
        thing: String,
    },
    /// Registered, status changed or deleted (`status: None`).
    CertificateStatus {
        id: String,
        status: Option<CertificateStatus>,
    },
    /// Registered, status changed or deleted (`status: None`).
    CaStatus {
        id: String,
        status: Option<CaCertificateStatus>,
    },
    /// Created, new default version, or deleted.
    PolicyChanged {
        name: String,
    },
    /// A policy was attached to or detached from a target ARN.
    PolicyAttachment {
        policy: String,
        target: String,
        attached: bool,
    },
    /// A principal was attached to or detached from a thing.
    ThingPrincipal {
        thing: String,
        principal: String,
        attached: bool,
    },
    /// The thing joined or left a group.
    MembershipChanged {
        thing: String,
    },
    /// Created, updated or deleted.
    GroupChanged {
        group: String,
    },
    LoggingChanged,
}

impl Change {
    /// Whether live connections must reload their access: the change can
    /// alter what a connected device may do, or the level its activity is
    /// logged at (a v2 log level set on it, e.g. by ENABLE_IOT_LOGGING).
    pub fn affects_connections(&self) -> bool {
        !matches!(
            self,
            Change::ThingCreated { .. } | Change::ThingUpdated { .. }
        )
    }
}

/// What one mutating call will write, and announce once it is durable.
#[derive(Default)]
pub(crate) struct Batch {
    ops: Vec<Op>,
    events: Vec<Change>,
}

impl Batch {
    pub(crate) fn op(&mut self, op: Op) {
        self.ops.push(op);
    }

    pub(crate) fn event(&mut self, change: Change) {
        self.events.push(change);
    }
}

struct Inner {
    path: PathBuf,
    scope: Scope,
    state: RwLock<State>,
    /// The open file, which also serializes writers: a writer validates
    /// against the state it reads, and nothing else may change it before
    /// its ops are applied. `None` after a failed commit: redb refuses
    /// everything after an I/O error (a full disk) until it is reopened,
    /// which the next write does.
    db: Mutex<Option<Database>>,
    changes: watch::Sender<u64>,
    events: broadcast::Sender<Change>,
}

/// Handle to the registry; clones share one open file and model.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("scope", &self.inner.scope)
            .finish_non_exhaustive()
    }
}

/// How many events a slow [`Registry::events`] receiver may fall behind
/// before it sees `Lagged` (it should then rescan via the read API).
const EVENT_CAPACITY: usize = 1024;

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Random lowercase hex, for thing ids, group ids and generation ids.
pub(crate) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// A random UUID-shaped id (8-4-4-4-12 hex), like AWS's thingId.
pub(crate) fn random_uuid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Registry {
    /// Opens (creating if needed) the registry file at `path` and loads it.
    pub fn open(path: impl AsRef<Path>, scope: Scope) -> Result<Self> {
        let (db, state) = store::open(path.as_ref())?;
        let (changes, _) = watch::channel(0);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.as_ref().to_path_buf(),
                scope,
                state: RwLock::new(state),
                db: Mutex::new(Some(db)),
                changes,
                events,
            }),
        })
    }

    pub fn scope(&self) -> &Scope {
        &self.inner.scope
    }

    /// A counter bumped after every committed change that can affect
    /// authorization (policy versions, attachments, group membership,
    /// certificate and CA status). Cached authorization decisions made
    /// at an older value are stale.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Every committed change, in commit order.
    pub fn events(&self) -> broadcast::Receiver<Change> {
        self.inner.events.subscribe()
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.inner.state.read())
    }

    /// Runs one mutation: `f` validates against the current model and
    /// fills a batch; the batch is committed to redb, then applied to the
    /// model, then announced. On any error nothing changes.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&State, &mut Batch) -> Result<R>) -> Result<R> {
        let mut db = self.inner.db.lock();
        let mut batch = Batch::default();
        let out = f(&self.inner.state.read(), &mut batch)?;
        if batch.ops.is_empty() {
            return Ok(out);
        }
        let open = match db.take() {
            Some(open) => open,
            None => store::reopen(&self.inner.path)?,
        };
        if let Err(e) = store::commit(&open, &batch.ops) {
            tracing::error!(error = %e, "registry write failed; nothing changed");
            return Err(e);
        }
        *db = Some(open);
        {
            let mut state = self.inner.state.write();
            for op in batch.ops {
                state.apply(op);
            }
        }
        if batch.events.iter().any(Change::affects_connections) {
            self.inner.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
        for event in batch.events {
            // No receiver is fine: nobody is listening yet.
            let _ = self.inner.events.send(event);
        }
        Ok(out)
    }

    /// The policies that apply to a connection authenticated with
    /// `cert_id`: those attached to the certificate, then those attached
    /// to each group `thing_name` is in and each of their ancestors
    /// (nearest first), each policy once, with its default version's
    /// document. Whether the thing may be used with this certificate
    /// (attached principal, client id = thing name) is the caller's call.
    pub fn effective_policies(
        &self,
        cert_id: &str,
        thing_name: Option<&str>,
    ) -> Vec<(String, String)> {
        let scope = &self.inner.scope;
        self.read(|s| {
            let mut targets = vec![scope.cert_arn(&cert_id.to_ascii_lowercase())];
            if let Some(thing) = thing_name {
                for group in s.group_things.to(thing) {
                    for g in s.group_chain(group) {
                        targets.push(scope.group_arn(&g.name));
                    }
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            let mut out = Vec::new();
            for target in &targets {
                for policy in s.policy_targets.to(target) {
                    if !seen.insert(policy.to_owned()) {
                        continue;
                    }
                    if let Some(doc) = s.policies.get(policy).and_then(Policy::default_document) {
                        out.push((policy.to_owned(), doc.to_owned()));
                    }
                }
            }
            out
        })
    }
}
