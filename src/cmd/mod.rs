//! One module per subcommand; each `run` returns the process exit code. Shared here: how
//! verdict commands write their output (a closed pipe stops the output, never the verdict).
//! They open recordings and receipts with [`sealcast_reader::open_regular`] (regular files
//! only, never blocking on a FIFO).

pub mod commands;
pub mod dbproxy;
pub mod doctor;
pub mod install;
pub mod keygen;
pub mod play_object;
pub mod play_tui;
pub mod queries;
pub mod record;
pub mod replay;
pub mod upload;
pub mod verify;
pub mod verify_bucket;

use std::io::{self, Write};

/// An error in how the command was invoked (exit 3), as opposed to an I/O failure (exit 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

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
}
