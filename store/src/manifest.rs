//! Integrity manifests (format-spec/MANIFEST.md): per host and period, a JSON document listing
//! every recording stored in the period, chained to the previous manifest by SHA-256 of its
//! bytes and of its signature, and signed with the host key as a detached SSHSIG
//! (`<manifest>.sig`, namespace `sealcast-manifest`).

use serde::{Deserialize, Serialize};

use sealcast_signer::sshsig::{self, MANIFEST_NAMESPACE};
use sealcast_signer::SigningKey;

pub use crate::error::ManifestError;

/// The `format` value of this version.
pub const FORMAT: &str = "sealcast-manifest/v1";

/// Link to the previous manifest of the host's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prev {
    /// Its object key.
    pub key: String,
    /// Lowercase hex SHA-256 of its exact bytes.
    pub sha256: String,
    /// Lowercase hex SHA-256 of its exact `.sig` bytes.
    pub sig_sha256: String,
}

/// A stored object named by a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Object key.
    pub key: String,
    /// S3 version id (null on unversioned buckets).
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the object bytes.
    pub sha256: String,
}

/// One recording listed by a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Object key of the `.cast.zst`.
    pub key: String,
    /// Its S3 version id.
    pub version_id: Option<String>,
    /// Its size.
    pub size: u64,
    /// SHA-256 of the object (compressed bytes), hex.
    pub sha256: String,
    /// SHA-256 of the decompressed stream (asciicast v3 text), hex.
    pub content_sha256: String,
    /// Lines of the decompressed stream (header included).
    pub lines: u64,
    /// Chain head after the last line (final checkpoint `head`), hex.
    pub final_head: String,
    /// Session id.
    pub session: String,
    /// Recorded user.
    pub user: String,
    /// Session start (header `start_us`), RFC 3339.
    pub start: String,
    /// Session end (final checkpoint `time`), RFC 3339; null while open.
    pub end: Option<String>,
    /// `closed`, `open` or `recovered`.
    pub status: String,
    /// The seal receipt object beside it.
    pub receipt: Option<ObjectRef>,
    /// For `open` entries: the byte offset of this segment in the live recording. The
    /// segments of one session, concatenated in offset order from 0, are its verifiable
    /// prefix (MANIFEST.md §2). Absent for `closed` and `recovered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// Object Lock retention the uploader applied to the objects it listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockPolicy {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub mode: String,
    /// Days.
    pub days: u32,
}

/// A manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Host name.
    pub host: String,
    /// Bucket it is stored in.
    pub bucket: String,
    /// Its own key.
    pub key: String,
    /// Sequence number: 0 for the first of the host's chain, then +1.
    pub seq: u64,
    /// Start of the period (Unix µs; the previous manifest's `period_end_us`).
    pub period_start_us: u64,
    /// End of the period (Unix µs).
    pub period_end_us: u64,
    /// `period_start_us` as RFC 3339.
    pub period_start: String,
    /// `period_end_us` as RFC 3339.
    pub period_end: String,
    /// The previous manifest; null only for seq 0.
    pub prev: Option<Prev>,
    /// Key id of the signing key.
    pub key_id: String,
    /// Retention applied, when the bucket has Object Lock.
    pub lock: Option<LockPolicy>,
    /// Recordings stored in the period, in upload order.
    pub recordings: Vec<Entry>,
}

impl Manifest {
    /// The exact bytes stored: pretty JSON, LF-terminated.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parse manifest bytes.
    ///
    /// # Errors
    /// Not JSON of this shape, or another `format`.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        if m.format != FORMAT {
            return Err(ManifestError::Format {
                found: m.format,
                expected: FORMAT,
            });
        }
        Ok(m)
    }
}

/// Sign manifest bytes: the armoured SSHSIG stored as `<manifest key>.sig`.
pub fn sign(key: &SigningKey, bytes: &[u8]) -> String {
    sshsig::sign(key, MANIFEST_NAMESPACE, bytes)
}

/// Start of the period of length `period_us` that contains `t_us` (periods are aligned to
/// the Unix epoch).
pub fn period_floor(t_us: u64, period_us: u64) -> u64 {
    t_us - t_us % period_us.max(1)
}
