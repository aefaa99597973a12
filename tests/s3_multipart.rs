//! Multipart uploads of large recordings against a real S3-compatible server (moto_server on
//! 127.0.0.1): parts sent in parallel land as our bytes and verify, and an uploader killed
//! mid-upload resumes on the next run with the parts the server already holds.

mod common;
mod s3_support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestEnv;
use s3_support::{
    get_object_meta, manifest_trust, multipart_uploads, record_big, recording_key, run, run_verify,
    sha256_bytes_hex, sha256_hex, upload_cmd, versions, Moto, StallProxy,
};
use sealcast_store::aws_sdk_s3::types::ObjectLockMode;
use sealcast_store::aws_sdk_s3::Client;
use sealcast_store::multipart::{resume_record_path, ResumeRecord};

const MIB: u64 = 1 << 20;
const PART: u64 = 5 * MIB;

/// `sealcast upload` of `spool` to `s3://rec/pfx` (host `h1`, signing key: a manifest is
/// stored) through `endpoint`, as multipart with 5 MiB parts.
fn multipart_cmd(env: &TestEnv, spool: &Path, endpoint: &str, parallel: &str) -> Command {
    let mut c = upload_cmd(env, spool, Some(&env.key), "h1", endpoint);
    c.args(["--multipart-threshold-mib", "1", "--part-size-mib", "5"])
        .args(["--parallel-parts", parallel]);
    c
}

/// The object at `key` holds our bytes (`size`, `sha`) as a `parts`-part multipart object
/// under compliance retention.
fn assert_stored_multipart(c: &Client, key: &str, size: u64, sha: &str, parts: u64) {
    let (body, etag, mode) = get_object_meta(c, "rec", key);
    assert_eq!(body.len() as u64, size);
    assert_eq!(sha256_bytes_hex(&body), sha);
    // A multipart object's ETag ends with its part count.
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{parts}")),
        "{etag}"
    );
    assert_eq!(mode, Some(ObjectLockMode::Compliance));
}

/// `sealcast verify s3://rec/pfx` trusting the env's key for host `h1`: exit 0 and
/// "1 manifests OK, 1 recordings OK".
fn assert_bucket_verifies(env: &TestEnv, endpoint: &str) {
    let trust = manifest_trust(env, "trust", "h1");
    let (code, stdout) = run_verify(env, "s3://rec/pfx", "h1", &trust, endpoint, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("1 manifests OK, 1 recordings OK"),
        "{stdout}"
    );
}

/// A recording four parts long goes up with three parts in flight at once, lands with our
/// SHA-256 as a 4-part object with retention, leaves no upload and no resume record behind,
/// and the bucket verifies.
#[test]
fn parallel_parts_land_and_verify() {
    let (moto, c) = Moto::with_bucket("rec", true);
    let env = TestEnv::new();
    let spool = env.path("spool");
    let big = record_big(&env, &spool, 17_000_000);
    let size = fs::metadata(&big).unwrap().len();
    let parts = size.div_ceil(PART);
    assert!(parts >= 4, "needs at least four parts: {size}");
    let sha = sha256_hex(&big);
    // (The spool file is released once the manifest listing it is stored.)
    let key = recording_key(&big);

    // Through a proxy that counts the connections open at once: three parts in flight need
    // three connections (each part is held until three are open, so a loaded machine cannot
    // serialise what the uploader sends in parallel).
    let proxy = StallProxy::parallel(moto.port, 3);
    let o = run(&mut multipart_cmd(&env, &spool, &proxy.endpoint(), "3"));
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("1 uploaded"), "{stdout}");
    assert!(
        proxy.max_open() >= 3,
        "parts were sent in parallel: at most {} connections at once",
        proxy.max_open()
    );
    assert!(proxy.sent() >= size, "every byte went through the proxy");

    assert_stored_multipart(&c, &key, size, &sha, parts);
    assert_eq!(multipart_uploads(&c, "rec"), vec![]);
    assert!(!resume_record_path(&spool, "big.cast.zst").exists());
    let all = versions(&c, "rec", "pfx/recordings/");
    assert_eq!(all.len(), 2, "recording and receipt, once each: {all:?}");
    assert_bucket_verifies(&env, &moto.endpoint());
}

