//! `sealcast cat`, `export`, `play` and `info` through the real binary: exact bytes, stock
//! `zstd -dc` equivalence, asciicast v2 and text conversion, crash tails, damaged and
//! malformed inputs (clear one-line errors, never a panic).

#[path = "support/player.rs"]
mod support;

use std::path::{Path, PathBuf};

use sealcast_format::FrameKind;
use sealcast_signer::SigningKey;
use serde_json::Value;
use support::*;

struct Setup {
    env: Env,
    file: PathBuf,
    bytes: Vec<u8>,
    trust: PathBuf,
    key_pem: String,
}

impl Setup {
    /// The standard recording (closed, with receipt) and a trust file for its key.
    fn new() -> Setup {
        let env = Env::new();
        let key = SigningKey::generate().unwrap();
        let key_pem = key.to_pem();
        let trust = env.path("allowed_signers");
        std::fs::write(&trust, trust_line(HOST, &key)).unwrap();
        let (bytes, note) = standard(key, SESSION);
        let file = write_recording(&env.path("rec"), "std.cast.zst", &bytes, Some(&note));
        Setup {
            env,
            file,
            bytes,
            trust,
            key_pem,
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        write_recording(&self.env.path("rec"), name, bytes, None)
    }

    fn run(&self, args: &[&str], file: &Path) -> Run {
        let mut a = args.to_vec();
        a.push(file.to_str().unwrap());
        self.env.run(&a)
    }
}

/// The decompressed stream split into lines (without LF).
fn stream_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    frame_lines(bytes).into_iter().flatten().flatten().collect()
}

#[test]
fn cat_writes_the_exact_output_bytes() {
    let s = Setup::new();
    let run = s.run(&["cat"], &s.file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, STANDARD_OUTPUT);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn export_v3_is_what_stock_zstd_decompresses() {
    let s = Setup::new();
    let run = s.run(&["export", "--format", "asciicast-v3"], &s.file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, zstd_cli_decompress(&s.file));
    // And it is line for line the chained stream.
    let lines: Vec<&[u8]> = run.stdout[..run.stdout.len() - 1]
        .split(|&b| b == b'\n')
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines, stream_lines(&s.bytes));
}

