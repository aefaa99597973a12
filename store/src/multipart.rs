//! Multipart uploads of large recordings (S3 CreateMultipartUpload / UploadPart /
//! CompleteMultipartUpload): parts sent in parallel in bounded memory whatever the recording
//! size, each part carrying its own SHA-256, completion with `If-None-Match: *`, and resume
//! after a crash.
//!
//! **Parallel parts.** Up to [`MultipartOptions::parallel_parts`] parts are in flight at once,
//! each a tokio task that reads its byte range of the spool file into one buffer, hashes it,
//! and sends it with `x-amz-checksum-sha256`, retried with the uploader's capped exponential
//! backoff ([`crate::s3::retry`]). Memory is at most `parallel_parts` part buffers. Completion lists
//! the parts in part-number order.
//!
//! **Resume record.** With [`MultipartOptions::resume`] set (the uploader uses
//! [`resume_record_path`]: `<spool>/.sealcast-multipart/<spool file name>.json`), a
//! [`ResumeRecord`] — bucket, key, upload id, the object's SHA-256 and size, the part size and
//! the parts completed so far (number, size, ETag, SHA-256) — is written atomically right
//! after CreateMultipartUpload and after every completed part. The next run, finding a record
//! for the same bucket, key, SHA-256, size and part size, asks the server with ListParts what
//! the upload holds, keeps the recorded parts the server confirms (same size and ETag, and the
//! same SHA-256 where the server returns one), sends only the others and completes. (A
//! ListParts answer the SDK refuses to parse — moto names its document element
//! `ListPartsResponse` — is read by a small tolerant reader of S3's `<Part>` elements.) A record
//! for something else, or whose upload is gone (`NoSuchUpload`), is dropped: its upload is
//! aborted (best effort) and a fresh one is created. The record is deleted once the upload is
//! completed or aborted, and when the key turns out to be taken already.
//!
//! **Failures.** A *final* failure (an S3 error that is not worth retrying: 4xx such as
//! `AccessDenied`, `InvalidPart`, `NoSuchUpload`, a part refused for its checksum, or the spool
//! file unreadable) aborts the upload and deletes the record: the next run starts over. When
//! the *retries run out* on transient failures (no answer, 5xx, 408, 409, 429), the upload and
//! its record are kept, so the next run (`upload --watch` or the next timer tick) resumes
//! where this one stopped instead of sending every part again; an uploader killed outright
//! leaves the same state behind. Without a resume record ([`MultipartOptions::resume`] `None`)
//! nobody could resume, so every failure aborts. Uploads that are never resumed (the spool file
//! removed by hand, a record that cannot be written — only a warning) are left to the bucket's
//! `AbortIncompleteMultipartUpload` lifecycle rule.
//!
//! Unchanged from single PUTs: a key that is already taken (HEAD, or 412 at completion) is
//! compared by SHA-256 — equal is [`Put::AlreadyThere`], different is an error and nothing is
//! overwritten; a completion whose answer was lost or unreadable is accepted when the key now
//! holds our bytes (moto, for one, answers CompleteMultipartUpload on a versioned bucket with
//! a reply the SDK cannot parse); the retention given at creation is checked and set with
//! PutObjectRetention when the store ignored it.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, IoContext, Occupied, Result};
use crate::object::{Put, Retention};
use crate::object_store::{ListedPart as Listed, Lock, ObjHead, ObjectStore, PartRef};
use crate::spool_state::write_atomic;

/// Default multipart threshold: 64 MiB.
pub const MULTIPART_THRESHOLD: u64 = 64 << 20;
/// Default part size: 16 MiB.
pub const PART_SIZE: u64 = 16 << 20;
/// Smallest part S3 accepts (all but the last part): 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Most parts in one S3 multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// Directory of the resume records inside the spool.
pub const RESUME_DIR: &str = ".sealcast-multipart";

