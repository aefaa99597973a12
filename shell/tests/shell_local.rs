//! `sealcast-shell` end to end without sshd: the built binary run with the environment sshd
//! would give it (`SSH_ORIGINAL_COMMAND`, `SSH_TTY`, `SSH_CONNECTION`), real programs (bash,
//! dash, scp -t, sftp, rsync) over pipes or inside a PTY this test creates, and a set-uid copy
//! of the binary run as another user. Every recording is verified with
//! `sealcast_reader::verify_bytes` against the test's key.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sealcast_format::{
    decompress_frame, parse_event, scan, EventKind, FrameKind, Header, SessionInfo,
};
use sealcast_reader::{verify_bytes, Status};
use sealcast_signer::{SigningKey, TrustStore};
use tempfile::TempDir;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sealcast-shell"))
}

/// A test bastion: a root-owned directory ([`trusted_base`]: `--config` refuses anything
/// below a world-writable `/tmp`) with a key, a spool and a config.
struct Bastion {
    dir: TempDir,
    spool: PathBuf,
    key: PathBuf,
    config: PathBuf,
    trust: TrustStore,
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

impl Bastion {
    /// `extra`: more TOML lines (they may override nothing already written: keys are unique).
    fn new(extra: &str) -> Bastion {
        let dir = tempfile::Builder::new()
            .prefix("sealcast-shell-test-")
            .tempdir_in(trusted_base())
            .unwrap();
        chmod(dir.path(), 0o755);
        let spool = dir.path().join("spool");
        fs::create_dir(&spool).unwrap();
        let key = dir.path().join("signing.key");
        let k = SigningKey::generate().unwrap();
        fs::write(&key, k.to_pem()).unwrap();
        chmod(&key, 0o600);
        let trust = TrustStore::parse(&format!(
            "test-bastion namespaces=\"sealcast\" {}\n",
            k.public().to_openssh("")
        ))
        .unwrap();
        let config = dir.path().join("sealcast.toml");
        let b = Bastion {
            dir,
            spool,
            key,
            config,
            trust,
        };
        b.write_config(extra);
        b
    }

    /// host_id, key and spool_dir (unless `extra` sets them), then `extra` (top-level keys
    /// only), then allow_foreign_login_shell = true unless `extra` sets it: these tests run
    /// sealcast-shell directly, as users whose login shell is not sealcast-shell (root,
    /// daemon), which only that setting allows.
    fn write_config(&self, extra: &str) {
        let sets = |k: &str| extra.lines().any(|l| l.starts_with(&format!("{k} =")));
        let mut text = String::from("host_id = \"test-bastion\"\n");
        if !sets("key") {
            text.push_str(&format!("key = {:?}\n", self.key));
        }
        if !sets("spool_dir") {
            text.push_str(&format!("spool_dir = {:?}\n", self.spool));
        }
        text.push_str(extra);
        if !sets("allow_foreign_login_shell") {
            text.push_str("allow_foreign_login_shell = true\n");
        }
        fs::write(&self.config, text).unwrap();
        chmod(&self.config, 0o644);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// sealcast-shell `--config`, with an sshd-like environment and nothing else.
    fn command(&self, original_command: Option<&str>) -> Command {
        let mut c = Command::new(bin());
        c.arg("--config").arg(&self.config);
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("SSH_CONNECTION", "192.0.2.10 50022 192.0.2.1 22")
            .env("SSH_CLIENT", "192.0.2.10 50022 22");
        if let Some(oc) = original_command {
            c.env("SSH_ORIGINAL_COMMAND", oc);
        }
        c
    }

    /// Run with `stdin` piped in; stdout and stderr captured.
    fn run(&self, original_command: &str, stdin: &[u8]) -> Output {
        run_with_stdin(self.command(Some(original_command)), stdin)
    }

    fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.spool)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.to_string_lossy().ends_with(".cast.zst"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The one recording in the spool, verified OK with its receipt.
    fn only_recording(&self) -> Recording {
        let recs = self.recordings();
        assert_eq!(recs.len(), 1, "recordings: {recs:?}");
        self.verified(&recs[0])
    }

    fn verified(&self, path: &Path) -> Recording {
        let data = fs::read(path).unwrap();
        let receipt = fs::read(format!("{}.seal", path.display())).expect("seal receipt");
        let report = verify_bytes(&data, Some(&receipt), &self.trust);
        assert_eq!(report.status, Status::Ok, "{report:?}");
        assert!(report.sealed);
        assert_eq!(fs::metadata(path).unwrap().mode() & 0o777, 0o640);
        Recording::read(&data)
    }
}

/// A directory whose every ancestor is owned by root (or us) and writable by nobody else, as
/// `--config` demands: the build directory when it qualifies (it does not below `/tmp`),
/// else `/var/lib`.
fn trusted_base() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let trusted = |p: &Path| {
        p.ancestors().all(|a| {
            fs::metadata(a).is_ok_and(|m| (m.uid() == 0 || m.uid() == me) && m.mode() & 0o022 == 0)
        })
    };
    let build = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if trusted(&build) {
        return build;
    }
    PathBuf::from("/var/lib")
}

fn run_with_stdin(mut c: Command, stdin: &[u8]) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn sealcast-shell");
    let mut i = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = i.write_all(&data);
    });
    let out = wait_output(child, Duration::from_secs(60));
    writer.join().unwrap();
    out
}

fn wait_output(child: Child, timeout: Duration) -> Output {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("sealcast-shell did not finish within {timeout:?}");
        }
    }
}

