//! Starting the recorded child exactly as described: program, `argv`, a complete environment
//! (nothing inherited), a working directory, and optionally a switch to another user **in the
//! child, before `exec`** — how a set-uid recorder drops its privileges for the session
//! (`sealcast-shell`, SPEC §2.3).
//!
//! The switch happens in a `pre_exec` hook that only makes async-signal-safe system calls
//! (`setsid`, `ioctl(TIOCSCTTY)`, `setresuid`, `getresuid`, `chdir`, `write`, `close_range`,
//! `signal`), so it is sound even though the recorder already runs threads when it forks.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};

/// Work the recorder does while a new child waits, forked but not yet `exec`ed — for a
/// set-uid recorder, giving up the user's id (`setresuid(service, service, service)`), so
/// that no code of the user ever runs while the recorder could still be signalled by the
/// user. Runs on a helper thread; an error stops the child before `exec` and fails the
/// spawn.
pub type ForkHook = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// The two pipes of a fork gate: the child writes one byte to `ready` once it is set up,
/// then waits for one byte on `go`.
struct Gate {
    ready_r: OwnedFd,
    ready_w: OwnedFd,
    go_r: OwnedFd,
    go_w: OwnedFd,
}

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is valid for two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A child process to start, described completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCommand {
    /// The program to execute: an absolute path (no `PATH` search happens in the recorder's
    /// environment).
    pub program: PathBuf,
    /// `argv[0]`; `None`: the program path. A login shell gets `-<name>` (sshd's
    /// convention, `session.c`).
    pub arg0: Option<OsString>,
    /// `argv[1..]`.
    pub args: Vec<OsString>,
    /// The child's complete environment, in order (a later duplicate wins). Nothing of the
    /// recorder's own environment is passed on.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory, entered **after** the user switch (a home directory may be closed
    /// to the recorder's user). When it cannot be entered the child says so on its stderr
    /// and starts in `/`, as sshd does. `None`: the recorder's directory.
    pub cwd: Option<PathBuf>,
    /// Run the child as this user: `setresuid(uid, uid, uid)` before `exec`, checked with
    /// `getresuid`, so no saved set-user-id survives into the session. Group ids are not
    /// touched (a set-uid `exec` never changed them). `None`: keep the recorder's ids.
    pub uid: Option<libc::uid_t>,
}

/// How the child relates to sessions and terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionMode {
    /// `setsid()`: a new session and process group (pgid = pid), so the recorder can signal
    /// the whole job.
    New,
    /// `setsid()`, then make stdin (a PTY slave) the controlling terminal (`TIOCSCTTY`).
    NewWithTty,
    /// Stay in the caller's session (used when replacing the current process).
    Keep,
}

impl ChildCommand {
    /// A command for `program` with no arguments, an empty environment, no directory change
    /// and no user switch.
    pub fn new(program: impl Into<PathBuf>) -> ChildCommand {
        ChildCommand {
            program: program.into(),
            arg0: None,
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            uid: None,
        }
    }

    /// The `std` command: environment cleared and replaced, `argv[0]` set, and the
    /// `pre_exec` hook for the session mode, the user switch and the directory. Inherited
    /// descriptors above stderr are marked close-on-exec, and the signals the recorder
    /// handles or a parent may have ignored get their default disposition.
    pub(crate) fn command(&self, mode: SessionMode) -> io::Result<Command> {
        self.command_gated(mode, None)
    }

