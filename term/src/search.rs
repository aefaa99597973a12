//! Search across time: where does a pattern *appear* on the rendered screen (or in the rows
//! that scrolled off), forwards or backwards from a point, and, as a fallback, in the raw
//! output bytes (text that never reached the screen as such).
//!
//! "Appears" means: once event `e` is applied, some matched text is visible (on the screen
//! or in a row that scrolled off during `e`) more times than it was on the screen before
//! `e`. Text that merely scrolls up a row is not a new appearance; text printed and
//! scrolled off within one event is (found in the transcript). The search is incremental:
//! [`Search::step`] does a bounded amount of work so a UI stays responsive.

use std::collections::HashMap;

use regex::Regex;

use crate::emulator::Emulator;
use crate::index::{EventSource, Index};

/// Where a hit is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// On the visible screen: row, first column, width in columns.
    Screen {
        /// Row from the top, 0-based.
        row: u16,
        /// First column, 0-based.
        col: u16,
        /// Width in columns.
        width: u16,
    },
    /// In the transcript row with this index (it scrolled off during the hit's event).
    Scrollback {
        /// Transcript row index.
        row: u64,
    },
    /// Only in the raw output bytes of the hit's event (never on screen as such).
    Raw,
}

/// A search result: seek to "events `0..event` applied" to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Events applied at the hit.
    pub event: u64,
    /// Where.
    pub place: Place,
    /// The matched text.
    pub text: String,
}

/// Search direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Later than the origin (`/`, `n`).
    Forward,
    /// Earlier than the origin (`?`, `N`).
    Backward,
}

/// Result of one [`Search::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Found.
    Found(Hit),
    /// Still going: events scanned so far.
    Searching(u64),
    /// No match in that direction (screen, scrollback or raw bytes).
    NotFound,
}

