//! Shell hooks with real shells (SPEC §2.4.3): bash and zsh started as `hooks::plan` says,
//! in a real PTY, driven by typed input; their output, in the pieces it was read in, goes
//! through the recorder's `ShellClaims` (OSC 133 scanner included), and the test asserts the
//! command events. Needs bash and zsh (`scripts/setup-debian.sh` installs zsh); a missing
//! shell skips its tests with a message unless `CI` is set.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sealcast_format::CommandEvent;
use sealcast_recorder::cmdmeta::claims::ShellClaims;
use sealcast_recorder::cmdmeta::hooks::{self, HookDir, ShellKind, ShellMode};
use sealcast_recorder::cmdmeta::osc133::{MarkKind, Osc133Scanner};
use sealcast_recorder::cmdmeta::proc::ProcFs;
use sealcast_recorder::cmdmeta::Nonce;

const DEADLINE: Duration = Duration::from_secs(20);

/// Everything the PTY master gave, and where each read ended.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    reads: Vec<usize>,
    eof: bool,
}

struct Shell {
    child: Child,
    master: File,
    out: Arc<(Mutex<Output>, Condvar)>,
    nonce: Nonce,
    home: tempfile::TempDir,
    _hooks: HookDir,
    // Dropped after `_hooks` (fields drop in order), which removes its own directory first.
    _hook_base: tempfile::TempDir,
    _run: tempfile::TempDir,
}

fn find_shell(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is not installed (scripts/setup-debian.sh installs it)");
    }
    eprintln!("skipped: {name} is not installed");
    None
}

struct Options<'a> {
    login: bool,
    /// Files of the user's home: (name, content).
    files: &'a [(&'a str, &'a str)],
    /// Give the shell an XDG_RUNTIME_DIR (bash then writes `history 1` to a scratch file there
    /// instead of forking a command substitution).
    runtime_dir: bool,
}