    /// [`ChildCommand::command`], whose hook ends by passing the gate (`(ready_w, go_r,
    /// go_w)` as raw descriptors that stay open until the spawn returns).
    fn command_gated(
        &self,
        mode: SessionMode,
        gate: Option<(RawFd, RawFd, RawFd)>,
    ) -> io::Result<Command> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).env_clear();
        if let Some(a) = &self.arg0 {
            cmd.arg0(a);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let cwd = match &self.cwd {
            Some(d) => Some(CString::new(d.as_os_str().as_bytes()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "directory contains NUL")
            })?),
            None => None,
        };
        let cwd_msg = self.cwd.as_ref().map(|d| {
            let mut m = b"sealcast: could not chdir to home directory ".to_vec();
            m.extend_from_slice(d.as_os_str().as_bytes());
            m.extend_from_slice(b", starting in /\n");
            m
        });
        let uid = self.uid;
        let hook = move || -> io::Result<()> {
            // SAFETY (whole hook): runs in the forked child before exec; only async-signal-safe
            // system calls on valid pointers, no allocation, no locks.
            unsafe {
                for sig in [
                    libc::SIGHUP,
                    libc::SIGINT,
                    libc::SIGQUIT,
                    libc::SIGTERM,
                    libc::SIGALRM,
                    libc::SIGCHLD,
                    libc::SIGTSTP,
                    libc::SIGTTIN,
                    libc::SIGTTOU,
                ] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                if matches!(mode, SessionMode::New | SessionMode::NewWithTty)
                    && libc::setsid() == -1
                {
                    return Err(io::Error::last_os_error());
                }
                if mode == SessionMode::NewWithTty && libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1
                {
                    return Err(io::Error::last_os_error());
                }
                if let Some(u) = uid {
                    if libc::setresuid(u, u, u) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    let (mut r, mut e, mut s) = (0, 0, 0);
                    if libc::getresuid(&mut r, &mut e, &mut s) != 0 || r != u || e != u || s != u {
                        return Err(io::Error::from_raw_os_error(libc::EPERM));
                    }
                }
                if let Some(dir) = &cwd {
                    if libc::chdir(dir.as_ptr()) != 0 {
                        if let Some(m) = &cwd_msg {
                            libc::write(2, m.as_ptr().cast(), m.len());
                        }
                        if libc::chdir(c"/".as_ptr()) != 0 {
                            return Err(io::Error::last_os_error());
                        }
                    }
                }
                // Close-on-exec for every inherited descriptor above stderr (not closed: the
                // runtime's exec-error pipe must stay open until exec). Best effort: an
                // older kernel without close_range keeps Rust's own O_CLOEXEC defaults.
                libc::syscall(
                    libc::SYS_close_range,
                    3 as libc::c_uint,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                if let Some((ready_w, go_r, go_w)) = gate {
                    // Our copy of the write end must go, or a parent that gives up (closes
                    // its copy) would leave us waiting forever.
                    libc::close(go_w);
                    let byte = [b'r'];
                    if libc::write(ready_w, byte.as_ptr().cast(), 1) != 1 {
                        return Err(io::Error::last_os_error());
                    }
                    let mut go = [0u8; 1];
                    loop {
                        let n = libc::read(go_r, go.as_mut_ptr().cast(), 1);
                        if n == 1 {
                            break;
                        }
                        if n < 0 && *libc::__errno_location() == libc::EINTR {
                            continue;
                        }
                        // The recorder's step failed: never exec.
                        return Err(io::Error::from_raw_os_error(libc::ECANCELED));
                    }
                }
            }
            Ok(())
        };
        // SAFETY: the hook is async-signal-safe (see above).
        unsafe {
            cmd.pre_exec(hook);
        }
        Ok(cmd)
    }

    /// Start the child: `stdio` sets its descriptors; with `on_forked`, the child stops
    /// before `exec` (after the user switch) until `on_forked` has run in the recorder, on a
    /// helper thread (see [`ForkHook`]).
    ///
    /// # Errors
    /// Creating the gate, starting the helper, `on_forked`'s error, or the spawn's.
    pub(crate) fn spawn_child(
        &self,
        mode: SessionMode,
        stdio: impl FnOnce(&mut Command) -> io::Result<()>,
        on_forked: Option<ForkHook>,
    ) -> io::Result<Child> {
        let Some(hook) = on_forked else {
            let mut cmd = self.command(mode)?;
            stdio(&mut cmd)?;
            return cmd.spawn();
        };
        let (ready_r, ready_w) = cloexec_pipe()?;
        let (go_r, go_w) = cloexec_pipe()?;
        let gate = Gate {
            ready_r,
            ready_w,
            go_r,
            go_w,
        };
        let mut cmd = self.command_gated(
            mode,
            Some((
                gate.ready_w.as_raw_fd(),
                gate.go_r.as_raw_fd(),
                gate.go_w.as_raw_fd(),
            )),
        )?;
        stdio(&mut cmd)?;
        let Gate {
            ready_r,
            ready_w,
            go_r,
            go_w,
        } = gate;
        let helper = std::thread::Builder::new()
            .name("sealcast-gate".into())
            .spawn(move || -> io::Result<()> {
                let mut b = [0u8; 1];
                loop {
                    // SAFETY: reads one byte into a valid buffer from our pipe.
                    let n = unsafe { libc::read(ready_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
                    if n == 1 {
                        break;
                    }
                    if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    // The child ended before the gate: the spawn reports why.
                    return Ok(());
                }
                hook()?;
                // SAFETY: writes one byte from a valid buffer to our pipe.
                if unsafe { libc::write(go_w.as_raw_fd(), b"g".as_ptr().cast(), 1) } != 1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })?;
        let spawned = cmd.spawn();
        // Close our copies: the helper sees EOF if the child never reached the gate.
        drop(cmd);
        drop(ready_w);
        drop(go_r);
        let hooked = helper
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("fork hook panicked")));
        match (spawned, hooked) {
            (Ok(child), Ok(())) => Ok(child),
            (Ok(mut child), Err(e)) => {
                // Cannot happen (the child does not exec without the go byte); be safe.
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
            (Err(_), Err(e)) => Err(e),
            (Err(e), Ok(())) => Err(e),
        }
    }

    /// Replace the current process with the command (no new session; used when a recorder
    /// finds it is already inside a recorded session). Returns only on failure, possibly
    /// after the user switch already happened.
    pub fn exec(&self) -> io::Error {
        match self.command(SessionMode::Keep) {
            Ok(mut c) => c.exec(),
            Err(e) => e,
        }
    }
}

