//! Seeking through keyframes gives exactly the screen of a linear replay, for output whose
//! PTY reads were split at random points (inside escape sequences and UTF-8 characters).

use proptest::prelude::*;
use sealcast_term::{Emulator, Event, EventSource, Index, IndexBuilder, IndexPolicy, Kind};

/// Events held in memory.
struct Events(Vec<(u64, Kind, Vec<u8>)>);

impl EventSource for Events {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn visit(&self, start: u64, f: &mut dyn FnMut(u64, Event<'_>) -> bool) {
        for (i, (t, k, d)) in self.0.iter().enumerate().skip(start as usize) {
            let ev = Event {
                t_us: *t,
                kind: *k,
                data: d,
            };
            if !f(i as u64, ev) {
                return;
            }
        }
    }
}

/// Pieces of terminal output: text, wide characters, colours, cursor moves, scroll regions,
/// the alternate screen, OSC titles, DCS strings, erase, insert/delete lines.
const PIECES: &[&str] = &[
    "plain text ",
    "line\r\n",
    "\r\n",
    "\x1b[1;31mred\x1b[0m ",
    "\x1b[38;5;208morange\x1b[m",
    "\x1b[38;2;10;20;30mrgb\x1b[0m",
    "wide \u{4e16}\u{754c} ",
    "\u{1f600}",
    "e\u{301}",
    "\x1b[H",
    "\x1b[5;10H",
    "\x1b[2J",
    "\x1b[K",
    "\x1b[?1049h",
    "\x1b[?1049l",
    "\x1b[3;8r",
    "\x1b[r",
    "\x1bM",
    "\x1b7",
    "\x1b8",
    "\x1b]0;a title\x07",
    "\x1b]2;other\x1b\\",
    "\x1bP1$qm\x1b\\",
    "\x1b[2L",
    "\x1b[3M",
    "\x1b[4@",
    "\x1b[2P",
    "\x1b[?25l",
    "\x1b[?25h",
    "\x1b[4h",
    "\x1b[4l",
    "progress 10%\r",
    "progress 99%\r",
    "\x08\x08",
    "\t",
    "\x1b[10;200H",
    "\x1b[3b",
];

/// Pieces that leave no state outside the visible contents (no DECSC, scroll region,
/// alternate screen, origin mode, cursor style), so keyframes are taken in the compact form
/// (`Snapshot::Compact`), REP (`CSI b`) included.
const VISIBLE_PIECES: &[&str] = &[
    "plain text ",
    "line\r\n",
    "\r\n",
    "\x1b[1;31mred\x1b[0m ",
    "\x1b[38;5;208morange\x1b[m",
    "\x1b[38;2;10;20;30mrgb\x1b[0m",
    "\x1b[1;2;3;4;7mall\x1b[22;23;24;27m",
    "\x1b[48;5;17mbg",
    "wide \u{4e16}\u{754c} ",
    "\u{1f600}",
    "e\u{301}",
    "\x1b[H",
    "\x1b[5;10H",
    "\x1b[2J",
    "\x1b[K",
    "\x1bM",
    "\x1b8",
    "\x1b]0;a title\x07",
    "\x1bP1$qm\x1b\\",
    "\x1b[2L",
    "\x1b[3M",
    "\x1b[4@",
    "\x1b[2P",
    "\x1b[?25l",
    "\x1b[?25h",
    "\x1b[?1h",
    "\x1b[?2004h",
    "\x1b[?1000;1006h",
    "\x1b[4h",
    "\x1b[4l",
    "progress 10%\r",
    "progress 99%\r",
    "\x08\x08",
    "\t",
    "\x1b[10;200H",
    "\x1b[3b",
    "\x1b[2S",
    "\x1b[3T",
];

/// Output bytes, chunk lengths, and (chunk number, cols, rows) resizes.
type Corpus = (Vec<u8>, Vec<usize>, Vec<(usize, u16, u16)>);

fn corpus() -> impl Strategy<Value = Corpus> {
    corpus_of(PIECES)
}

fn corpus_of(pieces: &'static [&'static str]) -> impl Strategy<Value = Corpus> {
    (
        prop::collection::vec(0..pieces.len(), 20..400),
        prop::collection::vec(1usize..48, 1..200),
        prop::collection::vec((0usize..400, 5u16..60, 3u16..30), 0..4),
    )
        .prop_map(move |(chosen, cuts, resizes)| {
            let mut bytes = Vec::new();
            for p in chosen {
                bytes.extend_from_slice(pieces[p].as_bytes());
            }
            (bytes, cuts, resizes)
        })
}

