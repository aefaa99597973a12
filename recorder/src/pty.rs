//! PTY capture: spawn the session in a new PTY (portable-pty) and relay it through the
//! relay engine ([`crate::relay`]) into a [`SealedWriter`].
//!
//! A thin I/O shell around the engine, in two steps:
//!
//! 1. [`PtySession::spawn`] opens a PTY of the requested size, starts the command on its slave
//!    side (a new session whose controlling terminal is the PTY) and drops the parent's slave
//!    descriptor, so the master sees EOF/EIO once the child's side is closed.
//! 2. [`PtySession::run`] relays until the session ends and closes the recording with its
//!    final checkpoint.
//!
//! Threads during [`PtySession::run`] (the sources of the engine's messages):
//!
//! - **output pump**: reads the PTY master (non-blocking, into 64 KiB buffers that it fills
//!   with as many reads as data is ready for), writes each filled buffer to the local stdout
//!   with one `write`, then hands the same buffer (no copy) over the bounded channel to the
//!   writer loop, which sends it back for reuse. When the recording falls behind, the pump
//!   blocks, the PTY fills, and the child blocks.
//! - **input pump**: waits (`poll`) for local stdin, writes it to the PTY master and, with
//!   input capture, sends a copy to the writer loop. When stdin is not a terminal and reaches
//!   EOF it writes the PTY's EOF character (`^D`), and again whenever the child has read all
//!   pending input, so `cat`-like children and readline shells alike see end of input.
//! - **signals**: `SIGWINCH` (only when stdin is a terminal), `SIGTERM`, `SIGHUP`, `SIGINT`
//!   delivered to the recorder become channel messages.
//! - **waiter** (detached): `wait`s for the child and reports its status.
//! - the **calling thread** runs the engine's writer loop ([`crate::relay`]), which records
//!   `o`/`i`/`r` events in channel order, calls the session's [`Observer`], and finishes the
//!   recording.
//!
//! The session ends when the child has exited and the PTY is drained (EOF/EIO, or
//! [`DRAIN_IDLE`]/[`DRAIN_MAX`] when a background process keeps it open); or by the engine's
//! hang-up policy (a recorder signal, a failed stdout, a recording error: `SIGHUP` to the
//! child's process group and the PTY's foreground group, `SIGKILL` after [`HANGUP_GRACE`]).
//! The recording always gets its final checkpoint, except after an error writing it.
//!
//! There are no hotkeys: nothing the user types pauses or stops the recording.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use signal_hook::iterator::Signals;

use crate::relay::{
    forward_signals, spawn_in, status_code, Buffers, Control, EventSender, Msg, NoObserver,
    Observer, Outcome, Policy, Relay, Shared, Stream, CHANNEL_DEPTH,
};
use crate::spawn::{ChildCommand, ForkHook, SessionMode};
use crate::sys::{is_tty, login_shell, terminal_size};
use crate::wake::{read_ready, set_nonblocking, wait_ready, Got, Ready};
use crate::{Clock, Durable, SealedWriter};

pub use crate::relay::{CHUNK_SIZE, HANGUP_GRACE};

/// Relay a partly filled buffer once less than this much room is left, bytes.
const MIN_ROOM: usize = 4096;
/// How long the pumps sleep in `poll` before re-checking shared state, ms.
const POLL_MS: i32 = 200;
/// After the child exited, stop draining the PTY once no output arrived for this long (a
/// background process may keep the PTY open).
pub const DRAIN_IDLE: Duration = Duration::from_secs(2);
/// After the child exited, stop draining the PTY after this long even if output keeps coming.
pub const DRAIN_MAX: Duration = Duration::from_secs(10);

/// What to run and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// Program and arguments (`argv`, resolved through the child's `PATH`). Empty: the user's
    /// login shell ([`crate::sys::login_shell`]) run as a login shell (`argv[0]` = `-bash`).
    pub command: Vec<String>,
    /// `argv[0]` when it is not `command[0]` (a shell started with hooks: `-zsh`, or `bash`
    /// for `bash --rcfile`, SPEC §2.4.3). Needs a non-empty `command`.
    pub arg0: Option<OsString>,
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
            arg0: None,
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

/// How a session ended, returned by [`PtySession::run`]: the engine's [`Outcome`].
pub type SessionOutcome<W> = Outcome<W>;

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
    observer: Box<dyn Observer>,
    started: Instant,
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

