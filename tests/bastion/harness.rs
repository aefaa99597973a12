//! A real OpenSSH bastion for the end-to-end tests: its own `sshd` on a loopback port with its
//! own host key and config, `ForceCommand` pointing at a freshly built `sealcast-shell` that
//! `sealcast install-bastion` installed set-uid `sealcast` under a temp prefix, a throwaway
//! test user with an authorised ed25519 key whose login shell install-bastion made that
//! sealcast-shell (`--users`: the recommended setup, login shell + ForceCommand), and builders
//! for `ssh`, `scp`, `sftp` and `rsync` commands that talk to it. With
//! [`Options::journal`], what sealcast-shell logs to journald is captured ([`Journal`]).
//!
//! Everything global (the test user, the `sealcast` system user, mounts) is created under a
//! file lock, so bastion tests in every test binary run one at a time, and undone in `Drop`
//! even when the test panics: sshd and every process it started are killed, the test user is
//! deleted with its home, tmpfs mounts are unmounted, and the `sealcast` user and group are
//! deleted if this harness created them.
//!
//! Needs root, OpenSSH (`openssh-server`, `openssh-sftp-server`) and `rsync`; interactive
//! sessions are driven through a PTY of our own (`portable-pty`), no tmux. See [`require`] for
//! the skip rule. `SEALCAST_KEEP_BASTION=1` keeps the harness directory for inspection;
//! `SEALCAST_SHELL_BIN=PATH` installs that binary instead of building sealcast-shell.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize};

/// Host id the harness installs with (the allowed_signers principal).
pub const HOST_ID: &str = "sealcast-test-bastion";

/// Path of the `sealcast` binary under test.
pub fn sealcast_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sealcast"))
}

/// True when the bastion tests can run here. When they cannot (not root, or OpenSSH is
/// missing): with `CI` set this panics, otherwise it prints why `test` is skipped and
/// returns false.
pub fn require(test: &str) -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (they create users, a set-uid binary and mounts)".to_string());
    }
    for tool in [
        "/usr/sbin/sshd",
        "/usr/bin/ssh",
        "/usr/bin/ssh-keygen",
        "/usr/bin/scp",
        "/usr/bin/sftp",
        "/usr/lib/openssh/sftp-server",
    ] {
        if !Path::new(tool).exists() {
            missing.push(tool.to_string());
        }
    }
    if which("rsync").is_none() {
        missing.push("rsync".into());
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "needs {} (scripts/setup-debian.sh installs the tools)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}; CI is set, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// Like [`require`], for tests that need only root (no OpenSSH).
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root; CI is set, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {test}: needs root");
    false
}

/// `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The `sealcast-shell` binary to install: `$SEALCAST_SHELL_BIN`, else `sealcast-shell`
/// next to the `sealcast` binary under test, (re)built once per test process with the same
/// cargo profile so it is never stale.
pub fn shell_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("SEALCAST_SHELL_BIN") {
                return PathBuf::from(p);
            }
            let bin = sealcast_bin().with_file_name("sealcast-shell");
            let profile_dir = sealcast_bin()
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "debug".into());
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut c = Command::new(cargo);
            c.args([
                "build",
                "--quiet",
                "-p",
                "sealcast-shell",
                "--bin",
                "sealcast-shell",
            ]);
            match profile_dir.as_str() {
                "debug" => {}
                "release" => {
                    c.arg("--release");
                }
                other => {
                    c.args(["--profile", other]);
                }
            }
            c.current_dir(env!("CARGO_MANIFEST_DIR"));
            let out = c.output().expect("run cargo build -p sealcast-shell");
            assert!(
                out.status.success(),
                "cargo build -p sealcast-shell failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(bin.is_file(), "{} was not built", bin.display());
            bin
        })
        .clone()
}

/// Exclusive lock shared by every bastion test in every test binary (`flock(2)` on a file in
/// /run/lock); released on drop.
pub struct GlobalLock(File);

impl GlobalLock {
    /// Block until the lock is ours.
    pub fn acquire() -> GlobalLock {
        let dir = if Path::new("/run/lock").is_dir() {
            PathBuf::from("/run/lock")
        } else {
            std::env::temp_dir()
        };
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("sealcast-bastion-tests.lock"))
            .expect("open the bastion test lock");
        // SAFETY: a valid descriptor; flock has no memory preconditions.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        GlobalLock(f)
    }
}

/// A directory for harness files whose every ancestor is owned by root and writable only by
/// it, as sealcast-shell demands of `--config` (and sshd of a sane host key path). Created
/// mode 0755 so the sealcast user and the test user can traverse it.
pub fn secure_base() -> PathBuf {
    let candidates = [
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        PathBuf::from("/var/lib/sealcast-tests"),
    ];
    for base in candidates {
        if fs::create_dir_all(&base).is_err() {
            continue;
        }
        let _ = fs::set_permissions(&base, Permissions::from_mode(0o755));
        if chain_is_root_only(&base) {
            return base;
        }
    }
    panic!("no directory with a root-only ancestor chain for the bastion harness");
}

