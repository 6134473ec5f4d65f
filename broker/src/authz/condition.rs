//! A statement's `Condition` block: parsing (unknown operators and keys are
//! rejected, so a condition we cannot evaluate never silently passes or
//! fails) and evaluation against a connection's [`Context`].
//!
//! Supported operators: `StringEquals`, `StringNotEquals`,
//! `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`, `StringLike`,
//! `StringNotLike`, `Bool` (each also with the `IfExists` suffix) and `Null`.
//! Supported keys: every key that is also a policy variable (see
//! [`super::variables`]). `ForAnyValue:`/`ForAllValues:` qualifiers are not
//! supported: every key here is single-valued.
//!
//! IAM semantics: all operators of a block must hold, and every key under an
//! operator; a key with several values holds if any value matches (negated
//! operators: if none does). A key the connection has no value for fails a
//! positive operator and passes a negated one or an `...IfExists` one. A
//! condition *value* whose policy variable has no value fails the condition.

use serde_json::Value;

use super::request::Context;
use super::variables::{Template, Variable};
use super::wildcard::matches_str;

/// A condition operator the engine understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    Bool,
    Null,
}

impl ConditionOperator {
    const ALL: [(&'static str, ConditionOperator); 8] = [
        ("StringEquals", ConditionOperator::StringEquals),
        ("StringNotEquals", ConditionOperator::StringNotEquals),
        (
            "StringEqualsIgnoreCase",
            ConditionOperator::StringEqualsIgnoreCase,
        ),
        (
            "StringNotEqualsIgnoreCase",
            ConditionOperator::StringNotEqualsIgnoreCase,
        ),
        ("StringLike", ConditionOperator::StringLike),
        ("StringNotLike", ConditionOperator::StringNotLike),
        ("Bool", ConditionOperator::Bool),
        ("Null", ConditionOperator::Null),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(n, _)| n)
    }

    fn negated(self) -> bool {
        matches!(
            self,
            ConditionOperator::StringNotEquals
                | ConditionOperator::StringNotEqualsIgnoreCase
                | ConditionOperator::StringNotLike
        )
    }

    /// Parses `Name` or `NameIfExists`; names are case-sensitive, as in IAM.
    fn parse(text: &str) -> Option<(ConditionOperator, bool)> {
        let (base, if_exists) = match text.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (text, false),
        };
        let (_, op) = Self::ALL.iter().find(|(n, _)| *n == base)?;
        // `Null` is itself the existence test; `NullIfExists` means nothing.
        if if_exists && *op == ConditionOperator::Null {
            return None;
        }
        Some((*op, if_exists))
    }
}

/// One `operator: { key: values }` entry of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    operator: ConditionOperator,
    if_exists: bool,
    key_name: String,
    key: Variable,
    value_texts: Vec<String>,
    values: Vec<Template>,
}

impl Condition {
    pub fn operator(&self) -> ConditionOperator {
        self.operator
    }

    pub fn if_exists(&self) -> bool {
        self.if_exists
    }

    /// The condition key as written, e.g. `iot:Connection.Thing.IsAttached`.
    pub fn key(&self) -> &str {
        &self.key_name
    }

    /// The values as written (booleans and numbers as their JSON text).
    pub fn values(&self) -> &[String] {
        &self.value_texts
    }

