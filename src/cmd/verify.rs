//! `sealcast verify [--trusted FILE] [--json] [--strict] PATH...`
//!
//! Collects the recordings first (files as given; directories walked recursively in sorted
//! order for `*.cast.zst`), so every usage error (no trust anchor, a directory without
//! recordings) is reported before anything is verified. Each file is then read whole, with
//! its `<file>.seal` receipt when one exists, and verified with
//! [`sealcast_reader::verify_recording`], which also checks that a file name of the form
//! `<session>.cast.zst` names the header's session. Recordings and receipts are opened only
//! as regular files ([`sealcast_reader::open_regular`]: a FIFO planted there never blocks the
//! run). A recording that cannot be read (I/O error, not a regular file) is `UNREADABLE` and
//! the run goes on.
//!
//! Exit code (SPEC §7): 1 if any file is in class 1, else 4 if any is in class 4, else 2 if
//! any is in class 2 (1 with `--strict`), else 0; usage errors exit 3. When stdout is closed
//! early (`verify DIR | head -1`), the run stops writing and verifying, says on stderr how
//! many files it did not verify, and counts them as class 4: the exit code stays a verdict,
//! never 0 unless every file was verified OK.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use sealcast_reader::{
    exit_code, kind_name, read_regular, verify_recording, Context, OpenError, ReceiptFile, Report,
    Status,
};
use sealcast_signer::TrustStore;

use crate::cmd::{UsageError, VerdictOut};
use crate::paths;

/// Width of the status column in human output (the longest status name).
const STATUS_WIDTH: usize = 13;

/// Load an `allowed_signers` file: `--trusted` when given, else the dev trust file.
///
/// # Errors
/// [`UsageError`] (exit 3) naming the file when it cannot be read, does not parse (with the
/// line), or holds no usable `ssh-ed25519` key.
pub fn load_trust(explicit: Option<&Path>) -> Result<(PathBuf, TrustStore)> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => paths::dev_trust().map_err(|e| UsageError(format!("no trust file: {e:#}")))?,
    };
    let text = fs::read_to_string(&path).map_err(|e| {
        UsageError(format!(
            "trust file {}: {e} (give trusted keys with --trusted FILE, an allowed_signers file)",
            path.display()
        ))
    })?;
    let trust = TrustStore::parse(&text)
        .map_err(|e| UsageError(format!("trust file {}: {e}", path.display())))?;
    if trust.is_empty() {
        return Err(UsageError(format!(
            "trust file {}: no ssh-ed25519 keys usable for recordings",
            path.display()
        ))
        .into());
    }
    Ok((path, trust))
}

/// A file to verify: its path, or why it is unreadable without even opening it.
struct Target {
    path: PathBuf,
    unreadable: Option<String>,
}

fn is_recording_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(sealcast_format::names::is_recording_name)
}

/// Walk `dir` recursively (entries sorted by name, symlinked directories not followed),
/// collecting `*.cast.zst`. An entry with that name that is not a regular file, and a
/// directory that cannot be listed, are collected as unreadable (the walk goes on).
fn walk(dir: &Path, out: &mut Vec<Target>) {
    let listed = fs::read_dir(dir).and_then(|rd| {
        let mut entries = Vec::new();
        for e in rd {
            let e = e?;
            let is_dir = e.file_type()?.is_dir();
            entries.push((e.file_name(), e.path(), is_dir));
        }
        Ok(entries)
    });
    let mut entries = match listed {
        Ok(entries) => entries,
        Err(e) => {
            out.push(Target {
                path: dir.to_path_buf(),
                unreadable: Some(format!("cannot list directory: {e}")),
            });
            return;
        }
    };
    entries.sort();
    for (_, path, is_dir) in entries {
        if is_recording_name(&path) {
            out.push(target(path));
        } else if is_dir {
            walk(&path, out);
        }
    }
}

/// A target for a recording path; non-regular files (after following symlinks) are marked
/// unreadable here already (and again when opened, see [`verify_one`]).
fn target(path: PathBuf) -> Target {
    let unreadable = match fs::metadata(&path) {
        Err(e) => Some(e.to_string()),
        Ok(m) if m.is_dir() => Some("is a directory".into()),
        Ok(m) if !m.is_file() => Some(OpenError::NotRegular(kind_name(m.file_type())).to_string()),
        Ok(_) => None,
    };
    Target { path, unreadable }
}

fn collect(paths: &[PathBuf]) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for p in paths {
        let is_dir = fs::metadata(p).is_ok_and(|m| m.is_dir());
        if !is_dir || is_recording_name(p) {
            out.push(target(p.clone()));
            continue;
        }
        let before = out.len();
        walk(p, &mut out);
        if out.len() == before {
            return Err(
                UsageError(format!("no recordings (*.cast.zst) under {}", p.display())).into(),
            );
        }
    }
    Ok(out)
}

/// Verify one recording file with its receipt and name (SPEC §7). Shared with `info`.
pub fn verify_path(path: &Path, trust: &TrustStore) -> Report {
    let data = match read_regular(path, None) {
        Ok(d) => d,
        Err(e) => return Report::unreadable(e.to_string()),
    };
    verify_data(path, &data, trust)
}

/// [`verify_path`] for a recording already read into `data`.
pub fn verify_data(path: &Path, data: &[u8], trust: &TrustStore) -> Report {
    let receipt = ReceiptFile::load(path);
    verify_recording(data, &context(path, &receipt), trust)
}

