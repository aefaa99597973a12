//! `sealcast commands FILE [--json]`: one row per command of a recording (its `c` and `p`
//! events, SPEC §2.4): time in session, duration, exit status, working directory, command
//! line and source, the processes grouped under the command they ran in, and the
//! disagreements between the shell's claims and the processes the recorder saw (SPEC
//! §2.4.5). The report is built by `sealcast_player::commands` from the events alone, each
//! carrying the verification state of its line (`verify_bytes`: lines covered by a verified
//! checkpoint are verified; the rest are unsealed in a crash tail, failed otherwise), so an
//! unverified part is printed marked as such and never counted as verified.
//!
//! Exit code: that of `sealcast verify` for the file (0 only when it is OK), 3 for usage
//! errors, 4 when it cannot be read.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sealcast_format::{decompress_frame, parse_event, scan, FrameKind};
use sealcast_player::commands::{
    commands_report, write_text, CommandsReport, MetaInput, Summary, Verification,
};
use sealcast_player::{Report, Status};
use serde_json::{json, Value};

use super::verify::{exit_code, load_trust, verify_data};
use super::{read_regular, VerdictOut};

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

/// The verification state of line `no` (0 = header) under `report`: covered by a verified
/// checkpoint, else in a crash tail (unsealed), else failed. Without a report (nothing to
/// verify against) no line is verified.
fn line_state(no: u64, report: Option<&Report>) -> Verification {
    match report {
        Some(r) if no < r.verified_lines => Verification::Verified,
        Some(r) if !matches!(r.status, Status::UnsealedTail | Status::Unclosed) => {
            Verification::Failed
        }
        _ => Verification::Unsealed,
    }
}

/// The `c` and `p` events of a recording (and the time of its last event), decoded up to the
/// first frame or line a reader stops at, each with its line's state.
fn meta_events(data: &[u8], report: Option<&Report>) -> Vec<(u64, String, String, Verification)> {
    let mut out = Vec::new();
    let mut line_no = 0u64;
    let mut time_us = 0u64;
    let mut buf = Vec::new();
    let mut pos = 0usize;
    'frames: for f in scan(data) {
        let Ok(f) = f else { break };
        if f.kind != FrameKind::Data {
            continue;
        }
        if decompress_frame(f.bytes, f.offset, &mut buf).is_err() {
            break;
        }
        while let Some(n) = buf[pos..].iter().position(|&b| b == b'\n') {
            let line = &buf[pos..pos + n];
            pos += n + 1;
            let no = line_no;
            line_no += 1;
            if no == 0 {
                continue;
            }
            let Ok(ev) = parse_event(line) else {
                break 'frames;
            };
            time_us = time_us.saturating_add(ev.interval_us);
            let state = line_state(no, report);
            if ev.code == "c" || ev.code == "p" {
                out.push((time_us, ev.code, ev.data, state));
            } else {
                // Other events only advance the session's end.
                out.push((time_us, ev.code, String::new(), state));
            }
        }
        buf.drain(..pos);
        pos = 0;
    }
    out
}

/// The commands report of a recording whose verification is `report` (`None`: not verified).
pub fn report_of(data: &[u8], report: Option<&Report>) -> CommandsReport {
    let events = meta_events(data, report);
    commands_report(events.iter().map(|(t, code, data, state)| MetaInput {
        t_us: *t,
        code,
        data,
        state: *state,
    }))
}

/// What `sealcast info` shows of the commands: `None` when the recording has neither source.
pub fn info_summary(data: &[u8], report: Option<&Report>) -> Option<Summary> {
    let r = report_of(data, report);
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
    let report = verify_data(&a.file, &data, &trust);
    let cmds = report_of(&data, Some(&report));
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
    Ok(exit_code([report.status], false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_verified_prefix() {
        let mut r = sealcast_player::Report::unreadable("x");
        r.verified_lines = 10;
        r.status = Status::UnsealedTail;
        assert_eq!(line_state(9, Some(&r)), Verification::Verified);
        assert_eq!(line_state(10, Some(&r)), Verification::Unsealed);
        r.status = Status::Modified;
        assert_eq!(line_state(10, Some(&r)), Verification::Failed);
        assert_eq!(line_state(0, None), Verification::Unsealed);
    }
}