/// How to send one multipart upload.
#[derive(Debug, Clone)]
pub struct MultipartOptions {
    /// Part size in bytes. Raised to [`MIN_PART_SIZE`], and further when the file would need
    /// more than [`MAX_PARTS`] parts.
    pub part_size: u64,
    /// Parts in flight at once (at least 1); memory is this many part buffers.
    pub parallel_parts: usize,
    /// Where to keep the [`ResumeRecord`] of this upload (see [`resume_record_path`]); `None`:
    /// no resume, every failure aborts the upload.
    pub resume: Option<PathBuf>,
}

/// The resume record of the spool file `file_name`:
/// `<spool>/.sealcast-multipart/<file_name>.json`.
pub fn resume_record_path(spool: &Path, file_name: &str) -> PathBuf {
    spool.join(RESUME_DIR).join(format!("{file_name}.json"))
}

/// An in-progress multipart upload, kept in the spool so that a later run can resume it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// S3 upload id.
    pub upload_id: String,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
    /// File size in bytes.
    pub size: u64,
    /// Part size in bytes (the effective one, see [`MultipartOptions::part_size`]).
    pub part_size: u64,
    /// Parts the server acknowledged, by part number.
    pub parts: Vec<RecordedPart>,
}

/// One acknowledged part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPart {
    /// Part number (1-based).
    pub number: i32,
    /// Size in bytes.
    pub size: u64,
    /// ETag the server returned.
    pub etag: String,
    /// Base64 SHA-256 of the part (`x-amz-checksum-sha256`).
    pub checksum_sha256: String,
}

impl ResumeRecord {
    /// Read a record; `None` when there is none.
    ///
    /// # Errors
    /// Unreadable or unparsable file.
    pub fn load(path: &Path) -> Result<Option<ResumeRecord>> {
        match fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|err| Error::Json {
                    path: path.to_path_buf(),
                    err,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Write atomically (temporary name, fsync, rename), creating the directory.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).at("create", dir)?;
        }
        let bytes = serde_json::to_vec_pretty(self).map_err(Error::Encode)?;
        write_atomic(path, &bytes)
    }
}

/// Effective part size for a file of `size` bytes: at least `requested` and
/// [`MIN_PART_SIZE`], and large enough for [`MAX_PARTS`] parts.
pub fn effective_part_size(size: u64, requested: u64) -> u64 {
    requested.max(MIN_PART_SIZE).max(size.div_ceil(MAX_PARTS))
}

/// The parts of a file: `(number, offset, length)`, numbers from 1; one (empty) part for an
/// empty file.
fn plan(size: u64, part_size: u64) -> Vec<(i32, u64, u64)> {
    let n = size.div_ceil(part_size).max(1);
    (0..n)
        .map(|i| {
            let off = i * part_size;
            (i as i32 + 1, off, part_size.min(size - off))
        })
        .collect()
}

fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// The recorded parts the server confirms: listed with the planned size, the recorded ETag,
/// and the recorded SHA-256 when it gives one.
fn confirmed(
    recorded: &[RecordedPart],
    listed: &BTreeMap<i32, Listed>,
    plan: &[(i32, u64, u64)],
) -> Vec<RecordedPart> {
    let want: BTreeMap<i32, u64> = plan.iter().map(|&(n, _, len)| (n, len)).collect();
    recorded
        .iter()
        .filter(|p| {
            want.get(&p.number) == Some(&p.size)
                && listed.get(&p.number).is_some_and(|(size, etag, sum)| {
                    *size == p.size
                        && same_etag(etag, &p.etag)
                        && sum.iter().all(|s| *s == p.checksum_sha256)
                })
        })
        .cloned()
        .collect()
}

/// Why a step failed: for good (abort the upload) or after the retries ran out (keep it for
/// the next run).
enum Fail {
    Final(Error),
    Retries(Error),
}

impl Fail {
    /// A store error: retries that ran out ([`Error::GaveUp`]) or a final one.
    fn of(e: Error) -> Fail {
        if matches!(e, Error::GaveUp { .. }) {
            Fail::Retries(e)
        } else {
            Fail::Final(e)
        }
    }

