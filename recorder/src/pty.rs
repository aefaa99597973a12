//! PTY capture: spawn the session in a new PTY (portable-pty) and relay it through a
//! [`SealedWriter`].
//!
//! A thin I/O shell around the writer core, in two steps:
//!
//! 1. [`PtySession::spawn`] opens a PTY of the requested size, starts the command on its slave
//!    side (a new session whose controlling terminal is the PTY) and drops the parent's slave
//!    descriptor, so the master sees EOF/EIO once the child's side is closed.
//! 2. [`PtySession::run`] relays until the session ends and closes the recording with its
//!    final checkpoint.
//!
//! Threads during [`PtySession::run`]:
//!
//! - **output pump**: reads the PTY master (non-blocking, into 64 KiB buffers that it fills
//!   with as many reads as data is ready for), writes each filled buffer to the local stdout
//!   with one `write`, then hands the same buffer (no copy) over a bounded channel to the
//!   writer loop, which sends it back for reuse. The bounded channel is the backpressure: when
//!   the recording falls behind, the pump blocks, the PTY fills, and the child blocks.
//! - **input pump**: waits (`poll`) for local stdin, writes it to the PTY master and, with
//!   input capture, sends a copy to the writer loop. When stdin is not a terminal and reaches
//!   EOF it writes the PTY's EOF character (`^D`), and again whenever the child has read all
//!   pending input, so `cat`-like children and readline shells alike see end of input.
//! - **signals**: `SIGWINCH` (only when stdin is a terminal), `SIGTERM`, `SIGHUP`, `SIGINT`
//!   delivered to the recorder become channel messages.
//! - **waiter** (detached): `wait`s for the child and reports its status.
//! - the **calling thread** runs the writer loop: it alone owns the [`SealedWriter`], records
//!   `o`/`i`/`r` events in channel order, calls [`SealedWriter::tick`] at least once a second,
//!   and finishes the recording.
//!
//! The session ends when the child has exited and the PTY is drained (EOF/EIO, or
//! [`DRAIN_IDLE`]/[`DRAIN_MAX`] when a background process keeps it open); or, after a recorder
//! signal or a failed stdout, once the hung-up child is gone (at most [`HANGUP_GRACE`] plus a
//! second). The recording always gets its final checkpoint, except after an error writing it.
//!
//! There are no hotkeys: nothing the user types pauses or stops the recording.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use signal_hook::iterator::Signals;

use crate::spawn::{ChildCommand, ForkHook, SessionMode};
use crate::sys::{is_tty, login_shell, terminal_size};
use crate::wake::{read_ready, set_nonblocking, wait_ready, Got, Ready, StopPipe};
use crate::{Clock, Durable, SealedWriter};

/// Size of one relay buffer, bytes. The output pump fills a buffer with as many PTY reads as
/// data is ready for before relaying it, so a busy session costs one stdout `write` and one
/// `o` event per 64 KiB rather than per PTY read (≤ 4 KiB on Linux).
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Relay a partly filled buffer once less than this much room is left, bytes.
const MIN_ROOM: usize = 4096;
/// Messages the channel to the writer loop holds before the pumps block (bounds memory to
/// about `CHANNEL_DEPTH + 2` buffers of [`CHUNK_SIZE`]).
const CHANNEL_DEPTH: usize = 8;
/// The writer loop calls [`SealedWriter::tick`] at least this often.
const TICK: Duration = Duration::from_millis(500);
/// How long the pumps sleep in `poll` before re-checking shared state, ms.
const POLL_MS: i32 = 200;
/// After the child exited, stop draining the PTY once no output arrived for this long (a
/// background process may keep the PTY open).
pub const DRAIN_IDLE: Duration = Duration::from_secs(2);
/// After the child exited, stop draining the PTY after this long even if output keeps coming.
pub const DRAIN_MAX: Duration = Duration::from_secs(10);
/// After forwarding `SIGHUP` on a recorder signal, wait this long for the child to exit before
/// sending `SIGKILL` to its process group.
pub const HANGUP_GRACE: Duration = Duration::from_secs(3);
/// After `SIGKILL`, wait this long for the child's exit status before closing the recording
/// without one.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// What to run and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// Program and arguments (`argv`, resolved through the child's `PATH`). Empty: the user's
    /// login shell ([`crate::sys::login_shell`]) run as a login shell (`argv[0]` = `-bash`).
    pub command: Vec<String>,
    /// Working directory of the child. `None`: the recorder's current directory.
    pub cwd: Option<PathBuf>,
    /// Variables added to (or replacing in) the inherited environment, applied last.
    pub env: Vec<(OsString, OsString)>,
    /// `TERM` for the child (see [`crate::sys::default_term`]).
    pub term: String,
    /// Initial PTY width, columns (see [`crate::sys::initial_size`]).
    pub cols: u16,
    /// Initial PTY height, rows.
    pub rows: u16,
    /// Relay local input as `i` events too. Off by default: input contains passwords.
    pub capture_input: bool,
    /// Exported to the child as `SEALCAST_SESSION` when non-empty, so nested shells and login
    /// hooks can tell they are being recorded.
    pub session_id: String,
}

