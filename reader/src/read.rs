//! Streaming event reading: container → lines → events with absolute times and exact bytes
//! (`b` events folded in, SPEC §2.2), each with its [`Coverage`]: what verification says of
//! it. Every line is checked by [`EventRules`], the rules `verify` applies too, so each
//! command rejects the same lines with the same [`ReadError`] text.
//!
//! Read with a trust store ([`Reader::verifying`], [`CheckedLines::verifying`]), the lines of
//! a checkpoint's region are held back until that checkpoint is checked, by the same walk as
//! [`crate::verify_recording`] (SPEC §7.1), and come out `Verified` only when it verified.
//! Read without one ([`Reader::open`]), every event is [`Coverage::Unchecked`]: what `cat`,
//! `export` and `play` read, which never claim anything was verified.

use sha2::{Digest, Sha256};
use thiserror::Error;

use sealcast_format::{
    scan, ContainerError, Decompressor, EventLine, EventRules, Frame, FrameKind, Header,
    ParseError, Scanner, MAX_FRAME_CONTENT,
};
use sealcast_signer::TrustStore;

use crate::verify::{Context, Report, Step, Walk};

/// Error reading a recording's events.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The container is not readable (offset inside).
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The header line is not asciicast v3.
    #[error("line 0 (header): {0}")]
    Header(ParseError),
    /// An event line breaks the rules of SPEC §2.2 ([`EventRules`]). Displayed as
    /// `line L, offset O: reason`, the form `sealcast verify` prints for the same line.
    #[error("line {line}, offset {offset}: {reason}")]
    Line {
        /// 0-based line number (0 = header).
        line: u64,
        /// Offset in the compressed file of the data frame holding the line's first byte.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// What verification says about a line or event (SPEC §7). Only a reader that verifies
/// ([`Reader::verifying`]) says `Verified`, and only for lines a verified checkpoint covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Covered by the checkpoint with this `seq`, which verified: a key trusted for the
    /// header's host and named by it, a good signature, and the chain, line and byte counts
    /// equal to what was read (and the region's lines keep the rules of SPEC §2.2). What the
    /// file's [`Report`] adds (its name, its seal receipt, how it ends) is the report's.
    Verified {
        /// The covering checkpoint's `seq`.
        checkpoint: u64,
    },
    /// After the last verified checkpoint, and verification found nothing wrong before it:
    /// the unsealed tail of a crashed recording (or a live one's end). Not verified.
    Unsealed,
    /// Verification failed at or before the region of this line (a checkpoint that did not
    /// verify, damage, a line breaking the rules, data after the final checkpoint, or no
    /// checkpoint at all). Not verified.
    Failed,
    /// Read without a trust store: nothing was checked.
    Unchecked,
}

impl Coverage {
    /// True only for [`Coverage::Verified`].
    pub fn is_verified(self) -> bool {
        matches!(self, Coverage::Verified { .. })
    }

    /// The name shown for it: `verified`, `unsealed`, `failed`, `unchecked` (the JSON form,
    /// see the `Serialize` impl).
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Verified { .. } => "verified",
            Coverage::Unsealed => "unsealed",
            Coverage::Failed => "failed",
            Coverage::Unchecked => "unchecked",
        }
    }

    /// The coverage of something made of several lines (an event and its `b` line; a
    /// statement and its outcome; a command's `start` and `end`): verified by the latest
    /// checkpoint when both are, else the one that is not verified (`Failed` over `Unsealed`,
    /// `Unchecked` over both). Never `Verified` unless both are.
    #[must_use]
    pub fn and(self, other: Coverage) -> Coverage {
        use Coverage::*;
        match (self, other) {
            (Verified { checkpoint: a }, Verified { checkpoint: b }) => Verified {
                checkpoint: a.max(b),
            },
            (Unchecked, _) | (_, Unchecked) => Unchecked,
            (Failed, _) | (_, Failed) => Failed,
            _ => Unsealed,
        }
    }
}

/// Serialised as its name ([`Coverage::as_str`]), a JSON string: the checkpoint of a
/// `Verified` coverage is not part of it.
impl serde::Serialize for Coverage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How the compressed stream ended, once everything decodable has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every frame decoded.
    Complete,
    /// The file ends inside a frame ([`ContainerError::Truncated`]): a crash tail or a cut
    /// file. Everything up to the last complete line was used.
    Truncated(ContainerError),
    /// A frame could not be decoded (corrupt zstd data, bad checksum, unknown frame, …): the
    /// complete lines decoded before zstd detected the damage were used (for a checksum
    /// mismatch that can include lines of the bad frame itself), nothing after it.
    Damaged(ContainerError),
}

impl StreamEnd {
    pub(crate) fn from_error(e: Option<&ContainerError>) -> StreamEnd {
        match e {
            None => StreamEnd::Complete,
            Some(e @ ContainerError::Truncated { .. }) => StreamEnd::Truncated(e.clone()),
            Some(e) => StreamEnd::Damaged(e.clone()),
        }
    }

