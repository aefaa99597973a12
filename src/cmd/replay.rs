//! `sealcast play`, `cat`, `export`, `info`.
//!
//! These read without verifying (`info` adds a verification summary, exactly as `verify`
//! would report the file). Every line is checked by the same rules as in `verify`
//! ([`sealcast_format::EventRules`]), so a malformed file gives each command the same error
//! text and a non-zero exit. Exit codes:
//!
//! - 0: the whole stream decoded;
//! - 2: the file ends inside a frame (crash tail or cut file): the decodable prefix was
//!   written, with a warning on stderr (`info` reports this and exits 0);
//! - 1: the file is not a readable recording (empty, not zstd, not asciicast v3), or a frame
//!   or line in the middle cannot be decoded: everything before it was written, then
//!   `sealcast: FILE: offset O: reason` (or `line L, offset O: reason`) on stderr; `info`
//!   prints its report first, then the same line;
//! - 3: bad options; 4: I/O errors reading the file or writing the output.
//!
//! `cat`, `export` and `play` read any file, pipes included (`<(…)`, `/dev/stdin`); `info`
//! opens the recording and its receipt only as regular files, like `verify`. A closed
//! stdout ends `cat`, `export` and `play` quietly (exit 0); `info` still exits with its code.

use std::fs;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use sealcast_format::time::rfc3339_micros;
use sealcast_player::{
    write_txt, write_v2, write_v3, PlayOptions, Played, ReplayError, MAX_WAIT_US,
};
use sealcast_reader::{inspect, read_regular, ReadError, Reader, Report, Stats, Status, StreamEnd};
use sealcast_signer::TrustStore;

use crate::cmd::verify::{load_trust, verify_data};
use crate::cmd::{UsageError, VerdictOut};
use crate::{ExportArgs, ExportFormat, FileArg, InfoArgs, PlayArgs};

fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("{}", path.display()))
}

/// Open the recording, or print why not (exit 1).
fn open<'a>(path: &Path, data: &'a [u8]) -> Result<Reader<'a>, u8> {
    Reader::open(data).map_err(|e| {
        eprintln!("sealcast: {}: {e}", path.display());
        1
    })
}

/// Exit code and stderr message for the end of a replay or export.
fn finish(path: &Path, r: Result<StreamEnd, ReplayError>) -> Result<u8> {
    match r {
        Ok(StreamEnd::Complete) => Ok(0),
        Ok(StreamEnd::Truncated(e)) => {
            eprintln!(
                "sealcast: {}: warning: {e}: the recording ends inside a frame (crash or cut \
                 file); the output is its decodable prefix",
                path.display()
            );
            Ok(2)
        }
        Ok(StreamEnd::Damaged(e)) => {
            eprintln!("sealcast: {}: {e}", path.display());
            Ok(1)
        }
        Err(ReplayError::Read(e)) => {
            eprintln!("sealcast: {}: {e}", path.display());
            Ok(1)
        }
        Err(ReplayError::Options(m)) => Err(UsageError(m).into()),
        Err(ReplayError::Io(e)) => Err(anyhow::Error::new(e).context("writing output")),
        Err(e) => Err(e.into()),
    }
}

/// Size of the terminal on stdout, if it is one.
fn terminal_size() -> Option<(u16, u16)> {
    if !io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointed-to struct and nothing else.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some((ws.ws_col, ws.ws_row))
}

