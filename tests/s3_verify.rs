//! `sealcast verify s3://BUCKET/PREFIX --host H` and its offline mirror form, against
//! moto_server on 127.0.0.1: a clean bucket verifies OK (exit 0), and each attack on the
//! bucket gives its own status and exit code (format-spec/MANIFEST.md §5).

mod common;
mod s3_support;

use std::fs;
use std::path::{Path, PathBuf};

use common::TestEnv;
use s3_support::{
    aws_env, exit_and_stdout, manifest_trust, put_object, record_session, rt, run, run_verify,
    upload_cmd, verify_cmd, versions, Fixture, Moto,
};
use sealcast_store::aws_sdk_s3::Client;

/// A [`Fixture`] on a locked bucket, with the attacks' own helpers.
struct Setup(Fixture);

impl std::ops::Deref for Setup {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.0
    }
}

impl Setup {
    /// A locked bucket (governance retention, so tests can play the attacker with a bypass)
    /// holding `runs` upload runs of one session each: `runs` manifests.
    fn new(runs: usize) -> Setup {
        let s = Setup(Fixture::new(true));
        for i in 0..runs {
            s.record(&format!("r{i}"));
            s.upload();
        }
        s
    }

    fn record(&self, name: &str) {
        record_session(&self.env, &self.spool, name, "h1", &["sh", "-c", "echo hi"]);
    }

    fn upload(&self) {
        self.upload_with(|_| {});
    }

    /// [`Setup::upload`] with a change to the command.
    fn upload_with(&self, f: impl FnOnce(&mut std::process::Command)) {
        let mut c = upload_cmd(
            &self.env,
            &self.spool,
            Some(&self.env.key),
            "h1",
            &self.moto.endpoint(),
        );
        c.args(["--lock-mode", "governance", "--lock-days", "1"]);
        f(&mut c);
        assert_eq!(run(&mut c).status.code(), Some(0), "upload");
    }

    /// Current (key, version) of objects under `pfx/<sub>` whose key ends with `suffix`.
    fn current(&self, sub: &str, suffix: &str) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = versions(&self.c, "rec", &format!("pfx/{sub}"))
            .into_iter()
            .filter(|v| !v.2 && v.0.ends_with(suffix))
            .map(|v| (v.0, v.1))
            .collect();
        v.sort();
        v
    }

    /// Delete a version for good (governance bypass: an attacker with that right).
    fn destroy(&self, key: &str, version: &str) {
        rt().block_on(async {
            self.c
                .delete_object()
                .bucket("rec")
                .key(key)
                .version_id(version)
                .bypass_governance_retention(true)
                .send()
                .await
                .expect("delete version with governance bypass");
        });
    }

    /// Copy every current object under pfx/ into a mirror directory.
    fn mirror(&self) -> PathBuf {
        let dir = self.env.path("mirror");
        for (k, _) in self.current("", "") {
            let rel = k.strip_prefix("pfx/").unwrap();
            let p = dir.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, self.get(&k)).unwrap();
        }
        dir
    }
}

fn has(out: &str, status: &str) -> bool {
    out.lines().any(|l| l.starts_with(&format!("{status} ")))
}

fn find(dir: &Path, suffix: &str) -> PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                return p;
            }
        }
    }
    panic!("no *{suffix} under {}", dir.display());
}

#[test]
fn clean_bucket_and_its_mirror_verify_ok() {
    let s = Setup::new(2);
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 manifests OK, 2 recordings OK"), "{out}");
    let (code, out) = s.verify_s3(&["--json"]);
    assert_eq!(code, 0);
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["summary"]["exit_code"], 0);
    assert_eq!(last["summary"]["recordings_ok"], 2);

    let mirror = s.mirror();
    let m = mirror.to_str().unwrap();
    let (code, out) = s.verify(m, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 manifests OK, 2 recordings OK"), "{out}");

    // Offline attacks on the mirror: a modified recording byte, a modified manifest byte.
    let rec = find(&mirror, ".cast.zst");
    let mut b = fs::read(&rec).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x20;
    fs::write(&rec, &b).unwrap();
    let (code, out) = s.verify(m, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "MODIFIED"), "{out}");
    let man = find(&mirror, "_000001.json");
    let mut b = fs::read(&man).unwrap();
    b[40] ^= 1;
    fs::write(&man, &b).unwrap();
    let (code, out) = s.verify(m, &[]);
    assert_eq!(code, 1);
    assert!(has(&out, "BAD_SIGNATURE"), "{out}");

    // No trust anchor: usage error; no --host on a bucket: usage error.
    let mut c = s.env.command();
    aws_env(&mut c).args(["verify", "s3://rec/pfx", "--trusted", "/nonexistent"]);
    assert_eq!(run(&mut c).status.code(), Some(3));
}