/// Every ancestor of `p` (itself included) is owned by root and not group/world writable.
pub fn chain_is_root_only(p: &Path) -> bool {
    let Ok(canon) = fs::canonicalize(p) else {
        return false;
    };
    canon
        .ancestors()
        .all(|d| fs::metadata(d).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0))
}

/// Choices for one bastion.
#[derive(Debug, Clone)]
pub struct Options {
    /// `Subsystem sftp` value in sshd_config (`/usr/lib/openssh/sftp-server` or `internal-sftp`).
    pub sftp_subsystem: String,
    /// Put `ForceCommand` in sshd_config (the recommended setup; off to test login-shell mode
    /// on its own).
    pub force_command: bool,
    /// Make sealcast-shell the test user's login shell (`install-bastion --users`; the
    /// recommended setup and the default). Off: the user keeps bash, which sealcast-shell
    /// refuses unless the config sets `allow_foreign_login_shell = true`.
    pub login_shell: bool,
    /// Capture sealcast-shell's journald log ([`Bastion::journal`]): sshd runs in a mount
    /// namespace of its own where `/run/systemd/journal` is a directory of the harness whose
    /// socket it reads.
    pub journal: bool,
    /// `key = value` TOML lines replacing those of the installed default config.
    pub config: Vec<(String, String)>,
    /// Also listen on a second port without ForceCommand ([`Bastion::plain_port`]), for
    /// side-by-side comparisons (the benchmark).
    pub plain_port: bool,
    /// sshd_config lines written before install-bastion's snippet, so they win over it (for
    /// most keywords sshd keeps the first value): what an operator who weakened the snippet
    /// would have, e.g. `PermitUserRC yes`.
    pub sshd_extra: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sftp_subsystem: "/usr/lib/openssh/sftp-server".into(),
            force_command: true,
            login_shell: true,
            journal: false,
            config: Vec::new(),
            plain_port: false,
            sshd_extra: Vec::new(),
        }
    }
}

