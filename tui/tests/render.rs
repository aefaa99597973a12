//! What the player draws, as `TestBackend` snapshots (insta; the `.snap` files are committed
//! and the tests pass without `cargo insta`), plus the colours that text snapshots cannot
//! show.

mod common;

use common::{record, session, verify};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use sealcast_format::{scan, FrameKind};
use sealcast_tui::app::char_key;
use sealcast_tui::{Action, App, Library, Outcome, RowUpdate, VerifySummary};

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| sealcast_tui::ui::render(app, f)).unwrap();
    t
}

fn last_line(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let y = buf.area.height - 1;
    (0..buf.area.width)
        .map(|x| buf[(x, y)].symbol().to_string())
        .collect::<String>()
        .trim_end()
        .to_string()
}

fn keys(app: &mut App, s: &str) {
    for c in s.chars() {
        app.update(char_key(c));
    }
}

fn goto(app: &mut App, t: &str) {
    keys(app, ":");
    keys(app, t);
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
}

/// A copy of `data` with one byte of the signature of its `n`th checkpoint changed.
fn bad_signature(data: &[u8], n: usize) -> Vec<u8> {
    let cp = scan(data)
        .flatten()
        .filter(|f| f.kind == FrameKind::Checkpoint)
        .nth(n)
        .expect("enough checkpoints");
    let note = std::str::from_utf8(cp.bytes).unwrap();
    let sig = note.find("sig ").unwrap() + 6;
    let mut out = data.to_vec();
    let at = cp.offset as usize + 8 + sig;
    out[at] = if out[at] == b'A' { b'B' } else { b'A' };
    out
}

#[test]
fn player_with_side_panel_and_verified_badge() {
    let (data, trust) = record(40, 8, &session(), Some(1), 1 << 20);
    let s = verify(&data, &trust);
    assert_eq!(s.outcome, Outcome::Sealed);
    let mut app = common::app(data, Some(s));
    goto(&mut app, "6.5");
    let t = draw(&app, 100, 14);
    insta::assert_snapshot!("player_verified", t.backend());
    // The border of verified content is not red.
    assert_ne!(t.backend().buffer()[(0, 1)].fg, Color::Red);
}

#[test]
fn badge_in_every_verification_state() {
    let (data, trust) = record(40, 8, &session(), Some(1), 64);
    let mut lines = Vec::new();
    // verifying…
    let app = common::app(data.clone(), None);
    lines.push(last_line(&draw(&app, 120, 12)));
    // signed and sealed
    let app = common::app(data.clone(), Some(verify(&data, &trust)));
    lines.push(last_line(&draw(&app, 120, 12)));
    // unsealed tail (a crash)
    let cut = data[..data.len() - 40].to_vec();
    let app = common::app(cut.clone(), Some(verify(&cut, &trust)));
    lines.push(last_line(&draw(&app, 120, 12)));
    // chain broken (a checkpoint signature altered)
    let bad = bad_signature(&data, 4);
    let s = verify(&bad, &trust);
    assert_eq!(s.status, "BAD_SIGNATURE");
    let app = common::app(bad, Some(s));
    lines.push(last_line(&draw(&app, 120, 12)));
    // not signed: plain asciicast v3 (zstd-compressed, no checkpoints)
    let plain = plain_asciicast();
    let app = common::app(plain.clone(), Some(verify(&plain, &trust)));
    lines.push(last_line(&draw(&app, 120, 12)));
    // no trust file
    let s = VerifySummary::without_events(Outcome::Unverifiable, "UNVERIFIED", "no trust file");
    let app = common::app(data.clone(), Some(s));
    lines.push(last_line(&draw(&app, 120, 12)));
    // live
    let mut app = common::app(cut.clone(), Some(verify(&cut, &trust)));
    if let Some(p) = app.player.as_mut() {
        p.set_live_for_test();
    }
    app.update(Action::Live {
        writing: true,
        lag_us: 1_200_000,
    });
    lines.push(last_line(&draw(&app, 120, 12)));
    insta::assert_snapshot!("badges", lines.join("\n"));
}

