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
    /// First byte after `CSI` when it was a private marker (`<` `=` `>` `?`), else 0.
    csi_private: u8,
    /// Intermediate byte of the CSI sequence in progress (0: none).
    csi_inter: u8,
    /// Value of the CSI parameter being read (saturating).
    csi_param: u32,
    /// A parameter of the private CSI sequence in progress names a mode that moves state
    /// out of the screen's visible contents (origin mode, the alternate screen).
    csi_hidden_mode: bool,
    /// See [`GroundTracker::hidden_state`].
    hidden: bool,
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

    /// True once the output contained a sequence that sets terminal state which a screen's
    /// formatted contents (`vt100::Screen::contents_formatted`) cannot carry: DECSC (`ESC 7`),
    /// a scroll region (DECSTBM, `CSI … r`), origin mode or the alternate screen
    /// (`CSI ? 6/47/1047/1049 h|l`), the cursor style (`CSI … SP q`). Compact keyframes
    /// ([`crate::Keyframe`]) are taken only while this is false. Conservative: it stays set.
    pub fn hidden_state(&self) -> bool {
        self.hidden
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

    /// vte `advance_ground`: printable text up to the next ESC. Only the state matters here:
    /// vte leaves the ground state at the first ESC whatever the UTF-8 before it (an
    /// invalid sequence is replaced, an incomplete one dropped), so only a run that reaches
    /// the end of the chunk is decoded, and only its last character (the one that may be
    /// incomplete and held for the next chunk).
    fn advance_ground(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len();
        if let Some(esc) = memchr::memchr(0x1b, bytes) {
            self.state = State::Escape;
            return esc + 1;
        }
        // The last character starts at the last byte that is not a continuation byte
        // (within 4 bytes of the end); every decoding of the run restarts there, since
        // neither a valid character nor an invalid prefix spans a non-continuation byte.
        let from = n.saturating_sub(4);
        let Some(lead) = bytes[from..].iter().rposition(|&b| b & 0xc0 != 0x80) else {
            return n;
        };
        let tail = &bytes[from + lead..];
        if tail[0] < 0x80 {
            return n;
        }
        if let Err(e) = std::str::from_utf8(tail) {
            if e.valid_up_to() == 0 && e.error_len().is_none() {
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len();
            }
        }
        n
    }

    /// One byte in a non-ground state (vte `change_state`).
    fn step(&mut self, b: u8) {
        use State::*;
        self.note_hidden(b);
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

impl GroundTracker {
    /// Follow the parameters and final byte of CSI sequences and the final byte of ESC
    /// sequences, for [`GroundTracker::hidden_state`]. Called with each byte before the
    /// state changes.
    fn note_hidden(&mut self, b: u8) {
        match self.state {
            State::Escape => {
                if b == b'7' {
                    self.hidden = true;
                }
                if b == b'[' {
                    self.csi_private = 0;
                    self.csi_inter = 0;
                    self.csi_param = 0;
                    self.csi_hidden_mode = false;
                }
            }
            State::CsiEntry | State::CsiParam | State::CsiIntermediate => match b {
                0x3c..=0x3f if self.state == State::CsiEntry => self.csi_private = b,
                b'0'..=b'9' => {
                    self.csi_param = self
                        .csi_param
                        .saturating_mul(10)
                        .saturating_add(u32::from(b - b'0'))
                }
                b';' | b':' => self.end_param(),
                0x20..=0x2f => self.csi_inter = b,
                0x40..=0x7e => {
                    self.end_param();
                    let hidden = match (self.csi_private, self.csi_inter, b) {
                        (0, 0, b'r') => true,
                        (b'?', 0, b'h' | b'l') => self.csi_hidden_mode,
                        (_, b' ', b'q') => true,
                        _ => false,
                    };
                    self.hidden |= hidden;
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn end_param(&mut self) {
        if self.csi_private == b'?' && matches!(self.csi_param, 6 | 47 | 1047 | 1049) {
            self.csi_hidden_mode = true;
        }
        self.csi_param = 0;
    }
}

/// The tracker as first written (every ground run decoded as UTF-8), kept as the oracle for
/// the faster one.
#[cfg(test)]
mod reference {
    #![allow(dead_code, clippy::all)]
    /// Parser states of vte 0.15 (only which one; no parameters).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub(super) enum State {
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
    pub(super) struct RefTracker {
        pub(super) state: State,
        pub(super) partial: [u8; 4],
        pub(super) partial_len: usize,
    }

    impl RefTracker {
        /// A tracker in the ground state (a new parser).
        pub(super) fn new() -> RefTracker {
            RefTracker::default()
        }

        /// True when the parser is in its ground state with no incomplete UTF-8 character
        /// pending: a fresh parser is then equivalent.
        pub(super) fn is_ground(&self) -> bool {
            self.state == State::Ground && self.partial_len == 0
        }

        /// Advance over one chunk, exactly as `vte::Parser::advance` would.
        pub(super) fn feed(&mut self, bytes: &[u8]) {
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

    proptest::proptest! {
        /// The fast tracker and the reference agree after every chunk, for bytes from an
        /// alphabet rich in ESC, CSI/OSC/DCS introducers and UTF-8 lead/continuation bytes.
        #[test]
        fn agrees_with_the_reference(
            data in proptest::collection::vec(proptest::sample::select(vec![
                b'a', b' ', b'\r', b'\n', 0x1b, b'[', b']', b'P', b'?', b'1', b'9', b';',
                b'm', b'h', b'7', 0x07, b'\\', 0x18, 0xc3, 0xa9, 0xe4, 0xb8, 0x96, 0xf0,
                0x9f, 0x98, 0x80, 0xff, 0x9c, 0xed, 0xa0,
            ]), 0..300),
            cuts in proptest::collection::vec(1usize..9, 1..80),
        ) {
            let mut fast = GroundTracker::new();
            let mut slow = reference::RefTracker::new();
            let mut rest = &data[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                fast.feed(&rest[..n]);
                slow.feed(&rest[..n]);
                proptest::prop_assert_eq!(fast.is_ground(), slow.is_ground());
                proptest::prop_assert_eq!(fast.state, match slow.state {
                    reference::State::Ground => State::Ground,
                    reference::State::Escape => State::Escape,
                    reference::State::EscapeIntermediate => State::EscapeIntermediate,
                    reference::State::CsiEntry => State::CsiEntry,
                    reference::State::CsiParam => State::CsiParam,
                    reference::State::CsiIntermediate => State::CsiIntermediate,
                    reference::State::CsiIgnore => State::CsiIgnore,
                    reference::State::DcsEntry => State::DcsEntry,
                    reference::State::DcsParam => State::DcsParam,
                    reference::State::DcsIntermediate => State::DcsIntermediate,
                    reference::State::DcsIgnore => State::DcsIgnore,
                    reference::State::DcsPassthrough => State::DcsPassthrough,
                    reference::State::OscString => State::OscString,
                    reference::State::SosPmApcString => State::SosPmApcString,
                });
                proptest::prop_assert_eq!(
                    &fast.partial[..fast.partial_len],
                    &slow.partial[..slow.partial_len]
                );
                rest = &rest[n..];
                i += 1;
            }
        }
    }

    #[test]
    fn sequences_that_hide_state_are_noticed() {
        let hidden = |b: &[u8]| {
            let mut g = GroundTracker::new();
            g.feed(b);
            g.hidden_state()
        };
        assert!(!hidden(
            b"\x1b[1;31mred\x1b[0m\x1b[2J\x1b[H\x1b[?25l\x1b[?2004h\x1b[K"
        ));
        assert!(!hidden(b"\x1b[?1h\x1b[?1000;1006h\x1b8\x1b]0;t\x07"));
        assert!(hidden(b"\x1b7"));
        assert!(hidden(b"\x1b[3;20r"));
        assert!(hidden(b"\x1b[?1049h"));
        assert!(hidden(b"\x1b[?25;1047l"));
        assert!(hidden(b"\x1b[?6h"));
        assert!(hidden(b"\x1b[2 q"));
        assert!(!hidden(b"\x1b[?60h"), "mode 60 is not origin mode");
    }
}
