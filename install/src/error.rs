//! What can go wrong in `install-bastion`.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

use sealcast_config::ConfigError;
use sealcast_signer::KeyError;

/// Why `install-bastion` stopped. Steps already done stay done (each is idempotent, so a
/// second run after fixing the cause continues).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// Refused because of how it was invoked or what it found (not root, a bad path, an
    /// existing file it will not touch, a user that does not exist…): the caller's mistake,
    /// exit 3 in the CLI ([`InstallError::is_usage`]).
    #[error("{0}")]
    Usage(String),
    /// The existing `sealcast.toml` cannot be read or is not valid.
    #[error(transparent)]
    Config(ConfigError),
    /// A file system operation failed: `what` (`creating`, `chown`…) on `path`.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// The operation.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A system tool (`groupadd`, `useradd`, `usermod`, `userdel`, `groupdel`) could not be
    /// started.
    #[error("running {tool}: {source}")]
    Spawn {
        /// The tool.
        tool: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A system tool failed.
    #[error("{tool} {args} failed ({status}): {stderr}")]
    Tool {
        /// The tool.
        tool: &'static str,
        /// Its arguments, space-separated.
        args: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// The user or group database could not be read (`getpwnam_r(3)`, `getgrnam_r(3)`).
    #[error("looking up {kind} {name}: {source}")]
    Lookup {
        /// `user` or `group`.
        kind: &'static str,
        /// The name looked up.
        name: String,
        /// The error.
        source: nix::Error,
    },
    /// The signing key could not be generated or loaded.
    #[error("{what}: {source}")]
    Key {
        /// What was being done, naming the file.
        what: String,
        /// The key error.
        source: KeyError,
    },
    /// The system is not in the state a step needs (the `sealcast` user is missing after
    /// `useradd`…).
    #[error("{0}")]
    State(String),
    /// The report of what was done could not be written.
    #[error("writing the report: {0}")]
    Output(io::Error),
}

impl InstallError {
    /// Whether the caller can fix this by invoking it differently or fixing what it found
    /// (exit 3), as opposed to a failure of the system (exit 4).
    pub fn is_usage(&self) -> bool {
        match self {
            InstallError::Usage(_) => true,
            InstallError::Config(e) => !matches!(e, ConfigError::Read { .. }),
            _ => false,
        }
    }

    /// `Io` for `what` on `path`.
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| InstallError::Io { what, path, source }
    }
}
