//! The commands report (`sealcast commands`, SPEC §2.4.5): a recording's `c` and `p` events →
//! one row per command, the processes grouped under the command they ran in, and the
//! disagreements between what the shell claimed and what the recorder saw.
//!
//! [`commands_report`] is pure: it takes the events in file order, each with what
//! verification says of it (its [`Coverage`], as a verifying [`sealcast_reader::Reader`]
//! reads it: `ReadEvent::coverage`), and derives nothing from the output or from line
//! counts. Every row, process and disagreement carries the worst coverage of the events it
//! comes from ([`Coverage::and`]), so an unverified part is shown as such and never counted
//! as verified ([`Summary`]).
//! [`write_text`] and [`write_json`] render it.
//!
//! Attribution (SPEC §2.4.5): a process belongs to the command whose claim window (its
//! `start` to its `end`, cut at an `exec` of the session's root process) contains its start
//! (event time − `age_us`, with [`START_SLACK_US`] for the clock-tick rounding), or to the
//! command of its nearest observed ancestor; one started before the first claim belongs to
//! the shell's startup; the root process itself is the session. The rest are unclaimed:
//! grouped into proc-source rows by process group, and reported as disagreements when the
//! recording says hooks were injected.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use sealcast_format::{CommandEvent, EventKind, ProcessEvent};
use sealcast_reader::Coverage;

/// One event of the recording, as the report reads it.
#[derive(Debug, Clone, Copy)]
pub struct MetaInput<'a> {
    /// Absolute time, µs since the start (the sum of intervals).
    pub t_us: u64,
    /// Event kind; only [`EventKind::Command`] and [`EventKind::Process`] are used, others
    /// only advance the session's end.
    pub kind: &'a EventKind,
    /// Event data.
    pub data: &'a str,
    /// What verification says of it (`ReadEvent::coverage`).
    pub state: Coverage,
}

/// Slack for a process start that seems to precede its command's `start` (clock ticks round
/// start times down, 10 ms on Linux; the sample and the mark are read at different moments).
pub const START_SLACK_US: u64 = 20_000;
/// A command without a process is a disagreement only when it lasted this many sampling
/// periods (shorter processes may simply have been missed, SPEC §2.4.6).
pub const NO_PROCESS_PERIODS: u64 = 4;

/// Where a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Claimed by the shell hooks (`c` events).
    Shell,
    /// Seen by the recorder only (`p` events of processes no claim covers).
    Proc,
}

/// A process the proc source saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcRow {
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
    /// Kernel command name, as last seen.
    pub comm: String,
    /// Arguments, as last seen (after any `exec`).
    pub argv: Vec<String>,
    /// Earlier `argv`s, in order (before each `exec`).
    pub earlier_argv: Vec<Vec<String>>,
    /// Start, µs since the session start (event time − `age_us`).
    pub start_us: u64,
    /// When the recorder first saw it.
    pub seen_us: u64,
    /// When it was seen gone; `None` while the recording shows it alive.
    pub exit_us: Option<u64>,
    /// Its process group was the PTY's foreground group at some point.
    pub foreground: bool,
    /// Worst state of its events.
    pub state: Coverage,
}

/// One row: a claimed command, or a process group no claim covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandRow {
    /// Where it comes from.
    pub source: Source,
    /// The command's `id` (shell rows).
    pub id: Option<u64>,
    /// Start, µs since the session start.
    pub t_us: u64,
    /// How long it ran, µs: the shell's `duration_us`, or for a proc row its first start to
    /// its last exit; `None` when not finished in the recording.
    pub duration_us: Option<u64>,
    /// Exit status the shell reported (`None`: none reported; proc rows never have one).
    pub exit: Option<i32>,
    /// Statuses of a pipeline.
    pub pipestatus: Vec<i32>,
    /// Working directory the shell reported (proc rows: none, SPEC §2.4.2).
    pub cwd: Option<String>,
    /// The command line (proc rows: the first process's argv, space-joined).
    pub cmd: String,
    /// Only the first simple command of the line.
    pub partial: bool,
    /// Cut.
    pub trunc: bool,
    /// Claimed only after it ran (SPEC §2.4.1 `late`).
    pub late: bool,
    /// Processes that ran in it.
    pub processes: Vec<ProcRow>,
    /// Worst state of the events it comes from.
    pub state: Coverage,
}

/// A disagreement between the sources, or a limit of them (SPEC §2.4.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Disagreement {
    /// Hooks were injected, but processes ran after the last claim and no claim came again.
    HooksSilent {
        /// The last claim (`start`), or the session start when there was none.
        since_us: u64,
        /// The command last claimed.
        after_id: Option<u64>,
        /// When the root process (the shell) `exec`ed something else after the last claim:
        /// the time and its new argv.
        shell_replaced: Option<(u64, Vec<String>)>,
        /// Pids of the processes that ran unclaimed.
        pids: Vec<i32>,
        /// Worst state involved.
        state: Coverage,
    },
    /// Processes started between two claims that no claim covers.
    Unclaimed {
        /// Start of the first of them.
        t_us: u64,
        /// The command claimed before them.
        after_id: Option<u64>,
        /// Their pids.
        pids: Vec<i32>,
        /// Worst state involved.
        state: Coverage,
    },
    /// A command that is not a builtin ran for a while and no process was seen.
    NoProcess {
        /// Its start.
        t_us: u64,
        /// Its id.
        id: u64,
        /// Its command line.
        cmd: String,
        /// Its duration, µs.
        duration_us: u64,
        /// Worst state involved.
        state: Coverage,
    },
    /// OSC 133 marks without the session nonce (possible forgery).
    IgnoredMarks {
        /// The first `ignored` event of the run.
        t_us: u64,
        /// The command running then, if any.
        during_id: Option<u64>,
        /// Marks ignored.
        marks: u64,
        /// Of those, with a wrong nonce.
        bad_nonce: u64,
        /// Worst state involved.
        state: Coverage,
    },
    /// The proc source stopped seeing (`blind`) or saw too many processes (`overflow`).
    ProcIncomplete {
        /// When.
        t_us: u64,
        /// Why.
        reason: String,
        /// State of the event.
        state: Coverage,
    },
}