/// Matches on the visible screen: (row, col, width, text).
pub fn screen_matches(emu: &Emulator, re: &Regex) -> Vec<(u16, u16, u16, String)> {
    let screen = emu.screen();
    let (cols, rows) = emu.size();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut col_at: Vec<u16> = Vec::new();
    for r in 0..rows {
        text.clear();
        col_at.clear();
        for c in 0..cols {
            let Some(cell) = screen.cell(r, c) else {
                continue;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let s = cell.contents();
            let s = if s.is_empty() { " " } else { s };
            for _ in 0..s.len() {
                col_at.push(c);
            }
            text.push_str(s);
        }
        col_at.push(cols);
        for m in re.find_iter(&text) {
            if m.as_str().is_empty() {
                continue;
            }
            let c0 = col_at[m.start()];
            let c1 = col_at[m.end()];
            out.push((r, c0, (c1 - c0).max(1), m.as_str().to_string()));
        }
    }
    out
}

fn counts(hits: &[(u16, u16, u16, String)]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for h in hits {
        *m.entry(h.3.clone()).or_insert(0) += 1;
    }
    m
}

/// An incremental search (see the module docs).
#[derive(Debug)]
pub struct Search {
    re: Regex,
    raw: Option<regex::bytes::Regex>,
    dir: Direction,
    origin: u64,
    scanned: u64,
    fwd: Option<(Emulator, u64, HashMap<String, usize>)>,
    /// Backward: the segment end still to scan (targets ≤ this), and the best hit of the
    /// segment being scanned.
    back_end: u64,
    done_screen: bool,
}

impl Search {
    /// A search for `re` from "events `0..origin` applied".
    pub fn new(re: Regex, dir: Direction, origin: u64) -> Search {
        let raw = regex::bytes::Regex::new(re.as_str()).ok();
        Search {
            re,
            raw,
            dir,
            origin,
            scanned: 0,
            fwd: None,
            back_end: origin.saturating_sub(1),
            done_screen: false,
        }
    }

    /// The pattern.
    pub fn regex(&self) -> &Regex {
        &self.re
    }

    /// The direction.
    pub fn direction(&self) -> Direction {
        self.dir
    }

    /// Work on the search for about `budget` events.
    pub fn step(&mut self, index: &Index, src: &dyn EventSource, budget: u64) -> Step {
        if !self.done_screen {
            let r = match self.dir {
                Direction::Forward => self.step_forward(index, src, budget),
                Direction::Backward => self.step_backward(index, src, budget),
            };
            match r {
                Some(s) => return s,
                None => self.done_screen = true,
            }
        }
        match self.raw_search(src) {
            Some(h) => Step::Found(h),
            None => Step::NotFound,
        }
    }

    /// Check the state after event `e` was applied to `emu` against `prev`.
    fn check(
        &self,
        emu: &Emulator,
        index: &Index,
        e: u64,
        prev: &HashMap<String, usize>,
    ) -> (Option<Hit>, HashMap<String, usize>) {
        let hits = screen_matches(emu, &self.re);
        let now = counts(&hits);
        let mut visible = now.clone();
        let mut scrolled = Vec::new();
        if e < index.transcript_events() {
            let t = index.transcript();
            let (a, b) = (t.rows_before(e), t.rows_before(e + 1));
            t.visit(a..b, |row| {
                for m in self.re.find_iter(&row.text) {
                    if !m.as_str().is_empty() {
                        *visible.entry(m.as_str().to_string()).or_insert(0) += 1;
                        scrolled.push((row.index, m.as_str().to_string()));
                    }
                }
                true
            });
        }
        for (text, n) in &visible {
            if *n > prev.get(text).copied().unwrap_or(0) {
                let place = if let Some(h) = hits.iter().find(|h| &h.3 == text) {
                    Place::Screen {
                        row: h.0,
                        col: h.1,
                        width: h.2,
                    }
                } else if let Some((row, _)) = scrolled.iter().find(|s| &s.1 == text) {
                    Place::Scrollback { row: *row }
                } else {
                    continue;
                };
                let hit = Hit {
                    event: e + 1,
                    place,
                    text: text.clone(),
                };
                return (Some(hit), now);
            }
        }
        (None, now)
    }

    fn step_forward(&mut self, index: &Index, src: &dyn EventSource, budget: u64) -> Option<Step> {
        let (mut emu, mut next, mut prev) = match self.fwd.take() {
            Some(s) => s,
            None => {
                let emu = index.seek(self.origin, src);
                let prev = counts(&screen_matches(&emu, &self.re));
                (emu, self.origin, prev)
            }
        };
        let end = src.len();
        let mut found = None;
        let mut left = budget.max(1);
        while next < end && left > 0 && found.is_none() {
            let mut drawn = false;
            src.visit(next, &mut |_, ev| {
                emu.apply(&ev);
                drawn = ev.kind.is_drawn() || ev.kind == crate::Kind::Resize;
                false
            });
            if drawn {
                let (hit, now) = self.check(&emu, index, next, &prev);
                found = hit;
                prev = now;
            }
            next += 1;
            left -= 1;
            self.scanned += 1;
        }
        if let Some(h) = found {
            return Some(Step::Found(h));
        }
        if next >= end {
            return None;
        }
        self.fwd = Some((emu, next, prev));
        Some(Step::Searching(self.scanned))
    }

    fn step_backward(&mut self, index: &Index, src: &dyn EventSource, budget: u64) -> Option<Step> {
        let mut left = budget.max(1);
        while self.back_end > 0 {
            // Segment: start at the resume point before the end, scan forward to the end,
            // keep the last appearance.
            let (start, _) = index.resume_point(self.back_end - 1);
            let mut emu = index.seek(start, src);
            let mut prev = counts(&screen_matches(&emu, &self.re));
            let mut last = None;
            let mut e = start;
            while e < self.back_end {
                let mut drawn = false;
                src.visit(e, &mut |_, ev| {
                    emu.apply(&ev);
                    drawn = ev.kind.is_drawn() || ev.kind == crate::Kind::Resize;
                    false
                });
                if drawn {
                    let (hit, now) = self.check(&emu, index, e, &prev);
                    if hit.is_some() {
                        last = hit;
                    }
                    prev = now;
                }
                e += 1;
                self.scanned += 1;
            }
            self.back_end = start;
            if let Some(h) = last {
                return Some(Step::Found(h));
            }
            left = left.saturating_sub((e - start).max(1));
            if left == 0 {
                return Some(Step::Searching(self.scanned));
            }
        }
        None
    }

    /// The first (forward) or last (backward) event whose raw drawn bytes match.
    fn raw_search(&self, src: &dyn EventSource) -> Option<Hit> {
        let raw = self.raw.as_ref()?;
        let mut best = None;
        let (from, to) = match self.dir {
            Direction::Forward => (self.origin, src.len()),
            Direction::Backward => (0, self.origin.saturating_sub(1)),
        };
        src.visit(from, &mut |i, ev| {
            if i >= to {
                return false;
            }
            if ev.kind.is_drawn() {
                if let Some(m) = raw.find(ev.data) {
                    best = Some(Hit {
                        event: i + 1,
                        place: Place::Raw,
                        text: String::from_utf8_lossy(m.as_bytes()).into_owned(),
                    });
                    return self.dir == Direction::Backward;
                }
            }
            true
        });
        best
    }
}
