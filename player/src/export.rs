//! Export of a recording's content: exact output bytes (`cat`), the decompressed asciicast v3
//! stream, asciicast v2, plain text, and the statistics `sealcast info` shows.
//!
//! None of this verifies anything: it reads whatever decodes (verification is
//! [`crate::verify_bytes`]). Every function writes the decodable prefix of a damaged or
//! crash-truncated file and then says how the stream ended ([`StreamEnd`]) or fails with the
//! first malformed line ([`ReplayError::Read`]).
//!
//! # Plain text (`txt`)
//!
//! Only `o` events are used. Their bytes go through a [`vte`] parser (the state carries over
//! between events, so a sequence split across two events is still recognised):
//!
//! - printable characters are kept (each invalid UTF-8 sequence becomes U+FFFD, as in the v3 line's text);
//! - LF ends the line; TAB is kept;
//! - CR is dropped (so `\r\n` is one line break, and a progress bar redrawn with CR shows
//!   every state side by side; a real screen model would be a terminal emulator, which this
//!   deliberately is not);
//! - BS removes the previous character of the current line, if any;
//! - every other control, and every CSI, OSC, DCS and ESC sequence, is dropped.
//!
//! A non-empty last line without LF gets one, so the output always ends with a newline (or
//! is empty).

use std::collections::BTreeMap;
use std::io::{self, Write};

use thiserror::Error;

use sealcast_format::{format_interval, write_json_string, ContainerError, EventKind, Header};

use crate::read::{Events, ReadError, Reader};

/// How the compressed stream ended, once everything decodable has been written.
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

/// Error from replay or export. Output written before the error stays written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Writing the output failed (including a closed pipe).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The recording could not be opened, or an event line is malformed; the events before
    /// it were written, except possibly the one event just before the bad line, which
    /// [`Reader`] still holds back (looking for a `b` line) when it reports the error.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Invalid options (e.g. a speed that is not a positive finite number).
    #[error("{0}")]
    Options(String),
}

/// Write the exact bytes of every `o` event (with `b` bytes substituted, SPEC §2.2) to `out`,
/// then flush.
///
/// # Errors
/// [`ReplayError::Io`] from `out`; [`ReplayError::Read`] at the first malformed line.
pub fn cat(mut reader: Reader<'_>, out: &mut impl Write) -> Result<StreamEnd, ReplayError> {
    for ev in reader.by_ref() {
        let ev = ev?;
        if ev.kind == EventKind::Output {
            out.write_all(&ev.bytes)?;
        }
    }
    out.flush()?;
    Ok(StreamEnd::of_reader(&reader))
}

/// Write the decompressed asciicast v3 stream, byte for byte, to `out` (what `zstd -dc`
/// prints, checkpoint frames skipped): the header and every event line up to the first one
/// that breaks the rules of SPEC §2.2 ([`sealcast_format::EventRules`], as every reader
/// checks them). For a damaged or truncated file, the complete lines decoded before the
/// damage (see [`StreamEnd`]). `data` is the whole compressed file.
///
/// # Errors
/// [`ReplayError::Read`] when the file does not start with a decodable asciicast v3 header
/// (nothing is written then), or at the first malformed line (the lines before it are
/// written); [`ReplayError::Io`] from `out`.
pub fn write_v3(data: &[u8], out: &mut impl Write) -> Result<StreamEnd, ReplayError> {
    let mut events = Events::open(data)?;
    out.write_all(&events.header_line)?;
    out.write_all(b"\n")?;
    while let Some(checked) = events.next_checked() {
        match checked {
            Ok(c) => {
                out.write_all(c.line)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                out.flush()?;
                return Err(e.into());
            }
        }
    }
    out.flush()?;
    Ok(StreamEnd::from_error(events.lines.truncated()))
}

/// Append `"key":value` to a JSON object under construction.
fn push_field(obj: &mut Vec<u8>, key: &str, value: &serde_json::Value) {
    obj.push(if obj.is_empty() { b'{' } else { b',' });
    write_json_string(obj, key.as_bytes());
    obj.push(b':');
    // Serialising a serde_json::Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *obj, value);
}