impl Disagreement {
    /// The time it is reported at.
    pub fn t_us(&self) -> u64 {
        match self {
            Disagreement::HooksSilent { since_us, .. } => *since_us,
            Disagreement::Unclaimed { t_us, .. }
            | Disagreement::NoProcess { t_us, .. }
            | Disagreement::IgnoredMarks { t_us, .. }
            | Disagreement::ProcIncomplete { t_us, .. } => *t_us,
        }
    }

    /// Worst state of the events it comes from.
    pub fn state(&self) -> Coverage {
        match self {
            Disagreement::HooksSilent { state, .. }
            | Disagreement::Unclaimed { state, .. }
            | Disagreement::NoProcess { state, .. }
            | Disagreement::IgnoredMarks { state, .. }
            | Disagreement::ProcIncomplete { state, .. } => *state,
        }
    }
}

/// Which sources the recording has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sources {
    /// The shell the hooks were injected into (`hooks` event), if any.
    pub shell_hooks: Option<String>,
    /// The proc source's root pid (`watch` event), if observed.
    pub proc_root: Option<i32>,
    /// Its sampling period, µs.
    pub proc_period_us: Option<u64>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandsReport {
    /// Which sources the recording has.
    pub sources: Sources,
    /// Processes that ran before the first claim (the shell's startup files).
    pub startup: Vec<ProcRow>,
    /// Rows in time order.
    pub rows: Vec<CommandRow>,
    /// Disagreements in time order.
    pub disagreements: Vec<Disagreement>,
    /// `c`/`p` events whose data did not parse (skipped).
    pub malformed: u64,
    /// End of the session, µs (time of the last event).
    pub end_us: u64,
}

/// Counts for `sealcast info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    /// Claimed commands, all states.
    pub commands: u64,
    /// Claimed commands whose events all verified.
    pub commands_verified: u64,
    /// Disagreements, all states.
    pub disagreements: u64,
    /// Disagreements whose events all verified.
    pub disagreements_verified: u64,
}

impl CommandsReport {
    /// Counts of commands and disagreements, verified ones apart.
    pub fn summary(&self) -> Summary {
        let shell = self.rows.iter().filter(|r| r.source == Source::Shell);
        Summary {
            commands: shell.clone().count() as u64,
            commands_verified: shell.filter(|r| r.state.is_verified()).count() as u64,
            disagreements: self.disagreements.len() as u64,
            disagreements_verified: self
                .disagreements
                .iter()
                .filter(|d| d.state().is_verified())
                .count() as u64,
        }
    }
}

#[derive(Debug)]
struct Cmd {
    id: u64,
    t_us: u64,
    cmd: String,
    cwd: Option<String>,
    partial: bool,
    trunc: bool,
    late: bool,
    end_us: Option<u64>,
    exit: Option<i32>,
    pipestatus: Vec<i32>,
    duration_us: Option<u64>,
    state: Coverage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Root,
    Startup,
    Command(usize),
    Unclaimed,
}

