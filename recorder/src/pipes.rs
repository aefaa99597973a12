//! Sessions without a PTY: the child's stdin, stdout and stderr are pipes, relayed to the
//! recorder's own and recorded through a [`SealedWriter`] (SPEC §2.3).
//!
//! This is how sshd runs `ssh host cmd` and file transfers (`session.c`: no PTY requested,
//! three pipes), so the recorder keeps that shape: stdout stays stdout (`o` events), stderr
//! stays stderr (`e` events), bytes are relayed unchanged (no line discipline, no CR LF), the
//! end of the recorder's stdin closes the child's stdin, and the child's exit status becomes
//! the `x` event and the recorder's exit code.
//!
//! Two payload modes ([`Payload`]): record everything, or record no payload at all and only
//! count bytes (file transfers under the `metadata` policy), ending with an `s` summary event.
//!
//! Threads during [`PipeSession::run`]: an **input pump** (recorder stdin → child stdin,
//! non-blocking, `poll` with a stop pipe), one **output pump** per child stream (child stdout
//! → recorder stdout, child stderr → recorder stderr; each chunk relayed first, then handed to
//! the writer loop over a bounded channel, which is the backpressure), a **signal** thread
//! (`SIGTERM`, `SIGHUP`, `SIGINT`) and a detached **waiter**. The calling thread runs the
//! writer loop. The session ends when the child has exited **and** both of its output pipes
//! reached EOF (a background process still holding them keeps the session open, as with sshd),
//! or, after a recorder signal, a failed stdout or a recording error, once the hung-up process
//! group is gone (`SIGHUP`, then `SIGKILL` after [`HANGUP_GRACE`]). A client that stops
//! reading stdout (POLLHUP on `watch_hangup`, or a failed write to it) hangs the command up
//! only after [`CLIENT_GONE_GRACE`], so a command ending on its own at the client's EOF
//! (sftp-server after a batch) keeps its status.
//!
//! There are no hotkeys: nothing in the relayed data is interpreted.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::spawn::{ChildCommand, ForkHook, SessionMode};
use crate::wake::{read_ready, set_nonblocking, wait_hangup, wait_ready, Got, Ready, StopPipe};
use crate::{Clock, Durable, SealedWriter};

/// Largest chunk one pump reads and relays at once, bytes (a Linux pipe holds 64 KiB).
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Messages the channel to the writer loop holds before the pumps block.
const CHANNEL_DEPTH: usize = 8;
/// The writer loop calls [`SealedWriter::tick`] at least this often.
const TICK: Duration = Duration::from_millis(500);
/// After hanging up the child's process group (`SIGHUP`), wait this long for it to exit and
/// release its pipes before `SIGKILL`.
pub const HANGUP_GRACE: Duration = Duration::from_secs(3);
/// After `SIGKILL`, wait this long before closing the recording regardless.
const KILL_GRACE: Duration = Duration::from_secs(1);
/// When the client stops reading (`watch_hangup`), the command gets this long to end on its
/// own before it is hung up: a client that is done (sftp after its batch) closes stdin and
/// stdout together, and the command exits at the EOF; only one still running is hung up.
pub const CLIENT_GONE_GRACE: Duration = Duration::from_secs(1);

/// What is recorded of the relayed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload {
    /// Everything: stdout as `o`, stderr as `e`, stdin as `i` with input capture.
    #[default]
    Record,
    /// Nothing: the bytes are relayed and counted only (file transfers under the `metadata`
    /// policy). Input capture is ignored.
    CountOnly,
}

/// How [`PipeSession::run`] records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipeOptions {
    /// What to record of the relayed bytes.
    pub payload: Payload,
    /// Record stdin as `i` events (only with [`Payload::Record`]). Off by default: input may
    /// contain secrets.
    pub capture_input: bool,
    /// When set, an `s` summary event ([`ByteCounts::summary_json`] with this policy name) is
    /// written just before `x`.
    pub summary_policy: Option<String>,
    /// A descriptor whose far end going away (POLLHUP/POLLERR) means the client is gone:
    /// typically the recorder's own stdout, sshd's pipe or socket. Without a PTY, sshd sends
    /// no SIGHUP when the client disconnects; it only closes its end, which a silent command
    /// would never notice. The session is then hung up and the recording closed.
    pub watch_hangup: Option<RawFd>,
}

