//! The recording side as the proxy sees it: [`EventSink`], "accept this event durably into
//! the recording or fail", and its one adapter over today's
//! [`sealcast_writer::SealedWriter`].

use std::io;
use std::sync::{Arc, Mutex};

use sealcast_writer::{Clock, Durable, SealedWriter, WriteEvent};

/// Why an event could not be recorded. The proxy then refuses the statement (SQLSTATE
/// 08006 / a MySQL ERR packet) and closes the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The recording's I/O error (disk full, failed sync, an earlier error).
    #[error("recording failed: {0}")]
    Io(#[from] io::Error),
    /// The recording was already closed.
    #[error("recording is closed")]
    Closed,
}

/// Where `d` events go. Implementations must be safe to share between the two halves of a
/// connection and between connections (and, later, with a PTY session writing into the same
/// recording): events interleave in the order `record` is called.
pub trait EventSink: Send + Sync {
    /// Accept one event (a JSON object as text, SPEC §11) into the recording before
    /// returning: after `Ok` it is in the hash chain and handed to the file. Blocks while
    /// the writer is busy (backpressure); never drops.
    ///
    /// # Errors
    /// [`SinkError`] when it could not be recorded; later calls fail too.
    fn record(&self, json: &str) -> Result<(), SinkError>;

    /// Accept an outcome event (a result, a parameter change): in the recording's chain
    /// before returning, like [`EventSink::record`], but its bytes may reach the file with
    /// the next `record` or housekeeping tick instead of at once. Default: `record`.
    ///
    /// # Errors
    /// As [`EventSink::record`].
    fn note(&self, json: &str) -> Result<(), SinkError> {
        self.record(json)
    }
}

impl<T: EventSink + ?Sized> EventSink for Arc<T> {
    fn record(&self, json: &str) -> Result<(), SinkError> {
        (**self).record(json)
    }
    fn note(&self, json: &str) -> Result<(), SinkError> {
        (**self).note(json)
    }
}

/// [`EventSink`] over a [`SealedWriter`] behind a mutex: the one adapter between the proxy
/// and the recorder. Share it (`Arc`) between every writer of one recording.
pub struct SealedSink<W: Durable, C: Clock> {
    inner: Mutex<Option<SealedWriter<W, C>>>,
}

impl<W: Durable, C: Clock> std::fmt::Debug for SealedSink<W, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSink").finish_non_exhaustive()
    }
}

impl<W: Durable, C: Clock> SealedSink<W, C> {
    /// Wrap an open writer.
    pub fn new(writer: SealedWriter<W, C>) -> SealedSink<W, C> {
        SealedSink {
            inner: Mutex::new(Some(writer)),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut SealedWriter<W, C>) -> io::Result<T>,
    ) -> Result<T, SinkError> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(w) => Ok(f(w)?),
            None => Err(SinkError::Closed),
        }
    }

    /// Run `f` on the shared writer: how a PTY session that shares this recording writes its
    /// own events (`output`, `resize`, …) between the proxy's `d` events.
    ///
    /// # Errors
    /// [`SinkError::Closed`] after [`SealedSink::finish`], else `f`'s I/O error.
    pub fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut SealedWriter<W, C>) -> io::Result<T>,
    ) -> Result<T, SinkError> {
        self.with(f)
    }

    /// The writer's periodic housekeeping (time-based checkpoints); call about every second.
    ///
    /// # Errors
    /// As [`EventSink::record`].
    pub fn tick(&self) -> Result<(), SinkError> {
        self.with(|w| w.tick())
    }

    /// Close the recording with a final checkpoint; returns the sink and the seal receipt.
    ///
    /// # Errors
    /// [`SinkError::Closed`] when already closed, else the writer's I/O error.
    pub fn finish(&self) -> Result<(W, Vec<u8>), SinkError> {
        let w = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or(SinkError::Closed)?;
        Ok(w.finish(None)?)
    }
}

impl<W: Durable + Send, C: Clock> EventSink for SealedSink<W, C> {
    fn record(&self, json: &str) -> Result<(), SinkError> {
        self.with(|w| {
            w.write(WriteEvent::Database {
                json,
                write_ahead: true,
            })
        })
    }
    fn note(&self, json: &str) -> Result<(), SinkError> {
        self.with(|w| {
            w.write(WriteEvent::Database {
                json,
                write_ahead: false,
            })
        })
    }
}
