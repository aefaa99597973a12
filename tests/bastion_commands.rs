//! Command-level metadata through the real bastion (SPEC §2.4): sealcast-shell as the login
//! shell and ForceCommand of a private sshd (tests/bastion/harness.rs) starts bash and zsh
//! with hooks for interactive sessions and observes exec sessions through their process tree;
//! `sealcast commands` reads the recordings back. The recorder runs as the service user, the
//! session as the test user: the proc source reads another user's `/proc`.
//!
//! Needs root and OpenSSH (and zsh for its part); skipped with a message otherwise, unless
//! `CI` is set.

mod bastion;
mod common;

use std::path::Path;

use bastion::harness::{code, require, run, Bastion, PtyClient};
use serde_json::{json, Value};

/// Output imitating the marks: one without a nonce, one with a wrong one.
const FORGED: &[u8] =
    b"\x1b]133;C;cmd=rm -rf /\x07\x1b]133;D;0;sealcast=00000000000000000000000000000000\x07\n";

/// An interactive `ssh -tt` session driven line by line; each step waits for a marker the
/// shell computes, so the next line is typed at a prompt.
struct Interactive {
    c: PtyClient,
    n: u32,
}

impl Interactive {
    fn start(b: &Bastion) -> Interactive {
        let mut argv = b.ssh_argv();
        argv.extend(["-tt".to_string(), b.destination()]);
        let mut s = Interactive {
            c: PtyClient::spawn(&argv, 120, 40),
            n: 0,
        };
        s.step(":");
        s
    }

    /// Type `line`, then a marker line, and wait for the marker's output.
    fn step(&mut self, line: &str) {
        self.n += 1;
        let n = self.n;
        self.c.send(&format!("{line}\r"));
        self.c.send(&format!("echo mark-{n}-$((1+1))\r"));
        self.c.expect(&format!("mark-{n}-2"), 30);
    }

    /// Run a sleep until it has lived long enough to be sampled, then Ctrl-C it.
    fn interrupt(&mut self, seconds: &str) {
        self.c.send(&format!("sleep {seconds}\r"));
        let pid = common::wait_process(&["sleep", seconds]);
        common::wait_process_age(pid, 600);
        self.c.send("\x03");
        self.step(":");
    }
}

fn row<'a>(r: &'a Value, cmd: &str) -> &'a Value {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["source"] == "shell" && row["cmd"] == cmd)
        .unwrap_or_else(|| panic!("no row {cmd:?} in {:#}", r["rows"]))
}

fn processes(row: &Value) -> Vec<&Value> {
    row["processes"].as_array().unwrap().iter().collect()
}

/// The checks both shells share.
fn check_shell_session(b: &Bastion, r: &Value, shell: &str) {
    assert_eq!(r["sources"]["shell_hooks"], shell, "{r:#}");
    assert_eq!(row(r, "seq 3 | wc -l")["exit"], 0);
    assert_eq!(row(r, "false | true")["pipestatus"], json!([1, 0]));
    assert_eq!(row(r, "pwd")["cwd"], "/tmp", "cwd follows cd");
    assert_eq!(row(r, "false")["exit"], 1);
    let slept = row(r, "sleep 0.8");
    assert!(
        processes(slept)
            .iter()
            .any(|p| p["argv"] == json!(["sleep", "0.8"]) && p["uid"] == b.uid),
        "{slept:#}"
    );
    let c = row(
        r,
        &format!("sleep {}", if shell == "bash" { "34.5" } else { "35.5" }),
    );
    assert_eq!(c["exit"], 130, "{c:#}");
    assert!(!processes(c).is_empty(), "{c:#}");
    assert!(
        !r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["cmd"] == "rm -rf /"),
        "a forged mark became a command"
    );
    let kinds: Vec<&Value> = r["disagreements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["kind"])
        .collect();
    assert_eq!(kinds, [&json!("ignored_marks")], "{:#}", r["disagreements"]);
}

#[test]
fn bash_and_zsh_sessions_and_exec_sessions_list_their_commands() {
    if !require("bash_and_zsh_sessions_and_exec_sessions_list_their_commands") {
        return;
    }
    let b = Bastion::start();
    b.write_user_file(".bashrc", b"PS1='$ '\nMYVAR=from-bashrc\n", 0o644);
    b.write_user_file("forged.txt", FORGED, 0o644);

    // bash, the configured shell.
    let before = b.recordings();
    let mut s = Interactive::start(&b);
    s.c.send("echo v=$MYVAR-$((1+1))\r");
    s.c.expect("v=from-bashrc-2", 30);
    for line in [
        "seq 3 | wc -l",
        "false | true",
        "cd /tmp",
        "pwd",
        "false",
        "sleep 0.8",
    ] {
        s.step(line);
    }
    s.interrupt("34.5");
    s.step("cat ~/forged.txt");
    s.c.send("exit 3\r");
    assert_eq!(s.c.wait(30), 3, "{}", s.c.text());
    let rec = b.wait_new_recording(&before, 30);
    b.assert_verifies(&rec);
    check_shell_session(&b, &b.commands(&rec), "bash");

    // zsh.
    if Path::new("/usr/bin/zsh").exists() {
        b.set_config("shell", "\"/usr/bin/zsh\"");
        b.write_user_file(".zshrc", b"PROMPT='$ '\nMYVAR=from-zshrc\n", 0o644);
        let before = b.recordings();
        let mut s = Interactive::start(&b);
        s.c.send("echo v=$MYVAR-$((1+1))\r");
        s.c.expect("v=from-zshrc-2", 30);
        for line in [
            "seq 3 | wc -l",
            "false | true",
            "cd /tmp",
            "pwd",
            "false",
            "sleep 0.8",
        ] {
            s.step(line);
        }
        s.interrupt("35.5");
        s.step("cat ~/forged.txt");
        s.c.send("exit 4\r");
        assert_eq!(s.c.wait(30), 4, "{}", s.c.text());
        let rec = b.wait_new_recording(&before, 30);
        b.assert_verifies(&rec);
        check_shell_session(&b, &b.commands(&rec), "zsh");
        b.set_config("shell", "\"/bin/bash\"");
    } else if std::env::var_os("CI").is_some() {
        panic!("zsh is not installed, and CI is set");
    } else {
        eprintln!("zsh not installed: its bastion session is skipped");
    }

    // An exec session: no terminal, no hooks; its processes through the child's tree.
    let before = b.recordings();
    let o = run(&mut b.ssh(&["sleep 0.6; sleep 0.7 | cat; exit 5"]), b"", 60);
    assert_eq!(code(&o.status), 5, "{}", String::from_utf8_lossy(&o.stderr));
    let rec = b.wait_new_recording(&before, 30);
    b.assert_verifies(&rec);
    let r = b.commands(&rec);
    assert!(r["sources"]["shell_hooks"].is_null(), "{r:#}");
    assert!(r["sources"]["proc_root"].is_i64());
    let seen: Vec<&Value> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(processes)
        .collect();
    for want in [json!(["sleep", "0.6"]), json!(["sleep", "0.7"])] {
        assert!(
            seen.iter().any(|p| p["argv"] == want && p["uid"] == b.uid),
            "{want} not in {r:#}"
        );
    }
    assert_eq!(r["disagreements"], json!([]));
    b.assert_all_verify(&[]);
}
