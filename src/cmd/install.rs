//! `sealcast install-bastion`: the flags, then [`sealcast_install::run`] (crate `install/`),
//! which does the work and explains the privilege model.
//!
//! Exit code: 0 done (or nothing to do); 3 refused (not root, bad paths, a file it will not
//! touch, an invalid existing `sealcast.toml`); 4 a system failure (I/O, a user tool failed).

use std::io;
use std::path::PathBuf;

use anyhow::Result;
use sealcast_config::DEFAULT_CONFIG_DIR;
use sealcast_install::{Options, DEFAULT_PREFIX};

use super::UsageError;

/// Arguments of `sealcast install-bastion`.
#[derive(Debug, clap::Args)]
pub struct InstallBastionArgs {
    /// Installation prefix: sealcast-shell goes to PREFIX/lib/sealcast/sealcast-shell.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PREFIX)]
    pub prefix: PathBuf,
    /// The sealcast-shell binary to install (default: `sealcast-shell` next to this executable).
    #[arg(long, value_name = "PATH")]
    pub shell_binary: Option<PathBuf>,
    /// Configuration directory (sealcast.toml, keys/, allowed_signers). Anything but the
    /// default needs `--config` in ForceCommand, which the printed snippet includes.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// Spool directory for recordings (default: spool_dir of an existing sealcast.toml, else
    /// /var/spool/sealcast).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Host id for a new sealcast.toml and the allowed_signers principal (default: host_id of
    /// an existing sealcast.toml, else the host name).
    #[arg(long, value_name = "ID")]
    pub host_id: Option<String>,
    /// Users to record (comma-separated or repeated): their login shell becomes the installed
    /// sealcast-shell, which refuses sessions of users whose login shell is anything else.
    #[arg(
        long,
        value_name = "USER",
        value_delimiter = ',',
        conflicts_with = "uninstall"
    )]
    pub users: Vec<String>,
    /// Record the members of this group (listed in it, or with it as primary group) like
    /// --users. Users who join it later need another run (or usermod -s).
    #[arg(long, value_name = "GROUP", conflicts_with = "uninstall")]
    pub group: Option<String>,
    /// Remove the installed binary and the unchanged default config; keys, allowed_signers
    /// and recordings are kept.
    #[arg(long)]
    pub uninstall: bool,
    /// With --uninstall: also delete the `sealcast` user and group (kept files are handed
    /// to root first, so a future account that reuses the id cannot read them).
    #[arg(long, requires = "uninstall")]
    pub purge: bool,
    /// With --uninstall: go ahead even though some users still have sealcast-shell as their
    /// login shell (they will not be able to log in until it is changed).
    #[arg(long, requires = "uninstall")]
    pub force: bool,
    /// Print what would be done and change nothing (allowed without root).
    #[arg(long)]
    pub dry_run: bool,
}

/// Run `install-bastion`; returns the exit code.
///
/// # Errors
/// [`UsageError`] (exit 3) for what [`sealcast_install::InstallError::is_usage`] calls the
/// caller's mistake; its message (exit 4) otherwise. (Its `Display` already names the cause,
/// so the error is not passed on as a chain, which `main` would print twice.)
pub fn run(a: InstallBastionArgs) -> Result<u8> {
    let opts = Options {
        prefix: a.prefix,
        shell_binary: a.shell_binary,
        config_dir: a.config_dir,
        spool_dir: a.spool_dir,
        host_id: a.host_id,
        users: a.users,
        group: a.group,
        uninstall: a.uninstall,
        purge: a.purge,
        force: a.force,
        dry_run: a.dry_run,
    };
    match sealcast_install::run(&opts, &mut io::stdout().lock(), &mut io::stderr()) {
        Ok(()) => Ok(0),
        Err(e) if e.is_usage() => Err(UsageError(e.to_string()).into()),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}