/// A running bastion. See the module docs.
pub struct Bastion {
    /// Harness directory (removed on drop), mode 0755, root-only ancestors.
    pub dir: PathBuf,
    /// `--prefix` given to install-bastion.
    pub prefix: PathBuf,
    /// `--config-dir` given to install-bastion (sealcast.toml, keys/, allowed_signers).
    pub etc: PathBuf,
    /// `<etc>/sealcast.toml`.
    pub config: PathBuf,
    /// `<etc>/allowed_signers`.
    pub allowed_signers: PathBuf,
    /// `<etc>/keys/signing.key`.
    pub signing_key: PathBuf,
    /// The spool directory recordings go to.
    pub spool: PathBuf,
    /// The installed set-uid `<prefix>/lib/sealcast/sealcast-shell`.
    pub shell_bin: PathBuf,
    /// The test user.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Its home directory.
    pub home: PathBuf,
    /// sshd's port on 127.0.0.1.
    pub port: u16,
    /// With [`Options::plain_port`]: a second port where sessions run without ForceCommand.
    pub plain_port: Option<u16>,
    /// The client's private key (authorised for the test user).
    pub client_key: PathBuf,
    /// sshd's stderr log (`-e`).
    pub sshd_log: PathBuf,
    /// What install-bastion printed.
    pub install_output: String,
    /// The options the bastion was started with.
    pub options: Options,
    /// With [`Options::journal`]: what sealcast-shell logged.
    pub journal: Option<Journal>,
    sshd: Option<Child>,
    sshd_config: PathBuf,
    created_service_user: bool,
    user_created: bool,
    mounts: Vec<PathBuf>,
    _lock: GlobalLock,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Bastion {
    /// Start a bastion with default options.
    pub fn start() -> Bastion {
        Bastion::with(Options::default())
    }

    /// Build, install and start everything; panics (after cleaning up) on any failure.
    pub fn with(options: Options) -> Bastion {
        let shell_src = shell_binary();
        let lock = GlobalLock::acquire();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = secure_base().join(format!("bastion-{pid}-{n}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create harness dir");
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let etc = dir.join("etc");
        let user = format!("sctest{pid}x{n}");
        let mut b = Bastion {
            prefix: dir.join("prefix"),
            config: etc.join("sealcast.toml"),
            allowed_signers: etc.join("allowed_signers"),
            signing_key: etc.join("keys/signing.key"),
            spool: dir.join("spool"),
            shell_bin: dir.join("prefix/lib/sealcast/sealcast-shell"),
            etc,
            user: user.clone(),
            uid: 0,
            home: PathBuf::new(),
            port: 0,
            plain_port: None,
            client_key: dir.join("client_ed25519"),
            sshd_log: dir.join("sshd.log"),
            install_output: String::new(),
            options: options.clone(),
            journal: None,
            sshd: None,
            sshd_config: dir.join("sshd_config"),
            created_service_user: !user_exists("sealcast"),
            user_created: false,
            mounts: Vec::new(),
            dir,
            _lock: lock,
        };

        // The test user: bash, a home from /etc/skel, a password field that is not locked
        // (sshd without PAM refuses accounts whose password starts with '!').
        let o = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/bash", "--password", "*"])
            .arg(&user)
            .output()
            .expect("run useradd");
        assert!(
            o.status.success(),
            "useradd {user}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        b.user_created = true;
        b.uid = id_of(&user, "-u");
        b.home = PathBuf::from(format!("/home/{user}"));
        assert!(b.home.is_dir(), "useradd made no home for {user}");

        // The install, exactly as an operator would run it (but under a temp prefix).
        let out = Command::new(sealcast_bin())
            .arg("install-bastion")
            .arg("--prefix")
            .arg(&b.prefix)
            .arg("--config-dir")
            .arg(&b.etc)
            .arg("--spool-dir")
            .arg(&b.spool)
            .arg("--host-id")
            .arg(HOST_ID)
            .arg("--shell-binary")
            .arg(&shell_src)
            .args(if options.login_shell {
                vec!["--users", user.as_str()]
            } else {
                vec![]
            })
            .output()
            .expect("run sealcast install-bastion");
        b.install_output = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "install-bastion failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            b.install_output
        );
        if options.login_shell {
            let shell = format!(
                "set the login shell of {user} to {} (was /bin/bash)",
                b.shell_bin.display()
            );
            assert!(
                b.install_output.contains(&shell),
                "install-bastion --users did not say: {shell}\n{}",
                b.install_output
            );
        }
        for (k, v) in &options.config {
            b.set_config(k, v);
        }
        // The installed binary accepts the installed config (as root: the set-uid bit makes
        // it read as `sealcast`, like a session would).
        let check = Command::new(&b.shell_bin)
            .arg("--config")
            .arg(&b.config)
            .arg("--check-config")
            .output()
            .expect("run sealcast-shell --check-config");
        assert!(
            check.status.success(),
            "sealcast-shell --check-config rejects the installed config: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );

        // Client key, authorised for the user (sshd reads the file as the user).
        run_ok(
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "sealcast-test-client",
                    "-f",
                ])
                .arg(&b.client_key),
        );
        let authorized = b.dir.join("authorized");
        fs::create_dir(&authorized).unwrap();
        fs::set_permissions(&authorized, Permissions::from_mode(0o755)).unwrap();
        b.authorize_key("");

        // sshd's host key and privilege separation directory.
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(b.dir.join("ssh_host_ed25519_key")),
        );
        if !Path::new("/run/sshd").is_dir() {
            fs::create_dir_all("/run/sshd").expect("create /run/sshd");
            fs::set_permissions("/run/sshd", Permissions::from_mode(0o755)).unwrap();
        }
        if options.journal {
            b.journal = Some(Journal::start(&b.dir.join("journal")));
        }
        b.start_sshd();
        b
    }

    /// Entries sealcast-shell logged so far ([`Options::journal`]).
    ///
    /// # Panics
    /// Without [`Options::journal`].
    pub fn journal(&self) -> Vec<BTreeMap<String, String>> {
        self.journal
            .as_ref()
            .expect("Options::journal is off")
            .entries()
    }

    /// (Re)write the test user's authorized key line with these authorized_keys(5) options
    /// in front (`""`: none; e.g. `command="…"`). sshd reads the file at each login.
    pub fn authorize_key(&self, options: &str) {
        let pubkey = fs::read_to_string(self.dir.join("client_ed25519.pub")).unwrap();
        let keys = self
            .dir
            .join("authorized")
            .join(format!("{}.keys", self.user));
        let line = if options.is_empty() {
            pubkey
        } else {
            format!("{options} {pubkey}")
        };
        fs::write(&keys, line).unwrap();
        fs::set_permissions(&keys, Permissions::from_mode(0o644)).unwrap();
    }

    /// The sshd_config snippet install-bastion printed (between its markers).
    pub fn snippet(&self) -> String {
        let mut inside = false;
        let mut out = String::new();
        for line in self.install_output.lines() {
            if line.starts_with("# --- sshd_config snippet") {
                inside = true;
            } else if line.starts_with("# --- end of snippet") {
                break;
            } else if inside {
                out.push_str(line);
                out.push('\n');
            }
        }
        assert!(
            out.contains("ForceCommand "),
            "no snippet in install-bastion's output:\n{}",
            self.install_output
        );
        out
    }