/// Build the report from a recording's events in file order. See the module documentation.
pub fn commands_report<'a>(events: impl IntoIterator<Item = MetaInput<'a>>) -> CommandsReport {
    let mut sources = Sources {
        shell_hooks: None,
        proc_root: None,
        proc_period_us: None,
    };
    let mut cmds: Vec<Cmd> = Vec::new();
    let mut cmd_by_id: BTreeMap<u64, usize> = BTreeMap::new();
    let mut procs: Vec<ProcRow> = Vec::new();
    let mut alive: BTreeMap<i32, usize> = BTreeMap::new();
    let mut fg_pgids: Vec<i32> = Vec::new();
    let mut root_execs: Vec<(u64, Vec<String>)> = Vec::new();
    let mut ignored: Vec<(u64, u64, u64, Coverage)> = Vec::new();
    let mut disagreements = Vec::new();
    let mut malformed = 0u64;
    let mut end_us = 0u64;
    let mut blind_at: Option<u64> = None;

    for ev in events {
        end_us = end_us.max(ev.t_us);
        let t = ev.t_us;
        match ev.kind {
            EventKind::Command => match CommandEvent::parse(ev.data) {
                Ok(Some(CommandEvent::Hooks { shell })) => sources.shell_hooks = Some(shell),
                Ok(Some(CommandEvent::Start {
                    id,
                    cmd,
                    cwd,
                    partial,
                    trunc,
                    late,
                    ..
                })) => {
                    cmd_by_id.insert(id, cmds.len());
                    cmds.push(Cmd {
                        id,
                        t_us: t,
                        cmd,
                        cwd,
                        partial,
                        trunc,
                        late,
                        end_us: None,
                        exit: None,
                        pipestatus: Vec::new(),
                        duration_us: None,
                        state: ev.state,
                    });
                }
                Ok(Some(CommandEvent::End {
                    id,
                    exit,
                    pipestatus,
                    duration_us,
                    ..
                })) => match cmd_by_id.get(&id).map(|&i| &mut cmds[i]) {
                    Some(c) if c.end_us.is_none() => {
                        c.end_us = Some(t);
                        c.exit = exit;
                        c.pipestatus = pipestatus;
                        c.duration_us = Some(duration_us);
                        c.state = c.state.and(ev.state);
                    }
                    _ => malformed += 1,
                },
                Ok(Some(CommandEvent::Ignored { marks, bad_nonce })) => {
                    ignored.push((t, marks, bad_nonce, ev.state));
                }
                Ok(Some(_)) | Ok(None) => {}
                Err(_) => malformed += 1,
            },
            EventKind::Process => match ProcessEvent::parse(ev.data) {
                Ok(Some(ProcessEvent::Watch {
                    root, period_us, ..
                })) => {
                    sources.proc_root = Some(root);
                    sources.proc_period_us = Some(period_us);
                }
                Ok(Some(ProcessEvent::Start(s))) => {
                    if let Some(old) = alive.remove(&s.pid) {
                        procs[old].exit_us.get_or_insert(t);
                    }
                    alive.insert(s.pid, procs.len());
                    procs.push(ProcRow {
                        pid: s.pid,
                        ppid: s.ppid,
                        pgid: s.pgid,
                        sid: s.sid,
                        uid: s.uid,
                        euid: s.euid,
                        comm: s.comm,
                        argv: s.argv,
                        earlier_argv: Vec::new(),
                        start_us: t.saturating_sub(s.age_us),
                        seen_us: t,
                        exit_us: None,
                        foreground: false,
                        state: ev.state,
                    });
                }
                Ok(Some(ProcessEvent::Exec {
                    pid,
                    uid,
                    euid,
                    comm,
                    argv,
                    ..
                })) => match alive.get(&pid) {
                    Some(&i) => {
                        let p = &mut procs[i];
                        let old = std::mem::replace(&mut p.argv, argv.clone());
                        p.earlier_argv.push(old);
                        p.comm = comm;
                        p.uid = uid;
                        p.euid = euid;
                        p.state = p.state.and(ev.state);
                        if Some(pid) == sources.proc_root {
                            root_execs.push((t, argv));
                        }
                    }
                    None => malformed += 1,
                },
                Ok(Some(ProcessEvent::Exit { pid })) => match alive.remove(&pid) {
                    Some(i) => {
                        procs[i].exit_us = Some(t);
                        procs[i].state = procs[i].state.and(ev.state);
                    }
                    None => malformed += 1,
                },
                Ok(Some(ProcessEvent::Fg { pgid })) => fg_pgids.push(pgid),
                Ok(Some(ProcessEvent::Blind { reason })) => {
                    blind_at.get_or_insert(t);
                    disagreements.push(Disagreement::ProcIncomplete {
                        t_us: t,
                        reason: format!("process observation stopped: {reason}"),
                        state: ev.state,
                    });
                }
                Ok(Some(ProcessEvent::Overflow { untracked })) => {
                    disagreements.push(Disagreement::ProcIncomplete {
                        t_us: t,
                        reason: format!("{untracked} processes not tracked (too many at once)"),
                        state: ev.state,
                    });
                }
                Ok(Some(_)) | Ok(None) => {}
                Err(_) => malformed += 1,
            },
            _ => {}
        }
    }
    for p in &mut procs {
        p.foreground = fg_pgids.contains(&p.pgid);
    }

    // Claim windows: start .. end (or the session end), cut at an exec of the root process;
    // a late claim's from the previous command's end.
    let mut windows: Vec<(u64, u64)> = Vec::with_capacity(cmds.len());
    for c in &cmds {
        let mut end = c.end_us.unwrap_or(end_us);
        if let Some((t, _)) = root_execs.iter().find(|(t, _)| *t > c.t_us && *t <= end) {
            end = *t;
        }
        let start = if c.late {
            windows.last().map_or(0, |w: &(u64, u64)| w.1 + 1)
        } else {
            c.t_us
        };
        windows.push((start, end));
    }
    let first_claim = cmds.first().map(|c| c.t_us);
    // The command whose window holds time `s` (windows follow each other in time), and the
    // last command claimed at or before `s`.
    let window_of = |s: u64, slack: u64| -> Option<usize> {
        let n = windows.partition_point(|&(a, _)| a <= s + slack);
        (n.saturating_sub(2)..n)
            .rev()
            .find(|&k| s + slack >= windows[k].0 && s <= windows[k].1)
    };
    let claimed_before =
        |s: u64| -> Option<usize> { cmds.partition_point(|c| c.t_us <= s).checked_sub(1) };
    let mut by_pid: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, p) in procs.iter().enumerate() {
        by_pid.entry(p.pid).or_default().push(i);
    }

    // Owners, parents first.
    let mut order: Vec<usize> = (0..procs.len()).collect();
    order.sort_by_key(|&i| (procs[i].start_us, i));
    let mut owner = vec![Owner::Unclaimed; procs.len()];
    for &i in &order {
        let p = &procs[i];
        if Some(p.pid) == sources.proc_root {
            owner[i] = Owner::Root;
            continue;
        }
        let parent = by_pid
            .get(&p.ppid)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&j| {
                let q = &procs[j];
                j != i
                    && q.start_us <= p.start_us
                    && q.exit_us.is_none_or(|e| e + START_SLACK_US >= p.start_us)
            })
            .max_by_key(|&j| procs[j].start_us);
        if let Some(j) = parent {
            if let o @ (Owner::Command(_) | Owner::Startup) = owner[j] {
                owner[i] = o;
                continue;
            }
        }
        let s = p.start_us;
        if let Some(k) = window_of(s, START_SLACK_US) {
            owner[i] = Owner::Command(k);
        } else if first_claim.is_some_and(|f| s < f) {
            owner[i] = Owner::Startup;
        } else if let Some(j) = parent.filter(|&j| owner[j] == Owner::Unclaimed) {
            owner[i] = owner[j];
        }
    }

    // Rows: shell commands with their processes.
    let mut rows: Vec<CommandRow> = cmds
        .iter()
        .map(|c| CommandRow {
            source: Source::Shell,
            id: Some(c.id),
            t_us: c.t_us,
            duration_us: c.duration_us,
            exit: c.exit,
            pipestatus: c.pipestatus.clone(),
            cwd: c.cwd.clone(),
            cmd: c.cmd.clone(),
            partial: c.partial,
            trunc: c.trunc,
            late: c.late,
            processes: Vec::new(),
            state: c.state,
        })
        .collect();
    let mut startup = Vec::new();
    let mut unclaimed: Vec<usize> = Vec::new();
    let mut has_process = vec![false; cmds.len()];
    for &i in &order {
        match owner[i] {
            Owner::Command(k) => {
                has_process[k] = true;
                rows[k].state = rows[k].state.and(procs[i].state);
                rows[k].processes.push(procs[i].clone());
            }
            Owner::Startup => startup.push(procs[i].clone()),
            Owner::Unclaimed => unclaimed.push(i),
            Owner::Root => {}
        }
    }

    // Proc rows: unclaimed processes by process group.
    let mut groups: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for &i in &unclaimed {
        groups.entry(procs[i].pgid).or_default().push(i);
    }
    for members in groups.values() {
        // A pgid can be reused over a long session: split where a member starts after the
        // previous ones all exited.
        let mut run: Vec<usize> = Vec::new();
        let mut run_end: Option<u64> = Some(0);
        for &i in members {
            let p = &procs[i];
            let gap = run_end.is_some_and(|e| p.start_us > e) && !run.is_empty();
            if gap {
                rows.push(proc_row(&procs, &run));
                run.clear();
            }
            run.push(i);
            run_end = match (run_end, p.exit_us) {
                _ if run.len() == 1 => p.exit_us,
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        if !run.is_empty() {
            rows.push(proc_row(&procs, &run));
        }
    }
    rows.sort_by_key(|r| (r.t_us, r.source == Source::Proc));

    // Disagreements about claims (only when hooks were injected).
    if sources.shell_hooks.is_some() {
        let last_claim = cmds.last().map(|c| c.t_us);
        let last_window_end = windows.last().map(|w| w.1);
        let mut silent: Vec<usize> = Vec::new();
        let mut gaps: BTreeMap<Option<u64>, Vec<usize>> = BTreeMap::new();
        for &i in &unclaimed {
            let s = procs[i].start_us;
            let after_last = match (last_claim, last_window_end) {
                (Some(_), Some(e)) => s > e,
                _ => true,
            };
            if after_last {
                silent.push(i);
            } else {
                let before = claimed_before(s).map(|k| cmds[k].id);
                gaps.entry(before).or_default().push(i);
            }
        }
        for (after_id, members) in gaps {
            disagreements.push(Disagreement::Unclaimed {
                t_us: members
                    .iter()
                    .map(|&i| procs[i].start_us)
                    .min()
                    .unwrap_or(0),
                after_id,
                pids: members.iter().map(|&i| procs[i].pid).collect(),
                state: worst(members.iter().map(|&i| procs[i].state)),
            });
        }
        if !silent.is_empty() {
            let since = last_claim.unwrap_or(0);
            let last = cmds.last();
            disagreements.push(Disagreement::HooksSilent {
                since_us: since,
                after_id: last.map(|c| c.id),
                shell_replaced: root_execs.iter().find(|(t, _)| *t >= since).cloned(),
                pids: silent.iter().map(|&i| procs[i].pid).collect(),
                state: worst(
                    silent
                        .iter()
                        .map(|&i| procs[i].state)
                        .chain(last.map(|c| c.state)),
                ),
            });
        }
    }

    // Claims without a process (only when the proc source watched them).
    if let (Some(period), Some(_)) = (sources.proc_period_us, sources.proc_root) {
        for (k, c) in cmds.iter().enumerate() {
            let Some(d) = c.duration_us.filter(|_| c.exit.is_some()) else {
                continue;
            };
            let watched = blind_at.is_none_or(|b| b > windows[k].1);
            if d >= NO_PROCESS_PERIODS * period
                && watched
                && !has_process[k]
                && !is_builtin_line(&c.cmd)
            {
                disagreements.push(Disagreement::NoProcess {
                    t_us: c.t_us,
                    id: c.id,
                    cmd: c.cmd.clone(),
                    duration_us: d,
                    state: c.state,
                });
            }
        }
    }

    // Ignored marks: one entry per run not separated by a claim.
    let mut runs: Vec<Disagreement> = Vec::new();
    for (t, marks, bad, state) in ignored {
        let during = window_of(t, 0).map(|k| cmds[k].id);
        let last_claim_before = claimed_before(t);
        if let Some(Disagreement::IgnoredMarks {
            t_us,
            during_id,
            marks: m,
            bad_nonce: b,
            state: s,
        }) = runs.last_mut()
        {
            let prev_claim = claimed_before(*t_us);
            if prev_claim == last_claim_before && *during_id == during {
                *m += marks;
                *b += bad;
                *s = (*s).and(state);
                continue;
            }
        }
        runs.push(Disagreement::IgnoredMarks {
            t_us: t,
            during_id: during,
            marks,
            bad_nonce: bad,
            state,
        });
    }
    disagreements.extend(runs);
    disagreements.sort_by_key(Disagreement::t_us);

    CommandsReport {
        sources,
        startup,
        rows,
        disagreements,
        malformed,
        end_us,
    }
}

/// The worst of `states` ([`Coverage::and`]); `Unchecked` for none (nothing to vouch for).
fn worst(states: impl Iterator<Item = Coverage>) -> Coverage {
    states.reduce(Coverage::and).unwrap_or(Coverage::Unchecked)
}

fn proc_row(procs: &[ProcRow], members: &[usize]) -> CommandRow {
    let first = &procs[members[0]];
    let start = members
        .iter()
        .map(|&i| procs[i].start_us)
        .min()
        .unwrap_or(0);
    let end = members
        .iter()
        .map(|&i| procs[i].exit_us)
        .try_fold(0u64, |acc, e| e.map(|e| acc.max(e)));
    CommandRow {
        source: Source::Proc,
        id: None,
        t_us: start,
        duration_us: end.map(|e| e.saturating_sub(start)),
        exit: None,
        pipestatus: Vec::new(),
        cwd: None,
        cmd: argv_line(first),
        partial: false,
        trunc: false,
        late: false,
        processes: members.iter().map(|&i| procs[i].clone()).collect(),
        state: worst(members.iter().map(|&i| procs[i].state)),
    }
}

fn argv_line(p: &ProcRow) -> String {
    if p.argv.is_empty() {
        format!("[{}]", p.comm)
    } else {
        p.argv.join(" ")
    }
}

/// Shell builtins and keywords of bash and zsh: a claimed command starting with one may run
/// no process.
const BUILTINS: &[&str] = &[
    "!",
    ".",
    ":",
    "[",
    "[[",
    "{",
    "(",
    "((",
    "alias",
    "autoload",
    "bg",
    "bind",
    "bindkey",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "chdir",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "coproc",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "emulate",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "float",
    "for",
    "function",
    "functions",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "integer",
    "jobs",
    "kill",
    "let",
    "limit",
    "local",
    "logout",
    "mapfile",
    "noglob",
    "popd",
    "print",
    "printf",
    "pushd",
    "pwd",
    "r",
    "read",
    "readarray",
    "readonly",
    "rehash",
    "return",
    "sched",
    "select",
    "set",
    "setopt",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unfunction",
    "unhash",
    "unlimit",
    "unset",
    "unsetopt",
    "until",
    "vared",
    "wait",
    "whence",
    "where",
    "which",
    "while",
    "zle",
    "zmodload",
    "zparseopts",
    "zstyle",
];

/// True when the first word of a command line (after `VAR=value` assignments) is a builtin
/// or keyword of bash or zsh.
fn is_builtin_line(cmd: &str) -> bool {
    let word = cmd
        .split_whitespace()
        .find(|w| !w.contains('=') || w.starts_with('='))
        .unwrap_or("");
    let word = word.trim_end_matches(';');
    BUILTINS.contains(&word) || word.starts_with('(') || word.starts_with('{')
}

/// Session time as `H:MM:SS.d` (e.g. `1:02:03.4`), tenths truncated.
pub fn format_session_time(us: u64) -> String {
    let tenths = us / 100_000;
    let (h, rest) = (tenths / 36_000, tenths % 36_000);
    format!(
        "{}:{:02}:{:02}.{}",
        h,
        rest / 600,
        (rest % 600) / 10,
        rest % 10
    )
}

/// A duration: `0.031s` below a minute, else as [`format_session_time`].
pub fn format_duration(us: u64) -> String {
    if us < 60_000_000 {
        format!("{}.{:03}s", us / 1_000_000, (us % 1_000_000) / 1000)
    } else {
        format_session_time(us)
    }
}

fn state_tag(s: Coverage) -> &'static str {
    match s {
        Coverage::Verified { .. } => "",
        Coverage::Unsealed => "  [UNSEALED: not covered by a verified checkpoint]",
        Coverage::Failed => "  [FAILED VERIFICATION]",
        Coverage::Unchecked => "  [UNCHECKED: read without verifying]",
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '␤' } else { c })
        .collect()
}