#[test]
fn export_v2_is_json_lines_with_absolute_times() {
    let s = Setup::new();
    let run = s.run(&["export", "-f", "asciicast-v2"], &s.file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.stdout_str();
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(header["width"], 80);
    assert_eq!(header["height"], 24);
    assert_eq!(header["timestamp"], 1_763_700_000);
    assert_eq!(header["env"]["TERM"], "xterm-256color");
    assert_eq!(header["command"], "/bin/sh -c demo");
    assert!(header.get("sealcast").is_none());
    let events: Vec<(String, Value)> = lines
        .map(|l| (l.to_string(), serde_json::from_str(l).unwrap()))
        .collect();
    let summary: Vec<(f64, &str, &str)> = events
        .iter()
        .map(|(_, v)| {
            (
                v[0].as_f64().unwrap(),
                v[1].as_str().unwrap(),
                v[2].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0.1, "o", "hello \x1b[1mworld\x1b[0m\r\n"),
            (0.2, "o", "A line\r\n"),
            (0.4, "o", "bad \u{fffd} utf8\r\n"),
            (11.5, "r", "100x30"),
            (12.0, "o", "second region\r\n"),
            (12.5, "o", "more\r\n"),
            (24.0, "o", "last\r\n"),
            (24.0, "x", "0"),
        ]
    );
    // Six decimals, as the v3 intervals.
    assert!(
        events[3].0.starts_with("[11.500000, \"r\""),
        "{}",
        events[3].0
    );
}

#[test]
fn export_txt_has_no_escape_sequences() {
    let s = Setup::new();
    let run = s.run(&["export", "--format", "txt"], &s.file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains(&0x1b), "{:?}", run.stdout_str());
    assert!(!run.stdout.contains(&b'\r'));
    assert_eq!(
        run.stdout_str(),
        "hello world\nA line\nbad \u{fffd} utf8\nsecond region\nmore\nlast\n"
    );
}

#[test]
fn play_fast_gives_the_same_bytes_as_cat() {
    let s = Setup::new();
    let start = std::time::Instant::now();
    let run = s.run(&["play", "--speed", "1000"], &s.file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, STANDARD_OUTPUT);
    // 24 s of recording at 1000×; generous bound for a loaded machine.
    assert!(start.elapsed().as_secs() < 10);
    // The idle limit shortens the 11 s gap: at 1× with a 0.01 s limit the whole thing
    // takes 8 × 0.01 s.
    let start = std::time::Instant::now();
    let run = s.run(&["play", "--idle-limit", "0.01"], &s.file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, STANDARD_OUTPUT);
    assert!(start.elapsed().as_secs() < 10);

    for bad in [["--speed", "0"], ["--speed", "-2"], ["--idle-limit", "-1"]] {
        let run = s.run(&["play", bad[0], bad[1]], &s.file);
        assert_eq!(run.code, 3, "{bad:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn info_shows_metadata_counts_and_verification() {
    let s = Setup::new();
    let run = s.run(
        &["info", "--json", "--trusted", s.trust.to_str().unwrap()],
        &s.file,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["session"], SESSION);
    assert_eq!(v["user"], "alice");
    assert_eq!(v["host"], "bastion-1");
    assert_eq!(v["start"], "2025-11-21T04:40:00.000000Z");
    assert_eq!(v["term"]["cols"], 80);
    assert_eq!(v["command"], "/bin/sh -c demo");
    assert_eq!(v["recorder"], "sealcast-test");
    assert_eq!(v["duration_us"], 24_000_000);
    assert_eq!(v["events"]["o"], 6);
    assert_eq!(v["events"]["b"], 1);
    assert_eq!(v["events"]["r"], 1);
    assert_eq!(v["events"]["x"], 1);
    assert_eq!(v["exit_status"], "0");
    assert_eq!(v["compressed_bytes"], s.bytes.len());
    assert_eq!(v["decompressed_bytes"], zstd_cli_decompress(&s.file).len());
    assert_eq!(v["lines"], 10);
    assert_eq!(v["data_frames"], 4);
    assert_eq!(v["checkpoint_frames"], 4);
    assert_eq!(v["stream"], "complete");
    assert_eq!(v["verification"]["status"], "OK");
    assert_eq!(v["verification"]["signer"], HOST);

    // Human form.
    let run = s.run(&["info", "--trusted", s.trust.to_str().unwrap()], &s.file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.stdout_str();
    for needle in [
        "session:      0123456789abcdef0123456789abcdef",
        "start:        2025-11-21T04:40:00.000000Z",
        "terminal:     80x24 (xterm-256color)",
        "events:       b 1, o 6, r 1, x 1",
        "exit status:  0",
        "frames:       4 data, 4 checkpoint",
        "verification: OK (sealed; 10 lines, 4 checkpoints; signer bastion-1)",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in\n{out}");
    }

    // No trust file anywhere: still informative, exit 0.
    let run = s.run(&["info"], &s.file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout_str().contains("unverified: no trust file"));

    // The default trust file is used when present.
    let data = s.env.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&s.trust, data.join("allowed_signers")).unwrap();
    let run = s.run(&["info", "--json"], &s.file);
    let v: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["verification"]["status"], "OK");

    // A modified file: info still describes it and shows the verdict.
    let bad = edit_line(&s.bytes, 6, |l| replace_bytes(l, b"second", b"SECOND"));
    let p = s.write("bad.cast.zst", &bad);
    let run = s.run(&["info", "--json"], &p);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["verification"]["status"], "MODIFIED");

    // An explicit trust file that does not exist is a usage error.
    let run = s.run(&["info", "--trusted", "/nonexistent/signers"], &s.file);
    assert_eq!(run.code, 3);
}

#[test]
fn crash_tail_gives_the_prefix_and_exit_2() {
    let s = Setup::new();
    let mut r = Rec::start(SigningKey::generate().unwrap(), SESSION);
    standard_events(&mut r);
    r.at(24_500_000)
        .output(b"after the last checkpoint\r\n")
        .unwrap();
    r.at(25_000_000).tick().unwrap(); // zstd flush, no checkpoint
    let mut crashed = r.crash();
    crashed.extend_from_slice(b"\x28\xb5"); // a torn write of the next frame
    let p = s.write("crash.cast.zst", &crashed);

    let run = s.run(&["cat"], &p);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let mut want = STANDARD_OUTPUT.to_vec();
    want.extend_from_slice(b"after the last checkpoint\r\n");
    assert_eq!(run.stdout, want);
    assert!(run.stderr.contains("warning"), "{}", run.stderr);
    assert!(run.stderr.contains(p.to_str().unwrap()), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    let run = s.run(&["export", "-f", "asciicast-v3"], &p);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let text = run.stdout_str();
    assert!(
        text.ends_with("[0.500000, \"o\", \"after the last checkpoint\\r\\n\"]\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 10);

    for fmt in ["asciicast-v2", "txt"] {
        let run = s.run(&["export", "-f", fmt], &p);
        assert_eq!(run.code, 2, "{fmt}: {}", run.stderr);
        assert!(
            run.stdout_str().contains("after the last checkpoint"),
            "{fmt}"
        );
    }
    let run = s.run(&["play", "-s", "1000"], &p);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, want);

    let run = s.run(&["info", "--json"], &p);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["stream"], "truncated");
    assert_eq!(v["exit_status"], Value::Null);
}

#[test]
fn damage_mid_file_gives_the_prefix_then_exit_1_with_offset() {
    let s = Setup::new();
    let fs = frames(&s.bytes);
    // Garbage instead of data frame D2 (and everything after).
    assert_eq!(fs[4].kind, FrameKind::Data);
    let mut bad = s.bytes[..fs[4].start].to_vec();
    bad.extend_from_slice(b"\x00garbage");
    let p = s.write("damaged.cast.zst", &bad);
    let run = s.run(&["cat"], &p);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        b"hello \x1b[1mworld\x1b[0m\r\nA line\r\nbad \xff utf8\r\n"
    );
    let want = format!("sealcast: {}: offset {}: ", p.display(), fs[4].start);
    assert!(run.stderr.starts_with(&want), "{}", run.stderr);

    // A corrupt block (checksum mismatch) in D2: the lines before it.
    let mut bad = s.bytes.clone();
    bad[fs[4].end - 2] ^= 0x55;
    let p = s.write("corrupt.cast.zst", &bad);
    let run = s.run(&["export", "-f", "asciicast-v3"], &p);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("offset {}: zstd", fs[4].start)),
        "{}",
        run.stderr
    );
}

