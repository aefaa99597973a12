//! Reading the file: which file, whether it must exist, whether it must be trusted, and the
//! errors, each naming the file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::schema::Config;
use crate::trusted::{check_trusted_path, UntrustedPath};
use crate::DEFAULT_CONFIG;

/// Why the configuration could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file that must be trusted ([`load_trusted`]) could have been written by an ordinary
    /// user.
    #[error("refusing --config {}: {source}", path.display())]
    Untrusted {
        /// The file as given.
        path: PathBuf,
        /// Which component is wrong and how.
        source: UntrustedPath,
    },
    /// The file could not be read.
    #[error("configuration error: cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("configuration error: {}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        /// The parser's message (names an unknown key).
        message: String,
    },
    /// A value outside its allowed range.
    #[error("configuration error: {}: {key}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key (`checkpoint_bytes`, `upload.part_size_mib`…).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A `[db.<name>]` table that cannot work.
    #[error("configuration error: {}: [db.{target}] {message}", path.display())]
    InvalidTarget {
        /// The file.
        path: PathBuf,
        /// The target name.
        target: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Untrusted { path, .. }
            | ConfigError::Read { path, .. }
            | ConfigError::Parse { path, .. }
            | ConfigError::Invalid { path, .. }
            | ConfigError::InvalidTarget { path, .. } => path,
        }
    }
}

/// Read and validate the file at `path`, which must exist. No ownership check: for programs
/// that run with their caller's rights (`sealcast upload`, `install-bastion` as root).
///
/// # Errors
/// [`ConfigError::Read`], [`ConfigError::Parse`], [`ConfigError::Invalid`], naming `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Config::parse(&text, path)
}

/// As [`load`], for a set-uid reader: `path` must first pass [`check_trusted_path`] with
/// `owners` (root and the service user), and the file read is the one that check resolved
/// (symbolic links followed one component at a time).
///
/// # Errors
/// [`ConfigError::Untrusted`], then as [`load`].
pub fn load_trusted(path: &Path, owners: &[u32]) -> Result<Config, ConfigError> {
    let real = check_trusted_path(path, owners).map_err(|source| ConfigError::Untrusted {
        path: path.to_path_buf(),
        source,
    })?;
    let text = fs::read_to_string(&real).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Config::parse(&text, path)
}

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// [`DEFAULT_CONFIG`]; every default applies when it does not exist.
    System,
    /// A file named on the command line (`--config PATH`): it must exist.
    Explicit(PathBuf),
}

impl Source {
    /// `Explicit` for `Some(path)` (a `--config` flag), else `System`.
    pub fn from_flag(flag: Option<PathBuf>) -> Source {
        match flag {
            Some(p) => Source::Explicit(p),
            None => Source::System,
        }
    }

    /// The file this source names.
    pub fn path(&self) -> &Path {
        match self {
            Source::System => Path::new(DEFAULT_CONFIG),
            Source::Explicit(p) => p,
        }
    }

    /// `None` when this is the system file and nothing is at its path (not even a dangling
    /// symbolic link): every default then applies.
    fn absent(&self) -> bool {
        *self == Source::System
            && matches!(fs::symlink_metadata(self.path()), Err(e) if e.kind() == io::ErrorKind::NotFound)
    }

    /// [`load`] this source. Returns the configuration and the file it came from (`None`:
    /// the system file is absent and every default applies).
    ///
    /// # Errors
    /// As [`load`].
    pub fn load(&self) -> Result<(Config, Option<PathBuf>), ConfigError> {
        if self.absent() {
            return Ok((Config::default(), None));
        }
        Ok((load(self.path())?, Some(self.path().to_path_buf())))
    }

    /// [`load_trusted`] this source; as [`Source::load`] otherwise.
    ///
    /// # Errors
    /// As [`load_trusted`].
    pub fn load_trusted(&self, owners: &[u32]) -> Result<(Config, Option<PathBuf>), ConfigError> {
        if self.absent() {
            return Ok((Config::default(), None));
        }
        Ok((
            load_trusted(self.path(), owners)?,
            Some(self.path().to_path_buf()),
        ))
    }
}
