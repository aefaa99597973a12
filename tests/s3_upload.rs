//! `sealcast upload` against a real S3-compatible server (moto_server on 127.0.0.1): object
//! keys and layout, our SHA-256 stored as the object checksum, Object Lock retention only on
//! locked buckets, no overwrite and no duplicate on re-runs, and retries until the server is
//! up.

mod common;
mod s3_support;

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::TestEnv;
use s3_support::{
    client, create_bucket, get_object, get_object_meta, manifest_trust, put_object, record_big,
    record_sessions, recording_key, rt, run, run_verify, sha256_bytes_hex, sha256_hex, upload_cmd,
    versions, Moto,
};
use sealcast_store::aws_sdk_s3::types::{ChecksumMode, ObjectLockMode};

/// `sealcast upload` of `spool` to `s3://rec/pfx` as host `h1`, without a signing key (no
/// manifest), with `extra` flags.
fn upload(env: &TestEnv, spool: &Path, endpoint: &str, extra: &[&str]) -> std::process::Output {
    run(upload_cmd(env, spool, None, "h1", endpoint).args(extra))
}

#[test]
fn upload_stores_checksummed_locked_objects_once() {
    let (moto, c) = Moto::with_bucket("rec", true);
    let env = TestEnv::new();
    let spool = env.path("spool");
    let recs = record_sessions(&env, &spool, 2);
    // A third recording that is still open (no receipt yet) is left alone.
    let open = spool.join("open.cast.zst");
    fs::copy(&recs[0], &open).unwrap();

    let o = upload(
        &env,
        &spool,
        &moto.endpoint(),
        &["--lock-mode", "governance", "--lock-days", "2"],
    );
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 uploaded"), "{stdout}");
    assert!(stdout.contains("1 still open"), "{stdout}");

    let all = versions(&c, "rec", "pfx/");
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.iter().all(|v| !v.2), "no delete markers: {all:?}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for rec in &recs {
        let key = recording_key(rec);
        for (k, file) in [
            (key.clone(), rec.clone()),
            (format!("{key}.seal"), common::receipt_path(rec)),
        ] {
            assert!(all.iter().any(|v| v.0 == k), "{k} missing in {all:?}");
            let (sum, body, mode, until) = rt().block_on(async {
                let h = c
                    .head_object()
                    .bucket("rec")
                    .key(&k)
                    .checksum_mode(ChecksumMode::Enabled)
                    .send()
                    .await
                    .expect("head");
                let g = c.get_object().bucket("rec").key(&k).send().await.unwrap();
                let body = g.body.collect().await.unwrap().into_bytes().to_vec();
                // Retention as the server reports it on HEAD (moto's GetObjectRetention
                // answers with the object body under path-style addressing).
                (
                    h.checksum_sha256().map(str::to_string),
                    body,
                    h.object_lock_mode().cloned(),
                    h.object_lock_retain_until_date().map(|d| d.secs()),
                )
            });
            assert_eq!(body, fs::read(&file).unwrap(), "{k}: stored bytes");
            let ours = base64::engine::general_purpose::STANDARD
                .encode(hex::decode(sha256_hex(&file)).unwrap());
            assert_eq!(
                sum.as_deref(),
                Some(ours.as_str()),
                "{k}: x-amz-checksum-sha256"
            );
            assert_eq!(mode, Some(ObjectLockMode::Governance), "{k}");
            let until = until.expect("retain-until");
            assert!(
                (until - (now + 2 * 86_400)).abs() < 600,
                "{k}: retain until {until}, now {now}"
            );
        }
    }
    // Spool files are kept (only a stored manifest may release them).
    for rec in &recs {
        assert!(rec.is_file() && common::receipt_path(rec).is_file());
    }

    // A second run ships nothing new.
    let o = upload(&env, &spool, &moto.endpoint(), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("0 uploaded, 0 already stored, 2 shipped earlier"));
    assert_eq!(versions(&c, "rec", "pfx/"), all);

    // Without its state (uploader died before saving it) the re-run finds the keys taken
    // (If-None-Match: *), checks they hold our bytes, and still writes no new version.
    fs::remove_file(spool.join(sealcast_store::upload::STATE_FILE)).unwrap();
    let o = upload(&env, &spool, &moto.endpoint(), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 uploaded, 2 already stored"));
    assert_eq!(versions(&c, "rec", "pfx/"), all);
}