fn pids_text(report: &CommandsReport, pids: &[i32]) -> String {
    let find = |pid: i32| {
        report
            .rows
            .iter()
            .flat_map(|r| r.processes.iter())
            .find(|p| p.pid == pid)
    };
    let mut parts: Vec<String> = pids
        .iter()
        .take(5)
        .map(|&pid| match find(pid) {
            Some(p) => format!("{pid} {}", one_line(&argv_line(p))),
            None => pid.to_string(),
        })
        .collect();
    if pids.len() > 5 {
        parts.push(format!("… {} more", pids.len() - 5));
    }
    parts.join(", ")
}

fn cmd_of(report: &CommandsReport, id: Option<u64>) -> String {
    id.and_then(|id| report.rows.iter().find(|r| r.id == Some(id)))
        .map(|r| format!("command {} `{}`", r.id.unwrap_or(0), one_line(&r.cmd)))
        .unwrap_or_else(|| "the session start".into())
}

/// Render the report as text: one row per command (time, duration, exit, cwd, source,
/// command line) with its processes indented below, then the disagreements.
///
/// # Errors
/// I/O errors of `out`.
pub fn write_text(report: &CommandsReport, out: &mut impl Write) -> io::Result<()> {
    let s = &report.sources;
    writeln!(
        out,
        "sources: shell {}; proc {}",
        s.shell_hooks
            .as_deref()
            .map(|sh| format!("hooks ({sh})"))
            .unwrap_or_else(|| "none (no hooks in this recording)".into()),
        match (s.proc_root, s.proc_period_us) {
            (Some(root), Some(p)) => format!("observed (root pid {root}, every {} ms)", p / 1000),
            _ => "none (no process observation in this recording)".into(),
        }
    )?;
    let cwd_w = report
        .rows
        .iter()
        .filter_map(|r| r.cwd.as_ref())
        .map(|c| c.chars().count().min(30))
        .max()
        .unwrap_or(1)
        .max(3);
    writeln!(
        out,
        "{:<11} {:>9} {:>4}  {:<cwd_w$}  {:<5}  COMMAND",
        "TIME", "DURATION", "EXIT", "CWD", "SRC"
    )?;
    let proc_line = |out: &mut dyn Write, p: &ProcRow| -> io::Result<()> {
        let uid = if p.uid == p.euid {
            format!("uid {}", p.uid)
        } else {
            format!("uid {} euid {}", p.uid, p.euid)
        };
        writeln!(
            out,
            "{:<11} {:>9} {:>4}  {:<cwd_w$}  {:<5}    {} {}  ({uid}{}){}",
            "",
            "",
            "",
            "",
            "",
            p.pid,
            one_line(&argv_line(p)),
            if p.exit_us.is_none() {
                ", still running"
            } else {
                ""
            },
            state_tag(p.state)
        )
    };
    if !report.startup.is_empty() {
        writeln!(
            out,
            "{:<11} {:>9} {:>4}  {:<cwd_w$}  {:<5}  (startup files)",
            format_session_time(report.startup[0].start_us),
            "",
            "",
            "",
            "proc"
        )?;
        for p in &report.startup {
            proc_line(out, p)?;
        }
    }
    for r in &report.rows {
        let cwd = r.cwd.as_deref().map(one_line).unwrap_or_default();
        let cwd = if cwd.chars().count() > 30 {
            let tail: String = cwd
                .chars()
                .rev()
                .take(29)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("…{tail}")
        } else {
            cwd
        };
        let mut flags = String::new();
        if r.partial {
            flags.push_str("  (first command only)");
        }
        if r.trunc {
            flags.push_str("  (cut)");
        }
        if r.late {
            flags.push_str("  (claimed after it ran)");
        }
        if r.source == Source::Proc {
            flags.push_str("  (no claim)");
        }
        writeln!(
            out,
            "{:<11} {:>9} {:>4}  {:<cwd_w$}  {:<5}  {}{}{}",
            format_session_time(r.t_us),
            r.duration_us
                .map(format_duration)
                .unwrap_or_else(|| "-".into()),
            r.exit.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
            cwd,
            match r.source {
                Source::Shell => "shell",
                Source::Proc => "proc",
            },
            one_line(&r.cmd),
            flags,
            state_tag(r.state)
        )?;
        if r.source == Source::Shell || r.processes.len() > 1 {
            for p in &r.processes {
                proc_line(out, p)?;
            }
        }
    }
    if report.disagreements.is_empty() {
        writeln!(out, "disagreements: none")?;
    } else {
        writeln!(out, "disagreements: {}", report.disagreements.len())?;
    }
    for d in &report.disagreements {
        let text = match d {
            Disagreement::HooksSilent {
                since_us,
                after_id,
                shell_replaced,
                pids,
                ..
            } => {
                let mut t = format!(
                    "shell hooks silent since {} (after {}): {} process(es) ran without a claim: {}",
                    format_session_time(*since_us),
                    cmd_of(report, *after_id),
                    pids.len(),
                    pids_text(report, pids)
                );
                if let Some((at, argv)) = shell_replaced {
                    t.push_str(&format!(
                        "; the shell was replaced by `{}` at {}",
                        one_line(&argv.join(" ")),
                        format_session_time(*at)
                    ));
                }
                t
            }
            Disagreement::Unclaimed { after_id, pids, .. } => format!(
                "{} process(es) without a claimed command (after {}): {}",
                pids.len(),
                cmd_of(report, *after_id),
                pids_text(report, pids)
            ),
            Disagreement::NoProcess {
                id, duration_us, ..
            } => format!(
                "{} ran {} and no process was observed",
                cmd_of(report, Some(*id)),
                format_duration(*duration_us)
            ),
            Disagreement::IgnoredMarks {
                during_id,
                marks,
                bad_nonce,
                ..
            } => format!(
                "{marks} OSC 133 mark(s) without this session's nonce ignored ({bad_nonce} with a wrong nonce) during {}: output imitating shell integration",
                during_id
                    .map(|id| cmd_of(report, Some(id)))
                    .unwrap_or_else(|| "no command".into())
            ),
            Disagreement::ProcIncomplete { reason, .. } => reason.clone(),
        };
        writeln!(
            out,
            "  {:<11} {text}{}",
            format_session_time(d.t_us()),
            state_tag(d.state())
        )?;
    }
    if report.malformed > 0 {
        writeln!(
            out,
            "note: {} command/process event(s) did not parse and were skipped",
            report.malformed
        )?;
    }
    Ok(())
}