/// Sends signals to the session's process group **as the session's user**.
///
/// A set-uid recorder that gave up the user's id can no longer signal the user's processes
/// (`kill(2)` needs the sender's real or effective uid to match the target's real or saved
/// uid), yet it must hang up the session (`SIGHUP`, then `SIGKILL`) when the client goes away
/// or the recording fails. So before giving up the id it starts this helper: `/bin/sh`, run as
/// the user in a session of its own, reading `<signal> <pgid>` lines from a pipe and running
/// `kill -<signal> -<pgid>`. It exits when the pipe closes (the recorder exited).
///
/// The user can kill the helper (it is theirs); that only takes away the recorder's way to
/// end processes the user could keep alive anyway (`nohup`, `setsid`): the recording is still
/// closed, and without the recorder nothing reaches the client.
pub struct GroupSignaller {
    stdin: std::sync::Mutex<std::process::ChildStdin>,
    _child: Child,
}

impl std::fmt::Debug for GroupSignaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSignaller")
            .field("pid", &self._child.id())
            .finish()
    }
}

/// The helper's program (dash and bash both accept `kill -N -PGID`).
const SIGNALLER_SCRIPT: &str = r#"while read -r s g; do kill -"$s" "-$g" 2>/dev/null; done"#;

static SIGNALLER: std::sync::OnceLock<GroupSignaller> = std::sync::OnceLock::new();