#[test]
fn extra_object_overwritten_key_and_modified_manifest() {
    let s = Setup::new(1);
    let recs = s.current("recordings/", ".cast.zst");
    let (key, _) = &recs[0];
    // Overwrite the listed key (a new version; the listed one is intact).
    s.put(key, b"rewritten".to_vec());
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "UNREFERENCED"), "{out}");
    assert!(out.contains("overwritten key"), "{out}");

    let s = Setup::new(1);
    let recs = s.current("recordings/", ".cast.zst");
    let extra = recs[0].0.replace(".cast.zst", "0.cast.zst");
    s.put(&extra, s.get(&recs[0].0));
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("UNREFERENCED") && l.contains(&extra)),
        "{out}"
    );

    let s = Setup::new(1);
    let (mkey, _) = s.current("manifests/", ".json").remove(0);
    let mut b = s.get(&mkey);
    b[30] ^= 1;
    s.put(&mkey, b);
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "BAD_SIGNATURE"), "{out}");
}

#[test]
fn deleted_version_and_delete_marker_are_missing() {
    let s = Setup::new(1);
    let (key, ver) = s.current("recordings/", ".cast.zst").remove(0);
    s.destroy(&key, &ver);
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("MISSING") && l.contains(&key)),
        "{out}"
    );

    let s = Setup::new(1);
    let (key, _) = s.current("recordings/", ".cast.zst").remove(0);
    rt().block_on(async {
        s.c.delete_object()
            .bucket("rec")
            .key(&key)
            .send()
            .await
            .unwrap();
    });
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("delete marker"), "{out}");
    assert!(has(&out, "MISSING"), "{out}");
}

#[test]
fn manifest_chain_attacks() {
    // Deleted middle manifest.
    let s = Setup::new(3);
    let ms = s.current("manifests/", ".json");
    assert_eq!(ms.len(), 3);
    let mid = ms.iter().find(|m| m.0.ends_with("_000001.json")).unwrap();
    s.destroy(&mid.0, &mid.1);
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "CHAIN_GAP"), "{out}");

    // Deleted newest manifest: STALE with a short lag; ROLLBACK against the CI state.
    let s = Setup::new(2);
    let state = s.env.path("ci-state.json");
    let st = state.to_str().unwrap();
    let (code, out) = s.verify_s3(&["--state", st]);
    assert_eq!(code, 0, "{out}");
    assert!(state.is_file());
    let newest = s.current("manifests/", "_000001.json").remove(0);
    s.destroy(&newest.0, &newest.1);
    // The chain now ends too early (STALE), and what the deleted manifest listed is
    // UNREFERENCED.
    let (code, out) = s.verify_s3(&["--max-lag-secs", "0"]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "STALE") && has(&out, "UNREFERENCED"), "{out}");
    let (code, out) = s.verify_s3(&["--state", st]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "ROLLBACK"), "{out}");

    // Moved manifest: copied elsewhere, the original removed.
    let s = Setup::new(2);
    let m0 = s.current("manifests/", "_000000.json").remove(0);
    let moved = m0.0.replace("_000000.json", "_000000x.json");
    s.put(&moved, s.get(&m0.0));
    s.put(&format!("{moved}.sig"), s.get(&format!("{}.sig", m0.0)));
    s.destroy(&m0.0, &m0.1);
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "MOVED"), "{out}");

    // Chain restarted without a signed reason: someone holding the host key stores a second
    // seq-0 manifest (the uploader itself continues the bucket's chain when its state is
    // lost: tests/s3_lifecycle.rs).
    let s = Setup::new(1);
    let m0 = s.current("manifests/", "_000000.json").remove(0);
    let mut m = sealcast_store::manifest::Manifest::parse(&s.get(&m0.0)).unwrap();
    m.period_end_us += 60_000_000;
    m.period_end = sealcast_store::layout::rfc3339(m.period_end_us);
    m.key = sealcast_store::layout::manifest_key("pfx/", "h1", m.period_end_us, 0);
    assert_ne!(m.key, m0.0);
    let key = sealcast_signer::SigningKey::from_file_bytes(&fs::read(&s.env.key).unwrap()).unwrap();
    let bytes = m.to_bytes();
    s.put(&m.key, bytes.clone());
    s.put(
        &format!("{}.sig", m.key),
        sealcast_store::manifest::sign(&key, &bytes).into_bytes(),
    );
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("chain restarted"), "{out}");

    // History rewritten after CI stored its state: every manifest replaced by a new chain.
    let s = Setup::new(1);
    let state = s.env.path("ci-state.json");
    let st = state.to_str().unwrap();
    assert_eq!(s.verify_s3(&["--state", st]).0, 0);
    for (k, v) in s.current("manifests/", "") {
        s.destroy(&k, &v);
    }
    fs::remove_file(s.spool.join(sealcast_store::upload::STATE_FILE)).unwrap();
    s.record("forged");
    // Later than the destroyed history (on the uploader's clock), without sleeping.
    s.upload_with(|c| {
        s3_support::upload_at(c, s3_support::unix_secs() + 2);
    });
    let (code, out) = s.verify_s3(&["--state", st]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "FORK") || has(&out, "ROLLBACK"), "{out}");
}

