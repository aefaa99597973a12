//! The store crate's one error type: what went wrong, naming the object key, file, offset or
//! key id it went wrong with. Callers tell the cases apart by matching variants (never by
//! downcasting or by the text); [`Error::root`] looks through the context an operation adds
//! (`PUT <key>: …`, `… giving up after N tries: …`).
//!
//! Display texts are whole sentences that include the text of the underlying error, so the
//! CLI boundary (`sealcast: {e:#}` through `anyhow`) prints the same lines as before the
//! crate had typed errors; `source()` is therefore not chained (it would print twice).

use std::io;
use std::path::PathBuf;

use sealcast_reader::spool::SpoolError;
use sealcast_signer::sshsig::SshSigError;

/// A store operation's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the store crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local file operation (`op`: `open`, `read`, `create`, `rename`, `stat`, `remove`,
    /// `list`, `map`, …) failed on `path`.
    #[error("{op} {}: {err}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
    /// A file that must be a regular file could not be opened as one (a FIFO, device or
    /// socket at the path is refused without blocking: `sealcast_reader::open_regular`).
    #[error("open {}: {err}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why not.
        err: sealcast_reader::OpenError,
    },
    /// A local read at a byte offset failed or came up short.
    #[error("{}: {detail} at offset {offset}", path.display())]
    Short {
        /// The file.
        path: PathBuf,
        /// Byte offset of the read.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// A JSON file of ours (uploader state, resume record) does not parse.
    #[error("parse {}: {err}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        err: serde_json::Error,
    },
    /// Serialising our own state failed (cannot happen with the types we write).
    #[error("encode JSON: {0}")]
    Encode(serde_json::Error),
    /// The temporary file a bucket object is streamed into (`$TMPDIR`) failed.
    #[error("temporary file in $TMPDIR: {0}")]
    TempFile(io::Error),
    /// The async runtime could not start.
    #[error("start the async runtime: {0}")]
    Runtime(io::Error),
    /// The object store refused or failed a call (S3: status and error code when it answered).
    #[error(
        "S3 error (status {}, code {}): {message}",
        status.map_or("none".into(), |s| s.to_string()),
        code.as_deref().unwrap_or("none")
    )]
    S3 {
        /// HTTP status, when the server answered.
        status: Option<u16>,
        /// Service error code (`NoSuchKey`, `PreconditionFailed`, …).
        code: Option<String>,
        /// The SDK's full message.
        message: String,
    },
    /// Reading an object's body was cut (retried).
    #[error("read body: {detail}")]
    Body {
        /// Object key.
        key: String,
        /// The transport's message.
        detail: String,
    },
    /// The bytes the store sent do not match the store's own checksum of the object (sent with
    /// the response, validated by the SDK): the object was altered where it is stored.
    #[error("the bytes the store sent do not match its own checksum of the object ({detail})")]
    StoredChecksumMismatch {
        /// Object key.
        key: String,
        /// The SDK's message.
        detail: String,
    },
    /// A manifest, `.sig` or `.seal` larger than [`crate::verify::SMALL_OBJECT_MAX`].
    #[error(
        "{key}: {size} bytes or more, larger than the {max} bytes allowed for a manifest, \
         signature or receipt"
    )]
    TooBig {
        /// Object key (or mirror path).
        key: String,
        /// Bytes seen or announced.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The key already holds other bytes than ours: nothing was written.
    #[error(transparent)]
    Occupied(#[from] Occupied),
    /// `what` failed (an operation's name, e.g. `PUT <key>`): the error inside.
    #[error("{what}: {err}")]
    Context {
        /// The operation.
        what: String,
        /// What went wrong.
        err: Box<Error>,
    },
    /// `what` failed with a transient error every one of `tries` tries.
    #[error("{what}: giving up after {tries} tries: {err}")]
    GaveUp {
        /// The operation.
        what: String,
        /// Tries made.
        tries: u32,
        /// The last error.
        err: Box<Error>,
    },
    /// Not an `s3://BUCKET/PREFIX` URL.
    #[error("{url:?}{reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// Why not (starts with `: ` or ` `).
        reason: String,
    },
    /// A host name or session id that cannot be part of an object key.
    #[error("{what} {value:?} {reason}")]
    Unsafe {
        /// `host name` or `session id`.
        what: &'static str,
        /// The value.
        value: String,
        /// Why not.
        reason: &'static str,
    },
    /// The spool protocol (receipt, checkpoint, lock) could not be read.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A spool recording is not a sealcast recording, or its stream does not decompress.
    #[error("{}: {detail}", path.display())]
    Recording {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A live recording's next segment is larger than one PUT takes.
    #[error(
        "live recording's next segment is {len} bytes, more than one PUT takes; it ships when it closes"
    )]
    SegmentTooLarge {
        /// The file.
        path: PathBuf,
        /// Segment length in bytes.
        len: u64,
    },
    /// A manifest does not parse, or has another `format`.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// A manifest was to be stored without a signing key.
    #[error("no signing key for manifests")]
    NoSigningKey,
    /// The bucket's newest manifest cannot be continued by this uploader (MANIFEST.md
    /// "Uploader state").
    #[error("{0}")]
    Chain(#[from] ChainError),
    /// The store does not do `what` (a mirror has no multipart uploads or Object Lock).
    #[error("{store}: {key}: {what} not supported")]
    Unsupported {
        /// The store.
        store: String,
        /// Object key.
        key: String,
        /// The operation.
        what: String,
    },
    /// A multipart upload step that has no S3 error of its own.
    #[error("{detail}")]
    Multipart {
        /// Object key.
        key: String,
        /// What happened.
        detail: String,
    },
}

