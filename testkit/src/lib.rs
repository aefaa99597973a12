//! Test helpers shared by the tests of the workspace (a dev-dependency only; nothing here
//! runs in production): in-memory recordings made by the real writer ([`SealedWriter`]) with
//! a clock the test moves by hand ([`TestClock`]), recordings made frame by frame
//! ([`HandMade`]), edits of a recording's lines that keep every other byte, and polling
//! ([`wait_until`]) and port ([`free_port`]) helpers for the integration tests. Functions
//! panic on failure (they are tests).
#![forbid(unsafe_code)]
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealcast_format::{
    decompress_frame, scan, skippable_frame, FrameCompressor, FrameKind, Header, SealMeta, TermInfo,
};
use sealcast_signer::{Sealer, SigningKey, TrustStore};
use sealcast_writer::{CheckpointPolicy, Clock, SealedWriter, SystemClock};

/// The wall time at monotonic 0 of [`TestClock::default`], Unix µs (2023-11-14 22:13:20 UTC).
pub const DEFAULT_WALL_START_US: u64 = 1_700_000_000_000_000;

/// A clock the test moves by hand: monotonic µs set with [`TestClock::set`]; wall = the
/// clock's wall start + monotonic. Clones share the time.
#[derive(Clone)]
pub struct TestClock {
    mono: Arc<AtomicU64>,
    wall_start_us: u64,
}

impl Default for TestClock {
    /// Monotonic 0, wall start [`DEFAULT_WALL_START_US`].
    fn default() -> TestClock {
        TestClock::with_wall_start(DEFAULT_WALL_START_US)
    }
}

impl TestClock {
    /// Monotonic 0 at wall time `wall_start_us` (Unix µs).
    pub fn with_wall_start(wall_start_us: u64) -> TestClock {
        TestClock {
            mono: Arc::new(AtomicU64::new(0)),
            wall_start_us,
        }
    }

