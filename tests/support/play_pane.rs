//! The player in a tmux pane, for the end-to-end tests of `sealcast play` (play_tui,
//! play_s3): start `sealcast play …` in a detached pane, read its status line and the
//! recorded screen, check the terminal is restored after it exits. Included with
//! `#[path = "support/play_pane.rs"] mod play_pane;` next to `mod common` and `mod tmux`.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::TestEnv;
use crate::tmux::{tmux_available, Tmux};

/// `p` quoted for `sh`.
pub fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// True when tmux is installed; otherwise with `CI` set it panics, else it prints why `name`
/// is skipped.
pub fn require_tmux(name: &str) -> bool {
    if tmux_available() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tmux is not installed, and CI is set: {name} must run in CI"
    );
    eprintln!("SKIPPED {name}: tmux is not installed");
    false
}

/// A tmux pane running `sh -c '<line>; echo EXIT=$?; <keep the pane>'` in `env`.
pub fn pane(env: &TestEnv, line: &str, w: u16, h: u16) -> Tmux {
    pane_with(env, line, w, h, |c| c)
}

/// [`pane`], with `more` adding to the environment of the tmux server (and so of the pane):
/// e.g. the S3 test credentials (`s3_support::aws_env`).
pub fn pane_with(
    env: &TestEnv,
    line: &str,
    w: u16,
    h: u16,
    more: impl FnOnce(&mut Command) -> &mut Command,
) -> Tmux {
    // A server of its own per pane: a new server on the socket of one just killed can meet
    // it still exiting ("server exited unexpectedly").
    static PANES: AtomicUsize = AtomicUsize::new(0);
    let n = PANES.fetch_add(1, Ordering::SeqCst);
    let tmux = Tmux {
        socket: env.path(&format!("tmux-{n}.sock")),
        session: "play".into(),
    };
    let script = format!("{line}; echo EXIT=$?; stty -a | grep -o -- '-\\?icanon'; exec sleep 600");
    let mut cmd = tmux.cmd();
    more(&mut cmd);
    let o = cmd
        .args([
            "new-session",
            "-d",
            "-s",
            "play",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
        ])
        .arg("-c")
        .arg(env.dir.path())
        .arg(script)
        .env("HOME", &env.home)
        .env("XDG_DATA_HOME", &env.xdg_data)
        .env("TERM", "xterm-256color")
        .env_remove("SEALCAST_SESSION")
        .output()
        .expect("start tmux");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    tmux
}

/// True when a row of the recorded screen (inside the box) is `text`.
pub fn on_screen(screen: &str, text: &str) -> bool {
    screen.lines().any(|l| {
        l.strip_prefix('│')
            .is_some_and(|r| r.trim_end().starts_with(text))
    })
}

/// The status line (the last non-empty line).
pub fn status(screen: &str) -> String {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// After the player exits: not on the alternate screen, the cursor shown, the tty cooked.
pub fn assert_restored(tmux: &Tmux) {
    let s = tmux.wait_screen("the player's exit", 20, |s| s.contains("EXIT="));
    tmux.wait_screen("stty output", 20, |s| s.contains("icanon"));
    let s2 = tmux.screen();
    assert!(
        s2.lines().any(|l| l.trim() == "icanon"),
        "terminal left in raw mode:\n{s2}"
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "still on the alternate screen:\n{s}"
    );
    assert_eq!(tmux.display("#{cursor_flag}"), "1", "cursor hidden:\n{s}");
}