/// Run `sealcast play`: on a terminal, the player ([`crate::cmd::play_tui`]); with `--plain`
/// or when stdout is not a terminal, the output to stdout with the recorded timing (see the
/// module docs for exit codes; a warning on stderr when the terminal is smaller than the
/// recording).
///
/// # Errors
/// [`UsageError`] for a bad `--speed`/`--idle-limit`; I/O errors reading the file or
/// writing stdout.
pub fn play(a: PlayArgs) -> Result<u8> {
    if !a.plain && io::stdout().is_terminal() && io::stdin().is_terminal() {
        return crate::cmd::play_tui::run(a);
    }
    let Some(file) = a.file.clone() else {
        return Err(UsageError(
            "a recording is needed when stdout is not a terminal (or with --plain)".into(),
        )
        .into());
    };
    if let Some(url) = crate::cmd::play_object::url(&file) {
        return Err(UsageError(format!(
            "{url}: an s3:// recording plays only in the player, on a terminal (not with \
             --plain or to a pipe)"
        ))
        .into());
    }
    if !(a.speed.is_finite() && a.speed > 0.0) {
        return Err(UsageError(format!(
            "--speed must be a positive number, not {}",
            a.speed
        ))
        .into());
    }
    let idle_limit_us = match a.idle_limit {
        None => None,
        Some(s) if s.is_finite() && s >= 0.0 => Some((s * 1_000_000.0).round() as u64),
        Some(s) => {
            return Err(UsageError(format!(
                "--idle-limit must be a non-negative number, not {s}"
            ))
            .into())
        }
    };
    let data = read_file(&file)?;
    let reader = match open(&file, &data) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let term = reader.header().term.clone();
    if let Some((cols, rows)) = terminal_size() {
        if cols < term.cols || rows < term.rows {
            eprintln!(
                "sealcast: warning: this terminal is {cols}x{rows}, the recording was made at \
                 {}x{}; output may wrap or scroll differently",
                term.cols, term.rows
            );
        }
    }
    // Sleep until each target time measured from the start, so time spent writing does not
    // add up over a long session.
    let start = Instant::now();
    let mut due = Duration::ZERO;
    let mut sleeper = |d: Duration| {
        due += d;
        if let Some(left) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(left);
        }
    };
    let opts = PlayOptions {
        speed: a.speed,
        idle_limit_us,
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let r = sealcast_player::play(reader, &mut out, opts, &mut sleeper);
    if let Ok(Played { shortened, .. }) = &r {
        if *shortened > 0 {
            eprintln!(
                "sealcast: {}: note: {shortened} pause(s) longer than {} s were shortened to {} s",
                file.display(),
                MAX_WAIT_US / 1_000_000,
                MAX_WAIT_US / 1_000_000
            );
        }
    }
    finish(&file, r.map(|p| p.end))
}

/// Run `sealcast cat`: the exact output bytes to stdout.
///
/// # Errors
/// I/O errors reading the file or writing stdout.
pub fn cat(a: FileArg) -> Result<u8> {
    let data = read_file(&a.file)?;
    let reader = match open(&a.file, &data) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let r = sealcast_player::cat(reader, &mut out);
    finish(&a.file, r)
}

/// Run `sealcast export`: the recording in another format on stdout.
///
/// # Errors
/// I/O errors reading the file or writing stdout.
pub fn export(a: ExportArgs) -> Result<u8> {
    let data = read_file(&a.file)?;
    let reader = match open(&a.file, &data) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let r = match a.format {
        ExportFormat::AsciicastV3 => write_v3(&data, &mut out),
        ExportFormat::AsciicastV2 => write_v2(reader, &mut out),
        ExportFormat::Txt => write_txt(reader, &mut out),
    };
    finish(&a.file, r)
}

/// The verification part of `info`: the report `verify` would give for this file (receipt
/// and file name included), or why there is none.
fn info_verification(
    a: &InfoArgs,
    data: &[u8],
) -> Result<std::result::Result<(Report, TrustStore), String>> {
    let trust = match &a.trusted {
        Some(p) => load_trust(Some(p))?.1,
        None => {
            let path = match crate::paths::dev_trust() {
                Ok(p) => p,
                Err(_) => return Ok(Err("unverified: no trust file".into())),
            };
            if !path.exists() {
                return Ok(Err(format!(
                    "unverified: no trust file (give one with --trusted; default {})",
                    path.display()
                )));
            }
            match load_trust(Some(&path)) {
                Ok((_, t)) => t,
                Err(e) => return Ok(Err(format!("unverified: {e:#}"))),
            }
        }
    };
    let report = verify_data(&a.file, data, &trust);
    Ok(Ok((report, trust)))
}

fn stream_state(end: &StreamEnd) -> (&'static str, Option<String>) {
    match end {
        StreamEnd::Complete => ("complete", None),
        StreamEnd::Truncated(e) => ("truncated", Some(e.to_string())),
        StreamEnd::Damaged(e) => ("damaged", Some(e.to_string())),
    }
}

