//! Sink adapters for sessions whose recording may fail: [`FailOpen`] keeps a session running
//! (unrecorded from then on) after the recording's first I/O error.

use std::fmt;
use std::io::{self, Write};

use crate::Durable;

/// Called once with the first error of a [`FailOpen`] sink.
pub type OnFail = Box<dyn FnOnce(&io::Error) + Send>;

/// A [`Durable`] sink that swallows errors: after the first write or sync error of the inner
/// sink it calls its `on_fail` hook once, then discards everything and reports success.
///
/// This is the `fail_closed = false` ("fail open") policy: the [`crate::SealedWriter`] never
/// sees the error, so the PTY or pipe relay keeps the session going, while nothing more
/// reaches the file. The file keeps every line up to its last complete checkpoint
/// (verification reports an unsealed tail or an unclosed recording, exit class 2), and the
/// caller must not store a seal receipt for it ([`FailOpen::error`] tells): the writer's final
/// checkpoint note claims lines that never reached the disk.
pub struct FailOpen<W: Durable> {
    inner: W,
    error: Option<io::Error>,
    on_fail: Option<OnFail>,
}

impl<W: Durable> fmt::Debug for FailOpen<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailOpen")
            .field("error", &self.error)
            .finish()
    }
}

impl<W: Durable> FailOpen<W> {
    /// Wrap `inner`; `on_fail` runs once, on the first error (log it loudly there).
    pub fn new(inner: W, on_fail: OnFail) -> FailOpen<W> {
        FailOpen {
            inner,
            error: None,
            on_fail: Some(on_fail),
        }
    }

    /// The first error of the inner sink, if there was one: the recording stopped there.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// The inner sink.
    pub fn into_inner(self) -> W {
        self.inner
    }

    fn trip(&mut self, e: io::Error) {
        if let Some(f) = self.on_fail.take() {
            f(&e);
        }
        self.error.get_or_insert(e);
    }

    fn guard(&mut self, r: io::Result<()>) -> io::Result<()> {
        if let Err(e) = r {
            self.trip(e);
        }
        Ok(())
    }
}

impl<W: Durable> Write for FailOpen<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_none() {
            let r = self.inner.write_all(buf);
            self.guard(r)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.error.is_none() {
            let r = self.inner.flush();
            self.guard(r)?;
        }
        Ok(())
    }
}

impl<W: Durable> Durable for FailOpen<W> {
    fn sync(&mut self) -> io::Result<()> {
        if self.error.is_none() {
            let r = self.inner.sync();
            self.guard(r)?;
        }
        Ok(())
    }

    fn sync_final(&mut self) -> io::Result<()> {
        if self.error.is_none() {
            let r = self.inner.sync_final();
            self.guard(r)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Limited {
        data: Vec<u8>,
        limit: usize,
    }

    impl Write for Limited {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.data.len() + b.len() > self.limit {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Durable for Limited {
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn first_error_is_reported_once_then_everything_is_discarded() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let mut s = FailOpen::new(
            Limited {
                data: Vec::new(),
                limit: 10,
            },
            Box::new(move |e| {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
                c.fetch_add(1, Ordering::SeqCst);
            }),
        );
        s.write_all(b"12345").unwrap();
        assert!(s.error().is_none());
        s.write_all(b"678901").unwrap(); // fails inside: swallowed
        s.write_all(b"x").unwrap(); // would fit, but the sink is dead
        s.sync().unwrap();
        s.sync_final().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(s.error().is_some());
        assert_eq!(s.into_inner().data, b"12345");
    }
}