    fn into_inner(self) -> Error {
        match self {
            Fail::Final(e) | Fail::Retries(e) => e,
        }
    }
}

/// Read a part into one buffer and hash it.
fn read_part(path: &Path, offset: u64, len: u64) -> Result<(Vec<u8>, String)> {
    use std::io::{Read, Seek, SeekFrom};
    let short = |detail: String| Error::Short {
        path: path.to_path_buf(),
        offset,
        detail,
    };
    let mut f = crate::recording::open(path)?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| short(format!("seek: {e}")))?;
    let mut buf = Vec::with_capacity(len as usize);
    (&mut f)
        .take(len)
        .read_to_end(&mut buf)
        .map_err(|e| short(format!("read: {e}")))?;
    if buf.len() as u64 != len {
        return Err(short(format!(
            "{} bytes, expected {len} (file shrank?)",
            buf.len()
        )));
    }
    let sum = B64.encode(<sha2::Sha256 as sha2::Digest>::digest(&buf));
    Ok((buf, sum))
}

/// What one part task needs.
struct PartJob<S> {
    store: S,
    rel: String,
    key: String,
    upload_id: String,
    path: PathBuf,
    number: i32,
    offset: u64,
    len: u64,
}

/// Read, hash and send one part (the store retries); the part as the store acknowledged it.
async fn send_part<S: ObjectStore>(j: PartJob<S>) -> Result<RecordedPart, Fail> {
    let (path, offset, len) = (j.path.clone(), j.offset, j.len);
    let (body, sum) = tokio::task::spawn_blocking(move || read_part(&path, offset, len))
        .await
        .map_err(|e| {
            Fail::Final(Error::Multipart {
                key: j.key.clone(),
                detail: format!("reading part {}: {e}", j.number),
            })
        })?
        .map_err(Fail::Final)?;
    let etag = j
        .store
        .upload_part(&j.rel, &j.upload_id, j.number, body, &sum)
        .await
        .map_err(Fail::of)?;
    Ok(RecordedPart {
        number: j.number,
        size: len,
        etag,
        checksum_sha256: sum,
    })
}

/// Write the record; a failure is only a warning (the upload goes on, it just cannot be
/// resumed from the parts that were not recorded).
fn save_record(path: Option<&Path>, rec: &ResumeRecord) {
    if let Some(p) = path {
        if let Err(e) = rec.save(p) {
            eprintln!("sealcast upload: warning: cannot write resume record: {e}");
        }
    }
}

fn drop_record(path: Option<&Path>) {
    if let Some(p) = path {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "sealcast upload: warning: cannot remove {}: {e}",
                p.display()
            ),
        }
    }
}

/// Forget a resume record that does not lead anywhere: abort its upload (best effort) and
/// delete it.
async fn discard_record<S: ObjectStore>(
    store: &S,
    rel: &str,
    path: Option<&Path>,
    rec: Option<ResumeRecord>,
) {
    if let Some(r) = rec {
        if r.key.ends_with(rel) {
            store
                .abort_multipart(&r.key[r.key.len() - rel.len()..], &r.upload_id)
                .await;
        } else {
            let prefix = store.prefix().unwrap_or_default();
            let other = r.key.strip_prefix(prefix).unwrap_or(&r.key);
            store.abort_multipart(other, &r.upload_id).await;
        }
    }
    drop_record(path);
}