/// Bytes relayed in each direction and how long the session took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteCounts {
    /// Recorder stdin → child stdin.
    pub bytes_in: u64,
    /// Child stdout → recorder stdout.
    pub bytes_out: u64,
    /// Child stderr → recorder stderr.
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

/// How a pipe session ended, returned by [`PipeSession::run`].
#[derive(Debug)]
pub struct PipeOutcome<W> {
    /// The command's exit status as recorded in `x`: its exit code, or `128 + N` when killed
    /// by signal N. `None` when the recorder closed without learning it.
    pub exit_status: Option<i32>,
    /// The recorder signal (`SIGTERM`, `SIGHUP`, `SIGINT`) that ended the session, if any.
    pub signal: Option<i32>,
    /// The recording sink, returned by [`SealedWriter::finish`] (synced).
    pub sink: W,
    /// The final checkpoint note (the seal receipt, SPEC §5).
    pub receipt: Vec<u8>,
    /// Lines in the closed recording, header included.
    pub lines: u64,
    /// Bytes relayed in each direction.
    pub counts: ByteCounts,
    /// The first error writing to the recorder's stdout, after which the session was hung up.
    pub stdout_error: Option<io::Error>,
}

impl<W> PipeOutcome<W> {
    /// The exit code a recorder process should return: the exit status, else `128 + signal`
    /// for the recorder signal that ended the session, else 1; clamped to 0–255.
    pub fn exit_code(&self) -> u8 {
        crate::pty::exit_code(self.exit_status, self.signal)
    }
}

/// A command running with piped stdin, stdout and stderr, not yet relayed. Dropping it
/// without [`PipeSession::run`] hangs up the child's process group.
pub struct PipeSession {
    child: Option<Child>,
    pid: u32,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    signals: Option<Signals>,
    started: Instant,
}

impl fmt::Debug for PipeSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeSession")
            .field("pid", &self.pid)
            .finish()
    }
}

/// Which child stream a pump relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

enum Msg {
    Data(Stream, Vec<u8>),
    Input(Vec<u8>),
    Eof(Stream),
    ChildExited(Option<i32>),
    Signal(i32),
    StdoutGone,
}

struct Shared {
    /// Set when the pumps must stop; wakes them from `poll`.
    stop: StopPipe,
    child_exited: AtomicBool,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    bytes_err: AtomicU64,
    stdout_error: std::sync::Mutex<Option<io::Error>>,
}

impl Shared {
    fn new() -> io::Result<Shared> {
        Ok(Shared {
            stop: StopPipe::new()?,
            child_exited: AtomicBool::new(false),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            bytes_err: AtomicU64::new(0),
            stdout_error: std::sync::Mutex::new(None),
        })
    }
}

/// Wait until `fd` is ready for `events` (true) or the pumps must stop (false).
fn ready(fd: RawFd, events: libc::c_short, stop: &StopPipe) -> bool {
    !matches!(wait_ready(fd, events, stop, -1), Ready::Stop)
}

fn status_code(st: std::process::ExitStatus) -> Option<i32> {
    st.code().or_else(|| st.signal().map(|s| 128 + s))
}

/// Send `sig` to the child's process group (it is a session leader: pgid = pid), through
/// the [`crate::spawn::GroupSignaller`] when the group runs as a user this process gave up.
fn signal_group(pid: u32, sig: i32) {
    if let Ok(p) = libc::pid_t::try_from(pid) {
        crate::spawn::kill_group(p, sig);
    }
}

impl PipeSession {
    /// Start `cmd` in a new session (`setsid`: its own process group, no controlling
    /// terminal) with stdin, stdout and stderr as pipes, after the user switch `cmd`
    /// describes, and register the recorder's signal handlers (`SIGTERM`, `SIGHUP`,
    /// `SIGINT`; they stay installed for the life of the process).
    ///
    /// With `on_forked`, the child waits before `exec` until that step has run in the
    /// recorder ([`ForkHook`]: a set-uid recorder drops the user's id there, so the user's
    /// code never runs while the recorder is still within the user's reach).
    ///
    /// # Errors
    /// Registering the signals, `on_forked`'s error, or starting the command (the message
    /// names the program).
    pub fn spawn(cmd: &ChildCommand, on_forked: Option<ForkHook>) -> io::Result<PipeSession> {
        let signals = Signals::new([SIGTERM, SIGHUP, SIGINT])?;
        let started = Instant::now();
        let mut child = cmd
            .spawn_child(
                SessionMode::New,
                |c| {
                    c.stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    Ok(())
                },
                on_forked,
            )
            .map_err(|e| {
                io::Error::new(e.kind(), format!("starting {}: {e}", cmd.program.display()))
            })?;
        Ok(PipeSession {
            pid: child.id(),
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child: Some(child),
            signals: Some(signals),
            started,
        })
    }

