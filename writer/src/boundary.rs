//! Where terminal output may be cut into events (SPEC §2.2 "Byte exactness"): a sans-I/O
//! scanner that tracks whether a byte stream, so far, ends inside an escape sequence or a
//! UTF-8 sequence.
//!
//! The writer cuts `o` and `e` events only where the scanner is in its **ground** state
//! (outside every sequence), so a player that seeks to an event boundary finds a terminal
//! parser there in the state a fresh one starts in, and a UTF-8 character is never split
//! across two events. The bytes after the last boundary of a chunk (at most [`MAX_HELD`]) are
//! carried to the next event of the same stream; more than that, and the event is cut where
//! the chunk ends (a *forced* cut). Only the recorded boundary moves: the bytes reach the
//! user's terminal when they are read.
//!
//! States, after the ECMA-48 / VT500 parser model (as vte implements it) reduced to what
//! decides "inside a sequence or not", in constant memory:
//!
//! | state | entered by | left to ground by |
//! |---|---|---|
//! | UTF-8 | a lead byte `C2`–`F4` | its last continuation byte; any other byte (invalid: the sequence is over, the byte is read again) |
//! | escape | `ESC` (from any state) | a final byte `0x30`–`0x7E` (after intermediates `0x20`–`0x2F`), `CAN`, `SUB` |
//! | CSI | `ESC [` | a final byte `0x40`–`0x7E`, `CAN`, `SUB` |
//! | OSC | `ESC ]` | `BEL`, `ST` (`ESC \`), `CAN`, `SUB` |
//! | string | `ESC P` (DCS), `ESC X` (SOS), `ESC ^` (PM), `ESC _` (APC) | `ST`, `CAN`, `SUB` |
//!
//! `ESC` inside any sequence ends it and starts a new escape (so `ESC \` ends OSC and string
//! states through the escape state). C0 controls inside an escape or CSI sequence are
//! executed by terminals without ending it, so they keep the state. 8-bit C1 controls are
//! not recognised: the stream is UTF-8, where `0x80`–`0x9F` are continuation bytes.

/// Most bytes carried to the next event of a stream: an incomplete sequence longer than this
/// ends its event where the chunk ends (a forced cut).
pub const MAX_HELD: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    /// Inside a UTF-8 sequence: this many continuation bytes are still due.
    Utf8(u8),
    Escape,
    /// `ESC` followed by intermediate bytes.
    EscapeIntermediate,
    Csi,
    Osc,
    /// DCS, SOS, PM or APC: a control string ended by ST.
    String,
}

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

/// The scanner. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct BoundaryScanner {
    state: State,
}

impl BoundaryScanner {
    /// A scanner at the start of a stream (ground).
    pub fn new() -> BoundaryScanner {
        BoundaryScanner::default()
    }

    /// True when the bytes fed so far end outside every sequence.
    pub fn at_ground(&self) -> bool {
        self.state == State::Ground
    }

    /// True inside a UTF-8 sequence: a next byte that is not a continuation byte
    /// (`0x80`–`0xBF`) shows the sequence invalid and over where it stands, so the offset
    /// before that byte is, in hindsight, a boundary as well (the event encoder's UTF-8
    /// carry may end an event there, emitting the invalid bytes in a `b` event). The scanner
    /// itself does not report such offsets: it cannot know them when the chunk ends.
    pub fn in_utf8(&self) -> bool {
        matches!(self.state, State::Utf8(_))
    }

