//! Bucket and mirror verification with recordings held as mapped files rather than in memory
//! (`store::verify::Source::fetch`), and its progress reports: against moto_server on
//! 127.0.0.1 (tests/s3_support). A bucket and its mirror give the same findings, also for
//! empty, truncated and lengthened objects; a body cut mid-download is fetched again and
//! verifies; an oversized signature is UNREADABLE, not an allocation; the progress events
//! add up; the CLI draws its progress bar on a terminal
//! (a pseudo-terminal from `script`, bsdutils) and never into a redirected stderr.

mod common;
mod s3_support;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::trust_from_file;
use indicatif::HumanBytes;
use s3_support::{client, record_session, rt, run, upload_cmd, verify_cmd, versions, Fixture};
use sealcast_store::verify::{self, Options, ProgressEvent, Source};

/// A [`Fixture`] on an unversioned bucket (so a test can overwrite a listed object in place, as
/// a mirror can be) holding `n` recordings of one host, uploaded in one run.
struct Setup(Fixture);

impl std::ops::Deref for Setup {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.0
    }
}

impl Setup {
    fn new(n: usize) -> Setup {
        Setup::with(n, |i| format!("seq 1 {}", 200 * (i + 1)))
    }

    /// `n` recordings, the i-th of `sh -c script(i)`.
    fn with(n: usize, script: impl Fn(usize) -> String) -> Setup {
        let f = Fixture::new(false);
        for i in 0..n {
            let name = format!("r{i}");
            record_session(&f.env, &f.spool, &name, "h1", &["sh", "-c", &script(i)]);
        }
        let mut up = upload_cmd(&f.env, &f.spool, Some(&f.env.key), "h1", &f.moto.endpoint());
        assert_eq!(run(&mut up).status.code(), Some(0), "upload");
        Setup(f)
    }

    /// Current keys under `pfx/` ending with `suffix`, sorted.
    fn keys(&self, suffix: &str) -> Vec<String> {
        let mut v: Vec<String> = versions(&self.c, "rec", "pfx/")
            .into_iter()
            .filter(|v| !v.2 && v.0.ends_with(suffix))
            .map(|v| v.0)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The stored recordings' sizes added up.
    fn recording_bytes(&self) -> u64 {
        self.keys(".cast.zst")
            .iter()
            .map(|k| self.get(k).len() as u64)
            .sum()
    }

    /// Copy every current object under pfx/ into a new mirror directory `name`.
    fn mirror(&self, name: &str) -> PathBuf {
        let dir = self.env.path(name);
        for k in self.keys("") {
            let p = dir.join(k.strip_prefix("pfx/").unwrap());
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, self.get(&k)).unwrap();
        }
        dir
    }

    /// `sealcast verify TARGET --host h1 --trusted … --json`: (exit code, findings as
    /// (status, kind, key, detail), summary object, stderr).
    fn verify_json(&self, target: &str) -> (i32, Vec<[String; 4]>, serde_json::Value, String) {
        self.verify_via(target, &self.moto.endpoint())
    }

    /// [`Setup::verify_json`] with another S3 endpoint.
    fn verify_via(
        &self,
        target: &str,
        endpoint: &str,
    ) -> (i32, Vec<[String; 4]>, serde_json::Value, String) {
        let o = run(verify_cmd(&self.env, target, "h1", &self.trust, endpoint).arg("--json"));
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut findings = Vec::new();
        let mut summary = serde_json::Value::Null;
        for l in stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            if v.get("summary").is_some() {
                summary = v["summary"].clone();
            } else {
                let s = |f: &str| v[f].as_str().unwrap_or_default().to_string();
                findings.push([s("status"), s("kind"), s("key"), s("detail")]);
            }
        }
        (
            o.status.code().unwrap_or(-1),
            findings,
            summary,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

/// The finding of kind `recording` for `key`.
fn recording<'a>(f: &'a [[String; 4]], key: &str) -> &'a [String; 4] {
    f.iter()
        .find(|x| x[1] == "recording" && x[2] == key)
        .unwrap_or_else(|| panic!("no recording finding for {key}: {f:?}"))
}