/// The asciicast v2 header line (without LF) for a v3 header: `version`, `width`,
/// `height`, `timestamp`, `env` (with `TERM` from `term.type` when `env` lacks it), `command`,
/// `idle_time_limit`, `title`; keys absent in the v3 header are omitted. sealcast metadata
/// is dropped (v2 has no place for it), except that `start_us` supplies a missing
/// `timestamp`.
pub fn v2_header(h: &Header) -> Vec<u8> {
    use serde_json::Value;
    let mut obj = Vec::new();
    push_field(&mut obj, "version", &Value::from(2));
    push_field(&mut obj, "width", &Value::from(h.term.cols));
    push_field(&mut obj, "height", &Value::from(h.term.rows));
    let ts = h.timestamp.or_else(|| {
        h.sealcast
            .as_ref()
            .and_then(|m| i64::try_from(m.start_us / 1_000_000).ok())
    });
    if let Some(ts) = ts {
        push_field(&mut obj, "timestamp", &Value::from(ts));
    }
    let mut env = h.env.clone().unwrap_or_default();
    if let Some(t) = &h.term.term_type {
        env.entry("TERM".to_string()).or_insert_with(|| t.clone());
    }
    if !env.is_empty() {
        let map: serde_json::Map<String, Value> =
            env.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
        push_field(&mut obj, "env", &Value::Object(map));
    }
    if let Some(c) = &h.command {
        push_field(&mut obj, "command", &Value::from(c.as_str()));
    }
    if let Some(limit) = h.idle_time_limit.and_then(serde_json::Number::from_f64) {
        push_field(&mut obj, "idle_time_limit", &Value::Number(limit));
    }
    if let Some(t) = &h.title {
        push_field(&mut obj, "title", &Value::from(t.as_str()));
    }
    obj.push(b'}');
    obj
}

/// Event kinds asciicast v2 output keeps (everything else, i.e. the sealcast extensions `b`,
/// `e` and `s` and unknown codes, is dropped).
const V2_KINDS: [EventKind; 5] = [
    EventKind::Output,
    EventKind::Input,
    EventKind::Resize,
    EventKind::Marker,
    EventKind::Exit,
];

/// Write the recording as asciicast v2: the [`v2_header`] line, then one
/// `[<abs secs, 6 decimals>, "<code>", "<data>"]` line per `o`/`i`/`r`/`m`/`x` event, with
/// absolute times (seconds since the start). `o`/`i` data that is not valid UTF-8 (events
/// that had a `b` event) is written lossily, U+FFFD per invalid sequence, as the v3 line did.
///
/// # Errors
/// [`ReplayError::Io`] from `out`; [`ReplayError::Read`] at the first malformed line.
pub fn write_v2(mut reader: Reader<'_>, out: &mut impl Write) -> Result<StreamEnd, ReplayError> {
    let mut line = v2_header(reader.header());
    line.push(b'\n');
    out.write_all(&line)?;
    for ev in reader.by_ref() {
        let ev = ev?;
        if !V2_KINDS.contains(&ev.kind) {
            continue;
        }
        line.clear();
        line.push(b'[');
        line.extend_from_slice(format_interval(ev.time_us).as_bytes());
        line.extend_from_slice(b", ");
        write_json_string(&mut line, ev.kind.code().as_bytes());
        line.extend_from_slice(b", ");
        write_json_string(&mut line, String::from_utf8_lossy(&ev.bytes).as_bytes());
        line.extend_from_slice(b"]\n");
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(StreamEnd::of_reader(&reader))
}

/// Terminal output → plain text, per the rules in the module documentation.
#[derive(Debug, Default)]
struct TextSink {
    line: String,
    done: String,
}

impl vte::Perform for TextSink {
    fn print(&mut self, c: char) {
        self.line.push(c);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                self.done.push_str(&self.line);
                self.done.push('\n');
                self.line.clear();
            }
            b'\t' => self.line.push('\t'),
            0x08 => {
                self.line.pop();
            }
            _ => {}
        }
    }
}

/// Converts terminal output bytes to plain text incrementally (see the module
/// documentation for the rules). Feed bytes with [`TextConverter::push`], collect finished
/// lines with [`TextConverter::take_lines`] and the rest with [`TextConverter::finish`].
#[derive(Default)]
pub struct TextConverter {
    parser: vte::Parser,
    sink: TextSink,
    /// An incomplete UTF-8 sequence at the end of the last push (≤ 3 bytes).
    carry: Vec<u8>,
}

impl std::fmt::Debug for TextConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextConverter")
            .field("sink", &self.sink)
            .finish()
    }
}

