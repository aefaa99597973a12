//! What the uploader and the verifier need from an object store, as a trait
//! ([`ObjectStore`]), with three implementations: [`S3Store`] (a bucket through aws-sdk-s3,
//! retries inside), [`DirStore`] (an offline mirror directory with the bucket's layout,
//! MANIFEST.md §5) and [`MemoryStore`] (versioned, in memory, for unit tests).
//!
//! Keys are relative to the store's root: the URL's prefix for a bucket, the directory for a
//! mirror. The operations are the ones S3 offers and sealcast relies on (MANIFEST.md §2):
//! a PUT carrying our SHA-256, conditional on the key being free (`If-None-Match: *`) and
//! with Object Lock retention; GET of a version (small objects in memory, recordings as a
//! map of a file, [`Fetched`]); HEAD (version, size, stored full-object SHA-256, retention);
//! listings of every version and delete marker, or of current objects; multipart uploads.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::path::Path;

use sealcast_reader::{OpenError, Recording};

use crate::error::Result;
use crate::object::{LockMode, ObjVersion};

mod dir;
mod memory;
mod s3;

pub use dir::DirStore;
pub use memory::MemoryStore;
pub use s3::{S3Store, SpooledObject};

#[cfg(test)]
mod tests;

/// A byte range of a local file to store: `len` bytes of `path` from byte `offset`.
#[derive(Debug, Clone, Copy)]
pub struct FileRange<'a> {
    /// The file (opened as a regular file only).
    pub path: &'a Path,
    /// First byte.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
}

/// Object Lock retention for a new object or version: mode and retain-until time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    /// Mode.
    pub mode: LockMode,
    /// Retain until, Unix seconds.
    pub until_secs: i64,
}

/// What HEAD says about an object version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjHead {
    /// Version id (None on an unversioned store).
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// The store's full-object SHA-256 of the bytes, when it keeps one (not for multipart
    /// objects, whose checksum is composite).
    pub sha256: Option<[u8; 32]>,
    /// Object Lock retention: (`COMPLIANCE` / `GOVERNANCE`, retain-until Unix seconds).
    pub retention: Option<(String, i64)>,
}

/// A part of a multipart upload as the store lists it: size, ETag, base64 SHA-256 when the
/// store returns one.
pub type ListedPart = (u64, String, Option<String>);

/// A part to complete a multipart upload with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    /// Part number (1-based).
    pub number: i32,
    /// ETag the store returned for it.
    pub etag: String,
    /// Its base64 SHA-256.
    pub checksum_sha256: String,
}

/// A recording's bytes as [`ObjectStore::fetch`] holds them: a read-only memory map of a
/// file (for a bucket, a private unlinked temporary file the object was streamed into; for a
/// mirror, the mirror's own file) or, in a [`MemoryStore`], a copy. Derefs to the bytes
/// (empty for a zero-length object, and for one not read because it exceeds the limit).
pub struct Fetched {
    pub(crate) rec: Option<Recording>,
    /// Size of the object in bytes (its full size even when it was not read whole).
    pub size: u64,
    /// SHA-256 of the object's bytes, hex, computed as they were read; `None` when the
    /// object is larger than the limit given to [`ObjectStore::fetch`] and was not read whole.
    pub sha256: Option<String>,
}

impl std::ops::Deref for Fetched {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.rec.as_deref().unwrap_or_default()
    }
}

/// An object store: a bucket, a mirror, or memory. Every method that talks to a remote
/// store retries transient failures itself (capped exponential backoff) and returns
/// [`crate::Error::GaveUp`] when the tries ran out, [`crate::Error::Context`] around a final
/// error.
pub trait ObjectStore: Send + Sync {
    /// `s3://BUCKET/PREFIX`, or the mirror's path, for messages.
    fn describe(&self) -> String;

    /// The bucket's name; `None` for a mirror (which cannot tell).
    fn bucket(&self) -> Option<&str>;

    /// The key prefix of the root; `None` when unknown (a mirror: learnt from a manifest).
    fn prefix(&self) -> Option<&str>;

    /// Whether listings and reads are of versions (ids and delete markers), so that a
    /// manifest's version ids can be checked.
    fn versioned(&self) -> bool;

    /// Whether [`ObjVersion::last_modified`] is the store's own clock, recording when it
    /// received each version (a bucket), rather than a file time anyone can set (a mirror).
    fn has_store_clock(&self) -> bool;

    /// Whether the store has Object Lock on (asked once per run).
    fn object_lock_enabled(&self) -> impl Future<Output = Result<bool>> + Send;