fn verification_text(v: &std::result::Result<Report, String>) -> String {
    match v {
        Err(why) => why.clone(),
        Ok(r) if r.status == Status::Ok => {
            let signer = r.signer.as_deref().unwrap_or("?");
            format!(
                "OK (sealed; {} lines, {} checkpoints; signer {signer})",
                r.verified_lines, r.checkpoints
            )
        }
        Ok(r) => match &r.divergence {
            Some(d) => format!(
                "{} (line {}, offset {}): {}",
                r.status.as_str(),
                d.line,
                d.offset,
                r.reason
            ),
            None => format!("{}: {}", r.status.as_str(), r.reason),
        },
    }
}

fn bad_line_json(e: &ReadError) -> Value {
    match e {
        ReadError::Line {
            line,
            offset,
            reason,
        } => json!({"line": line, "offset": offset, "reason": reason}),
        other => json!({"reason": other.to_string()}),
    }
}

/// The `duration` row: the sum of the intervals, and a warning when they add up to more
/// time than the wall clock allows (an interval that is not real time).
fn duration_text(s: &Stats) -> String {
    let mut text = format!("{} s", sealcast_format::format_interval(s.duration_us));
    if s.duration_us == u64::MAX {
        text.push_str(" (saturated: the intervals add up to more than u64 microseconds)");
    }
    if s.duration_exceeds_clock() {
        let span = s.clock_span_us.unwrap_or(0);
        let (line, us) = s.longest_interval.unwrap_or((0, 0));
        text.push_str(&format!(
            "; WARNING: only {} s passed on the wall clock between the start and the last \
             checkpoint: the intervals are not real time (longest: {} s at line {line})",
            sealcast_format::format_interval(span),
            sealcast_format::format_interval(us)
        ));
    }
    text
}

fn info_json(path: &Path, s: &Stats, v: &std::result::Result<Report, String>) -> Value {
    let h = &s.header;
    let meta = h.sealcast.as_ref();
    let (stream, stream_error) = stream_state(&s.end);
    json!({
        "path": path.to_string_lossy(),
        "session": meta.map(|m| &m.session),
        "user": meta.map(|m| &m.user),
        "host": meta.map(|m| &m.host),
        "start": meta.map(|m| rfc3339_micros(m.start_us)),
        "start_us": meta.map(|m| m.start_us),
        "timestamp": h.timestamp,
        "term": {"cols": h.term.cols, "rows": h.term.rows, "type": h.term.term_type},
        "command": h.command,
        "recorder": meta.map(|m| &m.recorder),
        "key_id": meta.map(|m| &m.key_id),
        "capture_input": meta.map(|m| m.capture_input),
        "duration_us": s.duration_us,
        "duration": sealcast_format::format_interval(s.duration_us),
        "longest_interval": s.longest_interval.map(|(l, us)| json!({"line": l, "us": us})),
        "clock_span_us": s.clock_span_us,
        "duration_exceeds_clock": s.duration_exceeds_clock(),
        "events": s.events_by_code,
        "exit_status": s.exit_status,
        "compressed_bytes": s.compressed_bytes,
        "decompressed_bytes": s.decompressed_bytes,
        "lines": s.lines,
        "data_frames": s.data_frames,
        "checkpoint_frames": s.checkpoint_frames,
        "stream": stream,
        "stream_error": stream_error,
        "bad_line": s.bad_line.as_ref().map(bad_line_json),
        "verification": v.as_ref().ok(),
        "verification_summary": verification_text(v),
    })
}

