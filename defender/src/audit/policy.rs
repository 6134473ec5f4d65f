//! The policy checks, on the default version of every policy (the version
//! in force), parsed by the broker's own policy parser.
//!
//! IOT_POLICY_OVERLY_PERMISSIVE_CHECK (spec §5.2): an Allow statement
//! grants a data-plane action over a broad set of devices, that is on a
//! resource whose device-specific part starts with a wildcard (`*`, `?`,
//! and in `topicfilter/` resources the MQTT wildcards `+` and `#`, which
//! grant wildcard subscriptions) before any policy variable scopes it to
//! the connecting device:
//! - `iot:Connect` on `client/*` is broad; `client/${iot:ClientId}` too
//!   (any client ID matches it), unless the statement requires
//!   `iot:Connection.Thing.IsAttached` to be true; thing-name, common-name
//!   and attribute variables scope it;
//! - `iot:Publish`/`iot:RetainPublish` on `topic/…`, `iot:Subscribe` on
//!   `topicfilter/…`, and the shadow and job actions on `thing/…` are broad
//!   when the wildcard comes before any variable (`$aws/things/*` is,
//!   `$aws/things/${iot:Connection.Thing.ThingName}/*` is not);
//! - `iot:Receive` is never broad: a client only receives what it may
//!   subscribe to;
//! - the resource `*` is broad for every action it is granted with.
//!
//! IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK:
//! - POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT: a Deny statement
//!   names a `topic/` or `topicfilter/` resource holding `+` or `#`, which
//!   policies treat literally;
//! - TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS: a Deny of
//!   `iot:Subscribe` on a topic filter, while an Allow of `iot:Subscribe`
//!   matches an MQTT wildcard filter that covers it (`building/#`,
//!   `building/+/…`) and no Deny matches that wildcard filter: the device
//!   subscribes to the wildcard and gets the denied topic's messages.

use wardmq_broker::authz::{ConditionOperator, Effect, Policy, Statement};

use super::outcome::codes;

/// The data-plane actions the check considers, as AWS spells them (the
/// match ignores case, as policies do).
const CONNECT: &str = "iot:Connect";
const PUBLISH: [&str; 2] = ["iot:Publish", "iot:RetainPublish"];
const SUBSCRIBE: &str = "iot:Subscribe";
const THING_ACTIONS: [&str; 7] = [
    "iot:DeleteThingShadow",
    "iot:GetThingShadow",
    "iot:UpdateThingShadow",
    "iot:DescribeJobExecution",
    "iot:GetPendingJobExecutions",
    "iot:StartNextPendingJobExecution",
    "iot:UpdateJobExecution",
];

/// `*` any run (including `/`), `?` one character; case-sensitive unless
/// the caller lower-cases both sides.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn covers(statement: &Statement, action: &str) -> bool {
    statement.actions().iter().any(|a| {
        glob(
            &a.as_str().to_ascii_lowercase(),
            &action.to_ascii_lowercase(),
        )
    })
}

/// A resource entry, split: `Any` matches every resource, `Typed` is
/// `kind/rest` (`kind` possibly a wildcard).
#[derive(Debug, PartialEq, Eq)]
enum Res<'a> {
    Any,
    Typed { kind: &'a str, rest: &'a str },
    Other,
}

fn split(resource: &str) -> Res<'_> {
    if resource == "*" {
        return Res::Any;
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() < 6 {
        // `arn:aws:iot:*` and the like: a wildcard that can span the rest.
        return if parts.iter().any(|p| p.contains('*')) {
            Res::Any
        } else {
            Res::Other
        };
    }
    let last = parts[5];
    match last.split_once('/') {
        Some((kind, rest)) => Res::Typed { kind, rest },
        None if last.contains('*') => Res::Any,
        None => Res::Other,
    }
}

fn kind_matches(kind: &str, wanted: &str) -> bool {
    glob(kind, wanted)
}

/// Whether the part after `kind/` starts with a wildcard before any
/// policy variable. `${*}`, `${?}` and `${$}` are literal characters.
fn broad_rest(rest: &str, mqtt_wildcards: bool) -> bool {
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '$' if rest[i..].starts_with("${") => {
                let Some(end) = rest[i..].find('}') else {
                    return false;
                };
                let inner = &rest[i + 2..i + end];
                if !matches!(inner, "*" | "?" | "$") {
                    // A real variable: what follows is the device's own.
                    return false;
                }
                // Skip the escape.
                while chars.peek().is_some_and(|(j, _)| *j <= i + end) {
                    chars.next();
                }
            }
            '*' | '?' => return true,
            '+' | '#' if mqtt_wildcards => return true,
            _ => {}
        }
    }
    false
}

fn requires_attached_thing(statement: &Statement) -> bool {
    statement.conditions().iter().any(|c| {
        c.key()
            .eq_ignore_ascii_case("iot:Connection.Thing.IsAttached")
            && matches!(
                c.operator(),
                ConditionOperator::Bool | ConditionOperator::StringEquals
            )
            && !c.if_exists()
            && c.values().iter().any(|v| v.eq_ignore_ascii_case("true"))
    })
}