/// Moto with bucket `rec` (`lock`: Object Lock with its default compliance retention), and one
/// session (`true`) of host `h1` uploaded there, signed: (server, client, env).
fn one_session_uploaded(lock: bool) -> (Moto, Client, TestEnv) {
    let (moto, c) = Moto::with_bucket("rec", lock);
    let env = TestEnv::new();
    let spool = env.path("spool");
    record_session(&env, &spool, "a", "h1", &["true"]);
    let mut cmd = upload_cmd(&env, &spool, Some(&env.key), "h1", &moto.endpoint());
    assert_eq!(run(&mut cmd).status.code(), Some(0));
    (moto, c, env)
}

#[test]
fn compliance_lock_prevents_deletion() {
    let (_moto, c, _env) = one_session_uploaded(true);
    for (k, v, _) in versions(&c, "rec", "pfx/") {
        let r = rt().block_on(async {
            c.delete_object()
                .bucket("rec")
                .key(&k)
                .version_id(&v)
                .bypass_governance_retention(true)
                .send()
                .await
        });
        assert!(r.is_err(), "{k}: compliance-locked version deleted");
    }
    assert_eq!(
        versions(&c, "rec", "pfx/").len(),
        4,
        "recording, receipt, manifest, sig"
    );
}

/// Retention shortened below the manifest's policy (governance bypass) is LOCK_WEAK, exit 2.
#[test]
fn shortened_retention_is_lock_weak() {
    use sealcast_store::aws_sdk_s3::primitives::DateTime;
    use sealcast_store::aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
    let s = Setup::new(1);
    let (key, ver) = s.current("recordings/", ".cast.zst").remove(0);
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 120;
    rt().block_on(async {
        s.c.put_object_retention()
            .bucket("rec")
            .key(&key)
            .version_id(&ver)
            .bypass_governance_retention(true)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Governance)
                    .retain_until_date(DateTime::from_secs(soon))
                    .build(),
            )
            .send()
            .await
            .expect("shorten retention");
    });
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("LOCK_WEAK") && l.contains(&key)),
        "{out}"
    );
    let (code, _) = s.verify_s3(&["--strict"]);
    assert_eq!(code, 1, "--strict turns LOCK_WEAK into a failure");
}

/// Two hosts ship into one bucket, each in several runs: each host's chain and recordings
/// verify OK on their own, and neither sees the other's objects as unreferenced.
#[test]
fn two_hosts_share_a_bucket_and_verify_ok() {
    let s = Setup::new(2); // host h1: 2 runs
    let spool2 = s.env.path("spool-h2");
    fs::create_dir_all(&spool2).unwrap();
    for run_no in 0..2 {
        for i in 0..2 {
            let name = format!("h2-{run_no}-{i}");
            record_session(&s.env, &spool2, &name, "h2", &["sh", "-c", "echo h2"]);
        }
        let mut c = upload_cmd(&s.env, &spool2, Some(&s.env.key), "h2", &s.moto.endpoint());
        assert_eq!(run(&mut c).status.code(), Some(0));
    }
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("host h1: 2 manifests OK, 2 recordings OK"),
        "{out}"
    );
    let trust2 = manifest_trust(&s.env, "trust2", "h2");
    let (code, out) = run_verify(
        &s.env,
        "s3://rec/pfx",
        "h2",
        &trust2,
        &s.moto.endpoint(),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("host h2: 2 manifests OK, 4 recordings OK"),
        "{out}"
    );
}