    fn write_sshd_config(&self) {
        let d = &self.dir;
        let mut c = format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             PidFile {d}/sshd.pid\n\
             HostKey {d}/ssh_host_ed25519_key\n\
             AuthorizedKeysFile {d}/authorized/%u.keys\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PermitRootLogin no\n\
             AllowUsers {user}\n\
             PrintMotd no\n\
             LogLevel VERBOSE\n\
             MaxStartups 50\n\
             Subsystem sftp {sftp}\n",
            port = self.port,
            d = d.display(),
            user = self.user,
            sftp = self.options.sftp_subsystem,
        );
        for line in &self.options.sshd_extra {
            c.push_str(line);
            c.push('\n');
        }
        // install-bastion's own snippet: ForceCommand and the hardening lines.
        let mut force = None;
        for line in self.snippet().lines() {
            if line.starts_with("ForceCommand ") {
                force = Some(line.to_string());
                continue;
            }
            c.push_str(line);
            c.push('\n');
        }
        let force = force.expect("ForceCommand in the snippet");
        match (self.options.force_command, self.plain_port) {
            (false, _) => {}
            (true, None) => {
                c.push_str(&force);
                c.push('\n');
            }
            (true, Some(plain)) => {
                c.push_str(&format!(
                    "Port {plain}\nMatch LocalPort {}\n    {force}\n",
                    self.port
                ));
            }
        }
        fs::write(&self.sshd_config, c).unwrap();
    }

    fn start_sshd(&mut self) {
        let mut last_log = String::new();
        for _attempt in 0..5 {
            self.port = free_port();
            if self.options.plain_port {
                self.plain_port = Some(loop {
                    let p = free_port();
                    if p != self.port {
                        break p;
                    }
                });
            }
            self.write_sshd_config();
            let log = File::create(&self.sshd_log).unwrap();
            let mut sshd = match &self.journal {
                // sshd (same pid: unshare and sh exec) in a mount namespace of its own, where
                // the harness's journal directory is /run/systemd/journal. Mounts made later
                // outside (small_spool) still propagate in (slave).
                Some(j) => {
                    let mut c = Command::new("unshare");
                    c.args(["--mount", "--propagation", "slave", "--", "sh", "-c"])
                        .arg("mount --bind \"$0\" /run/systemd/journal && exec \"$@\"")
                        .arg(&j.dir)
                        .arg("/usr/sbin/sshd");
                    c
                }
                None => Command::new("/usr/sbin/sshd"),
            };
            let child = sshd
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&self.sshd_config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            self.sshd = Some(child);
            if wait_for(Duration::from_secs(10), || self.banner_ok()) {
                return;
            }
            last_log = fs::read_to_string(&self.sshd_log).unwrap_or_default();
            self.stop_sshd();
        }
        panic!("sshd did not start; its log:\n{last_log}");
    }

    fn banner_ok(&mut self) -> bool {
        if let Some(c) = self.sshd.as_mut() {
            if let Ok(Some(_)) = c.try_wait() {
                return false;
            }
        }
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 8];
        s.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0-"
    }

    fn stop_sshd(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restart sshd with `options` (the config file is rewritten; the port changes).
    pub fn restart_sshd(&mut self, options: Options) {
        self.stop_sshd();
        self.options = options;
        self.start_sshd();
    }

    /// sshd's log so far.
    pub fn sshd_log(&self) -> String {
        fs::read_to_string(&self.sshd_log).unwrap_or_default()
    }

    /// Set `key = value` (value in TOML syntax, e.g. `"deny"`, `false`) in sealcast.toml,
    /// replacing the existing line.
    pub fn set_config(&self, key: &str, value: &str) {
        let text = fs::read_to_string(&self.config).expect("read sealcast.toml");
        let mut found = false;
        let mut out = String::new();
        for line in text.lines() {
            if line.split('=').next().map(str::trim) == Some(key) && !line.starts_with('#') {
                out.push_str(&format!("{key} = {value}\n"));
                found = true;
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        if !found {
            out.push_str(&format!("{key} = {value}\n"));
        }
        fs::write(&self.config, out).expect("write sealcast.toml");
    }

    /// Make the installed sealcast-shell the test user's login shell, or bash again.
    pub fn set_login_shell(&self, sealcast: bool) {
        let shell = if sealcast {
            self.shell_bin.clone()
        } else {
            PathBuf::from("/bin/bash")
        };
        run_ok(
            Command::new("usermod")
                .arg("--shell")
                .arg(&shell)
                .arg(&self.user),
        );
    }

    /// `user@127.0.0.1`.
    pub fn destination(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// `user@127.0.0.1:path` for scp and rsync.
    pub fn remote(&self, path: &str) -> String {
        format!("{}@127.0.0.1:{path}", self.user)
    }

    /// Client options shared by ssh, scp and sftp (no port: its flag differs).
    pub fn client_opts(&self) -> Vec<String> {
        [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-i",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([self.client_key.display().to_string()])
        .collect()
    }

    /// `ssh -F /dev/null … -i KEY -p PORT` without the destination (for `rsync -e` and PTY
    /// clients).
    pub fn ssh_argv(&self) -> Vec<String> {
        let mut v = vec!["ssh".to_string()];
        v.extend(self.client_opts());
        v.push("-p".into());
        v.push(self.port.to_string());
        v
    }

    /// [`Bastion::ssh_argv`] for another port (e.g. [`Bastion::plain_port`]).
    pub fn ssh_argv_on(&self, port: u16) -> Vec<String> {
        let mut v = self.ssh_argv();
        *v.last_mut().unwrap() = port.to_string();
        v
    }

    /// [`Bastion::ssh_argv`] as one shell string, for `rsync -e`.
    pub fn ssh_e(&self) -> String {
        self.ssh_argv().join(" ")
    }

    /// `ssh … user@127.0.0.1 ARGS…` (options must come before `args`' command words).
    pub fn ssh(&self, args: &[&str]) -> Command {
        let argv = self.ssh_argv();
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        let (opts, rest): (Vec<&str>, Vec<&str>) = split_options(args);
        c.args(opts).arg(self.destination()).args(rest);
        c.env_remove("SSH_AUTH_SOCK");
        c
    }

    /// `ssh … user@127.0.0.1 COMMAND` with the command as raw bytes (control characters,
    /// non-UTF-8), one argument: ssh sends it unchanged.
    pub fn ssh_bytes(&self, command: &[u8]) -> Command {
        use std::os::unix::ffi::OsStrExt;
        let mut c = self.ssh(&[]);
        c.arg(std::ffi::OsStr::from_bytes(command));
        c
    }

    /// `scp … -P PORT ARGS…`.
    pub fn scp(&self, args: &[&str]) -> Command {
        let mut c = Command::new("scp");
        c.args(self.client_opts())
            .arg("-P")
            .arg(self.port.to_string())
            .args(args);
        c.env_remove("SSH_AUTH_SOCK");
        c
    }

    /// `sftp … -P PORT ARGS… user@127.0.0.1`.
    pub fn sftp(&self, args: &[&str]) -> Command {
        let mut c = Command::new("sftp");
        c.args(self.client_opts())
            .arg("-P")
            .arg(self.port.to_string())
            .args(args)
            .arg(self.destination());
        c.env_remove("SSH_AUTH_SOCK");
        c
    }

    /// `rsync -e '<ssh …>' ARGS…`.
    pub fn rsync(&self, args: &[&str]) -> Command {
        let mut c = Command::new("rsync");
        c.arg("-e").arg(self.ssh_e()).args(args);
        c.env_remove("SSH_AUTH_SOCK");
        c
    }

    /// A command run locally as the test user (its uid, gid and groups), with its HOME.
    pub fn as_user(&self, program: &str) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.user))
            .arg(format!("--regid={}", self.user))
            .arg("--init-groups")
            .arg("--reset-env")
            .arg("--")
            .arg(program);
        c.current_dir(&self.home);
        c
    }

    /// Write a file in the test user's home, owned by the user (and any missing directory on
    /// the way, mode 0755).
    pub fn write_user_file(&self, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let p = self.home.join(name);
        let gid = id_of(&self.user, "-g");
        let mut missing: Vec<PathBuf> = p
            .ancestors()
            .skip(1)
            .take_while(|d| !d.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        for d in missing {
            fs::create_dir(&d).unwrap();
            std::os::unix::fs::chown(&d, Some(self.uid), Some(gid)).unwrap();
            fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(&p, content).unwrap();
        std::os::unix::fs::chown(&p, Some(self.uid), Some(gid)).unwrap();
        fs::set_permissions(&p, Permissions::from_mode(mode)).unwrap();
        p
    }

    /// Recordings (`*.cast.zst`) in `dir`, oldest first (by name within one mtime).
    pub fn recordings_in(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".cast.zst"))
                    .map(|p| {
                        let t = fs::metadata(&p)
                            .and_then(|m| m.created().or_else(|_| m.modified()))
                            .unwrap_or(std::time::UNIX_EPOCH);
                        (t, p)
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.into_iter().map(|(_, p)| p).collect()
    }

    /// Recordings in the spool, oldest first.
    pub fn recordings(&self) -> Vec<PathBuf> {
        Bastion::recordings_in(&self.spool)
    }

    /// Wait until the spool holds a recording not in `before` whose seal receipt exists (the
    /// recorder closed it); panics with the sshd log after `secs`.
    pub fn wait_new_recording(&self, before: &[PathBuf], secs: u64) -> PathBuf {
        self.wait_new_recording_in(&self.spool, before, secs)
    }

    /// [`Bastion::wait_new_recording`] in another directory.
    pub fn wait_new_recording_in(&self, dir: &Path, before: &[PathBuf], secs: u64) -> PathBuf {
        let mut found = None;
        let ok = wait_for(Duration::from_secs(secs), || {
            found = Bastion::recordings_in(dir)
                .into_iter()
                .find(|p| !before.contains(p) && receipt(p).is_file());
            found.is_some()
        });
        assert!(
            ok,
            "no new sealed recording in {} after {secs} s (have {:?}); sshd log:\n{}",
            dir.display(),
            Bastion::recordings_in(dir),
            self.sshd_log()
        );
        found.unwrap()
    }

    /// `sealcast verify --json --trusted <allowed_signers> FILE`: the file's status string.
    pub fn verify_status(&self, file: &Path) -> String {
        let out = Command::new(sealcast_bin())
            .arg("verify")
            .arg("--json")
            .arg("--trusted")
            .arg(&self.allowed_signers)
            .arg(file)
            .output()
            .expect("run sealcast verify");
        let text = String::from_utf8_lossy(&out.stdout);
        let first: serde_json::Value = text
            .lines()
            .next()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "sealcast verify gave no JSON for {}: {text}{}",
                    file.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let status = first["status"].as_str().unwrap_or("?").to_string();
        let ok_exit = out.status.code() == Some(0);
        assert_eq!(
            status == "OK",
            ok_exit,
            "verify exit code {:?} does not match status {status}",
            out.status.code()
        );
        status
    }

    /// Assert `file` verifies `OK` against the bastion's allowed_signers.
    pub fn assert_verifies(&self, file: &Path) {
        let status = self.verify_status(file);
        assert_eq!(
            status,
            "OK",
            "{} does not verify: {}",
            file.display(),
            self.verify_human(file)
        );
    }

    /// `sealcast verify` human output for a file (for messages).
    pub fn verify_human(&self, file: &Path) -> String {
        let out = Command::new(sealcast_bin())
            .arg("verify")
            .arg("--trusted")
            .arg(&self.allowed_signers)
            .arg(file)
            .output()
            .expect("run sealcast verify");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Assert every recording in the spool verifies `OK` (all of them: a test that makes a
    /// broken one on purpose keeps it elsewhere or lists it in `except`); returns how many.
    pub fn assert_all_verify(&self, except: &[PathBuf]) -> usize {
        let all = self.recordings();
        for f in all.iter().filter(|f| !except.contains(f)) {
            self.assert_verifies(f);
        }
        all.len()
    }

    /// Mount a tmpfs of `size` bytes at `<dir>/NAME` owned by sealcast, mode 0750 (unmounted on
    /// drop) and point spool_dir at it. Returns the mount point.
    pub fn small_spool(&mut self, name: &str, size: u64) -> PathBuf {
        let mnt = self.dir.join(name);
        fs::create_dir_all(&mnt).unwrap();
        let uid = id_of("sealcast", "-u");
        let gid = id_of("sealcast", "-g");
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size},mode=0750,uid={uid},gid={gid}"))
                .arg("tmpfs")
                .arg(&mnt),
        );
        self.mounts.push(mnt.clone());
        self.set_config("spool_dir", &format!("\"{}\"", mnt.display()));
        mnt
    }

    /// Fill `dir` (a small tmpfs) until writes fail, leaving about `leave` bytes free.
    pub fn fill(dir: &Path, leave: u64) {
        let mut f = File::create(dir.join("filler")).unwrap();
        let chunk = vec![0x5au8; 4096];
        loop {
            let free = free_bytes(dir);
            if free <= leave || f.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = f.sync_all();
    }

    /// Pids of running processes whose executable is the installed sealcast-shell.
    pub fn recorder_pids(&self) -> Vec<u32> {
        let want = fs::canonicalize(&self.shell_bin).unwrap_or(self.shell_bin.clone());
        processes()
            .into_iter()
            .filter(|p| {
                fs::read_link(format!("/proc/{}/exe", p.pid))
                    .is_ok_and(|exe| exe == want || exe == self.shell_bin)
            })
            .map(|p| p.pid)
            .collect()
    }

    /// Kill every process sshd started (by pid), the test user's processes and running
    /// recorders: SIGTERM, then SIGKILL after a grace period.
    fn kill_everything(&mut self) {
        let sshd_pid = self.sshd.as_ref().map(|c| c.id());
        let mut targets: BTreeSet<u32> = BTreeSet::new();
        let procs = processes();
        if let Some(root) = sshd_pid {
            let mut frontier = vec![root];
            while let Some(p) = frontier.pop() {
                for c in procs.iter().filter(|q| q.ppid == p) {
                    if targets.insert(c.pid) {
                        frontier.push(c.pid);
                    }
                }
            }
        }
        if self.user_created {
            targets.extend(procs.iter().filter(|p| p.uid == self.uid).map(|p| p.pid));
        }
        targets.extend(self.recorder_pids());
        self.stop_sshd();
        let me = std::process::id();
        targets.remove(&me);
        for &p in &targets {
            // SAFETY: plain kill(2) on pids this harness started.
            unsafe { libc::kill(p as i32, libc::SIGTERM) };
        }
        let alive = |p: u32| Path::new(&format!("/proc/{p}")).exists() && !is_zombie(p);
        wait_for(Duration::from_secs(3), || {
            targets.iter().all(|&p| !alive(p))
        });
        for &p in targets.iter().filter(|&&p| alive(p)) {
            // SAFETY: as above.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        wait_for(Duration::from_secs(3), || {
            targets.iter().all(|&p| !alive(p))
        });
    }
}

impl Drop for Bastion {
    fn drop(&mut self) {
        self.kill_everything();
        drop(self.journal.take());
        for m in self.mounts.drain(..).rev() {
            let ok = Command::new("umount")
                .arg(&m)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&m).status();
            }
        }
        if self.user_created {
            let ok = Command::new("userdel")
                .arg("--remove")
                .arg(&self.user)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // A straggler process; try once more after killing by uid again.
                self.kill_everything();
                let _ = Command::new("userdel")
                    .arg("--force")
                    .arg("--remove")
                    .arg(&self.user)
                    .stderr(Stdio::null())
                    .status();
            }
            if user_exists(&self.user) {
                eprintln!("bastion harness: could not delete test user {}", self.user);
            }
        }
        if self.created_service_user && user_exists("sealcast") {
            let _ = Command::new("userdel").arg("sealcast").status();
            if group_exists("sealcast") {
                let _ = Command::new("groupdel").arg("sealcast").status();
            }
        }
        if std::env::var_os("SEALCAST_KEEP_BASTION").is_some() {
            eprintln!("bastion harness: kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A stand-in for journald for one bastion: a datagram socket `<dir>/socket` (mode 0666)
/// that sshd's mount namespace sees as `/run/systemd/journal/socket`, read by a thread into
/// entries of the native protocol (`KEY=value` lines, or `KEY`, a 64-bit little-endian length,
/// the value and a newline). `/run/systemd/journal` is created as the mount point when
/// missing (and removed again, empty, on drop); the global lock keeps other harnesses away.
pub struct Journal {
    /// The directory bound on `/run/systemd/journal`.
    pub dir: PathBuf,
    entries: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    created_mount_point: Option<PathBuf>,
}

impl Journal {
    fn start(dir: &Path) -> Journal {
        let mount_point = Path::new("/run/systemd/journal");
        let created_mount_point = (!mount_point.exists()).then(|| {
            fs::create_dir_all(mount_point).expect("create /run/systemd/journal");
            mount_point.to_path_buf()
        });
        fs::create_dir_all(dir).unwrap();
        fs::set_permissions(dir, Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("socket");
        let socket = UnixDatagram::bind(&path).expect("bind the journal socket");
        fs::set_permissions(&path, Permissions::from_mode(0o666)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let entries = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (entries, stop) = (entries.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(n) = socket.recv(&mut buf) {
                        if n > 0 {
                            entries.lock().unwrap().push(parse_journal_entry(&buf[..n]));
                        }
                    }
                }
            })
        };
        Journal {
            dir: dir.to_path_buf(),
            entries,
            stop,
            reader: Some(reader),
            created_mount_point,
        }
    }

    /// The entries so far.
    pub fn entries(&self) -> Vec<BTreeMap<String, String>> {
        self.entries.lock().unwrap().clone()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if let Some(p) = self.created_mount_point.take() {
            let _ = fs::remove_dir(p);
        }
    }
}

/// One datagram of journald's native protocol as fields (values lossily UTF-8).
fn parse_journal_entry(mut b: &[u8]) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    while let Some(nl) = b.iter().position(|&c| c == b'\n') {
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            fields.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            b = &b[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &b[nl + 1..];
            if rest.len() < 8 {
                break;
            }
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let Some(value) = rest.get(8..8 + len) else {
                break;
            };
            fields.insert(key, String::from_utf8_lossy(value).into_owned());
            b = rest.get(8 + len + 1..).unwrap_or_default();
        }
    }
    fields
}

/// Options before the destination, command words after: `["-t", "-o", "X=y", "cmd"]` splits
/// into `["-t", "-o", "X=y"]` and `["cmd"]`. Flags that take a value: the ones the tests use.
fn split_options<'a>(args: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let takes_value = [
        "-o", "-L", "-R", "-W", "-D", "-J", "-l", "-E", "-b", "-c", "-m",
    ];
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        if takes_value.contains(&args[i]) {
            i += 1;
        }
        i += 1;
    }
    let i = i.min(args.len());
    (args[..i].to_vec(), args[i..].to_vec())
}

