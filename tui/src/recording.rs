//! A recording opened for playing: the compressed bytes (memory-mapped, or owned), a table of
//! its data frames and the time of every event, and the side-panel rows found on the way.
//! Frames are decoded on demand when events are visited; the decompressed recording is never
//! held whole (SPEC §1: every data frame holds complete lines, so each decodes alone).
//!
//! What is shown is what was verified (SPEC §7.2): the verifier is given this recording's
//! own bytes ([`Recording::bytes`], the mapping of the descriptor opened once, never the
//! path opened again), and every frame's decompressed content is hashed when it is decoded
//! (by the scan, and again whenever it is decoded for the screen: a mapped file's pages can
//! be dropped and read back, and a file rewritten in place changes under its mapping). An
//! event is verified only when the content it is drawn from has the digest the verifying
//! read recorded for its frame ([`VerifySummary::frames`]); otherwise it is
//! [`Verification::Failed`] and the badge says `MODIFIED`, naming the file and the frame.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sealcast_format::{
    parse_event, scan, ContainerError, Decompressor, EventKind, FrameKind, Header,
};
use sealcast_term::{parse_resize, Event, EventSource, Kind};

use crate::model::{
    frame_digest, FrameDigest, Outcome, PanelKind, PanelRow, Verification, VerifySummary,
};
use crate::rows::{CommandsOverlay, Mark, MetaEvent, Rows};

/// Why a file cannot be played.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No decodable header: empty, not zstd, not asciicast v3 (offset inside).
    #[error("not a recording: {0}")]
    Container(#[from] ContainerError),
    /// Line 0 is not an asciicast v3 header.
    #[error("not a recording: line 0 (header): {0}")]
    Header(String),
}

/// Data frames scanned when a file is opened, before the first screen is drawn; the rest
/// is scanned in the background.
pub const FIRST_FRAMES: usize = 4;

/// Idle gaps at least this long become side-panel rows (µs).
pub const IDLE_ROW_US: u64 = 10_000_000;

/// The bytes of the file.
enum Bytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// The compressed bytes a [`Recording`] plays, shared ([`Recording::bytes`]): a cheap handle
/// (an `Arc` of the mapping, or of the owned bytes) that derefs to `[u8]`, for verifying
/// exactly these bytes without holding the recording's lock. A live recording's later
/// growth is a new mapping; a handle keeps the one it was taken from.
#[derive(Clone)]
pub struct RecordingBytes(Arc<Bytes>);

impl std::ops::Deref for RecordingBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.get()
    }
}

impl std::fmt::Debug for RecordingBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordingBytes({} bytes)", self.0.get().len())
    }
}

/// One data frame (or the decodable part of a cut last frame).
#[derive(Debug, Clone)]
struct FrameInfo {
    offset: u64,
    len: u64,
    /// Index of the first event that starts in this frame.
    first_event: u64,
    /// Events starting in this frame.
    events: u32,
    /// First line (0 = header) and number of lines.
    first_line: u64,
    lines: u64,
    /// Time before the frame's first line, µs.
    t0_us: u64,
    /// Cut by a crash: decode what can be decoded.
    partial: bool,
    /// Panel rows before this frame's.
    rows_mark: Mark,
    /// The frame starts with a `b` line (the exact bytes of the previous frame's last event).
    leading_b: bool,
    /// [`frame_digest`] of the content the scan decoded (what times, rows and the index
    /// were made from; every later decode must give it again).
    digest: FrameDigest,
}

/// A recording ready to play (see the module docs).
pub struct Recording {
    path: Option<PathBuf>,
    /// The file, opened once: a live file is re-mapped from this descriptor, never by path.
    file: Option<File>,
    bytes: Arc<Bytes>,
    header: Header,
    frames: Vec<FrameInfo>,
    times: Vec<u64>,
    rows: Rows,
    /// Where scanning continues when the file grows (end of the last complete frame).
    scan_pos: u64,
    next_line: u64,
    time_us: u64,
    /// Kind of the last event (a `b` that follows it belongs to it).
    last_kind: Option<Kind>,
    summary: Option<VerifySummary>,
    cache: Mutex<Option<(usize, Arc<Vec<Decoded>>)>>,
    /// Frames the scan decoded lately, for the keyframe builder that follows it on the same
    /// thread (so a frame is decompressed and parsed once there, not twice).
    scanned: Mutex<std::collections::VecDeque<(usize, Arc<Vec<Decoded>>)>>,
    /// The last scanned frame's events, held until the next frame shows whether it starts
    /// with a `b` line that belongs to this frame's last event.
    held: Option<(usize, Vec<Decoded>)>,
    scan_done: bool,
    /// Frames whose content is not what was verified: decoded again with another digest
    /// than the scan's, or scanned with another digest than the summary's.
    changed: Mutex<BTreeSet<usize>>,
    /// Set when a decode adds to `changed`: the rows' states are to be recomputed
    /// ([`Recording::restate_changed`]).
    changed_news: AtomicBool,
}

