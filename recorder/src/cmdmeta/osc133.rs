//! A sans-I/O scanner for the OSC 133 marks of sealcast's shell hooks (SPEC §2.4.3).
//!
//! [`Osc133Scanner::feed`] takes the PTY output in whatever pieces it was read and returns
//! the marks that carry this session's nonce, with their byte offsets in the stream. It never
//! changes the stream (it only reads it), keeps at most [`MAX_OSC_PAYLOAD`] bytes of one
//! sequence, and finds sequences split across any read boundary.
//!
//! Grammar (7-bit, as xterm's control-sequence parser): `ESC ]` starts an OSC; BEL (0x07) or
//! `ESC \` (ST) ends it; CAN (0x18) and SUB (0x1A) abort it; `ESC` followed by anything else
//! aborts it and starts a new escape sequence. Only OSCs whose payload starts with `133;`
//! are kept; others are skipped without being buffered. 8-bit C1 controls are not
//! recognised (the stream is UTF-8, where 0x9C and 0x9D are continuation bytes).

/// Longest OSC 133 payload kept, bytes (between `ESC ]` and the terminator). Longer ones are
/// dropped and counted as ignored (SPEC §2.4.3). The hooks cut command lines at 8192
/// characters, which escaped stay below this.
pub const MAX_OSC_PAYLOAD: usize = 64 * 1024;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const PREFIX: &[u8] = b"133;";

/// A mark the hooks emitted, with the session nonce (SPEC §2.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkKind {
    /// `A`: the shell is about to print its prompt, in directory `cwd` (lossy UTF-8).
    PromptStart {
        /// `cwd=` parameter, unescaped.
        cwd: Option<String>,
    },
    /// `B`: end of the prompt (the user's input follows).
    PromptEnd,
    /// `C`: the shell accepted a command line and is about to run it.
    CommandStart {
        /// `cmd=` parameter, unescaped (empty when absent).
        cmd: String,
        /// `partial=1`: only the first simple command of the line.
        partial: bool,
        /// `trunc=1`: the hooks cut the line.
        trunc: bool,
        /// `late=1`: the command already ran (bash, a line no `DEBUG` trap saw).
        late: bool,
    },
    /// `D`: the command finished.
    CommandEnd {
        /// First parameter, the decimal exit status; `None` when absent or not a number.
        exit: Option<i32>,
        /// `pipestatus=` parameter: comma-separated statuses (empty when absent or invalid).
        pipestatus: Vec<i32>,
    },
}

/// An accepted mark and where it is in the output stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Offset of its `ESC` in the stream (bytes fed before it).
    pub start: u64,
    /// Offset just after its terminator.
    pub end: u64,
    /// What it says.
    pub kind: MarkKind,
}

/// OSC 133 sequences ignored since the last [`Osc133Scanner::take_ignored`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ignored {
    /// Sequences without this session's nonce, or longer than [`MAX_OSC_PAYLOAD`].
    pub marks: u64,
    /// Of those, the ones that carried a `sealcast=` nonce that did not match.
    pub bad_nonce: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// After `ESC` outside an OSC.
    Esc,
    /// Inside an OSC whose payload may be OSC 133: collecting.
    Osc,
    /// `ESC` inside a collected OSC.
    OscEsc,
    /// Inside an OSC that is not ours (or too long): skipping to its end.
    Skip,
    /// `ESC` inside a skipped OSC.
    SkipEsc,
}

/// Scanner state for one output stream. See the module documentation.
#[derive(Debug)]
pub struct Osc133Scanner {
    nonce: Vec<u8>,
    state: State,
    buf: Vec<u8>,
    /// Bytes fed so far.
    pos: u64,
    /// Offset of the `ESC` that started the current sequence.
    seq_start: u64,
    ignored: Ignored,
}

impl Osc133Scanner {
    /// A scanner that accepts marks carrying `nonce` (the session's, SPEC §2.4.3).
    pub fn new(nonce: &str) -> Osc133Scanner {
        Osc133Scanner {
            nonce: nonce.as_bytes().to_vec(),
            state: State::Ground,
            buf: Vec::new(),
            pos: 0,
            seq_start: 0,
            ignored: Ignored::default(),
        }
    }

