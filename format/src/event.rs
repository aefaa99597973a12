//! The event line layer (SPEC §2.2): canonical encoding of PTY chunks and parsing of any
//! valid asciicast v3 event line.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::cmdmeta::{CommandEvent, ProcessEvent};
use crate::error::ParseError;
use crate::kind::EventKind;

/// Direction of a byte stream through the PTY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamDir {
    /// Child → terminal (`o` events).
    Output,
    /// Terminal → child (`i` events, only with input capture).
    Input,
    /// The child's standard error in a session without a PTY (`e` extension events, SPEC
    /// §2.3): kept apart from `o` so a reader can tell stdout from stderr.
    Stderr,
}

impl StreamDir {
    /// The event kind of this stream: [`EventKind::Output`], [`EventKind::Input`] or
    /// [`EventKind::Stderr`].
    pub fn kind(self) -> EventKind {
        match self {
            StreamDir::Output => EventKind::Output,
            StreamDir::Input => EventKind::Input,
            StreamDir::Stderr => EventKind::Stderr,
        }
    }
}

/// Encodes recorder observations into canonical asciicast v3 event lines (SPEC §2.2).
///
/// Times are **absolute** microseconds on a monotonic clock since the session started; the
/// encoder turns them into intervals between *emitted* lines, so a chunk held back as an
/// incomplete UTF-8 sequence does not lose time. Every method hands each finished line (without
/// its LF) to `emit`, in order; a call may emit zero, one or two lines.
#[derive(Debug, Default)]
pub struct EventEncoder {
    last_us: u64,
    carry: [Carry; 3],
    line: Vec<u8>,
    joined: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Carry {
    buf: [u8; 3],
    len: u8,
}

impl EventEncoder {
    /// A new encoder whose first event is timed relative to `t = 0` µs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encode a chunk of PTY bytes read at `t_us`.
    ///
    /// Valid UTF-8 becomes one `o`/`i`/`e` line. An incomplete UTF-8 sequence at the end (≤ 3
    /// bytes) is held until the next chunk of the same direction. Invalid bytes produce a lossy
    /// `o`/`i`/`e` line followed by a `b` line with the exact bytes (base64).
    pub fn data(&mut self, dir: StreamDir, t_us: u64, bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
        let idx = dir as usize;
        let carry = self.carry[idx];
        let mut joined = std::mem::take(&mut self.joined);
        let data: &[u8] = if carry.len == 0 {
            bytes
        } else {
            joined.clear();
            joined.extend_from_slice(&carry.buf[..carry.len as usize]);
            joined.extend_from_slice(bytes);
            &joined
        };
        self.carry[idx] = Carry::default();
        let (body, tail) = match std::str::from_utf8(data) {
            Ok(_) => (data, &[][..]),
            Err(e) if e.error_len().is_none() => data.split_at(e.valid_up_to()),
            Err(_) => data.split_at(data.len() - incomplete_tail_len(data)),
        };
        if !tail.is_empty() {
            let mut c = Carry::default();
            c.buf[..tail.len()].copy_from_slice(tail);
            c.len = tail.len() as u8;
            self.carry[idx] = c;
        }
        if !body.is_empty() {
            self.emit_bytes(dir, t_us, body, emit);
        }
        self.joined = joined;
    }

    /// Emit whatever bytes of `dir` are still held back (call before `exit`/close).
    pub fn flush(&mut self, dir: StreamDir, t_us: u64, emit: &mut impl FnMut(&[u8])) {
        let idx = dir as usize;
        let carry = std::mem::take(&mut self.carry[idx]);
        if carry.len > 0 {
            let bytes = carry.buf;
            self.emit_bytes(dir, t_us, &bytes[..carry.len as usize], emit);
        }
    }

    /// Encode a terminal resize: an `r` line with data `"COLSxROWS"`.
    pub fn resize(&mut self, t_us: u64, cols: u16, rows: u16, emit: &mut impl FnMut(&[u8])) {
        let mut s = itoa_buf(cols as u64);
        s.push(b'x');
        s.extend_from_slice(&itoa_buf(rows as u64));
        self.simple(t_us, &EventKind::Resize, &s, emit);
    }

    /// Encode the exit status: an `x` line with the decimal status (`128+N` for signal N).
    pub fn exit(&mut self, t_us: u64, status: i32, emit: &mut impl FnMut(&[u8])) {
        let s = status.to_string();
        self.simple(t_us, &EventKind::Exit, s.as_bytes(), emit);
    }

