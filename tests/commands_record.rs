//! Command-level metadata end to end (SPEC §2.4): bash and zsh recorded by `sealcast record`
//! inside tmux (a real terminal, real PTYs, the real hooks and `/proc`), then read back with
//! `sealcast commands --json` and `sealcast info`. Each step waits on what the shell printed
//! (a marker the shell computes), never on a fixed sleep.
//!
//! Skipped (with a message) when tmux, bash, zsh or dash is missing, unless `CI` is set.

mod common;
#[path = "support/tmux.rs"]
mod tmux;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{verify_file, wait_until, TestEnv};
use serde_json::Value;
use tmux::{tmux_available, Tmux};

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Whether the programs a test needs are installed; without them the test is skipped (or
/// fails under CI).
fn have(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            p.is_empty()
                || !["/usr/bin", "/bin"]
                    .iter()
                    .any(|d| Path::new(d).join(p).exists())
        })
        .collect();
    if !tmux_available() {
        return skip(test, "tmux");
    }
    match missing.first() {
        None => true,
        Some(p) => skip(test, p),
    }
}

fn skip(test: &str, what: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is not installed, and CI is set: {test} must run");
    }
    eprintln!("SKIPPED {test}: {what} is not installed");
    false
}

/// A `sealcast record` session in a private tmux server.
struct Session {
    // Declared (so dropped) before `env`: its server's socket lives in env's directory, and
    // `kill-server` must reach it before the directory is removed, also when a test panics.
    tmux: Tmux,
    env: TestEnv,
    out: PathBuf,
    n: u32,
}

impl Session {
    /// Start `sealcast record --out … -- <argv>` in tmux with `HOME` holding `files`.
    fn start(argv: &[&str], files: &[(&str, &str)]) -> Session {
        let env = TestEnv::new();
        for (name, content) in files {
            fs::write(env.home.join(name), content).unwrap();
        }
        let out = env.path("session.cast.zst");
        let tmux = Tmux {
            socket: env.path("tmux.sock"),
            session: "sealcast-cmds".into(),
        };
        let command = format!(
            "{} record --out {} --key {} -- {}",
            sh_quote(&common::bin()),
            sh_quote(&out),
            sh_quote(&env.key),
            argv.join(" ")
        );
        let o = tmux
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                &tmux.session,
                "-x",
                "160",
                "-y",
                "50",
            ])
            .arg("-c")
            .arg(&env.home)
            .arg(&command)
            .env_clear()
            .env("HOME", &env.home)
            .env("XDG_DATA_HOME", &env.xdg_data)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LANG", "C.UTF-8")
            .env("SHELL", "/bin/sh")
            .env("USER", "root")
            .output()
            .expect("start tmux");
        assert!(
            o.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = Session {
            env,
            tmux,
            out,
            n: 0,
        };
        s.line("echo started-$((40+2))", "started-42");
        s
    }

    /// Type `line` and Enter, then wait until a screen line is exactly `want`.
    fn line(&self, line: &str, want: &str) {
        self.tmux.type_text(line);
        self.tmux.keys(&["Enter"]);
        self.wait_line(want);
    }

    /// Wait for a screen line that is `want`, alone or after a prompt (`$ `, `# `): a shell
    /// that reads type-ahead without echoing it again (dash) prints its output right after
    /// the prompt.
    fn wait_line(&self, want: &str) {
        self.tmux.wait_screen(want, 30, |s| {
            s.lines().any(|l| {
                let l = l.trim_end();
                l == want
                    || l.strip_suffix(want)
                        .is_some_and(|p| p.ends_with("$ ") || p.ends_with("# "))
            })
        });
    }

    /// Type `line` and Enter, then wait for the shell to be back at a prompt (a marker echoed
    /// by a second command that the shell only reads once `line` is done).
    fn run(&mut self, line: &str) {
        self.n += 1;
        self.tmux.type_text(line);
        self.tmux.keys(&["Enter"]);
        let n = self.n;
        self.line(&format!("echo done-{n}-$((1+1))"), &format!("done-{n}-2"));
    }

    /// Type `exit` (or `line`) and wait for the recording to be sealed (its receipt).
    fn end(&self, line: &str) {
        self.tmux.type_text(line);
        self.tmux.keys(&["Enter"]);
        let receipt = common::receipt_path(&self.out);
        assert!(
            wait_until(Duration::from_secs(30), || receipt.exists()),
            "the recording was not sealed; screen:\n{}",
            self.tmux.screen()
        );
    }

    fn sealcast(&self, args: &[&str]) -> (i32, String, String) {
        let o = self
            .env
            .command()
            .args(args)
            .arg("--trusted")
            .arg(&self.env.allowed_signers)
            .arg(&self.out)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// `sealcast commands --json`, after checking the recording verifies.
    fn report(&self) -> Report {
        let v = verify_file(&self.out, &self.env.trust());
        assert_eq!(v.status, sealcast_reader::Status::Ok, "{v:?}");
        // The text report, for whoever reads a failure.
        eprintln!("{}", self.sealcast(&["commands"]).1);
        let (code, out, err) = self.sealcast(&["commands", "--json"]);
        assert_eq!(code, 0, "{err}");
        Report(serde_json::from_str(&out).unwrap())
    }
}

