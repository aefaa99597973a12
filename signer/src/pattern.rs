//! OpenSSH pattern lists (ssh_config(5) and ssh(1) "PATTERNS"; `match_pattern` and
//! `match_pattern_list` in OpenSSH `match.c`), as `ssh-keygen -Y verify` applies them to the
//! principals and `namespaces=` of an `allowed_signers` line (`sshsig.c`,
//! `check_allowed_keys_line`, case-sensitive). sealcast matches host ids against the
//! principals with them (SPEC §6).
//!
//! A pattern is bytes where `*` matches any run of bytes (also none) and `?` exactly one byte;
//! every other byte matches itself (case-sensitive, no escapes). A pattern list is patterns
//! separated by `,`, each optionally prefixed by `!` (negation). Matching works on bytes, as
//! OpenSSH does, so `?` matches one byte of a multi-byte UTF-8 character.
//!
//! OpenSSH's matcher is recursive and can take exponential time on patterns with many `*`;
//! this one is the iterative two-pointer form (O(len(s) × len(pattern)) at worst) with the
//! same result, because the string matched here (a recording's host id) comes from the file
//! being verified.

/// Patterns of this many bytes or more make the whole list fail to match, as in OpenSSH
/// (its buffer is 1024 bytes with the NUL).
pub const MAX_PATTERN_BYTES: usize = 1023;

/// Outcome of [`match_pattern_list`] (OpenSSH returns 1, 0 and -1 for these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// Some positive pattern matches and no negated one does.
    Positive,
    /// No pattern matches (or only negated ones would have, had they been positive).
    NoMatch,
    /// A negated pattern (`!pat`) matches: the string is excluded, whatever else matches.
    Negated,
}

/// Whether `s` matches the single pattern `pattern` (`*` and `?` wildcards, bytes,
/// case-sensitive).
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    let (s, p) = (s.as_bytes(), pattern.as_bytes());
    let (mut si, mut pi) = (0usize, 0usize);
    // After the last `*` seen: where the pattern resumes, and where in `s` that try began.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, si));
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more byte and try again from there.
                Some((resume, from)) => {
                    pi = resume;
                    si = from + 1;
                    star = Some((resume, from + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Match `s` against the comma-separated pattern list `list` (OpenSSH `match_pattern_list`
/// with `dolower` 0): [`ListMatch::Negated`] as soon as a `!pattern` matches,
/// [`ListMatch::Positive`] when a plain pattern matches and no negated one does, else
/// [`ListMatch::NoMatch`]. An empty list matches nothing; a pattern of
/// [`MAX_PATTERN_BYTES`] or more makes the list [`ListMatch::NoMatch`].
pub fn match_pattern_list(s: &str, list: &str) -> ListMatch {
    if list.is_empty() {
        return ListMatch::NoMatch;
    }
    match_patterns(s, list.split(','))
}

/// [`match_pattern_list`] over patterns already split at their commas (as
/// [`crate::TrustedKey::principals`] holds them).
pub fn match_patterns<'p>(s: &str, patterns: impl IntoIterator<Item = &'p str>) -> ListMatch {
    let mut positive = false;
    for item in patterns {
        let (negated, pattern) = match item.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, item),
        };
        if pattern.len() >= MAX_PATTERN_BYTES {
            return ListMatch::NoMatch;
        }
        if match_pattern(s, pattern) {
            if negated {
                return ListMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Positive
    } else {
        ListMatch::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_patterns() {
        for (s, p, want) in [
            ("h1", "h1", true),
            ("h1", "h2", false),
            ("h1", "H1", false), // case-sensitive, as sshsig.c
            ("h1", "*", true),
            ("", "*", true),
            ("", "", true),
            ("h1", "", false),
            ("", "?", false),
            ("h1", "h?", true),
            ("h12", "h?", false),
            ("bastion-01", "bastion-*", true),
            ("bastion-", "bastion-*", true),
            ("bastio", "bastion-*", false),
            ("web.prod.example", "*.prod.*", true),
            ("web.test.example", "*.prod.*", false),
            ("abcabd", "*abd", true),
            ("aXbXc", "a*b*c", true),
            ("aXbXd", "a*b*c", false),
            ("a*b", "a?b", true),
            ("ab", "a**b", true),
            ("h1", "h1*", true),
            ("h1x", "h1", false),
            ("xh1", "h1", false),
            ("é", "?", false), // bytes: `?` is one byte, é is two
            ("é", "??", true),
        ] {
            assert_eq!(match_pattern(s, p), want, "{s:?} vs {p:?}");
        }
    }

    #[test]
    fn no_exponential_backtracking() {
        // OpenSSH's recursive matcher is exponential here; this must return at once.
        let s = "a".repeat(4000);
        let p = format!("{}b", "*a".repeat(40));
        assert!(!match_pattern(&s, &p));
        assert!(match_pattern(&s, &"*a".repeat(40)));
    }

    #[test]
    fn lists_with_negation() {
        use ListMatch::*;
        for (s, list, want) in [
            ("h1", "h1", Positive),
            ("h1", "h2,h1", Positive),
            ("h1", "h2,h3", NoMatch),
            ("h1", "", NoMatch),
            ("h1", "*", Positive),
            ("h1", "*,!h1", Negated),
            ("h1", "!h1,*", Negated),
            ("h2", "*,!h1", Positive),
            ("h1", "!h2", NoMatch), // a negation alone allows nothing
            ("h1", "bastion-*,!bastion-9", NoMatch),
            ("bastion-9", "bastion-*,!bastion-9", Negated),
            ("bastion-1", "bastion-*,!bastion-9", Positive),
            ("h1", "h?,!h2", Positive),
        ] {
            assert_eq!(match_pattern_list(s, list), want, "{s:?} vs {list:?}");
        }
        let long = "x".repeat(MAX_PATTERN_BYTES);
        assert_eq!(match_pattern_list("h1", &format!("h1,{long}")), NoMatch);
        assert_eq!(
            match_pattern_list("h1", &format!("h1,{}", &long[1..])),
            Positive
        );
    }
}
