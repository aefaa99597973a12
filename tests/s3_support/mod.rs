//! Harness for the S3 tests: a real `moto_server` (PyPI `moto[server]`) or `s3s-fs` (crates.io
//! `s3s-fs`) on 127.0.0.1 at a free port, started per test and killed on drop, an SDK client for
//! it, and the `sealcast upload` / `verify` / `doctor` invocations, recordings and trust files
//! the tests build on. Every test binary that has this module also has `mod common`
//! (tests/common), whose [`TestEnv`] these helpers take.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sealcast_store::aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use sealcast_store::aws_sdk_s3::types::ObjectLockMode;
use sealcast_store::aws_sdk_s3::{self, Client};
use tempfile::TempDir;

use crate::common::TestEnv;

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub port: u16,
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `http://127.0.0.1:PORT`.
pub fn loopback(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Whether something on 127.0.0.1:`port` answers an HTTP `GET path` (any status).
fn answers_http(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

/// Poll a just-started server `what` every `poll` until 127.0.0.1:`port` answers
/// `GET probe`.
///
/// # Panics
/// When `child` exits first, or nothing answers within `limit`; the message ends with what
/// `log` returns (the server's log, or nothing).
fn wait_answering(
    child: &mut Child,
    what: &str,
    port: u16,
    probe: &str,
    limit: Duration,
    poll: Duration,
    log: impl Fn() -> String,
) {
    let t0 = Instant::now();
    while !answers_http(port, probe) {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited: {st}\n{}", log());
        }
        assert!(
            t0.elapsed() < limit,
            "{what} did not answer on port {port}\n{}",
            log()
        );
        std::thread::sleep(poll);
    }
}

impl Moto {
    /// Start `python3 -m moto.server` on a free port and wait (30 s at most) until it answers.
    ///
    /// # Panics
    /// When moto is not installed or does not come up.
    pub fn start() -> Moto {
        Moto::start_on(free_port())
    }

    /// Start on a given port.
    ///
    /// # Panics
    /// As [`Moto::start`].
    pub fn start_on(port: u16) -> Moto {
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto server (pip install 'moto[server]')");
        // Killed on drop, also when it does not come up.
        let mut m = Moto { child, port };
        wait_answering(
            &mut m.child,
            "moto server",
            port,
            "/moto-api/",
            Duration::from_secs(30),
            Duration::from_millis(100),
            String::new,
        );
        m
    }

    /// Start on a free port, with one bucket made by [`create_bucket`] (`lock`: Object Lock,
    /// and so versioning); returns the server and an SDK [`client`] for it.
    ///
    /// # Panics
    /// As [`Moto::start`], or when the bucket cannot be made.
    pub fn with_bucket(bucket: &str, lock: bool) -> (Moto, Client) {
        let m = Moto::start();
        let c = client(&m.endpoint());
        create_bucket(&c, bucket, lock);
        (m, c)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        loopback(self.port)
    }

    /// Stop the server now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A single-threaded runtime for the test's own S3 calls.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An SDK client for an endpoint, with fixed test credentials and path-style addressing.
pub fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// Create a bucket, with Object Lock (and so versioning) when `lock`.
pub fn create_bucket(c: &Client, bucket: &str, lock: bool) {
    rt().block_on(async {
        c.create_bucket()
            .bucket(bucket)
            .object_lock_enabled_for_bucket(lock)
            .send()
            .await
            .expect("create bucket");
    });
}

/// Environment for a `sealcast` subprocess that talks to the test server: fixed credentials,
/// no profile files, no instance metadata.
pub fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/sealcast-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/sealcast-test")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
}

/// Run a prepared command and return its output, printing stderr for the test log.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run sealcast");
    eprintln!(
        "--- {:?}\nstdout:\n{}\nstderr:\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// All object versions and delete markers under `prefix`: (key, version id, is delete marker).
pub fn versions(c: &Client, bucket: &str, prefix: &str) -> Vec<(String, String, bool)> {
    rt().block_on(async {
        let o = c
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list versions");
        let mut v: Vec<(String, String, bool)> = o
            .versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap_or_default().to_string(),
                    v.version_id().unwrap_or_default().to_string(),
                    false,
                )
            })
            .chain(o.delete_markers().iter().map(|m| {
                (
                    m.key().unwrap_or_default().to_string(),
                    m.version_id().unwrap_or_default().to_string(),
                    true,
                )
            }))
            .collect();
        v.sort();
        v
    })
}