impl Shell {
    fn start(path: &Path, o: Options<'_>) -> Shell {
        let home = tempfile::tempdir().unwrap();
        for (name, content) in o.files {
            std::fs::write(home.path().join(name), content).unwrap();
        }
        let run = tempfile::tempdir().unwrap();
        let nonce = Nonce::generate().unwrap();
        let kind = ShellKind::of(path).unwrap();
        let base = tempfile::tempdir().unwrap();
        let hooks = HookDir::create(base.path(), &hooks::files(kind)).unwrap();
        let plan = hooks::plan(
            path,
            ShellMode::Interactive { login: o.login },
            &nonce,
            hooks.path(),
            None,
        )
        .unwrap();
        let pty = nix::pty::openpty(
            Some(&nix::pty::Winsize {
                ws_row: 40,
                ws_col: 200,
                ws_xpixel: 0,
                ws_ypixel: 0,
            }),
            None,
        )
        .unwrap();
        let slave: OwnedFd = pty.slave;
        let mut cmd = Command::new(path);
        cmd.arg0(&plan.arg0)
            .args(&plan.args)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TERM", "xterm")
            .env("LANG", "C.UTF-8")
            .env("USER", "sealcast-test")
            .current_dir(home.path())
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        if o.runtime_dir {
            cmd.env("XDG_RUNTIME_DIR", run.path());
        }
        for (k, v) in &plan.env {
            cmd.env(k, v);
        }
        // SAFETY: setsid and ioctl are async-signal-safe; stdin is the PTY slave.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd); // closes our copies of the slave
        let master = File::from(pty.master);
        let out = Arc::new((Mutex::new(Output::default()), Condvar::new()));
        let (o2, mut r) = (out.clone(), master.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = r.read(&mut buf).unwrap_or(0);
                let (m, cv) = &*o2;
                let mut g = m.lock().unwrap();
                if n == 0 {
                    g.eof = true;
                    cv.notify_all();
                    return;
                }
                g.bytes.extend_from_slice(&buf[..n]);
                let len = g.bytes.len();
                g.reads.push(len);
                cv.notify_all();
            }
        });
        let sh = Shell {
            child,
            master,
            out,
            nonce,
            home,
            _hooks: hooks,
            _hook_base: base,
            _run: run,
        };
        // The first prompt: an A mark with the nonce.
        sh.wait(
            |o| {
                contains(
                    &o.bytes,
                    format!(";sealcast={}\x07", sh.nonce.as_str()).as_bytes(),
                )
            },
            "first prompt",
        );
        sh
    }

    fn wait(&self, pred: impl Fn(&Output) -> bool, what: &str) {
        let (m, cv) = &*self.out;
        let deadline = Instant::now() + DEADLINE;
        let mut g = m.lock().unwrap();
        while !pred(&g) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || g.eof {
                panic!(
                    "waiting for {what}: {}\n--- output ---\n{}",
                    if g.eof {
                        "shell output ended"
                    } else {
                        "timed out"
                    },
                    String::from_utf8_lossy(&g.bytes)
                );
            }
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }

    fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }

    /// The command events of everything read so far, fed to the scanner in the pieces the
    /// PTY gave (times: the index of the read).
    fn claims(&self) -> Vec<CommandEvent> {
        let g = self.out.0.lock().unwrap();
        claims_of(&self.nonce, &g)
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.0.lock().unwrap().bytes).into_owned()
    }

    /// Wait until the shell shows its prompt and waits for input: the last mark is `B`
    /// (readline and ZLE switch the terminal to raw mode before they draw the prompt, so
    /// typing now is not line-edited by the tty first).
    fn wait_prompt(&self) {
        let nonce = self.nonce.clone();
        self.wait(
            |o| {
                Osc133Scanner::new(nonce.as_str())
                    .feed(&o.bytes)
                    .last()
                    .is_some_and(|m| m.kind == MarkKind::PromptEnd)
            },
            "the prompt",
        );
    }

    /// At the prompt, type `line` (and Enter) and wait until the shell reports the command
    /// finished: the last `start` and `end`.
    fn run(&mut self, line: &str) -> (CommandEvent, CommandEvent) {
        self.wait_prompt();
        let before = ends(&self.claims());
        self.send(&format!("{line}\r"));
        let nonce = self.nonce.clone();
        self.wait(
            |o| ends(&claims_of(&nonce, o)) > before,
            &format!("the end of `{line}`"),
        );
        last_pair(&self.claims())
    }

    /// Type `line` (e.g. `exit`) and wait for the shell to end; its exit status and its
    /// home directory (kept until the caller drops it).
    fn exit(mut self, line: &str) -> (i32, tempfile::TempDir) {
        self.send(&format!("{line}\r"));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut child = self.child;
        std::thread::spawn(move || tx.send(child.wait().unwrap()));
        let st = rx.recv_timeout(DEADLINE).expect("the shell did not exit");
        (st.code().unwrap_or(-1), self.home)
    }
}

fn claims_of(nonce: &Nonce, o: &Output) -> Vec<CommandEvent> {
    let mut c = ShellClaims::new(nonce);
    let mut ev = Vec::new();
    let mut from = 0;
    for (i, &to) in o.reads.iter().enumerate() {
        c.on_output(i as u64, &o.bytes[from..to], &mut ev);
        from = to;
    }
    ev
}

fn contains(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

fn ends(ev: &[CommandEvent]) -> usize {
    ev.iter()
        .filter(|e| matches!(e, CommandEvent::End { .. }))
        .count()
}

fn last_pair(ev: &[CommandEvent]) -> (CommandEvent, CommandEvent) {
    let s = ev
        .iter()
        .rev()
        .find(|e| matches!(e, CommandEvent::Start { .. }))
        .cloned()
        .expect("a start");
    let e = ev
        .iter()
        .rev()
        .find(|e| matches!(e, CommandEvent::End { .. }))
        .cloned()
        .expect("an end");
    (s, e)
}

fn cmd_of(e: &CommandEvent) -> (&str, Option<&str>, bool) {
    match e {
        CommandEvent::Start {
            cmd, cwd, partial, ..
        } => (cmd, cwd.as_deref(), *partial),
        other => panic!("not a start: {other:?}"),
    }
}

fn is_late(e: &CommandEvent) -> bool {
    matches!(e, CommandEvent::Start { late: true, .. })
}

fn exit_of(e: &CommandEvent) -> (Option<i32>, &[i32]) {
    match e {
        CommandEvent::End {
            exit, pipestatus, ..
        } => (*exit, pipestatus),
        other => panic!("not an end: {other:?}"),
    }
}

/// A file a user might `cat`: OSC 133 marks without the nonce, with a wrong one, and one
/// that tries to end a value early.
fn forged_file() -> String {
    [
        "\x1b]133;C;cmd=rm -rf /\x07",
        "\x1b]133;D;0\x07",
        "\x1b]133;C;cmd=forged;sealcast=ffffffffffffffffffffffffffffffff\x07",
        "\x1b]133;D;0;sealcast=00000000000000000000000000000000\x1b\\",
        "plain text\n",
    ]
    .concat()
}

/// Wait until a process named `comm` runs in the shell's session, so a signal reaches it.
fn wait_for_process(sh: &Shell, comm: &str) {
    let fs = ProcFs::new();
    let sid = sh.child.id() as i32;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = fs
            .session_pids(sid)
            .unwrap()
            .into_iter()
            .any(|pid| matches!(fs.read(pid, 0), Ok(Some(p)) if p.comm == comm));
        if found {
            return;
        }
        assert!(Instant::now() < deadline, "no {comm} in session {sid}");
        std::thread::yield_now();
    }
}

