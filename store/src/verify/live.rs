//! Segments of live recordings (MANIFEST.md §5 step 5): all the segments of a session are
//! checked together, as one recording prefix.

use std::io::{BufWriter, Write};

use sealcast_reader::{verify_bytes, OpenError, Status};
use sealcast_signer::TrustStore;

use super::objects::{fetch_listed, lock_finding, recording_host_finding, recording_stored_time};
use super::{BucketStatus, ProgressEvent};
use crate::manifest::{Entry, LockPolicy};
use crate::object::ObjVersion;
use crate::object_store::{map_file, ObjectStore};

/// One listed segment of a live recording (manifest status `open`).
pub(super) struct Segment<'m> {
    /// Key relative to the prefix.
    pub(super) rel: String,
    /// Its manifest entry.
    pub(super) e: &'m Entry,
    /// Its manifest's Object Lock policy.
    pub(super) lock: Option<&'m LockPolicy>,
}

/// Check the segments of one live session together (MANIFEST.md §5 step 5): each is listed,
/// present and hashes as listed; they follow each other from byte 0 without gap; and their
/// concatenation — streamed into a temporary file and mapped — verifies as a recording
/// prefix (SPEC §7 `UNCLOSED`, or `OK` if it happens to end with the final checkpoint) of
/// the listed session covering the last segment's `lines`. Returns one finding per segment,
/// in offset order; a segment after a failing one carries the failure.
pub(super) async fn check_live<S: ObjectStore>(
    src: &S,
    trust: &TrustStore,
    host: &str,
    host_rel: &str,
    segs: &[Segment<'_>],
    rlist: &[ObjVersion],
    progress: &dyn Fn(ProgressEvent),
) -> Vec<(BucketStatus, String)> {
    let n = segs.len();
    let mut findings: Vec<(BucketStatus, String)> = Vec::with_capacity(n);
    let mut failed: Option<(BucketStatus, String)> = None;
    let mut concat = match tempfile::tempfile() {
        Ok(f) => BufWriter::with_capacity(1 << 20, f),
        Err(err) => {
            let f = (
                BucketStatus::Unreadable,
                format!("temporary file in $TMPDIR: {err}"),
            );
            for s in segs {
                progress(ProgressEvent::Started {
                    key: s.e.key.clone(),
                    bytes: s.e.size,
                });
                progress(ProgressEvent::Finished {
                    key: s.e.key.clone(),
                    bytes: s.e.size,
                });
            }
            return vec![f; n];
        }
    };
    let mut expected = 0u64;
    // The object version of each segment fetched, for the store-clock check at the end.
    let mut objs: Vec<ObjVersion> = Vec::with_capacity(n);
    for (k, s) in segs.iter().enumerate() {
        progress(ProgressEvent::Started {
            key: s.e.key.clone(),
            bytes: s.e.size,
        });
        let offset = s.e.offset.unwrap_or(0);
        let finding = if let Some((st, why)) = &failed {
            (*st, format!("follows a segment that failed ({why})"))
        } else if offset != expected {
            (
                BucketStatus::Missing,
                format!("segment starts at byte {offset} but the segments before it end at byte {expected}"),
            )
        } else {
            match fetch_listed(src, host_rel, &s.rel, s.e, rlist).await {
                Err(f) => f,
                Ok((data, obj)) => match concat.write_all(&data) {
                    Err(err) => (
                        BucketStatus::Unreadable,
                        format!("temporary file in $TMPDIR: {err}"),
                    ),
                    Ok(()) => {
                        expected += data.size;
                        objs.push(obj.clone());
                        match lock_finding(src, &s.rel, &obj, s.lock).await {
                            Some(f) => f,
                            None => (
                                BucketStatus::Ok,
                                format!(
                                    "{} lines, session {}; open: segment {} of {n} (bytes {offset}–{}) of a live session, verified with the segments before it",
                                    s.e.lines,
                                    s.e.session,
                                    k + 1,
                                    expected
                                ),
                            ),
                        }
                    }
                },
            }
        };
        if finding.0 != BucketStatus::Ok && finding.0 != BucketStatus::LockWeak && failed.is_none()
        {
            failed = Some(finding.clone());
        }
        findings.push(finding);
        progress(ProgressEvent::Finished {
            key: s.e.key.clone(),
            bytes: s.e.size,
        });
    }
    if failed.is_some() {
        return findings;
    }
    let whole = match concat.into_inner() {
        Ok(f) => map_file(&f).map_err(|e| match e {
            OpenError::Io(e) => e,
            e => std::io::Error::other(e),
        }),
        Err(err) => Err(err.into_error()),
    };
    let whole = match whole {
        Ok(m) => m,
        Err(err) => {
            return vec![
                (
                    BucketStatus::Unreadable,
                    format!("temporary file in $TMPDIR: {err}")
                );
                n
            ]
        }
    };
    let report = verify_bytes(&whole, None, trust);
    let last = segs[n - 1].e;
    let problem = match report.status {
        Status::Unclosed | Status::Ok => {
            if report.session.as_deref() != Some(last.session.as_str())
                || report.verified_lines != last.lines
            {
                Some((
                    BucketStatus::Modified,
                    format!(
                        "the segments hold session {:?} with {} lines; the manifest lists {} with {}",
                        report.session, report.verified_lines, last.session, last.lines
                    ),
                ))
            } else {
                recording_host_finding(&report, host)
            }
        }
        st => Some((
            BucketStatus::from(st),
            format!("the segments together: {}", report.reason),
        )),
    };
    if let Some(p) = problem {
        for f in findings.iter_mut().filter(|f| f.0 == BucketStatus::Ok) {
            *f = p.clone();
        }
        return findings;
    }
    // Each segment was stored while the key that signed its checkpoints was valid.
    for (f, obj) in findings.iter_mut().zip(&objs) {
        if matches!(f.0, BucketStatus::Ok | BucketStatus::LockWeak) {
            if let Some(p) = recording_stored_time(src, trust, &report, obj) {
                *f = p;
            }
        }
    }
    findings
}