    /// How a [`Reader`] that has been iterated to its end stopped.
    pub fn of_reader(reader: &Reader<'_>) -> StreamEnd {
        StreamEnd::from_error(reader.truncated())
    }

    /// The container error, unless the stream is complete.
    pub fn error(&self) -> Option<&ContainerError> {
        match self {
            StreamEnd::Complete => None,
            StreamEnd::Truncated(e) | StreamEnd::Damaged(e) => Some(e),
        }
    }
}

/// Decompressed content held back until its region's checkpoint is checked, bytes: a
/// region the writer makes is at most `--checkpoint-bytes` (8 MiB) and one event. Beyond it
/// (a file no writer made) frames are held as compressed bytes and decoded again when their
/// coverage is known, so memory stays bounded whatever the file holds.
const HOLD_MAX: usize = MAX_FRAME_CONTENT;

/// A data frame of the current region, before its checkpoint is checked.
enum Held<'a> {
    /// Its offset and decompressed content.
    Content(u64, Vec<u8>),
    /// A frame to decode again when released (past [`HOLD_MAX`]), with the SHA-256 of the
    /// content its first decode gave (what the chain hashed): a second decode that differs
    /// (a file rewritten under a memory map) is not what was verified.
    Frame(Frame<'a>, [u8; 32]),
}

/// The verification that decides the coverage of lines (a [`Walk`] fed frame by frame).
struct Gate<'a> {
    walk: Walk<'a, 'a>,
    ctx: Context<'a>,
    held: Vec<Held<'a>>,
    held_bytes: usize,
}

/// Complete lines of the decompressed stream, frame by frame, with the compressed offset of
/// the frame each line starts in, its [`Coverage`], and counts of what was read.
pub(crate) struct Lines<'a> {
    data: &'a [u8],
    scanner: Scanner<'a>,
    dec: Decompressor,
    buf: Vec<u8>,
    pos: usize,
    /// (index in `buf` where a frame's content starts, that frame's offset, its coverage),
    /// ascending.
    starts: Vec<(usize, u64, Coverage)>,
    truncated: Option<ContainerError>,
    done: bool,
    gate: Option<Gate<'a>>,
    /// Coverage of frames no walk decides: `Unchecked` without a gate; once the walk ended,
    /// `Failed` or `Unsealed`.
    after: Coverage,
    /// Data frames found complete by the scan.
    pub data_frames: u64,
    /// Checkpoint frames seen (not verified).
    pub checkpoint_frames: u64,
    /// Payload of the last checkpoint frame seen (not verified).
    pub last_checkpoint: Option<&'a [u8]>,
    /// Complete lines returned so far, and their bytes (LFs included).
    pub lines_read: u64,
    pub bytes_read: u64,
    /// Told of each data frame's content as it is released (see [`FrameObserver`]).
    observer: Option<FrameObserver>,
}

/// Told of each data frame's decompressed content when it is released to the reader's
/// consumer, before any of its lines is returned: `(offset of the frame in the compressed
/// file, the content exactly as the returned lines are cut from it, its coverage)`. The
/// content of a [`Coverage::Verified`] frame is the content the checkpoint's chain hashed
/// (decoded once into memory of the reader's own; a region past 16 MiB held is decoded a
/// second time, and that decode is what is shown and told, with the region's coverage only
/// when its SHA-256 is the first decode's, else [`Coverage::Failed`]). A cut last frame is told with
/// its decodable part, an incomplete last line included.
pub type FrameObserver = Box<dyn FnMut(u64, &[u8], Coverage)>;