    /// Encode a marker (`m`) with a UTF-8 label.
    pub fn marker(&mut self, t_us: u64, label: &str, emit: &mut impl FnMut(&[u8])) {
        self.simple(t_us, &EventKind::Marker, label.as_bytes(), emit);
    }

    /// Encode a session summary: an `s` extension line (SPEC §2.3) whose data is `json`, a
    /// JSON object serialised as text (the line carries it as a JSON *string*, escaped).
    pub fn summary(&mut self, t_us: u64, json: &str, emit: &mut impl FnMut(&[u8])) {
        self.simple(t_us, &EventKind::Summary, json.as_bytes(), emit);
    }

    /// Encode a command event: a `c` extension line (SPEC §2.4.1) whose data is the event's
    /// JSON object, carried as a JSON string.
    pub fn command(&mut self, t_us: u64, ev: &CommandEvent, emit: &mut impl FnMut(&[u8])) {
        self.simple(t_us, &EventKind::Command, ev.to_json().as_bytes(), emit);
    }

    /// Encode a process event: a `p` extension line (SPEC §2.4.2) whose data is the event's
    /// JSON object, carried as a JSON string.
    pub fn process(&mut self, t_us: u64, ev: &ProcessEvent, emit: &mut impl FnMut(&[u8])) {
        self.simple(t_us, &EventKind::Process, ev.to_json().as_bytes(), emit);
    }

    /// Encode a database event: a `d` extension line (SPEC §11) whose data is `json`, a JSON
    /// object serialised as text (carried as a JSON *string*, escaped), with a real interval.
    pub fn db(&mut self, t_us: u64, json: &str, emit: &mut impl FnMut(&[u8])) {
        self.simple(t_us, &EventKind::Database, json.as_bytes(), emit);
    }

    /// Encode an event of `kind` whose data is valid UTF-8 text.
    fn simple(&mut self, t_us: u64, kind: &EventKind, text: &[u8], emit: &mut impl FnMut(&[u8])) {
        let interval = self.interval(t_us);
        self.line.clear();
        start_line(&mut self.line, interval, kind);
        write_json_string(&mut self.line, text);
        self.line.push(b']');
        emit(&self.line);
    }

    fn interval(&mut self, t_us: u64) -> u64 {
        let iv = t_us.saturating_sub(self.last_us);
        self.last_us = self.last_us.max(t_us);
        iv
    }

    fn emit_bytes(
        &mut self,
        dir: StreamDir,
        t_us: u64,
        bytes: &[u8],
        emit: &mut impl FnMut(&[u8]),
    ) {
        let interval = self.interval(t_us);
        self.line.clear();
        start_line(&mut self.line, interval, &dir.kind());
        match std::str::from_utf8(bytes) {
            Ok(_) => {
                write_json_string(&mut self.line, bytes);
                self.line.push(b']');
                emit(&self.line);
            }
            Err(_) => {
                let lossy = String::from_utf8_lossy(bytes);
                write_json_string(&mut self.line, lossy.as_bytes());
                self.line.push(b']');
                emit(&self.line);
                self.line.clear();
                start_line(&mut self.line, 0, &EventKind::Bytes);
                self.line.push(b'"');
                let at = self.line.len();
                let n = base64::encoded_len(bytes.len(), true).unwrap_or(0);
                self.line.resize(at + n, 0);
                let written = B64.encode_slice(bytes, &mut self.line[at..]).unwrap_or(0);
                self.line.truncate(at + written);
                self.line.extend_from_slice(b"\"]");
                emit(&self.line);
            }
        }
    }
}

/// Length of an incomplete (so far valid) UTF-8 sequence at the end of `data`, 0 if none.
fn incomplete_tail_len(data: &[u8]) -> usize {
    let n = data.len();
    for i in 1..=n.min(3) {
        let b = data[n - i];
        if (0x80..0xC0).contains(&b) {
            continue;
        }
        let need = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 0,
        };
        return if need > i { i } else { 0 };
    }
    0
}

/// Start a canonical line: `[<interval>, "<code>", `.
fn start_line(line: &mut Vec<u8>, interval_us: u64, kind: &EventKind) {
    line.push(b'[');
    line.extend_from_slice(format_interval(interval_us).as_bytes());
    line.extend_from_slice(b", ");
    write_json_string(line, kind.code().as_bytes());
    line.extend_from_slice(b", ");
}

