//! End to end through real OpenSSH: a private sshd with `ForceCommand sealcast-shell`
//! (installed set-uid `sealcast` by `sealcast install-bastion`), driven by the real `ssh`,
//! `scp`, `sftp` and `rsync` clients as a throwaway test user. See tests/bastion/harness.rs.
//!
//! Every test ends by verifying every recording it produced with `sealcast verify --trusted
//! <allowed_signers>` (those broken on purpose — a full disk — are checked to be a verifiable
//! prefix instead, never OK-but-wrong).
//!
//! Needs root and openssh-server; skipped with a message otherwise, unless `CI` is set.

mod bastion;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bastion::harness::{
    code, free_port, processes, receipt, require, run, run_timeout, wait_for, Bastion, Options,
    PtyClient,
};
use bastion::recording::Rec;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Statuses a recording cut short by a full disk may have: a verified prefix, never a
/// forgery.
const PREFIX_STATUSES: [&str; 3] = ["OK", "UNCLOSED", "UNSEALED_TAIL"];

/// The user's processes have all gone (nothing the session started outlives it).
fn user_processes_gone(b: &Bastion) -> bool {
    wait_for(Duration::from_secs(15), || {
        !processes().iter().any(|p| p.uid == b.uid)
    })
}

#[test]
fn exec_session_keeps_stdout_and_stderr_apart() {
    if !require("exec_session_keeps_stdout_and_stderr_apart") {
        return;
    }
    let b = Bastion::start();
    let before = b.recordings();
    let cmd = "cat; echo to-stderr-$((40+2)) >&2; exit 7";
    let o = run(&mut b.ssh(&[cmd]), b"line-from-stdin\n", 60);
    assert_eq!(code(&o.status), 7, "stderr: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "line-from-stdin\n");
    assert!(
        text(&o.stderr).contains("to-stderr-42"),
        "{}",
        text(&o.stderr)
    );
    assert!(!text(&o.stdout).contains("to-stderr"));

    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(rec.shape().as_deref(), Some("exec"), "{}", rec.describe());
    assert_eq!(rec.meta("original_command").as_deref(), Some(cmd));
    assert_eq!(rec.meta("user").as_deref(), Some(b.user.as_str()));
    assert_eq!(rec.meta("host").as_deref(), Some(bastion::harness::HOST_ID));
    let client = rec.meta("ssh_client").unwrap_or_default();
    assert!(client.starts_with("127.0.0.1 "), "ssh_client {client:?}");
    assert_eq!(
        rec.meta("ssh_server"),
        Some(format!("127.0.0.1 {}", b.port))
    );
    assert!(
        rec.text("o").contains("line-from-stdin"),
        "{}",
        rec.describe()
    );
    assert!(rec.text("e").contains("to-stderr-42"), "{}", rec.describe());
    assert!(!rec.text("o").contains("to-stderr"), "stderr recorded as o");
    assert_eq!(rec.exit().as_deref(), Some("7"));
    assert_eq!(rec.stream("i"), b"", "input recorded without capture_input");

    // Binary data through stdin and stdout, byte-exact both ways, 1 MiB.
    let before = b.recordings();
    let data = noise(1 << 20, 7);
    let o = run(&mut b.ssh(&["cat"]), &data, 120);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        o.stdout == data,
        "cat through the bastion changed the bytes"
    );
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert!(
        rec.stream("o") == data,
        "recorded o stream is not the exact output"
    );
    assert_eq!(b.assert_all_verify(&[]), 2);
}

#[test]
fn exit_codes_are_propagated() {
    if !require("exit_codes_are_propagated") {
        return;
    }
    let b = Bastion::start();
    for want in [0, 1, 2, 42, 255] {
        let before = b.recordings();
        let o = run(&mut b.ssh(&[&format!("exit {want}")]), b"", 60);
        assert_eq!(code(&o.status), want, "exit {want}: {}", text(&o.stderr));
        let rec = Rec::load(&b.wait_new_recording(&before, 30));
        assert_eq!(rec.exit(), Some(want.to_string()), "{}", rec.describe());
    }
    // `ssh host false` and a command that does not exist.
    let o = run(&mut b.ssh(&["false"]), b"", 60);
    assert_eq!(code(&o.status), 1);
    let o = run(&mut b.ssh(&["no-such-command-sealcast"]), b"", 60);
    assert_eq!(code(&o.status), 127, "{}", text(&o.stderr));
    // Killed by a signal: 128 + N, as a shell reports it (plain sshd would make ssh exit 255).
    let before = b.recordings();
    let o = run(&mut b.ssh(&["kill -TERM $$"]), b"", 60);
    assert_ne!(code(&o.status), 0);
    eprintln!("killed by SIGTERM: client exit {}", code(&o.status));
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(rec.exit().as_deref(), Some("143"), "{}", rec.describe());
    // With a PTY too.
    let o = run(&mut b.ssh(&["-tt", "exit 9"]), b"", 60);
    assert_eq!(code(&o.status), 9, "{}", text(&o.stderr));
    b.assert_all_verify(&[]);
}

#[test]
fn shell_without_pty_reads_commands_from_stdin() {
    if !require("shell_without_pty_reads_commands_from_stdin") {
        return;
    }
    let b = Bastion::start();
    let before = b.recordings();
    let o = run(
        &mut b.ssh(&["-T"]),
        b"echo notty-$((1+1))\necho oops >&2\nexit 4\n",
        60,
    );
    assert_eq!(code(&o.status), 4, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "notty-2\n");
    assert!(text(&o.stderr).contains("oops"));
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(
        rec.shape().as_deref(),
        Some("shell-no-pty"),
        "{}",
        rec.describe()
    );
    assert!(rec.text("o").contains("notty-2"));
    assert!(rec.text("e").contains("oops"));
    assert_eq!(rec.exit().as_deref(), Some("4"));
    b.assert_all_verify(&[]);
}

#[test]
fn multiplexed_sessions_get_their_own_recordings() {
    if !require("multiplexed_sessions_get_their_own_recordings") {
        return;
    }
    let b = Bastion::start();
    let sock = b.dir.join("mux.sock");
    let control = format!("ControlPath={}", sock.display());
    let mut master = b
        .ssh(&["-N", "-o", "ControlMaster=yes", "-o", &control])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || sock.exists()),
        "no control socket"
    );
    let before = b.recordings();
    for i in 0..2 {
        let o = run(
            &mut b.ssh(&[
                "-o",
                "ControlMaster=no",
                "-o",
                &control,
                &format!("echo mux-{i}"),
            ]),
            b"",
            60,
        );
        assert_eq!(text(&o.stdout), format!("mux-{i}\n"), "{}", text(&o.stderr));
    }
    master.kill().unwrap();
    master.wait().unwrap();
    let mut seen = Vec::new();
    let ok = wait_for(Duration::from_secs(30), || {
        seen = b
            .recordings()
            .into_iter()
            .filter(|p| !before.contains(p) && bastion::harness::receipt(p).is_file())
            .collect();
        seen.len() == 2
    });
    assert!(ok, "expected two sealed recordings, have {seen:?}");
    let recs: Vec<Rec> = seen.iter().map(|p| Rec::load(p)).collect();
    assert_ne!(recs[0].meta("session"), recs[1].meta("session"));
    assert_eq!(
        recs[0].meta("ssh_client"),
        recs[1].meta("ssh_client"),
        "one connection, one client address and port"
    );
    let mut outs: Vec<String> = recs.iter().map(|r| r.text("o")).collect();
    outs.sort();
    assert_eq!(outs, ["mux-0\n", "mux-1\n"]);
    b.assert_all_verify(&[]);
}

#[test]
fn ssh_t_runs_the_command_in_a_pty() {
    if !require("ssh_t_runs_the_command_in_a_pty") {
        return;
    }
    let b = Bastion::start();
    let before = b.recordings();
    let mut argv = b.ssh_argv();
    argv.extend([
        "-t".to_string(),
        b.destination(),
        "tty; stty size; echo pty-$((20+1)); exit 3".to_string(),
    ]);
    let mut c = PtyClient::spawn(&argv, 90, 25);
    c.expect("pty-21", 30);
    assert_eq!(c.wait(30), 3);
    let out = c.text();
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(
        out.contains("25 90"),
        "the PTY has the client's size: {out}"
    );

    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(
        rec.shape().as_deref(),
        Some("exec-pty"),
        "{}",
        rec.describe()
    );
    assert!(rec.text("o").contains("pty-21"));
    assert!(rec.text("o").contains("25 90"));
    assert_eq!(rec.exit().as_deref(), Some("3"));
    assert_eq!(
        (
            rec.header["term"]["cols"].as_u64(),
            rec.header["term"]["rows"].as_u64()
        ),
        (Some(90), Some(25))
    );
    b.assert_all_verify(&[]);
}

