//! Object primitives over S3: Object Lock probing and retention, the conditional,
//! checksummed PUT that never overwrites ([`put_range`]), and reading back what a key holds
//! ([`stored_sha256`], [`get_sha256`]). Used by the uploader, multipart uploads and the
//! chain rebuild; depends on nothing else in this crate but [`crate::s3`] and
//! [`crate::error`].

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ObjectLockEnabled, ObjectLockMode};
use aws_sdk_s3::Client;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub use crate::error::Occupied;
use crate::error::{Error, Result};
use crate::s3::{self, Backoff, Try};

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

    pub(crate) fn sdk(self) -> ObjectLockMode {
        match self {
            LockMode::Compliance => ObjectLockMode::Compliance,
            LockMode::Governance => ObjectLockMode::Governance,
        }
    }
}

/// Ask the bucket once whether Object Lock is enabled.
///
/// # Errors
/// The bucket does not exist or cannot be asked (after retries).
pub async fn probe_object_lock(client: &Client, bucket: &str, backoff: Backoff) -> Result<bool> {
    s3::retry("probe Object Lock", backoff, || async {
        match client
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(o) => Try::Done(
                o.object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    == Some(&ObjectLockEnabled::Enabled),
            ),
            Err(e) => {
                let code = s3::error_code(&e);
                // A store without the Object Lock API (501 NotImplemented) has no lock on.
                if matches!(
                    code.as_deref(),
                    Some("ObjectLockConfigurationNotFoundError" | "NotImplemented")
                ) {
                    Try::Done(false)
                } else {
                    s3::classify(e)
                }
            }
        }
    })
    .await
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
    /// Retain-until time for an object stored now: now + `days`, Unix seconds.
    pub fn until_secs(&self) -> i64 {
        now_secs() + i64::from(self.days) * 86_400
    }
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// PUT the first `size` bytes of `path` to `key` with our SHA-256 (of those bytes),
/// `If-None-Match: *` and `retention`. When the key is taken (412), the stored object must
/// have the same SHA-256 ([`Put::AlreadyThere`]), otherwise it is an error: nothing is ever
/// overwritten.
///
/// # Errors
/// Retries exhausted, a final S3 error, or the key holding other bytes ([`Occupied`]).
#[allow(clippy::too_many_arguments)]
pub async fn put_file(
    client: &Client,
    bucket: &str,
    key: &str,
    path: &Path,
    size: u64,
    sha256: &[u8; 32],
    retention: Option<Retention>,
    backoff: Backoff,
) -> Result<Put> {
    let range = (path, 0, size);
    put_range(client, bucket, key, range, sha256, retention, backoff).await
}

/// [`put_file`] of the byte range `(path, offset, len)` of a file: a segment of a live
/// recording between two checkpoints.
///
/// # Errors
/// As [`put_file`].
pub async fn put_range(
    client: &Client,
    bucket: &str,
    key: &str,
    (path, offset, size): (&Path, u64, u64),
    sha256: &[u8; 32],
    retention: Option<Retention>,
    backoff: Backoff,
) -> Result<Put> {
    let b64 = B64.encode(sha256);
    let outcome = s3::retry(&format!("PUT {key}"), backoff, || async {
        let body = match ByteStream::read_from()
            .path(path)
            .offset(offset)
            .length(aws_sdk_s3::primitives::Length::Exact(size))
            .build()
            .await
        {
            Ok(b) => b,
            Err(e) => {
                return Try::Fatal(Error::Recording {
                    path: path.to_path_buf(),
                    detail: format!("read: {e}"),
                })
            }
        };
        let mut req = client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .content_length(size as i64)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&b64)
            .if_none_match("*");
        if let Some(r) = retention {
            req = req
                .object_lock_mode(r.mode.sdk())
                .object_lock_retain_until_date(DateTime::from_secs(r.until_secs()));
        }
        match req.send().await {
            Ok(o) => Try::Done(Some(o.version_id().map(str::to_string))),
            Err(e) if s3::http_status(&e) == Some(412) => Try::Done(None),
            Err(e) => s3::classify(e),
        }
    })
    .await?;
    match outcome {
        Some(v) => Ok(Put::Created(v)),
        None => {
            let (stored, version) = stored_sha256(client, bucket, key, backoff).await?;
            if stored != *sha256 {
                return Err(Occupied {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    stored: hex::encode(stored),
                    ours: hex::encode(sha256),
                }
                .into());
            }
            Ok(Put::AlreadyThere(version))
        }
    }
}

/// SHA-256 of the current version of `key` and its version id: from the stored checksum when
/// the server returns one, else by reading the object.
///
/// # Errors
/// S3 errors after retries.
pub async fn stored_sha256(
    client: &Client,
    bucket: &str,
    key: &str,
    backoff: Backoff,
) -> Result<([u8; 32], Option<String>)> {
    let head = s3::retry(&format!("HEAD {key}"), backoff, || async {
        match client
            .head_object()
            .bucket(bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(o) => Try::Done(o),
            Err(e) => s3::classify(e),
        }
    })
    .await?;
    let version = head.version_id().map(str::to_string);
    let composite = head.checksum_type() == Some(&aws_sdk_s3::types::ChecksumType::Composite)
        || head.parts_count().is_some_and(|n| n > 1);
    let from_header = head
        .checksum_sha256()
        .filter(|c| !c.contains('-') && !composite)
        .and_then(|c| B64.decode(c).ok())
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok());
    if let Some(h) = from_header {
        return Ok((h, version));
    }
    let (h, _) = get_sha256(client, bucket, key, version.as_deref(), backoff).await?;
    Ok((h, version))
}

/// Read an object (a given version, or the current one) and hash it in bounded memory.
///
/// # Errors
/// S3 errors after retries.
pub async fn get_sha256(
    client: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    backoff: Backoff,
) -> Result<([u8; 32], u64)> {
    s3::retry(&format!("GET {key}"), backoff, || async {
        let o = match s3::get_object(client, bucket, key, version).await {
            Ok(o) => o,
            Err(e) => return s3::classify(e),
        };
        let mut body = o.body;
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        let mut n = 0u64;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    sha2::Digest::update(&mut h, &chunk);
                    n += chunk.len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    return Try::Transient(Error::Body {
                        key: key.to_string(),
                        detail: e.to_string(),
                    })
                }
            }
        }
        Try::Done((sha2::Digest::finalize(h).into(), n))
    })
    .await
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