#[test]
fn malformed_inputs_give_one_clear_line_and_no_panic() {
    let s = Setup::new();
    let fs = frames(&s.bytes);
    let plain = decompress(&s.bytes[fs[0].start..fs[0].end]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty file"),
        (
            "garbage",
            b"\x7fELF not a recording".to_vec(),
            "offset 0: not a zstd frame",
        ),
        ("plain", plain, "offset 0: not a zstd frame"),
        (
            "halfframe",
            s.bytes[..fs[0].end / 2].to_vec(),
            "offset 0: frame truncated",
        ),
        (
            "not-asciicast",
            compress(b"{\"version\":2,\"width\":80,\"height\":24}\n"),
            "line 0 (header): asciicast version 2",
        ),
    ];
    for (name, data, needle) in cases {
        let p = s.write(&format!("{name}.cast.zst"), &data);
        for args in [
            &["cat"][..],
            &["export", "-f", "asciicast-v3"],
            &["export", "-f", "asciicast-v2"],
            &["export", "-f", "txt"],
            &["play", "-s", "1000"],
            &["info"],
            &["info", "--json"],
        ] {
            let run = s.run(args, &p);
            assert_eq!(run.code, 1, "{name} {args:?}: {}", run.stderr);
            assert!(run.stdout.is_empty(), "{name} {args:?}");
            let want = format!("sealcast: {}: {needle}", p.display());
            assert!(
                run.stderr.starts_with(&want),
                "{name} {args:?}: {}",
                run.stderr
            );
            assert_eq!(
                run.stderr.lines().count(),
                1,
                "{name} {args:?}: {}",
                run.stderr
            );
        }
    }
    // The plain-asciicast hint.
    let run = s.run(&["cat"], &s.env.path("rec/plain.cast.zst"));
    assert!(
        run.stderr.contains("uncompressed asciicast"),
        "{}",
        run.stderr
    );

    // A file that does not exist is an I/O error (exit 4).
    let run = s.run(&["cat"], &s.env.path("missing.cast.zst"));
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("missing.cast.zst"), "{}", run.stderr);
}

