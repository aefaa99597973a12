//! The application state and everything that changes it: [`App::update`] applies an
//! [`Action`] (a key, a clock tick, a verification result) with no I/O, so tests drive the
//! player as a state machine with an injected clock. Rendering is in [`crate::ui`].

use std::path::PathBuf;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use sealcast_term::regex::Regex;
use sealcast_term::{Direction, Emulator, EventSource, Hit, Place, Search, Step};

use crate::library::Library;
use crate::model::{fmt_time, parse_time, PanelKind, PanelRow, VerifySummary};
use crate::recording::Meta;
use crate::shared::{source, Shared};

/// Idle gaps are shortened to this with idle compression on (`i`), µs.
pub const IDLE_CAP_US: u64 = 2_000_000;
/// ←/→ seek, µs.
pub const SEEK_SMALL_US: u64 = 5_000_000;
/// Shift+←/→ seek, µs.
pub const SEEK_BIG_US: u64 = 60_000_000;
/// Speeds `<`/`>` step through.
pub const SPEEDS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
/// Events a search scans per tick, so the UI stays responsive.
pub const SEARCH_BUDGET: u64 = 4000;

/// Something the app changes state for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Action {
    /// A key press.
    Key(KeyEvent),
    /// The clock: monotonic µs (injected; tests step it by hand).
    Tick(u64),
    /// Verification of the open recording finished.
    Verified(VerifySummary),
    /// Details of one library row, worked out in the background.
    Library(crate::library::RowUpdate),
    /// The commands report of the open recording (sources, proc rows, disagreements).
    Commands(crate::rows::CommandsOverlay),
    /// A followed live recording: whether its writer still holds the lock, and how long
    /// ago (µs) the file last grew.
    Live {
        /// The recorder still holds the file's lock.
        writing: bool,
        /// Time since the file last grew, µs.
        lag_us: u64,
    },
}

/// Work the app asks its runner to do (I/O stays outside the app).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Open this recording and hand it to [`App::open_player`].
    Open(PathBuf),
}

/// An input line being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// `/` or `?`: a regex.
    Search(Direction, String),
    /// `:`: a time.
    Goto(String),
}

/// Live-follow state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    /// The recorder still writes (lock held).
    pub writing: bool,
    /// Since the file last grew, µs.
    pub lag_us: u64,
    /// Following the live edge (cleared by seeking back, set by `G`).
    pub following: bool,
}

/// The player state for one recording.
pub struct Player {
    pub(crate) shared: Arc<Shared>,
    pub(crate) meta: Meta,
    pub(crate) emu: Emulator,
    /// Events applied.
    pub(crate) pos: u64,
    /// Play clock, µs of recording time.
    pub(crate) t_us: u64,
    pub(crate) playing: bool,
    pub(crate) speed: usize,
    pub(crate) idle: bool,
    pub(crate) panel_focus: bool,
    pub(crate) panel_sel: usize,
    /// Digits typed: the number, and where the player was before the first digit jumped.
    pub(crate) count: Option<(u64, u64, u64)>,
    pub(crate) prompt: Option<Prompt>,
    pub(crate) search: Option<Search>,
    pub(crate) pattern: Option<Regex>,
    pub(crate) hit: Option<Hit>,
    /// The nearest command line or SQL statement matching the running search, in its
    /// direction: (row in the panel, its time). Shown instead of a screen hit that is
    /// farther away.
    pub(crate) meta_hit: Option<(usize, u64)>,
    pub(crate) hits: Vec<u64>,
    pub(crate) pan: (u16, u16),
    pub(crate) scroll: u64,
    pub(crate) message: Option<String>,
    pub(crate) live: Option<Live>,
    /// `--at` beyond what is scanned yet: seek there once it is.
    pending_at: Option<u64>,
    last_tick: Option<u64>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("pos", &self.pos)
            .field("t_us", &self.t_us)
            .field("playing", &self.playing)
            .finish()
    }
}

