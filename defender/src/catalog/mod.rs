//! The Rules Detect configuration: security profiles, dimensions, custom
//! metrics, and which profiles are attached to which targets, with the
//! semantics of the AWS IoT API (Create/Update/Describe/List/Delete of
//! each, Attach/Detach, ValidateSecurityProfileBehaviors).
//!
//! Durable in `defender.redb` (see [`crate::store`]): every write is one
//! transaction, committed before the call returns, so async callers use
//! `spawn_blocking`. Reads come from an immutable [`CatalogSnapshot`]
//! held in memory and replaced as a whole after each commit, so the
//! evaluator takes one `Arc` per period and never waits for a writer.
//!
//! Writers are serialised: each validates against the current snapshot,
//! edits a copy, commits the edit, then publishes the copy. A refused or
//! failed write changes nothing.
//!
//! Thing groups belong to the broker's registry: attaching to a group
//! checks it exists there, and `recursive` listings follow its hierarchy.

mod checks;
mod error;
mod fuzz;
mod model;
mod profiles;
mod resources;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use wardmq_broker::registry::{Registry, Scope};

use crate::detect::catalogue::AWS_DURATIONS;
use crate::detect::model::{SecurityProfile, Timestamp};
use crate::store::{CatalogStore, CatalogWrite, DefenderDb};

pub use checks::{MAX_DIMENSION_VALUES, MAX_DIMENSION_VALUE_LEN};
pub use error::CatalogError;
pub use fuzz::fuzz_check;
pub use model::{
    arn, custom_metric_arn, dimension_arn, security_profile_arn, CustomMetric, DeleteFlags,
    Dimension, DimensionType, ProfileFilter, ProfileMembers, ProfileUpdate, Target, TargetMapping,
};
pub use snapshot::CatalogSnapshot;

/// "Each thing group or account can have up to five security profiles
/// associated with it" (AttachSecurityProfile).
pub const MAX_PROFILES_PER_TARGET: usize = 5;
/// Dimensions and custom metrics per account. AWS's quotas could not be
/// confirmed (spec §10); the model has LimitExceeded on both creates.
pub const MAX_DIMENSIONS: usize = 100;
pub const MAX_CUSTOM_METRICS: usize = 100;

/// Handle to the configuration; clones share one state.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

struct Inner {
    store: CatalogStore,
    registry: Registry,
    current: ArcSwap<CatalogSnapshot>,
    /// Serialises writers (see the module comment).
    write_gate: Mutex<()>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("generation", &self.snapshot().generation)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Loads the configuration from `db`, validating `durationSeconds`
    /// against AWS's windows.
    pub fn open(db: &DefenderDb, registry: Registry) -> Result<Catalog, CatalogError> {
        Self::open_with_durations(db, registry, AWS_DURATIONS.to_vec())
    }

    /// Like [`Catalog::open`], with the `durationSeconds` values behaviours
    /// may use (a deployment with a short datapoint period adds its own).
    pub fn open_with_durations(
        db: &DefenderDb,
        registry: Registry,
        durations: Vec<i64>,
    ) -> Result<Catalog, CatalogError> {
        let store = db.catalog();
        let stored = store.load()?;
        let scope = registry.scope();
        let mut snap = CatalogSnapshot::empty(durations);
        snap.generation = stored.generation;
        for mut p in stored.profiles {
            // The ARN follows the configured scope, not the one it was
            // created under.
            p.security_profile_arn = Some(security_profile_arn(scope, &p.security_profile_name));
            snap.profiles
                .insert(p.security_profile_name.clone(), Arc::new(p));
        }
        snap.dimensions = by_name(stored.dimensions, |d| &d.name);
        snap.custom_metrics = by_name(stored.custom_metrics, |m| &m.metric_name);
        for (profile, target) in stored.attachments {
            // A profile record that did not decode leaves its attachments
            // pointing nowhere; they are dropped with it.
            if snap.profiles.contains_key(&profile) {
                snap.attachments.entry(target).or_default().insert(profile);
            }
        }
        snap.rebuild_catalogue();
        Ok(Catalog {
            inner: Arc::new(Inner {
                store,
                registry,
                current: ArcSwap::from_pointee(snap),
                write_gate: Mutex::new(()),
            }),
        })
    }

