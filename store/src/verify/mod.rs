//! Verification of a host's recordings in a bucket, or in an offline mirror directory with
//! the same layout (format-spec/MANIFEST.md §5): the manifest chain (SSHSIG, trust, own key,
//! prev links, seq, periods), every listed object (version present and not hidden, SHA-256,
//! SPEC §7 content verification with its receipt, retention), what no manifest lists,
//! freshness, and the CI state (rollback / fork).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sealcast_format::time::rfc3339;
use sealcast_reader::Status;
use sealcast_signer::{CheckpointError, KeyId, TrustStore};

use crate::error::Result;
use crate::manifest::Manifest;
pub use crate::object::ObjVersion;
pub use crate::object_store::Fetched;
use crate::object_store::{DirStore, ObjectStore, S3Store};
use crate::s3::{Backoff, S3Url};

pub mod chain;
mod live;
mod objects;

use live::{check_live, Segment};
use objects::check_recording;

/// Outcome of one check (MANIFEST.md §5): a recording's [`Status`] (SPEC §7, the same name
/// and exit class, [`From<Status>`]), or one of the bucket's own findings. The recording
/// statuses also apply to manifests, as noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BucketStatus {
    /// [`Status::Ok`]; for a manifest, its signature and chain verified.
    Ok,
    /// [`Status::Modified`], of a recording, receipt or manifest.
    Modified,
    /// [`Status::BadSignature`], of a recording or manifest.
    BadSignature,
    /// [`Status::UntrustedKey`]; also a key that was outside its validity when the store
    /// received the object or manifest.
    UntrustedKey,
    /// [`Status::WrongSigner`]; for a manifest, a key whose principals do not match its host
    /// or that is not the key its `key_id` names.
    WrongSigner,
    /// [`Status::Truncated`].
    Truncated,
    /// [`Status::Format`]; also a manifest that does not parse.
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
    /// [`Status::UnsealedTail`].
    UnsealedTail,
    /// [`Status::Unclosed`].
    Unclosed,
    /// Newest manifest older than the allowed lag.
    Stale,
    /// Retention weaker than the manifest's lock policy.
    LockWeak,
    /// [`Status::Unreadable`]: a recording, receipt, manifest or listing could not be read.
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
            BucketStatus::WrongSigner => "WRONG_SIGNER",
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
            BucketStatus::Modified
            | BucketStatus::BadSignature
            | BucketStatus::UntrustedKey
            | BucketStatus::WrongSigner
            | BucketStatus::Truncated
            | BucketStatus::Format
            | BucketStatus::Missing
            | BucketStatus::Unreferenced
            | BucketStatus::ChainGap
            | BucketStatus::Moved
            | BucketStatus::Rollback
            | BucketStatus::Fork => 1,
            BucketStatus::UnsealedTail
            | BucketStatus::Unclosed
            | BucketStatus::Stale
            | BucketStatus::LockWeak => 2,
            BucketStatus::Unreadable => 4,
        }
    }
}