    /// Bytes fed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The counts of ignored OSC 133 sequences since the last call, then reset.
    pub fn take_ignored(&mut self) -> Ignored {
        std::mem::take(&mut self.ignored)
    }

    /// Scan the next piece of the stream; returns the accepted marks that end in it, in
    /// order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Mark> {
        let mut marks = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let at = self.pos + i as u64;
            match self.state {
                State::Ground => {
                    // Fast path: nothing but an ESC matters here.
                    match bytes[i..].iter().position(|&c| c == ESC) {
                        Some(n) => {
                            i += n;
                            self.seq_start = self.pos + i as u64;
                            self.state = State::Esc;
                        }
                        None => i = bytes.len(),
                    }
                    i += 1;
                    continue;
                }
                State::Esc => self.after_esc(b),
                State::Osc => match b {
                    BEL => {
                        self.finish(at + 1, &mut marks);
                        self.state = State::Ground;
                    }
                    ESC => self.state = State::OscEsc,
                    CAN | SUB => self.abort(),
                    _ => self.collect(b),
                },
                State::OscEsc => {
                    if b == b'\\' {
                        self.finish(at + 1, &mut marks);
                        self.state = State::Ground;
                    } else {
                        self.abort();
                        self.seq_start = at - 1;
                        self.after_esc(b);
                    }
                }
                State::Skip => match b {
                    BEL | CAN | SUB => self.state = State::Ground,
                    ESC => self.state = State::SkipEsc,
                    _ => {}
                },
                State::SkipEsc => {
                    if b == b'\\' {
                        self.state = State::Ground;
                    } else {
                        self.seq_start = at - 1;
                        self.after_esc(b);
                    }
                }
            }
            i += 1;
        }
        self.pos += bytes.len() as u64;
        marks
    }

    /// The byte after an `ESC` (at `seq_start`).
    fn after_esc(&mut self, b: u8) {
        self.state = match b {
            b']' => {
                self.buf.clear();
                State::Osc
            }
            ESC => State::Esc,
            _ => State::Ground,
        };
    }

    fn collect(&mut self, b: u8) {
        if self.buf.len() < PREFIX.len() {
            self.buf.push(b);
            if !PREFIX.starts_with(&self.buf) {
                // Not an OSC 133: skip it without keeping anything.
                self.buf.clear();
                self.state = State::Skip;
            }
            return;
        }
        if self.buf.len() >= MAX_OSC_PAYLOAD {
            self.ignored.marks += 1;
            self.buf.clear();
            self.state = State::Skip;
            return;
        }
        self.buf.push(b);
    }

    fn abort(&mut self) {
        self.buf.clear();
        self.state = State::Ground;
    }

    /// A collected OSC ended at `end`: accept it, count it as ignored, or drop it.
    fn finish(&mut self, end: u64, marks: &mut Vec<Mark>) {
        let payload = std::mem::take(&mut self.buf);
        let is_133 = payload.starts_with(PREFIX) || payload == b"133";
        if !is_133 {
            return;
        }
        match parse_mark(&payload, &self.nonce) {
            Verdict::Accepted(kind) => marks.push(Mark {
                start: self.seq_start,
                end,
                kind,
            }),
            Verdict::Unknown => {}
            Verdict::NoNonce => self.ignored.marks += 1,
            Verdict::BadNonce => {
                self.ignored.marks += 1;
                self.ignored.bad_nonce += 1;
            }
        }
        self.buf = payload;
        self.buf.clear();
    }
}

enum Verdict {
    Accepted(MarkKind),
    /// Our nonce, but a letter this recorder does not know (a later hook version): skipped.
    Unknown,
    NoNonce,
    BadNonce,
}

