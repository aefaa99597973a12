//! `sealcast verify s3://BUCKET/PREFIX --host H` (or a mirror directory holding `manifests/`):
//! the manifest chain and every recording of a host ([`sealcast_store::verify`],
//! format-spec/MANIFEST.md §5). One line (or JSON object) per object and chain finding, then
//! a summary. Exit code as SPEC §7: 1 if any finding is in class 1, else 4, else 2 (1 with
//! `--strict`), else 0; 3 for usage errors. `--state FILE` is rewritten only by a run that
//! exits 0. Everything is verified before anything is printed, so a closed stdout changes
//! neither the code nor the state file.
//!
//! On a terminal, a progress bar on stderr (bytes and recordings checked, their rates); none
//! when stderr is not a terminal. It stays with `--json`, whose output is on stdout.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use sealcast_reader::exit_code;
use sealcast_store::layout::parse_utc;
use sealcast_store::s3::{self, Backoff, S3Url};
use sealcast_store::verify::{self, BucketStatus, Head, Options, Progress, ProgressEvent, Source};

use crate::cmd::{UsageError, VerdictOut};

/// Whether `verify` should treat its paths as a bucket or a mirror: an `s3://` URL, or a
/// directory holding `manifests/` when `--host` is given.
pub fn wants(args: &crate::VerifyArgs) -> bool {
    args.paths.iter().any(|p| {
        p.to_str().is_some_and(|s| s.starts_with("s3://"))
            || (args.host.is_some() && p.join("manifests").is_dir())
    })
}

#[derive(Serialize)]
struct JsonSummary {
    summary: Summary,
}

#[derive(Serialize)]
struct Summary {
    host: String,
    manifests_ok: usize,
    recordings_ok: usize,
    by_status: BTreeMap<&'static str, usize>,
    exit_code: u8,
}

fn load_state(path: &Path, host: &str) -> Result<Option<Head>> {
    match std::fs::read(path) {
        Ok(b) => {
            let h: Head = serde_json::from_slice(&b)
                .map_err(|e| UsageError(format!("--state {}: {e}", path.display())))?;
            if h.host != host {
                return Err(UsageError(format!(
                    "--state {} is for host {}, not {host}",
                    path.display(),
                    h.host
                ))
                .into());
            }
            Ok(Some(h))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(UsageError(format!("--state {}: {e}", path.display())).into()),
    }
}

/// The progress bar for a run, drawn on stderr (nothing when stderr is not a terminal):
/// bytes of listed recordings checked of their total, bytes/s, recordings checked and
/// recordings/s. It advances once per recording, when that recording is done.
fn progress_bar() -> (ProgressBar, Progress) {
    let target = if io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    let style = |t: &str| ProgressStyle::with_template(t).expect("progress template");
    // Until the totals are known: a spinner.
    bar.set_style(style("{spinner} verify [{elapsed_precise}] {msg}"));
    bar.set_message("checking manifests");
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    let with_totals = style(
        "{spinner} verify [{elapsed_precise}] {msg}, {bytes}/{total_bytes} \
         ({binary_bytes_per_sec}) [{wide_bar}]",
    )
    .progress_chars("=> ");
    // (recordings done, recordings listed, first recording started at)
    let state = Mutex::new((0u64, 0u64, None::<Instant>));
    let b = bar.clone();
    let report: Progress = Arc::new(move |ev| {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            ProgressEvent::Totals { recordings, bytes } => {
                st.1 = recordings;
                b.set_message(format!("0/{recordings} recordings"));
                b.set_length(bytes);
                b.set_style(with_totals.clone());
            }
            ProgressEvent::Started { .. } => {
                st.2.get_or_insert_with(Instant::now);
            }
            ProgressEvent::Finished { bytes, .. } => {
                st.0 += 1;
                let secs = st.2.map_or(0.0, |t| t.elapsed().as_secs_f64());
                let rate = if secs > 0.0 { st.0 as f64 / secs } else { 0.0 };
                b.inc(bytes);
                b.set_message(format!("{}/{} recordings ({rate:.1}/s)", st.0, st.1));
            }
        }
    });
    (bar, report)
}

