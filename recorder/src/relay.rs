//! The relay engine: one writer loop for every session source.
//!
//! A *source* ([`crate::pty`]: a PTY; [`crate::pipes`]: stdin, stdout and stderr as pipes)
//! starts the child and its relay threads — pumps that copy bytes between the child and the
//! recorder's own descriptors, a signal thread, a waiter — and hands everything they observe
//! to the engine as typed messages over one bounded channel ([`CHANNEL_DEPTH`] messages: the
//! backpressure; when the recording falls behind, the pumps block, and so does the child).
//! The engine's writer loop, on the thread that called the source's `run`, alone owns the
//! [`SealedWriter`]: it records the messages in channel order, calls
//! [`SealedWriter::tick`] at least every [`TICK`], applies the one hang-up policy below and
//! finally closes the recording, returning a typed [`Outcome`].
//!
//! **Other producers.** An [`EventSender`] (cloneable, handed to observers in
//! [`ObserveCtx::sender`]) lets other threads of the recorder submit events into the same
//! recording, through the same channel: the process sampler now, a database proxy later.
//! [`EventSender::submit`] blocks while the channel is full (never drops an event);
//! [`EventSender::submit_and_wait`] returns only once the event is chained and its
//! compressed bytes are handed to the file ([`SealedWriter::hand_off`]), or with the
//! writer's error, so a producer can fail closed.
//!
//! **Observers.** One [`Observer`] per session is called by the loop: once at the start,
//! after each output burst that was recorded (the bytes as read, with the writer's time), at
//! every tick, and at the end before `x`. It writes events through its [`ObserveCtx`]; the
//! command-metadata observer ([`crate::cmdmeta::observe`]) lives there.
//!
//! **Hang-up policy** (the same for every source). The session ends when the child has
//! exited and every stream the source names has reached its end. The recorder ends it
//! early — `SIGHUP` to the session's processes, `SIGKILL` [`HANGUP_GRACE`] later, and the
//! recording closed [`KILL_GRACE`] after that whether or not the child was reaped — on a
//! recorder signal (`SIGTERM`, `SIGHUP`, `SIGINT`), when the client goes away (after the
//! source's grace: none for a terminal, [`crate::pipes::CLIENT_GONE_GRACE`] for pipes), when
//! a relay thread cannot be started, and on the first error writing the recording. After a
//! recording error nothing more is relayed (the pumps stop at once: no byte reaches the user
//! unrecorded while the child is being hung up) and the recording is left as written,
//! verifiable up to its last checkpoint.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use sealcast_format::{CommandEvent, ProcessEvent};
use signal_hook::consts::SIGWINCH;
use signal_hook::iterator::Signals;
use thiserror::Error;

use crate::wake::StopPipe;
use crate::{Clock, Durable, SealedWriter, WriteEvent};

/// Size of one relay buffer, bytes (a Linux pipe holds 64 KiB; the PTY pump fills a buffer
/// with as many reads as data is ready for).
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Messages the channel to the writer loop holds before producers block (bounds memory to
/// about `CHANNEL_DEPTH + 2` buffers of [`CHUNK_SIZE`] per stream).
pub const CHANNEL_DEPTH: usize = 8;
/// The writer loop calls [`SealedWriter::tick`] and [`Observer::on_tick`] at least this often.
pub const TICK: Duration = Duration::from_millis(500);
/// After `SIGHUP` to the session's processes, wait this long for them to end before
/// `SIGKILL`.
pub const HANGUP_GRACE: Duration = Duration::from_secs(3);
/// After `SIGKILL`, wait this long for the child's exit status before closing the recording
/// without one.
pub const KILL_GRACE: Duration = Duration::from_secs(1);
/// At the end, how long an observer's background producers get to stop
/// ([`Observer::stopped`]) before the recording is closed without their last events.
pub const OBSERVER_STOP_GRACE: Duration = Duration::from_secs(2);

/// A byte stream of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Child → user: the PTY's output, or the child's stdout (`o` events).
    Output,
    /// The child's stderr in a session without a PTY (`e` events).
    Stderr,
    /// User → child (`i` events, only with input capture).
    Input,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Output => 0,
            Stream::Stderr => 1,
            Stream::Input => 2,
        }
    }
}

/// An event another part of the recorder adds to the recording (see [`EventSender`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A `c` event (SPEC §2.4.1); a `start` is followed by its `m` marker
    /// ([`SealedWriter::command`]).
    Command(CommandEvent),
    /// A `p` event (SPEC §2.4.2).
    Process(ProcessEvent),
    /// A `d` event (SPEC §11): a JSON object as text.
    Database(String),
}

