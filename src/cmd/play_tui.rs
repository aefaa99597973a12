//! `sealcast play` on a terminal: the adapter between today's reading crate
//! (`sealcast_player::verify_bytes` and its `Report`) and the player (`sealcast-tui`), and
//! the start of the player.
//!
//! This is the only place the player touches `sealcast-player`: the player reads frames
//! itself (through `sealcast-format`) and receives verification as a
//! [`sealcast_tui::VerifySummary`]; each event's state (verified by checkpoint `seq`,
//! unsealed, failed) follows from `Report::verified_lines` (checkpoints cover whole frames,
//! SPEC §1). When the `reader` crate exists, this module is re-pointed at it.
//!
//! Exit codes: 0 after the user quits; 1 when the file is not a playable recording or
//! cannot be read (one line on stderr, the terminal untouched); 3 for bad options; 4 for a
//! library directory that cannot be listed and terminal I/O errors.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use sealcast_player::{verify_bytes, Report, Status};
use sealcast_signer::TrustStore;
use sealcast_tui::{Hooks, Library, Outcome, PlayerOptions, Recording, Start, VerifySummary};

use crate::cmd::verify::load_trust;
use crate::cmd::UsageError;
use crate::PlayArgs;

/// The player's view of a verification report.
pub fn summary(r: &Report) -> VerifySummary {
    let outcome = match r.status {
        Status::Ok => Outcome::Sealed,
        Status::UnsealedTail | Status::Unclosed => Outcome::Unsealed,
        Status::Format => Outcome::Unsigned,
        Status::Unreadable => Outcome::Unverifiable,
        _ => Outcome::Broken,
    };
    VerifySummary {
        outcome,
        status: r.status.as_str().to_string(),
        reason: r.reason.clone(),
        signer: r.signer.clone(),
        key_id: r.key_id.clone(),
        verified_lines: r.verified_lines,
    }
}

/// The commands report (`sealcast_player::commands`, SPEC §2.4.5) over the player's `c`/`p`
/// events, as panel additions: each shell command's sources (with the processes seen in it),
/// rows for process groups no claim covers, and the disagreements, each with the worst
/// verification state of the events it comes from. An event the player could not yet call
/// verified (`Pending`) counts as unsealed here, never as verified.
pub fn commands_overlay(meta: &[sealcast_tui::MetaEvent]) -> sealcast_tui::CommandsOverlay {
    use sealcast_player::commands::{self as cm, Disagreement, Source};
    use sealcast_tui::{PanelKind, PanelRow, Verification as V};
    let to_player = |v: V| match v {
        V::Verified { .. } => cm::Verification::Verified,
        V::Failed => cm::Verification::Failed,
        V::Pending | V::Unsealed => cm::Verification::Unsealed,
    };
    // The report's state back to the panel's (a verified row keeps no checkpoint number).
    let to_tui = |v: cm::Verification| match v {
        cm::Verification::Verified => V::Verified { seq: 0 },
        cm::Verification::Unsealed => V::Unsealed,
        cm::Verification::Failed => V::Failed,
    };
    let report = cm::commands_report(meta.iter().map(|m| cm::MetaInput {
        t_us: m.t_us,
        code: &m.code,
        data: &m.data,
        state: to_player(m.state),
    }));
    let cmd_of = |id: Option<u64>| match id {
        Some(id) => report
            .rows
            .iter()
            .find(|r| r.id == Some(id))
            .map(|r| format!("#{id} {}", r.cmd))
            .unwrap_or_else(|| format!("#{id}")),
        None => "the session start".into(),
    };
    let procs = |n: usize, names: Vec<&str>| -> String {
        let mut names: Vec<&str> = names;
        names.dedup();
        names.truncate(3);
        format!(
            "{n} process{} ({})",
            if n == 1 { "" } else { "es" },
            names.join(", ")
        )
    };
    let mut out = sealcast_tui::CommandsOverlay::default();
    for r in &report.rows {
        let names = r.processes.iter().map(|p| p.comm.as_str()).collect();
        let seen = if r.processes.is_empty() {
            "no process seen".to_string()
        } else {
            procs(r.processes.len(), names)
        };
        match (r.source, r.id) {
            (Source::Shell, Some(id)) => {
                let mut src = String::from("shell");
                for (flag, word) in [(r.partial, "partial"), (r.late, "late"), (r.trunc, "cut")] {
                    if flag {
                        src.push_str(" · ");
                        src.push_str(word);
                    }
                }
                if report.sources.proc_root.is_some() {
                    src.push_str(&format!(" · proc: {seen}"));
                }
                out.sources.push((id, src));
            }
            _ => {
                let mut row = PanelRow::new(
                    r.t_us,
                    r.duration_us.unwrap_or(0),
                    PanelKind::Command {
                        id: None,
                        cwd: None,
                        pipestatus: Vec::new(),
                        sources: format!("proc only (no claim) · {seen}"),
                    },
                    r.cmd.clone(),
                );
                row.verification = to_tui(r.state);
                out.rows.push(row);
            }
        }
    }
    for d in &report.disagreements {
        let text = match d {
            Disagreement::HooksSilent {
                after_id,
                shell_replaced,
                pids,
                ..
            } => {
                let mut t = format!(
                    "hooks silent after {}: {} unclaimed process(es)",
                    cmd_of(*after_id),
                    pids.len()
                );
                if let Some((_, argv)) = shell_replaced {
                    t.push_str(&format!("; shell replaced by {}", argv.join(" ")));
                }
                t
            }
            Disagreement::Unclaimed { after_id, pids, .. } => format!(
                "{} process(es) without a claim (after {})",
                pids.len(),
                cmd_of(*after_id)
            ),
            Disagreement::NoProcess { id, .. } => {
                format!("claim without a process: {}", cmd_of(Some(*id)))
            }
            Disagreement::IgnoredMarks {
                marks, bad_nonce, ..
            } => format!("{marks} OSC 133 mark(s) ignored ({bad_nonce} with a wrong nonce)"),
            Disagreement::ProcIncomplete { reason, .. } => {
                format!("proc source incomplete: {reason}")
            }
            _ => "disagreement between the shell and proc sources".into(),
        };
        let mut row = PanelRow::new(d.t_us(), 0, PanelKind::Disagreement, text);
        row.verification = to_tui(d.state());
        out.rows.push(row);
    }
    out
}

