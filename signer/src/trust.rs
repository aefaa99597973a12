//! Trusted keys from an OpenSSH `allowed_signers` file (ssh-keygen(1), "ALLOWED SIGNERS";
//! SPEC §6).

use crate::error::{CheckpointError, TrustError};
use crate::keys::{KeyId, PublicKey};
use crate::pattern::{match_patterns, ListMatch};
use sealcast_format::time::{parse_signers_time, rfc3339};

/// The namespace a `namespaces="…"` option must list for a key to sign recordings.
pub const RECORDING_NAMESPACE: &str = "sealcast";

/// One trusted key with its restrictions: one `ssh-ed25519` line of an `allowed_signers`
/// file (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The principals field, split at its commas: an OpenSSH pattern list
    /// ([`crate::pattern`]) of the host ids this key may sign recordings and manifests for
    /// (`*` any host, `?` one byte, `!pattern` excludes).
    pub principals: Vec<String>,
    /// The key.
    pub key: PublicKey,
    /// `namespaces="…"`, when present: a pattern list of the signature namespaces allowed.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after`, Unix microseconds.
    pub valid_after_us: Option<u64>,
    /// `valid-before`, Unix microseconds.
    pub valid_before_us: Option<u64>,
    /// 1-based line of the `allowed_signers` file (0 for [`TrustStore::single`]).
    pub line: usize,
}

impl TrustedKey {
    /// The principals as written in the file (`h1,bastion-*,!bastion-9`).
    pub fn principals_text(&self) -> String {
        self.principals.join(",")
    }

    /// Whether this line lets its key sign for host id `host` (its principals pattern list
    /// matches it positively, SPEC §6).
    pub fn allows_host(&self, host: &str) -> bool {
        match_patterns(host, self.principals.iter().map(String::as_str)) == ListMatch::Positive
    }

