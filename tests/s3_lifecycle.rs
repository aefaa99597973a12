//! The uploader over a recording's whole life, against moto_server on 127.0.0.1: a live
//! session ships segments of its verifiable prefix (status `open`), a session whose recorder
//! was killed is shipped whole as `recovered`, a closed one as `closed`, and `verify` reports
//! each as what it is (format-spec/SPEC.md §5.1, MANIFEST.md). Also: a lost state file
//! continues the bucket's manifest chain instead of forking it, and the settings can come
//! from the `[upload]` table of sealcast.toml.

mod common;
mod s3_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use s3_support::{
    aws_env, manifest_keys, record_session, run, unix_secs, upload_at, upload_cmd, Fixture,
};
use sealcast_store::manifest::{Entry, Manifest};

/// A [`Fixture`] on a bucket without Object Lock, with a recorder and uploader of host `h1`.
struct Setup(Fixture);

impl std::ops::Deref for Setup {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.0
    }
}

impl Setup {
    fn new() -> Setup {
        Setup(Fixture::new(false))
    }

    /// A closed recording `<name>.cast.zst` in the spool.
    fn record(&self, name: &str) -> PathBuf {
        record_session(&self.env, &self.spool, name, "h1", &["sh", "-c", "echo hi"])
    }

    /// A recorder running `script` in the background, checkpointing every second.
    fn record_live(&self, name: &str, script: &str) -> (Child, PathBuf) {
        let out = self.spool.join(format!("{name}.cast.zst"));
        let mut c = self.env.command();
        c.arg("record")
            .arg("--out")
            .arg(&out)
            .arg("--key")
            .arg(&self.env.key)
            .args(["--host-id", "h1", "-q", "--checkpoint-secs", "1"])
            .args(["--", "sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        (c.spawn().expect("spawn sealcast record"), out)
    }

    /// `sealcast upload` of the spool as host `h1`, signed with `key`, with `extra` flags.
    fn upload_cmd(&self, key: &Path, extra: &[&str]) -> Command {
        let mut c = upload_cmd(
            &self.env,
            &self.spool,
            Some(key),
            "h1",
            &self.moto.endpoint(),
        );
        c.args(extra);
        c
    }

    fn upload(&self, extra: &[&str]) -> Output {
        let o = run(&mut self.upload_cmd(&self.env.key, extra));
        assert_eq!(o.status.code(), Some(0), "upload failed: {o:?}");
        o
    }

    /// [`Setup::upload`] with the uploader's clock starting at Unix second `secs`.
    fn upload_at(&self, secs: u64, extra: &[&str]) -> Output {
        let o = run(upload_at(&mut self.upload_cmd(&self.env.key, extra), secs));
        assert_eq!(o.status.code(), Some(0), "upload failed: {o:?}");
        o
    }

    /// Every manifest in the bucket, by sequence number.
    fn manifests(&self) -> Vec<Manifest> {
        let mut keys = manifest_keys(&self.c);
        keys.sort();
        keys.dedup();
        let mut ms: Vec<Manifest> = keys
            .iter()
            .map(|k| Manifest::parse(&self.get(k)).unwrap())
            .collect();
        ms.sort_by_key(|m| m.seq);
        ms
    }
}

/// Lines covered by the last checkpoint of a (growing) spool file.
fn checkpointed_lines(p: &Path) -> u64 {
    sealcast_reader::spool::last_checkpoint(p)
        .ok()
        .flatten()
        .map_or(0, |c| c.checkpoint.lines)
}

/// Whether a verified checkpoint of the recording at `p` covers a `p` event (SPEC §2.4) that
/// names `argv0 arg`: the recorder saw the process, and nothing about it is left to write.
fn covered_process(p: &Path, trust: &sealcast_signer::TrustStore, argv: &str) -> bool {
    let Ok(data) = fs::read(p) else { return false };
    let ctx = sealcast_reader::Context {
        file_name: None,
        receipt: sealcast_reader::Receipt::Absent,
    };
    let Ok(reader) = sealcast_reader::Reader::verifying(&data, trust, ctx) else {
        return false;
    };
    reader.flatten().any(|e| {
        e.event().kind == sealcast_format::EventKind::Process
            && e.coverage().is_verified()
            && String::from_utf8_lossy(&e.event().bytes).contains(argv)
    })
}

/// The entries of all `ms` whose status is `status`.
fn with_status<'a>(ms: &'a [Manifest], status: &str) -> Vec<&'a Entry> {
    ms.iter()
        .flat_map(|m| &m.recordings)
        .filter(|e| e.status == status)
        .collect()
}

