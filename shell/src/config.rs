//! The system configuration, `/etc/sealcast/sealcast.toml` (TOML). `shell/sealcast.toml.example`
//! lists every key with its default.
//!
//! sealcast-shell reads policy only from here: never from the user's files or environment.
//! Another file may be named with `--config PATH`, but only when the file and every directory
//! above it are owned by root or the service user and are not group- or world-writable
//! ([`check_trusted_path`]): the binary is set-uid, and an ordinary user must not be able to
//! hand it a policy of their own.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::classify::TransferPrograms;

/// The system configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/sealcast/sealcast.toml";
/// Default `spool_dir`.
pub const DEFAULT_SPOOL_DIR: &str = "/var/spool/sealcast";
/// Default `key`.
pub const DEFAULT_KEY: &str = "/etc/sealcast/keys/signing.key";
/// Default `shell`.
pub const DEFAULT_SHELL: &str = "/bin/bash";
/// Default `sftp_server` (Debian's `openssh-sftp-server`).
pub const DEFAULT_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// Default `scp_path` (Debian's `openssh-client`).
pub const DEFAULT_SCP: &str = "/usr/bin/scp";
/// Default `rsync_path` (Debian's `rsync`).
pub const DEFAULT_RSYNC: &str = "/usr/bin/rsync";
/// Default `path`.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Default `env_keep`.
pub const DEFAULT_ENV_KEEP: &[&str] = &["TERM", "LANG", "LC_ALL", "TZ"];

/// What happens to file transfers (scp, sftp, rsync).
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

/// `sealcast.toml`. Every key is optional; unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Host id in every recording and checkpoint (no whitespace). Default: the host name,
    /// whitespace replaced by `-`.
    pub host_id: Option<String>,
    /// Where recordings go: `<spool_dir>/<session-id>.cast.zst` and its `.seal` receipt.
    /// Default `/var/spool/sealcast`.
    pub spool_dir: PathBuf,
    /// The signing key (PKCS#8 PEM or DER). Default `/etc/sealcast/keys/signing.key`.
    pub key: PathBuf,
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
    /// A signed checkpoint at least every this many seconds while events arrive. Default 10.
    pub checkpoint_secs: u64,
    /// A signed checkpoint after this many bytes of events. Default 65536.
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
    /// The `[upload]` table: settings of `sealcast upload`, which checks them; ignored here.
    pub upload: OtherTable,
    /// The `[db.<name>]` tables: database targets of `sealcast db-proxy`, which checks them;
    /// ignored here.
    pub db: OtherTable,
}

/// A table of the same file that belongs to another program (accepted, not interpreted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherTable;

impl<'de> Deserialize<'de> for OtherTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(OtherTable)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host_id: None,
            spool_dir: DEFAULT_SPOOL_DIR.into(),
            key: DEFAULT_KEY.into(),
            shell: DEFAULT_SHELL.into(),
            fail_closed: true,
            transfer_policy: TransferPolicy::Metadata,
            capture_input: false,
            checkpoint_secs: 10,
            checkpoint_bytes: 64 * 1024,
            sftp_server: DEFAULT_SFTP_SERVER.into(),
            scp_path: DEFAULT_SCP.into(),
            rsync_path: DEFAULT_RSYNC.into(),
            env_keep: DEFAULT_ENV_KEEP.iter().map(|s| s.to_string()).collect(),
            path: DEFAULT_PATH.into(),
            upload: OtherTable,
            db: OtherTable,
        }
    }
}

/// Why the configuration could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` named a file that an ordinary user could have written.
    #[error("refusing --config {path}: {reason}")]
    Untrusted {
        /// The file as given.
        path: PathBuf,
        /// Which component is wrong and how.
        reason: String,
    },
    /// The file could not be read.
    #[error("configuration error: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("configuration error: {path}{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// `:<line>` when known.
        line: String,
        /// The parser's message (names an unknown key).
        message: String,
    },
    /// A value outside its allowed range.
    #[error("configuration error: {path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Parse and validate `text`, the contents of `path` (for messages).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            line: e
                .span()
                .map(|s| {
                    let before = &text.as_bytes()[..s.start.min(text.len())];
                    format!(":{}", 1 + before.iter().filter(|&&b| b == b'\n').count())
                })
                .unwrap_or_default(),
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
            ("spool_dir", &self.spool_dir),
            ("key", &self.key),
            ("shell", &self.shell),
            ("sftp_server", &self.sftp_server),
            ("scp_path", &self.scp_path),
            ("rsync_path", &self.rsync_path),
        ] {
            if !p.is_absolute() {
                return Err(bad(key, "must be an absolute path"));
            }
        }
        if self.checkpoint_secs == 0 || self.checkpoint_secs > 1_000_000 {
            return Err(bad("checkpoint_secs", "must be 1 to 1000000 seconds"));
        }
        if self.checkpoint_bytes == 0 {
            return Err(bad("checkpoint_bytes", "must be positive"));
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
        Ok(())
    }

    /// The transfer programs: `scp_path`, `rsync_path`, `sftp_server`.
    pub fn transfer_programs(&self) -> TransferPrograms {
        TransferPrograms {
            scp: self.scp_path.clone(),
            rsync: self.rsync_path.clone(),
            sftp_server: self.sftp_server.clone(),
        }
    }

    /// Whether the variable `name` is passed on by `env_keep`.
    pub fn keeps(&self, name: &str) -> bool {
        self.env_keep.iter().any(|k| match k.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => k == name,
        })
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// [`DEFAULT_CONFIG`]; all defaults when it does not exist.
    System,
    /// `--config PATH`: must exist and pass [`check_trusted_path`].
    Explicit(PathBuf),
}

