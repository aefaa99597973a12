//! Verification of a host's recordings in a bucket, or in an offline mirror directory with
//! the same layout (format-spec/MANIFEST.md §5): the manifest chain (SSHSIG, trust, own key,
//! prev links, seq, periods), every listed object (version present and not hidden, SHA-256,
//! SPEC §7 content verification with its receipt, retention), what no manifest lists,
//! freshness, and the CI state (rollback / fork).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use aws_sdk_s3::types::ObjectLockMode;
use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sealcast_player::{verify_bytes, Status};
use sealcast_signer::sshsig::{self, SshSigError, MANIFEST_NAMESPACE};
use sealcast_signer::TrustStore;

use crate::manifest::Manifest;
use crate::s3::{self, Backoff, S3Url, Try};

/// Outcome of one check (MANIFEST.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BucketStatus {
    /// Verified.
    Ok,
    /// Bytes differ from what was signed.
    Modified,
    /// A signature does not verify.
    BadSignature,
    /// Signed by a key not trusted (for this namespace, at this time).
    UntrustedKey,
    /// Recording shorter than its receipt.
    Truncated,
    /// Not a sealcast recording / manifest.
    Format,
    /// A listed object is absent or hidden by a delete marker.
    Missing,
    /// An object no manifest lists.
    Unreferenced,
    /// Broken manifest chain.
    ChainGap,
    /// A manifest found elsewhere than it names.
    Moved,
    /// History shorter than the CI state.
    Rollback,
    /// History different from the CI state, or two successors of one manifest.
    Fork,
    /// Recording with a crash tail.
    UnsealedTail,
    /// Recording without a final checkpoint.
    Unclosed,
    /// Newest manifest older than the allowed lag.
    Stale,
    /// Retention weaker than the manifest's lock policy.
    LockWeak,
    /// Could not be read.
    Unreadable,
}

