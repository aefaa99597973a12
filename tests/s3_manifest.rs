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
use s3_support::{aws_env, client, create_bucket, rt, run, sha256_hex, versions, Moto};
use sealcast_store::manifest::Manifest;

fn record(env: &TestEnv, spool: &Path, name: &str) -> PathBuf {
    fs::create_dir_all(spool).unwrap();
    let out = spool.join(format!("{name}.cast.zst"));
    let o = env.record(
        &out,
        &["--host-id", "h1", "-q"],
        &["sh", "-c", "echo hello"],
    );
    assert!(o.status.success(), "record: {o:?}");
    out
}

fn upload(env: &TestEnv, spool: &Path, endpoint: &str, extra: &[&str]) -> String {
    let mut c = env.command();
    aws_env(&mut c)
        .arg("upload")
        .arg("--spool")
        .arg(spool)
        .arg("--key")
        .arg(&env.key)
        .args([
            "--to",
            "s3://rec/pfx",
            "--host",
            "h1",
            "--endpoint-url",
            endpoint,
        ])
        .args(extra);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(0), "upload failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn get(c: &sealcast_store::aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    rt().block_on(async {
        let g = c.get_object().bucket("rec").key(key).send().await.unwrap();
        g.body.collect().await.unwrap().into_bytes().to_vec()
    })
}

fn manifests(c: &sealcast_store::aws_sdk_s3::Client) -> Vec<String> {
    versions(c, "rec", "pfx/manifests/")
        .into_iter()
        .map(|v| v.0)
        .filter(|k| k.ends_with(".json"))
        .collect()
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// `ssh-keygen -Y verify` of manifest bytes with its signature, principal h1.
fn ssh_keygen_verify(env: &TestEnv, manifest: &[u8], sig: &[u8], ns: &str) -> bool {
    let signers = env.path("manifest_signers");
    let public = fs::read_to_string(&env.public).unwrap();
    fs::write(
        &signers,
        format!("h1 namespaces=\"sealcast,sealcast-manifest\" {public}"),
    )
    .unwrap();
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
    (sha256(&v), v.iter().filter(|&&b| b == b'\n').count() as u64)
}

#[test]
fn manifests_are_signed_chained_and_release_the_spool() {
    let moto = Moto::start();
    let c = client(&moto.endpoint());
    create_bucket(&c, "rec", true);
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

    let ms = manifests(&c);
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
        assert_eq!(sha256(&get(&c, &r.key)), r.sha256);
    }

    // Next run: one more recording; the manifest links to the first.
    record(&env, &spool, "c");
    let out = upload(&env, &spool, &moto.endpoint(), &[]);
    assert!(
        out.contains("1 uploaded") && out.contains("1 manifests"),
        "{out}"
    );
    let ms = manifests(&c);
    assert_eq!(ms.len(), 2, "{ms:?}");
    let k1 = ms.iter().find(|k| k.ends_with("_000001.json")).unwrap();
    let m1 = Manifest::parse(&get(&c, k1)).unwrap();
    let prev = m1.prev.unwrap();
    assert_eq!(prev.key, *k0);
    assert_eq!(prev.sha256, sha256(&m0_bytes));
    assert_eq!(prev.sig_sha256, sha256(&s0_bytes));
    assert_eq!(m1.period_start_us, m0.period_end_us);
    assert_eq!(m1.recordings.len(), 1);

    // Nothing new within the period: no manifest.
    let out = upload(&env, &spool, &moto.endpoint(), &[]);
    assert!(out.contains("0 manifests"), "{out}");
    // A period later with nothing new: a heartbeat.
    std::thread::sleep(Duration::from_millis(1100));
    let out = upload(&env, &spool, &moto.endpoint(), &["--period-secs", "1"]);
    assert!(out.contains("1 manifests"), "{out}");
    let ms = manifests(&c);
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
    let moto = Moto::start();
    let c = client(&moto.endpoint());
    create_bucket(&c, "rec", true);
    let env = TestEnv::new();
    let spool = env.path("spool");
    record(&env, &spool, "first");
    let mut cmd = env.command();
    aws_env(&mut cmd)
        .arg("upload")
        .arg("--spool")
        .arg(&spool)
        .arg("--key")
        .arg(&env.key)
        .args(["--to", "s3://rec/pfx", "--host", "h1", "--watch"])
        .args(["--poll-secs", "1", "--period-secs", "1"])
        .args(["--endpoint-url", &moto.endpoint()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start upload --watch");
    std::thread::sleep(Duration::from_millis(1500));
    record(&env, &spool, "second");
    let ok = common::wait_until(Duration::from_secs(20), || {
        let ms = manifests(&c);
        ms.len() >= 4 && !spool.join("second.cast.zst").exists()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "manifests: {:?}", manifests(&c));
    let mut ms: Vec<Manifest> = manifests(&c)
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