impl SessionSpec {
    /// A spec for `command` (empty: login shell) with `TERM` from
    /// [`crate::sys::default_term`], 80 × 24, the current directory, no input capture and no
    /// session id.
    pub fn new(command: Vec<String>) -> SessionSpec {
        SessionSpec {
            command,
            cwd: None,
            env: Vec::new(),
            term: crate::sys::default_term(),
            cols: 80,
            rows: 24,
            capture_input: false,
            session_id: String::new(),
        }
    }
}

/// How a session ended, returned by [`PtySession::run`].
#[derive(Debug)]
pub struct SessionOutcome<W> {
    /// The command's exit status as recorded in the `x` event: its exit code (0–255), or
    /// `128 + N` when killed by signal N. `None` when the recorder closed the recording without
    /// learning it (the child outlived the recorder's grace periods after a recorder signal).
    pub exit_status: Option<i32>,
    /// The signal (`SIGTERM`, `SIGHUP` or `SIGINT`) that made the recorder end the session,
    /// if one did.
    pub signal: Option<i32>,
    /// The recording sink, returned by [`SealedWriter::finish`] (synced).
    pub sink: W,
    /// The final checkpoint note: the seal receipt to store beside the recording (SPEC §5).
    pub receipt: Vec<u8>,
    /// Lines in the closed recording, header included (the receipt's `lines`).
    pub lines: u64,
    /// The first error writing to the local stdout, after which output was no longer relayed
    /// there and the session was hung up (the recording continued until the child ended).
    pub stdout_error: Option<io::Error>,
}

/// The exit code a recorder process returns for a session (PTY or pipes): the child's exit
/// status, else `128 + signal` for the recorder signal that ended the session, else 1;
/// clamped to 0–255.
pub(crate) fn exit_code(status: Option<i32>, signal: Option<i32>) -> u8 {
    status
        .or(signal.map(|s| 128 + s))
        .unwrap_or(1)
        .clamp(0, 255) as u8
}

impl<W> SessionOutcome<W> {
    /// The exit code a recorder process should return: [`Self::exit_status`], else
    /// `128 + signal` for the recorder signal that ended the session, else 1; clamped to
    /// 0–255.
    pub fn exit_code(&self) -> u8 {
        exit_code(self.exit_status, self.signal)
    }
}

/// Puts a terminal into raw mode (`cfmakeraw`) and restores its previous settings when
/// dropped, on every exit path including errors and unwinding panics.
#[derive(Debug)]
pub struct RawModeGuard {
    fd: OwnedFd,
    saved: Termios,
}

impl RawModeGuard {
    /// Switch the terminal on `fd` to raw mode. Keeps its own duplicate of `fd` for the
    /// restore.
    ///
    /// # Errors
    /// `dup`, `tcgetattr` or `tcsetattr` errors (`ENOTTY` when `fd` is not a terminal).
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<RawModeGuard> {
        let fd = fd.try_clone_to_owned()?;
        let saved = tcgetattr(&fd).map_err(io::Error::from)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&fd, SetArg::TCSANOW, &raw).map_err(io::Error::from)?;
        Ok(RawModeGuard { fd, saved })
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// A command running in a new PTY, not yet relayed. Dropping it without [`PtySession::run`]
/// hangs up the child (`SIGHUP` to its process group).
pub struct PtySession {
    master: Box<dyn MasterPty + Send>,
    slave_path: Option<PathBuf>,
    child: Option<Box<dyn Child + Send + Sync>>,
    pid: Option<u32>,
    signals: Option<Signals>,
    cols: u16,
    rows: u16,
    capture_input: bool,
}

impl std::fmt::Debug for PtySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtySession")
            .field("pid", &self.pid)
            .field("size", &(self.cols, self.rows))
            .finish()
    }
}

/// portable-pty reports `anyhow` errors; keep their whole chain in the message.
fn pty_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("{e:#}"))
}

/// What [`PtySession::run`] sets up before relaying: the local terminal (a duplicate of
/// stdin, when it is one) and its raw-mode guard, the master descriptor, the shared state.
type Setup = (Option<OwnedFd>, Option<RawModeGuard>, RawFd, Arc<Shared>);

