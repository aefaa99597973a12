//! Object primitives over any [`ObjectStore`]: retention, the conditional, checksummed PUT
//! that never overwrites ([`put_range`]) and reading back what a key holds
//! ([`stored_sha256`]). Used by the uploader, multipart uploads and the chain rebuild.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::error::Occupied;
use crate::error::Result;
use crate::object_store::{FileRange, Lock, ObjectStore};

/// Object Lock retention mode put on every object when the bucket has Object Lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockMode {
    /// Nobody can delete or shorten until the date.
    Compliance,
    /// Principals with `s3:BypassGovernanceRetention` can.
    Governance,
}

impl LockMode {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

/// How an object came to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Stored by this call.
    Created(Option<String>),
    /// The key already held exactly these bytes (SHA-256 equal); its version id.
    AlreadyThere(Option<String>),
}

/// Retention to put on new objects.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Mode.
    pub mode: LockMode,
    /// Days from now.
    pub days: u32,
}

impl Retention {
    /// Retain-until time for an object stored at `now_secs`: now + `days`, Unix seconds.
    pub fn until_secs(&self, now_secs: i64) -> i64 {
        now_secs + i64::from(self.days) * 86_400
    }

    /// The lock for an object stored at `now_secs`.
    pub fn lock(&self, now_secs: i64) -> Lock {
        Lock {
            mode: self.mode,
            until_secs: self.until_secs(now_secs),
        }
    }
}

/// Store the first `size` bytes of `path` at `rel` with our SHA-256 (of those bytes), only
/// when the key is free, with Object Lock `lock` ([`Retention::lock`]). When the key is taken, the stored object must have
/// the same SHA-256 ([`Put::AlreadyThere`]), otherwise it is an error: nothing is ever
/// overwritten.
///
/// # Errors
/// Retries exhausted, a final store error, or the key holding other bytes
/// ([`crate::Error::Occupied`]).
pub async fn put_file<S: ObjectStore>(
    store: &S,
    rel: &str,
    path: &Path,
    size: u64,
    sha256: &[u8; 32],
    lock: Option<Lock>,
) -> Result<Put> {
    let range = FileRange {
        path,
        offset: 0,
        len: size,
    };
    put_range(store, rel, range, sha256, lock).await
}

/// [`put_file`] of a byte range of a file: a segment of a live recording between two
/// checkpoints.
///
/// # Errors
/// As [`put_file`].
pub async fn put_range<S: ObjectStore>(
    store: &S,
    rel: &str,
    body: FileRange<'_>,
    sha256: &[u8; 32],
    lock: Option<Lock>,
) -> Result<Put> {
    match store.put(rel, body, sha256, lock).await? {
        Some(v) => Ok(Put::Created(v)),
        None => {
            let (stored, version) = stored_sha256(store, rel).await?;
            if stored != *sha256 {
                return Err(Occupied {
                    bucket: store.bucket().unwrap_or_default().to_string(),
                    key: format!("{}{rel}", store.prefix().unwrap_or_default()),
                    stored: hex::encode(stored),
                    ours: hex::encode(sha256),
                }
                .into());
            }
            Ok(Put::AlreadyThere(version))
        }
    }
}

/// SHA-256 of the current version of `rel` and its version id: from the stored checksum when
/// the store keeps a full-object one, else by reading the object.
///
/// # Errors
/// Store errors after retries.
pub async fn stored_sha256<S: ObjectStore>(
    store: &S,
    rel: &str,
) -> Result<([u8; 32], Option<String>)> {
    let head = store.head(rel, None).await?;
    if let Some(h) = head.sha256 {
        return Ok((h, head.version_id));
    }
    let (h, _) = store.sha256(rel, head.version_id.as_deref()).await?;
    Ok((h, head.version_id))
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