/// SHA-256 of a file, hex.
pub fn sha256_hex(path: &Path) -> String {
    sha256_bytes_hex(&fs::read(path).expect("read"))
}

/// Listen on 127.0.0.1 at a new port and hand each client connection (blocking) to `each`,
/// on a thread of its own, until `stop` is set or 300 s have passed. Returns the port.
///
/// # Panics
/// When no port can be bound.
fn accept_loop(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mut each: impl FnMut(TcpStream) + Send + 'static,
) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::SeqCst)
            && t0.elapsed() < Duration::from_secs(300)
        {
            let (client, _) = match l.accept() {
                Ok(c) => c,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            let _ = client.set_nonblocking(false);
            each(client);
        }
    });
    port
}

/// Connect a proxy's `client` to 127.0.0.1:`upstream` and copy the server's answers back to
/// the client on a thread of their own. Returns (client read side, server write side) for the
/// caller's request forwarding; `None` when the upstream cannot be reached.
fn splice(client: TcpStream, upstream: u16) -> Option<(TcpStream, TcpStream)> {
    let server = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    let requests = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut s_r, mut c_w) = (server, client);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s_r, &mut c_w);
        let _ = c_w.shutdown(std::net::Shutdown::Both);
    });
    Some(requests)
}

/// Read request bytes from `c_r` (16 KiB at a time) and give each chunk to `forward`, which
/// writes what it lets through to `s_w` and says whether to go on; ends at EOF or a read error.
fn pump_requests(
    c_r: &mut TcpStream,
    s_w: &mut TcpStream,
    mut forward: impl FnMut(&[u8], &mut TcpStream) -> bool,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match c_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !forward(&buf[..n], s_w) {
            break;
        }
    }
}

/// A TCP proxy on 127.0.0.1 in front of a server, that can be taken down (connections cut,
/// new ones reset) and brought back without losing the server's state: "the S3 server went
/// away mid-upload, then came back".
pub struct Proxy {
    /// Listening port.
    pub port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Bytes forwarded client → server so far.
    pub sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    /// Forward 127.0.0.1:<new port> to 127.0.0.1:`upstream`. With `cut_after` the proxy goes
    /// down by itself once that many request bytes have been forwarded, and comes back
    /// `down_for` later.
    pub fn start(upstream: u16, cut_after: Option<u64>, down_for: Duration) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let down = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (down.clone(), sent.clone());
        // The cut happens once.
        let cut = Arc::new(AtomicBool::new(false));
        let port = accept_loop(stop.clone(), move |client| {
            if d.load(Ordering::SeqCst) {
                // Down: the connection is reset.
                return;
            }
            let Some((mut c_r, mut s_w)) = splice(client, upstream) else {
                return;
            };
            let (d1, s1, cut1) = (d.clone(), s.clone(), cut.clone());
            std::thread::spawn(move || {
                pump_requests(&mut c_r, &mut s_w, |chunk, s_w| {
                    let n = chunk.len() as u64;
                    let total = s1.fetch_add(n, Ordering::SeqCst) + n;
                    if d1.load(Ordering::SeqCst) {
                        return false;
                    }
                    if let Some(limit) = cut_after {
                        if total >= limit && !cut1.swap(true, Ordering::SeqCst) {
                            d1.store(true, Ordering::SeqCst);
                            let d2 = d1.clone();
                            std::thread::spawn(move || {
                                std::thread::sleep(down_for);
                                d2.store(false, Ordering::SeqCst);
                            });
                            return false;
                        }
                    }
                    s_w.write_all(chunk).is_ok()
                });
                let _ = s_w.shutdown(std::net::Shutdown::Both);
                let _ = c_r.shutdown(std::net::Shutdown::Both);
            });
        });
        Proxy {
            port,
            down,
            sent,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        loopback(self.port)
    }