/// Messages to the writer loop.
enum Msg {
    /// `buf[..len]` was read from the PTY.
    Output { buf: Vec<u8>, len: usize },
    /// Bytes typed into the PTY (input capture only).
    Input(Vec<u8>),
    /// The output pump stopped: EOF/EIO on the master, or the post-exit drain gave up.
    OutputDone,
    /// The child exited with this status (`None` if `wait` failed).
    ChildExited(Option<i32>),
    /// `SIGWINCH` on the recorder.
    Winch,
    /// `SIGTERM`/`SIGHUP`/`SIGINT` on the recorder.
    Signal(i32),
    /// Writing to the local stdout failed: the viewer is gone, like a terminal hangup.
    StdoutGone,
}

/// State shared between the writer loop and the pumps.
struct Shared {
    /// Set when the pumps must stop; wakes them from `poll`.
    stop: StopPipe,
    /// Set by the waiter thread once the child has been reaped.
    child_exited: AtomicBool,
    stdout_error: Mutex<Option<io::Error>>,
}

impl Shared {
    fn new() -> io::Result<Shared> {
        Ok(Shared {
            stop: StopPipe::new()?,
            child_exited: AtomicBool::new(false),
            stdout_error: Mutex::new(None),
        })
    }
}

/// Write all of `data` to the (non-blocking) PTY master, waiting for room. Returns false when
/// stopped or on a write error (the child side is gone).
fn write_master(master: RawFd, mut data: &[u8], shared: &Shared) -> bool {
    while !data.is_empty() {
        // SAFETY: data is a valid slice.
        let n = unsafe { libc::write(master, data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            data = &data[n as usize..];
            continue;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                if let Ready::Stop = wait_ready(master, libc::POLLOUT, &shared.stop, -1) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// The PTY's EOF character (`VEOF`, normally `^D`).
fn veof(master: RawFd) -> u8 {
    // SAFETY: all-zero is a valid termios; tcgetattr writes at most one.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(master, &mut t) } == 0 && t.c_cc[libc::VEOF] != 0 {
        t.c_cc[libc::VEOF]
    } else {
        0x04
    }
}

/// Exit status as a shell reports it: the code, or 128 + signal.
fn status_code(st: std::process::ExitStatus) -> Option<i32> {
    st.code().or_else(|| st.signal().map(|s| 128 + s))
}

/// Signal number whose `strsignal(3)` text is `name` (portable-pty reports signals by name).
fn signal_number(name: &str) -> Option<i32> {
    (1..65).find(|&n| {
        // SAFETY: strsignal returns a pointer to a static or thread-local string (or null).
        let p = unsafe { libc::strsignal(n) };
        !p.is_null() && unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy() == name
    })
}

fn wait_child(mut child: Box<dyn Child + Send + Sync>) -> Option<i32> {
    // portable-pty's Unix children are std children: their status keeps the signal number.
    let dynchild: &mut dyn Child = &mut *child;
    if let Some(c) = dynchild.downcast_mut::<std::process::Child>() {
        return c.wait().ok().and_then(status_code);
    }
    let st = child.wait().ok()?;
    match st.signal() {
        Some(name) => signal_number(name).map(|n| 128 + n),
        None => Some(st.exit_code() as i32),
    }
}

/// Send `sig` to the child's process group (the child is a session leader, so its pgid is its
/// pid) and to the PTY's foreground process group, unless the child has been reaped.
fn signal_child(pid: Option<u32>, master: &dyn MasterPty, shared: Option<&Shared>, sig: i32) {
    if shared.is_some_and(|s| s.child_exited.load(Ordering::SeqCst)) {
        return;
    }
    let pid = pid.map(|p| p as libc::pid_t).filter(|&p| p > 1);
    // kill(2), or the installed signal helper when the group runs as a user this process
    // gave up (crate::spawn::GroupSignaller).
    if let Some(p) = pid {
        crate::spawn::kill_group(p, sig);
    }
    if let Some(fg) = master.process_group_leader().filter(|&g| g > 1) {
        if Some(fg) != pid {
            crate::spawn::kill_group(fg, sig);
        }
    }
}

impl PtySession {
    /// Open a PTY of `spec.cols` × `spec.rows`, start `spec.command` in it and register the
    /// recorder's signal handlers (`SIGTERM`, `SIGHUP`, `SIGINT`; `SIGWINCH` is added by
    /// [`PtySession::run`] when stdin is a terminal). The handlers stay installed for the life
    /// of the process: afterwards these signals no longer terminate it.
    ///
    /// The child gets `TERM = spec.term`, `SEALCAST_SESSION = spec.session_id` (when
    /// non-empty), then `spec.env`, on top of the inherited environment.
    ///
    /// # Errors
    /// Opening the PTY, resolving or starting the command (`NotFound` for an unknown program
    /// is reported as an `Other` error whose message names it), or registering the signals.
    pub fn spawn(spec: &SessionSpec) -> io::Result<PtySession> {
        let signals = Signals::new([SIGTERM, SIGHUP, SIGINT])?;
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: spec.rows,
                cols: spec.cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(pty_err)?;
        let mut cmd = if spec.command.is_empty() {
            // portable-pty runs $SHELL from the builder's environment as a login shell
            // (argv[0] "-name").
            let mut c = CommandBuilder::new_default_prog();
            c.env("SHELL", login_shell());
            c
        } else {
            CommandBuilder::from_argv(spec.command.iter().map(OsString::from).collect())
        };
        // portable-pty defaults to $HOME; a recorder must not move the user.
        let cwd = match &spec.cwd {
            Some(d) => d.clone(),
            None => std::env::current_dir()?,
        };
        cmd.cwd(cwd);
        cmd.env("TERM", &spec.term);
        if !spec.session_id.is_empty() {
            cmd.env("SEALCAST_SESSION", &spec.session_id);
        } else {
            cmd.env_remove("SEALCAST_SESSION");
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).map_err(pty_err)?;
        // The parent must not hold the slave open, or the master never sees EOF.
        drop(pair.slave);
        let pid = child.process_id();
        let slave_path = pair.master.tty_name();
        Ok(PtySession {
            master: pair.master,
            slave_path,
            child: Some(child),
            pid,
            signals: Some(signals),
            cols: spec.cols,
            rows: spec.rows,
            capture_input: spec.capture_input,
        })
    }

    /// Open a PTY of `cols` × `rows` and start exactly `cmd` on it (see [`ChildCommand`]:
    /// program, `argv`, complete environment, directory, and an optional user switch in the
    /// child before `exec`), instead of a [`SessionSpec`] layered on the recorder's own
    /// environment. Signal handling as [`PtySession::spawn`].
    ///
    /// The PTY belongs to the process's effective uid when this is called (devpts gives the
    /// slave to its creator): a set-uid caller that wants the user to own their terminal, as
    /// sshd arranges, calls this with the user's id as its effective uid.
    ///
    /// With `on_forked`, the child waits before `exec` until that step has run in the
    /// recorder (see [`ForkHook`]).
    ///
    /// # Errors
    /// Opening the PTY or its slave, registering the signals, `on_forked`'s error, or
    /// starting the command (the message names the program).
    pub fn spawn_command(
        cmd: &ChildCommand,
        cols: u16,
        rows: u16,
        capture_input: bool,
        on_forked: Option<ForkHook>,
    ) -> io::Result<PtySession> {
        let signals = Signals::new([SIGTERM, SIGHUP, SIGINT])?;
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(pty_err)?;
        let slave_path = pair
            .master
            .tty_name()
            .ok_or_else(|| io::Error::other("the PTY slave has no name"))?;
        // Our own descriptor of the slave (close-on-exec, not our controlling terminal): the
        // child's stdin, stdout and stderr.
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&slave_path)?;
        drop(pair.slave);
        // The command holding the slave descriptors is dropped inside: the master must see
        // EOF once the child's side is closed.
        let child = cmd
            .spawn_child(
                SessionMode::NewWithTty,
                |c| {
                    c.stdin(slave.try_clone()?)
                        .stdout(slave.try_clone()?)
                        .stderr(slave);
                    Ok(())
                },
                on_forked,
            )
            .map_err(|e| {
                io::Error::new(e.kind(), format!("starting {}: {e}", cmd.program.display()))
            })?;
        let pid = child.id();
        Ok(PtySession {
            master: pair.master,
            slave_path: Some(slave_path),
            child: Some(Box::new(child)),
            pid: Some(pid),
            signals: Some(signals),
            cols,
            rows,
            capture_input,
        })
    }

    /// Process id of the child (also its process group and session id).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Relay the session between `stdin`/`stdout` and the PTY, recording it with `writer`,
    /// until the child has exited and its output is drained; then close the recording with the
    /// `x` event and the final checkpoint ([`SealedWriter::finish`]).
    ///
    /// When `stdin` is a terminal it is put in raw mode for the session (restored on every
    /// exit path) and `SIGWINCH` resizes the PTY, recording an `r` event when the size changed.
    /// When it is not a terminal, its end is passed on as the PTY's EOF character, repeated
    /// whenever the child has read everything (pipe-like: every later read is EOF).
    /// `stdin` is polled on its descriptor, so it must not buffer internally beyond what it
    /// returns from each `read` (use a `File`, not `std::io::Stdin`); `stdout` receives every
    /// output chunk with one `write_all` and no flush, so it should be unbuffered too.
    ///
    /// On `SIGTERM`/`SIGHUP`/`SIGINT` to the recorder, or when writing to `stdout` fails
    /// (the viewer is gone), the child's process group gets `SIGHUP`, then `SIGKILL` after
    /// [`HANGUP_GRACE`]; the recording is closed either way.
    ///
    /// # Errors
    /// Setting up (raw mode, pipes, threads: the child is hung up and the recording closed
    /// with its final checkpoint), or the first error writing the recording (disk full…).
    /// On a recording error the child is hung up and the recording is left as written
    /// (verifiable up to its last checkpoint), without a final checkpoint that could claim
    /// lines not fully on disk.
    pub fn run<W, C, I, O>(
        mut self,
        mut writer: SealedWriter<W, C>,
        stdin: I,
        stdout: O,
    ) -> io::Result<SessionOutcome<W>>
    where
        W: Durable,
        C: Clock,
        I: Read + AsFd + Send,
        O: Write + Send,
    {
        // Both are only taken here, and `run` consumes the session.
        let (Some(child), Some(mut signals)) = (self.child.take(), self.signals.take()) else {
            return Err(io::Error::other("PTY session already run"));
        };
        let stdin_tty = is_tty(stdin.as_fd());
        let (tx, rx) = mpsc::sync_channel::<Msg>(CHANNEL_DEPTH);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let setup = || -> io::Result<Setup> {
            let master_fd = self
                .master
                .as_raw_fd()
                .ok_or_else(|| io::Error::other("PTY master has no file descriptor"))?;
            set_nonblocking(master_fd)?;
            let shared = Arc::new(Shared::new()?);
            let (tty, raw_guard) = if stdin_tty {
                signals.add_signal(SIGWINCH)?;
                let tty = stdin.as_fd().try_clone_to_owned()?;
                let raw = RawModeGuard::new(tty.as_fd())?;
                (Some(tty), Some(raw))
            } else {
                (None, None)
            };
            let tx = tx.clone();
            let waiter_shared = shared.clone();
            thread::Builder::new()
                .name("sealcast-wait".into())
                .spawn(move || {
                    let st = wait_child(child);
                    waiter_shared.child_exited.store(true, Ordering::SeqCst);
                    let _ = tx.send(Msg::ChildExited(st));
                })?;
            Ok((tty, raw_guard, master_fd, shared))
        };
        let (tty, raw_guard, master_fd, shared) = match setup() {
            Ok(v) => v,
            Err(e) => {
                // Nothing was relayed: end the child, still close the recording.
                signal_child(self.pid, &*self.master, None, libc::SIGHUP);
                let _ = writer.finish(None);
                return Err(io::Error::new(
                    e.kind(),
                    format!("setting up the session: {e}"),
                ));
            }
        };

        let sig_handle = signals.handle();
        let capture = self.capture_input;
        let slave_path = self.slave_path.as_deref();
        let mut state = LoopState {
            status: None,
            exited: false,
            output_done: false,
            signal: None,
            deadline: None,
            killed: false,
            size: (self.cols, self.rows),
        };
        let result = thread::scope(|s| -> Result<(), Failure> {
            let sh = &*shared;
            let mut handles = Vec::with_capacity(3);
            let mut result: Result<(), Failure> = Ok(());
            let out_tx = tx.clone();
            match thread::Builder::new()
                .name("sealcast-out".into())
                .spawn_scoped(s, move || {
                    pump_output(master_fd, sh, out_tx, free_rx, stdout)
                }) {
                Ok(h) => handles.push(h),
                Err(e) => result = Err(Failure::Setup(e)),
            }
            if result.is_ok() {
                let in_tx = tx.clone();
                match thread::Builder::new()
                    .name("sealcast-in".into())
                    .spawn_scoped(s, move || {
                        let eof = (!stdin_tty).then_some(slave_path);
                        pump_input(stdin, master_fd, eof, capture, sh, in_tx)
                    }) {
                    Ok(h) => handles.push(h),
                    Err(e) => result = Err(Failure::Setup(e)),
                }
            }
            if result.is_ok() {
                let sig_tx = tx.clone();
                match thread::Builder::new()
                    .name("sealcast-sig".into())
                    .spawn_scoped(s, move || {
                        for sig in signals.forever() {
                            let msg = if sig == SIGWINCH {
                                Msg::Winch
                            } else {
                                Msg::Signal(sig)
                            };
                            if sig_tx.send(msg).is_err() {
                                break;
                            }
                        }
                    }) {
                    Ok(h) => handles.push(h),
                    Err(e) => result = Err(Failure::Setup(e)),
                }
            }
            drop(tx);

            let mut lp = WriterLoop {
                writer: &mut writer,
                master: &*self.master,
                pid: self.pid,
                tty: tty.as_ref().map(|t| t.as_fd()),
                shared: sh,
                free_tx: &free_tx,
            };
            if result.is_ok() {
                result = lp.run(&rx, &mut state).map_err(Failure::Write);
            }
            if result.is_err() {
                signal_child(self.pid, &*self.master, Some(sh), libc::SIGHUP);
            }
            // Stop the pumps and the signal thread, still recording the data they deliver
            // (a pump may be blocked sending to the full channel).
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
                if !matches!(result, Err(Failure::Write(_))) {
                    if let Err(e) = lp.record_late(msg) {
                        result = Err(Failure::Write(e));
                    }
                }
            }
            result
        });
        drop(raw_guard);
        match result {
            Ok(()) => {}
            Err(Failure::Write(e)) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("writing the recording: {e}"),
                ))
            }
            Err(Failure::Setup(e)) => {
                let _ = writer.finish(state.status);
                return Err(io::Error::new(
                    e.kind(),
                    format!("setting up the session: {e}"),
                ));
            }
        }
        let (sink, receipt) = writer
            .finish(state.status)
            .map_err(|e| io::Error::new(e.kind(), format!("closing the recording: {e}")))?;
        let lines = note_field(&receipt, "lines")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let stdout_error = shared.stdout_error.lock().ok().and_then(|mut e| e.take());
        Ok(SessionOutcome {
            exit_status: state.status,
            signal: state.signal,
            sink,
            receipt,
            lines,
            stdout_error,
        })
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if self.child.is_some() {
            signal_child(self.pid, &*self.master, None, libc::SIGHUP);
        }
    }
}

