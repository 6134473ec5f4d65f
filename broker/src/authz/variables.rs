//! Policy variables (`${iot:ClientId}`, ...): parsing them out of resource and
//! condition strings, and substituting a connection's values.
//!
//! A string is compiled once into a [`Template`]; at evaluation it renders to
//! a wildcard pattern in which substituted text is literal, so a client ID
//! containing `*` or `?` cannot widen what a policy grants. A variable with no
//! value (no thing, no certificate CN, missing attribute) makes the render
//! fail: the caller treats that resource or condition as not matching, which
//! is what AWS IoT does.

use std::borrow::Cow;

use super::request::Context;
use super::wildcard::{push_literal, push_pattern, Tok};

const THING_ATTRIBUTE_PREFIX: &str = "iot:Connection.Thing.Attributes[";

/// A context key: the name inside `${...}`, or a condition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Variable {
    ClientId,
    ThingName,
    ThingTypeName,
    ThingAttribute(String),
    CertificateCommonName,
    IsAttached,
}

impl Variable {
    /// Recognises a key. IAM key names are case-insensitive; a thing
    /// attribute's own name is kept as written (attribute names are not).
    pub(crate) fn parse(name: &str) -> Option<Variable> {
        const FIXED: [(&str, Variable); 5] = [
            ("iot:ClientId", Variable::ClientId),
            ("iot:Connection.Thing.ThingName", Variable::ThingName),
            (
                "iot:Connection.Thing.ThingTypeName",
                Variable::ThingTypeName,
            ),
            (
                "iot:Certificate.Subject.CommonName",
                Variable::CertificateCommonName,
            ),
            ("iot:Connection.Thing.IsAttached", Variable::IsAttached),
        ];
        if let Some((_, v)) = FIXED.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Some(v.clone());
        }
        let prefix_ok = name
            .get(..THING_ATTRIBUTE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(THING_ATTRIBUTE_PREFIX));
        if !prefix_ok {
            return None;
        }
        let attribute = name
            .get(THING_ATTRIBUTE_PREFIX.len()..)?
            .strip_suffix(']')?;
        if attribute.is_empty() || attribute.contains(['[', ']']) {
            return None;
        }
        Some(Variable::ThingAttribute(attribute.to_owned()))
    }

    /// The connection's value for this key, if it has one.
    pub(crate) fn resolve<'a>(&self, ctx: &'a Context) -> Option<Cow<'a, str>> {
        let borrowed = |v: &'a Option<String>| v.as_deref().map(Cow::Borrowed);
        match self {
            Variable::ClientId => Some(Cow::Borrowed(ctx.client_id.as_str())),
            Variable::ThingName => borrowed(&ctx.thing_name),
            Variable::ThingTypeName => borrowed(&ctx.thing_type_name),
            Variable::ThingAttribute(name) => ctx
                .thing_attributes
                .get(name)
                .map(|v| Cow::Borrowed(v.as_str())),
            Variable::CertificateCommonName => borrowed(&ctx.certificate_common_name),
            Variable::IsAttached => Some(Cow::Borrowed(if ctx.is_attached {
                "true"
            } else {
                "false"
            })),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Policy text: `*` and `?` are wildcards when rendered as a pattern.
    Text(String),
    /// `${*}`, `${?}`, `${$}`: IAM's escapes for a literal `*`, `?`, `$`.
    Escaped(char),
    Var(Variable),
}

/// A resource or condition value, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Splits `text` into literal text and variables. The error is a
    /// location-free description; the document parser says where.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let (before, from_var) = rest.split_at(start);
            if !before.is_empty() {
                pieces.push(Piece::Text(before.to_owned()));
            }
            let inner_and_rest = from_var.get(2..).unwrap_or_default();
            let Some(end) = inner_and_rest.find('}') else {
                return Err(format!("unterminated policy variable \"{from_var}\""));
            };
            let (inner, after) = inner_and_rest.split_at(end);
            pieces.push(match inner {
                "*" => Piece::Escaped('*'),
                "?" => Piece::Escaped('?'),
                "$" => Piece::Escaped('$'),
                _ => match Variable::parse(inner) {
                    Some(v) => Piece::Var(v),
                    None => return Err(format!("unsupported policy variable \"${{{inner}}}\"")),
                },
            });
            rest = after.get(1..).unwrap_or_default();
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template { pieces })
    }

    pub(crate) fn uses_variables(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Var(_)))
    }

    /// Renders as a wildcard pattern; `None` if a variable has no value.
    pub(crate) fn to_pattern(&self, ctx: &Context) -> Option<Vec<Tok>> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => push_pattern(&mut out, t),
                Piece::Escaped(c) => out.push(Tok::Lit(*c)),
                Piece::Var(v) => push_literal(&mut out, &v.resolve(ctx)?),
            }
        }
        Some(out)
    }

    /// Renders as plain text (for equality operators); `None` if a variable
    /// has no value.
    pub(crate) fn to_text(&self, ctx: &Context) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Escaped(c) => out.push(*c),
                Piece::Var(v) => out.push_str(&v.resolve(ctx)?),
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::wildcard::matches_str;
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::new("dev-1");
        c.thing_name = Some("thing-1".into());
        c.thing_attributes.insert("floor".into(), "3".into());
        c
    }

    #[test]
    fn parses_variables_case_insensitively() {
        assert_eq!(Variable::parse("iot:clientid"), Some(Variable::ClientId));
        assert_eq!(
            Variable::parse("iot:Connection.Thing.Attributes[Floor]"),
            Some(Variable::ThingAttribute("Floor".into()))
        );
        assert_eq!(Variable::parse("iot:Connection.Thing.Attributes[]"), None);
        assert_eq!(Variable::parse("iot:Connection.Thing.Attributes[a"), None);
        assert_eq!(Variable::parse("aws:username"), None);
    }

    #[test]
    fn renders() {
        let t = Template::parse("topic/${iot:Connection.Thing.ThingName}/*")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.uses_variables());
        let p = t.to_pattern(&ctx()).unwrap_or_default();
        assert!(matches_str(&p, "topic/thing-1/a/b"));
        assert!(!matches_str(&p, "topic/thing-2/a"));
        let t = Template::parse("a/${iot:Connection.Thing.Attributes[floor]}/${*}")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_text(&ctx()).as_deref(), Some("a/3/*"));
        let p = t.to_pattern(&ctx()).unwrap_or_default();
        assert!(matches_str(&p, "a/3/*"));
        assert!(!matches_str(&p, "a/3/x"));
    }

    #[test]
    fn unresolved_is_none() {
        let t = Template::parse("${iot:Certificate.Subject.CommonName}")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_pattern(&ctx()), None);
        assert_eq!(t.to_text(&ctx()), None);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Template::parse("topic/${iot:ClientId"),
            Err("unterminated policy variable \"${iot:ClientId\"".to_owned())
        );
        assert_eq!(
            Template::parse("topic/${aws:username}"),
            Err("unsupported policy variable \"${aws:username}\"".to_owned())
        );
        assert_eq!(Template::parse("").map(|t| t.pieces.len()), Ok(0));
    }
}