impl<'a> Lines<'a> {
    /// Lines of the whole compressed file `data`, unchecked.
    pub(crate) fn new(data: &'a [u8]) -> Lines<'a> {
        Lines {
            data,
            scanner: scan(data),
            dec: Decompressor::new(),
            buf: Vec::new(),
            pos: 0,
            starts: Vec::new(),
            truncated: None,
            done: false,
            gate: None,
            after: Coverage::Unchecked,
            data_frames: 0,
            checkpoint_frames: 0,
            last_checkpoint: None,
            lines_read: 0,
            bytes_read: 0,
            observer: None,
        }
    }

    /// Lines of `data`, each released once verification decided its coverage.
    pub(crate) fn verifying(data: &'a [u8], trust: &'a TrustStore, ctx: Context<'a>) -> Lines<'a> {
        let mut lines = Lines::new(data);
        lines.gate = Some(Gate {
            walk: Walk::new(data, trust),
            ctx,
            held: Vec::new(),
            held_bytes: 0,
        });
        lines
    }

    /// The next complete line (without its LF), the offset of the frame it starts in, and
    /// its coverage.
    pub(crate) fn next_line(&mut self) -> Option<(&[u8], u64, Coverage)> {
        let (s, e, offset, coverage) = self.next_range()?;
        Some((&self.buf[s..e], offset, coverage))
    }

    /// Set once a frame could not be read completely (a crash tail or damage).
    pub(crate) fn truncated(&self) -> Option<&ContainerError> {
        self.truncated.as_ref()
    }

    /// Take the container error (for a file where no line could be read).
    pub(crate) fn take_truncated(&mut self) -> Option<ContainerError> {
        self.truncated.take()
    }

    fn frame_of(&self, at: usize) -> (u64, Coverage) {
        let i = self.starts.partition_point(|&(s, _, _)| s <= at);
        self.starts
            .get(i.wrapping_sub(1))
            .map_or((0, self.after), |&(_, o, c)| (o, c))
    }

    fn next_range(&mut self) -> Option<(usize, usize, u64, Coverage)> {
        loop {
            if let Some(n) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                let start = self.pos;
                self.pos += n + 1;
                self.lines_read += 1;
                self.bytes_read += n as u64 + 1;
                let (offset, coverage) = self.frame_of(start);
                return Some((start, start + n, offset, coverage));
            }
            if self.done {
                return None;
            }
            // Keep the frame start that the unfinished line begins in.
            let keep = self.starts.partition_point(|&(s, _, _)| s <= self.pos);
            self.starts.drain(..keep.saturating_sub(1));
            for st in &mut self.starts {
                st.0 = st.0.saturating_sub(self.pos);
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            self.pull();
        }
    }

    /// True while a walk is deciding the coverage of what is read.
    fn walking(&self) -> bool {
        self.gate.as_ref().is_some_and(|g| !g.walk.ended())
    }

    /// Read the next frame: count it, show it to the walk, and append its content to the
    /// buffer once its coverage is known.
    fn pull(&mut self) {
        match self.scanner.next() {
            None => {
                self.done = true;
                if let Some(g) = self.gate.as_ref().filter(|g| !g.walk.ended()) {
                    // The frames ended inside a region: a crash tail, unless nothing
                    // verified or something failed.
                    let end = if g.walk.failing() {
                        Coverage::Failed
                    } else {
                        Coverage::Unsealed
                    };
                    self.release(end);
                    self.after = end;
                }
            }
            Some(Ok(f)) if f.kind == FrameKind::Checkpoint => {
                self.checkpoint_frames += 1;
                self.last_checkpoint = Some(f.bytes);
                self.walk(Ok(f), None);
            }
            Some(Ok(f)) if !self.walking() => {
                self.data_frames += 1;
                let start = self.buf.len();
                self.starts.push((start, f.offset, self.after));
                let decoded = self.dec.frame(f.bytes, f.offset, &mut self.buf);
                self.tell(f.offset, start, self.after);
                if let Err(e) = decoded {
                    self.truncated = Some(e);
                    self.done = true;
                }
            }
            Some(Ok(f)) => {
                self.data_frames += 1;
                let mut content = Vec::new();
                let decoded = self.dec.frame(f.bytes, f.offset, &mut content);
                let step = self.walk(Ok(f), Some(decoded.as_ref().map(|()| &content[..])));
                if step == Step::Continue {
                    self.hold(f, content);
                } else {
                    self.append(f.offset, &content, self.after);
                }
                if let Err(e) = decoded {
                    self.truncated = Some(e);
                    self.done = true;
                }
            }
            Some(Err(e)) => {
                self.walk(Err(e.clone()), None);
                if let ContainerError::Truncated { offset, .. } = e {
                    let mut content = Vec::new();
                    self.dec
                        .partial(&self.data[offset as usize..], &mut content);
                    self.append(offset, &content, self.after);
                }
                self.truncated = Some(e);
                self.done = true;
            }
        }
    }

    /// Show a frame to the walk, if one is going on, and release the held frames when it
    /// decided their coverage. `Continue` when there is no walk.
    fn walk(
        &mut self,
        frame: Result<Frame<'a>, ContainerError>,
        decoded: Option<Result<&[u8], &ContainerError>>,
    ) -> Step {
        let Some(g) = self.gate.as_mut().filter(|g| !g.walk.ended()) else {
            return Step::Continue;
        };
        let step = g.walk.frame(frame, decoded);
        match step {
            Step::Continue => {}
            Step::Verified { seq, .. } => self.release(Coverage::Verified { checkpoint: seq }),
            Step::Failed => {
                self.release(Coverage::Failed);
                self.after = Coverage::Failed;
            }
            Step::Tail => {
                self.release(Coverage::Unsealed);
                self.after = Coverage::Unsealed;
            }
        }
        step
    }

    fn hold(&mut self, frame: Frame<'a>, content: Vec<u8>) {
        let Some(g) = self.gate.as_mut() else {
            return;
        };
        if g.held_bytes + content.len() <= HOLD_MAX {
            g.held_bytes += content.len();
            g.held.push(Held::Content(frame.offset, content));
        } else {
            g.held
                .push(Held::Frame(frame, Sha256::digest(&content).into()));
        }
    }

    /// Append the held frames with `coverage`.
    fn release(&mut self, coverage: Coverage) {
        let Some(g) = self.gate.as_mut() else {
            return;
        };
        g.held_bytes = 0;
        for held in std::mem::take(&mut g.held) {
            match held {
                Held::Content(offset, content) => self.append(offset, &content, coverage),
                Held::Frame(f, digest) => {
                    let start = self.buf.len();
                    // Decoded again: what it decodes to now is what is shown, and it keeps
                    // the coverage only when it is the content the chain hashed.
                    let again = self.dec.frame(f.bytes, f.offset, &mut self.buf);
                    let same = again.is_ok()
                        && <[u8; 32]>::from(Sha256::digest(&self.buf[start..])) == digest;
                    let coverage = if same { coverage } else { Coverage::Failed };
                    self.starts.push((start, f.offset, coverage));
                    self.tell(f.offset, start, coverage);
                }
            }
        }
    }

    fn append(&mut self, offset: u64, content: &[u8], coverage: Coverage) {
        let start = self.buf.len();
        self.starts.push((start, offset, coverage));
        self.buf.extend_from_slice(content);
        self.tell(offset, start, coverage);
    }

    /// Tell the observer of the frame at `offset`, whose content is `buf[start..]`.
    fn tell(&mut self, offset: u64, start: usize, coverage: Coverage) {
        if let Some(o) = self.observer.as_mut() {
            o(offset, &self.buf[start..], coverage);
        }
    }

    /// Run the walk over the frames not read yet (their lines are dropped) and return its
    /// report; `None` without a trust store.
    pub(crate) fn report(mut self) -> Option<Report> {
        while !self.done && self.walking() {
            self.buf.clear();
            self.starts.clear();
            self.pos = 0;
            self.pull();
        }
        let g = self.gate?;
        Some(g.walk.finish(&g.ctx))
    }
}

/// One event line as [`EventRules`] accepted it.
#[derive(Debug)]
pub struct CheckedLine<'l> {
    /// The line's bytes (without LF), exactly as stored.
    pub line: &'l [u8],
    /// 0-based line number (0 = header).
    pub line_no: u64,
    /// The parsed event.
    pub event: sealcast_format::Event,
    /// Decoded bytes of a `b` event.
    pub raw: Option<Vec<u8>>,
    /// What verification says of the line.
    pub coverage: Coverage,
}

/// The header and then the checked event lines of a recording: the one path by which
/// `cat`, `export`, `play` and `info` read lines (and [`Reader`] its events), each with its
/// [`Coverage`].
pub struct CheckedLines<'a> {
    pub(crate) lines: Lines<'a>,
    header: Header,
    header_line: Vec<u8>,
    header_coverage: Coverage,
    rules: EventRules,
    line_no: u64,
}

