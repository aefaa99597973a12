//! Keyframe screens: a full `vt100::Screen` clone (~32 bytes per cell, 61 KiB for 80×24,
//! twice that once the alternate screen was used), or a **compact** form: the bytes that,
//! fed to a fresh emulator of the same size, rebuild exactly that screen (cells, wrapped
//! rows, cursor, drawing attributes, input modes, and the last printed character that
//! `REP` repeats). A text screen's compact form is 1–3 KiB.
//!
//! A compact form is made only where it can be exact: no sequence that sets state outside
//! the visible contents was ever seen ([`crate::GroundTracker::hidden_state`]: DECSC, scroll
//! regions, origin mode, the alternate screen, cursor style), the cursor is inside the
//! screen (not in a pending wrap), and replaying the form gives back equal cells, wrap
//! flags, cursor and screen state (checked when it is made; otherwise the full clone is
//! kept). Restoring one costs a replay of its few KiB (tens of µs).

use std::fmt::Write as _;
use std::sync::Arc;

use crate::emulator::{Emulator, Event, Kind};

/// The screen of a keyframe (see the module docs).
#[derive(Debug, Clone)]
pub enum Snapshot {
    /// A clone of the screen.
    Full(Arc<vt100::Screen>),
    /// Bytes that rebuild the screen in a fresh emulator of `cols`×`rows`.
    Compact {
        /// Screen width.
        cols: u16,
        /// Screen height.
        rows: u16,
        /// The bytes to replay.
        bytes: Arc<[u8]>,
    },
}

impl Snapshot {
    /// Take a snapshot of `emu`'s screen, compact when that is exact (module docs).
    /// `emu` must be at a ground point ([`Emulator::is_ground`]).
    pub fn of(emu: &Emulator) -> Snapshot {
        match compact(emu) {
            Some(bytes) => {
                let (cols, rows) = emu.size();
                Snapshot::Compact {
                    cols,
                    rows,
                    bytes: bytes.into(),
                }
            }
            None => Snapshot::Full(Arc::new(emu.screen().clone())),
        }
    }

    /// Estimated heap bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            Snapshot::Full(s) => full_bytes(s),
            Snapshot::Compact { bytes, .. } => bytes.len() + 64,
        }
    }

    /// True for the compact form.
    pub fn is_compact(&self) -> bool {
        matches!(self, Snapshot::Compact { .. })
    }

    /// A fresh emulator resuming from this screen.
    pub fn restore(&self) -> Emulator {
        match self {
            Snapshot::Full(s) => Emulator::from_screen(s),
            Snapshot::Compact { cols, rows, bytes } => replay_form(*cols, *rows, bytes),
        }
    }
}

/// Estimated heap bytes of a screen clone: one grid, or two once the alternate screen was
/// allocated (counted when it is active; a clone taken later still holds it).
pub(crate) fn full_bytes(s: &vt100::Screen) -> usize {
    let (r, c) = s.size();
    let cells = usize::from(c.get()) * usize::from(r.get());
    cells * std::mem::size_of::<vt100::Cell>() * 2 + 1024
}

fn replay_form(cols: u16, rows: u16, bytes: &[u8]) -> Emulator {
    let mut e = Emulator::new(cols, rows);
    e.apply(&Event {
        t_us: 0,
        kind: Kind::Output,
        data: bytes,
    });
    e
}

/// The compact form of `emu`'s screen, when one is exact.
fn compact(emu: &Emulator) -> Option<Vec<u8>> {
    if emu.hidden_state() || !emu.is_ground() {
        return None;
    }
    let screen = emu.screen();
    let (cols, rows) = emu.size();
    let (cur_r, cur_c) = screen.cursor_position();
    if cur_c >= cols || cur_r >= rows || screen.alternate_screen() {
        return None;
    }
    let last = last_char(screen)?;
    let mut form = screen.contents_formatted();
    if let Some(x) = last {
        // Print the last character again over a cell that already shows it with the same
        // attributes: the screen does not change, and REP repeats the right character.
        let mut xs = [0u8; 4];
        let xs: &str = x.encode_utf8(&mut xs);
        let (r, c) = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .find(|&(r, c)| {
                screen.cell(r, c).is_some_and(|cell| {
                    cell.contents() == xs && !cell.is_wide() && !cell.is_wide_continuation()
                })
            })?;
        let cell = screen.cell(r, c)?;
        let _ = write!(form, "\x1b[{};{}H{}{x}", r + 1, c + 1, sgr(cell));
        form.push_str(&screen.cursor_state_formatted());
        form.push_str(&screen.attributes_formatted());
    }
    form.push_str(&screen.input_mode_formatted());
    let bytes = form.into_bytes();
    // Check it: the same cells, wrap flags, cursor, and state.
    let back = replay_form(cols, rows, &bytes);
    let b = back.screen();
    let same = b.cursor_position() == screen.cursor_position()
        && (0..rows).all(|r| {
            b.row_wrapped(r) == screen.row_wrapped(r)
                && (0..cols).all(|c| b.cell(r, c) == screen.cell(r, c))
        })
        && state_debug(b) == state_debug(screen)
        && back.is_ground();
    same.then_some(bytes)
}

