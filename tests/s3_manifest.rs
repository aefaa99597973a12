//! Signed, chained manifests written by `sealcast upload --key` (format-spec/MANIFEST.md)
//! against moto_server on 127.0.0.1: layout, content of each entry, the SSHSIG accepted by
//! `ssh-keygen -Y verify`, the prev links, heartbeats, and spool files released only once the
//! manifest listing them is stored.

mod common;
mod s3_support;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestEnv;
use s3_support::{
    get_object, manifest_keys, manifest_trust, record_session, run, sha256_bytes_hex, sha256_hex,
    upload_at, upload_cmd, versions, Moto,
};
use sealcast_store::aws_sdk_s3::Client;
use sealcast_store::manifest::Manifest;

/// A closed session `spool/<name>.cast.zst` of host `h1`.
fn record(env: &TestEnv, spool: &Path, name: &str) -> PathBuf {
    record_session(env, spool, name, "h1", &["sh", "-c", "echo hello"])
}

/// `sealcast upload` of `spool` as host `h1`, signed with the env's key, with `extra` flags:
/// exit 0, its stdout.
fn upload(env: &TestEnv, spool: &Path, endpoint: &str, extra: &[&str]) -> String {
    let o = run(upload_cmd(env, spool, Some(&env.key), "h1", endpoint).args(extra));
    assert_eq!(o.status.code(), Some(0), "upload failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn get(c: &Client, key: &str) -> Vec<u8> {
    get_object(c, "rec", key)
}

/// `ssh-keygen -Y verify` of manifest bytes with its signature, principal h1.
fn ssh_keygen_verify(env: &TestEnv, manifest: &[u8], sig: &[u8], ns: &str) -> bool {
    let signers = manifest_trust(env, "manifest_signers", "h1");
    let sig_path = env.path("m.json.sig");
    fs::write(&sig_path, sig).unwrap();
    let mut ch = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", "h1", "-n", ns, "-s"])
        .arg(&sig_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh-keygen");
    ch.stdin.take().unwrap().write_all(manifest).unwrap();
    let o = ch.wait_with_output().unwrap();
    o.status.success()
}

fn decompressed_sha256(path: &Path) -> (String, u64) {
    let mut d = zstd::stream::read::Decoder::new(fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    d.read_to_end(&mut v).unwrap();
    (
        sha256_bytes_hex(&v),
        v.iter().filter(|&&b| b == b'\n').count() as u64,
    )
}

#[test]
fn manifests_are_signed_chained_and_release_the_spool() {
    let (moto, c) = Moto::with_bucket("rec", true);
    let env = TestEnv::new();
    let spool = env.path("spool");
    let recs = [record(&env, &spool, "a"), record(&env, &spool, "b")];
    // What the manifest must say, computed before the spool is released.
    let expect: Vec<(String, String, String, u64, String)> = recs
        .iter()
        .map(|r| {
            let h = common::header(r).sealcast.unwrap();
            let (content, lines) = decompressed_sha256(r);
            (h.session, sha256_hex(r), content, lines, h.user)
        })
        .collect();

    let out = upload(&env, &spool, &moto.endpoint(), &[]);
    assert!(
        out.contains("2 uploaded") && out.contains("1 manifests"),
        "{out}"
    );
    assert!(out.contains("2 spool recordings released"), "{out}");
    for r in &recs {
        assert!(!r.exists(), "{} released", r.display());
        assert!(!common::receipt_path(r).exists());
    }

    let ms = manifest_keys(&c);
    assert_eq!(ms.len(), 1, "{ms:?}");
    let k0 = &ms[0];
    assert!(
        k0.starts_with("pfx/manifests/h1/") && k0.ends_with("_000000.json"),
        "{k0}"
    );
    let name = k0.rsplit('/').next().unwrap();
    assert_eq!(
        name.len(),
        "h1_20261121T101500Z_000000.json".len(),
        "{name}"
    );
    let m0_bytes = get(&c, k0);
    let s0_bytes = get(&c, &format!("{k0}.sig"));
    assert!(ssh_keygen_verify(
        &env,
        &m0_bytes,
        &s0_bytes,
        "sealcast-manifest"
    ));
    assert!(!ssh_keygen_verify(&env, &m0_bytes, &s0_bytes, "sealcast"));
    let mut tampered = m0_bytes.clone();
    tampered[10] ^= 1;
    assert!(!ssh_keygen_verify(
        &env,
        &tampered,
        &s0_bytes,
        "sealcast-manifest"
    ));

    let m0 = Manifest::parse(&m0_bytes).unwrap();
    assert_eq!(
        (m0.bucket.as_str(), m0.key.as_str(), m0.seq),
        ("rec", k0.as_str(), 0)
    );
    assert_eq!(m0.host, "h1");
    assert!(m0.prev.is_none());
    assert!(m0.period_start_us <= m0.period_end_us);
    assert_eq!(m0.lock.as_ref().unwrap().mode, "COMPLIANCE");
    assert_eq!(m0.recordings.len(), 2);
    let all = versions(&c, "rec", "pfx/recordings/");
    for (session, sha, content, lines, user) in &expect {
        let e = m0
            .recordings
            .iter()
            .find(|e| &e.session == session)
            .expect("listed");
        assert!(
            e.key.ends_with(&format!("/{session}.cast.zst")),
            "{}",
            e.key
        );
        assert_eq!(&e.sha256, sha);
        assert_eq!(&e.content_sha256, content);
        assert_eq!(e.lines, *lines);
        assert_eq!(&e.user, user);
        assert_eq!(e.status, "closed");
        assert_eq!(e.final_head.len(), 64);
        assert!(e.end.is_some());
        let v = all.iter().find(|v| v.0 == e.key).expect("stored");
        assert_eq!(e.version_id.as_deref(), Some(v.1.as_str()), "version id");
        let r = e.receipt.as_ref().unwrap();
        assert_eq!(r.key, format!("{}.seal", e.key));
        assert_eq!(sha256_bytes_hex(&get(&c, &r.key)), r.sha256);
    }

    // Next run: one more recording; the manifest links to the first.
    record(&env, &spool, "c");
    let out = upload(&env, &spool, &moto.endpoint(), &[]);
    assert!(
        out.contains("1 uploaded") && out.contains("1 manifests"),
        "{out}"
    );
    let ms = manifest_keys(&c);
    assert_eq!(ms.len(), 2, "{ms:?}");
    let k1 = ms.iter().find(|k| k.ends_with("_000001.json")).unwrap();
    let m1 = Manifest::parse(&get(&c, k1)).unwrap();
    let prev = m1.prev.unwrap();
    assert_eq!(prev.key, *k0);
    assert_eq!(prev.sha256, sha256_bytes_hex(&m0_bytes));
    assert_eq!(prev.sig_sha256, sha256_bytes_hex(&s0_bytes));
    assert_eq!(m1.period_start_us, m0.period_end_us);
    assert_eq!(m1.recordings.len(), 1);

    // Nothing new within the period: no manifest.
    let out = upload(&env, &spool, &moto.endpoint(), &[]);
    assert!(out.contains("0 manifests"), "{out}");
    // A period later (on the uploader's clock) with nothing new: a heartbeat.
    let o = run(upload_at(
        upload_cmd(&env, &spool, Some(&env.key), "h1", &moto.endpoint())
            .args(["--period-secs", "1"]),
        s3_support::unix_secs() + 2,
    ));
    assert_eq!(o.status.code(), Some(0), "upload failed");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("1 manifests"), "{out}");
    let ms = manifest_keys(&c);
    let k2 = ms.iter().find(|k| k.ends_with("_000002.json")).unwrap();
    let m2 = Manifest::parse(&get(&c, k2)).unwrap();
    assert!(m2.recordings.is_empty());
    assert_eq!(m2.prev.unwrap().key, *k1);
    // The spool holds only the uploader's state.
    let left: Vec<_> = fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, [sealcast_store::upload::STATE_FILE], "{left:?}");
}

/// `upload --watch` ships recordings as they close and stores a manifest every period, also
/// when nothing happened (heartbeats), each linked to the one before.
#[test]
fn watch_mode_ships_and_sends_heartbeats() {
    let (moto, c) = Moto::with_bucket("rec", true);
    let env = TestEnv::new();
    let spool = env.path("spool");
    record(&env, &spool, "first");
    let mut cmd = upload_cmd(&env, &spool, Some(&env.key), "h1", &moto.endpoint());
    cmd.args(["--watch", "--poll-secs", "1", "--period-secs", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start upload --watch");
    // The first pass shipped the first recording; the second comes to a running watcher.
    assert!(
        common::wait_until(Duration::from_secs(20), || {
            !spool.join("first.cast.zst").exists()
        }),
        "upload --watch did not ship the first recording"
    );
    record(&env, &spool, "second");
    let ok = common::wait_until(Duration::from_secs(20), || {
        let ms = manifest_keys(&c);
        ms.len() >= 4 && !spool.join("second.cast.zst").exists()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "manifests: {:?}", manifest_keys(&c));
    let mut ms: Vec<Manifest> = manifest_keys(&c)
        .iter()
        .map(|k| Manifest::parse(&get(&c, k)).unwrap())
        .collect();
    ms.sort_by_key(|m| m.seq);
    let listed: usize = ms.iter().map(|m| m.recordings.len()).sum();
    assert_eq!(listed, 2, "each recording listed once");
    assert!(ms.iter().any(|m| m.recordings.is_empty()), "a heartbeat");
    for w in ms.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
        assert_eq!(w[1].prev.as_ref().unwrap().key, w[0].key);
        assert_eq!(w[1].period_start_us, w[0].period_end_us);
    }
}
