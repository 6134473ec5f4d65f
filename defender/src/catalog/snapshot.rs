//! The read view of the Detect configuration: immutable, shared as an
//! `Arc`, replaced as a whole after every committed write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::model::{CustomMetric, Dimension, Target};
use crate::detect::catalogue::MetricCatalogue;
use crate::detect::model::SecurityProfile;

/// Everything Rules Detect is configured with, at one generation.
#[derive(Clone, Debug)]
pub struct CatalogSnapshot {
    /// Changes with every committed write (and never repeats, even across
    /// restarts): an evaluator can skip recompiling while it stays equal.
    pub generation: u64,
    /// By name. Each carries its ARN, version and dates.
    pub profiles: BTreeMap<String, Arc<SecurityProfile>>,
    pub dimensions: BTreeMap<String, Arc<Dimension>>,
    pub custom_metrics: BTreeMap<String, Arc<CustomMetric>>,
    /// Target -> names of the profiles attached to it (at most 5 each).
    pub attachments: BTreeMap<Target, BTreeSet<String>>,
    /// The built-in metrics plus the custom metrics and dimensions above:
    /// what behaviours are validated against.
    pub catalogue: MetricCatalogue,
}

impl CatalogSnapshot {
    pub(crate) fn empty(durations: Vec<i64>) -> Self {
        let mut snap = Self {
            generation: 0,
            profiles: BTreeMap::new(),
            dimensions: BTreeMap::new(),
            custom_metrics: BTreeMap::new(),
            attachments: BTreeMap::new(),
            catalogue: MetricCatalogue::aws(),
        };
        snap.catalogue.durations = durations;
        snap.rebuild_catalogue();
        snap
    }

    /// Recomputes [`Self::catalogue`] after custom metrics or dimensions
    /// changed, keeping its durations.
    pub(crate) fn rebuild_catalogue(&mut self) {
        let mut c = MetricCatalogue::aws();
        c.durations = std::mem::take(&mut self.catalogue.durations);
        for m in self.custom_metrics.values() {
            c.add_custom(m.metric_name.clone(), m.metric_type);
        }
        c.set_dimensions(self.dimensions.keys().cloned());
        self.catalogue = c;
    }

    pub fn profile(&self, name: &str) -> Option<&Arc<SecurityProfile>> {
        self.profiles.get(name)
    }

    /// The profiles attached to `target` itself.
    pub fn profiles_for_target(&self, target: &Target) -> impl Iterator<Item = &str> {
        self.attachments
            .get(target)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The targets `profile` is attached to.
    pub fn targets_of<'a>(&'a self, profile: &'a str) -> impl Iterator<Item = &'a Target> {
        self.attachments
            .iter()
            .filter(move |(_, names)| names.contains(profile))
            .map(|(t, _)| t)
    }

    /// The profiles that apply to one thing: those on `all/things`, on
    /// `all/registered-things` or `all/unregistered-things` as the thing
    /// is registered or not, and on any of `groups`. Pass the thing's
    /// groups **with their ancestors** (`Registry::thing_groups_with_ancestors`):
    /// a profile on a parent group covers the things of its child groups.
    pub fn profiles_for_thing<'a>(
        &'a self,
        registered: bool,
        groups: impl IntoIterator<Item = &'a str>,
    ) -> BTreeSet<&'a str> {
        let everyone = if registered {
            Target::RegisteredThings
        } else {
            Target::UnregisteredThings
        };
        let mut out: BTreeSet<&str> = self
            .profiles_for_target(&Target::AllThings)
            .chain(self.profiles_for_target(&everyone))
            .collect();
        for g in groups {
            out.extend(self.profiles_for_target(&Target::ThingGroup(g.to_owned())));
        }
        out
    }

    /// The profiles whose behaviours or retained metrics use `dimension`.
    pub fn profiles_using_dimension<'a>(
        &'a self,
        dimension: &'a str,
    ) -> impl Iterator<Item = &'a Arc<SecurityProfile>> {
        self.profiles
            .values()
            .filter(move |p| uses_dimension(p, dimension))
    }

    /// The profiles whose behaviours or retained metrics use `metric`.
    pub fn profiles_using_metric<'a>(
        &'a self,
        metric: &'a str,
    ) -> impl Iterator<Item = &'a Arc<SecurityProfile>> {
        self.profiles
            .values()
            .filter(move |p| uses_metric(p, metric))
    }
}

fn uses_dimension(p: &SecurityProfile, dimension: &str) -> bool {
    let named = |d: &Option<crate::detect::model::MetricDimension>| {
        d.as_ref().is_some_and(|d| d.dimension_name == dimension)
    };
    p.behaviors
        .iter()
        .flatten()
        .any(|b| named(&b.metric_dimension))
        || p.additional_metrics_to_retain_v2
            .iter()
            .flatten()
            .any(|m| named(&m.metric_dimension))
}

fn uses_metric(p: &SecurityProfile, metric: &str) -> bool {
    p.behaviors
        .iter()
        .flatten()
        .any(|b| b.metric.as_deref() == Some(metric))
        || p.additional_metrics_to_retain
            .iter()
            .flatten()
            .any(|m| m == metric)
        || p.additional_metrics_to_retain_v2
            .iter()
            .flatten()
            .any(|m| m.metric == metric)
}
