//! Export of a recording's content: exact output bytes (`cat`), the decompressed asciicast v3
//! stream, asciicast v2 and plain text.
//!
//! None of this verifies anything: it reads whatever decodes, unchecked (verification is
//! [`sealcast_reader::verify_bytes`]; the events' [`sealcast_reader::Coverage`] is ignored
//! here, and is `Unchecked` for a reader opened without trust), so the output is the same
//! bytes whatever a verifier would say of the file. Every function writes the decodable prefix of a damaged or
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

use std::io::{self, Write};

use thiserror::Error;

use sealcast_format::{format_interval, write_json_string, EventKind, Header};
use sealcast_reader::{CheckedLines, ReadError, ReadEvent, Reader, StreamEnd};

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
        let ev = ev?.into_event();
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
    let mut events = CheckedLines::open(data)?;
    out.write_all(events.header_line())?;
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
    Ok(events.end())
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
        let ev = ev?.into_event();
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
        match ev.map(ReadEvent::into_event) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_format::ContainerError;
    use sealcast_format::{scan, FrameKind};
    use sealcast_reader::inspect;
    use sealcast_testkit::{self as test_support, header, recording};

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
