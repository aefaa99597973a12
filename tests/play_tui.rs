//! End to end: the real `sealcast play` in a detached tmux pane, driven by `send-keys` and
//! read with `capture-pane`: open, pause, seek back, search, side-panel jump, quit with the
//! terminal restored; SIGTERM restores it too; a tampered file opens with CHAIN BROKEN;
//! garbage exits 1 with one line and the terminal untouched; `-f` follows a live recording.
//! Every wait polls the screen until a condition or a deadline, never a fixed sleep.
//!
//! Skipped (with a message) when tmux is not installed, unless `CI` is set: then it fails.

mod common;
#[path = "support/play_pane.rs"]
mod play_pane;
#[path = "support/tmux.rs"]
mod tmux;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_until, TestEnv};
use play_pane::{assert_restored, on_screen, pane, require_tmux, sh_quote, status};
use tmux::Tmux;

/// A recording made by the real `sealcast record`: 30 numbered lines, a needle, an exit 3.
fn recording(env: &TestEnv) -> std::path::PathBuf {
    let out = env.path("s.cast.zst");
    let o = env.record(
        &out,
        &["--checkpoint-bytes", "256"],
        &["sh", "-c", "for i in $(seq 1 30); do echo row $i; done; sleep 0.3; echo the-needle-here; sleep 0.3; echo done; exit 3"],
    );
    assert!(
        o.status.success() || o.status.code() == Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn open_pause_seek_search_panel_quit() {
    if !require_tmux("open_pause_seek_search_panel_quit") {
        return;
    }
    let env = TestEnv::new();
    let rec = recording(&env);
    let line = format!(
        "{} play --trusted {} {}",
        sh_quote(&common::bin()),
        sh_quote(&env.allowed_signers),
        sh_quote(&rec)
    );
    let tmux = pane(&env, &line, 130, 40);
    // Open: the badge says who signed it once verification ran; the recording plays to its end.
    tmux.wait_screen("the verified badge", 20, |s| {
        status(s).contains("✔ signed by ")
    });
    tmux.wait_screen("the end of the recording", 20, |s| {
        on_screen(s, "done") && status(s).starts_with("⏸")
    });
    assert_eq!(tmux.display("#{alternate_on}"), "1");
    // Seek back to the start: the rows are gone.
    tmux.keys(&["g"]);
    tmux.wait_screen("the start", 20, |s| {
        !s.contains("row 30") && status(s).contains("0:00")
    });
    // Play, then pause.
    tmux.keys(&["Space"]);
    tmux.keys(&["Space"]);
    tmux.wait_screen("paused", 20, |s| status(s).starts_with("⏸"));
    // Search: jumps to where the needle appears and says so.
    tmux.keys(&["g", "/"]);
    tmux.type_text("needle-[a-z]+");
    tmux.keys(&["Enter"]);
    let s = tmux.wait_screen("the match", 20, |s| status(s).contains("match at"));
    assert!(s.contains("the-needle-here"), "{s}");
    assert!(
        !on_screen(&s, "done"),
        "the search went past the match:\n{s}"
    );
    // The highlight is drawn (yellow background) in the escaped capture.
    let esc = tmux.screen_escaped();
    let line = esc
        .lines()
        .skip(1)
        .find(|l| l.contains("needle-here"))
        .unwrap_or("");
    // Yellow background (tmux writes colour 3 as 48;5;3) right before the match.
    assert!(
        line.contains("\u{1b}[48;5;3mneedle-here"),
        "no highlight: {line:?}"
    );
    // Side panel: Tab, Enter on the exit row jumps to it.
    tmux.keys(&["g", "Tab", "End", "Enter"]);
    tmux.wait_screen("the exit row's time", 20, |s| {
        on_screen(s, "done") && s.contains("exit 3")
    });
    tmux.keys(&["Tab"]);
    // Help overlay, then quit.
    tmux.keys(&["h"]);
    tmux.wait_screen("help", 20, |s| s.contains("idle compression"));
    tmux.keys(&["x"]);
    tmux.wait_screen("help closed", 20, |s| !s.contains("idle compression"));
    tmux.keys(&["q"]);
    assert_restored(&tmux);
    assert!(tmux.screen().contains("EXIT=0"));
}

/// A clock the test moves (µs since the session start).
struct StepClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl sealcast_recorder::Clock for StepClock {
    fn mono_us(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn wall_us(&self) -> u64 {
        1_763_700_000_000_000 + self.mono_us()
    }
}

/// A recording with shell commands and database statements (through the library writer:
/// `sealcast record` does not write `c` events yet), signed with the env's key: `make test`
/// (exit 0) at 1 s, `deploy --prod` (exit 2) at 4 s, a refused DELETE at 7 s.
fn commands_recording(env: &TestEnv) -> std::path::PathBuf {
    use sealcast_format::{CommandEvent, Header, SealMeta, TermInfo};
    let key =
        sealcast_signer::SigningKey::from_file_bytes(&std::fs::read(&env.key).unwrap()).unwrap();
    let h = Header {
        term: TermInfo {
            cols: 60,
            rows: 10,
            term_type: Some("xterm-256color".into()),
        },
        timestamp: Some(1_763_700_000),
        ..Header::sealed(SealMeta::new(
            "cd".repeat(16),
            env.host.as_str(),
            "alice",
            1_763_700_000_000_000,
            "sealcast tests",
            key.id().to_string(),
        ))
    };
    let now = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut w = sealcast_recorder::SealedWriter::new(
        Vec::new(),
        key,
        &h,
        StepClock(now.clone()),
        sealcast_recorder::CheckpointPolicy::default(),
    )
    .unwrap();
    let at = |t: u64| now.store(t, std::sync::atomic::Ordering::SeqCst);
    let start = |id: u64, cmd: &str| CommandEvent::Start {
        id,
        src: "shell".into(),
        cmd: cmd.into(),
        cwd: Some("/srv/app".into()),
        partial: false,
        trunc: false,
        late: false,
    };
    let end = |id: u64, exit: i32, duration_us: u64| CommandEvent::End {
        id,
        src: "shell".into(),
        exit: Some(exit),
        pipestatus: Vec::new(),
        duration_us,
    };
    w.output(b"$ ").unwrap();
    at(1_000_000);
    w.output(b"make test\r\n").unwrap();
    w.command(&start(1, "make test")).unwrap();
    at(2_000_000);
    w.output(b"tests ok\r\n$ ").unwrap();
    w.command(&end(1, 0, 1_000_000)).unwrap();
    at(4_000_000);
    w.output(b"deploy --prod\r\n").unwrap();
    w.command(&start(2, "deploy --prod")).unwrap();
    at(4_500_000);
    w.output(b"error: denied\r\n$ ").unwrap();
    w.command(&end(2, 2, 500_000)).unwrap();
    at(6_000_000);
    w.db_event(r#"{"v":1,"k":"db.stmt","c":1,"proto":"pg","ts":"2026-11-21T04:40:06.000000Z","q":1,"via":"simple","sql":"SELECT 1","sql_len":8,"sql_sha256":"00","txn_before":"I"}"#, true).unwrap();
    at(7_000_000);
    w.db_event(r#"{"v":1,"k":"db.stmt","c":1,"proto":"pg","ts":"2026-11-21T04:40:07.000000Z","q":2,"via":"simple","sql":"DELETE FROM audit_log","sql_len":21,"sql_sha256":"00","txn_before":"I"}"#, true).unwrap();
    at(7_100_000);
    w.db_event(r#"{"v":1,"k":"db.result","c":1,"proto":"pg","ts":"2026-11-21T04:40:07.100000Z","q":2,"i":0,"status":"error","rows_out":0,"bytes_out":0,"dur_us":100000,"err":{"sqlstate":"42501","message":"permission denied"}}"#, false).unwrap();
    at(9_000_000);
    w.output(b"exit\r\n").unwrap();
    let (bytes, receipt) = w.finish(Some(0)).unwrap();
    let out = env.path("cmds.cast.zst");
    std::fs::write(&out, bytes).unwrap();
    std::fs::write(common::receipt_path(&out), receipt).unwrap();
    out
}

#[test]
fn command_rows_and_failed_commands_are_jump_targets() {
    if !require_tmux("command_rows_and_failed_commands_are_jump_targets") {
        return;
    }
    let env = TestEnv::new();
    let rec = commands_recording(&env);
    let line = format!(
        "{} play --at 0 --trusted {} {}",
        sh_quote(&common::bin()),
        sh_quote(&env.allowed_signers),
        sh_quote(&rec)
    );
    let tmux = pane(&env, &line, 130, 30);
    let s = tmux.wait_screen("the commands panel, verified", 20, |s| {
        s.contains("commands · statements")
            && s.contains("✔ 0:04.0")
            && status(s).contains("✔ signed by ")
    });
    assert!(s.contains("$ deploy --prod"), "{s}");
    assert!(s.contains("42501 permission denied"), "{s}");
    // `]`: the next command row.
    tmux.keys(&["]"]);
    tmux.wait_screen("the first command", 20, |s| {
        status(s).contains("0:01.0 /") && on_screen(s, "$ make test")
    });
    // `}`: the next failed command; the screen is the one recorded then.
    tmux.keys(&["}"]);
    let s = tmux.wait_screen("the failed command", 20, |s| status(s).contains("0:04.0 /"));
    assert!(on_screen(&s, "$ deploy --prod"), "{s}");
    assert!(!s.contains("error: denied"), "{s}");
    // `}` again: the failed statement.
    tmux.keys(&["}"]);
    tmux.wait_screen("the failed statement", 20, |s| {
        status(s).contains("0:07.0 /")
    });
    // `{`: back to the failed command.
    tmux.keys(&["{"]);
    tmux.wait_screen("back to the failed command", 20, |s| {
        status(s).contains("0:04.0 /")
    });
    tmux.keys(&["q"]);
    assert_restored(&tmux);
    assert!(tmux.screen().contains("EXIT=0"));
}

#[test]
fn sigterm_restores_the_terminal() {
    if !require_tmux("sigterm_restores_the_terminal") {
        return;
    }
    let env = TestEnv::new();
    let rec = recording(&env);
    let line = format!(
        "{} play --at 0.0 {}",
        sh_quote(&common::bin()),
        sh_quote(&rec)
    );
    let tmux = pane(&env, &line, 100, 30);
    tmux.wait_screen("the player", 20, |s| status(s).starts_with("⏸"));
    // No trust file in this environment: it still plays, and says it is not verified.
    tmux.wait_screen("the unverified badge", 20, |s| {
        status(s).contains("NOT VERIFIED")
    });
    let pid = player_pid(&tmux);
    let ok = Command::new("kill")
        .args(["-TERM", &pid])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    assert_restored(&tmux);
}

/// The pid of the player: the child of the pane's shell.
fn player_pid(tmux: &Tmux) -> String {
    let shell = tmux.display("#{pane_pid}");
    let mut pid = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        let o = Command::new("pgrep").args(["-P", &shell]).output().unwrap();
        pid = String::from_utf8_lossy(&o.stdout).trim().to_string();
        !pid.is_empty()
    }));
    pid
}

#[test]
fn a_hung_up_terminal_ends_the_player() {
    if !require_tmux("a_hung_up_terminal_ends_the_player") {
        return;
    }
    // Regression: crossterm's poll spun on end-of-file once the terminal went away, so a
    // player whose tmux (or ssh) died kept a core busy forever.
    let env = TestEnv::new();
    let rec = recording(&env);
    let line = format!(
        "{} play --at 0 {}",
        sh_quote(&common::bin()),
        sh_quote(&rec)
    );
    let tmux = pane(&env, &line, 100, 30);
    tmux.wait_screen("the player", 20, |s| status(s).starts_with("⏸"));
    let pid = player_pid(&tmux);
    drop(tmux); // kill-server: the pane's terminal hangs up
    let gone = wait_until(Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    if !gone {
        let _ = Command::new("kill").args(["-9", &pid]).status();
    }
    assert!(gone, "the player outlived its terminal");
}

#[test]
fn tampered_garbage_and_live_files() {
    if !require_tmux("tampered_garbage_and_live_files") {
        return;
    }
    let env = TestEnv::new();
    let rec = recording(&env);
    // Tampered: one byte of the last checkpoint's signature.
    let mut data = std::fs::read(&rec).unwrap();
    let cp = sealcast_format::scan(&data)
        .flatten()
        .filter(|f| f.kind == sealcast_format::FrameKind::Checkpoint)
        .last()
        .unwrap();
    let note = std::str::from_utf8(cp.bytes).unwrap();
    let at = cp.offset as usize + 8 + note.find("sig ").unwrap() + 6;
    data[at] = if data[at] == b'A' { b'B' } else { b'A' };
    let bad = env.path("bad.cast.zst");
    std::fs::write(&bad, &data).unwrap();
    let garbage = env.path("garbage.cast.zst");
    std::fs::write(&garbage, b"this is not a recording\n").unwrap();
    let bin = sh_quote(&common::bin());
    let line = format!(
        "{bin} play {g}; echo G=$?; {bin} play --trusted {t} {b}",
        g = sh_quote(&garbage),
        t = sh_quote(&env.allowed_signers),
        b = sh_quote(&bad)
    );
    let tmux = pane(&env, &line, 120, 30);
    let s = tmux.wait_screen("the broken badge", 20, |s| {
        status(s).contains("CHAIN BROKEN")
    });
    assert!(s.contains("BAD_SIGNATURE"), "{s}");
    tmux.keys(&["q"]);
    let s = tmux.wait_screen("exit", 20, |s| s.contains("EXIT="));
    // Garbage: one clear line, exit 1, the terminal never switched.
    assert!(s.contains("not a recording"), "{s}");
    assert!(s.contains("G=1"), "{s}");
    drop(tmux);

    // Live: a recording still being written; -f shows LIVE and keeps following.
    let live = env.path("live.cast.zst");
    let mut recorder = env
        .command()
        .args(["record", "--checkpoint-secs", "0.2", "--out"])
        .arg(&live)
        .arg("--key")
        .arg(&env.key)
        .args([
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo tick-$i; sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || std::fs::metadata(
        &live
    )
    .map(|m| m.len() > 0)
    .unwrap_or(false)));
    let line = format!(
        "{bin} play -f --trusted {} {}",
        sh_quote(&env.allowed_signers),
        sh_quote(&live)
    );
    let tmux = pane(&env, &line, 100, 30);
    let tick = |s: &str| -> u32 {
        s.lines()
            .filter_map(|l| l.trim_start_matches('│').trim().strip_prefix("tick-"))
            .filter_map(|n| n.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .max()
            .unwrap_or(0)
    };
    let s = tmux.wait_screen("LIVE", 30, |s| status(s).contains("LIVE"));
    let first = tick(&s);
    tmux.wait_screen("newer output", 30, |s| tick(s) > first + 5);
    // Seek back, then G snaps to the live edge again.
    tmux.keys(&["g"]);
    tmux.wait_screen("the start", 20, |s| tick(s) <= 2);
    tmux.keys(&["G"]);
    tmux.wait_screen("the live edge", 20, |s| tick(s) > first + 5);
    tmux.keys(&["q"]);
    assert_restored(&tmux);
    let _ = recorder.kill();
    let _ = recorder.wait();
}

#[test]
fn library_filters_plays_and_returns() {
    if !require_tmux("library_filters_plays_and_returns") {
        return;
    }
    let env = TestEnv::new();
    let lib = env.path("spool");
    std::fs::create_dir_all(&lib).unwrap();
    for (name, word) in [("aaaa", "first-session"), ("bbbb", "second-session")] {
        let out = lib.join(format!("{name}.cast.zst"));
        let o = env.record(&out, &[], &["sh", "-c", &format!("echo {word}")]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let line = format!(
        "{} play --trusted {} {}",
        sh_quote(&common::bin()),
        sh_quote(&env.allowed_signers),
        sh_quote(&lib)
    );
    let tmux = pane(&env, &line, 120, 20);
    // Both rows, verified in the background.
    tmux.wait_screen("two verified rows", 20, |s| {
        s.contains("(2 of 2 recordings)") && s.matches(" OK").count() == 2
    });
    tmux.type_text("bbbb");
    tmux.wait_screen("the filter", 20, |s| s.contains("(1 of 2 recordings)"));
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the player", 20, |s| on_screen(s, "second-session"));
    tmux.keys(&["q"]);
    tmux.wait_screen("the library again", 20, |s| {
        s.contains("(1 of 2 recordings)")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_screen("the filter cleared", 20, |s| {
        s.contains("(2 of 2 recordings)")
    });
    tmux.keys(&["Escape"]);
    assert_restored(&tmux);
}
