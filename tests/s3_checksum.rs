//! Our SHA-256 on every PUT is a real check: against s3s-fs (crates.io `s3s-fs` 0.17, built
//! with `--features binary` by scripts/setup-debian.sh) on 127.0.0.1, which recomputes the
//! SHA-256 of a PUT body, refuses one that does not match `x-amz-checksum-sha256` and keeps
//! nothing of it (moto_server stores it; s3s-fs before 0.17 refuses it but leaves the body at
//! the key). Here: a corrupted body is refused through `put_file` and nothing is left at its
//! key; `sealcast upload` ships a spool to a store without Object Lock or versioning;
//! `sealcast doctor` tells the two servers apart.

mod common;
mod s3_support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::TestEnv;
use s3_support::{aws_env, client, create_bucket, free_port, rt, run, sha256_hex, Moto};
use sealcast_store::aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use sealcast_store::aws_sdk_s3::Client;
use sealcast_store::s3::Backoff;
use sealcast_store::upload::{put_file, Put};
use sha2::Digest;
use tempfile::TempDir;

/// How scripts/setup-debian.sh installs the pinned s3s-fs.
const S3S_FS_INSTALL: &str = "cargo install s3s-fs --version 0.17.0 --features binary --locked \
     --ignore-rust-version (scripts/setup-debian.sh)";

/// A running s3s-fs: its own temporary root directory, 127.0.0.1 at a free port, the test
/// credentials of [`s3_support::client`] (so SigV4 signatures are checked). Killed on drop.
pub struct S3sFs {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// Holds `root/` (the buckets) and `log`; deleted on drop, after the server is gone.
    dir: TempDir,
}

/// `s3s-fs` on PATH, else where `cargo install` puts it.
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