fn itoa_buf(v: u64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Format microseconds as seconds with exactly six fractional digits (`1.000250`).
pub fn format_interval(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

// 0 = copy, 1 = escape with a short form or \u00XX.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t
};

/// Append `text` (which must be valid UTF-8) to `out` as a JSON string literal in the writer's
/// canonical form (SPEC §2.2): quotes, `\"`, `\\`, `\n \r \t \b \f`, other controls and DEL as
/// `\u00XX`; all other characters verbatim.
pub fn write_json_string(out: &mut Vec<u8>, text: &[u8]) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&text[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

/// One decoded event line (SPEC §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Microseconds since the previous event (rounded from the JSON number).
    pub interval_us: u64,
    /// Event code (SPEC §2.5): a known kind, or [`EventKind::Unknown`] (a reader ignores it).
    pub kind: EventKind,
    /// The data string, unescaped.
    pub data: String,
}

/// A decoded event line where `b` extension lines have been folded into the event they belong
/// to, giving exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    /// Absolute time in microseconds since the start of the session.
    pub time_us: u64,
    /// Event code (never [`EventKind::Bytes`]: those are folded into `bytes`).
    pub kind: EventKind,
    /// Exact bytes: for `o`/`i` with a following `b`, the `b` bytes; otherwise the data text.
    pub bytes: Vec<u8>,
}

/// Parse one event line (without LF) in any valid JSON form.
///
/// # Errors
/// [`ParseError::Json`] when the line is not `[number, string, string]`,
/// [`ParseError::Invalid`] for a negative, non-finite or absurd interval.
pub fn parse_event(line: &[u8]) -> Result<Event, ParseError> {
    let (num, code, data): (serde_json::Number, String, String) =
        serde_json::from_slice(line).map_err(|e| ParseError::Json(e.to_string()))?;
    let secs = num
        .as_f64()
        .ok_or_else(|| ParseError::Invalid(format!("interval {num} is not a number")))?;
    if !secs.is_finite() || !(0.0..=1.0e9).contains(&secs) {
        return Err(ParseError::Invalid(format!("interval {num} out of range")));
    }
    Ok(Event {
        interval_us: (secs * 1_000_000.0).round() as u64,
        kind: EventKind::from_code_string(code),
        data,
    })
}

