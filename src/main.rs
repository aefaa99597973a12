//! `sealcast`: record, seal, verify and replay terminal sessions.
//!
//! `main` is the exit-code boundary: commands return an exit code or an error; errors print
//! as `sealcast: {:#}` and exit 4 (I/O) or 3 (usage). A closed stdout (broken pipe) is
//! success only for `cat`, `export` and `play`, whose exit code is no verdict; `verify`,
//! `doctor` and `info` keep their verdict when stdout closes (`cmd::VerdictOut`), and any
//! other command that meets one exits 4.

// Doc comments on the clap types are `--help` text, where `<host>` is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod cmd;
mod paths;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Sealed terminal-session recorder and player.
#[derive(Debug, Parser)]
#[command(name = "sealcast", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an Ed25519 signing key: DIR/signing.key (PKCS#8, mode 0600) and DIR/signing.pub.
    Keygen(KeygenArgs),
    /// Record a session (login shell or CMD) in a new PTY into a sealed .cast.zst.
    Record(RecordArgs),
    /// Verify recordings (files or directories) against trusted keys.
    Verify(VerifyArgs),
    /// Play a recording in the terminal player (seek, search, side panel, verification), or
    /// browse a directory of recordings; --plain streams it with its original timing.
    Play(PlayArgs),
    /// Write the recorded output bytes, exactly, to stdout.
    Cat(FileArg),
    /// Convert a recording to another format on stdout.
    Export(ExportArgs),
    /// Show a recording's metadata and verification summary.
    Info(InfoArgs),
    /// Set this host up as a recorded SSH bastion: user, keys, config, spool, set-uid
    /// sealcast-shell (run as root; idempotent). Prints the sshd_config snippet.
    InstallBastion(cmd::install::InstallBastionArgs),
    /// Ship a spool to S3 (s3://BUCKET/PREFIX): closed recordings, segments of live ones, crashed ones; signed manifests.
    Upload(cmd::upload::UploadArgs),
    /// Probe what an S3 bucket really enforces (conditional writes, checksums, versioning, Object Lock).
    Doctor(cmd::doctor::DoctorArgs),
    /// Recording proxy for a PostgreSQL or MySQL/MariaDB target on a Unix socket; one sealed recording per connection.
    DbProxy(cmd::dbproxy::DbProxyArgs),
    /// One row per database statement of a recording (verified content only).
    Queries(cmd::queries::QueriesArgs),
    /// One row per command of a recording: shell claims, the processes seen, disagreements
    /// (verified content only; the rest marked).
    Commands(cmd::commands::CommandsArgs),
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Directory to write signing.key and signing.pub into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Comment for the public key (default: sealcast@<hostname>).
    #[arg(long)]
    pub comment: Option<String>,
    /// Host id the key will sign for: the principal of the printed allowed_signers line
    /// (default: the host id `record` uses, the host name). A pattern list such as
    /// `bastion-*,!bastion-9` also works; `*` (any host) is discouraged.
    #[arg(long, value_name = "ID")]
    pub host_id: Option<String>,
    /// Also append the allowed_signers line to FILE (created if missing).
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Write the recording to FILE (must not exist; should end in .cast.zst).
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub out: Option<PathBuf>,
    /// Write the recording into DIR as <session-id>.cast.zst.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Signing key (PKCS#8 PEM/DER). Default: the dev key under the XDG data dir, created on first use.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Also record keyboard input (`i` events). Off by default: input contains passwords.
    #[arg(long)]
    pub capture_input: bool,
    /// Host id stored in the recording (default: the system hostname).
    #[arg(long)]
    pub host_id: Option<String>,
    /// Seconds between time-based checkpoints.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub checkpoint_secs: f64,
    /// Event bytes between size-based checkpoints (at most 8 MiB: frames stay under the 16 MiB
    /// readers accept).
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    pub checkpoint_bytes: u64,
    /// zstd compression level (1–19). Higher levels shrink files a little at a large CPU cost.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,
    /// Do not print where the recording went.
    #[arg(long, short)]
    pub quiet: bool,
    /// Command and arguments to record (default: the user's login shell).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// allowed_signers file with the trusted keys (default: the dev trust file under the XDG data dir).
    #[arg(long, value_name = "FILE")]
    pub trusted: Option<PathBuf>,
    /// One JSON object per file plus a summary object, on stdout.
    #[arg(long)]
    pub json: bool,
    /// Treat incomplete recordings (crash tails) as failures (exit 1 instead of 2).
    #[arg(long)]
    pub strict: bool,
    /// Files or directories (default: the local archive under the XDG data dir), or one
    /// s3://BUCKET/PREFIX or bucket mirror directory (with --host).
    pub paths: Vec<PathBuf>,
    /// Bucket mode: the host whose manifests and recordings to verify.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Bucket mode: only verify recordings of manifests ending at or after T.
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Bucket mode: only verify recordings of manifests starting at or before T.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Bucket mode: CI state file (last verified manifest); ROLLBACK/FORK when history changed.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Bucket mode: S3 endpoint (default: AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Bucket mode: allowed age of the newest manifest, in seconds (else STALE).
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    pub max_lag_secs: u64,
}

