//! The sealed writer: events → canonical lines → chain → zstd frames → checkpoint frames
//! (SPEC §1–§5). Writes into any [`Durable`] sink; knows nothing of PTYs or paths.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use sealcast_format::{
    marker_label, skippable_frame, CommandEvent, EventEncoder, EventKind, FrameCompressor, Header,
    ProcessEvent, SessionInfo, StreamDir,
};
use sealcast_signer::{Sealer, SigningKey};

use crate::boundary::{BoundaryScanner, MAX_HELD};
use crate::clock::Clock;

/// A carried tail (SPEC §2.2) is recorded at the first tick after it has waited this long,
/// µs, even if it still ends inside a sequence (a forced cut).
pub const HOLD_MAX_US: u64 = 1_000_000;

/// A sink whose writes can be made durable.
pub trait Durable: Write {
    /// Make everything written so far survive a crash (`fdatasync` for files), or start doing
    /// so: called after every checkpoint.
    ///
    /// # Errors
    /// The sink's I/O error (for background syncs, an error of an earlier sync).
    fn sync(&mut self) -> io::Result<()>;

    /// Like [`Durable::sync`], but durable when it returns: called after the final
    /// checkpoint, before the seal receipt is written.
    ///
    /// # Errors
    /// The sink's I/O error.
    fn sync_final(&mut self) -> io::Result<()> {
        self.sync()
    }
}

#[derive(Debug, Default)]
struct SyncState {
    requested: u64,
    done: u64,
    error: Option<io::ErrorKind>,
    stop: bool,
}

/// A recording file whose per-checkpoint `fdatasync` runs on a background thread, so the PTY
/// relay never waits for the disk (SPEC §5). Requests coalesce: one sync covers every
/// checkpoint written before it started. A failed background sync is reported by the next
/// [`Durable::sync`] call. [`Durable::sync_final`] syncs synchronously.
pub struct SyncedFile {
    file: File,
    shared: Arc<(Mutex<SyncState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SyncedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncedFile")
            .field("file", &self.file)
            .finish()
    }
}