#[test]
fn interactive_session_with_resize_and_nonzero_exit() {
    if !require("interactive_session_with_resize_and_nonzero_exit") {
        return;
    }
    let b = Bastion::start();
    let before = b.recordings();
    let mut argv = b.ssh_argv();
    argv.extend(["-tt".to_string(), b.destination()]);
    let mut c = PtyClient::spawn(&argv, 100, 30);
    // Markers computed by the shell, so they only appear once it ran the line.
    c.send("echo ready-$((1+1))\r");
    c.expect("ready-2", 30);
    c.send("stty size; echo size-$((2+2))\r");
    c.expect("size-4", 20);
    assert!(c.text().contains("30 100"), "{}", c.text());
    c.resize(120, 40);
    // The size travels client -> sshd -> recorder -> the session's PTY: ask until it
    // arrived (each marker is computed by the shell, so it appears once the line ran).
    for n in 0..100 {
        if c.text().contains("40 120") {
            break;
        }
        c.send(&format!("stty size; echo resized-$(({n}+1000))\r"));
        c.expect(&format!("resized-{}", n + 1000), 20);
    }
    assert!(
        c.text().contains("40 120"),
        "resize not applied:\n{}",
        c.text()
    );
    c.send("echo hi-$((6*7))\r");
    c.expect("hi-42", 20);
    c.send("exit 5\r");
    assert_eq!(c.wait(30), 5, "client exit code; output:\n{}", c.text());

    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(
        rec.shape().as_deref(),
        Some("interactive"),
        "{}",
        rec.describe()
    );
    assert_eq!(rec.meta("original_command"), None, "{}", rec.describe());
    assert_eq!(
        (
            rec.header["term"]["cols"].as_u64(),
            rec.header["term"]["rows"].as_u64()
        ),
        (Some(100), Some(30))
    );
    assert!(
        rec.resizes().iter().any(|r| r == "120x40"),
        "no r 120x40 event: {:?}",
        rec.resizes()
    );
    let o = rec.text("o");
    for want in ["ready-2", "30 100", "40 120", "hi-42"] {
        assert!(o.contains(want), "{want} not recorded");
    }
    assert_eq!(rec.exit().as_deref(), Some("5"));
    assert!(rec.stream("i").is_empty(), "keystrokes recorded by default");
    assert!(user_processes_gone(&b), "the session left processes behind");
    b.assert_all_verify(&[]);
}