/// A day of sessions for two hosts: 24 sessions each, one per hour of yesterday (UTC, made
/// through the library with their real start times), shipped in four upload runs per host.
/// Keys carry the sessions' dates, each host's chain has four manifests, and both hosts verify
/// OK with every recording listed once.
#[test]
fn a_day_of_sessions_for_two_hosts_verifies_ok() {
    let s = Setup::new(0);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let day_us = 86_400_000_000u64;
    let yesterday = (now_us / day_us - 1) * day_us;
    for host in ["h1", "h2"] {
        let spool = s.env.path(&format!("spool-{host}"));
        fs::create_dir_all(&spool).unwrap();
        for run_no in 0..4u64 {
            for h in run_no * 6..run_no * 6 + 6 {
                let start = yesterday + h * 3_600_000_000 + 1_800_000_000;
                let session = format!("{host}-day-{h:02}");
                let (file, receipt) = common::recording_at(
                    &s.env.key,
                    host,
                    &session,
                    start,
                    &[&format!("hour {h} on {host}"), "done"],
                );
                let path = spool.join(format!("{session}.cast.zst"));
                fs::write(&path, file).unwrap();
                fs::write(common::receipt_path(&path), receipt).unwrap();
            }
            let o = run(&mut upload_cmd(
                &s.env,
                &spool,
                Some(&s.env.key),
                host,
                &s.moto.endpoint(),
            ));
            assert_eq!(o.status.code(), Some(0));
            assert!(String::from_utf8_lossy(&o.stdout).contains("6 uploaded"));
        }
        let date = sealcast_store::layout::date_path(yesterday);
        let keys = s.current(&format!("recordings/{host}/{date}/"), ".cast.zst");
        assert_eq!(keys.len(), 24, "{keys:?}");

        let trust = manifest_trust(&s.env, &format!("trust-{host}"), host);
        let (code, out) = run_verify(
            &s.env,
            "s3://rec/pfx",
            host,
            &trust,
            &s.moto.endpoint(),
            &[],
        );
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!("host {host}: 4 manifests OK, 24 recordings OK")),
            "{out}"
        );
        assert!(!out.contains("UNREFERENCED"), "{out}");
    }
}

/// A bucket without versioning or Object Lock still verifies (keys only, no retention), and
/// an extra object there is still UNREFERENCED.
#[test]
fn unversioned_bucket_verifies_by_key() {
    let (moto, c, env) = one_session_uploaded(false);
    let trust = env.path("trust");
    let public = fs::read_to_string(&env.public).unwrap();
    fs::write(&trust, format!("h1 {public}")).unwrap();
    let verify = || run_verify(&env, "s3://rec/pfx", "h1", &trust, &moto.endpoint(), &[]);
    let (code, out) = verify();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 manifests OK, 1 recordings OK"), "{out}");
    put_object(
        &c,
        "rec",
        "pfx/recordings/h1/2026/01/01/extra.cast.zst",
        b"x".to_vec(),
    );
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(has(&out, "UNREFERENCED"), "{out}");
}

/// Now, Unix µs.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Write a closed recording made by [`common::recording_at`] into `spool`, as the recorder
/// would: `<session>.cast.zst` and its seal receipt.
fn spool_recording(
    spool: &Path,
    key: &Path,
    host: &str,
    session: &str,
    start_us: u64,
    text: &str,
) -> PathBuf {
    fs::create_dir_all(spool).unwrap();
    let (file, receipt) = common::recording_at(key, host, session, start_us, &[text]);
    let path = spool.join(format!("{session}.cast.zst"));
    fs::write(&path, file).unwrap();
    fs::write(common::receipt_path(&path), receipt).unwrap();
    path
}

