//! `[db.<name>]` tables of `sealcast.toml`: database targets of the recording proxy.
//!
//! The file is the one sealcast-shell and the uploader read; this module looks only at its
//! `db` table (the other keys belong to other programs) and refuses unknown keys inside a
//! `[db.<name>]` table, naming the file. Defaults are documented on each field and in
//! README.md ("Database sessions"). This struct moves into the config crate later.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Wire protocol of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// PostgreSQL frontend/backend protocol 3.0 (PostgreSQL docs, "Frontend/Backend Protocol").
    Postgres,
    /// MySQL client/server protocol 4.1 (MySQL and MariaDB).
    Mysql,
}

impl Protocol {
    /// `pg` or `mysql`: the `proto` of every event (SPEC §11).
    pub fn tag(self) -> &'static str {
        match self {
            Protocol::Postgres => "pg",
            Protocol::Mysql => "mysql",
        }
    }

    /// Default upstream port: 5432 / 3306.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Postgres => 5432,
            Protocol::Mysql => 3306,
        }
    }
}

/// Upstream transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// TLS with certificate chain and host-name verification (default). The server must
    /// agree to TLS; a server that refuses is an error, never a silent downgrade.
    #[default]
    VerifyFull,
    /// Plaintext upstream. Only when a target says so explicitly.
    Disable,
}

/// Who authenticates to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Credentials {
    /// The user's own database login, relayed (default). SCRAM-SHA-256 passes with
    /// `-PLUS` stripped; MD5 and cleartext are relayed; MySQL native and caching_sha2.
    #[default]
    Passthrough,
    /// The proxy logs in with the credentials in `credentials_file`; the client connects
    /// without a password and never learns it.
    Injected,
}

/// What is recorded of bound parameters (PostgreSQL Bind, MySQL COM_STMT_EXECUTE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamPolicy {
    /// Values (text, or base64 of binary), each cut at 4 KiB (default; simple-protocol
    /// statements carry their literals in full anyway).
    #[default]
    Full,
    /// SHA-256 and length of each value.
    Hash,
    /// Only the number of parameters.
    None,
}

/// One `[db.<name>]` table. Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `postgres` or `mysql` (required).
    pub protocol: Protocol,
    /// Upstream host name or IP address (required).
    pub host: String,
    /// Upstream port. Default 5432 (postgres) / 3306 (mysql).
    #[serde(default)]
    pub port: Option<u16>,
    /// `verify-full` (default) or `disable`.
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM file of the CA certificates that may sign the server certificate. Default: the
    /// system bundle `/etc/ssl/certs/ca-certificates.crt`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name the server certificate must carry. Default: `host`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Local users (login names) who may use this target. With `allowed_groups` also empty,
    /// every user may (allowed only with passthrough credentials). Default empty.
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// Local groups whose members may use this target. Default empty.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// `passthrough` (default) or `injected`.
    #[serde(default)]
    pub credentials: Credentials,
    /// With `injected`: a TOML file `user = "…"`, `password = "…"` (and optionally
    /// `database = "…"`), owned by the proxy's user and not readable by group or others.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Database to connect to; with `injected` it overrides what the client asks for.
    /// Default: the client's choice.
    #[serde(default)]
    pub database: Option<String>,
    /// `full` (default), `hash` or `none`.
    #[serde(default)]
    pub params: ParamPolicy,
    /// Longest statement text recorded inline, in bytes; longer text is cut (`trunc`) and
    /// its SHA-256 still covers all of it. Default 262144 (256 KiB).
    #[serde(default = "default_sql_max")]
    pub sql_max: usize,
    /// MySQL: let clients use `LOAD DATA LOCAL INFILE` (files read on the bastion).
    /// Default false (`CLIENT_LOCAL_FILES` is cleared).
    #[serde(default)]
    pub allow_local_infile: bool,
    /// Seconds to wait for the upstream TCP connection and TLS handshake. Default 10.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

fn default_sql_max() -> usize {
    256 * 1024
}

fn default_connect_timeout() -> u64 {
    10
}

impl Target {
    /// Upstream port, the protocol's default when unset.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.protocol.default_port())
    }

    /// Name the server certificate must carry.
    pub fn server_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.host)
    }

    /// CA bundle path.
    pub fn ca_file(&self) -> &Path {
        self.ca_file
            .as_deref()
            .unwrap_or(Path::new("/etc/ssl/certs/ca-certificates.crt"))
    }
}

/// The part of `sealcast.toml` this crate reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DbConfig {
    /// `[db.<name>]` tables by name.
    #[serde(default)]
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
    /// Parse the `db` table of `text`, the contents of `path` (for messages), and check every
    /// target.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] (unknown key in a `[db.*]` table, bad value) or
    /// [`ConfigError::Invalid`].
    pub fn parse(text: &str, path: &Path) -> Result<DbConfig, ConfigError> {
        let cfg: DbConfig = toml::from_str(text).map_err(|e| parse_err(text, path, e))?;
        for (name, t) in &cfg.db {
            let bad = |m: &str| ConfigError::Invalid {
                path: path.to_path_buf(),
                target: name.clone(),
                message: m.to_string(),
            };
            if t.host.is_empty() {
                return Err(bad("host must not be empty"));
            }
            if t.credentials == Credentials::Injected {
                if t.credentials_file.is_none() {
                    return Err(bad("credentials = \"injected\" needs credentials_file"));
                }
                if t.allowed_users.is_empty() && t.allowed_groups.is_empty() {
                    return Err(bad(
                        "credentials = \"injected\" needs allowed_users or allowed_groups \
                         (the proxy logs in for whoever may connect)",
                    ));
                }
            }
            if t.sql_max == 0 {
                return Err(bad("sql_max must be at least 1"));
            }
        }
        Ok(cfg)
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
