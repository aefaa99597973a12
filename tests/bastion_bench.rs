//! The SSH benchmark behind `bench/ssh_latency.sh` (see bench/README.md): keystroke echo
//! latency and bulk output throughput through a real sshd, with and without sealcast-shell as
//! ForceCommand, on the bastion test harness. Writes the table to `bench/RESULTS-ssh.md`.
//!
//! `#[ignore]`d and also gated on `SEALCAST_SSH_BENCH=1`, so neither the normal test run nor
//! `bench/run.sh --soak` (which runs the ignored tests) starts it by accident. Knobs:
//! `SSH_BENCH_ROUNDS` (10000 round trips), `SSH_BENCH_BYTES` (200 MB), `SSH_BENCH_RUNS` (3).

mod bastion;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bastion::harness::{id_of, require, Bastion, Options};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `ssh -tt host 'stty raw -echo; printf READY; exec cat'` in a PTY of our own, ready for
/// single-byte round trips.
struct EchoClient {
    _master: Box<dyn portable_pty::MasterPty + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    times: Vec<f64>,
}

impl EchoClient {
    fn start(mut argv: Vec<String>, destination: String) -> EchoClient {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        argv.extend([
            "-tt".to_string(),
            destination,
            "stty raw -echo; printf READY; exec cat".to_string(),
        ]);
        let mut cmd = CommandBuilder::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(cmd).expect("spawn ssh");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let start = Instant::now();
        while !String::from_utf8_lossy(&seen).contains("READY") {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no READY: {seen:?}"
            );
            let n = reader.read(&mut buf).expect("read");
            assert!(n > 0, "ssh closed: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        EchoClient {
            _master: pair.master,
            child,
            reader,
            writer,
            times: Vec::new(),
        }
    }

    /// One byte out and back; records the time in µs when `measure`.
    fn round(&mut self, byte: u8, measure: bool) {
        let mut buf = [0u8; 256];
        let t0 = Instant::now();
        self.writer.write_all(&[byte]).unwrap();
        self.writer.flush().unwrap();
        loop {
            let n = self.reader.read(&mut buf).expect("read echo");
            assert!(n > 0, "ssh closed during the echo loop");
            if buf[..n].contains(&byte) {
                break;
            }
        }
        if measure {
            self.times.push(t0.elapsed().as_nanos() as f64 / 1000.0);
        }
    }
}