    /// Feed the next bytes of the stream. Returns the length of the longest prefix of
    /// `bytes` after which the stream was in the ground state (`Some(0)` when it was only at
    /// the start), or `None` when it was in ground at no point from the start of `bytes` to
    /// its end.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut last = self.at_ground().then_some(0);
        for (i, &b) in bytes.iter().enumerate() {
            self.step(b);
            if self.state == State::Ground {
                last = Some(i + 1);
            }
        }
        last
    }

    fn step(&mut self, b: u8) {
        self.state = match self.state {
            State::Ground => ground(b),
            State::Utf8(need) => {
                if (0x80..0xc0).contains(&b) {
                    if need <= 1 {
                        State::Ground
                    } else {
                        State::Utf8(need - 1)
                    }
                } else {
                    // Invalid: the sequence is over; the byte starts afresh.
                    ground(b)
                }
            }
            State::Escape => match b {
                b'[' => State::Csi,
                b']' => State::Osc,
                b'P' | b'X' | b'^' | b'_' => State::String,
                0x20..=0x2f => State::EscapeIntermediate,
                0x30..=0x7e | CAN | SUB => State::Ground,
                ESC => State::Escape,
                0x80..=0xff => ground(b),
                _ => State::Escape, // other C0 controls and DEL: executed or ignored
            },
            State::EscapeIntermediate => match b {
                0x30..=0x7e | CAN | SUB => State::Ground,
                ESC => State::Escape,
                0x80..=0xff => ground(b),
                _ => State::EscapeIntermediate,
            },
            State::Csi => match b {
                0x40..=0x7e | CAN | SUB => State::Ground,
                ESC => State::Escape,
                0x80..=0xff => ground(b),
                _ => State::Csi,
            },
            State::Osc => match b {
                BEL | CAN | SUB => State::Ground,
                ESC => State::Escape,
                _ => State::Osc,
            },
            State::String => match b {
                CAN | SUB => State::Ground,
                ESC => State::Escape,
                _ => State::String,
            },
        };
    }
}

fn ground(b: u8) -> State {
    match b {
        ESC => State::Escape,
        0xc2..=0xdf => State::Utf8(1),
        0xe0..=0xef => State::Utf8(2),
        0xf0..=0xf4 => State::Utf8(3),
        _ => State::Ground,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends_at_ground(bytes: &[u8]) -> bool {
        let mut s = BoundaryScanner::new();
        s.feed(bytes);
        s.at_ground()
    }

    #[test]
    fn sequences_and_characters() {
        for done in [
            &b"plain text\r\n"[..],
            b"\x1b[31mred\x1b[0m",
            b"\x1b[?1049h",
            b"\x1b]0;title\x07",
            b"\x1b]133;A;cwd=/tmp\x1b\\",
            b"\x1bP1$r0m\x1b\\",
            b"\x1b(B",
            b"\x1b7",
            "é€😀".as_bytes(),
            b"\x1b[12\x18",    // CAN aborts
            b"\x1b]0;abc\x1a", // SUB aborts
            b"\xff\xfe",       // invalid bytes are complete
        ] {
            assert!(ends_at_ground(done), "{done:?}");
        }
        for open in [
            &b"\x1b"[..],
            b"\x1b[",
            b"\x1b[38;5",
            b"\x1b[1;\n2", // C0 inside CSI does not end it
            b"\x1b]0;title",
            b"\x1b]0;title\x1b", // ESC, not yet ST
            b"\x1bPdata",
            b"\x1b(",
            b"\xe2\x82",
            b"\xf0\x9f\x98",
            b"\xc3",
        ] {
            assert!(!ends_at_ground(open), "{open:?}");
        }
    }

    #[test]
    fn feed_reports_the_last_boundary() {
        let mut s = BoundaryScanner::new();
        assert_eq!(s.feed(b"ab\x1b[3"), Some(2));
        assert_eq!(s.feed(b"1"), None);
        assert_eq!(s.feed(b"mx\xe2"), Some(2));
        assert_eq!(s.feed(b"\x82"), None);
        assert_eq!(s.feed(b"\xac"), Some(1));
        assert!(s.at_ground());
        assert_eq!(s.feed(b""), Some(0));
        // An ESC inside an OSC starts a new escape; ST ends it.
        assert_eq!(s.feed(b"\x1b]2;t\x1b\\"), Some(7));
        // Invalid continuation: the UTF-8 sequence ends, the byte is read again.
        let mut s = BoundaryScanner::new();
        assert_eq!(s.feed(b"\xe2\x1b[m"), Some(4));
    }
}
