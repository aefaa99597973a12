//! The schema of `sealcast.toml`: every key, its type and its default, and the checks the
//! parser cannot express.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::load::ConfigError;
use crate::{
    DEFAULT_CHECKPOINT_BYTES, DEFAULT_CHECKPOINT_SECS, DEFAULT_ENV_KEEP, DEFAULT_KEY, DEFAULT_PATH,
    DEFAULT_RSYNC, DEFAULT_SCP, DEFAULT_SFTP_SERVER, DEFAULT_SHELL, DEFAULT_SPOOL_DIR,
    MAX_CHECKPOINT_BYTES,
};

/// What happens to file transfers (scp, sftp, rsync; SPEC §2.3, §10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferPolicy {
    /// Relay the transfer; record the command line, bytes in each direction, duration and
    /// exit status, but no payload (an `s` summary event).
    #[default]
    Metadata,
    /// Relay and record the transfer like any command (`o`/`e` events), plus the summary.
    Full,
    /// Refuse it with a one-line message and exit 1; the attempt is still recorded.
    Deny,
}

impl TransferPolicy {
    /// The name used in the config, the header's `policy` and the `s` event.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferPolicy::Metadata => "metadata",
            TransferPolicy::Full => "full",
            TransferPolicy::Deny => "deny",
        }
    }
}

/// `sealcast.toml`. Every key is optional; unknown keys are an error. The top-level keys
/// are sealcast-shell's (recording policy); `[upload]` is `sealcast upload`'s; `[db.<name>]`
/// and `[index]` are kept for the programs that will own them.
///
/// `host_id`, `spool_dir` and `key` are `None` when the file does not set them: sealcast-shell
/// then uses the defaults ([`Config::spool_dir()`], [`Config::key()`], the host name), while
/// `sealcast upload` falls back to its own flags and the developer key instead.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Host id in every recording and checkpoint (no whitespace). Default: the host name,
    /// whitespace replaced by `-` (the host id `sealcast record` writes).
    pub host_id: Option<String>,
    /// Where recordings go: `<spool_dir>/<session-id>.cast.zst` and its `.seal` receipt.
    /// `None` when the file does not set it; [`Config::spool_dir()`] gives the value with its
    /// default, [`DEFAULT_SPOOL_DIR`].
    pub spool_dir: Option<PathBuf>,
    /// The signing key (PKCS#8 PEM or DER, SPEC §6). `None` when the file does not set it;
    /// [`Config::key()`] gives the value with its default, [`DEFAULT_KEY`].
    pub key: Option<PathBuf>,
    /// The users' real shell, run for every recorded session (absolute path). Default
    /// `/bin/bash`. Never taken from `$SHELL` or from the passwd entry (which should be
    /// sealcast-shell itself).
    pub shell: PathBuf,
    /// Refuse sessions that cannot be recorded and end sessions whose recording fails.
    /// Default `true`. `false`: keep them running unrecorded, logging loudly.
    pub fail_closed: bool,
    /// `metadata` (default), `full` or `deny`.
    pub transfer_policy: TransferPolicy,
    /// Record keystrokes / stdin as `i` events. Default `false` (input contains passwords).
    pub capture_input: bool,
    /// A signed checkpoint at least every this many seconds while events arrive (1 to
    /// 1,000,000). Default 10.
    pub checkpoint_secs: u64,
    /// A signed checkpoint after this many bytes of events: 1 to [`MAX_CHECKPOINT_BYTES`]
    /// (8 MiB). Default 65536.
    pub checkpoint_bytes: u64,
    /// The sftp server binary that sshd's `internal-sftp` maps to; the only sftp server run
    /// as a transfer (SPEC §10.1). Default `/usr/lib/openssh/sftp-server`.
    pub sftp_server: PathBuf,
    /// The scp binary run for `scp -t` / `scp -f` transfers (SPEC §10.1). Default
    /// `/usr/bin/scp`.
    pub scp_path: PathBuf,
    /// The rsync binary run for `rsync --server` transfers (SPEC §10.1). Default
    /// `/usr/bin/rsync`.
    pub rsync_path: PathBuf,
    /// Variables passed on from sealcast-shell's environment (sshd's) to the session; a name
    /// ending in `*` matches a prefix (`LC_*`). Default `["TERM", "LANG", "LC_ALL", "TZ"]`.
    pub env_keep: Vec<String>,
    /// `PATH` of the session. Default `/usr/local/bin:/usr/bin:/bin`.
    pub path: String,
    /// **Unsafe.** Run sessions even when the user's login shell (passwd) is not this
    /// sealcast-shell. Default `false`: such sessions are refused, because with ForceCommand
    /// alone sshd runs `<login shell> -c <ForceCommand>`, and the login shell may first run
    /// files the user controls (Debian's bash sources `~/.bashrc`, zsh `~/.zshenv`), unrecorded
    /// (SPEC §10.2). `true` accepts that hole, for setups that cannot change login shells.
    pub allow_foreign_login_shell: bool,
    /// The `[upload]` table: settings of `sealcast upload`.
    pub upload: Upload,
    /// `[db.<name>]` tables: database targets ([`crate::db::Target`]; names of
    /// `[A-Za-z0-9_-]`, 1 to 64 bytes). Default none.
    pub db: BTreeMap<String, crate::db::Target>,
    /// `[index]`: reserved for the recording index, kept as raw TOML (accepted, not
    /// interpreted here yet).
    pub index: Option<toml::Table>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host_id: None,
            spool_dir: None,
            key: None,
            shell: DEFAULT_SHELL.into(),
            fail_closed: true,
            transfer_policy: TransferPolicy::Metadata,
            capture_input: false,
            checkpoint_secs: DEFAULT_CHECKPOINT_SECS,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
            sftp_server: DEFAULT_SFTP_SERVER.into(),
            scp_path: DEFAULT_SCP.into(),
            rsync_path: DEFAULT_RSYNC.into(),
            env_keep: DEFAULT_ENV_KEEP.iter().map(|s| s.to_string()).collect(),
            path: DEFAULT_PATH.into(),
            allow_foreign_login_shell: false,
            upload: Upload::default(),
            db: BTreeMap::new(),
            index: None,
        }
    }
}

