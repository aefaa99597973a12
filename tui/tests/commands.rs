//! The side panel, timeline and search over command (`c`), process (`p`) and database (`d`)
//! events: rows, jumps with `[` `]` `{` `}`, search in command lines and SQL, verification
//! marks, the commands report's overlay; as a state machine (injected clock) and as
//! rendered snapshots.

mod common;

use common::{commands_session, record, verify};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sealcast_tui::{Action, App, CommandsOverlay, PanelKind, PanelRow, Verification};

fn key(app: &mut App, code: KeyCode) {
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn keys(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn t(app: &App) -> u64 {
    app.player.as_ref().unwrap().time_us()
}

fn message(app: &App) -> String {
    app.player
        .as_ref()
        .unwrap()
        .message()
        .unwrap_or_default()
        .to_string()
}

fn rows(app: &App) -> Vec<PanelRow> {
    app.player.as_ref().unwrap().panel_rows()
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| sealcast_tui::ui::render(app, f)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn commands_and_statements_fill_the_panel_with_their_outcomes() {
    let (data, trust) = record(60, 10, &commands_session(), Some(0), 1 << 20);
    let summary = verify(&data, &trust);
    let mut a = common::app(data, None);
    let r = rows(&a);
    let texts: Vec<&str> = r.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "make test",
            "deploy --prod",
            "SELECT name FROM users WHERE id = 1;",
            "DELETE FROM audit_log;",
            "echo done",
            "exit 0"
        ],
        "commands and statements, not the markers the writer adds after each start"
    );
    assert_eq!(
        (r[0].t_us, r[0].dur_us, r[0].status),
        (1_000_000, 2_000_000, Some(0))
    );
    assert_eq!(r[1].status, Some(2));
    assert!(r[1].failed() && !r[0].failed());
    assert_eq!(
        r[0].kind,
        PanelKind::Command {
            id: Some(1),
            cwd: Some("/home/alice/src".into()),
            pipestatus: Vec::new(),
            sources: "shell".into(),
        }
    );
    assert_eq!(
        r[3].kind,
        PanelKind::Query {
            connection: Some("c1 alice@app (pg main)".into()),
            rows: None,
            error: Some("42501 permission denied for table audit_log".into()),
        }
    );
    assert!(r[3].failed() && !r[2].failed());
    assert_eq!(
        r[2].kind,
        PanelKind::Query {
            connection: Some("c1 alice@app (pg main)".into()),
            rows: Some(1),
            error: None,
        }
    );
    // Nothing is verified before verification ran; then every row is.
    assert!(r.iter().all(|r| r.verification == Verification::Pending));
    a.update(Action::Verified(summary));
    assert!(rows(&a)
        .iter()
        .all(|r| matches!(r.verification, Verification::Verified { .. })));
}

#[test]
fn brackets_step_through_commands_and_braces_through_failures() {
    let (data, _) = record(60, 10, &commands_session(), Some(0), 1 << 20);
    let mut a = common::app(data, None);
    keys(&mut a, "]");
    assert_eq!(t(&a), 1_000_000, "make test");
    keys(&mut a, "]");
    assert_eq!(t(&a), 4_000_000, "deploy");
    keys(&mut a, "]");
    assert_eq!(t(&a), 6_500_000, "the SELECT");
    keys(&mut a, "[");
    assert_eq!(t(&a), 4_000_000);
    keys(&mut a, "g}");
    assert_eq!(t(&a), 4_000_000, "the failed command");
    keys(&mut a, "}");
    assert_eq!(t(&a), 7_000_000, "the failed statement");
    keys(&mut a, "}");
    assert!(message(&a).contains("no later"), "{}", message(&a));
    assert_eq!(t(&a), 7_000_000);
    keys(&mut a, "{");
    assert_eq!(t(&a), 4_000_000);
    // The screen there is the one recorded at that time.
    let screen = a.player.as_ref().unwrap().emulator().rows_text().join("\n");
    assert!(screen.contains("$ deploy --prod"), "{screen}");
    assert!(!screen.contains("denied"), "{screen}");
}

#[test]
fn search_finds_command_lines_and_sql_and_says_where() {
    let (data, _) = record(60, 10, &commands_session(), Some(0), 1 << 20);
    let mut a = common::app(data, None);
    // Only in a statement: the SQL never reached the screen.
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "audit_lo+g");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    assert_eq!(t(&a), 7_000_000);
    let m = message(&a);
    assert!(
        m.contains("in an SQL statement (c1 alice@app (pg main))"),
        "{m}"
    );
    assert!(m.contains("DELETE FROM audit_log"), "{m}");
    // `deploy` is typed (on screen at 3 s) before the shell claims it (4 s), and printed
    // again at 4.5 s: the nearest first, then the command line.
    keys(&mut a, "g");
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "deploy");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    let m = message(&a);
    assert!(m.contains("on screen"), "{m}");
    assert_eq!(t(&a), 3_000_000);
    keys(&mut a, "n");
    a.player.as_mut().unwrap().finish_search();
    let m = message(&a);
    assert!(m.contains("in a command line: deploy --prod"), "{m}");
    assert_eq!(t(&a), 4_000_000);
    // On screen only: the screen hit, as before.
    keys(&mut a, "g");
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "ERROR: perm");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    let m = message(&a);
    assert!(m.contains("on screen"), "{m}");
    // Backward from the end finds the last command line that matches.
    keys(&mut a, "G");
    key(&mut a, KeyCode::Char('?'));
    keys(&mut a, "echo d");
    key(&mut a, KeyCode::Enter);
    a.player.as_mut().unwrap().finish_search();
    assert_eq!(t(&a), 8_000_000, "{}", message(&a));
}

