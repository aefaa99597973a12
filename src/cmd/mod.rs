//! One module per subcommand; each `run` returns the process exit code.

pub mod dbproxy;
pub mod doctor;
pub mod install;
pub mod keygen;
pub mod queries;
pub mod record;
pub mod replay;
pub mod upload;
pub mod verify;
pub mod verify_bucket;

/// An error in how the command was invoked (exit 3), as opposed to an I/O failure (exit 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
