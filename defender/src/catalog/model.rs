//! The catalog's own records (dimensions, custom metrics, attachment
//! targets) and the inputs of its update calls. Security profiles are the
//! Rules Detect model's [`SecurityProfile`](crate::detect::SecurityProfile).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wardmq_broker::registry::Scope;

use crate::detect::model::{
    AlertTarget, AlertTargetType, Behavior, CustomMetricType, MetricToRetain, MetricsExportConfig,
    Timestamp,
};

/// `arn:aws:iot:REGION:ACCOUNT:` + `resource`, as AWS writes every IoT ARN.
pub fn arn(scope: &Scope, resource: &str) -> String {
    format!("arn:aws:iot:{}:{}:{resource}", scope.region, scope.account)
}

pub fn security_profile_arn(scope: &Scope, name: &str) -> String {
    arn(scope, &format!("securityprofile/{name}"))
}

pub fn dimension_arn(scope: &Scope, name: &str) -> String {
    arn(scope, &format!("dimension/{name}"))
}

pub fn custom_metric_arn(scope: &Scope, name: &str) -> String {
    arn(scope, &format!("custommetric/{name}"))
}

/// What a security profile is attached to (`securityProfileTargetArn`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// `…:all/things`: every thing, registered or not.
    AllThings,
    /// `…:all/registered-things`: things in the registry.
    RegisteredThings,
    /// `…:all/unregistered-things`: clients with no registry thing.
    UnregisteredThings,
    /// `…:thinggroup/NAME`: the group's things, and (as AWS applies it)
    /// the things of its child groups.
    ThingGroup(String),
}

const ALL_THINGS: &str = "all/things";
const REGISTERED_THINGS: &str = "all/registered-things";
const UNREGISTERED_THINGS: &str = "all/unregistered-things";
const THING_GROUP: &str = "thinggroup/";

impl Target {
    /// The target an ARN of this account and region names; `None` for
    /// anything else (another account, another resource type).
    pub fn from_arn(arn: &str, scope: &Scope) -> Option<Target> {
        let prefix = self::arn(scope, "");
        Target::from_resource(arn.strip_prefix(prefix.as_str())?)
    }

    /// The ARN under `scope`. Stored targets hold no region or account,
    /// so changing `[aws]` in the config moves them along.
    pub fn arn(&self, scope: &Scope) -> String {
        arn(scope, &self.resource())
    }

    /// The ARN's resource part: the stored form and the sort key.
    pub fn resource(&self) -> String {
        match self {
            Self::AllThings => ALL_THINGS.to_owned(),
            Self::RegisteredThings => REGISTERED_THINGS.to_owned(),
            Self::UnregisteredThings => UNREGISTERED_THINGS.to_owned(),
            Self::ThingGroup(g) => format!("{THING_GROUP}{g}"),
        }
    }

    pub fn from_resource(resource: &str) -> Option<Target> {
        match resource {
            ALL_THINGS => Some(Self::AllThings),
            REGISTERED_THINGS => Some(Self::RegisteredThings),
            UNREGISTERED_THINGS => Some(Self::UnregisteredThings),
            r => r
                .strip_prefix(THING_GROUP)
                .filter(|g| !g.is_empty())
                .map(|g| Self::ThingGroup(g.to_owned())),
        }
    }

    pub fn thing_group(&self) -> Option<&str> {
        match self {
            Self::ThingGroup(g) => Some(g),
            _ => None,
        }
    }
}

/// `DimensionType`: the model has one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DimensionType {
    TopicFilter,
}

impl DimensionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TopicFilter => "TOPIC_FILTER",
        }
    }
}

/// A dimension (DescribeDimension without the ARN, which follows from the
/// name and the scope).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dimension {
    pub name: String,
    #[serde(rename = "type")]
    pub dimension_type: DimensionType,
    /// MQTT topic filters (`+`, `#`, `${iot:ClientId}`).
    pub string_values: Vec<String>,
    pub creation_date: Timestamp,
    pub last_modified_date: Timestamp,
    /// The CreateDimension token, so a retried create is recognised.
    pub client_request_token: String,
}

/// A custom metric (DescribeCustomMetric without the ARN).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomMetric {
    pub metric_name: String,
    pub metric_type: CustomMetricType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub creation_date: Timestamp,
    pub last_modified_date: Timestamp,
    /// The CreateCustomMetric token, so a retried create is recognised.
    pub client_request_token: String,
}

/// The members of Create/UpdateSecurityProfile a caller sets, with the
/// model's names, so the admin API parses a request body straight into it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileMembers {
    pub security_profile_description: Option<String>,
    pub behaviors: Option<Vec<Behavior>>,
    pub alert_targets: Option<BTreeMap<AlertTargetType, AlertTarget>>,
    pub additional_metrics_to_retain: Option<Vec<String>>,
    pub additional_metrics_to_retain_v2: Option<Vec<MetricToRetain>>,
    pub metrics_export_config: Option<MetricsExportConfig>,
}

/// UpdateSecurityProfile's `delete*` flags: each clears a member, and may
/// not come with a new value for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeleteFlags {
    pub delete_behaviors: bool,
    pub delete_alert_targets: bool,
    /// Clears both `additionalMetricsToRetain` and its V2.
    pub delete_additional_metrics_to_retain: bool,
    pub delete_metrics_export_config: bool,
}

/// UpdateSecurityProfile: members given replace the stored ones, members
/// absent are kept, flags clear.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileUpdate {
    pub members: ProfileMembers,
    pub delete: DeleteFlags,
    /// Refused with VersionConflict unless it is the current version.
    pub expected_version: Option<i64>,
}

/// ListSecurityProfiles' filters (at most one may be set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProfileFilter<'a> {
    pub dimension_name: Option<&'a str>,
    pub metric_name: Option<&'a str>,
}

/// One row of ListSecurityProfilesForTarget: a profile and the target it
/// is attached to (with `recursive`, a child group of the one asked for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetMapping {
    pub profile: String,
    pub target: Target,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_through_their_arns() {
        let scope = Scope::new("eu-west-1", "123456789012");
        for t in [
            Target::AllThings,
            Target::RegisteredThings,
            Target::UnregisteredThings,
            Target::ThingGroup("g:1".into()),
        ] {
            assert_eq!(Target::from_arn(&t.arn(&scope), &scope), Some(t));
        }
        assert_eq!(
            Target::AllThings.arn(&scope),
            "arn:aws:iot:eu-west-1:123456789012:all/things"
        );
        let other = Scope::new("eu-west-1", "999999999999");
        for bad in [
            Target::AllThings.arn(&other),
            "arn:aws:iot:eu-west-1:123456789012:thinggroup/".to_owned(),
            "arn:aws:iot:eu-west-1:123456789012:thing/t".to_owned(),
            "arn:aws:iot:eu-west-1:123456789012:all/devices".to_owned(),
            "thinggroup/g".to_owned(),
        ] {
            assert_eq!(Target::from_arn(&bad, &scope), None, "{bad}");
        }
    }
}