/// `sealcast upload` killed with SIGKILL in the middle of a multipart upload (the server hangs
/// after three parts, so the upload cannot finish first): the spool keeps the recording, its
/// receipt and the resume record, and the server keeps the upload. The next run reuses the
/// recorded parts — it says so, and sends only the others — completes, and leaves no upload
/// and no record behind; the object is ours and the bucket verifies.
#[test]
fn killed_upload_resumes_with_the_stored_parts() {
    let (moto, c) = Moto::with_bucket("rec", true);
    let env = TestEnv::new();
    let spool = env.path("spool");
    let big = record_big(&env, &spool, 31_000_000);
    let size = fs::metadata(&big).unwrap().len();
    let parts = size.div_ceil(PART);
    assert!(size > 30 * MIB && parts >= 7, "needs several parts: {size}");
    let sha = sha256_hex(&big);
    let key = recording_key(&big);
    let record_path = resume_record_path(&spool, "big.cast.zst");

    // First run: three parts in flight; the server hangs once 17 MiB of requests went through
    // (parts 1–3 and the small requests before them, then a little of parts 4–6).
    let proxy = StallProxy::start(moto.port, Some(17 * MIB));
    let mut cmd = multipart_cmd(&env, &spool, &proxy.endpoint(), "3");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sealcast upload");
    let recorded = |min: usize| {
        ResumeRecord::load(&record_path)
            .ok()
            .flatten()
            .is_some_and(|r| r.parts.len() >= min)
    };
    let got_two = common::wait_until(Duration::from_secs(120), || recorded(2));
    // SIGKILL: no chance to abort or clean up.
    child.kill().expect("kill -9 sealcast upload");
    let st = child.wait().unwrap();
    assert!(got_two, "the resume record never listed two parts");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(9),
        "killed, not finished: {st:?}"
    );
    drop(proxy);

    let rec = ResumeRecord::load(&record_path)
        .unwrap()
        .expect("resume record kept");
    assert_eq!(rec.key, key);
    assert_eq!(rec.sha256, sha);
    assert_eq!(rec.size, size);
    assert_eq!(rec.part_size, PART);
    let stored = rec.parts.len() as u64;
    assert!((2..parts).contains(&stored), "{rec:?}");
    assert!(
        rec.parts
            .iter()
            .all(|p| p.size == PART && !p.etag.is_empty()),
        "{rec:?}"
    );
    assert!(
        big.is_file() && common::receipt_path(&big).is_file(),
        "spool keeps its files"
    );
    assert_eq!(
        multipart_uploads(&c, "rec"),
        vec![(key.clone(), rec.upload_id.clone())],
        "the server keeps the upload"
    );
    assert!(
        versions(&c, "rec", "pfx/").is_empty(),
        "nothing completed yet"
    );

    // Second run, through a counting proxy that does not stall.
    let proxy = StallProxy::start(moto.port, None);
    let o = run(&mut multipart_cmd(&env, &spool, &proxy.endpoint(), "3"));
    assert_eq!(o.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stderr.contains(&format!(
            "resumed multipart upload of s3://rec/{key}: {stored} of {parts} parts already stored"
        )),
        "{stderr}"
    );
    assert!(stdout.contains("1 uploaded"), "{stdout}");
    // Only the missing parts went up again (plus the receipt, the manifest and small
    // requests: well under one part).
    let missing = size - stored * PART;
    let sent = proxy.sent();
    assert!(
        sent >= missing && sent < missing + MIB,
        "sent {sent} bytes for {missing} missing"
    );

    assert_stored_multipart(&c, &key, size, &sha, parts);
    assert_eq!(multipart_uploads(&c, "rec"), vec![], "no stray upload");
    assert!(!record_path.exists(), "resume record deleted");
    let all = versions(&c, "rec", "pfx/recordings/");
    assert_eq!(all.len(), 2, "recording and receipt, once each: {all:?}");
    assert_bucket_verifies(&env, &moto.endpoint());
}