/// Split `bytes` into `o` events at the given chunk lengths (cycled), with `r` events
/// inserted before the given chunk numbers.
fn events(bytes: &[u8], cuts: &[usize], resizes: &[(usize, u16, u16)]) -> Events {
    let mut v = Vec::new();
    let mut pos = 0;
    let mut t = 0;
    let mut chunk = 0;
    while pos < bytes.len() {
        for (at, c, r) in resizes {
            if *at == chunk {
                v.push((t, Kind::Resize, format!("{c}x{r}").into_bytes()));
            }
        }
        let n = cuts[chunk % cuts.len()].min(bytes.len() - pos);
        t += 1000;
        v.push((t, Kind::Output, bytes[pos..pos + n].to_vec()));
        pos += n;
        chunk += 1;
    }
    Events(v)
}

fn build(src: &Events, policy: IndexPolicy) -> Index {
    let mut b = IndexBuilder::new(40, 12, policy);
    let mut index = Index::new(40, 12, policy, None);
    src.visit(0, &mut |_, ev| {
        b.feed(&ev);
        true
    });
    index.merge(b.take());
    index
}

fn linear(src: &Events, target: u64) -> Emulator {
    let mut e = Emulator::new(40, 12);
    sealcast_term::replay(&mut e, src, 0, target);
    e
}