/// Empty, truncated and lengthened recordings and an empty receipt, in place in a bucket and
/// in its mirror: each is MODIFIED (size/sha256 against the manifest, before any content
/// check), the intact one is OK, nothing panics, and the bucket and the mirror report the
/// very same findings.
#[test]
fn bucket_and_mirror_agree_on_empty_truncated_and_longer_objects() {
    let s = Setup::new(5);
    let recs = s.keys(".cast.zst");
    assert_eq!(recs.len(), 5, "{recs:?}");
    let (code, clean, summary, _) = s.verify_json("s3://rec/pfx");
    assert_eq!(code, 0, "{clean:?}");
    assert_eq!(summary["recordings_ok"], 5);
    assert!(clean.iter().all(|f| f[0] == "OK"), "{clean:?}");

    let whole = s.get(&recs[1]);
    assert!(whole.len() > 100, "{} bytes", whole.len());
    s.put(&recs[0], Vec::new());
    s.put(&recs[1], whole[..whole.len() / 2].to_vec());
    let mut longer = s.get(&recs[2]);
    longer.extend_from_slice(&[0u8; 4096]);
    s.put(&recs[2], longer);
    s.put(&format!("{}.seal", recs[3]), Vec::new());

    let (code, bucket, _, stderr) = s.verify_json("s3://rec/pfx");
    assert_eq!(code, 1, "{bucket:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let size_or_sha = "object bytes differ from the manifest's sha256/size";
    for k in &recs[..3] {
        let f = recording(&bucket, k);
        assert_eq!((f[0].as_str(), f[3].as_str()), ("MODIFIED", size_or_sha));
    }
    let f = recording(&bucket, &recs[3]);
    assert_eq!(f[0], "MODIFIED", "{f:?}");
    assert!(f[3].contains("receipt"), "{f:?}");
    assert_eq!(recording(&bucket, &recs[4])[0], "OK");

    let mirror = s.mirror("mirror");
    let rel = recs[0].strip_prefix("pfx/").unwrap();
    assert_eq!(fs::metadata(mirror.join(rel)).unwrap().len(), 0);
    let (mcode, mfindings, _, stderr) = s.verify_json(mirror.to_str().unwrap());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(mcode, code);
    assert_eq!(mfindings, bucket, "mirror and bucket findings differ");
}

/// A TCP proxy to `upstream` that, once, closes a connection after it has passed `cut_after`
/// response bytes (a body cut in the middle); later connections pass untouched. Returns the
/// endpoint and whether the cut happened.
fn cutting_proxy(upstream: u16, cut_after: usize) -> (String, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let c = cut.clone();
    std::thread::spawn(move || {
        for client in l.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_r, &mut s_w);
                let _ = s_w.shutdown(Shutdown::Both);
            });
            let (mut s_r, mut c_w, c) = (server, client, c.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut n_total = 0;
                while let Ok(n) = s_r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    n_total += n;
                    if n_total > cut_after && !c.swap(true, Ordering::SeqCst) {
                        break;
                    }
                    if c_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_w.shutdown(Shutdown::Both);
                let _ = s_r.shutdown(Shutdown::Both);
            });
        }
    });
    (s3_support::loopback(port), cut)
}

/// A recording body cut in the middle of its download is fetched again from the start (a
/// fresh temporary file and hash, not appended to the partial one) and verifies OK.
#[test]
fn body_cut_mid_download_is_retried_and_verifies_ok() {
    // About 400 kB of base64 noise: some 300 kB compressed.
    let s = Setup::with(1, |_| "head -c 300000 /dev/urandom | base64".into());
    let rec = s.keys(".cast.zst").remove(0);
    let size = s.get(&rec).len();
    assert!(size > 200_000, "{size} bytes");
    let (endpoint, cut) = cutting_proxy(s.moto.port, 100_000);
    let (code, findings, _, stderr) = s.verify_via("s3://rec/pfx", &endpoint);
    assert!(cut.load(Ordering::SeqCst), "the proxy never cut");
    assert!(stderr.contains("retrying"), "{stderr}");
    assert_eq!(code, 0, "{findings:?}\n{stderr}");
    assert_eq!(recording(&findings, &rec)[0], "OK");
}

/// A mirror `.sig` (sparse, so no disk or time is spent) larger than the 64 MiB cap for
/// small objects is UNREADABLE naming the file, and the run goes on.
#[test]
fn oversized_signature_is_unreadable_not_an_allocation() {
    let s = Setup::new(1);
    let mirror = s.mirror("mirror");
    let sig = s.keys(".json.sig").remove(0);
    let p = mirror.join(sig.strip_prefix("pfx/").unwrap());
    let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(verify::SMALL_OBJECT_MAX + 1).unwrap();
    drop(f);
    let (code, findings, _, stderr) = s.verify_json(mirror.to_str().unwrap());
    assert!(!stderr.contains("panicked"), "{stderr}");
    // UNREADABLE (4), and with no valid manifest the chain is MISSING (1).
    assert_eq!(code, 1, "{findings:?}");
    let m = findings
        .iter()
        .find(|f| f[1] == "manifest")
        .expect("manifest finding");
    assert_eq!(m[0], "UNREADABLE", "{m:?}");
    assert!(
        m[3].contains(p.to_str().unwrap()) && m[3].contains("larger than"),
        "{m:?}"
    );
}