/// A decoded event.
#[derive(Debug, Clone)]
struct Decoded {
    t_us: u64,
    kind: Kind,
    data: Vec<u8>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("path", &self.path)
            .field("frames", &self.frames.len())
            .field("events", &self.times.len())
            .finish()
    }
}

/// Header-level facts shown in the title and the library.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// Recorded terminal size.
    pub cols: u16,
    /// Recorded terminal size.
    pub rows: u16,
    /// Login name of the recorded user, when sealcast metadata is present.
    pub user: Option<String>,
    /// Host id.
    pub host: Option<String>,
    /// Session start, Unix µs (or the asciicast `timestamp` × 10⁶).
    pub start_us: Option<u64>,
    /// Recorded command, when not the login shell.
    pub command: Option<String>,
    /// Session id.
    pub session: Option<String>,
}

impl Recording {
    /// Open and memory-map a file, and scan its frames.
    ///
    /// # Errors
    /// [`OpenError::Io`] when it cannot be read, [`OpenError::Container`]/[`OpenError::Header`]
    /// when it is not a recording.
    pub fn open(path: &Path) -> Result<Recording, OpenError> {
        Recording::open_file(path, open(path)?, false)
    }

    /// [`Recording::open`] (or, with `live`, [`Recording::open_live`]) of a file the caller
    /// opened (`path` is its name, for messages and the verifier's file-name check): the
    /// one descriptor is mapped, and re-mapped as a live file grows.
    ///
    /// # Errors
    /// As [`Recording::open`].
    pub fn open_file(path: &Path, file: File, live: bool) -> Result<Recording, OpenError> {
        let bytes = map(path, &file)?;
        Recording::from_parts(Some(path.to_path_buf()), Some(file), bytes, live)
    }

    /// [`Recording::open`] for a file still being written: only complete frames are
    /// decoded; [`Recording::refresh`] picks up what is added later.
    ///
    /// # Errors
    /// As [`Recording::open`].
    pub fn open_live(path: &Path) -> Result<Recording, OpenError> {
        Recording::open_file(path, open(path)?, true)
    }

    /// A recording held in memory (tests, fuzzing).
    ///
    /// # Errors
    /// As [`Recording::open`], without I/O errors.
    pub fn from_bytes(data: Vec<u8>) -> Result<Recording, OpenError> {
        Recording::from_parts(None, None, Bytes::Owned(data), false)
    }

    fn from_parts(
        path: Option<PathBuf>,
        file: Option<File>,
        bytes: Bytes,
        live: bool,
    ) -> Result<Recording, OpenError> {
        let path_given = path.is_some();
        let data = bytes.get();
        // The header: the first line of the first data frame.
        let mut dec = Decompressor::new();
        let mut buf = Vec::new();
        let first = scan(data).next().unwrap_or(Err(ContainerError::Empty))?;
        if first.kind != FrameKind::Data {
            return Err(OpenError::Header(
                "the file starts with a checkpoint".into(),
            ));
        }
        if let Err(e) = dec.frame(first.bytes, first.offset, &mut buf) {
            if dec.partial(first.bytes, &mut buf) == 0 || !buf.contains(&b'\n') {
                return Err(e.into());
            }
        }
        let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
        let header = Header::parse(&buf[..end]).map_err(|e| OpenError::Header(e.to_string()))?;
        let mut r = Recording {
            path,
            file,
            bytes: Arc::new(bytes),
            header,
            frames: Vec::new(),
            times: Vec::new(),
            rows: Rows::default(),
            scan_pos: 0,
            next_line: 0,
            time_us: 0,
            last_kind: None,
            summary: None,
            cache: Mutex::new(None),
            scanned: Mutex::new(std::collections::VecDeque::new()),
            held: None,
            scan_done: false,
            changed: Mutex::new(BTreeSet::new()),
            changed_news: AtomicBool::new(false),
        };
        // Enough for the first screen; the rest is scanned in the background
        // ([`Recording::scan_step`]), or at once for recordings held in memory.
        if path_given {
            r.scan_step(FIRST_FRAMES, live);
        } else {
            while r.scan_step(usize::MAX, live) {}
        }
        Ok(r)
    }

