//! Ground-state tracking: does a fresh parser, fed what follows, behave exactly like the
//! parser that has seen everything so far?
//!
//! `vt100::Parser` wraps a `vte::Parser` whose state (an escape sequence in progress, a
//! partial UTF-8 character) cannot be read, cloned or saved. A keyframe (a cloned
//! `vt100::Screen` restored into a fresh parser) is only a faithful resume point where that
//! hidden state is empty: the parser is in its *ground* state with no pending UTF-8 bytes.
//! [`GroundTracker`] follows the same state machine as vte 0.15 (`vte/src/lib.rs`, after
//! Paul Williams' DEC ANSI parser, <https://vt100.net/emu/dec_ansi_parser>), tracking only
//! the state, so it can say where that is the case. Chunk boundaries matter for UTF-8 (vte
//! keeps an incomplete character across `advance` calls), so feed it the same chunks as the
//! parser.

/// Parser states of vte 0.15 (only which one; no parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    Escape,
    EscapeIntermediate,
    CsiEntry,
    CsiParam,
    CsiIntermediate,
    CsiIgnore,
    DcsEntry,
    DcsParam,
    DcsIntermediate,
    DcsIgnore,
    DcsPassthrough,
    OscString,
    SosPmApcString,
}

/// Mirror of vte 0.15's parser state (see the module docs). Feed it every chunk given to the
/// parser, in the same pieces; [`GroundTracker::is_ground`] then tells whether a fresh
/// parser would continue identically.
#[derive(Debug, Clone, Default)]
pub struct GroundTracker {
    state: State,
    partial: [u8; 4],
    partial_len: usize,
}

impl GroundTracker {
    /// A tracker in the ground state (a new parser).
    pub fn new() -> GroundTracker {
        GroundTracker::default()
    }

    /// True when the parser is in its ground state with no incomplete UTF-8 character
    /// pending: a fresh parser is then equivalent.
    pub fn is_ground(&self) -> bool {
        self.state == State::Ground && self.partial_len == 0
    }