impl Config {
    /// Parse and validate `text`, the contents of `path` (`path` only names the file in
    /// messages).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] (not TOML, an unknown key, a wrong type; with the line) or
    /// [`ConfigError::Invalid`] (a value outside its range; with the key).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            line: e.span().map(|s| {
                let before = &text.as_bytes()[..s.start.min(text.len())];
                1 + before.iter().filter(|&&b| b == b'\n').count()
            }),
            message: e.message().trim().to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &'static str, message: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message: message.to_string(),
        };
        if let Some(h) = &self.host_id {
            if h.is_empty() || h.chars().any(char::is_whitespace) {
                return Err(bad("host_id", "must be non-empty without whitespace"));
            }
        }
        for (key, p) in [
            ("spool_dir", self.spool_dir.as_deref()),
            ("key", self.key.as_deref()),
            ("shell", Some(self.shell.as_path())),
            ("sftp_server", Some(self.sftp_server.as_path())),
            ("scp_path", Some(self.scp_path.as_path())),
            ("rsync_path", Some(self.rsync_path.as_path())),
        ] {
            if p.is_some_and(|p| !p.is_absolute()) {
                return Err(bad(key, "must be an absolute path"));
            }
        }
        if self.checkpoint_secs == 0 || self.checkpoint_secs > 1_000_000 {
            return Err(bad("checkpoint_secs", "must be 1 to 1000000 seconds"));
        }
        if self.checkpoint_bytes == 0 || self.checkpoint_bytes > MAX_CHECKPOINT_BYTES {
            return Err(bad(
                "checkpoint_bytes",
                &format!(
                    "must be 1 to {MAX_CHECKPOINT_BYTES} (a data frame holds the events between \
                     two checkpoints, and readers refuse frames over 16 MiB, SPEC §8)"
                ),
            ));
        }
        if self.path.is_empty() {
            return Err(bad("path", "must not be empty"));
        }
        if let Some(v) = self
            .env_keep
            .iter()
            .find(|v| v.is_empty() || v.contains('=') || v[..v.len() - 1].contains('*'))
        {
            return Err(bad(
                "env_keep",
                &format!("{v:?} is not a variable name (or a prefix ending in *)"),
            ));
        }
        crate::db::validate(&self.db, path)
    }

    /// `spool_dir`, else [`DEFAULT_SPOOL_DIR`].
    pub fn spool_dir(&self) -> &Path {
        self.spool_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_SPOOL_DIR))
    }

    /// `key`, else [`DEFAULT_KEY`].
    pub fn key(&self) -> &Path {
        self.key.as_deref().unwrap_or(Path::new(DEFAULT_KEY))
    }

    /// Whether the variable `name` is passed on by `env_keep` (exact names, and prefixes
    /// written `NAME*`).
    pub fn keeps(&self, name: &str) -> bool {
        self.env_keep.iter().any(|k| match k.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => k == name,
        })
    }
}

