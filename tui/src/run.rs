//! The event loop: terminal keys, a monotonic clock, and messages from the background
//! threads (index builder, verifier, live follower, library details) become [`Action`]s.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use sealcast_term::IndexPolicy;

use crate::app::{Action, App, Effect, Player, PlayerOptions};
use crate::library::RowUpdate;
use crate::model::VerifySummary;
use crate::recording::Recording;
use crate::rows::{CommandsOverlay, MetaEvent};
use crate::shared::Shared;
use crate::terminal::TerminalGuard;

/// What the player needs from outside its crate.
#[derive(Clone)]
pub struct Hooks {
    /// Verify a recording (run on a background thread): `(its path, the bytes the player
    /// shows)`. The bytes are the player's own ([`Recording::bytes`]: the mapping of the
    /// descriptor it opened), never the path opened again, so the badge describes what is
    /// shown even when another file is renamed over the path (SPEC §7.2); the path is for
    /// the file-name check and the `.seal` receipt beside it. The summary's
    /// [`VerifySummary::frames`] are the digests each frame must still have when drawn.
    pub verify: VerifyHook,
    /// True while the recorder still writes the file (its `flock` is held, SPEC §5.1).
    pub is_live: Arc<dyn Fn(&Path) -> bool + Send + Sync>,
    /// The commands report (`sealcast commands`, SPEC §2.4.5) over a recording's `c` and `p`
    /// events, each with its verification state: the sources of each shell command, rows
    /// of processes no claim covers, disagreements. Run on a background thread once a
    /// closed recording is scanned and verified; `None`: the panel shows the shell's claims
    /// only.
    pub commands: Option<CommandsHook>,
}

/// See [`Hooks::verify`].
pub type VerifyHook = Arc<dyn Fn(&Path, &[u8]) -> VerifySummary + Send + Sync>;

/// See [`Hooks::commands`].
pub type CommandsHook = Arc<dyn Fn(&[MetaEvent]) -> CommandsOverlay + Send + Sync>;

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

