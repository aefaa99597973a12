//! `sealcast verify` through the real binary: the tamper matrix (SPEC §7), each case with its
//! status in `--json`, the divergence where one is known, and the exit code; directories,
//! unreadable files, trust-file usage errors and malformed inputs.

#[path = "support/player.rs"]
mod support;

use std::path::{Path, PathBuf};

use sealcast_format::{skippable_frame, FrameKind};
use sealcast_signer::{Sealer, SigningKey};
use serde_json::Value;
use support::*;

/// A test setup: temp env, the trusted key and its trust file.
struct Setup {
    env: Env,
    trust: PathBuf,
    key_pem: String,
}

impl Setup {
    fn new() -> Setup {
        let env = Env::new();
        let key = SigningKey::generate().unwrap();
        let trust = env.path("allowed_signers");
        std::fs::write(&trust, trust_line(HOST, &key)).unwrap();
        Setup {
            env,
            trust,
            key_pem: key.to_pem(),
        }
    }

    /// The trusted signing key (a fresh handle each call; keys are not Clone).
    fn key(&self) -> SigningKey {
        SigningKey::from_file_bytes(self.key_pem.as_bytes()).unwrap()
    }

    /// The standard recording, closed, signed by the trusted key: (bytes, receipt).
    fn standard(&self) -> (Vec<u8>, Vec<u8>) {
        standard(self.key(), SESSION)
    }

    /// Write a recording under `rec/`.
    fn write(&self, name: &str, bytes: &[u8], receipt: Option<&[u8]>) -> PathBuf {
        write_recording(&self.env.path("rec"), name, bytes, receipt)
    }

    /// `verify --json --trusted T <paths>` (+ extra flags first).
    fn verify(&self, flags: &[&str], paths: &[&Path]) -> Run {
        let mut args = vec![
            "verify",
            "--json",
            "--trusted",
            self.trust.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        let ps: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        args.extend(ps.iter().map(String::as_str));
        self.env.run(&args)
    }

    /// Verify one file and return its JSON object (asserting the summary agrees).
    fn verify_one(&self, path: &Path) -> (Value, Run) {
        let run = self.verify(&[], &[path]);
        let lines = run.json_lines();
        assert_eq!(lines.len(), 2, "{}", run.stdout_str());
        let summary = &lines[1]["summary"];
        assert_eq!(summary["files"], 1);
        assert_eq!(summary["exit_code"], run.code, "{}", run.stdout_str());
        assert_eq!(lines[0]["path"], path.display().to_string());
        (lines[0].clone(), run)
    }
}

fn status(v: &Value) -> &str {
    v["status"].as_str().unwrap()
}

/// Assert status and exit code; return the JSON object for more checks.
fn expect(s: &Setup, path: &Path, want: &str, code: i32) -> Value {
    let (v, run) = s.verify_one(path);
    assert_eq!(status(&v), want, "{v:#}\nstderr: {}", run.stderr);
    assert_eq!(run.code, code, "{v:#}");
    if want != "OK" {
        assert!(
            !v["reason"].as_str().unwrap().is_empty(),
            "a failure needs a reason: {v:#}"
        );
    }
    v
}

fn divergence(v: &Value) -> (u64, u64) {
    let d = &v["divergence"];
    assert!(d.is_object(), "no divergence in {v:#}");
    (d["line"].as_u64().unwrap(), d["offset"].as_u64().unwrap())
}

fn reason(v: &Value) -> &str {
    v["reason"].as_str().unwrap()
}

#[test]
fn untouched_recording_is_ok_in_json_and_human_output() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let p = s.write("a.cast.zst", &bytes, Some(&note));
    let v = expect(&s, &p, "OK", 0);
    assert_eq!(v["verified_lines"], 10);
    assert_eq!(v["checkpoints"], 4);
    assert_eq!(v["sealed"], true);
    assert_eq!(v["user"], "alice");
    assert_eq!(v["host"], "bastion-1");
    assert_eq!(v["session"], SESSION);
    assert_eq!(v["signer"], HOST);
    assert_eq!(v["exit_class"], 0);
    assert_eq!(v["key_id"], s.key().id().to_string());

