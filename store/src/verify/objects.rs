//! The objects a manifest lists (MANIFEST.md §5 steps 3–4): each listed version present and
//! not hidden, its bytes of the listed size and SHA-256, its retention as strong as the
//! manifest's lock policy, and its content verified as a recording (SPEC §7) with its seal
//! receipt, by the key valid when the store received it.

use sealcast_format::names;
use sealcast_reader::{verify_bytes, Report, Status};
use sealcast_signer::{KeyId, TrustStore, RECORDING_NAMESPACE};

use super::{hexsha, stored_time_finding, BucketStatus, SMALL_OBJECT_MAX};
use crate::error::Error;
use crate::manifest::{Entry, LockPolicy};
use crate::object::ObjVersion;
use crate::object_store::{Fetched, ObjectStore};

/// A recording's signer against the store's clock for the object version `obj`
/// ([`stored_time_finding`]), for the key and host its verification [`Report`] names.
/// `None` when no checkpoint verified (nothing was signed, and the report's status says so).
///
pub(super) fn recording_stored_time<S: ObjectStore>(
    src: &S,
    trust: &TrustStore,
    report: &Report,
    obj: &ObjVersion,
) -> Option<(BucketStatus, String)> {
    let key = KeyId::from_hex(report.key_id.as_deref()?)?;
    stored_time_finding(
        src.has_store_clock(),
        trust,
        &key,
        RECORDING_NAMESPACE,
        report.host.as_deref()?,
        obj,
    )
}

/// `MOVED` when a recording's header names another host than the chain that lists it (the
/// layout keeps each host's recordings under its own `recordings/<host>/`, MANIFEST.md §1).
pub(super) fn recording_host_finding(
    report: &Report,
    host: &str,
) -> Option<(BucketStatus, String)> {
    (report.host.as_deref() != Some(host)).then(|| {
        (
            BucketStatus::Moved,
            format!(
                "a recording of host {:?} listed in the chain of host {host}",
                report.host.as_deref().unwrap_or_default()
            ),
        )
    })
}

/// A listed object found, fetched and hashed: the listed version exists, is not hidden by a
/// delete marker, and its bytes have the manifest's size and SHA-256. Otherwise the finding.
pub(super) async fn fetch_listed<S: ObjectStore>(
    src: &S,
    host_rel: &str,
    rel: &str,
    e: &Entry,
    rlist: &[ObjVersion],
) -> Result<(Fetched, ObjVersion), (BucketStatus, String)> {
    if !rel.starts_with(host_rel) {
        return Err((BucketStatus::Moved, format!("listed outside {host_rel}")));
    }
    let Some(obj) = find_version(src, rlist, rel, e.version_id.as_deref()) else {
        return Err((BucketStatus::Missing, "listed version is not there".into()));
    };
    if hidden(rlist, rel) {
        return Err((
            BucketStatus::Missing,
            "hidden by a delete marker (the locked version is still there)".into(),
        ));
    }
    // Mapped from a file, not read into memory; hashed as it was read. Not read at all when
    // larger than listed.
    let data = match src.fetch(rel, obj.version_id.as_deref(), e.size).await {
        Ok(d) => d,
        Err(err) if matches!(err.root(), Error::StoredChecksumMismatch { .. }) => {
            return Err((BucketStatus::Modified, err.to_string()))
        }
        Err(err) => return Err((BucketStatus::Unreadable, format!("{err}"))),
    };
    if data.sha256.as_deref() != Some(e.sha256.as_str()) || data.size != e.size {
        return Err((
            BucketStatus::Modified,
            "object bytes differ from the manifest's sha256/size".into(),
        ));
    }
    Ok((data, obj))
}

/// The listed version of `k` (any version of it in a mirror), not a delete marker.
pub(super) fn find_version<S: ObjectStore>(
    src: &S,
    rlist: &[ObjVersion],
    k: &str,
    ver: Option<&str>,
) -> Option<ObjVersion> {
    let versioned = src.versioned();
    rlist
        .iter()
        .find(|o| o.key == k && !o.delete_marker && (!versioned || o.version_id.as_deref() == ver))
        .cloned()
}