impl Event {
    fn write<W: Durable, C: Clock>(&self, w: &mut SealedWriter<W, C>) -> io::Result<()> {
        match self {
            Event::Command(c) => w.write(WriteEvent::Command(c)),
            Event::Process(p) => w.write(WriteEvent::Process(p)),
            Event::Database(json) => w.write(WriteEvent::Database {
                json,
                write_ahead: false,
            }),
        }
    }
}

/// Why an event could not be added to the recording.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The recording stopped after a write error (the writer's latched error): nothing more
    /// is written or signed.
    #[error("the recording failed: {kind}")]
    Recording {
        /// Kind of the writer's first I/O error.
        kind: io::ErrorKind,
    },
    /// The session's recording is closed (or closing): no more events are taken.
    #[error("the session's recording is closed")]
    Closed,
}

type Ack = SyncSender<Result<(), SubmitError>>;

/// Messages to the writer loop.
pub(crate) enum Msg {
    /// `buf[..len]` of `stream`, as read.
    Data {
        stream: Stream,
        buf: Vec<u8>,
        len: usize,
    },
    /// `stream` reached its end (EOF, EIO, or the PTY's post-exit drain gave up).
    Done(Stream),
    /// The child was reaped with this status (`None` if `wait` failed).
    ChildExited(Option<i32>),
    /// `SIGWINCH` on the recorder.
    Winch,
    /// `SIGTERM`/`SIGHUP`/`SIGINT` on the recorder.
    Signal(i32),
    /// The client is gone: writing to the recorder's stdout failed, or the watched
    /// descriptor hung up.
    ClientGone,
    /// An event from another producer; `ack` when the producer waits for the write-ahead.
    Event { event: Event, ack: Option<Ack> },
}

/// A handle that adds events to a session's recording from any thread. See the module
/// documentation; clones share the recording.
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: SyncSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Data { stream, len, .. } => write!(f, "Data({stream:?}, {len})"),
            Msg::Done(s) => write!(f, "Done({s:?})"),
            Msg::ChildExited(s) => write!(f, "ChildExited({s:?})"),
            Msg::Winch => write!(f, "Winch"),
            Msg::Signal(s) => write!(f, "Signal({s})"),
            Msg::ClientGone => write!(f, "ClientGone"),
            Msg::Event { event, ack } => write!(f, "Event({event:?}, wait: {})", ack.is_some()),
        }
    }
}

impl EventSender {
    pub(crate) fn new(tx: SyncSender<Msg>) -> EventSender {
        EventSender { tx }
    }

    /// Queue `event` for the recording, in order with everything else the session records.
    /// Blocks while the channel is full (backpressure: events are never dropped). Returns
    /// once queued: the event is written unless the recording fails first.
    ///
    /// # Errors
    /// [`SubmitError::Closed`] when the session has ended.
    pub fn submit(&self, event: Event) -> Result<(), SubmitError> {
        self.tx
            .send(Msg::Event { event, ack: None })
            .map_err(|_| SubmitError::Closed)
    }

    /// Write `event` ahead: returns only once it is chained and its compressed bytes are
    /// handed to the file ([`SealedWriter::hand_off`]; signed by the next checkpoint), so the
    /// caller may then let the action it describes happen.
    ///
    /// # Errors
    /// [`SubmitError::Recording`] with the writer's latched error when the recording failed
    /// (the caller must fail closed); [`SubmitError::Closed`] when the session has ended.
    pub fn submit_and_wait(&self, event: Event) -> Result<(), SubmitError> {
        let (ack, done) = mpsc::sync_channel(1);
        self.tx
            .send(Msg::Event {
                event,
                ack: Some(ack),
            })
            .map_err(|_| SubmitError::Closed)?;
        done.recv().unwrap_or(Err(SubmitError::Closed))
    }
}

/// What an [`Observer`] gets at each call: the writer's time, a way to write events into the
/// recording at that time, an [`EventSender`] for its own threads, and the PTY master.
pub struct ObserveCtx<'a> {
    t_us: u64,
    writer: &'a mut dyn EventWrite,
    error: &'a mut Option<io::Error>,
    sender: &'a EventSender,
    terminal: Option<BorrowedFd<'a>>,
}

impl std::fmt::Debug for ObserveCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveCtx")
            .field("t_us", &self.t_us)
            .finish()
    }
}