/// `<file>.seal`.
pub fn receipt(p: &Path) -> PathBuf {
    sealcast_format::names::receipt_path(p)
}

fn run_ok(c: &mut Command) -> Output {
    let o = c.output().unwrap_or_else(|e| panic!("run {c:?}: {e}"));
    assert!(
        o.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `id -u NAME` / `id -g NAME`.
pub fn id_of(name: &str, flag: &str) -> u32 {
    let o = run_ok(Command::new("id").arg(flag).arg(name));
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

/// A passwd entry exists for `name`.
pub fn user_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["passwd", name])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A group entry exists for `name`.
pub fn group_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["group", name])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Free bytes on the filesystem holding `dir` (`df`).
pub fn free_bytes(dir: &Path) -> u64 {
    let o = run_ok(Command::new("df").args(["--output=avail", "-B1"]).arg(dir));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// One row of /proc.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
}

/// Every process (pid, ppid, real uid).
pub fn processes() -> Vec<Proc> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u32>().ok())
            };
            Some(Proc {
                pid,
                ppid: field("PPid:")?,
                uid: field("Uid:")?,
            })
        })
        .collect()
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Run `cmd` with `stdin` bytes, capturing stdout and stderr; kill it after `secs`.
/// Returns the output and whether it timed out.
pub fn run_timeout(cmd: &mut Command, stdin: &[u8], secs: u64) -> (Output, bool) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let r_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let r_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let end = Instant::now() + Duration::from_secs(secs);
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= end {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let output = Output {
        status,
        stdout: r_out.join().unwrap(),
        stderr: r_err.join().unwrap(),
    };
    (output, timed_out)
}

