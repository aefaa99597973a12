//! The proc source (SPEC §2.4.2): what the recorder sees of the session's processes.
//!
//! Three layers, so the decisions are tested without a kernel:
//!
//! - [`ProcTable::update`] (pure): the processes alive at one sample → `start`, `exec`,
//!   `exit` (and `overflow`) events against what was known before. A process is the pair
//!   (pid, start time in clock ticks), so a reused pid is an `exit` and a `start`.
//! - [`ProcFs`] (thin `/proc` reader): one process (`stat`, `status`, `cmdline`), the children
//!   of a process (`/proc/<pid>/task/<tid>/children`), the processes of a session (a scan of
//!   `/proc`), with the parsers [`parse_stat`], [`parse_status_ids`] and [`parse_cmdline`].
//! - [`ProcWatch`]: the observer of one session: which processes to read at each sample
//!   (the tree below the root, every process already known, and every
//!   [`FULL_SCAN_EVERY`]th sample all of the session id), when a sample is due
//!   ([`PERIOD_US`]), and the foreground process group ([`foreground_pgid`]).
//!
//! The set-uid recorder reads `/proc` as the service user: `stat`, `status` and `cmdline` are
//! world-readable, `cwd`, `exe` and `environ` of another user's process are not (ptrace access
//! checks, proc(5)), so nothing here reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use sealcast_format::{ProcStart, ProcessEvent};
use thiserror::Error;

/// Sampling period, µs (SPEC §2.4.2).
pub const PERIOD_US: u64 = 250_000;
/// Every this many samples, all of `/proc` is scanned for the session id as well.
pub const FULL_SCAN_EVERY: u64 = 8;
/// Most processes tracked at once; new ones beyond get no `start` (an `overflow` event).
pub const MAX_TRACKED: usize = 4096;
/// Most bytes of `/proc/<pid>/cmdline` read; longer ones are cut (`trunc`).
pub const ARGV_MAX: usize = 4096;

/// One process as read at a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Session id.
    pub sid: i32,
    /// Real uid.
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Start time after boot, clock ticks (stat field 22): with the pid, the identity.
    pub start_ticks: u64,
    /// How long it had been running when read, µs.
    pub age_us: u64,
    /// State `Z`: exited, not yet reaped.
    pub zombie: bool,
    /// Kernel command name (stat field 2).
    pub comm: String,
    /// Arguments (cmdline split at NUL, lossy UTF-8).
    pub argv: Vec<String>,
    /// cmdline was longer than [`ARGV_MAX`] and was cut.
    pub trunc: bool,
}

#[derive(Debug)]
struct Known {
    start_ticks: u64,
    comm: String,
    argv: Vec<String>,
    /// Exit already reported (a zombie still listed).
    dead: bool,
}

/// Processes known so far (pure). See the module documentation.
#[derive(Debug, Default)]
pub struct ProcTable {
    known: BTreeMap<i32, Known>,
}

impl ProcTable {
    /// An empty table.
    pub fn new() -> ProcTable {
        ProcTable::default()
    }

    /// Pids of the processes known and not exited.
    pub fn alive(&self) -> Vec<i32> {
        self.known
            .iter()
            .filter(|(_, k)| !k.dead)
            .map(|(&p, _)| p)
            .collect()
    }

    /// Every pid in the table (zombies whose exit was reported included).
    pub fn pids(&self) -> Vec<i32> {
        self.known.keys().copied().collect()
    }

