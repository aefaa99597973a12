//! One module per subcommand; each `run` returns the process exit code. Shared here: how
//! verdict commands open files (regular files only, never blocking on a FIFO) and write
//! their output (a closed pipe stops the output, never the verdict).

pub mod doctor;
pub mod install;
pub mod keygen;
pub mod record;
pub mod replay;
pub mod upload;
pub mod verify;
pub mod verify_bucket;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use sealcast_format::MAX_CHECKPOINT_PAYLOAD;
use sealcast_player::Receipt;

/// An error in how the command was invoked (exit 3), as opposed to an I/O failure (exit 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Why a file was not opened as a regular file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The path exists but is not a regular file (after following symlinks): "a FIFO", "a
    /// directory", "a character device", "a block device", "a socket".
    #[error("{0}, not a regular file")]
    NotRegular(&'static str),
    /// open(2) or fstat(2) failed.
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

/// The seal receipt `<recording>.seal` as found on disk, owned; [`LoadedReceipt::as_receipt`]
/// gives what [`sealcast_player::verify_recording`] takes.
#[derive(Debug)]
pub enum LoadedReceipt {
    /// No receipt (nothing at the path).
    Absent,
    /// Read (at most [`MAX_CHECKPOINT_PAYLOAD`]` + 1` bytes).
    Read { path: String, bytes: Vec<u8> },
    /// Not a regular file.
    NotRegular { path: String, what: &'static str },
    /// Could not be read.
    Unreadable { path: String, error: String },
}

impl LoadedReceipt {
    /// Look for the receipt of the recording at `recording`, opening it only if it is a
    /// regular file (never blocking on a FIFO planted there).
    pub fn load(recording: &Path) -> LoadedReceipt {
        let p = sealcast_format::names::receipt_path(recording);
        let path = p.display().to_string();
        match read_regular(&p, Some(MAX_CHECKPOINT_PAYLOAD as u64)) {
            Ok(bytes) => LoadedReceipt::Read { path, bytes },
            Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => LoadedReceipt::Absent,
            Err(OpenError::NotRegular(what)) => LoadedReceipt::NotRegular { path, what },
            Err(OpenError::Io(e)) => LoadedReceipt::Unreadable {
                path,
                error: e.to_string(),
            },
        }
    }

    /// The receipt as the verifier takes it.
    pub fn as_receipt(&self) -> Receipt<'_> {
        match self {
            LoadedReceipt::Absent => Receipt::Absent,
            LoadedReceipt::Read { path, bytes } => Receipt::Read { path, bytes },
            LoadedReceipt::NotRegular { path, what } => Receipt::NotRegular { path, what },
            LoadedReceipt::Unreadable { path, error } => Receipt::Unreadable { path, error },
        }
    }
}

/// Standard output of a command whose exit code is a verdict (`verify`, `doctor`, `info`):
/// when the reader goes away (`EPIPE`), further output is dropped and [`VerdictOut::closed`]
/// turns true, so the command can stop or finish and still exit with its verdict. Other
/// write errors are returned as they are (exit 4).
#[derive(Debug)]
pub struct VerdictOut<W: Write> {
    inner: W,
    closed: bool,
}

impl<W: Write> VerdictOut<W> {
    /// Wrap `inner` (usually a locked stdout).
    pub fn new(inner: W) -> Self {
        VerdictOut {
            inner,
            closed: false,
        }
    }

    /// True once a write or flush found the pipe closed.
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn guard<T>(&mut self, r: io::Result<T>, dropped: T) -> io::Result<T> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(dropped)
            }
            r => r,
        }
    }
}

impl<W: Write> Write for VerdictOut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.guard(r, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.guard(r, ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails every call with one error kind.
    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(self.0.into())
        }
    }

    #[test]
    fn verdict_out_swallows_only_a_closed_pipe() {
        let mut out = VerdictOut::new(Failing(io::ErrorKind::BrokenPipe));
        assert!(!out.closed());
        writeln!(out, "line").unwrap();
        assert!(out.closed());
        out.flush().unwrap();
        let mut out = VerdictOut::new(Failing(io::ErrorKind::StorageFull));
        assert!(writeln!(out, "line").is_err());
        assert!(!out.closed());
    }

    #[test]
    fn open_regular_refuses_what_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
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
}