    /// The file, when opened from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The compressed bytes this recording plays (a shared handle, [`RecordingBytes`]): what
    /// the verifier reads, so the badge describes the bytes shown (SPEC §7.2). For a live
    /// file, the mapping as of the last [`Recording::refresh`].
    pub fn bytes(&self) -> RecordingBytes {
        RecordingBytes(Arc::clone(&self.bytes))
    }

    /// The asciicast header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Title facts.
    pub fn meta(&self) -> Meta {
        let h = &self.header;
        let s = h.sealcast.as_ref();
        Meta {
            cols: h.term.cols.clamp(1, sealcast_term::MAX_SIDE),
            rows: h.term.rows.clamp(1, sealcast_term::MAX_SIDE),
            user: s.map(|m| m.user.clone()),
            host: s.map(|m| m.host.clone()),
            start_us: s.map(|m| m.start_us).or_else(|| {
                h.timestamp
                    .and_then(|t| u64::try_from(t).ok())
                    .map(|t| t * 1_000_000)
            }),
            command: h.command.clone(),
            session: s.map(|m| m.session.clone()),
        }
    }

    /// Compressed size, bytes.
    pub fn file_bytes(&self) -> u64 {
        self.bytes.get().len() as u64
    }

    /// Time of the last event, µs.
    pub fn duration_us(&self) -> u64 {
        self.times.last().copied().unwrap_or(0)
    }

    /// Time of event `i` (µs), or of the last event.
    pub fn time_of(&self, i: u64) -> u64 {
        let i = (i as usize).min(self.times.len().saturating_sub(1));
        self.times.get(i).copied().unwrap_or(0)
    }

    /// Number of events with time ≤ `t_us`.
    pub fn events_until(&self, t_us: u64) -> u64 {
        self.times.partition_point(|&t| t <= t_us) as u64
    }

    /// Side-panel rows found so far: commands and database statements when the recording
    /// has any, else markers, resizes, idle periods and the exit status (see
    /// [`crate::rows`]).
    pub fn panel(&self) -> &[PanelRow] {
        self.rows.panel()
    }

    /// Every row found so far (idle periods and markers too), for the timeline.
    pub fn timeline_rows(&self) -> impl Iterator<Item = &PanelRow> {
        self.rows.all()
    }

    /// The `c` and `p` events, each with its verification state under `summary` (its
    /// coverage, [`VerifySummary::state_of`], and only verified when its frame shows the
    /// bytes verified, as [`Recording::state_of`]; for the commands report, SPEC §2.4.5).
    pub fn meta_events(&self, summary: &VerifySummary) -> Vec<MetaEvent> {
        self.rows
            .meta()
            .iter()
            .map(|m| MetaEvent {
                state: self.state_under(summary, m.event),
                ..m.clone()
            })
            .collect()
    }

    /// Add the commands report's rows and sources to the panel.
    pub fn apply_overlay(&mut self, o: CommandsOverlay) {
        self.rows.apply_overlay(o);
    }

    /// Verification result for the badge, once known (without its frame digests): the
    /// verifier's, unless a frame shown is not the frame verified (its content changed
    /// after verification, or between the player's read and the verifier's): then
    /// [`Outcome::Broken`], `MODIFIED`, with the file and the first such frame's offset as
    /// the reason (SPEC §7.2).
    pub fn summary(&self) -> Option<VerifySummary> {
        let s = self.summary.as_ref()?;
        let mut out = VerifySummary {
            status: s.status.clone(),
            reason: s.reason.clone(),
            signer: s.signer.clone(),
            key_id: s.key_id.clone(),
            runs: s.runs.clone(),
            frames: Vec::new(),
            ..*s
        };
        if let Some(off) = self.first_changed() {
            let file = self
                .path
                .as_ref()
                .map_or_else(|| "the recording".to_string(), |p| p.display().to_string());
            out.outcome = Outcome::Broken;
            out.status = "MODIFIED".into();
            out.reason = format!(
                "{file}: data frame at offset {off} changed after verification \
                 (the bytes shown are not the bytes verified)"
            );
        }
        Some(out)
    }

    /// Offset of the first frame whose content is not the content verified, if any.
    fn first_changed(&self) -> Option<u64> {
        let c = self.changed.lock().unwrap_or_else(|e| e.into_inner());
        let fi = *c.first()?;
        self.frames.get(fi).map(|f| f.offset)
    }

    /// Record the verification result: from now on events have a verification state.
    pub fn set_summary(&mut self, s: VerifySummary) {
        self.summary = Some(s);
        self.check_frames(0);
        self.restate(true);
    }

