//! The player as a state machine: keys and an injected clock in, state out. No terminal, no
//! sleeping.

mod common;

use common::{record, session, verify, Step};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sealcast_term::Place;
use sealcast_tui::app::char_key;
use sealcast_tui::{Action, App, PlayerOptions, Verification};

fn key(app: &mut App, code: KeyCode) {
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn keys(app: &mut App, s: &str) {
    for c in s.chars() {
        app.update(char_key(c));
    }
}

fn screen(app: &App) -> String {
    app.player
        .as_ref()
        .unwrap()
        .emulator()
        .rows_text()
        .join("\n")
}

fn t(app: &App) -> u64 {
    app.player.as_ref().unwrap().time_us()
}

#[test]
fn playing_follows_the_injected_clock_and_space_pauses() {
    let (data, _) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut a = App::with_player(common::player(data, PlayerOptions::default()));
    a.update(Action::Tick(0));
    assert!(a.player.as_ref().unwrap().playing());
    a.update(Action::Tick(1_500_000));
    assert!(screen(&a).contains("hello"), "{}", screen(&a));
    assert!(!screen(&a).contains("alpha"));
    keys(&mut a, " ");
    a.update(Action::Tick(10_000_000));
    assert_eq!(t(&a), 1_500_000, "paused: the clock does not move");
    keys(&mut a, " ");
    a.update(Action::Tick(10_600_000));
    assert!(screen(&a).contains("alpha"), "{}", screen(&a));
    // Double speed: 1 s of wall time is 2 s of recording.
    keys(&mut a, ">");
    a.update(Action::Tick(11_600_000));
    assert_eq!(t(&a), 4_100_000);
    keys(&mut a, "=");
    assert_eq!(a.player.as_ref().unwrap().speed(), 1.0);
    keys(&mut a, "<<<<<<<<");
    assert_eq!(a.player.as_ref().unwrap().speed(), 0.25);
    keys(&mut a, ">>>>>>>>>>");
    assert_eq!(a.player.as_ref().unwrap().speed(), 16.0);
}

#[test]
fn idle_compression_caps_gaps_at_two_seconds() {
    let (data, _) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut a = common::app(data, None);
    key(&mut a, KeyCode::Char(':'));
    keys(&mut a, "9.5");
    key(&mut a, KeyCode::Enter);
    assert_eq!(t(&a), 9_500_000);
    keys(&mut a, "i ");
    a.update(Action::Tick(0));
    // The next output is at 29 s; with idle compression it shows 2 s after 9 s.
    a.update(Action::Tick(1_400_000));
    assert!(!screen(&a).contains("needle"));
    a.update(Action::Tick(1_600_000));
    assert!(screen(&a).contains("needle"), "{}", screen(&a));
    assert_eq!(t(&a), 29_100_000);
}

#[test]
fn seeking_by_time_percent_events_and_ends() {
    let (data, _) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut a = common::app(data, None);
    key(&mut a, KeyCode::Right);
    assert_eq!(t(&a), 5_000_000);
    assert!(screen(&a).contains("red"));
    key(&mut a, KeyCode::Left);
    assert_eq!(t(&a), 0);
    a.update(Action::Key(KeyEvent::new(
        KeyCode::Right,
        KeyModifiers::SHIFT,
    )));
    assert_eq!(t(&a), 30_000_000, "clamped to the end");
    keys(&mut a, "g");
    assert_eq!(t(&a), 0);
    assert_eq!(screen(&a).trim(), "$");
    keys(&mut a, "5");
    assert_eq!(t(&a), 15_000_000);
    assert!(screen(&a).contains("false"));
    keys(&mut a, "G");
    assert_eq!(
        a.player.as_ref().unwrap().position(),
        11,
        "10 steps and the exit status"
    );
    // One event at a time, and with a count: `3,` steps back three events from where the
    // player was before the digit jumped.
    // At time 0 the first event (t = 0) is applied.
    keys(&mut a, "g");
    assert_eq!(a.player.as_ref().unwrap().position(), 1);
    keys(&mut a, "..");
    assert_eq!(a.player.as_ref().unwrap().position(), 3);
    keys(&mut a, ",");
    assert_eq!(a.player.as_ref().unwrap().position(), 2);
    keys(&mut a, "3.");
    assert_eq!(a.player.as_ref().unwrap().position(), 5);
    assert!(!a.player.as_ref().unwrap().playing());
    keys(&mut a, "12,");
    assert_eq!(a.player.as_ref().unwrap().position(), 0);
    // A bad time is refused with a message.
    key(&mut a, KeyCode::Char(':'));
    keys(&mut a, "soon");
    key(&mut a, KeyCode::Enter);
    assert!(a
        .player
        .as_ref()
        .unwrap()
        .message()
        .unwrap()
        .contains("not a time"));
}

#[test]
fn markers_and_failures_are_jump_targets() {
    let (data, _) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut a = common::app(data, None);
    keys(&mut a, "]");
    assert_eq!(t(&a), 5_000_000, "the marker (no commands exist yet)");
    keys(&mut a, "]");
    assert!(a
        .player
        .as_ref()
        .unwrap()
        .message()
        .unwrap()
        .contains("no later"));
    keys(&mut a, "}");
    assert_eq!(t(&a), 30_000_000, "the failed exit status");
    keys(&mut a, "[");
    assert_eq!(t(&a), 5_000_000);
}

#[test]
fn search_finds_the_next_and_previous_appearance_on_screen() {
    let (data, _) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut a = common::app(data, None);
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "hel+o");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    let p = a.player.as_ref().unwrap();
    let h = p.hit().expect("found").clone();
    assert_eq!(h.text, "hello");
    assert_eq!(t(&a), 1_000_000);
    // The command line `echo hello` (row 0) and its output (row 1) appear in one event; the
    // hit is the first on screen.
    assert!(
        matches!(
            h.place,
            Place::Screen {
                row: 0,
                col: 7,
                width: 5
            }
        ),
        "{h:?}"
    );
    // `n`: "hello" never appears again (scrolling up is not a new appearance).
    keys(&mut a, "n");
    a.player.as_mut().unwrap().finish_search();
    assert!(a
        .player
        .as_ref()
        .unwrap()
        .message()
        .unwrap()
        .contains("not found"));
    // A regex for the needle, then back with `?` to the first "alpha".
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "needle-[a-z-]+");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    assert_eq!(t(&a), 29_000_000);
    key(&mut a, KeyCode::Char('?'));
    keys(&mut a, "alpha");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    assert_eq!(t(&a), 2_000_000);
    assert_eq!(a.player.as_ref().unwrap().hit().unwrap().text, "alpha");
}

