//! Shared helpers for the integration tests: the built binary, an isolated environment with a
//! fresh key (made by `sealcast keygen`), trust files, and reading recordings back through the
//! library.
//!
//! Each test binary compiles this module separately and uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sealcast_format::{EventKind, EventLine};
use sealcast_reader::{verify_bytes, Reader, Report};
use sealcast_signer::{PublicKey, TrustStore};
use tempfile::TempDir;

/// Path of the `sealcast` binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sealcast"))
}

/// An isolated test environment: a temp dir that is `HOME` and holds `XDG_DATA_HOME`, a key
/// pair made by `sealcast keygen`, and an `allowed_signers` file trusting it.
pub struct TestEnv {
    /// The temp dir (deleted on drop).
    pub dir: TempDir,
    /// `HOME` for commands run through [`TestEnv::command`] (`<dir>/home`).
    pub home: PathBuf,
    /// `XDG_DATA_HOME` for those commands (`<dir>/xdg`), so the dev key and archive are here.
    pub xdg_data: PathBuf,
    /// `<dir>/key/signing.key`.
    pub key: PathBuf,
    /// `<dir>/key/signing.pub`.
    pub public: PathBuf,
    /// `<dir>/allowed_signers`, trusting [`TestEnv::public`] with `namespaces="sealcast"` for
    /// principal [`TestEnv::host`]: a key signs only for the host ids its principals match
    /// (SPEC §6).
    pub allowed_signers: PathBuf,
    /// The host id `sealcast record` writes when no `--host-id` is given (the host name,
    /// [`sealcast_recorder::sys::default_host_id`]).
    pub host: String,
}

