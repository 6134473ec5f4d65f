//! What the engine evaluates: the Rules Detect configuration (profiles,
//! their targets, dimensions, custom metrics) compiled once per change, so
//! a period's evaluation only looks things up.

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::CatalogSnapshot;
pub use crate::catalog::Target;
use crate::detect::evaluate::CompiledBehavior;
use crate::detect::model::{
    Behavior, CustomMetricType, DimensionValueOperator, MetricDimension, MetricToRetain,
};
use crate::metrics::{CloudMetric, TopicDimension};
use crate::report::DeviceMetric;

/// The Rules Detect configuration as the catalog stores it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetectConfig {
    pub profiles: Vec<ProfileConfig>,
    /// TOPIC_FILTER dimensions by name.
    pub dimensions: HashMap<String, Vec<String>>,
    pub custom_metrics: HashMap<String, CustomMetricType>,
}

impl DetectConfig {
    /// The configuration the catalog holds now.
    pub fn from_snapshot(s: &CatalogSnapshot) -> DetectConfig {
        let profiles = s
            .profiles
            .values()
            .map(|p| {
                let mut retain = p
                    .additional_metrics_to_retain_v2
                    .clone()
                    .unwrap_or_default();
                retain.extend(
                    p.additional_metrics_to_retain
                        .iter()
                        .flatten()
                        .map(|metric| MetricToRetain {
                            metric: metric.clone(),
                            metric_dimension: None,
                            export_metric: None,
                        }),
                );
                ProfileConfig {
                    name: p.security_profile_name.clone(),
                    behaviors: p.behaviors.clone().unwrap_or_default(),
                    targets: s.targets_of(&p.security_profile_name).cloned().collect(),
                    alert_target_arn: p
                        .alert_targets
                        .as_ref()
                        .and_then(|t| t.values().next())
                        .map(|t| t.alert_target_arn.clone()),
                    retain,
                }
            })
            .collect();
        DetectConfig {
            profiles,
            dimensions: s
                .dimensions
                .values()
                .map(|d| (d.name.clone(), d.string_values.clone()))
                .collect(),
            custom_metrics: s
                .custom_metrics
                .values()
                .map(|m| (m.metric_name.clone(), m.metric_type))
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileConfig {
    pub name: String,
    pub behaviors: Vec<Behavior>,
    pub targets: Vec<Target>,
    /// `alertTargets.SNS.alertTargetArn`.
    pub alert_target_arn: Option<String>,
    /// `additionalMetricsToRetainV2` (and the deprecated V1 names).
    pub retain: Vec<MetricToRetain>,
}

/// Which measurement a rule reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MetricRef {
    /// Counted by the broker, judged once per period.
    Cloud(CloudMetric),
    /// Reported by the device, judged when the report arrives.
    Device(DeviceMetric),
    Custom(Arc<str>),
}

impl MetricRef {
    fn new(name: &str) -> MetricRef {
        CloudMetric::from_name(name)
            .map(MetricRef::Cloud)
            .or_else(|| DeviceMetric::from_name(name).map(MetricRef::Device))
            .unwrap_or_else(|| MetricRef::Custom(name.into()))
    }

    pub fn name(&self) -> &str {
        match self {
            MetricRef::Cloud(m) => m.name(),
            MetricRef::Device(m) => m.name(),
            MetricRef::Custom(n) => n,
        }
    }

    pub fn is_cloud(&self) -> bool {
        matches!(self, MetricRef::Cloud(_))
    }
}

/// A metric series of a thing: the metric and, for the metrics that take
/// one, a dimension with its operator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Series {
    pub metric: MetricRef,
    pub dimension: Option<(Arc<str>, DimensionValueOperator)>,
}

impl Series {
    fn new(metric: &str, dimension: Option<&MetricDimension>) -> Series {
        Series {
            metric: MetricRef::new(metric),
            dimension: dimension.map(|d| {
                (
                    d.dimension_name.as_str().into(),
                    d.operator.unwrap_or(DimensionValueOperator::In),
                )
            }),
        }
    }