    let run = s.env.run(&[
        "verify",
        "--trusted",
        s.trust.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.stdout_str();
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("OK "), "{out}");
    for part in [
        p.to_str().unwrap(),
        "10 lines",
        "4 checkpoints",
        "sealed",
        &format!("key {}", &s.key().id().to_string()[..16]),
        "signer bastion-1",
        "user alice",
        "host bastion-1",
    ] {
        assert!(first.contains(part), "{part:?} missing in {first}");
    }
    assert_eq!(out.lines().last().unwrap(), "summary: 1 file: 1 OK");
}

#[test]
fn content_change_in_an_event_is_modified_at_that_line() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let fs = frames(&bytes);
    // Line 6 is the second line of data frame 4 (D2, lines 5–7). Nothing local points at it,
    // so the divergence is the start of the region checkpoint 2 covers (SPEC §7).
    let (frame, idx) = locate_line(&bytes, 6);
    assert_eq!((frame, idx), (4, 1));
    let bad = edit_line(&bytes, 6, |l| replace_bytes(l, b"second", b"sEcond"));
    let p = s.write("flip.cast.zst", &bad, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert_eq!(divergence(&v), (5, fs[4].start as u64), "{v:#}");
    assert_eq!(v["verified_lines"], 5);
    assert_eq!(v["checkpoints"], 2);

    // A change in the first line of a region is pinned to that line exactly.
    let bad = edit_line(&bytes, 1, |l| replace_bytes(l, b"hello", b"hellO"));
    let p = s.write("flip1.cast.zst", &bad, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert_eq!(divergence(&v), (1, fs[2].start as u64), "{v:#}");

    // Human output names line and offset once.
    let run = s.env.run(&[
        "verify",
        "--trusted",
        s.trust.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1);
    let first = run.stdout_str().lines().next().unwrap().to_string();
    let want = format!(
        "MODIFIED      {}: line 1, offset {}: ",
        p.display(),
        fs[2].start
    );
    assert!(first.starts_with(&want), "{first}");
}

#[test]
fn deleted_swapped_and_duplicated_lines_are_modified() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let d2 = frames(&bytes)[4].start as u64;

    let deleted = edit_frame(&bytes, 4, |ls| {
        ls.remove(2);
    });
    let p = s.write("del.cast.zst", &deleted, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert_eq!(divergence(&v), (5, d2), "{v:#}");
    assert!(
        reason(&v).contains("2 lines read where 3 were signed"),
        "{v:#}"
    );

    let swapped = edit_frame(&bytes, 4, |ls| ls.swap(1, 2));
    let p = s.write("swap.cast.zst", &swapped, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert_eq!(divergence(&v), (5, d2), "{v:#}");

    let duplicated = edit_frame(&bytes, 4, |ls| {
        let l = ls[1].clone();
        ls.insert(2, l);
    });
    let p = s.write("dup.cast.zst", &duplicated, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert_eq!(divergence(&v), (7, d2), "{v:#}");
    assert!(reason(&v).contains("line 7 duplicates line 6"), "{v:#}");
}

#[test]
fn json_equivalent_rewrites_are_modified_naming_the_line() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let fs = frames(&bytes);
    // Line 2 is `[0.100000, "o", "A line\r\n"]`, inside region 1 (lines 1–4).
    for (name, from, to) in [
        ("escape", &b"\"A line"[..], &b"\"\\u0041 line"[..]),
        ("number", &b"[0.100000,"[..], &b"[0.1,"[..]),
        ("spacing", &b", \"o\", "[..], &b",\"o\","[..]),
    ] {
        let bad = edit_line(&bytes, 2, |l| replace_bytes(l, from, to));
        let p = s.write(&format!("{name}.cast.zst"), &bad, Some(&note));
        let v = expect(&s, &p, "MODIFIED", 1);
        assert_eq!(divergence(&v), (2, fs[2].start as u64), "{name}: {v:#}");
        assert!(
            reason(&v).contains("line 2 is not in the writer's canonical form"),
            "{name}: {v:#}"
        );
    }
}

#[test]
fn header_change_is_modified_at_line_0() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let bad = edit_line(&bytes, 0, |l| {
        replace_bytes(l, b"\"user\":\"alice\"", b"\"user\":\"mallory\"")
    });
    let p = s.write("hdr.cast.zst", &bad, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert_eq!(divergence(&v), (0, 0), "{v:#}");
    assert_eq!(v["verified_lines"], 0);
}

/// SPEC §7 precedence: damage in a data frame that a checkpoint frame follows is MODIFIED,
/// whichever frame it is in (the header's included).
#[test]
fn flipped_compressed_byte_is_modified() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let fs = frames(&bytes);
    for (i, f) in fs.iter().enumerate() {
        if f.kind != FrameKind::Data {
            continue;
        }
        // Inside the block data, and in the content checksum (last 4 bytes).
        for at in [f.start + (f.end - f.start) / 2, f.end - 2] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            let p = s.write(&format!("flip-{i}-{at}.cast.zst"), &bad, Some(&note));
            let (v, run) = s.verify_one(&p);
            assert_eq!(status(&v), "MODIFIED", "frame {i} byte {at}: {v:#}");
            assert_eq!(run.code, 1, "{v:#}");
        }
    }
}

#[test]
fn cut_at_an_earlier_checkpoint_is_truncated_with_receipt_unclosed_without() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let fs = frames(&bytes);
    // Cut right after checkpoint 1 (frame index 3).
    assert_eq!(fs[3].kind, FrameKind::Checkpoint);
    let cut = &bytes[..fs[3].end];
    let p = s.write("cut.cast.zst", cut, Some(&note));
    let v = expect(&s, &p, "TRUNCATED", 1);
    assert_eq!(v["verified_lines"], 5);
    let seal = format!("seal receipt {}.seal covers 10 lines", p.display());
    assert!(reason(&v).contains(&seal), "{v:#}");

    let p = s.write("cut-noseal.cast.zst", cut, None);
    let v = expect(&s, &p, "UNCLOSED", 2);
    assert_eq!(v["verified_lines"], 5);
    let run = s.verify(&["--strict"], &[&p]);
    assert_eq!(run.code, 1, "{}", run.stdout_str());
    assert_eq!(run.json_lines()[1]["summary"]["exit_code"], 1);
}

#[test]
fn checkpoint_by_an_unknown_key_is_untrusted() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let fs = frames(&bytes);
    // A note for the same session, chaining the same lines, signed by another key,
    // inserted right after checkpoint 1.
    let mut forger = Sealer::new(SigningKey::generate().unwrap(), "bastion-1", SESSION);
    for ls in frame_lines(&bytes)[..3].iter().flatten() {
        for l in ls {
            forger.line(l);
        }
    }
    let forged = forger.checkpoint(1_763_700_011_000_000, false);
    let mut bad = bytes[..fs[3].end].to_vec();
    bad.extend_from_slice(&skippable_frame(&forged));
    bad.extend_from_slice(&bytes[fs[3].end..]);
    let p = s.write("forged.cast.zst", &bad, Some(&note));
    let v = expect(&s, &p, "UNTRUSTED_KEY", 1);
    assert!(reason(&v).contains("untrusted key"), "{v:#}");

