//! `sealcast play` on a terminal: the adapter between the reading crate (`sealcast-reader`:
//! a verifying [`Reader`], its events' [`Coverage`] and the file's [`Report`]) and the player
//! (`sealcast-tui`), and the start of the player.
//!
//! This is the only place the player touches verification: the player reads frames itself
//! (through `sealcast-format`) and receives verification as a
//! [`sealcast_tui::VerifySummary`]. The player's own bytes (the mapping of the descriptor
//! it opened, [`Recording::bytes`]; never the path opened a second time) are read once, on
//! the player's background thread, by [`Reader::verifying_observed`] with the context
//! `sealcast verify` uses (file name, seal receipt): each event's state is its coverage
//! (verified by checkpoint `seq`, unsealed, failed), the badge is the report's status, the
//! one `verify` gives, and each verified frame's content digest goes with them, for the
//! player to check every frame it draws against (SPEC §7.2).
//!
//! An `s3://BUCKET/KEY` target is fetched first ([`crate::cmd::play_object`]: an unlinked
//! temporary file and the `<KEY>.seal` receipt object) and verified as a file named like the
//! key's last component beside that receipt.
//!
//! Exit codes: 0 after the user quits; 1 when the file is not a playable recording or
//! cannot be read, or the object cannot be fetched (one line on stderr naming the file or
//! URL, the terminal untouched); 3 for bad options; 4 for a library directory that cannot be
//! listed and terminal I/O errors.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use sealcast_reader::{verify_recording, Context, Coverage, Reader, ReceiptFile, Report, Status};
use sealcast_signer::TrustStore;
use sealcast_tui::{
    Hooks, Library, Outcome, PlayerOptions, Recording, Start, Verification, VerifyHook,
    VerifySummary,
};

use crate::cmd::verify::{context, load_trust};
use crate::cmd::{play_object, UsageError};
use crate::PlayArgs;

/// The player's view of a verification report: the badge's conclusion, no event states
/// (every event has [`VerifySummary::after_verified`] until [`VerifySummary::push`]ed).
pub fn summary(r: &Report) -> VerifySummary {
    let outcome = match r.status {
        Status::Ok => Outcome::Sealed,
        Status::UnsealedTail | Status::Unclosed => Outcome::Unsealed,
        Status::Format => Outcome::Unsigned,
        Status::Unreadable => Outcome::Unverifiable,
        _ => Outcome::Broken,
    };
    VerifySummary {
        signer: r.signer.clone(),
        key_id: r.key_id.clone(),
        ..VerifySummary::without_events(outcome, r.status.as_str(), r.reason.clone())
    }
}

/// The player's state of an event from the reader's coverage: the same, with the
/// checkpoint as `seq`; `Unchecked` (never from a verifying read) is not verified.
pub fn state(c: Coverage) -> Verification {
    match c {
        Coverage::Verified { checkpoint } => Verification::Verified { seq: checkpoint },
        Coverage::Unsealed | Coverage::Unchecked => Verification::Unsealed,
        Coverage::Failed => Verification::Failed,
    }
}

/// The reader's coverage of an event from the player's state: the inverse of [`state`]
/// (`seq` as the checkpoint); an event the player could not yet call verified
/// ([`Verification::Pending`]) is `Unsealed`, never verified.
pub fn coverage(v: Verification) -> Coverage {
    match v {
        Verification::Verified { seq } => Coverage::Verified { checkpoint: seq },
        Verification::Pending | Verification::Unsealed => Coverage::Unsealed,
        Verification::Failed => Coverage::Failed,
    }
}

