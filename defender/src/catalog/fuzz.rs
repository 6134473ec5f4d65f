//! The invariants fuzzing checks on CreateSecurityProfile's request body:
//! reading and validating any JSON never panics; a profile that passes is
//! also accepted by ValidateSecurityProfileBehaviors, and comes back equal
//! (and still valid) from its DescribeSecurityProfile JSON.

use super::model::ProfileMembers;
use super::profiles::check_profile;
use crate::detect::catalogue::MetricCatalogue;
use crate::detect::model::SecurityProfile;
use crate::detect::validate::validate_behaviors;

/// Fuzz and smoke-test entry point: `data` is a CreateSecurityProfile
/// body, checked as the admin API checks it, without storing anything.
///
/// # Panics
///
/// When an invariant above does not hold.
pub fn fuzz_check(data: &[u8]) {
    let Ok(members) = serde_json::from_slice::<ProfileMembers>(data) else {
        return;
    };
    let catalogue = MetricCatalogue::aws();
    let mut profile = SecurityProfile {
        security_profile_name: "fuzz".to_owned(),
        ..SecurityProfile::default()
    };
    members.apply_to(&mut profile);
    if check_profile(&profile, &catalogue).is_err() {
        return;
    }
    let behaviors = profile.behaviors.as_deref().unwrap_or_default();
    let result = validate_behaviors(behaviors, &catalogue);
    assert!(result.valid, "created, but behaviours invalid: {result:?}");

    let described = serde_json::to_string(&profile)
        .unwrap_or_else(|e| panic!("{profile:?} does not serialize: {e}"));
    let again: SecurityProfile = serde_json::from_str(&described)
        .unwrap_or_else(|e| panic!("{described} does not deserialize: {e}"));
    assert_eq!(again, profile, "through {described}");
    assert!(
        check_profile(&again, &catalogue).is_ok(),
        "invalid after a round trip: {described}"
    );
}

#[cfg(test)]
mod tests {
    use super::fuzz_check;

    /// The security_profile fuzz target's inputs, on stable Rust.
    #[test]
    fn fuzz_inputs_hold_the_invariants() {
        let n = wardmq_broker::fuzz_corpus::replay(
            env!("CARGO_MANIFEST_DIR"),
            "security_profile",
            fuzz_check,
        );
        assert!(n > 10, "only {n} inputs");
    }
}
