//! A recording's bytes and its seal receipt as a reader gets them from disk: opened only as
//! regular files (never blocking on a FIFO, device or socket planted at the path, SPEC §7.1
//! step 1), then read into memory or memory-mapped.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use memmap2::{Mmap, MmapOptions};
use thiserror::Error;

use sealcast_format::{names, MAX_CHECKPOINT_PAYLOAD};

use crate::verify::Receipt;

/// Why a file was not opened as a regular file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The path exists but is not a regular file (after following symlinks): "a FIFO", "a
    /// directory", "a character device", "a block device", "a socket".
    #[error("{0}, not a regular file")]
    NotRegular(&'static str),
    /// open(2), fstat(2), read(2) or mmap(2) failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What a non-regular file is, for messages: "a FIFO", "a directory", …
pub fn kind_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Open `path` for reading only if it is a regular file: `open(2)` with `O_NONBLOCK` (a FIFO
/// without a writer does not block the open) and `O_NOCTTY`, `fstat(2)` on the descriptor
/// (no race with a rename), then `O_NONBLOCK` cleared again. Symlinks are followed.
///
/// # Errors
/// [`OpenError::NotRegular`] for a FIFO, device, socket or directory (a socket cannot be
/// opened: `ENXIO` is reported as one); [`OpenError::Io`] otherwise.
pub fn open_regular(path: &Path) -> Result<File, OpenError> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(match std::fs::metadata(path) {
                Ok(m) if !m.is_file() => OpenError::NotRegular(kind_name(m.file_type())),
                _ => OpenError::Io(e),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        return Err(OpenError::NotRegular(kind_name(ft)));
    }
    let fd = f.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor this function owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(f)
}

/// Read a whole regular file ([`open_regular`]); at most `limit + 1` bytes when a limit is
/// given (so a caller can tell "longer than the limit").
///
/// # Errors
/// As [`open_regular`], and read errors.
pub fn read_regular(path: &Path, limit: Option<u64>) -> Result<Vec<u8>, OpenError> {
    let mut f = open_regular(path)?;
    let mut out = Vec::new();
    match limit {
        Some(n) => {
            f.take(n + 1).read_to_end(&mut out)?;
        }
        None => {
            let len = f.metadata().map_or(0, |m| m.len());
            out.reserve(usize::try_from(len).unwrap_or(0));
            f.read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// The bytes of one recording, owned: read into memory, or a read-only memory map of a
/// regular file. Derefs to the bytes every reading function takes (`&[u8]`; callers that
/// already hold the bytes, borrowed or owned, pass them directly).
#[derive(Debug)]
pub struct Recording {
    bytes: Bytes,
}

#[derive(Debug)]
enum Bytes {
    Owned(Vec<u8>),
    Mapped(Mmap),
}

impl Recording {
    /// The recording whose bytes are `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Recording {
        Recording {
            bytes: Bytes::Owned(bytes),
        }
    }

    /// Read the regular file at `path` into memory ([`read_regular`]).
    ///
    /// # Errors
    /// As [`read_regular`].
    pub fn read(path: &Path) -> Result<Recording, OpenError> {
        read_regular(path, None).map(Recording::from_bytes)
    }

    /// Map the regular file at `path` read-only ([`open_regular`], then `mmap(2)` of its
    /// length at open time; an empty file is held as no bytes). For files too large to read
    /// into memory. The file must not shrink while the map lives: reading a page past a new
    /// end raises `SIGBUS`, which ends the process (never a wrong verdict). Recorders only
    /// append and the uploader deletes by unlinking, which both leave a map intact.
    ///
    /// # Errors
    /// As [`open_regular`]; `mmap(2)` errors.
    pub fn map(path: &Path) -> Result<Recording, OpenError> {
        let file = open_regular(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Recording::from_bytes(Vec::new()));
        }
        let len = usize::try_from(len).map_err(io::Error::other)?;
        // SAFETY: the map is only read, as a `&[u8]` that must not change or shrink while it
        // lives (see the doc comment: a shrinking file ends the process by SIGBUS, a rewrite
        // in place can only make the verifier see bytes that fail their signatures).
        let map = unsafe { MmapOptions::new().len(len).map(&file)? };
        Ok(Recording {
            bytes: Bytes::Mapped(map),
        })
    }
}

impl std::ops::Deref for Recording {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// The seal receipt `<recording>.seal` (SPEC §5) as found on disk, owned;
/// [`ReceiptFile::as_receipt`] gives what [`crate::verify_recording`] takes.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReceiptFile {
    /// No receipt (nothing at the path).
    Absent,
    /// Read (at most [`MAX_CHECKPOINT_PAYLOAD`]` + 1` bytes).
    Read {
        /// Where it is.
        path: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// Not a regular file.
    NotRegular {
        /// Where it is.
        path: String,
        /// What it is ("a FIFO", …).
        what: &'static str,
    },
    /// Could not be read.
    Unreadable {
        /// Where it is.
        path: String,
        /// The I/O error.
        error: String,
    },
}

impl ReceiptFile {
    /// Look for the receipt of the recording at `recording` ([`names::receipt_path`]),
    /// opening it only if it is a regular file (never blocking on a FIFO planted there).
    pub fn load(recording: &Path) -> ReceiptFile {
        let p = names::receipt_path(recording);
        let path = p.display().to_string();
        match read_regular(&p, Some(MAX_CHECKPOINT_PAYLOAD as u64)) {
            Ok(bytes) => ReceiptFile::Read { path, bytes },
            Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => ReceiptFile::Absent,
            Err(OpenError::NotRegular(what)) => ReceiptFile::NotRegular { path, what },
            Err(OpenError::Io(e)) => ReceiptFile::Unreadable {
                path,
                error: e.to_string(),
            },
        }
    }

    /// The receipt as the verifier takes it.
    pub fn as_receipt(&self) -> Receipt<'_> {
        match self {
            ReceiptFile::Absent => Receipt::Absent,
            ReceiptFile::Read { path, bytes } => Receipt::Read { path, bytes },
            ReceiptFile::NotRegular { path, what } => Receipt::NotRegular { path, what },
            ReceiptFile::Unreadable { path, error } => Receipt::Unreadable { path, error },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO at `path` (by mkfifo(1)), which nothing will open for writing.
    fn mkfifo(path: &Path) -> std::path::PathBuf {
        let st = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success());
        path.to_path_buf()
    }

    #[test]
    fn open_regular_refuses_what_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = mkfifo(&dir.path().join("fifo"));
        // No writer: a plain open(2) would block here.
        assert!(matches!(
            open_regular(&fifo),
            Err(OpenError::NotRegular("a FIFO"))
        ));
        assert!(matches!(
            open_regular(dir.path()),
            Err(OpenError::NotRegular("a directory"))
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular(&file, Some(2)).unwrap(), b"123");
        assert_eq!(read_regular(&file, None).unwrap(), b"12345");
        // Blocking again after the check: reads see EOF, not EAGAIN.
        let f = open_regular(&file).unwrap();
        // SAFETY: F_GETFL on a descriptor owned by `f`.
        let flags =
            unsafe { libc::fcntl(std::os::unix::io::AsRawFd::as_raw_fd(&f), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        assert!(matches!(
            open_regular(&dir.path().join("missing")),
            Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }

    /// Mapped, read and given bytes are the same recording; a FIFO is refused by both opens
    /// without blocking; an empty file maps to no bytes.
    #[test]
    fn recordings_read_or_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.cast.zst");
        std::fs::write(&file, b"some bytes").unwrap();
        let mapped = Recording::map(&file).unwrap();
        let read = Recording::read(&file).unwrap();
        assert_eq!(&*mapped, b"some bytes");
        assert_eq!(&*read, &*mapped);
        assert_eq!(&*Recording::from_bytes(b"some bytes".to_vec()), &*mapped);
        let empty = dir.path().join("e.cast.zst");
        std::fs::write(&empty, b"").unwrap();
        assert!(Recording::map(&empty).unwrap().is_empty());
        let fifo = mkfifo(&dir.path().join("fifo.cast.zst"));
        assert!(matches!(
            Recording::map(&fifo),
            Err(OpenError::NotRegular("a FIFO"))
        ));
        assert!(matches!(
            Recording::read(&fifo),
            Err(OpenError::NotRegular("a FIFO"))
        ));
        // The receipt beside it.
        assert!(matches!(ReceiptFile::load(&file), ReceiptFile::Absent));
        std::fs::write(names::receipt_path(&file), b"note").unwrap();
        match ReceiptFile::load(&file) {
            ReceiptFile::Read { bytes, .. } => assert_eq!(bytes, b"note"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_file(names::receipt_path(&file));
        std::fs::create_dir(names::receipt_path(&file)).unwrap();
        assert!(matches!(
            ReceiptFile::load(&file),
            ReceiptFile::NotRegular {
                what: "a directory",
                ..
            }
        ));
    }
}