/// Two bastions' keys in one trust file, each for its own host (the normal fleet setup).
/// Root on h2 — its own key, and h1's chain position (which the bucket shows) — appends a
/// manifest and a recording claiming host h1 to h1's chain: the manifest is WRONG_SIGNER,
/// exit 1, also for CI's `--state` run (which keeps its state). A recording by h2's key
/// that h1's own uploader shipped is WRONG_SIGNER too.
#[test]
fn another_hosts_key_cannot_extend_a_hosts_chain() {
    let s = Setup::new(2);
    let (key2, pub2) = common::keygen(&s.env.path("key2"));
    let fleet = s.env.path("fleet");
    let line = |host: &str, public: &Path| {
        format!(
            "{host} namespaces=\"sealcast,sealcast-manifest\" {}",
            fs::read_to_string(public).unwrap()
        )
    };
    fs::write(&fleet, line("h1", &s.env.public) + &line("h2", &pub2)).unwrap();
    let verify = |extra: &[&str]| {
        run_verify(
            &s.env,
            "s3://rec/pfx",
            "h1",
            &fleet,
            &s.moto.endpoint(),
            extra,
        )
    };
    let state = s.env.path("ci-state.json");
    let st = state.to_str().unwrap();
    let (code, out) = verify(&["--state", st]);
    assert_eq!(code, 0, "{out}");
    let state_before = fs::read(&state).unwrap();

    // The forger's spool: h1's uploader state (chain position) and a recording of "h1"
    // signed with h2's key; shipped with h2's key as host h1.
    let forged = s.env.path("spool-forged");
    fs::create_dir_all(&forged).unwrap();
    fs::copy(
        s.spool.join(sealcast_store::upload::STATE_FILE),
        forged.join(sealcast_store::upload::STATE_FILE),
    )
    .unwrap();
    spool_recording(
        &forged,
        &key2,
        "h1",
        "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
        now_us(),
        "rm -rf / was never typed",
    );
    let mut c = upload_cmd(&s.env, &forged, Some(&key2), "h1", &s.moto.endpoint());
    c.args(["--lock-mode", "governance", "--lock-days", "1"]);
    assert_eq!(run(&mut c).status.code(), Some(0), "the forger's upload");
    assert_eq!(s.current("manifests/", ".json").len(), 3);

    for extra in [&[][..], &["--state", st][..]] {
        let (code, out) = verify(extra);
        assert_eq!(code, 1, "{out}");
        let m2 = out
            .lines()
            .find(|l| l.contains("_000002.json"))
            .unwrap_or_else(|| panic!("no line for the forged manifest: {out}"));
        assert!(m2.starts_with("WRONG_SIGNER  manifest "), "{out}");
        assert!(
            m2.contains("may sign for hosts \"h2\" (line 2) only, not host \"h1\""),
            "{m2}"
        );
        // What only the forged manifest lists is listed by no valid one.
        assert!(
            out.lines()
                .any(|l| l.starts_with("UNREFERENCED") && l.contains("f0f0f0f0")),
            "{out}"
        );
    }
    assert_eq!(fs::read(&state).unwrap(), state_before, "state kept");

    // h1's own uploader ships a recording h2's key made for "h1": WRONG_SIGNER as a
    // recording; and one h2's key made for h2 itself: valid, but not h1's (MOVED).
    let s = Setup::new(1);
    let (key2, pub2) = common::keygen(&s.env.path("key2"));
    fs::write(&fleet, line("h1", &s.env.public) + &line("h2", &pub2)).unwrap();
    for (host, session) in [
        ("h1", "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1"),
        ("h2", "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2"),
    ] {
        spool_recording(&s.spool, &key2, host, session, now_us(), "planted");
    }
    s.upload();
    let (code, out) = run_verify(
        &s.env,
        "s3://rec/pfx",
        "h1",
        &fleet,
        &s.moto.endpoint(),
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("WRONG_SIGNER  recording ") && l.contains("f1f1f1f1")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("MOVED         recording ")
                && l.contains("f2f2f2f2")
                && l.contains("a recording of host \"h2\" listed in the chain of host h1")),
        "{out}"
    );
    assert!(out.contains("2 manifests OK, 1 recordings OK"), "{out}");
}