/// Whether something on `port` answers HTTP.
fn answers_http(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
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
        let log = fs::File::create(dir.path().join("log")).expect("log file");
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
        let mut s = S3sFs { child, port, dir };
        let t0 = Instant::now();
        while !answers_http(port) {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("s3s-fs exited: {st}\n{}", s.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "s3s-fs did not answer on port {port}\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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

fn b64(sum: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sum)
}

/// HEAD `key`: Some(stored x-amz-checksum-sha256) when it exists, None on 404.
fn head(c: &Client, bucket: &str, key: &str) -> Option<Option<String>> {
    rt().block_on(async {
        match c
            .head_object()
            .bucket(bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(h) => Some(h.checksum_sha256().map(str::to_string)),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => None,
            Err(e) => panic!("HEAD {key}: {e:?}"),
        }
    })
}

/// A few tries, short waits: a wrong checksum must fail at once, not after a long backoff.
fn quick() -> Backoff {
    Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(100),
        attempts: 3,
    }
}

#[test]
fn a_put_whose_body_does_not_match_our_sha256_is_refused_and_not_stored() {
    let s = S3sFs::start();
    let c = client(&s.endpoint());
    create_bucket(&c, "rec", false);
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("r.cast.zst");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&file, &body).unwrap();
    let size = body.len() as u64;
    let good: [u8; 32] = sha2::Sha256::digest(&body).into();
    // The bytes on disk are not the ones we hashed: one bit flipped in transit or at rest.
    let mut wrong = good;
    wrong[7] ^= 0x10;

    let key = "pfx/recordings/h1/2026/01/02/bad.cast.zst";
    let t0 = Instant::now();
    let r = rt().block_on(put_file(&c, "rec", key, &file, size, &wrong, None, quick()));
    let err = match r {
        Ok(p) => panic!("a PUT with the wrong SHA-256 reported success: {p:?}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(key), "the error names the key: {err}");
    assert!(
        err.contains("BadDigest") || err.contains("XAmzContentChecksumMismatch"),
        "refused for the checksum: {err}"
    );
    assert!(
        !err.contains("giving up"),
        "a checksum mismatch is final, not retried: {err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    // The refused body is not the object: no key to HEAD, no file in the store.
    assert_eq!(
        head(&c, "rec", key),
        None,
        "a refused PUT left an object at {key} (on disk: {})\n{}",
        s.object_path("rec", key).exists(),
        s.log()
    );

    // The same bytes with their real SHA-256 are stored, with that checksum: the refusal
    // above was the checksum's.
    let ok_key = "pfx/recordings/h1/2026/01/02/good.cast.zst";
    let r = rt()
        .block_on(put_file(
            &c,
            "rec",
            ok_key,
            &file,
            size,
            &good,
            None,
            quick(),
        ))
        .expect("PUT with the right SHA-256");
    assert!(matches!(r, Put::Created(_)), "{r:?}");
    assert_eq!(head(&c, "rec", ok_key), Some(Some(b64(&good))));
    assert_eq!(fs::read(s.object_path("rec", ok_key)).unwrap(), body);
}

/// Record `n` short closed sessions into `spool`.
fn record_sessions(env: &TestEnv, spool: &Path, n: usize) -> Vec<PathBuf> {
    fs::create_dir_all(spool).unwrap();
    (0..n)
        .map(|i| {
            let out = spool.join(format!("s{i}.cast.zst"));
            let o = env.record(
                &out,
                &["--host-id", "h1", "-q"],
                &["sh", "-c", &format!("echo session {i}")],
            );
            assert!(o.status.success(), "record: {o:?}");
            out
        })
        .collect()
}

/// All keys under `prefix` (ListObjectsV2; s3s-fs has no ListObjectVersions).
fn keys(c: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    rt().block_on(async {
        let o = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list");
        let mut v: Vec<String> = o
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        v.sort();
        v
    })
}

#[test]
fn upload_ships_a_spool_to_a_store_without_object_lock() {
    let s = S3sFs::start();
    let c = client(&s.endpoint());
    create_bucket(&c, "rec", false);
    let env = TestEnv::new();
    let spool = env.path("spool");
    let recs = record_sessions(&env, &spool, 2);
    // (key, SHA-256) of every recording and receipt, taken before the spool is released.
    let mut sums: Vec<(String, String)> = Vec::new();
    for rec in &recs {
        let m = common::header(rec).sealcast.unwrap();
        let key = format!(
            "pfx/recordings/h1/{}/{}.cast.zst",
            sealcast_store::layout::date_path(m.start_us),
            m.session
        );
        let receipt = common::receipt_path(rec);
        assert!(receipt.is_file(), "closed, with a seal receipt");
        sums.push((
            sealcast_store::layout::receipt_key(&key),
            sha256_hex(&receipt),
        ));
        sums.push((key, sha256_hex(rec)));
    }

    let mut cmd = env.command();
    aws_env(&mut cmd)
        .arg("upload")
        .arg("--spool")
        .arg(&spool)
        .arg("--key")
        .arg(&env.key)
        .args(["--to", "s3://rec/pfx", "--host", "h1", "--endpoint-url"])
        .arg(s.endpoint());
    let t0 = Instant::now();
    let o = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", s.log());
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "no long retries: {:?}",
        t0.elapsed()
    );
    assert!(stdout.contains("2 uploaded"), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert!(stdout.contains("1 manifests"), "{stdout}");

    let all = keys(&c, "rec", "pfx/");
    // Every recording and receipt at its key with our SHA-256 stored, and the manifest with
    // its signature.
    for (key, sha) in &sums {
        assert!(all.contains(key), "{key} missing in {all:?}");
        let stored = head(&c, "rec", key).unwrap();
        assert_eq!(stored, Some(b64(&hex::decode(sha).unwrap())), "{key}");
    }
    let manifests: Vec<&String> = all
        .iter()
        .filter(|k| k.starts_with("pfx/manifests/h1/"))
        .collect();
    assert_eq!(manifests.len(), 2, "manifest and its signature: {all:?}");
    assert_eq!(all.len(), sums.len() + 2, "{all:?}");
    for m in manifests {
        assert!(head(&c, "rec", m).unwrap().is_some(), "{m} has our SHA-256");
    }

    // `sealcast verify` lists object versions, which s3s-fs does not implement: it says so
    // at once (501 is final), instead of retrying for half a minute.
    let trust = env.path("trust");
    let public = fs::read_to_string(&env.public).unwrap();
    fs::write(
        &trust,
        format!("h1 namespaces=\"sealcast,sealcast-manifest\" {public}"),
    )
    .unwrap();
    let mut v = env.command();
    aws_env(&mut v)
        .args(["verify", "s3://rec/pfx", "--host", "h1", "--trusted"])
        .arg(&trust)
        .args(["--endpoint-url", &s.endpoint()]);
    let t0 = Instant::now();
    let o = run(&mut v);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NotImplemented"),
        "{o:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

fn doctor(env: &TestEnv, endpoint: &str) -> (i32, String) {
    let mut c = env.command();
    aws_env(&mut c).args(["doctor", "s3://rec/p", "--endpoint-url", endpoint]);
    let o = run(&mut c);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no {name} line in {out}"))
}

/// What a server really does with a PUT whose SHA-256 does not match its body: (refused,
/// an object is at the key afterwards).
fn wrong_sha256_put(c: &Client, key: &str) -> (bool, bool) {
    let refused = rt().block_on(async {
        c.put_object()
            .bucket("rec")
            .key(key)
            .body(b"these bytes\n".to_vec().into())
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(b64(&sha2::Sha256::digest(b"other bytes\n")))
            .send()
            .await
            .is_err()
    });
    (refused, head(c, "rec", key).is_some())
}

#[test]
fn doctor_reports_what_each_server_does_with_a_wrong_sha256() {
    let env = TestEnv::new();

    let s = S3sFs::start();
    let c = client(&s.endpoint());
    create_bucket(&c, "rec", false);
    let (code, out) = doctor(&env, &s.endpoint());
    // s3s-fs refuses the PUT and keeps nothing at the key, and doctor says so.
    let truth = wrong_sha256_put(&c, "truth/s3s-fs");
    assert_eq!(truth, (true, false), "s3s-fs (refused, stored)");
    let rejects = line(&out, "rejects a wrong SHA-256");
    assert!(rejects.starts_with("yes"), "{out}");
    assert!(rejects.contains("BadDigest"), "{out}");
    assert!(line(&out, "bucket reachable").starts_with("yes"), "{out}");
    assert!(line(&out, "If-None-Match").starts_with("yes"), "{out}");
    assert!(line(&out, "stores our SHA-256").starts_with("yes"), "{out}");
    // No Object Lock and no versioning in s3s-fs: a plain answer, not "could not probe".
    assert!(line(&out, "object lock").starts_with("NO"), "{out}");
    assert!(line(&out, "versioning").starts_with("NO"), "{out}");
    assert_eq!(code, 2, "{out}");

    let moto = Moto::start();
    let c = client(&moto.endpoint());
    create_bucket(&c, "rec", true);
    let (code, out) = doctor(&env, &moto.endpoint());
    let truth = wrong_sha256_put(&c, "truth/moto");
    let enforced = truth == (true, false);
    let rejects = line(&out, "rejects a wrong SHA-256");
    assert!(
        rejects.starts_with(if enforced { "yes" } else { "NO" }),
        "doctor says {rejects:?}; moto (refused, stored) = {truth:?}\n{out}"
    );
    assert_eq!(code, if enforced { 0 } else { 2 }, "{out}");
}