#[test]
fn search_finds_rows_that_scrolled_off_within_one_event() {
    // 4 rows: "needle" is printed and scrolled off by the same event.
    let steps = vec![
        (0, Step::Out("start\r\n")),
        (1_000_000, Step::Out("needle\r\na\r\nb\r\nc\r\nd\r\ne\r\n")),
        (2_000_000, Step::Out("end\r\n")),
    ];
    let (data, _) = record(20, 4, &steps, None, 1 << 20);
    let mut a = common::app(data, None);
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "needle");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    let h = a.player.as_ref().unwrap().hit().unwrap().clone();
    assert!(matches!(h.place, Place::Scrollback { row: 1 }), "{h:?}");
    assert_eq!(t(&a), 1_000_000);
}

#[test]
fn raw_bytes_are_the_fallback_for_what_never_reached_the_screen() {
    // The secret is erased in the same event it is written (cursor back, overwrite).
    let steps = vec![
        (0, Step::Out("$ ")),
        (1_000_000, Step::Out("password: hunter2\r\x1b[2K$ ")),
        (2_000_000, Step::Out("ok\r\n")),
    ];
    let (data, _) = record(30, 4, &steps, None, 1 << 20);
    let mut a = common::app(data, None);
    keys(&mut a, "/hunter2");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    let p = a.player.as_ref().unwrap();
    assert_eq!(
        p.hit().map(|h| h.place.clone()),
        Some(Place::Raw),
        "{:?}",
        p.message()
    );
    assert!(p.message().unwrap().contains("raw output"));
}