/// The steps both shells must pass, and what each must claim.
fn common_steps(sh: &mut Shell, kind: ShellKind) {
    let home = sh.home.path().to_str().unwrap().to_string();
    // The user's own rc file ran.
    let (s, e) = sh.run("echo \"rc=$USER_RC_VAR\"");
    assert_eq!(
        cmd_of(&s),
        ("echo \"rc=$USER_RC_VAR\"", Some(home.as_str()), false)
    );
    assert_eq!(exit_of(&e), (Some(0), &[][..]));
    assert!(sh.output().contains("rc=from-user-rc"), "{}", sh.output());
    // A failing command, and a pipeline's statuses.
    assert_eq!(exit_of(&sh.run("false").1), (Some(1), &[][..]));
    let (s, e) = sh.run("true | false | true");
    assert_eq!(cmd_of(&s).0, "true | false | true");
    assert_eq!(exit_of(&e), (Some(0), &[0, 1, 0][..]));
    // A line whose first command is a subshell: bash runs no DEBUG trap for it, so the
    // claim comes after it ran, flagged; zsh claims it before.
    let (s, e) = sh.run("(exit 3) | (exit 4)");
    assert_eq!(cmd_of(&s).0, "(exit 3) | (exit 4)");
    assert_eq!(is_late(&s), kind == ShellKind::Bash);
    assert_eq!(exit_of(&e), (Some(4), &[3, 4][..]));
    // A line that only defines a function is claimed too.
    let (s, e) = sh.run("f() { echo in-f; }");
    assert_eq!(cmd_of(&s).0, "f() { echo in-f; }");
    assert_eq!(exit_of(&e).0, Some(0));
    let (s, _) = sh.run("f");
    assert!(!is_late(&s));
    // A subshell.
    let (s, e) = sh.run("(cd /; echo \"sub=$PWD\"); exit_in=7; (exit $exit_in)");
    assert_eq!(
        cmd_of(&s).0,
        "(cd /; echo \"sub=$PWD\"); exit_in=7; (exit $exit_in)"
    );
    assert_eq!(exit_of(&e).0, Some(7));
    // cd: the next command's cwd follows, spaces and non-ASCII included; a `;` in a name is
    // escaped in the mark.
    let dir = format!("{home}/dir with space/ünï;code");
    std::fs::create_dir_all(&dir).unwrap();
    sh.run("cd 'dir with space/ünï;code'");
    let (s, _) = sh.run("pwd");
    assert_eq!(cmd_of(&s).1, Some(dir.as_str()));
    sh.run("cd ~");
    // A multi-line command and a here-document.
    let (s, e) = sh.run("for i in 1 2\rdo echo \"n=$i\"\rdone");
    let (cmd, _, partial) = cmd_of(&s);
    assert!(
        cmd.starts_with("for i in 1 2") && cmd.contains("echo \"n=$i\"") && cmd.ends_with("done"),
        "{cmd:?}"
    );
    assert!(!partial);
    assert_eq!(exit_of(&e).0, Some(0));
    let (s, _) = sh.run("cat <<'EOF'\rhere line\rEOF");
    assert_eq!(cmd_of(&s).0, "cat <<'EOF'\nhere line\nEOF");
    // Ctrl-C on a running sleep: 130.
    sh.wait_prompt();
    sh.send("sleep 30\r");
    let nonce = sh.nonce.clone();
    sh.wait(
        |o| {
            claims_of(&nonce, o)
                .iter()
                .any(|e| matches!(e, CommandEvent::Start { cmd, .. } if cmd == "sleep 30"))
        },
        "the start of sleep",
    );
    wait_for_process(sh, "sleep");
    let before = ends(&sh.claims());
    sh.send("\x03");
    sh.wait(|o| ends(&claims_of(&nonce, o)) > before, "the end of sleep");
    assert_eq!(exit_of(&last_pair(&sh.claims()).1).0, Some(130));
    // A crafted file with marks without the session nonce: no claim, counted as ignored.
    std::fs::write(sh.home.path().join("forged.txt"), forged_file()).unwrap();
    let before: Vec<CommandEvent> = sh.claims();
    let (s, _) = sh.run("cat forged.txt");
    assert_eq!(cmd_of(&s).0, "cat forged.txt");
    let after = sh.claims();
    let new = &after[before.len()..];
    assert_eq!(
        new.iter()
            .filter(|e| matches!(e, CommandEvent::Start { .. }))
            .count(),
        1,
        "{new:?}"
    );
    let ignored: Vec<_> = new
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Ignored { marks, bad_nonce } => Some((*marks, *bad_nonce)),
            _ => None,
        })
        .collect();
    let marks: u64 = ignored.iter().map(|x| x.0).sum();
    let bad: u64 = ignored.iter().map(|x| x.1).sum();
    assert_eq!((marks, bad), (4, 2), "{new:?}");
    assert!(!after.iter().any(
        |e| matches!(e, CommandEvent::Start { cmd, .. } if cmd == "rm -rf /" || cmd == "forged")
    ));
    // A command line with control characters and a would-be mark stays one claim.
    let (s, _) = sh.run("printf '%s\\n' 'x;y' \"$(printf 'a\\033]133;D;0\\007b')\"");
    assert!(cmd_of(&s).0.starts_with("printf '%s\\n' 'x;y'"));
    // Real ESC and BEL in a command line (typed with Ctrl-V) cannot end the mark or make
    // one: the claim is the line, byte for byte, and nothing else is claimed.
    let before = sh.claims().len();
    let (s, _) = sh.run("echo 'x\x16\x1b]133;C;cmd=forged\x16\x07y' > /dev/null");
    assert_eq!(
        cmd_of(&s).0,
        "echo 'x\x1b]133;C;cmd=forged\x07y' > /dev/null"
    );
    let new = sh.claims();
    assert_eq!(
        new[before..]
            .iter()
            .filter(|e| matches!(e, CommandEvent::Start { .. }))
            .count(),
        1,
        "{:?}",
        &new[before..]
    );
    // A command typed while the previous one runs is claimed after that one ends.
    sh.wait_prompt();
    let before = ends(&sh.claims());
    sh.send("sleep 0.5\recho typed-ahead\r");
    let nonce = sh.nonce.clone();
    sh.wait(
        |o| ends(&claims_of(&nonce, o)) >= before + 2,
        "both commands",
    );
    let ev = sh.claims();
    let tail: Vec<String> = ev
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Start { cmd, .. } => Some(format!("start {cmd}")),
            CommandEvent::End { exit, .. } => Some(format!("end {exit:?}")),
            _ => None,
        })
        .rev()
        .take(4)
        .collect();
    assert_eq!(
        tail,
        [
            "end Some(0)",
            "start echo typed-ahead",
            "end Some(0)",
            "start sleep 0.5"
        ]
    );
    // The user's prompt hook kept working alongside ours: it ran once per prompt.
    let (_, _) = sh.run("echo \"pc=$USER_PC\"");
    let out = sh.output();
    let pc: u32 = out
        .rsplit("pc=")
        .next()
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let prompts = ends(&sh.claims()) as u32;
    assert!(
        pc >= prompts,
        "user prompt hook ran {pc} times for {prompts} commands ({kind:?})"
    );
    // Every start has its end, ids in order.
    let ev = sh.claims();
    let ids: Vec<u64> = ev
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Start { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
}