/// Render the report as one JSON object (the [`CommandsReport`] fields, times in µs) and a
/// newline.
///
/// # Errors
/// I/O errors of `out`.
pub fn write_json(report: &CommandsReport, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_format::{ProcStart, SHELL_SOURCE};

    use Coverage::{Failed, Unsealed};

    /// Verified by checkpoint 1.
    const V: Coverage = Coverage::Verified { checkpoint: 1 };

    /// Builds an event list the way a recorder would write it.
    #[derive(Default)]
    struct Rec {
        ev: Vec<(u64, EventKind, String, Coverage)>,
        state: Option<Coverage>,
    }

    impl Rec {
        fn st(&self) -> Coverage {
            self.state.unwrap_or(V)
        }
        fn c(&mut self, t: u64, e: CommandEvent) -> &mut Self {
            let s = self.st();
            self.ev.push((t, EventKind::Command, e.to_json(), s));
            self
        }
        fn p(&mut self, t: u64, e: ProcessEvent) -> &mut Self {
            let s = self.st();
            self.ev.push((t, EventKind::Process, e.to_json(), s));
            self
        }
        fn hooks(&mut self) -> &mut Self {
            self.c(
                0,
                CommandEvent::Hooks {
                    shell: "bash".into(),
                },
            )
        }
        fn watch(&mut self, root: i32) -> &mut Self {
            self.p(
                0,
                ProcessEvent::Watch {
                    root,
                    sid: root,
                    period_us: 250_000,
                },
            )
        }
        fn start(&mut self, t: u64, id: u64, cmd: &str) -> &mut Self {
            self.c(
                t,
                CommandEvent::Start {
                    id,
                    src: SHELL_SOURCE.into(),
                    cmd: cmd.into(),
                    cwd: Some("/home/a".into()),
                    partial: false,
                    trunc: false,
                    late: false,
                },
            )
        }
        fn end(&mut self, t: u64, id: u64, exit: Option<i32>, start: u64) -> &mut Self {
            self.c(
                t,
                CommandEvent::End {
                    id,
                    src: SHELL_SOURCE.into(),
                    exit,
                    pipestatus: vec![],
                    duration_us: t - start,
                },
            )
        }
        fn proc(&mut self, t: u64, pid: i32, ppid: i32, age: u64, argv: &[&str]) -> &mut Self {
            self.p(
                t,
                ProcessEvent::Start(ProcStart {
                    pid,
                    ppid,
                    pgid: pid,
                    sid: 100,
                    uid: 1000,
                    euid: 1000,
                    age_us: age,
                    comm: argv[0].chars().take(15).collect(),
                    argv: argv.iter().map(|s| s.to_string()).collect(),
                    trunc: false,
                }),
            )
        }
        fn exit(&mut self, t: u64, pid: i32) -> &mut Self {
            self.p(t, ProcessEvent::Exit { pid })
        }
        fn report(&self) -> CommandsReport {
            commands_report(self.ev.iter().map(|(t, kind, data, state)| MetaInput {
                t_us: *t,
                kind,
                data,
                state: *state,
            }))
        }
    }

    const S: u64 = 1_000_000;

    fn pids(r: &CommandRow) -> Vec<i32> {
        r.processes.iter().map(|p| p.pid).collect()
    }

    #[test]
    fn processes_are_grouped_under_their_command() {
        let mut r = Rec::default();
        r.hooks().watch(100).proc(0, 100, 1, 0, &["-bash"]);
        // Startup files ran lesspipe before the first prompt.
        r.proc(300_000, 101, 100, 50_000, &["lesspipe"])
            .exit(550_000, 101);
        r.start(S, 1, "ls | wc -l")
            .proc(S + 250_000, 102, 100, 240_000, &["ls"]);
        r.proc(S + 250_000, 103, 100, 240_000, &["wc", "-l"]);
        r.exit(S + 500_000, 102)
            .exit(S + 500_000, 103)
            .end(S + 400_000, 1, Some(0), S);
        // A background job: its later children belong to it through their parent.
        r.start(3 * S, 2, "(while :; do date; sleep 1; done) &");
        r.proc(3 * S + 100_000, 110, 100, 90_000, &["-bash"]);
        r.end(3 * S + 20_000, 2, Some(0), 3 * S);
        r.proc(5 * S, 111, 110, 10_000, &["sleep", "1"]);
        r.start(6 * S, 3, "cd /tmp")
            .end(6 * S + 1000, 3, Some(0), 6 * S);
        let rep = r.report();
        assert_eq!(rep.startup.iter().map(|p| p.pid).collect::<Vec<_>>(), [101]);
        assert_eq!(rep.rows.len(), 3);
        assert_eq!(pids(&rep.rows[0]), [102, 103]);
        assert_eq!(pids(&rep.rows[1]), [110, 111]);
        assert!(pids(&rep.rows[2]).is_empty());
        assert!(rep.disagreements.is_empty(), "{:?}", rep.disagreements);
        assert_eq!(
            rep.summary(),
            Summary {
                commands: 3,
                commands_verified: 3,
                disagreements: 0,
                disagreements_verified: 0
            }
        );
        let mut text = Vec::new();
        write_text(&rep, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("0:00:01.0"), "{text}");
        assert!(text.contains("ls | wc -l"), "{text}");
        assert!(text.contains("102 ls"), "{text}");
        assert!(text.contains("disagreements: none"), "{text}");
    }

    #[test]
    fn hooks_that_go_silent_are_reported_with_their_time() {
        let mut r = Rec::default();
        r.hooks().watch(100).proc(0, 100, 1, 0, &["-bash"]);
        r.start(S, 1, "ls")
            .proc(S + 100_000, 101, 100, 90_000, &["ls"])
            .exit(S + 350_000, 101);
        r.end(S + 200_000, 1, Some(0), S);
        // `exec sh`: claimed, then the shell is replaced and nothing is claimed again.
        r.start(2 * S, 2, "exec sh");
        r.p(
            2 * S + 100_000,
            ProcessEvent::Exec {
                pid: 100,
                uid: 1000,
                euid: 1000,
                comm: "sh".into(),
                argv: vec!["sh".into()],
                trunc: false,
            },
        );
        r.proc(4 * S, 120, 100, 100_000, &["curl", "evil"]);
        r.proc(5 * S, 121, 100, 100_000, &["sh", "-c", "x"]);
        r.end(9 * S, 2, None, 2 * S); // closed by the recorder at the end
        let rep = r.report();
        assert_eq!(rep.disagreements.len(), 1, "{:?}", rep.disagreements);
        let Disagreement::HooksSilent {
            since_us,
            after_id,
            shell_replaced,
            pids,
            state,
        } = &rep.disagreements[0]
        else {
            panic!("{:?}", rep.disagreements)
        };
        assert_eq!(
            (*since_us, *after_id, pids.as_slice(), *state),
            (2 * S, Some(2), &[120, 121][..], V)
        );
        assert_eq!(
            shell_replaced.as_ref(),
            Some(&(2 * S + 100_000, vec!["sh".to_string()]))
        );
        // The unclaimed processes are proc rows.
        let proc_rows: Vec<_> = rep
            .rows
            .iter()
            .filter(|r| r.source == Source::Proc)
            .collect();
        assert_eq!(proc_rows.len(), 2);
        assert_eq!(proc_rows[0].cmd, "curl evil");
        let mut text = Vec::new();
        write_text(&rep, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("shell hooks silent since 0:00:02.0"),
            "{text}"
        );
        assert!(text.contains("replaced by `sh`"), "{text}");
    }

    #[test]
    fn unclaimed_processes_between_claims_and_claims_without_processes() {
        let mut r = Rec::default();
        r.hooks().watch(100).proc(0, 100, 1, 0, &["-bash"]);
        r.start(S, 1, "ls").end(S + 10_000, 1, Some(0), S);
        // Something the prompt ran (PROMPT_COMMAND) between claims.
        r.proc(2 * S, 130, 100, 10_000, &["curl", "x"])
            .exit(2 * S + 250_000, 130);
        // A long external command without a process: suspicious. A long builtin: not.
        r.start(3 * S, 2, "make -j4").end(5 * S, 2, Some(2), 3 * S);
        r.start(6 * S, 3, "read -r x").end(9 * S, 3, Some(0), 6 * S);
        r.start(10 * S, 4, "FOO=1 wait")
            .end(12 * S, 4, Some(0), 10 * S);
        let rep = r.report();
        let kinds: Vec<String> = rep
            .disagreements
            .iter()
            .map(|d| {
                format!("{d:?}")
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(kinds, ["Unclaimed", "NoProcess"], "{:?}", rep.disagreements);
        assert!(matches!(
            &rep.disagreements[0],
            Disagreement::Unclaimed { after_id: Some(1), pids, .. } if pids == &[130]
        ));
        assert!(matches!(
            &rep.disagreements[1],
            Disagreement::NoProcess { id: 2, duration_us, .. } if *duration_us == 2 * S
        ));
    }

    #[test]
    fn no_hooks_means_no_claim_disagreements_and_proc_rows_per_group() {
        // A `sh` session: proc source only.
        let mut r = Rec::default();
        r.watch(100).proc(0, 100, 1, 0, &["sh"]);
        r.proc(S, 101, 100, 10_000, &["ls"]).exit(S + 250_000, 101);
        r.proc(2 * S, 102, 100, 10_000, &["sleep", "5"]);
        let rep = r.report();
        assert!(rep.disagreements.is_empty());
        assert_eq!(rep.rows.len(), 2);
        assert!(rep.rows.iter().all(|r| r.source == Source::Proc));
        assert_eq!(rep.rows[0].duration_us, Some(250_000 + 10_000));
        assert_eq!(rep.rows[1].duration_us, None);
        assert_eq!(rep.summary().commands, 0);
        // And a recording with neither source has nothing to report.
        let empty = Rec::default().report();
        assert!(empty.rows.is_empty() && empty.disagreements.is_empty());
    }

    #[test]
    fn ignored_marks_and_blindness_are_reported() {
        let mut r = Rec::default();
        r.hooks().watch(100);
        r.start(S, 1, "cat evil.txt");
        r.c(
            S + 1000,
            CommandEvent::Ignored {
                marks: 2,
                bad_nonce: 1,
            },
        );
        r.c(
            S + 2000,
            CommandEvent::Ignored {
                marks: 1,
                bad_nonce: 0,
            },
        );
        r.end(S + 3000, 1, Some(0), S);
        r.p(
            2 * S,
            ProcessEvent::Blind {
                reason: "hidepid".into(),
            },
        );
        // With the proc source blind, a long command without a process is not suspicious.
        r.start(3 * S, 2, "make").end(8 * S, 2, Some(0), 3 * S);
        let rep = r.report();
        assert_eq!(rep.disagreements.len(), 2, "{:?}", rep.disagreements);
        assert_eq!(
            rep.disagreements[0],
            Disagreement::IgnoredMarks {
                t_us: S + 1000,
                during_id: Some(1),
                marks: 3,
                bad_nonce: 1,
                state: V
            }
        );
        assert!(
            matches!(&rep.disagreements[1], Disagreement::ProcIncomplete { reason, .. } if reason.contains("hidepid"))
        );
    }

    #[test]
    fn unverified_parts_are_marked_and_not_counted_as_verified() {
        let mut r = Rec::default();
        r.hooks().watch(100).proc(0, 100, 1, 0, &["-bash"]);
        r.start(S, 1, "ls").end(S + 1000, 1, Some(0), S);
        r.state = Some(Unsealed);
        r.start(2 * S, 2, "rm -rf x")
            .proc(2 * S + 100_000, 140, 100, 50_000, &["rm", "-rf", "x"]);
        r.state = Some(Failed);
        r.end(2 * S + 300_000, 2, Some(0), 2 * S);
        r.start(3 * S, 3, "true").end(3 * S + 10, 3, Some(0), 3 * S);
        let rep = r.report();
        let states: Vec<_> = rep.rows.iter().map(|r| r.state).collect();
        assert_eq!(states, [V, Failed, Failed]);
        assert_eq!(rep.rows[1].processes[0].state, Unsealed);
        assert_eq!(
            rep.summary(),
            Summary {
                commands: 3,
                commands_verified: 1,
                disagreements: 0,
                disagreements_verified: 0
            }
        );
        let mut text = Vec::new();
        write_text(&rep, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let rm = text
            .lines()
            .find(|l| l.contains("rm -rf x") && l.contains("shell"))
            .unwrap();
        assert!(rm.contains("[FAILED VERIFICATION]"), "{text}");
        let proc_line = text.lines().find(|l| l.contains("140 rm")).unwrap();
        assert!(proc_line.contains("[UNSEALED"), "{text}");
        let ls = text.lines().find(|l| l.ends_with(" ls")).unwrap();
        assert!(!ls.contains('['), "{ls}");
        let mut json = Vec::new();
        write_json(&rep, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["rows"][1]["state"], "failed");
        assert_eq!(v["rows"][0]["cmd"], "ls");
        assert_eq!(v["rows"][0]["source"], "shell");
    }

    /// Events read without a trust store (`Coverage::Unchecked`, what `Reader::open` gives)
    /// make a report in which nothing counts as verified and every row says so.
    #[test]
    fn an_unchecked_read_counts_nothing_as_verified() {
        let mut r = Rec {
            state: Some(Coverage::Unchecked),
            ..Rec::default()
        };
        r.hooks().watch(100).proc(0, 100, 1, 0, &["-bash"]);
        r.start(S, 1, "ls").end(S + 1000, 1, Some(0), S);
        r.proc(2 * S, 150, 100, 0, &["curl", "x"]);
        let rep = r.report();
        assert!(rep.rows.iter().all(|r| r.state == Coverage::Unchecked));
        let summary = rep.summary();
        assert_eq!((summary.commands, summary.commands_verified), (1, 0));
        assert_eq!(summary.disagreements_verified, 0);
        assert!(summary.disagreements > 0, "{:?}", rep.disagreements);
        let mut text = Vec::new();
        write_text(&rep, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("  [")).collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert!(rows
            .iter()
            .all(|l| l.ends_with("[UNCHECKED: read without verifying]")));
        let mut json = Vec::new();
        write_json(&rep, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["rows"][0]["state"], "unchecked");
    }

    #[test]
    fn reused_pids_and_malformed_events() {
        let mut r = Rec::default();
        r.hooks().watch(100);
        r.start(S, 1, "a")
            .proc(S + 1, 150, 100, 0, &["a"])
            .end(S + 10, 1, Some(0), S);
        // pid 150 reused without a seen exit: the first one is closed.
        r.start(2 * S, 2, "b")
            .proc(2 * S + 1, 150, 100, 0, &["b"])
            .end(2 * S + 10, 2, Some(0), 2 * S);
        r.ev.push((3 * S, EventKind::Command, "{not json".into(), V));
        r.ev.push((
            3 * S,
            EventKind::Process,
            r#"{"ev":"exit","pid":999}"#.into(),
            V,
        ));
        r.ev.push((
            3 * S,
            EventKind::Command,
            r#"{"ev":"future","x":1}"#.into(),
            V,
        ));
        let rep = r.report();
        assert_eq!(pids(&rep.rows[0]), [150]);
        assert_eq!(pids(&rep.rows[1]), [150]);
        assert_eq!(rep.rows[0].processes[0].exit_us, Some(2 * S + 1));
        assert_eq!(rep.malformed, 2);
        assert_eq!(rep.end_us, 3 * S);
    }

    #[test]
    fn a_late_claim_covers_the_time_since_the_previous_command() {
        let mut r = Rec::default();
        r.hooks().watch(100).proc(0, 100, 1, 0, &["-bash"]);
        r.start(S, 1, "ls").end(S + 10_000, 1, Some(0), S);
        // `(sleep 1) | (cat)`: its processes ran before bash claimed the line.
        r.proc(2 * S, 160, 100, 50_000, &["-bash"])
            .proc(2 * S, 161, 100, 50_000, &["-bash"]);
        r.exit(3 * S, 160).exit(3 * S, 161);
        r.c(
            3 * S + 1000,
            CommandEvent::Start {
                id: 2,
                src: SHELL_SOURCE.into(),
                cmd: "(sleep 1) | (cat)".into(),
                cwd: None,
                partial: false,
                trunc: false,
                late: true,
            },
        );
        r.end(3 * S + 2000, 2, Some(0), 3 * S + 1000);
        let rep = r.report();
        assert!(rep.disagreements.is_empty(), "{:?}", rep.disagreements);
        assert_eq!(pids(&rep.rows[1]), [160, 161]);
        assert!(rep.rows[1].late);
    }

    #[test]
    fn builtins_and_times() {
        for b in [
            "cd /tmp",
            "FOO=1 BAR=2 export X",
            "{ ls; }",
            "(ls)",
            "[[ -f x ]]",
            "wait",
        ] {
            assert!(is_builtin_line(b), "{b}");
        }
        for c in ["ls", "FOO=1 make", "sudo -i", "/bin/echo x", ""] {
            assert!(!is_builtin_line(c) || c.is_empty(), "{c}");
        }
        assert_eq!(format_session_time(0), "0:00:00.0");
        assert_eq!(format_session_time(3_723_450_000), "1:02:03.4");
        assert_eq!(format_duration(31_400), "0.031s");
        assert_eq!(format_duration(61_000_000), "0:01:01.0");
    }
}
