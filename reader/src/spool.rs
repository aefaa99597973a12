//! The read side of the spool protocol (SPEC §5, §5.1): whether the recorder writing a spool
//! file is alive (its `flock`), the last checkpoint of a live or crashed file, and the seal
//! receipt of a closed one. Checkpoints read here are parsed, **not verified**: they say
//! where a prefix ends and what it claims; [`crate::verify_recording`] checks them. The
//! write side (exclusive create, lock, atomic receipt) is `sealcast_writer::archive`.

use std::fs::{File, TryLockError};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use thiserror::Error;

use sealcast_format::{scan, ContainerError, FrameKind};
use sealcast_signer::Checkpoint;

/// Error reading a spool file or its receipt.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// An I/O step failed (`op` is `open`, `read` or `lock`).
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The receipt is not a final checkpoint note (it does not parse, or says `final 0`).
    #[error("{}: {reason}", path.display())]
    Receipt {
        /// The receipt's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_error<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> SpoolError + 'p {
    move |source| SpoolError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The parsed seal receipt of a closed recording.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Exact bytes of the receipt file.
    pub bytes: Vec<u8>,
    /// The final checkpoint it holds (parsed, not verified).
    pub checkpoint: Checkpoint,
}

/// Read and parse a seal receipt (the file at `path`, usually
/// [`sealcast_format::names::receipt_path`] of a recording).
///
/// # Errors
/// [`SpoolError::Io`] when it cannot be read; [`SpoolError::Receipt`] when it does not parse
/// as a final checkpoint note.
pub fn read_receipt(path: &Path) -> Result<Receipt, SpoolError> {
    let bytes = std::fs::read(path).map_err(io_error("read", path))?;
    let bad = |reason: String| SpoolError::Receipt {
        path: path.to_path_buf(),
        reason,
    };
    let (checkpoint, _, _) = Checkpoint::parse(&bytes).map_err(|e| bad(format!("receipt: {e}")))?;
    if !checkpoint.is_final {
        return Err(bad("receipt is not a final checkpoint".into()));
    }
    Ok(Receipt { bytes, checkpoint })
}

/// The last checkpoint of a recording and where the prefix it closes ends.
#[derive(Debug, Clone)]
pub struct CheckpointAt {
    /// Offset just past the checkpoint frame: the length of the verifiable prefix, bytes.
    pub end: u64,
    /// The checkpoint (parsed, not verified: the signature is checked by `verify`).
    pub checkpoint: Checkpoint,
}

/// Read window of [`last_checkpoint`], bytes.
const SCAN_CHUNK: usize = 4 << 20;
/// A frame larger than this ends the scan (SPEC §8 caps frame content at 16 MiB), bytes.
const SCAN_MAX_BUFFER: usize = 64 << 20;

/// Walk the frames of a recording in bounded memory (a 4 MiB window, at most 64 MiB for one
/// frame) and return the last checkpoint before the first damaged, torn or unparsable frame.
/// A file still being written is fine: a frame cut at the current end is its torn tail.
///
/// # Errors
/// [`SpoolError::Io`]; `Ok(None)` when no checkpoint is there.
pub fn last_checkpoint(path: &Path) -> Result<Option<CheckpointAt>, SpoolError> {
    let mut f = File::open(path).map_err(io_error("open", path))?;
    let mut buf: Vec<u8> = Vec::new();
    let mut base = 0u64;
    let mut last = None;
    loop {
        let old = buf.len();
        buf.resize(old + SCAN_CHUNK, 0);
        let mut got = 0;
        while old + got < buf.len() {
            match f.read(&mut buf[old + got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error("read", path)(e)),
            }
        }
        buf.truncate(old + got);
        let eof = got < SCAN_CHUNK;
        if buf.is_empty() {
            return Ok(last);
        }
        let mut consumed = 0usize;
        let mut more = true;
        for frame in scan(&buf) {
            match frame {
                Ok(fr) => {
                    consumed = (fr.offset + fr.len) as usize;
                    if fr.kind == FrameKind::Checkpoint {
                        match Checkpoint::parse(fr.bytes) {
                            Ok((checkpoint, _, _)) => {
                                last = Some(CheckpointAt {
                                    end: base + consumed as u64,
                                    checkpoint,
                                })
                            }
                            Err(_) => return Ok(last),
                        }
                    }
                }
                Err(ContainerError::Truncated { .. }) if !eof => break,
                Err(_) => {
                    more = false;
                    break;
                }
            }
        }
        if !more || eof || buf.len() - consumed > SCAN_MAX_BUFFER {
            return Ok(last);
        }
        buf.drain(..consumed);
        base += consumed as u64;
    }
}