/// Why a policy is overly permissive: one line per broad grant, empty if
/// it is not.
pub(crate) fn overly_permissive(policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for s in policy
        .statements()
        .iter()
        .filter(|s| s.effect() == Effect::Allow)
    {
        let mut grants: Vec<(&str, &str, bool)> = Vec::new();
        if covers(s, CONNECT) {
            grants.push((CONNECT, "client", false));
        }
        for a in PUBLISH {
            if covers(s, a) {
                grants.push((a, "topic", false));
            }
        }
        if covers(s, SUBSCRIBE) {
            grants.push((SUBSCRIBE, "topicfilter", true));
        }
        for a in THING_ACTIONS {
            if covers(s, a) {
                grants.push((a, "thing", false));
            }
        }
        for r in s.resources() {
            let text = r.as_str();
            for &(action, wanted, mqtt) in &grants {
                let broad = match split(text) {
                    Res::Any => true,
                    Res::Typed { kind, rest } if kind_matches(kind, wanted) => {
                        let wildcard_kind = kind != wanted;
                        wildcard_kind
                            || broad_rest(rest, mqtt)
                            || (wanted == "client"
                                && rest.to_ascii_lowercase().contains("${iot:clientid}")
                                && !requires_attached_thing(s))
                    }
                    _ => false,
                };
                if broad {
                    let line = format!("{action} on {text}");
                    if !out.contains(&line) {
                        out.push(line);
                    }
                }
            }
        }
    }
    out
}

/// The misconfigurations of a policy: (reason code, explanation).
pub(crate) fn misconfigurations(policy: &Policy) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut wildcard_denies = Vec::new();
    for s in policy
        .statements()
        .iter()
        .filter(|s| s.effect() == Effect::Deny)
    {
        for r in s.resources() {
            if let Res::Typed { kind, rest } = split(r.as_str()) {
                if (kind == "topic" || kind == "topicfilter")
                    && (rest.contains('+') || rest.contains('#'))
                {
                    wildcard_denies.push(r.as_str().to_owned());
                }
            }
        }
    }
    if !wildcard_denies.is_empty() {
        out.push((
            codes::POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT,
            format!(
                "Deny statements use MQTT wildcards, which policies treat as literal characters: {}.",
                wildcard_denies.join(", ")
            ),
        ));
    }
    let bypasses = deny_bypasses(policy);
    if !bypasses.is_empty() {
        out.push((
            codes::TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS,
            format!(
                "Denied topic filters can be subscribed to through allowed wildcard filters: {}.",
                bypasses.join("; ")
            ),
        ));
    }
    out
}

/// The topic-filter part of every `topicfilter/` resource of statements
/// with `effect` that cover `iot:Subscribe` (`*` for the resource `*`).
fn subscribe_filters(policy: &Policy, effect: Effect) -> Vec<String> {
    let mut out = Vec::new();
    for s in policy
        .statements()
        .iter()
        .filter(|s| s.effect() == effect && covers(s, SUBSCRIBE))
    {
        for r in s.resources() {
            match split(r.as_str()) {
                Res::Any => out.push("*".to_owned()),
                Res::Typed { kind, rest } if kind_matches(kind, "topicfilter") => {
                    out.push(rest.to_owned());
                }
                _ => {}
            }
        }
    }
    out
}

