//! `sealcast upload [--config FILE] --spool DIR --to s3://BUCKET/PREFIX --host NAME
//! [--key FILE] [--watch] [--endpoint-url URL]`: ship the spool to S3 — closed recordings,
//! segments of live ones, recordings whose recorder died — with signed manifests
//! ([`sealcast_store::upload`], format-spec/MANIFEST.md §2). Settings come from flags, else
//! the `[upload]` table of the settings file (read through [`sealcast_config`], the one
//! schema of sealcast.toml), else their defaults ([`Upload`]'s constants).
//!
//! Exit code: 0 when every recording due is stored, 4 when some could not be (they stay in
//! the spool for the next run), 3 for usage errors (bad flags or settings file).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;

use sealcast_config::{LockMode as FileLockMode, Source, Upload};
use sealcast_signer::SigningKey;
use sealcast_store::clock::{Clock, ShiftedClock, SystemClock};
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
    /// Settings file: the `[upload]` table of sealcast.toml (plus its top-level `spool_dir`,
    /// `key` and `host_id` as defaults). Flags override it. Default: /etc/sealcast/sealcast.toml
    /// when it exists.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Spool directory the recorder writes into (config: upload.spool, else spool_dir).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Destination: s3://BUCKET/PREFIX (config: upload.to).
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Host name used in object keys, recordings/<host>/… (config: upload.host, else host_id,
    /// else this machine's host name).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Host signing key (PKCS#8) for the signed manifests (config: upload.key, else key; else
    /// the dev key under the XDG data dir, when it exists). Without a key no manifest is stored
    /// and spool files are kept.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Manifest period in seconds: with --watch a manifest (or heartbeat) every period
    /// [default: 300].
    #[arg(long, value_name = "SECS")]
    pub period_secs: Option<u64>,
    /// Keep running: scan the spool every --poll-secs seconds (config: upload.watch).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between spool scans with --watch [default: 10].
    #[arg(long, value_name = "SECS")]
    pub poll_secs: Option<u64>,
    /// S3 endpoint (default: AWS_ENDPOINT_URL, else AWS). Path-style addressing is used with an endpoint.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Object Lock retention mode, used when the bucket has Object Lock enabled
    /// [default: compliance].
    #[arg(long, value_enum)]
    pub lock_mode: Option<LockModeArg>,
    /// Object Lock retention in days, used when the bucket has Object Lock enabled
    /// [default: 365].
    #[arg(long, value_name = "DAYS")]
    pub lock_days: Option<u32>,
    /// Tries per object before it is left for the next run [default: 8].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Recordings of at least this many MiB go up as multipart uploads [default: 64].
    #[arg(long, value_name = "MIB")]
    pub multipart_threshold_mib: Option<u64>,
    /// Multipart part size in MiB, at least 5 [default: 16].
    #[arg(long, value_name = "MIB")]
    pub part_size_mib: Option<u64>,
    /// Parts of one multipart upload sent at once (memory: this many parts) [default: 4].
    #[arg(long, value_name = "N")]
    pub parallel_parts: Option<usize>,
    /// Ship what live sessions recorded since the last time (a segment up to their last
    /// checkpoint) this often, in seconds; 0: ship sessions only once they close or their
    /// recorder died [default: 300].
    #[arg(long, value_name = "SECS")]
    pub segment_secs: Option<u64>,
    /// A recording without seal receipt whose recorder is gone (lock free) is shipped as
    /// recovered once idle this many seconds [default: 60].
    #[arg(long, value_name = "SECS")]
    pub recover_after_secs: Option<u64>,
    /// Longest wait between tries, in seconds (capped exponential backoff from 0.25 s)
    /// [default: 30].
    #[arg(long, value_name = "SECS")]
    pub max_backoff_secs: Option<u64>,
}

fn this_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    sealcast_format::host_id::sanitize(&String::from_utf8_lossy(&buf[..end]))
}

/// The uploader's wall clock: the system's, unless the test knob `SEALCAST_TEST_NOW` (Unix
/// seconds; undocumented in `--help`, for the S3 tests only) starts it at another time, from
/// which it runs at the system's pace — so a test moves a one-shot run past a segment
/// interval or manifest period instead of sleeping through it. Read here, at the CLI
/// boundary, and nowhere else.
fn clock() -> Result<Arc<dyn Clock>> {
    match std::env::var("SEALCAST_TEST_NOW") {
        Err(_) => Ok(Arc::new(SystemClock)),
        Ok(s) => {
            let secs: u64 = s
                .parse()
                .map_err(|_| UsageError(format!("SEALCAST_TEST_NOW={s:?}: not Unix seconds")))?;
            Ok(Arc::new(ShiftedClock::new(secs.saturating_mul(1_000_000))))
        }
    }
}