/// Options for opening a player.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlayerOptions {
    /// Open paused at this time (µs).
    pub at_us: Option<u64>,
    /// Follow a live recording.
    pub follow: bool,
    /// Initial speed (the nearest of [`SPEEDS`]).
    pub speed: Option<f64>,
    /// Start with idle compression on.
    pub idle: bool,
}

impl Player {
    /// A player at the start of `shared`'s recording (playing), or paused at `at_us`.
    pub fn new(shared: Arc<Shared>, opts: PlayerOptions) -> Player {
        let meta = source(&shared).meta();
        let mut p = Player {
            emu: Emulator::new(meta.cols, meta.rows),
            meta,
            shared,
            pos: 0,
            t_us: 0,
            playing: opts.at_us.is_none(),
            speed: 2,
            idle: false,
            panel_focus: false,
            panel_sel: 0,
            count: None,
            prompt: None,
            search: None,
            pattern: None,
            hit: None,
            meta_hit: None,
            hits: Vec::new(),
            pan: (0, 0),
            scroll: 0,
            message: None,
            live: opts.follow.then_some(Live {
                writing: true,
                lag_us: 0,
                following: true,
            }),
            pending_at: None,
            last_tick: None,
        };
        if let Some(sp) = opts.speed {
            p.speed = SPEEDS
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - sp).abs().total_cmp(&(b.1 - sp).abs()))
                .map_or(2, |(i, _)| i);
        }
        p.idle = opts.idle;
        if let Some(at) = opts.at_us {
            p.seek_time(at);
            p.pending_at = Some(at).filter(|&at| p.t_us < at);
        } else if opts.follow {
            p.seek_end();
        }
        p
    }

    /// Mark the player as following a live recording that is being written (tests).
    #[doc(hidden)]
    pub fn set_live_for_test(&mut self) {
        self.live = Some(Live {
            writing: true,
            lag_us: 0,
            following: false,
        });
    }

    /// The recording and its index.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// The recording's title facts.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Events applied.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Play clock, µs.
    pub fn time_us(&self) -> u64 {
        self.t_us
    }

    /// True while playing.
    pub fn playing(&self) -> bool {
        self.playing
    }

    /// Playback speed factor.
    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed]
    }

    /// The current screen.
    pub fn emulator(&self) -> &Emulator {
        &self.emu
    }

    /// Wall time until the next event is due while playing (µs), `None` at the end.
    pub fn next_due_us(&self) -> Option<u64> {
        let rec = source(&self.shared);
        if self.pos >= rec.len() {
            return None;
        }
        let gap = rec.time_of(self.pos).saturating_sub(self.t_us);
        let gap = if self.idle { gap.min(IDLE_CAP_US) } else { gap };
        Some((gap as f64 / self.speed()) as u64)
    }

    /// True while a search is running.
    pub fn searching(&self) -> bool {
        self.search.is_some()
    }

    /// The status message, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The last search hit.
    pub fn hit(&self) -> Option<&Hit> {
        self.hit.as_ref()
    }

    /// Panel rows (a copy).
    pub fn panel_rows(&self) -> Vec<PanelRow> {
        source(&self.shared).panel().to_vec()
    }

    /// Move to "events `0..target` applied", keeping the play clock at `t_us`.
    fn seek_events(&mut self, target: u64, t_us: u64) {
        let rec = source(&self.shared);
        let target = target.min(rec.len());
        let index = self.shared.index();
        let (resume, _) = index.resume_point(target);
        if target >= self.pos && resume <= self.pos {
            sealcast_term::replay(&mut self.emu, &*rec, self.pos, target);
        } else {
            self.emu = index.seek(target, &*rec);
        }
        self.pos = target;
        self.t_us = t_us;
        self.scroll = 0;
    }

    /// [`Player::seek_time`], for the benchmark.
    #[doc(hidden)]
    pub fn seek_to_for_bench(&mut self, t: u64) {
        self.seek_time(t);
    }

    /// Seek to a time (µs, clamped to the recording).
    fn seek_time(&mut self, t: u64) {
        let (target, t) = {
            let rec = source(&self.shared);
            let t = t.min(rec.duration_us());
            (rec.events_until(t), t)
        };
        self.seek_events(target, t);
        if let Some(l) = self.live.as_mut() {
            l.following = false;
        }
    }

    fn seek_end(&mut self) {
        let (n, d) = {
            let rec = source(&self.shared);
            (rec.len(), rec.duration_us())
        };
        self.seek_events(n, d);
    }

    fn step_events(&mut self, n: i64, from: u64) {
        let target = if n < 0 {
            from.saturating_sub(n.unsigned_abs())
        } else {
            from.saturating_add(n as u64)
        };
        let t = {
            let rec = source(&self.shared);
            let target = target.min(rec.len());
            if target == 0 {
                0
            } else {
                rec.time_of(target - 1)
            }
        };
        self.playing = false;
        self.seek_events(target, t);
    }

    /// Advance the play clock by `dt` µs of wall time.
    fn advance(&mut self, dt: u64) {
        let mut budget = (dt as f64 * self.speed()) as u64;
        let rec = source(&self.shared);
        let n = rec.len();
        let mut target = self.pos;
        let mut t = self.t_us;
        loop {
            if target >= n {
                // The end, unless more is still being scanned or written.
                if self.live.is_none() && rec.scan_done() {
                    self.playing = false;
                }
                t = t.max(rec.duration_us());
                break;
            }
            let next_t = rec.time_of(target);
            let last_t = if target == 0 {
                0
            } else {
                rec.time_of(target - 1)
            };
            // With idle compression a gap ends at most IDLE_CAP_US after the last event
            // (or right away when the clock is already past that, after a seek).
            let limit = if self.idle {
                next_t.min((last_t + IDLE_CAP_US).max(t))
            } else {
                next_t
            };
            if t + budget < limit {
                t += budget;
                break;
            }
            budget -= limit.saturating_sub(t);
            t = next_t.max(t);
            target = rec.events_until(t).max(target + 1);
        }
        drop(rec);
        if target != self.pos {
            self.seek_events(target, t);
        } else {
            self.t_us = t;
        }
    }
}

