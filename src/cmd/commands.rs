//! `sealcast commands FILE [--json]`: one row per command of a recording (its `c` and `p`
//! events, SPEC §2.4): time in session, duration, exit status, working directory, command
//! line and source, the processes grouped under the command they ran in, and the
//! disagreements between the shell's claims and the processes the recorder saw (SPEC
//! §2.4.5). The file is read once, verifying ([`Reader::verifying`], the walk `sealcast
//! verify` makes); the report is built by `sealcast_player::commands` from the events, each
//! with its [`Coverage`], so an unverified part is printed marked as such and never counted
//! as verified.
//!
//! Exit code: that of `sealcast verify` for the file (0 only when it is OK), 3 for usage
//! errors, 4 when it cannot be read.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use sealcast_format::EventKind;
use sealcast_player::commands::{commands_report, write_text, CommandsReport, MetaInput, Summary};
use sealcast_reader::{
    exit_code, read_regular, verify_recording, Coverage, Reader, ReceiptFile, Report, Status,
};
use sealcast_signer::TrustStore;
use serde_json::{json, Value};

use super::verify::{context, load_trust};
use super::VerdictOut;

#[derive(Debug, clap::Args)]
pub struct CommandsArgs {
    /// One JSON object (the report, with the verification status) instead of text.
    #[arg(long)]
    pub json: bool,
    /// allowed_signers file with the trusted keys (default: the dev trust file).
    #[arg(long, value_name = "FILE")]
    pub trusted: Option<PathBuf>,
    /// Recording (.cast.zst).
    pub file: PathBuf,
}

/// The commands report of the recording `data` (read from `path`) and, with a trust store,
/// the file's verification report, from one read: verifying with `trust` (each event's
/// [`Coverage`] as verification found it), else unchecked (every event
/// [`Coverage::Unchecked`], never counted as verified).
pub fn commands_of(
    path: &Path,
    data: &[u8],
    trust: Option<&TrustStore>,
) -> (CommandsReport, Option<Report>) {
    let receipt = ReceiptFile::load(path);
    let ctx = context(path, &receipt);
    let reader = match trust {
        Some(t) => Reader::verifying(data, t, ctx),
        None => Reader::open(data),
    };
    let mut events: Vec<(u64, EventKind, String, Coverage)> = Vec::new();
    let report = match reader {
        Ok(mut reader) => {
            for ev in reader.by_ref() {
                // The reader stops after the first bad line; the report says where.
                let Ok(ev) = ev else { break };
                let e = ev.event();
                let text = if matches!(e.kind, EventKind::Command | EventKind::Process) {
                    String::from_utf8_lossy(&e.bytes).into_owned()
                } else {
                    // Other events only advance the session's end.
                    String::new()
                };
                events.push((e.time_us, e.kind.clone(), text, ev.coverage()));
            }
            reader.finish()
        }
        Err(_) => None,
    };
    let report = match (report, trust) {
        (Some(r), _) => Some(r),
        (None, Some(t)) => Some(verify_recording(data, &ctx, t)),
        (None, None) => None,
    };
    let cmds = commands_report(events.iter().map(|(t, kind, data, state)| MetaInput {
        t_us: *t,
        kind,
        data,
        state: *state,
    }));
    (cmds, report)
}

/// What `sealcast info` shows of the commands: `None` when the recording has neither source.
pub fn info_summary(path: &Path, data: &[u8], trust: Option<&TrustStore>) -> Option<Summary> {
    let (r, _) = commands_of(path, data, trust);
    (r.sources.shell_hooks.is_some() || r.sources.proc_root.is_some()).then(|| r.summary())
}

/// `info`'s text line for `s`.
pub fn summary_text(s: &Summary) -> String {
    let part = |n: u64, verified: u64, what: &str| {
        if n == verified {
            format!("{n} {what}")
        } else {
            format!("{n} {what} ({verified} verified)")
        }
    };
    format!(
        "{}, {}",
        part(s.commands, s.commands_verified, "claimed"),
        part(s.disagreements, s.disagreements_verified, "disagreements")
    )
}

/// `info`'s JSON value for `s` (`null` without command metadata).
pub fn summary_json(s: Option<&Summary>) -> Value {
    match s {
        Some(s) => json!({
            "commands": s.commands,
            "commands_verified": s.commands_verified,
            "disagreements": s.disagreements,
            "disagreements_verified": s.disagreements_verified,
        }),
        None => Value::Null,
    }
}

fn json_out(path: &Path, report: &Report, cmds: &CommandsReport) -> Result<Value> {
    let mut v = serde_json::to_value(cmds)?;
    if let Value::Object(m) = &mut v {
        m.insert("path".into(), json!(path.to_string_lossy()));
        m.insert(
            "verification".into(),
            json!({
                "status": report.status.as_str(),
                "reason": report.reason,
                "verified_lines": report.verified_lines,
            }),
        );
        m.insert("summary".into(), serde_json::to_value(cmds.summary())?);
    }
    Ok(v)
}

/// List the commands of one recording.
///
/// # Errors
/// Usage errors (no trust file), I/O errors reading the file.
pub fn run(a: CommandsArgs) -> Result<u8> {
    let (_, trust) = load_trust(a.trusted.as_deref())?;
    let data = read_regular(&a.file, None).with_context(|| format!("{}", a.file.display()))?;
    let (cmds, report) = commands_of(&a.file, &data, Some(&trust));
    let report = report.unwrap_or_else(|| Report::unreadable("no report"));
    let mut out = VerdictOut::new(std::io::stdout().lock());
    if a.json {
        serde_json::to_writer(&mut out, &json_out(&a.file, &report, &cmds)?)?;
        writeln!(out)?;
    } else {
        write_text(&cmds, &mut out)?;
    }
    out.flush()?;
    if report.status != Status::Ok {
        eprintln!(
            "sealcast commands: {}: {} {}",
            a.file.display(),
            report.status.as_str(),
            report.reason
        );
    }
    Ok(exit_code([report.status.exit_class()], false))
}