fn info_text(path: &Path, s: &Stats, v: &std::result::Result<Report, String>) -> String {
    let h = &s.header;
    let mut rows: Vec<(&str, String)> = vec![("file", path.display().to_string())];
    match &h.sealcast {
        Some(m) => {
            rows.push(("session", m.session.clone()));
            rows.push(("user", m.user.clone()));
            rows.push(("host", m.host.clone()));
            rows.push(("start", rfc3339_micros(m.start_us)));
        }
        None => {
            rows.push((
                "sealcast",
                "no sealcast metadata (plain asciicast v3)".into(),
            ));
            if let Some(t) = h.timestamp {
                rows.push(("start", format!("{t} (Unix seconds)")));
            }
        }
    }
    let term = match &h.term.term_type {
        Some(t) => format!("{}x{} ({t})", h.term.cols, h.term.rows),
        None => format!("{}x{}", h.term.cols, h.term.rows),
    };
    rows.push(("terminal", term));
    rows.push((
        "command",
        h.command.clone().unwrap_or_else(|| "(login shell)".into()),
    ));
    if let Some(m) = &h.sealcast {
        rows.push(("recorder", m.recorder.clone()));
        rows.push(("key id", m.key_id.clone()));
        rows.push((
            "input",
            if m.capture_input {
                "captured"
            } else {
                "not captured"
            }
            .into(),
        ));
    }
    rows.push(("duration", duration_text(s)));
    let events: Vec<String> = s
        .events_by_code
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    rows.push(("events", events.join(", ")));
    rows.push((
        "exit status",
        s.exit_status
            .clone()
            .unwrap_or_else(|| "(none recorded)".into()),
    ));
    rows.push(("compressed", format!("{} bytes", s.compressed_bytes)));
    rows.push((
        "decompressed",
        format!("{} bytes, {} lines", s.decompressed_bytes, s.lines),
    ));
    rows.push((
        "frames",
        format!("{} data, {} checkpoint", s.data_frames, s.checkpoint_frames),
    ));
    let (stream, err) = stream_state(&s.end);
    rows.push((
        "stream",
        match err {
            Some(e) => format!("{stream}: {e}"),
            None => stream.to_string(),
        },
    ));
    if let Some(e) = &s.bad_line {
        rows.push(("bad line", e.to_string()));
    }
    rows.push(("verification", verification_text(v)));
    let mut text = String::new();
    for (k, v) in rows {
        text.push_str(&format!("{:<14}{}\n", format!("{k}:"), printable(&v)));
    }
    text
}

/// `s` safe to print on a terminal: control characters (C0, DEL, C1) and `\` escaped as Rust
/// does (`\u{1b}`, `\r`, `\\`). Header fields such as `command` carry what an SSH client sent
/// (SPEC §2.3 `original_command`), which may hold escape sequences aimed at the terminal of
/// whoever inspects the recording.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\\' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Run `sealcast info`: metadata, statistics and a verification summary (text or one JSON
/// object). Exit 0 when the header decodes and the stream is complete or ends in a crash
/// tail; 1 when the file is not a readable recording, is damaged mid-way or has a line that
/// `cat` would stop at (the same error text on stderr). The code does not depend on whether
/// stdout was still open.
///
/// # Errors
/// [`UsageError`] for an explicit `--trusted` file that cannot be used; I/O errors (the
/// recording not a regular file, exit 4).
pub fn info(a: InfoArgs) -> Result<u8> {
    let data = read_regular(&a.file, None).with_context(|| format!("{}", a.file.display()))?;
    let stats = match inspect(&data) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sealcast: {}: {e}", a.file.display());
            return Ok(1);
        }
    };
    let verified = info_verification(&a, &data)?;
    // Commands and disagreements (SPEC §2.4.5), counted from verified content apart.
    let commands =
        super::commands::info_summary(&a.file, &data, verified.as_ref().ok().map(|(_, t)| t));
    let verification = verified.map(|(r, _)| r);
    let mut out = VerdictOut::new(io::stdout().lock());
    if a.json {
        let mut v = info_json(&a.file, &stats, &verification);
        v["commands"] = super::commands::summary_json(commands.as_ref());
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
    } else {
        let mut text = info_text(&a.file, &stats, &verification);
        if let Some(c) = &commands {
            text.push_str(&format!(
                "{:<14}{}\n",
                "commands:",
                super::commands::summary_text(c)
            ));
        }
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    let mut code = 0;
    if let StreamEnd::Damaged(e) = &stats.end {
        eprintln!("sealcast: {}: {e}", a.file.display());
        code = 1;
    }
    if let Some(e) = &stats.bad_line {
        eprintln!("sealcast: {}: {e}", a.file.display());
        code = 1;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn printable_escapes_terminal_controls() {
        assert_eq!(
            printable("ls\u{1b}]0;x\u{7}\r\n\u{9b}2J a\\b caf\u{e9}"),
            "ls\\u{1b}]0;x\\u{7}\\r\\n\\u{9b}2J a\\\\b caf\u{e9}"
        );
    }
}