    /// The current configuration. Cheap (one atomic load and an `Arc`
    /// clone); hold it as long as needed, it never changes.
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        self.inner.current.load_full()
    }

    /// The region and account every ARN is built from.
    pub fn scope(&self) -> &Scope {
        self.inner.registry.scope()
    }

    fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Runs one change: `f` validates against the snapshot in `tx` and
    /// records its edits there; they are committed in one transaction and
    /// then published. A change that records nothing (an idempotent
    /// repeat) commits nothing and keeps the generation.
    fn write<R>(
        &self,
        f: impl FnOnce(&mut Tx) -> Result<R, CatalogError>,
    ) -> Result<R, CatalogError> {
        let _gate = self
            .inner
            .write_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut tx = Tx {
            next: (*self.snapshot()).clone(),
            writes: Vec::new(),
            catalogue_changed: false,
        };
        let out = f(&mut tx)?;
        if tx.writes.is_empty() {
            return Ok(out);
        }
        let generation = self.inner.store.commit(&tx.writes)?;
        let mut next = tx.next;
        next.generation = generation;
        if tx.catalogue_changed {
            next.rebuild_catalogue();
        }
        self.inner.current.store(Arc::new(next));
        Ok(out)
    }
}

fn by_name<T>(items: Vec<T>, name: impl Fn(&T) -> &String) -> BTreeMap<String, Arc<T>> {
    items
        .into_iter()
        .map(|item| (name(&item).clone(), Arc::new(item)))
        .collect()
}

fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(ms)
}

/// One write in progress: the next snapshot and the records to commit,
/// changed together so they cannot disagree.
struct Tx {
    next: CatalogSnapshot,
    writes: Vec<CatalogWrite>,
    /// Custom metrics or dimensions changed: the metric catalogue must be
    /// rebuilt.
    catalogue_changed: bool,
}

impl Tx {
    fn snap(&self) -> &CatalogSnapshot {
        &self.next
    }

    fn put_profile(&mut self, p: SecurityProfile) -> Arc<SecurityProfile> {
        let p = Arc::new(p);
        self.next
            .profiles
            .insert(p.security_profile_name.clone(), Arc::clone(&p));
        self.writes.push(CatalogWrite::PutProfile(Arc::clone(&p)));
        p
    }

    /// Deletes the profile and its attachments.
    fn delete_profile(&mut self, name: &str) {
        let targets: Vec<Target> = self.next.targets_of(name).cloned().collect();
        for target in targets {
            self.detach(name, target);
        }
        self.next.profiles.remove(name);
        self.writes
            .push(CatalogWrite::DeleteProfile(name.to_owned()));
    }

    fn attach(&mut self, profile: &str, target: Target) {
        self.next
            .attachments
            .entry(target.clone())
            .or_default()
            .insert(profile.to_owned());
        self.writes.push(CatalogWrite::Attach {
            profile: profile.to_owned(),
            target,
        });
    }

    fn detach(&mut self, profile: &str, target: Target) {
        if let Some(names) = self.next.attachments.get_mut(&target) {
            names.remove(profile);
            if names.is_empty() {
                self.next.attachments.remove(&target);
            }
        }
        self.writes.push(CatalogWrite::Detach {
            profile: profile.to_owned(),
            target,
        });
    }

    fn put_dimension(&mut self, d: Dimension) -> Arc<Dimension> {
        let d = Arc::new(d);
        self.next.dimensions.insert(d.name.clone(), Arc::clone(&d));
        self.writes.push(CatalogWrite::PutDimension(Arc::clone(&d)));
        self.catalogue_changed = true;
        d
    }

    fn delete_dimension(&mut self, name: &str) {
        self.next.dimensions.remove(name);
        self.writes
            .push(CatalogWrite::DeleteDimension(name.to_owned()));
        self.catalogue_changed = true;
    }

    fn put_custom_metric(&mut self, m: CustomMetric) -> Arc<CustomMetric> {
        let m = Arc::new(m);
        self.next
            .custom_metrics
            .insert(m.metric_name.clone(), Arc::clone(&m));
        self.writes
            .push(CatalogWrite::PutCustomMetric(Arc::clone(&m)));
        self.catalogue_changed = true;
        m
    }

    fn delete_custom_metric(&mut self, name: &str) {
        self.next.custom_metrics.remove(name);
        self.writes
            .push(CatalogWrite::DeleteCustomMetric(name.to_owned()));
        self.catalogue_changed = true;
    }
}