#[test]
fn live_crashed_and_closed_sessions_each_ship_as_what_they_are() {
    let s = Setup::new();
    let closed = s.record("closed");
    let go = s.env.path("go");
    let (mut live, live_path) = s.record_live(
        "live",
        &format!(
            "for i in 1 2 3; do echo live line $i; sleep 0.3; done; \
             while [ ! -e {} ]; do sleep 0.1; done; \
             for i in 4 5 6; do echo live line $i; sleep 0.3; done; exec sleep 600",
            go.display()
        ),
    );
    // Wait until checkpoints cover the first output (header + 3 lines at least).
    assert!(
        common::wait_until(Duration::from_secs(30), || checkpointed_lines(&live_path)
            >= 4),
        "the live recording never checkpointed its output"
    );

    // First pass: the closed one ships; the live one is first seen (no segment yet). Later
    // passes run on the uploader's clock 2 s apart: a segment interval later, no sleeping.
    let t0 = unix_secs();
    let o = s.upload(&["--segment-secs", "1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 uploaded"), "{out}");
    assert!(out.contains("1 still open (0 segments)"), "{out}");
    assert!(!closed.exists(), "the closed recording is released");

    // Second pass: the first segment (from byte 0), listed as open; the spool file stays.
    let o = s.upload_at(t0 + 2, &["--segment-secs", "1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 still open (1 segments)"), "{out}");
    assert!(live_path.exists(), "a live recording stays in the spool");
    let ms = s.manifests();
    let open = with_status(&ms, "open");
    assert_eq!(open.len(), 1, "{ms:?}");
    let seg1 = open[0].clone();
    assert!(
        seg1.key.ends_with(".cast.zst.part-000000000000000"),
        "{}",
        seg1.key
    );
    assert_eq!(seg1.offset, Some(0));
    assert!(seg1.receipt.is_none());
    assert!(seg1.lines >= 4, "{seg1:?}");
    let body1 = s.get(&seg1.key);
    assert_eq!(body1.len() as u64, seg1.size);
    assert!(
        fs::read(&live_path).unwrap().starts_with(&body1),
        "the first segment is a prefix of the live file"
    );

    // More output: the next segment starts where the first ended.
    fs::write(&go, b"").unwrap();
    assert!(
        common::wait_until(Duration::from_secs(30), || checkpointed_lines(&live_path)
            >= 7),
        "the live recording never checkpointed its later output"
    );
    // The session is quiet once a checkpoint covers the process it ends in (the recorder
    // observes processes, SPEC §2.4: the shell's `sleep`s are events too).
    let trust = common::trust_from_file(&s.trust);
    assert!(
        common::wait_until(Duration::from_secs(30), || covered_process(
            &live_path,
            &trust,
            r#"["sleep","600"]"#
        )),
        "the live recording never checkpointed the exec of its last process"
    );
    let o = s.upload_at(t0 + 4, &["--segment-secs", "1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 still open (1 segments)"), "{out}");
    let ms = s.manifests();
    let open = with_status(&ms, "open");
    assert_eq!(open.len(), 2, "{ms:?}");
    let seg2 = open[1].clone();
    assert_eq!(seg2.offset, Some(seg1.size), "{seg2:?}");
    assert!(seg2.lines >= 7 && seg2.lines > seg1.lines, "{seg2:?}");
    let body2 = s.get(&seg2.key);
    let live_bytes = fs::read(&live_path).unwrap();
    assert_eq!(
        &live_bytes[body1.len()..body1.len() + body2.len()],
        &body2[..],
        "the second segment continues the first"
    );
    // Nothing new since: no further segment.
    let o = s.upload_at(t0 + 6, &["--segment-secs", "1"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("(0 segments)"));

    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 0, "{out}");
    for (k, seg) in [&seg1, &seg2].iter().enumerate() {
        assert!(
            out.lines().any(|l| l.starts_with("OK")
                && l.contains(&seg.key)
                && l.contains(&format!("segment {} of 2", k + 1))),
            "{out}"
        );
    }
    // --since after both segments' manifests: neither is checked; since the second one's
    // period: both are (a session's segments are verified together).
    let later = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let (_, out) = s.verify_s3(&["--since", &later]);
    assert!(!out.contains(".part-"), "{out}");
    let ms = s.manifests();
    let second = ms
        .iter()
        .find(|m| m.recordings.iter().any(|e| e.key == seg2.key))
        .unwrap();
    let since = (second.period_end_us / 1_000_000).to_string();
    let (code, out) = s.verify_s3(&["--since", &since]);
    assert_eq!(code, 0, "{out}");
    for seg in [&seg1, &seg2] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("OK") && l.contains(&seg.key)),
            "{out}"
        );
    }
    let snap = seg2;

    // The recorder dies without sealing: the session ships whole, as recovered.
    live.kill().unwrap();
    live.wait().unwrap();
    let crashed_len = fs::metadata(&live_path).unwrap().len();
    let o = s.upload_at(
        t0 + 8,
        &["--segment-secs", "1", "--recover-after-secs", "0"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 recovered after a crash"), "{out}");
    assert!(!live_path.exists(), "released once its manifest is stored");
    let ms = s.manifests();
    let rec = with_status(&ms, "recovered");
    assert_eq!(rec.len(), 1, "{ms:?}");
    assert_eq!(
        rec[0].size, crashed_len,
        "shipped whole, torn tail included"
    );
    assert!(rec[0].lines >= snap.lines);
    assert!(rec[0].end.is_some());

    // Verify: the recovered session is verified up to its last checkpoint but was never
    // sealed: exit class 2 (incomplete), never 0.
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 2, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains(&rec[0].key))
        .unwrap_or_else(|| panic!("no line for the recovered recording: {out}"));
    assert!(
        line.starts_with("UNCLOSED") || line.starts_with("UNSEALED_TAIL"),
        "{line}"
    );
    assert!(line.contains("recovered"), "{line}");
    assert!(
        !out.lines().any(|l| l.starts_with("MODIFIED")
            || l.starts_with("UNREFERENCED")
            || l.starts_with("MISSING")),
        "{out}"
    );

    // A segment altered in the bucket: MODIFIED, and the segment after it cannot pass.
    let mut bad = body1.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    s.put(&seg1.key, bad);
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 1, "{out}");
    let line_of = |key: &str| {
        out.lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no line for {key}: {out}"))
            .to_string()
    };
    assert!(line_of(&seg1.key).starts_with("MODIFIED"), "{out}");
    let l2 = line_of(&snap.key);
    assert!(
        l2.starts_with("MODIFIED") && l2.contains("follows a segment that failed"),
        "{l2}"
    );
}

