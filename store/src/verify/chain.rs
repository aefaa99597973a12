//! The manifest chain check (MANIFEST.md §5 steps 1–2), as a pure function of the manifests
//! a store gave: each manifest's SSHSIG signature, its signer against the trust store at its
//! period end (and at the store's receive time, when the store has a clock), its parse, where
//! it claims to be; then the chain over the valid ones — `prev` links by key and by the
//! SHA-256 of the manifest and its signature, consecutive `seq`, contiguous periods, one
//! genesis, no two successors — freshness, and the CI state (ROLLBACK / FORK). No I/O: the
//! caller fetches ([`Fetch`]), this decides ([`check`]).

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};

use sealcast_signer::sshsig::{self, SshSigError, MANIFEST_NAMESPACE};
use sealcast_signer::TrustStore;

use super::{key_status, stored_time_finding, BucketStatus, Finding, Head};
use crate::manifest::Manifest;

/// A manifest object as the store gave it: its bytes and its `.sig`'s bytes.
#[derive(Debug, Clone)]
pub struct ManifestObject {
    /// Key relative to the store's root (`manifests/<host>/…/<host>_<time>_<seq>.json`).
    pub rel: String,
    /// Its version id (None in a mirror).
    pub version_id: Option<String>,
    /// When the store received it, Unix seconds (S3 `LastModified`).
    pub last_modified: Option<i64>,
    /// The manifest's bytes.
    pub bytes: Vec<u8>,
    /// The armoured SSHSIG of `<key>.sig`.
    pub sig: Vec<u8>,
}

/// One listed manifest: fetched, or what stopped its fetch (a delete marker, an unreadable
/// object, no `.sig`), reported as it stands in key order.
#[derive(Debug, Clone)]
pub enum Fetch {
    /// Fetched with its signature.
    Got(ManifestObject),
    /// Not fetched.
    Failed {
        /// Key relative to the store's root.
        rel: String,
        /// Its version id.
        version_id: Option<String>,
        /// MISSING or UNREADABLE.
        status: BucketStatus,
        /// Why.
        detail: String,
    },
}

/// What the chain is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The host whose chain this is.
    pub host: &'a str,
    /// The bucket the manifests were found in (None for a mirror: not checked).
    pub bucket: Option<&'a str>,
    /// The store's key prefix (None for a mirror: learnt from the first valid manifest).
    pub prefix: Option<&'a str>,
    /// Whether `last_modified` is the store's own clock (a bucket, not a mirror).
    pub store_clock: bool,
    /// Now, Unix µs (freshness).
    pub now_us: u64,
    /// Allowed age of the newest manifest's period end.
    pub max_lag: Duration,
    /// The previous run's head (`--state`).
    pub state: Option<&'a Head>,
}

/// A manifest that passed its own checks.
#[derive(Debug, Clone)]
pub struct Valid {
    /// Key relative to the store's root.
    pub rel: String,
    /// Key with the prefix (what `prev` links name).
    pub full_key: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// SHA-256 of its signature's bytes, hex.
    pub sig_sha256: String,
    /// The manifest.
    pub m: Manifest,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// One finding per manifest (OK or why not), then the chain's, freshness and the state's.
    pub findings: Vec<Finding>,
    /// The valid manifests by `(seq, key)`.
    pub valid: Vec<Valid>,
    /// The newest valid manifest.
    pub head: Option<Head>,
    /// The key prefix: the store's, else the one the first valid manifest names.
    pub prefix: Option<String>,
}

fn hexsha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn finding(
    status: BucketStatus,
    kind: &'static str,
    key: &str,
    version_id: Option<&str>,
    detail: String,
) -> Finding {
    Finding {
        status,
        kind,
        key: key.to_string(),
        version_id: version_id.map(str::to_string),
        detail,
    }
}