    /// The dimension part of the metric store's key: `""`, `NAME` (IN) or
    /// `NAME|NOT_IN` (`|` cannot occur in a dimension name).
    pub fn store_dimension(&self) -> String {
        store_dimension(
            self.dimension
                .as_ref()
                .map(|(name, op)| (name.as_ref(), *op)),
        )
    }
}

pub fn store_dimension(dimension: Option<(&str, DimensionValueOperator)>) -> String {
    match dimension {
        None => String::new(),
        Some((name, DimensionValueOperator::In)) => name.to_owned(),
        Some((name, DimensionValueOperator::NotIn)) => format!("{name}|NOT_IN"),
    }
}

/// One behaviour, ready to judge.
#[derive(Debug)]
pub struct Rule {
    pub name: Arc<str>,
    pub behavior: Arc<Behavior>,
    pub compiled: CompiledBehavior,
    pub series: Series,
    /// The alarm key's dimension part.
    pub key_dimension: Option<Arc<str>>,
    /// Periods one datapoint spans: `durationSeconds / 300`, at least 1.
    pub periods: usize,
}

#[derive(Debug)]
pub struct Profile {
    pub name: Arc<str>,
    pub rules: Vec<Rule>,
    pub targets: Vec<Target>,
    pub alert_target_arn: Option<String>,
    /// Every series the profile keeps datapoints of: its rules' and the
    /// retained ones.
    pub stored: Vec<Series>,
}

impl Profile {
    pub fn applies_to(&self, registered: bool, groups: &[String]) -> bool {
        self.targets.iter().any(|t| match t {
            Target::AllThings => true,
            Target::RegisteredThings => registered,
            Target::UnregisteredThings => !registered,
            Target::ThingGroup(g) => groups.iter().any(|x| x == g),
        })
    }
}

/// The compiled configuration.
#[derive(Debug, Default)]
pub struct Compiled {
    pub profiles: Vec<Profile>,
    pub custom_metrics: HashMap<String, CustomMetricType>,
    pub dimensions: Vec<TopicDimension>,
    /// Whether resolving a thing's profiles needs the registry at all.
    pub needs_registration: bool,
    pub needs_groups: bool,
}

impl Compiled {
    /// Compiles `config`. A behaviour that does not compile (validation
    /// let it through, or it was stored by an older version) is skipped
    /// and logged: one bad rule must not stop the others.
    pub fn new(config: &DetectConfig) -> Compiled {
        let mut profiles = Vec::with_capacity(config.profiles.len());
        for p in &config.profiles {
            let mut rules = Vec::new();
            let mut stored = Vec::new();
            for b in &p.behaviors {
                let Some(metric) = b.metric.as_deref() else {
                    continue;
                };
                let compiled = match CompiledBehavior::compile(b) {
                    Ok(c) => c,
                    Err(error) => {
                        tracing::warn!(profile = %p.name, %error, "behaviour skipped");
                        continue;
                    }
                };
                let series = Series::new(metric, b.metric_dimension.as_ref());
                let periods = b
                    .criteria
                    .as_ref()
                    .and_then(|c| c.duration_seconds)
                    .map_or(1, |d| usize::try_from(d / 300).unwrap_or(1).max(1));
                let key_dimension = b.metric_dimension.as_ref().map(|d| {
                    Arc::from(match d.operator {
                        Some(DimensionValueOperator::NotIn) => {
                            format!("{}:NOT_IN", d.dimension_name)
                        }
                        _ => d.dimension_name.clone(),
                    })
                });
                if !stored.contains(&series) {
                    stored.push(series.clone());
                }
                rules.push(Rule {
                    name: b.name.as_str().into(),
                    behavior: Arc::new(b.clone()),
                    compiled,
                    series,
                    key_dimension,
                    periods,
                });
            }
            for r in &p.retain {
                let series = Series::new(&r.metric, r.metric_dimension.as_ref());
                if !stored.contains(&series) {
                    stored.push(series);
                }
            }
            profiles.push(Profile {
                name: p.name.as_str().into(),
                rules,
                targets: p.targets.clone(),
                alert_target_arn: p.alert_target_arn.clone(),
                stored,
            });
        }
        let targets = || profiles.iter().flat_map(|p| p.targets.iter());
        let needs_registration =
            targets().any(|t| matches!(t, Target::RegisteredThings | Target::UnregisteredThings));
        let needs_groups = targets().any(|t| matches!(t, Target::ThingGroup(_)));
        // Only the dimensions some behaviour or retained metric uses cost
        // the PUBLISH path anything.
        let mut used: Vec<&str> = profiles
            .iter()
            .flat_map(|p| p.stored.iter())
            .filter_map(|s| s.dimension.as_ref().map(|(n, _)| n.as_ref()))
            .collect();
        used.sort_unstable();
        used.dedup();
        let dimensions = used
            .into_iter()
            .filter_map(|name| {
                Some(TopicDimension {
                    name: name.into(),
                    filters: config.dimensions.get(name)?.clone(),
                })
            })
            .collect();
        Compiled {
            profiles,
            custom_metrics: config.custom_metrics.clone(),
            dimensions,
            needs_registration,
            needs_groups,
        }
    }

    /// Whether an alarm of `profile`/`behavior` (with this key dimension)
    /// is still monitored by this configuration.
    pub fn monitors(&self, profile: &str, behavior: &str, dimension: Option<&str>) -> bool {
        self.profiles.iter().any(|p| {
            &*p.name == profile
                && p.rules
                    .iter()
                    .any(|r| &*r.name == behavior && r.key_dimension.as_deref() == dimension)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_dimensions_keep_operators_apart() {
        assert_eq!(store_dimension(None), "");
        assert_eq!(
            store_dimension(Some(("d", DimensionValueOperator::In))),
            "d"
        );
        assert_eq!(
            store_dimension(Some(("d", DimensionValueOperator::NotIn))),
            "d|NOT_IN"
        );
    }
}