#[test]
fn the_side_panel_seeks_to_its_rows() {
    let (data, _) = record(40, 8, &session(), Some(1), 1 << 20);
    let mut a = common::app(data, None);
    let rows = a.player.as_ref().unwrap().panel_rows();
    let kinds: Vec<String> = rows
        .iter()
        .map(|r| format!("{:?}@{}", r.kind, r.t_us))
        .collect();
    assert_eq!(
        kinds,
        [
            "Marker@5000000",
            "Resize@8000000",
            "Idle@9000000",
            "Exit@30000000"
        ],
    );
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Enter);
    assert_eq!(t(&a), 8_000_000);
    assert_eq!(a.player.as_ref().unwrap().emulator().size(), (50, 10));
    key(&mut a, KeyCode::Tab);
    keys(&mut a, "q");
    assert!(a.quit);
}

#[test]
fn verification_states_follow_the_checkpoints() {
    // Small checkpoints: many frames; cut the file inside the last frames (a crash).
    let (data, trust) = record(40, 8, &session(), Some(1), 64);
    let cut = data.len() - 40;
    let tail = data[..cut].to_vec();
    let summary = verify(&tail, &trust);
    assert_eq!(summary.status, "UNSEALED_TAIL");
    let mut a = common::app(tail, None);
    let state = |a: &App, ev: u64| {
        let shared = a.player.as_ref().unwrap().shared();
        let rec = sealcast_tui::shared::source(&shared);
        rec.state_of(ev)
    };
    assert_eq!(
        state(&a, 0),
        Verification::Pending,
        "nothing is verified before it is checked"
    );
    a.update(Action::Verified(summary));
    assert!(matches!(state(&a, 0), Verification::Verified { .. }));
    let shared = a.player.as_ref().unwrap().shared();
    let last = sealcast_term::EventSource::len(&*sealcast_tui::shared::source(&shared)) - 1;
    assert_eq!(state(&a, last), Verification::Unsealed);
}

#[test]
fn every_vector_opens_or_is_refused_without_panicking() {
    // Valid, tampered, crash, foreign and garbage files (format-spec/vectors): each either
    // opens (and then indexes, seeks and searches) or is refused with an error.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../format-spec/vectors");
    let mut opened = 0;
    let mut refused = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if !path.to_string_lossy().ends_with(".cast.zst") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        match sealcast_tui::Recording::from_bytes(data) {
            Err(_) => refused += 1,
            Ok(rec) => {
                opened += 1;
                let shared = sealcast_tui::Shared::new(rec, sealcast_term::IndexPolicy::default());
                shared.index_all(sealcast_term::IndexPolicy::default());
                let mut a =
                    App::with_player(sealcast_tui::Player::new(shared, PlayerOptions::default()));
                keys(&mut a, "G5g.");
                key(&mut a, KeyCode::Char('/'));
                keys(&mut a, "x");
                key(&mut a, KeyCode::Enter);
                a.player.as_mut().unwrap().finish_search();
            }
        }
    }
    assert!(
        opened >= 5 && refused >= 2,
        "opened {opened}, refused {refused}"
    );
}

#[test]
fn empty_garbage_and_cut_files() {
    use sealcast_tui::{OpenError, Recording};
    assert!(matches!(
        Recording::from_bytes(Vec::new()),
        Err(OpenError::Container(_))
    ));
    assert!(Recording::from_bytes(b"garbage\n".to_vec()).is_err());
    let (data, _) = record(40, 8, &session(), Some(1), 64);
    // Cut anywhere after the first frame: it opens and shows the decodable prefix.
    let first = sealcast_format::scan(&data).next().unwrap().unwrap();
    for cut in (first.len as usize + 1..data.len()).step_by(37) {
        let rec = Recording::from_bytes(data[..cut].to_vec()).expect("a cut file opens");
        assert!(rec.duration_us() <= 30_000_000);
    }
}

#[test]
fn events_carry_the_exact_bytes_of_b_events() {
    use sealcast_term::EventSource;
    let key = sealcast_signer::SigningKey::generate().unwrap();
    let h = sealcast_format::Header::sealed(sealcast_format::SealMeta::new(
        "0".repeat(32),
        "h",
        "u",
        0,
        "t",
        key.id().to_string(),
    ));
    let mut w = sealcast_recorder::SealedWriter::new(
        Vec::new(),
        key,
        &h,
        common::test_clock(),
        sealcast_recorder::CheckpointPolicy::default(),
    )
    .unwrap();
    w.output(b"ok \xff\xfe raw").unwrap();
    let (file, _) = w.finish(Some(0)).unwrap();
    let rec = sealcast_tui::Recording::from_bytes(file).unwrap();
    let mut got = Vec::new();
    rec.visit(0, &mut |_, ev| {
        got.push(ev.data.to_vec());
        true
    });
    assert_eq!(
        got[0], b"ok \xff\xfe raw",
        "the `b` bytes, not the lossy `o` text"
    );
}