    /// Process id of the child (also its process group and session id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Relay `stdin` → child, child stdout → `stdout`, child stderr → `stderr`, recording
    /// with `writer` as `opts` says, until the child has exited and its output pipes are at
    /// EOF; then write the `s` summary (when asked) and close the recording with `x` and the
    /// final checkpoint.
    ///
    /// `stdin` is polled on its descriptor, so it must not buffer internally (use a `File`);
    /// `stdout` and `stderr` get each chunk with one `write_all` and no flush. The end of
    /// `stdin` closes the child's stdin. When writing to `stdout` fails (the client is gone)
    /// the child's process group is hung up (`SIGHUP`, `SIGKILL` after [`HANGUP_GRACE`]) and
    /// the recording is still closed; a failing `stderr` is only no longer written to.
    ///
    /// # Errors
    /// Setting up the relay (the child is hung up, the recording closed), or the first error
    /// writing the recording: the child's process group is then hung up and, once it is gone
    /// (or killed), the error is returned with the recording left as written — verifiable up
    /// to its last checkpoint, without a final checkpoint that could claim lines not on disk.
    pub fn run<W, C, I, O, E>(
        mut self,
        mut writer: SealedWriter<W, C>,
        opts: &PipeOptions,
        stdin: I,
        stdout: O,
        stderr: E,
    ) -> io::Result<PipeOutcome<W>>
    where
        W: Durable,
        C: Clock,
        I: Read + AsFd + Send,
        O: Write + Send,
        E: Write + Send,
    {
        let (Some(child), Some(mut signals)) = (self.child.take(), self.signals.take()) else {
            return Err(io::Error::other("pipe session already run"));
        };
        let pid = self.pid;
        let (child_in, child_out, child_err) =
            (self.stdin.take(), self.stdout.take(), self.stderr.take());
        let record = opts.payload == Payload::Record;
        let capture = record && opts.capture_input;
        let (tx, rx) = mpsc::sync_channel::<Msg>(CHANNEL_DEPTH);

        let setup = || -> io::Result<Arc<Shared>> {
            let shared = Arc::new(Shared::new()?);
            if let Some(ci) = &child_in {
                set_nonblocking(ci.as_raw_fd())?;
            }
            let tx = tx.clone();
            let sh = shared.clone();
            thread::Builder::new()
                .name("sealcast-wait".into())
                .spawn(move || {
                    let mut child = child;
                    let st = child.wait().ok().and_then(status_code);
                    sh.child_exited.store(true, Ordering::SeqCst);
                    let _ = tx.send(Msg::ChildExited(st));
                })?;
            Ok(shared)
        };
        let shared = match setup() {
            Ok(s) => s,
            Err(e) => {
                signal_group(pid, libc::SIGHUP);
                let _ = writer.finish(None);
                return Err(io::Error::new(
                    e.kind(),
                    format!("setting up the session: {e}"),
                ));
            }
        };

        let sig_handle = signals.handle();
        let mut st = LoopState {
            status: None,
            exited: false,
            out_done: child_out.is_none(),
            err_done: child_err.is_none(),
            signal: None,
            deadline: None,
            killed: false,
            failed: None,
            client_gone: None,
        };
        let setup_err = thread::scope(|s| -> Option<io::Error> {
            let sh = &*shared;
            let mut handles = Vec::with_capacity(4);
            let mut setup_err = None;
            if let Some(out) = child_out {
                let t = tx.clone();
                let f = move || pump_output(out, stdout, Stream::Out, record, sh, t);
                spawn_in(s, "sealcast-out", f, &mut handles, &mut setup_err);
            }
            if let Some(err) = child_err {
                let t = tx.clone();
                let f = move || pump_output(err, stderr, Stream::Err, record, sh, t);
                spawn_in(s, "sealcast-err", f, &mut handles, &mut setup_err);
            }
            let t = tx.clone();
            let f = move || pump_input(stdin, child_in, capture, sh, t);
            spawn_in(s, "sealcast-in", f, &mut handles, &mut setup_err);
            if let Some(fd) = opts.watch_hangup {
                let t = tx.clone();
                let f = move || {
                    if wait_hangup(fd, &sh.stop) {
                        let _ = t.send(Msg::StdoutGone);
                    }
                };
                spawn_in(s, "sealcast-hup", f, &mut handles, &mut setup_err);
            }
            let t = tx.clone();
            let f = move || {
                for sig in signals.forever() {
                    if t.send(Msg::Signal(sig)).is_err() {
                        break;
                    }
                }
            };
            spawn_in(s, "sealcast-sig", f, &mut handles, &mut setup_err);
            drop(tx);

            let mut lp = WriterLoop {
                writer: &mut writer,
                pid,
                shared: sh,
            };
            if setup_err.is_some() {
                lp.hang_up(&mut st);
            }
            lp.run(&rx, &mut st);
            // Stop the pumps and the signal thread, still recording what they deliver (a
            // pump may be blocked sending to the full channel).
            sh.stop.request();
            sig_handle.close();
            loop {
                let done = handles.iter().all(|h| h.is_finished());
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
                lp.record_late(msg, &mut st);
            }
            setup_err
        });
        if let Some(e) = st.failed {
            return Err(io::Error::new(
                e.kind(),
                format!("writing the recording: {e}"),
            ));
        }
        let counts = ByteCounts {
            bytes_in: shared.bytes_in.load(Ordering::SeqCst),
            bytes_out: shared.bytes_out.load(Ordering::SeqCst),
            bytes_err: shared.bytes_err.load(Ordering::SeqCst),
            duration_us: self.started.elapsed().as_micros() as u64,
        };
        if let Some(e) = setup_err {
            let _ = writer.finish(st.status);
            return Err(io::Error::new(
                e.kind(),
                format!("setting up the session: {e}"),
            ));
        }
        let closing =
            |e: io::Error| io::Error::new(e.kind(), format!("closing the recording: {e}"));
        if let Some(policy) = &opts.summary_policy {
            writer
                .summary(&counts.summary_json(policy))
                .map_err(closing)?;
        }
        let lines_before_close = writer.lines();
        let (sink, receipt) = writer.finish(st.status).map_err(closing)?;
        let lines = note_lines(&receipt).unwrap_or(lines_before_close);
        let stdout_error = shared.stdout_error.lock().ok().and_then(|mut e| e.take());
        Ok(PipeOutcome {
            exit_status: st.status,
            signal: st.signal,
            sink,
            receipt,
            lines,
            counts,
            stdout_error,
        })
    }
}