    /// Apply one sample: `seen` is every process found (re-reads of known pids included);
    /// a known pid that is not in it has exited. Returns, in order: exits, execs, starts
    /// (oldest first; a process first seen as a zombie gets its `exit` right after its
    /// `start`), then `overflow` when more than [`MAX_TRACKED`] processes were seen.
    pub fn update(&mut self, seen: &[ProcInfo]) -> Vec<ProcessEvent> {
        let mut exits = Vec::new();
        let mut execs = Vec::new();
        let mut starts: Vec<&ProcInfo> = Vec::new();
        let mut untracked = 0u64;
        let mut by_pid: BTreeMap<i32, &ProcInfo> = BTreeMap::new();
        for p in seen {
            by_pid.insert(p.pid, p);
        }
        let gone: Vec<i32> = self
            .known
            .keys()
            .filter(|p| !by_pid.contains_key(p))
            .copied()
            .collect();
        for pid in gone {
            if let Some(k) = self.known.remove(&pid) {
                if !k.dead {
                    exits.push(ProcessEvent::Exit { pid });
                }
            }
        }
        for (&pid, &p) in &by_pid {
            match self.known.get_mut(&pid) {
                Some(k) if k.start_ticks == p.start_ticks => {
                    if k.dead {
                        continue;
                    }
                    if p.zombie {
                        k.dead = true;
                        exits.push(ProcessEvent::Exit { pid });
                    } else if k.comm != p.comm || k.argv != p.argv {
                        k.comm.clone_from(&p.comm);
                        k.argv.clone_from(&p.argv);
                        execs.push(ProcessEvent::Exec {
                            pid,
                            uid: p.uid,
                            euid: p.euid,
                            comm: p.comm.clone(),
                            argv: p.argv.clone(),
                            trunc: p.trunc,
                        });
                    }
                    continue;
                }
                Some(_) => {
                    // Same pid, another start time: the old process exited, the pid was reused.
                    if let Some(k) = self.known.remove(&pid) {
                        if !k.dead {
                            exits.push(ProcessEvent::Exit { pid });
                        }
                    }
                }
                None => {}
            }
            if self.known.len() >= MAX_TRACKED {
                untracked += 1;
                continue;
            }
            self.known.insert(
                pid,
                Known {
                    start_ticks: p.start_ticks,
                    comm: p.comm.clone(),
                    argv: p.argv.clone(),
                    dead: p.zombie,
                },
            );
            starts.push(p);
        }
        starts.sort_by_key(|p| (p.start_ticks, p.pid));
        let mut out = exits;
        out.extend(execs);
        for p in starts {
            out.push(ProcessEvent::Start(ProcStart {
                pid: p.pid,
                ppid: p.ppid,
                pgid: p.pgid,
                sid: p.sid,
                uid: p.uid,
                euid: p.euid,
                age_us: p.age_us,
                comm: p.comm.clone(),
                argv: p.argv.clone(),
                trunc: p.trunc,
            }));
            if p.zombie {
                out.push(ProcessEvent::Exit { pid: p.pid });
            }
        }
        if untracked > 0 {
            out.push(ProcessEvent::Overflow { untracked });
        }
        out
    }
}

/// The fields of `/proc/<pid>/stat` the observer uses (proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Field 1.
    pub pid: i32,
    /// Field 2, without the parentheses (lossy UTF-8).
    pub comm: String,
    /// Field 3.
    pub state: u8,
    /// Field 4.
    pub ppid: i32,
    /// Field 5.
    pub pgrp: i32,
    /// Field 6.
    pub session: i32,
    /// Field 22, clock ticks after boot.
    pub starttime: u64,
}

/// Parse `/proc/<pid>/stat`. `comm` may contain spaces and parentheses, so it is everything
/// between the first `(` and the **last** `)`. `None` when the text is not of that shape.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = std::str::from_utf8(&text[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = String::from_utf8_lossy(&text[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 (state), so field N is f[N - 3].
    Some(Stat {
        pid,
        comm,
        state: *f.first()?.as_bytes().first()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        starttime: f.get(19)?.parse().ok()?,
    })
}

/// Real and effective uid from `/proc/<pid>/status` (`Uid:` line: real, effective, saved,
/// filesystem). `None` when there is no such line.
pub fn parse_status_ids(text: &str) -> Option<(u32, u32)> {
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    let mut ids = line["Uid:".len()..].split_ascii_whitespace();
    Some((ids.next()?.parse().ok()?, ids.next()?.parse().ok()?))
}

/// Split `/proc/<pid>/cmdline` into arguments: NUL-separated, the trailing NUL dropped, each
/// lossy UTF-8. A process that rewrote its argv may leave no NULs: one argument then.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Error reading `/proc`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProcError {
    /// A file could not be read for another reason than the process being gone.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A file had an unexpected shape.
    #[error("{path}: unexpected content")]
    Parse {
        /// The file.
        path: PathBuf,
    },
}