/// A recording read back: header, session facts and events (`b` folded into the event it
/// follows — `o`, `i` or `e`).
struct Recording {
    header: Header,
    info: SessionInfo,
    events: Vec<(String, Vec<u8>)>,
}

impl Recording {
    fn read(file: &[u8]) -> Recording {
        let mut text = Vec::new();
        for f in scan(file) {
            let f = f.unwrap();
            if f.kind == FrameKind::Data {
                decompress_frame(f.bytes, f.offset, &mut text).unwrap();
            }
        }
        let mut lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        let head = lines.next().unwrap();
        let header = Header::parse(head).unwrap();
        let info = SessionInfo::from_header_line(head).unwrap();
        let mut events: Vec<(String, Vec<u8>)> = Vec::new();
        for line in lines {
            let ev = parse_event(line).unwrap();
            if ev.kind == EventKind::Bytes {
                let last = events.last_mut().expect("b after an event");
                assert!(
                    ["o", "i", "e"].contains(&last.0.as_str()),
                    "b after {}",
                    last.0
                );
                last.1 = ev.raw_bytes().unwrap();
            } else {
                events.push((ev.kind.code().to_string(), ev.data.into_bytes()));
            }
        }
        Recording {
            header,
            info,
            events,
        }
    }

    fn stream(&self, code: &str) -> Vec<u8> {
        self.events
            .iter()
            .filter(|e| e.0 == code)
            .flat_map(|e| e.1.iter().copied())
            .collect()
    }

    fn codes(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.0.as_str()).collect()
    }

    fn exit(&self) -> Option<String> {
        let x = self.events.iter().find(|e| e.0 == "x")?;
        Some(String::from_utf8_lossy(&x.1).into_owned())
    }

    fn summary(&self) -> serde_json::Value {
        let s = self.events.iter().find(|e| e.0 == "s").expect("an s event");
        serde_json::from_slice(&s.1).unwrap()
    }

    fn session(&self) -> String {
        self.header.sealcast.as_ref().unwrap().session.clone()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn exec_keeps_stdout_and_stderr_apart_byte_exact() {
    let b = Bastion::new("");
    let o = b.run(
        r"cat; printf 'to-err\377\n' >&2; echo out-after; exit 7",
        b"line one\nbinary\xff\xfe\n",
    );
    assert_eq!(o.status.code(), Some(7), "stderr: {}", text(&o.stderr));
    assert_eq!(o.stdout, b"line one\nbinary\xff\xfe\nout-after\n");
    assert_eq!(
        o.stderr, b"to-err\xff\n",
        "stderr carries nothing but the child's"
    );
    let r = b.only_recording();
    assert_eq!(r.stream("o"), o.stdout, "o = the exact stdout bytes");
    assert_eq!(r.stream("e"), o.stderr, "e = the exact stderr bytes");
    assert_eq!(
        r.stream("i"),
        b"",
        "stdin is not recorded without capture_input"
    );
    assert_eq!(r.exit().as_deref(), Some("7"));
    assert_eq!(r.codes().last(), Some(&"x"));
    let cmd = r"cat; printf 'to-err\377\n' >&2; echo out-after; exit 7";
    assert_eq!(
        r.info,
        SessionInfo {
            shape: Some("exec".into()),
            ssh_client: Some("192.0.2.10 50022".into()),
            ssh_server: Some("192.0.2.1 22".into()),
            original_command: Some(cmd.into()),
            policy: None,
            // Inherited from this test's own audit session (absent where auditing is off).
            audit_session: sealcast_recorder::sys::audit_session_id(),
            loginuid: sealcast_recorder::sys::login_uid(),
        }
    );
    assert_eq!(r.header.command.as_deref(), Some(cmd));
    let meta = r.header.sealcast.as_ref().unwrap();
    assert_eq!(meta.host, "test-bastion");
    assert_eq!(meta.user, "root");
    assert!(meta.recorder.starts_with("sealcast-shell "));
    assert!(!meta.capture_input);
}

/// The recorder binds the session's kernel audit ids into the header (SPEC §2.4.4): a
/// sealcast-shell whose login uid is set (as pam_loginuid does for sshd; root may do it once
/// per process) records that login uid and the audit session the kernel gave it.
#[test]
fn the_sessions_audit_ids_are_in_the_header() {
    // Can a child set its login uid here (root, CONFIG_AUDIT)?
    let probe = Command::new("sh")
        .args([
            "-c",
            "echo 4242 > /proc/self/loginuid && cat /proc/self/loginuid",
        ])
        .output()
        .unwrap();
    if probe.stdout != b"4242" {
        assert!(std::env::var_os("CI").is_none(), "cannot set a login uid");
        eprintln!("skipped: cannot set a login uid here (not root, or no CONFIG_AUDIT)");
        return;
    }
    let b = Bastion::new("");
    let mut c = b.command(Some("true"));
    // SAFETY: open, write and close are async-signal-safe; the buffers outlive the calls.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            let path = b"/proc/self/loginuid\0";
            let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let uid = b"4242";
            let _ = libc::write(fd, uid.as_ptr().cast(), uid.len());
            libc::close(fd);
            Ok(())
        });
    }
    let o = run_with_stdin(c, b"");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r = b.only_recording();
    assert_eq!(r.info.loginuid, Some(4242));
    let session = r
        .info
        .audit_session
        .expect("an audit session with the login uid");
    assert_ne!(Some(session), sealcast_recorder::sys::audit_session_id());
}

#[test]
fn capture_input_records_stdin() {
    let b = Bastion::new("capture_input = true\n");
    let o = b.run("cat >/dev/null; echo ok", b"secret\n");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r = b.only_recording();
    assert_eq!(r.stream("i"), b"secret\n");
    assert!(r.header.sealcast.unwrap().capture_input);
}