impl Drop for PipeSession {
    fn drop(&mut self) {
        if self.child.is_some() {
            signal_group(self.pid, libc::SIGHUP);
        }
    }
}

/// Start a relay thread in scope `s`, or keep the first error.
fn spawn_in<'scope, F>(
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

/// `lines` of a checkpoint note.
fn note_lines(note: &[u8]) -> Option<u64> {
    std::str::from_utf8(note)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("lines "))
        .and_then(|v| v.parse().ok())
}

struct LoopState {
    status: Option<i32>,
    exited: bool,
    out_done: bool,
    err_done: bool,
    signal: Option<i32>,
    deadline: Option<Instant>,
    killed: bool,
    /// The first recording error: nothing more is recorded, the child is hung up.
    failed: Option<io::Error>,
    /// When the client stopped reading, plus [`CLIENT_GONE_GRACE`]: hang up then.
    client_gone: Option<Instant>,
}

struct WriterLoop<'a, W: Durable, C: Clock> {
    writer: &'a mut SealedWriter<W, C>,
    pid: u32,
    shared: &'a Shared,
}

impl<W: Durable, C: Clock> WriterLoop<'_, W, C> {
    fn run(&mut self, rx: &Receiver<Msg>, st: &mut LoopState) {
        let mut last_tick = Instant::now();
        loop {
            if st.exited && st.out_done && st.err_done {
                return;
            }
            let now = Instant::now();
            if st.client_gone.is_some_and(|t| now >= t) {
                st.client_gone = None;
                self.hang_up(st);
            }
            if let Some(d) = st.deadline {
                if now >= d {
                    if st.killed {
                        return;
                    }
                    // The child, or a process still holding its pipes, outlived the hangup.
                    signal_group(self.pid, libc::SIGKILL);
                    st.killed = true;
                    st.deadline = Some(now + KILL_GRACE);
                }
            }
            let mut wait = TICK.saturating_sub(last_tick.elapsed());
            for d in [st.deadline, st.client_gone].into_iter().flatten() {
                wait = wait.min(d.saturating_duration_since(now));
            }
            match rx.recv_timeout(wait) {
                Ok(msg) => self.handle(msg, st),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if last_tick.elapsed() >= TICK {
                if st.failed.is_none() {
                    if let Err(e) = self.writer.tick() {
                        self.fail(e, st);
                    }
                }
                last_tick = Instant::now();
            }
        }
    }

    fn fail(&mut self, e: io::Error, st: &mut LoopState) {
        if st.failed.is_none() {
            st.failed = Some(e);
            self.hang_up(st);
        }
    }

    fn record(&mut self, msg: &Msg) -> io::Result<()> {
        match msg {
            Msg::Data(Stream::Out, b) => self.writer.output(b),
            Msg::Data(Stream::Err, b) => self.writer.stderr(b),
            Msg::Input(b) => self.writer.input(b),
            _ => Ok(()),
        }
    }

    fn handle(&mut self, msg: Msg, st: &mut LoopState) {
        if st.failed.is_none() {
            if let Err(e) = self.record(&msg) {
                self.fail(e, st);
            }
        }
        match msg {
            Msg::Eof(Stream::Out) => st.out_done = true,
            Msg::Eof(Stream::Err) => st.err_done = true,
            Msg::ChildExited(status) => {
                st.exited = true;
                st.status = status;
            }
            Msg::Signal(sig) => {
                if st.signal.is_none() {
                    st.signal = Some(sig);
                    self.hang_up(st);
                }
            }
            Msg::StdoutGone => {
                st.client_gone
                    .get_or_insert(Instant::now() + CLIENT_GONE_GRACE);
            }
            Msg::Data(..) | Msg::Input(_) => {}
        }
    }

    /// `SIGHUP` to the child's process group now, `SIGKILL` after [`HANGUP_GRACE`]. Only the
    /// first call acts.
    fn hang_up(&mut self, st: &mut LoopState) {
        if st.deadline.is_none() {
            // After the child was reaped its group may live on in a process holding the
            // pipes; the group id cannot be reused while it has members.
            if !(self.shared.child_exited.load(Ordering::SeqCst) && st.out_done && st.err_done) {
                signal_group(self.pid, libc::SIGHUP);
            }
            st.deadline = Some(Instant::now() + HANGUP_GRACE);
        }
    }

    fn record_late(&mut self, msg: Msg, st: &mut LoopState) {
        if st.failed.is_none() {
            if let Err(e) = self.record(&msg) {
                st.failed = Some(e);
            }
        }
    }
}

