//! PostgreSQL 15 (`initdb` into a temp dir, run as the `postgres` system user) and MariaDB
//! 10.11 (`mariadb-install-db`, run as `mysql`), loopback only, TLS with a throwaway CA made
//! with rcgen, statement logging on so the servers' own logs show what reached them; and
//! `sealcast db-proxy` processes in front of them.
//!
//! A server is started on first use and lives until the test binary exits: an `atexit`
//! hook kills it by the pid it recorded (so a panicking test never leaves one behind).
//! Needs root (servers run as their system users); see [`require`].

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// PostgreSQL binaries.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// True when the DB tests can run; with `CI` set a missing tool is a failure.
pub fn require(test: &str, mysql: bool) -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".to_string());
    }
    let mut tools = vec![
        format!("{PG_BIN}/initdb"),
        format!("{PG_BIN}/pg_ctl"),
        "/usr/bin/psql".into(),
        "/usr/bin/pgbench".into(),
    ];
    if mysql {
        tools = vec![
            "/usr/sbin/mariadbd".into(),
            "/usr/bin/mariadb-install-db".into(),
            "/usr/bin/mariadb".into(),
        ];
    }
    for t in tools {
        if !Path::new(&t).exists() {
            missing.push(t);
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "needs {} (scripts/setup-debian.sh installs them)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}; CI is set, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// Run a command, panicking with its output when it fails.
pub fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn chown_r(p: &Path, user: &str) {
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(p));
}

/// Throwaway PKI: a CA and a server certificate for `localhost` / `127.0.0.1`.
pub struct Pki {
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server key (PEM, 0600).
    pub key: PathBuf,
    /// A second CA that signed nothing here (for "unknown CA" tests).
    pub other_ca: PathBuf,
}

impl Pki {
    /// Generate into `dir`.
    pub fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mk_ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            let k = KeyPair::generate().unwrap();
            let c = p.self_signed(&k).unwrap();
            (p, k, c)
        };
        let (ca_p, ca_k, ca_c) = mk_ca("sealcast test CA");
        let (_, _, other_c) = mk_ca("someone else's CA");
        let mut sp =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        sp.distinguished_name.push(DnType::CommonName, "localhost");
        let sk = KeyPair::generate().unwrap();
        let issuer = Issuer::new(ca_p, ca_k);
        let sc = sp.signed_by(&sk, &issuer).unwrap();
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            other_ca: dir.join("other-ca.pem"),
        };
        fs::write(&pki.ca, ca_c.pem()).unwrap();
        fs::write(&pki.other_ca, other_c.pem()).unwrap();
        fs::write(&pki.cert, sc.pem()).unwrap();
        fs::write(&pki.key, sk.serialize_pem()).unwrap();
        fs::set_permissions(&pki.key, fs::Permissions::from_mode(0o600)).unwrap();
        pki
    }
}

/// What to stop when the test binary exits (an `atexit` hook, so it also runs after failed
/// tests: the test runner ends with `exit`): pid, signal, and a directory to remove after.
type Stop = (i32, i32, Option<PathBuf>);
static REG: OnceLock<Mutex<Vec<Stop>>> = OnceLock::new();

extern "C" fn stop_registered() {
    if let Some(r) = REG.get() {
        let all = std::mem::take(&mut *r.lock().unwrap_or_else(|p| p.into_inner()));
        for (pid, sig, dir) in all {
            // SAFETY: kill(2) on a pid this process started.
            unsafe {
                libc::kill(pid, sig);
            }
            let end = Instant::now() + Duration::from_secs(10);
            // SAFETY: signal 0 only probes the pid.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < end {
                // Reap it if it is our child (mariadbd); harmless otherwise.
                // SAFETY: waitpid on a specific pid with WNOHANG.
                unsafe {
                    libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            if let Some(d) = dir {
                let _ = fs::remove_dir_all(d);
            }
        }
    }
}

/// Stop `pid` with `sig` at exit (then SIGKILL), and remove `dir`.
fn remember(pid: i32, sig: i32, dir: Option<PathBuf>) {
    REG.get_or_init(|| {
        // SAFETY: registering a plain extern "C" function without captured state.
        unsafe {
            libc::atexit(stop_registered);
        }
        Mutex::new(Vec::new())
    })
    .lock()
    .unwrap_or_else(|p| p.into_inner())
    .push((pid, sig, dir));
}

/// A temp dir the server user can use.
fn server_dir(prefix: &str, user: &str) -> PathBuf {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap()
        .keep();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    chown_r(&d, user);
    d
}

/// Wait until `cond` holds (polling every 50 ms); fails the test after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(
        sealcast_testkit::wait_until(timeout, cond),
        "timed out waiting for {what}"
    );
}