/// The whole application: a library, a player, or both (a player opened from the library
/// returns to it on `q`).
#[derive(Debug, Default)]
pub struct App {
    /// The library view, when the app was started on a directory.
    pub library: Option<Library>,
    /// The player, when a recording is open.
    pub player: Option<Player>,
    /// The help overlay is shown.
    pub help: bool,
    /// Set when the app should exit.
    pub quit: bool,
    effects: Vec<Effect>,
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// A key event for `c` (tests).
pub fn char_key(c: char) -> Action {
    Action::Key(key(KeyCode::Char(c)))
}

impl App {
    /// An app showing one recording.
    pub fn with_player(p: Player) -> App {
        App {
            player: Some(p),
            ..App::default()
        }
    }

    /// An app showing a library.
    pub fn with_library(l: Library) -> App {
        App {
            library: Some(l),
            ..App::default()
        }
    }

    /// Open a player (after an [`Effect::Open`]).
    pub fn open_player(&mut self, p: Player) {
        self.player = Some(p);
    }

    /// Report that opening failed (shown in the library).
    pub fn open_failed(&mut self, why: String) {
        if let Some(l) = self.library.as_mut() {
            l.message = Some(why);
        }
    }

    /// Effects requested since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Apply one action.
    pub fn update(&mut self, a: Action) {
        match a {
            Action::Key(k) => {
                if k.kind == KeyEventKind::Release {
                    return;
                }
                self.on_key(k)
            }
            Action::Tick(now) => {
                if let Some(p) = self.player.as_mut() {
                    p.tick(now);
                }
            }
            Action::Verified(s) => {
                if let Some(p) = self.player.as_mut() {
                    p.shared
                        .rec
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .set_summary(s);
                }
            }
            Action::Commands(o) => {
                if let Some(p) = self.player.as_mut() {
                    p.shared
                        .rec
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .apply_overlay(o);
                }
            }
            Action::Library(u) => {
                if let Some(l) = self.library.as_mut() {
                    l.apply(u);
                }
            }
            Action::Live { writing, lag_us } => {
                if let Some(l) = self.player.as_mut().and_then(|p| p.live.as_mut()) {
                    l.writing = writing;
                    l.lag_us = lag_us;
                }
            }
        }
    }