/// Run `sealcast upload`.
///
/// # Errors
/// [`UsageError`] for a bad URL, host name, spool, key or settings file; setup failures
/// (exit 4).
pub fn run(a: UploadArgs) -> Result<u8> {
    // The named file (must exist), else /etc/sealcast/sealcast.toml when present.
    let (file, _) = Source::from_flag(a.config.clone())
        .load()
        .map_err(|e| UsageError(e.to_string()))?;
    let c = file.upload;
    let to = a.to.or(c.to).ok_or_else(|| {
        UsageError(
            "no destination: give --to s3://BUCKET/PREFIX or upload.to in the settings file".into(),
        )
    })?;
    let dest = S3Url::parse(&to).map_err(|e| UsageError(format!("--to: {e:#}")))?;
    let spool = a.spool.or(c.spool).or(file.spool_dir).ok_or_else(|| {
        UsageError("no spool: give --spool DIR or spool_dir in the settings file".into())
    })?;
    if !spool.is_dir() {
        return Err(UsageError(format!("--spool {}: not a directory", spool.display())).into());
    }
    let host = a.host.or(c.host).or(file.host_id).unwrap_or_else(this_host);
    if !sealcast_store::layout::is_safe_segment(&host) {
        return Err(UsageError(format!(
            "--host {host:?}: letters, digits, '.', '_' or '-' only"
        ))
        .into());
    }
    let key_path = match a.key.or(c.key).or(file.key) {
        Some(k) => Some(k),
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
    let lock_mode = match a.lock_mode {
        Some(m) => m,
        None => match c.lock_mode.unwrap_or(Upload::DEFAULT_LOCK_MODE) {
            FileLockMode::Compliance => LockModeArg::Compliance,
            FileLockMode::Governance => LockModeArg::Governance,
        },
    };
    let segment_secs = a
        .segment_secs
        .or(c.segment_secs)
        .unwrap_or(Upload::DEFAULT_SEGMENT_SECS);
    let opts = Options {
        spool,
        dest,
        host,
        endpoint: a.endpoint_url.or(c.endpoint_url),
        lock_mode: match lock_mode {
            LockModeArg::Compliance => LockMode::Compliance,
            LockModeArg::Governance => LockMode::Governance,
        },
        lock_days: a
            .lock_days
            .or(c.lock_days)
            .unwrap_or(Upload::DEFAULT_LOCK_DAYS),
        backoff: Backoff {
            attempts: a
                .max_attempts
                .or(c.max_attempts)
                .unwrap_or(Upload::DEFAULT_MAX_ATTEMPTS)
                .max(1),
            cap: Duration::from_secs(
                a.max_backoff_secs
                    .or(c.max_backoff_secs)
                    .unwrap_or(Upload::DEFAULT_MAX_BACKOFF_SECS)
                    .max(1),
            ),
            ..Backoff::default()
        },
        watch: a.watch || c.watch.unwrap_or(false),
        poll: Duration::from_secs(
            a.poll_secs
                .or(c.poll_secs)
                .unwrap_or(Upload::DEFAULT_POLL_SECS)
                .max(1),
        ),
        signing_key,
        period: Duration::from_secs(
            a.period_secs
                .or(c.period_secs)
                .unwrap_or(Upload::DEFAULT_PERIOD_SECS)
                .max(1),
        ),
        multipart_threshold: a
            .multipart_threshold_mib
            .or(c.multipart_threshold_mib)
            .unwrap_or(Upload::DEFAULT_MULTIPART_THRESHOLD_MIB)
            .max(1)
            << 20,
        part_size: a
            .part_size_mib
            .or(c.part_size_mib)
            .unwrap_or(Upload::DEFAULT_PART_SIZE_MIB)
            .max(5)
            << 20,
        parallel_parts: a
            .parallel_parts
            .or(c.parallel_parts)
            .unwrap_or(Upload::DEFAULT_PARALLEL_PARTS)
            .max(1),
        segment_every: (segment_secs > 0).then(|| Duration::from_secs(segment_secs)),
        recover_grace: Duration::from_secs(
            a.recover_after_secs
                .or(c.recover_after_secs)
                .unwrap_or(sealcast_reader::spool::RECOVER_GRACE.as_secs()),
        ),
        clock: clock()?,
    };
    let sum = upload::run(opts)?;
    println!(
        "upload: {} uploaded, {} already stored, {} shipped earlier, {} still open ({} segments), {} recovered after a crash, {} failed, {} manifests, {} spool recordings released",
        sum.uploaded, sum.already_stored, sum.previously_shipped, sum.open, sum.segments, sum.recovered, sum.failed, sum.manifests, sum.deleted
    );
    Ok(if sum.failed > 0 { 4 } else { 0 })
}
