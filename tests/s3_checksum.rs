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
use std::time::{Duration, Instant};

use base64::Engine;
use common::TestEnv;
use s3_support::{
    doctor, doctor_line, manifest_trust, record_sessions, recording_key, rt, run, sha256_hex,
    upload_cmd, verify_cmd, Moto, S3sFs,
};
use sealcast_store::aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use sealcast_store::aws_sdk_s3::Client;
use sealcast_store::object_store::S3Store;
use sealcast_store::s3::{Backoff, S3Url};
use sealcast_store::upload::{put_file, Put};
use sha2::Digest;
use tempfile::TempDir;

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
    let (s, c) = S3sFs::with_bucket("rec");
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
    // The store is the bucket's root: keys are the bucket's keys.
    let store = S3Store::new(c.clone(), S3Url::parse("s3://rec").unwrap(), quick());
    let r = rt().block_on(put_file(&store, key, &file, size, &wrong, None));
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
        .block_on(put_file(&store, ok_key, &file, size, &good, None))
        .expect("PUT with the right SHA-256");
    assert!(matches!(r, Put::Created(_)), "{r:?}");
    assert_eq!(head(&c, "rec", ok_key), Some(Some(b64(&good))));
    assert_eq!(fs::read(s.object_path("rec", ok_key)).unwrap(), body);
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
    let (s, c) = S3sFs::with_bucket("rec");
    let env = TestEnv::new();
    let spool = env.path("spool");
    let recs = record_sessions(&env, &spool, 2);
    // (key, SHA-256) of every recording and receipt, taken before the spool is released.
    let mut sums: Vec<(String, String)> = Vec::new();
    for rec in &recs {
        let key = recording_key(rec);
        let receipt = common::receipt_path(rec);
        assert!(receipt.is_file(), "closed, with a seal receipt");
        sums.push((
            sealcast_store::layout::receipt_key(&key),
            sha256_hex(&receipt),
        ));
        sums.push((key, sha256_hex(rec)));
    }

    let mut cmd = upload_cmd(&env, &spool, Some(&env.key), "h1", &s.endpoint());
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
    // at once (501 is final, no half a minute of retries) and checks the current objects,
    // as for a mirror.
    let trust = manifest_trust(&env, "trust", "h1");
    let mut v = verify_cmd(&env, "s3://rec/pfx", "h1", &trust, &s.endpoint());
    let t0 = Instant::now();
    let o = run(&mut v);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        out.contains("host h1: 1 manifests OK, 2 recordings OK"),
        "{out}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has no ListObjectVersions"),
        "{o:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());

    // And it still finds what is wrong there: a recording replaced in place.
    let victim = sums
        .iter()
        .map(|(k, _)| k)
        .find(|k| k.ends_with(".cast.zst"))
        .unwrap();
    let path = s.object_path("rec", victim);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let o = run(&mut verify_cmd(
        &env,
        "s3://rec/pfx",
        "h1",
        &trust,
        &s.endpoint(),
    ));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("MODIFIED") && l.contains(victim.as_str())),
        "{out}"
    );
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

    let (s, c) = S3sFs::with_bucket("rec");
    let (code, out) = doctor(&env, "s3://rec/p", &s.endpoint());
    // s3s-fs refuses the PUT and keeps nothing at the key, and doctor says so.
    let truth = wrong_sha256_put(&c, "truth/s3s-fs");
    assert_eq!(truth, (true, false), "s3s-fs (refused, stored)");
    let rejects = doctor_line(&out, "rejects a wrong SHA-256");
    assert!(rejects.starts_with("yes"), "{out}");
    assert!(rejects.contains("BadDigest"), "{out}");
    assert!(
        doctor_line(&out, "bucket reachable").starts_with("yes"),
        "{out}"
    );
    assert!(
        doctor_line(&out, "If-None-Match").starts_with("yes"),
        "{out}"
    );
    assert!(
        doctor_line(&out, "stores our SHA-256").starts_with("yes"),
        "{out}"
    );
    // No Object Lock and no versioning in s3s-fs: a plain answer, not "could not probe".
    assert!(doctor_line(&out, "object lock").starts_with("NO"), "{out}");
    assert!(doctor_line(&out, "versioning").starts_with("NO"), "{out}");
    assert_eq!(code, 2, "{out}");

    let (moto, c) = Moto::with_bucket("rec", true);
    let (code, out) = doctor(&env, "s3://rec/p", &moto.endpoint());
    let truth = wrong_sha256_put(&c, "truth/moto");
    let enforced = truth == (true, false);
    let rejects = doctor_line(&out, "rejects a wrong SHA-256");
    assert!(
        rejects.starts_with(if enforced { "yes" } else { "NO" }),
        "doctor says {rejects:?}; moto (refused, stored) = {truth:?}\n{out}"
    );
    assert_eq!(code, if enforced { 0 } else { 2 }, "{out}");
}
