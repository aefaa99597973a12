//! Command-level metadata wired into the relay (SPEC §2.4): the [`CommandObserver`] is the
//! session's [`Observer`].
//!
//! Before the spawn, [`prepare`] decides whether the shell gets hooks: for bash and zsh run
//! interactively it creates the session's nonce and hook directory ([`hooks::HookDir`]) and
//! returns the argv and environment to start the shell with ([`hooks::plan`]); any other
//! program runs as given (proc source only). After the spawn, [`CommandObserver::new`] takes
//! what `prepare` returned and the child's pid, and the relay calls it:
//!
//! - **start** (after the header): the `hooks` event when hooks were planned, then
//!   [`ProcWatch::start`] (`watch` and the first sample), then a **sampler thread**
//!   (`sealcast-proc`) with its own [`super::proc::PERIOD_US`] timer that submits the `p` events of each
//!   sample through the relay's [`crate::relay::EventSender`] (a `/proc` read can block on a
//!   process stuck in the kernel; the relay must not).
//! - **each output burst** (as read, after its `o` events): the OSC 133 marks →
//!   [`ShellClaims`] → `c` events (and `m` after a `start`); for a PTY, the foreground
//!   process group (`tcgetpgrp` on the master) → `fg` when it changed.
//! - **finish** (before `x`): [`ShellClaims::finish`] closes an open command, and one last
//!   sample (when the sampler thread stopped in time) records the processes' exits.
//!
//! The hook directory lives as long as the observer (removed when it is dropped, after the
//! session). Nothing here changes the output: the marks the hooks print stay in the bytes the
//! user's terminal receives and in the `o` events (SPEC §2.4.3).

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sealcast_format::{CommandEvent, ProcessEvent};

use super::claims::ShellClaims;
use super::hooks::{self, HookDir, HookPlan, ShellKind, ShellMode};
use super::proc::{foreground_pgid, ProcWatch};
use super::Nonce;
use crate::relay::{Event, EventSender, ObserveCtx, Observer, Stream};

/// What [`prepare`] decided for one session.
#[derive(Debug)]
pub struct Prepared {
    /// How to start the shell with hooks; `None`: run the program as given.
    pub plan: Option<HookPlan>,
    nonce: Option<Nonce>,
    dir: Option<HookDir>,
    /// Why hooks are missing although the shell has them (the hook directory or the nonce
    /// could not be made); the session runs with the proc source only.
    pub hooks_error: Option<io::Error>,
}

impl Prepared {
    /// No hooks: the proc source only.
    pub fn without_hooks() -> Prepared {
        Prepared {
            plan: None,
            nonce: None,
            dir: None,
            hooks_error: None,
        }
    }
}

/// Plan hooks for `shell` run in `mode` (SPEC §2.4.3): for bash and zsh run interactively,
/// a fresh nonce and a hook directory under `base` (removed with the observer), and the
/// [`HookPlan`] to spawn with; for anything else, no hooks. `user_zdotdir`: the `ZDOTDIR`
/// the shell would otherwise have had. Never fails: when the directory cannot be made the
/// session runs without hooks and [`Prepared::hooks_error`] says why.
pub fn prepare(
    shell: &Path,
    mode: ShellMode,
    base: &Path,
    user_zdotdir: Option<&OsStr>,
) -> Prepared {
    let Some(kind) = ShellKind::of(shell) else {
        return Prepared::without_hooks();
    };
    if mode == ShellMode::Command {
        return Prepared::without_hooks();
    }
    let made = Nonce::generate().and_then(|nonce| {
        let dir = HookDir::create(base, &hooks::files(kind))?;
        Ok((nonce, dir))
    });
    match made {
        Ok((nonce, dir)) => Prepared {
            plan: hooks::plan(shell, mode, &nonce, dir.path(), user_zdotdir),
            nonce: Some(nonce),
            dir: Some(dir),
            hooks_error: None,
        },
        Err(e) => Prepared {
            hooks_error: Some(e),
            ..Prepared::without_hooks()
        },
    }
}

/// Stop request for the sampler thread (flag and wake-up).
type StopFlag = Arc<(Mutex<bool>, Condvar)>;

/// Where the process watch runs.
#[derive(Debug)]
enum Watch {
    /// Not started yet (before [`Observer::start`]), with the root pid.
    Pending(i32),
    /// On the sampler thread, which returns it when stopped.
    Thread(JoinHandle<ProcWatch>),
    /// On the relay's ticks (the sampler thread could not be started).
    Local(ProcWatch),
    /// Gone (the sampler did not stop in time, or after the end).
    None,
}

