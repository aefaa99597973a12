//! `sealcast queries FILE [--json]`: one row per database statement of a recording (its `d`
//! events, SPEC §11): time in session, connection, database user and database, duration,
//! status / SQLSTATE, rows, statement text. The file is read once, verifying
//! ([`Reader::verifying`], the walk `sealcast verify` makes): a row is verified only when
//! verified checkpoints cover its statement and its outcome; other rows are printed marked
//! with their coverage, `UNSEALED` (crash tail), `FAILED` (at or after a failed check) or
//! `UNCHECKED` (JSON: `"coverage"` and `"verified": false`).
//!
//! Exit code: that of `sealcast verify` for the file (0 only when it is OK; the same file
//! name and receipt checks), 3 for usage errors.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use sealcast_dbproxy::queries::{Row, Table};
use sealcast_format::EventKind;
use sealcast_reader::{
    exit_code, read_regular, verify_recording, Coverage, Reader, ReceiptFile, Report, Status,
};
use sealcast_signer::TrustStore;

use super::verify::{context, load_trust};

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
        coverage_tag(r.coverage),
        r.t,
        r.c,
        one_line(&who, 24),
        dur,
        status,
        rows,
        one_line(&r.sql, 200)
    )
}

/// The mark in front of a row that is not verified: `UNSEALED `, `FAILED `, `UNCHECKED `.
fn coverage_tag(c: Coverage) -> &'static str {
    match c {
        Coverage::Verified { .. } => "",
        Coverage::Unsealed => "UNSEALED ",
        Coverage::Failed => "FAILED ",
        Coverage::Unchecked => "UNCHECKED ",
    }
}

/// The statements of the recording at `path` and the file's verification report, from one
/// verifying read: each `d` event goes to the table with its coverage, and the report is the
/// one `sealcast verify` gives for the file (its name and receipt included).
pub fn statements(path: &Path, trust: &TrustStore) -> (Table, Report) {
    let mut table = Table::new();
    let data = match read_regular(path, None) {
        Ok(d) => d,
        Err(e) => return (table, Report::unreadable(e.to_string())),
    };
    let receipt = ReceiptFile::load(path);
    let ctx = context(path, &receipt);
    let mut reader = match Reader::verifying(&data, trust, ctx) {
        Ok(r) => r,
        // No readable header: no events; the report says why.
        Err(_) => return (table, verify_recording(&data, &ctx, trust)),
    };
    for ev in reader.by_ref() {
        // The reader stops after the first bad line; the report says where.
        let Ok(ev) = ev else { break };
        if ev.event().kind == EventKind::Database {
            let data = String::from_utf8_lossy(&ev.event().bytes);
            table.add(ev.event().time_us, ev.coverage(), &data);
        }
    }
    let report = reader
        .finish()
        .unwrap_or_else(|| verify_recording(&data, &ctx, trust));
    (table, report)
}

/// List the statements of one recording.
///
/// # Errors
/// Usage errors (no trust file), I/O errors writing stdout.
pub fn run(a: QueriesArgs) -> Result<u8> {
    let (_, trust) = load_trust(a.trusted.as_deref())?;
    let (table, report) = statements(&a.file, &trust);

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