impl TextConverter {
    /// A converter in the ground state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed raw terminal output bytes (any split: escape sequences and UTF-8 characters may
    /// span calls). Each maximal invalid UTF-8 subsequence becomes one U+FFFD, as in
    /// [`String::from_utf8_lossy`].
    pub fn push(&mut self, bytes: &[u8]) {
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(bytes);
        let mut rest = &data[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.feed(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // `good` is valid UTF-8 by construction.
                    self.feed(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        None => {
                            self.carry = bad.to_vec();
                            break;
                        }
                        Some(n) => {
                            self.feed("\u{fffd}");
                            rest = &bad[n..];
                        }
                    }
                }
            }
        }
    }

    fn feed(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.parser.advance(&mut self.sink, b);
        }
    }

    /// The lines completed so far (each ending with `\n`), removed from the converter.
    pub fn take_lines(&mut self) -> String {
        std::mem::take(&mut self.sink.done)
    }

    /// Everything not yet taken, with a final `\n` added to a non-empty unfinished line.
    pub fn finish(mut self) -> String {
        if !self.carry.is_empty() {
            self.carry.clear();
            self.feed("\u{fffd}");
        }
        let mut s = self.take_lines();
        if !self.sink.line.is_empty() {
            s.push_str(&self.sink.line);
            s.push('\n');
        }
        s
    }
}

