//! The command-metadata benchmark behind `bench/cmdmeta.sh` (bench/RESULTS-cmdmeta.md):
//!
//! 1. **Hook latency per prompt**: an interactive bash and zsh in a PTY of their own, with
//!    the hooks (`hooks::plan`) and without; a prompt is `:` + Enter until the next prompt's
//!    text arrives. Wall time per prompt (p50, p99) and the shell's own CPU per prompt
//!    (`/proc/<pid>/schedstat`).
//! 2. **Process observation CPU**: `sealcast record -- bash` idle, and running the 200-command
//!    script of `tests/commands_record.rs`; CPU of the sampler thread (`sealcast-proc`, its
//!    `/proc/<pid>/task/<tid>/schedstat`) and of the whole recorder, per second of session.
//! 3. **Recall by lifetime**: `sealcast record -- bash -c SCRIPT`, sequential `sleep`s of 50
//!    ms, 100 ms, 250 ms and 1 s with random gaps; which of them `sealcast commands` lists.
//!
//! CPU times, not wall times, where the machine's load matters; the load average is printed
//! with the results. `#[ignore]`d and gated on `SEALCAST_CMDMETA_BENCH=1`. Knobs:
//! `CMDMETA_PROMPTS` (400), `CMDMETA_IDLE_SECS` (20), `CMDMETA_RECALL_RUNS` (3).

mod common;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::TestEnv;
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use sealcast_recorder::cmdmeta::hooks::{self, HookDir, ShellKind, ShellMode};
use sealcast_recorder::cmdmeta::Nonce;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nanoseconds a task has run on a CPU (`schedstat` field 1).
/// Nanoseconds all threads of process `pid` have run on a CPU (the sum of its tasks'
/// `schedstat`; `/proc/<pid>/schedstat` alone is the main thread's).
fn process_cpu_ns(pid: u32) -> u64 {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .map(|t| cpu_ns(&format!("{}/schedstat", t.path().display())))
                .sum()
        })
        .unwrap_or(0)
}

fn cpu_ns(path: &str) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// (wall ms per prompt, sorted; shell CPU µs per prompt).
fn prompts(shell: &str, with_hooks: bool, n: usize) -> (Vec<f64>, f64) {
    let home = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    let kind = ShellKind::of(Path::new(shell)).unwrap();
    fs::write(home.path().join(".zshrc"), "PROMPT='$ '\n").unwrap();
    fs::write(home.path().join(".bashrc"), "PS1='$ '\n").unwrap();
    let nonce = Nonce::generate().unwrap();
    let dir = HookDir::create(base.path(), &hooks::files(kind)).unwrap();
    let mut cmd = CommandBuilder::new(shell);
    if with_hooks {
        let plan = hooks::plan(
            Path::new(shell),
            ShellMode::Interactive { login: false },
            &nonce,
            dir.path(),
            None,
        )
        .unwrap();
        cmd.args(&plan.args);
        for (k, v) in &plan.env {
            cmd.env(k, v);
        }
    } else if kind == ShellKind::Bash {
        cmd.args([
            "--rcfile",
            &home.path().join(".bashrc").to_string_lossy(),
            "-i",
        ]);
    }
    cmd.env("HOME", home.path());
    cmd.env("XDG_RUNTIME_DIR", run.path());
    cmd.env("TERM", "xterm");
    cmd.env("PATH", "/usr/bin:/bin");
    cmd.cwd(home.path());
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let pid = child.process_id().unwrap();
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut writer = pair.master.take_writer().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    // Wait for the text of a prompt after the echo of the line just typed.
    let wait_prompt = |rx: &mpsc::Receiver<Vec<u8>>, after_newline: bool| -> Instant {
        let mut seen = Vec::new();
        let mut newline = !after_newline;
        loop {
            let chunk = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("no prompt within 20 s");
            let at = Instant::now();
            seen.extend_from_slice(&chunk);
            if !newline {
                if let Some(p) = seen.iter().position(|&b| b == b'\n') {
                    seen.drain(..=p);
                    newline = true;
                }
            }
            if newline && seen.windows(2).any(|w| w == b"$ ") {
                return at;
            }
        }
    };
    wait_prompt(&rx, false);
    let mut times = Vec::with_capacity(n);
    let schedstat = format!("/proc/{pid}/schedstat");
    let mut cpu0 = 0;
    for i in 0..n + 20 {
        if i == 20 {
            cpu0 = cpu_ns(&schedstat);
        }
        let t = Instant::now();
        writer.write_all(b":\r").unwrap();
        writer.flush().unwrap();
        let at = wait_prompt(&rx, true);
        if i >= 20 {
            times.push(at.duration_since(t).as_secs_f64() * 1000.0);
        }
    }
    let cpu_us = (cpu_ns(&schedstat) - cpu0) as f64 / 1000.0 / n as f64;
    writer.write_all(b"exit\r").unwrap();
    let _ = child.wait();
    drop(dir);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times, cpu_us)
}