/// A recording's status (SPEC §7) as a bucket finding: each has the same name and exit
/// class. Exhaustive, so a new recording status must be given its bucket meaning here.
impl From<Status> for BucketStatus {
    fn from(s: Status) -> BucketStatus {
        match s {
            Status::Ok => BucketStatus::Ok,
            Status::Modified => BucketStatus::Modified,
            Status::BadSignature => BucketStatus::BadSignature,
            Status::UntrustedKey => BucketStatus::UntrustedKey,
            Status::WrongSigner => BucketStatus::WrongSigner,
            Status::Truncated => BucketStatus::Truncated,
            Status::Format => BucketStatus::Format,
            Status::UnsealedTail => BucketStatus::UnsealedTail,
            Status::Unclosed => BucketStatus::Unclosed,
            Status::Unreadable => BucketStatus::Unreadable,
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

/// Largest manifest, `.sig` or `.seal` receipt read into memory, in bytes (64 MiB; real
/// ones are kilobytes). A bigger one is an error naming its key (an UNREADABLE finding), not
/// an allocation of whatever size the store claims.
pub const SMALL_OBJECT_MAX: u64 = 64 * 1024 * 1024;

/// What [`verify`] reports as it goes, for a progress display (the store crate draws
/// nothing itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// Sent once, after the manifests are checked and before the first recording: how many
    /// recordings will be content-verified, and their total size in bytes as the manifests
    /// list them.
    Totals {
        /// Recordings to check.
        recordings: u64,
        /// Their listed sizes added up, in bytes.
        bytes: u64,
    },
    /// Checking one recording begins (its key with the prefix, its listed size in bytes).
    Started {
        /// Object key.
        key: String,
        /// Listed size in bytes.
        bytes: u64,
    },
    /// One recording is done, whatever its finding (so the `bytes` of all `Finished` events
    /// add up to the `bytes` of [`ProgressEvent::Totals`]).
    Finished {
        /// Object key.
        key: String,
        /// Listed size in bytes.
        bytes: u64,
    },
}

/// A progress callback for [`Options::progress`]; called on the verifying thread, so it
/// should return quickly.
pub type Progress = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// Where the objects are: a bucket or a mirror (for other stores, [`verify_store`]).
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
    /// Called with [`ProgressEvent`]s as the run goes (None: no reports).
    pub progress: Option<Progress>,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// One finding per object or chain event.
    pub findings: Vec<Finding>,
    /// The newest valid manifest (for `--state`).
    pub head: Option<Head>,
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
    match src {
        Source::S3 {
            client,
            url,
            backoff,
        } => {
            let store = S3Store::new(client.clone(), url.clone(), *backoff);
            verify_store(&store, trust, opts).await
        }
        Source::Dir(root) => verify_store(&DirStore::new(root.clone()), trust, opts).await,
    }
}

/// [`verify`] over any [`ObjectStore`].
///
/// # Errors
/// As [`verify`].
pub async fn verify_store<S: ObjectStore>(
    src: &S,
    trust: &TrustStore,
    opts: &Options,
) -> Result<Outcome> {
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
    let (bucket, prefix_known) = (
        src.bucket().map(str::to_string),
        src.prefix().map(str::to_string),
    );
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

    // 1. Manifests: fetched here (the listing decides what is referenced), checked with the
    // chain by the pure [`chain::check`].
    let mut mkeys: Vec<String> = mlist
        .iter()
        .filter(|v| v.key.ends_with(".json"))
        .map(|v| v.key.clone())
        .collect();
    mkeys.sort();
    mkeys.dedup();
    let mut fetched: Vec<chain::Fetch> = Vec::new();
    for rel in &mkeys {
        let Some(cur) = latest(&mlist, rel) else {
            continue;
        };
        let sig_rel = format!("{rel}.sig");
        let failed = |status: BucketStatus, detail: String| chain::Fetch::Failed {
            rel: rel.clone(),
            version_id: cur.version_id.clone(),
            status,
            detail,
        };
        if cur.delete_marker {
            fetched.push(failed(
                BucketStatus::Missing,
                "current version is a delete marker".into(),
            ));
            // The hidden versions are reported as MISSING here, not again as unreferenced.
            for v in mlist.iter().filter(|v| v.key == *rel || v.key == sig_rel) {
                referenced.insert(refkey(&v.key, v.version_id.as_deref(), versioned));
            }
            continue;
        }
        referenced.insert(refkey(rel, cur.version_id.as_deref(), versioned));
        let bytes = match src
            .get(rel, cur.version_id.as_deref(), SMALL_OBJECT_MAX)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                fetched.push(failed(BucketStatus::Unreadable, format!("{e}")));
                continue;
            }
        };
        let sig_cur = latest(&mlist, &sig_rel).filter(|v| !v.delete_marker);
        let Some(sig_cur) = sig_cur else {
            fetched.push(failed(
                BucketStatus::Missing,
                "no signature object (.sig)".into(),
            ));
            continue;
        };
        referenced.insert(refkey(&sig_rel, sig_cur.version_id.as_deref(), versioned));
        let sig = match src
            .get(&sig_rel, sig_cur.version_id.as_deref(), SMALL_OBJECT_MAX)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                fetched.push(failed(BucketStatus::Unreadable, format!("signature: {e}")));
                continue;
            }
        };
        fetched.push(chain::Fetch::Got(chain::ManifestObject {
            rel: rel.clone(),
            version_id: cur.version_id.clone(),
            last_modified: cur.last_modified,
            bytes,
            sig,
        }));
    }
    // 2. The chain.
    let checked = chain::check(
        &chain::Context {
            host,
            bucket: bucket.as_deref(),
            prefix: prefix_known.as_deref(),
            store_clock: src.has_store_clock(),
            now_us: opts.now_us,
            max_lag: opts.max_lag,
            state: opts.state.as_ref(),
        },
        trust,
        &fetched,
    );
    out.findings.extend(checked.findings);
    out.head = checked.head;
    let valid = checked.valid;
    let pfx = checked.prefix.unwrap_or_default();

    // 3. Listed recordings.
    let wanted = |m: &Manifest| {
        opts.since_us.is_none_or(|s| m.period_end_us >= s)
            && opts.until_us.is_none_or(|u| m.period_start_us <= u)
    };
    let progress = |ev: ProgressEvent| {
        if let Some(p) = &opts.progress {
            p(ev);
        }
    };
    // Live sessions with a segment in range: all their segments are checked, together.
    let live_in_range: BTreeSet<&str> = valid
        .iter()
        .filter(|v| wanted(&v.m))
        .flat_map(|v| &v.m.recordings)
        .filter(|e| e.status == "open")
        .map(|e| e.session.as_str())
        .collect();
    let checked = |in_range: bool, e: &crate::manifest::Entry| {
        if e.status == "open" {
            live_in_range.contains(e.session.as_str())
        } else {
            in_range
        }
    };
    let listed = valid.iter().flat_map(|v| {
        let in_range = wanted(&v.m);
        v.m.recordings.iter().filter(move |e| checked(in_range, e))
    });
    progress(ProgressEvent::Totals {
        recordings: listed.clone().count() as u64,
        bytes: listed.fold(0u64, |n, e| n.saturating_add(e.size)),
    });
    // Segments of live recordings, by session: checked together after the loop.
    let mut live: BTreeMap<&str, Vec<Segment<'_>>> = BTreeMap::new();
    for v in &valid {
        let in_range = wanted(&v.m);
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
            if !checked(in_range, e) {
                continue;
            }
            if e.status == "open" {
                // A session's segments are verified together: all of them when one is in
                // range.
                live.entry(e.session.as_str()).or_default().push(Segment {
                    rel,
                    e,
                    lock: v.m.lock.as_ref(),
                });
                continue;
            }
            progress(ProgressEvent::Started {
                key: e.key.clone(),
                bytes: e.size,
            });
            let st = check_recording(
                src,
                trust,
                host,
                &rrel,
                &rel,
                receipt_rel.as_deref(),
                e,
                v.m.lock.as_ref(),
                &rlist,
            )
            .await;
            progress(ProgressEvent::Finished {
                key: e.key.clone(),
                bytes: e.size,
            });
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

    for segs in live.values_mut() {
        segs.sort_by_key(|s| s.e.offset.unwrap_or(0));
        let found = check_live(src, trust, host, &rrel, segs, &rlist, &progress).await;
        for (s, (st, detail)) in segs.iter().zip(found) {
            add(
                &mut out,
                st,
                "recording",
                &s.e.key,
                s.e.version_id.as_deref(),
                detail,
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

/// Allowed difference between the store's clock and the times in `allowed_signers` when the
/// time a store received an object is compared with its signing key's `valid-after` /
/// `valid-before` (MANIFEST.md §5): 5 minutes.
pub const STORE_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// The status of a key lookup that failed: `WRONG_SIGNER` for a trusted key that may not sign
/// this, else `UNTRUSTED_KEY`.
fn key_status(e: &CheckpointError) -> BucketStatus {
    match e {
        CheckpointError::WrongSigner { .. } => BucketStatus::WrongSigner,
        _ => BucketStatus::UntrustedKey,
    }
}

/// The signing key `key` against the store's own clock (MANIFEST.md §5): the time the store
/// received `obj` (S3 `LastModified`) must lie in the key's `valid-after`/`valid-before`
/// window for `namespace` and `host`, give or take [`STORE_CLOCK_SKEW`]. A signer chooses the
/// times it signs (a checkpoint's `time`, a manifest's `period_end`) and can backdate them
/// into its window; it does not choose when the store received the object.
///
/// `None` when it holds, and for a mirror, which has no such clock (file times are whatever
/// the copy set). `UNTRUSTED_KEY` naming the stored time when it does not hold;
/// `UNREADABLE` when the store gave no time for the version (it could not be checked).
pub(crate) fn stored_time_finding(
    store_clock: bool,
    trust: &TrustStore,
    key: &KeyId,
    namespace: &str,
    host: &str,
    obj: &ObjVersion,
) -> Option<(BucketStatus, String)> {
    if !store_clock {
        return None;
    }
    let Some(secs) = obj.last_modified else {
        return Some((
            BucketStatus::Unreadable,
            format!(
                "the store gave no LastModified for {}: whether key {key} was valid when it \
                 was stored cannot be checked",
                obj.key
            ),
        ));
    };
    let stored_us = u64::try_from(secs).unwrap_or(0).saturating_mul(1_000_000);
    let skew = STORE_CLOCK_SKEW.as_micros() as u64;
    match trust.lookup_stored(key, namespace, host, stored_us, skew) {
        Ok(_) => None,
        Err(e) => Some((
            BucketStatus::UntrustedKey,
            format!(
                "key {key} was not valid for host {host:?} when the store received this object \
                 ({}): {e}",
                rfc3339(stored_us)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every recording status becomes the bucket status of the same name and exit class (the
    /// mapping is exhaustive: a new `Status` does not compile until it is mapped here).
    #[test]
    fn recording_statuses_keep_their_name_and_class() {
        for s in Status::ALL {
            let b = BucketStatus::from(s);
            assert_eq!(b.as_str(), s.as_str());
            assert_eq!(b.exit_class(), s.exit_class(), "{s:?}");
        }
    }
}
