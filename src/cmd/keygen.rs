//! `sealcast keygen`: create an Ed25519 signing key pair (SPEC §6).
//!
//! Writes `DIR/signing.key` (PKCS#8 v2 PEM, mode 0600, never overwritten) and
//! `DIR/signing.pub` (one OpenSSH public key line), creating `DIR` with mode 0700 if needed.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sealcast_signer::SigningKey;

use super::UsageError;
use crate::KeygenArgs;

/// A freshly written key pair.
pub struct NewKey {
    /// The signing key that was written.
    pub key: SigningKey,
    /// `DIR/signing.key`.
    pub key_path: PathBuf,
    /// `DIR/signing.pub`.
    pub pub_path: PathBuf,
}

/// Default public key comment: `sealcast@<hostname>`.
pub fn default_comment() -> String {
    format!("sealcast@{}", sealcast_recorder::sys::hostname())
}

/// Create `dir` (mode 0700, parents included) if it does not exist.
///
/// # Errors
/// The `mkdir` error, with the path in the context.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating directory {}", dir.display()))
}

/// Generate a key and write `dir/signing.key` (0600, exclusive) and `dir/signing.pub`.
///
/// # Errors
/// [`UsageError`] when `signing.key` already exists or the comment spans lines; I/O errors
/// with the path in the context.
pub fn write_key_pair(dir: &Path, comment: &str) -> Result<NewKey> {
    if comment.contains(['\n', '\r']) {
        return Err(UsageError("the key comment must be a single line".into()).into());
    }
    create_private_dir(dir)?;
    let key_path = dir.join("signing.key");
    let pub_path = dir.join("signing.pub");
    let key = SigningKey::generate().context("generating an Ed25519 key")?;
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(UsageError(format!(
                "{} already exists; refusing to overwrite a signing key",
                key_path.display()
            ))
            .into())
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", key_path.display())),
    };
    f.write_all(key.to_pem().as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", key_path.display()))?;
    let line = format!("{}\n", key.public().to_openssh(comment));
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&pub_path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    Ok(NewKey {
        key,
        key_path,
        pub_path,
    })
}

/// `sealcast keygen --out DIR [--comment C]`: prints the key id and both paths; exit 0.
///
/// # Errors
/// See [`write_key_pair`].
pub fn run(args: KeygenArgs) -> Result<u8> {
    let comment = args.comment.unwrap_or_else(default_comment);
    let k = write_key_pair(&args.out, &comment)?;
    println!("key id: {}", k.key.id());
    println!("signing key: {}", k.key_path.display());
    println!("public key: {}", k.pub_path.display());
    Ok(0)
}