impl ProcError {
    /// True for permission errors (`hidepid`, ptrace checks): the observer is blind.
    pub fn is_denied(&self) -> bool {
        matches!(self, ProcError::Io { source, .. }
            if source.kind() == io::ErrorKind::PermissionDenied)
    }
}

fn gone(e: &io::Error) -> bool {
    // ESRCH: the process exited while its files were open.
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Time since boot, µs (`CLOCK_BOOTTIME`, the clock of stat field 22).
pub fn boottime_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// The foreground process group of the terminal `fd` (`tcgetpgrp(3)`; on a PTY master, the
/// slave's), or `None` when there is none or `fd` is not a terminal.
pub fn foreground_pgid(fd: BorrowedFd<'_>) -> Option<i32> {
    // SAFETY: tcgetpgrp only queries the descriptor.
    let pg = unsafe { libc::tcgetpgrp(fd.as_raw_fd()) };
    (pg > 0).then_some(pg)
}

/// A reader of `/proc` (or of a directory laid out like it).
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
    tick_us: u64,
}

impl Default for ProcFs {
    fn default() -> Self {
        ProcFs::new()
    }
}

impl ProcFs {
    /// The system's `/proc`.
    pub fn new() -> ProcFs {
        ProcFs {
            root: PathBuf::from("/proc"),
            tick_us: 1_000_000 / clock_ticks_per_sec().max(1),
        }
    }

    fn path(&self, pid: i32, file: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(file)
    }

    /// Read one process at boot time `boot_us` ([`boottime_us`]). `Ok(None)` when it does
    /// not exist (any more).
    ///
    /// # Errors
    /// [`ProcError::Io`] for other read errors (permission denied under `hidepid`),
    /// [`ProcError::Parse`] for a `stat` or `status` of an unexpected shape.
    pub fn read(&self, pid: i32, boot_us: u64) -> Result<Option<ProcInfo>, ProcError> {
        let stat_path = self.path(pid, "stat");
        let Some(stat_bytes) = read_small(&stat_path, 4096)? else {
            return Ok(None);
        };
        let st = parse_stat(&stat_bytes.0).ok_or(ProcError::Parse { path: stat_path })?;
        let status_path = self.path(pid, "status");
        let Some(status) = read_small(&status_path, 16 * 1024)? else {
            return Ok(None);
        };
        let (uid, euid) = parse_status_ids(&String::from_utf8_lossy(&status.0))
            .ok_or(ProcError::Parse { path: status_path })?;
        let Some((cmdline, trunc)) = read_small(&self.path(pid, "cmdline"), ARGV_MAX)? else {
            return Ok(None);
        };
        Ok(Some(ProcInfo {
            pid: st.pid,
            ppid: st.ppid,
            pgid: st.pgrp,
            sid: st.session,
            uid,
            euid,
            start_ticks: st.starttime,
            age_us: boot_us.saturating_sub(st.starttime.saturating_mul(self.tick_us)),
            zombie: st.state == b'Z' || st.state == b'X',
            comm: st.comm,
            argv: parse_cmdline(&cmdline),
            trunc,
        }))
    }

    /// Children of `pid`, all of its threads' (`/proc/<pid>/task/<tid>/children`; needs
    /// `CONFIG_PROC_CHILDREN`). Empty when the process is gone or the files are missing.
    pub fn children(&self, pid: i32) -> Vec<i32> {
        let mut out = Vec::new();
        let Ok(tasks) = std::fs::read_dir(self.root.join(pid.to_string()).join("task")) else {
            return out;
        };
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_ascii_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
        out
    }

    /// Every process whose session id (stat field 6) is `sid`: a scan of all of `/proc`.
    ///
    /// # Errors
    /// [`ProcError::Io`] when `/proc` itself cannot be listed.
    pub fn session_pids(&self, sid: i32) -> Result<Vec<i32>, ProcError> {
        let dir = std::fs::read_dir(&self.root).map_err(|source| ProcError::Io {
            path: self.root.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(Some((bytes, _))) = read_small(&self.path(pid, "stat"), 4096) {
                if parse_stat(&bytes).is_some_and(|s| s.session == sid) {
                    out.push(pid);
                }
            }
        }
        Ok(out)
    }
}

/// Read at most `max` bytes of a small file: `(bytes, cut)`, `None` when it does not exist
/// (any more).
fn read_small(path: &Path, max: usize) -> Result<Option<(Vec<u8>, bool)>, ProcError> {
    let io_err = |source| ProcError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let mut buf = Vec::with_capacity(max.min(4096) + 1);
    match f.by_ref().take(max as u64 + 1).read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(io_err(e)),
    }
    let cut = buf.len() > max;
    buf.truncate(max);
    Ok(Some((buf, cut)))
}