impl std::fmt::Debug for CheckedLines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedLines")
            .field("line_no", &self.line_no)
            .finish()
    }
}

impl<'a> CheckedLines<'a> {
    /// Open `data` (a whole compressed recording) without verifying it (every line
    /// [`Coverage::Unchecked`]) and parse its header (line 0).
    ///
    /// # Errors
    /// [`ReadError::Container`] if no complete line can be decoded, [`ReadError::Header`] if
    /// line 0 is not an asciicast v3 header.
    pub fn open(data: &'a [u8]) -> Result<CheckedLines<'a>, ReadError> {
        CheckedLines::start(Lines::new(data))
    }

    /// Open `data` and verify it as it is read, with `trust` and what `ctx` knows of its
    /// file name and seal receipt (as [`crate::verify_recording`]): each line comes out
    /// once its checkpoint was checked, with its [`Coverage`]. Memory stays bounded by one
    /// region (see the module documentation).
    ///
    /// # Errors
    /// As [`CheckedLines::open`].
    pub fn verifying(
        data: &'a [u8],
        trust: &'a TrustStore,
        ctx: Context<'a>,
    ) -> Result<CheckedLines<'a>, ReadError> {
        CheckedLines::start(Lines::verifying(data, trust, ctx))
    }

    /// [`CheckedLines::verifying`], telling `observer` of each data frame's content as it
    /// is released (see [`FrameObserver`]): what a consumer that shows the bytes later, from
    /// its own decode, compares against (the terminal player, SPEC §7.2).
    ///
    /// # Errors
    /// As [`CheckedLines::open`].
    pub fn verifying_observed(
        data: &'a [u8],
        trust: &'a TrustStore,
        ctx: Context<'a>,
        observer: FrameObserver,
    ) -> Result<CheckedLines<'a>, ReadError> {
        let mut lines = Lines::verifying(data, trust, ctx);
        lines.observer = Some(observer);
        CheckedLines::start(lines)
    }

    fn start(mut lines: Lines<'a>) -> Result<CheckedLines<'a>, ReadError> {
        let Some((first, _, header_coverage)) = lines.next_line() else {
            return Err(lines
                .take_truncated()
                .unwrap_or(ContainerError::Empty)
                .into());
        };
        let header_line = first.to_vec();
        let header = Header::parse(first).map_err(ReadError::Header)?;
        Ok(CheckedLines {
            lines,
            header,
            header_line,
            header_coverage,
            rules: EventRules::new(),
            line_no: 1,
        })
    }

    /// The header (line 0).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header line's bytes, exactly as stored (without LF).
    pub fn header_line(&self) -> &[u8] {
        &self.header_line
    }

    /// What verification says of the header line.
    pub fn header_coverage(&self) -> Coverage {
        self.header_coverage
    }

    /// The next event line, checked by [`EventRules`]; `None` at the end of what decodes.
    /// After an error the following lines are still returned (the rules' state is as before
    /// the bad line), for callers that count them.
    pub fn next_checked(&mut self) -> Option<Result<CheckedLine<'_>, ReadError>> {
        let (line, offset, coverage) = self.lines.next_line()?;
        let line_no = self.line_no;
        self.line_no += 1;
        Some(match self.rules.parse(line) {
            Ok((event, raw)) => Ok(CheckedLine {
                line,
                line_no,
                event,
                raw,
                coverage,
            }),
            Err(e) => Err(ReadError::Line {
                line: line_no,
                offset,
                reason: e.to_string(),
            }),
        })
    }

    /// How the stream ended, once [`CheckedLines::next_checked`] returned `None`.
    pub fn end(&self) -> StreamEnd {
        StreamEnd::from_error(self.lines.truncated())
    }

    /// The verification report of the whole file, exactly what [`crate::verify_recording`]
    /// gives for the same bytes, trust and context (the frames not read yet are walked
    /// first); `None` when opened without a trust store.
    pub fn finish(self) -> Option<Report> {
        self.lines.report()
    }
}