/// Upload the first `size` bytes of `path` as a multipart upload to `rel` in `store`: parts
/// of `opts.part_size` bytes, up to `opts.parallel_parts` at once (memory: that many part
/// buffers), each with its own SHA-256 checksum (the store retries each); completed only when
/// the key is free (`If-None-Match: *`) and with the `retention` set at creation (and checked
/// again once completed), retain-until counted from `clock`. `sha256` is the
/// SHA-256 of those `size` bytes: ours in the manifest (S3 keeps only a composite checksum
/// for multipart SHA-256), and what identifies the file in the resume record. With
/// `opts.resume`, an upload interrupted by a crash or by retries that ran out is resumed by
/// the next call (module docs).
///
/// A key that is already taken is checked like [`crate::object::put_range`] does: the same
/// SHA-256 is [`Put::AlreadyThere`], other bytes are [`Error::Occupied`] and nothing is
/// overwritten.
///
/// # Errors
/// The spool file cannot be read; a final store error (the upload is aborted); the retries
/// ran out (the upload and its record are kept for the next run; without a record it is
/// aborted); the key holds other bytes.
#[allow(clippy::too_many_arguments)]
pub async fn put_multipart<S: ObjectStore + Clone + 'static>(
    store: &S,
    rel: &str,
    path: &Path,
    size: u64,
    sha256: &[u8; 32],
    opts: &MultipartOptions,
    retention: Option<Retention>,
    clock: &dyn Clock,
) -> Result<Put> {
    let lock = |r: Retention| r.lock(clock.now_secs());
    let bucket = store.bucket().unwrap_or_default().to_string();
    let key = format!("{}{rel}", store.prefix().unwrap_or_default());
    let occupied = |stored: [u8; 32]| -> Error {
        Occupied {
            bucket: bucket.clone(),
            key: key.clone(),
            stored: hex::encode(stored),
            ours: hex::encode(sha256),
        }
        .into()
    };
    let rpath = opts.resume.as_deref();
    let old = match rpath.map(ResumeRecord::load).transpose() {
        Ok(r) => r.flatten(),
        Err(e) => {
            eprintln!("sealcast upload: warning: ignoring resume record: {e}");
            None
        }
    };

    if store.head_once(rel, None).await.is_ok() {
        discard_record(store, rel, rpath, old).await;
        let (stored, version) = multipart_stored(store, rel).await?;
        if stored != *sha256 {
            return Err(occupied(stored));
        }
        return Ok(Put::AlreadyThere(version));
    }

    let part_size = effective_part_size(size, opts.part_size);
    let parts_plan = plan(size, part_size);
    let sha_hex = hex::encode(sha256);

    // A record of this very upload: keep the parts the server confirms.
    let mut resumed: Option<ResumeRecord> = None;
    if let Some(r) = old {
        if r.bucket == bucket
            && r.key == key
            && r.sha256 == sha_hex
            && r.size == size
            && r.part_size == part_size
        {
            match store.list_parts(rel, &r.upload_id).await {
                Ok(Some(listed)) => {
                    let parts = confirmed(&r.parts, &listed, &parts_plan);
                    eprintln!(
                        "sealcast upload: resumed multipart upload of s3://{bucket}/{key}: {} of {} parts already stored",
                        parts.len(),
                        parts_plan.len()
                    );
                    resumed = Some(ResumeRecord { parts, ..r });
                }
                Ok(None) => {
                    eprintln!(
                        "sealcast upload: multipart upload of s3://{bucket}/{key} recorded in {} is gone; starting over",
                        rpath.map(|p| p.display().to_string()).unwrap_or_default()
                    );
                    drop_record(rpath);
                }
                // Cannot tell what the server has: keep the record for the next run.
                Err(e) => return Err(e.context("resuming multipart upload")),
            }
        } else {
            discard_record(store, rel, rpath, Some(r)).await;
        }
    }

    let mut record = match resumed {
        Some(r) => r,
        None => {
            let upload_id = store.create_multipart(rel, retention.map(lock)).await?;
            ResumeRecord {
                bucket: bucket.clone(),
                key: key.clone(),
                upload_id,
                sha256: sha_hex,
                size,
                part_size,
                parts: Vec::new(),
            }
        }
    };
    save_record(rpath, &record);
    let upload_id = record.upload_id.clone();

    // The missing parts, `parallel_parts` at a time.
    let mut todo: VecDeque<(i32, u64, u64)> = parts_plan
        .iter()
        .filter(|(n, _, _)| !record.parts.iter().any(|p| p.number == *n))
        .copied()
        .collect();
    let parallel = opts.parallel_parts.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut failure: Option<Fail> = None;
    loop {
        while failure.is_none() && tasks.len() < parallel {
            let Some((number, offset, len)) = todo.pop_front() else {
                break;
            };
            tasks.spawn(send_part(PartJob {
                store: store.clone(),
                rel: rel.to_string(),
                key: key.clone(),
                upload_id: upload_id.clone(),
                path: path.to_path_buf(),
                number,
                offset,
                len,
            }));
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok(Ok(part)) => {
                record.parts.push(part);
                record.parts.sort_by_key(|p| p.number);
                save_record(rpath, &record);
            }
            // Parts in flight when retries ran out may still get through: let them finish,
            // so that the record keeps them.
            Ok(Err(Fail::Retries(e))) => {
                if failure.is_none() {
                    failure = Some(Fail::Retries(e));
                }
            }
            Ok(Err(Fail::Final(e))) => {
                if !matches!(failure, Some(Fail::Final(_))) {
                    failure = Some(Fail::Final(e));
                }
                tasks.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                failure = Some(Fail::Final(Error::Multipart {
                    key: key.clone(),
                    detail: format!("part task failed: {e}"),
                }));
                tasks.abort_all();
            }
        }
    }

    let outcome = match failure {
        Some(f) => Err(f),
        None => {
            let parts: Vec<PartRef> = record
                .parts
                .iter()
                .map(|p| PartRef {
                    number: p.number,
                    etag: p.etag.clone(),
                    checksum_sha256: p.checksum_sha256.clone(),
                })
                .collect();
            let r = store
                .complete_multipart(rel, &upload_id, &parts)
                .await
                .map_err(Fail::of);
            match r {
                Ok(v) => Ok(v),
                // A completion whose answer was lost or unreadable may still have committed.
                Err(f) => match multipart_stored(store, rel).await {
                    Ok((stored, version)) if stored == *sha256 => Ok(Some(version)),
                    Ok((stored, _)) => Err(Fail::Final(f.into_inner().context(format!(
                        "after it, the key holds sha256 {}",
                        hex::encode(stored)
                    )))),
                    Err(e2) => Err(match f {
                        Fail::Final(e) => Fail::Final(
                            e.context(format!("after it, the key cannot be read: {e2}")),
                        ),
                        Fail::Retries(e) => Fail::Retries(
                            e.context(format!("after it, the key cannot be read: {e2}")),
                        ),
                    }),
                },
            }
        }
    };

    match outcome {
        Ok(Some(v)) => {
            drop_record(rpath);
            if let Some(r) = retention {
                ensure_retention(store, rel, &key, v.as_deref(), lock(r), r.days).await;
            }
            Ok(Put::Created(v))
        }
        Ok(None) => {
            store.abort_multipart(rel, &upload_id).await;
            drop_record(rpath);
            let (stored, version) = multipart_stored(store, rel).await?;
            if stored != *sha256 {
                return Err(occupied(stored));
            }
            Ok(Put::AlreadyThere(version))
        }
        Err(Fail::Retries(e)) if rpath.is_some() => Err(e.context(format!(
            "multipart upload kept for the next run ({} of {} parts stored)",
            record.parts.len(),
            parts_plan.len()
        ))),
        Err(f) => {
            store.abort_multipart(rel, &upload_id).await;
            drop_record(rpath);
            Err(f.into_inner())
        }
    }
}