/// Run the bucket / mirror verification.
///
/// # Errors
/// [`UsageError`] (exit 3) for bad arguments or trust; a failed listing (exit 4).
pub fn run(args: crate::VerifyArgs) -> Result<u8> {
    let (_, trust) = crate::cmd::verify::load_trust(args.trusted.as_deref())?;
    let host = args
        .host
        .clone()
        .ok_or_else(|| UsageError("verifying a bucket or mirror needs --host NAME".into()))?;
    if args.paths.len() != 1 {
        return Err(
            UsageError("give exactly one s3://BUCKET/PREFIX or mirror directory".into()).into(),
        );
    }
    let time = |v: &Option<String>, flag: &str| -> Result<Option<u64>> {
        v.as_deref()
            .map(|s| {
                parse_utc(s).ok_or_else(|| {
                    UsageError(format!(
                        "{flag} {s:?}: use YYYY-MM-DD[THH:MM[:SS]Z] or Unix seconds"
                    ))
                    .into()
                })
            })
            .transpose()
    };
    let since_us = time(&args.since, "--since")?;
    let until_us = time(&args.until, "--until")?;
    let state = match &args.state {
        Some(p) => load_state(p, &host)?,
        None => None,
    };
    let (bar, progress) = progress_bar();
    let path = &args.paths[0];
    let target = path.to_string_lossy().into_owned();
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let opts = Options {
        host: host.clone(),
        since_us,
        until_us,
        max_lag: Duration::from_secs(args.max_lag_secs),
        state,
        now_us,
        progress: Some(progress),
    };
    let rt = s3::runtime()?;
    let outcome = rt.block_on(async {
        let src = if target.starts_with("s3://") {
            let url = S3Url::parse(&target).map_err(|e| UsageError(format!("{e:#}")))?;
            Source::S3 {
                client: s3::client(args.endpoint_url.as_deref()).await,
                url,
                backoff: Backoff::default(),
            }
        } else {
            eprintln!(
                "sealcast verify: {target} is a mirror: it has no store clock, so signing keys' \
                 valid-after/valid-before are checked against the signed times only \
                 (MANIFEST.md §5)"
            );
            Source::Dir(PathBuf::from(path))
        };
        Ok::<_, anyhow::Error>(verify::verify(&src, &trust, &opts).await?)
    });
    // The bar's last state stays on the terminal, above the findings.
    bar.finish();
    let outcome = outcome?;

    let stdout = io::stdout();
    let mut out = VerdictOut::new(stdout.lock());
    for f in &outcome.findings {
        if args.json {
            serde_json::to_writer(&mut out, f)?;
            writeln!(out)?;
        } else {
            let v = f
                .version_id
                .as_deref()
                .map(|v| format!(" @{v}"))
                .unwrap_or_default();
            let sep = if f.detail.is_empty() { "" } else { ": " };
            writeln!(
                out,
                "{:<13} {:<9} {}{v}{sep}{}",
                f.status.as_str(),
                f.kind,
                f.key,
                f.detail
            )?;
        }
    }
    let classes = outcome.findings.iter().map(|f| f.status.exit_class());
    let code = exit_code(classes, args.strict);
    let mut by_status = BTreeMap::new();
    for f in &outcome.findings {
        *by_status.entry(f.status.as_str()).or_insert(0) += 1;
    }
    let count = |kind: &str| {
        outcome
            .findings
            .iter()
            .filter(|f| f.kind == kind && f.status == BucketStatus::Ok)
            .count()
    };
    let summary = Summary {
        host: host.clone(),
        manifests_ok: count("manifest"),
        recordings_ok: count("recording"),
        by_status,
        exit_code: code,
    };
    if args.json {
        serde_json::to_writer(&mut out, &JsonSummary { summary })?;
        writeln!(out)?;
    } else {
        let parts: Vec<String> = summary
            .by_status
            .iter()
            .filter(|(s, _)| **s != "OK")
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        writeln!(
            out,
            "summary: host {host}: {} manifests OK, {} recordings OK{}{}",
            summary.manifests_ok,
            summary.recordings_ok,
            if parts.is_empty() { "" } else { "; " },
            parts.join(", ")
        )?;
    }
    out.flush()?;
    if code == 0 {
        if let (Some(p), Some(h)) = (&args.state, &outcome.head) {
            sealcast_store::upload::write_atomic(p, &serde_json::to_vec_pretty(h)?)?;
        }
    }
    Ok(code)
}
