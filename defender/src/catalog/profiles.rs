//! Security profiles and their targets.
//!
//! AWS rules applied: a name is taken once (ResourceAlreadyExists); the
//! version starts at 1 and every update adds 1; `expectedVersion` that is
//! not the current version is VersionConflict, on update and delete;
//! deleting a profile that does not exist succeeds (the model gives
//! DeleteSecurityProfile no ResourceNotFound) and drops its attachments;
//! a target holds at most 5 profiles (LimitExceeded).

use std::sync::Arc;

use super::checks::{joined, profile_extras};
use super::model::{ProfileFilter, ProfileMembers, ProfileUpdate, Target, TargetMapping};
use super::snapshot::CatalogSnapshot;
use super::{now, security_profile_arn, Catalog, CatalogError, MAX_PROFILES_PER_TARGET};
use crate::detect::catalogue::MetricCatalogue;
use crate::detect::model::{Behavior, SecurityProfile, ValidationResult};
use crate::detect::validate::{validate_behaviors, validate_security_profile};
use crate::store::{page_sorted, Fingerprint, Page, TokenKind};

const PROFILE: &str = "security profile";

impl ProfileMembers {
    /// Sets every member that is given; keeps the others.
    pub(super) fn apply_to(self, p: &mut SecurityProfile) {
        let Self {
            security_profile_description,
            behaviors,
            alert_targets,
            additional_metrics_to_retain,
            additional_metrics_to_retain_v2,
            metrics_export_config,
        } = self;
        fn set<T>(slot: &mut Option<T>, value: Option<T>) {
            if value.is_some() {
                *slot = value;
            }
        }
        set(
            &mut p.security_profile_description,
            security_profile_description,
        );
        set(&mut p.behaviors, behaviors);
        set(&mut p.alert_targets, alert_targets);
        set(
            &mut p.additional_metrics_to_retain,
            additional_metrics_to_retain,
        );
        set(
            &mut p.additional_metrics_to_retain_v2,
            additional_metrics_to_retain_v2,
        );
        set(&mut p.metrics_export_config, metrics_export_config);
    }
}

/// Everything wrong with a profile about to be stored, in one
/// InvalidRequest.
pub(super) fn check_profile(
    p: &SecurityProfile,
    catalogue: &MetricCatalogue,
) -> Result<(), CatalogError> {
    let mut errors: Vec<String> = validate_security_profile(p, catalogue)
        .validation_errors
        .into_iter()
        .map(|e| e.error_message)
        .collect();
    profile_extras(p, &mut errors);
    joined(errors)
}

/// The stored profile, or ResourceNotFound.
fn existing<'a>(
    snap: &'a CatalogSnapshot,
    name: &str,
) -> Result<&'a Arc<SecurityProfile>, CatalogError> {
    snap.profile(name)
        .ok_or_else(|| CatalogError::not_found(PROFILE, name))
}

fn check_version(p: &SecurityProfile, expected: Option<i64>) -> Result<i64, CatalogError> {
    let actual = p.version.unwrap_or(1);
    match expected {
        Some(expected) if expected != actual => Err(CatalogError::VersionConflict {
            name: p.security_profile_name.clone(),
            expected,
            actual,
        }),
        _ => Ok(actual),
    }
}

impl Catalog {
    /// CreateSecurityProfile.
    pub fn create_security_profile(
        &self,
        name: &str,
        members: ProfileMembers,
    ) -> Result<Arc<SecurityProfile>, CatalogError> {
        let now = now();
        self.write(|tx| {
            if tx.snap().profiles.contains_key(name) {
                return Err(CatalogError::AlreadyExists {
                    kind: PROFILE,
                    name: name.to_owned(),
                    arn: security_profile_arn(self.scope(), name),
                });
            }
            let mut p = SecurityProfile {
                security_profile_name: name.to_owned(),
                security_profile_arn: Some(security_profile_arn(self.scope(), name)),
                version: Some(1),
                creation_date: Some(now),
                last_modified_date: Some(now),
                ..SecurityProfile::default()
            };
            members.apply_to(&mut p);
            check_profile(&p, &tx.snap().catalogue)?;
            Ok(tx.put_profile(p))
        })
    }

