//! `sealcast keygen`: create an Ed25519 signing key pair (SPEC §6).
//!
//! Writes `DIR/signing.key` (PKCS#8 v2 PEM, mode 0600, never overwritten) and
//! `DIR/signing.pub` (one OpenSSH public key line), creating `DIR` with mode 0700 if needed,
//! and prints the `allowed_signers` line that trusts the key for its host id (SPEC §6),
//! appending it to `--trust FILE` when given.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sealcast_signer::sshsig::MANIFEST_NAMESPACE;
use sealcast_signer::{PublicKey, SigningKey, TrustStore, RECORDING_NAMESPACE};

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

/// The `allowed_signers` line that lets `key` sign recordings and manifests for the host ids
/// matching `principals` (SPEC §6, MANIFEST.md §3):
/// `<principals> namespaces="sealcast,sealcast-manifest" ssh-ed25519 AAAA…`, newline-terminated.
pub fn trust_line(principals: &str, key: &PublicKey) -> String {
    format!(
        "{principals} namespaces=\"{RECORDING_NAMESPACE},{MANIFEST_NAMESPACE}\" {}\n",
        key.to_openssh("")
    )
}

/// `sealcast keygen --out DIR [--comment C] [--host-id ID] [--trust FILE]`: prints the key
/// id, both paths and the `allowed_signers` line for host `ID` ([`trust_line`]; default: the
/// host id `record` uses), appending that line to `FILE` when given; exit 0.
///
/// # Errors
/// See [`write_key_pair`]; [`UsageError`] for a host id that is not a usable principal (empty,
/// whitespace, a quote, or a leading `#`), checked before the key is written; I/O errors
/// appending to `FILE`.
pub fn run(args: KeygenArgs) -> Result<u8> {
    let comment = args.comment.unwrap_or_else(default_comment);
    let host = args
        .host_id
        .unwrap_or_else(sealcast_recorder::sys::default_host_id);
    // The line must read back as one entry with exactly these principals.
    let probe = trust_line(
        &host,
        &SigningKey::generate().context("generating a key")?.public(),
    );
    let usable = TrustStore::parse(&probe).is_ok_and(|t| t.len() == 1)
        && !host.is_empty()
        && !host.contains(|c: char| c.is_whitespace() || c == '"');
    if !usable {
        return Err(UsageError(format!(
            "--host-id {host:?} cannot be an allowed_signers principal (a host id or pattern list)"
        ))
        .into());
    }
    let k = write_key_pair(&args.out, &comment)?;
    let line = trust_line(&host, &k.key.public());
    println!("key id: {}", k.key.id());
    println!("signing key: {}", k.key_path.display());
    println!("public key: {}", k.pub_path.display());
    print!("allowed_signers: {line}");
    if let Some(trust) = &args.trust {
        // Start on a line of its own when the file does not end with one.
        let sep = match std::fs::read(trust) {
            Ok(b) if b.last().is_some_and(|&c| c != b'\n') => "\n",
            _ => "",
        };
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(trust)
            .and_then(|mut f| f.write_all(format!("{sep}{line}").as_bytes()))
            .with_context(|| format!("appending to {}", trust.display()))?;
        println!("appended to: {}", trust.display());
    }
    Ok(0)
}
