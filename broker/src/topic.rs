//! Topic names and filters: validation and matching (MQTT 5.0 §4.7).
//!
//! Shared by the codec (which rejects invalid names and filters) and the
//! router (which matches them). Matching works on `/`-separated levels of
//! already-validated UTF-8, so it cannot panic on any input.

/// Longest topic name or filter the protocol can carry.
pub const MAX_TOPIC_LEN: usize = 65_535;

/// A topic name a PUBLISH may carry: non-empty, no wildcards, no U+0000.
/// (An empty name with a v5 topic alias is handled by the caller.)
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= MAX_TOPIC_LEN && !topic.contains(['+', '#', '\0'])
}

/// A subscription filter: non-empty; `+` occupies a whole level; `#` occupies
/// the whole last level. `$share/{group}/{filter}` is checked by
/// [`parse_shared`] first; this checks the plain filter.
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_TOPIC_LEN || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "+" => {}
            "#" if last => {}
            _ if level.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// A shared subscription, split into its group and its plain filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

/// Splits `$share/{group}/{filter}`. `Ok(None)` for a non-shared filter,
/// `Err(())` for a malformed shared one (empty or wildcard group, no filter).
#[allow(clippy::result_unit_err)] // the only failure is "malformed"; callers map it to their own code
pub fn parse_shared(filter: &str) -> Result<Option<Shared<'_>>, ()> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        if filter == "$share" {
            return Err(());
        }
        return Ok(None);
    };
    let Some((group, inner)) = rest.split_once('/') else {
        return Err(());
    };
    if group.is_empty() || group.contains(['+', '#']) || !valid_topic_filter(inner) {
        return Err(());
    }
    Ok(Some(Shared {
        group,
        filter: inner,
    }))
}

/// Topics only the broker publishes on (its `$SYS/` statistics): no
/// client may publish there, whatever its policies allow, or subscribers
/// could be fed forged broker statistics.
pub fn is_broker_only(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// Whether `filter` (a plain, valid filter) matches `topic` (a valid name).
/// Topics starting with `$` are not matched by a leading wildcard.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_topic_name("a/b"));
        assert!(valid_topic_name("/"));
        assert!(valid_topic_name("é/x"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name("a/+"));
        assert!(!valid_topic_name("a/#"));
        assert!(!valid_topic_name("a\0b"));
    }

    #[test]
    fn filters() {
        for ok in ["#", "+", "a/+/b", "a/#", "+/+", "/", "a//b", "$SYS/#"] {
            assert!(valid_topic_filter(ok), "{ok}");
        }
        for bad in ["", "a/#/b", "a+", "a/b#", "##", "a/+b", "x\0"] {
            assert!(!valid_topic_filter(bad), "{bad}");
        }
    }

    #[test]
    fn matching() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "a/b"));
        assert!(matches("+/x", "é/x"));
        assert!(matches("+", ""));
        assert!(!matches("+", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(is_broker_only("$SYS") && is_broker_only("$SYS/broker/uptime"));
        assert!(!is_broker_only("$SYSTEM/x") && !is_broker_only("a/$SYS"));
        assert!(matches("+/+", "/x"));
    }

    #[test]
    fn shared() {
        assert_eq!(parse_shared("a/b"), Ok(None));
        assert_eq!(
            parse_shared("$share/g/a/+"),
            Ok(Some(Shared {
                group: "g",
                filter: "a/+"
            }))
        );
        assert!(parse_shared("$share/g").is_err());
        assert!(parse_shared("$share//a").is_err());
        assert!(parse_shared("$share/g+/a").is_err());
        assert!(parse_shared("$share/g/a/#/b").is_err());
        assert!(parse_shared("$share").is_err());
    }
}