/// A summary saying the file could not be verified, and why.
fn unverifiable(why: String) -> VerifySummary {
    VerifySummary {
        outcome: Outcome::Unverifiable,
        status: "UNVERIFIED".into(),
        reason: why,
        signer: None,
        key_id: None,
        verified_lines: 0,
    }
}

/// Verify `path` (with its seal receipt when there is one) against `trust`.
pub fn verify_path(path: &Path, trust: &TrustStore) -> VerifySummary {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return summary(&Report::unreadable(e.to_string())),
    };
    let receipt_path = sealcast_recorder::archive::receipt_path(path);
    let receipt = match fs::read(&receipt_path) {
        Ok(r) => Some(r),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return unverifiable(format!("seal receipt {}: {e}", receipt_path.display())),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return summary(&verify_bytes(&[], receipt.as_deref(), trust));
    }
    // SAFETY: read-only private mapping of a recording (append-only while written).
    match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => summary(&verify_bytes(&m, receipt.as_deref(), trust)),
        Err(e) => summary(&Report::unreadable(e.to_string())),
    }
}

/// True while another process (the recorder) holds the file's `flock` (SPEC §5.1).
pub fn is_live(path: &Path) -> bool {
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; a shared non-blocking lock is released on close.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// The trust store for the badge: `--trusted`, else the dev trust file; `Err(why)` when
/// there is none (the player then says NOT VERIFIED, it still plays).
fn trust(explicit: Option<&Path>) -> Result<std::result::Result<TrustStore, String>> {
    match explicit {
        Some(p) => Ok(Ok(load_trust(Some(p))?.1)),
        None => Ok(match load_trust(None) {
            Ok((_, t)) => Ok(t),
            Err(e) => Err(format!("{e:#}")),
        }),
    }
}

/// Run the player (see the module docs).
///
/// # Errors
/// [`UsageError`] for bad options or an unusable `--trusted` file; I/O errors.
pub fn run(a: PlayArgs) -> Result<u8> {
    let at_us = match &a.at {
        None => None,
        Some(t) => Some(sealcast_tui::parse_time(t).ok_or_else(|| {
            UsageError(format!("--at: not a time: {t} (try 1h2m3s, 83.5, 1:02)"))
        })?),
    };
    if !(a.speed.is_finite() && a.speed > 0.0) {
        return Err(UsageError(format!(
            "--speed must be a positive number, not {}",
            a.speed
        ))
        .into());
    }
    let trust = Arc::new(trust(a.trusted.as_deref())?);
    let verify = {
        let trust = Arc::clone(&trust);
        Arc::new(move |p: &Path| match trust.as_ref() {
            Ok(t) => verify_path(p, t),
            Err(why) => unverifiable(why.clone()),
        })
    };
    let hooks = Hooks {
        verify,
        is_live: Arc::new(is_live),
        commands: Some(Arc::new(commands_overlay)),
    };
    let target = match a.file.clone() {
        Some(f) => f,
        None => {
            let archive = crate::paths::archive()?;
            if !archive.is_dir() {
                eprintln!(
                    "sealcast: no recordings: the archive {} does not exist (give a file or a directory)",
                    archive.display()
                );
                return Ok(1);
            }
            archive
        }
    };
    let start = if target.is_dir() {
        match Library::scan(&target) {
            Ok(l) => Start::Library(l),
            Err(e) => {
                eprintln!("sealcast: {}: {e}", target.display());
                return Ok(4);
            }
        }
    } else {
        let opened = if a.follow {
            Recording::open_live(&target)
        } else {
            Recording::open(&target)
        };
        match opened {
            Ok(r) => Start::Player(
                Box::new(r),
                PlayerOptions {
                    at_us,
                    follow: a.follow,
                    speed: Some(a.speed),
                    idle: a.idle_limit.is_some(),
                },
            ),
            Err(sealcast_tui::OpenError::Io { source, .. }) => {
                eprintln!("sealcast: {}: {source}", target.display());
                return Ok(1);
            }
            Err(e) => {
                eprintln!("sealcast: {}: {e}", target.display());
                return Ok(1);
            }
        }
    };
    sealcast_tui::run(start, hooks)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every test vector gets the badge its verification status calls for, through the real
    /// adapter (receipts included): tampering is Broken, a crash Unsealed, OK Sealed.
    #[test]
    fn vectors_map_to_badges() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors");
        let trust =
            TrustStore::parse(&fs::read_to_string(dir.join("allowed_signers")).unwrap()).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let mut n = 0;
        for (name, v) in expected.as_object().unwrap() {
            let s = verify_path(&dir.join(format!("{name}.cast.zst")), &trust);
            let status = v["status"].as_str().unwrap();
            assert_eq!(s.status, status, "{name}");
            let want = match status {
                "OK" => Outcome::Sealed,
                "UNSEALED_TAIL" | "UNCLOSED" => Outcome::Unsealed,
                "FORMAT" => Outcome::Unsigned,
                _ => Outcome::Broken,
            };
            assert_eq!(s.outcome, want, "{name}");
            n += 1;
        }
        assert!(n > 20);
    }

    /// The commands vector through the player's scan and this adapter: the shell commands
    /// get the processes the recorder saw in them, and the disagreements of `sealcast
    /// commands` (forged marks, hooks silent after the shell was replaced) become rows, all
    /// verified (an OK file).
    #[test]
    fn commands_vector_gets_sources_and_disagreements() {
        use sealcast_tui::{PanelKind, Verification};
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors");
        let trust =
            TrustStore::parse(&fs::read_to_string(dir.join("allowed_signers")).unwrap()).unwrap();
        let path = dir.join("valid-commands.cast.zst");
        let summary = verify_path(&path, &trust);
        assert_eq!(summary.outcome, Outcome::Sealed);
        let rec = Recording::from_bytes(fs::read(&path).unwrap()).unwrap();
        let meta = rec.meta_events(&summary);
        assert!(meta
            .iter()
            .all(|m| matches!(m.state, Verification::Verified { .. })));
        let o = commands_overlay(&meta);
        let src1 = &o.sources.iter().find(|(id, _)| *id == 1).unwrap().1;
        assert!(
            src1.starts_with("shell · proc: 2 processes (ls, wc)"),
            "{src1}"
        );
        let texts: Vec<&str> = o
            .rows
            .iter()
            .filter(|r| r.kind == PanelKind::Disagreement)
            .map(|r| r.text.as_str())
            .collect();
        assert!(
            texts.iter().any(|t| t.contains("OSC 133 mark(s) ignored")),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("hooks silent")),
            "{texts:?}"
        );
        assert!(o
            .rows
            .iter()
            .all(|r| matches!(r.verification, Verification::Verified { .. })));
        // Before verification nothing counts as verified.
        let pending: Vec<_> = meta
            .iter()
            .map(|m| sealcast_tui::MetaEvent {
                state: Verification::Pending,
                ..m.clone()
            })
            .collect();
        let o = commands_overlay(&pending);
        assert!(o
            .rows
            .iter()
            .all(|r| r.verification == Verification::Unsealed));
    }
}