/// The observer of one session's processes. See the module documentation.
#[derive(Debug)]
pub struct ProcWatch {
    fs: ProcFs,
    root: i32,
    sid: i32,
    table: ProcTable,
    samples: u64,
    next_due_us: u64,
    last_fg: Option<i32>,
    blind: bool,
}

impl ProcWatch {
    /// Start observing the session whose leader is `root` at time `t_us` (the writer's
    /// monotonic µs): appends the `watch` event and the first sample's events to `out` (or
    /// `blind` when `/proc` hides the session).
    pub fn start(root: i32, t_us: u64, out: &mut Vec<ProcessEvent>) -> ProcWatch {
        Self::start_with(ProcFs::new(), root, t_us, out)
    }

    /// [`ProcWatch::start`] over another reader.
    pub fn start_with(fs: ProcFs, root: i32, t_us: u64, out: &mut Vec<ProcessEvent>) -> ProcWatch {
        let sid = match fs.read(root, boottime_us()) {
            Ok(Some(p)) => p.sid,
            // The recorded command is spawned with setsid(): its session id is its pid.
            _ => root,
        };
        let mut w = ProcWatch {
            fs,
            root,
            sid,
            table: ProcTable::new(),
            samples: 0,
            next_due_us: t_us,
            last_fg: None,
            blind: false,
        };
        out.push(ProcessEvent::Watch {
            root,
            sid,
            period_us: PERIOD_US,
        });
        w.on_tick(t_us, out);
        w
    }

    /// True once observation stopped (`blind` written).
    pub fn is_blind(&self) -> bool {
        self.blind
    }

    /// Record the foreground process group read at an output read (`fg` when it changed).
    pub fn on_output(&mut self, fg: Option<i32>, out: &mut Vec<ProcessEvent>) {
        if let Some(pgid) = fg {
            if self.last_fg != Some(pgid) && !self.blind {
                self.last_fg = Some(pgid);
                out.push(ProcessEvent::Fg { pgid });
            }
        }
    }

    /// When the next sample is due (the writer's monotonic µs): a sampler that has its own
    /// timer sleeps until then.
    pub fn next_due_us(&self) -> u64 {
        self.next_due_us
    }

    /// Sample when one is due at `t_us`. Samples are due on a fixed grid of [`PERIOD_US`]
    /// from the start, so a caller ticking every period samples every period, however its
    /// ticks jitter; a late tick takes one sample (no burst to catch up) and the grid moves.
    pub fn on_tick(&mut self, t_us: u64, out: &mut Vec<ProcessEvent>) {
        if self.blind || t_us < self.next_due_us {
            return;
        }
        self.next_due_us += PERIOD_US;
        if self.next_due_us <= t_us {
            self.next_due_us = t_us + PERIOD_US;
        }
        self.sample(out);
    }

    /// Take one sample now and append its events.
    pub fn sample(&mut self, out: &mut Vec<ProcessEvent>) {
        if self.blind {
            return;
        }
        let boot = boottime_us();
        let mut pids: BTreeSet<i32> = BTreeSet::new();
        // The tree below the root.
        let mut stack = vec![self.root];
        while let Some(p) = stack.pop() {
            if pids.len() > 2 * MAX_TRACKED || !pids.insert(p) {
                continue;
            }
            stack.extend(self.fs.children(p));
        }
        // Everything already known (re-parented processes stay observed).
        pids.extend(self.table.pids());
        // Orphans of the session re-parented before a sample saw them.
        if self.samples.is_multiple_of(FULL_SCAN_EVERY) {
            match self.fs.session_pids(self.sid) {
                Ok(s) => pids.extend(s),
                Err(e) => return self.go_blind(format!("scanning /proc: {e}"), out),
            }
        }
        self.samples += 1;
        let mut seen = Vec::with_capacity(pids.len());
        for pid in pids {
            match self.fs.read(pid, boot) {
                Ok(Some(p)) => seen.push(p),
                Ok(None) => {
                    if pid == self.root && self.samples == 1 && exists(pid) {
                        return self.go_blind(
                            format!("/proc/{pid} is not visible (/proc mounted with hidepid?)"),
                            out,
                        );
                    }
                }
                Err(e) if e.is_denied() => return self.go_blind(e.to_string(), out),
                // Anything else about one process: keep what is known of it for this sample.
                Err(_) => {}
            }
        }
        out.extend(self.table.update(&seen));
    }