#[test]
fn a_live_session_is_never_shipped_as_recovered() {
    let s = Setup::new();
    let (mut live, live_path) = s.record_live("live", "echo started; exec sleep 600");
    assert!(common::wait_until(Duration::from_secs(30), || {
        checkpointed_lines(&live_path) >= 2
    }));
    // Idle (no writes) and, on the uploader's clock a minute ahead, older than the grace
    // period; but its recorder holds the lock.
    let o = s.upload_at(
        unix_secs() + 60,
        &["--segment-secs", "0", "--recover-after-secs", "1"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 still open"), "{out}");
    assert!(out.contains("0 recovered"), "{out}");
    assert!(live_path.exists());
    live.kill().unwrap();
    live.wait().unwrap();
}

#[test]
fn a_lost_state_file_continues_the_chain() {
    let s = Setup::new();
    let r0 = s.record("r0");
    let backup = s.env.path("r0.backup");
    fs::copy(&r0, &backup).unwrap();
    fs::copy(common::receipt_path(&r0), s.env.path("r0.backup.seal")).unwrap();
    s.upload(&[]);
    assert!(!r0.exists());
    // The state file goes, and the crash it simulates left r0 in the spool although the
    // stored manifest lists it.
    fs::remove_file(s.spool.join(".sealcast-upload.json")).unwrap();
    fs::copy(&backup, &r0).unwrap();
    fs::copy(s.env.path("r0.backup.seal"), common::receipt_path(&r0)).unwrap();
    s.record("r1");
    let o = s.upload(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("continuing the manifest chain after")
            && err.contains("1 spool recordings it lists released"),
        "{err}"
    );
    let ms = s.manifests();
    assert_eq!(ms.len(), 2, "{ms:?}");
    assert_eq!(ms[1].seq, 1);
    assert_eq!(ms[1].prev.as_ref().unwrap().key, ms[0].key);
    let sessions: Vec<_> = ms[1].recordings.iter().map(|e| &e.session).collect();
    assert_eq!(sessions.len(), 1, "r0 is not listed twice: {sessions:?}");
    let (code, out) = s.verify_s3(&[]);
    assert_eq!(code, 0, "{out}");

    // Another key without state: refuses to start a second chain.
    fs::remove_file(s.spool.join(".sealcast-upload.json")).unwrap();
    let (other, _) = common::keygen(&s.env.path("other"));
    s.record("r2");
    let o = run(&mut s.upload_cmd(&other, &[]));
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not this uploader's key"), "{err}");
    assert_eq!(s.manifests().len(), 2, "no manifest stored");
}

#[test]
fn settings_come_from_the_upload_table() {
    let s = Setup::new();
    s.record("r0");
    let cfg = s.env.path("sealcast.toml");
    fs::write(
        &cfg,
        format!(
            "host_id = \"h1\"\nspool_dir = \"{}\"\nkey = \"{}\"\ncapture_input = false\n\n[upload]\nto = \"s3://rec/pfx\"\nendpoint_url = \"{}\"\nperiod_secs = 60\n",
            s.spool.display(),
            s.env.key.display(),
            s.moto.endpoint()
        ),
    )
    .unwrap();
    let mut c = s.env.command();
    aws_env(&mut c).arg("upload").arg("--config").arg(&cfg);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 uploaded, 0 already stored"));
    let ms = s.manifests();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].host, "h1", "host from host_id");
    assert!(ms[0].key.starts_with("pfx/manifests/h1/"));

    // Unknown keys name the file; a flag overrides the file.
    fs::write(&cfg, "[upload]\nto = \"s3://rec/pfx\"\nbukket = \"x\"\n").unwrap();
    let mut c = s.env.command();
    aws_env(&mut c).arg("upload").arg("--config").arg(&cfg);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("sealcast.toml") && err.contains("bukket"),
        "{err}"
    );
}