/// What `verify` knows of the recording at `path` besides its bytes: its file name and its
/// seal receipt (`receipt`, from [`ReceiptFile::load`]). Every command that reports what
/// `verify` would say about a file (`info`, `queries`, the player's badge) verifies with it.
pub fn context<'a>(path: &'a Path, receipt: &'a ReceiptFile) -> Context<'a> {
    Context {
        file_name: path.file_name().and_then(|n| n.to_str()),
        receipt: receipt.as_receipt(),
    }
}

fn verify_one(t: &Target, trust: &TrustStore) -> Report {
    if let Some(why) = &t.unreadable {
        return Report::unreadable(why.clone());
    }
    verify_path(&t.path, trust)
}

#[derive(Serialize)]
struct JsonLine<'a> {
    path: String,
    #[serde(flatten)]
    report: &'a Report,
    exit_class: i32,
}

#[derive(Serialize)]
struct JsonSummaryLine {
    summary: JsonSummary,
}

#[derive(Serialize)]
struct JsonSummary {
    files: usize,
    ok: usize,
    by_status: BTreeMap<&'static str, usize>,
    exit_code: u8,
}

/// One human-readable line for a report.
fn human_line(path: &Path, r: &Report) -> String {
    let status = r.status.as_str();
    let path = path.display();
    if r.status == Status::Ok {
        let mut details = vec![
            format!("{} lines", r.verified_lines),
            format!("{} checkpoints", r.checkpoints),
            "sealed".to_string(),
        ];
        if let Some(k) = &r.key_id {
            details.push(format!("key {}", &k[..k.len().min(16)]));
        }
        let fields = [("signer", &r.signer), ("user", &r.user), ("host", &r.host)];
        for (name, v) in fields {
            if let Some(v) = v {
                details.push(format!("{name} {v}"));
            }
        }
        return format!("{status:<STATUS_WIDTH$} {path}  ({})", details.join(", "));
    }
    match &r.divergence {
        Some(d) => {
            // Container errors already start with "offset N: ".
            let prefix = format!("offset {}: ", d.offset);
            let reason = r.reason.strip_prefix(&prefix).unwrap_or(&r.reason);
            format!(
                "{status:<STATUS_WIDTH$} {path}: line {}, offset {}: {reason}",
                d.line, d.offset
            )
        }
        None => format!("{status:<STATUS_WIDTH$} {path}: {}", r.reason),
    }
}

/// Run `sealcast verify`: one line (or JSON object) per file on stdout, then a summary.
/// Returns the exit code (0, 1, 2 or 4, SPEC §7).
///
/// # Errors
/// [`UsageError`] (exit 3) for trust-file problems, a missing archive, or a directory without
/// recordings; I/O errors writing stdout (exit 4).
pub fn run(args: crate::VerifyArgs) -> Result<u8> {
    if crate::cmd::verify_bucket::wants(&args) {
        return crate::cmd::verify_bucket::run(args);
    }
    let (_, trust) = load_trust(args.trusted.as_deref())?;
    let paths = if args.paths.is_empty() {
        let archive = paths::archive().map_err(|e| UsageError(format!("{e:#}")))?;
        if !archive.is_dir() {
            return Err(UsageError(format!(
                "no paths given and the archive {} does not exist",
                archive.display()
            ))
            .into());
        }
        vec![archive]
    } else {
        args.paths.clone()
    };
    let targets = collect(&paths)?;

    let stdout = io::stdout();
    let mut out = VerdictOut::new(stdout.lock());
    let mut statuses = Vec::with_capacity(targets.len());
    for t in &targets {
        if out.closed() {
            break;
        }
        let report = verify_one(t, &trust);
        statuses.push(report.status);
        if args.json {
            let line = JsonLine {
                path: t.path.to_string_lossy().into_owned(),
                report: &report,
                exit_class: report.status.exit_class(),
            };
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", human_line(&t.path, &report))?;
        }
        out.flush()?;
    }

    let unchecked = targets.len() - statuses.len();
    if unchecked > 0 {
        // stderr may be a closed pipe too: the exit code is what must get through.
        let _ = writeln!(
            io::stderr(),
            "sealcast: verify: output closed; {unchecked} of {} files not verified (exit as \
             for an unreadable file)",
            targets.len()
        );
        let classes = statuses.iter().chain([&Status::Unreadable]);
        let code = exit_code(classes.map(|s| s.exit_class()), args.strict);
        return Ok(code);
    }
    let code = exit_code(statuses.iter().map(|s| s.exit_class()), args.strict);
    let mut by_status = BTreeMap::new();
    for s in &statuses {
        *by_status.entry(s.as_str()).or_insert(0) += 1;
    }
    let ok = by_status.get("OK").copied().unwrap_or(0);
    if args.json {
        let summary = JsonSummary {
            files: statuses.len(),
            ok,
            by_status,
            exit_code: code,
        };
        serde_json::to_writer(&mut out, &JsonSummaryLine { summary })?;
        writeln!(out)?;
    } else {
        let parts: Vec<String> = Status::ALL
            .iter()
            .filter_map(|s| {
                by_status
                    .get(s.as_str())
                    .map(|n| format!("{n} {}", s.as_str()))
            })
            .collect();
        let n = statuses.len();
        let files = if n == 1 { "file" } else { "files" };
        writeln!(out, "summary: {n} {files}: {}", parts.join(", "))?;
    }
    out.flush()?;
    Ok(code)
}