#[test]
fn the_environment_is_rebuilt_and_the_session_starts_at_home() {
    // dash: bash started with SSH_CLIENT set reads ~/.bashrc (Debian's SSH_SOURCE_BASHRC),
    // which may change PATH; that is the user's business, not the recorder's.
    let b = Bastion::new("shell = \"/bin/sh\"\n");
    let mut c = b.command(Some("env; echo cwd=$(pwd)"));
    c.env("FOO", "leak")
        .env("HOME", "/tmp/not-home")
        .env("SHELL", "/tmp/not-a-shell")
        .env("LD_PRELOAD", "/tmp/x.so")
        .env("TZ", "UTC")
        .env("SEALCAST_SESSION", "forged");
    let o = run_with_stdin(c, b"");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let vars: BTreeMap<&str, &str> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k != "cwd")
        .collect();
    let r = b.only_recording();
    let pw_home = passwd_home(0);
    assert_eq!(vars.get("HOME").copied(), Some(pw_home.as_str()), "{out}");
    assert_eq!(vars.get("USER"), Some(&"root"));
    assert_eq!(vars.get("LOGNAME"), Some(&"root"));
    assert_eq!(vars.get("SHELL"), Some(&"/bin/sh"));
    assert_eq!(vars.get("PATH"), Some(&"/usr/local/bin:/usr/bin:/bin"));
    assert_eq!(vars.get("LANG"), Some(&"C.UTF-8"));
    assert_eq!(vars.get("TZ"), Some(&"UTC"));
    assert_eq!(
        vars.get("SSH_CONNECTION"),
        Some(&"192.0.2.10 50022 192.0.2.1 22")
    );
    assert_eq!(vars.get("SSH_CLIENT"), Some(&"192.0.2.10 50022 22"));
    assert_eq!(
        vars.get("SSH_ORIGINAL_COMMAND"),
        Some(&"env; echo cwd=$(pwd)")
    );
    assert_eq!(
        vars.get("SEALCAST_SESSION").copied(),
        Some(r.session().as_str())
    );
    for absent in ["FOO", "LD_PRELOAD", "TERM", "SSH_TTY"] {
        assert!(!vars.contains_key(absent), "{absent} leaked: {out}");
    }
    // What bash adds itself, nothing more.
    let allowed = [
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "PATH",
        "LANG",
        "TZ",
        "SSH_CONNECTION",
        "SSH_CLIENT",
        "SSH_ORIGINAL_COMMAND",
        "SEALCAST_SESSION",
        "PWD",
        "SHLVL",
        "_",
    ];
    for k in vars.keys() {
        assert!(allowed.contains(k), "unexpected variable {k}: {out}");
    }
    assert!(out.contains(&format!("cwd={pw_home}\n")), "{out}");
}

fn passwd_home(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[2] == uid.to_string())
        .map(|f| f[5].to_string())
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// PTY sessions

/// A PTY this test owns, standing in for the one sshd allocates.
struct Terminal {
    // Kept open for the session: dropping the master hangs it up.
    _master: Box<dyn portable_pty::MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    output: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    slave_name: PathBuf,
}

impl Terminal {
    /// Start sealcast-shell on a new PTY of `cols` × `rows` with `SSH_TTY` set to it.
    fn start(b: &Bastion, original_command: Option<&str>, cols: u16, rows: u16) -> Terminal {
        use portable_pty::{native_pty_system, CommandBuilder, PtySize};
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let slave_name = pair.master.tty_name().unwrap();
        let mut c = CommandBuilder::new(bin());
        c.arg("--config");
        c.arg(&b.config);
        c.env_clear();
        c.env("PATH", "/usr/bin:/bin");
        c.env("TERM", "xterm-test");
        c.env("SSH_CONNECTION", "192.0.2.10 50022 192.0.2.1 22");
        c.env("SSH_TTY", &slave_name);
        if let Some(oc) = original_command {
            c.env("SSH_ORIGINAL_COMMAND", oc);
        }
        c.cwd(b.dir.path());
        let child = pair.slave.spawn_command(c).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let writer = pair.master.take_writer().unwrap();
        Terminal {
            writer,
            _master: pair.master,
            child,
            output,
            seen: Vec::new(),
            slave_name,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Read until `needle` has appeared (panics after 30 s).
    fn wait_for(&mut self, needle: &str) {
        let end = Instant::now() + Duration::from_secs(30);
        while !text(&self.seen).contains(needle) {
            let left = end.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(_) => panic!("no {needle:?} in {:?}", text(&self.seen)),
            }
        }
    }

    /// Wait for the exit code, collecting the remaining output.
    fn finish(mut self) -> (Option<u32>, Vec<u8>) {
        let end = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < end, "sealcast-shell did not exit");
            while let Ok(chunk) = self.output.recv_timeout(Duration::from_millis(50)) {
                self.seen.extend_from_slice(&chunk);
            }
        };
        while let Ok(chunk) = self.output.recv_timeout(Duration::from_millis(200)) {
            self.seen.extend_from_slice(&chunk);
        }
        (Some(status.exit_code()), self.seen)
    }
}