    /// Whether it is down now.
    pub fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Multipart uploads in progress in a bucket: (key, upload id), sorted.
pub fn multipart_uploads(c: &Client, bucket: &str) -> Vec<(String, String)> {
    rt().block_on(async {
        let o = c
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .expect("list multipart uploads");
        let mut v: Vec<(String, String)> = o
            .uploads()
            .iter()
            .map(|u| {
                (
                    u.key().unwrap_or_default().to_string(),
                    u.upload_id().unwrap_or_default().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    })
}

/// A TCP proxy on 127.0.0.1 in front of a server that forwards request bytes (client →
/// server, all connections together) until `stall_after` of them have gone through, then
/// forwards nothing more and holds every connection open: "the server hangs mid-upload".
/// Without `stall_after` it just forwards. Answers (server → client) always go through. It
/// counts the bytes forwarded and the most connections open at once (concurrent requests
/// need connections of their own).
pub struct StallProxy {
    /// Listening port.
    pub port: u16,
    /// Request bytes forwarded so far.
    pub sent: std::sync::Arc<std::sync::Mutex<u64>>,
    /// Most client connections open at once.
    pub max_open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StallProxy {
    /// Forward 127.0.0.1:<new port> to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16, stall_after: Option<u64>) -> StallProxy {
        StallProxy::start_gated(upstream, stall_after, None)
    }

    /// [`StallProxy::start`], holding each multipart part upload (a request that starts
    /// `PUT ` and names a `partNumber=`) until `min_open` connections are open at once, or
    /// 20 s have passed: parts the client sends in parallel are then seen in parallel however
    /// loaded the machine is, and parts sent one by one stay one connection.
    pub fn parallel(upstream: u16, min_open: usize) -> StallProxy {
        StallProxy::start_gated(upstream, None, Some(min_open))
    }

    fn start_gated(upstream: u16, stall_after: Option<u64>, gate: Option<usize>) -> StallProxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let sent = Arc::new(Mutex::new(0u64));
        let max_open = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, mx, st) = (sent.clone(), max_open.clone(), stop.clone());
        let port = accept_loop(stop.clone(), move |client| {
            let Some((mut c_r, mut s_w)) = splice(client, upstream) else {
                return;
            };
            let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
            mx.fetch_max(now_open, Ordering::SeqCst);
            let (s1, st1, open1) = (s.clone(), st.clone(), open.clone());
            std::thread::spawn(move || {
                pump_requests(&mut c_r, &mut s_w, |chunk, s_w| {
                    let n = chunk.len();
                    if let Some(min) = gate {
                        let head = &chunk[..n.min(512)];
                        let part = head.starts_with(b"PUT ")
                            && head.windows(11).any(|w| w == b"partNumber=");
                        if part {
                            let open = open1.clone();
                            sealcast_testkit::wait_until(Duration::from_secs(20), || {
                                open.load(Ordering::SeqCst) >= min
                            });
                        }
                    }
                    let allowed = {
                        let mut total = s1.lock().unwrap();
                        let allowed = stall_after.map_or(n as u64, |limit| {
                            (n as u64).min(limit.saturating_sub(*total))
                        });
                        *total += allowed;
                        allowed as usize
                    };
                    if s_w.write_all(&chunk[..allowed]).is_err() {
                        return false;
                    }
                    if allowed < n {
                        // Stalled: hold the connection until the proxy is dropped.
                        while !st1.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        return false;
                    }
                    true
                });
                open1.fetch_sub(1, Ordering::SeqCst);
                let _ = s_w.shutdown(std::net::Shutdown::Both);
                let _ = c_r.shutdown(std::net::Shutdown::Both);
            });
        });
        StallProxy {
            port,
            sent,
            max_open,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        loopback(self.port)
    }

    /// Request bytes forwarded so far.
    pub fn sent(&self) -> u64 {
        *self.sent.lock().unwrap()
    }

    /// Most connections open at once so far.
    pub fn max_open(&self) -> usize {
        self.max_open.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How scripts/setup-debian.sh installs the pinned s3s-fs.
const S3S_FS_INSTALL: &str = "cargo install s3s-fs --version 0.17.0 --features binary --locked \
     --ignore-rust-version (scripts/setup-debian.sh)";

/// A running s3s-fs: its own temporary root directory, 127.0.0.1 at a free port, the test
/// credentials of [`client`] (so SigV4 signatures are checked). Killed on drop.
pub struct S3sFs {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// Holds `root/` (the buckets) and `log`; deleted on drop, after the server is gone.
    dir: TempDir,
}

/// `s3s-fs` on PATH, else where `cargo install` puts it.
///
/// # Panics
/// When it is in neither place.
fn s3s_fs_bin() -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin)
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("s3s-fs not found on PATH nor in ~/.cargo/bin: {S3S_FS_INSTALL}"))
}

impl S3sFs {
    /// Start s3s-fs on a free port and wait (20 s at most) until it answers HTTP.
    ///
    /// # Panics
    /// When s3s-fs is not installed, exits, or does not come up.
    pub fn start() -> S3sFs {
        let dir = tempfile::Builder::new()
            .prefix("sealcast-s3s-fs-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let log_path = dir.path().join("log");
        let log = fs::File::create(&log_path).expect("log file");
        let port = free_port();
        let child = Command::new(s3s_fs_bin())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "test", "--secret-key", "test"])
            .arg(&root)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start s3s-fs: {e}; {S3S_FS_INSTALL}"));
        // Killed on drop, also when it does not come up.
        let mut s = S3sFs { child, port, dir };
        wait_answering(
            &mut s.child,
            "s3s-fs",
            port,
            "/",
            Duration::from_secs(20),
            Duration::from_millis(50),
            || fs::read_to_string(&log_path).unwrap_or_default(),
        );
        s
    }

    /// Start with one bucket without Object Lock (s3s-fs has none); returns the server and an
    /// SDK [`client`] for it.
    ///
    /// # Panics
    /// As [`S3sFs::start`], or when the bucket cannot be made.
    pub fn with_bucket(bucket: &str) -> (S3sFs, Client) {
        let s = S3sFs::start();
        let c = client(&s.endpoint());
        create_bucket(&c, bucket, false);
        (s, c)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        loopback(self.port)
    }

    /// Where `bucket/key` lives on disk.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.dir.path().join("root").join(bucket).join(key)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The start most bucket tests share: moto with bucket `rec` (Object Lock when `lock`), a
/// client for it, a fresh [`TestEnv`], an empty spool `<env>/spool`, and `<env>/trust`
/// trusting the env's key for host `h1` with manifests ([`manifest_trust`]).
pub struct Fixture {
    pub moto: Moto,
    pub c: Client,
    pub env: TestEnv,
    pub spool: PathBuf,
    pub trust: PathBuf,
}

impl Fixture {
    /// Start it all.
    ///
    /// # Panics
    /// When moto does not come up or any step fails.
    pub fn new(lock: bool) -> Fixture {
        let (moto, c) = Moto::with_bucket("rec", lock);
        let env = TestEnv::new();
        let spool = env.path("spool");
        fs::create_dir_all(&spool).unwrap();
        let trust = manifest_trust(&env, "trust", "h1");
        Fixture {
            moto,
            c,
            env,
            spool,
            trust,
        }
    }

    /// The bytes of `rec/key` ([`get_object`]).
    pub fn get(&self, key: &str) -> Vec<u8> {
        get_object(&self.c, "rec", key)
    }

    /// Put `body` at `rec/key` ([`put_object`]).
    pub fn put(&self, key: &str, body: Vec<u8>) {
        put_object(&self.c, "rec", key, body);
    }

    /// `sealcast verify TARGET --host h1 --trusted <trust> --endpoint-url <moto> [extra…]`:
    /// (exit code, stdout), as [`run_verify`].
    pub fn verify(&self, target: &str, extra: &[&str]) -> (i32, String) {
        run_verify(
            &self.env,
            target,
            "h1",
            &self.trust,
            &self.moto.endpoint(),
            extra,
        )
    }

    /// [`Fixture::verify`] of the bucket, `s3://rec/pfx`.
    pub fn verify_s3(&self, extra: &[&str]) -> (i32, String) {
        self.verify("s3://rec/pfx", extra)
    }
}

/// Write `<env>/name`, an `allowed_signers` line trusting the env's public key for principal
/// `host` in the recording and manifest namespaces
/// (`HOST namespaces="sealcast,sealcast-manifest" KEY`), as `verify` of a bucket needs it.
/// Returns its path.
///
/// # Panics
/// When the key cannot be read or the file written.
pub fn manifest_trust(env: &TestEnv, name: &str, host: &str) -> PathBuf {
    let path = env.path(name);
    let public = fs::read_to_string(&env.public).unwrap();
    fs::write(
        &path,
        format!("{host} namespaces=\"sealcast,sealcast-manifest\" {public}"),
    )
    .unwrap();
    path
}

/// A settings file of the env's own that sets nothing (`<env>/upload-settings.toml`), for
/// `sealcast upload --config`: without one, upload reads /etc/sealcast/sealcast.toml — and
/// its signing key — on a machine where `install-bastion` has run.
///
/// # Panics
/// When the file cannot be written.
pub fn empty_settings(env: &TestEnv) -> PathBuf {
    let path = env.path("upload-settings.toml");
    if !path.exists() {
        fs::write(&path, "# every setting comes from the command line\n").unwrap();
    }
    path
}

/// `sealcast upload --config <empty settings> --spool SPOOL [--key KEY] --to s3://rec/pfx
/// --host HOST --endpoint-url ENDPOINT` in the env, with [`aws_env`]; without `key` no
/// manifest is signed. Add flags to it, then [`run`] or spawn it.
pub fn upload_cmd(
    env: &TestEnv,
    spool: &Path,
    key: Option<&Path>,
    host: &str,
    endpoint: &str,
) -> Command {
    let mut c = env.command();
    aws_env(&mut c)
        .arg("upload")
        .arg("--config")
        .arg(empty_settings(env))
        .arg("--spool")
        .arg(spool);
    if let Some(key) = key {
        c.arg("--key").arg(key);
    }
    c.args([
        "--to",
        "s3://rec/pfx",
        "--host",
        host,
        "--endpoint-url",
        endpoint,
    ]);
    c
}

/// `sealcast verify TARGET --host HOST --trusted TRUST --endpoint-url ENDPOINT` in the env,
/// with [`aws_env`]. Add flags to it, then [`run`] it.
pub fn verify_cmd(
    env: &TestEnv,
    target: &str,
    host: &str,
    trust: &Path,
    endpoint: &str,
) -> Command {
    let mut c = env.command();
    aws_env(&mut c)
        .arg("verify")
        .arg(target)
        .args(["--host", host, "--trusted"])
        .arg(trust)
        .args(["--endpoint-url", endpoint]);
    c
}

/// Run [`verify_cmd`] with `extra` flags: (exit code, stdout), as [`exit_and_stdout`].
pub fn run_verify(
    env: &TestEnv,
    target: &str,
    host: &str,
    trust: &Path,
    endpoint: &str,
    extra: &[&str],
) -> (i32, String) {
    exit_and_stdout(&run(
        verify_cmd(env, target, host, trust, endpoint).args(extra)
    ))
}

/// `sealcast doctor TARGET --endpoint-url ENDPOINT` in the env: (exit code, stdout).
pub fn doctor(env: &TestEnv, target: &str, endpoint: &str) -> (i32, String) {
    let mut c = env.command();
    aws_env(&mut c).args(["doctor", target, "--endpoint-url", endpoint]);
    exit_and_stdout(&run(&mut c))
}

/// The first line of a doctor report that mentions `name`.
///
/// # Panics
/// When there is none.
pub fn doctor_line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no {name} line in {out}"))
}

/// A finished command's exit code (-1 when a signal ended it) and its stdout as text.
pub fn exit_and_stdout(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// The bytes of `bucket/key`.
///
/// # Panics
/// When the GET fails.
pub fn get_object(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    get_object_meta(c, bucket, key).0
}

/// The bytes, ETag and Object Lock mode of `bucket/key`, from one GET.
///
/// # Panics
/// When the GET fails.
pub fn get_object_meta(
    c: &Client,
    bucket: &str,
    key: &str,
) -> (Vec<u8>, String, Option<ObjectLockMode>) {
    rt().block_on(async {
        let g = c.get_object().bucket(bucket).key(key).send().await.unwrap();
        let etag = g.e_tag().unwrap_or_default().to_string();
        let mode = g.object_lock_mode().cloned();
        (
            g.body.collect().await.unwrap().into_bytes().to_vec(),
            etag,
            mode,
        )
    })
}

/// A plain PUT of `body` at `bucket/key` (no checksum, no condition): an overwrite, or a new
/// version on a versioned bucket.
///
/// # Panics
/// When the PUT fails.
pub fn put_object(c: &Client, bucket: &str, key: &str, body: Vec<u8>) {
    rt().block_on(async {
        c.put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    });
}

/// Keys of the manifests (`*.json`, not their `.sig`) under `rec/pfx/manifests/`, one per
/// stored version, in [`versions`] order.
pub fn manifest_keys(c: &Client) -> Vec<String> {
    versions(c, "rec", "pfx/manifests/")
        .into_iter()
        .map(|v| v.0)
        .filter(|k| k.ends_with(".json"))
        .collect()
}

/// Record a closed session `SPOOL/NAME.cast.zst` (the spool made when missing) with
/// `sealcast record --host-id HOST -q -- CMD…`, signed with the env's key. Returns its path.
///
/// # Panics
/// When the recorder fails.
pub fn record_session(
    env: &TestEnv,
    spool: &Path,
    name: &str,
    host: &str,
    cmd: &[&str],
) -> PathBuf {
    fs::create_dir_all(spool).unwrap();
    let out = spool.join(format!("{name}.cast.zst"));
    let o = env.record(&out, &["--host-id", host, "-q"], cmd);
    assert!(o.status.success(), "record: {o:?}");
    out
}

/// Record `n` short closed sessions of host `h1` into `spool`: `s<i>.cast.zst` printing
/// `session <i>`, each with its seal receipt.
///
/// # Panics
/// When the recorder fails or leaves no receipt.
pub fn record_sessions(env: &TestEnv, spool: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let cmd = format!("echo session {i}");
            let out = record_session(env, spool, &format!("s{i}"), "h1", &["sh", "-c", &cmd]);
            assert!(crate::common::receipt_path(&out).is_file());
            out
        })
        .collect()
}