    /// UpdateSecurityProfile: the members given replace the stored ones,
    /// the `delete*` flags clear theirs (and may not come with a value for
    /// the same member).
    pub fn update_security_profile(
        &self,
        name: &str,
        update: ProfileUpdate,
    ) -> Result<Arc<SecurityProfile>, CatalogError> {
        let ProfileUpdate {
            members,
            delete,
            expected_version,
        } = update;
        let mut clashes = Vec::new();
        for (flag, set, flag_name, member) in [
            (
                delete.delete_behaviors,
                members.behaviors.is_some(),
                "deleteBehaviors",
                "behaviors",
            ),
            (
                delete.delete_alert_targets,
                members.alert_targets.is_some(),
                "deleteAlertTargets",
                "alertTargets",
            ),
            (
                delete.delete_additional_metrics_to_retain,
                members.additional_metrics_to_retain.is_some()
                    || members.additional_metrics_to_retain_v2.is_some(),
                "deleteAdditionalMetricsToRetain",
                "additionalMetricsToRetain",
            ),
            (
                delete.delete_metrics_export_config,
                members.metrics_export_config.is_some(),
                "deleteMetricsExportConfig",
                "metricsExportConfig",
            ),
        ] {
            if flag && set {
                clashes.push(format!("{flag_name} cannot be combined with {member}"));
            }
        }
        joined(clashes)?;
        let now = now();
        self.write(|tx| {
            let current = existing(tx.snap(), name)?;
            let version = check_version(current, expected_version)?;
            let mut p = SecurityProfile::clone(current);
            if delete.delete_behaviors {
                p.behaviors = None;
            }
            if delete.delete_alert_targets {
                p.alert_targets = None;
            }
            if delete.delete_additional_metrics_to_retain {
                p.additional_metrics_to_retain = None;
                p.additional_metrics_to_retain_v2 = None;
            }
            if delete.delete_metrics_export_config {
                p.metrics_export_config = None;
            }
            members.apply_to(&mut p);
            p.version = Some(version + 1);
            p.last_modified_date = Some(now);
            check_profile(&p, &tx.snap().catalogue)?;
            Ok(tx.put_profile(p))
        })
    }

