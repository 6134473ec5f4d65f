//! Validation of names and values against the patterns and lengths of the
//! AWS IoT model, so anything we accept AWS would accept too (and the ARNs
//! built from these names stay unambiguous: none may contain `/`).

use super::RegistryError;

fn check(
    what: &str,
    value: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), RegistryError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(RegistryError::invalid(format!(
            "{what} must be {min} to {max} characters long, got {len}"
        )));
    }
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(RegistryError::invalid(format!(
            "{what} {value:?} contains the character {c:?}, which is not allowed"
        )));
    }
    Ok(())
}

/// `ThingName` / `ThingGroupName` / `ThingTypeName`: `[a-zA-Z0-9:_-]+`, 1..=128.
pub(crate) fn thing_like(what: &str, value: &str) -> Result<(), RegistryError> {
    check(what, value, 1, 128, |c| {
        c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-')
    })
}

pub(crate) fn thing_name(value: &str) -> Result<(), RegistryError> {
    thing_like("thing name", value)
}

pub(crate) fn group_name(value: &str) -> Result<(), RegistryError> {
    thing_like("thing group name", value)
}

/// `PolicyName`: `[\w+=,.@-]+`, 1..=128 (`\w` is ASCII in the AWS model's
/// Java regex dialect).
pub(crate) fn policy_name(value: &str) -> Result<(), RegistryError> {
    check("policy name", value, 1, 128, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
    })
}

/// `AttributeName`: `[a-zA-Z0-9_.,@/:#-]+`, up to 128.
pub(crate) fn attribute_name(value: &str) -> Result<(), RegistryError> {
    check("attribute name", value, 1, 128, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ',' | '@' | '/' | ':' | '#' | '-')
    })
}

/// `AttributeValue`: `[a-zA-Z0-9_.,@/:#=\[\]-]*`, up to 800.
pub(crate) fn attribute_value(value: &str) -> Result<(), RegistryError> {
    check("attribute value", value, 0, 800, |c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '_' | '.' | ',' | '@' | '/' | ':' | '#' | '=' | '[' | ']' | '-'
            )
    })
}

/// `ThingGroupDescription`: `[\p{Graph}\x20]*`, up to 2028.
pub(crate) fn description(value: &str) -> Result<(), RegistryError> {
    check("thing group description", value, 0, 2028, |c| {
        c == ' ' || !(c.is_control() || c.is_whitespace())
    })
}

/// `CertificateId`: 64 hex digits (AWS also allows a `0x` prefix). Returns
/// the canonical lowercase form, which is how ids are stored.
pub(crate) fn certificate_id(value: &str) -> Result<String, RegistryError> {
    let hex = value.strip_prefix("0x").unwrap_or(value);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RegistryError::invalid(format!(
            "certificate id {value:?} must be 64 hex digits"
        )));
    }
    Ok(hex.to_ascii_lowercase())
}