impl GroupSignaller {
    /// Start the helper as `uid` (call while this process may still switch to it).
    ///
    /// # Errors
    /// Starting `/bin/sh`.
    pub fn start(uid: libc::uid_t) -> io::Result<GroupSignaller> {
        let mut c = ChildCommand::new("/bin/sh");
        c.args = vec!["-c".into(), SIGNALLER_SCRIPT.into()];
        c.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
        c.cwd = Some("/".into());
        c.uid = Some(uid);
        let mut child = c.spawn_child(
            SessionMode::New,
            |cmd| {
                cmd.stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                Ok(())
            },
            None,
        )?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("signal helper has no stdin"))?;
        Ok(GroupSignaller {
            stdin: std::sync::Mutex::new(stdin),
            _child: child,
        })
    }

    /// Make this the process-wide fallback of the session runners ([`crate::pty`],
    /// [`crate::pipes`]) for signals that `kill` refuses with `EPERM`. Only the first call
    /// installs; returns whether this one did.
    pub fn install(self) -> bool {
        SIGNALLER.set(self).is_ok()
    }

    /// Ask the helper to send `sig` to process group `pgid`.
    ///
    /// # Errors
    /// The helper is gone (the pipe is closed).
    pub fn signal_group(&self, pgid: libc::pid_t, sig: i32) -> io::Result<()> {
        use std::io::Write;
        let mut w = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(format!("{sig} {pgid}\n").as_bytes())
    }
}

/// Send `sig` to process group `pgid`: `kill(-pgid, sig)`, and through the installed
/// [`GroupSignaller`] when that is refused with `EPERM` (the group runs as a user this
/// process gave up). Best effort.
pub(crate) fn kill_group(pgid: libc::pid_t, sig: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(-pgid, sig) } == 0 {
        return;
    }
    if io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        if let Some(s) = SIGNALLER.get() {
            let _ = s.signal_group(pgid, sig);
        }
    }
}

/// The real, effective and saved user ids of this process (`getresuid(2)`).
pub fn resuid() -> (libc::uid_t, libc::uid_t, libc::uid_t) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three valid out-pointers; getresuid cannot fail with valid pointers.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    (r, e, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_argv_environment_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = ChildCommand::new("/bin/sh");
        c.arg0 = Some("-sh".into());
        c.args = vec!["-c".into(), "echo \"$0|$FOO|$HOME|$(pwd)\"".into()];
        c.env = vec![("FOO".into(), "1".into()), ("FOO".into(), "2".into())];
        c.cwd = Some(dir.path().to_path_buf());
        let out = c
            .command(SessionMode::New)
            .unwrap()
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let cwd = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("-sh|2||{}\n", cwd.display())
        );
    }

    #[test]
    fn unreachable_directory_falls_back_to_root() {
        let mut c = ChildCommand::new("/bin/pwd");
        c.cwd = Some("/nonexistent/sealcast".into());
        let out = c.command(SessionMode::New).unwrap().output().unwrap();
        assert_eq!(out.stdout, b"/\n");
        assert!(String::from_utf8_lossy(&out.stderr).contains("could not chdir"));
    }

    #[test]
    fn the_child_waits_for_the_fork_hook_before_exec() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("hook-ran");
        let mut c = ChildCommand::new("/bin/sh");
        c.args = vec![
            "-c".into(),
            format!("test -e {} && echo after-hook", flag.display()).into(),
        ];
        let f = flag.clone();
        let hook: ForkHook = Box::new(move || {
            // Give an ungated child every chance to exec first.
            std::thread::sleep(std::time::Duration::from_millis(200));
            std::fs::write(&f, b"")
        });
        let child = c
            .spawn_child(
                SessionMode::New,
                |cmd| {
                    cmd.stdout(std::process::Stdio::piped());
                    Ok(())
                },
                Some(hook),
            )
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.stdout, b"after-hook\n");

        // A failing hook: the child never execs, the spawn fails with the hook's error.
        let ran = dir.path().join("child-ran");
        c.args = vec!["-c".into(), format!("touch {}", ran.display()).into()];
        let err = c
            .spawn_child(
                SessionMode::New,
                |_| Ok(()),
                Some(Box::new(|| Err(io::Error::other("no drop")))),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "no drop");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!ran.exists());
    }

    #[test]
    fn user_switch_leaves_no_saved_id() {
        if resuid().1 != 0 {
            return; // needs root to switch
        }
        let mut c = ChildCommand::new("/bin/sh");
        c.args = vec!["-c".into(), "grep ^Uid: /proc/self/status".into()];
        c.uid = Some(65534);
        let out = c.command(SessionMode::New).unwrap().output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Uid:\t65534\t65534\t65534\t65534\n"
        );
    }
}