/// A loopback TCP port that was free a moment ago ([`sealcast_testkit::free_port`]).
pub fn free_port() -> u16 {
    sealcast_testkit::free_port()
}

/// A PostgreSQL 15 server.
pub struct Postgres {
    /// Its directory (data, socket, log, certificates).
    pub dir: PathBuf,
    /// Loopback TCP port.
    pub port: u16,
    /// The server log (`log_statement = all`).
    pub log: PathBuf,
    /// The PKI whose CA signed the server certificate.
    pub pki: Pki,
    pid: i32,
}

/// Roles: (name, password, pg_hba method).
pub const PG_ROLES: &[(&str, &str, &str)] = &[
    ("app_scram", "scram-pw", "scram-sha-256"),
    ("app_md5", "md5-pw", "md5"),
    ("app_clear", "clear-pw", "password"),
];

impl Postgres {
    /// The server of this test binary, started on first use.
    pub fn shared() -> &'static Postgres {
        static S: OnceLock<Postgres> = OnceLock::new();
        S.get_or_init(Postgres::start)
    }

    fn start() -> Postgres {
        let dir = server_dir("sealcast-pg-", "postgres");
        let pki = Pki::new(&dir);
        chown_r(&dir, "postgres");
        let data = dir.join("data");
        let pw = dir.join("pw");
        fs::write(&pw, "super-pw\n").unwrap();
        chown_r(&dir, "postgres");
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{PG_BIN}/initdb"))
            .args([
                "-A",
                "scram-sha-256",
                "--auth-local=trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg("--pwfile")
            .arg(&pw)
            .arg("-D")
            .arg(&data));
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nlog_statement = 'all'\nlog_line_prefix = '[%a] '\nlog_min_error_statement = error\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\nshared_buffers = 32MB\n",
            dir.display(),
            pki.cert.display(),
            pki.key.display()
        );
        let mut c = fs::read_to_string(data.join("postgresql.conf")).unwrap();
        c.push_str(&conf);
        fs::write(data.join("postgresql.conf"), c).unwrap();
        let hba = "local all all trust\nhost all app_md5 127.0.0.1/32 md5\nhost all app_clear 127.0.0.1/32 password\nhost all all 127.0.0.1/32 scram-sha-256\n";
        fs::write(data.join("pg_hba.conf"), hba).unwrap();
        chown_r(&dir, "postgres");
        let log = dir.join("server.log");
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{PG_BIN}/pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"]));
        let pid: i32 = fs::read_to_string(data.join("postmaster.pid"))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGQUIT: immediate shutdown; the postmaster takes its backends with it.
        remember(pid, libc::SIGQUIT, Some(dir.clone()));
        let pg = Postgres {
            dir,
            port,
            log,
            pki,
            pid,
        };
        pg.admin("postgres", "CREATE DATABASE shop");
        let mut setup = String::new();
        for (role, pw, method) in PG_ROLES {
            let enc = if *method == "md5" {
                "md5"
            } else {
                "scram-sha-256"
            };
            setup.push_str(&format!(
                "SET password_encryption = '{enc}'; CREATE ROLE {role} LOGIN PASSWORD '{pw}';\n"
            ));
        }
        setup.push_str("CREATE ROLE only_plus LOGIN PASSWORD 'x';\n");
        pg.admin("postgres", &setup);
        pg.admin("shop", "GRANT ALL ON SCHEMA public TO PUBLIC; CREATE TABLE acct (a int PRIMARY KEY, b text); GRANT ALL ON acct TO PUBLIC; CREATE TABLE big (g int, x text); GRANT ALL ON big TO PUBLIC;");
        pg
    }

    /// Run SQL as the superuser over the server's own socket (not through the proxy).
    pub fn admin(&self, db: &str, sql: &str) -> String {
        let out = run(Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-U",
                "postgres",
                "-h",
            ])
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A MariaDB 10.11 server.
pub struct Mariadb {
    /// Its directory.
    pub dir: PathBuf,
    /// Loopback port.
    pub port: u16,
    /// Its own socket (for setup).
    pub socket: PathBuf,
    /// The general query log.
    pub general_log: PathBuf,
    /// PKI.
    pub pki: Pki,
    child: Mutex<Child>,
}