/// The session's observer for command-level metadata. See the module documentation.
#[derive(Debug)]
pub struct CommandObserver {
    claims: Option<(ShellClaims, ShellKind)>,
    watch: Watch,
    stop: StopFlag,
    /// Set once the proc source went blind: no more `fg` events.
    blind: Arc<AtomicBool>,
    last_fg: Option<i32>,
    _dir: Option<HookDir>,
}

impl CommandObserver {
    /// The observer of the session whose child (the session leader) is `root_pid`, with what
    /// [`prepare`] returned.
    pub fn new(prepared: Prepared, root_pid: u32) -> CommandObserver {
        let claims = match (&prepared.plan, &prepared.nonce) {
            (Some(plan), Some(nonce)) => Some((ShellClaims::new(nonce), plan.shell)),
            _ => None,
        };
        CommandObserver {
            claims,
            watch: Watch::Pending(i32::try_from(root_pid).unwrap_or(i32::MAX)),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            blind: Arc::new(AtomicBool::new(false)),
            last_fg: None,
            _dir: prepared.dir,
        }
    }

    fn write_process(&self, ctx: &mut ObserveCtx<'_>, events: Vec<ProcessEvent>) {
        for e in events {
            if matches!(e, ProcessEvent::Blind { .. }) {
                self.blind.store(true, Ordering::SeqCst);
            }
            ctx.write(&Event::Process(e));
        }
    }
}

/// The sampler thread: a sample every [`super::proc::PERIOD_US`] on the watch's grid, its events submitted
/// in order; returns the watch when stopped (or when the recording is closed or blind).
fn sample_loop(
    mut watch: ProcWatch,
    origin: (Instant, u64),
    sender: EventSender,
    stop: StopFlag,
    blind: Arc<AtomicBool>,
) -> ProcWatch {
    let now = || origin.1 + origin.0.elapsed().as_micros() as u64;
    let (lock, cv) = &*stop;
    loop {
        let due = watch.next_due_us();
        let t = now();
        if t < due {
            let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
            if !*stopped {
                stopped = cv
                    .wait_timeout(stopped, Duration::from_micros(due - t))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if *stopped {
                return watch;
            }
            continue;
        }
        if *lock.lock().unwrap_or_else(|p| p.into_inner()) {
            return watch;
        }
        let mut events = Vec::new();
        watch.on_tick(t, &mut events);
        for e in events {
            if matches!(e, ProcessEvent::Blind { .. }) {
                blind.store(true, Ordering::SeqCst);
            }
            if sender.submit(Event::Process(e)).is_err() {
                return watch;
            }
        }
        if watch.is_blind() {
            return watch;
        }
    }
}

impl Observer for CommandObserver {
    fn start(&mut self, ctx: &mut ObserveCtx<'_>) {
        if let Some((_, kind)) = &self.claims {
            ctx.write(&Event::Command(ShellClaims::hooks_event(kind.name())));
        }
        let Watch::Pending(root) = self.watch else {
            return;
        };
        let t = ctx.t_us();
        let mut events = Vec::new();
        let watch = ProcWatch::start(root, t, &mut events);
        self.write_process(ctx, events);
        if watch.is_blind() {
            self.watch = Watch::None;
            return;
        }
        let origin = (Instant::now(), t);
        let (sender, stop, blind) = (ctx.sender(), self.stop.clone(), self.blind.clone());
        let keep = Arc::new(Mutex::new(Some(watch)));
        let theirs = keep.clone();
        let spawned = thread::Builder::new()
            .name("sealcast-proc".into())
            .spawn(move || {
                let watch = theirs
                    .lock()
                    .ok()
                    .and_then(|mut w| w.take())
                    .expect("the watch is handed over once");
                sample_loop(watch, origin, sender, stop, blind)
            });
        self.watch = match spawned {
            Ok(h) => Watch::Thread(h),
            // No thread: sample on the relay's ticks instead.
            Err(_) => match keep.lock().ok().and_then(|mut w| w.take()) {
                Some(w) => Watch::Local(w),
                None => Watch::None,
            },
        };
    }

    fn on_output(&mut self, stream: Stream, bytes: &[u8], ctx: &mut ObserveCtx<'_>) {
        if stream != Stream::Output {
            return;
        }
        let t = ctx.t_us();
        if let Some((claims, _)) = &mut self.claims {
            let mut events: Vec<CommandEvent> = Vec::new();
            claims.on_output(t, bytes, &mut events);
            for e in events {
                ctx.write(&Event::Command(e));
            }
        }
        if self.blind.load(Ordering::SeqCst) || matches!(self.watch, Watch::Pending(_)) {
            return;
        }
        if let Some(pgid) = ctx.terminal().and_then(foreground_pgid) {
            if self.last_fg != Some(pgid) {
                self.last_fg = Some(pgid);
                ctx.write(&Event::Process(ProcessEvent::Fg { pgid }));
            }
        }
    }

    fn on_tick(&mut self, ctx: &mut ObserveCtx<'_>) {
        if let Watch::Local(w) = &mut self.watch {
            let mut events = Vec::new();
            w.on_tick(ctx.t_us(), &mut events);
            self.write_process(ctx, events);
        }
    }

    fn stop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }

    fn stopped(&self) -> bool {
        match &self.watch {
            Watch::Thread(h) => h.is_finished(),
            _ => true,
        }
    }

    fn finish(&mut self, ctx: &mut ObserveCtx<'_>) {
        if let Some((claims, _)) = &mut self.claims {
            let mut events = Vec::new();
            claims.finish(ctx.t_us(), &mut events);
            for e in events {
                ctx.write(&Event::Command(e));
            }
        }
        let watch = match std::mem::replace(&mut self.watch, Watch::None) {
            Watch::Thread(h) if h.is_finished() => h.join().ok(),
            Watch::Local(w) => Some(w),
            // Still blocked in /proc: leave it; the recording closes without a last sample.
            _ => None,
        };
        if let Some(mut w) = watch {
            let mut events = Vec::new();
            w.sample(&mut events);
            self.write_process(ctx, events);
        }
    }
}