impl ObserveCtx<'_> {
    /// Microseconds since the recording started on the writer's monotonic clock (for an
    /// output burst: the time of its `o` event).
    pub fn t_us(&self) -> u64 {
        self.t_us
    }

    /// Write `event` into the recording now. A write error ends the recording (the engine
    /// hangs the session up, as for any recording error); later writes are ignored.
    pub fn write(&mut self, event: &Event) {
        if self.error.is_none() {
            if let Err(e) = self.writer.write_event(event) {
                *self.error = Some(e);
            }
        }
    }

    /// A handle for threads of the observer to submit events.
    pub fn sender(&self) -> EventSender {
        self.sender.clone()
    }

    /// The PTY master (for `tcgetpgrp(3)`); `None` for a session without a PTY.
    pub fn terminal(&self) -> Option<BorrowedFd<'_>> {
        self.terminal
    }
}

/// The writer as an observer sees it.
trait EventWrite {
    fn write_event(&mut self, event: &Event) -> io::Result<()>;
}

impl<W: Durable, C: Clock> EventWrite for SealedWriter<W, C> {
    fn write_event(&mut self, event: &Event) -> io::Result<()> {
        event.write(self)
    }
}

/// Called by the writer loop (see the module documentation). Every method has a default
/// that does nothing. None is called after the recording failed.
pub trait Observer: Send {
    /// Once, after the header, before any message of the session is recorded.
    fn start(&mut self, _ctx: &mut ObserveCtx<'_>) {}
    /// After each recorded burst of `stream` ([`Stream::Output`] or [`Stream::Stderr`]):
    /// `bytes` exactly as read; its `o`/`e` (and `b`) events are already written.
    fn on_output(&mut self, _stream: Stream, _bytes: &[u8], _ctx: &mut ObserveCtx<'_>) {}
    /// At every tick of the loop (at least every [`TICK`]).
    fn on_tick(&mut self, _ctx: &mut ObserveCtx<'_>) {}
    /// The session is ending: stop background producers (must not block).
    fn stop(&mut self) {}
    /// True once background producers have stopped (their last events are queued).
    fn stopped(&self) -> bool {
        true
    }
    /// Last, after every queued message was recorded, before the summary and `x`.
    fn finish(&mut self, _ctx: &mut ObserveCtx<'_>) {}
}

/// An observer that observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Bytes relayed in each direction and how long the session took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteCounts {
    /// Recorder stdin → child.
    pub bytes_in: u64,
    /// Child stdout (or the PTY) → recorder stdout.
    pub bytes_out: u64,
    /// Child stderr → recorder stderr (sessions without a PTY).
    pub bytes_err: u64,
    /// From the start of the child to the end of the relay, microseconds.
    pub duration_us: u64,
}

impl ByteCounts {
    /// The `s` event's data (SPEC §2.3), keys in this order:
    /// `{"policy":"<policy>","bytes_in":N,"bytes_out":N,"bytes_err":N,"duration_us":N}`.
    pub fn summary_json(&self, policy: &str) -> String {
        let mut p = Vec::new();
        sealcast_format::write_json_string(&mut p, policy.as_bytes());
        format!(
            "{{\"policy\":{},\"bytes_in\":{},\"bytes_out\":{},\"bytes_err\":{},\"duration_us\":{}}}",
            String::from_utf8_lossy(&p),
            self.bytes_in,
            self.bytes_out,
            self.bytes_err,
            self.duration_us
        )
    }
}

/// How a session ended, returned by the sources' `run`.
#[derive(Debug)]
pub struct Outcome<W> {
    /// The command's exit status as recorded in the `x` event: its exit code (0–255), or
    /// `128 + N` when killed by signal N. `None` when the recorder closed the recording
    /// without learning it (the child outlived the grace periods after a hang-up).
    pub exit_status: Option<i32>,
    /// The recorder signal (`SIGTERM`, `SIGHUP` or `SIGINT`) that ended the session, if any.
    pub signal: Option<i32>,
    /// The recording sink, synced ([`SealedWriter::close`]).
    pub sink: W,
    /// The final checkpoint note: the seal receipt to store beside the recording (SPEC §5).
    pub receipt: Vec<u8>,
    /// Lines in the closed recording, header included (the receipt's `lines`).
    pub lines: u64,
    /// Checkpoints in the closed recording, checkpoint 0 and the final one included.
    pub checkpoints: u64,
    /// Bytes relayed in each direction (recorded or not) and the session's duration.
    pub counts: ByteCounts,
    /// The first error writing to the recorder's stdout, after which output was no longer
    /// relayed there and the session was hung up (the recording went on until it ended).
    pub stdout_error: Option<io::Error>,
}

/// Exit status as a shell reports it: the code, or `128 + N` after signal N.
pub(crate) fn status_code(st: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    st.code().or_else(|| st.signal().map(|s| 128 + s))
}

/// The exit code a recorder process returns for a session: the child's exit status, else
/// `128 + signal` for the recorder signal that ended the session, else 1; clamped to 0–255.
pub(crate) fn exit_code(status: Option<i32>, signal: Option<i32>) -> u8 {
    status
        .or(signal.map(|s| 128 + s))
        .unwrap_or(1)
        .clamp(0, 255) as u8
}

impl<W> Outcome<W> {
    /// The exit code a recorder process should return: [`Self::exit_status`], else
    /// `128 + signal` for the recorder signal that ended the session, else 1; clamped to
    /// 0–255.
    pub fn exit_code(&self) -> u8 {
        exit_code(self.exit_status, self.signal)
    }
}

/// State shared between the writer loop and the relay threads.
pub(crate) struct Shared {
    /// Set when the relay threads must stop; wakes them from `poll`.
    pub(crate) stop: StopPipe,
    /// Set by the waiter once the child has been reaped.
    pub(crate) child_exited: AtomicBool,
    bytes: [AtomicU64; 3],
    stdout_error: Mutex<Option<io::Error>>,
}

impl Shared {
    pub(crate) fn new() -> io::Result<Shared> {
        Ok(Shared {
            stop: StopPipe::new()?,
            child_exited: AtomicBool::new(false),
            bytes: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            stdout_error: Mutex::new(None),
        })
    }

    /// Count `n` bytes relayed on `stream`.
    pub(crate) fn count(&self, stream: Stream, n: usize) {
        self.bytes[stream.index()].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Keep the first error writing to the recorder's stdout.
    pub(crate) fn stdout_failed(&self, e: io::Error) {
        if let Ok(mut slot) = self.stdout_error.lock() {
            slot.get_or_insert(e);
        }
    }

    fn counts(&self, duration: Duration) -> ByteCounts {
        let n = |s: Stream| self.bytes[s.index()].load(Ordering::SeqCst);
        ByteCounts {
            bytes_in: n(Stream::Input),
            bytes_out: n(Stream::Output),
            bytes_err: n(Stream::Stderr),
            duration_us: duration.as_micros() as u64,
        }
    }
}

/// Reusable relay buffers of one pump: it takes buffers here and the writer loop sends them
/// back once recorded (no copy per chunk).
pub(crate) struct Buffers {
    free: Receiver<Vec<u8>>,
}

impl Buffers {
    /// The pump's side and the sender the writer loop returns buffers through.
    pub(crate) fn new() -> (Buffers, Sender<Vec<u8>>) {
        let (tx, rx) = mpsc::channel();
        (Buffers { free: rx }, tx)
    }

    /// A recycled buffer of [`CHUNK_SIZE`] bytes, or a new one (bounded by the channel depth).
    pub(crate) fn take(&self) -> Vec<u8> {
        self.free.try_recv().unwrap_or_else(|_| vec![0; CHUNK_SIZE])
    }
}

/// How the engine acts on the session's processes and terminal; one per source.
pub(crate) trait Control {
    /// Send `sig` to the session's processes (the child's process group; for a PTY also its
    /// foreground group), unless the source knows they are gone.
    fn signal(&self, sig: i32);
    /// On `SIGWINCH`: the local terminal's new size, when it changed. The engine records it
    /// (`r`), then calls [`Control::apply_size`], so the child's redraw follows the event.
    fn window_changed(&mut self) -> Option<(u16, u16)> {
        None
    }
    /// Resize the session's terminal.
    fn apply_size(&mut self, _cols: u16, _rows: u16) {}
    /// The PTY master, for observers.
    fn terminal(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// Forward the recorder's signals to the writer loop (`SIGWINCH` as [`Msg::Winch`]) until
/// the signals' handle is closed or the loop is gone.
pub(crate) fn forward_signals(signals: &mut Signals, tx: SyncSender<Msg>) {
    for sig in signals.forever() {
        let msg = if sig == SIGWINCH {
            Msg::Winch
        } else {
            Msg::Signal(sig)
        };
        if tx.send(msg).is_err() {
            break;
        }
    }
}

/// Start a relay thread in scope `s`, or keep the first error.
pub(crate) fn spawn_in<'scope, F>(
    s: &'scope thread::Scope<'scope, '_>,
    name: &str,
    f: F,
    handles: &mut Vec<thread::ScopedJoinHandle<'scope, ()>>,
    err: &mut Option<io::Error>,
) where
    F: FnOnce() + Send + 'scope,
{
    if err.is_some() {
        return;
    }
    match thread::Builder::new().name(name.into()).spawn_scoped(s, f) {
        Ok(h) => handles.push(h),
        Err(e) => *err = Some(e),
    }
}

/// Source-specific settings of the one hang-up policy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Streams that must reach their end ([`Msg::Done`]) before the session ends.
    pub(crate) ends: [bool; 2],
    /// Between the client going away and the hang-up.
    pub(crate) client_gone_grace: Duration,
}

#[derive(Default)]
struct LoopState {
    status: Option<i32>,
    exited: bool,
    /// Streams still open, by index (Output, Stderr).
    open: [bool; 2],
    signal: Option<i32>,
    deadline: Option<Instant>,
    killed: bool,
    /// The first recording error: nothing more is recorded or relayed.
    failed: Option<io::Error>,
    client_gone: Option<Instant>,
}

/// The engine: the writer loop of one session. See the module documentation.
pub(crate) struct Relay<'a, W: Durable, C: Clock> {
    writer: SealedWriter<W, C>,
    control: &'a mut dyn Control,
    shared: &'a Shared,
    observer: &'a mut dyn Observer,
    sender: EventSender,
    recycle: [Option<Sender<Vec<u8>>>; 3],
    policy: Policy,
    started: Instant,
    st: LoopState,
}

impl<'a, W: Durable, C: Clock> Relay<'a, W, C> {
    /// An engine for a session started at `started`, recording with `writer`. `sender` feeds
    /// the loop's channel; the observer's threads get clones of it.
    pub(crate) fn new(
        writer: SealedWriter<W, C>,
        control: &'a mut dyn Control,
        shared: &'a Shared,
        observer: &'a mut dyn Observer,
        sender: EventSender,
        policy: Policy,
        started: Instant,
    ) -> Self {
        Relay {
            writer,
            control,
            shared,
            observer,
            sender,
            recycle: [None, None, None],
            policy,
            started,
            st: LoopState {
                open: policy.ends,
                ..LoopState::default()
            },
        }
    }

    /// Return recorded buffers of `stream` through `tx`.
    pub(crate) fn recycle(&mut self, stream: Stream, tx: Sender<Vec<u8>>) {
        self.recycle[stream.index()] = Some(tx);
    }

    /// End the session from the recorder's side: `SIGHUP` now, `SIGKILL` after
    /// [`HANGUP_GRACE`] (see [`Relay::run`]). Only the first call acts.
    pub(crate) fn hang_up(&mut self) {
        if self.st.deadline.is_none() {
            // Once the child was reaped and every stream ended there is nobody left to hang
            // up, and the group id may no longer be ours.
            if !(self.shared.child_exited.load(Ordering::SeqCst) && self.streams_done()) {
                self.control.signal(libc::SIGHUP);
            }
            self.st.deadline = Some(Instant::now() + HANGUP_GRACE);
        }
    }

    fn streams_done(&self) -> bool {
        !self.st.open.iter().any(|&o| o)
    }

    fn fail(&mut self, e: io::Error) {
        if self.st.failed.is_none() {
            self.st.failed = Some(e);
            self.hang_up();
            // Nothing more is relayed: no byte reaches the user or the child unrecorded.
            self.shared.stop.request();
        }
    }

    /// Call `f` with an observer context at the writer's current time; a write error in it
    /// fails the recording.
    fn observe(&mut self, f: impl FnOnce(&mut dyn Observer, &mut ObserveCtx<'_>)) {
        if self.st.failed.is_some() {
            return;
        }
        let mut error = None;
        let mut ctx = ObserveCtx {
            t_us: self.writer.elapsed_us(),
            writer: &mut self.writer,
            error: &mut error,
            sender: &self.sender,
            terminal: self.control.terminal(),
        };
        f(&mut *self.observer, &mut ctx);
        if let Some(e) = error {
            self.fail(e);
        }
    }

    /// Run the writer loop until the session ends (see the module documentation).
    pub(crate) fn run(&mut self, rx: &Receiver<Msg>) {
        self.observe(|o, ctx| o.start(ctx));
        let mut last_tick = Instant::now();
        loop {
            if self.st.exited && (self.streams_done() || self.st.failed.is_some()) {
                return;
            }
            let now = Instant::now();
            if self.st.client_gone.is_some_and(|t| now >= t) {
                self.st.client_gone = None;
                self.hang_up();
            }
            if let Some(d) = self.st.deadline {
                if now >= d {
                    if self.st.killed {
                        return;
                    }
                    // The child, or a process still holding its streams, outlived the hangup.
                    self.control.signal(libc::SIGKILL);
                    self.st.killed = true;
                    self.st.deadline = Some(now + KILL_GRACE);
                }
            }
            let mut wait = TICK.saturating_sub(last_tick.elapsed());
            for d in [self.st.deadline, self.st.client_gone]
                .into_iter()
                .flatten()
            {
                wait = wait.min(d.saturating_duration_since(now));
            }
            match rx.recv_timeout(wait) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                // Every producer is gone: nothing more can happen.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if last_tick.elapsed() >= TICK {
                if self.st.failed.is_none() {
                    if let Err(e) = self.writer.tick() {
                        self.fail(e);
                    }
                    self.observe(|o, ctx| o.on_tick(ctx));
                }
                last_tick = Instant::now();
            }
        }
    }

    /// Record a data burst (and show it to the observer), or an event; recycle the buffer.
    fn record(&mut self, msg: Msg) -> Option<Msg> {
        match msg {
            Msg::Data { stream, buf, len } => {
                if self.st.failed.is_none() {
                    let bytes = &buf[..len];
                    let r = self.writer.write(match stream {
                        Stream::Output => WriteEvent::Output(bytes),
                        Stream::Stderr => WriteEvent::Stderr(bytes),
                        Stream::Input => WriteEvent::Input(bytes),
                    });
                    match r {
                        Err(e) => self.fail(e),
                        Ok(()) if stream != Stream::Input => {
                            self.observe(|o, ctx| o.on_output(stream, bytes, ctx));
                        }
                        Ok(()) => {}
                    }
                }
                if let Some(tx) = &self.recycle[stream.index()] {
                    let _ = tx.send(buf);
                }
                None
            }
            Msg::Event { event, ack } => {
                let r = match self.st.failed.as_ref() {
                    Some(e) => Err(SubmitError::Recording { kind: e.kind() }),
                    None => {
                        let written = event.write(&mut self.writer).and_then(|()| {
                            if ack.is_some() {
                                self.writer.hand_off()
                            } else {
                                Ok(())
                            }
                        });
                        written.map_err(|e| {
                            let kind = e.kind();
                            self.fail(e);
                            SubmitError::Recording { kind }
                        })
                    }
                };
                if let Some(ack) = ack {
                    let _ = ack.send(r);
                }
                None
            }
            other => Some(other),
        }
    }

    fn handle(&mut self, msg: Msg) {
        let Some(msg) = self.record(msg) else { return };
        match msg {
            Msg::Done(s) => {
                if let Some(open) = self.st.open.get_mut(s.index()) {
                    *open = false;
                }
            }
            Msg::ChildExited(status) => {
                self.st.exited = true;
                self.st.status = status;
            }
            Msg::Winch => {
                if let Some((cols, rows)) = self.control.window_changed() {
                    if self.st.failed.is_none() {
                        // Record first, then resize: the child's redraw follows the `r` event.
                        match self.writer.write(WriteEvent::Resize { cols, rows }) {
                            Ok(()) => self.control.apply_size(cols, rows),
                            Err(e) => self.fail(e),
                        }
                    }
                }
            }
            Msg::Signal(sig) => {
                if self.st.signal.is_none() {
                    self.st.signal = Some(sig);
                    self.hang_up();
                }
            }
            Msg::ClientGone => {
                self.st
                    .client_gone
                    .get_or_insert(Instant::now() + self.policy.client_gone_grace);
            }
            Msg::Data { .. } | Msg::Event { .. } => {}
        }
    }

    /// After [`Relay::run`]: stop the relay threads and the observer's producers, still
    /// recording what they deliver (a pump may be blocked sending to the full channel) until
    /// `threads_done` and the channel is empty; then the observer's last events.
    pub(crate) fn wind_down(&mut self, rx: &Receiver<Msg>, threads_done: impl Fn() -> bool) {
        self.shared.stop.request();
        self.observer.stop();
        let observer_deadline = Instant::now() + OBSERVER_STOP_GRACE;
        loop {
            let done =
                threads_done() && (self.observer.stopped() || Instant::now() >= observer_deadline);
            let msg = if done {
                match rx.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            } else {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(m) => m,
                    Err(_) => continue,
                }
            };
            if let Some(Msg::ChildExited(status)) = self.record(msg) {
                self.st.exited = true;
                self.st.status = status;
            }
        }
        self.observe(|o, ctx| o.finish(ctx));
    }

    /// Close the recording: the `s` summary when `summary_policy` is set, `x` and the final
    /// checkpoint.
    ///
    /// # Errors
    /// The recording error that ended the session (`writing the recording: …`; the file is
    /// left as written, without a final checkpoint); `setup_err` (`setting up the session:
    /// …`, after closing the recording); an error closing it (`closing the recording: …`).
    pub(crate) fn close(
        self,
        summary_policy: Option<&str>,
        setup_err: Option<io::Error>,
    ) -> io::Result<Outcome<W>> {
        let Relay {
            mut writer,
            shared,
            started,
            st,
            ..
        } = self;
        if let Some(e) = st.failed {
            return Err(io::Error::new(
                e.kind(),
                format!("writing the recording: {e}"),
            ));
        }
        if let Some(e) = setup_err {
            let _ = writer.finish(st.status);
            return Err(io::Error::new(
                e.kind(),
                format!("setting up the session: {e}"),
            ));
        }
        let counts = shared.counts(started.elapsed());
        let closing =
            |e: io::Error| io::Error::new(e.kind(), format!("closing the recording: {e}"));
        if let Some(policy) = summary_policy {
            writer
                .write(WriteEvent::Summary(&counts.summary_json(policy)))
                .map_err(closing)?;
        }
        let closed = writer.close(st.status).map_err(closing)?;
        let stdout_error = shared.stdout_error.lock().ok().and_then(|mut e| e.take());
        Ok(Outcome {
            exit_status: st.status,
            signal: st.signal,
            sink: closed.sink,
            receipt: closed.receipt,
            lines: closed.lines,
            checkpoints: closed.checkpoints,
            counts,
            stdout_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipes::{PipeOptions, PipeSession};
    use crate::test_support::{events, stream, within, writer, Full};
    use crate::ChildCommand;
    use std::fs::File;
    use std::sync::{Arc, Mutex};

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(Some(3), Some(libc::SIGTERM)), 3);
        assert_eq!(exit_code(None, Some(libc::SIGTERM)), 143);
        assert_eq!(exit_code(None, None), 1);
        assert_eq!(exit_code(Some(300), None), 255);
    }

    fn sh(script: &str) -> ChildCommand {
        let mut c = ChildCommand::new("/bin/sh");
        c.args = vec!["-c".into(), script.into()];
        c.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
        c
    }

    /// What the test observer saw, shared with the test.
    #[derive(Default)]
    struct Seen {
        calls: Vec<&'static str>,
        bytes: Vec<u8>,
        sender: Option<EventSender>,
        submitted: Vec<Result<(), SubmitError>>,
    }

    /// Writes a `p` `exit` event whose pid is the burst's length after every output burst;
    /// with `flood`, a thread of its own submits `d` events (write-ahead) until one fails.
    struct Probe {
        seen: Arc<Mutex<Seen>>,
        flood: bool,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl Observer for Probe {
        fn start(&mut self, ctx: &mut ObserveCtx<'_>) {
            let mut seen = self.seen.lock().unwrap();
            seen.calls.push("start");
            seen.sender = Some(ctx.sender());
            if self.flood {
                let (tx, seen) = (ctx.sender(), self.seen.clone());
                self.thread = Some(thread::spawn(move || loop {
                    let r = tx.submit_and_wait(Event::Database(format!(
                        "{{\"k\":\"{}\"}}",
                        "x".repeat(500)
                    )));
                    let failed = r.is_err();
                    seen.lock().unwrap().submitted.push(r);
                    if failed {
                        return;
                    }
                }));
            }
        }
        fn on_output(&mut self, stream: Stream, bytes: &[u8], ctx: &mut ObserveCtx<'_>) {
            assert_eq!(stream, Stream::Output);
            let mut seen = self.seen.lock().unwrap();
            seen.calls.push("output");
            seen.bytes.extend_from_slice(bytes);
            ctx.write(&Event::Process(ProcessEvent::Exit {
                pid: bytes.len() as i32,
            }));
        }
        fn on_tick(&mut self, _ctx: &mut ObserveCtx<'_>) {
            self.seen.lock().unwrap().calls.push("tick");
        }
        fn stopped(&self) -> bool {
            self.thread.as_ref().is_none_or(|t| t.is_finished())
        }
        fn finish(&mut self, ctx: &mut ObserveCtx<'_>) {
            self.seen.lock().unwrap().calls.push("finish");
            ctx.write(&Event::Process(ProcessEvent::Exit { pid: -1 }));
        }
    }

    #[test]
    fn the_observer_sees_each_burst_and_writes_after_it() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let probe = Probe {
            seen: seen.clone(),
            flood: false,
            thread: None,
        };
        let out = within(20, move || {
            let mut s =
                PipeSession::spawn(&sh("printf abc; sleep 0.7; printf defgh; exit 4"), None)
                    .unwrap();
            s.observe(Box::new(probe));
            s.run(
                writer(Vec::new()).unwrap(),
                &PipeOptions::default(),
                File::open("/dev/null").unwrap(),
                io::sink(),
                io::sink(),
            )
            .unwrap()
        });
        assert_eq!(out.exit_status, Some(4));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.calls.first(), Some(&"start"));
        assert_eq!(seen.calls.last(), Some(&"finish"));
        assert!(seen.calls.contains(&"tick"), "{:?}", seen.calls);
        assert_eq!(seen.bytes, b"abcdefgh");
        let ev = events(&out.sink);
        assert_eq!(stream(&ev, "o"), b"abcdefgh");
        // Every burst's `p` follows its `o`; the finish event comes before `x`.
        let mut o_since_p = 0;
        for (code, data) in &ev {
            match code.as_str() {
                "o" => o_since_p += data.len(),
                "p" => {
                    let p = ProcessEvent::parse(std::str::from_utf8(data).unwrap())
                        .unwrap()
                        .unwrap();
                    let ProcessEvent::Exit { pid } = p else {
                        panic!("{p:?}")
                    };
                    if pid >= 0 {
                        assert_eq!(pid as usize, o_since_p, "{ev:?}");
                    }
                    o_since_p = 0;
                }
                _ => {}
            }
        }
        let codes: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(codes[codes.len() - 2..], ["p", "x"], "{codes:?}");
        // The session is over: its senders are closed.
        let sender = seen.sender.clone().unwrap();
        assert_eq!(
            sender.submit(Event::Database("{}".into())),
            Err(SubmitError::Closed)
        );
        assert_eq!(
            sender.submit_and_wait(Event::Database("{}".into())),
            Err(SubmitError::Closed)
        );
    }

    #[test]
    fn a_write_ahead_producer_gets_the_recording_error_and_the_session_ends() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let probe = Probe {
            seen: seen.clone(),
            flood: true,
            thread: None,
        };
        let err = within(30, move || {
            let mut s = PipeSession::spawn(&sh("exec sleep 60"), None).unwrap();
            s.observe(Box::new(probe));
            let w = writer(Full {
                data: Vec::new(),
                limit: 64 * 1024,
            })
            .unwrap();
            s.run(
                w,
                &PipeOptions::default(),
                File::open("/dev/null").unwrap(),
                io::sink(),
                io::sink(),
            )
            .unwrap_err()
        });
        assert!(
            err.to_string().starts_with("writing the recording"),
            "{err}"
        );
        let seen = seen.lock().unwrap();
        let (last, before) = seen.submitted.split_last().unwrap();
        assert!(before.len() > 10, "{} events fit", before.len());
        assert!(before.iter().all(Result::is_ok));
        let full = io::Error::from_raw_os_error(libc::ENOSPC).kind();
        assert_eq!(last, &Err(SubmitError::Recording { kind: full }));
    }

    #[test]
    fn submit_and_wait_returns_once_the_event_is_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast.zst");
        let file = File::create(&path).unwrap();
        struct Ahead {
            path: std::path::PathBuf,
            found: Arc<Mutex<Option<bool>>>,
            thread: Option<thread::JoinHandle<()>>,
        }
        impl Observer for Ahead {
            fn start(&mut self, ctx: &mut ObserveCtx<'_>) {
                let (tx, path, found) = (ctx.sender(), self.path.clone(), self.found.clone());
                self.thread = Some(thread::spawn(move || {
                    tx.submit_and_wait(Event::Database(r#"{"k":"write-ahead-1"}"#.into()))
                        .unwrap();
                    // The file as it is now, its data frame still open: what a crash leaves.
                    let out = std::process::Command::new("zstd")
                        .arg("-dc")
                        .arg(&path)
                        .output()
                        .unwrap();
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    *found.lock().unwrap() = Some(text.contains("write-ahead-1"));
                }));
            }
            fn stopped(&self) -> bool {
                self.thread.as_ref().is_none_or(|t| t.is_finished())
            }
        }
        let found = Arc::new(Mutex::new(None));
        let ahead = Ahead {
            path: path.clone(),
            found: found.clone(),
            thread: None,
        };
        within(30, move || {
            let mut s = PipeSession::spawn(&sh("sleep 1"), None).unwrap();
            s.observe(Box::new(ahead));
            s.run(
                writer(file).unwrap(),
                &PipeOptions::default(),
                File::open("/dev/null").unwrap(),
                io::sink(),
                io::sink(),
            )
            .unwrap()
        });
        assert_eq!(*found.lock().unwrap(), Some(true));
    }
}
