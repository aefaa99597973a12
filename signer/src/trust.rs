//! Trusted keys from an OpenSSH `allowed_signers` file (ssh-keygen(1), "ALLOWED SIGNERS";
//! SPEC §6).

use crate::error::{CheckpointError, TrustError};
use crate::keys::{KeyId, PublicKey};

/// The namespace a `namespaces="…"` option must list for a key to sign recordings.
pub const RECORDING_NAMESPACE: &str = "sealcast";

/// One trusted key with its restrictions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// Principals (first field, comma-separated in the file).
    pub principals: Vec<String>,
    /// The key.
    pub key: PublicKey,
    /// `namespaces="…"`, when present.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after`, Unix microseconds.
    pub valid_after_us: Option<u64>,
    /// `valid-before`, Unix microseconds.
    pub valid_before_us: Option<u64>,
}

/// A set of trusted keys.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
}

fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

fn split_options(opts: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in opts.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&opts[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&opts[start..]);
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse `YYYYMMDD[HHMM[SS]][Z]` as UTC, to Unix microseconds.
fn parse_time(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    if !(s.len() == 8 || s.len() == 12 || s.len() == 14) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let (y, mo, d) = (n(0, 4), n(4, 6), n(6, 8));
    let (h, mi, se) = (n(8, 10), n(10, 12), n(12, 14));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs).ok().map(|s| s * 1_000_000)
}

impl TrustStore {
    /// Parse the text of an `allowed_signers` file. Lines for other key types and
    /// `cert-authority` lines are skipped; unknown options are an error (fail closed).
    ///
    /// # Errors
    /// [`TrustError`] with the 1-based line number.
    pub fn parse(text: &str) -> Result<TrustStore, TrustError> {
        let mut keys = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| TrustError {
                line: n + 1,
                reason,
            };
            let t = tokens(line);
            let is_type =
                |s: &str| s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-");
            let (opts, kt, b64) = match t.as_slice() {
                [_, kt, b64, ..] if is_type(kt) => (None, *kt, *b64),
                [_, opts, kt, b64, ..] if is_type(kt) => (Some(*opts), *kt, *b64),
                _ => {
                    return Err(err(
                        "expected: principals [options] key-type base64-key".into()
                    ))
                }
            };
            let mut tk = TrustedKey {
                principals: t[0]
                    .trim_matches('"')
                    .split(',')
                    .map(str::to_string)
                    .collect(),
                key: PublicKey([0; 32]),
                namespaces: None,
                valid_after_us: None,
                valid_before_us: None,
            };
            let mut skip = false;
            for opt in opts.map(split_options).unwrap_or_default() {
                let (name, value) = match opt.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), Some(v.trim_matches('"'))),
                    None => (opt.to_ascii_lowercase(), None),
                };
                match (name.as_str(), value) {
                    ("cert-authority", None) => skip = true,
                    ("namespaces", Some(v)) => {
                        tk.namespaces = Some(v.split(',').map(str::to_string).collect())
                    }
                    ("valid-after", Some(v)) => {
                        tk.valid_after_us = Some(
                            parse_time(v).ok_or_else(|| err(format!("bad valid-after {v:?}")))?,
                        )
                    }
                    ("valid-before", Some(v)) => {
                        tk.valid_before_us = Some(
                            parse_time(v).ok_or_else(|| err(format!("bad valid-before {v:?}")))?,
                        )
                    }
                    _ => return Err(err(format!("unsupported option {opt:?}"))),
                }
            }
            if skip || kt != "ssh-ed25519" {
                continue;
            }
            tk.key = PublicKey::from_ssh_base64(b64).map_err(|e| err(e.to_string()))?;
            keys.push(tk);
        }
        Ok(TrustStore { keys })
    }

    /// A store that trusts exactly `key` for principal `name`, with no restrictions.
    pub fn single(name: &str, key: PublicKey) -> TrustStore {
        TrustStore {
            keys: vec![TrustedKey {
                principals: vec![name.to_string()],
                key,
                namespaces: None,
                valid_after_us: None,
                valid_before_us: None,
            }],
        }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted entry for `id` valid at `time_us` (Unix µs) for recordings.
    ///
    /// # Errors
    /// [`CheckpointError::UntrustedKey`] when no line has the key,
    /// [`CheckpointError::KeyNotValid`] when every line with it excludes this use.
    pub fn lookup(&self, id: &KeyId, time_us: u64) -> Result<&TrustedKey, CheckpointError> {
        let mut why = None;
        for k in self.keys.iter().filter(|k| k.key.id() == *id) {
            if let Some(ns) = &k.namespaces {
                if !ns.iter().any(|n| n == RECORDING_NAMESPACE) {
                    why = Some(format!("namespaces do not include {RECORDING_NAMESPACE:?}"));
                    continue;
                }
            }
            if k.valid_after_us.is_some_and(|t| time_us < t)
                || k.valid_before_us.is_some_and(|t| time_us >= t)
            {
                why = Some("checkpoint time outside valid-after/valid-before".into());
                continue;
            }
            return Ok(k);
        }
        Err(match why {
            Some(reason) => CheckpointError::KeyNotValid { key: *id, reason },
            None => CheckpointError::UntrustedKey(*id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    #[test]
    fn parses_allowed_signers_with_options() {
        let k = SigningKey::generate().unwrap();
        let b64 = k.public().to_openssh("");
        let text = format!(
            "# comment\n\nalice@example.com,bob {b64}\n\
             ci namespaces=\"git,sealcast\",valid-after=\"20260101\",valid-before=\"20270101Z\" {b64} trailing comment\n\
             other namespaces=\"git\" {b64}\n\
             ca cert-authority {b64}\n\
             rsa ssh-rsa AAAAB3NzaC1yc2E=\n"
        );
        let t = TrustStore::parse(&text).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.keys[0].principals, ["alice@example.com", "bob"]);
        assert_eq!(t.keys[1].valid_after_us, Some(1_767_225_600_000_000));
        // The first line trusts it at any time.
        assert!(t.lookup(&k.id(), 0).is_ok());
        let only_git = TrustStore::parse(&format!("x namespaces=\"git\" {b64}")).unwrap();
        assert!(matches!(
            only_git.lookup(&k.id(), 0),
            Err(CheckpointError::KeyNotValid { .. })
        ));
        let windowed = TrustStore::parse(&format!("x valid-before=\"19700102\" {b64}")).unwrap();
        assert!(windowed.lookup(&k.id(), 0).is_ok());
        assert!(windowed.lookup(&k.id(), 86_400_000_000).is_err());
        let other = SigningKey::generate().unwrap();
        assert!(matches!(
            t.lookup(&other.id(), 0),
            Err(CheckpointError::UntrustedKey(_))
        ));
    }

    #[test]
    fn rejects_bad_lines_with_line_numbers() {
        let e = TrustStore::parse("\nonlyprincipal\n").unwrap_err();
        assert_eq!(e.line, 2);
        let k = SigningKey::generate().unwrap().public().to_openssh("");
        let e = TrustStore::parse(&format!("p frobnicate {k}")).unwrap_err();
        assert!(e.reason.contains("unsupported option"));
        assert!(TrustStore::parse("p valid-after=\"2026\" ssh-ed25519 AAAA").is_err());
    }
}