/// How `sealcast record` runs `argv` (SPEC §2.4.3): the shell and its mode when it is bash or
/// zsh started as an interactive shell — no arguments (`bash`), or only `-i`, `-l` or
/// `--login` — else `None` (the command runs as given; the proc source only).
pub fn shell_of_argv(argv: &[String]) -> Option<(&Path, ShellMode)> {
    let (program, rest) = argv.split_first()?;
    let path = Path::new(program);
    ShellKind::of(path)?;
    let login = match rest {
        [] => false,
        [a] if a == "-i" => false,
        [a] if a == "-l" || a == "--login" => true,
        _ => return None,
    };
    Some((path, ShellMode::Interactive { login }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_commands_get_hooks() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let interactive = |login| Some(ShellMode::Interactive { login });
        assert_eq!(
            shell_of_argv(&v(&["bash"])).map(|s| s.1),
            interactive(false)
        );
        assert_eq!(
            shell_of_argv(&v(&["/usr/bin/zsh", "-l"])).map(|s| s.1),
            interactive(true)
        );
        assert_eq!(
            shell_of_argv(&v(&["bash", "--login"])).map(|s| s.1),
            interactive(true)
        );
        assert_eq!(
            shell_of_argv(&v(&["zsh", "-i"])).map(|s| s.1),
            interactive(false)
        );
        for none in [
            &["bash", "--norc", "-i"][..],
            &["bash", "-c", "ls"],
            &["sh"],
            &["dash", "-i"],
            &[],
        ] {
            assert!(shell_of_argv(&v(none)).is_none(), "{none:?}");
        }
    }

    #[test]
    fn prepare_makes_a_hook_directory_only_for_interactive_bash_and_zsh() {
        let base = tempfile::tempdir().unwrap();
        let login = ShellMode::Interactive { login: true };
        let p = prepare(Path::new("/bin/bash"), login, base.path(), None);
        let plan = p.plan.as_ref().unwrap();
        assert_eq!(plan.args[0], "--rcfile");
        let dir = Path::new(&plan.args[1]).parent().unwrap().to_path_buf();
        assert!(dir.starts_with(base.path()) && dir.is_dir());
        let obs = CommandObserver::new(p, 1);
        assert!(obs.claims.is_some());
        drop(obs);
        assert!(!dir.exists(), "the hook directory goes with the observer");
        for (shell, mode) in [
            ("/bin/sh", login),
            ("/bin/bash", ShellMode::Command),
            ("/usr/bin/fish", login),
        ] {
            let p = prepare(Path::new(shell), mode, base.path(), None);
            assert!(p.plan.is_none() && p.hooks_error.is_none(), "{shell}");
        }
        let p = prepare(
            Path::new("/bin/zsh"),
            login,
            Path::new("/nonexistent/x"),
            None,
        );
        assert!(p.plan.is_none());
        assert!(p.hooks_error.is_some());
        assert!(CommandObserver::new(p, 1).claims.is_none());
    }
}