/// The screen's state apart from its cells, as `Debug` text: vt100 keeps the last printed
/// character, attributes, modes, saved cursor and scrollback count in private fields, so
/// they are compared through `Debug` of a copy one column wide (cheap: one cell per row;
/// narrowing neither scrolls nor moves rows).
fn state_debug(s: &vt100::Screen) -> String {
    let mut narrow = s.clone();
    narrow.set_size(s.size().0, std::num::NonZeroU16::MIN);
    format!("{narrow:?}")
}

/// The last printed character (what `REP` repeats): `Ok(None)` when none was printed;
/// `None` when it cannot be read.
fn last_char(s: &vt100::Screen) -> Option<Option<char>> {
    let d = state_debug(s);
    let tail = &d[d.rfind("last_char: ")? + "last_char: ".len()..];
    if tail.starts_with("None") {
        return Some(None);
    }
    let lit = tail.strip_prefix("Some('")?;
    let mut it = lit.chars();
    let c = match it.next()? {
        '\\' => match it.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            '\'' => '\'',
            '"' => '"',
            '\\' => '\\',
            'u' => {
                let rest: String = it.by_ref().take_while(|&c| c != '}').collect();
                char::from_u32(u32::from_str_radix(rest.strip_prefix('{')?, 16).ok()?)?
            }
            _ => return None,
        },
        c => c,
    };
    Some(Some(c))
}

/// `Debug` text of a screen with each cell's `contents` cut to the bytes in use.
///
/// vt100 keeps stale bytes past a cell's length when a shorter character overwrites a
/// longer one (and in wide-character continuation cells); it never reads them, and a screen
/// rebuilt from a compact form has zeros there. Everything else (every private field: last
/// printed character, saved cursor, scroll region, modes) is compared as `Debug` shows it.
/// For tests that check "a seek gives exactly the screen of a linear replay".
pub fn canonical_state(screen: &vt100::Screen) -> String {
    let d = format!("{screen:?}");
    let mut out = String::with_capacity(d.len());
    let mut rest = d.as_str();
    const KEY: &str = "contents: [";
    while let Some(i) = rest.find(KEY) {
        out.push_str(&rest[..i + KEY.len()]);
        rest = &rest[i + KEY.len()..];
        let Some(end) = rest.find(']') else { break };
        let bytes: Vec<&str> = rest[..end].split(", ").collect();
        let after = &rest[end..];
        let len = after
            .strip_prefix("], len: ")
            .and_then(|a| a.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(bytes.len());
        let used = (len & 0x1f).min(bytes.len());
        out.push_str(&bytes[..used].join(", "));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// SGR sequence that sets exactly `cell`'s attributes.
fn sgr(cell: &vt100::Cell) -> String {
    let mut s = String::from("\x1b[0");
    if cell.bold() {
        s.push_str(";1");
    }
    if cell.dim() {
        s.push_str(";2");
    }
    if cell.italic() {
        s.push_str(";3");
    }
    if cell.underline() {
        s.push_str(";4");
    }
    if cell.inverse() {
        s.push_str(";7");
    }
    for (base, color) in [(30u8, cell.fgcolor()), (40, cell.bgcolor())] {
        let _ = match color {
            vt100::Color::Default => Ok(()),
            vt100::Color::Idx(i) => write!(s, ";{};5;{i}", base + 8),
            vt100::Color::Rgb(r, g, b) => write!(s, ";{};2;{r};{g};{b}", base + 8),
        };
    }
    s.push('m');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emu(bytes: &[u8]) -> Emulator {
        let mut e = Emulator::new(30, 6);
        e.apply(&Event {
            t_us: 0,
            kind: Kind::Output,
            data: bytes,
        });
        e
    }

    #[test]
    fn text_screens_are_compact_and_exact() {
        let e = emu(
            "\x1b[32m0001\x1b[0m \x1b[1m[INFO]\x1b[0m alpha beta gamma delta epsilon zeta\r\n\
             wide \u{4e16}\u{754c} e\u{301} \x1b[38;2;1;2;3mrgb\x1b[48;5;9mbg\r\nprogress 50%\r\x1b[?1h"
                .as_bytes(),
        );
        let s = Snapshot::of(&e);
        assert!(s.is_compact(), "{s:?}");
        assert!(s.bytes() < 1024);
        let back = s.restore();
        assert_eq!(canonical_state(back.screen()), canonical_state(e.screen()));
        // REP after the restore repeats the same character as after the original.
        let mut a = e;
        let mut b = back;
        for x in [&mut a, &mut b] {
            x.apply(&Event {
                t_us: 0,
                kind: Kind::Output,
                data: b"\x1b[3b",
            });
        }
        assert_eq!(canonical_state(a.screen()), canonical_state(b.screen()));
    }

    #[test]
    fn hidden_state_keeps_the_full_screen() {
        for seq in [
            &b"a\x1b7b"[..],
            b"\x1b[2;4rtext",
            b"\x1b[?1049hfull",
            b"\x1b[4 qx",
        ] {
            let s = Snapshot::of(&emu(seq));
            assert!(!s.is_compact(), "{:?}", String::from_utf8_lossy(seq));
        }
        // A pending wrap (the cursor past the last column) is not reproduced either.
        let s = Snapshot::of(&emu(&[b'x'; 30]));
        assert!(!s.is_compact());
    }
}