#[test]
fn events_decoded_by_the_scan_equal_events_decoded_on_demand() {
    // Many small frames (a checkpoint every 64 bytes), every output with invalid UTF-8 (an
    // `o` + `b` pair that a frame boundary may split): the events the keyframe builder gets
    // from the scan's decoded frames, and those decoded again on demand, are the bytes
    // written.
    use sealcast_term::EventSource;
    let key = sealcast_signer::SigningKey::generate().unwrap();
    let h = sealcast_format::Header::sealed(sealcast_format::SealMeta::new(
        "0".repeat(32),
        "h",
        "u",
        0,
        "t",
        key.id().to_string(),
    ));
    let policy = sealcast_recorder::CheckpointPolicy {
        max_bytes: 64,
        ..sealcast_recorder::CheckpointPolicy::default()
    };
    let clock = common::test_clock();
    let mut w =
        sealcast_recorder::SealedWriter::new(Vec::new(), key, &h, clock.clone(), policy).unwrap();
    let mut want = Vec::new();
    for i in 0..300u32 {
        clock.set(u64::from(i) * 1000);
        let mut d = format!("line {i} ").into_bytes();
        d.extend_from_slice(&[0xff, (i % 200) as u8 + 0x30, 0xfe, b'\r', b'\n']);
        w.output(&d).unwrap();
        want.push(d);
    }
    let (file, _) = w.finish(Some(0)).unwrap();
    let rec = sealcast_tui::Recording::from_bytes(file.clone()).unwrap();
    let mut got = Vec::new();
    rec.visit(0, &mut |_, ev| {
        if ev.kind.is_drawn() {
            got.push(ev.data.to_vec());
        }
        true
    });
    assert_eq!(got, want);
    // Frame by frame from the end (cached by the scan) to the start (decoded on demand).
    let n = rec.len();
    for i in (0..n).rev() {
        let mut one = None;
        rec.visit(i, &mut |_, ev| {
            one = Some((ev.kind, ev.data.to_vec()));
            false
        });
        let (kind, data) = one.unwrap();
        if kind.is_drawn() {
            assert_eq!(data, want[i as usize], "event {i}");
        }
    }
}

#[test]
fn the_verified_extent_grows_with_the_scan() {
    // Verification can finish before the background scan reaches the end of a large file:
    // the badge and the timeline then show the verified extent as far as the scan got (a
    // verified event's time), not "verified to start" until the scan catches up.
    let steps: Vec<(u64, Step)> = (0..40u64)
        .map(|i| (i * 1_000_000, Step::Out("some output\r\n")))
        .collect();
    let (data, trust) = record(40, 8, &steps, Some(0), 64);
    let summary = verify(&data, &trust);
    assert_eq!(summary.status, "OK");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.cast.zst");
    std::fs::write(&path, &data).unwrap();
    let mut rec = sealcast_tui::Recording::open(&path).unwrap();
    let scanned = sealcast_term::EventSource::len(&rec);
    assert!(
        scanned > 0 && scanned < summary.events,
        "only the first frames are scanned when a file is opened ({scanned} of {})",
        summary.events
    );
    rec.set_summary(summary.clone());
    assert_eq!(
        rec.verified_until_us(),
        Some(rec.time_of(scanned - 1)),
        "the last scanned event is verified"
    );
    assert!(matches!(
        rec.state_of(scanned - 1),
        Verification::Verified { .. }
    ));
    while rec.scan_step(8, false) {}
    assert_eq!(rec.verified_until_us(), Some(39_000_000));
    // A summary whose verified events end before the scanned ones: the extent is theirs.
    let mut short = sealcast_tui::VerifySummary::without_events(
        sealcast_tui::Outcome::Unsealed,
        "UNSEALED_TAIL",
        "",
    );
    for e in 0..summary.events {
        short.push(if e < 5 {
            summary.state_of(e)
        } else {
            Verification::Unsealed
        });
    }
    // (The same frames, verified with the same content.)
    short.frames = summary.frames.clone();
    rec.set_summary(short);
    assert_eq!(rec.verified_until_us(), Some(rec.time_of(4)));
}