#[test]
fn exec_pty_runs_the_command_in_a_new_pty() {
    let b = Bastion::new("");
    let mut t = Terminal::start(
        &b,
        Some("echo tty=$(tty); stty size; echo term=$TERM; exit 4"),
        100,
        30,
    );
    t.wait_for("term=");
    let outer = t.slave_name.clone();
    let (code, seen) = t.finish();
    assert_eq!(code, Some(4), "{}", text(&seen));
    let r = b.only_recording();
    let rec = text(&r.stream("o"));
    assert!(rec.contains("30 100\r\n"), "{rec}");
    assert!(rec.contains("term=xterm-test\r\n"), "{rec}");
    let inner = rec
        .lines()
        .find_map(|l| l.strip_prefix("tty="))
        .unwrap()
        .trim()
        .to_string();
    assert!(inner.starts_with("/dev/pts/"), "{rec}");
    assert_ne!(
        Path::new(&inner),
        outer,
        "the command runs in a PTY of its own"
    );
    assert_eq!(r.exit().as_deref(), Some("4"));
    assert_eq!(r.info.shape.as_deref(), Some("exec-pty"));
    assert_eq!((r.header.term.cols, r.header.term.rows), (100, 30));
    assert_eq!(r.header.term.term_type.as_deref(), Some("xterm-test"));
    // What the client saw is what was recorded.
    assert!(text(&seen).contains(rec.trim_end()), "{}", text(&seen));
}

#[test]
fn interactive_login_shell_in_a_pty() {
    // dash as the configured shell: a login shell (`-sh`) with a predictable prompt.
    let b = Bastion::new("shell = \"/bin/sh\"\n");
    let mut t = Terminal::start(&b, None, 80, 24);
    t.send(b"PS1='$ '; echo \"arg0=$0 answer=$((6*7))\"\n");
    t.wait_for("answer=42");
    t.send(b"exit 5\n");
    let (code, seen) = t.finish();
    assert_eq!(code, Some(5), "{}", text(&seen));
    let r = b.only_recording();
    let rec = text(&r.stream("o"));
    assert!(rec.contains("arg0=-sh answer=42\r\n"), "{rec}");
    assert_eq!(r.exit().as_deref(), Some("5"));
    assert_eq!(r.info.shape.as_deref(), Some("interactive"));
    assert_eq!(r.info.original_command, None);
    assert_eq!(r.header.command, None);
    assert_eq!(r.stream("i"), b"", "keystrokes are not recorded by default");
}

#[test]
fn shell_without_pty_reads_commands_from_stdin() {
    let b = Bastion::new("");
    let o = run_with_stdin(b.command(None), b"echo no-pty-$((1+1))\nexit 6\n");
    assert_eq!(o.status.code(), Some(6), "{}", text(&o.stderr));
    assert_eq!(o.stdout, b"no-pty-2\n");
    let r = b.only_recording();
    assert_eq!(r.info.shape.as_deref(), Some("shell-no-pty"));
    assert_eq!(r.stream("o"), b"no-pty-2\n");
}

// ---------------------------------------------------------------------------------------
// File transfers

/// `scp -t DIR` driven with the legacy scp protocol: one file `name` with `data`.
fn scp_upload(name: &str, data: &[u8]) -> Vec<u8> {
    let mut s = format!("C0644 {} {name}\n", data.len()).into_bytes();
    s.extend_from_slice(data);
    s.push(0);
    s
}

#[test]
fn scp_upload_under_metadata_policy_records_no_payload() {
    let b = Bastion::new("");
    let dest = b.path("incoming");
    fs::create_dir(&dest).unwrap();
    let data = b"secret payload \x00\xff\n".repeat(1000);
    let stdin = scp_upload("up.bin", &data);
    let cmd = format!("scp -t {}", dest.display());
    let o = b.run(&cmd, &stdin);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(o.stdout, b"\0\0\0", "three acknowledgements");
    assert_eq!(
        fs::read(dest.join("up.bin")).unwrap(),
        data,
        "relayed exactly"
    );
    let r = b.only_recording();
    assert_eq!(r.codes(), ["s", "x"], "no payload events");
    assert_eq!(r.exit().as_deref(), Some("0"));
    let s = r.summary();
    assert_eq!(s["policy"], "metadata");
    assert_eq!(s["bytes_in"], stdin.len() as u64);
    assert_eq!(s["bytes_out"], 3);
    assert_eq!(s["bytes_err"], 0);
    assert!(s["duration_us"].as_u64().unwrap() > 0);
    assert_eq!(r.info.shape.as_deref(), Some("scp"));
    assert_eq!(r.info.policy.as_deref(), Some("metadata"));
    assert_eq!(r.info.original_command.as_deref(), Some(cmd.as_str()));
    // The payload is nowhere in the file.
    let raw = zstd_text(&b.recordings()[0]);
    assert!(!raw.contains("secret payload"));
}

fn zstd_text(p: &Path) -> String {
    let data = fs::read(p).unwrap();
    let mut out = Vec::new();
    for f in scan(&data) {
        let f = f.unwrap();
        if f.kind == FrameKind::Data {
            decompress_frame(f.bytes, f.offset, &mut out).unwrap();
        }
    }
    text(&out)
}

#[test]
fn scp_download_under_full_policy_records_the_payload() {
    let b = Bastion::new("transfer_policy = \"full\"\n");
    let src = b.path("source.txt");
    fs::write(&src, b"downloaded bytes\n").unwrap();
    // The client acknowledges the start, the file header, and the end.
    let o = b.run(&format!("scp -f {}", src.display()), b"\0\0\0\0");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("C0644 17 source.txt\ndownloaded bytes\n"),
        "{out:?}"
    );
    let r = b.only_recording();
    assert_eq!(r.stream("o"), o.stdout);
    assert_eq!(r.summary()["policy"], "full");
    assert_eq!(r.info.policy.as_deref(), Some("full"));
    let codes = r.codes();
    assert_eq!(&codes[codes.len() - 2..], ["s", "x"]);
}