    // Appended after the final checkpoint: any frame there is MODIFIED, before its key is
    // looked at (SPEC §7 precedence: the first problem in file order).
    let mut appended = bytes.clone();
    appended.extend_from_slice(&skippable_frame(&forged));
    let p = s.write("appended.cast.zst", &appended, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert!(reason(&v).contains("after the final checkpoint"), "{v:#}");
    assert_eq!(divergence(&v), (10, bytes.len() as u64), "{v:#}");
}

#[test]
fn resigned_checkpoint_by_trusted_key_with_bad_signature() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let fs = frames(&bytes);
    let mut cp = bytes[fs[3].start + 8..fs[3].end].to_vec();
    replace_bytes(&mut cp, b"time 17", b"time 18");
    let mut bad = bytes[..fs[3].start].to_vec();
    bad.extend_from_slice(&skippable_frame(&cp));
    bad.extend_from_slice(&bytes[fs[3].end..]);
    let p = s.write("badsig.cast.zst", &bad, Some(&note));
    expect(&s, &p, "BAD_SIGNATURE", 1);
}

#[test]
fn frames_spliced_from_another_session_are_modified() {
    let s = Setup::new();
    let (a, note) = s.standard();
    let (b, _) = standard(s.key(), "fedcba9876543210fedcba9876543210");
    let fa = frames(&a);
    let fb = frames(&b);
    // Region 2 (D2 + C2) of session B in place of A's.
    let mut spliced = a[..fa[4].start].to_vec();
    spliced.extend_from_slice(&b[fb[4].start..fb[5].end]);
    spliced.extend_from_slice(&a[fa[5].end..]);
    let p = s.write("splice.cast.zst", &spliced, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert!(
        reason(&v).contains("fedcba9876543210fedcba9876543210"),
        "{v:#}"
    );
}

#[test]
fn wrong_trusted_key_is_untrusted() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let p = s.write("a.cast.zst", &bytes, Some(&note));
    let other = s.env.path("other_signers");
    std::fs::write(
        &other,
        trust_line("someone-else", &SigningKey::generate().unwrap()),
    )
    .unwrap();
    let run = s.env.run(&[
        "verify",
        "--json",
        "--trusted",
        other.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1);
    let v = &run.json_lines()[0];
    assert_eq!(status(v), "UNTRUSTED_KEY", "{v:#}");
}

/// Two bastions' keys in one trust file, each for its own host (the normal fleet setup):
/// bastion-2's key writing a recording that claims host bastion-1 is `WRONG_SIGNER`, exit 1,
/// in JSON and human output, and the reason names the key, its principals and the host. A
/// `*` line (any host) or a pattern covering the host lets it sign; a negated pattern takes
/// the host out again.
#[test]
fn a_key_signs_only_for_the_hosts_its_principals_match() {
    let s = Setup::new();
    let k2_pem = SigningKey::generate().unwrap().to_pem();
    let k2 = || SigningKey::from_file_bytes(k2_pem.as_bytes()).unwrap();
    let (forged, note) = standard(k2(), SESSION);
    let p = s.write("forged.cast.zst", &forged, Some(&note));
    let trust_k2 = |principals: &str| {
        let text = trust_line(HOST, &s.key()) + &trust_line(principals, &k2());
        std::fs::write(&s.trust, text).unwrap();
    };

    trust_k2("bastion-2");
    let v = expect(&s, &p, "WRONG_SIGNER", 1);
    for part in [
        k2().id().to_string(),
        "\"bastion-2\" (line 2)".to_string(),
        "not host \"bastion-1\"".to_string(),
    ] {
        assert!(reason(&v).contains(&part), "{part:?} missing in {v:#}");
    }
    assert_eq!(v["verified_lines"], 0);
    let run = s.env.run(&[
        "verify",
        "--trusted",
        s.trust.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1);
    let out = run.stdout_str();
    assert!(out.starts_with("WRONG_SIGNER  "), "{out}");
    assert_eq!(
        out.lines().last().unwrap(),
        "summary: 1 file: 1 WRONG_SIGNER"
    );

    for (principals, want, code) in [
        ("*", "OK", 0),
        ("bastion-*", "OK", 0),
        ("bastion-2,bastion-1", "OK", 0),
        ("bastion-*,!bastion-1", "WRONG_SIGNER", 1),
        ("!bastion-2", "WRONG_SIGNER", 1),
        ("bastion-?", "OK", 0),
        ("Bastion-1", "WRONG_SIGNER", 1),
    ] {
        trust_k2(principals);
        let v = expect(&s, &p, want, code);
        if want == "OK" {
            assert_eq!(v["signer"], principals, "{v:#}");
        }
    }
}

/// The header's `key_id` names the key that signs the file (SPEC §2.1): checkpoints by
/// another key are `WRONG_SIGNER` even when that key is trusted for the host — all of them,
/// only the later ones (one file, two keys), or only the seal receipt.
#[test]
fn checkpoints_must_come_from_the_key_the_header_names() {
    let s = Setup::new();
    let k2_pem = SigningKey::generate().unwrap().to_pem();
    let k2 = || SigningKey::from_file_bytes(k2_pem.as_bytes()).unwrap();
    std::fs::write(
        &s.trust,
        trust_line(HOST, &s.key()) + &trust_line(HOST, &k2()),
    )
    .unwrap();

    // The header names bastion-1's second key; the first key signed every checkpoint.
    let (by_k2, _) = standard(k2(), SESSION);
    let p = s.write("header.cast.zst", &resign(&by_k2, s.key(), 0), None);
    let v = expect(&s, &p, "WRONG_SIGNER", 1);
    assert!(
        reason(&v).contains(&format!(
            "checkpoint 0 is signed by key {}, but the header names key \"{}\"",
            s.key().id(),
            k2().id()
        )),
        "{v:#}"
    );

    // Checkpoints 0 and 1 by the header's key, 2 and the final one by the other.
    let (bytes, _) = s.standard();
    let p = s.write("mixed.cast.zst", &resign(&bytes, k2(), 2), None);
    let v = expect(&s, &p, "WRONG_SIGNER", 1);
    assert_eq!(v["checkpoints"], 2, "{v:#}");
    assert_eq!(v["verified_lines"], 5, "{v:#}");
    assert!(
        reason(&v).contains("checkpoint 2 is signed by key"),
        "{v:#}"
    );

    // The recording is the header key's own; its seal receipt is the other key's note.
    let other_final = resign(&bytes, k2(), 3);
    let last = frames(&other_final).pop().unwrap();
    let receipt = other_final[last.start + 8..last.end].to_vec(); // after magic and length
    let p = s.write("receipt.cast.zst", &bytes, Some(&receipt));
    let v = expect(&s, &p, "WRONG_SIGNER", 1);
    assert!(
        reason(&v).starts_with("seal receipt ") && reason(&v).contains(": signed by key"),
        "{v:#}"
    );
}

/// What a lone file can prove about a key's validity window (SPEC §6): the checkpoint times
/// are the signer's own, so a key that has expired since still verifies a file whose
/// checkpoints claim an earlier time — only a bucket's stored time can tell (MANIFEST.md
/// §5). A time outside the window is `UNTRUSTED_KEY`.
#[test]
fn a_key_window_bounds_only_the_signed_time_in_a_lone_file() {
    let s = Setup::new();
    let (bytes, note) = s.standard(); // checkpoints signed at 2025-11-21T04:40Z and after
    let p = s.write("a.cast.zst", &bytes, Some(&note));
    let windowed = |opts: &str| {
        let line = trust_line(HOST, &s.key()).replacen(' ', &format!(" {opts} "), 1);
        std::fs::write(&s.trust, line).unwrap();
    };
    // Expired a day later, verified today: the file cannot show when it was really signed.
    windowed("valid-before=\"20251122\"");
    expect(&s, &p, "OK", 0);
    windowed("valid-before=\"20251121\"");
    let v = expect(&s, &p, "UNTRUSTED_KEY", 1);
    assert!(
        reason(&v).contains("signed time 2025-11-21T04:40:00Z is outside allowed_signers line 1: valid-before 2025-11-21T00:00:00Z"),
        "{v:#}"
    );
}

#[test]
fn crash_tails_are_unsealed() {
    let s = Setup::new();
    let (bytes, _) = s.standard();
    let fs = frames(&bytes);
    // Drop the final checkpoint and the end of the last data frame.
    let last = &fs[fs.len() - 2];
    assert_eq!(last.kind, FrameKind::Data);
    let cut = &bytes[..last.end - 6];
    let p = s.write("tail.cast.zst", cut, None);
    let v = expect(&s, &p, "UNSEALED_TAIL", 2);
    assert_eq!(v["verified_lines"], 8);
    assert_eq!(v["tail"]["offset"], last.start);
    let run = s.verify(&["--strict"], &[&p]);
    assert_eq!(run.code, 1);

    // A real crash: the writer dies after a flush, with an open frame.
    let mut r = Rec::start(s.key(), SESSION);
    standard_events(&mut r);
    r.at(24_500_000)
        .output(b"typed before the crash\r\n")
        .unwrap();
    r.at(25_000_000).tick().unwrap(); // flush, no checkpoint (last one at 23 s)
    let crashed = r.crash();
    let p = s.write("crash.cast.zst", &crashed, None);
    let v = expect(&s, &p, "UNSEALED_TAIL", 2);
    assert_eq!(v["verified_lines"], 8);
    assert_eq!(v["tail"]["lines"], 2, "{v:#}");
}

#[test]
fn directory_walk_reports_every_file_and_worst_exit() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let dir = s.env.path("archive");
    write_recording(&dir, "a-ok.cast.zst", &bytes, Some(&note));
    let bad = edit_line(&bytes, 8, |l| replace_bytes(l, b"last", b"lost"));
    write_recording(&dir.join("sub"), "b-bad.cast.zst", &bad, Some(&note));
    std::fs::write(dir.join("notes.txt"), "not a recording").unwrap();
    let run = s.verify(&[], &[&dir]);
    assert_eq!(run.code, 1, "{}", run.stdout_str());
    let lines = run.json_lines();
    assert_eq!(lines.len(), 3, "{}", run.stdout_str());
    assert!(lines[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("a-ok.cast.zst"));
    assert_eq!(status(&lines[0]), "OK");
    assert!(lines[1]["path"]
        .as_str()
        .unwrap()
        .ends_with("sub/b-bad.cast.zst"));
    assert_eq!(status(&lines[1]), "MODIFIED");
    let sum = &lines[2]["summary"];
    assert_eq!(sum["files"], 2);
    assert_eq!(sum["ok"], 1);
    assert_eq!(sum["by_status"]["MODIFIED"], 1);
    assert_eq!(sum["exit_code"], 1);

    let run = s.env.run(&[
        "verify",
        "--trusted",
        s.trust.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout_str().lines().last().unwrap(),
        "summary: 2 files: 1 OK, 1 MODIFIED"
    );

    // A directory without recordings is a usage error.
    let empty = s.env.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = s.verify(&[], &[&empty]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("no recordings"), "{}", run.stderr);
}

#[test]
fn default_trust_file_and_archive() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    // No trust file and no archive yet: usage error naming the default trust file.
    let run = s.env.run(&["verify"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("allowed_signers"), "{}", run.stderr);

    let data = s.env.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&s.trust, data.join("allowed_signers")).unwrap();
    let run = s.env.run(&["verify"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("archive"), "{}", run.stderr);

    write_recording(
        &data.join("archive"),
        &format!("{SESSION}.cast.zst"),
        &bytes,
        Some(&note),
    );
    let run = s.env.run(&["verify", "--json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout_str(), run.stderr);
    assert_eq!(status(&run.json_lines()[0]), "OK");
}

#[test]
fn unreadable_files_are_class_4_and_the_run_goes_on() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let dir = s.env.path("mixed");
    write_recording(&dir, "a.cast.zst", &bytes, Some(&note));
    // A directory named like a recording.
    std::fs::create_dir_all(dir.join("b.cast.zst")).unwrap();
    let run = s.verify(&[], &[&dir]);
    assert_eq!(run.code, 4, "{}", run.stdout_str());
    let lines = run.json_lines();
    assert_eq!(status(&lines[0]), "OK");
    assert_eq!(status(&lines[1]), "UNREADABLE");
    assert!(reason(&lines[1]).contains("directory"), "{}", lines[1]);
    assert_eq!(lines[1]["exit_class"], 4);

    // A FIFO given explicitly: reported, never blocked on.
    let fifo = s.env.path("pipe.cast.zst");
    let ok = std::process::Command::new("mkfifo").arg(&fifo).status();
    if ok.is_ok_and(|st| st.success()) {
        let (v, run) = s.verify_one(&fifo);
        assert_eq!(status(&v), "UNREADABLE", "{v:#}");
        assert_eq!(run.code, 4);
    }

    // A missing file.
    let (v, run) = s.verify_one(&s.env.path("missing.cast.zst"));
    assert_eq!(status(&v), "UNREADABLE", "{v:#}");
    assert!(reason(&v).contains("No such file"), "{v:#}");
    assert_eq!(run.code, 4);

    // Permissions (meaningless as root).
    let locked = s.write("locked.cast.zst", &bytes, Some(&note));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_ok() {
        eprintln!("skipping the chmod 000 case: running as root");
    } else {
        let (v, run) = s.verify_one(&locked);
        assert_eq!(status(&v), "UNREADABLE", "{v:#}");
        assert!(reason(&v).contains("ermission denied"), "{v:#}");
        assert_eq!(run.code, 4);
    }

    // Class 1 wins over class 4.
    let bad = edit_line(&bytes, 8, |l| replace_bytes(l, b"last", b"lost"));
    let badp = s.write("bad.cast.zst", &bad, Some(&note));
    let run = s.verify(&[], &[&badp, &s.env.path("missing.cast.zst")]);
    assert_eq!(run.code, 1);
}

#[test]
fn trust_file_problems_are_usage_errors() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let p = s.write("a.cast.zst", &bytes, Some(&note));
    let ps = p.to_str().unwrap();

    let missing = s.env.path("nope");
    let run = s
        .env
        .run(&["verify", "--trusted", missing.to_str().unwrap(), ps]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains(missing.to_str().unwrap()),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    let empty = s.env.path("empty_signers");
    std::fs::write(&empty, "# nobody\n").unwrap();
    let run = s
        .env
        .run(&["verify", "--trusted", empty.to_str().unwrap(), ps]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("no ssh-ed25519 keys"), "{}", run.stderr);

    let garbage = s.env.path("bad_signers");
    std::fs::write(&garbage, "# ok\n\nonlyoneword\n").unwrap();
    let run = s
        .env
        .run(&["verify", "--trusted", garbage.to_str().unwrap(), ps]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("bad_signers: line 3"), "{}", run.stderr);
}

#[test]
fn malformed_inputs_fail_cleanly_with_offset_and_reason() {
    let s = Setup::new();
    let (bytes, _) = s.standard();
    let fs = frames(&bytes);
    let plain = decompress(&bytes[fs[0].start..fs[0].end]);
    // (name, file bytes, text the reason must contain); all FORMAT: none holds a signed
    // checkpoint.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty file"),
        (
            "garbage",
            b"\x00\x01garbage bytes, not zstd at all".to_vec(),
            "offset 0: not a zstd frame",
        ),
        ("plain", plain, "uncompressed asciicast"),
        (
            "halfframe",
            bytes[..fs[0].end / 2].to_vec(),
            "offset 0: frame truncated",
        ),
        (
            "random-zstd",
            compress(b"this is zstd but not asciicast\n"),
            "line 0 (header)",
        ),
    ];
    for (name, data, needle) in cases {
        let p = s.write(&format!("{name}.cast.zst"), &data, None);
        let v = expect(&s, &p, "FORMAT", 1);
        let r = reason(&v);
        assert!(r.contains(needle), "{name}: {r}");
        // Human output: one line naming the file and the reason.
        let run = s.env.run(&[
            "verify",
            "--trusted",
            s.trust.to_str().unwrap(),
            p.to_str().unwrap(),
        ]);
        let first = run.stdout_str().lines().next().unwrap().to_string();
        assert!(
            first.contains(p.to_str().unwrap()) && first.contains(r),
            "{first}"
        );
    }
}

/// Damage in the *first* frame's header (e.g. bit 0 of byte 4, the Frame_Header_Descriptor,
/// which makes zstd read a dictionary id and mis-size the frame) with four valid checkpoint
/// frames after it is a modification of sealed data (a crash only damages the end):
/// MODIFIED, exit 1, never a crash tail.
#[test]
fn damaged_first_frame_header_with_checkpoints_after_is_modified() {
    let s = Setup::new();
    let (bytes, _) = s.standard();
    let mut bad = bytes.clone();
    bad[4] ^= 0x01;
    let p = s.write("fhd.cast.zst", &bad, None);
    expect(&s, &p, "MODIFIED", 1);
    // Same for every single-bit flip in the first frame's header bytes, unless the flip
    // leaves what the frame decodes to unchanged (then OK is the truth).
    let trust = sealcast_signer::TrustStore::single(HOST, s.key().public());
    for at in 4..=8 {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[at] ^= 1 << bit;
            let r = sealcast_reader::verify_bytes(&bad, None, &trust);
            let st = r.status;
            if st == sealcast_reader::Status::Ok {
                let f = &frames(&bad)[0];
                assert_eq!(
                    decompress(&bad[f.start..f.end]),
                    decompress(&bytes[..frames(&bytes)[0].end])
                );
            } else {
                assert_eq!(
                    st,
                    sealcast_reader::Status::Modified,
                    "byte {at} bit {bit}: {}",
                    r.reason
                );
            }
        }
    }
}

/// A file with a genuine header and events but no checkpoint at all is not a crash:
/// sealcast signs checkpoint 0 before the session starts (SPEC §10). FORMAT, exit 1 — it
/// was UNSEALED_TAIL, exit 2. Crash files (checkpoint 0 present) keep their class 2.
#[test]
fn no_checkpoint_at_all_is_format_not_a_crash() {
    let s = Setup::new();
    let (bytes, _) = s.standard();
    let mut unsigned = Vec::new();
    for f in frames(&bytes) {
        if f.kind == FrameKind::Data {
            unsigned.extend_from_slice(&bytes[f.start..f.end]);
        }
    }
    let p = s.write("unsigned.cast.zst", &unsigned, None);
    let v = expect(&s, &p, "FORMAT", 1);
    assert!(reason(&v).contains("no signed checkpoint"), "{v:#}");
    let run = s.verify(&["--strict"], &[&p]);
    assert_eq!(run.code, 1);
    // The same lines with the last data frame cut: still no checkpoint, still FORMAT.
    let fs = frames(&unsigned);
    let cut = &unsigned[..fs.last().unwrap().end - 5];
    let p = s.write("unsigned-cut.cast.zst", cut, None);
    expect(&s, &p, "FORMAT", 1);
    // With checkpoint 0 and nothing else signed, a crash: class 2.
    let fs = frames(&bytes);
    let mut crash = bytes[..fs[1].end].to_vec();
    crash.extend_from_slice(&bytes[fs[2].start..fs[2].end - 3]);
    let p = s.write("crash0.cast.zst", &crash, None);
    let v = expect(&s, &p, "UNSEALED_TAIL", 2);
    assert_eq!(v["verified_lines"], 1);
    let p = s.write("unclosed0.cast.zst", &bytes[..fs[1].end], None);
    expect(&s, &p, "UNCLOSED", 2);
}

/// A seal receipt is only ever the final checkpoint note of its session (SPEC §5). A
/// non-final note, one that does not parse, one for another session or host, one longer
/// than any note, or something that is not a regular file at all: MODIFIED, with a reason
/// naming the receipt. A non-final receipt used to be accepted (OK), another host's too.
#[test]
fn receipts_that_are_not_this_sessions_final_note_are_modified() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let fs = frames(&bytes);
    let cp1 = bytes[fs[3].start + 8..fs[3].end].to_vec();
    let (_, other_session) = standard(s.key(), "fedcba9876543210fedcba9876543210");
    let other_host = {
        let mut r = Rec::with_header(s.key(), &{
            let mut h = header(SESSION, "alice", &s.key());
            h.sealcast.as_mut().unwrap().host = "bastion-2".into();
            h
        });
        standard_events(&mut r);
        r.finish().1
    };
    let mut long = note.clone();
    long.resize(5000, b'x');
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("non-final", cp1, "is not final"),
        (
            "garbage",
            b"not a checkpoint note\n".to_vec(),
            "malformed checkpoint",
        ),
        ("empty", Vec::new(), "malformed checkpoint"),
        (
            "other-session",
            other_session,
            "session fedcba9876543210fedcba9876543210",
        ),
        ("other-host", other_host, "for host bastion-2"),
        ("long", long, "more than 4096 bytes"),
    ];
    for (name, receipt, needle) in cases {
        let p = s.env.path("rec").join(format!("{name}.cast.zst"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &bytes).unwrap();
        std::fs::write(format!("{}.seal", p.display()), &receipt).unwrap();
        let v = expect(&s, &p, "MODIFIED", 1);
        let r = reason(&v);
        assert!(
            r.contains(&format!("seal receipt {}.seal", p.display())),
            "{name}: {r}"
        );
        assert!(r.contains(needle), "{name}: {r}");
    }
    // A directory where the receipt should be.
    let p = s.write("dir.cast.zst", &bytes, None);
    std::fs::create_dir(format!("{}.seal", p.display())).unwrap();
    let v = expect(&s, &p, "MODIFIED", 1);
    assert!(
        reason(&v).contains("is a directory, not a regular file"),
        "{v:#}"
    );
    // The real receipt is fine.
    let p = s.write("fine.cast.zst", &bytes, Some(&note));
    expect(&s, &p, "OK", 0);
}

/// A FIFO planted as the receipt (or as a recording) used to block `verify` forever in
/// open(2). Receipts and recordings are opened only as regular files: the run finishes, the
/// receipt is MODIFIED (tampering evidence), a FIFO recording UNREADABLE.
#[test]
fn fifos_never_block_verify() {
    let s = Setup::new();
    let (bytes, _) = s.standard();
    let dir = s.env.path("fifo");
    let p = write_recording(&dir, "a.cast.zst", &bytes, None);
    let seal = format!("{}.seal", p.display());
    let mkfifo = |path: &str| {
        let st = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "mkfifo {path}");
    };
    mkfifo(&seal);
    let trust = s.trust.to_str().unwrap();
    let run = s.env.run_within(
        30,
        &["verify", "--json", "--trusted", trust, p.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stdout_str());
    let v = &run.json_lines()[0];
    assert_eq!(status(v), "MODIFIED", "{v:#}");
    assert!(
        reason(v).contains(&format!("seal receipt {seal} is a FIFO")),
        "{v:#}"
    );
    // `info` reads the receipt too.
    let run = s.env.run_within(
        30,
        &["info", "--json", "--trusted", trust, p.to_str().unwrap()],
    );
    let info: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(info["verification"]["status"], "MODIFIED", "{info:#}");
    // A FIFO named like a recording in a directory walk, and given explicitly.
    let fifo_rec = dir.join("b.cast.zst");
    mkfifo(fifo_rec.to_str().unwrap());
    let run = s.env.run_within(
        30,
        &[
            "verify",
            "--json",
            "--trusted",
            trust,
            dir.to_str().unwrap(),
        ],
    );
    let lines = run.json_lines();
    assert_eq!(status(&lines[1]), "UNREADABLE", "{}", run.stdout_str());
    assert!(
        reason(&lines[1]).contains("a FIFO, not a regular file"),
        "{}",
        lines[1]
    );
    assert_eq!(run.code, 1);
    let run = s.env.run_within(
        30,
        &[
            "verify",
            "--json",
            "--trusted",
            trust,
            fifo_rec.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 4);
    let run = s.env.run_within(30, &["info", fifo_rec.to_str().unwrap()]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("a FIFO, not a regular file"),
        "{}",
        run.stderr
    );
}

/// A recording named `<32 hex>.cast.zst` claims that session id; the header must agree
/// (another session's file copied over it verified OK). Other names claim nothing.
#[test]
fn file_name_must_name_the_headers_session() {
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let other = "fedcba9876543210fedcba9876543210";
    let p = s.write(&format!("{other}.cast.zst"), &bytes, None);
    let v = expect(&s, &p, "MODIFIED", 1);
    assert_eq!(
        reason(&v),
        format!(
            "file name {other}.cast.zst says session {other}, the header says session {SESSION}"
        )
    );
    // With the receipt that belongs to the file's content, still MODIFIED: the name is
    // checked first (SPEC §7 precedence).
    let p = s.write(&format!("{}.cast.zst", "a".repeat(32)), &bytes, Some(&note));
    let v = expect(&s, &p, "MODIFIED", 1);
    assert!(reason(&v).starts_with("file name "), "{v:#}");
    // Upper-case hex is a claim too, and not the writer's form.
    let p = s.write(
        &format!("{}.cast.zst", SESSION.to_uppercase()),
        &bytes,
        Some(&note),
    );
    expect(&s, &p, "MODIFIED", 1);
    // Its own name, and names that claim no session.
    for name in [
        format!("{SESSION}.cast.zst"),
        "renamed.cast.zst".into(),
        format!("{SESSION}x.cast.zst"),
    ] {
        let p = s.write(&name, &bytes, Some(&note));
        expect(&s, &p, "OK", 0);
    }
    // A bad recording under another session's name: its own problem comes first.
    let bad = edit_line(&bytes, 8, |l| replace_bytes(l, b"last", b"lost"));
    let p = s.write(&format!("{other}.cast.zst"), &bad, None);
    let v = expect(&s, &p, "MODIFIED", 1);
    assert!(!reason(&v).starts_with("file name"), "{v:#}");
}

/// `verify … | head -1` exited 0 although a file failed: a closed stdout was turned into
/// success. Now the run stops writing and verifying, and exits with the verdict so far plus
/// class 4 for what it did not verify — never 0. The pipe is real (a 4 KiB pipe buffer, so
/// the run blocks on it, then its reader closes it after the first line).
#[test]
fn a_closed_stdout_never_turns_a_verdict_into_success() {
    use std::io::{BufRead, BufReader};
    use std::os::fd::{FromRawFd, OwnedFd};
    let s = Setup::new();
    let (bytes, note) = s.standard();
    let bad = edit_line(&bytes, 8, |l| replace_bytes(l, b"last", b"lost"));
    let dir = s.env.path("many");
    for i in 0..200 {
        write_recording(&dir, &format!("ok-{i:03}.cast.zst"), &bytes, Some(&note));
    }
    write_recording(&dir, "zz-bad.cast.zst", &bad, Some(&note));
    let trust = s.trust.to_str().unwrap();
    let first_line_then_close = |args: &[&str]| -> (String, i32, String) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors were just created and are owned here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own.
        unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) };
        let child = s
            .env
            .cmd(args)
            .stdout(std::process::Stdio::from(w))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(std::fs::File::from(r));
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        drop(reader); // the reader goes away, as `head -1` does
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            first,
            out.status.code().expect("killed by a signal"),
            stderr,
        )
    };
    let dirs = dir.to_str().unwrap();
    let (first, code, stderr) = first_line_then_close(&["verify", "--trusted", trust, dirs]);
    assert!(first.starts_with("OK "), "{first}");
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("output closed"), "{stderr}");
    assert!(stderr.contains("files not verified"), "{stderr}");
    // The failing file first: its verdict (class 1) is kept.
    std::fs::rename(dir.join("zz-bad.cast.zst"), dir.join("a-bad.cast.zst")).unwrap();
    std::fs::rename(
        dir.join("zz-bad.cast.zst.seal"),
        dir.join("a-bad.cast.zst.seal"),
    )
    .unwrap();
    let (first, code, stderr) =
        first_line_then_close(&["verify", "--json", "--trusted", trust, dirs]);
    assert!(first.contains("\"MODIFIED\""), "{first}");
    assert_eq!(code, 1, "{stderr}");
    // Without the pipe closing, the full verdict.
    let run = s.verify(&[], &[&dir]);
    assert_eq!(run.code, 1);
    assert_eq!(run.json_lines().last().unwrap()["summary"]["files"], 201);
}