/// Check every manifest in `fetched` (in key order) and the chain they form against `trust`
/// (MANIFEST.md §5). Pure: the same input gives the same findings.
pub fn check(ctx: &Context<'_>, trust: &TrustStore, fetched: &[Fetch]) -> Checked {
    let host = ctx.host;
    let mut out = Checked {
        prefix: ctx.prefix.map(str::to_string),
        ..Checked::default()
    };
    let mut valid: Vec<Valid> = Vec::new();
    for f in fetched {
        let o = match f {
            Fetch::Failed {
                rel,
                version_id,
                status,
                detail,
            } => {
                let display = format!("{}{rel}", out.prefix.clone().unwrap_or_default());
                out.findings.push(finding(
                    *status,
                    "manifest",
                    &display,
                    version_id.as_deref(),
                    detail.clone(),
                ));
                continue;
            }
            Fetch::Got(o) => o,
        };
        let rel = &o.rel;
        let display = format!("{}{rel}", out.prefix.clone().unwrap_or_default());
        let mut fail = |status: BucketStatus, reason: String| {
            out.findings.push(finding(
                status,
                "manifest",
                &display,
                o.version_id.as_deref(),
                reason,
            ))
        };
        let signer = match sshsig::verify(&o.sig, MANIFEST_NAMESPACE, &o.bytes) {
            Ok(pk) => pk,
            Err(SshSigError::KeyType(t)) => {
                fail(BucketStatus::UntrustedKey, format!("signed with a {t} key"));
                continue;
            }
            Err(e) => {
                fail(BucketStatus::BadSignature, e.to_string());
                continue;
            }
        };
        let m = match Manifest::parse(&o.bytes) {
            Ok(m) => m,
            Err(e) => {
                fail(BucketStatus::Format, format!("{e}"));
                continue;
            }
        };
        // The key may sign manifests for the host the manifest names, at its period end (the
        // signer's clock), and was trusted when the store received it (the store's clock).
        match trust.lookup(&signer.id(), MANIFEST_NAMESPACE, &m.host, m.period_end_us) {
            Ok(_) if m.key_id != signer.id().to_string() => {
                fail(
                    BucketStatus::WrongSigner,
                    format!(
                        "signed by key {}, but the manifest names key {:?}",
                        signer.id(),
                        m.key_id
                    ),
                );
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                fail(key_status(&e), e.to_string());
                continue;
            }
        }
        let cur = crate::object::ObjVersion {
            key: rel.clone(),
            version_id: o.version_id.clone(),
            latest: true,
            delete_marker: false,
            last_modified: o.last_modified,
        };
        if let Some((st, why)) = stored_time_finding(
            ctx.store_clock,
            trust,
            &signer.id(),
            MANIFEST_NAMESPACE,
            &m.host,
            &cur,
        ) {
            fail(st, why);
            continue;
        }
        // Where it claims to be.
        if out.prefix.is_none() {
            if let Some(p) = m.key.strip_suffix(rel.as_str()) {
                out.prefix = Some(p.to_string());
            }
        }
        let pfx = out.prefix.clone().unwrap_or_default();
        let full_key = format!("{pfx}{rel}");
        let mut moved = Vec::new();
        if m.key != full_key {
            moved.push(format!("names key {}", m.key));
        }
        if let Some(b) = ctx.bucket {
            if m.bucket != b {
                moved.push(format!("names bucket {}", m.bucket));
            }
        }
        if m.host != host {
            moved.push(format!("names host {}", m.host));
        }
        let version_id = o.version_id.as_deref();
        if !moved.is_empty() {
            out.findings.push(finding(
                BucketStatus::Moved,
                "manifest",
                &full_key,
                version_id,
                format!("found at {full_key} but {}", moved.join(", ")),
            ));
            continue;
        }
        out.findings.push(finding(
            BucketStatus::Ok,
            "manifest",
            &full_key,
            version_id,
            format!("seq {}, {} recordings", m.seq, m.recordings.len()),
        ));
        valid.push(Valid {
            rel: rel.clone(),
            full_key,
            sha256: hexsha(&o.bytes),
            sig_sha256: hexsha(&o.sig),
            m,
        });
    }
    valid.sort_by(|a, b| (a.m.seq, &a.rel).cmp(&(b.m.seq, &b.rel)));
    link(ctx, &valid, &mut out);
    out.valid = valid;
    out
}

