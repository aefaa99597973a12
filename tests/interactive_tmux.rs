//! A real interactive bash session recorded by `sealcast record` inside tmux: typed commands,
//! `less`, `vim`, `exit`. The recorder's terminal is a tmux pane, so raw mode, the relay to
//! the live screen and the PTY size all go through a real terminal.
//!
//! Skipped (with a message) when tmux is not installed, unless `CI` is set: then it fails.

mod common;
#[path = "support/tmux.rs"]
mod tmux;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{contains, events, exit_event, header, stream, verify_file, wait_until, TestEnv};
use sealcast_reader::Status;
use tmux::{tmux_available, Tmux};

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn interactive_bash_with_less_and_vim() {
    if !tmux_available() {
        if std::env::var_os("CI").is_some() {
            panic!("tmux is not installed, and CI is set: this test must run in CI");
        }
        eprintln!("SKIPPED interactive_bash_with_less_and_vim: tmux is not installed");
        return;
    }
    let env = TestEnv::new();
    let out = env.path("interactive.cast.zst");
    let notes = env.path("notes.txt");
    let typed = env.path("typed.txt");
    let notes_text: String = (1..=200).map(|i| format!("note line {i}\n")).collect();
    fs::write(&notes, notes_text).unwrap();

    let tmux = Tmux {
        socket: env.path("tmux.sock"),
        session: "sealcast-test".into(),
    };
    let command = format!(
        "{} record --out {} --key {} -- bash --norc -i",
        sh_quote(&common::bin()),
        sh_quote(&out),
        sh_quote(&env.key)
    );
    let mut start = tmux.cmd();
    start
        .args([
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            "100",
            "-y",
            "30",
        ])
        .arg("-c")
        .arg(env.dir.path())
        .arg(&command)
        .env("HOME", &env.home)
        .env("XDG_DATA_HOME", &env.xdg_data)
        .env("PS1", "$ ")
        .env("SHELL", "/bin/sh")
        .env_remove("SEALCAST_SESSION")
        .env_remove("LESS")
        .env_remove("LESSOPEN")
        .env_remove("VIMINIT")
        .env_remove("PROMPT_COMMAND");
    let o = start.output().expect("start tmux");
    assert!(
        o.status.success(),
        "tmux new-session failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The prompt, then a command whose output only exists if the shell evaluated it.
    tmux.wait_screen("the prompt", 20, |s| s.lines().any(|l| l.starts_with("$")));
    tmux.type_text("echo hi-$((6*7))");
    tmux.keys(&["Enter"]);
    let live = tmux.wait_screen("hi-42", 20, |s| s.lines().any(|l| l.trim_end() == "hi-42"));
    assert!(live.contains("echo hi-$((6*7))"), "{live}");

    // A pager: full-screen, then q.
    tmux.type_text(&format!("less {}", sh_quote(&notes)));
    tmux.keys(&["Enter"]);
    tmux.wait_screen("less showing the file", 20, |s| {
        s.contains("note line 1") && s.contains("note line 20")
    });
    tmux.keys(&["q"]);
    tmux.shell("true", "after-less");

    // An editor: insert text, leave insert mode, write and quit.
    // `-N -c 'set showmode'`: the mode is on screen, so the test waits for vim to leave
    // insert mode (it takes a lone Escape only after its key-code timeout) instead of
    // sleeping.
    tmux.type_text(&format!(
        "vim -u NONE -N -c 'set showmode' {}",
        sh_quote(&typed)
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_screen("vim", 20, |s| s.contains("typed.txt"));
    tmux.keys(&["i"]);
    tmux.type_text("typed in vim 123");
    tmux.wait_screen("vim insert mode", 20, |s| {
        s.contains("-- INSERT --") && s.contains("typed in vim 123")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_screen("vim normal mode", 20, |s| !s.contains("-- INSERT --"));
    tmux.type_text(":wq");
    tmux.keys(&["Enter"]);
    tmux.shell("true", "after-vim");

    tmux.type_text("exit");
    tmux.keys(&["Enter"]);
    let receipt = common::receipt_path(&out);
    assert!(
        wait_until(Duration::from_secs(30), || receipt.is_file()),
        "no seal receipt after exit; screen:\n{}",
        tmux.screen()
    );

    let report = verify_file(&out, &env.trust());
    assert_eq!(report.status, Status::Ok, "{report:?}");
    let ev = events(&out);
    let recorded = stream(&ev, "o");
    assert!(contains(&recorded, b"hi-42"), "hi-42 not recorded");
    assert!(
        contains(&recorded, b"note line 1"),
        "less output not recorded"
    );
    assert!(
        contains(&recorded, b"typed in vim 123"),
        "vim output not recorded"
    );
    assert_eq!(exit_event(&ev).as_deref(), Some("0"));
    let h = header(&out);
    assert_eq!((h.term.cols, h.term.rows), (100, 30));
    assert!(!h.sealcast.unwrap().capture_input);
    assert!(
        stream(&ev, "i").is_empty(),
        "input recorded without --capture-input"
    );

    let written = fs::read_to_string(&typed).expect("vim wrote the file");
    assert_eq!(written, "typed in vim 123\n");
}