/// The JSON of `sealcast commands --json`.
struct Report(Value);

impl Report {
    fn rows(&self) -> &Vec<Value> {
        self.0["rows"].as_array().unwrap()
    }

    fn shell_rows(&self) -> Vec<&Value> {
        self.rows()
            .iter()
            .filter(|r| r["source"] == "shell")
            .collect()
    }

    /// The shell row whose command line is `cmd`.
    fn row(&self, cmd: &str) -> &Value {
        self.rows()
            .iter()
            .find(|r| r["source"] == "shell" && r["cmd"] == cmd)
            .unwrap_or_else(|| panic!("no row {cmd:?} in {:#}", self.0["rows"]))
    }

    fn row_starting(&self, prefix: &str) -> &Value {
        self.rows()
            .iter()
            .find(|r| r["cmd"].as_str().is_some_and(|c| c.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no row starting {prefix:?} in {:#}", self.0["rows"]))
    }

    fn disagreements(&self, kind: &str) -> Vec<&Value> {
        self.0["disagreements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == kind)
            .collect()
    }
}

/// The argv of each process of a row.
fn argvs(row: &Value) -> Vec<Vec<String>> {
    row["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn has_process(row: &Value, argv: &[&str]) -> bool {
    argvs(row).iter().any(|a| a == argv)
}

/// A file whose contents imitate the hooks' marks: one without a nonce, one with a wrong one.
const FORGED: &str = "before\n\x1b]133;C;cmd=rm -rf /\x07\x1b]133;D;0;sealcast=00000000000000000000000000000000\x07after\n";

const BASHRC: &str = r#"PS1='$ '
MYVAR=from-bashrc
PROMPT_COMMAND='__pc=$((__pc+1))'
"#;

#[test]
fn bash_commands_processes_and_disagreements() {
    if !have(
        "bash_commands_processes_and_disagreements",
        &["bash", "dash", "vim", "su"],
    ) {
        return;
    }
    let mut s = Session::start(&["bash"], &[(".bashrc", BASHRC), ("forged.txt", FORGED)]);
    // The user's .bashrc ran, and the PROMPT_COMMAND it set keeps running with the hooks.
    s.line("echo v=$MYVAR", "v=from-bashrc");
    s.line("echo pc=$((__pc > 1))", "pc=1");
    s.run("seq 3 | wc -l");
    s.run("(sleep 0.6; exit 3)");
    s.run("cd /tmp");
    s.run("pwd");
    s.run("false");
    // Multi-line commands: a loop and a here-document.
    s.tmux.type_text("for i in 1 2; do");
    s.tmux.keys(&["Enter"]);
    s.tmux.type_text("echo loop-$((i*10))");
    s.tmux.keys(&["Enter"]);
    s.tmux.type_text("done");
    s.tmux.keys(&["Enter"]);
    s.wait_line("loop-20");
    s.tmux.type_text("cat <<EOF");
    s.tmux.keys(&["Enter"]);
    s.tmux.type_text("doc-$((5*5))");
    s.tmux.keys(&["Enter"]);
    s.tmux.type_text("EOF");
    s.tmux.keys(&["Enter"]);
    s.wait_line("doc-25");
    // Ctrl-C on a running command.
    s.tmux.type_text("sleep 31.5");
    s.tmux.keys(&["Enter"]);
    let pid = common::wait_process(&["sleep", "31.5"]);
    common::wait_process_age(pid, 600);
    s.tmux.keys(&["C-c"]);
    s.run("true");
    // A background job.
    s.run("sleep 1.2 &");
    // A full-screen program.
    s.tmux.type_text("vim -u NONE -N notes.txt");
    s.tmux.keys(&["Enter"]);
    s.tmux
        .wait_screen("vim", 30, |sc| sc.contains("\"notes.txt\" [New]"));
    let pid = common::wait_process(&["vim", "-u", "NONE", "-N", "notes.txt"]);
    common::wait_process_age(pid, 600);
    s.tmux.type_text(":q!");
    s.tmux.keys(&["Enter"]);
    s.run(":");
    // Output imitating the marks.
    s.run("cat ~/forged.txt");
    // Nested shells: another user's, and one without hooks.
    s.tmux.type_text("su -s /bin/bash nobody");
    s.tmux.keys(&["Enter"]);
    s.line("echo who-$(id -un)", "who-nobody");
    s.line("sleep 0.6; echo slept-$((2*3))", "slept-6");
    s.tmux.type_text("exit");
    s.tmux.keys(&["Enter"]);
    s.run(":");
    s.tmux.type_text("dash");
    s.tmux.keys(&["Enter"]);
    // dash reads type-ahead without echoing it again: wait for its own prompt (root's `#`)
    // so that the output lands on a line of its own.
    s.wait_line("#");
    s.line("sleep 0.7; echo dash-$((3*3))", "dash-9");
    s.tmux.type_text("exit");
    s.tmux.keys(&["Enter"]);
    s.run(":");
    // `exec bash`: a bash without hooks replaces the shell; what runs next is unclaimed.
    s.tmux.type_text("exec bash");
    s.tmux.keys(&["Enter"]);
    s.line("echo replaced-$((7*7))", "replaced-49");
    s.line("sleep 0.8; echo after-$((8*8))", "after-64");
    s.end("exit 4");

    let r = s.report();
    assert_eq!(r.0["sources"]["shell_hooks"], "bash");
    assert!(r.0["sources"]["proc_root"].as_i64().is_some());
    let pipeline = r.row("seq 3 | wc -l");
    assert_eq!(
        (pipeline["exit"].as_i64(), &pipeline["pipestatus"]),
        (Some(0), &serde_json::json!([0, 0]))
    );
    let sub = r.row("(sleep 0.6; exit 3)");
    assert_eq!(sub["exit"], 3);
    assert_eq!(
        sub["late"], true,
        "a line starting with a subshell is claimed late"
    );
    assert!(has_process(sub, &["sleep", "0.6"]), "{sub:#}");
    assert_eq!(r.row("cd /tmp")["exit"], 0);
    assert_eq!(r.row("pwd")["cwd"], "/tmp", "cwd follows cd");
    assert_eq!(r.row("false")["exit"], 1);
    let lp = r.row_starting("for i in 1 2; do");
    assert!(lp["cmd"].as_str().unwrap().contains("done"), "{lp:#}");
    assert_eq!(lp["exit"], 0);
    assert!(r.row_starting("cat <<EOF")["cmd"]
        .as_str()
        .unwrap()
        .contains("doc-"));
    let ctrl_c = r.row("sleep 31.5");
    assert_eq!(ctrl_c["exit"], 130);
    assert!(has_process(ctrl_c, &["sleep", "31.5"]), "{ctrl_c:#}");
    assert!(has_process(r.row("sleep 1.2 &"), &["sleep", "1.2"]));
    let vim = r.row("vim -u NONE -N notes.txt");
    assert_eq!(vim["exit"], 0);
    assert!(
        has_process(vim, &["vim", "-u", "NONE", "-N", "notes.txt"]),
        "{vim:#}"
    );
    // su: the proc source sees the nested shell and its command, as the other user.
    let su = r.row("su -s /bin/bash nobody");
    let nobody = fs::metadata("/proc/self").map(|_| 65534).unwrap_or(65534);
    let as_nobody: Vec<&Value> = su["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["uid"] == nobody)
        .collect();
    assert!(
        as_nobody
            .iter()
            .any(|p| p["argv"] == serde_json::json!(["sleep", "0.6"])),
        "{su:#}"
    );
    assert!(has_process(r.row("dash"), &["sleep", "0.7"]));
    // The forged marks made no command, and were reported.
    assert!(
        !r.rows().iter().any(|row| row["cmd"] == "rm -rf /"),
        "a forged mark became a command"
    );
    let ignored = r.disagreements("ignored_marks");
    assert_eq!(ignored.len(), 1, "{:#}", r.0["disagreements"]);
    assert_eq!(
        (
            ignored[0]["marks"].as_u64(),
            ignored[0]["bad_nonce"].as_u64()
        ),
        (Some(2), Some(1))
    );
    // exec bash: the hooks fell silent while processes kept running.
    let silent = r.disagreements("hooks_silent");
    assert_eq!(silent.len(), 1, "{:#}", r.0["disagreements"]);
    let replaced = &silent[0]["shell_replaced"];
    assert_eq!(replaced[1], serde_json::json!(["bash"]), "{:#}", silent[0]);
    assert!(
        r.rows()
            .iter()
            .any(|row| row["source"] == "proc" && has_process(row, &["sleep", "0.8"])),
        "{:#}",
        r.0["rows"]
    );
    // info counts them.
    let (code, info, err) = s.sealcast(&["info"]);
    assert_eq!(code, 0, "{err}");
    let claimed = r.shell_rows().len();
    assert!(
        info.contains(&format!("commands:     {claimed} claimed, 2 disagreements")),
        "{info}"
    );
    // The text report says the same, with its times.
    let (code, text, err) = s.sealcast(&["commands"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("hooks silent"), "{text}");
    assert!(text.contains("sleep 31.5"), "{text}");
    asciinema_accepts(&s.env, &s.out);
}

/// asciinema 3 converts and plays the recording (when it is installed).
fn asciinema_accepts(env: &TestEnv, zst: &Path) {
    let bin = [
        "/root/.cargo/bin/asciinema",
        "/usr/local/bin/asciinema",
        "/usr/bin/asciinema",
    ]
    .iter()
    .map(PathBuf::from)
    .chain(std::env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin/asciinema")))
    .find(|p| p.exists());
    let Some(bin) = bin else {
        eprintln!(
            "asciinema not installed: skipping its check (tests/asciinema_compat.rs installs it)"
        );
        return;
    };
    let cast = env.path("session.cast");
    let z = Command::new("zstd").arg("-dc").arg(zst).output().unwrap();
    fs::write(&cast, &z.stdout).unwrap();
    for format in ["asciicast-v3", "asciicast-v2", "txt"] {
        let o = Command::new(&bin)
            .args(["convert", "-f", format])
            .arg(&cast)
            .arg("-")
            .env("HOME", env.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "asciinema convert -f {format}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if format == "asciicast-v3" {
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                out.contains(", \"c\", ") && out.contains(", \"p\", "),
                "{format}"
            );
        }
    }
}

const ZSHRC: &str = r#"PROMPT='$ '
MYVAR=from-zshrc
precmd() { __pc=$((__pc+1)) }
"#;

#[test]
fn zsh_commands_processes_and_disagreements() {
    if !have("zsh_commands_processes_and_disagreements", &["zsh"]) {
        return;
    }
    let mut s = Session::start(&["zsh"], &[(".zshrc", ZSHRC), ("forged.txt", FORGED)]);
    // The user's .zshrc ran (hooks restored ZDOTDIR first), and its precmd keeps running.
    s.line("echo v=$MYVAR z=${ZDOTDIR:-unset}", "v=from-zshrc z=unset");
    s.line("echo pc=$((__pc > 1))", "pc=1");
    s.run("seq 3 | wc -l");
    s.run("false | true");
    s.run("cd /tmp");
    s.run("pwd");
    s.run("false");
    s.tmux.type_text("for i in 1 2; do");
    s.tmux.keys(&["Enter"]);
    s.tmux.type_text("echo zloop-$((i*10))");
    s.tmux.keys(&["Enter"]);
    s.tmux.type_text("done");
    s.tmux.keys(&["Enter"]);
    s.wait_line("zloop-20");
    s.tmux.type_text("sleep 32.5");
    s.tmux.keys(&["Enter"]);
    let pid = common::wait_process(&["sleep", "32.5"]);
    common::wait_process_age(pid, 600);
    s.tmux.keys(&["C-c"]);
    s.run("true");
    s.run("sleep 1.3 &");
    s.run("cat ~/forged.txt");
    // zsh will not exit while a job runs.
    s.run("wait");
    s.end("exit 5");

    let r = s.report();
    assert_eq!(r.0["sources"]["shell_hooks"], "zsh");
    let pipeline = r.row("seq 3 | wc -l");
    assert_eq!(pipeline["exit"], 0);
    assert_eq!(
        r.row("false | true")["pipestatus"],
        serde_json::json!([1, 0])
    );
    assert_eq!(r.row("pwd")["cwd"], "/tmp");
    assert_eq!(r.row("false")["exit"], 1);
    let lp = r.row_starting("for i in 1 2; do");
    assert!(lp["cmd"].as_str().unwrap().contains("done"), "{lp:#}");
    let ctrl_c = r.row("sleep 32.5");
    assert_eq!(ctrl_c["exit"], 130);
    assert!(has_process(ctrl_c, &["sleep", "32.5"]), "{ctrl_c:#}");
    assert!(has_process(r.row("sleep 1.3 &"), &["sleep", "1.3"]));
    assert!(!r.rows().iter().any(|row| row["cmd"] == "rm -rf /"));
    let ignored = r.disagreements("ignored_marks");
    assert_eq!(ignored.len(), 1, "{:#}", r.0["disagreements"]);
    assert_eq!(
        r.0["disagreements"].as_array().unwrap().len(),
        1,
        "{:#}",
        r.0["disagreements"]
    );
}

/// The user switches the hooks off mid-session: first the prompt hook (`unset
/// PROMPT_COMMAND`: no more exit statuses), then the shell (`exec sh`: no more claims while
/// processes keep running). `sealcast commands` reports both, with their times.
#[test]
fn bash_hooks_switched_off_mid_session_are_reported() {
    if !have(
        "bash_hooks_switched_off_mid_session_are_reported",
        &["bash"],
    ) {
        return;
    }
    let mut s = Session::start(&["bash"], &[(".bashrc", "PS1='$ '\n")]);
    s.run("true");
    s.run("unset PROMPT_COMMAND");
    s.run("sleep 0.6");
    s.tmux.type_text("exec sh");
    s.tmux.keys(&["Enter"]);
    s.line("sleep 0.7; echo in-sh-$((4*4))", "in-sh-16");
    s.end("exit");

    let r = s.report();
    let unset = r.row("unset PROMPT_COMMAND");
    let prompt = r.disagreements("prompt_silent");
    assert_eq!(prompt.len(), 1, "{:#}", r.0["disagreements"]);
    assert_eq!(prompt[0]["since_us"], unset["t_us"]);
    assert_eq!(prompt[0]["ids"][0], unset["id"]);
    assert_eq!(r.row("true")["exit"], 0, "before the unset: statuses");
    let silent = r.disagreements("hooks_silent");
    assert_eq!(silent.len(), 1, "{:#}", r.0["disagreements"]);
    assert_eq!(silent[0]["since_us"], r.row("exec sh")["t_us"]);
    assert_eq!(silent[0]["shell_replaced"][1], serde_json::json!(["sh"]));
    let (_, text, _) = s.sealcast(&["commands"]);
    assert!(
        text.contains("prompt hook fell silent from command"),
        "{text}"
    );
    assert!(text.contains("shell hooks silent since"), "{text}");
}

/// A shell sealcast has no hooks for (dash): the proc source alone, no disagreement (without
/// a `hooks` event nobody expected claims).
#[test]
fn dash_has_the_proc_source_only() {
    if !have("dash_has_the_proc_source_only", &["dash"]) {
        return;
    }
    let s = Session::start(&["dash"], &[]);
    s.line("sleep 0.6; echo dash-$((6*6))", "dash-36");
    s.end("exit 2");
    let r = s.report();
    assert!(r.0["sources"]["shell_hooks"].is_null(), "{:#}", r.0);
    assert!(r.shell_rows().is_empty());
    assert!(
        r.rows()
            .iter()
            .any(|row| row["source"] == "proc" && has_process(row, &["sleep", "0.6"])),
        "{:#}",
        r.0["rows"]
    );
    assert_eq!(r.0["disagreements"], serde_json::json!([]));
}

/// A command without a terminal of its own (`record -- sh -c …`): observed through its
/// process tree.
#[test]
fn a_command_is_observed_through_its_process_tree() {
    let env = TestEnv::new();
    let out = env.path("c.cast.zst");
    let o = env.record(
        &out,
        &[],
        &["sh", "-c", "sleep 0.6; sleep 0.7 | cat; exit 6"],
    );
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env
        .command()
        .args(["commands", "--json", "--trusted"])
        .arg(&env.allowed_signers)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let r = Report(serde_json::from_slice(&o.stdout).unwrap());
    assert!(r.0["sources"]["shell_hooks"].is_null());
    let all: Vec<Vec<String>> = r.rows().iter().flat_map(argvs).collect();
    for want in [&["sleep", "0.6"][..], &["sleep", "0.7"], &["cat"]] {
        assert!(all.iter().any(|a| a == want), "{want:?} not in {all:?}");
    }
}

/// 200 commands of mixed durations, typed ahead into an interactive bash (its stdin a pipe,
/// its terminal a PTY): every command comes from the shell source, in order, with its
/// status; every process that lived at least 300 ms (a sampling period and a margin for a
/// loaded machine) from the proc source, under its command. Shorter ones are counted
/// (bench/RESULTS-cmdmeta.md has the figures).
#[test]
fn two_hundred_commands_are_all_claimed_and_long_ones_seen() {
    let env = TestEnv::new();
    let out = env.path("200.cast.zst");
    let lines: Vec<String> = (0..200)
        .map(|i| match i % 8 {
            0 => format!("sleep 0.3{i:03}"),
            1 => format!("sleep 0.05{i:03}"),
            2 => "true".into(),
            3 => format!("echo c{i}"),
            4 => format!("sleep 0.5{i:03}"),
            5 => "seq 3 | wc -l".into(),
            6 => format!("sleep 0.1{i:03}"),
            _ => "ls -d /tmp".into(),
        })
        .collect();
    let mut script = lines.join("\n");
    script.push('\n');
    let mut child = env
        .command()
        .args(["record", "-q", "--out"])
        .arg(&out)
        .arg("--key")
        .arg(&env.key)
        .args(["--", "bash"])
        .env("PS1", "$ ")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env
        .command()
        .args(["commands", "--json", "--trusted"])
        .arg(&env.allowed_signers)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let r = Report(serde_json::from_slice(&o.stdout).unwrap());
    let claimed: Vec<&str> = r
        .shell_rows()
        .iter()
        .map(|row| row["cmd"].as_str().unwrap())
        .collect();
    assert_eq!(claimed, lines, "every command, in order");
    assert!(r.shell_rows().iter().all(|row| row["exit"] == 0));
    let mut seen = std::collections::BTreeMap::<&str, (u32, u32)>::new();
    for (line, row) in lines.iter().zip(r.shell_rows()) {
        let Some(arg) = line.strip_prefix("sleep ") else {
            continue;
        };
        let class = &arg[..arg.len() - 3];
        let hit = has_process(row, &["sleep", arg]);
        let e = seen.entry(class).or_default();
        e.0 += hit as u32;
        e.1 += 1;
        if class == "0.3" || class == "0.5" {
            assert!(hit, "{line}: no process under its row: {row:#}");
        }
    }
    eprintln!("seen by lifetime (seconds: seen/total): {seen:?}");
    let disagreements = r.0["disagreements"].as_array().unwrap();
    assert!(
        disagreements.iter().all(|d| d["kind"] == "unclaimed"),
        "{disagreements:#?}"
    );
}