#[test]
fn upload_refuses_to_overwrite_other_bytes_and_skips_lock_on_plain_buckets() {
    let (moto, c) = Moto::with_bucket("rec", false);
    let env = TestEnv::new();
    let spool = env.path("spool");
    let recs = record_sessions(&env, &spool, 1);
    let key = recording_key(&recs[0]);
    // Someone already put other bytes at the recording's key.
    put_object(&c, "rec", &key, b"not this recording".to_vec());
    let o = upload(&env, &spool, &moto.endpoint(), &["--max-attempts", "2"]);
    assert_eq!(o.status.code(), Some(4), "a conflict is a failure");
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds different bytes"));
    let got = get_object(&c, "rec", &key);
    assert_eq!(got, b"not this recording", "never overwritten");
    assert!(recs[0].is_file(), "spool kept");

    // A fresh key on the same plain bucket: stored, and without retention.
    let spool2 = env.path("spool2");
    let recs2 = record_sessions(&env, &spool2, 1);
    let o = upload(&env, &spool2, &moto.endpoint(), &[]);
    assert_eq!(o.status.code(), Some(0));
    let key2 = recording_key(&recs2[0]);
    let mode = rt().block_on(async {
        c.head_object()
            .bucket("rec")
            .key(&key2)
            .send()
            .await
            .unwrap()
            .object_lock_mode()
            .cloned()
    });
    assert_eq!(mode, None, "no retention on a bucket without Object Lock");
}

#[test]
fn upload_retries_then_fails_cleanly_while_the_server_is_down() {
    let env = TestEnv::new();
    let spool = env.path("spool");
    let recs = record_sessions(&env, &spool, 1);
    let port = s3_support::free_port();
    let endpoint = s3_support::loopback(port);
    let o = upload(
        &env,
        &spool,
        &endpoint,
        &["--max-attempts", "2", "--max-backoff-secs", "1"],
    );
    assert_eq!(o.status.code(), Some(4), "server down: exit 4");
    assert!(recs[0].is_file());
    let moto = Moto::start_on(port);
    let c = client(&moto.endpoint());
    create_bucket(&c, "rec", true);
    let o = upload(&env, &spool, &endpoint, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(versions(&c, "rec", "pfx/").len(), 2);
}

/// The server goes away in the middle of a PUT body and comes back 2 s later: the uploader
/// retries with backoff, every object arrives exactly once, and the bucket verifies.
#[test]
fn server_gone_mid_upload_then_back_everything_arrives_once() {
    let (moto, c) = Moto::with_bucket("rec", true);
    let env = TestEnv::new();
    let spool = env.path("spool");
    // One recording large enough (≈1 MiB compressed: random bytes) that the cut lands inside
    // its body, and two small ones.
    let big = record_big(&env, &spool, 1_500_000);
    let mut recs = record_sessions(&env, &spool, 2);
    recs.push(big);
    let proxy =
        s3_support::Proxy::start(moto.port, Some(300_000), std::time::Duration::from_secs(2));
    let o = run(&mut upload_cmd(
        &env,
        &spool,
        Some(&env.key),
        "h1",
        &proxy.endpoint(),
    ));
    assert_eq!(o.status.code(), Some(0));
    assert!(
        proxy.sent.load(std::sync::atomic::Ordering::SeqCst) > 300_000,
        "the cut happened"
    );
    // The retries after the cut are the SDK's own (standard mode, 3 tries) or, when those
    // run out while the server is still away, the uploader's capped backoff.
    // 3 recordings + 3 receipts + manifest + signature, one version each.
    let all = versions(&c, "rec", "pfx/");
    assert_eq!(all.len(), 8, "{all:?}");
    let keys: std::collections::BTreeSet<_> = all.iter().map(|v| v.0.clone()).collect();
    assert_eq!(keys.len(), 8, "no key has two versions: {all:?}");

    let trust = manifest_trust(&env, "trust", "h1");
    let (code, out) = run_verify(&env, "s3://rec/pfx", "h1", &trust, &moto.endpoint(), &[]);
    assert_eq!(code, 0);
    assert!(out.contains("1 manifests OK, 3 recordings OK"));
    assert!(!proxy.is_down());
}

/// A recording above the multipart threshold goes up in parts (bounded memory), lands with
/// our bytes and retention, and a re-run without state neither overwrites nor duplicates it.
#[test]
fn large_recordings_go_up_as_multipart() {
    let (moto, c) = Moto::with_bucket("rec", true);
    let env = TestEnv::new();
    let spool = env.path("spool");
    let big = record_big(&env, &spool, 6_000_000);
    let size = fs::metadata(&big).unwrap().len();
    assert!(size > 5 << 20, "needs two parts: {size}");
    let sha = sha256_hex(&big);
    let flags = ["--multipart-threshold-mib", "1", "--part-size-mib", "5"];
    let o = upload(&env, &spool, &moto.endpoint(), &flags);
    assert_eq!(o.status.code(), Some(0));
    let key = recording_key(&big);
    let (body, _, mode) = get_object_meta(&c, "rec", &key);
    assert_eq!(body.len() as u64, size);
    assert_eq!(sha256_bytes_hex(&body), sha);
    assert_eq!(mode, Some(ObjectLockMode::Compliance));
    let before = versions(&c, "rec", "pfx/");
    assert_eq!(before.len(), 2, "{before:?}");
    fs::remove_file(spool.join(sealcast_store::upload::STATE_FILE)).unwrap();
    let o = upload(&env, &spool, &moto.endpoint(), &flags);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 uploaded, 1 already stored"));
    assert_eq!(versions(&c, "rec", "pfx/"), before);
}
