//! Default locations under the XDG data directory (XDG Base Directory Specification):
//! `$XDG_DATA_HOME/sealcast` or `~/.local/share/sealcast`.
//!
//! ```text
//! sealcast/
//!   keys/signing.key      dev signing key (PKCS#8 PEM, 0600), created by the first `record`
//!   keys/signing.pub      its OpenSSH public key
//!   allowed_signers       trust file listing the dev key for the host ids it recorded (principal = host id)
//!   archive/              recordings: <session-id>.cast.zst and <session-id>.cast.zst.seal
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};

/// `$XDG_DATA_HOME/sealcast`, else `$HOME/.local/share/sealcast`.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("sealcast"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".local/share/sealcast"))
}

/// Default signing key path.
pub fn dev_key() -> Result<PathBuf> {
    Ok(data_dir()?.join("keys/signing.key"))
}

/// Default trust file path.
pub fn dev_trust() -> Result<PathBuf> {
    Ok(data_dir()?.join("allowed_signers"))
}

/// Default archive directory.
pub fn archive() -> Result<PathBuf> {
    Ok(data_dir()?.join("archive"))
}