/// `sealcast record -- <argv>` with stdin a pipe.
fn record(env: &TestEnv, out: &Path, argv: &[&str]) -> Child {
    env.command()
        .args(["record", "-q", "--out"])
        .arg(out)
        .arg("--key")
        .arg(&env.key)
        .arg("--")
        .args(argv)
        .env("PS1", "$ ")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// schedstat path of the recorder's sampler thread, once it exists.
fn sampler_task(pid: u32) -> String {
    let mut found = None;
    assert!(common::wait_until(Duration::from_secs(20), || {
        found = fs::read_dir(format!("/proc/{pid}/task"))
            .ok()
            .and_then(|d| {
                d.flatten().find_map(|t| {
                    let comm = fs::read_to_string(t.path().join("comm")).ok()?;
                    (comm.trim() == "sealcast-proc")
                        .then(|| t.path().join("schedstat").to_string_lossy().into_owned())
                })
            });
        found.is_some()
    }));
    found.unwrap()
}

/// (sampler CPU %, recorder CPU %, seconds) of a session: idle for `idle`, or fed `script`.
fn observation_cpu(idle: Option<Duration>, script: Option<&str>) -> (f64, f64, f64) {
    let env = TestEnv::new();
    let out = env.path("o.cast.zst");
    let mut child = record(&env, &out, &["bash"]);
    let pid = child.id();
    let task = sampler_task(pid);
    let t0 = Instant::now();
    let (s0, r0) = (cpu_ns(&task), process_cpu_ns(pid));
    let mut stdin = child.stdin.take().unwrap();
    let (s1, r1, secs);
    if let Some(d) = idle {
        std::thread::sleep(d); // the measurement is the idle time itself
        s1 = cpu_ns(&task);
        r1 = process_cpu_ns(pid);
        secs = t0.elapsed().as_secs_f64();
        drop(stdin);
    } else {
        stdin
            .write_all(format!("{}\nsleep 0.3; kill -STOP $$\n", script.unwrap()).as_bytes())
            .unwrap();
        // The shell stops itself after the script: measure then, before the end.
        assert!(common::wait_until(Duration::from_secs(300), || {
            stopped_child(pid)
        }));
        s1 = cpu_ns(&task);
        r1 = process_cpu_ns(pid);
        secs = t0.elapsed().as_secs_f64();
        // SAFETY: kill(2) on the recorder's child, which we made stop itself.
        unsafe {
            libc::kill(bash_of(pid), libc::SIGCONT);
        }
        drop(stdin);
    }
    child.wait().unwrap();
    let pct = |ns: u64| ns as f64 / 1e9 / secs * 100.0;
    (pct(s1 - s0), pct(r1 - r0), secs)
}

/// The pid of the recorder's child (its only child).
fn bash_of(recorder: u32) -> i32 {
    fs::read_to_string(format!("/proc/{recorder}/task/{recorder}/children"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// True when the recorder's child is stopped (state T).
fn stopped_child(recorder: u32) -> bool {
    let c = bash_of(recorder);
    c > 0
        && fs::read_to_string(format!("/proc/{c}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()?
                    .split_whitespace()
                    .next()
                    .map(String::from)
            })
            .is_some_and(|st| st == "T")
}

/// The 200 commands of tests/commands_record.rs.
fn script_200() -> String {
    (0..200)
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
        .collect::<Vec<_>>()
        .join("\n")
}

/// One recall run: seen/total per class.
fn recall_run(seed: u64) -> Vec<(usize, usize)> {
    // Each argv gets a 3-digit suffix to be told apart: `0.05` + `100` = 0.05100 s,
    // `1.0` + `100` = 1.0100 s.
    const CLASSES: [(&str, usize); 4] = [("0.05", 30), ("0.1", 20), ("0.25", 12), ("1.0", 4)];
    let mut x = seed | 1;
    let mut rand = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut script = String::new();
    let mut names = Vec::new();
    for (c, (life, n)) in CLASSES.iter().enumerate() {
        for i in 0..*n {
            let arg = format!("{life}{:03}", 100 + i);
            let gap = 10 + rand() % 10;
            let _ = write!(script, "sleep {arg}; sleep 0.{gap:03}; ");
            names.push((c, arg));
        }
    }
    let env = TestEnv::new();
    let out = env.path("r.cast.zst");
    let o = env.record(&out, &["-q"], &["bash", "-c", &script]);
    assert!(o.status.success());
    let o = env
        .command()
        .args(["commands", "--json", "--trusted"])
        .arg(&env.allowed_signers)
        .arg(&out)
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let argvs: Vec<String> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row["processes"].as_array().unwrap().iter())
        .map(|p| p["argv"].to_string())
        .collect();
    let mut per = vec![(0, 0); CLASSES.len()];
    for (c, arg) in names {
        per[c].1 += 1;
        if argvs.contains(&serde_json::json!(["sleep", arg]).to_string()) {
            per[c].0 += 1;
        }
    }
    per
}

#[test]
#[ignore = "benchmark: bench/cmdmeta.sh"]
fn cmdmeta_bench() {
    if std::env::var_os("SEALCAST_CMDMETA_BENCH").is_none() {
        eprintln!("set SEALCAST_CMDMETA_BENCH=1 (bench/cmdmeta.sh) to run the benchmark");
        return;
    }
    let mut md = String::new();
    let load0 = loadavg();
    let n = env_num("CMDMETA_PROMPTS", 400) as usize;
    let _ = writeln!(md, "### Hook latency per prompt ({n} prompts each)\n");
    let _ = writeln!(
        md,
        "| shell | hooks | wall p50 | wall p99 | shell CPU per prompt |\n|---|---|---:|---:|---:|"
    );
    for shell in ["/bin/bash", "/usr/bin/zsh"] {
        if !Path::new(shell).exists() {
            continue;
        }
        let mut cpu = [0.0; 2];
        let mut p99 = [0.0; 2];
        for (k, hooks) in [false, true].into_iter().enumerate() {
            let (t, c) = prompts(shell, hooks, n);
            cpu[k] = c;
            p99[k] = percentile(&t, 0.99);
            let _ = writeln!(
                md,
                "| {shell} | {} | {:.3} ms | {:.3} ms | {c:.0} µs |",
                if hooks { "yes" } else { "no" },
                percentile(&t, 0.5),
                p99[k]
            );
        }
        let _ = writeln!(
            md,
            "| {shell} | added | | {:+.3} ms | {:+.0} µs |",
            p99[1] - p99[0],
            cpu[1] - cpu[0]
        );
    }
    let idle = env_num("CMDMETA_IDLE_SECS", 20);
    let _ = writeln!(md, "\n### Process observation CPU (debug build)\n");
    let _ = writeln!(
        md,
        "| session | seconds | sampler thread | whole recorder |\n|---|---:|---:|---:|"
    );
    let (s, r, secs) = observation_cpu(Some(Duration::from_secs(idle)), None);
    let _ = writeln!(md, "| idle bash | {secs:.1} | {s:.3} % | {r:.3} % |");
    let (s, r, secs) = observation_cpu(None, Some(&script_200()));
    let _ = writeln!(
        md,
        "| 200-command script | {secs:.1} | {s:.3} % | {r:.3} % |"
    );
    let runs = env_num("CMDMETA_RECALL_RUNS", 3);
    let _ = writeln!(
        md,
        "\n### Recall by lifetime through `sealcast record` ({runs} runs)\n"
    );
    let _ = writeln!(
        md,
        "| run | 50 ms (30) | 100 ms (20) | 250 ms (12) | 1 s (4) |\n|---|---:|---:|---:|---:|"
    );
    for run in 0..runs {
        let per = recall_run(0x5ea1 + run);
        let cells: Vec<String> = per
            .iter()
            .map(|(seen, total)| format!("{:.0} %", *seen as f64 * 100.0 / *total as f64))
            .collect();
        let _ = writeln!(md, "| {} | {} |", run + 1, cells.join(" | "));
    }
    let _ = writeln!(md, "\nLoad average: {load0} before, {} after.", loadavg());
    println!("{md}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/work");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("cmdmeta.md"), md).unwrap();
}