#[derive(Debug, clap::Args)]
pub struct FileArg {
    /// Recording (.cast.zst).
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// Playback speed factor.
    #[arg(long, short, default_value_t = 1.0)]
    pub speed: f64,
    /// Cap idle gaps at this many seconds.
    #[arg(long, short, value_name = "SECS")]
    pub idle_limit: Option<f64>,
    /// Stream the output to stdout with its timing instead of opening the player (also when
    /// stdout is not a terminal).
    #[arg(long)]
    pub plain: bool,
    /// Follow a recording that is still being written (live).
    #[arg(long, short)]
    pub follow: bool,
    /// Open paused at this time (1h2m3s, 83.5, 1:02).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// allowed_signers file for the verification badge (default: the dev trust file).
    #[arg(long, value_name = "FILE")]
    pub trusted: Option<PathBuf>,
    /// For an s3:// recording: S3 endpoint (default: AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Recording (.cast.zst), an s3://BUCKET/KEY recording object, or a directory for the
    /// library view (default: the archive).
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The decompressed stream, byte for byte.
    #[value(name = "asciicast-v3")]
    AsciicastV3,
    /// asciicast v2 (absolute times; extension events dropped).
    #[value(name = "asciicast-v2")]
    AsciicastV2,
    /// Plain text of the output, escape sequences removed.
    Txt,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, short, value_enum)]
    pub format: ExportFormat,
    /// Recording (.cast.zst).
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// allowed_signers file for the verification summary (default: the dev trust file).
    #[arg(long, value_name = "FILE")]
    pub trusted: Option<PathBuf>,
    /// Recording (.cast.zst).
    pub file: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 3 } else { 0 });
        }
    };
    // Commands whose output is the product and whose exit code is no verdict.
    let pipe_closing_is_success = matches!(
        cli.command,
        Command::Cat(_) | Command::Export(_) | Command::Play(_)
    );
    let result = match cli.command {
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Record(a) => cmd::record::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Play(a) => cmd::replay::play(a),
        Command::Cat(a) => cmd::replay::cat(a),
        Command::Export(a) => cmd::replay::export(a),
        Command::Info(a) => cmd::replay::info(a),
        Command::InstallBastion(a) => cmd::install::run(a),
        Command::Upload(a) => cmd::upload::run(a),
        Command::Doctor(a) => cmd::doctor::run(a),
        Command::DbProxy(a) => cmd::dbproxy::run(a),
        Command::Queries(a) => cmd::queries::run(a),
        Command::Commands(a) => cmd::commands::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if pipe_closing_is_success && is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("sealcast: {e:#}");
            ExitCode::from(if e.downcast_ref::<cmd::UsageError>().is_some() {
                3
            } else {
                4
            })
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