/// `program` itself when it names a path, else the first executable file of that name in the
/// directories of `path` (`PATH`).
fn find_program(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = path.unwrap_or(std::ffi::OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
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
        if let Some(arg0) = &spec.arg0 {
            return Self::spawn_with_arg0(spec, arg0);
        }
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
        let started = Instant::now();
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
            observer: Box::new(NoObserver),
            started,
        })
    }

    /// [`PtySession::spawn`] for a spec with its own `argv[0]`, which portable-pty cannot set:
    /// the same environment, started through [`PtySession::spawn_command`].
    fn spawn_with_arg0(spec: &SessionSpec, arg0: &OsString) -> io::Result<PtySession> {
        let Some((program, args)) = spec.command.split_first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "argv[0] given without a command",
            ));
        };
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| k != "TERM" && k != "SEALCAST_SESSION")
            .collect();
        env.push(("TERM".into(), spec.term.clone().into()));
        if !spec.session_id.is_empty() {
            env.push(("SEALCAST_SESSION".into(), spec.session_id.clone().into()));
        }
        env.extend(spec.env.iter().cloned());
        let path = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        let mut cmd =
            ChildCommand::new(find_program(program, path.as_deref()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{program}: not found"))
            })?);
        cmd.arg0 = Some(arg0.clone());
        cmd.args = args.iter().map(OsString::from).collect();
        cmd.env = env;
        cmd.cwd = Some(match &spec.cwd {
            Some(d) => d.clone(),
            None => std::env::current_dir()?,
        });
        Self::spawn_command(&cmd, spec.cols, spec.rows, spec.capture_input, None)
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
        let started = Instant::now();
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
            observer: Box::new(NoObserver),
            started,
        })
    }

    /// Process id of the child (also its process group and session id).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The [`Observer`] the writer loop calls during [`PtySession::run`] (default: none).
    pub fn observe(&mut self, observer: Box<dyn Observer>) {
        self.observer = observer;
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
        writer: SealedWriter<W, C>,
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
        let mut control = PtyControl {
            master: &*self.master,
            master_fd,
            pid: self.pid,
            shared: &shared,
            tty: tty.as_ref().map(|t| t.as_fd()),
            size: (self.cols, self.rows),
        };
        let policy = Policy {
            ends: [true, false],
            client_gone_grace: Duration::ZERO,
        };
        let mut relay = Relay::new(
            writer,
            &mut control,
            &shared,
            &mut *self.observer,
            EventSender::new(tx.clone()),
            policy,
            self.started,
        );
        let (out_bufs, recycle) = Buffers::new();
        relay.recycle(Stream::Output, recycle);
        let setup_err = thread::scope(|s| -> Option<io::Error> {
            let sh = &*shared;
            let mut handles = Vec::with_capacity(3);
            let mut setup_err = None;
            let t = tx.clone();
            let f = move || pump_output(master_fd, sh, t, out_bufs, stdout);
            spawn_in(s, "sealcast-out", f, &mut handles, &mut setup_err);
            let t = tx.clone();
            let f = move || {
                let eof = (!stdin_tty).then_some(slave_path);
                pump_input(stdin, master_fd, eof, capture, sh, t)
            };
            spawn_in(s, "sealcast-in", f, &mut handles, &mut setup_err);
            let t = tx.clone();
            let f = move || forward_signals(&mut signals, t);
            spawn_in(s, "sealcast-sig", f, &mut handles, &mut setup_err);
            drop(tx);
            if setup_err.is_some() {
                relay.hang_up();
            }
            relay.run(&rx);
            sig_handle.close();
            relay.wind_down(&rx, || handles.iter().all(|h| h.is_finished()));
            setup_err
        });
        let outcome = relay.close(None, setup_err);
        drop(raw_guard);
        outcome
    }
}

/// The engine's hold on a PTY session.
struct PtyControl<'a> {
    master: &'a dyn MasterPty,
    master_fd: RawFd,
    pid: Option<u32>,
    shared: &'a Shared,
    /// The local terminal (a duplicate of stdin), when stdin is one.
    tty: Option<BorrowedFd<'a>>,
    size: (u16, u16),
}

impl Control for PtyControl<'_> {
    fn signal(&self, sig: i32) {
        signal_child(self.pid, self.master, Some(self.shared), sig);
    }

    fn window_changed(&mut self) -> Option<(u16, u16)> {
        let size = self.tty.and_then(terminal_size)?;
        (size != self.size).then(|| {
            self.size = size;
            size
        })
    }

    fn apply_size(&mut self, cols: u16, rows: u16) {
        let _ = self.master.resize(PtySize {
            cols,
            rows,
            pixel_width: 0,
            pixel_height: 0,
        });
    }

    fn terminal(&self) -> Option<BorrowedFd<'_>> {
        // SAFETY: the master descriptor stays open for the whole run (it belongs to the
        // session, which outlives the engine).
        Some(unsafe { BorrowedFd::borrow_raw(self.master_fd) })
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if self.child.is_some() {
            signal_child(self.pid, &*self.master, None, libc::SIGHUP);
        }
    }
}

/// The output pump: PTY master → stdout and the writer loop.
fn pump_output<O: Write>(
    master: RawFd,
    shared: &Shared,
    tx: SyncSender<Msg>,
    bufs: Buffers,
    mut stdout: O,
) {
    let mut buf = bufs.take();
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
            shared.count(Stream::Output, filled);
            if stdout_ok {
                if let Err(e) = stdout.write_all(&buf[..filled]) {
                    stdout_ok = false;
                    shared.stdout_failed(e);
                    if tx.send(Msg::ClientGone).is_err() {
                        return;
                    }
                }
            }
            let full = std::mem::replace(&mut buf, bufs.take());
            if tx
                .send(Msg::Data {
                    stream: Stream::Output,
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
                let _ = tx.send(Msg::Done(Stream::Output));
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
        shared.count(Stream::Input, n);
        if capture
            && tx
                .send(Msg::Data {
                    stream: Stream::Input,
                    buf: buf[..n].to_vec(),
                    len: n,
                })
                .is_err()
        {
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
        let o = SessionOutcome {
            exit_status: None,
            signal: Some(libc::SIGTERM),
            sink: (),
            receipt: Vec::new(),
            lines: 0,
            checkpoints: 0,
            counts: Default::default(),
            stdout_error: None,
        };
        assert_eq!(o.exit_code(), 143);
    }
}
