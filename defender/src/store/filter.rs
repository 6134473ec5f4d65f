//! The filters ListViolationEvents and ListActiveViolations share.

use super::page::Fingerprint;
use crate::detect::model::{
    ActiveViolation, Behavior, BehaviorCriteriaType, VerificationState, ViolationEvent,
};

/// Which violations a list request selects. Every member left `None`
/// selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViolationFilter {
    pub thing_name: Option<String>,
    pub security_profile_name: Option<String>,
    pub behavior_criteria_type: Option<BehaviorCriteriaType>,
    /// `listSuppressedAlerts`. The model's doc says only "A list of all
    /// suppressed alerts"; we read it like its sibling
    /// `listSuppressedFindings` (ListAuditFindings), whose doc is explicit:
    /// `true` lists only suppressed ones, `false` only unsuppressed ones,
    /// absent lists both.
    pub list_suppressed_alerts: Option<bool>,
    pub verification_state: Option<VerificationState>,
}

impl ViolationFilter {
    pub fn matches_event(&self, e: &ViolationEvent) -> bool {
        self.matches(
            &e.thing_name,
            &e.security_profile_name,
            &e.behavior,
            e.verification_state,
        )
    }

    pub fn matches_active(&self, a: &ActiveViolation) -> bool {
        self.matches(
            &a.thing_name,
            &a.security_profile_name,
            &a.behavior,
            a.verification_state,
        )
    }

    fn matches(
        &self,
        thing: &str,
        profile: &str,
        behavior: &Behavior,
        state: VerificationState,
    ) -> bool {
        self.thing_name.as_deref().is_none_or(|t| t == thing)
            && self
                .security_profile_name
                .as_deref()
                .is_none_or(|p| p == profile)
            && self
                .behavior_criteria_type
                .is_none_or(|c| c == behavior.criteria_type())
            && self
                .list_suppressed_alerts
                .is_none_or(|s| s == behavior.suppresses_alerts())
            && self.verification_state.is_none_or(|v| v == state)
    }

    /// Adds every member to a token's query fingerprint, so a token is
    /// refused if the filters change between pages.
    pub(crate) fn fingerprint(&self, fp: Fingerprint) -> Fingerprint {
        let criteria = self.behavior_criteria_type.map(|c| match c {
            BehaviorCriteriaType::Static => [1u8],
            BehaviorCriteriaType::Statistical => [2],
            BehaviorCriteriaType::MachineLearning => [3],
        });
        let suppressed = self.list_suppressed_alerts.map(|s| [u8::from(s)]);
        let state = self.verification_state.map(|v| match v {
            VerificationState::FalsePositive => [1u8],
            VerificationState::BenignPositive => [2],
            VerificationState::TruePositive => [3],
            VerificationState::Unknown => [4],
        });
        fp.opt(self.thing_name.as_deref().map(str::as_bytes))
            .opt(self.security_profile_name.as_deref().map(str::as_bytes))
            .opt(criteria.as_ref().map(|b| b.as_slice()))
            .opt(suppressed.as_ref().map(|b| b.as_slice()))
            .opt(state.as_ref().map(|b| b.as_slice()))
    }
}