/// Some stores ignore the retention given at CreateMultipartUpload, and the date given there
/// was counted from the upload's creation, which a resumed upload may be far past: check the
/// new version and set the retention `lock` (now + the configured days) when it is missing
/// or ends more than an hour before that (a warning when that fails too; `verify` reports
/// such a version as LOCK_WEAK).
async fn ensure_retention<S: ObjectStore>(
    store: &S,
    rel: &str,
    key: &str,
    version: Option<&str>,
    lock: Lock,
    days: u32,
) {
    let enough = |h: &ObjHead| {
        h.retention
            .as_ref()
            .is_some_and(|(_, until)| *until >= lock.until_secs - 3600)
    };
    if store
        .head_once(rel, version)
        .await
        .as_ref()
        .is_ok_and(enough)
    {
        return;
    }
    let set = store.set_retention(rel, version, lock).await;
    let now_locked = store
        .head_once(rel, version)
        .await
        .is_ok_and(|h| enough(&h));
    if !now_locked {
        let bucket = store.bucket().unwrap_or_default();
        eprintln!(
            "sealcast upload: warning: s3://{bucket}/{key}: the store did not apply Object Lock retention ({days} days) to the multipart upload{}",
            set.err().map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
}

/// SHA-256 of the current version of a (possibly multipart) object, by reading it: S3 keeps
/// only a composite checksum for multipart SHA-256.
async fn multipart_stored<S: ObjectStore>(
    store: &S,
    rel: &str,
) -> Result<([u8; 32], Option<String>)> {
    let version = store
        .head_once(rel, None)
        .await
        .ok()
        .and_then(|h| h.version_id);
    let (h, _) = store.sha256(rel, version.as_deref()).await?;
    Ok((h, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn plans_parts() {
        assert_eq!(effective_part_size(100 * MIB, 1), 5 * MIB);
        assert_eq!(effective_part_size(100 * MIB, 16 * MIB), 16 * MIB);
        // More than 10 000 parts of 5 MiB: the part size grows.
        let big = 60_000 * MIB;
        assert_eq!(effective_part_size(big, 5 * MIB), 6 * MIB);
        assert_eq!(plan(0, 5 * MIB), vec![(1, 0, 0)]);
        assert_eq!(plan(5 * MIB, 5 * MIB), vec![(1, 0, 5 * MIB)]);
        assert_eq!(
            plan(11 * MIB, 5 * MIB),
            vec![(1, 0, 5 * MIB), (2, 5 * MIB, 5 * MIB), (3, 10 * MIB, MIB)]
        );
        let p = plan(big, effective_part_size(big, 5 * MIB));
        assert_eq!(p.len(), 10_000);
        assert_eq!(p.iter().map(|x| x.2).sum::<u64>(), big);
    }

    #[test]
    fn keeps_only_confirmed_parts() {
        let plan = plan(11 * MIB, 5 * MIB);
        let part = |n: i32, size: u64, etag: &str, sum: &str| RecordedPart {
            number: n,
            size,
            etag: etag.into(),
            checksum_sha256: sum.into(),
        };
        let recorded = vec![
            part(1, 5 * MIB, "\"e1\"", "s1"),
            part(2, 5 * MIB, "\"e2\"", "s2"),
            part(3, MIB, "\"e3\"", "s3"),
        ];
        let mut listed: BTreeMap<i32, Listed> = BTreeMap::new();
        // Same ETag without quotes, no checksum from the server: kept.
        listed.insert(1, (5 * MIB, "e1".into(), None));
        // The server's checksum differs: sent again.
        listed.insert(2, (5 * MIB, "\"e2\"".into(), Some("other".into())));
        // Part 3 has another size on the server: sent again.
        listed.insert(3, (MIB - 1, "\"e3\"".into(), Some("s3".into())));
        let kept = confirmed(&recorded, &listed, &plan);
        assert_eq!(kept, vec![recorded[0].clone()]);
        listed.insert(2, (5 * MIB, "\"e2\"".into(), Some("s2".into())));
        listed.insert(3, (MIB, "\"e3\"".into(), Some("s3".into())));
        assert_eq!(confirmed(&recorded, &listed, &plan), recorded);
        // Not listed (the server lost it, or another upload): sent again.
        listed.remove(&1);
        assert_eq!(confirmed(&recorded, &listed, &plan).len(), 2);
        // A recorded part that does not fit the plan is never kept.
        let odd = vec![part(4, 5 * MIB, "e4", "s4")];
        listed.insert(4, (5 * MIB, "e4".into(), None));
        assert!(confirmed(&odd, &listed, &plan).is_empty());
    }
}