/// A zstd-compressed plain asciicast v3 file: it plays, it is not signed.
fn plain_asciicast() -> Vec<u8> {
    let mut c = sealcast_format::FrameCompressor::new(1).unwrap();
    let mut out = Vec::new();
    for l in [
        r#"{"version":3,"term":{"cols":30,"rows":4}}"#,
        r#"[0.5, "o", "plain asciicast\r\n"]"#,
        r#"[1.0, "o", "no signature\r\n"]"#,
    ] {
        c.write_line(l.as_bytes(), &mut out).unwrap();
    }
    c.end_frame(&mut out).unwrap();
    out
}

#[test]
fn content_after_a_failed_checkpoint_has_a_red_border() {
    let (data, trust) = record(40, 8, &session(), Some(1), 64);
    let bad = bad_signature(&data, 4);
    let s = verify(&bad, &trust);
    let mut app = common::app(bad, Some(s));
    goto(&mut app, "1");
    let before = draw(&app, 70, 12);
    assert_ne!(
        before.backend().buffer()[(0, 1)].fg,
        Color::Red,
        "verified part"
    );
    keys(&mut app, "G");
    let after = draw(&app, 70, 12);
    assert_eq!(after.backend().buffer()[(0, 1)].fg, Color::Red);
    insta::assert_snapshot!("broken_tail", after.backend());
}

#[test]
fn a_small_terminal_clips_and_pans() {
    let (data, trust) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut app = common::app(data.clone(), Some(verify(&data, &trust)));
    goto(&mut app, "7");
    let t = draw(&app, 30, 8);
    insta::assert_snapshot!("clipped", t.backend());
    keys(&mut app, "J");
    let t = draw(&app, 30, 8);
    insta::assert_snapshot!("clipped_panned", t.backend());
}

#[test]
fn help_overlay() {
    let (data, _) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut app = common::app(data, None);
    keys(&mut app, "h");
    assert!(app.help);
    let t = draw(&app, 80, 24);
    insta::assert_snapshot!("help", t.backend());
    keys(&mut app, "x");
    assert!(!app.help, "any key closes it");
}

#[test]
fn side_panel_focused() {
    let (data, trust) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut app = common::app(data.clone(), Some(verify(&data, &trust)));
    goto(&mut app, "9");
    app.update(Action::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Down,
        KeyModifiers::NONE,
    )));
    let t = draw(&app, 90, 12);
    insta::assert_snapshot!("panel_focused", t.backend());
}

#[test]
fn library_view_filters_and_opens() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a1.cast.zst", "b2.cast.zst", "c3.cast.zst"];
    for n in names {
        std::fs::write(dir.path().join(n), b"x").unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    let mut lib = Library::scan(dir.path()).unwrap();
    assert_eq!(lib.rows.len(), 3);
    lib.dir = "/var/spool/sealcast".into();
    let upd = |n: &str, user: &str, start: u64, status: &str, o: Outcome, live: bool| RowUpdate {
        path: dir.path().join(n),
        start_us: Some(start),
        user: Some(user.into()),
        host: Some("bastion-01".into()),
        duration_us: Some(83_500_000),
        commands: Some(0),
        status: Some((status.into(), o)),
        error: None,
        live,
    };
    lib.apply(upd(
        names[0],
        "alice",
        1_763_700_000_000_000,
        "OK",
        Outcome::Sealed,
        false,
    ));
    lib.apply(upd(
        names[1],
        "bob",
        1_763_703_600_000_000,
        "MODIFIED",
        Outcome::Broken,
        false,
    ));
    lib.apply(upd(
        names[2],
        "carol",
        1_763_707_200_000_000,
        "UNCLOSED",
        Outcome::Unsealed,
        true,
    ));
    let mut app = App::with_library(lib);
    let t = draw(&app, 100, 8);
    let text = format!("{}", t.backend());
    // The size column is the real one (1 byte each); hide the temp dir from the snapshot.
    insta::assert_snapshot!("library", text);
    keys(&mut app, "bob");
    assert_eq!(app.library.as_ref().unwrap().visible().len(), 1);
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(
        app.take_effects(),
        vec![sealcast_tui::Effect::Open(dir.path().join("b2.cast.zst"))]
    );
    app.update(Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    app.update(Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    assert!(app.quit);
}
