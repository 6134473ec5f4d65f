//! Parsing an AWS IoT policy document into a [`Policy`].
//!
//! Every problem in a document is collected, each naming where it is
//! (`Statement[1].Effect must be Allow or Deny`), so an operator fixes a
//! document in one round. Anything the engine could not evaluate faithfully
//! is rejected rather than guessed at: `NotAction`, `NotResource`,
//! `Principal`, unknown keys, unknown condition operators or keys, unknown
//! policy variables.

use std::fmt;

use serde_json::{Map, Value};

use super::condition::{parse_conditions, Condition};
use super::request::{Action, Context};
use super::variables::Template;
use super::wildcard::{matches, matches_str, push_pattern, Tok};

/// AWS IoT's limit on a policy document, counted without whitespace.
pub const MAX_DOCUMENT_CHARS: usize = 2048;

/// Past this many bytes we do not even parse: the document is hopeless.
const MAX_RAW_BYTES: usize = 64 * 1024;

/// The only policy language version that has policy variables.
pub const POLICY_VERSION: &str = "2012-10-17";

/// Longest policy name AWS IoT accepts.
const MAX_NAME_CHARS: usize = 128;

/// Why a policy document was rejected: every problem found, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    policy: String,
    problems: Vec<String>,
}

impl PolicyError {
    /// Name of the policy that failed to parse.
    pub fn policy_name(&self) -> &str {
        &self.policy
    }

    /// Each problem, e.g. `Statement[1].Effect must be Allow or Deny`.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy \"{}\" is invalid: {}",
            self.policy,
            self.problems.join("; ")
        )
    }
}

impl std::error::Error for PolicyError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One entry of a statement's `Action`, e.g. `iot:Pub*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern {
    text: String,
    /// Lower-cased: IAM action names are case-insensitive.
    pattern: Vec<Tok>,
}

impl ActionPattern {
    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, action: Action) -> bool {
        matches_str(&self.pattern, action.lower_name())
    }
}

/// One entry of a statement's `Resource`: `*` or an ARN pattern, possibly
/// with policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePattern {
    text: String,
    template: Template,
}

impl ResourcePattern {
    /// The entry as written, e.g. `arn:aws:iot:*:*:topic/${iot:ClientId}/*`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it contains policy variables (the audit treats those as
    /// scoped to the device).
    pub fn uses_variables(&self) -> bool {
        self.template.uses_variables()
    }

    /// Matches an ARN (as chars). A variable the connection has no value
    /// for makes this resource match nothing, as in AWS IoT.
    pub(crate) fn matches(&self, ctx: &Context, arn: &[char]) -> bool {
        self.template
            .to_pattern(ctx)
            .is_some_and(|p| matches(&p, arn))
    }
}

/// One parsed statement, read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    actions: Vec<ActionPattern>,
    resources: Vec<ResourcePattern>,
    /// `NotResource` (Deny statements only): the statement applies to
    /// every resource none of these match. Used by the quarantine policy
    /// to deny all topics but one; an unresolvable variable in it matches
    /// nothing, so the Deny covers everything (fails closed).
    not_resources: Vec<ResourcePattern>,
    conditions: Vec<Condition>,
}

impl Statement {
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    pub fn actions(&self) -> &[ActionPattern] {
        &self.actions
    }

    pub fn resources(&self) -> &[ResourcePattern] {
        &self.resources
    }

    /// Every condition must hold for the statement to apply.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// Whether any `Action` entry covers `action`.
    pub fn covers_action(&self, action: Action) -> bool {
        self.actions.iter().any(|a| a.matches(action))
    }

    /// Whether the statement applies to `action` on `arn` for `ctx`.
    pub(crate) fn applies(&self, action: Action, arn: &[char], ctx: &Context) -> bool {
        let resource = if self.not_resources.is_empty() {
            self.resources.iter().any(|r| r.matches(ctx, arn))
        } else {
            !self.not_resources.iter().any(|r| r.matches(ctx, arn))
        };
        self.covers_action(action) && resource && self.conditions.iter().all(|c| c.holds(ctx))
    }
}

