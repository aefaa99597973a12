//! The screen model: a scrollback-free `vt100::Parser` fed a recording's events, with a
//! [`GroundTracker`] beside it and an optional sink for rows that scroll off the top.

use std::num::NonZeroU16;

use crate::ground::GroundTracker;

/// What an event is, as far as the screen is concerned (asciicast v3 codes, SPEC §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `o`: PTY output, drawn.
    Output,
    /// `e`: stderr of a non-PTY session (SPEC §2.3), drawn like output.
    Stderr,
    /// `i`: input (only with input capture), not drawn.
    Input,
    /// `r`: resize, data `"COLSxROWS"`.
    Resize,
    /// `m`: marker, data is its label.
    Marker,
    /// `x`: exit status, data is the decimal status.
    Exit,
    /// `s` and codes this player does not know.
    Other,
}

impl Kind {
    /// The kind of an asciicast event code (`"o"`, `"r"`, …).
    pub fn from_code(code: &str) -> Kind {
        match code {
            "o" => Kind::Output,
            "e" => Kind::Stderr,
            "i" => Kind::Input,
            "r" => Kind::Resize,
            "m" => Kind::Marker,
            "x" => Kind::Exit,
            _ => Kind::Other,
        }
    }

    /// True for the kinds whose bytes go to the screen.
    pub fn is_drawn(self) -> bool {
        matches!(self, Kind::Output | Kind::Stderr)
    }
}

/// One event of a recording as the terminal layer sees it: absolute time in microseconds
/// since the session start, kind, and exact bytes (`b` events already folded in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// Microseconds since the start of the session.
    pub t_us: u64,
    /// What the event is.
    pub kind: Kind,
    /// Exact data bytes.
    pub data: &'a [u8],
}

/// Largest screen side the player accepts from a header or an `r` event; bigger values are
/// clamped (a hostile `r` event must not allocate gigabytes).
pub const MAX_SIDE: u16 = 1000;

/// Parse an `r` event's data, `"COLSxROWS"` (asciicast v3), into (cols, rows), each clamped
/// to 1..=[`MAX_SIDE`]. `None` when it is not two decimal numbers separated by `x`.
pub fn parse_resize(data: &[u8]) -> Option<(u16, u16)> {
    let s = std::str::from_utf8(data).ok()?;
    let (c, r) = s.trim().split_once('x')?;
    let c: u32 = c.parse().ok()?;
    let r: u32 = r.parse().ok()?;
    let clamp = |v: u32| v.clamp(1, u32::from(MAX_SIDE)) as u16;
    Some((clamp(c), clamp(r)))
}

fn nz(v: u16) -> NonZeroU16 {
    NonZeroU16::new(v.clamp(1, MAX_SIDE)).unwrap_or(NonZeroU16::MIN)
}

/// Collects the rows that scroll off the top (vt100 `Callbacks::on_scroll`, vt100 ≥ 0.18),
/// as plain text, while `enabled`: rows are appended to one buffer (`text`), each ending at
/// the offset recorded in `rows`, so a scrolling text recording costs no allocation per row.
#[derive(Debug, Default)]
pub(crate) struct ScrollSink {
    pub(crate) enabled: bool,
    pub(crate) text: String,
    /// (end of the row in `text`, from the alternate screen).
    pub(crate) rows: Vec<(usize, bool)>,
}

impl vt100::Callbacks for ScrollSink {
    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, alternate: bool) {
        if !self.enabled {
            return;
        }
        // The row comes only as "basic formatted" text (text and SGR sequences); the
        // sequences are dropped while it is written, without a second pass.
        let start = self.text.len();
        let mut plain = Plain {
            out: &mut self.text,
            in_sgr: false,
        };
        let mut st = vt100::capture::BasicFormattedCaptureState::new();
        if contents.write_formatted_basic(&mut plain, &mut st).is_err() {
            self.text.truncate(start);
            return;
        }
        let end = start + self.text[start..].trim_end().len();
        self.text.truncate(end);
        self.rows.push((end, alternate));
    }
}

/// A `fmt::Write` that keeps the text of vt100's basic formatted output and drops its SGR
/// sequences (`ESC [ … m`, the only escapes that output contains). vt100 writes a row one
/// cell at a time, so the common case is a one-character string outside a sequence.
struct Plain<'a> {
    out: &'a mut String,
    in_sgr: bool,
}

