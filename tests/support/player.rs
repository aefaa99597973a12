//! Helpers for the player-side CLI tests (cli_verify, export, asciinema_compat), included
//! with `#[path = "support/player.rs"] mod support;`. Recordings are made in-process with the
//! real writer (`SealedWriter`, manual clock) and written to temp dirs; the CLI is the real
//! binary with HOME and XDG_DATA_HOME pointed into the temp dir.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use sealcast_format::{
    decompress_frame, scan, skippable_frame, FrameKind, Header, SealMeta, TermInfo,
};
use sealcast_recorder::{CheckpointPolicy, Durable, SealedWriter};
use sealcast_signer::{Checkpoint, Sealer, SigningKey};

/// Path of the sealcast binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealcast")
}

/// A temp dir acting as HOME and XDG data dir.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Env {
    pub fn new() -> Env {
        Env::default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `$XDG_DATA_HOME/sealcast`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("xdg/sealcast")
    }

    /// The sealcast command with HOME/XDG_DATA_HOME inside the temp dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("xdg"))
            .env_remove("SEALCAST_KEY")
            .stdin(Stdio::null());
        c
    }

    /// Run sealcast and collect its output.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().unwrap();
        Run::from(out)
    }

    /// Run sealcast, failing the test (after killing it) if it has not exited within
    /// `secs` seconds: for inputs that used to make it block forever.
    pub fn run_within(&self, secs: u64, args: &[&str]) -> Run {
        let mut child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        // Drain the pipes on threads so a full pipe cannot hold the child.
        let mut so = child.stdout.take().unwrap();
        let mut se = child.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut so, &mut v);
            v
        });
        let t_err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut se, &mut v);
            v
        });
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sealcast {args:?} still running after {secs} s: it blocked");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Run::from(Output {
            status,
            stdout: t_out.join().unwrap(),
            stderr: t_err.join().unwrap(),
        })
    }
}

/// Output of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "sealcast panicked:\n{stderr}");
        Run {
            code: o.status.code().expect("killed by a signal"),
            stdout: o.stdout,
            stderr,
        }
    }
}