/// Whether the current version of `k` is a delete marker.
pub(super) fn hidden(rlist: &[ObjVersion], k: &str) -> bool {
    rlist
        .iter()
        .any(|o| o.key == k && o.latest && o.delete_marker)
}

/// LOCK_WEAK (or UNREADABLE) when the version's retention is weaker than the manifest's
/// policy; `None` when it holds, or when there is no policy or no versions (a mirror).
pub(super) async fn lock_finding<S: ObjectStore>(
    src: &S,
    rel: &str,
    obj: &ObjVersion,
    lock: Option<&LockPolicy>,
) -> Option<(BucketStatus, String)> {
    let l = lock.filter(|_| src.versioned())?;
    match src
        .head(rel, obj.version_id.as_deref())
        .await
        .map(|h| h.retention)
    {
        Err(err) => Some((BucketStatus::Unreadable, format!("retention: {err}"))),
        Ok(None) => Some((
            BucketStatus::LockWeak,
            format!("no retention; policy {} {} days", l.mode, l.days),
        )),
        Ok(Some((mode, until))) => {
            let need = obj.last_modified.unwrap_or(0) + i64::from(l.days) * 86_400 - 3600;
            (mode != l.mode || until < need).then(|| {
                (
                    BucketStatus::LockWeak,
                    format!(
                        "retention {mode} until {until}; policy {} {} days",
                        l.mode, l.days
                    ),
                )
            })
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn check_recording<S: ObjectStore>(
    src: &S,
    trust: &TrustStore,
    host: &str,
    host_rel: &str,
    rel: &str,
    receipt_rel: Option<&str>,
    e: &Entry,
    lock: Option<&LockPolicy>,
    rlist: &[ObjVersion],
) -> (BucketStatus, String) {
    let (data, obj) = match fetch_listed(src, host_rel, rel, e, rlist).await {
        Ok(x) => x,
        Err(f) => return f,
    };
    let receipt = match &e.receipt {
        None => None,
        Some(r) => {
            let rr = receipt_rel.unwrap_or_default().to_string();
            if rr != names::receipt_key(rel) {
                return (BucketStatus::Moved, format!("receipt listed at {}", r.key));
            }
            let Some(ro) = find_version(src, rlist, &rr, r.version_id.as_deref()) else {
                return (
                    BucketStatus::Missing,
                    "receipt (.seal) version is not there".into(),
                );
            };
            if hidden(rlist, &rr) {
                return (
                    BucketStatus::Missing,
                    "receipt hidden by a delete marker".into(),
                );
            }
            match src
                .get(&rr, ro.version_id.as_deref(), SMALL_OBJECT_MAX)
                .await
            {
                Ok(b) if hexsha(&b) == r.sha256 => Some(b),
                Ok(_) => {
                    return (
                        BucketStatus::Modified,
                        "receipt bytes differ from the manifest".into(),
                    )
                }
                Err(err) => return (BucketStatus::Unreadable, format!("receipt: {err}")),
            }
        }
    };
    let report = verify_bytes(&data, receipt.as_deref(), trust);
    // What the entry's status allows (MANIFEST.md "status"): a closed recording must be
    // sealed; a recovered one ends unsealed, and is reported as such (exit class 2: its end
    // was never sealed by the recorder, only listed by the uploader). Open segments are
    // checked together by `check_live`.
    let st = BucketStatus::from(report.status);
    let recovered =
        e.status == "recovered" && matches!(report.status, Status::Unclosed | Status::UnsealedTail);
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
    if let Some(f) = recording_host_finding(&report, host) {
        return f;
    }
    if let Some(f) = recording_stored_time(src, trust, &report, &obj) {
        return f;
    }
    if let Some(f) = lock_finding(src, rel, &obj, lock).await {
        return f;
    }
    let what = match e.status.as_str() {
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