/// An output pump: a child stream → the recorder's stream, then (when recording) the writer
/// loop. Counts every byte read.
fn pump_output<R: Read + AsFd, O: Write>(
    mut from: R,
    mut to: O,
    which: Stream,
    record: bool,
    shared: &Shared,
    tx: SyncSender<Msg>,
) {
    let fd = from.as_fd().as_raw_fd();
    let counter = match which {
        Stream::Out => &shared.bytes_out,
        Stream::Err => &shared.bytes_err,
    };
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut to_ok = true;
    loop {
        let n = match read_ready(fd, &mut from, &mut buf, &shared.stop) {
            Got::Data(n) => n,
            Got::End => break,
            Got::Stop => return,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if to_ok {
            if let Err(e) = to.write_all(&buf[..n]) {
                to_ok = false;
                if which == Stream::Out {
                    if let Ok(mut slot) = shared.stdout_error.lock() {
                        *slot = Some(e);
                    }
                    if tx.send(Msg::StdoutGone).is_err() {
                        return;
                    }
                }
            }
        }
        if record && tx.send(Msg::Data(which, buf[..n].to_vec())).is_err() {
            return;
        }
    }
    let _ = tx.send(Msg::Eof(which));
}

/// The input pump: the recorder's stdin → the child's stdin (non-blocking), closed at EOF.
fn pump_input<I: Read + AsFd>(
    mut stdin: I,
    child_in: Option<ChildStdin>,
    capture: bool,
    shared: &Shared,
    tx: SyncSender<Msg>,
) {
    let Some(child_in) = child_in else { return };
    let fd = stdin.as_fd().as_raw_fd();
    let out = child_in.as_raw_fd();
    let mut buf = vec![0u8; CHUNK_SIZE];
    loop {
        let n = match read_ready(fd, &mut stdin, &mut buf, &shared.stop) {
            Got::Data(n) => n,
            Got::End => break,
            Got::Stop => return,
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            // SAFETY: data is a valid slice; `out` is the child's stdin pipe, which we own.
            let w = unsafe { libc::write(out, data.as_ptr().cast(), data.len()) };
            if w >= 0 {
                shared.bytes_in.fetch_add(w as u64, Ordering::Relaxed);
                data = &data[w as usize..];
                continue;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    if !ready(out, libc::POLLOUT, &shared.stop) {
                        return;
                    }
                }
                // EPIPE: the child closed its stdin; nothing more can be delivered.
                _ => return,
            }
        }
        if capture && tx.send(Msg::Input(buf[..n].to_vec())).is_err() {
            return;
        }
    }
    // EOF on our stdin: dropping `child_in` closes the child's stdin.
    drop(child_in);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{within, writer, Full};
    use sealcast_format::{decompress_frame, parse_event, scan, EventKind, FrameKind};
    use std::fs::File;
    use std::os::fd::FromRawFd;

    fn sh(script: &str) -> ChildCommand {
        let mut c = ChildCommand::new("/bin/sh");
        c.args = vec!["-c".into(), script.into()];
        c.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
        c
    }

    /// (code, exact bytes) of every event after the header, `b` folded into its event.
    fn events(file: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut text = Vec::new();
        for f in scan(file) {
            let f = f.unwrap();
            if f.kind == FrameKind::Data {
                decompress_frame(f.bytes, f.offset, &mut text).unwrap();
            }
        }
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for line in text
            .split(|&b| b == b'\n')
            .skip(1)
            .filter(|l| !l.is_empty())
        {
            let ev = parse_event(line).unwrap();
            if ev.kind == EventKind::Bytes {
                out.last_mut().unwrap().1 = ev.raw_bytes().unwrap();
            } else {
                out.push((ev.kind.code().to_string(), ev.data.into_bytes()));
            }
        }
        out
    }

    fn stream(ev: &[(String, Vec<u8>)], code: &str) -> Vec<u8> {
        ev.iter()
            .filter(|e| e.0 == code)
            .flat_map(|e| e.1.iter().copied())
            .collect()
    }

    /// A pipe: (read end, write end).
    fn pipe() -> (File, File) {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: fds is valid for two ints.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two fresh descriptors nothing else owns.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    /// A file holding `data`, positioned at its start (a pollable stdin).
    fn stdin_with(data: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        use std::io::Seek;
        f.rewind().unwrap();
        f
    }

    #[test]
    fn stdout_and_stderr_are_kept_apart_byte_exact() {
        let (out, relayed_out, relayed_err) = within(20, || {
            let script = "cat; printf 'err\\377\\n' >&2; printf 'out2'; exit 3";
            let s = PipeSession::spawn(&sh(script), None).unwrap();
            let mut ro = Vec::new();
            let mut re = Vec::new();
            let o = s
                .run(
                    writer(Vec::new()).unwrap(),
                    &PipeOptions::default(),
                    stdin_with(b"in\x00put\n"),
                    &mut ro,
                    &mut re,
                )
                .unwrap();
            (o, ro, re)
        });
        assert_eq!(out.exit_status, Some(3));
        assert_eq!(out.exit_code(), 3);
        assert_eq!(relayed_out, b"in\x00put\nout2");
        assert_eq!(relayed_err, b"err\xff\n");
        let ev = events(&out.sink);
        assert_eq!(stream(&ev, "o"), relayed_out);
        assert_eq!(stream(&ev, "e"), relayed_err);
        assert_eq!(stream(&ev, "i"), b"", "stdin is not recorded by default");
        assert_eq!(ev.last().unwrap(), &("x".to_string(), b"3".to_vec()));
        assert_eq!(
            out.counts.bytes_in + out.counts.bytes_out + out.counts.bytes_err,
            7 + 11 + 5
        );
    }

    #[test]
    fn a_command_ending_on_its_own_as_the_client_leaves_keeps_its_status() {
        // Like sftp-server at the end of a batch: the client closes stdin and stops reading
        // at once; the command exits a moment later by itself and must not be hung up.
        let (r, w) = pipe();
        let watched = w.as_raw_fd();
        drop(r);
        let s = PipeSession::spawn(&sh("cat >/dev/null; sleep 0.3; exit 7"), None).unwrap();
        let opts = PipeOptions {
            watch_hangup: Some(watched),
            ..PipeOptions::default()
        };
        let out = within(20, move || {
            s.run(
                writer(Vec::new()).unwrap(),
                &opts,
                stdin_with(b""),
                w,
                Vec::new(),
            )
            .unwrap()
        });
        assert_eq!(out.exit_status, Some(7));
    }

    #[test]
    fn a_silent_command_is_hung_up_when_the_stdout_reader_goes_away() {
        let (r, w) = pipe();
        let watched = w.as_raw_fd();
        let started = std::time::Instant::now();
        let handle = std::thread::spawn(move || {
            let s = PipeSession::spawn(&sh("exec sleep 60"), None).unwrap();
            let opts = PipeOptions {
                watch_hangup: Some(watched),
                ..PipeOptions::default()
            };
            s.run(
                writer(Vec::new()).unwrap(),
                &opts,
                stdin_with(b""),
                w,
                Vec::new(),
            )
            .unwrap()
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(r); // the client side goes away; the command never writes
        let out = within(20, move || handle.join().unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "hang-up took {:?}",
            started.elapsed()
        );
        assert_eq!(out.exit_status, Some(128 + libc::SIGHUP));
        let ev = events(&out.sink);
        assert_eq!(
            ev.last().map(|e| e.0.as_str()),
            Some("x"),
            "recording must be closed with its exit"
        );
    }

    #[test]
    fn count_only_records_no_payload_and_a_summary() {
        let out = within(20, || {
            let s = PipeSession::spawn(&sh("cat; echo oops >&2"), None).unwrap();
            let opts = PipeOptions {
                payload: Payload::CountOnly,
                capture_input: true,
                summary_policy: Some("metadata".into()),
                watch_hangup: None,
            };
            s.run(
                writer(Vec::new()).unwrap(),
                &opts,
                stdin_with(&[7u8; 100_000]),
                io::sink(),
                io::sink(),
            )
            .unwrap()
        });
        let c = out.counts;
        assert_eq!(
            (c.bytes_in, c.bytes_out, c.bytes_err),
            (100_000, 100_000, 5)
        );
        let ev = events(&out.sink);
        let codes: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(codes, ["s", "x"]);
        assert!(String::from_utf8_lossy(&ev[0].1).starts_with(
            r#"{"policy":"metadata","bytes_in":100000,"bytes_out":100000,"bytes_err":5,"duration_us":"#
        ));
    }

    #[test]
    fn a_child_that_stops_reading_does_not_block_the_end() {
        // The child never reads stdin; the stdin pump must not hang the session.
        let out = within(20, || {
            let s = PipeSession::spawn(&sh("exec 0<&-; echo done"), None).unwrap();
            let (r, w) = pipe();
            let o = s
                .run(
                    writer(Vec::new()).unwrap(),
                    &PipeOptions::default(),
                    r,
                    io::sink(),
                    io::sink(),
                )
                .unwrap();
            drop(w);
            o
        });
        assert_eq!(out.exit_status, Some(0));
    }

    #[test]
    fn a_recording_error_hangs_up_the_child_and_fails() {
        let err = within(30, || {
            let s =
                PipeSession::spawn(&sh("while :; do echo filling the disk; done"), None).unwrap();
            let pid = s.pid() as libc::pid_t;
            let w = writer(Full {
                data: Vec::new(),
                limit: 16 * 1024,
            })
            .unwrap();
            let err = s
                .run(
                    w,
                    &PipeOptions::default(),
                    File::open("/dev/null").unwrap(),
                    io::sink(),
                    io::sink(),
                )
                .unwrap_err();
            // SAFETY: signal 0 only checks for existence.
            let alive = unsafe { libc::kill(pid, 0) } == 0;
            assert!(!alive, "child {pid} still alive");
            err
        });
        assert_eq!(
            err.kind(),
            io::Error::from_raw_os_error(libc::ENOSPC).kind()
        );
        assert!(
            err.to_string().starts_with("writing the recording"),
            "{err}"
        );
    }
}