    /// Advance over one chunk, exactly as `vte::Parser::advance` would.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        if self.partial_len != 0 {
            i += self.advance_partial(bytes);
        }
        while i < bytes.len() {
            if self.state == State::Ground {
                i += self.advance_ground(&bytes[i..]);
            } else {
                self.step(bytes[i]);
                i += 1;
            }
        }
    }

    /// vte `advance_partial_utf8`: complete a character held from the previous chunk.
    fn advance_partial(&mut self, bytes: &[u8]) -> usize {
        let old = self.partial_len;
        let to_copy = bytes.len().min(4 - old);
        self.partial[old..old + to_copy].copy_from_slice(&bytes[..to_copy]);
        self.partial_len += to_copy;
        match std::str::from_utf8(&self.partial[..self.partial_len]) {
            Ok(s) => {
                let n = s.chars().next().map_or(0, char::len_utf8);
                self.partial_len = 0;
                n.saturating_sub(old)
            }
            Err(e) => {
                let valid = e.valid_up_to();
                if valid > 0 {
                    self.partial_len = 0;
                    return valid.saturating_sub(old);
                }
                match e.error_len() {
                    Some(bad) => {
                        self.partial_len = 0;
                        bad.saturating_sub(old)
                    }
                    None => to_copy,
                }
            }
        }
    }

    /// vte `advance_ground`: printable text up to the next ESC.
    fn advance_ground(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len();
        let plain = bytes.iter().position(|&b| b == 0x1b).unwrap_or(n);
        if plain == 0 {
            self.state = State::Escape;
            return 1;
        }
        match std::str::from_utf8(&bytes[..plain]) {
            Ok(_) => {
                if plain < n {
                    self.state = State::Escape;
                    plain + 1
                } else {
                    plain
                }
            }
            Err(e) => {
                let valid = e.valid_up_to();
                match e.error_len() {
                    Some(len) => valid + len,
                    None if plain < n => {
                        self.state = State::Escape;
                        plain + 1
                    }
                    None => {
                        let extra = n - valid;
                        let total = self.partial_len + extra;
                        if total <= 4 {
                            self.partial[self.partial_len..total]
                                .copy_from_slice(&bytes[valid..valid + extra]);
                            self.partial_len = total;
                        }
                        n
                    }
                }
            }
        }
    }

    /// One byte in a non-ground state (vte `change_state`).
    fn step(&mut self, b: u8) {
        use State::*;
        let exec = matches!(b, 0x00..=0x17 | 0x19 | 0x1c..=0x1f);
        let anywhere = |s: &mut State| match b {
            0x18 | 0x1a => *s = Ground,
            0x1b => *s = Escape,
            _ => {}
        };
        let st = &mut self.state;
        match *st {
            Ground => {}
            CsiEntry => match b {
                _ if exec => {}
                0x20..=0x2f => *st = CsiIntermediate,
                0x30..=0x3f => *st = CsiParam,
                0x40..=0x7e => *st = Ground,
                _ => anywhere(st),
            },
            CsiIgnore => match b {
                _ if exec => {}
                0x20..=0x3f | 0x7f => {}
                0x40..=0x7e => *st = Ground,
                _ => anywhere(st),
            },
            CsiIntermediate => match b {
                _ if exec => {}
                0x20..=0x2f => {}
                0x30..=0x3f => *st = CsiIgnore,
                0x40..=0x7e => *st = Ground,
                _ => anywhere(st),
            },
            CsiParam => match b {
                _ if exec => {}
                0x20..=0x2f => *st = CsiIntermediate,
                0x30..=0x3b => {}
                0x3c..=0x3f => *st = CsiIgnore,
                0x40..=0x7e => *st = Ground,
                0x7f => {}
                _ => anywhere(st),
            },
            DcsEntry => match b {
                _ if exec => {}
                0x20..=0x2f => *st = DcsIntermediate,
                0x30..=0x3f => *st = DcsParam,
                0x40..=0x7e => *st = DcsPassthrough,
                0x7f => {}
                _ => anywhere(st),
            },
            DcsIntermediate => match b {
                _ if exec => {}
                0x20..=0x2f | 0x7f => {}
                0x30..=0x3f => *st = DcsIgnore,
                0x40..=0x7e => *st = DcsPassthrough,
                _ => anywhere(st),
            },
            DcsParam => match b {
                _ if exec => {}
                0x20..=0x2f => *st = DcsIntermediate,
                0x30..=0x3b | 0x7f => {}
                0x3c..=0x3f => *st = DcsIgnore,
                0x40..=0x7e => *st = DcsPassthrough,
                _ => anywhere(st),
            },
            DcsIgnore | SosPmApcString => anywhere(st),
            DcsPassthrough => match b {
                0x18 | 0x1a | 0x9c => *st = Ground,
                0x1b => *st = Escape,
                _ => {}
            },
            Escape => match b {
                _ if exec => {}
                0x20..=0x2f => *st = EscapeIntermediate,
                0x50 => *st = DcsEntry,
                0x58 | 0x5e | 0x5f => *st = SosPmApcString,
                0x5b => *st = CsiEntry,
                0x5d => *st = OscString,
                0x30..=0x7e => *st = Ground,
                0x18 | 0x1a => *st = Ground,
                _ => {}
            },
            EscapeIntermediate => match b {
                _ if exec => {}
                0x20..=0x2f | 0x7f => {}
                0x30..=0x7e => *st = Ground,
                _ => anywhere(st),
            },
            OscString => match b {
                0x07 | 0x18 | 0x1a => *st = Ground,
                0x1b => *st = Escape,
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ground_after(chunks: &[&[u8]]) -> bool {
        let mut g = GroundTracker::new();
        for c in chunks {
            g.feed(c);
        }
        g.is_ground()
    }

    #[test]
    fn complete_sequences_end_in_ground() {
        assert!(ground_after(&[b"plain text\r\n"]));
        assert!(ground_after(&[b"\x1b[1;31mred\x1b[0m"]));
        assert!(ground_after(&[b"\x1b]0;title\x07after"]));
        assert!(ground_after(&[b"\x1b]0;title\x1b\\"]));
        assert!(ground_after(&[b"\x1bP1$qm\x1b\\"]));
        assert!(ground_after(&["wide \u{4e16}\u{754c}".as_bytes()]));
        assert!(ground_after(&[b"\x1b[", b"?1049h"]));
        assert!(ground_after(&[b"\xe4\xb8", b"\x96"]));
    }

    #[test]
    fn unfinished_sequences_are_not_ground() {
        assert!(!ground_after(&[b"\x1b"]));
        assert!(!ground_after(&[b"\x1b[1;3"]));
        assert!(!ground_after(&[b"\x1b]0;tit"]));
        assert!(!ground_after(&[b"\x1bP1$q"]));
        assert!(!ground_after(&[b"x\xe4\xb8"]));
        assert!(!ground_after(&[b"\xf0", b"\x9f"]));
    }
}
