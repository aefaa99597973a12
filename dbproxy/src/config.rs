//! `[db.<name>]` tables of `sealcast.toml`: database targets of the recording proxy.
//!
//! The file is the one sealcast-shell and the uploader read; this module looks only at its
//! `db` table (the other keys belong to other programs) and refuses unknown keys inside a
//! `[db.<name>]` table, naming the file. Defaults are documented on each field and in
//! README.md ("Database sessions"). The typed schema lives in the config crate
//! ([`sealcast_config::db`]); this module adds the credentials file and the lookups.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use sealcast_config::db::{Credentials, ParamPolicy, Protocol, Target, TlsMode};

/// The part of `sealcast.toml` this crate reads: its `[db.<name>]` targets, parsed and checked
/// by the one schema of the file ([`sealcast_config::Config`]; the other keys must be valid
/// too, since it is the same file sealcast-shell reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbConfig {
    /// `[db.<name>]` tables by name.
    pub db: BTreeMap<String, Target>,
}

/// Injected credentials (`credentials_file`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// Database user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// Database to connect to (else the target's `database`, else the client's choice).
    #[serde(default)]
    pub database: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Why a configuration or credentials file could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file failed the schema of `sealcast.toml` (names the file, the line or target).
    #[error("{0}")]
    Config(#[from] sealcast_config::ConfigError),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("{path}{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// `:<line>` when known.
        line: String,
        /// The parser's message (names an unknown key).
        message: String,
    },
    /// A value that cannot work.
    #[error("{path}: [db.{target}] {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The target.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// No such target.
    #[error("{path}: no [db.{target}] table (targets: {known})")]
    NoTarget {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        target: String,
        /// The names present.
        known: String,
    },
    /// A credentials file that others could read.
    #[error("refusing credentials file {path}: {reason}")]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// Owner or mode problem.
        reason: String,
    },
}

fn parse_err(text: &str, path: &Path, e: toml::de::Error) -> ConfigError {
    ConfigError::Parse {
        path: path.to_path_buf(),
        line: e
            .span()
            .map(|s| {
                let before = &text.as_bytes()[..s.start.min(text.len())];
                format!(":{}", 1 + before.iter().filter(|&&b| b == b'\n').count())
            })
            .unwrap_or_default(),
        message: e.message().trim().to_string(),
    }
}

impl DbConfig {
    /// Parse `text`, the contents of `path` (for messages), with the schema of
    /// `sealcast.toml`, and keep its targets.
    ///
    /// # Errors
    /// [`ConfigError::Config`]: not TOML, an unknown key (in a `[db.*]` table or anywhere),
    /// a bad value or a target that cannot work.
    pub fn parse(text: &str, path: &Path) -> Result<DbConfig, ConfigError> {
        let cfg = sealcast_config::Config::parse(text, path)?;
        Ok(DbConfig { db: cfg.db })
    }

    /// Read and parse `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] and those of [`DbConfig::parse`].
    pub fn load(path: &Path) -> Result<DbConfig, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        DbConfig::parse(&text, path)
    }

    /// The target called `name`.
    ///
    /// # Errors
    /// [`ConfigError::NoTarget`].
    pub fn target(&self, name: &str, path: &Path) -> Result<&Target, ConfigError> {
        self.db.get(name).ok_or_else(|| ConfigError::NoTarget {
            path: path.to_path_buf(),
            target: name.to_string(),
            known: self.db.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

impl Secret {
    /// Read injected credentials from `path`: it must belong to the effective user (or
    /// root) and have no group or other permission bits.
    ///
    /// # Errors
    /// [`ConfigError::Unsafe`], [`ConfigError::Read`], [`ConfigError::Parse`].
    pub fn load(path: &Path) -> Result<Secret, ConfigError> {
        let meta = fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid && meta.uid() != 0 {
            return Err(ConfigError::Unsafe {
                path: path.to_path_buf(),
                reason: format!("owned by uid {}, not by uid {euid} or root", meta.uid()),
            });
        }
        if meta.mode() & 0o077 != 0 {
            return Err(ConfigError::Unsafe {
                path: path.to_path_buf(),
                reason: format!(
                    "mode {:o} lets group or others in (use 0600)",
                    meta.mode() & 0o777
                ),
            });
        }
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| parse_err(&text, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_other_tables() {
        let text = r#"
host_id = "b1"
[upload]
to = "s3://x/y"
[db.main]
protocol = "postgres"
host = "db.internal"
"#;
        let c = DbConfig::parse(text, Path::new("/etc/sealcast/sealcast.toml")).unwrap();
        let t = &c.db["main"];
        assert_eq!(t.port(), 5432);
        assert_eq!(t.tls, TlsMode::VerifyFull);
        assert_eq!(t.credentials, Credentials::Passthrough);
        assert_eq!(t.params, ParamPolicy::Full);
        assert_eq!(t.sql_max, 262144);
        assert_eq!(t.server_name(), "db.internal");
        assert!(!t.allow_local_infile);
    }

    #[test]
    fn the_example_file_has_a_valid_example_target_at_its_defaults() {
        let text = include_str!("../../shell/sealcast.toml.example");
        let c = DbConfig::parse(text, Path::new("sealcast.toml.example")).unwrap();
        let t = c.target("example", Path::new("x")).unwrap();
        let defaults = DbConfig::parse(
            "[db.x]\nprotocol = \"postgres\"\nhost = \"db.internal.example\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(t, &defaults.db["x"]);
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = "[db.main]\nprotocol = \"mysql\"\nhost = \"h\"\ntsl = \"disable\"\n";
        let e = DbConfig::parse(text, Path::new("/x/sealcast.toml")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("/x/sealcast.toml:4") && m.contains("tsl"), "{m}");
    }

    #[test]
    fn injected_needs_file_and_allow_list() {
        let text = "[db.a]\nprotocol = \"postgres\"\nhost = \"h\"\ncredentials = \"injected\"\ncredentials_file = \"/c\"\n";
        let e = DbConfig::parse(text, Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("allowed_users"), "{e}");
    }
}