impl Event {
    /// The line the sealcast writer would have produced for this event (SPEC §2.2). A line
    /// whose bytes differ from this was not written by sealcast as it stands.
    pub fn canonical_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(self.data.len() + 24);
        line.push(b'[');
        line.extend_from_slice(format_interval(self.interval_us).as_bytes());
        line.extend_from_slice(b", ");
        write_json_string(&mut line, self.kind.code().as_bytes());
        line.extend_from_slice(b", ");
        write_json_string(&mut line, self.data.as_bytes());
        line.push(b']');
        line
    }

    /// Decode the base64 data of a `b` event.
    ///
    /// # Errors
    /// [`ParseError::Invalid`] when the data is not padded standard base64.
    pub fn raw_bytes(&self) -> Result<Vec<u8>, ParseError> {
        B64.decode(self.data.as_bytes())
            .map_err(|e| ParseError::Invalid(format!("bad base64 in 'b' event: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(f: impl FnOnce(&mut EventEncoder, &mut dyn FnMut(&[u8]))) -> Vec<String> {
        let mut enc = EventEncoder::new();
        let mut out = Vec::new();
        f(&mut enc, &mut |l: &[u8]| {
            out.push(String::from_utf8(l.to_vec()).unwrap())
        });
        out
    }

    #[test]
    fn canonical_output_line() {
        let out = lines(|e, emit| {
            e.data(
                StreamDir::Output,
                1_000_250,
                b"hi\x1b[0m\r\n\"\\",
                &mut |l| emit(l),
            )
        });
        assert_eq!(out, vec![r#"[1.000250, "o", "hi\u001b[0m\r\n\"\\"]"#]);
    }

    #[test]
    fn intervals_are_relative_to_previous_emitted_line() {
        let out = lines(|e, emit| {
            e.data(StreamDir::Output, 500, b"a", &mut |l| emit(l));
            e.data(StreamDir::Output, 700, b"\xc3", &mut |l| emit(l)); // held back
            e.data(StreamDir::Output, 900, b"\xa9", &mut |l| emit(l));
            e.resize(2_000_900, 100, 40, &mut |l| emit(l));
            e.exit(2_000_901, 3, &mut |l| emit(l));
        });
        assert_eq!(
            out,
            vec![
                r#"[0.000500, "o", "a"]"#,
                "[0.000400, \"o\", \"\u{e9}\"]",
                r#"[2.000000, "r", "100x40"]"#,
                r#"[0.000001, "x", "3"]"#,
            ]
        );
    }

    #[test]
    fn invalid_utf8_gets_exact_bytes() {
        let out = lines(|e, emit| e.data(StreamDir::Output, 0, b"a\xff\xfeb", &mut |l| emit(l)));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], "[0.000000, \"o\", \"a\u{fffd}\u{fffd}b\"]");
        let ev = parse_event(out[1].as_bytes()).unwrap();
        assert_eq!(ev.kind, EventKind::Bytes);
        assert_eq!(ev.raw_bytes().unwrap(), b"a\xff\xfeb");
    }

    #[test]
    fn flush_emits_held_bytes_exactly() {
        let out = lines(|e, emit| {
            e.data(StreamDir::Output, 0, b"x\xe2\x82", &mut |l| emit(l));
            e.flush(StreamDir::Output, 5, &mut |l| emit(l));
        });
        assert_eq!(out.len(), 3);
        let ev = parse_event(out[2].as_bytes()).unwrap();
        assert_eq!(ev.raw_bytes().unwrap(), b"\xe2\x82");
    }

    #[test]
    fn stderr_has_its_own_code_and_carry() {
        let out = lines(|e, emit| {
            e.data(StreamDir::Output, 0, b"x\xc3", &mut |l| emit(l)); // held back: o
            e.data(StreamDir::Stderr, 10, b"err\xe2\x82", &mut |l| emit(l)); // held back: e
            e.data(StreamDir::Stderr, 20, b"\xac", &mut |l| emit(l));
            e.data(StreamDir::Output, 30, b"\xa9", &mut |l| emit(l));
            e.data(StreamDir::Stderr, 40, b"\xff", &mut |l| emit(l));
            e.flush(StreamDir::Stderr, 50, &mut |l| emit(l));
        });
        assert_eq!(
            out[..4],
            [
                r#"[0.000000, "o", "x"]"#,
                r#"[0.000010, "e", "err"]"#,
                "[0.000010, \"e\", \"\u{20ac}\"]",
                "[0.000010, \"o\", \"\u{e9}\"]",
            ]
        );
        assert_eq!(out[4], "[0.000010, \"e\", \"\u{fffd}\"]");
        let b = parse_event(out[5].as_bytes()).unwrap();
        assert_eq!(
            (&b.kind, b.raw_bytes().unwrap()),
            (&EventKind::Bytes, vec![0xff])
        );
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn summary_is_an_escaped_json_string() {
        let out = lines(|e, emit| {
            e.summary(
                1_500_000,
                r#"{"policy":"metadata","bytes_in":3}"#,
                &mut |l| emit(l),
            )
        });
        assert_eq!(
            out,
            [r#"[1.500000, "s", "{\"policy\":\"metadata\",\"bytes_in\":3}"]"#]
        );
        let ev = parse_event(out[0].as_bytes()).unwrap();
        assert_eq!(ev.canonical_line(), out[0].as_bytes());
        let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(v["bytes_in"], 3);
    }

    #[test]
    fn every_byte_value_round_trips_through_json() {
        let all: Vec<u8> = (0u8..0x80).collect();
        let mut line = Vec::new();
        write_json_string(&mut line, &all);
        let back: String = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.as_bytes(), &all[..]);
    }

    #[test]
    fn parse_accepts_equivalent_forms_and_rejects_bad_ones() {
        let a = parse_event(br#"[1, "o", "\u0041"]"#).unwrap();
        assert_eq!(
            a,
            Event {
                interval_us: 1_000_000,
                kind: EventKind::Output,
                data: "A".into()
            }
        );
        assert!(parse_event(br#"[-1, "o", "x"]"#).is_err());
        assert!(parse_event(br#"[1, "o", {"a":1}]"#).is_err());
        assert!(parse_event(b"garbage").is_err());
        assert!(parse_event(br#"[1, "o", "x", 4]"#).is_err());
    }

    #[test]
    fn canonical_line_reproduces_writer_output_only() {
        let out = lines(|e, emit| {
            e.data(StreamDir::Output, 1_234_567, b"a\"\x1b\x7f\xff", &mut |l| {
                emit(l)
            })
        });
        for l in &out {
            assert_eq!(
                parse_event(l.as_bytes()).unwrap().canonical_line(),
                l.as_bytes()
            );
        }
        let rewritten = br#"[1.234567,"o","a"]"#;
        assert_ne!(parse_event(rewritten).unwrap().canonical_line(), rewritten);
    }
}