    /// DeleteSecurityProfile, with its attachments.
    pub fn delete_security_profile(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            let Some(current) = tx.snap().profile(name) else {
                return Ok(());
            };
            check_version(current, expected_version)?;
            tx.delete_profile(name);
            Ok(())
        })
    }

    /// DescribeSecurityProfile.
    pub fn security_profile(&self, name: &str) -> Result<Arc<SecurityProfile>, CatalogError> {
        existing(&self.snapshot(), name).cloned()
    }

    /// ListSecurityProfiles, in name order. A filter naming a dimension or
    /// metric that does not exist is ResourceNotFound; `metricName` may
    /// also name a built-in metric.
    pub fn list_security_profiles(
        &self,
        filter: ProfileFilter<'_>,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<Arc<SecurityProfile>>, CatalogError> {
        let snap = self.snapshot();
        let matching: Vec<Arc<SecurityProfile>> = match (filter.dimension_name, filter.metric_name)
        {
            (Some(_), Some(_)) => {
                return Err(CatalogError::invalid(
                    "dimensionName and metricName cannot be used in the same request",
                ))
            }
            (Some(d), None) => {
                if !snap.dimensions.contains_key(d) {
                    return Err(CatalogError::not_found("dimension", d));
                }
                snap.profiles_using_dimension(d).cloned().collect()
            }
            (None, Some(m)) => {
                if snap.catalogue.get(m).is_none() {
                    return Err(CatalogError::not_found("custom metric", m));
                }
                snap.profiles_using_metric(m).cloned().collect()
            }
            (None, None) => snap.profiles.values().cloned().collect(),
        };
        let query = Fingerprint::new()
            .opt(filter.dimension_name.map(str::as_bytes))
            .opt(filter.metric_name.map(str::as_bytes));
        Ok(page_sorted(
            matching,
            |p| p.security_profile_name.as_bytes().to_vec(),
            TokenKind::SecurityProfiles,
            query,
            max_results,
            next_token,
        )?)
    }

    /// ValidateSecurityProfileBehaviors, against the metrics and dimensions
    /// defined now.
    pub fn validate_behaviors(&self, behaviors: &[Behavior]) -> ValidationResult {
        validate_behaviors(behaviors, &self.snapshot().catalogue)
    }

    /// The target a `securityProfileTargetArn` names (InvalidRequest if
    /// it names none of this account and region).
    pub fn target(&self, arn: &str) -> Result<Target, CatalogError> {
        Target::from_arn(arn, self.scope()).ok_or_else(|| {
            CatalogError::invalid(format!(
                "securityProfileTargetArn {arn:?} is neither a thing-group ARN nor all/things, \
                 all/registered-things or all/unregistered-things of this account and region"
            ))
        })
    }

    /// A thing-group target's group must exist in the registry.
    fn check_group(&self, target: &Target) -> Result<(), CatalogError> {
        match target.thing_group() {
            Some(g) if self.registry().thing_group(g).is_none() => {
                Err(CatalogError::not_found("thing group", g))
            }
            _ => Ok(()),
        }
    }

    /// AttachSecurityProfile. Attaching again is a no-op.
    pub fn attach_security_profile(
        &self,
        name: &str,
        target_arn: &str,
    ) -> Result<(), CatalogError> {
        let target = self.target(target_arn)?;
        self.write(|tx| {
            existing(tx.snap(), name)?;
            self.check_group(&target)?;
            let attached = tx.snap().attachments.get(&target);
            if attached.is_some_and(|names| names.contains(name)) {
                return Ok(());
            }
            if attached.map_or(0, |names| names.len()) >= MAX_PROFILES_PER_TARGET {
                return Err(CatalogError::LimitExceeded(format!(
                    "{target_arn} already has {MAX_PROFILES_PER_TARGET} security profiles attached"
                )));
            }
            tx.attach(name, target);
            Ok(())
        })
    }

    /// DetachSecurityProfile. Works on a target whose thing group has since
    /// been deleted, so such attachments can be cleaned up.
    pub fn detach_security_profile(
        &self,
        name: &str,
        target_arn: &str,
    ) -> Result<(), CatalogError> {
        let target = self.target(target_arn)?;
        self.write(|tx| {
            existing(tx.snap(), name)?;
            if !tx
                .snap()
                .attachments
                .get(&target)
                .is_some_and(|names| names.contains(name))
            {
                return Err(CatalogError::not_attached(name, target_arn));
            }
            tx.detach(name, target);
            Ok(())
        })
    }

    /// ListTargetsForSecurityProfile, in ARN order.
    pub fn list_targets_for_security_profile(
        &self,
        name: &str,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<Target>, CatalogError> {
        let snap = self.snapshot();
        existing(&snap, name)?;
        let mut targets: Vec<(String, Target)> = snap
            .targets_of(name)
            .map(|t| (t.resource(), t.clone()))
            .collect();
        targets.sort();
        let page = page_sorted(
            targets,
            |(resource, _)| resource.as_bytes().to_vec(),
            TokenKind::ProfileTargets,
            Fingerprint::new().field(name.as_bytes()),
            max_results,
            next_token,
        )?;
        Ok(Page {
            items: page.items.into_iter().map(|(_, t)| t).collect(),
            next_token: page.next_token,
        })
    }

    /// ListSecurityProfilesForTarget. With `recursive` and a thing group,
    /// the profiles attached to its descendant groups too ("If true, return
    /// child groups too"), each with the group it is attached to.
    pub fn list_security_profiles_for_target(
        &self,
        target_arn: &str,
        recursive: bool,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<TargetMapping>, CatalogError> {
        let target = self.target(target_arn)?;
        self.check_group(&target)?;
        let snap = self.snapshot();
        let covered = |t: &Target| match (t, target.thing_group()) {
            _ if *t == target => true,
            (Target::ThingGroup(child), Some(parent)) if recursive => self
                .registry()
                .thing_group_ancestors(child)
                .iter()
                .any(|a| a == parent),
            _ => false,
        };
        let mut rows: Vec<(String, TargetMapping)> = snap
            .attachments
            .iter()
            .filter(|(t, _)| covered(t))
            .flat_map(|(t, names)| {
                names.iter().map(move |profile| {
                    (
                        format!("{}\0{profile}", t.resource()),
                        TargetMapping {
                            profile: profile.clone(),
                            target: t.clone(),
                        },
                    )
                })
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let query = Fingerprint::new()
            .field(target.resource().as_bytes())
            .u64(u64::from(recursive));
        let page = page_sorted(
            rows,
            |(key, _)| key.as_bytes().to_vec(),
            TokenKind::TargetProfiles,
            query,
            max_results,
            next_token,
        )?;
        Ok(Page {
            items: page.items.into_iter().map(|(_, m)| m).collect(),
            next_token: page.next_token,
        })
    }
}