/// Object Lock retention mode (S3 `x-amz-object-lock-mode`), `upload.lock_mode`. Written
/// in any case (`compliance`, `GOVERNANCE`), as the `--lock-mode` flag accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Nobody, not even the root account, can delete or shorten before the date.
    Compliance,
    /// Principals allowed to bypass governance retention can.
    Governance,
}

impl<'de> Deserialize<'de> for LockMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "compliance" => Ok(LockMode::Compliance),
            "governance" => Ok(LockMode::Governance),
            _ => Err(serde::de::Error::custom(format!(
                "lock_mode {s:?}: compliance or governance"
            ))),
        }
    }
}

/// The `[upload]` table: settings of `sealcast upload`, by the names of its flags
/// (`--part-size-mib` is `part_size_mib`). Every key is optional (a flag overrides it; the
/// default applies when neither is given); unknown keys are an error. Credentials and region
/// never come from here (the standard AWS chain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// `--spool`; default: the top-level `spool_dir`.
    pub spool: Option<PathBuf>,
    /// `--to`: `s3://BUCKET/PREFIX` (required, here or as the flag).
    pub to: Option<String>,
    /// `--host`: host name in object keys; default: the top-level `host_id`.
    pub host: Option<String>,
    /// `--key`: manifest signing key; default: the top-level `key`.
    pub key: Option<PathBuf>,
    /// `--endpoint-url`: an S3-compatible endpoint (path-style addressing).
    pub endpoint_url: Option<String>,
    /// `--watch`: keep running, scanning every `poll_secs`.
    pub watch: Option<bool>,
    /// `--period-secs`: a signed manifest (or heartbeat) this often, seconds.
    pub period_secs: Option<u64>,
    /// `--poll-secs`: seconds between spool scans with `watch`.
    pub poll_secs: Option<u64>,
    /// `--lock-mode`: `compliance` or `governance`.
    pub lock_mode: Option<LockMode>,
    /// `--lock-days`: Object Lock retention, days.
    pub lock_days: Option<u32>,
    /// `--max-attempts`: tries per object.
    pub max_attempts: Option<u32>,
    /// `--max-backoff-secs`: longest wait between tries, seconds.
    pub max_backoff_secs: Option<u64>,
    /// `--multipart-threshold-mib`: recordings of at least this many MiB go up in parts.
    pub multipart_threshold_mib: Option<u64>,
    /// `--part-size-mib`: multipart part size, MiB (at least 5).
    pub part_size_mib: Option<u64>,
    /// `--parallel-parts`: parts of one upload in flight.
    pub parallel_parts: Option<usize>,
    /// `--segment-secs`: ship live sessions' new checkpointed bytes this often; 0: never.
    pub segment_secs: Option<u64>,
    /// `--recover-after-secs`: an abandoned recording ships as recovered once idle this long.
    pub recover_after_secs: Option<u64>,
}

impl Upload {
    /// Default `poll_secs`.
    pub const DEFAULT_POLL_SECS: u64 = 10;
    /// Default `period_secs` (MANIFEST.md §2).
    pub const DEFAULT_PERIOD_SECS: u64 = 300;
    /// Default `lock_mode`.
    pub const DEFAULT_LOCK_MODE: LockMode = LockMode::Compliance;
    /// Default `lock_days`.
    pub const DEFAULT_LOCK_DAYS: u32 = 365;
    /// Default `max_attempts`.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
    /// Default `max_backoff_secs`.
    pub const DEFAULT_MAX_BACKOFF_SECS: u64 = 30;
    /// Default `multipart_threshold_mib`.
    pub const DEFAULT_MULTIPART_THRESHOLD_MIB: u64 = 64;
    /// Default `part_size_mib`.
    pub const DEFAULT_PART_SIZE_MIB: u64 = 16;
    /// Default `parallel_parts`.
    pub const DEFAULT_PARALLEL_PARTS: usize = 4;
    /// Default `segment_secs`.
    pub const DEFAULT_SEGMENT_SECS: u64 = 300;
}