impl Run {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stdout parsed as JSON lines.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout_str()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

pub use sealcast_testkit::TestClock;

/// The wall time at monotonic 0 of the test sessions' clocks (2025-11-21 04:40:00 UTC, the
/// headers' `start_us`), Unix µs.
pub const WALL_START_US: u64 = 1_763_700_000_000_000;

/// A sink shared with the test, so a writer dropped without `finish` (a crash) leaves its
/// bytes behind.
#[derive(Clone, Default)]
pub struct Shared(pub Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Durable for Shared {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub type Writer = SealedWriter<Shared, TestClock>;

/// Host id of the test sessions ([`header`]).
pub const HOST: &str = "bastion-1";

/// Header of a test session on [`HOST`].
pub fn header(session: &str, user: &str, key: &SigningKey) -> Header {
    Header {
        term: TermInfo {
            cols: 80,
            rows: 24,
            term_type: Some("xterm-256color".into()),
        },
        timestamp: Some(1_763_700_000),
        command: Some("/bin/sh -c demo".into()),
        env: Some(BTreeMap::from([
            ("SHELL".to_string(), "/bin/sh".to_string()),
            ("TERM".to_string(), "xterm-256color".to_string()),
        ])),
        ..Header::sealed(SealMeta::new(
            session,
            HOST,
            user,
            1_763_700_000_000_000,
            "sealcast-test",
            key.id().to_string(),
        ))
    }
}

/// A recording in the making.
pub struct Rec {
    pub w: Writer,
    pub clock: TestClock,
    sink: Shared,
}

impl Rec {
    /// Start a session (header + checkpoint 0) signed by `key`.
    pub fn start(key: SigningKey, session: &str) -> Rec {
        let h = header(session, "alice", &key);
        Rec::with_header(key, &h)
    }

    pub fn with_header(key: SigningKey, h: &Header) -> Rec {
        let clock = TestClock::with_wall_start(WALL_START_US);
        let sink = Shared::default();
        let w = SealedWriter::new(
            sink.clone(),
            key,
            h,
            clock.clone(),
            CheckpointPolicy::default(),
        )
        .unwrap();
        Rec { w, clock, sink }
    }

    /// Move the clock to `us` (µs since start).
    pub fn at(&mut self, us: u64) -> &mut Writer {
        self.clock.set(us);
        &mut self.w
    }

    /// Close with exit status 0: (file bytes, seal receipt).
    pub fn finish(self) -> (Vec<u8>, Vec<u8>) {
        let (_, note) = self.w.finish(Some(0)).unwrap();
        let bytes = self.sink.0.lock().unwrap().clone();
        (bytes, note)
    }

    /// Simulate a crash: drop the writer without closing; return what reached the sink.
    pub fn crash(self) -> Vec<u8> {
        let sink = self.sink.clone();
        drop(self.w);
        let bytes = sink.0.lock().unwrap().clone();
        bytes
    }
}

/// The session id used by [`standard`].
pub const SESSION: &str = "0123456789abcdef0123456789abcdef";

/// The output bytes [`standard`] records, concatenated.
pub const STANDARD_OUTPUT: &[u8] =
    b"hello \x1b[1mworld\x1b[0m\r\nA line\r\nbad \xff utf8\r\nsecond region\r\nmore\r\nlast\r\n";

/// The standard test session. Lines and frames:
///
/// ```text
/// D0 [0 header]                                              C0 (seq 0)
/// D1 [1 o hello, 2 o "A line", 3 o "bad \ufffd", 4 b]         C1 (seq 1, t=11 s)
/// D2 [5 r 100x30, 6 o "second region", 7 o more]              C2 (seq 2, t=23 s)
/// D3 [8 o last, 9 x 0]                                       C3 (final)
/// ```
pub fn standard(key: SigningKey, session: &str) -> (Vec<u8>, Vec<u8>) {
    let mut r = Rec::start(key, session);
    standard_events(&mut r);
    r.finish()
}

/// The events of [`standard`], without closing.
pub fn standard_events(r: &mut Rec) {
    r.at(100_000)
        .output(b"hello \x1b[1mworld\x1b[0m\r\n")
        .unwrap();
    r.at(200_000).output(b"A line\r\n").unwrap();
    r.at(400_000).output(b"bad \xff utf8\r\n").unwrap();
    r.at(11_000_000).tick().unwrap();
    r.at(11_500_000).resize(100, 30).unwrap();
    r.at(12_000_000).output(b"second region\r\n").unwrap();
    r.at(12_500_000).output(b"more\r\n").unwrap();
    r.at(23_000_000).tick().unwrap();
    r.at(24_000_000).output(b"last\r\n").unwrap();
}

/// `allowed_signers` text trusting `key` to sign for the host ids matching `principals` (a
/// host id, or a pattern list such as `bastion-*,!bastion-9`: SPEC §6).
pub fn trust_line(principals: &str, key: &SigningKey) -> String {
    format!("{principals} {}\n", key.public().to_openssh("test"))
}

/// `file` (a recording) with its checkpoints from the `from`-th on (0-based) replaced by
/// checkpoints that `key` signs over the same lines, with the same times and final flags;
/// data frames and earlier checkpoints stay byte for byte. What the holder of `key` can make
/// of a recording it did not write, header untouched (so its `key_id` still names the
/// original key).
pub fn resign(file: &[u8], key: SigningKey, from: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len());
    let mut key = Some(key);
    let mut sealer: Option<Sealer> = None;
    let mut n = 0;
    for f in scan(file) {
        let f = f.expect("a readable recording");
        let raw = &file[f.offset as usize..(f.offset + f.len) as usize];
        match f.kind {
            FrameKind::Data => {
                let mut buf = Vec::new();
                decompress_frame(f.bytes, f.offset, &mut buf).unwrap();
                for line in buf.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n') {
                    let s = sealer.get_or_insert_with(|| {
                        let meta = Header::parse(line).unwrap().sealcast.unwrap();
                        Sealer::new(key.take().unwrap(), &meta.host, &meta.session)
                    });
                    s.line(line);
                }
                out.extend_from_slice(raw);
            }
            FrameKind::Checkpoint => {
                let (cp, _, _) = Checkpoint::parse(f.bytes).unwrap();
                // Signing the ones kept too keeps the sealer's seq in step.
                let note = sealer.as_mut().unwrap().checkpoint(cp.time_us, cp.is_final);
                if n >= from {
                    out.extend_from_slice(&skippable_frame(&note));
                } else {
                    out.extend_from_slice(raw);
                }
                n += 1;
            }
        }
    }
    out
}

/// A recording signed by `key` as it stands, whatever its lines say: the header of
/// [`header`] in its own frame and checkpoint 0, then each of `frames` (event lines without
/// LF) as one data frame followed by a checkpoint, the last one final. For lines a sealcast
/// recorder never writes, signed by a trusted key anyway: (bytes, receipt).
pub fn signed_frames(
    key: SigningKey,
    session: &str,
    frames: &[Vec<Vec<u8>>],
) -> (Vec<u8>, Vec<u8>) {
    let h = header(session, "alice", &key).to_line();
    let mut sealer = sealcast_signer::Sealer::new(key, "bastion-1", session);
    let mut out = Vec::new();
    let mut frame = |lines: &[Vec<u8>], sealer: &mut sealcast_signer::Sealer, last: bool| {
        let mut content = Vec::new();
        for l in lines {
            sealer.line(l);
            content.extend_from_slice(l);
            content.push(b'\n');
        }
        out.extend_from_slice(&compress(&content));
        let note = sealer.checkpoint(1_763_700_000_000_000, last);
        out.extend_from_slice(&sealcast_format::skippable_frame(&note));
        note
    };
    let mut note = frame(&[h], &mut sealer, frames.is_empty());
    for (i, f) in frames.iter().enumerate() {
        note = frame(f, &mut sealer, i + 1 == frames.len());
    }
    (out, note)
}

/// Write `bytes` to `dir/name`, and `receipt` to `dir/name.seal` when given.
pub fn write_recording(dir: &Path, name: &str, bytes: &[u8], receipt: Option<&[u8]>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    if let Some(r) = receipt {
        sealcast_recorder::archive::write_receipt(&p, r).unwrap();
    }
    p
}

/// One frame of a file: kind, byte range in the file.
#[derive(Debug, Clone)]
pub struct FrameAt {
    pub kind: FrameKind,
    pub start: usize,
    pub end: usize,
}

/// The frames of a (well-formed) file.
pub fn frames(file: &[u8]) -> Vec<FrameAt> {
    scan(file)
        .map(|f| {
            let f = f.unwrap();
            FrameAt {
                kind: f.kind,
                start: f.offset as usize,
                end: (f.offset + f.len) as usize,
            }
        })
        .collect()
}

/// Decompress one data frame with the zstd crate (independent of the format crate).
pub fn decompress(frame: &[u8]) -> Vec<u8> {
    zstd::stream::decode_all(frame).unwrap()
}

/// Compress `content` as one zstd frame with a content checksum, like the writer does.
pub fn compress(content: &[u8]) -> Vec<u8> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.write_all(content).unwrap();
    enc.finish().unwrap()
}

