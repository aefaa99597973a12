//! The library view: one row per recording of a directory (the archive, a spool), filtered
//! by typing, Enter plays. Rows start from what the directory listing gives (name, size,
//! time); the rest (header, duration, command count, verification) arrives as
//! [`RowUpdate`]s worked out in the background.

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sealcast_format::names;

use crate::app::LibraryOutcome;
use crate::model::Outcome;

/// One recording in the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryRow {
    /// The file.
    pub path: PathBuf,
    /// Session start, Unix µs (the file's mtime until the header is read).
    pub start_us: Option<u64>,
    /// Recorded user.
    pub user: Option<String>,
    /// Host id.
    pub host: Option<String>,
    /// Duration, µs.
    pub duration_us: Option<u64>,
    /// File size, bytes.
    pub size: u64,
    /// Commands (panel rows of command kind), when known.
    pub commands: Option<usize>,
    /// Verification: status name and conclusion, when known.
    pub status: Option<(String, Outcome)>,
    /// The file cannot be played (why).
    pub error: Option<String>,
    /// The recorder still writes it (its lock is held).
    pub live: bool,
}

/// Details of one row, from the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowUpdate {
    /// Which row.
    pub path: PathBuf,
    /// Start, Unix µs.
    pub start_us: Option<u64>,
    /// User.
    pub user: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Duration, µs.
    pub duration_us: Option<u64>,
    /// Commands.
    pub commands: Option<usize>,
    /// Verification.
    pub status: Option<(String, Outcome)>,
    /// Not playable.
    pub error: Option<String>,
    /// Live.
    pub live: bool,
}

/// The library view state.
#[derive(Debug, Clone, Default)]
pub struct Library {
    /// The directory shown.
    pub dir: PathBuf,
    /// All rows, newest first.
    pub rows: Vec<LibraryRow>,
    /// The filter typed so far.
    pub filter: String,
    /// Selected row among the filtered ones.
    pub sel: usize,
    /// A message (e.g. why a file did not open).
    pub message: Option<String>,
}

impl Library {
    /// List `*.cast.zst` files of `dir` (not recursive), newest first.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn scan(dir: &Path) -> std::io::Result<Library> {
        let mut rows = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !names::is_recording_name(name) {
                continue;
            }
            let md = match e.metadata() {
                Ok(m) if m.is_file() => m,
                _ => continue,
            };
            let mtime = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_micros() as u64);
            rows.push(LibraryRow {
                path: e.path(),
                start_us: mtime,
                user: None,
                host: None,
                duration_us: None,
                size: md.len(),
                commands: None,
                status: None,
                error: None,
                live: false,
            });
        }
        let mut l = Library {
            dir: dir.to_path_buf(),
            rows,
            ..Library::default()
        };
        l.sort();
        Ok(l)
    }

    fn sort(&mut self) {
        self.rows
            .sort_by(|a, b| b.start_us.cmp(&a.start_us).then(a.path.cmp(&b.path)));
    }

    /// Apply a background update.
    pub fn apply(&mut self, u: RowUpdate) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.path == u.path) {
            r.start_us = u.start_us.or(r.start_us);
            r.user = u.user;
            r.host = u.host;
            r.duration_us = u.duration_us;
            r.commands = u.commands;
            r.status = u.status;
            r.error = u.error;
            r.live = u.live;
        }
        self.sort();
    }

    /// Rows matching the filter (every word must appear in the file name, user, host or
    /// status; case-insensitive).
    pub fn visible(&self) -> Vec<&LibraryRow> {
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.rows
            .iter()
            .filter(|r| {
                let hay = format!(
                    "{} {} {} {}",
                    r.path
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default(),
                    r.user.as_deref().unwrap_or(""),
                    r.host.as_deref().unwrap_or(""),
                    r.status.as_ref().map(|s| s.0.as_str()).unwrap_or(""),
                )
                .to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect()
    }

    /// Handle a key.
    pub fn on_key(&mut self, k: KeyEvent) -> LibraryOutcome {
        let n = self.visible().len();
        match k.code {
            KeyCode::Esc if self.filter.is_empty() => return LibraryOutcome::Quit,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::F(1) => return LibraryOutcome::Help,
            KeyCode::Up => self.sel = self.sel.saturating_sub(1),
            KeyCode::Down => self.sel = (self.sel + 1).min(n.saturating_sub(1)),
            KeyCode::PageUp => self.sel = self.sel.saturating_sub(10),
            KeyCode::PageDown => self.sel = (self.sel + 10).min(n.saturating_sub(1)),
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Enter => {
                if let Some(r) = self.visible().get(self.sel) {
                    return LibraryOutcome::Open(r.path.clone());
                }
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.push(c);
                self.sel = 0;
            }
            _ => {}
        }
        let n = self.visible().len();
        self.sel = self.sel.min(n.saturating_sub(1));
        LibraryOutcome::None
    }
}