/// The chain over the valid manifests (sorted by `(seq, key)`), freshness and the state.
fn link(ctx: &Context<'_>, valid: &[Valid], out: &mut Checked) {
    let host = ctx.host;
    let mut add = |status: BucketStatus, kind: &'static str, key: &str, detail: String| {
        out.findings.push(finding(status, kind, key, None, detail));
    };
    let by_key: BTreeMap<&str, usize> = valid
        .iter()
        .enumerate()
        .map(|(i, v)| (v.full_key.as_str(), i))
        .collect();
    let mut children: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut genesis = 0;
    for (i, v) in valid.iter().enumerate() {
        let k = &v.full_key;
        let gap = BucketStatus::ChainGap;
        match &v.m.prev {
            None if v.m.seq == 0 && genesis == 0 => genesis += 1,
            None => {
                genesis += 1;
                add(
                    gap,
                    "chain",
                    k,
                    format!("chain restarted at seq {} (prev is null)", v.m.seq),
                );
            }
            Some(p) => match by_key.get(p.key.as_str()) {
                None => add(
                    gap,
                    "chain",
                    k,
                    format!(
                        "seq {}: previous manifest {} is not there (or not valid)",
                        v.m.seq, p.key
                    ),
                ),
                Some(&j) => {
                    let pv = &valid[j];
                    if p.sha256 != pv.sha256 || p.sig_sha256 != pv.sig_sha256 {
                        add(
                            gap,
                            "chain",
                            k,
                            format!("seq {}: prev hash does not match {}", v.m.seq, p.key),
                        );
                    } else if v.m.seq != pv.m.seq + 1 {
                        add(
                            gap,
                            "chain",
                            k,
                            format!("seq {} follows seq {}", v.m.seq, pv.m.seq),
                        );
                    } else if v.m.period_start_us != pv.m.period_end_us {
                        add(
                            gap,
                            "chain",
                            k,
                            format!(
                                "period starts {} but the previous one ended {}",
                                v.m.period_start, pv.m.period_end
                            ),
                        );
                    } else {
                        children.entry(j).or_default().push(i);
                    }
                }
            },
        }
    }
    if valid.is_empty() {
        add(
            BucketStatus::Missing,
            "chain",
            host,
            format!("no valid manifest for host {host}"),
        );
    } else if genesis == 0 {
        add(
            BucketStatus::ChainGap,
            "chain",
            host,
            format!("no manifest with seq 0 for host {host}"),
        );
    }
    for (j, c) in &children {
        if c.len() > 1 {
            add(
                BucketStatus::Fork,
                "chain",
                &valid[*j].full_key,
                format!("{} manifests claim it as prev", c.len()),
            );
        }
    }
    let newest = valid.iter().max_by_key(|v| (v.m.seq, v.m.period_end_us));
    let mut head = None;
    if let Some(n) = newest {
        let lag = ctx.max_lag.as_micros() as u64;
        if n.m.period_end_us + lag < ctx.now_us {
            add(
                BucketStatus::Stale,
                "chain",
                &n.full_key,
                format!(
                    "newest manifest ends {}, older than the allowed lag of {} s",
                    n.m.period_end,
                    ctx.max_lag.as_secs()
                ),
            );
        }
        head = Some(Head {
            host: host.to_string(),
            seq: n.m.seq,
            key: n.full_key.clone(),
            sha256: n.sha256.clone(),
        });
    }
    if let Some(st) = ctx.state {
        let same_key = valid.iter().find(|v| v.full_key == st.key);
        match same_key {
            Some(v) if v.sha256 == st.sha256 => {}
            Some(_) => add(
                BucketStatus::Fork,
                "state",
                &st.key,
                format!(
                    "manifest seq {} differs from the one verified before",
                    st.seq
                ),
            ),
            None => {
                let max_seq = valid.iter().map(|v| v.m.seq).max();
                if valid.iter().any(|v| v.m.seq == st.seq) || max_seq.is_some_and(|m| m > st.seq) {
                    add(
                        BucketStatus::Fork,
                        "state",
                        &st.key,
                        format!(
                            "verified manifest seq {} is gone and another history is there",
                            st.seq
                        ),
                    );
                } else {
                    add(
                        BucketStatus::Rollback,
                        "state",
                        &st.key,
                        format!(
                            "history ends at seq {} but seq {} was verified before",
                            max_seq.map_or("none".into(), |m| m.to_string()),
                            st.seq
                        ),
                    );
                }
            }
        }
    }
    out.head = head;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{self, Prev, FORMAT};
    use sealcast_signer::SigningKey;

    const DAY_US: u64 = 86_400 * 1_000_000;
    /// 2026-01-01T00:00:00Z.
    const T0: u64 = 1_767_225_600 * 1_000_000;

    fn key() -> SigningKey {
        SigningKey::generate().unwrap()
    }

    fn rel(seq: u64) -> String {
        format!("manifests/h1/2026/01/01/h1_x_{seq:06}.json")
    }

    /// Manifest `seq` of host h1 in bucket `b`, prefix `p/`, period day `seq` → `seq + 1`,
    /// linked to `prev` (bytes, sig), signed by `k`.
    fn manifest(k: &SigningKey, seq: u64, prev: Option<&ManifestObject>) -> ManifestObject {
        let start = T0 + seq * DAY_US;
        let end = start + DAY_US;
        let m = manifest::Manifest {
            format: FORMAT.into(),
            host: "h1".into(),
            bucket: "b".into(),
            key: format!("p/{}", rel(seq)),
            seq,
            period_start_us: start,
            period_end_us: end,
            period_start: crate::layout::rfc3339(start),
            period_end: crate::layout::rfc3339(end),
            prev: prev.map(|p| Prev {
                key: format!("p/{}", p.rel),
                sha256: hexsha(&p.bytes),
                sig_sha256: hexsha(&p.sig),
            }),
            key_id: k.id().to_string(),
            lock: None,
            recordings: Vec::new(),
        };
        let bytes = m.to_bytes();
        ManifestObject {
            rel: rel(seq),
            version_id: Some(format!("v{seq}")),
            last_modified: Some(((end + 60_000_000) / 1_000_000) as i64),
            sig: manifest::sign(k, &bytes).into_bytes(),
            bytes,
        }
    }

    fn chain(k: &SigningKey, n: u64) -> Vec<ManifestObject> {
        let mut out: Vec<ManifestObject> = Vec::new();
        for seq in 0..n {
            let m = manifest(k, seq, out.last());
            out.push(m);
        }
        out
    }

    fn ctx() -> Context<'static> {
        Context {
            host: "h1",
            bucket: Some("b"),
            prefix: Some("p/"),
            store_clock: true,
            now_us: T0 + 5 * DAY_US,
            max_lag: Duration::from_secs(30 * 86_400),
            state: None,
        }
    }

    fn got(ms: &[ManifestObject]) -> Vec<Fetch> {
        ms.iter().cloned().map(Fetch::Got).collect()
    }

    fn statuses(c: &Checked) -> Vec<(BucketStatus, &'static str, String)> {
        c.findings
            .iter()
            .map(|f| (f.status, f.kind, f.key.clone()))
            .collect()
    }

    fn not_ok(c: &Checked) -> Vec<&Finding> {
        c.findings
            .iter()
            .filter(|f| f.status != BucketStatus::Ok)
            .collect()
    }

    #[test]
    fn a_good_chain_is_all_ok_and_its_newest_is_the_head() {
        let k = key();
        let trust = TrustStore::single("h1", k.public());
        let ms = chain(&k, 3);
        let c = check(&ctx(), &trust, &got(&ms));
        assert!(not_ok(&c).is_empty(), "{:?}", c.findings);
        assert_eq!(c.findings.len(), 3);
        assert_eq!(c.valid.len(), 3);
        let head = c.head.unwrap();
        assert_eq!(
            (head.seq, head.key.as_str()),
            (2, &*format!("p/{}", rel(2)))
        );
        assert_eq!(head.sha256, hexsha(&ms[2].bytes));
        // Older than the allowed lag: STALE on the newest.
        let late = Context {
            now_us: T0 + 40 * DAY_US,
            ..ctx()
        };
        let c = check(&late, &trust, &got(&ms));
        let bad = not_ok(&c);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].status, BucketStatus::Stale);
        assert_eq!(bad[0].key, format!("p/{}", rel(2)));
    }

    #[test]
    fn a_missing_manifest_is_a_gap() {
        let k = key();
        let trust = TrustStore::single("h1", k.public());
        let mut ms = chain(&k, 3);
        ms.remove(1);
        let c = check(&ctx(), &trust, &got(&ms));
        let bad = not_ok(&c);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].status, BucketStatus::ChainGap);
        assert_eq!(bad[0].key, format!("p/{}", rel(2)));
        assert!(bad[0].detail.contains("is not there"), "{}", bad[0].detail);
        // No seq 0 at all: the chain has no start.
        let ms = chain(&k, 3)[1..].to_vec();
        let c = check(&ctx(), &trust, &got(&ms));
        assert!(
            c.findings
                .iter()
                .any(|f| f.status == BucketStatus::ChainGap && f.key == "h1"),
            "{:?}",
            c.findings
        );
    }

    #[test]
    fn a_changed_manifest_breaks_the_link_to_it() {
        let k = key();
        let trust = TrustStore::single("h1", k.public());
        let mut ms = chain(&k, 3);
        // Re-signed with other content (the signature verifies, the next link's hash not).
        let mut m1 = manifest::Manifest::parse(&ms[1].bytes).unwrap();
        m1.period_end = "changed".into();
        ms[1].bytes = m1.to_bytes();
        ms[1].sig = manifest::sign(&k, &ms[1].bytes).into_bytes();
        let c = check(&ctx(), &trust, &got(&ms));
        let bad = not_ok(&c);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].status, BucketStatus::ChainGap);
        assert!(bad[0].detail.contains("prev hash does not match"));
        // Not re-signed: the manifest itself is MODIFIED-by-signature, and the chain breaks.
        let mut ms = chain(&k, 2);
        ms[1].bytes[10] ^= 1;
        let c = check(&ctx(), &trust, &got(&ms));
        assert_eq!(not_ok(&c)[0].status, BucketStatus::BadSignature);
    }

    #[test]
    fn two_successors_of_one_manifest_are_a_fork() {
        let k = key();
        let trust = TrustStore::single("h1", k.public());
        let mut ms = chain(&k, 2);
        let mut other = manifest(&k, 1, Some(&ms[0]));
        let mut m = manifest::Manifest::parse(&other.bytes).unwrap();
        other.rel = "manifests/h1/2026/01/01/h1_y_000001.json".into();
        m.key = format!("p/{}", other.rel);
        other.bytes = m.to_bytes();
        other.sig = manifest::sign(&k, &other.bytes).into_bytes();
        ms.push(other);
        let c = check(&ctx(), &trust, &got(&ms));
        let bad = not_ok(&c);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].status, BucketStatus::Fork);
        assert_eq!(bad[0].key, format!("p/{}", rel(0)));
        // The CI state saw another seq 1: FORK; a longer history before: ROLLBACK.
        let ms = chain(&k, 2);
        let seen = Head {
            host: "h1".into(),
            seq: 1,
            key: format!("p/{}", rel(1)),
            sha256: "00".repeat(32),
        };
        let c = check(
            &Context {
                state: Some(&seen),
                ..ctx()
            },
            &trust,
            &got(&ms),
        );
        assert_eq!(not_ok(&c)[0].status, BucketStatus::Fork);
        let seen = Head {
            seq: 5,
            key: format!("p/{}", rel(5)),
            ..seen
        };
        let c = check(
            &Context {
                state: Some(&seen),
                ..ctx()
            },
            &trust,
            &got(&ms),
        );
        assert_eq!(not_ok(&c)[0].status, BucketStatus::Rollback);
    }

    #[test]
    fn a_key_of_another_host_or_named_wrongly_is_a_wrong_signer() {
        let k = key();
        let ms = chain(&k, 1);
        // Trusted, but for host h2 only.
        let h2 = TrustStore::single("h2", k.public());
        let c = check(&ctx(), &h2, &got(&ms));
        assert_eq!(not_ok(&c)[0].status, BucketStatus::WrongSigner, "{c:?}");
        assert!(c.valid.is_empty() && c.head.is_none());
        // A key nobody trusts.
        let stranger = TrustStore::single("h1", key().public());
        let c = check(&ctx(), &stranger, &got(&ms));
        assert_eq!(not_ok(&c)[0].status, BucketStatus::UntrustedKey);
        // Signed by a trusted key, but naming another key id.
        let trust = TrustStore::single("h1", k.public());
        let mut m = manifest::Manifest::parse(&ms[0].bytes).unwrap();
        m.key_id = key().id().to_string();
        let mut o = ms[0].clone();
        o.bytes = m.to_bytes();
        o.sig = manifest::sign(&k, &o.bytes).into_bytes();
        let c = check(&ctx(), &trust, &[Fetch::Got(o)]);
        let bad = not_ok(&c);
        assert_eq!(bad[0].status, BucketStatus::WrongSigner);
        assert!(bad[0].detail.contains("the manifest names key"));
    }

    #[test]
    fn a_key_outside_its_validity_is_untrusted() {
        let k = key();
        let ms = chain(&k, 2);
        // valid-before the second manifest's period end: it is UNTRUSTED_KEY, the first OK.
        let trust = TrustStore::parse(&format!(
            "h1 namespaces=\"sealcast-manifest\",valid-before=\"20260102120000Z\" {}\n",
            k.public().to_openssh("")
        ))
        .unwrap();
        let c = check(&ctx(), &trust, &got(&ms));
        let st: Vec<BucketStatus> = c.findings.iter().map(|f| f.status).collect();
        assert_eq!(st[0], BucketStatus::Ok, "{c:?}");
        assert_eq!(st[1], BucketStatus::UntrustedKey, "{c:?}");
        // Backdated: the signed period end is in the window, but the store received it after
        // the key was retired (only a store with a clock can tell).
        let mut late = chain(&k, 1);
        late[0].last_modified = Some(1_767_398_400); // 2026-01-03
        let c = check(&ctx(), &trust, &got(&late));
        assert_eq!(not_ok(&c)[0].status, BucketStatus::UntrustedKey, "{c:?}");
        assert!(not_ok(&c)[0].detail.contains("when the store received"));
        let mirror = Context {
            store_clock: false,
            bucket: None,
            prefix: None,
            ..ctx()
        };
        let c = check(&mirror, &trust, &got(&late));
        assert!(not_ok(&c).is_empty(), "{c:?}");
        // A mirror learns the prefix from the first valid manifest.
        assert_eq!(c.prefix.as_deref(), Some("p/"));
    }

    #[test]
    fn the_order_manifests_come_in_does_not_matter() {
        let k = key();
        let trust = TrustStore::single("h1", k.public());
        let ms = chain(&k, 4);
        let fwd = check(&ctx(), &trust, &got(&ms));
        let mut rev = ms.clone();
        rev.reverse();
        let back = check(&ctx(), &trust, &got(&rev));
        let mut a = statuses(&fwd);
        let mut b = statuses(&back);
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(not_ok(&back).is_empty(), "{:?}", back.findings);
        assert_eq!(back.head.unwrap().seq, 3);
        let seqs: Vec<u64> = back.valid.iter().map(|v| v.m.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
    }

    #[test]
    fn fetch_failures_are_reported_in_place() {
        let k = key();
        let trust = TrustStore::single("h1", k.public());
        let ms = chain(&k, 2);
        let fetched = vec![
            Fetch::Got(ms[0].clone()),
            Fetch::Failed {
                rel: ms[1].rel.clone(),
                version_id: Some("v1".into()),
                status: BucketStatus::Missing,
                detail: "no signature object (.sig)".into(),
            },
        ];
        let c = check(&ctx(), &trust, &fetched);
        assert_eq!(c.findings[1].status, BucketStatus::Missing);
        assert_eq!(c.findings[1].key, format!("p/{}", rel(1)));
        assert_eq!(c.findings[1].version_id.as_deref(), Some("v1"));
        assert_eq!(c.head.unwrap().seq, 0);
    }
}
