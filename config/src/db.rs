//! `[db.<name>]` tables of `sealcast.toml`: the database targets of the recording proxy
//! (`sealcast db-proxy`, and sealcast-shell's `db <name>` sessions and in-session proxies,
//! format-spec/SPEC.md §10.3). Unknown keys are an error naming the file and line; defaults
//! are documented on each field and in README.md ("Database sessions").

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ConfigError;

/// Default `client` of a `postgres` target (Debian's `postgresql-client`).
pub const DEFAULT_PG_CLIENT: &str = "/usr/bin/psql";
/// Default `client` of a `mysql` target (Debian's `mariadb-client`).
pub const DEFAULT_MYSQL_CLIENT: &str = "/usr/bin/mariadb";
/// Default CA bundle of `ca_file`.
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

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
    /// The client program `ssh bastion db <name>` runs in the recorded session (absolute
    /// path, executed by argv, never through a shell; SPEC §10.3). Default `/usr/bin/psql`
    /// (postgres) or `/usr/bin/mariadb` (mysql).
    #[serde(default)]
    pub client: Option<PathBuf>,
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

    /// The client program of `ssh bastion db <name>`: `client`, else the protocol's default.
    pub fn client(&self) -> &Path {
        self.client.as_deref().unwrap_or(match self.protocol {
            Protocol::Postgres => Path::new(DEFAULT_PG_CLIENT),
            Protocol::Mysql => Path::new(DEFAULT_MYSQL_CLIENT),
        })
    }

    /// CA bundle path.
    pub fn ca_file(&self) -> &Path {
        self.ca_file
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_CA_FILE))
    }
}

/// Whether `name` may name a target: 1 to 64 bytes of `[A-Za-z0-9_-]` (it appears in the
/// `db <name>` command, file names and option-file group names; SPEC §10.3).
pub fn valid_target_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Check every target of a parsed file (called by [`crate::Config::parse`]).
///
/// # Errors
/// [`ConfigError::InvalidTarget`] naming the file, the target and the problem.
pub(crate) fn validate(
    db: &std::collections::BTreeMap<String, Target>,
    path: &Path,
) -> Result<(), ConfigError> {
    for (name, t) in db {
        let bad = |m: &str| ConfigError::InvalidTarget {
            path: path.to_path_buf(),
            target: name.clone(),
            message: m.to_string(),
        };
        if !valid_target_name(name) {
            return Err(bad(
                "a target name is 1 to 64 characters of A-Z a-z 0-9 _ -",
            ));
        }
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
        for (key, p) in [
            ("client", t.client.as_deref()),
            ("ca_file", t.ca_file.as_deref()),
            ("credentials_file", t.credentials_file.as_deref()),
        ] {
            if p.is_some_and(|p| !p.is_absolute()) {
                return Err(bad(&format!("{key} must be an absolute path")));
            }
        }
    }
    Ok(())
}