/// The lines (without LF) of each data frame, by frame index (`None` for checkpoints).
pub fn frame_lines(file: &[u8]) -> Vec<Option<Vec<Vec<u8>>>> {
    frames(file)
        .iter()
        .map(|f| {
            (f.kind == FrameKind::Data).then(|| {
                let c = decompress(&file[f.start..f.end]);
                c[..c.len() - 1]
                    .split(|&b| b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect()
            })
        })
        .collect()
}

/// Index of the data frame holding global line `line`, and the line's index inside it.
pub fn locate_line(file: &[u8], line: usize) -> (usize, usize) {
    let mut first = 0;
    for (i, fl) in frame_lines(file).iter().enumerate() {
        if let Some(ls) = fl {
            if (first..first + ls.len()).contains(&line) {
                return (i, line - first);
            }
            first += ls.len();
        }
    }
    panic!("no line {line}");
}

/// `file` with the lines of data frame `frame` edited by `f` and that one frame
/// recompressed; every other frame (checkpoints included) is kept byte for byte.
pub fn edit_frame(file: &[u8], frame: usize, f: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let fs = frames(file);
    let target = &fs[frame];
    assert_eq!(target.kind, FrameKind::Data);
    let mut lines: Vec<Vec<u8>> = frame_lines(file)[frame].clone().unwrap();
    f(&mut lines);
    let mut content = Vec::new();
    for l in &lines {
        content.extend_from_slice(l);
        content.push(b'\n');
    }
    let mut out = file[..target.start].to_vec();
    out.extend_from_slice(&compress(&content));
    out.extend_from_slice(&file[target.end..]);
    out
}

/// `file` with global line `line` edited by `f` (its frame recompressed).
pub fn edit_line(file: &[u8], line: usize, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let (frame, idx) = locate_line(file, line);
    edit_frame(file, frame, |ls| f(&mut ls[idx]))
}

/// Replace the first occurrence of `from` in `v` by `to`.
pub fn replace_bytes(v: &mut Vec<u8>, from: &[u8], to: &[u8]) {
    let at = v
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not in {:?}", from, String::from_utf8_lossy(v)));
    v.splice(at..at + from.len(), to.iter().copied());
}

/// The decompressed stream of a file, via the `zstd` CLI (`zstd -dc`).
pub fn zstd_cli_decompress(path: &Path) -> Vec<u8> {
    let out = Command::new("zstd")
        .args(["-dc", "--no-progress"])
        .arg(path)
        .output()
        .expect("zstd CLI not found");
    assert!(
        out.status.success(),
        "zstd -dc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