/// Why the relay stopped early.
enum Failure {
    /// Starting a relay thread failed: the recording is still sound and gets closed.
    Setup(io::Error),
    /// Writing the recording failed: it is left without a final checkpoint.
    Write(io::Error),
}

/// Value of `field` in a checkpoint note (`lines 42` → `42`).
fn note_field<'a>(note: &'a [u8], field: &str) -> Option<&'a str> {
    std::str::from_utf8(note)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(' '))
}

struct LoopState {
    status: Option<i32>,
    exited: bool,
    output_done: bool,
    signal: Option<i32>,
    deadline: Option<Instant>,
    killed: bool,
    size: (u16, u16),
}

struct WriterLoop<'a, W: Durable, C: Clock> {
    writer: &'a mut SealedWriter<W, C>,
    master: &'a dyn MasterPty,
    pid: Option<u32>,
    tty: Option<BorrowedFd<'a>>,
    shared: &'a Shared,
    free_tx: &'a Sender<Vec<u8>>,
}

impl<W: Durable, C: Clock> WriterLoop<'_, W, C> {
    fn run(&mut self, rx: &Receiver<Msg>, st: &mut LoopState) -> io::Result<()> {
        let mut last_tick = Instant::now();
        loop {
            if st.exited && st.output_done {
                return Ok(());
            }
            let now = Instant::now();
            if let Some(d) = st.deadline {
                if now >= d {
                    if st.exited || st.killed {
                        return Ok(());
                    }
                    signal_child(self.pid, self.master, Some(self.shared), libc::SIGKILL);
                    st.killed = true;
                    st.deadline = Some(now + KILL_GRACE);
                }
            }
            let mut wait = TICK.saturating_sub(last_tick.elapsed());
            if let Some(d) = st.deadline {
                wait = wait.min(d.saturating_duration_since(now));
            }
            match rx.recv_timeout(wait) {
                Ok(msg) => self.handle(msg, st)?,
                Err(RecvTimeoutError::Timeout) => {}
                // Every sender is gone: nothing more can happen.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            if last_tick.elapsed() >= TICK {
                self.writer.tick()?;
                last_tick = Instant::now();
            }
        }
    }

    fn handle(&mut self, msg: Msg, st: &mut LoopState) -> io::Result<()> {
        match msg {
            Msg::Output { buf, len } => {
                let r = self.writer.output(&buf[..len]);
                let _ = self.free_tx.send(buf);
                r?;
            }
            Msg::Input(bytes) => self.writer.input(&bytes)?,
            Msg::OutputDone => st.output_done = true,
            Msg::ChildExited(status) => {
                st.exited = true;
                st.status = status;
            }
            Msg::Winch => {
                let Some(size) = self.tty.and_then(terminal_size) else {
                    return Ok(());
                };
                if size != st.size {
                    st.size = size;
                    // Record first, then resize: the child's redraw follows the `r` event.
                    self.writer.resize(size.0, size.1)?;
                    let _ = self.master.resize(PtySize {
                        cols: size.0,
                        rows: size.1,
                        pixel_width: 0,
                        pixel_height: 0,
                    });
                }
            }
            Msg::Signal(sig) => {
                if st.signal.is_none() {
                    st.signal = Some(sig);
                    self.hang_up(st);
                }
            }
            Msg::StdoutGone => self.hang_up(st),
        }
        Ok(())
    }

    /// End the session from our side: `SIGHUP` to the child now, `SIGKILL` after
    /// [`HANGUP_GRACE`] (see [`WriterLoop::run`]). Only the first call acts.
    fn hang_up(&mut self, st: &mut LoopState) {
        if st.deadline.is_none() {
            signal_child(self.pid, self.master, Some(self.shared), libc::SIGHUP);
            st.deadline = Some(Instant::now() + HANGUP_GRACE);
        }
    }

    /// A message that arrived while the pumps were being stopped: keep its data.
    fn record_late(&mut self, msg: Msg) -> io::Result<()> {
        match msg {
            Msg::Output { buf, len } => self.writer.output(&buf[..len]),
            Msg::Input(bytes) => self.writer.input(&bytes),
            _ => Ok(()),
        }
    }
}