/// An executable script in the bastion directory.
fn script(b: &Bastion, name: &str, body: &str) -> PathBuf {
    let p = b.path(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    chmod(&p, 0o755);
    p
}

#[test]
fn real_sftp_client_through_internal_sftp() {
    let b = Bastion::new("");
    // sftp runs its "ssh" as `prog [options] -s host sftp`: answer like sshd with a
    // ForceCommand, where SSH_ORIGINAL_COMMAND is the subsystem's command.
    let ssh = script(
        &b,
        "fake-ssh-sftp",
        &format!(
            "exec env -i SSH_ORIGINAL_COMMAND=internal-sftp \
             SSH_CONNECTION='192.0.2.10 50022 192.0.2.1 22' {} --config {}",
            bin().display(),
            b.config.display()
        ),
    );
    let up = b.path("up.dat");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&up, &data).unwrap();
    let remote = b.path("remote.dat");
    let back = b.path("back.dat");
    let batch = b.path("batch");
    fs::write(
        &batch,
        format!(
            "put {} {}\nget {} {}\n",
            up.display(),
            remote.display(),
            remote.display(),
            back.display()
        ),
    )
    .unwrap();
    let o = Command::new("sftp")
        .arg("-S")
        .arg(&ssh)
        .arg("-b")
        .arg(&batch)
        .arg("bastion")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "sftp: {}", text(&o.stderr));
    assert_eq!(fs::read(&remote).unwrap(), data);
    assert_eq!(fs::read(&back).unwrap(), data);
    let r = b.only_recording();
    assert_eq!(r.info.shape.as_deref(), Some("sftp"));
    assert_eq!(r.info.original_command.as_deref(), Some("internal-sftp"));
    assert_eq!(r.codes(), ["s", "x"]);
    let s = r.summary();
    assert!(s["bytes_in"].as_u64().unwrap() > data.len() as u64, "{s}");
    assert!(s["bytes_out"].as_u64().unwrap() > data.len() as u64, "{s}");
    assert_eq!(r.exit().as_deref(), Some("0"));
}

#[test]
fn real_rsync_client_through_rsync_server() {
    let b = Bastion::new("");
    // rsync runs `prog host rsync --server ...`.
    let ssh = script(
        &b,
        "fake-ssh-rsync",
        &format!(
            "shift; exec env -i SSH_ORIGINAL_COMMAND=\"$*\" {} --config {}",
            bin().display(),
            b.config.display()
        ),
    );
    let src = b.path("tree");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.bin"), vec![0xAB; 50_000]).unwrap();
    let dst = b.path("copy");
    let o = Command::new("rsync")
        .arg("-a")
        .arg("-e")
        .arg(&ssh)
        .arg(format!("{}/", src.display()))
        .arg(format!("bastion:{}/", dst.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "rsync: {}", text(&o.stderr));
    assert_eq!(fs::read(dst.join("a.txt")).unwrap(), b"alpha\n");
    assert_eq!(fs::read(dst.join("sub/b.bin")).unwrap(), vec![0xAB; 50_000]);
    let r = b.only_recording();
    assert_eq!(r.info.shape.as_deref(), Some("rsync"));
    assert!(r
        .info
        .original_command
        .as_deref()
        .unwrap()
        .starts_with("rsync --server"));
    assert_eq!(r.codes(), ["s", "x"]);
}

#[test]
fn denied_transfers_get_one_line_exit_1_and_a_recording() {
    let b = Bastion::new("transfer_policy = \"deny\"\n");
    let dest = b.path("never");
    fs::create_dir(&dest).unwrap();
    let o = b.run(
        &format!("scp -t {}", dest.display()),
        &scp_upload("x", b"data"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "sealcast: file transfer (scp) is not allowed on this host\n"
    );
    assert!(o.stdout.is_empty());
    assert!(
        fs::read_dir(&dest).unwrap().next().is_none(),
        "nothing written"
    );
    let r = b.only_recording();
    assert_eq!(r.codes(), ["s", "x"]);
    assert_eq!(r.exit().as_deref(), Some("1"));
    let s = r.summary();
    assert_eq!(s["policy"], "deny");
    assert_eq!(s["bytes_in"], 0);
    assert_eq!(r.info.policy.as_deref(), Some("deny"));
    assert_eq!(r.info.shape.as_deref(), Some("scp"));

    let o = b.run("internal-sftp", b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "sealcast: file transfer (sftp) is not allowed on this host\n"
    );
    assert_eq!(b.recordings().len(), 2);
    // Ordinary commands still run.
    let o = b.run("echo fine", b"");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, b"fine\n");
}

// ---------------------------------------------------------------------------------------
// Failure policies and configuration

#[test]
fn unwritable_spool_refuses_the_session_when_fail_closed() {
    let b = Bastion::new("");
    let file = b.path("not-a-dir");
    fs::write(&file, b"").unwrap();
    b.write_config(&format!("spool_dir = {:?}\n", file.join("spool")));
    let marker = b.path("ran");
    let o = b.run(&format!("touch {}", marker.display()), b"");
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("sealcast: recording unavailable (creating ")
            && err.ends_with("); session refused\n")
            && err.lines().count() == 1,
        "{err:?}"
    );
    assert!(!marker.exists(), "the command must never start");

    // A missing key is a recording failure too.
    b.write_config("key = \"/nonexistent/signing.key\"\n");
    let o = b.run(&format!("touch {}", marker.display()), b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("reading signing key /nonexistent/signing.key"));
    assert!(!marker.exists());
}

