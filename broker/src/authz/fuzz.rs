//! The invariants fuzzing checks on policy documents: parsing never panics,
//! what parses means the same after a compact re-serialization (whitespace
//! and escapes carry no meaning), and evaluation of what parses never panics
//! and never lets a Deny-only policy allow.

use serde_json::Value;

use super::{evaluate, Action, Context, Effect, Policy, Request, Resource, Scope};

/// Fuzz and smoke-test entry point: `data` is a policy document.
///
/// # Panics
///
/// When an invariant above does not hold.
pub fn fuzz_check(data: &[u8]) {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::parse("fuzz", json) else {
        return;
    };
    let compact = serde_json::from_str::<Value>(json)
        .map(|v| v.to_string())
        .unwrap_or_else(|e| panic!("parsed a policy from invalid JSON: {e}"));
    assert_eq!(
        Policy::parse("fuzz", &compact).as_ref(),
        Ok(&policy),
        "compact form {compact}"
    );
    let deny_only = policy
        .statements()
        .iter()
        .all(|s| s.effect() == Effect::Deny);
    let scope = Scope::new("us-east-1", "123456789012");
    for ctx in contexts() {
        for request in requests() {
            let decision = evaluate(&[&policy], &scope, &ctx, &request);
            assert!(
                !(deny_only && decision.allowed),
                "a Deny-only policy allowed {request:?}: {}",
                decision.reason
            );
        }
    }
}

/// A connection with every policy variable set, and a bare one.
fn contexts() -> [Context; 2] {
    let mut full = Context::new("dev-1");
    full.thing_name = Some("dev-1".to_owned());
    full.thing_type_name = Some("sensor".to_owned());
    full.thing_attributes
        .insert("site".to_owned(), "a/b".to_owned());
    full.certificate_common_name = Some("dev-1".to_owned());
    full.is_attached = true;
    [full, Context::new("*")]
}

fn requests() -> Vec<Request> {
    let resources = [
        Resource::client("dev-1"),
        Resource::topic("dev-1/telemetry"),
        Resource::topic("$aws/things/dev-1/defender/metrics/json"),
        Resource::topicfilter("dev-1/#"),
        Resource::topicfilter("+/x"),
    ];
    Action::ALL
        .iter()
        .flat_map(|&action| {
            resources
                .iter()
                .map(move |r| Request::new(action, r.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fuzz_check;

    /// The policy_document fuzz target's inputs, on stable Rust.
    #[test]
    fn fuzz_inputs_hold_the_invariants() {
        let n =
            crate::fuzz_corpus::replay(env!("CARGO_MANIFEST_DIR"), "policy_document", fuzz_check);
        assert!(n > 10, "only {n} inputs");
    }
}
