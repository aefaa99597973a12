//! `sealcast queries FILE [--json]`: one row per database statement of a recording (its `d`
//! events, SPEC §11): time in session, connection, database user and database, duration,
//! status / SQLSTATE, rows, statement text. Built from verified content: a row is verified
//! only when a verified checkpoint covers its statement and its outcome (`verify_bytes`);
//! other rows are printed marked `UNVERIFIED` (JSON: `"verified": false`).
//!
//! Exit code: that of `sealcast verify` for the file (0 only when it is OK), 3 for usage
//! errors.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use sealcast_dbproxy::queries::{Row, Table};
use sealcast_format::{decompress_frame, parse_event, scan, EventKind, FrameKind};
use sealcast_reader::{exit_code, verify_bytes, Status};

use super::verify::load_trust;

#[derive(Debug, clap::Args)]
pub struct QueriesArgs {
    /// One JSON object per statement instead of a table.
    #[arg(long)]
    pub json: bool,
    /// allowed_signers file with the trusted keys (default: the dev trust file).
    #[arg(long, value_name = "FILE")]
    pub trusted: Option<PathBuf>,
    /// Recording (.cast.zst).
    pub file: PathBuf,
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let mut t: String = flat.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        flat
    }
}

fn human(r: &Row) -> String {
    let who = format!(
        "{}@{}",
        r.db_user.as_deref().unwrap_or("?"),
        r.db.as_deref().unwrap_or("?")
    );
    let status = match &r.sqlstate {
        Some(s) => format!("{} {s}", r.status),
        None => r.status.clone(),
    };
    let dur = r
        .dur_us
        .map(|d| format!("{:.3}ms", d as f64 / 1000.0))
        .unwrap_or_else(|| "-".into());
    let rows = r
        .rows
        .or(r.rows_out)
        .map(|n| n.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "{}{:>10.3} c{:<3} {:<24} {:>10} {:<16} {:>8}  {}",
        if r.verified { "" } else { "UNVERIFIED " },
        r.t,
        r.c,
        one_line(&who, 24),
        dur,
        status,
        rows,
        one_line(&r.sql, 200)
    )
}

/// List the statements of one recording.
///
/// # Errors
/// Usage errors (no trust file), I/O errors reading the file.
pub fn run(a: QueriesArgs) -> Result<u8> {
    let (_, trust) = load_trust(a.trusted.as_deref())?;
    let data = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let mut receipt_path = a.file.as_os_str().to_owned();
    receipt_path.push(".seal");
    let receipt = std::fs::read(PathBuf::from(receipt_path)).ok();
    let report = verify_bytes(&data, receipt.as_deref(), &trust);

    let mut table = Table::new();
    let mut line_no = 0u64;
    let mut time_us = 0u64;
    let mut buf = Vec::new();
    let mut pos = 0usize;
    'frames: for f in scan(&data) {
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
            time_us += ev.interval_us;
            if ev.kind == EventKind::Database {
                table.add(time_us, no < report.verified_lines, &ev.data);
            }
        }
        buf.drain(..pos);
        pos = 0;
    }

    let out = std::io::stdout();
    let mut out = out.lock();
    if !a.json {
        writeln!(
            out,
            "{:>10} {:<4} {:<24} {:>10} {:<16} {:>8}  SQL",
            "TIME", "CONN", "USER@DB", "DURATION", "STATUS", "ROWS"
        )?;
    }
    for r in table.rows() {
        if a.json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            writeln!(out, "{}", human(r))?;
        }
    }
    out.flush()?;
    if report.status != Status::Ok {
        eprintln!(
            "sealcast queries: {}: {} {}",
            a.file.display(),
            report.status.as_str(),
            report.reason
        );
    }
    Ok(exit_code([report.status.exit_class()], false))
}