/// Hermeticity (issue: on a machine where `install-bastion` ran, bare `sealcast upload` reads
/// `/etc/sealcast/sealcast.toml` and its signing key): the S3 tests' commands run in a mount
/// namespace whose `/etc/sealcast` holds an installed-looking but poisoned setup (a settings
/// file with an unknown key, a garbage signing key) and behave exactly as without it — they
/// name their own settings file and key. The control run, the same upload without
/// `--config`, reads the fake and fails naming it: the namespace really shows it.
#[test]
fn the_upload_tests_do_not_read_the_hosts_etc_sealcast() {
    if !s3_support::require_root("the_upload_tests_do_not_read_the_hosts_etc_sealcast") {
        return;
    }
    let host_had_it = Path::new("/etc/sealcast").exists();
    let s = Setup::new();
    s.record("r0");
    let fake = s.env.path("fake-etc-sealcast");
    fs::create_dir_all(fake.join("keys")).unwrap();
    fs::write(
        fake.join("sealcast.toml"),
        "host_id = \"intruder\"\nkey = \"/etc/sealcast/keys/signing.key\"\n\n[upload]\nto = \"s3://bukket/x\"\nbukket = \"poisoned\"\n",
    )
    .unwrap();
    fs::write(fake.join("keys/signing.key"), b"not a key\n").unwrap();
    let scratch = s.env.path("overlay");

    // Control: without --config, the command reads the fake and fails on it.
    let mut bare = s.env.command();
    aws_env(&mut bare).args([
        "upload",
        "--spool",
        s.spool.to_str().unwrap(),
        "--to",
        "s3://rec/pfx",
        "--host",
        "h1",
        "--endpoint-url",
        &s.moto.endpoint(),
    ]);
    let o = run(&mut s3_support::in_fake_etc_sealcast(
        &bare,
        &fake,
        &scratch.join("a"),
    ));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(
        err.contains("/etc/sealcast/sealcast.toml") && err.contains("bukket"),
        "{err}"
    );
    assert!(manifest_keys(&s.c).is_empty(), "nothing was shipped");

    // The tests' own upload command: unaffected.
    let up = s.upload_cmd(&s.env.key, &[]);
    let o = run(&mut s3_support::in_fake_etc_sealcast(
        &up,
        &fake,
        &scratch.join("b"),
    ));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 uploaded"),
        "{o:?}"
    );
    let ms = s.manifests();
    assert_eq!(ms.len(), 1, "{ms:?}");
    assert_eq!(ms[0].host, "h1");
    let ours = sealcast_signer::SigningKey::from_file_bytes(&fs::read(&s.env.key).unwrap())
        .unwrap()
        .id()
        .to_string();
    assert_eq!(ms[0].key_id, ours, "signed with the test's key");
    assert_eq!(
        Path::new("/etc/sealcast").exists(),
        host_had_it,
        "the host's /etc is untouched"
    );
}
