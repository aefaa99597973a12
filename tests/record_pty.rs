//! `sealcast record` end to end: real programs in a real PTY, recordings read back and
//! verified through the library (`sealcast_reader`), no mocks.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{contains, events, exit_event, header, stream, verify_file, wait_until, TestEnv};
use sealcast_format::EventKind;
use sealcast_reader::Status;

/// Assert the recording verifies OK with its seal receipt present and return its events.
fn verified(env: &TestEnv, out: &Path) -> Vec<sealcast_format::EventLine> {
    assert!(
        common::receipt_path(out).is_file(),
        "no seal receipt beside {}",
        out.display()
    );
    let report = verify_file(out, &env.trust());
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert!(report.sealed);
    events(out)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn printf_with_escapes_is_relayed_recorded_and_sealed() {
    let env = TestEnv::new();
    let out = env.path("printf.cast.zst");
    let o = env.record(&out, &[], &["printf", r"hello\033[31mred\033[0m\n"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ev = verified(&env, &out);
    let recorded = stream(&ev, "o");
    assert_eq!(recorded, b"hello\x1b[31mred\x1b[0m\r\n");
    // The relay: the recorder's stdout got exactly what was recorded.
    assert_eq!(o.stdout, recorded);
    assert_eq!(exit_event(&ev).as_deref(), Some("0"));
    assert_eq!(ev.last().unwrap().kind.code(), "x", "x is the last event");

    let h = header(&out);
    assert_eq!(
        h.command.as_deref(),
        Some(r"printf 'hello\033[31mred\033[0m\n'")
    );
    assert_eq!(h.term.term_type.as_deref(), Some("xterm-256color"));
    let meta = h.sealcast.expect("sealcast header");
    assert_eq!(meta.format, 1);
    assert_eq!(meta.session.len(), 32);
    assert!(!meta.host.is_empty() && !meta.host.contains(char::is_whitespace));
    assert!(!meta.user.is_empty());
    assert!(meta.recorder.starts_with("sealcast "));
    assert!(!meta.capture_input);

    let msg = stderr(&o);
    let expected = format!(
        "sealcast: recording saved to {} ({} lines, sealed by key {})",
        out.display(),
        1 + ev.len(),
        meta.key_id
    );
    assert!(msg.contains(&expected), "stderr: {msg}\nwanted: {expected}");
}

fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    fs::write(path, &data).unwrap();
    data
}

#[test]
fn binary_output_is_recorded_byte_exact() {
    let env = TestEnv::new();
    let data = random_file(&env.path("f"), 100_000);

    // Output post-processing off: the recording must hold the file's bytes exactly.
    let out = env.path("raw.cast.zst");
    let o = env.record(&out, &[], &["sh", "-c", "stty -opost; cat f"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ev = verified(&env, &out);
    let recorded = stream(&ev, "o");
    assert!(recorded == data, "recorded output differs from the file");
    assert!(o.stdout == data, "relayed output differs from the file");
    // Random bytes are not UTF-8: exactness came from `b` events.
    let text = Command::new("zstd").arg("-dc").arg(&out).output().unwrap();
    assert!(contains(&text.stdout, b", \"b\", \""), "no b events");

    // Default post-processing: the PTY turns LF into CR LF, nothing else.
    let out = env.path("cooked.cast.zst");
    let o = env.record(&out, &[], &["cat", "f"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ev = verified(&env, &out);
    let mut expected = Vec::with_capacity(data.len() + 1000);
    for &b in &data {
        if b == b'\n' {
            expected.push(b'\r');
        }
        expected.push(b);
    }
    assert!(
        stream(&ev, "o") == expected,
        "recorded output != file with CRLF"
    );
    assert!(o.stdout == expected, "relayed output != file with CRLF");
}

#[test]
fn large_output_is_complete_under_backpressure() {
    let env = TestEnv::new();
    let out = env.path("seq.cast.zst");
    let o = env.record(&out, &[], &["seq", "1", "300000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ev = verified(&env, &out);
    let expected: String = (1..=300000).map(|i| format!("{i}\r\n")).collect();
    let recorded = stream(&ev, "o");
    assert_eq!(recorded.len(), expected.len());
    assert!(recorded == expected.as_bytes());
    assert!(o.stdout == expected.as_bytes());
}

#[test]
fn bash_colours() {
    let env = TestEnv::new();
    let out = env.path("bash.cast.zst");
    let script =
        r#"for c in 31 32 33 34; do printf '\e[%smcolour-%s\e[0m\n' $c $c; done; echo "done""#;
    let o = env.record(&out, &[], &["bash", "-c", script]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ev = verified(&env, &out);
    let recorded = stream(&ev, "o");
    for c in [31, 32, 33, 34] {
        let want = format!("\x1b[{c}mcolour-{c}\x1b[0m\r\n");
        assert!(contains(&recorded, want.as_bytes()), "missing {want:?}");
    }
    assert!(recorded.ends_with(b"done\r\n"));
    assert_eq!(o.stdout, recorded);
}

#[test]
fn exit_status_is_recorded_and_returned() {
    let env = TestEnv::new();
    let out = env.path("exit7.cast.zst");
    let o = env.record(&out, &["-q"], &["sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(!stderr(&o).contains("recording saved"), "-q prints nothing");
    let ev = verified(&env, &out);
    assert_eq!(exit_event(&ev).as_deref(), Some("7"));
}

#[test]
fn death_by_signal_is_128_plus_signal() {
    let env = TestEnv::new();
    let out = env.path("term.cast.zst");
    let o = env.record(&out, &[], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    let ev = verified(&env, &out);
    assert_eq!(exit_event(&ev).as_deref(), Some("143"));
}

#[test]
fn piped_stdin_reaches_the_child_then_eof() {
    let env = TestEnv::new();
    let out = env.path("cat.cast.zst");
    let mut child = env
        .command()
        .args(["record", "--capture-input", "--out"])
        .arg(&out)
        .arg("--key")
        .arg(&env.key)
        .args(["--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // No final newline: EOF must still get through (the recorder sends ^D twice).
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nline two")
        .unwrap();
    let o = wait_output(child, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ev = verified(&env, &out);
    assert_eq!(stream(&ev, "i"), b"line one\nline two");
    let recorded = stream(&ev, "o");
    // Echo by the PTY, then cat's copy.
    assert!(contains(&recorded, b"line one\r\n"));
    assert!(
        recorded.ends_with(b"line two"),
        "{:?}",
        String::from_utf8_lossy(&recorded)
    );
    assert!(header(&out).sealcast.unwrap().capture_input);
}

/// An interactive readline shell fed by a pipe: EOF must reach it even though readline
/// switches the line discipline out of canonical mode at every prompt.
#[test]
fn piped_commands_into_an_interactive_shell_end_with_eof() {
    let env = TestEnv::new();
    let out = env.path("bash-i.cast.zst");
    let mut child = env
        .command()
        .env("PS1", "$ ")
        .args(["record", "--out"])
        .arg(&out)
        .arg("--key")
        .arg(&env.key)
        .args(["--", "bash", "--norc", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo hi-$((6*7))\necho second-$((1+1))\n")
        .unwrap();
    let o = wait_output(child, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ev = verified(&env, &out);
    let recorded = stream(&ev, "o");
    assert!(contains(&recorded, b"hi-42\r\n"));
    assert!(contains(&recorded, b"second-2\r\n"));
    assert_eq!(exit_event(&ev).as_deref(), Some("0"));
}

#[test]
fn child_environment_size_and_signal_state() {
    let env = TestEnv::new();
    let out = env.path("env.cast.zst");
    let o = env
        .command()
        .env("COLUMNS", "132")
        .env("LINES", "43")
        .args(["record", "--host-id", "bastion 7", "--out"])
        .arg(&out)
        .arg("--key")
        .arg(&env.key)
        .args([
            "--",
            "sh",
            "-c",
            "echo session=$SEALCAST_SESSION term=$TERM; stty size; pwd; \
             grep -E '^Sig(Ign|Blk)' /proc/self/status",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The key signs for host bastion-7 only when the trust file says so.
    let report = verify_file(&out, &env.trust());
    assert_eq!(report.status, Status::WrongSigner, "{report:?}");
    common::write_allowed_signers(&env.allowed_signers, "bastion-7", &env.public);
    let ev = verified(&env, &out);
    let text = String::from_utf8_lossy(&stream(&ev, "o")).into_owned();
    let h = header(&out);
    let meta = h.sealcast.unwrap();
    assert_eq!(meta.host, "bastion-7");
    assert!(
        text.contains(&format!("session={} term=xterm-256color\r\n", meta.session)),
        "{text}"
    );
    assert_eq!((h.term.cols, h.term.rows), (132, 43));
    assert!(text.contains("43 132\r\n"), "{text}");
    let cwd = fs::canonicalize(env.dir.path()).unwrap();
    assert!(text.contains(&format!("{}\r\n", cwd.display())), "{text}");
    // The child starts with no blocked signals, and ignores nothing this test process does
    // not ignore itself (ignored dispositions are inherited through exec) — in particular not
    // SIGPIPE, which the Rust runtime ignores in the recorder.
    assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
    let child_ign = sig_mask(&text, "SigIgn").expect("child SigIgn");
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let own_ign = sig_mask(&own, "SigIgn").unwrap();
    // Only the classic signals 1–31: glibc's posix_spawn (how this test starts the
    // recorder) leaves its internal real-time signals 32/33 ignored in the spawned process.
    let classic = (1u64 << 31) - 1;
    assert_eq!(
        child_ign & classic & !own_ign,
        0,
        "recorder added ignored signals: {text}"
    );
    assert_eq!(
        child_ign & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored: {text}"
    );
}

/// A signal mask line (`SigIgn:\t<hex>`) of /proc/PID/status.
fn sig_mask(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    u64::from_str_radix(line.split(':').nth(1)?.trim(), 16).ok()
}

#[test]
fn dev_key_trust_file_and_archive_defaults() {
    let env = TestEnv::new();
    let run = |extra: &[&str]| {
        env.command()
            .arg("record")
            .args(extra)
            .args(["--", "echo", "hi"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let data = env.xdg_data.join("sealcast");
    let key = data.join("keys/signing.key");
    let trust = data.join("allowed_signers");
    let msg = stderr(&o);
    assert!(
        msg.contains(&format!("sealcast: created dev key at {}", key.display())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "sealcast: trust file {} lets the dev key sign for host {}",
            trust.display(),
            env.host
        )),
        "{msg}"
    );
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let trust_text = fs::read_to_string(&trust).unwrap();
    assert!(
        trust_text.starts_with(&format!(
            "{} namespaces=\"sealcast\" ssh-ed25519 ",
            env.host
        )),
        "{trust_text}"
    );
    let archive = data.join("archive");
    assert_eq!(
        fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let files: Vec<_> = fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".cast.zst"))
        .collect();
    assert_eq!(files.len(), 1);
    let rec = &files[0];
    let session = header(rec).sealcast.unwrap().session;
    assert_eq!(
        rec.file_name().unwrap().to_string_lossy(),
        format!("{session}.cast.zst")
    );
    let report = verify_file(rec, &common::trust_from_file(&trust));
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert_eq!(report.signer.as_deref(), Some(env.host.as_str()));

    // Second run: the dev key is reused, nothing is announced; --dir is honoured.
    let o = run(&["--dir", "recs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("created dev key"));
    assert_eq!(fs::read_to_string(&trust).unwrap(), trust_text);
    let recs: Vec<_> = fs::read_dir(env.path("recs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".cast.zst"))
        .collect();
    assert_eq!(recs.len(), 1);
    let report = verify_file(&recs[0], &common::trust_from_file(&trust));
    assert_eq!(report.status, Status::Ok, "{report:?}");

    // Another host id: the dev trust file gains a line for it (SPEC §6: keys sign only for
    // the hosts their principals name), said once.
    let o = run(&["--dir", "other", "--host-id", "other-box"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("lets the dev key sign for host other-box"),
        "{}",
        stderr(&o)
    );
    let now = fs::read_to_string(&trust).unwrap();
    assert!(now.starts_with(&trust_text), "{now}");
    assert!(
        now[trust_text.len()..].starts_with("other-box namespaces=\"sealcast\" ssh-ed25519 "),
        "{now}"
    );
    let other = fs::read_dir(env.path("other"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".cast.zst"))
        .unwrap();
    let report = verify_file(&other, &common::trust_from_file(&trust));
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert_eq!(report.signer.as_deref(), Some("other-box"));
}

#[test]
fn existing_output_and_existing_key_are_usage_errors() {
    let env = TestEnv::new();
    let out = env.path("exists.cast.zst");
    fs::write(&out, b"precious").unwrap();
    let o = env.record(&out, &[], &["true"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), b"precious");

    let dir = env.path("key");
    let before = fs::read(dir.join("signing.key")).unwrap();
    let o = Command::new(common::bin())
        .args(["keygen", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(fs::read(dir.join("signing.key")).unwrap(), before);
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let o = env.record(&env.path("x.cast.zst"), &[], &["/nonexistent/program"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/program"),
        "{}",
        stderr(&o)
    );
    assert!(
        !env.path("x.cast.zst").exists(),
        "no recording for a failed start"
    );
}

#[test]
fn recorder_sigterm_hangs_up_the_child_and_seals() {
    let env = TestEnv::new();
    let out = env.path("sigterm.cast.zst");
    let mut child = env
        .command()
        .args(["record", "--out"])
        .arg(&out)
        .arg("--key")
        .arg(&env.key)
        .args(["--", "sh", "-c", "echo started; sleep 30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !contains(&seen, b"started") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "recorder output ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    let t0 = Instant::now();
    // SAFETY: kill with a pid we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_timeout(&mut child, Duration::from_secs(15));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    // sh died of the forwarded SIGHUP.
    assert_eq!(status, Some(129));
    let ev = verified(&env, &out);
    assert_eq!(exit_event(&ev).as_deref(), Some("129"));
    assert!(contains(&stream(&ev, "o"), b"started\r\n"));
}

/// `sealcast record -- yes | head -c 100`: when the recorder's stdout closes, the session is
/// hung up and the recording sealed, instead of recording forever.
#[test]
fn closed_stdout_hangs_up_the_session() {
    let env = TestEnv::new();
    let out = env.path("yes.cast.zst");
    let mut child = env
        .command()
        .args(["record", "--out"])
        .arg(&out)
        .arg("--key")
        .arg(&env.key)
        .args(["--", "yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 100];
    stdout.read_exact(&mut buf).unwrap();
    assert!(buf.starts_with(b"y\r\ny\r\n"));
    drop(stdout);
    let status = wait_timeout(&mut child, Duration::from_secs(15));
    // `yes` died of the SIGHUP.
    assert_eq!(status, Some(129));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("stdout failed"), "{err}");
    let ev = verified(&env, &out);
    assert_eq!(exit_event(&ev).as_deref(), Some("129"));
    assert!(stream(&ev, "o").starts_with(b"y\r\n"));
}

#[test]
fn background_process_holding_the_pty_does_not_hang_the_recorder() {
    let env = TestEnv::new();
    let out = env.path("bg.cast.zst");
    let t0 = Instant::now();
    let o = env.record(
        &out,
        &[],
        &[
            "sh",
            "-c",
            "(trap '' HUP; exec sleep 4) & echo bye; sleep 0.2",
        ],
    );
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let ev = verified(&env, &out);
    assert_eq!(stream(&ev, "o"), b"bye\r\n");
}

/// Resize: run the recorder itself in a PTY made here, resize that PTY, and check the `r`
/// event and that the child saw the new size.
#[test]
fn sigwinch_on_the_recorder_terminal_resizes_and_records() {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};

    let env = TestEnv::new();
    let out = env.path("resize.cast.zst");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(common::bin());
    cmd.args(["record", "--out"]);
    cmd.arg(&out);
    cmd.arg("--key");
    cmd.arg(&env.key);
    cmd.args([
        "--",
        "sh",
        "-c",
        "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.1; done",
    ]);
    cmd.cwd(env.dir.path());
    cmd.env("HOME", &env.home);
    cmd.env("XDG_DATA_HOME", &env.xdg_data);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("SEALCAST_SESSION");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let pump = |screen: &mut Vec<u8>| {
        while let Ok(chunk) = rx.try_recv() {
            screen.extend_from_slice(&chunk);
        }
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            pump(&mut screen);
            contains(&screen, b"ready")
        }),
        "child never became ready: {:?}",
        String::from_utf8_lossy(&screen)
    );
    pair.master
        .resize(PtySize {
            rows: 40,
            cols: 100,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut status = None;
    let exited = wait_until(Duration::from_secs(20), || {
        pump(&mut screen);
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        panic!(
            "recorder did not exit after the resize: {:?}",
            String::from_utf8_lossy(&screen)
        );
    }
    assert!(status.unwrap().success());
    // The reader thread delivers the tail after the exit: wait for it.
    wait_until(Duration::from_secs(10), || {
        pump(&mut screen);
        contains(&screen, b"40 100")
    });
    assert!(
        contains(&screen, b"40 100"),
        "{:?}",
        String::from_utf8_lossy(&screen)
    );

    let ev = verified(&env, &out);
    let h = header(&out);
    assert_eq!((h.term.cols, h.term.rows), (80, 24));
    let resizes: Vec<_> = ev.iter().filter(|e| e.kind == EventKind::Resize).collect();
    assert_eq!(resizes.len(), 1, "{ev:?}");
    assert_eq!(resizes[0].bytes, b"100x40");
    let recorded = stream(&ev, "o");
    assert!(contains(&recorded, b"40 100\r\n"));
    // The r event comes before the output the child produced in response.
    let r_at = ev.iter().position(|e| e.kind == EventKind::Resize).unwrap();
    let out_at = ev
        .iter()
        .position(|e| e.kind == EventKind::Output && contains(&e.bytes, b"40 100"))
        .unwrap();
    assert!(r_at < out_at);
    assert_eq!(exit_event(&ev).as_deref(), Some("0"));
}

/// Wait for `child` to exit within `timeout`, killing it otherwise; returns its exit code.
fn wait_timeout(child: &mut std::process::Child, timeout: Duration) -> Option<i32> {
    let mut status = None;
    let ok = wait_until(timeout, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !ok {
        let _ = child.kill();
        let _ = child.wait();
        panic!("process did not exit within {timeout:?}");
    }
    status.unwrap().code()
}

/// `wait_with_output` with a timeout (the recorder must never hang).
fn wait_output(child: std::process::Child, timeout: Duration) -> std::process::Output {
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            // SAFETY: kill with a pid we spawned.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("process did not exit within {timeout:?}");
        }
    }
}

/// `sealcast record` binds its session's kernel audit ids into the header (SPEC §2.4.4): run
/// with a login uid set (as pam_loginuid does at login), the header carries that login uid
/// and the audit session the kernel gave the process.
#[test]
fn the_sessions_audit_ids_are_in_the_header() {
    use std::os::unix::process::CommandExt;
    let probe = Command::new("sh")
        .args([
            "-c",
            "echo 4243 > /proc/self/loginuid && cat /proc/self/loginuid",
        ])
        .output()
        .unwrap();
    if probe.stdout != b"4243" {
        assert!(std::env::var_os("CI").is_none(), "cannot set a login uid");
        eprintln!("skipped: cannot set a login uid here (not root, or no CONFIG_AUDIT)");
        return;
    }
    let env = TestEnv::new();
    let out = env.path("audit.cast.zst");
    let mut c = env.command();
    c.arg("record")
        .arg("--out")
        .arg(&out)
        .arg("--key")
        .arg(&env.key)
        .args(["--", "true"])
        .stdin(Stdio::null());
    // SAFETY: open, write and close are async-signal-safe; the buffers outlive the calls.
    unsafe {
        c.pre_exec(|| {
            let fd = libc::open(c"/proc/self/loginuid".as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let uid = b"4243";
            let _ = libc::write(fd, uid.as_ptr().cast(), uid.len());
            libc::close(fd);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    verified(&env, &out);
    let data = fs::read(&out).unwrap();
    let first = sealcast_format::scan(&data).next().unwrap().unwrap();
    let mut text = Vec::new();
    sealcast_format::decompress_frame(first.bytes, first.offset, &mut text).unwrap();
    let line = text.split(|&b| b == b'\n').next().unwrap();
    let info = sealcast_format::SessionInfo::from_header_line(line).unwrap();
    assert_eq!(info.loginuid, Some(4243));
    assert!(
        info.audit_session.is_some(),
        "{}",
        String::from_utf8_lossy(line)
    );
    assert_eq!(info.shape, None);
}