/// Whether the recorder that writes a spool file is alive (SPEC §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Its recorder holds the lock: the session is live.
    Live,
    /// Unlocked, but written within the grace period (it may be closing normally).
    Settling,
    /// Unlocked and idle for the grace period: the recorder died without a seal receipt.
    Gone,
    /// The filesystem cannot tell (no `flock`): treated as live.
    Unknown,
}

/// Default time an unlocked recording without a receipt must be idle before it counts as
/// abandoned (SPEC §5.1).
pub const RECOVER_GRACE: Duration = Duration::from_secs(60);

/// Probe the recorder's lock on a spool file (a shared `flock` attempt, released at once);
/// `grace` is the idle time after which an unlocked file counts as abandoned, measured from
/// the file's modification time to `now` (the caller's clock: the uploader's, so a test can
/// move it instead of sleeping).
///
/// # Errors
/// [`SpoolError::Io`] when the file cannot be opened or locked for another reason than
/// a held lock or a filesystem without `flock`.
pub fn writer_state(path: &Path, grace: Duration, now: SystemTime) -> Result<Writer, SpoolError> {
    let f = File::open(path).map_err(io_error("open", path))?;
    match f.try_lock_shared() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Writer::Live),
        Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
            return Ok(Writer::Unknown)
        }
        Err(TryLockError::Error(e)) => return Err(io_error("lock", path)(e)),
    }
    let idle = f
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default();
    Ok(if idle >= grace {
        Writer::Gone
    } else {
        Writer::Settling
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_format::names;

    /// The flock the recorder holds is what tells a live spool file (SPEC §5.1); the last
    /// checkpoint is found before a torn tail; a receipt must be a final note.
    #[test]
    fn writer_checkpoint_and_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast.zst");
        let file = sealcast_writer::archive::create_recording(&path).unwrap();
        assert_eq!(
            writer_state(&path, Duration::ZERO, SystemTime::now()).unwrap(),
            Writer::Live
        );
        let rec = sealcast_testkit::recording(|w, t| {
            t.set(11_000_000);
            w.output(b"one").unwrap();
            w.tick().unwrap();
            w.output(b"two").unwrap();
        });
        std::io::Write::write_all(&mut &file, &rec).unwrap();
        drop(file);
        assert_eq!(
            writer_state(&path, Duration::ZERO, SystemTime::now()).unwrap(),
            Writer::Gone
        );
        assert_eq!(
            writer_state(&path, Duration::from_secs(3600), SystemTime::now()).unwrap(),
            Writer::Settling
        );
        let last = last_checkpoint(&path).unwrap().unwrap();
        assert!(last.checkpoint.is_final);
        assert_eq!(last.end, rec.len() as u64);
        // A torn tail: the last checkpoint before it.
        let cut = &rec[..rec.len() - 20];
        std::fs::write(&path, cut).unwrap();
        let before = last_checkpoint(&path).unwrap().unwrap();
        assert!(!before.checkpoint.is_final && before.end < cut.len() as u64);
        assert!(matches!(
            writer_state(
                &dir.path().join("missing"),
                RECOVER_GRACE,
                SystemTime::now()
            ),
            Err(SpoolError::Io { op: "open", .. })
        ));

        let note = &rec[last.end as usize - last_note_len(&rec)..];
        let receipt = names::receipt_path(&path);
        std::fs::write(&receipt, note).unwrap();
        let r = read_receipt(&receipt).unwrap();
        assert_eq!((r.bytes.as_slice(), r.checkpoint.is_final), (note, true));
        let first = &rec[..before.end as usize];
        std::fs::write(&receipt, &first[first.len() - last_note_len(first)..]).unwrap();
        let e = read_receipt(&receipt).unwrap_err().to_string();
        assert!(e.ends_with("receipt is not a final checkpoint"), "{e}");
    }

    /// Length of the checkpoint note that ends `file` (its skippable frame's payload).
    fn last_note_len(file: &[u8]) -> usize {
        let last = scan(file).map(|f| f.unwrap()).last().unwrap();
        assert_eq!(last.kind, FrameKind::Checkpoint);
        last.bytes.len()
    }
}