#[test]
fn unwritable_spool_runs_unrecorded_when_fail_open() {
    let b = Bastion::new("");
    let file = b.path("not-a-dir");
    fs::write(&file, b"").unwrap();
    b.write_config(&format!(
        "fail_closed = false\nspool_dir = {:?}\n",
        file.join("spool")
    ));
    let o = b.run("echo ran anyway; exit 3", b"");
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(o.stdout, b"ran anyway\n");
    let err = text(&o.stderr);
    assert!(
        err.starts_with("sealcast: warning: recording unavailable (")
            && err.contains("session NOT recorded"),
        "{err:?}"
    );
}

/// sealcast-shell with a file-size limit (`RLIMIT_FSIZE`, `SIGXFSZ` ignored): writes to the
/// recording fail with `EFBIG` once it holds `limit` bytes — a full disk, for one process.
fn with_file_limit(mut c: Command, limit: u64) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit and signal are async-signal-safe.
    unsafe {
        c.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    c
}

/// Output the child produces in the write-failure tests: 400 KB of base64 (about 300 KB of
/// zstd), far beyond the 32 KB limit.
const FLOOD: &str = "head -c 300000 /dev/urandom | base64 -w 100";

fn prefix_status(b: &Bastion) -> Status {
    let recs = b.recordings();
    assert_eq!(recs.len(), 1);
    let data = fs::read(&recs[0]).unwrap();
    assert!(
        !Path::new(&format!("{}.seal", recs[0].display())).exists(),
        "no receipt for a recording that failed"
    );
    verify_bytes(&data, None, &b.trust).status
}

#[test]
fn a_recording_failure_mid_session_ends_it_when_fail_closed() {
    let b = Bastion::new("checkpoint_bytes = 4096\n");
    let marker = b.path("after");
    let cmd = format!("{FLOOD}; sleep 2; touch {}", marker.display());
    let o = run_with_stdin(with_file_limit(b.command(Some(&cmd)), 32 * 1024), b"");
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    // The last line is sealcast's (lines before it come from the user's login files, e.g.
    // pyenv's rehash meeting the file-size limit).
    assert!(
        err.lines().last().is_some_and(|l| l
            .starts_with("sealcast: recording failed (writing the recording: ")
            && l.ends_with("); session ended")),
        "{err:?}"
    );
    assert!(!marker.exists(), "the session was hung up");
    // What was written stays verifiable up to its last checkpoint.
    let st = prefix_status(&b);
    assert!(
        matches!(st, Status::UnsealedTail | Status::Unclosed),
        "{st:?}"
    );
}

#[test]
fn a_recording_failure_mid_session_is_survived_when_fail_open() {
    let b = Bastion::new("checkpoint_bytes = 4096\nfail_closed = false\n");
    let cmd = format!("{FLOOD}; echo the-end; exit 4");
    let o = run_with_stdin(with_file_limit(b.command(Some(&cmd)), 32 * 1024), b"");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert_eq!(o.stdout.len(), 400_000 + 4000 + "the-end\n".len());
    assert!(o.stdout.ends_with(b"the-end\n"));
    let err = text(&o.stderr);
    // sealcast's own lines (others come from the user's login files, e.g. pyenv's rehash
    // meeting the file-size limit).
    let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("sealcast")).collect();
    assert!(
        ours.len() == 1
            && ours[0].starts_with("sealcast: warning: recording failed (")
            && ours[0].ends_with("the session continues UNRECORDED"),
        "warned once: {err:?}"
    );
    let st = prefix_status(&b);
    assert!(
        matches!(st, Status::UnsealedTail | Status::Unclosed),
        "{st:?}"
    );
}

#[test]
fn untrusted_or_invalid_config_is_refused() {
    let b = Bastion::new("");
    let marker = b.path("ran");
    let cmd = format!("touch {}", marker.display());
    chmod(&b.config, 0o666);
    let o = b.run(&cmd, b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!(
            "sealcast: refusing --config {0}: {0} is group- or world-writable (mode 0666)\n",
            b.config.display()
        )
    );
    chmod(&b.config, 0o644);
    chmod(b.dir.path(), 0o775);
    let o = b.run(&cmd, b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains(&format!(
            "{} is group- or world-writable (mode 0775)",
            b.dir.path().display()
        )),
        "{}",
        text(&o.stderr)
    );
    chmod(b.dir.path(), 0o755);
    // Owned by someone else.
    let theirs = b.path("theirs.toml");
    fs::copy(&b.config, &theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
    let o = run_with_stdin(
        {
            let mut c = b.command(Some(&cmd));
            c.args(["--config"]).arg(&theirs);
            c
        },
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("is owned by uid 65534"),
        "{}",
        text(&o.stderr)
    );
    // Unknown key.
    b.write_config("colour = \"blue\"\n");
    let o = b.run(&cmd, b"");
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "sealcast: configuration error: {}:4: unknown field `colour`",
            b.config.display()
        )),
        "{err}"
    );
    assert!(!marker.exists());
    assert!(b.recordings().is_empty());
}