/// Parse the payload `133;<letter>[;param]*` of one OSC.
fn parse_mark(payload: &[u8], nonce: &[u8]) -> Verdict {
    let mut parts = payload.split(|&c| c == b';');
    parts.next(); // "133"
    let letter = parts.next().unwrap_or_default();
    let mut positional = Vec::new();
    let mut nonces = 0;
    let mut nonce_ok = false;
    let mut params: Vec<(&[u8], &[u8])> = Vec::new();
    for p in parts {
        match p.iter().position(|&c| c == b'=') {
            Some(eq) => {
                let (k, v) = (&p[..eq], &p[eq + 1..]);
                if k == b"sealcast" {
                    nonces += 1;
                    nonce_ok = v == nonce;
                } else {
                    params.push((k, v));
                }
            }
            None => positional.push(p),
        }
    }
    if nonces == 0 {
        return Verdict::NoNonce;
    }
    if nonces > 1 || !nonce_ok || nonce.is_empty() {
        return Verdict::BadNonce;
    }
    let param = |key: &[u8]| {
        params
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| unescape(v))
    };
    let flag = |key: &[u8]| param(key).is_some_and(|v| v == "1");
    let kind = match letter {
        b"A" => MarkKind::PromptStart { cwd: param(b"cwd") },
        b"B" => MarkKind::PromptEnd,
        b"C" => MarkKind::CommandStart {
            cmd: param(b"cmd").unwrap_or_default(),
            partial: flag(b"partial"),
            trunc: flag(b"trunc"),
            late: flag(b"late"),
        },
        b"D" => MarkKind::CommandEnd {
            exit: positional
                .first()
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|s| s.parse().ok()),
            pipestatus: param(b"pipestatus")
                .and_then(|s| {
                    s.split(',')
                        .map(|n| n.parse::<i32>().ok())
                        .collect::<Option<Vec<_>>>()
                })
                .unwrap_or_default(),
        },
        _ => return Verdict::Unknown,
    };
    Verdict::Accepted(kind)
}

