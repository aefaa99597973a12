//! The line chain (SPEC §4), the writer-side [`Sealer`] and the reader-side
//! [`ChainVerifier`].

use std::ops::Deref;

use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::error::CheckpointError;
use crate::keys::{KeyId, SigningKey};
use crate::trust::{TrustStore, TrustedKey, RECORDING_NAMESPACE};

const GENESIS_DOMAIN: &[u8] = b"sealcast/v1/genesis\0";
const LINE_DOMAIN: &[u8] = b"sealcast/v1/line\0";

/// `head_0` for a session (SPEC §4): binds host id and session id.
pub fn genesis(host: &str, session: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(GENESIS_DOMAIN);
    h.update((host.len() as u32).to_be_bytes());
    h.update(host.as_bytes());
    h.update((session.len() as u32).to_be_bytes());
    h.update(session.as_bytes());
    h.finalize().into()
}

/// Running state of the chain: head, lines hashed, bytes hashed (LF included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    head: [u8; 32],
    lines: u64,
    bytes: u64,
}

impl Chain {
    /// A chain at `head_0 = genesis(host, session)`.
    pub fn new(host: &str, session: &str) -> Chain {
        Chain {
            head: genesis(host, session),
            lines: 0,
            bytes: 0,
        }
    }

    /// Hash the next line (exact bytes, without its LF).
    #[inline]
    pub fn push(&mut self, line: &[u8]) {
        let mut h = Sha256::new();
        h.update(LINE_DOMAIN);
        h.update(self.head);
        h.update(self.lines.to_be_bytes());
        h.update((line.len() as u64).to_be_bytes());
        h.update(line);
        self.head = h.finalize().into();
        self.lines += 1;
        self.bytes += line.len() as u64 + 1;
    }

    /// Current head.
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    /// Lines hashed so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Decompressed bytes hashed so far (each line plus its LF).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Writer side: chains every line and signs checkpoint notes (SPEC §4, §5).
#[derive(Debug)]
pub struct Sealer {
    chain: Chain,
    key: SigningKey,
    host: String,
    session: String,
    seq: u64,
}

impl Sealer {
    /// Start the chain of `session` on `host`, signing with `key`.
    pub fn new(key: SigningKey, host: &str, session: &str) -> Sealer {
        Sealer {
            chain: Chain::new(host, session),
            key,
            host: host.into(),
            session: session.into(),
            seq: 0,
        }
    }

    /// Chain one line (exact bytes, without LF).
    #[inline]
    pub fn line(&mut self, line: &[u8]) {
        self.chain.push(line);
    }

    /// The chain so far.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Key id of the signing key.
    pub fn key_id(&self) -> KeyId {
        self.key.id()
    }

    /// Sign a checkpoint over everything chained so far and return the note (SPEC §5).
    /// `time_us` is wall-clock Unix microseconds.
    pub fn checkpoint(&mut self, time_us: u64, is_final: bool) -> Vec<u8> {
        let mut cp = Checkpoint {
            host: self.host.clone(),
            session: self.session.clone(),
            seq: self.seq,
            lines: self.chain.lines,
            bytes: self.chain.bytes,
            head: self.chain.head,
            time_us,
            is_final,
            key: self.key.id(),
        };
        self.seq += 1;
        cp.sign(&self.key)
    }
}

/// A value that passed verification. Only this crate constructs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// The verified value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Verify a checkpoint note on its own (signature and trust only, no chain): used for seal
/// receipts (SPEC §5), which repeat the final checkpoint outside the recording. The key must
/// be trusted for recordings, for the note's own `host`, at its `time` (SPEC §6); whether it
/// is the key of the recording the note belongs to is the caller's check.
///
/// # Errors
/// [`CheckpointError::Malformed`], [`CheckpointError::UntrustedKey`],
/// [`CheckpointError::KeyNotValid`], [`CheckpointError::WrongSigner`] or
/// [`CheckpointError::BadSignature`].
pub fn verify_note(
    note: &[u8],
    trust: &TrustStore,
) -> Result<Verified<Checkpoint>, CheckpointError> {
    let (cp, sig, msg) = Checkpoint::parse(note)?;
    let trusted = trust.lookup(&cp.key, RECORDING_NAMESPACE, &cp.host, cp.time_us)?;
    if !trusted.key.verify(&msg, &sig) {
        return Err(CheckpointError::BadSignature(cp.key));
    }
    Ok(Verified(cp))
}

/// A new session id: 128 bits from the system RNG as 32 lowercase hex digits (SPEC, intro).
///
/// # Errors
/// [`crate::KeyError::Rng`] if the RNG fails.
pub fn new_session_id() -> Result<String, crate::KeyError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| crate::KeyError::Rng)?;
    Ok(hex::encode(b))
}