impl BucketStatus {
    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BucketStatus::Ok => "OK",
            BucketStatus::Modified => "MODIFIED",
            BucketStatus::BadSignature => "BAD_SIGNATURE",
            BucketStatus::UntrustedKey => "UNTRUSTED_KEY",
            BucketStatus::Truncated => "TRUNCATED",
            BucketStatus::Format => "FORMAT",
            BucketStatus::Missing => "MISSING",
            BucketStatus::Unreferenced => "UNREFERENCED",
            BucketStatus::ChainGap => "CHAIN_GAP",
            BucketStatus::Moved => "MOVED",
            BucketStatus::Rollback => "ROLLBACK",
            BucketStatus::Fork => "FORK",
            BucketStatus::UnsealedTail => "UNSEALED_TAIL",
            BucketStatus::Unclosed => "UNCLOSED",
            BucketStatus::Stale => "STALE",
            BucketStatus::LockWeak => "LOCK_WEAK",
            BucketStatus::Unreadable => "UNREADABLE",
        }
    }

    /// Exit class: 0 OK, 1 tampering evidence, 2 incomplete, 4 could not check.
    pub fn exit_class(self) -> i32 {
        match self {
            BucketStatus::Ok => 0,
            BucketStatus::UnsealedTail
            | BucketStatus::Unclosed
            | BucketStatus::Stale
            | BucketStatus::LockWeak => 2,
            BucketStatus::Unreadable => 4,
            _ => 1,
        }
    }

    fn from_recording(s: Status) -> BucketStatus {
        match s {
            Status::Ok => BucketStatus::Ok,
            Status::Modified => BucketStatus::Modified,
            Status::BadSignature => BucketStatus::BadSignature,
            Status::UntrustedKey => BucketStatus::UntrustedKey,
            Status::Truncated => BucketStatus::Truncated,
            Status::UnsealedTail => BucketStatus::UnsealedTail,
            Status::Unclosed => BucketStatus::Unclosed,
            Status::Unreadable => BucketStatus::Unreadable,
            _ => BucketStatus::Format,
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Status.
    pub status: BucketStatus,
    /// `manifest`, `recording`, `receipt`, `object`, `chain` or `state`.
    pub kind: &'static str,
    /// Object key (with prefix), or the host for chain-wide findings.
    pub key: String,
    /// Object version, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Explanation (empty for OK).
    pub detail: String,
}

/// One object version as listed.
#[derive(Debug, Clone)]
pub struct ObjVersion {
    /// Key relative to the prefix.
    pub key: String,
    /// Version id (None in a mirror or an unversioned listing).
    pub version_id: Option<String>,
    /// Current version of its key.
    pub latest: bool,
    /// A delete marker.
    pub delete_marker: bool,
    /// Last modified, Unix seconds.
    pub last_modified: Option<i64>,
}

/// Where the objects are.
pub enum Source {
    /// A bucket.
    S3 {
        /// Client.
        client: Client,
        /// Bucket and prefix.
        url: S3Url,
        /// Retries.
        backoff: Backoff,
    },
    /// A mirror directory (objects at their keys relative to the prefix).
    Dir(PathBuf),
}

impl Source {
    fn versioned(&self) -> bool {
        matches!(self, Source::S3 { .. })
    }

    /// Every version and delete marker under `rel` (relative to the prefix).
    ///
    /// # Errors
    /// Listing failures (after retries).
    pub async fn list(&self, rel: &str) -> Result<Vec<ObjVersion>> {
        match self {
            Source::Dir(root) => {
                let mut out = Vec::new();
                walk(&root.join(rel), rel, &mut out)?;
                Ok(out)
            }
            Source::S3 {
                client,
                url,
                backoff,
            } => {
                let mut out = Vec::new();
                let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
                loop {
                    let page = s3::retry("ListObjectVersions", *backoff, || async {
                        match client
                            .list_object_versions()
                            .bucket(&url.bucket)
                            .prefix(format!("{}{rel}", url.prefix))
                            .set_key_marker(km.clone())
                            .set_version_id_marker(vm.clone())
                            .send()
                            .await
                        {
                            Ok(o) => Try::Done(o),
                            Err(e) => s3::classify(e),
                        }
                    })
                    .await?;
                    let strip = |k: &str| k.strip_prefix(&url.prefix).unwrap_or(k).to_string();
                    for v in page.versions() {
                        out.push(ObjVersion {
                            key: strip(v.key().unwrap_or_default()),
                            version_id: v.version_id().filter(|v| *v != "null").map(str::to_string),
                            latest: v.is_latest().unwrap_or(false),
                            delete_marker: false,
                            last_modified: v.last_modified().map(|d| d.secs()),
                        });
                    }
                    for m in page.delete_markers() {
                        out.push(ObjVersion {
                            key: strip(m.key().unwrap_or_default()),
                            version_id: m.version_id().filter(|v| *v != "null").map(str::to_string),
                            latest: m.is_latest().unwrap_or(false),
                            delete_marker: true,
                            last_modified: m.last_modified().map(|d| d.secs()),
                        });
                    }
                    if page.is_truncated() == Some(true) {
                        km = page.next_key_marker().map(str::to_string);
                        vm = page.next_version_id_marker().map(str::to_string);
                        if km.is_none() {
                            break;
                        }
                    } else {
                        break;
                    }
                }
                Ok(out)
            }
        }
    }

    /// The bytes of an object version (the current one when `version` is None).
    ///
    /// # Errors
    /// Not found or unreadable.
    pub async fn get(&self, rel: &str, version: Option<&str>) -> Result<Vec<u8>> {
        match self {
            Source::Dir(root) => {
                let p = root.join(rel);
                std::fs::read(&p).with_context(|| format!("read {}", p.display()))
            }
            Source::S3 {
                client,
                url,
                backoff,
            } => {
                let key = format!("{}{rel}", url.prefix);
                s3::retry(&format!("GET {key}"), *backoff, || async {
                    let o = match client
                        .get_object()
                        .bucket(&url.bucket)
                        .key(&key)
                        .set_version_id(version.map(str::to_string))
                        .send()
                        .await
                    {
                        Ok(o) => o,
                        Err(e) => return s3::classify(e),
                    };
                    match o.body.collect().await {
                        Ok(b) => Try::Done(b.into_bytes().to_vec()),
                        Err(e) => Try::Transient(anyhow!("read body: {e}")),
                    }
                })
                .await
            }
        }
    }

    /// Retention of an object version: (mode, retain-until Unix seconds); None when the
    /// version has none. Mirrors have no retention (never called for them).
    async fn retention(&self, rel: &str, version: Option<&str>) -> Result<Option<(String, i64)>> {
        let Source::S3 {
            client,
            url,
            backoff,
        } = self
        else {
            return Ok(None);
        };
        let key = format!("{}{rel}", url.prefix);
        let h = s3::retry(&format!("HEAD {key}"), *backoff, || async {
            match client
                .head_object()
                .bucket(&url.bucket)
                .key(&key)
                .set_version_id(version.map(str::to_string))
                .send()
                .await
            {
                Ok(o) => Try::Done(o),
                Err(e) => s3::classify(e),
            }
        })
        .await?;
        Ok(
            match (h.object_lock_mode(), h.object_lock_retain_until_date()) {
                (Some(m), Some(d)) => Some((
                    match m {
                        ObjectLockMode::Compliance => "COMPLIANCE".into(),
                        ObjectLockMode::Governance => "GOVERNANCE".into(),
                        other => other.as_str().to_string(),
                    },
                    d.secs(),
                )),
                _ => None,
            },
        )
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<ObjVersion>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    let mut entries = Vec::new();
    for e in rd {
        let e = e?;
        entries.push((
            e.file_name().to_string_lossy().into_owned(),
            e.path(),
            e.file_type()?,
        ));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, path, ft) in entries {
        let r = format!("{rel}{name}");
        if ft.is_dir() {
            walk(&path, &format!("{r}/"), out)?;
        } else {
            let lm = std::fs::metadata(&path)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64);
            out.push(ObjVersion {
                key: r,
                version_id: None,
                latest: true,
                delete_marker: false,
                last_modified: lm,
            });
        }
    }
    Ok(())
}

/// The newest verified manifest, kept by CI between runs (`--state FILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Host.
    pub host: String,
    /// Its seq.
    pub seq: u64,
    /// Its key.
    pub key: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// What to verify.
pub struct Options {
    /// Host.
    pub host: String,
    /// Only content-verify recordings of manifests whose period ends at or after this (Unix µs).
    pub since_us: Option<u64>,
    /// … and starts at or before this.
    pub until_us: Option<u64>,
    /// Allowed age of the newest manifest's period end.
    pub max_lag: Duration,
    /// The previous run's head (`--state`).
    pub state: Option<Head>,
    /// Now, Unix µs.
    pub now_us: u64,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// One finding per object or chain event.
    pub findings: Vec<Finding>,
    /// The newest valid manifest (for `--state`).
    pub head: Option<Head>,
}

struct Valid {
    rel: String,
    full_key: String,
    sha256: String,
    sig_sha256: String,
    m: Manifest,
}

fn hexsha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Verify the host's manifests and recordings in `src` against `trust`.
///
/// # Errors
/// Only when a listing fails (the run cannot say anything then); per-object failures are
/// findings.
pub async fn verify(src: &Source, trust: &TrustStore, opts: &Options) -> Result<Outcome> {
    let host = &opts.host;
    let mrel = format!("manifests/{host}/");
    let rrel = format!("recordings/{host}/");
    let mlist = src.list(&mrel).await?;
    let rlist = src.list(&rrel).await?;
    let mut out = Outcome::default();
    let add = |out: &mut Outcome,
               status: BucketStatus,
               kind: &'static str,
               key: &str,
               version_id: Option<&str>,
               detail: String| {
        out.findings.push(Finding {
            status,
            kind,
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            detail,
        })
    };
    let (bucket, prefix_known) = match src {
        Source::S3 { url, .. } => (Some(url.bucket.clone()), Some(url.prefix.clone())),
        Source::Dir(_) => (None, None),
    };
    let mut prefix = prefix_known.clone();
    let latest = |list: &[ObjVersion], key: &str| -> Option<ObjVersion> {
        list.iter().find(|v| v.key == key && v.latest).cloned()
    };
    // (key, version) pairs accounted for by a manifest.
    let mut referenced: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    let refkey = |k: &str, v: Option<&str>, versioned: bool| {
        (
            k.to_string(),
            if versioned {
                v.map(str::to_string)
            } else {
                None
            },
        )
    };
    let versioned = src.versioned();

    // 1. Manifests.
    let mut mkeys: Vec<String> = mlist
        .iter()
        .filter(|v| v.key.ends_with(".json"))
        .map(|v| v.key.clone())
        .collect();
    mkeys.sort();
    mkeys.dedup();
    let mut valid: Vec<Valid> = Vec::new();
    for rel in &mkeys {
        let display = format!("{}{rel}", prefix.clone().unwrap_or_default());
        let Some(cur) = latest(&mlist, rel) else {
            continue;
        };
        let sig_rel = format!("{rel}.sig");
        let fail = |out: &mut Outcome, status: BucketStatus, reason: String| {
            add(
                out,
                status,
                "manifest",
                &display,
                cur.version_id.as_deref(),
                reason,
            )
        };
        if cur.delete_marker {
            fail(
                &mut out,
                BucketStatus::Missing,
                "current version is a delete marker".into(),
            );
            // The hidden versions are reported as MISSING here, not again as unreferenced.
            for v in mlist.iter().filter(|v| v.key == *rel || v.key == sig_rel) {
                referenced.insert(refkey(&v.key, v.version_id.as_deref(), versioned));
            }
            continue;
        }
        referenced.insert(refkey(rel, cur.version_id.as_deref(), versioned));
        let bytes = match src.get(rel, cur.version_id.as_deref()).await {
            Ok(b) => b,
            Err(e) => {
                fail(&mut out, BucketStatus::Unreadable, format!("{e:#}"));
                continue;
            }
        };
        let sig_cur = latest(&mlist, &sig_rel).filter(|v| !v.delete_marker);
        let Some(sig_cur) = sig_cur else {
            fail(
                &mut out,
                BucketStatus::Missing,
                "no signature object (.sig)".into(),
            );
            continue;
        };
        referenced.insert(refkey(&sig_rel, sig_cur.version_id.as_deref(), versioned));
        let sig = match src.get(&sig_rel, sig_cur.version_id.as_deref()).await {
            Ok(b) => b,
            Err(e) => {
                fail(
                    &mut out,
                    BucketStatus::Unreadable,
                    format!("signature: {e:#}"),
                );
                continue;
            }
        };
        let signer = match sshsig::verify(&sig, MANIFEST_NAMESPACE, &bytes) {
            Ok(pk) => pk,
            Err(SshSigError::KeyType(t)) => {
                fail(
                    &mut out,
                    BucketStatus::UntrustedKey,
                    format!("signed with a {t} key"),
                );
                continue;
            }
            Err(e) => {
                fail(&mut out, BucketStatus::BadSignature, e.to_string());
                continue;
            }
        };
        let m = match Manifest::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                fail(&mut out, BucketStatus::Format, format!("{e:#}"));
                continue;
            }
        };
        match trust.lookup(&signer.id(), m.period_end_us) {
            Ok(k) => {
                if let Some(ns) = &k.namespaces {
                    if !ns.iter().any(|n| n == MANIFEST_NAMESPACE) {
                        fail(
                            &mut out,
                            BucketStatus::UntrustedKey,
                            format!(
                                "key {} not trusted for namespace {MANIFEST_NAMESPACE}",
                                signer.id()
                            ),
                        );
                        continue;
                    }
                }
            }
            Err(e) => {
                fail(&mut out, BucketStatus::UntrustedKey, e.to_string());
                continue;
            }
        }
        // Where it claims to be.
        if prefix.is_none() {
            if let Some(p) = m.key.strip_suffix(rel.as_str()) {
                prefix = Some(p.to_string());
            }
        }
        let pfx = prefix.clone().unwrap_or_default();
        let full_key = format!("{pfx}{rel}");
        let mut moved = Vec::new();
        if m.key != full_key {
            moved.push(format!("names key {}", m.key));
        }
        if let Some(b) = &bucket {
            if &m.bucket != b {
                moved.push(format!("names bucket {}", m.bucket));
            }
        }
        if m.host != *host {
            moved.push(format!("names host {}", m.host));
        }
        if !moved.is_empty() {
            add(
                &mut out,
                BucketStatus::Moved,
                "manifest",
                &full_key,
                cur.version_id.as_deref(),
                format!("found at {full_key} but {}", moved.join(", ")),
            );
            continue;
        }
        add(
            &mut out,
            BucketStatus::Ok,
            "manifest",
            &full_key,
            cur.version_id.as_deref(),
            format!("seq {}, {} recordings", m.seq, m.recordings.len()),
        );
        valid.push(Valid {
            rel: rel.clone(),
            full_key,
            sha256: hexsha(&bytes),
            sig_sha256: hexsha(&sig),
            m,
        });
    }
    let pfx = prefix.clone().unwrap_or_default();

    // 2. The chain.
    valid.sort_by(|a, b| (a.m.seq, &a.rel).cmp(&(b.m.seq, &b.rel)));
    let by_key: BTreeMap<&str, usize> = valid
        .iter()
        .enumerate()
        .map(|(i, v)| (v.full_key.as_str(), i))
        .collect();
    let mut children: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut genesis = 0;
    for (i, v) in valid.iter().enumerate() {
        let k = &v.full_key;
        match &v.m.prev {
            None if v.m.seq == 0 && genesis == 0 => genesis += 1,
            None => {
                genesis += 1;
                add(
                    &mut out,
                    BucketStatus::ChainGap,
                    "chain",
                    k,
                    None,
                    format!("chain restarted at seq {} (prev is null)", v.m.seq),
                );
            }
            Some(p) => match by_key.get(p.key.as_str()) {
                None => add(
                    &mut out,
                    BucketStatus::ChainGap,
                    "chain",
                    k,
                    None,
                    format!(
                        "seq {}: previous manifest {} is not there (or not valid)",
                        v.m.seq, p.key
                    ),
                ),
                Some(&j) => {
                    let pv = &valid[j];
                    if p.sha256 != pv.sha256 || p.sig_sha256 != pv.sig_sha256 {
                        add(
                            &mut out,
                            BucketStatus::ChainGap,
                            "chain",
                            k,
                            None,
                            format!("seq {}: prev hash does not match {}", v.m.seq, p.key),
                        );
                    } else if v.m.seq != pv.m.seq + 1 {
                        add(
                            &mut out,
                            BucketStatus::ChainGap,
                            "chain",
                            k,
                            None,
                            format!("seq {} follows seq {}", v.m.seq, pv.m.seq),
                        );
                    } else if v.m.period_start_us != pv.m.period_end_us {
                        add(
                            &mut out,
                            BucketStatus::ChainGap,
                            "chain",
                            k,
                            None,
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
            &mut out,
            BucketStatus::Missing,
            "chain",
            host,
            None,
            format!("no valid manifest for host {host}"),
        );
    } else if genesis == 0 {
        add(
            &mut out,
            BucketStatus::ChainGap,
            "chain",
            host,
            None,
            format!("no manifest with seq 0 for host {host}"),
        );
    }
    for (j, c) in &children {
        if c.len() > 1 {
            add(
                &mut out,
                BucketStatus::Fork,
                "chain",
                &valid[*j].full_key,
                None,
                format!("{} manifests claim it as prev", c.len()),
            );
        }
    }
    let newest = valid.iter().max_by_key(|v| (v.m.seq, v.m.period_end_us));
    if let Some(n) = newest {
        let lag = opts.max_lag.as_micros() as u64;
        if n.m.period_end_us + lag < opts.now_us {
            add(
                &mut out,
                BucketStatus::Stale,
                "chain",
                &n.full_key,
                None,
                format!(
                    "newest manifest ends {}, older than the allowed lag of {} s",
                    n.m.period_end,
                    opts.max_lag.as_secs()
                ),
            );
        }
        out.head = Some(Head {
            host: host.clone(),
            seq: n.m.seq,
            key: n.full_key.clone(),
            sha256: n.sha256.clone(),
        });
    }
    if let Some(st) = &opts.state {
        let same_key = valid.iter().find(|v| v.full_key == st.key);
        match same_key {
            Some(v) if v.sha256 == st.sha256 => {}
            Some(_) => add(
                &mut out,
                BucketStatus::Fork,
                "state",
                &st.key,
                None,
                format!(
                    "manifest seq {} differs from the one verified before",
                    st.seq
                ),
            ),
            None => {
                let max_seq = valid.iter().map(|v| v.m.seq).max();
                if valid.iter().any(|v| v.m.seq == st.seq) || max_seq.is_some_and(|m| m > st.seq) {
                    add(
                        &mut out,
                        BucketStatus::Fork,
                        "state",
                        &st.key,
                        None,
                        format!(
                            "verified manifest seq {} is gone and another history is there",
                            st.seq
                        ),
                    );
                } else {
                    add(
                        &mut out,
                        BucketStatus::Rollback,
                        "state",
                        &st.key,
                        None,
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

    // 3. Listed recordings.
    for v in &valid {
        let in_range = opts.since_us.is_none_or(|s| v.m.period_end_us >= s)
            && opts.until_us.is_none_or(|u| v.m.period_start_us <= u);
        for e in &v.m.recordings {
            let rel = e
                .key
                .strip_prefix(pfx.as_str())
                .unwrap_or(&e.key)
                .to_string();
            referenced.insert(refkey(&rel, e.version_id.as_deref(), versioned));
            let receipt_rel = e.receipt.as_ref().map(|r| {
                let k = r
                    .key
                    .strip_prefix(pfx.as_str())
                    .unwrap_or(&r.key)
                    .to_string();
                referenced.insert(refkey(&k, r.version_id.as_deref(), versioned));
                k
            });
            if !in_range {
                continue;
            }
            let st = check_recording(
                src,
                trust,
                &rrel,
                &rel,
                receipt_rel.as_deref(),
                e,
                v.m.lock.as_ref(),
                &rlist,
            )
            .await;
            add(
                &mut out,
                st.0,
                "recording",
                &e.key,
                e.version_id.as_deref(),
                st.1,
            );
        }
    }

    // 4. What no manifest lists.
    for o in mlist.iter().chain(rlist.iter()) {
        if o.delete_marker {
            continue;
        }
        let listed = referenced.contains(&refkey(&o.key, o.version_id.as_deref(), versioned))
            || referenced.contains(&(o.key.clone(), None));
        if !listed {
            let key_listed = referenced.iter().any(|(k, _)| *k == o.key);
            let what = if key_listed {
                "another version of a listed key (overwritten key)"
            } else {
                "object no manifest lists"
            };
            add(
                &mut out,
                BucketStatus::Unreferenced,
                "object",
                &format!("{pfx}{}", o.key),
                o.version_id.as_deref(),
                what.into(),
            );
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn check_recording(
    src: &Source,
    trust: &TrustStore,
    host_rel: &str,
    rel: &str,
    receipt_rel: Option<&str>,
    e: &crate::manifest::Entry,
    lock: Option<&crate::manifest::LockPolicy>,
    rlist: &[ObjVersion],
) -> (BucketStatus, String) {
    if !rel.starts_with(host_rel) {
        return (BucketStatus::Moved, format!("listed outside {host_rel}"));
    }
    let versioned = src.versioned();
    let find = |k: &str, ver: Option<&str>| {
        rlist
            .iter()
            .find(|o| {
                o.key == k && !o.delete_marker && (!versioned || o.version_id.as_deref() == ver)
            })
            .cloned()
    };
    let hidden = |k: &str| {
        rlist
            .iter()
            .any(|o| o.key == k && o.latest && o.delete_marker)
    };
    let Some(obj) = find(rel, e.version_id.as_deref()) else {
        return (BucketStatus::Missing, "listed version is not there".into());
    };
    if hidden(rel) {
        return (
            BucketStatus::Missing,
            "hidden by a delete marker (the locked version is still there)".into(),
        );
    }
    let data = match src.get(rel, obj.version_id.as_deref()).await {
        Ok(d) => d,
        Err(err) => return (BucketStatus::Unreadable, format!("{err:#}")),
    };
    if hexsha(&data) != e.sha256 || data.len() as u64 != e.size {
        return (
            BucketStatus::Modified,
            "object bytes differ from the manifest's sha256/size".into(),
        );
    }
    let receipt = match &e.receipt {
        None => None,
        Some(r) => {
            let rr = receipt_rel.unwrap_or_default().to_string();
            if rr != format!("{rel}.seal") {
                return (BucketStatus::Moved, format!("receipt listed at {}", r.key));
            }
            let Some(ro) = find(&rr, r.version_id.as_deref()) else {
                return (
                    BucketStatus::Missing,
                    "receipt (.seal) version is not there".into(),
                );
            };
            if hidden(&rr) {
                return (
                    BucketStatus::Missing,
                    "receipt hidden by a delete marker".into(),
                );
            }
            match src.get(&rr, ro.version_id.as_deref()).await {
                Ok(b) if hexsha(&b) == r.sha256 => Some(b),
                Ok(_) => {
                    return (
                        BucketStatus::Modified,
                        "receipt bytes differ from the manifest".into(),
                    )
                }
                Err(err) => return (BucketStatus::Unreadable, format!("receipt: {err:#}")),
            }
        }
    };
    let report = verify_bytes(&data, receipt.as_deref(), trust);
    // What the entry's status allows (MANIFEST.md "status"): a closed recording must be
    // sealed; an open snapshot ends at a (non-final) checkpoint, all of it verified; a
    // recovered one ends unsealed, and is reported as such (exit class 2: its end was never
    // sealed by the recorder, only listed by the uploader).
    let st = match (e.status.as_str(), report.status) {
        ("open", Status::Unclosed | Status::Ok) => BucketStatus::Ok,
        (_, s) => BucketStatus::from_recording(s),
    };
    let recovered = e.status == "recovered"
        && matches!(report.status, Status::Unclosed | Status::UnsealedTail);
    if st != BucketStatus::Ok && !recovered {
        return (st, report.reason);
    }
    if report.session.as_deref() != Some(e.session.as_str()) || report.verified_lines != e.lines {
        return (
            BucketStatus::Modified,
            format!(
                "content is session {:?} with {} lines; the manifest lists {} with {}",
                report.session, report.verified_lines, e.session, e.lines
            ),
        );
    }
    if let (Some(l), true) = (lock, versioned) {
        match src.retention(rel, obj.version_id.as_deref()).await {
            Err(err) => return (BucketStatus::Unreadable, format!("retention: {err:#}")),
            Ok(None) => {
                return (
                    BucketStatus::LockWeak,
                    format!("no retention; policy {} {} days", l.mode, l.days),
                )
            }
            Ok(Some((mode, until))) => {
                let need = obj.last_modified.unwrap_or(0) + i64::from(l.days) * 86_400 - 3600;
                if mode != l.mode || until < need {
                    return (
                        BucketStatus::LockWeak,
                        format!(
                            "retention {mode} until {until}; policy {} {} days",
                            l.mode, l.days
                        ),
                    );
                }
            }
        }
    }
    let what = match e.status.as_str() {
        "open" => "; open: snapshot of a live session up to its last checkpoint",
        "recovered" => "; recovered after its recorder died: verified up to its last checkpoint",
        _ => "",
    };
    let tail = if recovered && !report.reason.is_empty() {
        format!(" ({})", report.reason)
    } else {
        String::new()
    };
    (
        st,
        format!("{} lines, session {}{what}{tail}", e.lines, e.session),
    )
}