impl std::fmt::Write for Plain<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if !self.in_sgr && s.len() <= 4 && !s.as_bytes().contains(&0x1b) {
            // One cell's contents.
            self.out.push_str(s);
            return Ok(());
        }
        let mut rest = s;
        while !rest.is_empty() {
            let bytes = rest.as_bytes();
            if self.in_sgr {
                match bytes.iter().position(|&b| b == b'm') {
                    Some(i) => {
                        self.in_sgr = false;
                        rest = &rest[i + 1..];
                    }
                    None => return Ok(()),
                }
            } else {
                match bytes.iter().position(|&b| b == 0x1b) {
                    Some(i) => {
                        self.out.push_str(&rest[..i]);
                        self.in_sgr = true;
                        rest = &rest[i + 1..];
                    }
                    None => {
                        self.out.push_str(rest);
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn write_char(&mut self, c: char) -> std::fmt::Result {
        if self.in_sgr {
            self.in_sgr = c != 'm';
        } else if c == '\x1b' {
            self.in_sgr = true;
        } else {
            self.out.push(c);
        }
        Ok(())
    }
}

/// A terminal screen being fed events: `vt100::Parser` without scrollback (rows that scroll
/// off go to the transcript sink instead), plus the [`GroundTracker`].
pub struct Emulator {
    parser: vt100::Parser<ScrollSink>,
    ground: GroundTracker,
    alt_seen: bool,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("size", &self.size())
            .field("ground", &self.ground.is_ground())
            .finish()
    }
}

impl Emulator {
    /// A blank screen of `cols`×`rows` (each clamped to 1..=[`MAX_SIDE`]).
    pub fn new(cols: u16, rows: u16) -> Emulator {
        Emulator {
            parser: vt100::Parser::new_with_callbacks(nz(rows), nz(cols), 0, ScrollSink::default()),
            ground: GroundTracker::new(),
            alt_seen: false,
        }
    }

    /// A fresh parser resuming from a saved screen (a keyframe). Faithful only when the
    /// screen was saved at a ground point ([`Emulator::is_ground`]).
    pub fn from_screen(screen: &vt100::Screen) -> Emulator {
        let (rows, cols) = screen.size();
        let mut e = Emulator::new(cols.get(), rows.get());
        *e.parser.screen_mut() = screen.clone();
        e.alt_seen = screen.alternate_screen();
        e
    }

    /// Apply one event: draw `o`/`e` bytes, resize on a well-formed `r`; other kinds leave
    /// the screen alone.
    pub fn apply(&mut self, ev: &Event<'_>) {
        match ev.kind {
            Kind::Output | Kind::Stderr => {
                self.parser.process(ev.data);
                self.ground.feed(ev.data);
                if !self.alt_seen && self.parser.screen().alternate_screen() {
                    self.alt_seen = true;
                }
            }
            Kind::Resize => {
                if let Some((c, r)) = parse_resize(ev.data) {
                    self.parser.set_size(nz(r), nz(c));
                }
            }
            _ => return,
        }
        // Rows that scrolled off are in the transcript, not in the screen: vt100 still
        // counts them (its "unbounded" scrollback length, which a later resize that adds
        // rows would pull back as blank rows at the top). Forget the count after every
        // event, so a screen is fully described by what is visible and a keyframe's compact
        // form ([`crate::Snapshot`]) restores it exactly; a resize that adds rows then adds
        // them at the bottom.
        self.parser.screen_mut().clear_scrollback();
    }

    /// The current screen.
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// (cols, rows) of the screen.
    pub fn size(&self) -> (u16, u16) {
        let (r, c) = self.parser.screen().size();
        (c.get(), r.get())
    }

    /// True when a fresh parser restored from [`Emulator::screen`] would continue exactly
    /// like this one (see [`GroundTracker`]).
    pub fn is_ground(&self) -> bool {
        self.ground.is_ground()
    }

    /// True once the output set state that a screen's formatted contents cannot carry
    /// ([`GroundTracker::hidden_state`]).
    pub fn hidden_state(&self) -> bool {
        self.ground.hidden_state()
    }

    /// Estimated heap bytes of a clone of the screen: one grid, or two once the alternate
    /// screen was used (vt100 allocates it on first use).
    pub fn screen_bytes(&self) -> usize {
        let (c, r) = self.size();
        let grids = if self.alt_seen { 2 } else { 1 };
        usize::from(c) * usize::from(r) * std::mem::size_of::<vt100::Cell>() * grids + 1024
    }

    /// Start or stop collecting scrolled-off rows.
    pub(crate) fn collect_scrolled(&mut self, on: bool) {
        self.parser.callbacks_mut().enabled = on;
    }

    /// Rows that scrolled off since the last call: `f(text, from the alternate screen)` for
    /// each, in order; the buffer is then emptied (its capacity kept).
    pub(crate) fn drain_scrolled(&mut self, mut f: impl FnMut(&str, bool)) {
        let sink = self.parser.callbacks_mut();
        let mut start = 0;
        for &(end, alt) in &sink.rows {
            f(&sink.text[start..end], alt);
            start = end;
        }
        sink.rows.clear();
        sink.text.clear();
    }

    /// Rows that scrolled off since the last call: (plain text, from the alternate screen).
    #[cfg(test)]
    pub(crate) fn take_scrolled(&mut self) -> Vec<(String, bool)> {
        let mut v = Vec::new();
        self.drain_scrolled(|t, alt| v.push((t.to_string(), alt)));
        v
    }

    /// The visible rows as plain text (trailing blanks trimmed), top to bottom.
    pub fn rows_text(&self) -> Vec<String> {
        let (cols, _) = self.size();
        self.screen()
            .rows(0, cols)
            .map(|r| r.trim_end().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_data_is_parsed_and_clamped() {
        assert_eq!(parse_resize(b"100x30"), Some((100, 30)));
        assert_eq!(parse_resize(b"0x99999"), Some((1, MAX_SIDE)));
        assert_eq!(parse_resize(b"wide"), None);
        assert_eq!(parse_resize(b"10x"), None);
    }

    #[test]
    fn scrolled_rows_are_collected_only_when_enabled() {
        let mut e = Emulator::new(10, 2);
        let out = |d: &'static [u8]| Event {
            t_us: 0,
            kind: Kind::Output,
            data: d,
        };
        e.apply(&out(b"one\r\ntwo\r\nthree"));
        assert!(e.take_scrolled().is_empty());
        e.collect_scrolled(true);
        e.apply(&out(b"\r\n\x1b[31mfo\x1b[1mur\x1b[0m"));
        e.apply(&out(b"\r\nfive"));
        assert_eq!(
            e.take_scrolled(),
            vec![("two".to_string(), false), ("three".to_string(), false)]
        );
        assert_eq!(e.rows_text(), ["four", "five"]);
        e.apply(&out(b"\r\nsix"));
        assert_eq!(
            e.take_scrolled(),
            vec![("four".to_string(), false)],
            "colours dropped"
        );
    }
}