/// Load the configuration from `source`. Both kinds of file must pass
/// [`check_trusted_path`] with `owners` (root and the service user).
///
/// Returns the configuration and the file it came from (`None`: the system file is absent and
/// every default applies).
///
/// # Errors
/// [`ConfigError`], naming the file.
pub fn load(source: &Source, owners: &[u32]) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let path = match source {
        Source::System => PathBuf::from(DEFAULT_CONFIG),
        Source::Explicit(p) => p.clone(),
    };
    if *source == Source::System {
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((Config::default(), None));
            }
            _ => {}
        }
    }
    let real = check_trusted_path(&path, owners).map_err(|reason| ConfigError::Untrusted {
        path: path.clone(),
        reason,
    })?;
    let text = fs::read_to_string(&real).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    Ok((Config::parse(&text, &path)?, Some(path)))
}

/// Check that `path` names a regular file that only `owners` can change: the file and every
/// directory in which a component of its path is looked up — through every symbolic link,
/// component by component — are owned by one of `owners` and not writable by group or
/// others. (Checking only the fully resolved path would miss a directory holding a symlink on
/// the way, such as `/etc/alternatives`.) Returns the resolved path to read or execute.
///
/// # Errors
/// A one-line reason naming the offending component.
pub fn check_trusted_path(path: &Path, owners: &[u32]) -> Result<PathBuf, String> {
    let mut links = MAX_SYMLINKS;
    let real = resolve_trusted(path, owners, &mut links)?;
    let meta = fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", real.display()));
    }
    check_owner_and_mode(&real, &meta, owners)?;
    Ok(real)
}

/// Symbolic links followed at most while resolving one path (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;

/// Resolve `path` one component at a time, checking each directory a name is looked up in
/// with [`check_owner_and_mode`] and following symbolic links (relative ones from the
/// directory holding them).
fn resolve_trusted(path: &Path, owners: &[u32], links: &mut u32) -> Result<PathBuf, String> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("current directory: {e}"))?
            .join(path)
    };
    let mut cur = PathBuf::from("/");
    for comp in abs.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) => cur = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(name) => {
                let dir = fs::metadata(&cur).map_err(|e| format!("{}: {e}", cur.display()))?;
                check_owner_and_mode(&cur, &dir, owners)?;
                let next = cur.join(name);
                let m =
                    fs::symlink_metadata(&next).map_err(|e| format!("{}: {e}", next.display()))?;
                if m.file_type().is_symlink() {
                    if *links == 0 {
                        return Err(format!("{}: too many symbolic links", path.display()));
                    }
                    *links -= 1;
                    let target =
                        fs::read_link(&next).map_err(|e| format!("{}: {e}", next.display()))?;
                    cur = resolve_trusted(&cur.join(target), owners, links)?;
                } else {
                    cur = next;
                }
            }
        }
    }
    Ok(cur)
}