impl Drop for EchoClient {
    fn drop(&mut self) {
        // Raw mode: ^D is just a byte, so end the client itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Seconds for one `ssh host 'cat FILE'` with stdout to /dev/null, through `argv`.
fn cat_once(argv: &[String], destination: &str, file: &Path) -> f64 {
    let t0 = Instant::now();
    let st = Command::new(&argv[0])
        .args(&argv[1..])
        .arg(destination)
        .arg(format!("cat {}", file.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("run ssh cat");
    assert!(st.success(), "ssh cat failed: {st}");
    t0.elapsed().as_secs_f64()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

struct Mode {
    name: &'static str,
    p50: f64,
    p99: f64,
    max: f64,
    cat_s: f64,
    mbps: f64,
}

impl Mode {
    fn new(name: &'static str, mut times: Vec<f64>, cat: &[f64], bytes: u64) -> Mode {
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let cat_s = median(cat);
        eprintln!(
            "[ssh-bench] {name}: {} echo rounds, cat runs {cat:?}",
            times.len()
        );
        Mode {
            name,
            p50: percentile(&times, 50.0),
            p99: percentile(&times, 99.0),
            max: *times.last().unwrap(),
            cat_s,
            mbps: bytes as f64 / cat_s / 1e6,
        }
    }
}

#[test]
#[ignore = "benchmark: bench/ssh_latency.sh runs it"]
fn ssh_latency_and_throughput() {
    if std::env::var_os("SEALCAST_SSH_BENCH").is_none() {
        eprintln!("set SEALCAST_SSH_BENCH=1 (bench/ssh_latency.sh does) to run the SSH benchmark");
        return;
    }
    if !require("ssh_latency_and_throughput") {
        return;
    }
    let bytes = env_num("SSH_BENCH_BYTES", 200_000_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The plain port must run bash without sealcast-shell, so the user keeps bash as login
    // shell; sealcast-shell then needs the (unsafe) allow_foreign_login_shell to run the
    // ForceCommand port's sessions. The recording path measured is the same.
    let b = Bastion::with(Options {
        plain_port: true,
        login_shell: false,
        config: vec![("allow_foreign_login_shell".into(), "true".into())],
        ..Options::default()
    });

    // The payload: the bench's coloured log lines, in the user's home, read once to be cached.
    let file = b.home.join("bench-logs.txt");
    let st = Command::new("python3")
        .arg(root.join("bench/helper.py"))
        .arg("gen-logs")
        .arg(&file)
        .arg(bytes.to_string())
        .status()
        .expect("run bench/helper.py");
    assert!(st.success());
    let gid = id_of(&b.user, "-g");
    std::os::unix::fs::chown(&file, Some(b.uid), Some(gid)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let size = fs::metadata(&file).unwrap().len();
    let _ = fs::read(&file).unwrap();

    // Both paths at once, alternating (ABBA), so load from anything else on the machine hits
    // both alike: port `b.port` has ForceCommand sealcast-shell, the plain port has none.
    let plain = b.plain_port.expect("plain port");
    let rounds = env_num("SSH_BENCH_ROUNDS", 10_000) as usize;
    let warmup = 200;
    let mut rec = EchoClient::start(b.ssh_argv(), b.destination());
    let mut raw = EchoClient::start(b.ssh_argv_on(plain), b.destination());
    for i in 0..(rounds + warmup) {
        let byte = b'a' + (i % 26) as u8;
        let measure = i >= warmup;
        if i % 2 == 0 {
            rec.round(byte, measure);
            raw.round(byte, measure);
        } else {
            raw.round(byte, measure);
            rec.round(byte, measure);
        }
    }
    let (rec_times, raw_times) = (
        std::mem::take(&mut rec.times),
        std::mem::take(&mut raw.times),
    );
    drop((rec, raw));
    let runs = env_num("SSH_BENCH_RUNS", 3);
    let (mut rec_cat, mut raw_cat) = (Vec::new(), Vec::new());
    for r in 0..runs {
        if r % 2 == 0 {
            rec_cat.push(cat_once(&b.ssh_argv(), &b.destination(), &file));
            raw_cat.push(cat_once(&b.ssh_argv_on(plain), &b.destination(), &file));
        } else {
            raw_cat.push(cat_once(&b.ssh_argv_on(plain), &b.destination(), &file));
            rec_cat.push(cat_once(&b.ssh_argv(), &b.destination(), &file));
        }
    }
    let with = Mode::new("with sealcast-shell", rec_times, &rec_cat, size);
    let without = Mode::new("plain sshd", raw_times, &raw_cat, size);
    assert!(
        b.recordings()
            .iter()
            .all(|p| bastion::harness::receipt(p).is_file()),
        "a recording was not closed"
    );
    let recordings = b.recordings();
    let verified = recordings.len();
    b.assert_all_verify(&[]);
    let spool_bytes: u64 = recordings
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();

    let added_p50 = with.p50 - without.p50;
    let added_p99 = with.p99 - without.p99;
    let ratio = with.mbps / without.mbps;
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    let mut md = String::new();
    let _ = writeln!(md, "# sealcast SSH benchmark\n");
    let _ = writeln!(
        md,
        "Generated by `bench/ssh_latency.sh` on {} ({} CPUs), OpenSSH `{}`, {} round trips, \
         {:.1} MB file, median of {} `cat` runs. sshd and the client run on the same host \
         (loopback); the two paths are measured alternately on one sshd (two ports, ForceCommand \
         on one), so other load affects both alike.\n",
        sealcast_recorder_host(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ssh_version(),
        env_num("SSH_BENCH_ROUNDS", 10_000),
        size as f64 / 1e6,
        env_num("SSH_BENCH_RUNS", 3),
    );
    let _ = writeln!(
        md,
        "| path | echo p50 µs | echo p99 µs | echo max µs | `cat` s | MB/s |\n|---|---:|---:|---:|---:|---:|"
    );
    for m in [&without, &with] {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} |",
            m.name, m.p50, m.p99, m.max, m.cat_s, m.mbps
        );
    }
    let _ = writeln!(md, "\n| target | goal | measured | |\n|---|---|---:|---|");
    let _ = writeln!(
        md,
        "| added echo latency, p99 | < 1000 µs | {added_p99:.0} µs (p50 {added_p50:+.0} µs) | {} |",
        verdict(added_p99 < 1000.0)
    );
    let _ = writeln!(
        md,
        "| `cat` throughput, recorded / plain | ≥ 0.90× | {ratio:.2}× | {} |",
        verdict(ratio >= 0.9)
    );
    let _ = writeln!(
        md,
        "\nRecordings made with sealcast-shell: {verified}, all verified OK; {:.1} MB on disk \
         for {:.1} MB of `cat` output ({} runs) plus the echo session.",
        spool_bytes as f64 / 1e6,
        size as f64 * env_num("SSH_BENCH_RUNS", 3) as f64 / 1e6,
        env_num("SSH_BENCH_RUNS", 3),
    );
    print!("{md}");
    let out = std::env::var_os("SSH_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("bench/RESULTS-ssh.md"));
    fs::write(&out, md).expect("write the results");
    eprintln!("[ssh-bench] wrote {}", out.display());
}

fn sealcast_recorder_host() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn ssh_version() -> String {
    Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default()
}