/// Background work for one open recording; stops when dropped.
#[derive(Debug)]
struct Background {
    stop: Arc<AtomicBool>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Start the index builder, the verifier and (with `follow`) the live follower.
fn start(
    shared: &Arc<Shared>,
    path: &Path,
    follow: bool,
    hooks: &Hooks,
    tx: &Sender<Action>,
) -> Background {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (shared, stop) = (Arc::clone(shared), Arc::clone(&stop));
        std::thread::spawn(move || {
            // One pass: scan frames (times, panel rows) and build keyframes and the
            // transcript from the same events, a few frames at a time so the UI's read locks
            // never wait long.
            let policy = IndexPolicy::default();
            let (mut b, mut tb) = shared.split_builders(policy);
            // The transcript of scrolled-off rows on a thread of its own, behind the
            // keyframes (the second core): seeking does not wait for row formatting.
            {
                let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
                std::thread::spawn(move || {
                    crate::shared::lower_priority();
                    let mut steps = 0u32;
                    while !stop.load(Ordering::SeqCst) {
                        let done = crate::shared::source(&shared).scan_done();
                        if shared.index_step(&mut tb, 4096) == 0 {
                            if done {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        steps += 1;
                        if steps.is_multiple_of(64) {
                            crate::shared::source(&shared).release_pages();
                        }
                    }
                    crate::shared::source(&shared).release_pages();
                });
            }
            let mut steps = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let more = shared.scan_step(8, follow);
                // Keyframes over what was just scanned, while its decoded events are at
                // hand (Recording keeps the last frames the scan decoded).
                let mut fed = 0;
                loop {
                    let f = shared.index_step(&mut b, 4096);
                    fed += f;
                    if f == 0 || stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
                steps += 1;
                if steps.is_multiple_of(64) || (!more && fed == 0) {
                    crate::shared::source(&shared).release_pages();
                }
                if !more && fed == 0 {
                    if !follow {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
    }
    {
        let (path, stop, tx, hooks) = (
            path.to_path_buf(),
            Arc::clone(&stop),
            tx.clone(),
            hooks.clone(),
        );
        let shared = Arc::clone(shared);
        std::thread::spawn(move || {
            let mut verified_len = None;
            let mut last_growth = Instant::now();
            let mut last_verify = Instant::now() - Duration::from_secs(10);
            loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if follow {
                    let grew = shared
                        .rec
                        .write()
                        .map(|mut r| r.refresh().unwrap_or(false))
                        .unwrap_or(false);
                    if grew {
                        last_growth = Instant::now();
                    }
                    let writing = (hooks.is_live)(&path);
                    let lag_us = last_growth.elapsed().as_micros() as u64;
                    if tx.send(Action::Live { writing, lag_us }).is_err() {
                        return;
                    }
                }
                // Verify at once, then (following) again when the file grew, at most every 2 s:
                // the bytes the player maps (a handle: the lock is not held meanwhile).
                let data = crate::shared::source(&shared).bytes();
                let len = Some(data.len());
                if len != verified_len && last_verify.elapsed() >= Duration::from_secs(2) {
                    let s = (hooks.verify)(&path, &data);
                    drop(data);
                    verified_len = len;
                    last_verify = Instant::now();
                    if tx.send(Action::Verified(s.clone())).is_err() {
                        return;
                    }
                    if !follow {
                        if let Some(report) = &hooks.commands {
                            // The report needs every c/p event: wait for the scan.
                            while !crate::shared::source(&shared).scan_done() {
                                if stop.load(Ordering::SeqCst) {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            let meta = crate::shared::source(&shared).meta_events(&s);
                            if !meta.is_empty() && tx.send(Action::Commands(report(&meta))).is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                if !follow {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    }
    Background { stop }
}

/// Open a file as a player (with its background work).
fn open_player(
    path: &Path,
    opts: PlayerOptions,
    hooks: &Hooks,
    tx: &Sender<Action>,
) -> Result<(Player, Background), String> {
    let rec = if opts.follow {
        Recording::open_live(path)
    } else {
        Recording::open(path)
    }
    .map_err(|e| e.to_string())?;
    let shared = Shared::new(rec, IndexPolicy::default());
    let bg = start(&shared, path, opts.follow, hooks, tx);
    Ok((Player::new(shared, opts), bg))
}

/// Work out the details of each library row in the background.
fn library_details(paths: Vec<PathBuf>, hooks: Hooks, tx: Sender<Action>) {
    std::thread::spawn(move || {
        for path in paths {
            let live = (hooks.is_live)(&path);
            let u = match Recording::open(&path) {
                Ok(mut rec) => {
                    // Every frame, for the duration and the command count.
                    while rec.scan_step(64, false) {
                        rec.release_pages();
                    }
                    rec.release_pages();
                    let m = rec.meta();
                    let commands = rec.panel().iter().filter(|r| r.kind.is_command()).count();
                    let s = (hooks.verify)(&path, &rec.bytes());
                    RowUpdate {
                        path: path.clone(),
                        start_us: m.start_us,
                        user: m.user,
                        host: m.host,
                        duration_us: Some(rec.duration_us()),
                        commands: Some(commands),
                        status: Some((s.status.clone(), s.outcome)),
                        error: None,
                        live,
                    }
                }
                Err(e) => RowUpdate {
                    path: path.clone(),
                    start_us: None,
                    user: None,
                    host: None,
                    duration_us: None,
                    commands: None,
                    status: None,
                    error: Some(e.to_string()),
                    live,
                },
            };
            if tx.send(Action::Library(u)).is_err() {
                return;
            }
        }
    });
}

/// What to show first.
#[derive(Debug)]
pub enum Start {
    /// A recording (already opened, so errors were reported before the terminal changed).
    Player(Box<Recording>, PlayerOptions),
    /// A library of a directory.
    Library(crate::library::Library),
}

/// Run the player on the terminal until the user quits or a signal arrives. The terminal is
/// restored on return, on panic and on SIGTERM/SIGHUP/SIGINT.
///
/// # Errors
/// Terminal I/O errors.
pub fn run(start_with: Start, hooks: Hooks) -> std::io::Result<()> {
    let (tx, rx) = channel::<Action>();
    let mut bg: Option<Background> = None;
    let mut app = match start_with {
        Start::Player(rec, opts) => {
            let path = rec.path().map(Path::to_path_buf);
            let shared = Shared::new(*rec, IndexPolicy::default());
            if let Some(p) = &path {
                bg = Some(start(&shared, p, opts.follow, &hooks, &tx));
            }
            App::with_player(Player::new(shared, opts))
        }
        Start::Library(l) => {
            library_details(
                l.rows.iter().map(|r| r.path.clone()).collect(),
                hooks.clone(),
                tx.clone(),
            );
            App::with_library(l)
        }
    };
    let guard = TerminalGuard::new()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;
    let r = event_loop(&mut app, &mut term, &guard, &rx, &tx, &hooks, &mut bg);
    drop(term);
    drop(guard);
    r
}

#[allow(clippy::too_many_arguments)]
fn event_loop(
    app: &mut App,
    term: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
    guard: &TerminalGuard,
    rx: &Receiver<Action>,
    tx: &Sender<Action>,
    hooks: &Hooks,
    bg: &mut Option<Background>,
) -> std::io::Result<()> {
    let t0 = Instant::now();
    loop {
        app.update(Action::Tick(t0.elapsed().as_micros() as u64));
        term.draw(|f| crate::ui::render(app, f))?;
        if app.quit || guard.stopped() {
            return Ok(());
        }
        // Redraw at up to 30 fps while output is due or a search runs; otherwise 10 times a
        // second for the clock (playing) or 4 (paused), so an idle screen costs almost nothing.
        let wait = match &app.player {
            Some(p) if p.searching() => Duration::from_millis(16),
            Some(p) if p.playing() => match p.next_due_us() {
                Some(us) if us < 100_000 => Duration::from_micros(us.clamp(1000, 33_000)),
                _ => Duration::from_millis(100),
            },
            _ => Duration::from_millis(250),
        };
        match wait_tty(wait) {
            Tty::HungUp => return Ok(()),
            Tty::Idle => {}
            Tty::Readable => {
                while event::poll(Duration::ZERO)? {
                    if let TermEvent::Key(k) = event::read()? {
                        app.update(Action::Key(k));
                    }
                }
            }
        }
        while let Ok(a) = rx.try_recv() {
            app.update(a);
        }
        // A frame decoded for the screen was not the frame verified: its rows turn failed.
        if let Some(p) = &app.player {
            if crate::shared::source(&p.shared).needs_restate() {
                p.shared
                    .rec
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .restate_changed();
            }
        }
        if app.player.is_none() {
            *bg = None;
        }
        for e in app.take_effects() {
            match e {
                // A recording still being written (a spool) is followed live.
                Effect::Open(path) => match open_player(
                    &path,
                    PlayerOptions {
                        follow: (hooks.is_live)(&path),
                        ..PlayerOptions::default()
                    },
                    hooks,
                    tx,
                ) {
                    Ok((p, b)) => {
                        app.open_player(p);
                        *bg = Some(b);
                    }
                    Err(why) => app.open_failed(why),
                },
            }
        }
    }
}

/// What the terminal (stdin) has for us.
enum Tty {
    Readable,
    Idle,
    HungUp,
}

/// Wait up to `timeout` for input on stdin (the terminal). crossterm's own `poll` loops
/// forever reading end-of-file once the terminal hung up (its tmux or ssh went away), so
/// the player polls the descriptor itself first and leaves on POLLHUP/POLLERR.
fn wait_tty(timeout: Duration) -> Tty {
    let mut fds = [libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    }];
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd, its length given.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
    if rc < 0 {
        // EINTR (a signal): the caller checks its flags.
        return Tty::Idle;
    }
    let r = fds[0].revents;
    if r & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Tty::HungUp
    } else if r & libc::POLLIN != 0 {
        Tty::Readable
    } else {
        Tty::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex;

    /// Two recordings of the same session, `one` and `two` on screen.
    fn two() -> (Vec<u8>, Vec<u8>) {
        let make = |text: &str| {
            let mut m = sealcast_testkit::HandMade::new();
            m.checkpoint(false);
            m.frame(&[format!(r#"[0.100000, "o", "{text}"]"#).as_bytes()]);
            m.checkpoint(true);
            m.file
        };
        (make("one"), make("two"))
    }

    /// The verifier thread hands the hook the bytes the player mapped, not what is at the
    /// path now: a file renamed over the path after the player opened it is not verified
    /// in its place (the hook used to get only the path and open it again).
    #[test]
    fn the_verify_hook_gets_the_players_bytes_not_the_path_again() {
        let (one, two) = two();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.cast.zst");
        std::fs::write(&path, &one).unwrap();
        let rec = Recording::open(&path).unwrap();
        std::fs::write(dir.path().join("new"), &two).unwrap();
        std::fs::rename(dir.path().join("new"), &path).unwrap();
        let seen = Arc::new(Mutex::new(None));
        let hooks = Hooks {
            verify: {
                let seen = Arc::clone(&seen);
                Arc::new(move |p: &Path, data: &[u8]| {
                    *seen.lock().unwrap() = Some((p.to_path_buf(), data.to_vec()));
                    VerifySummary::without_events(crate::Outcome::Unverifiable, "X", "")
                })
            },
            is_live: Arc::new(|_: &Path| false),
            commands: None,
        };
        let (tx, rx) = channel();
        let shared = Shared::new(rec, IndexPolicy::default());
        let _bg = start(&shared, &path, false, &hooks, &tx);
        let got = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(matches!(got, Action::Verified(_)));
        let (p, data) = seen.lock().unwrap().take().unwrap();
        assert_eq!(p, path);
        assert!(
            data == one,
            "the hook got the bytes at the path, not the player's"
        );
    }

    /// A followed file is re-mapped from the descriptor the player opened: a file renamed
    /// over the path is not picked up as the recording's growth (refresh used to map the
    /// path again), the original's growth is.
    #[test]
    fn refresh_remaps_the_open_file_not_the_path() {
        let (one, two) = two();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.cast.zst");
        let cut = one.len() - 1;
        std::fs::write(&path, &one[..cut]).unwrap();
        let mut writer = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut rec = Recording::open_live(&path).unwrap();
        while rec.scan_step(64, true) {}
        std::fs::write(dir.path().join("new"), [two.as_slice(), &two].concat()).unwrap();
        std::fs::rename(dir.path().join("new"), &path).unwrap();
        assert!(
            !rec.refresh().unwrap(),
            "the file the player opened did not grow"
        );
        writer.write_all(&one[cut..]).unwrap();
        assert!(rec.refresh().unwrap());
        assert_eq!(&*rec.bytes(), one.as_slice());
    }
}