/// An event as a [`Reader`] read it, with what verification says of it. Only the reader
/// builds one; [`ReadEvent::verified`] is the one way to a [`VerifiedEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEvent {
    event: EventLine,
    coverage: Coverage,
}

impl ReadEvent {
    /// The event (absolute time, kind, exact bytes).
    pub fn event(&self) -> &EventLine {
        &self.event
    }

    /// What verification says of it (of its `b` line too, when it has one).
    pub fn coverage(&self) -> Coverage {
        self.coverage
    }

    /// The event without its coverage, for consumers that show every event alike
    /// (`cat`, `export`, `play`: they claim nothing about verification).
    pub fn into_event(self) -> EventLine {
        self.event
    }

    /// The event as a [`VerifiedEvent`] when a verified checkpoint covers it; itself
    /// otherwise.
    ///
    /// # Errors
    /// The event back, when it is not [`Coverage::Verified`].
    pub fn verified(self) -> Result<VerifiedEvent, ReadEvent> {
        match self.coverage {
            Coverage::Verified { checkpoint } => Ok(VerifiedEvent {
                event: self.event,
                checkpoint,
            }),
            _ => Err(self),
        }
    }
}

/// An event covered by a checkpoint that verified (SPEC §7): what search and indexes take,
/// so unverified content cannot be counted as verified. Built only by
/// [`ReadEvent::verified`], from what a verifying [`Reader`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    event: EventLine,
    checkpoint: u64,
}

impl VerifiedEvent {
    /// The event.
    pub fn event(&self) -> &EventLine {
        &self.event
    }

    /// The `seq` of the checkpoint that covers it.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// The event, keeping nothing of its verification.
    pub fn into_event(self) -> EventLine {
        self.event
    }
}

/// Iterator over the events of a recording held in memory, each a [`ReadEvent`] with its
/// [`Coverage`]. Yields the events of the decodable prefix; [`Reader::truncated`] tells
/// whether the stream ended early. Stops after the first [`ReadError`] (every event before
/// the bad line is yielded first); [`Reader::finish`] still gives the whole file's report.
pub struct Reader<'a> {
    events: CheckedLines<'a>,
    time_us: u64,
    pending: Option<ReadEvent>,
    /// An error found while `pending` was still held; yielded after it.
    failed: Option<ReadError>,
    stopped: bool,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("line_no", &self.events.line_no)
            .finish()
    }
}

impl<'a> Reader<'a> {
    /// Open a recording (the whole compressed file) without verifying it and parse its
    /// header: every event is [`Coverage::Unchecked`].
    ///
    /// # Errors
    /// [`ReadError::Container`] if no complete line can be decoded, [`ReadError::Header`] if
    /// line 0 is not an asciicast v3 header.
    pub fn open(data: &'a [u8]) -> Result<Reader<'a>, ReadError> {
        Ok(Reader::new(CheckedLines::open(data)?))
    }

    /// Open a recording and verify it as it is read ([`CheckedLines::verifying`]): an
    /// event is [`Coverage::Verified`] only once the checkpoint covering it verified.
    ///
    /// # Errors
    /// As [`Reader::open`].
    pub fn verifying(
        data: &'a [u8],
        trust: &'a TrustStore,
        ctx: Context<'a>,
    ) -> Result<Reader<'a>, ReadError> {
        Ok(Reader::new(CheckedLines::verifying(data, trust, ctx)?))
    }

