//! SSHSIG detached signatures (OpenSSH `PROTOCOL.sshsig`), the format of `ssh-keygen -Y sign`,
//! for Ed25519 keys: sealcast signs bucket manifests with them so that
//! `ssh-keygen -Y verify -f allowed_signers -I <principal> -n sealcast-manifest -s m.json.sig
//! < m.json` checks a manifest without sealcast.
//!
//! ```text
//! blob        = "SSHSIG" || u32 1 || string publickey || string namespace || string reserved
//!               || string hash_algorithm || string signature
//! signed data = "SSHSIG" || string namespace || string reserved || string hash_algorithm
//!               || string H(message)
//! signature   = string "ssh-ed25519" || string ed25519_sig(signed data)   (RFC 8709)
//! ```
//!
//! Armoured as `-----BEGIN SSH SIGNATURE-----`, base64 in 70-column lines,
//! `-----END SSH SIGNATURE-----`. sealcast always signs with `sha512`; it verifies `sha256`
//! and `sha512`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;

use crate::keys::{PublicKey, SigningKey};

/// Namespace of sealcast manifest signatures.
pub const MANIFEST_NAMESPACE: &str = "sealcast-manifest";

const MAGIC: &[u8; 6] = b"SSHSIG";
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";
const SSH_ED25519: &[u8] = b"ssh-ed25519";

/// Why an SSHSIG did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SshSigError {
    /// Not an armoured SSHSIG blob, or fields malformed.
    #[error("malformed SSH signature: {0}")]
    Malformed(String),
    /// Signed by another key type than ssh-ed25519.
    #[error("unsupported SSH signature key type {0}")]
    KeyType(String),
    /// Signed for another namespace.
    #[error("signature namespace {found:?}, expected {expected:?}")]
    Namespace {
        /// Namespace in the signature.
        found: String,
        /// Namespace required.
        expected: String,
    },
    /// The Ed25519 signature does not verify over this message.
    #[error("signature does not verify")]
    BadSignature,
}

/// A parsed SSHSIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSig {
    /// The signer's public key.
    pub public: PublicKey,
    /// Namespace.
    pub namespace: String,
    /// `sha256` or `sha512`.
    pub hash: String,
    /// Raw Ed25519 signature.
    pub signature: [u8; 64],
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn get_string<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], SshSigError> {
    let short = || SshSigError::Malformed("truncated field".into());
    if buf.len() < 4 {
        return Err(short());
    }
    let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let rest = &buf[4..];
    if rest.len() < n {
        return Err(short());
    }
    let (s, r) = rest.split_at(n);
    *buf = r;
    Ok(s)
}

fn digest(hash: &str, message: &[u8]) -> Result<Vec<u8>, SshSigError> {
    match hash {
        "sha512" => Ok(Sha512::digest(message).to_vec()),
        "sha256" => Ok(Sha256::digest(message).to_vec()),
        other => Err(SshSigError::Malformed(format!("hash algorithm {other:?}"))),
    }
}

/// The bytes the key signs (PROTOCOL.sshsig, "Signed Data").
fn signed_data(namespace: &str, hash: &str, message: &[u8]) -> Result<Vec<u8>, SshSigError> {
    let mut d = Vec::with_capacity(128);
    d.extend_from_slice(MAGIC);
    put_string(&mut d, namespace.as_bytes());
    put_string(&mut d, b"");
    put_string(&mut d, hash.as_bytes());
    put_string(&mut d, &digest(hash, message)?);
    Ok(d)
}

/// Sign `message` for `namespace` (non-empty) with SHA-512; returns the armoured signature
/// (what `ssh-keygen -Y sign` writes to `<file>.sig`), ending with a newline.
pub fn sign(key: &SigningKey, namespace: &str, message: &[u8]) -> String {
    let data = signed_data(namespace, "sha512", message).unwrap_or_default();
    let sig = key.sign(&data);
    let mut sigfield = Vec::with_capacity(83);
    put_string(&mut sigfield, SSH_ED25519);
    put_string(&mut sigfield, &sig);
    let mut blob = Vec::with_capacity(200);
    blob.extend_from_slice(MAGIC);
    blob.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut blob, &key.public().ssh_blob());
    put_string(&mut blob, namespace.as_bytes());
    put_string(&mut blob, b"");
    put_string(&mut blob, b"sha512");
    put_string(&mut blob, &sigfield);
    let b64 = B64.encode(&blob);
    let mut out = String::from(BEGIN);
    out.push('\n');
    for chunk in b64.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// Parse an armoured SSHSIG.