#[test]
fn a_user_whose_login_shell_is_another_program_is_refused() {
    // Run directly (as root here, login shell /bin/bash), sealcast-shell stands in for
    // ForceCommand behind a bash login shell, which may already have run ~/.bashrc.
    let b = Bastion::new("allow_foreign_login_shell = false\n");
    let user = Command::new("id").arg("-un").output().unwrap();
    let user = text(&user.stdout).trim().to_string();
    let passwd = Command::new("getent")
        .args(["passwd", &user])
        .output()
        .unwrap();
    let shell = text(&passwd.stdout)
        .trim_end()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let o = b.run("echo ran > ran.txt; echo ran", b"");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        text(&o.stderr),
        format!(
            "sealcast: session refused: the login shell of {user} is {shell}, not \
             sealcast-shell ({}); this setup cannot be recorded\n",
            fs::canonicalize(bin()).unwrap().display()
        )
    );
    assert_eq!(text(&o.stdout), "");
    assert!(b.recordings().is_empty());
    // With the unsafe setting the same session runs, recorded.
    b.write_config("allow_foreign_login_shell = true\n");
    let o = b.run("echo ran", b"");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(text(&b.only_recording().stream("o")), "ran\n");
}

#[test]
fn check_config_reports_key_and_spool() {
    let b = Bastion::new("");
    let o = Command::new(bin())
        .arg("--config")
        .arg(&b.config)
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("sealcast-shell: configuration OK ("),
        "{out}"
    );
    assert!(out.contains(&b.spool.display().to_string()), "{out}");
}

#[test]
fn check_config_checks_the_transfer_programs() {
    // A transfer program the user could replace: refused at run time (not a trusted
    // program), so --check-config must not call the configuration OK.
    let b = Bastion::new("");
    let open = b.path("open");
    fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let scp = open.join("scp");
    copy_executable(Path::new("/usr/bin/scp"), &scp);
    chmod(&scp, 0o755);
    let check = |b: &Bastion| {
        Command::new(bin())
            .arg("--config")
            .arg(&b.config)
            .arg("--check-config")
            .output()
            .unwrap()
    };
    for key in ["scp_path", "rsync_path", "sftp_server"] {
        b.write_config(&format!("{key} = {scp:?}\n"));
        let o = check(&b);
        assert_eq!(o.status.code(), Some(1), "{key}: {o:?}");
        let err = text(&o.stderr);
        assert_eq!(
            err,
            format!(
                "sealcast: configuration error: {key} {0}: not a trusted program: {1} is \
                 group- or world-writable (mode 0777)\n",
                scp.display(),
                open.display()
            )
        );
        assert_eq!(text(&o.stdout), "");
    }
    // One that is not installed, in trusted directories: only a warning.
    let missing = b.path("no-rsync");
    b.write_config(&format!("rsync_path = {missing:?}\n"));
    let o = check(&b);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let err = text(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "sealcast-shell: warning: rsync_path {}: not installed (",
            missing.display()
        )),
        "{err}"
    );
    assert!(text(&o.stdout).starts_with("sealcast-shell: configuration OK ("));
}

// ---------------------------------------------------------------------------------------
// Nesting and signals

#[test]
fn a_nested_sealcast_shell_does_not_record_twice() {
    let b = Bastion::new("");
    // The recorded command starts sealcast-shell again (as tmux or su would start the login
    // shell): the inner one finds the outer recorder among its ancestors.
    let inner = format!(
        "SSH_ORIGINAL_COMMAND='echo inner-$((2*3)) session=$SEALCAST_SESSION' {} --config {}; echo outer-done",
        bin().display(),
        b.config.display()
    );
    let o = b.run(&inner, b"");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r = b.only_recording();
    let rec = text(&r.stream("o"));
    assert!(
        rec.contains(&format!("inner-6 session={}\n", r.session())),
        "{rec}"
    );
    assert!(rec.ends_with("outer-done\n"), "{rec}");

    // SEALCAST_SESSION alone (set by the user) is not enough.
    let mut c = b.command(Some("echo recorded"));
    c.env("SEALCAST_SESSION", "0123456789abcdef0123456789abcdef");
    let o = run_with_stdin(c, b"");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(b.recordings().len(), 2);
}

#[test]
fn hangup_closes_the_recording_with_a_final_checkpoint() {
    let b = Bastion::new("");
    let mut child = b
        .command(Some("echo started; sleep 30; echo never"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 8];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"started\n");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let o = wait_output(child, Duration::from_secs(20));
    assert_eq!(
        o.status.code(),
        Some(128 + libc::SIGHUP),
        "{}",
        text(&o.stderr)
    );
    let r = b.only_recording();
    assert_eq!(r.exit().as_deref(), Some("129"));
    assert_eq!(r.stream("o"), b"started\n");
}

// ---------------------------------------------------------------------------------------
// The set-uid privilege model, without sshd: a set-uid copy of the binary owned by `nobody`
// (standing in for `sealcast`), run as `daemon` (the recorded user) with setpriv.

const SERVICE: u32 = 65534; // nobody
const USER: u32 = 1; // daemon

struct SetuidBastion {
    b: Bastion,
    bin: PathBuf,
}

/// Copy an executable with `cp`, in a process of its own: had this (multi-threaded) test
/// process written it, a child forked meanwhile by another test would hold the write
/// descriptor until its `exec`, and running the copy could fail with ETXTBSY.
fn copy_executable(from: &Path, to: &Path) {
    let st = Command::new("cp").arg(from).arg(to).status().unwrap();
    assert!(st.success(), "cp {} {}", from.display(), to.display());
}

fn setuid_bastion(extra: &str) -> Option<SetuidBastion> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: needs root and setpriv");
        return None;
    }
    let b = Bastion::new(extra);
    let bin_dir = b.path("bin");
    fs::create_dir(&bin_dir).unwrap();
    chmod(&bin_dir, 0o755);
    let shell = bin_dir.join("sealcast-shell");
    copy_executable(&bin(), &shell);
    std::os::unix::fs::chown(&shell, Some(SERVICE), Some(0)).unwrap();
    chmod(&shell, 0o4755);
    std::os::unix::fs::chown(&b.key, Some(SERVICE), Some(0)).unwrap();
    std::os::unix::fs::chown(&b.spool, Some(SERVICE), Some(0)).unwrap();
    chmod(&b.spool, 0o750);
    Some(SetuidBastion { b, bin: shell })
}