/// `p` (with metadata `m`) is owned by one of `owners` and not group- or world-writable.
fn check_owner_and_mode(p: &Path, m: &fs::Metadata, owners: &[u32]) -> Result<(), String> {
    if !owners.contains(&m.uid()) {
        return Err(format!(
            "{} is owned by uid {}, not by root or the sealcast user",
            p.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is group- or world-writable (mode {:04o})",
            p.display(),
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert!(c.fail_closed);
        assert_eq!(c.transfer_policy, TransferPolicy::Metadata);
        assert_eq!(c.checkpoint_bytes, 65536);
    }

    #[test]
    fn the_example_file_parses_to_the_defaults() {
        let text = include_str!("../sealcast.toml.example");
        let mut c = Config::parse(text, Path::new("sealcast.toml.example")).unwrap();
        assert_eq!(c.host_id.as_deref(), Some("bastion-1"));
        c.host_id = None;
        assert_eq!(c, Config::default());
    }

    #[test]
    fn every_key() {
        let c = Config::parse(
            r#"
host_id = "b1"
spool_dir = "/s"
key = "/k"
shell = "/bin/zsh"
fail_closed = false
transfer_policy = "deny"
capture_input = true
checkpoint_secs = 3
checkpoint_bytes = 100
sftp_server = "/sftp"
scp_path = "/opt/scp"
rsync_path = "/opt/rsync"
env_keep = ["TERM", "LC_*"]
path = "/bin"
"#,
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.host_id.as_deref(), Some("b1"));
        assert_eq!(c.transfer_policy, TransferPolicy::Deny);
        assert!(!c.fail_closed && c.capture_input);
        assert!(c.keeps("LC_TIME") && c.keeps("TERM") && !c.keeps("TERMINFO"));
        let p = c.transfer_programs();
        assert_eq!(
            (p.scp.to_str(), p.rsync.to_str(), p.sftp_server.to_str()),
            (Some("/opt/scp"), Some("/opt/rsync"), Some("/sftp"))
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_line_and_key() {
        let e = Config::parse(
            "shell = \"/bin/sh\"\nshel = \"/bin/sh\"\n",
            Path::new("/e/s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("configuration error: /e/s.toml:2: unknown field `shel`"),
            "{e}"
        );
        let e = Config::parse("transfer_policy = \"some\"", Path::new("/e/s.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/e/s.toml:1:") && e.contains("some"), "{e}");
        let e = Config::parse("shell = \"bash\"", Path::new("/e/s.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "configuration error: /e/s.toml: shell: must be an absolute path"
        );
        for key in ["scp_path", "rsync_path", "sftp_server"] {
            let e = Config::parse(&format!("{key} = \"scp\""), Path::new("/e/s.toml"))
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("configuration error: /e/s.toml: {key}: must be an absolute path")
            );
        }
        let e = Config::parse("host_id = \"a b\"", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("host_id"), "{e}");
        let e = Config::parse("env_keep = [\"A*B\"]", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("env_keep"), "{e}");
        let e = Config::parse("checkpoint_secs = 0", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("checkpoint_secs"), "{e}");
    }

    #[test]
    fn trusted_paths() {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        // Under the build directory: /tmp itself is world-writable.
        let exe = std::env::current_exe().unwrap();
        let base = exe.parent().unwrap();
        let dir = tempfile::tempdir_in(base).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let f = dir.path().join("c.toml");
        fs::write(&f, "").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let owners = [0, me];
        if base.ancestors().any(|p| {
            fs::metadata(p).is_ok_and(|m| m.mode() & 0o022 != 0 || !owners.contains(&m.uid()))
        }) {
            return; // the build directory itself is not trustworthy here
        }
        assert!(check_trusted_path(&f, &owners).is_ok());
        fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).unwrap();
        let e = check_trusted_path(&f, &owners).unwrap_err();
        assert!(e.contains("world-writable (mode 0666)"), "{e}");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o775)).unwrap();
        let e = check_trusted_path(&f, &owners).unwrap_err();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let e = check_trusted_path(&f, &[12345]).unwrap_err();
        assert!(e.contains("not by root or the sealcast user"), "{e}");
        assert!(check_trusted_path(dir.path(), &owners)
            .unwrap_err()
            .contains("not a regular file"));

        // Symbolic links: the directory holding each link on the way counts, not only the
        // directories of the resolved path.
        let good = dir.path().join("good-link.toml");
        std::os::unix::fs::symlink(&f, &good).unwrap();
        assert_eq!(
            check_trusted_path(&good, &owners).unwrap(),
            fs::canonicalize(&f).unwrap()
        );
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let swappable = open.join("link.toml");
        std::os::unix::fs::symlink(&f, &swappable).unwrap();
        let e = check_trusted_path(&swappable, &owners).unwrap_err();
        assert!(
            e.contains(&open.display().to_string()) && e.contains("world-writable"),
            "{e}"
        );
        // A chain: trusted link -> link in the open directory -> trusted file.
        let chain = dir.path().join("chain.toml");
        std::os::unix::fs::symlink(&swappable, &chain).unwrap();
        let e = check_trusted_path(&chain, &owners).unwrap_err();
        assert!(e.contains(&open.display().to_string()), "{e}");
        // Relative links resolve from the link's directory; loops end.
        let rel = dir.path().join("rel.toml");
        std::os::unix::fs::symlink("c.toml", &rel).unwrap();
        assert!(check_trusted_path(&rel, &owners).is_ok());
        let lo = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &lo).unwrap();
        assert!(check_trusted_path(&lo, &owners)
            .unwrap_err()
            .contains("too many symbolic links"));
    }
}
