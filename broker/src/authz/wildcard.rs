//! The policy wildcard matcher: `*` matches any run of characters (including
//! `/`), `?` matches exactly one character, everything else is literal.
//!
//! MQTT's `+` and `#` are *not* wildcards here: in a `topicfilter/` resource
//! they must match the subscription filter's own `+`/`#` characters, as in
//! AWS IoT. Patterns are token lists rather than strings so that text
//! substituted from a policy variable (a client ID containing `*`, say) can be
//! carried as literal tokens and never widen a match.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Matches exactly this character.
    Lit(char),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Appends `text` to `out`, reading `*` and `?` as wildcards.
pub(crate) fn push_pattern(out: &mut Vec<Tok>, text: &str) {
    for c in text.chars() {
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
}

/// Appends `text` to `out` with every character literal.
pub(crate) fn push_literal(out: &mut Vec<Tok>, text: &str) {
    out.extend(text.chars().map(Tok::Lit));
}

/// Whether `pattern` matches the whole of `subject`.
///
/// The classic greedy two-pointer algorithm: on a mismatch, retry from the
/// most recent `*` with it swallowing one more character. Only the last star
/// ever needs revisiting, so the cost is O(pattern × subject) at worst and
/// never exponential, whatever an attacker puts in a client ID or topic.
pub(crate) fn matches(pattern: &[Tok], subject: &[char]) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    // (index of the last star, subject index it is currently resumed from)
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = subject.get(s) {
        match pattern.get(p) {
            Some(Tok::Star) => {
                star = Some((p, s));
                p += 1;
                continue;
            }
            Some(Tok::One) => {
                p += 1;
                s += 1;
                continue;
            }
            Some(Tok::Lit(l)) if *l == c => {
                p += 1;
                s += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, ss)) => {
                // Let that star absorb one more character and retry after it.
                p = sp + 1;
                s = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    // Subject exhausted: only stars may remain.
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|t| *t == Tok::Star))
}

/// Convenience for callers holding a `&str` subject.
pub(crate) fn matches_str(pattern: &[Tok], subject: &str) -> bool {
    let chars: Vec<char> = subject.chars().collect();
    matches(pattern, &chars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pat(text: &str) -> Vec<Tok> {
        let mut out = Vec::new();
        push_pattern(&mut out, text);
        out
    }

    /// Obviously-correct (and exponential) reference implementation.
    fn reference(p: &[Tok], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((Tok::Star, rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
            Some((Tok::One, rest)) => !s.is_empty() && reference(rest, &s[1..]),
            Some((Tok::Lit(c), rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
        }
    }

    #[test]
    fn basics() {
        assert!(matches_str(&pat("*"), ""));
        assert!(matches_str(&pat("*"), "a/b/c"));
        assert!(matches_str(&pat("a/*"), "a/b/c"));
        assert!(!matches_str(&pat("a/*"), "b/a"));
        assert!(matches_str(&pat("a/?"), "a/b"));
        assert!(!matches_str(&pat("a/?"), "a/"));
        assert!(!matches_str(&pat("a/?"), "a/bc"));
        assert!(matches_str(&pat("a*b*c"), "aXXbYYbc"));
        assert!(matches_str(&pat("é?"), "éü"));
        assert!(!matches_str(&pat(""), "x"));
        assert!(matches_str(&pat(""), ""));
    }

    #[test]
    fn mqtt_wildcards_are_literal() {
        assert!(matches_str(&pat("sensors/+/temp"), "sensors/+/temp"));
        assert!(!matches_str(&pat("sensors/+/temp"), "sensors/a/temp"));
        assert!(!matches_str(&pat("sensors/+/temp"), "sensors/#"));
        assert!(matches_str(&pat("sensors/#"), "sensors/#"));
        assert!(!matches_str(&pat("sensors/#"), "sensors/a"));
    }

    #[test]
    fn literal_tokens_do_not_act_as_wildcards() {
        let mut p = Vec::new();
        push_literal(&mut p, "a*");
        assert!(matches_str(&p, "a*"));
        assert!(!matches_str(&p, "ab"));
    }

    #[test]
    fn no_blow_up_on_many_stars() {
        let p = pat(&"*a".repeat(200));
        let s = "a".repeat(199) + "b";
        assert!(!matches_str(&p, &s));
    }

    fn tok() -> impl Strategy<Value = Tok> {
        prop_oneof![
            Just(Tok::Star),
            Just(Tok::One),
            prop::sample::select(vec!['a', 'b', '/', '+', '#', '*', '?']).prop_map(Tok::Lit),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_reference(
            p in prop::collection::vec(tok(), 0..10),
            s in prop::collection::vec(
                prop::sample::select(vec!['a', 'b', '/', '+', '#', '*', '?']), 0..12),
        ) {
            prop_assert_eq!(matches(&p, &s), reference(&p, &s));
        }

        #[test]
        fn text_patterns_agree_with_reference(p in "[ab/+#*?]{0,10}", s in "[ab/+#*?]{0,12}") {
            let chars: Vec<char> = s.chars().collect();
            prop_assert_eq!(matches(&pat(&p), &chars), reference(&pat(&p), &chars));
        }

        #[test]
        fn never_panics(p in any::<String>(), s in any::<String>()) {
            let _ = matches_str(&pat(&p), &s);
        }
    }
}