/// The same output fed one byte at a time gives the same events (marks split anywhere).
fn check_split_reads(sh: &Shell) {
    let g = sh.out.0.lock().unwrap();
    let mut c = ShellClaims::new(&sh.nonce);
    let mut bytewise = Vec::new();
    for (i, b) in g.bytes.iter().enumerate() {
        c.on_output(i as u64, std::slice::from_ref(b), &mut bytewise);
    }
    let as_read = claims_of(&sh.nonce, &g);
    let strip = |v: &[CommandEvent]| -> Vec<CommandEvent> {
        v.iter()
            .map(|e| match e {
                CommandEvent::End {
                    id,
                    src,
                    exit,
                    pipestatus,
                    ..
                } => CommandEvent::End {
                    id: *id,
                    src: src.clone(),
                    exit: *exit,
                    pipestatus: pipestatus.clone(),
                    duration_us: 0,
                },
                other => other.clone(),
            })
            .collect()
    };
    let ignored_total = |v: &[CommandEvent]| -> u64 {
        v.iter()
            .map(|e| match e {
                CommandEvent::Ignored { marks, .. } => *marks,
                _ => 0,
            })
            .sum()
    };
    let no_ignored = |v: Vec<CommandEvent>| -> Vec<CommandEvent> {
        v.into_iter()
            .filter(|e| !matches!(e, CommandEvent::Ignored { .. }))
            .collect()
    };
    assert_eq!(ignored_total(&bytewise), ignored_total(&as_read));
    assert_eq!(no_ignored(strip(&bytewise)), no_ignored(strip(&as_read)));
}