    /// Store `body` at `rel` with our SHA-256 `sha256` (a store checking it refuses other
    /// bytes), only when `rel` is free, with `lock`. `Some(version)` when stored,
    /// `None` when the key was taken (nothing written).
    fn put(
        &self,
        rel: &str,
        body: FileRange<'_>,
        sha256: &[u8; 32],
        lock: Option<Lock>,
    ) -> impl Future<Output = Result<Option<Option<String>>>> + Send;

    /// HEAD of a version (the current one when `version` is `None`).
    fn head(
        &self,
        rel: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<ObjHead>> + Send;

    /// [`ObjectStore::head`] tried once, without retries: a best-effort look (does the key
    /// exist, what is its current version, did a retention stick) where a failure only
    /// means "no".
    fn head_once(
        &self,
        rel: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<ObjHead>> + Send {
        self.head(rel, version)
    }

    /// The bytes of a small object version in memory; [`crate::Error::TooBig`] (naming the
    /// key) once more than `limit` bytes are announced or read.
    fn get(
        &self,
        rel: &str,
        version: Option<&str>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// A recording's object version as [`Fetched`], its size and SHA-256 computed in the
    /// same pass that reads it; not read at all when larger than `limit`.
    fn fetch(
        &self,
        rel: &str,
        version: Option<&str>,
        limit: u64,
    ) -> impl Future<Output = Result<Fetched>> + Send;

    /// SHA-256 and size of an object version, read in bounded memory.
    fn sha256(
        &self,
        rel: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<([u8; 32], u64)>> + Send;

    /// Every version and delete marker under `rel` (current objects only on a store without
    /// versions), keys relative to the root.
    fn list(&self, rel: &str) -> impl Future<Output = Result<Vec<ObjVersion>>> + Send;

    /// The current objects under `rel`, keys relative to the root.
    fn list_current(&self, rel: &str) -> impl Future<Output = Result<Vec<ObjVersion>>> + Send;

    /// Start a multipart upload to `rel` (SHA-256 part checksums, `lock`): its id.
    fn create_multipart(
        &self,
        rel: &str,
        lock: Option<Lock>,
    ) -> impl Future<Output = Result<String>> + Send;

    /// Send part `number` of upload `upload_id` with its base64 SHA-256: its ETag.
    fn upload_part(
        &self,
        rel: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
        sha256_b64: &str,
    ) -> impl Future<Output = Result<String>> + Send;

    /// The parts of an upload, by number; `None` when the upload is gone.
    fn list_parts(
        &self,
        rel: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<i32, ListedPart>>>> + Send;

    /// Complete an upload, only when `rel` is free: `Some(version)`, or `None` when the key
    /// was taken.
    fn complete_multipart(
        &self,
        rel: &str,
        upload_id: &str,
        parts: &[PartRef],
    ) -> impl Future<Output = Result<Option<Option<String>>>> + Send;

    /// Abort an upload, best effort (it may be gone already).
    fn abort_multipart(&self, rel: &str, upload_id: &str) -> impl Future<Output = ()> + Send;

    /// Set Object Lock retention on a version (PutObjectRetention).
    fn set_retention(
        &self,
        rel: &str,
        version: Option<&str>,
        lock: Lock,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Map a file we hold open, read-only, through [`Recording::map`] of `/proc/self/fd/N` (the
/// reader crate's one FIFO-safe open and map; the magic link reaches the same inode, also an
/// unlinked temporary file).
///
/// For a bucket object, `file` is our own unlinked temporary file (created 0600 by
/// `tempfile::tempfile`, no name left on disk), fully written and flushed before this call
/// and never written again: nothing else can reach it. For a mirror, `file` is the mirror's
/// file, which another process could rewrite or truncate while we verify it. We map it anyway
/// (chosen over copying it to a temporary file: no second copy of a multi-GB recording in
/// $TMPDIR, which is often a RAM-backed tmpfs). If it is rewritten in place, the hash and the
/// verifier may see different bytes; the verifier still checks every signature of what it
/// reads and its session and line count against the manifest, so only another validly signed
/// copy of the same session could pass. If it is truncated, touching a page past the new end
/// raises SIGBUS and the process dies: no findings, no `--state` written, a non-zero exit —
/// never a false OK. So: do not verify a mirror while it is being synced in place (tools that
/// write a new file and rename it over the old one, like rsync, are harmless: the map keeps
/// the old inode).
pub(crate) fn map_file(file: &File) -> Result<Recording, OpenError> {
    use std::os::unix::io::AsRawFd;
    Recording::map(Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())))
}