    /// Whether the condition holds for this connection.
    pub(crate) fn holds(&self, ctx: &Context) -> bool {
        let actual = self.key.resolve(ctx);
        if self.operator == ConditionOperator::Null {
            // Values were checked to be "true"/"false" at parse time.
            let absent = actual.is_none();
            return self
                .value_texts
                .iter()
                .any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let Some(actual) = actual else {
            return self.if_exists || self.operator.negated();
        };
        let mut any = false;
        for value in &self.values {
            let hit = match self.operator {
                ConditionOperator::StringLike | ConditionOperator::StringNotLike => {
                    match value.to_pattern(ctx) {
                        Some(p) => matches_str(&p, &actual),
                        None => return false,
                    }
                }
                _ => {
                    let Some(v) = value.to_text(ctx) else {
                        return false;
                    };
                    match self.operator {
                        ConditionOperator::StringEquals | ConditionOperator::StringNotEquals => {
                            *actual == *v
                        }
                        ConditionOperator::StringEqualsIgnoreCase
                        | ConditionOperator::StringNotEqualsIgnoreCase => {
                            actual.to_lowercase() == v.to_lowercase()
                        }
                        // Bool (and Null, handled above): "true"/"false" in any case.
                        _ => actual.eq_ignore_ascii_case(&v),
                    }
                }
            };
            any |= hit;
        }
        if self.operator.negated() {
            !any
        } else {
            any
        }
    }
}

/// Parses a statement's `Condition` value; `path` is e.g. `Statement[0]`.
/// Problems are appended to `problems`; the conditions that did parse are
/// returned (they are only used when there are no problems at all).
pub(crate) fn parse_conditions(
    value: &Value,
    path: &str,
    problems: &mut Vec<String>,
) -> Vec<Condition> {
    let mut out = Vec::new();
    let Some(block) = value.as_object() else {
        problems.push(format!("{path}.Condition must be an object"));
        return out;
    };
    for (op_name, keys) in block {
        let op_path = format!("{path}.Condition.{op_name}");
        let Some((operator, if_exists)) = ConditionOperator::parse(op_name) else {
            problems.push(format!(
                "{path}.Condition: unsupported condition operator \"{op_name}\" (supported: \
                 StringEquals, StringNotEquals, StringEqualsIgnoreCase, \
                 StringNotEqualsIgnoreCase, StringLike, StringNotLike, Bool, each optionally \
                 ...IfExists, and Null)"
            ));
            continue;
        };
        let Some(keys) = keys.as_object() else {
            problems.push(format!("{op_path} must be an object"));
            continue;
        };
        if keys.is_empty() {
            problems.push(format!("{op_path} must not be empty"));
        }
        for (key_name, raw) in keys {
            let key_path = format!("{op_path}.{key_name}");
            let Some(key) = Variable::parse(key_name) else {
                problems.push(format!(
                    "{op_path}: unsupported condition key \"{key_name}\""
                ));
                continue;
            };
            let Some(value_texts) = condition_values(raw) else {
                problems.push(format!(
                    "{key_path} must be a string, boolean or number, or a non-empty array of them"
                ));
                continue;
            };
            if matches!(operator, ConditionOperator::Bool | ConditionOperator::Null)
                && !value_texts
                    .iter()
                    .all(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"))
            {
                problems.push(format!("{key_path} values must be \"true\" or \"false\""));
                continue;
            }
            let mut values = Vec::with_capacity(value_texts.len());
            for text in &value_texts {
                match Template::parse(text) {
                    Ok(t) => values.push(t),
                    Err(e) => problems.push(format!("{key_path}: {e}")),
                }
            }
            out.push(Condition {
                operator,
                if_exists,
                key_name: key_name.clone(),
                key,
                value_texts,
                values,
            });
        }
    }
    out
}

/// A condition's value(s) as text: a scalar or a non-empty array of scalars.
fn condition_values(raw: &Value) -> Option<Vec<String>> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match raw {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(json: &str) -> (Vec<Condition>, Vec<String>) {
        let v: Value = serde_json::from_str(json).unwrap();
        let mut problems = Vec::new();
        let c = parse_conditions(&v, "Statement[0]", &mut problems);
        (c, problems)
    }

    fn holds(json: &str, ctx: &Context) -> bool {
        let (c, problems) = parse(json);
        assert!(problems.is_empty(), "{problems:?}");
        c.iter().all(|c| c.holds(ctx))
    }

    fn thing_ctx() -> Context {
        let mut c = Context::new("dev-1");
        c.thing_name = Some("dev-1".into());
        c.is_attached = true;
        c
    }

    #[test]
    fn bool_is_attached() {
        let j = r#"{"Bool": {"iot:Connection.Thing.IsAttached": "true"}}"#;
        assert!(holds(j, &thing_ctx()));
        assert!(!holds(j, &Context::new("dev-1")));
        let j = r#"{"Bool": {"iot:Connection.Thing.IsAttached": false}}"#;
        assert!(holds(j, &Context::new("x")));
    }

    #[test]
    fn string_operators() {
        let c = thing_ctx();
        assert!(holds(r#"{"StringEquals": {"iot:ClientId": "dev-1"}}"#, &c));
        assert!(!holds(r#"{"StringEquals": {"iot:ClientId": "DEV-1"}}"#, &c));
        assert!(holds(
            r#"{"StringEqualsIgnoreCase": {"iot:ClientId": "DEV-1"}}"#,
            &c
        ));
        assert!(holds(
            r#"{"StringNotEquals": {"iot:ClientId": ["a", "b"]}}"#,
            &c
        ));
        assert!(!holds(
            r#"{"StringNotEquals": {"iot:ClientId": ["a", "dev-1"]}}"#,
            &c
        ));
        assert!(holds(
            r#"{"StringLike": {"iot:ClientId": ["x*", "dev-?"]}}"#,
            &c
        ));
        assert!(!holds(
            r#"{"StringNotLike": {"iot:ClientId": "dev-*"}}"#,
            &c
        ));
        assert!(holds(
            r#"{"StringEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}"#,
            &c
        ));
        // all keys and all operators must hold
        assert!(!holds(
            r#"{"StringEquals": {"iot:ClientId": "dev-1"}, "StringLike": {"iot:ClientId": "z*"}}"#,
            &c
        ));
    }

    #[test]
    fn missing_keys() {
        let c = Context::new("dev-1");
        assert!(!holds(
            r#"{"StringEquals": {"iot:Connection.Thing.ThingName": "a"}}"#,
            &c
        ));
        assert!(holds(
            r#"{"StringNotEquals": {"iot:Connection.Thing.ThingName": "a"}}"#,
            &c
        ));
        assert!(holds(
            r#"{"StringEqualsIfExists": {"iot:Connection.Thing.ThingName": "a"}}"#,
            &c
        ));
        assert!(holds(
            r#"{"Null": {"iot:Connection.Thing.ThingName": "true"}}"#,
            &c
        ));
        assert!(!holds(
            r#"{"Null": {"iot:Connection.Thing.ThingName": "false"}}"#,
            &c
        ));
        // unresolvable variable in a value fails the condition, even negated
        assert!(!holds(
            r#"{"StringNotEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}"#,
            &c
        ));
    }

    #[test]
    fn parse_problems() {
        let (_, p) = parse(
            r#"{"DateGreaterThan": {"aws:CurrentTime": "2020"},
                "StringEquals": {"aws:SourceIp": "1.2.3.4", "iot:ClientId": {}},
                "Bool": {"iot:Connection.Thing.IsAttached": "yes"},
                "ForAnyValue:StringEquals": {"iot:ClientId": "a"},
                "NullIfExists": {"iot:ClientId": "true"},
                "StringLike": []}"#,
        );
        let unsupported = |op: &str| {
            format!(
                "Statement[0].Condition: unsupported condition operator \"{op}\" (supported: \
                 StringEquals, StringNotEquals, StringEqualsIgnoreCase, \
                 StringNotEqualsIgnoreCase, StringLike, StringNotLike, Bool, each optionally \
                 ...IfExists, and Null)"
            )
        };
        // Sorted: key order depends on serde_json's `preserve_order` feature.
        let mut p = p;
        p.sort();
        let mut expected = vec![
            "Statement[0].Condition.Bool.iot:Connection.Thing.IsAttached values must be \"true\" or \"false\"".to_owned(),
            unsupported("DateGreaterThan"),
            unsupported("ForAnyValue:StringEquals"),
            unsupported("NullIfExists"),
            "Statement[0].Condition.StringEquals: unsupported condition key \"aws:SourceIp\"".to_owned(),
            "Statement[0].Condition.StringEquals.iot:ClientId must be a string, boolean or number, or a non-empty array of them".to_owned(),
            "Statement[0].Condition.StringLike must be an object".to_owned(),
        ];
        expected.sort();
        assert_eq!(p, expected);
        let (_, p) = parse(r#"[]"#);
        assert_eq!(
            p,
            vec!["Statement[0].Condition must be an object".to_owned()]
        );
    }
}