    fn on_key(&mut self, k: KeyEvent) {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return;
        }
        if self.help {
            self.help = false;
            return;
        }
        if let Some(p) = self.player.as_mut() {
            match p.on_key(k) {
                KeyOutcome::Handled => {}
                KeyOutcome::Help => self.help = true,
                KeyOutcome::Quit => {
                    self.player = None;
                    if self.library.is_none() {
                        self.quit = true;
                    }
                }
            }
            return;
        }
        if let Some(l) = self.library.as_mut() {
            match l.on_key(k) {
                LibraryOutcome::None => {}
                LibraryOutcome::Quit => self.quit = true,
                LibraryOutcome::Help => self.help = true,
                LibraryOutcome::Open(path) => self.effects.push(Effect::Open(path)),
            }
        } else {
            self.quit = true;
        }
    }
}

/// What a key did in the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibraryOutcome {
    /// Nothing for the app to do.
    None,
    /// Leave.
    Quit,
    /// Show help.
    Help,
    /// Play this file.
    Open(PathBuf),
}

pub(crate) enum KeyOutcome {
    Handled,
    Help,
    Quit,
}

impl Player {
    fn tick(&mut self, now: u64) {
        let dt = self.last_tick.map_or(0, |l| now.saturating_sub(l));
        self.last_tick = Some(now);
        if let Some(at) = self.pending_at {
            let (reached, done) = {
                let rec = source(&self.shared);
                (rec.duration_us() >= at, rec.scan_done())
            };
            if reached || done {
                self.pending_at = None;
                self.seek_time(at);
            }
        }
        if self.live.is_some_and(|l| l.following) {
            self.seek_end();
            if let Some(l) = self.live.as_mut() {
                l.following = true;
            }
        } else if self.playing && dt > 0 {
            self.advance(dt);
        }
        if let Some(mut s) = self.search.take() {
            let step = {
                let rec = source(&self.shared);
                let index = self.shared.index();
                s.step(&index, &*rec, SEARCH_BUDGET)
            };
            match step {
                Step::Searching(n) => {
                    self.message = Some(format!("searching… {n} events"));
                    self.search = Some(s);
                }
                Step::Found(h) => {
                    let t = self.hit_time(&h);
                    match self.meta_hit.take() {
                        // The nearer one in the search's direction; the command or
                        // statement when both are at the same time.
                        Some((row, mt))
                            if (s.direction() == Direction::Forward && mt <= t)
                                || (s.direction() == Direction::Backward && mt >= t) =>
                        {
                            self.show_meta_hit(row)
                        }
                        _ => self.show_hit(h),
                    }
                }
                Step::NotFound => match self.meta_hit.take() {
                    Some((row, _)) => self.show_meta_hit(row),
                    None => {
                        self.message = Some(format!("pattern not found: {}", s.regex().as_str()));
                    }
                },
            }
        }
    }

    /// Run a search to completion (tests; the UI runs it a tick at a time).
    pub fn finish_search(&mut self) {
        while self.search.is_some() {
            let now = self.last_tick.unwrap_or(0);
            let playing = self.playing;
            self.playing = false;
            self.tick(now);
            self.playing = playing;
        }
    }