/// Take a recycled relay buffer, or allocate one (bounded by the channel depth).
fn take_buf(free: &Receiver<Vec<u8>>) -> Vec<u8> {
    free.try_recv().unwrap_or_else(|_| vec![0; CHUNK_SIZE])
}

/// The output pump: PTY master → stdout and the writer loop.
fn pump_output<O: Write>(
    master: RawFd,
    shared: &Shared,
    tx: SyncSender<Msg>,
    free: Receiver<Vec<u8>>,
    mut stdout: O,
) {
    let mut buf = take_buf(&free);
    let mut filled = 0;
    let mut stdout_ok = true;
    let mut last_data = Instant::now();
    let mut exited_at: Option<Instant> = None;
    // Whether the post-exit drain should give up now.
    let mut drain_over = |last_data: Instant| -> bool {
        if !shared.child_exited.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        let at = *exited_at.get_or_insert(now);
        now.duration_since(at) >= DRAIN_MAX || now.duration_since(last_data.max(at)) >= DRAIN_IDLE
    };
    loop {
        // What to do after relaying the buffer: keep going, report the end of output, or
        // just stop (the writer loop asked).
        let mut end = End::No;
        if shared.stop.stopping() {
            end = End::Stop;
        } else {
            // SAFETY: buf[filled..] is valid writable memory of the given length.
            let n = unsafe {
                libc::read(
                    master,
                    buf[filled..].as_mut_ptr().cast(),
                    CHUNK_SIZE - filled,
                )
            };
            if n > 0 {
                filled += n as usize;
                last_data = Instant::now();
                if CHUNK_SIZE - filled >= MIN_ROOM {
                    continue; // more may be ready: fill the buffer before relaying
                }
            } else if n == 0 {
                end = End::Eof;
            } else {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) if filled == 0 => {
                        match wait_ready(master, libc::POLLIN, &shared.stop, POLL_MS) {
                            Ready::Stop => end = End::Stop,
                            Ready::Fd => continue,
                            Ready::Timeout if drain_over(last_data) => end = End::Eof,
                            Ready::Timeout => continue,
                        }
                    }
                    Some(libc::EAGAIN) => {} // nothing more ready: relay what we have
                    // EIO: the last slave descriptor closed (Linux). Anything else: give up.
                    _ => end = End::Eof,
                }
            }
        }
        if filled > 0 {
            if stdout_ok {
                if let Err(e) = stdout.write_all(&buf[..filled]) {
                    stdout_ok = false;
                    if let Ok(mut slot) = shared.stdout_error.lock() {
                        *slot = Some(e);
                    }
                    if tx.send(Msg::StdoutGone).is_err() {
                        return;
                    }
                }
            }
            let full = std::mem::replace(&mut buf, take_buf(&free));
            if tx
                .send(Msg::Output {
                    buf: full,
                    len: filled,
                })
                .is_err()
            {
                return;
            }
            filled = 0;
            if matches!(end, End::No) && drain_over(last_data) {
                end = End::Eof;
            }
        }
        match end {
            End::No => {}
            End::Eof => {
                let _ = tx.send(Msg::OutputDone);
                return;
            }
            End::Stop => return,
        }
    }
}

