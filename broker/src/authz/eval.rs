//! Evaluating a request against a set of policies, with IAM's rules: an
//! explicit Deny in any applicable statement wins; otherwise any applicable
//! Allow grants; otherwise the request is denied by default.

use std::borrow::Borrow;

use super::document::{Effect, Policy};
use super::request::{Context, Request, Scope};

/// The outcome of [`evaluate`], with a reason an operator can read in a log
/// or an audit finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Decides `request` for the connection `ctx` under `policies` (every policy
/// attached to the connection's principal, in any order).
///
/// Accepts `&[Policy]`, `&[&Policy]` or `&[Arc<Policy>]`.
pub fn evaluate<P: Borrow<Policy>>(
    policies: &[P],
    scope: &Scope,
    ctx: &Context,
    request: &Request,
) -> Decision {
    let arn = request.resource.arn(scope);
    let arn_chars: Vec<char> = arn.chars().collect();
    let mut allowed_by: Option<String> = None;
    for policy in policies {
        let policy = policy.borrow();
        for (i, statement) in policy.statements().iter().enumerate() {
            if !statement.applies(request.action, &arn_chars, ctx) {
                continue;
            }
            let whom = || {
                let sid = statement
                    .sid()
                    .map(|s| format!(" (Sid \"{s}\")"))
                    .unwrap_or_default();
                format!("policy \"{}\" Statement[{i}]{sid}", policy.name())
            };
            match statement.effect() {
                // Nothing can override an explicit Deny: stop here.
                Effect::Deny => {
                    return Decision {
                        allowed: false,
                        reason: format!("{} on {arn} denied by {}", request.action, whom()),
                    }
                }
                Effect::Allow if allowed_by.is_none() => allowed_by = Some(whom()),
                Effect::Allow => {}
            }
        }
    }
    match allowed_by {
        Some(whom) => Decision {
            allowed: true,
            reason: format!("{} on {arn} allowed by {whom}", request.action),
        },
        None => Decision {
            allowed: false,
            reason: format!("{} on {arn}: no statement allows", request.action),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::super::request::{Action, Resource};
    use super::*;

    fn scope() -> Scope {
        Scope {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }

    fn policy(name: &str, statements: &str) -> Policy {
        let doc = format!(r#"{{"Version": "2012-10-17", "Statement": {statements}}}"#);
        Policy::parse(name, &doc).unwrap_or_else(|e| panic!("{e}"))
    }

    fn allow(action: &str, resource: &str) -> Policy {
        policy(
            "allow",
            &format!(r#"{{"Effect": "Allow", "Action": "{action}", "Resource": "{resource}"}}"#),
        )
    }

    fn decide(policies: &[Policy], ctx: &Context, action: Action, resource: Resource) -> bool {
        evaluate(policies, &scope(), ctx, &Request::new(action, resource)).allowed
    }

    fn thing(name: &str, attached: bool) -> Context {
        let mut c = Context::new(name);
        c.thing_name = Some(name.into());
        c.is_attached = attached;
        c
    }

    #[test]
    fn allow_and_default_deny() {
        let p = [allow(
            "iot:Publish",
            "arn:aws:iot:us-east-1:123456789012:topic/a/b",
        )];
        let c = Context::new("c");
        assert!(decide(&p, &c, Action::Publish, Resource::topic("a/b")));
        assert!(!decide(&p, &c, Action::Publish, Resource::topic("a/c")));
        assert!(!decide(&p, &c, Action::Receive, Resource::topic("a/b")));
        assert!(!decide(
            &[] as &[Policy],
            &c,
            Action::Connect,
            Resource::client("c")
        ));
        let d = evaluate(
            &p,
            &scope(),
            &c,
            &Request::new(Action::Publish, Resource::topic("x")),
        );
        assert_eq!(
            d,
            Decision {
                allowed: false,
                reason:
                    "iot:Publish on arn:aws:iot:us-east-1:123456789012:topic/x: no statement allows"
                        .into()
            }
        );
        let d = evaluate(
            &p,
            &scope(),
            &c,
            &Request::new(Action::Publish, Resource::topic("a/b")),
        );
        assert_eq!(
            d.reason,
            "iot:Publish on arn:aws:iot:us-east-1:123456789012:topic/a/b allowed by policy \"allow\" Statement[0]"
        );
    }

    #[test]
    fn region_and_account_must_match_unless_wildcarded() {
        let c = Context::new("c");
        let other = [allow(
            "iot:Publish",
            "arn:aws:iot:eu-west-1:123456789012:topic/a",
        )];
        assert!(!decide(&other, &c, Action::Publish, Resource::topic("a")));
        let any = [allow("iot:Publish", "arn:aws:iot:*:*:topic/a")];
        assert!(decide(&any, &c, Action::Publish, Resource::topic("a")));
    }

    #[test]
    fn explicit_deny_wins_across_policies() {
        let everything = Arc::new(allow("iot:*", "*"));
        let deny = Arc::new(policy(
            "no-admin",
            r#"[{"Sid": "NoAdmin", "Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/admin/*"}]"#,
        ));
        let c = Context::new("c");
        // Order does not matter.
        for set in [
            vec![everything.clone(), deny.clone()],
            vec![deny.clone(), everything.clone()],
        ] {
            let d = evaluate(
                &set,
                &scope(),
                &c,
                &Request::new(Action::Publish, Resource::topic("admin/reboot")),
            );
            assert!(!d.allowed);
            assert_eq!(
                d.reason,
                "iot:Publish on arn:aws:iot:us-east-1:123456789012:topic/admin/reboot denied by policy \"no-admin\" Statement[0] (Sid \"NoAdmin\")"
            );
            let refs: Vec<&Policy> = set.iter().map(|p| p.as_ref()).collect();
            assert!(
                evaluate(
                    &refs,
                    &scope(),
                    &c,
                    &Request::new(Action::Publish, Resource::topic("user/x")),
                )
                .allowed
            );
        }
    }

    #[test]
    fn action_wildcards_and_case() {
        let c = Context::new("c");
        for action in [
            "iot:*",
            "*",
            "iot:publish",
            "IOT:PUBLISH",
            "iot:Pub*",
            "iot:Publis?",
        ] {
            let p = [allow(action, "*")];
            assert!(
                decide(&p, &c, Action::Publish, Resource::topic("t")),
                "{action}"
            );
        }
        let p = [allow("iot:Pub*", "*")];
        assert!(!decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topicfilter("t")
        ));
        let p = [allow("iot:*", "*")];
        for action in Action::ALL {
            assert!(decide(&p, &c, action, Resource::topic("t")));
        }
        // Shadow actions parse but grant nothing the broker asks about.
        let p = [allow("iot:GetThingShadow", "*")];
        assert!(Action::ALL
            .iter()
            .all(|a| !decide(&p, &c, *a, Resource::topic("t"))));
    }

    #[test]
    fn topic_wildcards() {
        let c = Context::new("c");
        let p = [allow("iot:Publish", "arn:aws:iot:*:*:topic/sensors/*")];
        assert!(decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("sensors/a/b/c")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("sensorsX/a")
        ));
        let p = [allow("iot:Publish", "arn:aws:iot:*:*:topic/room?/temp")];
        assert!(decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("room1/temp")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("room12/temp")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("room/temp")
        ));
    }

    #[test]
    fn topicfilter_mqtt_wildcards_are_literal() {
        let c = Context::new("c");
        let p = [allow(
            "iot:Subscribe",
            "arn:aws:iot:*:*:topicfilter/sensors/+/temp",
        )];
        assert!(decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topicfilter("sensors/+/temp")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topicfilter("sensors/#")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topicfilter("sensors/a/temp")
        ));
        // The topicfilter resource does not grant the topic resource.
        assert!(!decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topic("sensors/+/temp")
        ));
        let p = [allow(
            "iot:Subscribe",
            "arn:aws:iot:*:*:topicfilter/sensors/#",
        )];
        assert!(decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topicfilter("sensors/#")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topicfilter("sensors/a")
        ));
        let p = [allow(
            "iot:Subscribe",
            "arn:aws:iot:*:*:topicfilter/sensors/*",
        )];
        assert!(decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topicfilter("sensors/#")
        ));
        assert!(decide(
            &p,
            &c,
            Action::Subscribe,
            Resource::topicfilter("sensors/+/x")
        ));
    }

    #[test]
    fn thing_name_variable() {
        let p = [allow(
            "iot:Publish",
            "arn:aws:iot:*:*:topic/${iot:Connection.Thing.ThingName}/*",
        )];
        let c = thing("dev-1", true);
        assert!(decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("dev-1/telemetry")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("dev-2/telemetry")
        ));
        // No thing: the variable is unresolved and the resource matches nothing.
        let c = Context::new("dev-1");
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("dev-1/telemetry")
        ));
        // ...and is not treated as an empty string either.
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("/telemetry")
        ));
    }

    #[test]
    fn client_id_cert_and_attribute_variables() {
        let p = [
            allow("iot:Connect", "arn:aws:iot:*:*:client/${iot:ClientId}"),
            allow(
                "iot:Publish",
                "arn:aws:iot:*:*:topic/floor/${iot:Connection.Thing.Attributes[floor]}/*",
            ),
            allow(
                "iot:Receive",
                "arn:aws:iot:*:*:topic/cn/${iot:Certificate.Subject.CommonName}",
            ),
        ];
        let mut c = thing("dev-1", true);
        assert!(decide(&p, &c, Action::Connect, Resource::client("dev-1")));
        assert!(!decide(&p, &c, Action::Connect, Resource::client("dev-2")));
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("floor/3/x")
        ));
        c.thing_attributes.insert("floor".into(), "3".into());
        assert!(decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("floor/3/x")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("floor/4/x")
        ));
        assert!(!decide(
            &p,
            &c,
            Action::Receive,
            Resource::topic("cn/dev-1.example")
        ));
        c.certificate_common_name = Some("dev-1.example".into());
        assert!(decide(
            &p,
            &c,
            Action::Receive,
            Resource::topic("cn/dev-1.example")
        ));
    }

    #[test]
    fn wildcard_characters_in_client_id_do_not_widen_access() {
        let p = [allow(
            "iot:Publish",
            "arn:aws:iot:*:*:topic/${iot:ClientId}/data",
        )];
        let c = Context::new("*");
        assert!(decide(&p, &c, Action::Publish, Resource::topic("*/data")));
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("victim/data")
        ));
        let c = Context::new("a?c");
        assert!(!decide(
            &p,
            &c,
            Action::Publish,
            Resource::topic("abc/data")
        ));
        let p = [allow(
            "iot:Connect",
            "arn:aws:iot:*:*:client/${iot:ClientId}",
        )];
        assert!(decide(&p, &c, Action::Connect, Resource::client("a?c")));
    }

    #[test]
    fn is_attached_condition() {
        let p = [policy(
            "attached-only",
            r#"{"Effect": "Allow", "Action": "iot:Connect",
                "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}",
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}}"#,
        )];
        assert!(decide(
            &p,
            &thing("dev-1", true),
            Action::Connect,
            Resource::client("dev-1")
        ));
        assert!(!decide(
            &p,
            &thing("dev-1", false),
            Action::Connect,
            Resource::client("dev-1")
        ));
        let deny_detached = [
            allow("iot:*", "*"),
            policy(
                "deny-detached",
                r#"{"Effect": "Deny", "Action": "iot:*", "Resource": "*",
                    "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "false"}}}"#,
            ),
        ];
        assert!(decide(
            &deny_detached,
            &thing("d", true),
            Action::Publish,
            Resource::topic("t")
        ));
        assert!(!decide(
            &deny_detached,
            &thing("d", false),
            Action::Publish,
            Resource::topic("t")
        ));
    }

    #[test]
    fn string_condition_on_client_id() {
        let p = [policy(
            "fleet",
            r#"{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
                "Condition": {"StringLike": {"iot:ClientId": "fleet-*"}}}"#,
        )];
        assert!(decide(
            &p,
            &Context::new("fleet-7"),
            Action::Connect,
            Resource::client("fleet-7")
        ));
        assert!(!decide(
            &p,
            &Context::new("other"),
            Action::Connect,
            Resource::client("other")
        ));
    }
}