impl SetuidBastion {
    /// The set-uid binary run as the recorded user.
    fn command(&self, original_command: &str) -> Command {
        let mut c = Command::new("/usr/bin/setpriv");
        c.arg(format!("--reuid={USER}"))
            .arg(format!("--regid={USER}"))
            .arg("--clear-groups")
            .arg(&self.bin)
            .arg("--config")
            .arg(&self.b.config);
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SSH_CONNECTION", "192.0.2.10 50022 192.0.2.1 22")
            .env("SSH_ORIGINAL_COMMAND", original_command);
        c
    }
}

#[test]
fn setuid_recorder_runs_the_child_as_the_user_and_is_out_of_its_reach() {
    let Some(s) = setuid_bastion("") else { return };
    let key = s.b.key.display().to_string();
    let spool = s.b.spool.display().to_string();
    let script = format!(
        "kill -STOP $PPID 2>/dev/null && echo recorder-stopped || echo recorder-not-stoppable; \
         grep -E '^(Uid|Gid|Groups):' /proc/self/status; \
         echo recorder-$(grep '^Uid:' /proc/$PPID/status | tr '\\t' ' '); \
         kill -0 $PPID 2>/dev/null && echo recorder-killable || echo recorder-not-killable; \
         cat {key} >/dev/null 2>&1 && echo key-readable || echo key-protected; \
         ls {spool} >/dev/null 2>&1 && echo spool-listable || echo spool-protected; \
         exit 9"
    );
    let o = run_with_stdin(s.command(&script), b"");
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(9), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("Uid:\t1\t1\t1\t1\n"), "child ids: {out}");
    assert!(out.contains("Gid:\t1\t1\t1\t1\n"), "child ids: {out}");
    assert!(
        out.contains(&format!(
            "recorder-Uid: {SERVICE} {SERVICE} {SERVICE} {SERVICE}\n"
        )),
        "recorder ids: {out}"
    );
    assert!(out.contains("recorder-not-killable\n"), "{out}");
    assert!(out.contains("recorder-not-stoppable\n"), "{out}");
    assert!(out.contains("key-protected\n"), "{out}");
    assert!(out.contains("spool-protected\n"), "{out}");
    let recs = s.b.recordings();
    assert_eq!(recs.len(), 1);
    let m = fs::metadata(&recs[0]).unwrap();
    assert_eq!(m.uid(), SERVICE, "recordings belong to the service user");
    let r = s.b.verified(&recs[0]);
    assert_eq!(r.header.sealcast.as_ref().unwrap().user, "daemon");
    assert_eq!(r.exit().as_deref(), Some("9"));
    assert_eq!(r.stream("o"), o.stdout);
}

#[test]
fn setuid_recorder_still_hangs_up_the_users_session() {
    // After the recorder gave up the user's id, kill(2) on the user's processes is refused;
    // the hangup goes through the signal helper that runs as the user.
    let Some(s) = setuid_bastion("") else { return };
    let mut child = s
        .command("echo started; sleep 30; echo never")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 8];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"started\n");
    // setpriv exec()s the recorder: the child's pid is the recorder's. Root (as sshd) sends
    // the hangup.
    let t = Instant::now();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let o = wait_output(child, Duration::from_secs(20));
    assert_eq!(
        o.status.code(),
        Some(128 + libc::SIGHUP),
        "{}",
        text(&o.stderr)
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "hung up at once, not after the kill grace: {:?}",
        t.elapsed()
    );
    let r = s.b.verified(&s.b.recordings()[0]);
    assert_eq!(r.exit().as_deref(), Some("129"));
}

#[test]
fn setuid_pty_belongs_to_the_user_and_sshds_terminal_is_exclusive() {
    let Some(s) = setuid_bastion("") else { return };
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let outer = pair.master.tty_name().unwrap();
    // sshd gives the user their terminal.
    std::os::unix::fs::chown(&outer, Some(USER), None).unwrap();
    let script = "echo inner-owner=$(stat -c %u $(tty)); \
                  (echo escaped > $SSH_TTY) 2>/dev/null && echo outer-writable || echo outer-busy; \
                  echo child-$(grep ^Uid: /proc/self/status | tr '\\t' ' ')";
    let mut c = CommandBuilder::new("/usr/bin/setpriv");
    c.args([
        format!("--reuid={USER}"),
        format!("--regid={USER}"),
        "--clear-groups".to_string(),
    ]);
    c.arg(&s.bin);
    c.arg("--config");
    c.arg(&s.b.config);
    c.env_clear();
    c.env("PATH", "/usr/bin:/bin");
    c.env("TERM", "xterm");
    c.env("SSH_TTY", &outer);
    c.env("SSH_ORIGINAL_COMMAND", script);
    let mut child = pair.slave.spawn_command(c).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(all);
    });
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "no exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(pair.master);
    let seen = text(&rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default());
    assert_eq!(status.exit_code(), 0, "{seen}");
    let r = s.b.verified(&s.b.recordings()[0]);
    let rec = text(&r.stream("o"));
    assert!(rec.contains(&format!("inner-owner={USER}\r\n")), "{rec}");
    assert!(rec.contains("outer-busy\r\n"), "{rec}");
    assert!(rec.contains("child-Uid: 1 1 1 1\r\n"), "{rec}");
    assert!(!seen.contains("escaped"), "{seen}");
}