/// Record a closed session of host `h1` into `SPOOL/big.cast.zst` whose output is
/// `random_bytes` of `/dev/urandom` in base64 (barely compressible: the recording is ≈ 1.07 ×
/// `random_bytes`), with its seal receipt.
///
/// # Panics
/// When the recorder fails or leaves no receipt.
pub fn record_big(env: &TestEnv, spool: &Path, random_bytes: u64) -> PathBuf {
    let script = format!("head -c {random_bytes} /dev/urandom | base64");
    let big = record_session(env, spool, "big", "h1", &["sh", "-c", &script]);
    assert!(crate::common::receipt_path(&big).is_file());
    big
}

/// The key a recording of host `h1` must land at under `s3://rec/pfx`:
/// `pfx/recordings/h1/<date of its start>/<session>.cast.zst`.
///
/// # Panics
/// When the file is no sealcast recording.
pub fn recording_key(rec: &Path) -> String {
    let m = crate::common::header(rec).sealcast.unwrap();
    format!(
        "pfx/recordings/h1/{}/{}.cast.zst",
        sealcast_store::layout::date_path(m.start_us),
        m.session
    )
}

/// SHA-256 of bytes, hex.
pub fn sha256_bytes_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Now, Unix seconds (the system's clock).
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Run `sealcast upload` as if it started at Unix second `secs` (`SEALCAST_TEST_NOW`, the
/// uploader's test clock, src/cmd/upload.rs): a later run without sleeping until then.
pub fn upload_at(cmd: &mut Command, secs: u64) -> &mut Command {
    cmd.env("SEALCAST_TEST_NOW", secs.to_string())
}

/// True when this test may run as root; otherwise with `CI` set it panics, else it prints
/// why `test` is skipped (the same policy as the bastion tests' `require_root`).
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

/// `cmd` (program, arguments, environment, working directory) run in a private mount
/// namespace (`unshare -m`) whose `/etc` is an overlay of the host's with `/etc/sealcast`
/// holding the files of `fake`: what `install-bastion` would have put there, seen only by
/// this command; the host's `/etc` is not touched. `scratch` holds the overlay's upper and
/// work directories. Needs root.
pub fn in_fake_etc_sealcast(cmd: &Command, fake: &Path, scratch: &Path) -> Command {
    let (upper, work) = (scratch.join("upper"), scratch.join("work"));
    fs::create_dir_all(&upper).unwrap();
    fs::create_dir_all(&work).unwrap();
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "set -e; \
             mount -t overlay overlay -o \"lowerdir=/etc,upperdir=$FAKE_ETC_UPPER,workdir=$FAKE_ETC_WORK\" /etc; \
             mkdir -p /etc/sealcast; cp -a \"$FAKE_ETC_SEALCAST/.\" /etc/sealcast/; \
             exec \"$@\"",
        )
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env("FAKE_ETC_UPPER", &upper)
        .env("FAKE_ETC_WORK", &work)
        .env("FAKE_ETC_SEALCAST", fake);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    c
}
