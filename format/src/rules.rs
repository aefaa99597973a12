//! The rules every reader applies to the event lines of a stream (SPEC §2.2), in one place so
//! that `verify`, `cat`, `export`, `play` and `info` accept and reject exactly the same lines
//! with the same reason.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::error::ParseError;
use crate::event::{parse_event, Event};
use crate::kind::EventKind;

/// Reason given for a `b` event that does not follow an `o`, `i` or `e` event.
const B_ORPHAN: &str = "'b' event does not follow an 'o', 'i' or 'e' event";

/// Checks the event lines (line 1 on) of one stream, in order (SPEC §2.2):
///
/// - every line parses as an event ([`parse_event`]: `[number, string, string]`, interval
///   from 0 to 10⁹ s);
/// - a `b` event's data is padded standard base64 (RFC 4648 §4);
/// - a `b` event immediately follows an `o`, `i` or `e` event (so a `b` after a `b` is
///   malformed too: the writer emits one `b` per lossy event).
///
/// The state is only which kind of line came last, so a copy taken at a checkpoint can
/// re-check what follows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventRules {
    after_text: bool,
}

impl EventRules {
    /// Rules at the start of a stream (before line 1).
    pub fn new() -> EventRules {
        EventRules::default()
    }

    /// Parse the next event line (without its LF) and apply the rules. For a `b` event the
    /// decoded bytes come with it.
    ///
    /// # Errors
    /// [`ParseError`] from [`parse_event`]; [`ParseError::Invalid`] for bad base64 in a `b`
    /// event, then for a `b` event that follows anything but `o`, `i` or `e`. The state is
    /// unchanged after an error.
    pub fn parse(&mut self, line: &[u8]) -> Result<(Event, Option<Vec<u8>>), ParseError> {
        let ev = parse_event(line)?;
        let raw = if ev.kind == EventKind::Bytes {
            let raw = ev.raw_bytes()?;
            if !self.after_text {
                return Err(ParseError::Invalid(B_ORPHAN.into()));
            }
            Some(raw)
        } else {
            None
        };
        self.after_text = ev.kind.is_stream();
        Ok((ev, raw))
    }

    /// The decision of [`EventRules::parse`] without building the event: lines in the
    /// writer's canonical form (every line sealcast writes) are checked in place; any other
    /// line goes through [`EventRules::parse`], which also gives the error. `scratch` is
    /// reused to decode `b` data.
    ///
    /// # Errors
    /// Exactly those of [`EventRules::parse`] for the same line and state.
    pub fn check(&mut self, line: &[u8], scratch: &mut Vec<u8>) -> Result<(), ParseError> {
        if let Some((code, data)) = canonical_parts(line) {
            let kind = EventKind::known(char::from(code));
            if kind != Some(EventKind::Bytes) {
                self.after_text = kind.is_some_and(|k| k.is_stream());
                return Ok(());
            }
            scratch.clear();
            if self.after_text && !data.contains(&b'\\') && B64.decode_vec(data, scratch).is_ok() {
                self.after_text = false;
                return Ok(());
            }
        }
        self.parse(line).map(|_| ())
    }
}

/// Code and raw string content of a line that is certainly a valid event
/// (`[<secs>.<6 digits>, "<c>", "<data>"]` with a one-byte code, an interval within range and
/// a JSON string that [`parse_event`] accepts); `None` when that takes the full parser.
fn canonical_parts(line: &[u8]) -> Option<(u8, &[u8])> {
    let rest = line.strip_prefix(b"[")?;
    let dot = rest.iter().position(|&b| b == b'.')?;
    let (int, rest) = rest.split_at(dot);
    let frac = rest.get(1..7)?;
    let rest = &rest[7..];
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if int.is_empty() || int.len() > 10 || !digits(int) || !digits(frac) {
        return None;
    }
    if int.len() > 1 && int[0] == b'0' {
        return None; // not a JSON number
    }
    // At most 10⁹ s (parse_event's range).
    if int.len() == 10 && (int != b"1000000000" || frac != b"000000") {
        return None;
    }
    let rest = rest.strip_prefix(b", \"")?;
    let (&code, rest) = rest.split_first()?;
    if !(0x20..0x7f).contains(&code) || code == b'"' || code == b'\\' {
        return None;
    }
    let data = rest.strip_prefix(b"\", \"")?.strip_suffix(b"\"]")?;
    json_string_content(data).then_some((code, data))
}

/// True if `s` is the content of a JSON string (between the quotes) that decodes to valid
/// UTF-8 text: no raw control characters or quotes, only the escapes `\" \\ \/ \b \f \n \r
/// \t \u00XX`. Other `\u` escapes return false (the full parser decides on surrogates).
fn json_string_content(s: &[u8]) -> bool {
    let mut high = false;
    let mut i = next_special(s, 0, &mut high);
    while i < s.len() {
        if s[i] != b'\\' {
            return false; // a raw quote or control character
        }
        match s.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
            Some(b'u') => {
                let Some(hex) = s.get(i + 2..i + 6) else {
                    return false;
                };
                if &hex[..2] != b"00" || !hex[2..].iter().all(u8::is_ascii_hexdigit) {
                    return false;
                }
                i += 6;
            }
            _ => return false,
        }
        i = next_special(s, i, &mut high);
    }
    // Pure ASCII is valid UTF-8; only text with other bytes needs the full check.
    !high || std::str::from_utf8(s).is_ok()
}