/// The library's progress events, for a bucket and for its mirror: one `Totals` first with
/// the number of listed recordings and their sizes added up, then one `Started` and one
/// `Finished` per recording, whose bytes add up to the total.
#[test]
fn progress_events_add_up() {
    let s = Setup::new(3);
    let mirror = s.mirror("mirror");
    let sizes = s.recording_bytes();
    let trust = trust_from_file(&s.trust);
    let bucket = Source::S3 {
        client: client(&s.moto.endpoint()),
        url: sealcast_store::s3::S3Url::parse("s3://rec/pfx").unwrap(),
        backoff: sealcast_store::s3::Backoff::default(),
    };
    for src in [bucket, Source::Dir(mirror)] {
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let opts = Options {
            host: "h1".into(),
            since_us: None,
            until_us: None,
            max_lag: Duration::from_secs(900),
            state: None,
            now_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64,
            progress: Some(Arc::new(move |e| ev.lock().unwrap().push(e))),
        };
        let out = rt().block_on(verify::verify(&src, &trust, &opts)).unwrap();
        assert!(
            out.findings.iter().all(|f| f.status.as_str() == "OK"),
            "{:?}",
            out.findings
        );
        let events = events.lock().unwrap().clone();
        assert_eq!(
            events[0],
            ProgressEvent::Totals {
                recordings: 3,
                bytes: sizes
            }
        );
        assert_eq!(events.len(), 1 + 2 * 3, "{events:?}");
        let done: Vec<(String, u64)> = events
            .iter()
            .filter_map(|e| match e {
                ProgressEvent::Finished { key, bytes } => Some((key.clone(), *bytes)),
                _ => None,
            })
            .collect();
        assert_eq!(done.iter().map(|d| d.1).sum::<u64>(), sizes);
        let mut keys: Vec<String> = done.into_iter().map(|d| d.0).collect();
        keys.sort();
        assert_eq!(keys, s.keys(".cast.zst"));
    }
}

/// Single-quote for `sh -c`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `sealcast verify MIRROR …` on a pseudo-terminal (`script`, 200 columns) shows the
/// progress bar with its totals (3 recordings, their bytes); with stderr redirected to a
/// file, the file gets none of it, and stdout is the same report.
#[test]
fn progress_bar_on_a_terminal_only() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("needs `script` (bsdutils; scripts/setup-debian.sh installs it)");
    }
    let s = Setup::new(3);
    let mirror = s.mirror("mirror");
    let total = s.recording_bytes();
    let bytes = format!("{}/{}", HumanBytes(total), HumanBytes(total));
    let args = |c: &mut Command| {
        c.arg("verify")
            .arg(&mirror)
            .args(["--host", "h1", "--trusted"])
            .arg(&s.trust);
    };

    // On a terminal.
    let cmdline = format!(
        "stty cols 200 rows 50; exec {} verify {} --host h1 --trusted {}",
        sh_quote(common::bin().to_str().unwrap()),
        sh_quote(mirror.to_str().unwrap()),
        sh_quote(s.trust.to_str().unwrap()),
    );
    let mut c = Command::new("script");
    for (k, v) in s.env.command().get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.args(["-qec", &cmdline, "/dev/null"])
        .current_dir(s.env.dir.path());
    let o = run(&mut c);
    let tty = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{tty}");
    assert!(
        tty.contains("3 recordings OK"),
        "report on the terminal: {tty}"
    );
    assert!(tty.contains("verify ["), "no progress bar: {tty:?}");
    assert!(tty.contains("3/3 recordings"), "no final count: {tty:?}");
    assert!(tty.contains(&bytes), "no {bytes}: {tty:?}");

    // Redirected: stderr to a file, stdout to a pipe.
    let errf = s.env.path("stderr.txt");
    let mut c = s.env.command();
    args(&mut c);
    let o = c
        .stdin(Stdio::null())
        .stderr(fs::File::create(&errf).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("3 recordings OK"), "{stdout}");
    let err = fs::read_to_string(&errf).unwrap();
    // The one line a mirror run always writes: a mirror has no store clock.
    let err = err
        .strip_prefix(&format!(
            "sealcast verify: {} is a mirror: it has no store clock, so signing keys' \
             valid-after/valid-before are checked against the signed times only \
             (MANIFEST.md §5)\n",
            mirror.display()
        ))
        .unwrap_or_else(|| panic!("no mirror note first in {err:?}"));
    assert!(
        !err.contains("recordings") && !err.contains("verify [") && !err.contains('\x1b'),
        "progress in a redirected stderr: {err:?}"
    );
    assert!(err.is_empty(), "{err:?}");
}
