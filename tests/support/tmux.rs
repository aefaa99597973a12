//! A private tmux server for end-to-end tests of programs that need a real terminal: start a
//! session, type keys, read the screen, wait on a condition (never a fixed sleep).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::wait_until;

/// A private tmux server (own socket, no config) with one session; killed on drop.
pub struct Tmux {
    /// The server's socket.
    pub socket: PathBuf,
    /// The session name.
    pub session: String,
}

impl Tmux {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        c.env_remove("TMUX");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let o = self.cmd().args(args).output().expect("run tmux");
        assert!(
            o.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// Type `text` literally.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", &self.session, "-l", text]);
    }

    /// Press named keys (`Enter`, `Escape`, `q`…).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// The visible pane, one string per line.
    pub fn screen(&self) -> String {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("run tmux capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The visible pane with its colours and attributes as escape sequences, wrapped lines
    /// joined (`capture-pane -p -e -J`).
    pub fn screen_escaped(&self) -> String {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-e", "-J", "-t", &self.session])
            .output()
            .expect("run tmux capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A tmux format expanded for the pane (`display-message -p`), e.g. `#{alternate_on}`.
    pub fn display(&self, format: &str) -> String {
        let o = self.run(&["display-message", "-p", "-t", &self.session, format]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Wait until the screen satisfies `pred`; panic with the screen after `secs`.
    pub fn wait_screen(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(secs), || {
            last = self.screen();
            pred(&last)
        });
        assert!(ok, "timed out waiting for {what}; screen:\n{last}");
        last
    }

    /// Run a shell command line and wait for a marker echoed after it, so the next step
    /// starts at a fresh prompt.
    pub fn shell(&self, line: &str, marker: &str) {
        self.type_text(line);
        self.keys(&["Enter"]);
        self.type_text(&format!("echo {marker}-$((1+1))"));
        self.keys(&["Enter"]);
        let want = format!("{marker}-2");
        self.wait_screen(&want, 20, |s| s.lines().any(|l| l.trim_end() == want));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