fn deny_bypasses(policy: &Policy) -> Vec<String> {
    let denies = subscribe_filters(policy, Effect::Deny);
    if denies.is_empty() {
        return Vec::new();
    }
    let allows: Vec<String> = subscribe_filters(policy, Effect::Allow)
        .into_iter()
        .filter(|a| !a.contains("${"))
        .collect();
    let mut out = Vec::new();
    for deny in &denies {
        if deny.contains("${") || deny == "*" {
            continue;
        }
        // The literal levels before any wildcard.
        let levels: Vec<&str> = deny
            .split('/')
            .take_while(|l| !l.contains(['*', '?', '+', '#']))
            .collect();
        if levels.is_empty() {
            continue;
        }
        let mut candidates = Vec::new();
        for i in 0..levels.len() {
            let prefix = levels[..i].join("/");
            candidates.push(if prefix.is_empty() {
                "#".to_owned()
            } else {
                format!("{prefix}/#")
            });
            let mut plus = levels.clone();
            plus[i] = "+";
            candidates.push(plus.join("/"));
        }
        for c in candidates {
            if denies.iter().any(|d| glob(d, &c)) {
                continue;
            }
            if let Some(a) = allows.iter().find(|a| glob(a, &c)) {
                out.push(format!(
                    "topicfilter/{deny} is denied but topicfilter/{c} is allowed (by topicfilter/{a})"
                ));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(statements: &str) -> Policy {
        let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
        Policy::parse("p", &doc).unwrap_or_else(|e| panic!("{e}"))
    }

    const A: &str = "arn:aws:iot:us-east-1:123456789012";

    #[test]
    fn glob_matches_like_policies() {
        assert!(glob("a/*", "a/b/c"));
        assert!(glob("a/?/c", "a/b/c"));
        assert!(!glob("a/?/c", "a/bb/c"));
        assert!(glob("*", ""));
        assert!(glob("building/*", "building/#"));
        assert!(!glob("building/x", "building/#"));
        assert!(glob("iot:*", "iot:connect"));
    }

    #[test]
    fn connect_on_every_client_is_broad() {
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{A}:client/*"}}"#
        ));
        assert_eq!(
            overly_permissive(&p),
            vec![format!("iot:Connect on {A}:client/*")]
        );
    }

    #[test]
    fn thing_name_with_is_attached_is_fine_client_id_needs_it() {
        let scoped = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Connect",
                "Resource":"{A}:client/${{iot:Connection.Thing.ThingName}}",
                "Condition":{{"Bool":{{"iot:Connection.Thing.IsAttached":"true"}}}}}}"#
        ));
        assert!(overly_permissive(&scoped).is_empty());
        let client_id = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{A}:client/${{iot:ClientId}}"}}"#
        ));
        assert_eq!(overly_permissive(&client_id).len(), 1);
        let attached = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Connect","Resource":"{A}:client/${{iot:ClientId}}",
                "Condition":{{"Bool":{{"iot:Connection.Thing.IsAttached":"true"}}}}}}"#
        ));
        assert!(overly_permissive(&attached).is_empty());
    }

    #[test]
    fn shadow_topics_and_receive() {
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{A}:topic/$aws/things/*/shadow/update"}},
               {{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{A}:topicfilter/$aws/things/+/shadow/update"}},
               {{"Effect":"Allow","Action":"iot:Receive","Resource":"{A}:topic/$aws/things/*"}},
               {{"Effect":"Allow","Action":"iot:Publish",
                 "Resource":"{A}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/shadow/*"}}"#
        ));
        let found = overly_permissive(&p);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("iot:Publish on"));
        assert!(found[1].starts_with("iot:Subscribe on"));
    }

    #[test]
    fn star_resources_and_actions() {
        let p = policy(r#"{"Effect":"Allow","Action":"iot:*","Resource":"*"}"#);
        let found = overly_permissive(&p);
        assert!(found.iter().any(|l| l.starts_with("iot:Connect")));
        assert!(found.iter().any(|l| l.starts_with("iot:GetThingShadow")));
        assert!(!found.iter().any(|l| l.contains("Receive")));
        let thing = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:UpdateThingShadow","Resource":"{A}:thing/*"}}"#
        ));
        assert_eq!(overly_permissive(&thing).len(), 1);
        let deny = policy(r#"{"Effect":"Deny","Action":"iot:*","Resource":"*"}"#);
        assert!(overly_permissive(&deny).is_empty());
        let escaped = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Publish","Resource":"{A}:topic/a${{*}}b"}}"#
        ));
        assert!(
            overly_permissive(&escaped).is_empty(),
            "an escaped * is literal"
        );
    }

    #[test]
    fn wildcards_in_deny_statements() {
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{A}:topicfilter/building/*"}},
               {{"Effect":"Deny","Action":"iot:Subscribe","Resource":"{A}:topicfilter/building/control_room/#"}}"#
        ));
        let found = misconfigurations(&p);
        assert_eq!(
            found[0].0,
            codes::POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT
        );
    }

    #[test]
    fn deny_bypassed_by_wildcard_allow() {
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{A}:topicfilter/building/*"}},
               {{"Effect":"Deny","Action":"iot:Subscribe","Resource":"{A}:topicfilter/building/control_room"}}"#
        ));
        let found = misconfigurations(&p);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].0,
            codes::TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS
        );
        assert!(
            found[0].1.contains("topicfilter/building/#"),
            "{}",
            found[0].1
        );
        // Denying the wildcards too closes it.
        let closed = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{A}:topicfilter/building/*"}},
               {{"Effect":"Deny","Action":"iot:Subscribe","Resource":["{A}:topicfilter/building/control_room",
                 "{A}:topicfilter/building/#","{A}:topicfilter/building/+","{A}:topicfilter/#","{A}:topicfilter/+/control_room"]}}"#
        ));
        let m = misconfigurations(&closed);
        assert!(
            m.iter()
                .all(|(c, _)| *c != codes::TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS),
            "{m:?}"
        );
        // An exact allow does not bypass anything.
        let exact = policy(&format!(
            r#"{{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{A}:topicfilter/building/lobby"}},
               {{"Effect":"Deny","Action":"iot:Subscribe","Resource":"{A}:topicfilter/building/control_room"}}"#
        ));
        assert!(misconfigurations(&exact).is_empty());
    }

    #[test]
    fn resource_splitting() {
        assert_eq!(split("*"), Res::Any);
        assert_eq!(split("arn:aws:iot:*"), Res::Any);
        assert_eq!(split("arn:aws:iot:r:a:*"), Res::Any);
        assert_eq!(
            split("arn:aws:iot:*:*:client/x"),
            Res::Typed {
                kind: "client",
                rest: "x"
            }
        );
        assert!(broad_rest("*", false));
        assert!(!broad_rest("${iot:ClientId}/*", false));
        assert!(broad_rest("a/+/b", true));
        assert!(!broad_rest("a/+/b", false));
    }
}