    /// [`Reader::verifying`], telling `observer` of each data frame's content as it is
    /// released ([`CheckedLines::verifying_observed`]).
    ///
    /// # Errors
    /// As [`Reader::open`].
    pub fn verifying_observed(
        data: &'a [u8],
        trust: &'a TrustStore,
        ctx: Context<'a>,
        observer: FrameObserver,
    ) -> Result<Reader<'a>, ReadError> {
        Ok(Reader::new(CheckedLines::verifying_observed(
            data, trust, ctx, observer,
        )?))
    }

    fn new(events: CheckedLines<'a>) -> Reader<'a> {
        Reader {
            events,
            time_us: 0,
            pending: None,
            failed: None,
            stopped: false,
        }
    }

    /// The header (line 0).
    pub fn header(&self) -> &Header {
        self.events.header()
    }

    /// What verification says of the header line.
    pub fn header_coverage(&self) -> Coverage {
        self.events.header_coverage()
    }

    /// Set once the reader reached a frame it could not read completely (a crash tail or
    /// damage): the events returned are the decodable prefix.
    pub fn truncated(&self) -> Option<&ContainerError> {
        self.events.lines.truncated()
    }

    /// The verification report of the whole file ([`CheckedLines::finish`]): equal to
    /// [`crate::verify_recording`]'s for the same bytes, however far the reader was read.
    /// `None` when opened without a trust store.
    pub fn finish(self) -> Option<Report> {
        self.events.finish()
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<ReadEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.failed.take() {
            return Some(Err(err));
        }
        if self.stopped {
            return None;
        }
        loop {
            let checked = match self.events.next_checked() {
                None => return self.pending.take().map(Ok),
                Some(Ok(c)) => c,
                Some(Err(err)) => {
                    self.stopped = true;
                    return match self.pending.take() {
                        Some(p) => {
                            self.failed = Some(err);
                            Some(Ok(p))
                        }
                        None => Some(Err(err)),
                    };
                }
            };
            // Saturating: 10⁹ s per line cannot overflow a u64 of µs in fewer than 18 000
            // lines, and a reader never panics on input.
            self.time_us = self.time_us.saturating_add(checked.event.interval_us);
            if let Some(raw) = checked.raw {
                // EventRules: a `b` follows an `o`, `i` or `e`, which is pending.
                if let Some(p) = self.pending.as_mut() {
                    p.event.bytes = raw;
                    p.coverage = p.coverage.and(checked.coverage);
                }
                continue;
            }
            let next = ReadEvent {
                event: EventLine {
                    time_us: self.time_us,
                    kind: checked.event.kind,
                    bytes: checked.event.data.into_bytes(),
                },
                coverage: checked.coverage,
            };
            if let Some(done) = self.pending.replace(next) {
                return Some(Ok(done));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verify_bytes;
    use sealcast_format::{scan, EventKind, Header, SealMeta};
    use sealcast_signer::SigningKey;
    use sealcast_testkit::{self as testkit, signed_recording};
    use sealcast_writer::{CheckpointPolicy, SealedWriter, SystemClock};

    /// Combining coverages: verified only when both parts are (by the later checkpoint),
    /// otherwise the worse part, `Unchecked` worst; the names are the JSON strings.
    #[test]
    fn coverage_combines_to_the_worse_part() {
        use Coverage::*;
        let v = |checkpoint| Verified { checkpoint };
        let all = [v(1), v(4), Unsealed, Failed, Unchecked];
        for a in all {
            for b in all {
                let c = a.and(b);
                assert_eq!(c, b.and(a), "{a:?} {b:?}");
                assert_eq!(c.is_verified(), a.is_verified() && b.is_verified());
            }
        }
        assert_eq!(v(1).and(v(4)), v(4));
        assert_eq!(v(1).and(Unsealed), Unsealed);
        assert_eq!(Unsealed.and(Failed), Failed);
        assert_eq!(Failed.and(Unchecked), Unchecked);
        let names: Vec<&str> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            ["verified", "verified", "unsealed", "failed", "unchecked"]
        );
        assert_eq!(serde_json::to_string(&v(7)).unwrap(), r#""verified""#);
        assert_eq!(serde_json::to_string(&Failed).unwrap(), r#""failed""#);
    }

    /// Header coverage, (bytes, coverage) of every event, and the report of a verifying read
    /// to the end; the events are those an unchecked read gives, and the report is
    /// `verify_bytes`'.
    fn read_verified(
        file: &[u8],
        trust: &TrustStore,
    ) -> (Coverage, Vec<(Vec<u8>, Coverage)>, Report) {
        let mut r = Reader::verifying(file, trust, Context::default()).unwrap();
        let header = r.header_coverage();
        let events: Vec<ReadEvent> = r.by_ref().map(|e| e.unwrap()).collect();
        let report = r.finish().unwrap();
        assert_eq!(report, verify_bytes(file, None, trust));
        let plain: Vec<EventLine> = Reader::open(file)
            .unwrap()
            .map(|e| e.unwrap().into_event())
            .collect();
        let read: Vec<EventLine> = events.iter().map(|e| e.event().clone()).collect();
        assert_eq!(read, plain, "verifying changes nothing of what is read");
        let events = events
            .into_iter()
            .map(|e| (e.event().bytes.clone(), e.coverage()))
            .collect();
        (header, events, report)
    }

    /// [`read_verified`], expecting `status`, the header's coverage and every event's.
    fn expect_read(
        file: &[u8],
        trust: &TrustStore,
        status: crate::Status,
        header: Coverage,
        events: &[(&[u8], Coverage)],
    ) {
        let (h, e, report) = read_verified(file, trust);
        assert_eq!(report.status, status, "{}", report.reason);
        let e: Vec<(&[u8], Coverage)> = e.iter().map(|(b, c)| (&b[..], *c)).collect();
        assert_eq!((h, e.as_slice()), (header, events));
    }

    const V0: Coverage = Coverage::Verified { checkpoint: 0 };
    const V1: Coverage = Coverage::Verified { checkpoint: 1 };
    const V2: Coverage = Coverage::Verified { checkpoint: 2 };

    /// "one" under checkpoint 1 (time), "two" (with its `b` line) and the exit status
    /// under the final checkpoint 2.
    fn two_regions() -> (Vec<u8>, TrustStore) {
        signed_recording(|w, t| {
            t.set(100);
            w.output(b"one").unwrap();
            t.set(11_000_000);
            w.tick().unwrap();
            w.output(b"two\xff").unwrap();
        })
    }

    #[test]
    fn each_event_is_verified_by_the_checkpoint_that_covers_it() {
        let (file, trust) = two_regions();
        let events: [(&[u8], _); 3] = [(b"one", V1), (b"two\xff", V2), (b"0", V2)];
        expect_read(&file, &trust, crate::Status::Ok, V0, &events);
        // Only a verified event becomes a VerifiedEvent.
        let mut r = Reader::verifying(&file, &trust, Context::default()).unwrap();
        let first = r.next().unwrap().unwrap().verified().unwrap();
        assert_eq!(
            (first.event().bytes.as_slice(), first.checkpoint()),
            (&b"one"[..], 1)
        );
    }

    /// A crash after the data of region 2 (its checkpoint missing): region 2 is an unsealed
    /// tail, never verified.
    #[test]
    fn a_crash_tail_is_unsealed() {
        let (file, trust) = two_regions();
        let last = scan(&file).map(|f| f.unwrap()).last().unwrap();
        let cut = &file[..last.offset as usize];
        let u = Coverage::Unsealed;
        let events: [(&[u8], _); 3] = [(b"one", V1), (b"two\xff", u), (b"0", u)];
        expect_read(cut, &trust, crate::Status::UnsealedTail, V0, &events);
    }

    /// A changed line in region 2: its checkpoint fails, so region 2 is `Failed`; region 1
    /// stays verified.
    #[test]
    fn a_modified_region_fails_and_the_ones_before_stay_verified() {
        let (file, trust) = two_regions();
        let bad = testkit::replace_line(&file, 4, br#"[0.000000, "x", "1"]"#);
        let f = Coverage::Failed;
        let events: [(&[u8], _); 3] = [(b"one", V1), (b"two\xff", f), (b"1", f)];
        expect_read(&bad, &trust, crate::Status::Modified, V0, &events);
    }

    /// Signed by a key the trust store does not know: nothing is verified, header included.
    #[test]
    fn an_untrusted_key_verifies_nothing() {
        let (file, _) = two_regions();
        let other = TrustStore::single("h", SigningKey::generate().unwrap().public());
        let (header, events, report) = read_verified(&file, &other);
        assert_eq!(
            report.status,
            crate::Status::UntrustedKey,
            "{}",
            report.reason
        );
        assert_eq!(header, Coverage::Failed);
        assert!(
            events.iter().all(|(_, c)| *c == Coverage::Failed),
            "{events:?}"
        );
    }

    /// Without a trust store nothing is checked, and nothing claims to be.
    #[test]
    fn an_unchecked_read_claims_nothing() {
        let (file, _) = two_regions();
        let mut r = Reader::open(&file).unwrap();
        assert_eq!(r.header_coverage(), Coverage::Unchecked);
        for e in r.by_ref() {
            let e = e.unwrap();
            assert_eq!(e.coverage(), Coverage::Unchecked);
            assert!(e.verified().is_err());
        }
        assert_eq!(r.finish(), None);
    }

    /// The report does not depend on how far the reader was read.
    #[test]
    fn finish_after_a_partial_read_walks_the_rest() {
        let (file, trust) = two_regions();
        let want = verify_bytes(&file, None, &trust);
        for n in 0..4 {
            let mut r = Reader::verifying(&file, &trust, Context::default()).unwrap();
            r.by_ref().take(n).for_each(drop);
            assert_eq!(r.finish().as_ref(), Some(&want), "after {n} events");
        }
    }

    /// A recording whose one region is three frames of 110 `o` events of 65,000 bytes
    /// (about 7 MiB each) before one final checkpoint: more than the reader holds in memory.
    fn past_the_hold_limit() -> testkit::HandMade {
        let mut m = testkit::HandMade::new();
        m.checkpoint(false);
        let line = format!("[0.000001, \"o\", \"{}\"]", "x".repeat(65_000)).into_bytes();
        let lines = vec![&line[..]; 110];
        for _ in 0..3 {
            m.frame(&lines);
        }
        const { assert!(3 * 110 * 65_000 > HOLD_MAX) };
        m.checkpoint(true);
        m
    }

    /// A region larger than what is held in memory (three frames of about 7 MiB before one
    /// checkpoint, which no writer makes): its frames past the limit are decoded again when
    /// the checkpoint verified, and every event comes out verified, in order.
    #[test]
    fn a_region_past_the_hold_limit_is_read_again() {
        let m = past_the_hold_limit();
        let (header, events, report) = read_verified(&m.file, &m.trust);
        assert_eq!(report.status, crate::Status::Ok, "{}", report.reason);
        assert_eq!(header, V0);
        assert_eq!(events.len(), 330);
        assert!(events.iter().all(|(b, c)| *c == V1 && b.len() == 65_000));
    }

    /// The same region, memory-mapped, and its third frame (held as compressed bytes, past
    /// the limit) rewritten in the file after the chain hashed it and before it is decoded
    /// again (from the observer, when the first frame is released): the second decode is
    /// not what was verified, so nothing of it comes out verified; the first two frames'
    /// events do. (They used to take the region's coverage whatever the second decode gave.)
    #[test]
    fn a_held_frame_rewritten_before_its_second_decode_is_not_verified() {
        use std::os::unix::fs::FileExt;
        let m = past_the_hold_limit();
        let data_frames: Vec<(u64, usize)> = scan(&m.file)
            .filter_map(|f| f.ok())
            .filter(|f| f.kind == sealcast_format::FrameKind::Data)
            .map(|f| (f.offset, f.bytes.len()))
            .collect();
        // Data frame 0 holds the header; 1–3 are the region.
        let (first, _) = data_frames[1];
        let (third, third_len) = data_frames[3];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast.zst");
        std::fs::write(&path, &m.file).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a private read-only mapping of a file this test alone writes.
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut rewritten = false;
        let observer: FrameObserver = Box::new(move |offset, _, _| {
            if offset == first && !rewritten {
                // A byte in the middle of the third frame's compressed data.
                writer
                    .write_at(&[0x55], third + third_len as u64 / 2)
                    .unwrap();
                rewritten = true;
            }
        });
        let mut r =
            Reader::verifying_observed(&map, &m.trust, Context::default(), observer).unwrap();
        let events: Vec<(usize, Coverage)> = r
            .by_ref()
            .map_while(Result::ok)
            .map(|e| (e.event().bytes.len(), e.coverage()))
            .collect();
        assert!(events.len() >= 220, "{}", events.len());
        assert!(verified_and_whole(&events[..220]), "{:?}", &events[..3]);
        assert!(
            events[220..].iter().all(|(_, c)| !c.is_verified()),
            "{:?}",
            &events[220..events.len().min(225)]
        );
    }

    /// Every event verified by checkpoint 1 with its whole 65,000 bytes.
    fn verified_and_whole(before: &[(usize, Coverage)]) -> bool {
        before.iter().all(|(n, c)| *c == V1 && *n == 65_000)
    }

    /// An `o` line under checkpoint 1 and its `b` line under checkpoint 2: the event is
    /// verified by the later one (both cover a part of it).
    #[test]
    fn an_event_split_over_two_checkpoints_takes_the_later() {
        let mut m = testkit::HandMade::new();
        m.checkpoint(false);
        m.frame(&["[0.100000, \"o\", \"\u{fffd}\"]".as_bytes()]);
        m.checkpoint(false);
        m.frame(&[br#"[0.000000, "b", "/w=="]"#]);
        m.checkpoint(true);
        let events: [(&[u8], _); 1] = [(&[0xff], V2)];
        expect_read(&m.file, &m.trust, crate::Status::Ok, V0, &events);
    }

    #[test]
    fn exact_bytes_follow_stdout_stdin_and_stderr_events() {
        let key = SigningKey::generate().unwrap();
        let h = Header::sealed(SealMeta {
            capture_input: true,
            ..SealMeta::new("0".repeat(32), "h", "u", 0, "t", key.id().to_string())
        });
        let mut w = SealedWriter::new(
            Vec::new(),
            key,
            &h,
            SystemClock::new(),
            CheckpointPolicy::default(),
        )
        .unwrap();
        w.output(b"out\xff").unwrap();
        w.input(b"in\xfe").unwrap();
        w.stderr(b"err\xfd").unwrap();
        let (file, _) = w.finish(Some(0)).unwrap();
        let got: Vec<(EventKind, Vec<u8>)> = Reader::open(&file)
            .unwrap()
            .map(|e| e.unwrap().into_event())
            .map(|e| (e.kind, e.bytes))
            .collect();
        assert_eq!(
            got,
            [
                (EventKind::Output, b"out\xff".to_vec()),
                (EventKind::Input, b"in\xfe".to_vec()),
                (EventKind::Stderr, b"err\xfd".to_vec()),
                (EventKind::Exit, b"0".to_vec()),
            ]
        );
    }
}