///
/// # Errors
/// [`SshSigError::Malformed`] or [`SshSigError::KeyType`].
pub fn parse(armoured: &[u8]) -> Result<SshSig, SshSigError> {
    let bad = |m: &str| SshSigError::Malformed(m.into());
    let text = std::str::from_utf8(armoured).map_err(|_| bad("not UTF-8"))?;
    let body = text
        .trim()
        .strip_prefix(BEGIN)
        .and_then(|r| r.strip_suffix(END))
        .ok_or_else(|| bad("no SSH SIGNATURE armour"))?;
    let b64: String = body.split_whitespace().collect();
    let blob = B64.decode(b64).map_err(|_| bad("base64"))?;
    let mut r = &blob[..];
    if r.len() < 10 || &r[..6] != MAGIC {
        return Err(bad("no SSHSIG preamble"));
    }
    if r[6..10] != 1u32.to_be_bytes() {
        return Err(bad("unsupported version"));
    }
    r = &r[10..];
    let pk_blob = get_string(&mut r)?;
    let namespace = get_string(&mut r)?;
    let _reserved = get_string(&mut r)?;
    let hash = get_string(&mut r)?;
    let sigfield = get_string(&mut r)?;
    if !r.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let mut pk = pk_blob;
    let kt = get_string(&mut pk)?;
    if kt != SSH_ED25519 {
        return Err(SshSigError::KeyType(
            String::from_utf8_lossy(kt).into_owned(),
        ));
    }
    let kb = get_string(&mut pk)?;
    if kb.len() != 32 || !pk.is_empty() {
        return Err(bad("Ed25519 public key must be 32 bytes"));
    }
    let mut sf = sigfield;
    let st = get_string(&mut sf)?;
    if st != SSH_ED25519 {
        return Err(SshSigError::KeyType(
            String::from_utf8_lossy(st).into_owned(),
        ));
    }
    let sb = get_string(&mut sf)?;
    if sb.len() != 64 || !sf.is_empty() {
        return Err(bad("Ed25519 signature must be 64 bytes"));
    }
    let mut public = [0u8; 32];
    public.copy_from_slice(kb);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(sb);
    Ok(SshSig {
        public: PublicKey(public),
        namespace: String::from_utf8(namespace.to_vec()).map_err(|_| bad("namespace"))?,
        hash: String::from_utf8(hash.to_vec()).map_err(|_| bad("hash algorithm"))?,
        signature,
    })
}

