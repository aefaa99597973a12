//! Golden recordings (samples/golden/, made by samples/make-golden.sh with the real
//! `sealcast record` in tmux: a `\r` progress bar, wide characters, the alternate screen and
//! a resize in a shell; vim; less; top) played to fixed points: the screen contents are
//! snapshots, and seeking there through keyframes gives the screen of a linear replay.

use sealcast_term::{Emulator, EventSource, IndexPolicy};
use sealcast_tui::{Player, PlayerOptions, Recording, Shared};

fn golden(name: &str) -> String {
    let path = format!(
        "{}/../samples/golden/{name}.cast.zst",
        env!("CARGO_MANIFEST_DIR")
    );
    let rec = Recording::open(path.as_ref()).unwrap();
    // Keyframes every 256 bytes so even these short sessions seek through several.
    let policy = IndexPolicy {
        every_bytes: 256,
        ..IndexPolicy::default()
    };
    let shared = Shared::new(rec, policy);
    shared.index_all(policy);
    let (n, dur) = {
        let r = sealcast_tui::shared::source(&shared);
        (r.len(), r.duration_us())
    };
    let mut p = Player::new(
        shared.clone(),
        PlayerOptions {
            at_us: Some(0),
            ..Default::default()
        },
    );
    let mut out = String::new();
    for pct in [25u64, 50, 75, 100] {
        let t = dur * pct / 100;
        p.seek_to_for_bench(t);
        let emu = p.emulator();
        let (c, r) = emu.size();
        out.push_str(&format!(
            "== {pct}% ({c}x{r}, event {} of {n})\n",
            p.position()
        ));
        for row in emu.rows_text() {
            out.push_str(&row);
            out.push('\n');
        }
        // The same point by a linear replay from the start.
        let rec = sealcast_tui::shared::source(&shared);
        let m = rec.meta();
        let mut lin = Emulator::new(m.cols, m.rows);
        sealcast_term::replay(&mut lin, &*rec, 0, p.position());
        assert_eq!(
            sealcast_term::canonical_state(lin.screen()),
            sealcast_term::canonical_state(emu.screen()),
            "{name} at {pct}%"
        );
    }
    out
}

#[test]
fn shell_progress_bar_wide_characters_alternate_screen_resize() {
    let s = golden("shell");
    assert!(s.contains("(60x20"), "the resize is applied:\n{s}");
    insta::assert_snapshot!("golden_shell", s);
}

#[test]
fn vim() {
    insta::assert_snapshot!("golden_vim", golden("vim"));
}

#[test]
fn less() {
    insta::assert_snapshot!("golden_less", golden("less"));
}

#[test]
fn top() {
    insta::assert_snapshot!("golden_top", golden("top"));
}