/// Write the text of the recording's output (`o` events) with escape sequences removed, per
/// the rules in the module documentation.
///
/// # Errors
/// [`ReplayError::Io`] from `out`; [`ReplayError::Read`] at the first malformed line (the
/// text converted so far, including an unfinished line, is written first).
pub fn write_txt(mut reader: Reader<'_>, out: &mut impl Write) -> Result<StreamEnd, ReplayError> {
    let mut conv = TextConverter::new();
    let mut failed = None;
    for ev in reader.by_ref() {
        match ev {
            Ok(ev) if ev.kind == EventKind::Output => {
                conv.push(&ev.bytes);
                out.write_all(conv.take_lines().as_bytes())?;
            }
            Ok(_) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    out.write_all(conv.finish().as_bytes())?;
    out.flush()?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(StreamEnd::of_reader(&reader)),
    }
}

/// What `sealcast info` reports about a recording, gathered without verification.
#[derive(Debug, Clone)]
pub struct Stats {
    /// The header (line 0).
    pub header: Header,
    /// Size of the compressed file, bytes.
    pub compressed_bytes: u64,
    /// Decompressed bytes of the complete lines decoded (LFs included).
    pub decompressed_bytes: u64,
    /// Complete lines decoded, header included.
    pub lines: u64,
    /// zstd data frames found complete by the frame scan (one that decodes with an error
    /// is counted; a truncated last one is not: see `end`).
    pub data_frames: u64,
    /// Checkpoint frames seen (not verified).
    pub checkpoint_frames: u64,
    /// Time of the last event, microseconds since the start: the sum of all intervals,
    /// saturating at `u64::MAX` (a sum of 10⁹ s intervals can pass it).
    pub duration_us: u64,
    /// The longest single interval: (0-based line, microseconds).
    pub longest_interval: Option<(u64, u64)>,
    /// Wall-clock time from the header's `start_us` to the `time` of the last checkpoint
    /// frame (unverified), microseconds, when both exist. Intervals come from a monotonic
    /// clock that does not run faster than the wall clock, so a `duration_us` beyond this
    /// (plus a second of slack) means the intervals are not real time.
    pub clock_span_us: Option<u64>,
    /// Event lines per code, as stored (so `b` extension lines are counted under `b`).
    pub events_by_code: BTreeMap<String, u64>,
    /// Data of the last `x` event: the recorded command's exit status.
    pub exit_status: Option<String>,
    /// First line that breaks the rules of SPEC §2.2 (the error `cat`, `export` and `play`
    /// stop at). Lines after it are still counted when they parse.
    pub bad_line: Option<ReadError>,
    /// How the compressed stream ended.
    pub end: StreamEnd,
}

impl Stats {
    /// True when the intervals add up to more than the wall-clock time between the start
    /// and the last checkpoint allows (see [`Stats::clock_span_us`]): at least one interval
    /// is not real time.
    pub fn duration_exceeds_clock(&self) -> bool {
        self.clock_span_us
            .is_some_and(|span| self.duration_us > span.saturating_add(1_000_000))
    }
}

/// Decode a whole recording (`data` is the compressed file) and gather [`Stats`]. Lines are
/// checked by the same rules as in [`Reader`].
///
/// # Errors
/// [`ReadError`] when no asciicast v3 header can be decoded.
pub fn inspect(data: &[u8]) -> Result<Stats, ReadError> {
    let mut events = Events::open(data)?;
    let mut s = Stats {
        header: events.header.clone(),
        compressed_bytes: data.len() as u64,
        decompressed_bytes: 0,
        lines: 0,
        data_frames: 0,
        checkpoint_frames: 0,
        duration_us: 0,
        longest_interval: None,
        clock_span_us: None,
        events_by_code: BTreeMap::new(),
        exit_status: None,
        bad_line: None,
        end: StreamEnd::Complete,
    };
    while let Some(checked) = events.next_checked() {
        match checked {
            Ok(c) => {
                let iv = c.event.interval_us;
                s.duration_us = s.duration_us.saturating_add(iv);
                if s.longest_interval.is_none_or(|(_, l)| iv > l) {
                    s.longest_interval = Some((c.line_no, iv));
                }
                if c.event.kind == EventKind::Exit {
                    s.exit_status = Some(c.event.data.clone());
                }
                *s.events_by_code
                    .entry(c.event.kind.code().to_string())
                    .or_default() += 1;
            }
            Err(e) => {
                s.bad_line.get_or_insert(e);
            }
        }
    }
    let lines = &events.lines;
    s.lines = lines.lines_read;
    s.decompressed_bytes = lines.bytes_read;
    s.data_frames = lines.data_frames;
    s.checkpoint_frames = lines.checkpoint_frames;
    s.end = StreamEnd::from_error(lines.truncated());
    let last_time = lines
        .last_checkpoint
        .and_then(|note| sealcast_signer::Checkpoint::parse(note).ok())
        .map(|(cp, _, _)| cp.time_us);
    if let (Some(t), Some(m)) = (last_time, &s.header.sealcast) {
        s.clock_span_us = Some(t.saturating_sub(m.start_us));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_format::{scan, FrameKind};
    use test_support::{header, recording};

    #[test]
    fn txt_rules() {
        let mut c = TextConverter::new();
        c.push(b"\x1b[1;31mred\x1b[0m plain\r\n");
        c.push(b"ab\x08c\x1b]0;title\x07 tab\there\x1b[");
        c.push(b"2Jend\r\nprog 1%\rprog 2%");
        c.push(
            b"\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08x\n\xff\n\xe2\x82",
        );
        c.push(b"\xac \xe2\x82");
        assert_eq!(
            c.finish(),
            "red plain\nac tab\thereend\nx\n\u{fffd}\n\u{20ac} \u{fffd}\n"
        );
        let mut c = TextConverter::new();
        c.push(b"no newline");
        assert_eq!(c.finish(), "no newline\n");
        assert_eq!(TextConverter::new().finish(), "");
    }

    #[test]
    fn v2_conversion() {
        let file = recording(|w, t| {
            t.set(1_500_000);
            w.output(b"hi \xff\r\n").unwrap();
            t.set(2_000_000);
            w.resize(100, 40).unwrap();
            w.marker("m1").unwrap();
        });
        let mut out = Vec::new();
        let end = write_v2(Reader::open(&file).unwrap(), &mut out).unwrap();
        assert_eq!(end, StreamEnd::Complete);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"version":2,"width":80,"height":24,"timestamp":1700000000,"env":{"SHELL":"/bin/sh","TERM":"xterm-256color"},"command":"/bin/true"}"#
        );
        assert_eq!(
            &lines[1..],
            [
                "[1.500000, \"o\", \"hi \u{fffd}\\r\\n\"]",
                r#"[2.000000, "r", "100x40"]"#,
                r#"[2.000000, "m", "m1"]"#,
                r#"[2.000000, "x", "0"]"#,
            ]
        );
        for l in &lines {
            let _: serde_json::Value = serde_json::from_str(l).unwrap();
        }
        // v2 header without optional parts.
        let mut h = header();
        h.env = None;
        h.command = None;
        h.term.term_type = None;
        h.timestamp = None;
        h.sealcast = None;
        assert_eq!(v2_header(&h), br#"{"version":2,"width":80,"height":24}"#);
    }

    #[test]
    fn cat_v3_and_stats() {
        let file = recording(|w, t| {
            t.set(100);
            w.output(b"a\xffb").unwrap();
            t.set(12_000_000);
            w.tick().unwrap();
            w.output(b"\xe2\x82").unwrap();
            w.output(b"\xac!").unwrap();
        });
        let mut out = Vec::new();
        cat(Reader::open(&file).unwrap(), &mut out).unwrap();
        assert_eq!(out, b"a\xffb\xe2\x82\xac!");

        let mut v3 = Vec::new();
        write_v3(&file, &mut v3).unwrap();
        assert_eq!(v3, zstd_all(&file));

        let s = inspect(&file).unwrap();
        assert_eq!(s.lines, 5);
        assert_eq!(s.decompressed_bytes, v3.len() as u64);
        assert_eq!(s.events_by_code.get("o"), Some(&2));
        assert_eq!(s.events_by_code.get("b"), Some(&1));
        assert_eq!(s.events_by_code.get("x"), Some(&1));
        assert_eq!(s.exit_status.as_deref(), Some("0"));
        assert_eq!(s.duration_us, 12_000_000);
        assert_eq!((s.data_frames, s.checkpoint_frames), (3, 3));
        assert_eq!(s.end, StreamEnd::Complete);
    }

    #[test]
    fn truncated_and_damaged_streams_give_the_prefix() {
        let file = recording(|w, t| {
            t.set(100);
            w.output(b"first\n").unwrap();
            t.set(12_000_000);
            w.tick().unwrap();
            w.output(b"second\n").unwrap();
        });
        let frames: Vec<_> = scan(&file).map(|f| f.unwrap()).collect();
        // Cut inside the last data frame (the final checkpoint is dropped too).
        let last_data = frames
            .iter()
            .rev()
            .find(|f| f.kind == FrameKind::Data)
            .unwrap();
        let cut = &file[..last_data.offset as usize + last_data.len as usize - 2];
        let mut out = Vec::new();
        let end = cat(Reader::open(cut).unwrap(), &mut out).unwrap();
        assert!(matches!(end, StreamEnd::Truncated(_)), "{end:?}");
        assert!(out.starts_with(b"first\n"), "{out:?}");
        let mut v3 = Vec::new();
        let end = write_v3(cut, &mut v3).unwrap();
        assert!(matches!(end, StreamEnd::Truncated(_)));
        assert!(v3.ends_with(b"\n"));
        // Damage: garbage instead of the second data frame.
        let second = frames.iter().filter(|f| f.kind == FrameKind::Data).nth(2);
        let second = second.unwrap();
        let mut bad = file[..second.offset as usize].to_vec();
        bad.extend_from_slice(b"garbage garbage");
        let mut out = Vec::new();
        let end = cat(Reader::open(&bad).unwrap(), &mut out).unwrap();
        assert!(
            matches!(end, StreamEnd::Damaged(ContainerError::BadMagic { .. })),
            "{end:?}"
        );
        assert_eq!(out, b"first\n");
    }

    /// Reader bug (player/src/read.rs, `Iterator for Reader::next`): the `Err` for a
    /// malformed line is returned while the event *before* it is still held back in
    /// `pending`, so a consumer that stops at the first error (as any `?` loop does) never
    /// sees that event, and one that goes on receives it after the error, out of order.
    /// Expected: every event before the bad line is yielded before the error.
    #[test]
    fn reader_yields_preceding_event_before_a_line_error() {
        let file = recording(|w, t| {
            t.set(100);
            w.output(b"kept").unwrap();
            t.set(200);
            w.output(b"next").unwrap();
        });
        let bad = test_support::replace_line(&file, 2, b"[0.0, \"o\", 42]");
        let items: Vec<_> = Reader::open(&bad).unwrap().collect();
        assert!(
            matches!(&items[0], Ok(ev) if ev.bytes == b"kept"),
            "first item should be the 'kept' event, got {:?}",
            items[0]
        );
        assert!(matches!(&items[1], Err(ReadError::Line { line: 2, .. })));
    }

    #[test]
    fn txt_and_v2_stop_at_a_malformed_line_with_its_number() {
        let file = recording(|w, t| {
            t.set(100);
            w.output(b"one\r\n").unwrap();
            w.output(b"two\r\n").unwrap();
            t.set(200);
            w.output(b"three").unwrap();
        });
        let bad = test_support::replace_line(&file, 3, b"not json");
        let err = write_txt(Reader::open(&bad).unwrap(), &mut Vec::new()).unwrap_err();
        assert!(
            matches!(&err, ReplayError::Read(ReadError::Line { line: 3, .. })),
            "{err:?}"
        );
        let at = test_support::frame_of_line(&bad, 3);
        assert!(
            err.to_string()
                .starts_with(&format!("line 3, offset {at}: ")),
            "{err}"
        );
        // The same error from every reader of the file.
        let v2 = write_v2(Reader::open(&bad).unwrap(), &mut Vec::new()).unwrap_err();
        let v3 = write_v3(&bad, &mut Vec::new()).unwrap_err();
        let c = cat(Reader::open(&bad).unwrap(), &mut Vec::new()).unwrap_err();
        let info = inspect(&bad).unwrap().bad_line.unwrap();
        for e in [
            v2.to_string(),
            v3.to_string(),
            c.to_string(),
            info.to_string(),
        ] {
            assert_eq!(e, err.to_string());
        }
    }

    /// `info` used to count a malformed `b` event (not base64, or not after `o`/`i`/`e`) as
    /// a fine line while `cat` rejected it; both now apply [`sealcast_format::EventRules`].
    #[test]
    fn every_reader_rejects_a_malformed_b_event() {
        let file = recording(|w, t| {
            t.set(100);
            w.output(b"one \xff\r\n").unwrap();
            w.output(b"two\r\n").unwrap();
        });
        for (n, line) in [
            (2u64, &br#"[0.000000, "b", "not base64!"]"#[..]),
            (3, br#"[0.000000, "b", "/w=="]"#),
        ] {
            let bad = test_support::replace_line(&file, n as usize, line);
            let c = cat(Reader::open(&bad).unwrap(), &mut Vec::new()).unwrap_err();
            let want = format!(
                "line {n}, offset {}: ",
                test_support::frame_of_line(&bad, n)
            );
            assert!(c.to_string().starts_with(&want), "{c}");
            let s = inspect(&bad).unwrap();
            assert_eq!(s.bad_line.map(|e| e.to_string()), Some(c.to_string()));
            let v3 = write_v3(&bad, &mut Vec::new()).unwrap_err();
            assert_eq!(v3.to_string(), c.to_string());
        }
    }

    /// Intervals of 10⁹ s: the sum saturates instead of overflowing, and `info` can tell it
    /// is more time than passed on the wall clock.
    #[test]
    fn absurd_intervals_saturate_and_are_detected() {
        let file = recording(|w, t| {
            t.set(5_000_000);
            w.output(b"x").unwrap();
        });
        let s = inspect(&file).unwrap();
        assert_eq!(s.duration_us, 5_000_000);
        assert!(!s.duration_exceeds_clock(), "{:?}", s.clock_span_us);
        let huge = br#"[1000000000.000000, "m", ""]"#;
        let bad = test_support::insert_after_header(&file, huge, 20_000);
        let s = inspect(&bad).unwrap();
        assert!(s.bad_line.is_none());
        assert_eq!(s.duration_us, u64::MAX);
        assert_eq!(
            s.longest_interval.map(|(_, us)| us),
            Some(1_000_000_000_000_000)
        );
        assert!(s.duration_exceeds_clock());
        let times: Vec<u64> = Reader::open(&bad)
            .unwrap()
            .map(|e| e.unwrap().time_us)
            .collect();
        assert_eq!(times.last(), Some(&u64::MAX));
    }

    fn zstd_all(file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in scan(file) {
            let f = f.unwrap();
            if f.kind == FrameKind::Data {
                sealcast_format::decompress_frame(f.bytes, f.offset, &mut out).unwrap();
            }
        }
        out
    }
}

/// Helpers for the player's unit tests: in-memory recordings made by the real writer.
#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use sealcast_format::{
        decompress_frame, scan, FrameCompressor, FrameKind, Header, SealMeta, TermInfo,
    };
    use sealcast_recorder::{CheckpointPolicy, Clock, SealedWriter};
    use sealcast_signer::SigningKey;

    /// A clock the test moves by hand (monotonic µs; wall = 1.7e15 + mono).
    #[derive(Clone, Default)]
    pub struct TestClock(Arc<AtomicU64>);

    impl TestClock {
        pub fn set(&self, us: u64) {
            self.0.store(us, Ordering::SeqCst);
        }
    }

    impl Clock for TestClock {
        fn mono_us(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
        fn wall_us(&self) -> u64 {
            1_700_000_000_000_000 + self.mono_us()
        }
    }

    pub fn header() -> Header {
        Header {
            term: TermInfo {
                cols: 80,
                rows: 24,
                term_type: Some("xterm-256color".into()),
            },
            timestamp: Some(1_700_000_000),
            command: Some("/bin/true".into()),
            env: Some(BTreeMap::from([(
                "SHELL".to_string(),
                "/bin/sh".to_string(),
            )])),
            ..Header::sealed(SealMeta::new(
                "0123456789abcdef0123456789abcdef",
                "h",
                "u",
                1_700_000_000_000_000,
                "test",
                String::new(),
            ))
        }
    }

    /// A closed recording (exit status 0) with the events `f` writes.
    pub fn recording(f: impl FnOnce(&mut SealedWriter<Vec<u8>, TestClock>, &TestClock)) -> Vec<u8> {
        recording_with(header(), f)
    }

    /// Like [`recording`] with another header.
    pub fn recording_with(
        h: Header,
        f: impl FnOnce(&mut SealedWriter<Vec<u8>, TestClock>, &TestClock),
    ) -> Vec<u8> {
        let clock = TestClock::default();
        let key = SigningKey::generate().unwrap();
        let mut h = h;
        if let Some(m) = h.sealcast.as_mut() {
            m.key_id = key.id().to_string();
        }
        let mut w = SealedWriter::new(
            Vec::new(),
            key,
            &h,
            clock.clone(),
            CheckpointPolicy::default(),
        )
        .unwrap();
        f(&mut w, &clock);
        w.finish(Some(0)).unwrap().0
    }

    /// Offset of the data frame holding line `n` (0-based).
    pub fn frame_of_line(file: &[u8], n: u64) -> u64 {
        let mut line_no = 0;
        for f in scan(file) {
            let f = f.unwrap();
            if f.kind != FrameKind::Data {
                continue;
            }
            let mut content = Vec::new();
            decompress_frame(f.bytes, f.offset, &mut content).unwrap();
            line_no += content.iter().filter(|&&b| b == b'\n').count() as u64;
            if n < line_no {
                return f.offset;
            }
        }
        panic!("no line {n}");
    }

    /// `file` with `count` copies of `line` added as one more data frame right after the
    /// header's frame (the checkpoints no longer match; readers do not care).
    pub fn insert_after_header(file: &[u8], line: &[u8], count: usize) -> Vec<u8> {
        let first = scan(file).next().unwrap().unwrap();
        let end = (first.offset + first.len) as usize;
        let mut out = file[..end].to_vec();
        let mut c = FrameCompressor::new(1).unwrap();
        for _ in 0..count {
            c.write_line(line, &mut out).unwrap();
        }
        c.end_frame(&mut out).unwrap();
        out.extend_from_slice(&file[end..]);
        out
    }

    /// `file` with line `n` (0-based, without LF) replaced by `new`; only the frame holding
    /// it is recompressed, everything else is kept byte for byte.
    pub fn replace_line(file: &[u8], n: usize, new: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line_no = 0;
        for f in scan(file) {
            let f = f.unwrap();
            let raw = &file[f.offset as usize..(f.offset + f.len) as usize];
            if f.kind == FrameKind::Checkpoint {
                out.extend_from_slice(raw);
                continue;
            }
            let mut content = Vec::new();
            decompress_frame(f.bytes, f.offset, &mut content).unwrap();
            let lines: Vec<&[u8]> = content[..content.len() - 1]
                .split(|&b| b == b'\n')
                .collect();
            if !(line_no..line_no + lines.len()).contains(&n) {
                out.extend_from_slice(raw);
            } else {
                let mut c = FrameCompressor::new(3).unwrap();
                for (i, l) in lines.iter().enumerate() {
                    let l = if line_no + i == n { new } else { l };
                    c.write_line(l, &mut out).unwrap();
                }
                c.end_frame(&mut out).unwrap();
            }
            line_no += lines.len();
        }
        out
    }
}