const BASHRC: &str = r#"
USER_RC_VAR=from-user-rc
HISTCONTROL=ignoreboth
PROMPT_COMMAND='USER_PC=$((USER_PC+1))'
"#;

#[test]
fn bash_claims_commands_statuses_and_directories() {
    let Some(bash) = find_shell("bash") else {
        return;
    };
    let mut sh = Shell::start(
        &bash,
        Options {
            login: false,
            files: &[(".bashrc", BASHRC)],
            runtime_dir: true,
        },
    );
    common_steps(&mut sh, ShellKind::Bash);
    // A line history did not keep (leading space under ignorespace): the first command only.
    let (s, e) = sh.run(" echo hidden; echo second");
    assert_eq!(
        cmd_of(&s),
        ("echo hidden", Some(sh.home.path().to_str().unwrap()), true)
    );
    assert_eq!(exit_of(&e).0, Some(0));
    // ... and the next one is whole again.
    let (s, _) = sh.run("echo shown; echo too");
    assert_eq!(cmd_of(&s).0, "echo shown; echo too");
    assert!(!cmd_of(&s).2);
    // The nonce is not in the commands' environment.
    sh.run("env > env.txt");
    let env = std::fs::read_to_string(sh.home.path().join("env.txt")).unwrap();
    assert!(
        !env.contains(sh.nonce.as_str()) && !env.contains("SEALCAST_HOOK"),
        "{env}"
    );
    check_split_reads(&sh);
    assert_eq!(sh.exit("exit 5").0, 5);
}

#[test]
fn bash_login_shell_reads_the_profile_files() {
    let Some(bash) = find_shell("bash") else {
        return;
    };
    let profile = "PROFILE_RAN=bash_profile\n. ~/.bashrc\n";
    let mut sh = Shell::start(
        &bash,
        Options {
            login: true,
            files: &[
                (".bashrc", BASHRC),
                (".bash_profile", profile),
                (".profile", "PROFILE_RAN=profile-must-not-run\n"),
                (".bash_logout", "echo logged-out > ~/logout.txt\n"),
            ],
            // Without a scratch directory the hooks use a command substitution.
            runtime_dir: false,
        },
    );
    let (s, _) = sh.run("echo \"p=$PROFILE_RAN 0=$0 rc=$USER_RC_VAR\"");
    assert_eq!(cmd_of(&s).0, "echo \"p=$PROFILE_RAN 0=$0 rc=$USER_RC_VAR\"");
    assert!(
        sh.output()
            .contains("p=bash_profile 0=-bash rc=from-user-rc"),
        "{}",
        sh.output()
    );
    // The documented difference: bash does not know it is a login shell.
    let (_, e) = sh.run("shopt -q login_shell");
    assert_eq!(exit_of(&e).0, Some(1));
    common_steps(&mut sh, ShellKind::Bash);
    // `logout` works and runs ~/.bash_logout.
    let (status, home) = sh.exit("logout");
    assert_eq!(status, 0);
    assert_eq!(
        std::fs::read_to_string(home.path().join("logout.txt")).unwrap(),
        "logged-out\n"
    );
}