    /// Whether this line lets its key sign in `namespace` (no `namespaces=` option, or its
    /// pattern list matches, as in `ssh-keygen -Y verify`).
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|ns| {
            match_patterns(namespace, ns.iter().map(String::as_str)) == ListMatch::Positive
        })
    }

    /// Whether `time_us` (Unix µs) lies in `[valid-after - skew, valid-before + skew)`.
    pub fn valid_at(&self, time_us: u64, skew_us: u64) -> bool {
        self.valid_after_us
            .is_none_or(|t| time_us >= t.saturating_sub(skew_us))
            && self
                .valid_before_us
                .is_none_or(|t| time_us < t.saturating_add(skew_us))
    }

    /// `valid-after … valid-before …` as RFC 3339, for reasons.
    fn window_text(&self) -> String {
        let mut w = Vec::new();
        if let Some(t) = self.valid_after_us {
            w.push(format!("valid-after {}", rfc3339(t)));
        }
        if let Some(t) = self.valid_before_us {
            w.push(format!("valid-before {}", rfc3339(t)));
        }
        w.join(", ")
    }
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
                line: n + 1,
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
                            parse_signers_time(v)
                                .ok_or_else(|| err(format!("bad valid-after {v:?}")))?,
                        )
                    }
                    ("valid-before", Some(v)) => {
                        tk.valid_before_us = Some(
                            parse_signers_time(v)
                                .ok_or_else(|| err(format!("bad valid-before {v:?}")))?,
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

    /// A store that trusts exactly `key`, for the host ids matching the comma-separated
    /// pattern list `principals` (`"h1"`, `"bastion-*"`, `"*"`: SPEC §6), in every namespace
    /// and at any time.
    pub fn single(principals: &str, key: PublicKey) -> TrustStore {
        TrustStore {
            keys: vec![TrustedKey {
                principals: principals.split(',').map(str::to_string).collect(),
                key,
                namespaces: None,
                valid_after_us: None,
                valid_before_us: None,
                line: 0,
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

    /// The trusted entry that lets key `id` sign in `namespace` ([`RECORDING_NAMESPACE`] for
    /// checkpoints, `sealcast-manifest` for manifests) for host id `host` at the signed time
    /// `time_us` (Unix µs: a checkpoint's `time`, a manifest's `period_end_us`) — SPEC §6.
    /// The first line that allows all four wins; several lines may name one key.
    ///
    /// The time is the signer's own claim: a key holder can backdate it into the window.
    /// Where an independent clock exists (the time a store kept an object), check it too with
    /// [`TrustStore::lookup_stored`].
    ///
    /// # Errors
    /// - [`CheckpointError::UntrustedKey`] when no line has the key;
    /// - [`CheckpointError::KeyNotValid`] when every line with it excludes this namespace or
    ///   time (the reason names the first such line's restriction);
    /// - [`CheckpointError::WrongSigner`] when some line trusts it for this namespace and time
    ///   but none for this host (the reason names the key, the host and the principals).
    pub fn lookup(
        &self,
        id: &KeyId,
        namespace: &str,
        host: &str,
        time_us: u64,
    ) -> Result<&TrustedKey, CheckpointError> {
        self.find(id, namespace, host, time_us, 0, "signed time")
    }

    /// As [`TrustStore::lookup`], but for the time `stored_us` (Unix µs) at which a store
    /// (S3 `LastModified`) says it received the signed object, a clock the signer does not
    /// control: the key's `valid-after`/`valid-before` widened by `skew_us` on both sides
    /// must contain it (MANIFEST.md §5).
    ///
    /// # Errors
    /// As [`TrustStore::lookup`]; a [`CheckpointError::KeyNotValid`] reason names the stored
    /// time and the window.
    pub fn lookup_stored(
        &self,
        id: &KeyId,
        namespace: &str,
        host: &str,
        stored_us: u64,
        skew_us: u64,
    ) -> Result<&TrustedKey, CheckpointError> {
        self.find(id, namespace, host, stored_us, skew_us, "stored")
    }

    fn find(
        &self,
        id: &KeyId,
        namespace: &str,
        host: &str,
        time_us: u64,
        skew_us: u64,
        what: &str,
    ) -> Result<&TrustedKey, CheckpointError> {
        let mut why: Option<String> = None;
        // Lines that trust the key for this namespace and time, but for other hosts.
        let mut other_hosts: Vec<&TrustedKey> = Vec::new();
        for k in self.keys.iter().filter(|k| k.key.id() == *id) {
            if !k.allows_namespace(namespace) {
                why.get_or_insert_with(|| {
                    format!(
                        "allowed_signers line {}: namespaces {:?} do not allow {namespace:?}",
                        k.line,
                        k.namespaces.as_deref().unwrap_or_default().join(",")
                    )
                });
                continue;
            }
            if !k.valid_at(time_us, skew_us) {
                let skew = match skew_us {
                    0 => String::new(),
                    s => format!(" (± {} s)", s / 1_000_000),
                };
                why.get_or_insert_with(|| {
                    format!(
                        "{what} {} is outside allowed_signers line {}: {}{skew}",
                        rfc3339(time_us),
                        k.line,
                        k.window_text()
                    )
                });
                continue;
            }
            if !k.allows_host(host) {
                other_hosts.push(k);
                continue;
            }
            return Ok(k);
        }
        if !other_hosts.is_empty() {
            let lines: Vec<String> = other_hosts
                .iter()
                .map(|k| format!("{:?} (line {})", k.principals_text(), k.line))
                .collect();
            return Err(CheckpointError::WrongSigner {
                key: *id,
                reason: format!(
                    "key {id} may sign for hosts {} only, not host {host:?}",
                    lines.join(", ")
                ),
            });
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
        assert_eq!(t.keys[1].line, 4);
        let ns = RECORDING_NAMESPACE;
        // The first line trusts it at any time, for hosts "alice@example.com" and "bob".
        assert!(t.lookup(&k.id(), ns, "bob", 0).is_ok());
        let only_git = TrustStore::parse(&format!("x namespaces=\"git\" {b64}")).unwrap();
        assert!(matches!(
            only_git.lookup(&k.id(), ns, "x", 0),
            Err(CheckpointError::KeyNotValid { .. })
        ));
        let windowed = TrustStore::parse(&format!("x valid-before=\"19700102\" {b64}")).unwrap();
        assert!(windowed.lookup(&k.id(), ns, "x", 0).is_ok());
        let e = windowed
            .lookup(&k.id(), ns, "x", 86_400_000_000)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("signed time 1970-01-02T00:00:00Z is outside allowed_signers line 1: valid-before 1970-01-02T00:00:00Z"),
            "{e}"
        );
        let other = SigningKey::generate().unwrap();
        assert!(matches!(
            t.lookup(&other.id(), ns, "bob", 0),
            Err(CheckpointError::UntrustedKey(_))
        ));
    }

    /// The principals are the host ids a key may sign for, as an OpenSSH pattern list; a
    /// key trusted for the namespace and time but not the host is a wrong signer, one that
    /// is not trusted then stays not valid.
    #[test]
    fn principals_bind_keys_to_hosts() {
        let k = SigningKey::generate().unwrap();
        let b64 = k.public().to_openssh("");
        let ns = RECORDING_NAMESPACE;
        let store = |principals: &str| {
            TrustStore::parse(&format!("{principals} namespaces=\"sealcast\" {b64}")).unwrap()
        };
        let wrong = |t: &TrustStore, host: &str| {
            matches!(
                t.lookup(&k.id(), ns, host, 0),
                Err(CheckpointError::WrongSigner { .. })
            )
        };
        let h1 = store("h1");
        assert!(h1.lookup(&k.id(), ns, "h1", 0).is_ok());
        assert!(wrong(&h1, "h2"));
        let e = h1.lookup(&k.id(), ns, "h2", 0).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "key {} may sign for hosts \"h1\" (line 1) only, not host \"h2\"",
                k.id()
            )),
            "{e}"
        );
        let any = store("*");
        assert!(any.lookup(&k.id(), ns, "h2", 0).is_ok());
        let fleet = store("bastion-*,!bastion-9");
        assert!(fleet.lookup(&k.id(), ns, "bastion-1", 0).is_ok());
        assert!(wrong(&fleet, "bastion-9"));
        assert!(wrong(&fleet, "db-1"));
        // A second line for the same key adds hosts.
        let two = TrustStore::parse(&format!("h1 {b64}\nh2 {b64}\n")).unwrap();
        assert!(two.lookup(&k.id(), ns, "h2", 0).is_ok());
        assert!(wrong(&two, "h3"));
        // Outside the window and for another host: not valid (the window is checked first).
        let late = TrustStore::parse(&format!("h1 valid-after=\"20260101\" {b64}")).unwrap();
        assert!(matches!(
            late.lookup(&k.id(), ns, "h2", 0),
            Err(CheckpointError::KeyNotValid { .. })
        ));
        // Namespaces are pattern lists too, as in ssh-keygen -Y verify.
        let nsp = TrustStore::parse(&format!("h1 namespaces=\"sealcast*\" {b64}")).unwrap();
        assert!(nsp.lookup(&k.id(), "sealcast-manifest", "h1", 0).is_ok());
        assert!(nsp.lookup(&k.id(), "git", "h1", 0).is_err());
        // `single` takes a pattern list.
        let single = TrustStore::single("h1,h2", k.public());
        assert!(single.lookup(&k.id(), ns, "h2", 0).is_ok());
        assert!(matches!(
            single.lookup(&k.id(), ns, "h3", 0),
            Err(CheckpointError::WrongSigner { .. })
        ));
    }

    /// The store's clock, with skew: inside the widened window only.
    #[test]
    fn stored_time_against_the_window_with_skew() {
        let k = SigningKey::generate().unwrap();
        let b64 = k.public().to_openssh("");
        let t = TrustStore::parse(&format!(
            "h1 valid-after=\"20260101\",valid-before=\"20260201\" {b64}"
        ))
        .unwrap();
        let after = 1_767_225_600_000_000u64; // 2026-01-01
        let before = 1_769_904_000_000_000u64; // 2026-02-01
        let skew = 300_000_000;
        let ns = RECORDING_NAMESPACE;
        let ok = |at: u64| t.lookup_stored(&k.id(), ns, "h1", at, skew).is_ok();
        assert!(ok(after - skew));
        assert!(!ok(after - skew - 1));
        assert!(ok(before + skew - 1));
        assert!(!ok(before + skew));
        let e = t
            .lookup_stored(&k.id(), ns, "h1", before + 3_600_000_000, skew)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stored 2026-02-01T01:00:00Z is outside allowed_signers line 1: valid-after 2026-01-01T00:00:00Z, valid-before 2026-02-01T00:00:00Z (± 300 s)"),
            "{e}"
        );
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