/// [`run_timeout`], panicking on a timeout with what was captured.
pub fn run(cmd: &mut Command, stdin: &[u8], secs: u64) -> Output {
    let desc = format!("{cmd:?}");
    let (o, timed_out) = run_timeout(cmd, stdin, secs);
    assert!(
        !timed_out,
        "timed out after {secs} s: {desc}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Exit code, or 128 + signal.
pub fn code(s: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// A client (`ssh -tt …`) running in a PTY of our own, as a terminal emulator would run it.
pub struct PtyClient {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl PtyClient {
    /// Spawn `argv` in a new `cols`×`rows` PTY with `TERM=xterm-256color`.
    pub fn spawn(argv: &[String], cols: u16, rows: u16) -> PtyClient {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("SSH_AUTH_SOCK");
        let child = pair.slave.spawn_command(cmd).expect("spawn in PTY");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("PTY reader");
        let writer = pair.master.take_writer().expect("PTY writer");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        PtyClient {
            master: pair.master,
            writer,
            child,
            output,
            reader: Some(handle),
        }
    }

    /// Everything the client printed so far, lossily as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Type `s`.
    pub fn send(&mut self, s: &str) {
        self.writer.write_all(s.as_bytes()).expect("write to PTY");
        self.writer.flush().unwrap();
    }

    /// Wait until the output contains `needle`; panics with the output.
    pub fn expect(&self, needle: &str, secs: u64) {
        let ok = wait_for(Duration::from_secs(secs), || self.text().contains(needle));
        assert!(
            ok,
            "timed out after {secs} s waiting for {needle:?}; client output:\n{}",
            self.text()
        );
    }

    /// Resize the client's terminal (the client sends a window-change to sshd).
    pub fn resize(&self, cols: u16, rows: u16) {
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("resize PTY");
    }

    /// The client's pid.
    pub fn pid(&self) -> u32 {
        self.child.process_id().expect("client pid")
    }

    /// Wait for the client to exit; its exit code.
    pub fn wait(&mut self, secs: u64) -> u32 {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s.exit_code();
            }
            assert!(
                Instant::now() < end,
                "client did not exit in {secs} s; output:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the client (as when its machine dies or the user kills the terminal).
    pub fn kill9(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid() as i32, libc::SIGKILL) };
        let _ = self.wait(10);
    }
}

impl Drop for PtyClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = self.reader.take();
    }
}

/// A loopback TCP port that was free a moment ago ([`sealcast_testkit::free_port`]).
pub fn free_port() -> u16 {
    sealcast_testkit::free_port()
}

/// Poll `cond` every 50 ms until it holds or `timeout` passes; returns whether it held
/// ([`sealcast_testkit::wait_until`]).
pub fn wait_for(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    sealcast_testkit::wait_until(timeout, cond)
}
