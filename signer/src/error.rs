use thiserror::Error;

use crate::keys::KeyId;

/// Error loading, parsing or generating a key (SPEC §6).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The private key is not PKCS#8 v2 Ed25519 (PEM or DER) or is inconsistent.
    #[error("not an Ed25519 PKCS#8 v2 private key: {0}")]
    BadPrivateKey(String),
    /// The public key line is not `ssh-ed25519 <base64>`.
    #[error("not an OpenSSH ssh-ed25519 public key: {0}")]
    BadPublicKey(String),
    /// The system random generator failed.
    #[error("key generation failed")]
    Rng,
}

/// Error in an `allowed_signers` file, with its 1-based line number.
#[derive(Debug, Error)]
#[error("line {line}: {reason}")]
#[non_exhaustive]
pub struct TrustError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Why a checkpoint failed verification (SPEC §7). Each variant maps to one status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note does not follow SPEC §5 (→ `MODIFIED`).
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// Signed by a key the trust store does not hold (→ `UNTRUSTED_KEY`).
    #[error("checkpoint signed by untrusted key {0}")]
    UntrustedKey(KeyId),
    /// The key is trusted, but not at the checkpoint's time or not for recordings
    /// (→ `UNTRUSTED_KEY`).
    #[error("key {key} not valid for this checkpoint: {reason}")]
    KeyNotValid {
        /// The key.
        key: KeyId,
        /// Why (time window, namespace).
        reason: String,
    },
    /// The key is trusted, but may not sign this: its `allowed_signers` principals do not
    /// match the host id signed for, or it is not the key the recording's header names
    /// (→ `WRONG_SIGNER`, SPEC §7).
    #[error("wrong signer: {reason}")]
    WrongSigner {
        /// The key that signed.
        key: KeyId,
        /// Which host or header key it may not sign for, and the principals it may.
        reason: String,
    },
    /// Trusted key, signature does not verify (→ `BAD_SIGNATURE`).
    #[error("bad signature by key {0}")]
    BadSignature(KeyId),
    /// The checkpoint disagrees with the recomputed chain (→ `MODIFIED`).
    #[error("{0}")]
    Mismatch(String),
}