impl Mariadb {
    /// The server of this test binary, started on first use.
    pub fn shared() -> &'static Mariadb {
        static S: OnceLock<Mariadb> = OnceLock::new();
        S.get_or_init(Mariadb::start)
    }

    fn start() -> Mariadb {
        let dir = server_dir("sealcast-my-", "mysql");
        let pki = Pki::new(&dir);
        let data = dir.join("data");
        chown_r(&dir, "mysql");
        run(Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display())));
        let port = free_port();
        let socket = dir.join("mysqld.sock");
        let general_log = dir.join("general.log");
        chown_r(&dir, "mysql");
        let child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg("--user=mysql")
            .arg(format!("--datadir={}", data.display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--ssl-ca={}", pki.ca.display()))
            .arg(format!("--ssl-cert={}", pki.cert.display()))
            .arg(format!("--ssl-key={}", pki.key.display()))
            .arg("--skip-name-resolve")
            .arg("--general-log=1")
            .arg(format!("--general-log-file={}", general_log.display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--innodb-log-file-size=16M")
            .arg("--max-allowed-packet=64M")
            .arg("--skip-log-bin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        remember(child.id() as i32, libc::SIGKILL, Some(dir.clone()));
        let m = Mariadb {
            dir,
            port,
            socket,
            general_log,
            pki,
            child: Mutex::new(child),
        };
        wait_for("mariadbd", Duration::from_secs(60), || {
            Command::new("mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", m.socket.display()))
                .args(["-uroot", "-e", "SELECT 1"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        m.admin("CREATE DATABASE shop; CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw'; GRANT ALL ON *.* TO 'app'@'127.0.0.1'; CREATE TABLE shop.t (a int PRIMARY KEY, b varchar(100));");
        m
    }

    /// Run SQL as root over the server's own socket.
    pub fn admin(&self, sql: &str) -> String {
        let out = run(Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-uroot", "-N", "-B", "-e", sql]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The general query log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.general_log).unwrap_or_default()
    }
}

/// A running `sealcast db-proxy`, killed (SIGTERM, then SIGKILL) on drop.
pub struct DbProxy {
    /// Its directory (config, socket dir, recordings).
    pub dir: tempfile::TempDir,
    /// The listening socket.
    pub socket: PathBuf,
    /// Where recordings go.
    pub spool: PathBuf,
    /// Signing key and trust file.
    pub key: PathBuf,
    /// allowed_signers.
    pub trust: PathBuf,
    child: Child,
}

impl DbProxy {
    /// Start `sealcast db-proxy` for a `[db.t]` table whose body is `target_toml`, listening
    /// on `<dir>/sock/<socket_name>`.
    pub fn start(sealcast: &Path, target_toml: &str, socket_name: &str, extra: &[&str]) -> DbProxy {
        let dir = tempfile::Builder::new()
            .prefix("sealcast-dbproxy-")
            .tempdir()
            .unwrap();
        let keydir = dir.path().join("key");
        run(Command::new(sealcast)
            .arg("keygen")
            .arg("--out")
            .arg(&keydir)
            .args(["--comment", "test@sealcast"]));
        let key = keydir.join("signing.key");
        let trust = dir.path().join("allowed_signers");
        let pubkey = fs::read_to_string(keydir.join("signing.pub")).unwrap();
        fs::write(&trust, format!("test namespaces=\"sealcast\" {}", pubkey)).unwrap();
        let cfg = dir.path().join("sealcast.toml");
        fs::write(&cfg, format!("host_id = \"test\"\n[db.t]\n{target_toml}\n")).unwrap();
        let sock_dir = dir.path().join("sock");
        fs::create_dir(&sock_dir).unwrap();
        fs::set_permissions(&sock_dir, fs::Permissions::from_mode(0o700)).unwrap();
        let socket = sock_dir.join(socket_name);
        let spool = dir.path().join("spool");
        let mut child = Command::new(sealcast)
            .arg("db-proxy")
            .arg("--config")
            .arg(&cfg)
            .args(["--target", "t", "--listen"])
            .arg(&socket)
            .arg("--dir")
            .arg(&spool)
            .arg("--key")
            .arg(&key)
            .args(["--host-id", "test", "--user", "root"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sealcast db-proxy");
        remember(child.id() as i32, libc::SIGKILL, None);
        let start = Instant::now();
        while !socket.exists() {
            if let Ok(Some(st)) = child.try_wait() {
                let mut e = String::new();
                child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
                panic!("sealcast db-proxy exited {st}: {e}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "db-proxy did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        DbProxy {
            dir,
            socket,
            spool,
            key,
            trust,
            child,
        }
    }

    /// The proxy's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the proxy so far (`VmHWM`, KiB).
    pub fn peak_rss_kib(&self) -> u64 {
        let s = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// The socket's directory (psql `-h`).
    pub fn sock_dir(&self) -> PathBuf {
        self.socket.parent().unwrap().to_path_buf()
    }

    /// Stop (SIGTERM), wait, and return its stderr.
    pub fn stop(mut self) -> String {
        // SAFETY: kill(2) on the child we started.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let st = self.child.wait().unwrap();
        let mut e = String::new();
        if let Some(mut s) = self.child.stderr.take() {
            s.read_to_string(&mut e).unwrap();
        }
        assert!(st.success(), "db-proxy exited {st}: {e}");
        e
    }

    /// Recordings written so far (sealed ones have a receipt).
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.spool)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".cast.zst"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
        v
    }

    /// Wait until `n` recordings are sealed (have receipts).
    pub fn wait_sealed(&self, n: usize) -> Vec<PathBuf> {
        wait_for("sealed recordings", Duration::from_secs(30), || {
            self.recordings()
                .iter()
                .filter(|p| crate::common::receipt_path(p).exists())
                .count()
                >= n
        });
        self.recordings()
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the child we started.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGTERM);
            }
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// asciinema 3 (`~/.cargo/bin/asciinema` or PATH); `None` (with a note) when absent and `CI`
/// is not set.
pub fn asciinema() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cands = home
        .map(|h| h.join("bin/asciinema"))
        .into_iter()
        .chain(std::env::split_paths(&path).map(|d| d.join("asciinema")));
    for c in cands {
        if c.is_file() {
            return Some(c);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "asciinema 3 is missing (scripts/setup-debian.sh installs it)"
    );
    eprintln!("asciinema not found: skipping the asciinema check");
    None
}

/// `sealcast verify --trusted TRUST REC` exits 0 (OK), and asciinema 3 converts the
/// decompressed recording (its `d` lines are ignored, not an error).
pub fn check_recording(sealcast: &Path, trust: &Path, rec: &Path) {
    let out = Command::new(sealcast)
        .arg("verify")
        .arg("--trusted")
        .arg(trust)
        .arg(rec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify {}: {}{}",
        rec.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(a) = asciinema() {
        let cast = rec.with_extension("plain");
        let raw = run(Command::new("zstd").args(["-dc", "-q"]).arg(rec)).stdout;
        fs::write(&cast, raw).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(a)
            .args(["convert", "-f", "asciicast-v2"])
            .arg(&cast)
            .arg("-")
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = fs::remove_file(&cast);
        assert!(
            out.status.success(),
            "asciinema convert {}: {}",
            rec.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("{\"version\":2"),
            "asciinema convert output"
        );
    }
}

/// A tmpfs mounted over `dir` for the test; unmounted on drop.
pub struct Tmpfs(PathBuf);
impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. `256k`) over `dir`.
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir));
        Tmpfs(dir.to_path_buf())
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// `n` bytes of incompressible base64 text, seeded.
pub fn noise(seed: u64, n: usize) -> String {
    use base64::Engine;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes: Vec<u8> = (0..n * 3 / 4)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `[db.t]` body for a `protocol` server on 127.0.0.1:`port`: TLS verified with `pki`'s CA,
/// or `tls = "disable"`, plus the `extra` lines.
pub fn target(protocol: &str, port: u16, pki: &Pki, tls: bool, extra: &str) -> String {
    let mut t = format!("protocol = \"{protocol}\"\nhost = \"127.0.0.1\"\nport = {port}\n");
    if tls {
        t.push_str(&format!("ca_file = \"{}\"\n", pki.ca.display()));
    } else {
        t.push_str("tls = \"disable\"\n");
    }
    t.push_str(extra);
    t
}

/// The `d` events of a recording (SPEC §11), parsed.
pub fn d_events(rec: &Path) -> Vec<serde_json::Value> {
    crate::common::events(rec)
        .into_iter()
        .filter(|e| e.kind == sealcast_format::EventKind::Database)
        .map(|e| serde_json::from_slice(&e.bytes).expect("d event is JSON"))
        .collect()
}

/// The events of `evs` whose kind (`k`) is `k`.
pub fn kinds<'a>(evs: &'a [serde_json::Value], k: &str) -> Vec<&'a serde_json::Value> {
    evs.iter().filter(|e| e["k"] == k).collect()
}

/// `sealcast verify` says OK, and asciinema reads it, for every recording of `p`
/// ([`check_recording`]).
pub fn verify_all(p: &DbProxy, recs: &[PathBuf]) {
    for r in recs {
        check_recording(&crate::common::bin(), &p.trust, r);
    }
}

/// The decompressed text of a recording (`zstd -dc`), to search it for what must not be
/// there.
pub fn decompressed(rec: &Path) -> Vec<u8> {
    let out = Command::new("zstd")
        .args(["-dc", "-q"])
        .arg(rec)
        .output()
        .expect("run zstd");
    assert!(out.status.success(), "zstd -dc {}", rec.display());
    out.stdout
}