/// Undo the hooks' escaping (SPEC §2.4.3): `\\` → `\`, `\xNN` → byte NN; any other `\` is
/// kept as is. The bytes are then read as UTF-8, invalid sequences replaced by U+FFFD.
pub fn unescape(v: &[u8]) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' {
            if v.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if v.get(i + 1) == Some(&b'x') {
                let hex = v
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(n) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(n);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(v[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escape a value the way the hooks do (SPEC §2.4.3): `\` → `\\`, `;` → `\x3b`, bytes
/// 0x00–0x1F and 0x7F → `\xNN`. For tests and tools that write marks.
pub fn escape(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &b in v {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b';' | 0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "0123456789abcdef0123456789abcdef";

    fn mark(letter: &str, params: &[&str]) -> Vec<u8> {
        let mut s = format!("\x1b]133;{letter}");
        for p in params {
            s.push(';');
            s.push_str(p);
        }
        s.push_str(&format!(";sealcast={N}\x07"));
        s.into_bytes()
    }

    fn kinds(marks: &[Mark]) -> Vec<MarkKind> {
        marks.iter().map(|m| m.kind.clone()).collect()
    }

    /// A session's worth of output with every kind of mark, and what it must yield.
    fn session() -> (Vec<u8>, Vec<MarkKind>) {
        let mut s = Vec::new();
        s.extend_from_slice(&mark("A", &["cwd=/home/a b/\\x3bx"]));
        s.extend_from_slice(b"\x1b[1;32muser@host\x1b[0m:~$ ");
        s.extend_from_slice(&mark("B", &[]));
        s.extend_from_slice(b"ls | wc\r\n");
        s.extend_from_slice(&mark("C", &["cmd=ls | wc\\x0a\\\\"]));
        s.extend_from_slice(b"      3\r\n\x1b]0;title\x07");
        s.extend_from_slice(&mark("D", &["1", "pipestatus=0,1"]));
        // ST terminator, non-ASCII value.
        let mut a = format!("\x1b]133;A;cwd=/tmp/ä;sealcast={N}").into_bytes();
        a.extend_from_slice(b"\x1b\\");
        s.extend_from_slice(&a);
        s.extend_from_slice(&mark("C", &["cmd=x", "partial=1", "trunc=1", "late=1"]));
        s.extend_from_slice(&mark("D", &[]));
        let want = vec![
            MarkKind::PromptStart {
                cwd: Some("/home/a b/;x".into()),
            },
            MarkKind::PromptEnd,
            MarkKind::CommandStart {
                cmd: "ls | wc\n\\".into(),
                partial: false,
                trunc: false,
                late: false,
            },
            MarkKind::CommandEnd {
                exit: Some(1),
                pipestatus: vec![0, 1],
            },
            MarkKind::PromptStart {
                cwd: Some("/tmp/ä".into()),
            },
            MarkKind::CommandStart {
                cmd: "x".into(),
                partial: true,
                trunc: true,
                late: true,
            },
            MarkKind::CommandEnd {
                exit: None,
                pipestatus: vec![],
            },
        ];
        (s, want)
    }

    #[test]
    fn finds_every_mark_with_offsets() {
        let (s, want) = session();
        let mut sc = Osc133Scanner::new(N);
        let marks = sc.feed(&s);
        assert_eq!(kinds(&marks), want);
        for m in &marks {
            assert_eq!(s[m.start as usize], ESC);
            let end = &s[..m.end as usize];
            assert!(end.ends_with(b"\x07") || end.ends_with(b"\x1b\\"));
            assert!(s[m.start as usize..m.end as usize].starts_with(b"\x1b]133;"));
        }
        assert_eq!(sc.take_ignored(), Ignored::default());
        assert_eq!(sc.position(), s.len() as u64);
    }

    #[test]
    fn split_at_every_boundary_gives_the_same_marks() {
        let (s, want) = session();
        let whole = Osc133Scanner::new(N).feed(&s);
        for cut in 0..=s.len() {
            let mut sc = Osc133Scanner::new(N);
            let mut got = sc.feed(&s[..cut]);
            got.extend(sc.feed(&s[cut..]));
            assert_eq!(got, whole, "cut at {cut}");
        }
        // And byte by byte.
        let mut sc = Osc133Scanner::new(N);
        let got: Vec<Mark> = s.iter().flat_map(|b| sc.feed(&[*b])).collect();
        assert_eq!(kinds(&got), want);
        assert_eq!(got, whole);
    }

    #[test]
    fn marks_without_the_nonce_are_ignored_and_counted() {
        let mut sc = Osc133Scanner::new(N);
        let mut s = Vec::new();
        s.extend_from_slice(b"\x1b]133;C;cmd=rm -rf /\x07"); // no nonce
        s.extend_from_slice(b"\x1b]133;D;0;sealcast=ffffffffffffffffffffffffffffffff\x07");
        s.extend_from_slice(format!("\x1b]133;A;sealcast={N};sealcast={N}\x07").as_bytes());
        s.extend_from_slice(b"\x1b]133;A\x1b\\"); // plain FinalTerm mark
        s.extend_from_slice(b"\x1b]133\x07"); // no letter
        s.extend_from_slice(format!("\x1b]133;C;cmd=x;sealcast={N}x\x07").as_bytes());
        s.extend_from_slice(format!("\x1b]1330;C;sealcast={N}\x07").as_bytes()); // not 133
        s.extend_from_slice(format!("\x1b]7;file://h/;sealcast={N}\x07").as_bytes());
        assert!(sc.feed(&s).is_empty());
        assert_eq!(
            sc.take_ignored(),
            Ignored {
                marks: 6,
                bad_nonce: 3
            }
        );
        assert_eq!(sc.take_ignored(), Ignored::default());
        // An empty session nonce accepts nothing.
        let mut empty = Osc133Scanner::new("");
        assert!(empty.feed(b"\x1b]133;A;sealcast=\x07").is_empty());
        assert_eq!(empty.take_ignored().bad_nonce, 1);
    }

    #[test]
    fn a_mark_cannot_be_forged_from_inside_a_value() {
        // A command line that contains a whole mark, escaped by the hooks, stays one value.
        let evil = format!("echo \x1b]133;D;0;sealcast={N}\x07; \x1b\\");
        let esc = escape(evil.as_bytes());
        assert!(!esc.iter().any(|&b| b < 0x20 || b == b';' || b == 0x7f));
        let mut s = b"\x1b]133;C;cmd=".to_vec();
        s.extend_from_slice(&esc);
        s.extend_from_slice(format!(";sealcast={N}\x07").as_bytes());
        let marks = Osc133Scanner::new(N).feed(&s);
        assert_eq!(
            kinds(&marks),
            [MarkKind::CommandStart {
                cmd: evil,
                partial: false,
                trunc: false,
                late: false
            }]
        );
    }

    #[test]
    fn aborted_and_interrupted_sequences() {
        let mut sc = Osc133Scanner::new(N);
        // CAN aborts; ESC + other aborts and starts anew (here a real mark).
        let mut s = b"\x1b]133;C;cmd=a\x18tail".to_vec();
        s.extend_from_slice(b"\x1b]133;C;cmd=b\x1b");
        s.extend_from_slice(&mark("B", &[]));
        // A skipped OSC (title) interrupted by a new OSC.
        s.extend_from_slice(b"\x1b]0;title\x1b");
        s.extend_from_slice(&mark("A", &[]));
        // ESC ESC ] still starts an OSC.
        s.extend_from_slice(b"\x1b\x1b");
        s.extend_from_slice(&mark("B", &[])[1..]);
        let marks = sc.feed(&s);
        assert_eq!(
            kinds(&marks),
            [
                MarkKind::PromptEnd,
                MarkKind::PromptStart { cwd: None },
                MarkKind::PromptEnd
            ]
        );
        assert_eq!(sc.take_ignored(), Ignored::default());
    }

    #[test]
    fn memory_is_bounded_and_long_marks_are_counted() {
        let mut sc = Osc133Scanner::new(N);
        let mut s = b"\x1b]133;C;cmd=".to_vec();
        s.resize(3 * MAX_OSC_PAYLOAD, b'a');
        for chunk in s.chunks(4096) {
            assert!(sc.feed(chunk).is_empty());
            assert!(sc.buf.len() <= MAX_OSC_PAYLOAD);
        }
        // The tail of the long one (with a valid nonce) is skipped to its end.
        assert!(sc.feed(format!(";sealcast={N}\x07").as_bytes()).is_empty());
        assert_eq!(sc.take_ignored().marks, 1);
        // Another OSC (a title) of any length is never kept.
        let mut t = b"\x1b]2;".to_vec();
        t.resize(4 * MAX_OSC_PAYLOAD, b'x');
        sc.feed(&t);
        assert!(sc.buf.capacity() <= MAX_OSC_PAYLOAD + 64);
        t.clear();
        t.push(BEL);
        t.extend_from_slice(&mark("B", &[]));
        assert_eq!(kinds(&sc.feed(&t)), [MarkKind::PromptEnd]);
        assert_eq!(sc.take_ignored(), Ignored::default());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_yield_marks_without_the_nonce() {
        // A deterministic pseudo-random stream rich in ESC, ']', '1', '3', ';', BEL.
        let alphabet = b"\x1b]133;ABCD\x07\\x=sealcat0\x18\x1a";
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut s = Vec::new();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        let mut sc = Osc133Scanner::new(N);
        for chunk in s.chunks(977) {
            assert!(sc.feed(chunk).is_empty());
        }
    }

    #[test]
    fn unescape_is_lenient() {
        assert_eq!(unescape(b"a\\\\b\\x3bc\\x0a"), "a\\b;c\n");
        assert_eq!(unescape(b"\\q\\x4\\xZZ\\"), "\\q\\x4\\xZZ\\");
        assert_eq!(unescape(b"\\xff"), "\u{fffd}");
        assert_eq!(escape(b"a;b\\c\x07\x7f"), b"a\\x3bb\\\\c\\x07\\x7f");
    }
}