impl TestEnv {
    /// Create the environment and run `sealcast keygen --out <dir>/key`.
    ///
    /// # Panics
    /// When any step fails (these are tests).
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("sealcast-test-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("home");
        let xdg_data = dir.path().join("xdg");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&xdg_data).unwrap();
        let keydir = dir.path().join("key");
        let (key, public) = keygen(&keydir);
        let allowed_signers = dir.path().join("allowed_signers");
        let host = sealcast_recorder::sys::default_host_id();
        write_allowed_signers(&allowed_signers, &host, &public);
        TestEnv {
            dir,
            home,
            xdg_data,
            key,
            public,
            allowed_signers,
            host,
        }
    }

    /// `<dir>/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `sealcast` command with `HOME` and `XDG_DATA_HOME` pointing into the environment,
    /// `SEALCAST_SESSION` removed, `TERM=xterm-256color`, and the current dir set to the temp
    /// dir.
    pub fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("HOME", &self.home)
            .env("XDG_DATA_HOME", &self.xdg_data)
            .env("TERM", "xterm-256color")
            .env_remove("SEALCAST_SESSION")
            .current_dir(self.dir.path());
        c
    }

    /// The trust store of [`TestEnv::allowed_signers`].
    pub fn trust(&self) -> TrustStore {
        trust_from_file(&self.allowed_signers)
    }

    /// Run `sealcast record --out <out> --key <key> [extra...] -- <cmd...>` with stdin from
    /// `/dev/null` and stdout/stderr captured.
    pub fn record(&self, out: &Path, extra: &[&str], cmd: &[&str]) -> Output {
        let mut c = self.command();
        c.arg("record")
            .arg("--out")
            .arg(out)
            .arg("--key")
            .arg(&self.key);
        c.args(extra).arg("--").args(cmd);
        c.stdin(Stdio::null());
        c.output().expect("run sealcast record")
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// Run `sealcast keygen --out dir`; returns `(signing.key, signing.pub)`.
///
/// # Panics
/// When keygen fails or does not write both files.
pub fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let out = Command::new(bin())
        .arg("keygen")
        .arg("--out")
        .arg(dir)
        .arg("--comment")
        .arg("test@sealcast")
        .output()
        .expect("run sealcast keygen");
    assert!(
        out.status.success(),
        "keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = dir.join("signing.key");
    let public = dir.join("signing.pub");
    assert!(
        key.is_file() && public.is_file(),
        "keygen wrote no key pair"
    );
    (key, public)
}

/// Write an `allowed_signers` file trusting the OpenSSH public key in `pub_file` for the host
/// ids matching `principal` (a host id or pattern list), restricted to the `sealcast`
/// namespace.
pub fn write_allowed_signers(path: &Path, principal: &str, pub_file: &Path) {
    let text = fs::read_to_string(pub_file).expect("read public key");
    let key = PublicKey::parse_openssh(text.trim()).expect("parse public key");
    let line = format!(
        "{principal} namespaces=\"sealcast\" {}\n",
        key.to_openssh("")
    );
    fs::write(path, line).expect("write allowed_signers");
}

/// Parse an `allowed_signers` file.
pub fn trust_from_file(path: &Path) -> TrustStore {
    TrustStore::parse(&fs::read_to_string(path).expect("read allowed_signers"))
        .expect("parse allowed_signers")
}

/// Path of a recording's seal receipt (`<file>.seal`).
pub fn receipt_path(recording: &Path) -> PathBuf {
    sealcast_format::names::receipt_path(recording)
}

/// Verify a recording file with its receipt (when present) against `trust`.
pub fn verify_file(recording: &Path, trust: &TrustStore) -> Report {
    let data = fs::read(recording).expect("read recording");
    let receipt = fs::read(receipt_path(recording)).ok();
    verify_bytes(&data, receipt.as_deref(), trust)
}

/// All events of a recording (exact bytes, `b` events folded in), panicking on a read error.
pub fn events(recording: &Path) -> Vec<EventLine> {
    let data = fs::read(recording).expect("read recording");
    let reader = Reader::open(&data).expect("open recording");
    reader.map(|e| e.expect("event").into_event()).collect()
}

/// The header of a recording.
pub fn header(recording: &Path) -> sealcast_format::Header {
    let data = fs::read(recording).expect("read recording");
    Reader::open(&data)
        .expect("open recording")
        .header()
        .clone()
}

/// Concatenated bytes of the events with `code` (`"o"`: the exact recorded output).
pub fn stream(events: &[EventLine], code: &str) -> Vec<u8> {
    events
        .iter()
        .filter(|e| e.kind.code() == code)
        .flat_map(|e| e.bytes.iter().copied())
        .collect()
}

/// Data of the `x` event, if any.
pub fn exit_event(events: &[EventLine]) -> Option<String> {
    events
        .iter()
        .find(|e| e.kind == EventKind::Exit)
        .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
}

/// True if `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A clock standing still at a chosen wall time (Unix µs); events are 0 µs apart.
struct FixedClock(u64);

impl sealcast_recorder::Clock for FixedClock {
    fn mono_us(&self) -> u64 {
        0
    }
    fn wall_us(&self) -> u64 {
        self.0
    }
}

/// A closed recording made through the library as if its session had run at `start_us`
/// (Unix µs), printing `lines`, signed with the key in `key_path`: `(file bytes, seal receipt)`.
/// For tests that need sessions at other times than now (a day of sessions, dates in keys).
///
/// # Panics
/// When the key cannot be read or the writer fails (these are tests).
pub fn recording_at(
    key_path: &Path,
    host: &str,
    session: &str,
    start_us: u64,
    lines: &[&str],
) -> (Vec<u8>, Vec<u8>) {
    use sealcast_format::{Header, SealMeta, TermInfo};
    let key = sealcast_signer::SigningKey::from_file_bytes(&fs::read(key_path).unwrap()).unwrap();
    let meta = SealMeta::new(
        session,
        host,
        "alice",
        start_us,
        "sealcast tests",
        key.id().to_string(),
    );
    let h = Header {
        term: TermInfo {
            cols: 80,
            rows: 24,
            term_type: Some("xterm-256color".into()),
        },
        timestamp: Some((start_us / 1_000_000) as i64),
        command: Some("/bin/sh".into()),
        ..Header::sealed(meta)
    };
    let mut w = sealcast_recorder::SealedWriter::new(
        Vec::new(),
        key,
        &h,
        FixedClock(start_us),
        sealcast_recorder::CheckpointPolicy::default(),
    )
    .unwrap();
    for l in lines {
        w.output(format!("{l}\r\n").as_bytes()).unwrap();
    }
    w.finish(Some(0)).unwrap()
}

/// Poll `cond` every 50 ms until it holds or `timeout` passes; returns whether it held
/// ([`sealcast_testkit::wait_until`]).
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    sealcast_testkit::wait_until(timeout, cond)
}