#[test]
fn bash_hooks_a_user_disables_stop_claiming() {
    let Some(bash) = find_shell("bash") else {
        return;
    };
    let mut sh = Shell::start(
        &bash,
        Options {
            login: false,
            files: &[(".bashrc", BASHRC)],
            runtime_dir: true,
        },
    );
    sh.run("echo one");
    // `trap - DEBUG`: the PS0 flag still makes the prompt hook claim each line, late.
    let (s, _) = sh.run("trap - DEBUG");
    assert_eq!(cmd_of(&s).0, "trap - DEBUG");
    let (s, _) = sh.run("echo after-trap");
    assert_eq!(cmd_of(&s).0, "echo after-trap");
    assert!(is_late(&s));
    // Without PROMPT_COMMAND nothing claims anything any more (the proc source still sees
    // the processes: SPEC §2.4.5, hooks silent).
    let n = sh.claims().len();
    sh.send("unset PROMPT_COMMAND\r");
    sh.send("echo after-unset\r");
    sh.wait(|o| contains(&o.bytes, b"after-unset\r\n"), "echo's output");
    sh.send("exec bash --norc\r");
    sh.send("echo \"in-norc=$((6*7))\"\r");
    sh.wait(|o| contains(&o.bytes, b"in-norc=42"), "the new shell");
    let later = sh.claims();
    assert!(
        !later[n..]
            .iter()
            .any(|e| matches!(e, CommandEvent::Start { .. })),
        "{:?}",
        &later[n..]
    );
    assert_eq!(sh.exit("exit").0, 0);
}

const ZSHRC: &str = r#"
USER_RC_VAR=from-user-rc
typeset -gi USER_PC=0
__user_count() { USER_PC+=1 }
precmd_functions+=(__user_count)
setopt hist_ignore_space
"#;

#[test]
fn zsh_claims_commands_statuses_and_directories() {
    let Some(zsh) = find_shell("zsh") else {
        return;
    };
    let mut sh = Shell::start(
        &zsh,
        Options {
            login: false,
            files: &[(".zshrc", ZSHRC), (".zshenv", "ZSHENV_RAN=1\n")],
            runtime_dir: true,
        },
    );
    common_steps(&mut sh, ShellKind::Zsh);
    // zsh passes the line as typed even when history drops it.
    let (s, _) = sh.run(" echo hidden; echo second");
    assert_eq!(cmd_of(&s).0, " echo hidden; echo second");
    assert!(!cmd_of(&s).2);
    // The user's ZDOTDIR is restored (unset here) and .zshenv ran.
    sh.run("echo \"zd=${ZDOTDIR-unset} env=$ZSHENV_RAN\"");
    assert!(sh.output().contains("zd=unset env=1"), "{}", sh.output());
    check_split_reads(&sh);
    assert_eq!(sh.exit("exit 6").0, 6);
}

#[test]
fn zsh_login_shell_reads_zprofile_and_zlogin() {
    let Some(zsh) = find_shell("zsh") else {
        return;
    };
    let mut sh = Shell::start(
        &zsh,
        Options {
            login: true,
            files: &[
                (".zshrc", ZSHRC),
                (".zprofile", "ZPROFILE_RAN=1\n"),
                (
                    ".zlogin",
                    "ZLOGIN_RAN=1\nprecmd_functions+=(__user_count)\n",
                ),
            ],
            runtime_dir: false,
        },
    );
    let (s, _) = sh.run("echo \"p=$ZPROFILE_RAN l=$ZLOGIN_RAN 0=$0 login=$options[login]\"");
    assert!(cmd_of(&s).0.starts_with("echo \"p=$ZPROFILE_RAN"));
    assert!(
        sh.output().contains("p=1 l=1 0=-zsh login=on"),
        "{}",
        sh.output()
    );
    // Our precmd stays first even though .zlogin added one after it.
    sh.run("print -r -- \"first=$precmd_functions[1]\"");
    assert!(sh.output().contains("first=__sc_precmd"), "{}", sh.output());
    assert_eq!(sh.exit("exit").0, 0);
}

#[test]
fn shells_without_hooks_get_no_plan() {
    let n = Nonce::generate().unwrap();
    for sh in ["/bin/sh", "/bin/dash"] {
        assert!(hooks::plan(
            Path::new(sh),
            ShellMode::Interactive { login: true },
            &n,
            Path::new("/tmp"),
            None
        )
        .is_none());
    }
}