/// Verify an armoured SSHSIG over `message` for `namespace`; returns the signer's key (the
/// caller decides whether it is trusted).
///
/// # Errors
/// [`SshSigError`].
pub fn verify(armoured: &[u8], namespace: &str, message: &[u8]) -> Result<PublicKey, SshSigError> {
    let s = parse(armoured)?;
    if s.namespace != namespace {
        return Err(SshSigError::Namespace {
            found: s.namespace,
            expected: namespace.into(),
        });
    }
    let data = signed_data(&s.namespace, &s.hash, message)?;
    if s.public.verify(&data, &s.signature) {
        Ok(s.public)
    } else {
        Err(SshSigError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn round_trip_and_rejections() {
        let k = SigningKey::generate().unwrap();
        let sig = sign(&k, MANIFEST_NAMESPACE, b"{\"a\":1}\n");
        assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
        assert!(sig.lines().all(|l| l.len() <= 70 || l.starts_with("-----")));
        assert_eq!(
            verify(sig.as_bytes(), MANIFEST_NAMESPACE, b"{\"a\":1}\n"),
            Ok(k.public())
        );
        assert_eq!(
            verify(sig.as_bytes(), MANIFEST_NAMESPACE, b"{\"a\":2}\n"),
            Err(SshSigError::BadSignature)
        );
        assert!(matches!(
            verify(sig.as_bytes(), "git", b"{\"a\":1}\n"),
            Err(SshSigError::Namespace { .. })
        ));
        assert!(verify(b"garbage", MANIFEST_NAMESPACE, b"").is_err());
        let mut flipped = sig.clone().into_bytes();
        let i = flipped.len() / 2;
        flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
        assert!(verify(&flipped, MANIFEST_NAMESPACE, b"{\"a\":1}\n").is_err());
    }

    /// `ssh-keygen -Y verify` (OpenSSH) accepts our signature, and `ssh-keygen -Y
    /// check-novalidate` rejects it under another namespace.
    #[test]
    fn ssh_keygen_accepts_our_signature() {
        let dir = std::env::temp_dir().join(format!("sealcast-sshsig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let k = SigningKey::generate().unwrap();
        let msg = b"{\"format\":\"sealcast-manifest/v1\"}\n";
        let sig_path = dir.join("m.json.sig");
        std::fs::write(&sig_path, sign(&k, MANIFEST_NAMESPACE, msg)).unwrap();
        let signers = dir.join("allowed_signers");
        std::fs::write(
            &signers,
            format!(
                "bastion-01 namespaces=\"sealcast,sealcast-manifest\" {}\n",
                k.public().to_openssh("")
            ),
        )
        .unwrap();
        let run = |principal: &str, ns: &str, msg: &[u8]| {
            let mut c = Command::new("ssh-keygen")
                .args(["-Y", "verify", "-f"])
                .arg(&signers)
                .args(["-I", principal, "-n", ns, "-s"])
                .arg(&sig_path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ssh-keygen (openssh-client) must be installed");
            c.stdin.take().unwrap().write_all(msg).unwrap();
            let o = c.wait_with_output().unwrap();
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr),
            )
        };
        let (ok, out) = run("bastion-01", MANIFEST_NAMESPACE, msg);
        assert!(ok, "ssh-keygen -Y verify rejected our SSHSIG: {out}");
        assert!(
            out.contains("Good \"sealcast-manifest\" signature"),
            "{out}"
        );
        assert!(!run("bastion-01", MANIFEST_NAMESPACE, b"other\n").0);
        assert!(!run("bastion-01", "git", msg).0);
        assert!(!run("someone-else", MANIFEST_NAMESPACE, msg).0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The principals of an `allowed_signers` line bind a key to host ids exactly as
    /// `ssh-keygen -Y verify -I <host>` matches them (OpenSSH pattern lists): sealcast's
    /// [`crate::TrustStore::lookup`] agrees with ssh-keygen on every case here.
    #[test]
    fn host_binding_agrees_with_ssh_keygen() {
        let dir = std::env::temp_dir().join(format!("sealcast-sshsig-pat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let k = SigningKey::generate().unwrap();
        let msg = b"{}\n";
        let sig_path = dir.join("m.json.sig");
        std::fs::write(&sig_path, sign(&k, MANIFEST_NAMESPACE, msg)).unwrap();
        let signers = dir.join("allowed_signers");
        let cases = [
            ("h1", "h1"),
            ("h1", "h2"),
            ("h1", "H1"),
            ("*", "h2"),
            ("h?", "h1"),
            ("h?", "h12"),
            ("bastion-*", "bastion-01"),
            ("bastion-*", "db-01"),
            ("bastion-*,!bastion-09", "bastion-09"),
            ("bastion-*,!bastion-09", "bastion-08"),
            ("!h1,*", "h1"),
            ("!h2", "h1"),
            ("h2,h1", "h1"),
            ("*.prod.*", "web.prod.example"),
            ("a*b*c", "aXbXd"),
        ];
        for (principals, host) in cases {
            let line = format!(
                "{principals} namespaces=\"sealcast,sealcast-manifest\" {}\n",
                k.public().to_openssh("")
            );
            std::fs::write(&signers, &line).unwrap();
            let mut c = Command::new("ssh-keygen")
                .args(["-Y", "verify", "-f"])
                .arg(&signers)
                .args(["-I", host, "-n", MANIFEST_NAMESPACE, "-s"])
                .arg(&sig_path)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("ssh-keygen (openssh-client) must be installed");
            c.stdin.take().unwrap().write_all(msg).unwrap();
            let openssh = c.wait().unwrap().success();
            let ours = crate::TrustStore::parse(&line)
                .unwrap()
                .lookup(&k.id(), MANIFEST_NAMESPACE, host, 0)
                .is_ok();
            assert_eq!(ours, openssh, "principals {principals:?}, host {host:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