/// A key whose `valid-before` has passed, used now with checkpoint times backdated into its
/// window: the lone file verifies OK (the file carries only times its signer chose, SPEC §6),
/// but the bucket knows when it received the object and reports UNTRUSTED_KEY naming that
/// time (exit 1); a mirror has no such clock, says so, and cannot tell. A manifest signed
/// now by that key with a backdated period end is UNTRUSTED_KEY the same way.
#[test]
fn a_retired_key_cannot_backdate_into_a_bucket() {
    let s = Setup::new(0);
    let day_us = 86_400_000_000u64;
    let retired_at = (now_us() / day_us - 2) * day_us; // two days ago, midnight UTC
    let before = sealcast_store::layout::basic_utc(retired_at); // YYYYMMDDTHHMMSSZ
    let valid_before = format!("{}{}Z", &before[..8], &before[9..15]);
    // The retired key signed recordings until then; a current key signs manifests.
    let (current, current_pub) = common::keygen(&s.env.path("current"));
    let trust = s.env.path("trust-retired");
    fs::write(
        &trust,
        format!(
            "h1 namespaces=\"sealcast,sealcast-manifest\",valid-before=\"{valid_before}\" {}\
             h1 namespaces=\"sealcast,sealcast-manifest\" {}",
            fs::read_to_string(&s.env.public).unwrap(),
            fs::read_to_string(&current_pub).unwrap()
        ),
    )
    .unwrap();
    let backdated = retired_at - 3_600_000_000; // an hour before it was retired
    let file = spool_recording(
        &s.spool,
        &s.env.key,
        "h1",
        "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0",
        backdated,
        "signed after retirement",
    );
    let lone = s
        .env
        .command()
        .arg("verify")
        .arg("--trusted")
        .arg(&trust)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        lone.status.code(),
        Some(0),
        "a lone file cannot tell: {}",
        String::from_utf8_lossy(&lone.stdout)
    );
    let mut c = upload_cmd(&s.env, &s.spool, Some(&current), "h1", &s.moto.endpoint());
    c.args(["--lock-mode", "governance", "--lock-days", "1"]);
    assert_eq!(run(&mut c).status.code(), Some(0));

    let verify = |s: &Setup, target: &str| {
        let o = run(verify_cmd(&s.env, target, "h1", &trust, &s.moto.endpoint())
            .args(["--max-lag-secs", "86400"]));
        let (code, out) = exit_and_stdout(&o);
        (code, out, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, out, _) = verify(&s, "s3://rec/pfx");
    assert_eq!(code, 1, "{out}");
    let rec = out
        .lines()
        .find(|l| l.contains("b0b0b0b0"))
        .unwrap_or_else(|| panic!("no line for the recording: {out}"));
    assert!(rec.starts_with("UNTRUSTED_KEY recording "), "{out}");
    let when = sealcast_store::layout::rfc3339(retired_at);
    assert!(
        rec.contains("was not valid for host \"h1\" when the store received this object")
            && rec.contains(&format!("valid-before {when} (± 300 s)")),
        "{rec}"
    );
    assert!(out.contains("1 manifests OK, 0 recordings OK"), "{out}");

    // The mirror of the same bucket: no store clock, said on stderr; only the signed times.
    let mirror = s.mirror();
    let (code, out, err) = verify(&s, mirror.to_str().unwrap());
    assert_eq!(code, 0, "{out}");
    assert!(err.contains("is a mirror: it has no store clock"), "{err}");

    // A manifest the retired key signs now, its period end backdated into its window.
    let s = Setup::new(0);
    fs::write(
        &trust,
        format!(
            "h1 namespaces=\"sealcast,sealcast-manifest\",valid-before=\"{valid_before}\" {}",
            fs::read_to_string(&s.env.public).unwrap()
        ),
    )
    .unwrap();
    let key = sealcast_signer::SigningKey::from_file_bytes(&fs::read(&s.env.key).unwrap()).unwrap();
    let end = backdated;
    let m = sealcast_store::manifest::Manifest {
        format: sealcast_store::manifest::FORMAT.into(),
        host: "h1".into(),
        bucket: "rec".into(),
        key: sealcast_store::layout::manifest_key("pfx/", "h1", end, 0),
        seq: 0,
        period_start_us: end - 300_000_000,
        period_end_us: end,
        period_start: sealcast_store::layout::rfc3339(end - 300_000_000),
        period_end: sealcast_store::layout::rfc3339(end),
        prev: None,
        key_id: key.id().to_string(),
        lock: None,
        recordings: Vec::new(),
    };
    let bytes = m.to_bytes();
    s.put(&m.key, bytes.clone());
    s.put(
        &format!("{}.sig", m.key),
        sealcast_store::manifest::sign(&key, &bytes).into_bytes(),
    );
    let (code, out, _) = verify(&s, "s3://rec/pfx");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("UNTRUSTED_KEY manifest ")
            && l.contains("when the store received this object")),
        "{out}"
    );
}
