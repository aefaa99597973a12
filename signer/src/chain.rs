//! The line chain (SPEC §4), the writer-side [`Sealer`] and the reader-side
//! [`ChainVerifier`].

use std::ops::Deref;

use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::error::CheckpointError;
use crate::keys::{KeyId, SigningKey};
use crate::trust::{TrustStore, TrustedKey};

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
/// receipts (SPEC §5), which repeat the final checkpoint outside the recording.
///
/// # Errors
/// [`CheckpointError::Malformed`], [`CheckpointError::UntrustedKey`],
/// [`CheckpointError::KeyNotValid`] or [`CheckpointError::BadSignature`].
pub fn verify_note(
    note: &[u8],
    trust: &TrustStore,
) -> Result<Verified<Checkpoint>, CheckpointError> {
    let (cp, sig, msg) = Checkpoint::parse(note)?;
    let trusted = trust.lookup(&cp.key, cp.time_us)?;
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
    next_seq: u64,
    sealed_final: bool,
}

impl<'t> ChainVerifier<'t> {
    /// Verify the chain of `session` on `host` (taken from the header) against `trust`.
    pub fn new(host: &str, session: &str, trust: &'t TrustStore) -> ChainVerifier<'t> {
        ChainVerifier {
            chain: Chain::new(host, session),
            trust,
            host: host.into(),
            session: session.into(),
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

    /// Check the next checkpoint note against the lines hashed so far.
    ///
    /// # Errors
    /// In this order: [`CheckpointError::Malformed`]; [`CheckpointError::UntrustedKey`] or
    /// [`CheckpointError::KeyNotValid`]; [`CheckpointError::BadSignature`];
    /// [`CheckpointError::Mismatch`] for host, session, seq, a checkpoint after the final one,
    /// or lines/bytes/head that differ from the recomputation.
    pub fn checkpoint(
        &mut self,
        note: &[u8],
    ) -> Result<(Verified<Checkpoint>, TrustedKey), CheckpointError> {
        let (cp, sig, msg) = Checkpoint::parse(note)?;
        let trusted = self.trust.lookup(&cp.key, cp.time_us)?.clone();
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
        let t = TrustStore::single("t", k.public());
        (k, t)
    }

    #[test]
    fn sealed_lines_verify_and_any_change_is_caught() {
        let (k, t) = setup();
        let lines: [&[u8]; 3] = [
            b"{\"version\":3}",
            b"[0.1, \"o\", \"a\"]",
            b"[0.1, \"o\", \"b\"]",
        ];
        let mut s = Sealer::new(k, "h", "s");
        lines.iter().for_each(|l| s.line(l));
        let note = s.checkpoint(5, true);

        let mut v = ChainVerifier::new("h", "s", &t);
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
            let mut v = ChainVerifier::new("h", "s", &t);
            ls.iter().for_each(|l| v.line(l));
            assert!(matches!(
                v.checkpoint(&note),
                Err(CheckpointError::Mismatch(_))
            ));
        }
        let mut v = ChainVerifier::new("h", "other", &t);
        lines.iter().for_each(|l| v.line(l));
        assert!(matches!(
            v.checkpoint(&note),
            Err(CheckpointError::Mismatch(_))
        ));
        // A second checkpoint after the final one.
        let mut v = ChainVerifier::new("h", "s", &t);
        lines.iter().for_each(|l| v.line(l));
        v.checkpoint(&note).unwrap();
        assert!(v.checkpoint(&note).is_err());
    }

    #[test]
    fn untrusted_and_bad_signatures() {
        let (k, t) = setup();
        let (other, _) = setup();
        let mut s = Sealer::new(other, "h", "s");
        let note = s.checkpoint(1, false);
        let mut v = ChainVerifier::new("h", "s", &t);
        assert!(matches!(
            v.checkpoint(&note),
            Err(CheckpointError::UntrustedKey(_))
        ));

        let mut s = Sealer::new(k, "h", "s");
        let mut note = s.checkpoint(1, false);
        let time_at = note.windows(5).position(|w| w == b"time ").unwrap() + 5;
        note[time_at] = if note[time_at] == b'2' { b'3' } else { b'2' };
        assert!(matches!(
            ChainVerifier::new("h", "s", &t).checkpoint(&note),
            Err(CheckpointError::BadSignature(_))
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