    fn hit_time(&self, h: &Hit) -> u64 {
        let rec = source(&self.shared);
        if h.event == 0 {
            0
        } else {
            rec.time_of(h.event - 1)
        }
    }

    /// Seek to the command or statement in panel row `row` that matched the search, select
    /// it, and say where the match was.
    fn show_meta_hit(&mut self, row: usize) {
        let Some(r) = source(&self.shared).panel().get(row).cloned() else {
            return;
        };
        self.playing = false;
        self.seek_time(r.t_us);
        self.hit = None;
        self.panel_sel = row;
        let where_ = match &r.kind {
            PanelKind::Query { connection, .. } => format!(
                "in an SQL statement ({})",
                connection.as_deref().unwrap_or("?")
            ),
            _ => "in a command line".to_string(),
        };
        self.message = Some(format!(
            "match at {} {where_}: {}",
            fmt_time(r.t_us),
            r.text
        ));
        if !self.hits.contains(&r.t_us) {
            self.hits.push(r.t_us);
        }
    }

    /// The nearest command line or statement after (forward) or before (backward) the
    /// current time that `re` matches.
    fn find_meta(&self, re: &Regex, dir: Direction) -> Option<(usize, u64)> {
        let rec = source(&self.shared);
        let rows = rec.panel();
        let ok = |r: &PanelRow| r.kind.is_command() && re.is_match(&r.text);
        match dir {
            Direction::Forward => rows
                .iter()
                .enumerate()
                .find(|(_, r)| r.t_us > self.t_us && ok(r)),
            Direction::Backward => rows
                .iter()
                .enumerate()
                .rev()
                .find(|(_, r)| r.t_us < self.t_us && ok(r)),
        }
        .map(|(i, r)| (i, r.t_us))
    }

    fn show_hit(&mut self, h: Hit) {
        let t = self.hit_time(&h);
        self.playing = false;
        self.seek_events(h.event, t);
        if let Place::Scrollback { row } = h.place {
            let above = self.shared.index().transcript().rows_before(h.event);
            self.scroll = above.saturating_sub(row);
        }
        let where_ = match h.place {
            Place::Screen { .. } => "on screen",
            Place::Scrollback { .. } => "scrolled off",
            Place::Raw => "in the raw output only (not on screen)",
        };
        self.message = Some(format!("match at {} {where_}: {}", fmt_time(t), h.text));
        if !self.hits.contains(&t) {
            self.hits.push(t);
        }
        self.hit = Some(h);
    }

    fn start_search(&mut self, dir: Direction) {
        let Some(re) = self.pattern.clone() else {
            self.message = Some("no previous search".into());
            return;
        };
        self.meta_hit = self.find_meta(&re, dir);
        self.search = Some(Search::new(re, dir, self.pos));
        self.message = Some("searching…".into());
    }

    fn commands(&self, failed_only: bool) -> Vec<u64> {
        let rows = source(&self.shared).panel().to_vec();
        let cmds: Vec<&PanelRow> = rows.iter().filter(|r| r.kind.is_command()).collect();
        let pool: Vec<&PanelRow> = if !cmds.is_empty() {
            cmds
        } else if failed_only {
            rows.iter().collect()
        } else {
            rows.iter()
                .filter(|r| r.kind == crate::model::PanelKind::Marker)
                .collect()
        };
        pool.into_iter()
            .filter(|r| !failed_only || r.failed())
            .map(|r| r.t_us)
            .collect()
    }

    fn jump_row(&mut self, forward: bool, failed_only: bool) {
        let times = self.commands(failed_only);
        let t = self.t_us;
        let next = if forward {
            times.iter().copied().find(|&x| x > t)
        } else {
            times.iter().rev().copied().find(|&x| x + 500_000 < t)
        };
        match next {
            Some(x) => {
                self.seek_time(x);
                self.message = None;
            }
            None => {
                self.message = Some(
                    if times.is_empty() {
                        if failed_only {
                            "no failed commands"
                        } else {
                            "no commands or markers"
                        }
                    } else if forward {
                        "no later one"
                    } else {
                        "no earlier one"
                    }
                    .into(),
                )
            }
        }
    }