enum End {
    No,
    Eof,
    Stop,
}

/// The input pump: local stdin → PTY master (and the writer loop with input capture).
///
/// `eof`: `None` when stdin is a terminal (its end is a hangup, not passed on); else the
/// slave's path, for [`deliver_eof`].
fn pump_input<I: Read + AsFd>(
    mut stdin: I,
    master: RawFd,
    eof: Option<Option<&Path>>,
    capture: bool,
    shared: &Shared,
    tx: SyncSender<Msg>,
) {
    let fd = stdin.as_fd().as_raw_fd();
    let mut buf = vec![0u8; CHUNK_SIZE];
    loop {
        let n = match read_ready(fd, &mut stdin, &mut buf, &shared.stop) {
            Got::Data(n) => n,
            Got::End => break,
            Got::Stop => return,
        };
        if !write_master(master, &buf[..n], shared) {
            return;
        }
        if capture && tx.send(Msg::Input(buf[..n].to_vec())).is_err() {
            return;
        }
    }
    if let Some(slave) = eof {
        deliver_eof(master, slave, shared);
    }
}

/// How often [`deliver_eof`] checks whether the child wants more input.
const EOF_POLL_MS: i32 = 100;

/// Pass the end of (non-terminal) stdin on to the child with pipe-like semantics: every read
/// after the end returns EOF. Writes the PTY's EOF character (`VEOF`, `^D`) now, and again
/// whenever the child has consumed all pending input (the slave is not readable) while it
/// is alive, until the session stops.
///
/// One `^D` is not enough: after a partial line it only ends the line, and an EOF queued while
/// the line discipline is canonical turns into a NUL byte if the child then switches to
/// non-canonical mode (readline does at every prompt), so an interactive shell fed by a pipe
/// would wait forever. A child that is not reading leaves the EOF pending, so they never pile
/// up. Without a slave path only the first `^D` is sent.
fn deliver_eof(master: RawFd, slave: Option<&Path>, shared: &Shared) {
    let eof = [veof(master)];
    if !write_master(master, &eof, shared) {
        return;
    }
    let Some(slave) = slave else { return };
    loop {
        // Sleep, waking at once for stop.
        if let Ready::Stop = wait_ready(-1, 0, &shared.stop, EOF_POLL_MS) {
            return;
        }
        if shared.stop.stopping() || shared.child_exited.load(Ordering::SeqCst) {
            return;
        }
        if slave_readable(slave) == Some(false) && !write_master(master, &eof, shared) {
            return;
        }
    }
}

