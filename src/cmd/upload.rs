//! `sealcast upload --spool DIR --to s3://BUCKET/PREFIX --host NAME [--key FILE] [--watch]
//! [--endpoint-url URL]`: ship finished recordings from the spool to S3
//! ([`sealcast_store::upload`]).
//!
//! Exit code: 0 when every finished recording is stored, 4 when some could not be (they stay
//! in the spool for the next run), 3 for usage errors.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;

use sealcast_signer::SigningKey;
use sealcast_store::s3::{Backoff, S3Url};
use sealcast_store::upload::{self, LockMode, Options};

use crate::cmd::UsageError;

/// Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockModeArg {
    /// Nobody, not even the root account, can delete or shorten before the date.
    Compliance,
    /// Principals allowed to bypass governance retention can.
    Governance,
}

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// Spool directory the recorder writes into.
    #[arg(long, value_name = "DIR")]
    pub spool: PathBuf,
    /// Destination: s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Host name used in object keys (recordings/<host>/…).
    #[arg(long, value_name = "NAME")]
    pub host: String,
    /// Host signing key (PKCS#8) for the signed manifests (default: the dev key under the
    /// XDG data dir, when it exists). Without a key no manifest is stored and spool files are kept.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Manifest period in seconds: with --watch a manifest (or heartbeat) every period.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub period_secs: u64,
    /// Keep running: scan the spool every --poll-secs seconds.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between spool scans with --watch.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub poll_secs: u64,
    /// S3 endpoint (default: AWS_ENDPOINT_URL, else AWS). Path-style addressing is used with an endpoint.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Object Lock retention mode, used when the bucket has Object Lock enabled.
    #[arg(long, value_enum, default_value_t = LockModeArg::Compliance)]
    pub lock_mode: LockModeArg,
    /// Object Lock retention in days, used when the bucket has Object Lock enabled.
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    pub lock_days: u32,
    /// Tries per object before it is left for the next run.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_attempts: u32,
    /// Recordings of at least this many MiB go up as multipart uploads.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub multipart_threshold_mib: u64,
    /// Multipart part size in MiB (at least 5).
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub part_size_mib: u64,
    /// Parts of one multipart upload sent at once (memory: this many parts).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel_parts: usize,
    /// Longest wait between tries, in seconds (capped exponential backoff from 0.25 s).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub max_backoff_secs: u64,
}

/// Run `sealcast upload`.
///
/// # Errors
/// [`UsageError`] for a bad URL, host name, spool or key; setup failures (exit 4).
pub fn run(a: UploadArgs) -> Result<u8> {
    let dest = S3Url::parse(&a.to).map_err(|e| UsageError(format!("--to: {e:#}")))?;
    if !a.spool.is_dir() {
        return Err(UsageError(format!("--spool {}: not a directory", a.spool.display())).into());
    }
    if !sealcast_store::layout::is_safe_segment(&a.host) {
        return Err(UsageError(format!(
            "--host {:?}: letters, digits, '.', '_' or '-' only",
            a.host
        ))
        .into());
    }
    let key_path = match &a.key {
        Some(k) => Some(k.clone()),
        None => crate::paths::dev_key().ok().filter(|p| p.is_file()),
    };
    let signing_key = match &key_path {
        Some(k) => {
            let bytes =
                std::fs::read(k).map_err(|e| UsageError(format!("--key {}: {e}", k.display())))?;
            Some(
                SigningKey::from_file_bytes(&bytes)
                    .map_err(|e| UsageError(format!("--key {}: {e}", k.display())))?,
            )
        }
        None => None,
    };
    let opts = Options {
        spool: a.spool,
        dest,
        host: a.host,
        endpoint: a.endpoint_url,
        lock_mode: match a.lock_mode {
            LockModeArg::Compliance => LockMode::Compliance,
            LockModeArg::Governance => LockMode::Governance,
        },
        lock_days: a.lock_days,
        backoff: Backoff {
            attempts: a.max_attempts.max(1),
            cap: Duration::from_secs(a.max_backoff_secs.max(1)),
            ..Backoff::default()
        },
        watch: a.watch,
        poll: Duration::from_secs(a.poll_secs.max(1)),
        signing_key,
        period: Duration::from_secs(a.period_secs.max(1)),
        multipart_threshold: a.multipart_threshold_mib.max(1) << 20,
        part_size: a.part_size_mib.max(5) << 20,
        parallel_parts: a.parallel_parts.max(1),
    };
    let sum = upload::run(opts)?;
    println!(
        "upload: {} uploaded, {} already stored, {} shipped earlier, {} still open, {} failed, {} manifests, {} spool recordings released",
        sum.uploaded, sum.already_stored, sum.previously_shipped, sum.open, sum.failed, sum.manifests, sum.deleted
    );
    Ok(if sum.failed > 0 { 4 } else { 0 })
}
