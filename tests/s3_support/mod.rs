//! Harness for the S3 tests: a real `moto_server` (PyPI `moto[server]`) on 127.0.0.1 at a
//! free port, started per test and killed on drop, and an SDK client for it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sealcast_store::aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use sealcast_store::aws_sdk_s3::{self, Client};

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

fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
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
        let mut m = Moto { child, port };
        let t0 = Instant::now();
        while !answers(port) {
            if let Ok(Some(st)) = m.child.try_wait() {
                panic!("moto server exited: {st}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "moto server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
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
        let l = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s, st) = (down.clone(), sent.clone(), stop.clone());
        // The cut happens once.
        let cut = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while !st.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(300) {
                let (client, _) = match l.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (d1, s1, cut1) = (d.clone(), s.clone(), cut.clone());
                let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_r, mut c_w) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match c_r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let total = s1.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        if d1.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Some(limit) = cut_after {
                            if total >= limit && !cut1.swap(true, Ordering::SeqCst) {
                                d1.store(true, Ordering::SeqCst);
                                let d2 = d1.clone();
                                std::thread::spawn(move || {
                                    std::thread::sleep(down_for);
                                    d2.store(false, Ordering::SeqCst);
                                });
                                break;
                            }
                        }
                        if s_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_w.shutdown(std::net::Shutdown::Both);
                    let _ = c_r.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_r, &mut c_w);
                    let _ = c_w.shutdown(std::net::Shutdown::Both);
                });
            }
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
        format!("http://127.0.0.1:{}", self.port)
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
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let l = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let sent = Arc::new(Mutex::new(0u64));
        let max_open = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, mx, st) = (sent.clone(), max_open.clone(), stop.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while !st.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(300) {
                let (client, _) = match l.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                mx.fetch_max(now_open, Ordering::SeqCst);
                let (s1, st1, open1) = (s.clone(), st.clone(), open.clone());
                let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_r, mut c_w) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match c_r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let allowed = {
                            let mut total = s1.lock().unwrap();
                            let allowed = stall_after.map_or(n as u64, |limit| {
                                (n as u64).min(limit.saturating_sub(*total))
                            });
                            *total += allowed;
                            allowed as usize
                        };
                        if s_w.write_all(&buf[..allowed]).is_err() {
                            break;
                        }
                        if allowed < n {
                            // Stalled: hold the connection until the proxy is dropped.
                            while !st1.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            break;
                        }
                    }
                    open1.fetch_sub(1, Ordering::SeqCst);
                    let _ = s_w.shutdown(std::net::Shutdown::Both);
                    let _ = c_r.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_r, &mut c_w);
                    let _ = c_w.shutdown(std::net::Shutdown::Both);
                });
            }
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
        format!("http://127.0.0.1:{}", self.port)
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