/// A parsed, validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: String,
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates `json` as the document of policy `name`.
    pub fn parse(name: &str, json: &str) -> Result<Policy, PolicyError> {
        let mut problems = Vec::new();
        if !valid_name(name) {
            problems.push(format!(
                "policy name \"{name}\" must be 1-{MAX_NAME_CHARS} characters of A-Z a-z 0-9 _+=,.@-"
            ));
        }
        let statements = parse_document(json, &mut problems);
        if problems.is_empty() {
            Ok(Policy {
                name: name.to_owned(),
                statements,
            })
        } else {
            Err(PolicyError {
                policy: name.to_owned(),
                problems,
            })
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

fn valid_name(name: &str) -> bool {
    let len = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&len)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

fn parse_document(json: &str, problems: &mut Vec<String>) -> Vec<Statement> {
    if json.len() > MAX_RAW_BYTES {
        problems.push(format!(
            "policy document is {} bytes long; the limit is {MAX_DOCUMENT_CHARS} characters without whitespace",
            json.len()
        ));
        return Vec::new();
    }
    let chars = json.chars().filter(|c| !c.is_whitespace()).count();
    if chars > MAX_DOCUMENT_CHARS {
        // Keep going: the author also wants to hear about other problems.
        problems.push(format!(
            "policy document is {chars} characters long without whitespace; the limit is {MAX_DOCUMENT_CHARS}"
        ));
    }
    let doc: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("policy document is not valid JSON: {e}"));
            return Vec::new();
        }
    };
    let Some(doc) = doc.as_object() else {
        problems.push("policy document must be a JSON object".to_owned());
        return Vec::new();
    };
    for key in doc.keys() {
        if !matches!(key.as_str(), "Version" | "Statement" | "Id") {
            problems.push(format!("unknown top-level key \"{key}\""));
        }
    }
    match doc.get("Version") {
        None => problems.push(format!("Version is required (\"{POLICY_VERSION}\")")),
        Some(Value::String(v)) if v == POLICY_VERSION => {}
        Some(_) => problems.push(format!("Version must be \"{POLICY_VERSION}\"")),
    }
    if doc.get("Id").is_some_and(|id| !id.is_string()) {
        problems.push("Id must be a string".to_owned());
    }
    let items: Vec<&Value> = match doc.get("Statement") {
        None => {
            problems.push("Statement is required".to_owned());
            return Vec::new();
        }
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(_) => {
            problems.push("Statement must be an object or a non-empty array of objects".to_owned());
            return Vec::new();
        }
    };
    let mut statements = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("Statement[{i}]");
        match item.as_object() {
            Some(obj) => {
                if let Some(s) = parse_statement(obj, &path, problems) {
                    statements.push(s);
                }
            }
            None => problems.push(format!("{path} must be an object")),
        }
    }
    statements
}

/// Returns a statement when its required parts parsed; problems found
/// anywhere in it are appended to `problems`.
fn parse_statement(
    obj: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<String>,
) -> Option<Statement> {
    for key in obj.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Action" | "Resource" | "Condition" => {}
            // Only in Deny statements (checked below), where it fails
            // closed; an Allow of "everything except" would fail open.
            "NotResource" if obj.get("Effect") == Some(&Value::String("Deny".into())) => {
                if obj.contains_key("Resource") {
                    problems.push(format!(
                        "{path} has both Resource and NotResource; use one"
                    ));
                }
            }
            // Explicitly unsupported: evaluating "everything except" lists
            // next to unresolvable variables would fail open.
            "NotAction" => problems.push(format!(
                "{path}.NotAction is not supported; list the actions in Action"
            )),
            "NotResource" => problems.push(format!(
                "{path}.NotResource is supported in Deny statements only; list the resources in Resource"
            )),
            "Principal" | "NotPrincipal" => problems.push(format!(
                "{path}.{key} is not allowed in an AWS IoT policy (the policy is attached to the principal)"
            )),
            _ => problems.push(format!("{path}: unknown key \"{key}\"")),
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push(format!("{path}.Sid must be a string"));
            None
        }
    };
    let effect = match obj.get("Effect") {
        None => {
            problems.push(format!("{path}.Effect is required"));
            None
        }
        Some(Value::String(e)) if e == "Allow" => Some(Effect::Allow),
        Some(Value::String(e)) if e == "Deny" => Some(Effect::Deny),
        Some(_) => {
            problems.push(format!("{path}.Effect must be Allow or Deny"));
            None
        }
    };
    let actions = match obj.get("Action") {
        // A NotAction was already reported; don't also say Action is missing.
        None if obj.contains_key("NotAction") => None,
        None => {
            problems.push(format!("{path}.Action is required"));
            None
        }
        Some(v) => string_list(v, &format!("{path}.Action"), problems, parse_action),
    };
    let not_resources = match obj.get("NotResource") {
        Some(v) if effect == Some(Effect::Deny) => {
            string_list(v, &format!("{path}.NotResource"), problems, parse_resource)
        }
        _ => Some(Vec::new()),
    };
    let resources = match obj.get("Resource") {
        None if obj.contains_key("NotResource") && effect == Some(Effect::Deny) => Some(Vec::new()),
        None if obj.contains_key("NotResource") => None,
        None => {
            problems.push(format!("{path}.Resource is required"));
            None
        }
        Some(v) => string_list(v, &format!("{path}.Resource"), problems, parse_resource),
    };
    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(v) => parse_conditions(v, path, problems),
    };
    Some(Statement {
        sid,
        effect: effect?,
        actions: actions?,
        resources: resources?,
        not_resources: not_resources?,
        conditions,
    })
}