#[test]
fn rows_from_an_unsealed_tail_are_marked_never_verified() {
    // Small checkpoints, the file cut inside its last frames (a crash): the last rows come
    // from events no checkpoint covers.
    let (data, trust) = record(60, 10, &commands_session(), Some(0), 64);
    let cut = data.len() - 60;
    let tail = data[..cut].to_vec();
    let summary = verify(&tail, &trust);
    assert_eq!(summary.status, "UNSEALED_TAIL");
    let mut a = common::app(tail, None);
    a.update(Action::Verified(summary));
    let r = rows(&a);
    assert!(matches!(r[0].verification, Verification::Verified { .. }));
    let last = r.last().unwrap();
    assert_eq!(last.verification, Verification::Unsealed, "{last:?}");
    // The panel shows the mark: ✔ for the first row, ? for the last.
    let s = render(&a, 120, 24);
    assert!(s.contains("✔"), "{s}");
    assert!(s.contains('?'), "{s}");
}

#[test]
fn the_commands_report_adds_sources_proc_rows_and_disagreements() {
    let (data, trust) = record(60, 10, &commands_session(), Some(0), 1 << 20);
    let mut a = common::app(data.clone(), Some(verify(&data, &trust)));
    let mut proc_row = PanelRow::new(
        2_500_000,
        500_000,
        PanelKind::Command {
            id: None,
            cwd: None,
            pipestatus: Vec::new(),
            sources: "proc only (no claim) · 1 process (curl)".into(),
        },
        "curl -s http://example.invalid".into(),
    );
    proc_row.verification = Verification::Unsealed;
    let mut dis = PanelRow::new(
        2_500_000,
        0,
        PanelKind::Disagreement,
        "1 process(es) without a claim (after #1 make test)".into(),
    );
    dis.verification = Verification::Verified { seq: 0 };
    a.update(Action::Commands(CommandsOverlay {
        sources: vec![(1, "shell · proc: 2 processes (make, cc)".into())],
        rows: vec![proc_row, dis],
    }));
    let r = rows(&a);
    assert_eq!(r.len(), 8);
    assert_eq!(r[1].text, "curl -s http://example.invalid");
    assert_eq!(
        r[1].verification,
        Verification::Unsealed,
        "kept as the report gave it"
    );
    assert_eq!(r[2].kind, PanelKind::Disagreement);
    assert!(
        matches!(&r[0].kind, PanelKind::Command { sources, .. } if sources == "shell · proc: 2 processes (make, cc)")
    );
    // `]` steps through the proc row too (a command row), not the disagreement.
    keys(&mut a, "g]]");
    assert_eq!(t(&a), 2_500_000);
    insta::assert_snapshot!("panel_with_report", render(&a, 130, 22));
}

#[test]
fn old_recordings_keep_markers_resizes_and_idle() {
    // No c/p/d events: the panel is what it was.
    let (data, _) = record(40, 8, &common::session(), Some(1), 1 << 20);
    let a = common::app(data, None);
    let kinds: Vec<PanelKind> = rows(&a).into_iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            PanelKind::Marker,
            PanelKind::Resize,
            PanelKind::Idle,
            PanelKind::Exit
        ]
    );
}

#[test]
fn panel_and_timeline_snapshots() {
    let (data, trust) = record(60, 10, &commands_session(), Some(0), 1 << 20);
    let mut a = common::app(data.clone(), Some(verify(&data, &trust)));
    keys(&mut a, "}");
    insta::assert_snapshot!("commands_panel_at_failure", render(&a, 130, 22));
    // Unverified: the same place before verification ran.
    let mut b = common::app(data, None);
    keys(&mut b, "}}");
    insta::assert_snapshot!("commands_panel_pending", render(&b, 130, 22));
}