/// The whole screen state as `Debug` shows it, stale bytes past each cell's length aside
/// (`canonical_state`: vt100 never reads them; a compact keyframe rebuilds zeros there).
fn state(e: &Emulator) -> String {
    sealcast_term::canonical_state(e.screen())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn seek_equals_linear_replay(
        (bytes, cuts, resizes) in corpus(),
        targets in prop::collection::vec(any::<prop::sample::Index>(), 1..12),
        budget_kf in 1usize..6,
    ) {
        let src = events(&bytes, &cuts, &resizes);
        // Keyframes every 64 bytes, and a budget of a few screens so eviction and rebuild
        // are exercised.
        let policy = IndexPolicy {
            every_bytes: 64,
            every_us: 5_000,
            budget_bytes: budget_kf * 40 * 12 * std::mem::size_of::<sealcast_term::vt100::Cell>() * 2,
        };
        let index = build(&src, policy);
        let n = src.len() + 1;
        for t in targets {
            let target = t.index(n as usize) as u64;
            let a = index.seek(target, &src);
            let b = linear(&src, target);
            prop_assert_eq!(state(&a), state(&b), "target {}", target);
            // And again, now maybe from a rebuilt keyframe.
            let a = index.seek(target, &src);
            prop_assert_eq!(state(&a), state(&b), "second seek to {}", target);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// As above, for output whose keyframes are compact (rebuilt by replaying a few KiB
    /// instead of cloned), resizes included.
    #[test]
    fn seek_through_compact_keyframes_equals_linear_replay(
        (bytes, cuts, resizes) in corpus_of(VISIBLE_PIECES),
        targets in prop::collection::vec(any::<prop::sample::Index>(), 1..12),
        budget_kf in 1usize..6,
    ) {
        let src = events(&bytes, &cuts, &resizes);
        let policy = IndexPolicy {
            every_bytes: 64,
            every_us: 5_000,
            budget_bytes: budget_kf * 40 * 12 * std::mem::size_of::<sealcast_term::vt100::Cell>() * 2,
        };
        let index = build(&src, policy);
        let compact = index
            .keyframes()
            .iter()
            .filter(|k| k.screen.as_ref().is_some_and(|s| s.is_compact()))
            .count();
        let n = src.len() + 1;
        for t in targets {
            let target = t.index(n as usize) as u64;
            let a = index.seek(target, &src);
            let b = linear(&src, target);
            prop_assert_eq!(state(&a), state(&b), "target {} ({} compact keyframes)", target, compact);
            let a = index.seek(target, &src);
            prop_assert_eq!(state(&a), state(&b), "second seek to {}", target);
        }
    }
}

#[test]
fn text_output_gets_compact_keyframes() {
    let src = Events(
        (0..400u64)
            .map(|i| {
                let line = format!("\x1b[32m{i:05}\x1b[0m [INFO] alpha beta \u{4e16} gamma\r\n");
                (i * 10, Kind::Output, line.into_bytes())
            })
            .collect(),
    );
    let policy = IndexPolicy {
        every_bytes: 1024,
        ..IndexPolicy::default()
    };
    let index = build(&src, policy);
    let kfs = index.keyframes();
    assert!(kfs.len() > 10);
    for k in kfs {
        let s = k.screen.as_ref().unwrap();
        assert!(s.is_compact(), "keyframe at {} is a full clone", k.event);
        assert!(k.bytes < 4096, "{} bytes", k.bytes);
        let target = k.event;
        assert_eq!(
            state(&index.seek(target, &src)),
            state(&linear(&src, target))
        );
    }
}

/// The control: a screen saved in the middle of an escape sequence is *not* a faithful
/// resume point, which is why keyframes are taken only in the ground state.
#[test]
fn a_screen_saved_inside_an_escape_sequence_resumes_wrongly() {
    let mut a = Emulator::new(20, 4);
    let ev = |d: &'static [u8]| Event {
        t_us: 0,
        kind: Kind::Output,
        data: d,
    };
    a.apply(&ev(b"ab\x1b[1;3"));
    assert!(!a.is_ground());
    let mut resumed = Emulator::from_screen(a.screen());
    a.apply(&ev(b"1mred"));
    resumed.apply(&ev(b"1mred"));
    assert_ne!(state(&a), state(&resumed));
}

#[test]
fn keyframes_are_taken_only_at_ground_points() {
    // Every chunk ends inside an escape sequence except the last: no keyframe until then.
    let mut src = Vec::new();
    for i in 0..50u64 {
        src.push((i, Kind::Output, b"xxxxxxxxxx\x1b[3".to_vec()));
        src.push((i, Kind::Output, b"1m".to_vec()));
    }
    let src = Events(src);
    let policy = IndexPolicy {
        every_bytes: 4,
        every_us: u64::MAX,
        budget_bytes: usize::MAX,
    };
    let index = build(&src, policy);
    assert!(!index.keyframes().is_empty());
    for k in index.keyframes() {
        assert_eq!(
            k.event % 2,
            0,
            "keyframe after an unfinished sequence at {}",
            k.event
        );
    }
}

#[test]
fn transcript_holds_scrolled_rows_by_event() {
    let src = Events(
        (0..30u64)
            .map(|i| (i * 10, Kind::Output, format!("row {i}\r\n").into_bytes()))
            .collect(),
    );
    let index = build(&src, IndexPolicy::default());
    let t = index.transcript();
    // 12 rows visible, the cursor on the last one: rows 0..=18 scrolled off.
    assert_eq!(t.len(), 19);
    assert_eq!(t.rows_before(12), 1);
    let rows = t.rows(0..2);
    assert_eq!(rows[0].text, "row 0");
    assert_eq!(rows[0].event, 11);
}