/// Parses a string-or-array-of-strings element, each entry with `item`.
/// Entry paths are `Action` for the string form and `Action[i]` in arrays.
fn string_list<T>(
    value: &Value,
    path: &str,
    problems: &mut Vec<String>,
    item: fn(&str, &str) -> Result<T, String>,
) -> Option<Vec<T>> {
    let entries: Vec<(String, &Value)> = match value {
        Value::String(_) => vec![(path.to_owned(), value)],
        Value::Array(items) if items.is_empty() => {
            problems.push(format!("{path} must not be empty"));
            return None;
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect(),
        _ => {
            problems.push(format!("{path} must be a string or an array of strings"));
            return None;
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    let mut ok = true;
    for (entry_path, v) in entries {
        let Some(text) = v.as_str() else {
            problems.push(format!("{entry_path} must be a string"));
            ok = false;
            continue;
        };
        match item(&entry_path, text) {
            Ok(t) => out.push(t),
            Err(e) => {
                problems.push(e);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `*`, or `iot:` followed by an action name that may contain `*`/`?`.
fn parse_action(path: &str, text: &str) -> Result<ActionPattern, String> {
    let lower = text.to_ascii_lowercase();
    let valid = lower == "*"
        || lower.strip_prefix("iot:").is_some_and(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        });
    if !valid {
        return Err(format!(
            "{path} \"{text}\" is not an AWS IoT action (expected \"*\" or \"iot:<ActionName>\", wildcards * and ? allowed)"
        ));
    }
    let mut pattern = Vec::with_capacity(lower.len());
    push_pattern(&mut pattern, &lower);
    Ok(ActionPattern {
        text: text.to_owned(),
        pattern,
    })
}

/// `*`, or `arn:{partition}:iot:{region}:{account}:{resource}`; region,
/// account and resource may use wildcards and policy variables.
fn parse_resource(path: &str, text: &str) -> Result<ResourcePattern, String> {
    if text != "*" {
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let well_formed = matches!(
            parts.as_slice(),
            ["arn", partition, "iot", region, account, resource]
                if !partition.is_empty() && !region.is_empty()
                    && !account.is_empty() && !resource.is_empty()
        );
        if !well_formed {
            return Err(format!(
                "{path} \"{text}\" must be \"*\" or an ARN like arn:aws:iot:{{region}}:{{account}}:topic/{{name}}"
            ));
        }
    }
    let template = Template::parse(text).map_err(|e| format!("{path}: {e}"))?;
    Ok(ResourcePattern {
        text: text.to_owned(),
        template,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problems(json: &str) -> Vec<String> {
        match Policy::parse("p", json) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().to_vec(),
        }
    }

    #[test]
    fn single_statement_object_and_string_forms() {
        let p = Policy::parse(
            "dev-policy",
            r#"{"Version": "2012-10-17", "Statement": {
                "Effect": "Allow", "Action": "iot:Connect",
                "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"}}"#,
        )
        .unwrap();
        assert_eq!(p.name(), "dev-policy");
        let [s] = p.statements() else {
            panic!("one statement expected")
        };
        assert_eq!(s.effect(), Effect::Allow);
        assert_eq!(s.sid(), None);
        assert_eq!(s.actions().len(), 1);
        assert_eq!(s.actions().first().map(|a| a.as_str()), Some("iot:Connect"));
        assert!(s.resources().iter().all(|r| r.uses_variables()));
        assert!(s.covers_action(Action::Connect));
        assert!(!s.covers_action(Action::Publish));
    }

    #[test]
    fn arrays_conditions_and_other_iot_actions() {
        let p = Policy::parse(
            "p",
            r#"{"Version": "2012-10-17", "Id": "x", "Statement": [
                {"Sid": "A", "Effect": "Allow", "Action": ["iot:Publish", "iot:receive", "iot:GetThingShadow"],
                 "Resource": ["arn:aws:iot:*:*:topic/a/*", "*"]},
                {"Effect": "Deny", "Action": "*", "Resource": "arn:aws:iot:eu-west-1:1:topicfilter/#",
                 "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "false"}}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(p.statements().len(), 2);
        let s = p.statements().get(1).unwrap();
        assert_eq!(s.effect(), Effect::Deny);
        assert_eq!(s.conditions().len(), 1);
        assert_eq!(
            s.conditions().first().map(|c| c.key()),
            Some("iot:Connection.Thing.IsAttached")
        );
        assert!(Action::ALL.iter().all(|a| s.covers_action(*a)));
        assert_eq!(p.statements().first().and_then(|s| s.sid()), Some("A"));
    }

    #[test]
    fn not_resource_only_in_deny() {
        let ok = Policy::parse(
            "q",
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iot:Publish",
                "NotResource": "arn:aws:iot:*:*:topic/quarantine/*"}]}"#,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let allow = problems(
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "NotResource": "*"}]}"#,
        );
        assert!(
            allow.iter().any(|p| p.contains("Deny statements only")),
            "{allow:?}"
        );
        let both = problems(
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iot:Publish", "Resource": "*", "NotResource": "*"}]}"#,
        );
        assert!(both.iter().any(|p| p.contains("use one")), "{both:?}");
    }

    #[test]
    fn invalid_json() {
        let p = problems("{");
        assert_eq!(p.len(), 1);
        assert!(
            p.first()
                .unwrap()
                .starts_with("policy document is not valid JSON: "),
            "{p:?}"
        );
        assert_eq!(
            problems("[]"),
            vec!["policy document must be a JSON object"]
        );
    }

    #[test]
    fn collects_every_problem() {
        let p = problems(
            r#"{"Version": "2008-10-17", "Extra": 1, "Statement": [
                {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"},
                {"Effect": "allow", "Action": ["iot:Publish", 3, "s3:GetObject"], "Resource": []},
                {"Sid": 7, "NotAction": "iot:Connect", "NotResource": "*", "Principal": "*", "Foo": 1},
                "nope",
                {"Effect": "Deny", "Action": [], "Resource": ["arn:aws:s3:::bucket", "topic/x",
                  "arn:aws:iot:*:*:topic/${aws:username}", "arn:aws:iot:*:*:topic/${iot:ClientId"]},
                {"Effect": "Allow", "Action": "iot:", "Resource": 5,
                 "Condition": {"DateLessThan": {"aws:CurrentTime": "x"}}}
            ]}"#,
        );
        let mut expected = vec![
            "unknown top-level key \"Extra\"".to_owned(),
            "Version must be \"2012-10-17\"".to_owned(),
            "Statement[1].Effect must be Allow or Deny".to_owned(),
            "Statement[1].Action[1] must be a string".to_owned(),
            "Statement[1].Action[2] \"s3:GetObject\" is not an AWS IoT action (expected \"*\" or \"iot:<ActionName>\", wildcards * and ? allowed)".to_owned(),
            "Statement[1].Resource must not be empty".to_owned(),
            "Statement[2].NotAction is not supported; list the actions in Action".to_owned(),
            "Statement[2].NotResource is supported in Deny statements only; list the resources in Resource".to_owned(),
            "Statement[2].Principal is not allowed in an AWS IoT policy (the policy is attached to the principal)".to_owned(),
            "Statement[2]: unknown key \"Foo\"".to_owned(),
            "Statement[2].Sid must be a string".to_owned(),
            "Statement[2].Effect is required".to_owned(),
            "Statement[3] must be an object".to_owned(),
            "Statement[4].Action must not be empty".to_owned(),
            "Statement[4].Resource[0] \"arn:aws:s3:::bucket\" must be \"*\" or an ARN like arn:aws:iot:{region}:{account}:topic/{name}".to_owned(),
            "Statement[4].Resource[1] \"topic/x\" must be \"*\" or an ARN like arn:aws:iot:{region}:{account}:topic/{name}".to_owned(),
            "Statement[4].Resource[2]: unsupported policy variable \"${aws:username}\"".to_owned(),
            "Statement[4].Resource[3]: unterminated policy variable \"${iot:ClientId\"".to_owned(),
            "Statement[5].Action \"iot:\" is not an AWS IoT action (expected \"*\" or \"iot:<ActionName>\", wildcards * and ? allowed)".to_owned(),
            "Statement[5].Resource must be a string or an array of strings".to_owned(),
            "Statement[5].Condition: unsupported condition operator \"DateLessThan\" (supported: StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, StringLike, StringNotLike, Bool, each optionally ...IfExists, and Null)".to_owned(),
        ];
        // Key order within one object depends on serde_json's
        // `preserve_order` feature; compare as sets of lines.
        let mut got = p;
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn missing_parts() {
        assert_eq!(
            problems("{}"),
            vec![
                "Version is required (\"2012-10-17\")",
                "Statement is required"
            ]
        );
        assert_eq!(
            problems(r#"{"Version": "2012-10-17", "Statement": []}"#),
            vec!["Statement must be an object or a non-empty array of objects"]
        );
        assert_eq!(
            problems(r#"{"Version": "2012-10-17", "Statement": [{}]}"#),
            vec![
                "Statement[0].Effect is required",
                "Statement[0].Action is required",
                "Statement[0].Resource is required"
            ]
        );
    }

    #[test]
    fn error_display_names_policy_and_problems() {
        let e = Policy::parse("bad name!", r#"{"Version": "2012-10-17", "Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}"#)
            .unwrap_err();
        assert_eq!(e.policy_name(), "bad name!");
        assert_eq!(
            e.to_string(),
            "policy \"bad name!\" is invalid: policy name \"bad name!\" must be 1-128 characters of A-Z a-z 0-9 _+=,.@-; Statement[0].Effect must be Allow or Deny"
        );
    }

    #[test]
    fn length_limit_counts_without_whitespace() {
        let doc = |t: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/{t}"}}}}"#
            )
        };
        let fits = doc(&"a".repeat(MAX_DOCUMENT_CHARS - doc("").len()));
        assert_eq!(fits.len(), MAX_DOCUMENT_CHARS);
        // Whitespace does not count.
        let padded = fits.replace(',', " ,\n\t ");
        assert!(padded.len() > MAX_DOCUMENT_CHARS);
        assert!(Policy::parse("p", &padded).is_ok());
        let long = doc(&"a".repeat(2000));
        let n = long.chars().count();
        assert_eq!(
            problems(&long),
            vec![format!(
                "policy document is {n} characters long without whitespace; the limit is 2048"
            )]
        );
        // And other problems are still reported alongside.
        let long_bad = long.replace("Allow", "Permit");
        assert_eq!(problems(&long_bad).len(), 2);
        let huge = " ".repeat(MAX_RAW_BYTES + 1);
        assert_eq!(problems(&huge).len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in proptest::prelude::any::<String>()) {
            let _ = Policy::parse("p", &s);
        }

        #[test]
        fn parse_never_panics_on_near_valid(
            action in "[a-zA-Z:*?]{0,12}",
            resource in "[a-z:*?/${}\\[\\]+#.A-Z]{0,40}",
        ) {
            let doc = serde_json::json!({
                "Version": "2012-10-17",
                "Statement": {"Effect": "Allow", "Action": action, "Resource": resource}
            });
            let _ = Policy::parse("p", &doc.to_string());
        }
    }
}