    fn on_prompt_key(&mut self, k: KeyEvent) {
        let Some(prompt) = self.prompt.as_mut() else {
            return;
        };
        let text = match prompt {
            Prompt::Search(_, t) | Prompt::Goto(t) => t,
        };
        match k.code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Backspace if text.pop().is_none() => self.prompt = None,
            KeyCode::Backspace => {}
            KeyCode::Char(c) => text.push(c),
            KeyCode::Enter => {
                let Some(p) = self.prompt.take() else {
                    return;
                };
                match p {
                    Prompt::Goto(t) => match parse_time(&t) {
                        Some(us) => {
                            self.seek_time(us);
                            self.message = None;
                        }
                        None => {
                            self.message = Some(format!("not a time: {t} (try 1h2m3s, 83.5, 1:02)"))
                        }
                    },
                    Prompt::Search(dir, pat) => {
                        if pat.is_empty() {
                            self.start_search(dir);
                            return;
                        }
                        match Regex::new(&pat) {
                            Ok(re) => {
                                self.pattern = Some(re);
                                self.hits.clear();
                                self.start_search(dir);
                            }
                            Err(e) => {
                                let first = e.to_string().lines().last().unwrap_or("").to_string();
                                self.message = Some(format!("bad pattern: {first}"));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn on_panel_key(&mut self, k: KeyEvent) -> bool {
        let n = source(&self.shared).panel().len();
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => self.panel_sel = self.panel_sel.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.panel_sel = (self.panel_sel + 1).min(n.saturating_sub(1))
            }
            KeyCode::PageUp => self.panel_sel = self.panel_sel.saturating_sub(10),
            KeyCode::PageDown => self.panel_sel = (self.panel_sel + 10).min(n.saturating_sub(1)),
            KeyCode::Home => self.panel_sel = 0,
            KeyCode::End => self.panel_sel = n.saturating_sub(1),
            KeyCode::Enter => {
                let t = source(&self.shared)
                    .panel()
                    .get(self.panel_sel)
                    .map(|r| r.t_us);
                if let Some(t) = t {
                    self.seek_time(t);
                }
            }
            KeyCode::Tab | KeyCode::Esc => self.panel_focus = false,
            _ => return false,
        }
        true
    }

    fn on_key(&mut self, k: KeyEvent) -> KeyOutcome {
        if self.prompt.is_some() {
            self.on_prompt_key(k);
            return KeyOutcome::Handled;
        }
        if self.search.is_some() && k.code == KeyCode::Esc {
            self.search = None;
            self.message = Some("search cancelled".into());
            return KeyOutcome::Handled;
        }
        if self.panel_focus && self.on_panel_key(k) {
            return KeyOutcome::Handled;
        }
        let shift = k.modifiers.contains(KeyModifiers::SHIFT);
        let ctrl = k
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        // Digits: jump to N×10 % at once; a number followed by `,`/`.` steps that many
        // events from where the player was before the first digit.
        if let KeyCode::Char(c @ '0'..='9') = k.code {
            let d = u64::from(c as u8 - b'0');
            let (n, pos0, t0) = match self.count {
                Some((n, p, t)) => (n.saturating_mul(10).saturating_add(d), p, t),
                None => (d, self.pos, self.t_us),
            };
            self.count = Some((n, pos0, t0));
            let dur = source(&self.shared).duration_us();
            self.seek_time(dur / 10 * d);
            return KeyOutcome::Handled;
        }
        let count = self.count.take();
        self.message = None;
        match k.code {
            KeyCode::Char('q') => return KeyOutcome::Quit,
            KeyCode::Char('h') => return KeyOutcome::Help,
            KeyCode::Char(' ') => {
                if !self.playing && self.pos >= source(&self.shared).len() && self.live.is_none() {
                    self.seek_time(0);
                }
                self.playing = !self.playing;
            }
            KeyCode::Char(c @ (',' | '.')) => {
                let (n, from) = match count {
                    Some((n, pos0, t0)) => {
                        self.seek_events(pos0, t0);
                        (n.max(1) as i64, pos0)
                    }
                    None => (1, self.pos),
                };
                self.step_events(if c == ',' { -n } else { n }, from);
            }
            KeyCode::Left | KeyCode::Right if ctrl => {
                self.pan.0 = if k.code == KeyCode::Left {
                    self.pan.0.saturating_sub(4)
                } else {
                    self.pan.0.saturating_add(4)
                };
            }
            KeyCode::Up | KeyCode::Down if ctrl => {
                self.pan.1 = if k.code == KeyCode::Up {
                    self.pan.1.saturating_sub(2)
                } else {
                    self.pan.1.saturating_add(2)
                };
            }
            KeyCode::Char('H') => self.pan.0 = self.pan.0.saturating_sub(4),
            KeyCode::Char('L') => self.pan.0 = self.pan.0.saturating_add(4),
            KeyCode::Char('K') => self.pan.1 = self.pan.1.saturating_sub(2),
            KeyCode::Char('J') => self.pan.1 = self.pan.1.saturating_add(2),
            KeyCode::Left => {
                let d = if shift { SEEK_BIG_US } else { SEEK_SMALL_US };
                self.seek_time(self.t_us.saturating_sub(d));
            }
            KeyCode::Right => {
                let d = if shift { SEEK_BIG_US } else { SEEK_SMALL_US };
                self.seek_time(self.t_us.saturating_add(d));
            }
            KeyCode::PageUp => {
                let above = self.shared.index().transcript().rows_before(self.pos);
                self.scroll = (self.scroll + u64::from(self.meta.rows / 2).max(1)).min(above);
            }
            KeyCode::PageDown => {
                self.scroll = self
                    .scroll
                    .saturating_sub(u64::from(self.meta.rows / 2).max(1));
            }
            KeyCode::Char('g') | KeyCode::Home => self.seek_time(0),
            KeyCode::Char('G') | KeyCode::End => {
                self.seek_end();
                if let Some(l) = self.live.as_mut() {
                    l.following = true;
                    self.playing = true;
                }
            }
            KeyCode::Char(':') => self.prompt = Some(Prompt::Goto(String::new())),
            KeyCode::Char('/') => {
                self.prompt = Some(Prompt::Search(Direction::Forward, String::new()))
            }
            KeyCode::Char('?') => {
                self.prompt = Some(Prompt::Search(Direction::Backward, String::new()))
            }
            KeyCode::Char('n') => self.start_search(Direction::Forward),
            KeyCode::Char('N') => self.start_search(Direction::Backward),
            KeyCode::Char('<') => self.speed = self.speed.saturating_sub(1),
            KeyCode::Char('>') => self.speed = (self.speed + 1).min(SPEEDS.len() - 1),
            KeyCode::Char('=') => self.speed = 2,
            KeyCode::Char('i') => self.idle = !self.idle,
            KeyCode::Char('[') => self.jump_row(false, false),
            KeyCode::Char(']') => self.jump_row(true, false),
            KeyCode::Char('{') => self.jump_row(false, true),
            KeyCode::Char('}') => self.jump_row(true, true),
            KeyCode::Tab => {
                self.panel_focus = true;
                // Start at the row being played.
                let rows = source(&self.shared).panel().to_vec();
                self.panel_sel = rows.iter().rposition(|r| r.t_us <= self.t_us).unwrap_or(0);
            }
            KeyCode::Esc => self.hit = None,
            _ => {}
        }
        KeyOutcome::Handled
    }
}