/// Index of the first `"`, `\` or byte below 0x20 in `s` at or after `i` (`s.len()` if
/// none), eight bytes at a time (the verifier checks every line, so this is its hot loop).
/// Sets `high` when a byte above 0x7F was passed over (or may have been: a false `true` only
/// costs a UTF-8 check).
fn next_special(s: &[u8], mut i: usize, high: &mut bool) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Bit 7 of each byte of `v` that is zero / below `n` (n ≤ 128), as in "Bit Twiddling
    // Hacks" (haszero, hasless). A borrow can also flag a byte above a real match, never
    // one below it, so the lowest flag is exact.
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let less = |v: u64, n: u64| v.wrapping_sub(LO * n) & !v & HI;
    let mut seen = 0u64;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_le_bytes(w);
        seen |= v;
        let m = less(v, 0x20) | zero(v ^ (LO * u64::from(b'"'))) | zero(v ^ (LO * 0x5c));
        if m != 0 {
            *high |= seen & HI != 0;
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && !matches!(s[i], b'"' | b'\\' | 0..=0x1f) {
        seen |= u64::from(s[i]);
        i += 1;
    }
    *high |= seen & HI != 0;
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(rules: EventRules, line: &[u8]) -> (Result<(), String>, Result<(), String>) {
        let (mut a, mut b) = (rules, rules);
        let fast = a.check(line, &mut Vec::new()).map_err(|e| e.to_string());
        let full = b.parse(line).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(a, b, "state after {:?}", String::from_utf8_lossy(line));
        (fast, full)
    }

    #[test]
    fn check_and_parse_agree_on_every_line() {
        let text = EventRules { after_text: true };
        let other = EventRules::default();
        let lines: &[&[u8]] = &[
            br#"[0.100000, "o", "hi\r\n"]"#,
            br#"[0.100000, "o", "\u001b[0m \u007f \"q\" \\ \/ \b\f\t"]"#,
            br#"[0.000000, "b", "/w=="]"#,
            br#"[0.000000, "b", "/w="]"#,
            br#"[0.000000, "b", "\/w=="]"#,
            br#"[0.000000, "b", "!!"]"#,
            br#"[1000000000.000000, "o", ""]"#,
            br#"[1000000000.000001, "o", ""]"#,
            br#"[9999999999.000000, "o", ""]"#,
            br#"[01.000000, "o", ""]"#,
            br#"[0.1, "o", "x"]"#,
            br#"[0.100000, "o", "\ud800"]"#,
            br#"[0.100000, "o", "\ud83d\ude00"]"#,
            br#"[0.100000, "o", "a"b"]"#,
            br#"[0.100000, "o", "a\"]"#,
            br#"[0.100000, "o", "a\x"]"#,
            b"[0.100000, \"o\", \"raw\ttab\"]",
            b"[0.100000, \"o\", \"bad \xff utf8\"]",
            "[0.100000, \"o\", \"caf\u{e9} \u{2713}\"]".as_bytes(),
            br#"[0.100000, "\u0062", "/w=="]"#,
            br#"[0.100000, "oo", "x"]"#,
            br#"[0.100000, "x", "0"]"#,
            br#"[0.100000, "o", 5]"#,
            br#"[0.100000, "o", "x"] "#,
            b"",
            b"[",
        ];
        for line in lines {
            for rules in [text, other] {
                let (fast, full) = both(rules, line);
                assert_eq!(
                    fast,
                    full,
                    "{:?} after_text={}",
                    String::from_utf8_lossy(line),
                    rules.after_text
                );
            }
        }
    }

    #[test]
    fn next_special_finds_the_first_one() {
        for len in 0..40 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut v = vec![b'a'; len];
                    v.extend_from_slice(&[0x7f, 0x80, 0xff, b' ']);
                    if at < len {
                        v[at] = special;
                    }
                    let want = if at < len { at } else { v.len() };
                    let mut high = false;
                    assert_eq!(
                        next_special(&v, 0, &mut high),
                        want,
                        "len {len} at {at} {special}"
                    );
                    // 0x80 and 0xff are reached when nothing is special before them.
                    if at >= len {
                        assert!(high, "len {len}");
                    }
                }
            }
        }
    }

    #[test]
    fn b_rules() {
        let mut r = EventRules::new();
        let orphan = r.parse(br#"[0.000000, "b", "/w=="]"#).unwrap_err();
        assert_eq!(orphan.to_string(), B_ORPHAN);
        r.parse(br#"[0.100000, "e", "x"]"#).unwrap();
        let (_, raw) = r.parse(br#"[0.000000, "b", "/w=="]"#).unwrap();
        assert_eq!(raw, Some(vec![0xff]));
        // A second `b` follows a `b`, not a text event.
        assert!(r.parse(br#"[0.000000, "b", "/w=="]"#).is_err());
        r.parse(br#"[0.100000, "o", "x"]"#).unwrap();
        let bad = r.parse(br#"[0.000000, "b", "/w="]"#).unwrap_err();
        assert!(
            bad.to_string().starts_with("bad base64 in 'b' event"),
            "{bad}"
        );
    }
}