/// Whether the PTY slave at `path` has input the child has not read yet (in canonical mode a
/// pending EOF counts). Opens the slave briefly (`O_NOCTTY`); `None` if that fails.
fn slave_readable(path: &Path) -> Option<bool> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    (n >= 0).then_some(n > 0 && p.revents & libc::POLLIN != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{within, writer, Full};
    use std::fs::File;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runs_a_command_into_a_memory_sink() {
        let out = within(20, || {
            let mut spec = SessionSpec::new(argv(&["sh", "-c", "echo out; exit 3"]));
            spec.session_id = "abc".into();
            let pty = PtySession::spawn(&spec).unwrap();
            assert!(pty.pid().is_some());
            let w = writer(Vec::new()).unwrap();
            let relayed = Vec::new();
            pty.run(w, File::open("/dev/null").unwrap(), relayed)
                .unwrap()
        });
        assert_eq!(out.exit_status, Some(3));
        assert_eq!(out.exit_code(), 3);
        assert_eq!(out.signal, None);
        assert!(out.stdout_error.is_none());
        // header, o, x
        assert_eq!(out.lines, 3);
        let note = String::from_utf8(out.receipt).unwrap();
        assert!(note.contains("\nfinal 1\n"), "{note}");
        assert!(!out.sink.is_empty());
    }

    #[test]
    fn a_full_disk_ends_the_session_with_an_error() {
        let err = within(30, || {
            let spec = SessionSpec::new(argv(&[
                "sh",
                "-c",
                "while :; do echo filling the disk; done",
            ]));
            let pty = PtySession::spawn(&spec).unwrap();
            let pid = pty.pid().unwrap() as libc::pid_t;
            let w = writer(Full {
                data: Vec::new(),
                limit: 16 * 1024,
            })
            .unwrap();
            let err = pty
                .run(w, File::open("/dev/null").unwrap(), io::sink())
                .unwrap_err();
            // The session ended: the child was hung up (and reaped by the waiter).
            let gone = (0..200).any(|_| {
                thread::sleep(Duration::from_millis(50));
                // SAFETY: signal 0 only checks for existence.
                let alive = unsafe { libc::kill(pid, 0) } == 0;
                !alive
            });
            assert!(gone, "child {pid} still alive");
            err
        });
        assert_eq!(err.raw_os_error(), None); // re-wrapped with context…
        assert_eq!(
            err.kind(),
            io::Error::from_raw_os_error(libc::ENOSPC).kind()
        );
        assert!(
            err.to_string().starts_with("writing the recording"),
            "{err}"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(signal_number("Terminated"), Some(libc::SIGTERM));
        assert_eq!(signal_number("no such signal"), None);
        assert_eq!(note_field(b"a 1\nlines 42\nb 2\n", "lines"), Some("42"));
        assert_eq!(note_field(b"linesx 1\n", "lines"), None);
        let o = SessionOutcome {
            exit_status: None,
            signal: Some(libc::SIGTERM),
            sink: (),
            receipt: Vec::new(),
            lines: 0,
            stdout_error: None,
        };
        assert_eq!(o.exit_code(), 143);
    }
}