    /// Compare the scanned frames from `from` on with the digests the summary vouches for:
    /// a frame scanned with another content than the one verified is changed.
    fn check_frames(&mut self, from: usize) {
        let Some(s) = &self.summary else {
            return;
        };
        let c = self.changed.get_mut().unwrap_or_else(|e| e.into_inner());
        for (fi, f) in self.frames.iter().enumerate().skip(from) {
            if let Ok(k) = s.frames.binary_search_by_key(&f.offset, |&(o, _)| o) {
                if s.frames[k].1 != f.digest {
                    c.insert(fi);
                }
            }
        }
    }

    /// True when a decode found a frame changed since the rows' states were computed: call
    /// [`Recording::restate_changed`].
    pub fn needs_restate(&self) -> bool {
        self.changed_news.load(Ordering::SeqCst)
    }

    /// Recompute every row's verification state after a decode found a changed frame.
    pub fn restate_changed(&mut self) {
        if self.changed_news.swap(false, Ordering::SeqCst) {
            self.restate(true);
        }
    }

    /// Recompute the rows' verification states (each the worst of its events' states, as
    /// [`Recording::state_of`] gives them): all of them (a new summary), or those added or
    /// changed by the frames scanned since the last call. Without a summary rows stay
    /// [`Verification::Pending`].
    fn restate(&mut self, all: bool) {
        let Some(s) = &self.summary else {
            return;
        };
        let mut rows = std::mem::take(&mut self.rows);
        if all {
            rows.restate(|e| self.state_under(s, e));
        } else {
            rows.restate_new(|e| self.state_under(s, e));
        }
        self.rows = rows;
    }