impl Error {
    /// The error inside any [`Error::Context`] and [`Error::GaveUp`] wrappers.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { err, .. } | Error::GaveUp { err, .. } => err.root(),
            e => e,
        }
    }

    /// Wrap in the name of the operation that failed.
    pub fn context(self, what: impl Into<String>) -> Error {
        Error::Context {
            what: what.into(),
            err: Box::new(self),
        }
    }

    /// `Error::Io` of `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, err: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            err,
        }
    }
}

/// `io::Result` with the operation and path attached.
pub(crate) trait IoContext<T> {
    /// [`Error::Io`] of `op` on `path`.
    fn at(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

/// The key already holds other bytes than ours: nothing was written (`If-None-Match: *`).
#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key} already holds different bytes (sha256 {stored}, ours {ours}); not overwritten")]
pub struct Occupied {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// SHA-256 of what is stored, hex.
    pub stored: String,
    /// SHA-256 of what we meant to store, hex.
    pub ours: String,
}

/// A manifest that cannot be read (MANIFEST.md §3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON of the manifest's shape.
    #[error("{0}")]
    Json(serde_json::Error),
    /// Another `format` than [`crate::manifest::FORMAT`].
    #[error("manifest format {found:?}, expected {expected:?}")]
    Format {
        /// The manifest's `format`.
        found: String,
        /// Ours.
        expected: &'static str,
    },
}

/// Why the uploader refuses to continue the bucket's manifest chain without its state
/// (format-spec/MANIFEST.md "Uploader state"). Each names the manifest (`s3://bucket/key`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The newest manifest has no readable signature.
    #[error("newest manifest {url} has no signature: {err}")]
    NoSignature {
        /// `s3://bucket/key` of the manifest.
        url: String,
        /// Why the `.sig` could not be read.
        err: Box<Error>,
    },
    /// Its signature does not verify.
    #[error("newest manifest {url}: {err}")]
    BadSignature {
        /// `s3://bucket/key` of the manifest.
        url: String,
        /// The SSHSIG error.
        err: SshSigError,
    },
    /// Signed by another key than the uploader's.
    #[error(
        "newest manifest {url} is signed by key {signer}, not this uploader's key {ours}; \
         restore the uploader state file ({state_file}) instead of starting a new chain"
    )]
    NotOurKey {
        /// `s3://bucket/key` of the manifest.
        url: String,
        /// Key id that signed it.
        signer: String,
        /// Our key id.
        ours: String,
        /// The state file's name.
        state_file: &'static str,
    },
    /// It does not parse.
    #[error("manifest {url}: {err}")]
    Unparsable {
        /// `s3://bucket/key` of the manifest.
        url: String,
        /// The parse error.
        err: ManifestError,
    },
    /// It names another key, bucket, host or seq than where it was found.
    #[error(
        "manifest {url} names {key} in {bucket} for host {host} seq {seq}: not where it was found"
    )]
    Misplaced {
        /// `s3://bucket/key` where it was found.
        url: String,
        /// Key it names.
        key: String,
        /// Bucket it names.
        bucket: String,
        /// Host it names.
        host: String,
        /// Seq it names.
        seq: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_looks_through_context_and_retries() {
        let inner = Error::StoredChecksumMismatch {
            key: "k".into(),
            detail: "x".into(),
        };
        let e = Error::GaveUp {
            what: "GET k".into(),
            tries: 3,
            err: Box::new(inner.context("inner")),
        };
        assert!(matches!(e.root(), Error::StoredChecksumMismatch { key, .. } if key == "k"));
        assert_eq!(
            e.to_string(),
            "GET k: giving up after 3 tries: inner: the bytes the store sent do not match its \
             own checksum of the object (x)"
        );
        let e = Error::io("open", "/x", io::Error::from(io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("open /x: "), "{e}");
    }
}