impl SyncedFile {
    /// Wrap `file` and start its syncer thread.
    ///
    /// # Errors
    /// If the file descriptor cannot be duplicated or the thread cannot start.
    pub fn new(file: File) -> io::Result<SyncedFile> {
        let clone = file.try_clone()?;
        let shared = Arc::new((Mutex::new(SyncState::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sealcast-fsync".into())
            .spawn(move || {
                let (lock, cv) = &*theirs;
                let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    while st.requested == st.done && !st.stop {
                        st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                    if st.stop {
                        return;
                    }
                    let target = st.requested;
                    drop(st);
                    let result = clone.sync_data();
                    st = lock.lock().unwrap_or_else(|p| p.into_inner());
                    st.done = target;
                    if let Err(e) = result {
                        st.error.get_or_insert(e.kind());
                    }
                }
            })?;
        Ok(SyncedFile {
            file,
            shared,
            thread: Some(thread),
        })
    }

    fn latched(&self) -> io::Result<()> {
        let st = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        match st.error {
            Some(kind) => Err(io::Error::new(kind, "fdatasync of the recording failed")),
            None => Ok(()),
        }
    }
}

impl Write for SyncedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Durable for SyncedFile {
    fn sync(&mut self) -> io::Result<()> {
        self.latched()?;
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).requested += 1;
        cv.notify_one();
        Ok(())
    }

    fn sync_final(&mut self) -> io::Result<()> {
        self.latched()?;
        self.file.sync_data()
    }
}

impl Drop for SyncedFile {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Durable for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl Durable for Vec<u8> {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Discards everything: the sink of a session that runs unrecorded (`fail_closed = false`
/// when no recording could be created).
impl Durable for io::Sink {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// When checkpoints are taken (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Take a checkpoint when this many microseconds have passed since the last one and events
    /// were written since. Default 10 s.
    pub interval_us: u64,
    /// Take a checkpoint after this many bytes of event lines. Default 64 KiB.
    pub max_bytes: u64,
    /// zstd level, default 1: with frames ending every 64 KiB, level 1 measured both faster
    /// and smaller than level 3 on terminal output (bench/RESULTS.md).
    pub zstd_level: i32,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            interval_us: 10_000_000,
            max_bytes: 64 * 1024,
            zstd_level: 1,
        }
    }
}

/// One event a producer hands to [`SealedWriter::write`]: the typed form of every event kind
/// (SPEC §2.5 registry, [`EventKind`]) a producer may write.
///
/// Two kinds are not here: `b` ([`EventKind::Bytes`]) is added by the encoder after an
/// `o`/`i`/`e` event whose bytes are not UTF-8 (SPEC §2.2), and `x` ([`EventKind::Exit`]) is
/// written once, by [`SealedWriter::close`], after every other event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteEvent<'a> {
    /// `o`: bytes the child wrote to the PTY, or a session's stdout without one; ends where
    /// the output last left every escape and UTF-8 sequence ([`crate::boundary`], SPEC §2.2),
    /// the rest (up to [`MAX_HELD`] bytes) starts the stream's next event. `b` follows when
    /// the bytes are not UTF-8.
    Output(&'a [u8]),
    /// `i`: bytes typed into the PTY (only with input capture); cut at UTF-8 boundaries only.
    Input(&'a [u8]),
    /// `e` (extension, SPEC §2.3): the child's standard error in a session without a PTY, cut
    /// as [`WriteEvent::Output`].
    Stderr(&'a [u8]),
    /// `r`: a terminal resize to `cols` × `rows` character cells (data `"COLSxROWS"`).
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// `m`: a marker with this label.
    Marker(&'a str),
    /// `c` (extension, SPEC §2.4.1): what the shell claims about a command. A `start` is
    /// followed at once by the asciicast marker `m` labelled with its command line
    /// ([`sealcast_format::marker_label`]), so stock players list commands as chapters.
    Command(&'a CommandEvent),
    /// `p` (extension, SPEC §2.4.2): what the recorder saw of the session's processes.
    Process(&'a ProcessEvent),
    /// `d` (extension, SPEC §11): a database statement or outcome, `json` a JSON object as
    /// text. With `write_ahead` the line is chained and its compressed bytes are handed to the
    /// sink (zstd flush, no `fdatasync`) before [`SealedWriter::write`] returns, so a statement
    /// is forwarded only after its event reached the file; without it (outcomes) the bytes
    /// follow with the next flush or [`SealedWriter::tick`]. Either way it is signed by the
    /// next checkpoint (SPEC §11 "Write-ahead").
    Database {
        /// The event's JSON object, as text.
        json: &'a str,
        /// Hand the line to the sink before returning.
        write_ahead: bool,
    },
    /// `s` (extension, SPEC §2.3): the session summary, `json` a JSON object as text. Bytes
    /// still held back (carried tails, incomplete UTF-8) are emitted first, so the summary
    /// follows all recorded data; write it just before [`SealedWriter::finish`].
    Summary(&'a str),
}

impl WriteEvent<'_> {
    /// The kind of the event's first line (a `c` start is followed by an `m`, data that is
    /// not UTF-8 by a `b`; held-back data may come later, or earlier bytes first).
    pub fn kind(&self) -> EventKind {
        match self {
            WriteEvent::Output(_) => EventKind::Output,
            WriteEvent::Input(_) => EventKind::Input,
            WriteEvent::Stderr(_) => EventKind::Stderr,
            WriteEvent::Resize { .. } => EventKind::Resize,
            WriteEvent::Marker(_) => EventKind::Marker,
            WriteEvent::Command(_) => EventKind::Command,
            WriteEvent::Process(_) => EventKind::Process,
            WriteEvent::Database { .. } => EventKind::Database,
            WriteEvent::Summary(_) => EventKind::Summary,
        }
    }
}

/// Writes one sealed recording into `W`.
///
/// The header is written and sealed by checkpoint 0 at construction, so even a session that
/// dies at once leaves a verifiable record of who started it and when. Every method returns
/// the sink's I/O errors; after an error the recording on disk still holds a verifiable prefix
/// up to the last checkpoint.
pub struct SealedWriter<W: Durable, C: Clock> {
    out: W,
    clock: C,
    comp: FrameCompressor,
    enc: EventEncoder,
    sealer: Sealer,
    policy: CheckpointPolicy,
    start_mono: u64,
    last_cp_mono: u64,
    bytes_since_cp: u64,
    dirty: bool,
    unflushed: bool,
    /// Checkpoints written so far (checkpoint 0 included).
    checkpoints: u64,
    /// Output and stderr bytes after the last sequence boundary, carried to the next event
    /// of their stream (index: [`held_index`]).
    held: [Held; 2],
    /// Reused for a carried tail joined with the next chunk.
    joined: Vec<u8>,
    /// Set by the first I/O error: the chain may then hold lines that never reached the
    /// sink, so nothing more may be written or signed.
    broken: Option<io::ErrorKind>,
}

impl<W: Durable, C: Clock> std::fmt::Debug for SealedWriter<W, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedWriter")
            .field("lines", &self.sealer.chain().lines())
            .finish()
    }
}

/// The bytes of a stream after its last sequence boundary (SPEC §2.2), and since when.
#[derive(Debug, Default)]
struct Held {
    scanner: BoundaryScanner,
    tail: Vec<u8>,
    since_us: u64,
}

/// Which [`Held`] a stream's events use: `o` and `e` end at sequence boundaries; `i`
/// (keystrokes) only at UTF-8 boundaries, as the encoder keeps them.
fn held_index(dir: StreamDir) -> Option<usize> {
    match dir {
        StreamDir::Output => Some(0),
        StreamDir::Stderr => Some(1),
        StreamDir::Input => None,
    }
}

const HELD_DIRS: [StreamDir; 2] = [StreamDir::Output, StreamDir::Stderr];

struct Emit<'a, W: Durable> {
    out: &'a mut W,
    comp: &'a mut FrameCompressor,
    sealer: &'a mut Sealer,
    bytes: u64,
    err: Option<io::Error>,
}

impl<W: Durable> Emit<'_, W> {
    fn line(&mut self, line: &[u8]) {
        if self.err.is_some() {
            return;
        }
        self.sealer.line(line);
        self.bytes += line.len() as u64 + 1;
        if let Err(e) = self.comp.write_line(line, self.out) {
            self.err = Some(e);
        }
    }
}

impl<W: Durable, C: Clock> SealedWriter<W, C> {
    /// Start a recording: writes `header` (which must carry `sealcast` metadata naming the
    /// host and session) as line 0, then checkpoint 0.
    ///
    /// # Errors
    /// `InvalidInput` when the header has no `sealcast` metadata or the host/session contain
    /// whitespace; otherwise the sink's I/O errors.
    pub fn new(
        out: W,
        key: SigningKey,
        header: &Header,
        clock: C,
        policy: CheckpointPolicy,
    ) -> io::Result<Self> {
        Self::with_session(out, key, header, &SessionInfo::default(), clock, policy)
    }

    /// Like [`SealedWriter::new`], with the session facts of `info` written into the header's
    /// `sealcast` object ([`Header::to_line_with`], SPEC §2.3). An empty `info` writes exactly
    /// what [`SealedWriter::new`] writes.
    ///
    /// # Errors
    /// As [`SealedWriter::new`].
    pub fn with_session(
        out: W,
        key: SigningKey,
        header: &Header,
        info: &SessionInfo,
        clock: C,
        policy: CheckpointPolicy,
    ) -> io::Result<Self> {
        let meta = header.sealcast.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "header lacks sealcast metadata",
            )
        })?;
        if meta.key_id != key.id().to_string() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "header key_id {} is not the signing key {}",
                    meta.key_id,
                    key.id()
                ),
            ));
        }
        let bad = |s: &str| s.is_empty() || s.chars().any(char::is_whitespace);
        if bad(&meta.host) || bad(&meta.session) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "host and session ids must be non-empty without whitespace",
            ));
        }
        let sealer = Sealer::new(key, &meta.host, &meta.session);
        let start_mono = clock.mono_us();
        let mut w = SealedWriter {
            out,
            clock,
            comp: FrameCompressor::new(policy.zstd_level)?,
            enc: EventEncoder::new(),
            sealer,
            policy,
            start_mono,
            last_cp_mono: start_mono,
            bytes_since_cp: 0,
            dirty: false,
            unflushed: false,
            checkpoints: 0,
            held: [Held::default(), Held::default()],
            joined: Vec::new(),
            broken: None,
        };
        let line = header.to_line_with(info);
        w.emit(|_, e| e.line(&line))?;
        w.checkpoint(false)?;
        Ok(w)
    }

    fn check(&self) -> io::Result<()> {
        match self.broken {
            Some(kind) => Err(io::Error::new(
                kind,
                "recording stopped after an earlier write error",
            )),
            None => Ok(()),
        }
    }

    fn latch<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            self.broken.get_or_insert(e.kind());
        }
        r
    }

    fn now(&self) -> u64 {
        self.clock.mono_us().saturating_sub(self.start_mono)
    }

    fn emit(&mut self, f: impl FnOnce(&mut EventEncoder, &mut Emit<'_, W>)) -> io::Result<()> {
        let mut e = Emit {
            out: &mut self.out,
            comp: &mut self.comp,
            sealer: &mut self.sealer,
            bytes: 0,
            err: None,
        };
        f(&mut self.enc, &mut e);
        let (bytes, err) = (e.bytes, e.err);
        if let Some(err) = err {
            return Err(err);
        }
        if bytes > 0 {
            self.bytes_since_cp += bytes;
            self.dirty = true;
            self.unflushed = true;
        }
        self.maybe_checkpoint()
    }

    fn maybe_checkpoint(&mut self) -> io::Result<()> {
        let due_time =
            self.clock.mono_us().saturating_sub(self.last_cp_mono) >= self.policy.interval_us;
        if self.dirty && (self.bytes_since_cp >= self.policy.max_bytes || due_time) {
            self.checkpoint(false)?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, is_final: bool) -> io::Result<()> {
        self.comp.end_frame(&mut self.out)?;
        let note = self.sealer.checkpoint(self.clock.wall_us(), is_final);
        self.out.write_all(&skippable_frame(&note))?;
        self.out.flush()?;
        self.out.sync()?;
        self.checkpoints += 1;
        self.last_cp_mono = self.clock.mono_us();
        self.bytes_since_cp = 0;
        self.dirty = false;
        self.unflushed = false;
        Ok(())
    }

    /// Record one event (see [`WriteEvent`] for what each kind writes). The per-kind methods
    /// ([`SealedWriter::output`], …) are this with their variant.
    ///
    /// # Errors
    /// The sink's I/O errors, or the error that broke the writer earlier: after the first
    /// error nothing more is written or signed ([`SealedWriter::broken`]).
    pub fn write(&mut self, ev: WriteEvent<'_>) -> io::Result<()> {
        self.check()?;
        let r = match ev {
            WriteEvent::Output(bytes) => return self.data(StreamDir::Output, bytes),
            WriteEvent::Input(bytes) => return self.data(StreamDir::Input, bytes),
            WriteEvent::Stderr(bytes) => return self.data(StreamDir::Stderr, bytes),
            WriteEvent::Resize { cols, rows } => {
                let t = self.now();
                self.emit(|enc, e| enc.resize(t, cols, rows, &mut |l| e.line(l)))
            }
            WriteEvent::Marker(label) => {
                let t = self.now();
                self.emit(|enc, e| enc.marker(t, label, &mut |l| e.line(l)))
            }
            WriteEvent::Command(ev) => {
                let t = self.now();
                self.emit(|enc, e| {
                    enc.command(t, ev, &mut |l| e.line(l));
                    if let CommandEvent::Start { cmd, .. } = ev {
                        enc.marker(t, &marker_label(cmd), &mut |l| e.line(l));
                    }
                })
            }
            WriteEvent::Process(ev) => {
                let t = self.now();
                self.emit(|enc, e| enc.process(t, ev, &mut |l| e.line(l)))
            }
            WriteEvent::Database { json, write_ahead } => {
                let t = self.now();
                self.emit(|enc, e| enc.db(t, json, &mut |l| e.line(l)))
                    .and_then(|()| {
                        if write_ahead {
                            self.flush_frame()
                        } else {
                            Ok(())
                        }
                    })
            }
            WriteEvent::Summary(json) => {
                let r = self.release_held(false);
                self.latch(r)?;
                let t = self.now();
                self.emit(|enc, e| {
                    for dir in [StreamDir::Output, StreamDir::Input, StreamDir::Stderr] {
                        enc.flush(dir, t, &mut |l| e.line(l));
                    }
                    enc.summary(t, json, &mut |l| e.line(l));
                })
            }
        };
        self.latch(r)
    }

    /// Record bytes the child wrote to the PTY: [`WriteEvent::Output`].
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn output(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(WriteEvent::Output(bytes))
    }

    /// Record `bytes` of the stream `dir` ([`SealedWriter::write`] has checked the writer).
    fn data(&mut self, dir: StreamDir, bytes: &[u8]) -> io::Result<()> {
        let t = self.now();
        let Some(idx) = held_index(dir) else {
            let r = self.emit(|enc, e| enc.data(dir, t, bytes, &mut |l| e.line(l)));
            return self.latch(r);
        };
        let held = &mut self.held[idx];
        let cut = held.scanner.feed(bytes);
        let mut joined = std::mem::take(&mut self.joined);
        joined.clear();
        // What to record now: `bytes[..direct]` as it is, or `joined` (a carried tail and
        // the chunk up to its boundary, or a forced cut).
        let mut direct = 0;
        match cut {
            Some(c) if held.tail.is_empty() => {
                direct = c;
                held.tail.extend_from_slice(&bytes[c..]);
                held.since_us = t;
            }
            Some(c) => {
                joined.extend_from_slice(&held.tail);
                joined.extend_from_slice(&bytes[..c]);
                held.tail.clear();
                held.tail.extend_from_slice(&bytes[c..]);
                held.since_us = t;
            }
            None => {
                if held.tail.is_empty() {
                    held.since_us = t;
                }
                held.tail.extend_from_slice(bytes);
            }
        }
        if held.tail.len() > MAX_HELD {
            if direct > 0 {
                joined.extend_from_slice(&bytes[..direct]);
                direct = 0;
            }
            joined.append(&mut held.tail);
        }
        let body: &[u8] = if direct > 0 {
            &bytes[..direct]
        } else {
            &joined
        };
        let r = if body.is_empty() {
            Ok(())
        } else {
            self.emit(|enc, e| enc.data(dir, t, body, &mut |l| e.line(l)))
        };
        self.joined = joined;
        self.latch(r)
    }

    /// Record every carried tail now (forced cuts): before the session's last events, and at
    /// a tick for tails older than [`HOLD_MAX_US`] (`stale_only`).
    fn release_held(&mut self, stale_only: bool) -> io::Result<()> {
        let t = self.now();
        for (idx, dir) in HELD_DIRS.into_iter().enumerate() {
            let held = &mut self.held[idx];
            if held.tail.is_empty() || (stale_only && t.saturating_sub(held.since_us) < HOLD_MAX_US)
            {
                continue;
            }
            let tail = std::mem::take(&mut held.tail);
            let r = self.emit(|enc, e| enc.data(dir, t, &tail, &mut |l| e.line(l)));
            self.held[idx].tail = tail;
            self.held[idx].tail.clear();
            r?;
        }
        Ok(())
    }

    /// Record bytes typed into the PTY: [`WriteEvent::Input`]. Callers only call this with
    /// input capture on.
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn input(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(WriteEvent::Input(bytes))
    }

    /// Record bytes the child wrote to its standard error in a session without a PTY:
    /// [`WriteEvent::Stderr`].
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn stderr(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(WriteEvent::Stderr(bytes))
    }

    /// Record the session summary: [`WriteEvent::Summary`]; call it just before
    /// [`SealedWriter::finish`].
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn summary(&mut self, json: &str) -> io::Result<()> {
        self.write(WriteEvent::Summary(json))
    }

    /// Record a database event: [`WriteEvent::Database`].
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn db_event(&mut self, json: &str, write_ahead: bool) -> io::Result<()> {
        self.write(WriteEvent::Database { json, write_ahead })
    }

    /// Hand every line chained so far to the sink: end the current zstd block (a flush, not
    /// a new frame) and flush the sink, without `fdatasync`. What the file then holds
    /// decodes to every line written so far; they are signed by the next checkpoint. The
    /// write-ahead step of an in-process producer (SPEC §11 "Write-ahead").
    ///
    /// # Errors
    /// The sink's I/O errors (the writer is then broken: nothing more is written or signed),
    /// or the error that broke it earlier.
    pub fn hand_off(&mut self) -> io::Result<()> {
        self.check()?;
        let r = self.flush_frame();
        self.latch(r)
    }

    fn flush_frame(&mut self) -> io::Result<()> {
        if self.unflushed {
            self.comp.flush(&mut self.out)?;
            self.out.flush()?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// Record a terminal resize: [`WriteEvent::Resize`].
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        self.write(WriteEvent::Resize { cols, rows })
    }

    /// Record a marker: [`WriteEvent::Marker`].
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn marker(&mut self, label: &str) -> io::Result<()> {
        self.write(WriteEvent::Marker(label))
    }

    /// Record what the shell claims about a command: [`WriteEvent::Command`] (a `start` is
    /// followed by its `m` marker).
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn command(&mut self, ev: &CommandEvent) -> io::Result<()> {
        self.write(WriteEvent::Command(ev))
    }

    /// Record what the recorder saw of the session's processes: [`WriteEvent::Process`].
    ///
    /// # Errors
    /// As [`SealedWriter::write`].
    pub fn process(&mut self, ev: &ProcessEvent) -> io::Result<()> {
        self.write(WriteEvent::Process(ev))
    }

    /// Periodic housekeeping, called at least every second by the owner: takes a time-based
    /// checkpoint when due, else makes idle data decodable from disk (zstd flush).
    ///
    /// # Errors
    /// The sink's I/O errors.
    pub fn tick(&mut self) -> io::Result<()> {
        self.check()?;
        let r = self
            .release_held(true)
            .and_then(|()| self.maybe_checkpoint())
            .and_then(|()| self.flush_frame());
        self.latch(r)
    }

    /// Lines written so far (header included).
    pub fn lines(&self) -> u64 {
        self.sealer.chain().lines()
    }

    /// Checkpoints written so far (checkpoint 0, after the header, included).
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// Microseconds since the recording started on the writer's monotonic clock: the time
    /// an event written now gets (the sum of the intervals up to it).
    pub fn elapsed_us(&self) -> u64 {
        self.now()
    }

    /// The error that stopped the recording, if one did: every later call fails with it.
    pub fn broken(&self) -> Option<io::ErrorKind> {
        self.broken
    }

    /// Close the recording (after an earlier I/O error this fails and signs nothing: the file
    /// keeps its verifiable prefix): emit held-back bytes, the `x` event (when `exit_status`
    /// is known) and the final checkpoint. Returns the sink and the final checkpoint note (the
    /// seal receipt, SPEC §5); [`SealedWriter::close`] also returns the counts.
    ///
    /// # Errors
    /// The sink's I/O errors.
    pub fn finish(self, exit_status: Option<i32>) -> io::Result<(W, Vec<u8>)> {
        self.close(exit_status).map(|c| (c.sink, c.receipt))
    }

    /// [`SealedWriter::finish`], returning what the recording holds as a [`Closed`] instead
    /// of leaving it to be read back out of the note.
    ///
    /// # Errors
    /// The sink's I/O errors, or the error that broke the writer earlier.
    pub fn close(mut self, exit_status: Option<i32>) -> io::Result<Closed<W>> {
        self.check()?;
        self.release_held(false)?;
        let t = self.now();
        self.emit(|enc, e| {
            enc.flush(StreamDir::Output, t, &mut |l| e.line(l));
            enc.flush(StreamDir::Input, t, &mut |l| e.line(l));
            enc.flush(StreamDir::Stderr, t, &mut |l| e.line(l));
            if let Some(s) = exit_status {
                enc.exit(t, s, &mut |l| e.line(l));
            }
        })?;
        self.comp.end_frame(&mut self.out)?;
        let lines = self.sealer.chain().lines();
        let note = self.sealer.checkpoint(self.clock.wall_us(), true);
        self.out.write_all(&skippable_frame(&note))?;
        self.out.flush()?;
        self.out.sync_final()?;
        Ok(Closed {
            sink: self.out,
            receipt: note,
            lines,
            checkpoints: self.checkpoints + 1,
        })
    }
}

/// A closed recording, returned by [`SealedWriter::close`].
#[derive(Debug)]
pub struct Closed<W> {
    /// The sink, synced ([`Durable::sync_final`]).
    pub sink: W,
    /// The final checkpoint note (`final 1`): the seal receipt to store beside the recording
    /// (SPEC §5).
    pub receipt: Vec<u8>,
    /// Lines in the recording, header included: the note's `lines`.
    pub lines: u64,
    /// Checkpoints in the recording, checkpoint 0 and the final one included.
    pub checkpoints: u64,
}
