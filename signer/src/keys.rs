//! Ed25519 keys: PKCS#8 v2 private keys (RFC 5958, as ring generates them), OpenSSH
//! `ssh-ed25519` public keys (RFC 4253 §6.6, RFC 8709), key ids (SPEC §6).

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

use crate::error::KeyError;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";
const SSH_ED25519: &[u8] = b"ssh-ed25519";

/// Key id: SHA-256 of the raw 32-byte Ed25519 public key. Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Option<KeyId> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        (s.bytes().all(|b| !b.is_ascii_uppercase())).then_some(KeyId(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// An Ed25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

fn ssh_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn read_ssh_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    if buf.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let rest = &buf[4..];
    if rest.len() < n {
        return None;
    }
    let (s, r) = rest.split_at(n);
    *buf = r;
    Some(s)
}

impl PublicKey {
    /// The key id (SPEC §6).
    pub fn id(&self) -> KeyId {
        KeyId(Sha256::digest(self.0).into())
    }

    /// The SSH wire blob: `string "ssh-ed25519" || string key` (RFC 8709 §4).
    pub fn ssh_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(51);
        ssh_string(&mut blob, SSH_ED25519);
        ssh_string(&mut blob, &self.0);
        blob
    }

    /// One-line OpenSSH form, `ssh-ed25519 AAAA… comment` (no trailing newline).
    pub fn to_openssh(&self, comment: &str) -> String {
        let b64 = B64.encode(self.ssh_blob());
        if comment.is_empty() {
            format!("ssh-ed25519 {b64}")
        } else {
            format!("ssh-ed25519 {b64} {comment}")
        }
    }

    /// Parse the base64 blob of an `ssh-ed25519` key (the second field of a public key line).
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`] on bad base64, another key type, or a wrong length.
    pub fn from_ssh_base64(b64: &str) -> Result<PublicKey, KeyError> {
        let blob = B64
            .decode(b64)
            .map_err(|e| KeyError::BadPublicKey(format!("base64: {e}")))?;
        let mut rest = &blob[..];
        let kind = read_ssh_string(&mut rest)
            .ok_or_else(|| KeyError::BadPublicKey("short blob".into()))?;
        if kind != SSH_ED25519 {
            return Err(KeyError::BadPublicKey(format!(
                "key type {}",
                String::from_utf8_lossy(kind)
            )));
        }
        let key = read_ssh_string(&mut rest)
            .ok_or_else(|| KeyError::BadPublicKey("short blob".into()))?;
        if !rest.is_empty() || key.len() != 32 {
            return Err(KeyError::BadPublicKey(
                "Ed25519 key must be 32 bytes".into(),
            ));
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(key);
        Ok(PublicKey(k))
    }

    /// Parse an OpenSSH public key line: `ssh-ed25519 <base64> [comment]`.
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`].
    pub fn parse_openssh(line: &str) -> Result<PublicKey, KeyError> {
        let mut it = line.split_whitespace();
        match (it.next(), it.next()) {
            (Some("ssh-ed25519"), Some(b64)) => PublicKey::from_ssh_base64(b64),
            (Some(other), _) => Err(KeyError::BadPublicKey(format!("key type {other}"))),
            _ => Err(KeyError::BadPublicKey("empty".into())),
        }
    }

    /// Verify an Ed25519 signature (RFC 8032; ring rejects non-canonical S).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(msg, sig)
            .is_ok()
    }
}

/// An Ed25519 signing key loaded from PKCS#8 v2.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.id())
    }
}

impl SigningKey {
    /// Generate a new key with the system RNG.
    ///
    /// # Errors
    /// [`KeyError::Rng`] if the RNG fails.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Rng)?;
        SigningKey::from_pkcs8_der(doc.as_ref())
    }

    /// Load PKCS#8 v2 DER.
    ///
    /// # Errors
    /// [`KeyError::BadPrivateKey`] (ring also rejects v1 documents and inconsistent keys).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair =
            Ed25519KeyPair::from_pkcs8(der).map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// Load a key file: PEM (`-----BEGIN PRIVATE KEY-----`) or raw DER.
    ///
    /// # Errors
    /// [`KeyError::BadPrivateKey`].
    pub fn from_file_bytes(bytes: &[u8]) -> Result<SigningKey, KeyError> {
        let text = std::str::from_utf8(bytes).ok().map(str::trim);
        match text {
            Some(t) if t.starts_with(PEM_BEGIN) => {
                let body = t
                    .strip_prefix(PEM_BEGIN)
                    .and_then(|r| r.trim_end().strip_suffix(PEM_END))
                    .ok_or_else(|| KeyError::BadPrivateKey("unterminated PEM".into()))?;
                let b64: String = body.split_whitespace().collect();
                let der = B64
                    .decode(b64)
                    .map_err(|e| KeyError::BadPrivateKey(format!("PEM base64: {e}")))?;
                SigningKey::from_pkcs8_der(&der)
            }
            _ => SigningKey::from_pkcs8_der(bytes),
        }
    }

    /// PEM-armoured PKCS#8 v2, 64-column lines, trailing newline.
    pub fn to_pem(&self) -> String {
        let b64 = B64.encode(&self.pkcs8);
        let mut s = String::from(PEM_BEGIN);
        s.push('\n');
        for chunk in b64.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            s.push('\n');
        }
        s.push_str(PEM_END);
        s.push('\n');
        s
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(k)
    }

    /// The key id (SPEC §6).
    pub fn id(&self) -> KeyId {
        self.public().id()
    }

    /// Ed25519 signature over `msg` (64 bytes, deterministic).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(msg).as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_openssh_form() {
        let k = SigningKey::generate().unwrap();
        let back = SigningKey::from_file_bytes(k.to_pem().as_bytes()).unwrap();
        assert_eq!(back.public(), k.public());
        let line = k.public().to_openssh("test@host");
        assert!(
            line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
            "{line}"
        );
        assert_eq!(PublicKey::parse_openssh(&line).unwrap(), k.public());
        let sig = k.sign(b"msg");
        assert!(k.public().verify(b"msg", &sig));
        assert!(!k.public().verify(b"msh", &sig));
    }

    #[test]
    fn rejects_garbage_keys() {
        assert!(SigningKey::from_file_bytes(b"nonsense").is_err());
        assert!(SigningKey::from_file_bytes(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        )
        .is_err());
        assert!(PublicKey::parse_openssh("ssh-rsa AAAAB3NzaC1yc2E=").is_err());
        assert!(PublicKey::parse_openssh("ssh-ed25519 !!!").is_err());
    }

    /// RFC 8032 §7.1 TEST 1 (empty message), loaded through ring's seed constructor: checks
    /// that our verify path is plain Ed25519.
    #[test]
    fn rfc8032_test1() {
        let pk = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap();
        let sig = hex::decode(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        )
        .unwrap();
        let mut k = [0u8; 32];
        k.copy_from_slice(&pk);
        assert!(PublicKey(k).verify(b"", &sig));
        assert!(!PublicKey(k).verify(b"x", &sig));
    }
}
