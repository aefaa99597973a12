//! What the uploader needs to know about a spool recording, read in bounded memory: the
//! header (session, host, user, start), SHA-256 and size of the file or a byte range of it,
//! SHA-256 and line count of the decompressed stream, the seal receipt (final checkpoint
//! note), the last checkpoint of a live or crashed file, and whether its recorder is alive
//! (SPEC §5.1).

use std::fs::{File, TryLockError};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use sealcast_format::{scan, ContainerError, FrameKind, Header};
use sealcast_signer::Checkpoint;

/// Longest header line read (SPEC §8).
const MAX_HEADER: u64 = 64 * 1024;

/// The parsed seal receipt of a closed recording.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Exact bytes of the receipt file.
    pub bytes: Vec<u8>,
    /// The final checkpoint it holds.
    pub checkpoint: Checkpoint,
}

/// SHA-256 and length of a stream, read in 1 MiB blocks.
///
/// # Errors
/// Read errors.
pub fn sha256_reader(mut r: impl Read) -> io::Result<([u8; 32], u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((h.finalize().into(), n))
}

/// SHA-256 and size of `len` bytes of a file from byte `offset` (fewer when the file is
/// shorter).
///
/// # Errors
/// I/O errors, with the path.
pub fn sha256_file_range(path: &Path, offset: u64, len: u64) -> Result<([u8; 32], u64)> {
    let f = open_at(path, offset)?;
    sha256_reader(f.take(len)).with_context(|| format!("read {}", path.display()))
}

/// Open `path` for reading, positioned at byte `offset`.
fn open_at(path: &Path, offset: u64) -> Result<File> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    f.seek(SeekFrom::Start(offset))
        .with_context(|| format!("seek {} to {offset}", path.display()))?;
    Ok(f)
}

/// SHA-256 and size of a file.
///
/// # Errors
/// I/O errors, with the path.
pub fn sha256_file(path: &Path) -> Result<([u8; 32], u64)> {
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    sha256_reader(f).with_context(|| format!("read {}", path.display()))
}

/// SHA-256 and number of LF-terminated lines of the decompressed stream (skippable frames are
/// skipped by the decoder), in bounded memory.
///
/// # Errors
/// I/O or zstd errors (a torn tail of a crashed recording is an error here).
pub fn content_digest(path: &Path) -> Result<([u8; 32], u64, u64)> {
    content_digest_range(path, 0, u64::MAX)
}

/// [`content_digest`] of `len` bytes of the file from byte `offset`: a run of whole frames,
/// such as a prefix ending at [`CheckpointAt::end`] or a segment between two checkpoints
/// (zstd frames decompress on their own).
///
/// # Errors
/// As [`content_digest`].
pub fn content_digest_range(path: &Path, offset: u64, len: u64) -> Result<([u8; 32], u64, u64)> {
    let f = open_at(path, offset)?;
    let mut dec = zstd::stream::read::Decoder::new(f.take(len))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let k = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("decompress {}", path.display())),
        };
        h.update(&buf[..k]);
        bytes += k as u64;
        lines += memchr_count(&buf[..k]);
    }
    Ok((h.finalize().into(), lines, bytes))
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Read the header line (line 0) of a recording by decompressing only its start.
///
/// # Errors
/// I/O, zstd, or a header that is not sealcast's.
pub fn read_header(path: &Path) -> Result<Header> {
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let dec = zstd::stream::read::Decoder::new(f)?;
    let mut r = BufReader::new(dec).take(MAX_HEADER + 1);
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)
        .with_context(|| format!("decompress {}", path.display()))?;
    if line.last() != Some(&b'\n') {
        bail!("{}: no complete header line", path.display());
    }
    line.pop();
    let h = Header::parse(&line).with_context(|| format!("{}: header", path.display()))?;
    if h.sealcast.is_none() {
        bail!(
            "{}: not a sealcast recording (no sealcast header)",
            path.display()
        );
    }
    Ok(h)
}

/// Read and parse a seal receipt.
///
/// # Errors
/// I/O, or a receipt that does not parse as a final checkpoint note.
pub fn read_receipt(path: &Path) -> Result<Receipt> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let (checkpoint, _, _) = Checkpoint::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: receipt: {e}", path.display()))?;
    if !checkpoint.is_final {
        bail!("{}: receipt is not a final checkpoint", path.display());
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
/// I/O errors; `Ok(None)` when no checkpoint is there.
pub fn last_checkpoint(path: &Path) -> Result<Option<CheckpointAt>> {
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
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
                Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
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
/// `grace` is the idle time after which an unlocked file counts as abandoned.
///
/// # Errors
/// The file cannot be opened or its metadata read.
pub fn writer_state(path: &Path, grace: Duration) -> Result<Writer> {
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    match f.try_lock_shared() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Writer::Live),
        Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
            return Ok(Writer::Unknown)
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("lock {}", path.display()))
        }
    }
    let idle = f
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    Ok(if idle >= grace {
        Writer::Gone
    } else {
        Writer::Settling
    })
}