/// The commands report (`sealcast_player::commands`, SPEC §2.4.5) over the player's `c`/`p`
/// events, as panel additions: each shell command's sources (with the processes seen in it),
/// rows for process groups no claim covers, and the disagreements, each with the worst
/// state of the events it comes from (the report's [`Coverage::and`], back through
/// [`state`]). Each event goes in with its [`coverage`]: one the player could not yet call
/// verified (`Pending`) counts as unsealed here, never as verified.
pub fn commands_overlay(meta: &[sealcast_tui::MetaEvent]) -> sealcast_tui::CommandsOverlay {
    use sealcast_player::commands::{self as cm, Disagreement, Source};
    use sealcast_tui::{PanelKind, PanelRow};
    let report = cm::commands_report(meta.iter().map(|m| cm::MetaInput {
        t_us: m.t_us,
        kind: &m.kind,
        data: &m.data,
        state: coverage(m.state),
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
                row.verification = state(r.state);
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
        row.verification = state(d.state());
        out.rows.push(row);
    }
    out
}

/// A summary saying the file could not be verified, and why.
fn unverifiable(why: String) -> VerifySummary {
    VerifySummary::without_events(Outcome::Unverifiable, "UNVERIFIED", why)
}

/// Verify the recording at `path` (its bytes `data`, the player's: not read again from
/// `path`, which is only the name `verify` checks and where the `.seal` receipt is looked
/// for) as `sealcast verify` does, in one verifying read: the report for the badge, each
/// event's state from its coverage, and the digests of the verified frames' content.
pub fn verify_data(path: &Path, data: &[u8], trust: &TrustStore) -> VerifySummary {
    let receipt = ReceiptFile::load(path);
    verify_in(context(path, &receipt), data, trust)
}

/// Verify a recording object fetched to a temporary file (its bytes `data`, as the player
/// mapped them) as `sealcast verify` verifies a file named `name` (the key's last
/// component) beside the receipt `receipt` (the `<key>.seal` object): see
/// [`crate::cmd::play_object`].
pub fn verify_object(
    data: &[u8],
    name: Option<&str>,
    receipt: &ReceiptFile,
    trust: &TrustStore,
) -> VerifySummary {
    verify_in(
        Context {
            file_name: name,
            receipt: receipt.as_receipt(),
        },
        data,
        trust,
    )
}

/// [`verify_data`] with what `verify` knows of the file besides its bytes (`ctx`).
fn verify_in(ctx: Context<'_>, data: &[u8], trust: &TrustStore) -> VerifySummary {
    // The content of every frame the read verified, as the chain hashed it (SPEC §7.2).
    let frames = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let observer = {
        let frames = std::rc::Rc::clone(&frames);
        Box::new(move |offset: u64, content: &[u8], c: Coverage| {
            if c.is_verified() {
                frames
                    .borrow_mut()
                    .push((offset, sealcast_tui::frame_digest(content)));
            }
        })
    };
    let mut reader = match Reader::verifying_observed(data, trust, ctx, observer) {
        Ok(r) => r,
        // No readable header: no events; the report says why.
        Err(_) => return summary(&verify_recording(data, &ctx, trust)),
    };
    let mut states = VerifySummary::without_events(Outcome::Unverifiable, "", "");
    for ev in reader.by_ref() {
        // The reader stops after the first line that breaks the rules (the report says
        // where); the player's later events have the state after the verified extent.
        let Ok(ev) = ev else { break };
        states.push(state(ev.coverage()));
    }
    let report = reader
        .finish()
        .unwrap_or_else(|| verify_recording(data, &ctx, trust));
    let mut frames = frames.take();
    frames.sort_unstable_by_key(|&(o, _)| o);
    VerifySummary {
        runs: states.runs,
        events: states.events,
        frames,
        ..summary(&report)
    }
}

/// Verify `path` (with its seal receipt when there is one) against `trust`: the file is
/// opened as `verify` opens it (only a regular file, never blocking on a FIFO) and mapped.
/// The player does not use it (it verifies its own bytes, [`verify_data`]).
#[cfg(test)]
pub fn verify_path(path: &Path, trust: &TrustStore) -> VerifySummary {
    match sealcast_reader::Recording::map(path) {
        Ok(data) => verify_data(path, &data, trust),
        Err(e) => summary(&Report::unreadable(e.to_string())),
    }
}

/// The player's [`Hooks::verify`]: the bytes the player shows are verified ([`verify_data`],
/// or [`verify_object`] for a fetched object), never the path read again (SPEC §7.2);
/// without a trust store the summary says why nothing could be verified.
fn verify_hook(
    trust: &Arc<std::result::Result<TrustStore, String>>,
    object: Option<&play_object::Object>,
) -> VerifyHook {
    let trust = Arc::clone(trust);
    match object {
        None => Arc::new(move |p: &Path, data: &[u8]| match trust.as_ref() {
            Ok(t) => verify_data(p, data, t),
            Err(why) => unverifiable(why.clone()),
        }),
        Some(o) => {
            let (name, receipt) = (o.name.clone(), Arc::clone(&o.receipt));
            Arc::new(move |_: &Path, data: &[u8]| match trust.as_ref() {
                Ok(t) => verify_object(data, name.as_deref(), &receipt, t),
                Err(why) => unverifiable(why.clone()),
            })
        }
    }
}

/// True while another process (the recorder) holds the file's `flock` (SPEC §5.1). Opened
/// as a regular file only, so a FIFO at the path is not live and never blocks.
pub fn is_live(path: &Path) -> bool {
    let Ok(f) = sealcast_reader::open_regular(path) else {
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

/// Open `target` for the player (`follow`: a file still being written), or say why not.
/// Only a regular file: [`Recording::open`] opens the path as `verify` opens it
/// ([`sealcast_reader::open_regular`]), so a FIFO or device is refused at once instead of
/// being waited on (the player maps the file; `--plain` is what reads pipes), and the
/// descriptor checked is the one mapped (and re-mapped while following).
fn open_recording(target: &Path, follow: bool) -> std::result::Result<Recording, String> {
    let opened = if follow {
        Recording::open_live(target)
    } else {
        Recording::open(target)
    };
    opened.map_err(|e| match e {
        sealcast_tui::OpenError::Io { source, .. } => source.to_string(),
        e => e.to_string(),
    })
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
    let url = a.file.as_deref().and_then(play_object::url);
    if url.is_none() && a.endpoint_url.is_some() {
        return Err(UsageError("--endpoint-url is for an s3:// recording".into()).into());
    }
    // An s3:// object: fetched to an unlinked temporary file that lives until the player
    // returns (its path is /proc/self/fd/N); errors before the terminal is touched.
    let object = match url {
        None => None,
        Some(_) if a.follow => {
            return Err(UsageError(
                "--follow: an object in a bucket is not being written (play it without -f)".into(),
            )
            .into())
        }
        Some(url) => match play_object::fetch(url, a.endpoint_url.as_deref())? {
            Ok(o) => Some(o),
            Err(why) => {
                eprintln!("sealcast: {url}: {why}");
                return Ok(1);
            }
        },
    };
    let hooks = Hooks {
        verify: verify_hook(&trust, object.as_ref()),
        // Nothing writes our temporary copy of an object.
        is_live: match &object {
            None => Arc::new(is_live),
            Some(_) => Arc::new(|_: &Path| false),
        },
        commands: Some(Arc::new(commands_overlay)),
    };
    let target = match (a.file.clone(), &object) {
        (_, Some(o)) => o.path(),
        (Some(f), None) => f,
        (None, None) => {
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
        match open_recording(&target, a.follow) {
            Ok(r) => Start::Player(
                Box::new(r),
                PlayerOptions {
                    at_us,
                    follow: a.follow,
                    speed: Some(a.speed),
                    idle: a.idle_limit.is_some(),
                },
            ),
            Err(why) => {
                let shown = url.map_or_else(|| target.display().to_string(), str::to_string);
                eprintln!("sealcast: {shown}: {why}");
                return Ok(1);
            }
        }
    };
    sealcast_tui::run(start, hooks)?;
    // The temporary copy of an object is deleted only now, after the player is done with it.
    drop(object);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// The test vectors' directory, their trust file and `expected.json`.
    fn vectors() -> (std::path::PathBuf, TrustStore, serde_json::Value) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors");
        let trust =
            TrustStore::parse(&fs::read_to_string(dir.join("allowed_signers")).unwrap()).unwrap();
        let expected =
            serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        (dir, trust, expected)
    }

    /// Every test vector gets the badge its verification status calls for, through the real
    /// adapter (receipts included): tampering is Broken, a crash Unsealed, OK Sealed.
    #[test]
    fn vectors_map_to_badges() {
        let (dir, trust, expected) = vectors();
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
            // Every event of an OK file is verified; of any other file, none after the
            // first that is not (coverage only ends, it never resumes).
            let first_not =
                (0..s.events).find(|&e| !matches!(s.state_of(e), Verification::Verified { .. }));
            match (status, first_not) {
                ("OK", None) => assert!(s.events > 0, "{name}"),
                ("OK", Some(e)) => panic!("{name}: event {e} of an OK file is {:?}", s.state_of(e)),
                (_, Some(e)) => assert_eq!(s.last_verified(), e.checked_sub(1), "{name}"),
                (_, None) => {}
            }
            n += 1;
        }
        assert!(n > 20);
    }

    /// The states of a [`VerifySummary`] are per event index, so the player's events must
    /// be the verifying read's, one for one: for every test vector the player opens, each
    /// event the reader gives has the same index, time, kind and exact bytes in the player's
    /// own scan (its frame table, `b` lines folded, also across frames), and a file the
    /// reader reads to its end (OK, a crash tail) has no event more in the player.
    #[test]
    fn the_players_events_are_the_verifying_reads_events() {
        use sealcast_term::{EventSource, Kind};
        let (dir, trust, expected) = vectors();
        let mut compared = 0;
        for (name, v) in expected.as_object().unwrap() {
            let data = fs::read(dir.join(format!("{name}.cast.zst"))).unwrap();
            let Ok(mut rec) = Recording::from_bytes(data.clone()) else {
                continue; // not playable (empty, garbage, no header): no events to state
            };
            while rec.scan_step(64, false) {}
            let mut player = Vec::new();
            rec.visit(0, &mut |_, ev| {
                player.push((ev.t_us, ev.kind, ev.data.to_vec()));
                true
            });
            let Ok(reader) = Reader::verifying(&data, &trust, Default::default()) else {
                continue;
            };
            let mut read = Vec::new();
            for ev in reader {
                let Ok(ev) = ev else { break };
                let e = ev.into_event();
                read.push((e.time_us, Kind::from_code(e.kind.code()), e.bytes));
            }
            assert!(read.len() <= player.len(), "{name}");
            for (i, r) in read.iter().enumerate() {
                assert_eq!(&player[i], r, "{name}: event {i}");
            }
            if matches!(
                v["status"].as_str(),
                Some("OK" | "UNSEALED_TAIL" | "UNCLOSED")
            ) {
                assert_eq!(player.len(), read.len(), "{name}");
            }
            compared += read.len();
            // The frames the player decoded are the frames verified: its states are the
            // summary's, its badge verify's (no frame counts as changed).
            let path = dir.join(format!("{name}.cast.zst"));
            let s = verify_data(&path, &data, &trust);
            rec.set_summary(s.clone());
            for e in 0..rec.len() {
                assert_eq!(rec.state_of(e), s.state_of(e), "{name}: event {e}");
            }
            assert_eq!(
                rec.summary(),
                Some(VerifySummary {
                    frames: Vec::new(),
                    ..s
                }),
                "{name}"
            );
        }
        assert!(compared > 100, "{compared}");
    }

    /// A FIFO (or any file that is not regular) given to the player is refused at once, as
    /// `verify` refuses it, instead of waiting for a writer (the player maps the file).
    #[test]
    fn the_player_refuses_a_fifo_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.cast.zst");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        for follow in [false, true] {
            let (tx, rx) = std::sync::mpsc::channel();
            let path = fifo.clone();
            std::thread::spawn(move || {
                let _ = tx.send(open_recording(&path, follow).map(|_| ()));
            });
            let got = rx.recv_timeout(std::time::Duration::from_secs(10));
            assert_eq!(
                got,
                Ok(Err("a FIFO, not a regular file".to_string())),
                "follow: {follow}"
            );
        }
    }

    /// The commands vector through the player's scan and this adapter: the shell commands
    /// get the processes the recorder saw in them, and the disagreements of `sealcast
    /// commands` (forged marks, hooks silent after the shell was replaced) become rows, all
    /// verified (an OK file).
    #[test]
    fn commands_vector_gets_sources_and_disagreements() {
        use sealcast_tui::PanelKind;
        let (dir, trust, _) = vectors();
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

    /// The player's recording of `data`, scanned, with `summary` set.
    fn scanned(data: Vec<u8>, summary: VerifySummary) -> Recording {
        let mut rec = Recording::from_bytes(data).unwrap();
        while rec.scan_step(64, false) {}
        rec.set_summary(summary);
        rec
    }

    /// An `o` event under checkpoint 1 whose exact bytes (its `b` line) come after the last
    /// checkpoint, in a crash tail: the player shows those bytes, so the event is unsealed,
    /// not verified. (The state used to follow from `verified_lines`, per frame: the `o`
    /// line's frame is covered, so the event was drawn as verified.)
    #[test]
    fn an_event_is_verified_only_when_all_its_lines_are() {
        let mut m = sealcast_testkit::HandMade::new();
        m.checkpoint(false);
        m.frame(&[
            br#"[0.100000, "o", "ok "]"#,
            "[0.100000, \"o\", \"\u{fffd}\"]".as_bytes(),
        ]);
        m.checkpoint(false);
        m.frame(&[br#"[0.000000, "b", "/w=="]"#]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("split.cast.zst");
        fs::write(&path, &m.file).unwrap();
        let s = verify_path(&path, &m.trust);
        assert_eq!(s.status, "UNSEALED_TAIL", "{}", s.reason);
        assert_eq!(s.outcome, Outcome::Unsealed);
        let rec = scanned(m.file.clone(), s);
        assert_eq!(rec.state_of(0), Verification::Verified { seq: 1 });
        assert_eq!(rec.state_of(1), Verification::Unsealed);
        assert_eq!(rec.verified_until_us(), Some(100_000));
        let mut shown = Vec::new();
        sealcast_term::EventSource::visit(&rec, 1, &mut |_, ev| {
            shown.push(ev.data.to_vec());
            false
        });
        assert_eq!(shown, [vec![0xff]], "the unsealed bytes are what is shown");
    }

    /// A recording of `frames` one-line data frames (`frame i`), all under one final
    /// checkpoint, signed by a new key (`.trust` trusts it).
    fn frames(n: usize) -> sealcast_testkit::HandMade {
        let mut m = sealcast_testkit::HandMade::new();
        m.checkpoint(false);
        for i in 0..n {
            m.frame(&[format!(r#"[0.100000, "o", "frame {i}\r\n"]"#).as_bytes()]);
        }
        m.checkpoint(true);
        m
    }

    /// What the player draws of event `e`.
    fn shown(rec: &Recording, e: u64) -> Vec<u8> {
        let mut out = Vec::new();
        sealcast_term::EventSource::visit(rec, e, &mut |_, ev| {
            out = ev.data.to_vec();
            false
        });
        out
    }

    /// The file at the path is replaced (another recording renamed over it) after the player
    /// opened it and before the verifier runs: the badge and the event states describe the
    /// bytes the player shows (here signed by a key the trust file does not know:
    /// UNTRUSTED_KEY, nothing verified), not the replacement (validly signed: it used to
    /// give OK and verified events over the untrusted bytes on the screen).
    #[test]
    fn the_badge_describes_the_bytes_shown_not_a_file_renamed_over_them() {
        let shown_rec = frames(3); // signed by a key `trust` does not hold
        let good = frames(3);
        let trust = Arc::new(Ok(good.trust.clone()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.cast.zst");
        fs::write(&path, &shown_rec.file).unwrap();
        let mut rec = open_recording(&path, false).unwrap();
        while rec.scan_step(64, false) {}
        let other = dir.path().join("other.cast.zst");
        fs::write(&other, &good.file).unwrap();
        fs::rename(&other, &path).unwrap();
        let hook = verify_hook(&trust, None);
        let s = hook(&path, &rec.bytes());
        // The replacement itself is OK: the race was worth winning.
        let replaced = verify_hook(&trust, None)(&path, &fs::read(&path).unwrap());
        assert_eq!(replaced.status, "OK");
        assert_eq!(
            (s.status.as_str(), s.outcome),
            ("UNTRUSTED_KEY", Outcome::Broken),
            "{}",
            s.reason
        );
        rec.set_summary(s);
        assert_eq!(shown(&rec, 0), b"frame 0\r\n");
        for e in 0..3 {
            assert_eq!(rec.state_of(e), Verification::Failed, "event {e}");
        }
        assert_eq!(rec.summary().unwrap().status, "UNTRUSTED_KEY");
    }

    /// A frame rewritten in place after verification (the mapping shows the file's new
    /// bytes once its pages are dropped): that frame's events are failed, not verified, the
    /// badge says MODIFIED naming the file and the frame's offset, the others stay
    /// verified, and nothing panics.
    #[test]
    fn a_frame_rewritten_after_verification_is_not_shown_as_verified() {
        use std::os::unix::fs::FileExt;
        // More frames than the scan keeps decoded (32), so frame 1 is decoded again.
        let m = frames(40);
        let trust = Arc::new(Ok(m.trust.clone()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.cast.zst");
        fs::write(&path, &m.file).unwrap();
        let mut rec = open_recording(&path, false).unwrap();
        while rec.scan_step(64, false) {}
        let s = verify_hook(&trust, None)(&path, &rec.bytes());
        assert_eq!(s.status, "OK", "{}", s.reason);
        rec.set_summary(s);
        assert!(matches!(rec.state_of(1), Verification::Verified { .. }));
        // Frame 2 of the file (line 2, event 1): its last compressed bytes (the zstd
        // checksum) rewritten in place, length unchanged.
        let off = sealcast_testkit::frame_of_line(&m.file, 2);
        let f = sealcast_format::scan(&m.file)
            .map(Result::unwrap)
            .find(|f| f.offset == off)
            .unwrap();
        let at = off + f.len - 1;
        let w = fs::OpenOptions::new().write(true).open(&path).unwrap();
        w.write_all_at(&[!m.file[at as usize]], at).unwrap();
        drop(w);
        rec.release_pages();
        let _ = shown(&rec, 1);
        assert_eq!(rec.state_of(1), Verification::Failed);
        for e in [0, 2, 39] {
            assert!(
                matches!(rec.state_of(e), Verification::Verified { .. }),
                "event {e}: {:?}",
                rec.state_of(e)
            );
        }
        let b = rec.summary().unwrap();
        assert_eq!(
            (b.status.as_str(), b.outcome),
            ("MODIFIED", Outcome::Broken)
        );
        assert!(
            b.reason.contains(&path.display().to_string())
                && b.reason.contains(&format!(
                    "data frame at offset {off} changed after verification"
                )),
            "{}",
            b.reason
        );
        assert_eq!(rec.verified_until_us(), Some(rec.time_of(0)));
        // The rows follow once restated.
        assert!(rec.needs_restate());
        rec.restate_changed();
        assert!(!rec.needs_restate());
    }

    /// The badge is what `sealcast verify` says of the file, its name included: another
    /// session's file under this one's name is MODIFIED (its events stay as verified as
    /// their checkpoints say), and a FIFO is unreadable, and not live, without blocking.
    #[test]
    fn the_badge_is_verifys_status_for_the_path() {
        let m = {
            let mut m = sealcast_testkit::HandMade::new();
            m.checkpoint(false);
            m.frame(&[br#"[0.100000, "o", "hello"]"#]);
            m.checkpoint(true);
            m
        };
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join(sealcast_format::names::recording_name(
            &sealcast_testkit::header().sealcast.unwrap().session,
        ));
        fs::write(&own, &m.file).unwrap();
        let s = verify_path(&own, &m.trust);
        assert_eq!((s.status.as_str(), s.outcome), ("OK", Outcome::Sealed));
        let other = dir
            .path()
            .join(sealcast_format::names::recording_name(&"f".repeat(32)));
        fs::write(&other, &m.file).unwrap();
        let s = verify_path(&other, &m.trust);
        assert_eq!(
            (s.status.as_str(), s.outcome),
            ("MODIFIED", Outcome::Broken)
        );
        assert!(s.reason.starts_with("file name "), "{}", s.reason);
        let fifo = dir.path().join("fifo.cast.zst");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let s = verify_path(&fifo, &m.trust);
        assert_eq!(
            (s.status.as_str(), s.outcome),
            ("UNREADABLE", Outcome::Unverifiable)
        );
        assert!(
            !is_live(&fifo),
            "a FIFO is no live recording (and opening it never blocks)"
        );
    }
}