    fn go_blind(&mut self, reason: String, out: &mut Vec<ProcessEvent>) {
        self.blind = true;
        out.push(ProcessEvent::Blind { reason });
    }
}

/// True when a process `pid` exists, visible in `/proc` or not (`kill(pid, 0)` fails with
/// `ESRCH` only when it does not).
fn exists(pid: i32) -> bool {
    // SAFETY: signal 0 checks existence and permission only.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, start: u64, argv: &[&str]) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            pgid: pid,
            sid: 1,
            uid: 1000,
            euid: 1000,
            start_ticks: start,
            age_us: 5,
            zombie: false,
            comm: argv
                .first()
                .copied()
                .unwrap_or("")
                .chars()
                .take(15)
                .collect(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            trunc: false,
        }
    }

    fn kinds(ev: &[ProcessEvent]) -> Vec<String> {
        ev.iter()
            .map(|e| match e {
                ProcessEvent::Start(s) => format!("start {}", s.pid),
                ProcessEvent::Exec { pid, argv, .. } => format!("exec {pid} {}", argv.join(" ")),
                ProcessEvent::Exit { pid } => format!("exit {pid}"),
                ProcessEvent::Overflow { untracked } => format!("overflow {untracked}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn starts_execs_and_exits() {
        let mut t = ProcTable::new();
        let bash = p(10, 1, 100, &["-bash"]);
        assert_eq!(kinds(&t.update(std::slice::from_ref(&bash))), ["start 10"]);
        assert!(t.update(std::slice::from_ref(&bash)).is_empty());
        // A child appears (forked: still bash's argv), then execs ls.
        let child = p(11, 10, 150, &["-bash"]);
        let ls = p(11, 10, 150, &["ls", "-l"]);
        let younger = p(12, 10, 140, &["sleep", "1"]);
        assert_eq!(
            kinds(&t.update(&[bash.clone(), child, younger.clone()])),
            ["start 12", "start 11"] // oldest first
        );
        assert_eq!(
            kinds(&t.update(&[bash.clone(), ls, younger])),
            ["exec 11 ls -l"]
        );
        // Both gone.
        assert_eq!(
            kinds(&t.update(std::slice::from_ref(&bash))),
            ["exit 11", "exit 12"]
        );
        assert_eq!(t.alive(), [10]);
        // The shell execs `sh`: same pid, same start, other argv.
        let sh = p(10, 1, 100, &["sh"]);
        let ev = t.update(std::slice::from_ref(&sh));
        assert_eq!(kinds(&ev), ["exec 10 sh"]);
        assert!(matches!(&ev[0], ProcessEvent::Exec { comm, .. } if comm == "sh"));
    }

    #[test]
    fn a_reused_pid_is_an_exit_and_a_start() {
        let mut t = ProcTable::new();
        t.update(&[p(20, 1, 100, &["a"])]);
        let ev = t.update(&[p(20, 1, 900, &["a"])]);
        assert_eq!(kinds(&ev), ["exit 20", "start 20"]);
        let ProcessEvent::Start(s) = &ev[1] else {
            panic!()
        };
        assert_eq!((s.pid, s.age_us), (20, 5));
    }

    #[test]
    fn zombies_exit_once() {
        let mut t = ProcTable::new();
        t.update(&[p(30, 1, 100, &["a"])]);
        let mut z = p(30, 1, 100, &[]);
        z.zombie = true;
        assert_eq!(kinds(&t.update(std::slice::from_ref(&z))), ["exit 30"]);
        assert!(t.update(std::slice::from_ref(&z)).is_empty());
        assert!(t.alive().is_empty());
        assert!(t.update(&[]).is_empty(), "reaped: nothing more");
        // First seen as a zombie: start, then exit at once.
        let mut z2 = p(31, 1, 100, &[]);
        z2.zombie = true;
        assert_eq!(kinds(&t.update(&[z2])), ["start 31", "exit 31"]);
    }

    #[test]
    fn overflow_is_counted_not_tracked() {
        let mut t = ProcTable::new();
        let many: Vec<ProcInfo> = (0..MAX_TRACKED as i32 + 3)
            .map(|i| p(i + 1, 1, 10, &["x"]))
            .collect();
        let ev = t.update(&many);
        assert_eq!(ev.len(), MAX_TRACKED + 1);
        assert_eq!(ev.last(), Some(&ProcessEvent::Overflow { untracked: 3 }));
    }

    #[test]
    fn stat_status_and_cmdline_parse() {
        let stat = b"4242 (my (odd) name) S 4200 4242 4100 34816 4242 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 8192000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                pid: 4242,
                comm: "my (odd) name".into(),
                state: b'S',
                ppid: 4200,
                pgrp: 4242,
                session: 4100,
                starttime: 123456,
            })
        );
        assert_eq!(parse_stat(b"12 (x) S 1 2"), None);
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 )x( S"), None);
        let status =
            "Name:\tsudo\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_status_ids(status), Some((1000, 0)));
        assert_eq!(parse_status_ids("Name:\tx\n"), None);
        assert_eq!(parse_cmdline(b"ls\0-l\0a b\0"), ["ls", "-l", "a b"]);
        assert_eq!(parse_cmdline(b"rewritten title"), ["rewritten title"]);
        assert_eq!(parse_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(parse_cmdline(b"\xff\0"), ["\u{fffd}"]);
    }

    #[test]
    fn reads_this_process_and_its_child() {
        let fs = ProcFs::new();
        let me = std::process::id() as i32;
        let info = fs.read(me, boottime_us()).unwrap().unwrap();
        assert_eq!(info.pid, me);
        // SAFETY: getuid/geteuid/getsid have no preconditions.
        assert_eq!(info.uid, unsafe { libc::getuid() });
        assert_eq!(info.euid, unsafe { libc::geteuid() });
        assert_eq!(info.sid, unsafe { libc::getsid(0) });
        assert!(!info.argv.is_empty());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let cpid = child.id() as i32;
        assert!(fs.children(me).contains(&cpid));
        assert!(fs.session_pids(info.sid).unwrap().contains(&cpid));
        // Until it has exec'd, the child shows this test's argv; inside execve the kernel
        // sets `comm` before the new argv is in place (cmdline then reads empty).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let c = loop {
            let c = fs.read(cpid, boottime_us()).unwrap().unwrap();
            let execd = c.comm == "sleep" && c.argv.first().map(String::as_str) == Some("sleep");
            if execd || std::time::Instant::now() > deadline {
                break c;
            }
            std::thread::yield_now();
        };
        assert_eq!(c.ppid, me);
        assert_eq!(c.argv, ["sleep", "30"]);
        assert!(c.age_us < 60_000_000, "{}", c.age_us);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(fs.read(cpid, boottime_us()).unwrap(), None);
        assert_eq!(fs.read(-5, 0).unwrap(), None);
    }

    #[test]
    fn long_cmdlines_are_cut() {
        let fs = ProcFs::new();
        let long = "a".repeat(3 * ARGV_MAX);
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :", "x", &long])
            .spawn()
            .unwrap();
        // Until the child has exec'd, its cmdline is this test's: wait for `sh`.
        let cpid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match fs.read(cpid, boottime_us()).unwrap() {
                Some(c) if c.argv.first().map(String::as_str) == Some("sh") => {
                    assert!(c.trunc);
                    assert_eq!(c.argv[..4], ["sh", "-c", "sleep 30; :", "x"]);
                    // 4096 bytes: NUL after every argument but the cut last one.
                    let bytes: usize = c.argv.iter().map(|a| a.len() + 1).sum();
                    assert_eq!(bytes, ARGV_MAX + 1);
                    break;
                }
                Some(_) if std::time::Instant::now() < deadline => std::thread::yield_now(),
                other => panic!("{other:?}"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