#[test]
fn killed_client_closes_the_recording() {
    if !require("killed_client_closes_the_recording") {
        return;
    }
    let b = Bastion::start();

    // Interactive: kill -9 the client while the shell prints.
    let before = b.recordings();
    let mut argv = b.ssh_argv();
    argv.extend(["-tt".to_string(), b.destination()]);
    let mut c = PtyClient::spawn(&argv, 80, 24);
    c.send("echo ready-$((1+1))\r");
    c.expect("ready-2", 30);
    c.send("while :; do echo tick-$((1+1)); sleep 0.1; done\r");
    c.expect("tick-2", 20);
    c.kill9();
    let pty_rec = b.wait_new_recording(&before, 30);
    let rec = Rec::load(&pty_rec);
    assert!(rec.text("o").contains("tick-2"), "{}", rec.describe());
    b.assert_verifies(&pty_rec);
    assert!(user_processes_gone(&b), "the loop outlived the session");

    // Exec without a PTY: same, the loop writing to pipes.
    let before = b.recordings();
    let mut child = b
        .ssh(&["while :; do echo tock-$((2+2)); sleep 0.1; done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    assert_eq!(first, "tock-4");
    child.kill().unwrap();
    child.wait().unwrap();
    let exec_rec = b.wait_new_recording(&before, 30);
    let rec = Rec::load(&exec_rec);
    assert!(rec.text("o").contains("tock-4"), "{}", rec.describe());
    assert!(user_processes_gone(&b), "the loop outlived the session");

    assert_eq!(b.assert_all_verify(&[]), 2);
}

#[test]
fn silent_exec_session_is_closed_when_the_client_dies() {
    if !require("silent_exec_session_is_closed_when_the_client_dies") {
        return;
    }
    let b = Bastion::start();
    // A command that prints nothing and never reads stdin: no SIGPIPE will ever end it, so
    // the recorder has to notice the client is gone (sshd closes its end of the pipes; it
    // sends no SIGHUP without a PTY) and close the recording itself.
    let before = b.recordings();
    let mut child = b
        .ssh(&["echo started; exec sleep 120"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "started\n");
    child.kill().unwrap();
    child.wait().unwrap();
    let t0 = Instant::now();
    let sealed = wait_for(Duration::from_secs(30), || {
        b.recordings()
            .iter()
            .any(|p| !before.contains(p) && bastion::harness::receipt(p).is_file())
    });
    let left: Vec<String> = processes()
        .into_iter()
        .filter(|p| p.uid == b.uid)
        .map(|p| {
            let cmd = fs::read_to_string(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
            format!("{} {}", p.pid, cmd.replace('\0', " ").trim_end())
        })
        .collect();
    eprintln!(
        "silent exec after the client died: sealed {sealed} ({:?}); the user's processes: \
         {left:?}",
        t0.elapsed()
    );
    assert!(
        sealed,
        "the recording of a silent exec session stays open after the client died (the \
         user's processes: {left:?})"
    );
    b.assert_all_verify(&[]);
}

/// A file for transfers: pseudo-random with a marker line that must not show up in a
/// metadata-only recording.
fn transfer_payload(len: usize) -> Vec<u8> {
    let mut v = b"SEALCAST-PAYLOAD-MARKER-7f3a\n".to_vec();
    v.extend(noise(len, 99));
    v
}

fn assert_no_payload(rec: &Rec, size: usize) {
    let all = rec.all_bytes();
    assert!(
        !text(&all).contains("SEALCAST-PAYLOAD-MARKER-7f3a"),
        "payload recorded under the metadata policy: {}",
        rec.describe()
    );
    assert!(
        all.len() < size / 4,
        "{} event bytes recorded for a {size}-byte transfer under the metadata policy",
        all.len()
    );
}

/// The transfer summary of a metadata recording, with the direction's byte count at least
/// `size`.
fn assert_summary(rec: &Rec, upload: bool, size: usize) {
    let sums = rec.summaries();
    assert_eq!(sums.len(), 1, "one s event expected: {}", rec.describe());
    let s = &sums[0];
    assert_eq!(s["policy"], "metadata", "{s}");
    let (dir, other) = if upload {
        ("bytes_in", "bytes_out")
    } else {
        ("bytes_out", "bytes_in")
    };
    let n = s[dir].as_u64().unwrap_or(0);
    assert!(
        n >= size as u64,
        "{dir} = {n} < {size} for {} ({other} = {}): {s}",
        if upload { "an upload" } else { "a download" },
        s[other]
    );
}

#[test]
fn scp_upload_and_download_legacy_and_sftp_protocols() {
    if !require("scp_upload_and_download_legacy_and_sftp_protocols") {
        return;
    }
    let b = Bastion::start();
    let size = 300_000;
    let payload = transfer_payload(size);
    let local = b.dir.join("local.bin");
    fs::write(&local, &payload).unwrap();

    for (proto, flag, shape) in [("legacy", "-O", "scp"), ("sftp", "-s", "sftp")] {
        let name = format!("up-{proto}.bin");
        // Upload.
        let before = b.recordings();
        let o = run(
            &mut b.scp(&[flag, &local.display().to_string(), &b.remote(&name)]),
            b"",
            120,
        );
        assert!(o.status.success(), "scp {flag} upload: {}", text(&o.stderr));
        assert!(
            fs::read(b.home.join(&name)).unwrap() == payload,
            "uploaded file differs"
        );
        let rec = Rec::load(&b.wait_new_recording(&before, 30));
        assert_eq!(rec.shape().as_deref(), Some(shape), "{}", rec.describe());
        assert_eq!(rec.meta("policy").as_deref(), Some("metadata"));
        assert_summary(&rec, true, size);
        assert_no_payload(&rec, size);
        if proto == "legacy" {
            let cmd = rec.meta("original_command").unwrap_or_default();
            assert!(cmd.starts_with("scp ") && cmd.contains(" -t "), "{cmd}");
        }

        // Download.
        let back = b.dir.join(format!("down-{proto}.bin"));
        let before = b.recordings();
        let o = run(
            &mut b.scp(&[flag, &b.remote(&name), &back.display().to_string()]),
            b"",
            120,
        );
        assert!(
            o.status.success(),
            "scp {flag} download: {}",
            text(&o.stderr)
        );
        assert!(
            fs::read(&back).unwrap() == payload,
            "downloaded file differs"
        );
        let rec = Rec::load(&b.wait_new_recording(&before, 30));
        assert_eq!(rec.shape().as_deref(), Some(shape), "{}", rec.describe());
        assert_summary(&rec, false, size);
        assert_no_payload(&rec, size);
    }
    assert_eq!(b.assert_all_verify(&[]), 4);
}

fn sftp_batch_roundtrip(b: &Bastion, tag: &str) {
    let size = 200_000;
    let payload = transfer_payload(size);
    let local = b.dir.join(format!("sftp-{tag}.bin"));
    let back = b.dir.join(format!("sftp-{tag}-back.bin"));
    fs::write(&local, &payload).unwrap();
    let batch = b.dir.join(format!("batch-{tag}"));
    fs::write(
        &batch,
        format!(
            "mkdir dir-{tag}\nput {} dir-{tag}/f.bin\nls -l dir-{tag}\nget dir-{tag}/f.bin {}\n\
             rename dir-{tag}/f.bin dir-{tag}/g.bin\nrm dir-{tag}/g.bin\nrmdir dir-{tag}\n",
            local.display(),
            back.display()
        ),
    )
    .unwrap();
    let before = b.recordings();
    let o = run(&mut b.sftp(&["-b", &batch.display().to_string()]), b"", 120);
    assert!(
        o.status.success(),
        "sftp batch: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(fs::read(&back).unwrap() == payload, "sftp get differs");
    assert!(!b.home.join(format!("dir-{tag}")).exists());
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(rec.shape().as_deref(), Some("sftp"), "{}", rec.describe());
    let sums = rec.summaries();
    assert_eq!(sums.len(), 1, "{}", rec.describe());
    let (i, out) = (
        sums[0]["bytes_in"].as_u64().unwrap_or(0),
        sums[0]["bytes_out"].as_u64().unwrap_or(0),
    );
    assert!(
        i >= size as u64 && out >= size as u64,
        "in {i} out {out}: {}",
        sums[0]
    );
    assert_no_payload(&rec, 2 * size);
}

#[test]
fn sftp_batch_and_internal_sftp() {
    if !require("sftp_batch_and_internal_sftp") {
        return;
    }
    let mut b = Bastion::start();
    sftp_batch_roundtrip(&b, "server");
    // `Subsystem sftp internal-sftp`: sshd hands sealcast-shell the string `internal-sftp`,
    // which must run the real sftp-server.
    let opts = Options {
        sftp_subsystem: "internal-sftp".into(),
        ..Options::default()
    };
    b.restart_sshd(opts);
    let before = b.recordings();
    sftp_batch_roundtrip(&b, "internal");
    let rec = Rec::load(&b.wait_new_recording(&before, 5));
    assert_eq!(
        rec.meta("original_command").as_deref(),
        Some("internal-sftp")
    );
    assert_eq!(b.assert_all_verify(&[]), 2);
}

fn tree_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push((
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                ));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn rsync_over_ssh_both_ways() {
    if !require("rsync_over_ssh_both_ways") {
        return;
    }
    let b = Bastion::start();
    let src = b.dir.join("rsync-src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.bin"), transfer_payload(150_000)).unwrap();
    let before = b.recordings();
    let o = run(
        &mut b.rsync(&[
            "-a",
            &format!("{}/", src.display()),
            &b.remote("rsync-dst/"),
        ]),
        b"",
        120,
    );
    assert!(o.status.success(), "rsync up: {}", text(&o.stderr));
    assert_eq!(tree_files(&b.home.join("rsync-dst")), tree_files(&src));
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(rec.shape().as_deref(), Some("rsync"), "{}", rec.describe());
    assert!(rec
        .meta("original_command")
        .unwrap_or_default()
        .starts_with("rsync --server"));
    assert_summary(&rec, true, 150_000);
    assert_no_payload(&rec, 150_000);

    let back = b.dir.join("rsync-back");
    let before = b.recordings();
    let o = run(
        &mut b.rsync(&[
            "-a",
            &b.remote("rsync-dst/"),
            &format!("{}/", back.display()),
        ]),
        b"",
        120,
    );
    assert!(o.status.success(), "rsync down: {}", text(&o.stderr));
    assert_eq!(tree_files(&back), tree_files(&src));
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(rec.shape().as_deref(), Some("rsync"));
    assert_summary(&rec, false, 150_000);
    assert_eq!(b.assert_all_verify(&[]), 2);
}

#[test]
fn transfer_policy_deny_refuses_and_records_the_attempt() {
    if !require("transfer_policy_deny_refuses_and_records_the_attempt") {
        return;
    }
    let b = Bastion::start();
    b.set_config("transfer_policy", "\"deny\"");
    let local = b.dir.join("deny.bin");
    fs::write(&local, transfer_payload(10_000)).unwrap();
    let l = local.display().to_string();
    let batch = b.dir.join("deny-batch");
    fs::write(&batch, format!("put {l} denied-sftp.bin\n")).unwrap();

    let attempts: Vec<(&str, Command, &str)> = vec![
        (
            "scp -O",
            b.scp(&["-O", &l, &b.remote("denied-scp.bin")]),
            "scp",
        ),
        (
            "scp (sftp)",
            b.scp(&["-s", &l, &b.remote("denied-scp2.bin")]),
            "sftp",
        ),
        (
            "sftp",
            b.sftp(&["-b", &batch.display().to_string()]),
            "sftp",
        ),
        (
            "rsync",
            b.rsync(&[&l, &b.remote("denied-rsync.bin")]),
            "rsync",
        ),
    ];
    for (what, mut cmd, shape) in attempts {
        let before = b.recordings();
        let o = run(&mut cmd, b"", 60);
        assert!(!o.status.success(), "{what} was allowed under deny");
        let err = text(&o.stderr);
        eprintln!(
            "{what} under deny: exit {}, stderr {err:?}",
            code(&o.status)
        );
        let rec = Rec::load(&b.wait_new_recording(&before, 30));
        assert_eq!(rec.shape().as_deref(), Some(shape), "{}", rec.describe());
        assert_eq!(rec.meta("policy").as_deref(), Some("deny"));
        // The one-line message reaches the client where the client can show it: sshd
        // discards a subsystem's stderr (session.c: CHAN_EXTENDED_IGNORE), so sftp and
        // SFTP-mode scp only see the connection close.
        if shape != "sftp" {
            assert!(
                err.contains("sealcast: file transfer (")
                    && err.contains(") is not allowed on this host"),
                "{what}: {err}"
            );
        }
    }
    for f in [
        "denied-scp.bin",
        "denied-scp2.bin",
        "denied-sftp.bin",
        "denied-rsync.bin",
    ] {
        assert!(!b.home.join(f).exists(), "{f} was written under deny");
    }
    // Plain sessions still work.
    let o = run(&mut b.ssh(&["echo still-$((1+2))"]), b"", 60);
    assert_eq!(text(&o.stdout), "still-3\n");
    b.assert_all_verify(&[]);
}

#[test]
fn transfer_policy_full_records_the_payload() {
    if !require("transfer_policy_full_records_the_payload") {
        return;
    }
    let b = Bastion::start();
    b.set_config("transfer_policy", "\"full\"");
    let payload = transfer_payload(50_000);
    let local = b.dir.join("full.bin");
    fs::write(&local, &payload).unwrap();
    let in_stream = |rec: &Rec, code: &str| bastion_contains(&rec.stream(code), &payload);

    // Download: the payload is the command's output, recorded as `o`.
    fs::copy(&local, b.home.join("full-src.bin")).unwrap();
    let back = b.dir.join("full-back.bin");
    let before = b.recordings();
    let o = run(
        &mut b.scp(&["-O", &b.remote("full-src.bin"), &back.display().to_string()]),
        b"",
        60,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(fs::read(&back).unwrap() == payload);
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert_eq!(
        rec.meta("policy").as_deref(),
        Some("full"),
        "{}",
        rec.describe()
    );
    assert!(
        in_stream(&rec, "o"),
        "download payload not recorded: {}",
        rec.describe()
    );
    for s in rec.summaries() {
        assert_eq!(s["policy"], "full", "{s}");
    }

    // Upload: the payload is the command's *input*, recorded (as `i`) only with
    // capture_input — "full" records a transfer like any other command.
    let before = b.recordings();
    let o = run(
        &mut b.scp(&["-O", &local.display().to_string(), &b.remote("full-up.bin")]),
        b"",
        60,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    eprintln!(
        "full policy, upload without capture_input: payload recorded: {} ({})",
        rec.codes().iter().any(|c| in_stream(&rec, c)),
        rec.describe()
    );
    b.set_config("capture_input", "true");
    let before = b.recordings();
    let o = run(
        &mut b.scp(&[
            "-O",
            &local.display().to_string(),
            &b.remote("full-up2.bin"),
        ]),
        b"",
        60,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(fs::read(b.home.join("full-up2.bin")).unwrap() == payload);
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    assert!(
        in_stream(&rec, "i"),
        "upload payload not recorded: {}",
        rec.describe()
    );
    assert_eq!(rec.meta("capture_input").as_deref(), Some("true"));
    assert_eq!(b.assert_all_verify(&[]), 3);
}

fn bastion_contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The client's words for a server refusing a forward.
fn refused(stderr: &str) -> bool {
    [
        "administratively prohibited",
        "open failed",
        "forwarding failed",
    ]
    .iter()
    .any(|w| stderr.contains(w))
}

#[test]
fn forwarding_is_refused() {
    if !require("forwarding_is_refused") {
        return;
    }
    let b = Bastion::start();
    let target = format!("127.0.0.1:{}", b.port);

    // -W (what ProxyJump/-J uses): the channel open is refused.
    let o = run(&mut b.ssh(&["-W", &target]), b"", 30);
    assert_eq!(
        code(&o.status),
        255,
        "ssh -W succeeded: {}",
        text(&o.stderr)
    );
    assert!(refused(&text(&o.stderr)), "{}", text(&o.stderr));

    // -R: the server refuses the listener.
    let rport = free_port();
    let o = run(
        &mut b.ssh(&[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("{rport}:{target}"),
        ]),
        b"",
        30,
    );
    assert_eq!(
        code(&o.status),
        255,
        "ssh -R succeeded: {}",
        text(&o.stderr)
    );
    assert!(
        TcpStream::connect(("127.0.0.1", rport)).is_err(),
        "remote forward listener exists"
    );

    // -L: the client listens, but each connection's channel is refused by the server.
    let lport = free_port();
    let mut client = b
        .ssh(&["-N", "-L", &format!("{lport}:{target}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || TcpStream::connect((
            "127.0.0.1",
            lport
        ))
        .is_ok()),
        "ssh -L never listened"
    );
    let mut s = TcpStream::connect(("127.0.0.1", lport)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        !text(&buf).starts_with("SSH-2.0"),
        "data came through the -L forward: {:?}",
        text(&buf)
    );
    client.kill().unwrap();
    client.wait().unwrap();
    let mut err = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("ssh -L client stderr: {err:?}");

    // Agent and X11 forwarding give the session nothing.
    let o = run(
        &mut b.ssh(&[
            "-X",
            "-A",
            "echo display=${DISPLAY:-none} agent=${SSH_AUTH_SOCK:-none}",
        ]),
        b"",
        30,
    );
    assert_eq!(text(&o.stdout), "display=none agent=none\n");
    b.assert_all_verify(&[]);
}

const HOSTILE_BASHRC: &str = "exec /bin/sh -c 'echo pwned >> ~/pwned; echo HOSTILE-BASHRC-RAN'\n";

#[test]
fn hostile_bashrc_cannot_run_an_unrecorded_command() {
    if !require("hostile_bashrc_cannot_run_an_unrecorded_command") {
        return;
    }
    // ForceCommand alone, bash as the login shell: sshd runs `bash -c <ForceCommand>`, and
    // Debian's bash sources ~/.bashrc first (SSH_SOURCE_BASHRC), unrecorded — a hostile one
    // could exec anything instead. That setup cannot be recorded, so sealcast-shell refuses
    // every session in it: one line to the client, exit 1, an audit line saying why.
    {
        let b = Bastion::with(Options {
            login_shell: false,
            journal: true,
            ..Options::default()
        });
        b.write_user_file(".bashrc", b"echo ran >> ~/bashrc-ran\n", 0o644);
        let o = run(&mut b.ssh(&["echo legit-$((2+3))"]), b"", 60);
        let shell_bin = b.shell_bin.display().to_string();
        assert_eq!(code(&o.status), 1, "{o:?}");
        assert_eq!(text(&o.stdout), "");
        assert_eq!(
            text(&o.stderr),
            format!(
                "sealcast: session refused: the login shell of {} is /bin/bash, not \
                 sealcast-shell ({shell_bin}); this setup cannot be recorded\n",
                b.user
            )
        );
        // The reason, for the record: ~/.bashrc did run, before sealcast-shell.
        assert!(b.home.join("bashrc-ran").exists(), "~/.bashrc did not run");
        assert!(b.recordings().is_empty(), "{:?}", b.recordings());
        let audit = |j: &[std::collections::BTreeMap<String, String>]| {
            j.iter().any(|e| {
                e.get("SYSLOG_IDENTIFIER").map(String::as_str) == Some("sealcast-shell")
                    && e.get("PRIORITY").map(String::as_str) == Some("3")
                    && e.get("SEALCAST_USER") == Some(&b.user)
                    && e.get("MESSAGE").is_some_and(|m| {
                        m.starts_with(&format!(
                            "session refused: login shell /bin/bash is not this sealcast-shell \
                             ({shell_bin}): with ForceCommand alone sshd runs `/bin/bash -c \
                             <ForceCommand>`"
                        ))
                    })
            })
        };
        assert!(
            wait_for(Duration::from_secs(10), || audit(&b.journal())),
            "no audit line: {:#?}",
            b.journal()
        );
    }

    // The recommended setup: sealcast-shell is also the login shell.
    let b = Bastion::with(Options {
        login_shell: true,
        ..Options::default()
    });
    b.write_user_file(".bashrc", HOSTILE_BASHRC.as_bytes(), 0o644);
    let pwned = b.home.join("pwned");

    // ssh host cmd.
    let before = b.recordings();
    let o = run(&mut b.ssh(&["echo legit-$((2+3))"]), b"", 60);
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    eprintln!(
        "login-shell mode, exec: exit {}, stdout {:?}, pwned {}",
        code(&o.status),
        text(&o.stdout),
        pwned.exists()
    );
    let recorded = rec.text("o");
    if pwned.exists() {
        assert!(
            recorded.contains("HOSTILE-BASHRC-RAN"),
            "~/.bashrc ran outside the recording: {}",
            rec.describe()
        );
    } else {
        assert_eq!(text(&o.stdout), "legit-5\n");
        assert!(recorded.contains("legit-5"), "{}", rec.describe());
    }
    assert_eq!(
        rec.meta("original_command").as_deref(),
        Some("echo legit-$((2+3))")
    );

    // Interactive.
    let _ = fs::remove_file(&pwned);
    let before = b.recordings();
    let mut argv = b.ssh_argv();
    argv.extend(["-tt".to_string(), b.destination()]);
    let mut c = PtyClient::spawn(&argv, 80, 24);
    let start = Instant::now();
    let _ = wait_for(Duration::from_secs(20), || {
        c.text().contains("HOSTILE-BASHRC-RAN") || c.text().contains('$')
    });
    if !c.text().contains("HOSTILE-BASHRC-RAN") {
        c.send("echo ready-$((1+1))\r");
        let _ = wait_for(Duration::from_secs(10), || c.text().contains("ready-2"));
        c.send("exit\r");
    }
    let _ = c.wait(30);
    let rec = Rec::load(&b.wait_new_recording(&before, 30));
    eprintln!(
        "login-shell mode, interactive ({:?}): pwned {}, client saw:\n{}",
        start.elapsed(),
        pwned.exists(),
        c.text()
    );
    if pwned.exists() {
        assert!(
            rec.text("o").contains("HOSTILE-BASHRC-RAN"),
            "~/.bashrc ran outside the recording: {}",
            rec.describe()
        );
    }
    assert_eq!(
        rec.shape().as_deref(),
        Some("interactive"),
        "{}",
        rec.describe()
    );
    b.assert_all_verify(&[]);
}

/// A session printing 8.1 MB of base64 noise over about 5 s (100 bursts of 81,053 bytes):
/// far more than a 1 MiB spool holds once compressed (~0.75), and slow enough that a
/// recorder which stops the session when the spool fills visibly cuts it short.
const FLOOD: &str =
    "for i in $(seq 1 100); do head -c 60000 /dev/urandom | base64; sleep 0.05; done";
const FLOOD_LEN: usize = 100 * (80_000 + 1_053); // base64 chars + one LF per 76, per burst

#[test]
fn disk_full_spool_fail_closed() {
    if !require("disk_full_spool_fail_closed") {
        return;
    }
    let mut b = Bastion::start();

    // A spool with no room: a new session is refused and runs nothing.
    let full = b.small_spool("spool-full", 256 * 1024);
    Bastion::fill(&full, 0);
    let o = run(&mut b.ssh(&["echo ran > ~/ran-full; echo ran"]), b"", 60);
    eprintln!(
        "fail_closed, full spool: exit {}, stdout {:?}, stderr {:?}",
        code(&o.status),
        text(&o.stdout),
        text(&o.stderr)
    );
    assert_ne!(code(&o.status), 0, "session allowed on a full spool");
    assert!(!text(&o.stdout).contains("ran"));
    assert!(!b.home.join("ran-full").exists(), "the command ran");
    assert!(
        text(&o.stderr).contains("sealcast"),
        "no message: {:?}",
        text(&o.stderr)
    );

    for r in Bastion::recordings_in(&full) {
        assert_ne!(
            b.verify_status(&r),
            "OK",
            "{} cannot be complete",
            r.display()
        );
    }

    // A spool that fills up during the session: the session is ended.
    let tight = b.small_spool("spool-tight", 1024 * 1024);
    let t0 = Instant::now();
    let o = run(&mut b.ssh(&[FLOOD]), b"", 120);
    let recs = Bastion::recordings_in(&tight);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let recorded = Rec::load(&recs[0]).stream("o").len();
    eprintln!(
        "fail_closed, spool fills mid-session: exit {} after {:?}; {} of {FLOOD_LEN} bytes \
         reached the client, {recorded} are in the verified recording; stderr {:?}",
        code(&o.status),
        t0.elapsed(),
        o.stdout.len(),
        text(&o.stderr)
    );
    assert_eq!(code(&o.status), 1, "session not ended on a full spool");
    assert!(
        text(&o.stderr).contains("sealcast: recording failed ("),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.len() < FLOOD_LEN, "all output went through");
    // fail_closed means nothing much reaches the client unrecorded: allow the data in flight
    // (pipe buffers, a few relay chunks), not seconds of output.
    let unrecorded = o.stdout.len().saturating_sub(recorded);
    assert!(
        unrecorded < 1 << 20,
        "{unrecorded} bytes reached the client after the recording failed (fail_closed)"
    );
    let status = b.verify_status(&recs[0]);
    eprintln!("its recording: {}", b.verify_human(&recs[0]));
    assert!(PREFIX_STATUSES.contains(&status.as_str()), "{status}");
    assert!(
        user_processes_gone(&b),
        "the session's processes outlived it"
    );
    b.assert_all_verify(&[]);
}

#[test]
fn disk_full_spool_fail_open() {
    if !require("disk_full_spool_fail_open") {
        return;
    }
    let mut b = Bastion::start();
    b.set_config("fail_closed", "false");

    // No room at all: the session still runs (and sealcast says so).
    let full = b.small_spool("spool-full", 256 * 1024);
    Bastion::fill(&full, 0);
    let o = run(&mut b.ssh(&["echo ran-$((1+1))"]), b"", 60);
    eprintln!(
        "fail_open, full spool: exit {}, stdout {:?}, stderr {:?}",
        code(&o.status),
        text(&o.stdout),
        text(&o.stderr)
    );
    assert_eq!(code(&o.status), 0);
    assert_eq!(text(&o.stdout), "ran-2\n");
    assert!(
        text(&o.stderr).contains("session NOT recorded") || text(&o.stderr).contains("UNRECORDED"),
        "no loud warning: {}",
        text(&o.stderr)
    );
    for r in Bastion::recordings_in(&full) {
        assert_ne!(
            b.verify_status(&r),
            "OK",
            "{} cannot be complete",
            r.display()
        );
    }

    // Fills during the session: every byte still reaches the client.
    let tight = b.small_spool("spool-tight", 1024 * 1024);
    let o = run(&mut b.ssh(&[FLOOD]), b"", 180);
    eprintln!(
        "fail_open, spool fills mid-session: exit {}, {} bytes, stderr {:?}",
        code(&o.status),
        o.stdout.len(),
        text(&o.stderr)
    );
    assert_eq!(code(&o.status), 0);
    assert_eq!(o.stdout.len(), FLOOD_LEN, "output lost under fail_open");
    assert!(
        text(&o.stderr).contains("UNRECORDED"),
        "{}",
        text(&o.stderr)
    );
    for r in Bastion::recordings_in(&tight) {
        let status = b.verify_status(&r);
        eprintln!("its recording: {}", b.verify_human(&r));
        assert!(PREFIX_STATUSES.contains(&status.as_str()), "{status}");
    }
    b.assert_all_verify(&[]);
}

/// Tries each attack and prints `DENIED name` or `ALLOWED name`.
const ATTACKS: &str = r#"
key=$1; rec=$2; spool=$3; pid=$4
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "ALLOWED $name"; else echo "DENIED $name"; fi; }
try read-key cat "$key"
try copy-key cp "$key" ./stolen.key
try list-spool ls "$spool"
try read-recording cat "$rec"
try append-recording sh -c 'echo x >> "$0"' "$rec"
try rename-recording sh -c 'mv "$0" "$0.moved" && mv "$0.moved" "$0"' "$rec"
try delete-receipt rm "$rec.seal"
try truncate-recording truncate -s 0 "$rec"
try delete-recording rm "$rec"
try new-file-in-spool sh -c 'echo x > "$0/fake.cast.zst"' "$spool"
try open-recorder-mem python3 -c 'import sys; open("/proc/%s/mem" % sys.argv[1], "rb")' "$pid"
try read-recorder-environ sh -c 'head -c 1 /proc/$0/environ' "$pid"
try ptrace-python python3 -c 'import ctypes,sys; l=ctypes.CDLL(None, use_errno=True); sys.exit(0 if l.ptrace(16, int(sys.argv[1]), 0, 0) == 0 else 1)' "$pid"
if command -v strace >/dev/null; then try strace sh -c 'timeout 3 strace -p "$0" -e trace=none 2>&1 | grep -q "Process $0 attached"' "$pid"; else echo "NOTOOL strace"; fi
if command -v gdb >/dev/null; then try gdb sh -c 'timeout 20 gdb -nx -batch -p "$0" -ex "info registers rip" 2>&1 | grep -q "^rip"' "$pid"; else echo "NOTOOL gdb"; fi
try stop-recorder kill -STOP "$pid"
try kill-recorder kill -KILL "$pid"
try kill-own-recorder kill -KILL "$PPID"
echo done-attacks
"#;

#[test]
fn user_cannot_read_the_key_touch_recordings_or_trace_the_recorder() {
    if !require("user_cannot_read_the_key_touch_recordings_or_trace_the_recorder") {
        return;
    }
    let b = Bastion::start();
    // A finished recording to attack.
    let before = b.recordings();
    let o = run(&mut b.ssh(&["echo evidence-$((1+1))"]), b"", 60);
    assert!(o.status.success());
    let target = b.wait_new_recording(&before, 30);
    let target_bytes = fs::read(&target).unwrap();

    // A live session whose recorder is the debugger's target.
    let before_live = b.recordings();
    let mut live = b
        .ssh(&["echo live-$((1+1)); sleep 20; echo still-alive"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut live_out = BufReader::new(live.stdout.take().unwrap());
    let mut first = String::new();
    live_out.read_line(&mut first).unwrap();
    assert_eq!(first, "live-2\n");
    let recorders = b.recorder_pids();
    assert!(!recorders.is_empty(), "no running sealcast-shell found");
    let pid = recorders[0];
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    eprintln!("recorder {pid}: {uid_line}");
    let ruid: u32 = uid_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_ne!(
        ruid, b.uid,
        "the recorder's real uid is the user's: {uid_line}"
    );

    b.write_user_file("attacks.sh", ATTACKS.as_bytes(), 0o755);
    let args = [
        b.signing_key.display().to_string(),
        target.display().to_string(),
        b.spool.display().to_string(),
        pid.to_string(),
    ];
    let check = |where_: &str, out: &str| {
        assert!(
            out.contains("done-attacks"),
            "{where_}: script did not finish:\n{out}"
        );
        let allowed: Vec<&str> = out.lines().filter(|l| l.starts_with("ALLOWED")).collect();
        assert!(allowed.is_empty(), "{where_}: {allowed:?}\n{out}");
        let denied = out.lines().filter(|l| l.starts_with("DENIED")).count();
        assert!(denied >= 16, "{where_}: only {denied} attempts ran:\n{out}");
    };

    // From inside a recorded session (the attempt itself is recorded).
    let before_attack = b.recordings();
    let cmd = format!("sh ~/attacks.sh {}", args.join(" "));
    let o = run(&mut b.ssh(&[&cmd]), b"", 120);
    eprintln!("inside a session:\n{}", text(&o.stdout));
    check("ssh session", &text(&o.stdout));
    // From a process of the user outside any session (e.g. a cron job).
    let o = run(b.as_user("/bin/sh").arg("attacks.sh").args(&args), b"", 120);
    eprintln!("as the user outside sessions:\n{}", text(&o.stdout));
    check("local process", &text(&o.stdout));

    assert!(!b.home.join("stolen.key").exists());

    // Control: the same script against the user's own files and process succeeds, so the
    // DENIED lines above come from the permissions, not from broken attacks.
    let own_dir = b.home.join("own-spool");
    let o = run(
        b.as_user("/bin/sh").arg("-c").arg(
            "mkdir -p own-spool && echo k > own.key && echo r > own-spool/own.cast.zst && \
             echo s > own-spool/own.cast.zst.seal && (exec sleep 60 >/dev/null 2>&1 </dev/null) & sleep 0.5; \
             sh attacks.sh own.key own-spool/own.cast.zst own-spool $!; kill -9 $! 2>/dev/null; true",
        ),
        b"",
        120,
    );
    let control = text(&o.stdout);
    eprintln!("control, against the user's own files and process:\n{control}");
    let denied: Vec<&str> = control
        .lines()
        .filter(|l| l.starts_with("DENIED") && *l != "DENIED kill-own-recorder")
        .collect();
    assert!(
        control.contains("done-attacks") && denied.is_empty(),
        "the attack script fails even where it is allowed: {denied:?}\n{control}"
    );
    assert!(own_dir.exists());

    // The live session and its recorder survived, and finish normally.
    let mut rest = String::new();
    live_out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "still-alive\n", "the live session was disturbed");
    assert!(live.wait().unwrap().success());
    assert_eq!(
        fs::read(&target).unwrap(),
        target_bytes,
        "the recording changed"
    );
    assert!(!b.spool.join("fake.cast.zst").exists());
    let attack_rec = b
        .recordings()
        .into_iter()
        .find(|p| {
            !before_attack.contains(p)
                && !before_live.contains(p)
                && Rec::load(p)
                    .meta("original_command")
                    .is_some_and(|c| c.contains("attacks.sh"))
        })
        .expect("the attack session was recorded");
    assert!(Rec::load(&attack_rec).text("o").contains("DENIED read-key"));
    b.wait_new_recording(&before_live, 30);
    b.assert_all_verify(&[]);
}

// ---------------------------------------------------------------------------------------
// Transfer look-alikes and other ways around the recording (SPEC §10 "Transfers" and
// "Escape analysis"): every attempt is either refused before anything runs or recorded with
// everything the client saw.

/// Words starting with `MARK` in `text` (a marker is `MARK` followed by `A-Z`, `0-9`, `-`).
fn markers(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'))
        .filter(|w| w.starts_with("MARK"))
        .map(str::to_string)
        .collect()
}

/// One session attempt and what it left behind.
struct Attempt {
    what: String,
    out: Output,
    /// Its recordings, oldest first, each sealed and verified OK.
    recs: Vec<Rec>,
}

/// Run the client `cmd` with `stdin`, then check the one rule: the session was either
/// refused before anything ran (no recording, non-zero exit, no marker at the client) or
/// recorded — every recording it made sealed and verifying OK, and every marker the client
/// saw present in the `o`/`e` events of one of them. `Err` says how the rule broke.
fn attempt(b: &Bastion, what: &str, mut cmd: Command, stdin: &[u8]) -> Result<Attempt, String> {
    let before = b.recordings();
    let (out, timed_out) = run_timeout(&mut cmd, stdin, 60);
    if timed_out {
        return Err(format!("{what}: the client timed out"));
    }
    let seen = markers(&format!("{}{}", text(&out.stdout), text(&out.stderr)));
    // sealcast-shell creates a session's recording before the command starts, so by the
    // time the client has the exit status every recording of the session exists.
    let new: Vec<PathBuf> = b
        .recordings()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let attempt = |recs| Attempt {
        what: what.to_string(),
        out: out.clone(),
        recs,
    };
    if new.is_empty() {
        return if seen.is_empty() && !out.status.success() {
            Ok(attempt(Vec::new()))
        } else {
            Err(format!(
                "{what}: no recording, yet exit {} and markers {seen:?} at the client",
                code(&out.status)
            ))
        };
    }
    if !wait_for(Duration::from_secs(30), || {
        new.iter().all(|p| receipt(p).is_file())
    }) {
        return Err(format!("{what}: a recording was never sealed: {new:?}"));
    }
    let mut recorded = String::new();
    let mut recs = Vec::new();
    for p in &new {
        let status = b.verify_status(p);
        if status != "OK" {
            return Err(format!("{what}: {} is {status}", p.display()));
        }
        let r = Rec::load(p);
        recorded.push_str(&r.text("o"));
        recorded.push_str(&r.text("e"));
        recs.push(r);
    }
    let missing: Vec<&String> = seen
        .iter()
        .filter(|m| !recorded.contains(m.as_str()))
        .collect();
    if !missing.is_empty() {
        let described: Vec<String> = recs.iter().map(Rec::describe).collect();
        return Err(format!(
            "{what}: {missing:?} reached the client but no recording holds them: {described:?}"
        ));
    }
    Ok(attempt(recs))
}

impl Attempt {
    /// The single recording, with shape `shape`.
    fn one(&self, shape: &str) -> Result<&Rec, String> {
        let [r] = &self.recs[..] else {
            return Err(format!(
                "{}: {} recordings, expected one",
                self.what,
                self.recs.len()
            ));
        };
        if r.shape().as_deref() != Some(shape) {
            return Err(format!(
                "{}: not a {shape} recording: {}",
                self.what,
                r.describe()
            ));
        }
        Ok(r)
    }

    /// An ordinary `exec` session recorded in full: the exact stdout and stderr the client
    /// got are the recording's `o` and `e` streams.
    fn recorded_in_full(&self) -> Result<&Rec, String> {
        let r = self.one("exec")?;
        if r.stream("o") != self.out.stdout || r.stream("e") != self.out.stderr {
            return Err(format!(
                "{}: client stdout {:?} stderr {:?}, recorded o {:?} e {:?}",
                self.what,
                text(&self.out.stdout),
                text(&self.out.stderr),
                r.text("o"),
                r.text("e")
            ));
        }
        Ok(r)
    }

    /// A transfer of `shape` under the metadata policy: counts only, and nothing of the
    /// user's (`~/bin/scp`, `~/.bashrc`, `~/.popt`) reached the client.
    fn metadata_transfer(&self, shape: &str) -> Result<&Rec, String> {
        let r = self.one(shape)?;
        let seen = markers(&format!(
            "{}{}",
            text(&self.out.stdout),
            text(&self.out.stderr)
        ));
        if !seen.is_empty() || r.codes() != ["s", "x"] {
            return Err(format!(
                "{}: markers {seen:?} at the client, codes {:?}",
                self.what,
                r.codes()
            ));
        }
        Ok(r)
    }
}

/// Collects the failures of a matrix, to report them all at once.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check<T>(&mut self, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    fn assert_none(&self) {
        assert!(
            self.0.is_empty(),
            "{} failure(s):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// A user-owned `scp` earlier on the session's PATH: if it ever runs, the client sees its
/// marker.
const USER_SCP: &[u8] = b"#!/bin/sh\necho MARK-USERSCP-$((6*7)) >&2\ncat >/dev/null\n";

#[test]
fn transfer_lookalikes_are_refused_or_recorded_in_full() {
    if !require("transfer_lookalikes_are_refused_or_recorded_in_full") {
        return;
    }
    // The recommended setup: sealcast-shell is also the login shell (with ForceCommand
    // alone sshd runs `bash -c <ForceCommand>`, and bash reads ~/.bashrc first: see
    // hostile_bashrc_cannot_run_an_unrecorded_command).
    let b = Bastion::with(Options {
        login_shell: true,
        ..Options::default()
    });
    let home = b.home.display().to_string();
    // The user's traps: an `scp` of their own first on PATH (the operator listed ~/bin), a
    // ~/.bashrc, which Debian's bash reads for every `bash -c` started under sshd, and an
    // rsync daemon configuration whose `pre-xfer exec` runs a command.
    b.write_user_file("bin/scp", USER_SCP, 0o755);
    b.set_config(
        "path",
        &format!("\"{home}/bin:/usr/local/bin:/usr/bin:/bin\""),
    );
    b.write_user_file(".bashrc", b"echo MARK-BASHRC-$((6*7)) >&2\n", 0o644);
    b.write_user_file("mod/keep", b"", 0o644);
    let rsyncd = format!(
        "use chroot = no\n[mod]\npath = {home}/mod\n\
         pre-xfer exec = /bin/sh -c 'echo MARK-PREXFER-$((6*7)) >&2; touch {home}/prexfer-ran'\n"
    );
    b.write_user_file("rsyncd.conf", rsyncd.as_bytes(), 0o644);

    let mut f = Failures::default();
    let lookalikes: Vec<(&str, Vec<u8>, &[u8])> = vec![
        ("issue: ;", b"scp -t /tmp; echo MARK-SEMI".to_vec(), b""),
        (
            "issue: newline",
            b"scp -t /tmp\necho MARK-NEWLINE".to_vec(),
            b"",
        ),
        ("issue: $()", b"scp -t $(echo MARK-SUBST >&2)".to_vec(), b""),
        (
            "issue: rsync ;",
            b"rsync --server -e.LsfxC . /tmp; echo MARK-RSYNC".to_vec(),
            b"",
        ),
        ("&&", b"scp -t /tmp && echo MARK-AND".to_vec(), b""),
        ("||", b"scp -t /nonexistent || echo MARK-OR".to_vec(), b""),
        ("|", b"scp -t /tmp | echo MARK-PIPE".to_vec(), b""),
        (
            "backquotes",
            b"scp -t `echo MARK-BACKTICK >&2`".to_vec(),
            b"",
        ),
        (
            "$() in quotes",
            b"scp -t \"$(echo MARK-DQ >&2)\"".to_vec(),
            b"",
        ),
        (
            ">file",
            b"scp -t >redirected; echo MARK-REDIR".to_vec(),
            b"",
        ),
        ("# comment", b"scp -t /tmp # MARK-NEVER".to_vec(), b""),
        ("FOO=1 scp", b"FOO=1 scp -t /tmp".to_vec(), b""),
        ("command scp", b"command scp -t /tmp".to_vec(), b""),
        ("exec scp", b"exec scp -t /tmp".to_vec(), b""),
        ("~/bin/scp", b"~/bin/scp -t /tmp".to_vec(), b""),
        ("./bin/scp", b"./bin/scp -t /tmp".to_vec(), b""),
        (
            "/home/u/bin/scp",
            format!("{home}/bin/scp -t /tmp").into_bytes(),
            b"",
        ),
        (
            "rsync daemon with pre-xfer exec",
            format!("rsync --server --daemon --config={home}/rsyncd.conf .").into_bytes(),
            b"@RSYNCD: 31.0\nmod\n",
        ),
        (
            "rsync -s (options from stdin)",
            b"rsync --server -se.LsfxC . /tmp; echo MARK-SECLUDED".to_vec(),
            b"",
        ),
        (
            "internal-sftp ;",
            b"internal-sftp; echo MARK-SFTP".to_vec(),
            b"",
        ),
        (
            "sftp-server -c",
            b"/usr/lib/openssh/sftp-server -c 'x'; echo MARK-SFTPC".to_vec(),
            b"",
        ),
        ("CR", b"echo MARK-CR\r".to_vec(), b""),
        ("scp with CR", b"scp -t /tmp\r".to_vec(), b""),
        ("TAB-separated echo", b"echo\tMARK-TAB".to_vec(), b""),
        ("ESC", b"echo MARK-ESC\x1b[0m\x1b]0;title\x07".to_vec(), b""),
        ("scp with ESC", b"scp -t /tmp\x1b[2J".to_vec(), b""),
        ("non-UTF-8", b"echo MARK-NONUTF\xff\xfe".to_vec(), b""),
        (
            "scp non-UTF-8 ;",
            b"scp -t /tmp/\xff; echo MARK-FF".to_vec(),
            b"",
        ),
    ];
    for (what, cmd, stdin) in &lookalikes {
        if let Some(a) = f.check(attempt(&b, what, b.ssh_bytes(cmd), stdin)) {
            f.check(a.recorded_in_full().map(|r| {
                assert_eq!(
                    r.meta("original_command"),
                    Some(String::from_utf8_lossy(cmd).into_owned()),
                    "{what}"
                );
            }));
        }
    }
    assert!(
        b.home.join("prexfer-ran").exists(),
        "the rsync daemon case did not reach its pre-xfer exec (the test would prove nothing)"
    );

    // What an operator sees of a command full of terminal escapes: `sealcast info` shows
    // them escaped.
    let esc = b
        .recordings()
        .into_iter()
        .find(|p| {
            Rec::load(p)
                .meta("original_command")
                .is_some_and(|c| c.contains("MARK-ESC"))
        })
        .expect("the ESC session was recorded");
    let info = Command::new(bastion::harness::sealcast_bin())
        .arg("info")
        .arg("--trusted")
        .arg(&b.allowed_signers)
        .arg(&esc)
        .output()
        .unwrap();
    if info.stdout.contains(&0x1b)
        || info.stdout.contains(&0x07)
        || !text(&info.stdout).contains("echo MARK-ESC\\u{1b}[0m\\u{1b}]0;title\\u{7}")
    {
        f.0.push(format!(
            "sealcast info does not escape the command's terminal controls: {:?}",
            text(&info.stdout)
        ));
    }

    // Real transfers: the configured programs run by argv — never ~/bin/scp, never via bash
    // (no ~/.bashrc) — and stay transfers.
    for (what, cmd) in [
        ("scp -t", &b"scp -t /tmp"[..]),
        ("TAB-separated scp", b"scp\t-t\t/tmp"),
    ] {
        if let Some(a) = f.check(attempt(&b, what, b.ssh_bytes(cmd), b"")) {
            f.check(a.metadata_transfer("scp"));
            if a.out.stdout != b"\0" {
                f.0.push(format!(
                    "{what}: the real scp sink answers one NUL, got {:?}",
                    text(&a.out.stdout)
                ));
            }
        }
    }
    let local = b.dir.join("lookalike-up.bin");
    fs::write(&local, transfer_payload(20_000)).unwrap();
    let l = local.display().to_string();
    let src = b.dir.join("tree with space");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file name.txt"), transfer_payload(10_000)).unwrap();
    let tree = format!("{}/", src.display());
    let transfers: Vec<(&str, Command, &str)> = vec![
        (
            "scp -O",
            b.scp(&["-O", &l, &b.remote("up-legacy.bin")]),
            "scp",
        ),
        (
            "scp (sftp)",
            b.scp(&["-s", &l, &b.remote("up-sftp.bin")]),
            "sftp",
        ),
        (
            "rsync to a path with a space",
            b.rsync(&["-a", &tree, &b.remote("dst dir/")]),
            "rsync",
        ),
    ];
    for (what, cmd, shape) in transfers {
        if let Some(a) = f.check(attempt(&b, what, cmd, b"")) {
            if !a.out.status.success() {
                f.0.push(format!("{what}: failed: {}", text(&a.out.stderr)));
            }
            f.check(a.metadata_transfer(shape));
        }
    }
    let same_tree = |dir: &str| {
        let d = b.home.join(dir);
        d.is_dir() && tree_files(&d) == tree_files(&src)
    };
    for (file, ok) in [
        ("up-legacy.bin", b.home.join("up-legacy.bin").is_file()),
        ("up-sftp.bin", b.home.join("up-sftp.bin").is_file()),
        ("dst dir/", same_tree("dst dir")),
    ] {
        if !ok {
            f.0.push(format!("{file} was not transferred"));
        }
    }
    let rsync_cmd = Rec::load(b.recordings().last().unwrap())
        .meta("original_command")
        .unwrap_or_default();
    if !rsync_cmd.ends_with(". dst\\ dir/") {
        f.0.push(format!("rsync's command: {rsync_cmd}"));
    }

    // rsync reads ~/.popt before it sees --server, and a popt `exec` alias there runs any
    // program instead: a transfer runs without HOME, so it never does.
    b.write_user_file(
        ".popt",
        b"rsync exec --server sh -c \"echo MARK-POPT-$((6*7)) >&2; exit 3\"\n",
        0o644,
    );
    if let Some(a) = f.check(attempt(
        &b,
        "rsync with a hostile ~/.popt",
        b.rsync(&["-a", &tree, &b.remote("popt-dst/")]),
        b"",
    )) {
        if !a.out.status.success() {
            f.0.push(format!(
                "rsync with ~/.popt failed: {}",
                text(&a.out.stderr)
            ));
        }
        f.check(a.metadata_transfer("rsync"));
    }
    fs::remove_file(b.home.join(".popt")).unwrap();

    // rsync --secluded-args sends its options on stdin: not a transfer, but it still works,
    // recorded in full (the protocol stream is the `o` events).
    if let Some(a) = f.check(attempt(
        &b,
        "rsync -s",
        b.rsync(&["-a", "-s", &tree, &b.remote("secluded-dst/")]),
        b"",
    )) {
        if !a.out.status.success() {
            f.0.push(format!("rsync -s failed: {}", text(&a.out.stderr)));
        }
        if let Some(r) = f.check(a.one("exec")) {
            if r.stream("o").is_empty() {
                f.0.push(format!("rsync -s: nothing recorded: {}", r.describe()));
            }
        }
    }
    if !same_tree("secluded-dst") {
        f.0.push("rsync -s did not transfer the tree".into());
    }

    // Session shapes around the command: `ssh host ''` is a shell reading stdin (recorded),
    // a subsystem sshd does not know is refused before sealcast-shell runs.
    if let Some(a) = f.check(attempt(
        &b,
        "ssh host ''",
        b.ssh(&[""]),
        b"echo MARK-EMPTY-$((1+1))\n",
    )) {
        f.check(a.one("shell-no-pty"));
        if !markers(&text(&a.out.stdout)).contains("MARK-EMPTY-2") {
            f.0.push(format!("ssh host '': {:?}", text(&a.out.stdout)));
        }
    }
    if let Some(a) = f.check(attempt(
        &b,
        "unknown subsystem",
        b.ssh(&["-s", "no-such-subsystem"]),
        b"",
    )) {
        if !a.recs.is_empty() {
            f.0.push("an unknown subsystem reached sealcast-shell".into());
        }
    }
    f.assert_none();
    b.assert_all_verify(&[]);
}

#[test]
fn user_rc_and_authorized_keys_commands_never_run_around_sealcast_shell() {
    if !require("user_rc_and_authorized_keys_commands_never_run_around_sealcast_shell") {
        return;
    }
    // An operator who dropped `PermitUserRC no` from the snippet.
    let weakened = Options {
        login_shell: true,
        sshd_extra: vec!["PermitUserRC yes".into()],
        ..Options::default()
    };
    let mut b = Bastion::with(weakened.clone());
    b.write_user_file(
        ".ssh/rc",
        b"echo MARK-RC-$((6*7)); touch \"$HOME/rc-ran\"\n",
        0o644,
    );
    let rc_ran = b.home.join("rc-ran");
    let mut f = Failures::default();

    // With ForceCommand, sshd runs neither ~/.ssh/rc (session.c do_rc_files skips it for an
    // admin forced command) nor an authorized_keys `command=` (ForceCommand wins).
    if let Some(a) = f.check(attempt(
        &b,
        "ForceCommand, PermitUserRC yes",
        b.ssh(&["echo MARK-CMD-$((1+1))"]),
        b"",
    )) {
        f.check(a.recorded_in_full());
    }
    if rc_ran.exists() {
        f.0.push("~/.ssh/rc ran despite ForceCommand".into());
    }
    b.authorize_key(r#"command="echo MARK-KEYCMD-$((6*7))""#);
    if let Some(a) = f.check(attempt(
        &b,
        "ForceCommand, key command=",
        b.ssh(&["echo MARK-CLIENT-$((1+1))"]),
        b"",
    )) {
        if let Some(r) = f.check(a.recorded_in_full()) {
            if r.meta("original_command").as_deref() != Some("echo MARK-CLIENT-$((1+1))")
                || !text(&a.out.stdout).contains("MARK-CLIENT-2")
            {
                f.0.push(format!("the key's command= ran: {}", r.describe()));
            }
        }
    }

    // Without ForceCommand (sealcast-shell only as the login shell) sshd starts both through
    // the login shell: `sealcast-shell -c '/bin/sh .ssh/rc'`, `sealcast-shell -c <command=>`.
    // That sealcast-shell has no `--config`, and this machine has no system configuration, so
    // it finds no key and refuses each (fail_closed): the rc is refused too, which shows it
    // goes through sealcast-shell, not around it.
    if Path::new("/etc/sealcast/sealcast.toml").exists() {
        eprintln!("login-shell-only cases skipped: /etc/sealcast/sealcast.toml exists here");
    } else {
        b.restart_sshd(Options {
            force_command: false,
            ..weakened
        });
        for (what, key_options) in [
            ("login shell only, PermitUserRC yes", ""),
            (
                "login shell only, key command=",
                r#"command="scp -t /tmp; echo MARK-KEYCMD-$((6*7))""#,
            ),
        ] {
            b.authorize_key(key_options);
            if let Some(a) = f.check(attempt(&b, what, b.ssh(&["echo MARK-X"]), b"")) {
                let err = text(&a.out.stderr);
                let refusals = err.matches("sealcast: recording unavailable (").count();
                if !a.recs.is_empty() || refusals != 2 || rc_ran.exists() {
                    f.0.push(format!(
                        "{what}: expected the rc and the command refused by sealcast-shell; \
                         exit {}, stderr {err:?}, rc ran: {}",
                        code(&a.out.status),
                        rc_ran.exists()
                    ));
                }
            }
        }
    }
    f.assert_none();
    b.assert_all_verify(&[]);
}

#[test]
fn a_transfer_program_the_user_can_replace_is_refused() {
    if !require("a_transfer_program_the_user_can_replace_is_refused") {
        return;
    }
    let b = Bastion::with(Options {
        login_shell: true,
        ..Options::default()
    });
    // An operator pointed scp_path into a directory the user owns.
    let user_scp = b.write_user_file("bin/scp", USER_SCP, 0o755);
    b.set_config("scp_path", &format!("\"{}\"", user_scp.display()));
    let a = attempt(&b, "user-owned scp_path", b.ssh(&["scp -t /tmp"]), b"").unwrap();
    assert_eq!(code(&a.out.status), 1);
    let err = text(&a.out.stderr);
    assert!(
        err.contains(&format!(
            "sealcast: cannot start {}: not a trusted program: ",
            user_scp.display()
        )) && err.contains("is owned by uid"),
        "{err}"
    );
    assert!(markers(&err).is_empty() && a.out.stdout.is_empty(), "{err}");
    let r = a.one("scp").unwrap();
    assert_eq!(r.exit().as_deref(), Some("1"), "{}", r.describe());
    b.assert_all_verify(&[]);
}

#[test]
fn forged_nesting_evidence_does_not_skip_the_recording() {
    if !require("forged_nesting_evidence_does_not_skip_the_recording") {
        return;
    }
    let b = Bastion::start();
    // A process of the user's that looks like a recorder — a copy of /bin/sh named
    // sealcast-shell (its /proc status Name), or `exec -a sealcast-shell` (its argv[0]) —
    // as the parent of the real set-uid sealcast-shell, with a well-formed SEALCAST_SESSION:
    // neither is the same file as the binary nor runs as the service user, so the session is
    // recorded.
    let fake_dir = b.home.join("fake");
    let fake = b.write_user_file("fake/sealcast-shell", &fs::read("/bin/sh").unwrap(), 0o755);
    let inner = format!(
        "SEALCAST_SESSION=0123456789abcdef0123456789abcdef \
         SSH_ORIGINAL_COMMAND='echo MARK-NESTED-$((6*7))' {} --config {}; true",
        b.shell_bin.display(),
        b.config.display()
    );
    let mut f = Failures::default();
    for (what, script) in [
        (
            "a copy of /bin/sh named sealcast-shell",
            format!("{} -c {}", fake.display(), sh_quote(&inner)),
        ),
        (
            "exec -a sealcast-shell",
            format!("exec -a sealcast-shell /bin/bash -c {}", sh_quote(&inner)),
        ),
    ] {
        let mut c = b.as_user("/bin/bash");
        c.arg("-c").arg(&script);
        if let Some(a) = f.check(attempt(&b, what, c, b"")) {
            if let Some(r) = f.check(a.one("exec")) {
                if !r.text("o").contains("MARK-NESTED-42")
                    || r.meta("session").as_deref() == Some("0123456789abcdef0123456789abcdef")
                {
                    f.0.push(format!("{what}: {}", r.describe()));
                }
            }
        }
    }
    assert!(fake_dir.is_dir());
    f.assert_none();
    b.assert_all_verify(&[]);
}

/// `s` as one single-quoted sh word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
