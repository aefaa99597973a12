//! The uploader's spool state (format-spec/MANIFEST.md "Uploader state"): what was shipped,
//! with S3 version ids, where the manifest chain stands, the manifest being stored and how
//! far live recordings were shipped as segments, kept in `<spool>/.sealcast-upload.json` and
//! written atomically after every object. Also the spool listing the uploader works from.
//!
//! Depends on nothing else in this crate but [`crate::manifest`] and [`crate::error`].

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sealcast_format::names;

use crate::error::{Error, IoContext, Result};
use crate::manifest::Prev;

/// Name of the uploader's state file inside the spool directory.
pub const STATE_FILE: &str = ".sealcast-upload.json";

/// The manifest being stored, kept in the spool until it is.
pub const PENDING_MANIFEST: &str = ".sealcast-manifest.pending.json";

/// One shipped object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// Object key.
    pub key: String,
    /// S3 version id (absent on unversioned buckets).
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the object bytes.
    pub sha256: String,
}

/// A shipped recording and its receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    /// Spool file name.
    pub file: String,
    /// Session id.
    pub session: String,
    /// Recorded user.
    pub user: String,
    /// Session start, Unix µs.
    pub start_us: u64,
    /// The recording object.
    pub recording: StoredObject,
    /// The seal receipt object.
    pub receipt: Option<StoredObject>,
    /// SHA-256 of the decompressed stream, hex.
    pub content_sha256: String,
    /// Lines covered by the final checkpoint.
    pub lines: u64,
    /// Final chain head, hex.
    pub final_head: String,
    /// Session end (final checkpoint time), Unix µs.
    pub end_us: Option<u64>,
    /// `closed` (sealed by a final checkpoint and a receipt), `open` (a segment of a live
    /// recording) or `recovered` (its recorder died; shipped whole).
    pub status: String,
    /// For `open`: the segment's byte offset in the recording.
    #[serde(default)]
    pub offset: Option<u64>,
}

/// How far a live recording has been shipped as segments.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct OpenMark {
    /// Lines the shipped segments cover (0: none yet).
    pub lines: u64,
    /// When the last segment was shipped (or the file first seen), Unix µs.
    pub at_us: u64,
    /// Bytes of the recording shipped as segments: the next segment starts here.
    /// `u64::MAX`: no more segments for this file (its segment key was taken by other
    /// bytes, e.g. after the state was lost); it ships when it closes.
    #[serde(default)]
    pub end: u64,
}

/// Where the host's manifest chain stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChainState {
    /// Sequence number of the next manifest.
    pub next_seq: u64,
    /// The last stored manifest.
    pub last: Option<Prev>,
    /// Its period end, Unix µs.
    pub last_period_end_us: Option<u64>,
}

/// A manifest written to the spool and not yet known to be stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingManifest {
    /// Its key.
    pub key: String,
    /// Its sequence number.
    pub seq: u64,
    /// Its period end, Unix µs.
    pub period_end_us: u64,
    /// Spool files it lists that are deleted once it is stored (closed and recovered ones).
    pub files: Vec<String>,
    /// Entries of [`State::shipped`] it lists (empty in states written before segments
    /// existed: then `files`).
    #[serde(default)]
    pub listed: Vec<String>,
}

/// The uploader's persistent state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Shipped recordings not yet listed by a stored manifest, by spool file name.
    pub shipped: BTreeMap<String, Shipped>,
    /// The manifest chain.
    #[serde(default)]
    pub chain: ChainState,
    /// A manifest being stored.
    #[serde(default)]
    pub pending: Option<PendingManifest>,
    /// Live recordings seen, by spool file name, and how far they were shipped as segments.
    #[serde(default)]
    pub open: BTreeMap<String, OpenMark>,
}

impl State {
    /// Load `<spool>/.sealcast-upload.json`, or an empty state when it does not exist.
    ///
    /// # Errors
    /// Unreadable or unparsable state (never silently reset: that would re-ship history).
    pub fn load(spool: &Path) -> Result<State> {
        let p = spool.join(STATE_FILE);
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|err| Error::Json { path: p, err }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::io("read", p, e)),
        }
    }

    /// Write atomically: temporary file, fsync, rename, fsync of the directory.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, spool: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(Error::Encode)?;
        write_atomic(&spool.join(STATE_FILE), &bytes)
    }
}

/// Write `data` to `path` atomically (temporary name, fsync, rename, directory fsync).
///
/// # Errors
/// I/O errors.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = fs::File::create(&tmp).at("create", &tmp)?;
        f.write_all(data).at("write", &tmp)?;
        f.sync_all().at("sync", &tmp)?;
    }
    fs::rename(&tmp, path).at("rename to", path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Spool recordings (`*.cast.zst`), sorted by name.
///
/// # Errors
/// The spool cannot be listed.
pub fn spool_recordings(spool: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(spool).at("list spool", spool)? {
        let e = e.at("list spool", spool)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if names::is_recording_name(name) && e.file_type().at("stat", &e.path())?.is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_corrupt_one_is_an_error_not_a_reset() {
        let d = tempfile::tempdir().unwrap();
        assert!(
            State::load(d.path()).unwrap().shipped.is_empty(),
            "none yet"
        );
        let mut st = State::default();
        st.chain.next_seq = 7;
        st.open.insert(
            "a.cast.zst".into(),
            OpenMark {
                lines: 3,
                at_us: 10,
                end: 99,
            },
        );
        st.save(d.path()).unwrap();
        let back = State::load(d.path()).unwrap();
        assert_eq!(back.chain.next_seq, 7);
        assert_eq!(back.open["a.cast.zst"].end, 99);
        assert!(!d.path().join(format!("{STATE_FILE}.tmp")).exists());
        fs::write(d.path().join(STATE_FILE), b"{ not json").unwrap();
        match State::load(d.path()) {
            Err(Error::Json { path, .. }) => assert!(path.ends_with(STATE_FILE)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_spool_lists_regular_recordings_only_sorted() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "b.cast.zst",
            "a.cast.zst",
            "a.cast.zst.seal",
            STATE_FILE,
            "x.txt",
        ] {
            fs::write(d.path().join(n), b"").unwrap();
        }
        fs::create_dir(d.path().join("dir.cast.zst")).unwrap();
        let fifo = d.path().join("f.cast.zst");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let names: Vec<String> = spool_recordings(d.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.cast.zst", "b.cast.zst"]);
        match spool_recordings(&d.path().join("gone")) {
            Err(Error::Io { op, path, .. }) => {
                assert_eq!(op, "list spool");
                assert!(path.ends_with("gone"));
            }
            other => panic!("{other:?}"),
        }
    }
}