    /// The state of `event` under `s`: the summary's, except that an event the summary
    /// calls verified is [`Verification::Failed`] unless the frames it is drawn from (its
    /// own, and the next one when that one starts with its `b` line) have the content the
    /// verifying read recorded for them.
    fn state_under(&self, s: &VerifySummary, event: u64) -> Verification {
        let st = s.state_of(event);
        if !matches!(st, Verification::Verified { .. }) {
            return st;
        }
        let Some(fi) = self.frame_of(event) else {
            return Verification::Failed;
        };
        let shows_verified = |fi: usize| {
            self.frames.get(fi).is_some_and(|f| {
                s.frames
                    .binary_search_by_key(&f.offset, |&(o, _)| o)
                    .is_ok_and(|k| s.frames[k].1 == f.digest)
            }) && !self
                .changed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&fi)
        };
        let last_of_frame = self
            .frames
            .get(fi)
            .is_some_and(|f| event + 1 == f.first_event + u64::from(f.events));
        let next_b = last_of_frame && self.frames.get(fi + 1).is_some_and(|n| n.leading_b);
        if shows_verified(fi) && (!next_b || shows_verified(fi + 1)) {
            st
        } else {
            Verification::Failed
        }
    }

    fn frame_of(&self, event: u64) -> Option<usize> {
        let i = self.frames.partition_point(|f| f.first_event <= event);
        let f = self.frames.get(i.checked_sub(1)?)?;
        (event < f.first_event + u64::from(f.events)).then_some(i - 1)
    }

    /// Verification state of event `i` (SPEC §7), as the verifying read gave it;
    /// [`Verification::Pending`] until verification is done.
    pub fn state_of(&self, event: u64) -> Verification {
        match &self.summary {
            None => Verification::Pending,
            Some(s) => self.state_under(s, event),
        }
    }

    /// Time of the last verified event (the verified extent), when any event verified, as
    /// far as the scan got: while the background scan has not reached the summary's last
    /// verified event, the time of the last scanned event when that one is verified (the
    /// verifying read may finish before the scan of a large file does).
    pub fn verified_until_us(&self) -> Option<u64> {
        let s = self.summary.as_ref()?;
        let scanned = (self.times.len() as u64).checked_sub(1)?;
        let mut end = s.last_verified()?.min(scanned);
        // Not past a frame whose content is not the content verified.
        if let Some(fi) = self
            .changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
        {
            end = end.min(self.frames.get(*fi)?.first_event.checked_sub(1)?);
        }
        matches!(self.state_under(s, end), Verification::Verified { .. }).then(|| self.time_of(end))
    }

    /// Re-map a growing file from the descriptor it was opened with (never the path again:
    /// a file renamed over the path is not this recording); the new frames are scanned by
    /// [`Recording::scan_step`]. Returns true when the file grew.
    ///
    /// # Errors
    /// [`OpenError::Io`] when the file cannot be read again.
    pub fn refresh(&mut self) -> Result<bool, OpenError> {
        let (Some(path), Some(file)) = (self.path.as_ref(), self.file.as_ref()) else {
            return Ok(false);
        };
        let len = file
            .metadata()
            .map_err(|source| OpenError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        if len <= self.bytes.get().len() as u64 {
            return Ok(false);
        }
        self.bytes = Arc::new(map(path, file)?);
        // A cut last frame scanned before is scanned again now that it may be complete.
        if self.frames.last().is_some_and(|f| f.partial) {
            let f = self.frames.pop();
            if let Some(f) = f {
                self.times.truncate(f.first_event as usize);
                let fi = self.frames.len();
                self.changed
                    .get_mut()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|&c| c < fi);
                self.rows.truncate(f.rows_mark);
                self.next_line = f.first_line;
                self.time_us = f.t0_us;
            }
        }
        if let Ok(mut c) = self.cache.lock() {
            *c = None;
        }
        self.held = None;
        self.scanned.get_mut().map(|c| c.clear()).ok();
        Ok(true)
    }

    /// Scan up to `max_frames` more data frames from where the last scan stopped. With
    /// `live`, a frame cut at the end is left for a later [`Recording::refresh`]; otherwise
    /// its decodable lines are taken (a crash tail) and the scan is complete. Returns true
    /// while there is more to scan.
    pub fn scan_step(&mut self, max_frames: usize, live: bool) -> bool {
        if self.scan_done {
            return false;
        }
        let data_len = self.bytes.get().len();
        let start = self.scan_pos as usize;
        if start >= data_len {
            if !live {
                self.finish_scan();
            }
            return false;
        }
        let mut dec = Decompressor::new();
        let mut buf = Vec::new();
        let mut stop_at = None;
        let mut data_frames = 0;
        let mut end = data_len as u64;
        let first_new = self.frames.len();
        // add_frame borrows self mutably; the bytes are held by a second handle meanwhile.
        let bytes = Arc::clone(&self.bytes);
        {
            let data = &bytes.get()[start..];
            let mut sc = scan(data);
            loop {
                if data_frames >= max_frames {
                    end = start as u64 + sc.position();
                    break;
                }
                let f = match sc.next() {
                    None => break,
                    Some(Ok(f)) => f,
                    Some(Err(e)) => {
                        let off = e.offset().unwrap_or(0);
                        stop_at = Some((off, matches!(e, ContainerError::Truncated { .. })));
                        end = start as u64 + off;
                        break;
                    }
                };
                match f.kind {
                    FrameKind::Checkpoint => {}
                    FrameKind::Data => {
                        data_frames += 1;
                        buf.clear();
                        // A damaged frame (a modified recording) still shows what decodes:
                        // its complete lines, then the frames after it.
                        let damaged = dec.frame(f.bytes, f.offset, &mut buf).is_err();
                        if damaged {
                            buf.clear();
                            dec.partial(f.bytes, &mut buf);
                            let keep = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                            buf.truncate(keep);
                        }
                        self.add_frame(start as u64 + f.offset, f.len, &buf, damaged);
                    }
                }
            }
        }
        drop(bytes);
        self.scan_pos = end;
        if data_frames > 0 {
            self.check_frames(first_new);
            self.restate(false);
        }
        let more = data_frames >= max_frames && stop_at.is_none() && (end as usize) < data_len;
        if more {
            return true;
        }
        if live {
            return false;
        }
        // The end of a closed (or crashed) file: a cut last frame gives its complete lines.
        if let Some((off, true)) = stop_at {
            let tail = &self.bytes.get()[start + off as usize..];
            buf.clear();
            dec.partial(tail, &mut buf);
            if let Some(last_lf) = buf.iter().rposition(|&b| b == b'\n') {
                buf.truncate(last_lf + 1);
                let len = tail.len() as u64;
                let fi = self.add_frame(end, len, &buf, true);
                self.check_frames(fi);
                self.restate(false);
            }
        }
        self.finish_scan();
        false
    }

    /// Drop the file's pages from this process's resident set (they stay in the page cache
    /// and fault back in when a frame is decoded again), so the memory-mapped recording does
    /// not count against the player's RSS once scanned.
    pub fn release_pages(&self) {
        if let Bytes::Mapped(m) = &*self.bytes {
            // SAFETY: MADV_DONTNEED on a read-only private file mapping that is never written
            // only discards resident pages; later reads fault in the same file bytes.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// [`Recording::release_pages`] for the pages holding bytes `offset..offset + len` of
    /// the file, widened to 64 KiB boundaries: a page fault maps the cached pages around it
    /// too (Linux "fault-around", `fault_around_bytes`, 64 KiB by default), and those would
    /// stay. A neighbour's page released with them just faults in again.
    fn release_range(&self, offset: usize, len: usize) {
        const WINDOW: usize = 64 << 10;
        if let Bytes::Mapped(m) = &*self.bytes {
            let start = offset & !(WINDOW - 1);
            let end = offset
                .saturating_add(len)
                .saturating_add(WINDOW - 1)
                .min(m.len().saturating_add(WINDOW - 1))
                & !(WINDOW - 1);
            let end = end.min(m.len());
            if start < end {
                // SAFETY: as in `release_pages`; memmap2 aligns the range to pages.
                let _ = unsafe {
                    m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
                };
            }
        }
    }

    /// Share of the file scanned so far (0.0–1.0), while the scan is still running.
    pub fn scan_progress(&self) -> Option<f64> {
        if self.scan_done || self.scan_pos as usize >= self.bytes.get().len() {
            return None;
        }
        let len = self.bytes.get().len().max(1) as f64;
        Some((self.scan_pos as f64 / len).min(1.0))
    }

    /// True once every frame of the file was scanned (never while following a live file).
    pub fn scan_done(&self) -> bool {
        self.scan_done
    }

    /// Record one decoded frame; returns its index.
    fn add_frame(&mut self, offset: u64, len: u64, buf: &[u8], partial: bool) -> usize {
        let mut info = FrameInfo {
            offset,
            len,
            first_event: self.times.len() as u64,
            events: 0,
            first_line: self.next_line,
            lines: 0,
            t0_us: self.time_us,
            partial,
            rows_mark: self.rows.mark(),
            leading_b: false,
            digest: frame_digest(buf),
        };
        // The frame's events as `decode` makes them (see `held`).
        let mut decoded: Vec<Decoded> = Vec::new();
        let fi = self.frames.len();
        for line in buf.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let line_no = self.next_line;
            self.next_line += 1;
            info.lines += 1;
            if line_no == 0 {
                continue;
            }
            let Ok(ev) = parse_event(line) else {
                continue;
            };
            let prev_t = self.time_us;
            self.time_us = self.time_us.saturating_add(ev.interval_us);
            if ev.kind == EventKind::Bytes {
                if info.events == 0 {
                    info.leading_b = true;
                }
                // As `decode`: a `b` after an event of this frame replaces its data; a `b`
                // on the frame's first line belongs to the previous frame's last event.
                let target = if info.events > 0 {
                    decoded.last_mut()
                } else if info.lines == 1 {
                    self.held.as_mut().and_then(|(_, v)| v.last_mut())
                } else {
                    None
                };
                if let (Some(last), Ok(raw)) = (target, ev.raw_bytes()) {
                    if matches!(last.kind, Kind::Output | Kind::Input | Kind::Stderr) {
                        last.data = raw;
                    }
                }
                continue;
            }
            let kind = Kind::from_code(ev.kind.code());
            let t = self.time_us;
            let idx = self.times.len() as u64;
            if self.time_us - prev_t >= IDLE_ROW_US && !self.times.is_empty() {
                let mut row = PanelRow::new(
                    prev_t,
                    self.time_us - prev_t,
                    PanelKind::Idle,
                    String::new(),
                );
                row.events.push(idx);
                self.rows.push_other(row);
            }
            match kind {
                Kind::Marker => {
                    let mut row = PanelRow::new(t, 0, PanelKind::Marker, ev.data.clone());
                    row.events.push(idx);
                    self.rows.push_other(row);
                }
                Kind::Resize => {
                    let text = match parse_resize(ev.data.as_bytes()) {
                        Some((c, r)) => format!("{c}×{r}"),
                        None => ev.data.clone(),
                    };
                    let mut row = PanelRow::new(t, 0, PanelKind::Resize, text);
                    row.events.push(idx);
                    self.rows.push_other(row);
                }
                Kind::Exit => {
                    let mut row = PanelRow::new(t, 0, PanelKind::Exit, format!("exit {}", ev.data));
                    row.status = ev.data.trim().parse().ok();
                    row.events.push(idx);
                    self.rows.push_exit(row);
                }
                _ => match ev.kind {
                    EventKind::Command => self.rows.command(idx, t, &ev.data),
                    EventKind::Process => self.rows.process(idx, t, &ev.data),
                    EventKind::Database => self.rows.database(idx, t, &ev.data),
                    _ => {}
                },
            }
            self.times.push(t);
            self.last_kind = Some(kind);
            info.events += 1;
            decoded.push(Decoded {
                t_us: t,
                kind,
                data: ev.data.into_bytes(),
            });
        }
        self.frames.push(info);
        if let Some(prev) = self.held.replace((fi, decoded)) {
            self.keep_scanned(prev);
        }
        fi
    }

    /// Frames kept for the keyframe builder (it follows the scan closely).
    const SCANNED_FRAMES: usize = 32;

    fn keep_scanned(&mut self, (fi, evs): (usize, Vec<Decoded>)) {
        if let Ok(c) = self.scanned.get_mut() {
            if c.len() >= Self::SCANNED_FRAMES {
                c.pop_front();
            }
            c.push_back((fi, Arc::new(evs)));
        }
    }

    /// The scan reached the end of a closed file: the last frame has no successor.
    fn finish_scan(&mut self) {
        self.scan_done = true;
        if let Some(prev) = self.held.take() {
            self.keep_scanned(prev);
        }
    }

    /// Decode frame `fi` into events (with exact bytes: `b` lines folded into the event
    /// before them, also across a frame boundary).
    fn decode(&self, fi: usize) -> Arc<Vec<Decoded>> {
        if let Ok(c) = self.scanned.lock() {
            if let Some((_, evs)) = c.iter().find(|(i, _)| *i == fi) {
                return evs.clone();
            }
        }
        if let Ok(c) = self.cache.lock() {
            if let Some((i, evs)) = c.as_ref() {
                if *i == fi {
                    return evs.clone();
                }
            }
        }
        let out = Arc::new(self.decode_uncached(fi));
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((fi, out.clone()));
        }
        out
    }

    fn decode_uncached(&self, fi: usize) -> Vec<Decoded> {
        thread_local! {
            // One zstd context per thread: the keyframe and transcript threads decode
            // frames at the same time, and a shared one would make one wait for the other.
            static DEC: std::cell::RefCell<Decompressor> =
                std::cell::RefCell::new(Decompressor::new());
        }
        DEC.with(|d| match d.try_borrow_mut() {
            Ok(mut d) => self.decode_with(&mut d, fi),
            Err(_) => self.decode_with(&mut Decompressor::new(), fi),
        })
    }

    /// Decompress frame `fi` into `buf` (cleared first) as the scan did: a whole frame, or
    /// the complete lines of a cut or damaged one. Returns false, and marks the frame
    /// changed, when the content is not the content the scan hashed (the file changed under
    /// the mapping): its events then show as failed (SPEC §7.2).
    fn content(&self, dec: &mut Decompressor, fi: usize, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        let Some(f) = self.frames.get(fi) else {
            return false;
        };
        let data = self.bytes.get();
        let end = (f.offset + f.len).min(data.len() as u64) as usize;
        let bytes = &data[(f.offset as usize).min(end)..end];
        if f.partial {
            dec.partial(bytes, buf);
            let keep = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            buf.truncate(keep);
        } else if dec.frame(bytes, f.offset, buf).is_err() {
            buf.clear();
        }
        // The frame is decompressed into `buf`: its pages of the mapping leave the resident
        // set again, so seeking and playing a long recording do not accumulate them.
        self.release_range(f.offset as usize, bytes.len());
        // The digest of the bytes in `buf`, which are this process's own: what is parsed
        // and drawn below is what was hashed here, whatever the file does meanwhile.
        if frame_digest(buf) == f.digest {
            return true;
        }
        let mut c = self.changed.lock().unwrap_or_else(|e| e.into_inner());
        if c.insert(fi) {
            self.changed_news.store(true, Ordering::SeqCst);
        }
        false
    }

    fn decode_with(&self, dec: &mut Decompressor, fi: usize) -> Vec<Decoded> {
        let mut out: Vec<Decoded> = Vec::new();
        let Some(f) = self.frames.get(fi) else {
            return out;
        };
        let mut buf = Vec::new();
        let same = self.content(dec, fi, &mut buf);
        let mut t = f.t0_us;
        let mut line_no = f.first_line;
        let mut leading = true;
        for line in buf.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            line_no += 1;
            if line_no == 1 {
                continue;
            }
            let Ok(ev) = parse_event(line) else {
                continue;
            };
            t = t.saturating_add(ev.interval_us);
            if ev.kind == EventKind::Bytes {
                if !leading {
                    if let (Some(last), Ok(raw)) = (out.last_mut(), ev.raw_bytes()) {
                        if matches!(last.kind, Kind::Output | Kind::Input | Kind::Stderr) {
                            last.data = raw;
                        }
                    }
                }
                continue;
            }
            leading = false;
            out.push(Decoded {
                t_us: t,
                kind: Kind::from_code(ev.kind.code()),
                data: ev.data.into_bytes(),
            });
        }
        if !same {
            // Changed content: its events keep the scan's numbering (never more of them).
            out.truncate(f.events as usize);
        }
        // A `b` at the start of the next frame belongs to this frame's last event.
        if let (Some(next), Some(last)) = (self.frames.get(fi + 1), out.last_mut()) {
            if next.leading_b && matches!(last.kind, Kind::Output | Kind::Input | Kind::Stderr) {
                let mut nbuf = Vec::new();
                let ok = self.content(dec, fi + 1, &mut nbuf) && !nbuf.is_empty();
                if ok {
                    if let Some(first) = nbuf.split(|&b| b == b'\n').next() {
                        if let Ok(ev) = parse_event(first) {
                            if ev.kind == EventKind::Bytes {
                                if let Ok(raw) = ev.raw_bytes() {
                                    last.data = raw;
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// Open `path` for reading.
/// Open `path` as `verify` does: a regular file only, never blocking on a FIFO (a library
/// directory may hold one). `O_NONBLOCK` makes open(2) of a FIFO return at once; `fstat`
/// then says what it is. The rule of `sealcast_reader::open_regular`, kept here because
/// this crate does not link the reader (ARCHITECTURE.md: verification is injected).
fn open(path: &Path) -> Result<File, OpenError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let io = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let ft = f.metadata().map_err(io)?.file_type();
    let kind = match () {
        _ if ft.is_file() => return Ok(f),
        _ if ft.is_dir() => "a directory",
        _ if ft.is_fifo() => "a FIFO",
        _ if ft.is_char_device() => "a character device",
        _ if ft.is_block_device() => "a block device",
        _ if ft.is_socket() => "a socket",
        _ => "a special file",
    };
    Err(io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{kind}, not a regular file"),
    )))
}

/// Map `file` (named `path`) as it is now.
fn map(path: &Path, file: &File) -> Result<Bytes, OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(Bytes::Owned(Vec::new()));
    }
    // SAFETY: the mapping is read-only and private; a recording is append-only while
    // written (SPEC §5.1), and a file truncated under us can at worst fault, as any reader.
    // A rewrite in place changes what the mapping reads: every decode is checked against the
    // digests of what was scanned and verified (SPEC §7.2).
    let m = unsafe { memmap2::Mmap::map(file) }.map_err(io)?;
    Ok(Bytes::Mapped(m))
}

impl EventSource for Recording {
    fn len(&self) -> u64 {
        self.times.len() as u64
    }

    fn visit(&self, start: u64, f: &mut dyn FnMut(u64, Event<'_>) -> bool) {
        let Some(mut fi) = self.frame_of(start) else {
            return;
        };
        loop {
            let Some(info) = self.frames.get(fi) else {
                return;
            };
            if !visit_frame(info.first_event, &self.decode(fi), start, u64::MAX, f) {
                return;
            }
            fi += 1;
        }
    }
}

/// Decoded frames handed out of the recording's lock: an index builder holds the
/// recording's read lock only while it collects them (decoding what is not cached), and
/// feeds the emulator after releasing it, so the scan's write lock never waits for an
/// emulator run (the transcript thread used to hold the read lock over 512 KiB of output).
#[derive(Debug, Default)]
pub struct FrameBatch {
    /// (index of the frame's first event, its events), in order.
    frames: Vec<(u64, Arc<Vec<Decoded>>)>,
}

impl Recording {
    /// The frames that hold events `start..end`, decoded; stops early once their drawn
    /// bytes reach `max_bytes` (at least one frame is taken).
    pub fn batch(&self, start: u64, end: u64, max_bytes: usize) -> FrameBatch {
        let mut out = FrameBatch::default();
        let Some(mut fi) = self.frame_of(start) else {
            return out;
        };
        let mut bytes = 0usize;
        while let Some(info) = self.frames.get(fi) {
            if info.first_event >= end || (bytes >= max_bytes && !out.frames.is_empty()) {
                break;
            }
            let evs = self.decode(fi);
            bytes += evs.iter().map(|e| e.data.len()).sum::<usize>();
            out.frames.push((info.first_event, evs));
            fi += 1;
        }
        out
    }
}

impl FrameBatch {
    /// Visit events `start..end` of the batch in order, as [`EventSource::visit`] does:
    /// `f(index, event)`, stopping when `f` returns false.
    pub fn visit(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, Event<'_>) -> bool) {
        for (first, evs) in &self.frames {
            if !visit_frame(*first, evs, start, end, f) {
                return;
            }
        }
    }
}

/// Visit the events of one decoded frame whose first event is `first`, from `start` and
/// before `end`; false once `f` asked to stop or `end` was reached.
fn visit_frame(
    first: u64,
    evs: &[Decoded],
    start: u64,
    end: u64,
    f: &mut dyn FnMut(u64, Event<'_>) -> bool,
) -> bool {
    for (k, ev) in evs.iter().enumerate() {
        let idx = first + k as u64;
        if idx < start {
            continue;
        }
        let e = Event {
            t_us: ev.t_us,
            kind: ev.kind,
            data: &ev.data,
        };
        if idx >= end || !f(idx, e) {
            return false;
        }
    }
    true
}