/// Reader side: recomputes the chain and checks each checkpoint note against it (SPEC §7).
#[derive(Debug)]
pub struct ChainVerifier<'t> {
    chain: Chain,
    trust: &'t TrustStore,
    host: String,
    session: String,
    header_key_id: String,
    next_seq: u64,
    sealed_final: bool,
}

impl<'t> ChainVerifier<'t> {
    /// Verify the chain of `session` on `host`, signed by the key `header_key_id` (64 hex
    /// digits: all three from the header, SPEC §2.1), against `trust`.
    pub fn new(
        host: &str,
        session: &str,
        header_key_id: &str,
        trust: &'t TrustStore,
    ) -> ChainVerifier<'t> {
        ChainVerifier {
            chain: Chain::new(host, session),
            trust,
            host: host.into(),
            session: session.into(),
            header_key_id: header_key_id.into(),
            next_seq: 0,
            sealed_final: false,
        }
    }

    /// Hash the next line (exact bytes, without LF).
    #[inline]
    pub fn line(&mut self, line: &[u8]) {
        self.chain.push(line);
    }

    /// The chain so far.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Check the next checkpoint note against the lines hashed so far (SPEC §7).
    ///
    /// # Errors
    /// In this order: [`CheckpointError::Malformed`]; [`CheckpointError::UntrustedKey`] or
    /// [`CheckpointError::KeyNotValid`] (key not trusted for recordings at the checkpoint's
    /// `time`); [`CheckpointError::WrongSigner`] (trusted, but its principals do not match the
    /// header's host, or it is not the header's `key_id` — so the checkpoints of one file
    /// all come from one key); [`CheckpointError::BadSignature`];
    /// [`CheckpointError::Mismatch`] for host, session, seq, a checkpoint after the final one,
    /// or lines/bytes/head that differ from the recomputation.
    pub fn checkpoint(
        &mut self,
        note: &[u8],
    ) -> Result<(Verified<Checkpoint>, TrustedKey), CheckpointError> {
        let (cp, sig, msg) = Checkpoint::parse(note)?;
        let trusted = self
            .trust
            .lookup(&cp.key, RECORDING_NAMESPACE, &self.host, cp.time_us)?
            .clone();
        if cp.key.to_string() != self.header_key_id {
            return Err(CheckpointError::WrongSigner {
                key: cp.key,
                reason: format!(
                    "checkpoint {} is signed by key {}, but the header names key {:?}",
                    cp.seq, cp.key, self.header_key_id
                ),
            });
        }
        if !trusted.key.verify(&msg, &sig) {
            return Err(CheckpointError::BadSignature(cp.key));
        }
        let mismatch = |m: String| Err(CheckpointError::Mismatch(m));
        if cp.host != self.host || cp.session != self.session {
            return mismatch(format!(
                "checkpoint is for host {} session {}, but the header says host {} session {}",
                cp.host, cp.session, self.host, self.session
            ));
        }
        if self.sealed_final {
            return mismatch("checkpoint after the final checkpoint".into());
        }
        if cp.seq != self.next_seq {
            return mismatch(format!(
                "checkpoint seq {} where {} was expected",
                cp.seq, self.next_seq
            ));
        }
        if cp.lines != self.chain.lines
            || cp.bytes != self.chain.bytes
            || cp.head != self.chain.head
        {
            return mismatch(format!(
                "checkpoint {} covers {} lines / {} bytes with a different head than the {} lines / {} bytes read",
                cp.seq, cp.lines, cp.bytes, self.chain.lines, self.chain.bytes
            ));
        }
        self.next_seq += 1;
        self.sealed_final = cp.is_final;
        Ok((Verified(cp), trusted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (SigningKey, TrustStore) {
        let k = SigningKey::generate().unwrap();
        let t = TrustStore::single("h", k.public());
        (k, t)
    }

    /// A verifier for host `h`, session `s`, whose header names `key`.
    fn verifier<'t>(key: &SigningKey, t: &'t TrustStore) -> ChainVerifier<'t> {
        ChainVerifier::new("h", "s", &key.id().to_string(), t)
    }

    #[test]
    fn sealed_lines_verify_and_any_change_is_caught() {
        let (k, t) = setup();
        let lines: [&[u8]; 3] = [
            b"{\"version\":3}",
            b"[0.1, \"o\", \"a\"]",
            b"[0.1, \"o\", \"b\"]",
        ];
        let kid = k.id().to_string();
        let mut s = Sealer::new(k, "h", "s");
        lines.iter().for_each(|l| s.line(l));
        let note = s.checkpoint(5, true);

        let mut v = ChainVerifier::new("h", "s", &kid, &t);
        lines.iter().for_each(|l| v.line(l));
        let (cp, _) = v.checkpoint(&note).unwrap();
        assert!(cp.is_final);

        // Swapped, dropped, duplicated, other session: all mismatch.
        let variants: [&[&[u8]]; 3] = [
            &[lines[0], lines[2], lines[1]],
            &[lines[0], lines[1]],
            &[lines[0], lines[1], lines[1], lines[2]],
        ];
        for ls in variants {
            let mut v = ChainVerifier::new("h", "s", &kid, &t);
            ls.iter().for_each(|l| v.line(l));
            assert!(matches!(
                v.checkpoint(&note),
                Err(CheckpointError::Mismatch(_))
            ));
        }
        let mut v = ChainVerifier::new("h", "other", &kid, &t);
        lines.iter().for_each(|l| v.line(l));
        assert!(matches!(
            v.checkpoint(&note),
            Err(CheckpointError::Mismatch(_))
        ));
        // A second checkpoint after the final one.
        let mut v = ChainVerifier::new("h", "s", &kid, &t);
        lines.iter().for_each(|l| v.line(l));
        v.checkpoint(&note).unwrap();
        assert!(v.checkpoint(&note).is_err());
    }

    #[test]
    fn untrusted_and_bad_signatures() {
        let (k, t) = setup();
        let (other, _) = setup();
        let mut v = verifier(&other, &t);
        let mut s = Sealer::new(other, "h", "s");
        let note = s.checkpoint(1, false);
        assert!(matches!(
            v.checkpoint(&note),
            Err(CheckpointError::UntrustedKey(_))
        ));

        let mut v = verifier(&k, &t);
        let mut s = Sealer::new(k, "h", "s");
        let mut note = s.checkpoint(1, false);
        let time_at = note.windows(5).position(|w| w == b"time ").unwrap() + 5;
        note[time_at] = if note[time_at] == b'2' { b'3' } else { b'2' };
        assert!(matches!(
            v.checkpoint(&note),
            Err(CheckpointError::BadSignature(_))
        ));
    }

    /// Two hosts' keys, each trusted for its own host: neither may sign for the other, and a
    /// checkpoint must come from the key the header names (SPEC §7 `WRONG_SIGNER`).
    #[test]
    fn keys_sign_only_for_their_hosts_and_the_header_key() {
        let (k1, k2) = (
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
        );
        let trust = TrustStore::parse(&format!(
            "h namespaces=\"sealcast\" {}\nh2 namespaces=\"sealcast\" {}\n",
            k1.public().to_openssh(""),
            k2.public().to_openssh("")
        ))
        .unwrap();
        let header = b"{\"version\":3}";
        let note = |key: SigningKey, is_final| {
            let mut s = Sealer::new(key, "h", "s");
            s.line(header);
            s.checkpoint(7, is_final)
        };
        let copy = |k: &SigningKey| SigningKey::from_file_bytes(k.to_pem().as_bytes()).unwrap();
        let k1_again = || copy(&k1);

        // h's own key, named in the header: OK.
        let mut v = verifier(&k1, &trust);
        v.line(header);
        assert!(v.checkpoint(&note(k1_again(), true)).is_ok());

        // h2's key re-signs h's recording (header rewritten to name it): wrong signer, and
        // the reason names the key's principals and the host.
        let mut v = verifier(&k2, &trust);
        v.line(header);
        let err = v.checkpoint(&note(copy(&k2), true));
        match err {
            Err(CheckpointError::WrongSigner { key, reason }) => {
                assert_eq!(key, k2.id());
                assert!(
                    reason.contains("\"h2\"") && reason.contains("\"h\""),
                    "{reason}"
                );
            }
            other => panic!("expected WrongSigner, got {other:?}"),
        }

        // The header names h2's key, h's key signed: wrong signer (checked before the
        // signature and the chain).
        let mut v = verifier(&k2, &trust);
        v.line(header);
        match v.checkpoint(&note(k1_again(), true)) {
            Err(CheckpointError::WrongSigner { reason, .. }) => {
                assert!(reason.contains("header names key"), "{reason}")
            }
            other => panic!("expected WrongSigner, got {other:?}"),
        }

        // One file, checkpoints by two trusted keys: the second is a wrong signer even when
        // its key could sign for the host.
        let both = TrustStore::parse(&format!(
            "h {}\nh {}\n",
            k1.public().to_openssh(""),
            k2.public().to_openssh("")
        ))
        .unwrap();
        let mut v = verifier(&k1, &both);
        v.line(header);
        let mut s1 = Sealer::new(k1_again(), "h", "s");
        s1.line(header);
        v.checkpoint(&s1.checkpoint(7, false)).unwrap();
        let mut s2 = Sealer::new(copy(&k2), "h", "s");
        s2.line(header);
        s2.checkpoint(7, false);
        assert!(matches!(
            v.checkpoint(&s2.checkpoint(8, true)),
            Err(CheckpointError::WrongSigner { .. })
        ));

        // The seal receipt on its own: bound to its own host.
        assert!(verify_note(&note(k1_again(), true), &trust).is_ok());
        let mut s = Sealer::new(copy(&k2), "h", "s");
        assert!(matches!(
            verify_note(&s.checkpoint(7, true), &trust),
            Err(CheckpointError::WrongSigner { .. })
        ));
    }

    /// Known-answer vector for the chain (SPEC §4), computed independently with Python's
    /// hashlib (see format-spec/vectors/chain-kat.py).
    #[test]
    fn chain_known_answer() {
        assert_eq!(
            hex::encode(genesis("host-a", "00000000000000000000000000000001")),
            include_str!("../../format-spec/vectors/chain-kat.genesis.txt").trim()
        );
        let mut c = Chain::new("host-a", "00000000000000000000000000000001");
        c.push(b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}");
        c.push(b"[0.000000, \"o\", \"hi\"]");
        assert_eq!(
            hex::encode(c.head()),
            include_str!("../../format-spec/vectors/chain-kat.head2.txt").trim()
        );
    }
}