    /// Set the monotonic time, microseconds.
    pub fn set(&self, us: u64) {
        self.mono.store(us, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn mono_us(&self) -> u64 {
        self.mono.load(Ordering::SeqCst)
    }
    fn wall_us(&self) -> u64 {
        self.wall_start_us + self.mono_us()
    }
}

/// Poll `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback TCP port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// The header the helpers record under: 80x24 `xterm-256color`, `/bin/true`, session
/// `0123456789abcdef0123456789abcdef`, host `h`, user `u`, started at 1.7e15 µs.
pub fn header() -> Header {
    Header {
        term: TermInfo {
            cols: 80,
            rows: 24,
            term_type: Some("xterm-256color".into()),
        },
        timestamp: Some(1_700_000_000),
        command: Some("/bin/true".into()),
        env: Some(BTreeMap::from([(
            "SHELL".to_string(),
            "/bin/sh".to_string(),
        )])),
        ..Header::sealed(SealMeta::new(
            "0123456789abcdef0123456789abcdef",
            "h",
            "u",
            1_700_000_000_000_000,
            "test",
            String::new(),
        ))
    }
}

/// A closed recording (exit status 0) with the events `f` writes.
pub fn recording(f: impl FnOnce(&mut SealedWriter<Vec<u8>, TestClock>, &TestClock)) -> Vec<u8> {
    recording_with(header(), f)
}

/// Like [`recording`] with another header.
pub fn recording_with(
    h: Header,
    f: impl FnOnce(&mut SealedWriter<Vec<u8>, TestClock>, &TestClock),
) -> Vec<u8> {
    signed_recording_with(h, f).0
}

/// Like [`recording`], with a trust store that trusts its key for host `h` (SPEC §6).
pub fn signed_recording(
    f: impl FnOnce(&mut SealedWriter<Vec<u8>, TestClock>, &TestClock),
) -> (Vec<u8>, TrustStore) {
    signed_recording_with(header(), f)
}

/// Like [`recording_with`], with a trust store that trusts its key for the header's host.
pub fn signed_recording_with(
    h: Header,
    f: impl FnOnce(&mut SealedWriter<Vec<u8>, TestClock>, &TestClock),
) -> (Vec<u8>, TrustStore) {
    let clock = TestClock::default();
    let key = SigningKey::generate().unwrap();
    let mut h = h;
    let mut host = "h".to_string();
    if let Some(m) = h.sealcast.as_mut() {
        m.key_id = key.id().to_string();
        host = m.host.clone();
    }
    let trust = TrustStore::single(&host, key.public());
    let mut w = SealedWriter::new(
        Vec::new(),
        key,
        &h,
        clock.clone(),
        CheckpointPolicy::default(),
    )
    .unwrap();
    f(&mut w, &clock);
    (w.finish(Some(0)).unwrap().0, trust)
}

/// A writer into memory on the real clock with the default checkpoint policy, for a minimal
/// sealed header (session `0…0`, user and host `host`, started at 0), signed by a new key;
/// and a trust store trusting that key for `host`. For tests and probes that need volume,
/// not timing.
pub fn system_writer(host: &str) -> (SealedWriter<Vec<u8>, SystemClock>, TrustStore) {
    let key = SigningKey::generate().unwrap();
    let trust = TrustStore::single(host, key.public());
    let meta = SealMeta::new(
        "0".repeat(32),
        host,
        host,
        0,
        "testkit",
        key.id().to_string(),
    );
    let header = Header {
        timestamp: Some(0),
        ..Header::sealed(meta)
    };
    let w = SealedWriter::new(
        Vec::new(),
        key,
        &header,
        SystemClock::new(),
        CheckpointPolicy::default(),
    )
    .unwrap();
    (w, trust)
}

/// A recording made by hand, frame by frame, with a real [`Sealer`] (for files no writer
/// makes: a region split anywhere, a checkpoint where the test wants it): the [`header`] in
/// its own frame first, signed by a new key for host `h`; `trust` trusts that key for `h`.
pub struct HandMade {
    sealer: Sealer,
    comp: FrameCompressor,
    /// The file so far.
    pub file: Vec<u8>,
    /// A trust store trusting the key for host `h`.
    pub trust: TrustStore,
}

impl HandMade {
    /// The header's frame, nothing else (no checkpoint yet).
    pub fn new() -> HandMade {
        let key = SigningKey::generate().unwrap();
        let trust = TrustStore::single("h", key.public());
        let mut h = header();
        let meta = h.sealcast.as_mut().unwrap();
        meta.key_id = key.id().to_string();
        let sealer = Sealer::new(key, "h", &meta.session);
        let comp = FrameCompressor::new(1).unwrap();
        let mut m = HandMade {
            sealer,
            comp,
            file: Vec::new(),
            trust,
        };
        m.frame(&[&h.to_line()]);
        m
    }

    /// One data frame of `lines` (each without its LF), chained.
    pub fn frame(&mut self, lines: &[&[u8]]) {
        for l in lines {
            self.sealer.line(l);
            self.comp.write_line(l, &mut self.file).unwrap();
        }
        self.comp.end_frame(&mut self.file).unwrap();
    }

    /// A checkpoint of everything so far (signed time 1 µs), final or not.
    pub fn checkpoint(&mut self, is_final: bool) {
        let note = self.sealer.checkpoint(1, is_final);
        self.file.extend_from_slice(&skippable_frame(&note));
    }
}

impl Default for HandMade {
    fn default() -> HandMade {
        HandMade::new()
    }
}

/// Offset of the data frame holding line `n` (0-based).
pub fn frame_of_line(file: &[u8], n: u64) -> u64 {
    let mut line_no = 0;
    for f in scan(file) {
        let f = f.unwrap();
        if f.kind != FrameKind::Data {
            continue;
        }
        let mut content = Vec::new();
        decompress_frame(f.bytes, f.offset, &mut content).unwrap();
        line_no += content.iter().filter(|&&b| b == b'\n').count() as u64;
        if n < line_no {
            return f.offset;
        }
    }
    panic!("no line {n}");
}

/// `file` with `count` copies of `line` added as one more data frame right after the
/// header's frame (the checkpoints no longer match; readers do not care).
pub fn insert_after_header(file: &[u8], line: &[u8], count: usize) -> Vec<u8> {
    let first = scan(file).next().unwrap().unwrap();
    let end = (first.offset + first.len) as usize;
    let mut out = file[..end].to_vec();
    let mut c = FrameCompressor::new(1).unwrap();
    for _ in 0..count {
        c.write_line(line, &mut out).unwrap();
    }
    c.end_frame(&mut out).unwrap();
    out.extend_from_slice(&file[end..]);
    out
}

/// `file` with line `n` (0-based, without LF) replaced by `new`; only the frame holding
/// it is recompressed, everything else is kept byte for byte.
pub fn replace_line(file: &[u8], n: usize, new: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line_no = 0;
    for f in scan(file) {
        let f = f.unwrap();
        let raw = &file[f.offset as usize..(f.offset + f.len) as usize];
        if f.kind == FrameKind::Checkpoint {
            out.extend_from_slice(raw);
            continue;
        }
        let mut content = Vec::new();
        decompress_frame(f.bytes, f.offset, &mut content).unwrap();
        let lines: Vec<&[u8]> = content[..content.len() - 1]
            .split(|&b| b == b'\n')
            .collect();
        if !(line_no..line_no + lines.len()).contains(&n) {
            out.extend_from_slice(raw);
        } else {
            let mut c = FrameCompressor::new(3).unwrap();
            for (i, l) in lines.iter().enumerate() {
                let l = if line_no + i == n { new } else { l };
                c.write_line(l, &mut out).unwrap();
            }
            c.end_frame(&mut out).unwrap();
        }
        line_no += lines.len();
    }
    out
}