/// One validation path for events: for the same malformed file (signed as it stands, so
/// verification cannot blame a modification), `cat`, every `export` format, `play`, `info`
/// and `verify` all fail with the same text — `line L, offset O: reason` — and a non-zero
/// exit. `info` and `export -f asciicast-v3` used to exit 0 on a malformed `b` event.
#[test]
fn every_command_reports_the_same_error_for_the_same_line() {
    let s = Setup::new();
    let key = || SigningKey::from_file_bytes(s.key_pem.as_bytes()).unwrap();
    let o = |t: &str| format!("[0.100000, \"o\", \"{t}\"]").into_bytes();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "orphan-b",
            br#"[0.000000, "b", "/w=="]"#.to_vec(),
            "'b' event does not follow an 'o', 'i' or 'e' event",
        ),
        (
            "bad-base64",
            br#"[0.000000, "b", "%%%"]"#.to_vec(),
            "bad base64 in 'b' event",
        ),
        ("not-json", b"not json".to_vec(), "expected ident"),
        (
            "interval",
            br#"[1000000001.000000, "o", "x"]"#.to_vec(),
            "interval 1000000001.0 out of range",
        ),
    ];
    for (name, bad, needle) in cases {
        // Line 1 "a", line 2 an `x` (so the orphan `b` follows no text), line 3 the bad one.
        let lines = vec![o("a"), br#"[0.100000, "x", "0"]"#.to_vec(), bad, o("after")];
        let lines = if name == "orphan-b" {
            lines
        } else {
            let mut l = lines;
            l[1] = o("b");
            l
        };
        let (bytes, note) = signed_frames(key(), SESSION, &[lines]);
        let p = write_recording(
            &s.env.path("m"),
            &format!("{name}.cast.zst"),
            &bytes,
            Some(&note),
        );
        let offset = frames(&bytes)[2].start;
        let want = format!("line 3, offset {offset}: ");
        let trust = s.trust.to_str().unwrap();
        for args in [
            &["cat"][..],
            &["export", "-f", "asciicast-v3"],
            &["export", "-f", "asciicast-v2"],
            &["export", "-f", "txt"],
            &["play", "-s", "1000"],
            &["info", "--trusted", trust],
            &["info", "--json", "--trusted", trust],
        ] {
            let run = s.run(args, &p);
            assert_eq!(run.code, 1, "{name} {args:?}: {}", run.stderr);
            let line = format!("sealcast: {}: {want}", p.display());
            assert!(
                run.stderr
                    .lines()
                    .any(|l| l.starts_with(&line) && l.contains(needle)),
                "{name} {args:?}: {}",
                run.stderr
            );
        }
        // verify: the region verified, so the line itself is the problem: FORMAT.
        let run = s.run(&["verify", "--trusted", trust], &p);
        assert_eq!(run.code, 1, "{name}: {}", run.stdout_str());
        let first = run.stdout_str().lines().next().unwrap().to_string();
        assert!(
            first.starts_with(&format!("FORMAT        {}: {want}", p.display()))
                && first.contains(needle),
            "{name}: {first}"
        );
        // info shows the same verdict and the same bad line.
        let run = s.run(&["info", "--json", "--trusted", trust], &p);
        let v: Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(v["verification"]["status"], "FORMAT", "{name}");
        assert_eq!(v["bad_line"]["line"], 3, "{name}");
        assert_eq!(v["bad_line"]["offset"], offset, "{name}");
    }
}

/// `info` and `verify` keep their verdict when stdout is closed; `cat` may stop quietly.
#[test]
fn info_exit_code_does_not_depend_on_stdout() {
    let s = Setup::new();
    let key = SigningKey::from_file_bytes(s.key_pem.as_bytes()).unwrap();
    let (bytes, note) = signed_frames(
        key,
        SESSION,
        &[vec![br#"[0.000000, "b", "/w=="]"#.to_vec()]],
    );
    let p = write_recording(&s.env.path("m"), "orphan.cast.zst", &bytes, Some(&note));
    for args in [
        &["info"][..],
        &["verify", "--trusted", s.trust.to_str().unwrap()],
    ] {
        let mut a = args.to_vec();
        a.push(p.to_str().unwrap());
        let out = s
            .env
            .cmd(&a)
            .stdout(closed_pipe())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = s
        .env
        .cmd(&["cat", s.file.to_str().unwrap()])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// The write end of a pipe whose read end is already closed: every write is EPIPE.
fn closed_pipe() -> std::process::Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just created; the read end is closed at once.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(r);
    std::process::Stdio::from(w)
}
