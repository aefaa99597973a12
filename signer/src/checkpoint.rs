//! Checkpoint notes (SPEC §5).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::error::CheckpointError;
use crate::keys::{KeyId, SigningKey};

/// Domain-separation prefix of the signed message (SPEC §5).
pub const CHECKPOINT_DOMAIN: &[u8] = b"sealcast/v1/checkpoint\0";
const MAGIC_LINE: &str = "sealcast-checkpoint/v1";

/// The fields of a checkpoint note (SPEC §5). Holding one proves nothing; a checkpoint that
/// passed verification is a [`crate::Verified`]`<Checkpoint>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Host id.
    pub host: String,
    /// Session id.
    pub session: String,
    /// 0-based checkpoint number within the file.
    pub seq: u64,
    /// Lines covered, header included.
    pub lines: u64,
    /// Decompressed bytes covered, LFs included.
    pub bytes: u64,
    /// Chain head after `lines` lines.
    pub head: [u8; 32],
    /// Signing time, Unix microseconds.
    pub time_us: u64,
    /// True for the last checkpoint of a closed session.
    pub is_final: bool,
    /// Key id of the signer.
    pub key: KeyId,
}

impl Checkpoint {
    /// The note text without the `sig` line: exactly the bytes that are signed after
    /// [`CHECKPOINT_DOMAIN`].
    pub fn body(&self) -> String {
        format!(
            "{MAGIC_LINE}\nhost {}\nsession {}\nseq {}\nlines {}\nbytes {}\nhead {}\ntime {}\nfinal {}\nkey {}\n",
            self.host,
            self.session,
            self.seq,
            self.lines,
            self.bytes,
            hex::encode(self.head),
            self.time_us,
            u8::from(self.is_final),
            self.key
        )
    }

    fn message(body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + body.len());
        m.extend_from_slice(CHECKPOINT_DOMAIN);
        m.extend_from_slice(body);
        m
    }

    /// Sign with `key` and return the complete note. Sets `self.key` to the key's id first.
    pub fn sign(&mut self, key: &SigningKey) -> Vec<u8> {
        self.key = key.id();
        let body = self.body();
        let sig = key.sign(&Self::message(body.as_bytes()));
        let mut note = body.into_bytes();
        note.extend_from_slice(b"sig ");
        note.extend_from_slice(B64.encode(sig).as_bytes());
        note.push(b'\n');
        note
    }

    /// Parse a note strictly: fields in order, canonical numbers and hex, nothing extra.
    /// Returns the fields, the signature and the signed message. Does **not** verify.
    ///
    /// # Errors
    /// [`CheckpointError::Malformed`] naming the first bad field.
    pub fn parse(note: &[u8]) -> Result<(Checkpoint, [u8; 64], Vec<u8>), CheckpointError> {
        let bad = |what: &str| CheckpointError::Malformed(what.to_string());
        let text = std::str::from_utf8(note).map_err(|_| bad("not UTF-8"))?;
        let sig_at = text.rfind("\nsig ").ok_or_else(|| bad("no sig line"))? + 1;
        let (body, sig_line) = text.split_at(sig_at);
        let sig_b64 = sig_line
            .strip_prefix("sig ")
            .and_then(|s| s.strip_suffix('\n'))
            .ok_or_else(|| bad("sig line"))?;
        let sig_vec = B64.decode(sig_b64).map_err(|_| bad("sig is not base64"))?;
        let sig: [u8; 64] = sig_vec.try_into().map_err(|_| bad("sig is not 64 bytes"))?;
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC_LINE) {
            return Err(bad("first line is not sealcast-checkpoint/v1"));
        }
        let mut field = |name: &str| -> Result<&str, CheckpointError> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| CheckpointError::Malformed(format!("missing field {name}")))
        };
        let num = |s: &str, name: &str| {
            s.parse::<u64>()
                .map_err(|_| CheckpointError::Malformed(format!("bad {name}")))
        };
        let host = field("host")?.to_string();
        let session = field("session")?.to_string();
        let seq = num(field("seq")?, "seq")?;
        let nlines = num(field("lines")?, "lines")?;
        let bytes = num(field("bytes")?, "bytes")?;
        let mut head = [0u8; 32];
        hex::decode_to_slice(field("head")?, &mut head).map_err(|_| bad("bad head"))?;
        let time_us = num(field("time")?, "time")?;
        let is_final = match field("final")? {
            "0" => false,
            "1" => true,
            _ => return Err(bad("bad final")),
        };
        let key = KeyId::from_hex(field("key")?).ok_or_else(|| bad("bad key"))?;
        let cp = Checkpoint {
            host,
            session,
            seq,
            lines: nlines,
            bytes,
            head,
            time_us,
            is_final,
            key,
        };
        // Canonical form: the body must be exactly what we would write.
        let token_ok = |s: &str| !s.is_empty() && !s.chars().any(char::is_whitespace);
        if cp.body() != body || !token_ok(&cp.host) || !token_ok(&cp.session) {
            return Err(bad("not in canonical form"));
        }
        Ok((cp, sig, Self::message(body.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            host: "h1".into(),
            session: "00112233445566778899aabbccddeeff".into(),
            seq: 0,
            lines: 3,
            bytes: 99,
            head: [7; 32],
            time_us: 1_700_000_000_000_000,
            is_final: true,
            key: KeyId([0; 32]),
        }
    }

    #[test]
    fn sign_parse_round_trip() {
        let k = SigningKey::generate().unwrap();
        let mut cp = sample();
        let note = cp.sign(&k);
        let (back, sig, msg) = Checkpoint::parse(&note).unwrap();
        assert_eq!(back, cp);
        assert!(k.public().verify(&msg, &sig));
    }

    #[test]
    fn rejects_non_canonical_notes() {
        let k = SigningKey::generate().unwrap();
        let note = String::from_utf8(sample().sign(&k)).unwrap();
        for (from, to) in [
            ("seq 0", "seq 00"),
            ("lines 3", "lines +3"),
            ("final 1", "final 2"),
            ("host h1\n", "host h1 \n"),
        ] {
            let bad = note.replacen(from, to, 1);
            assert!(Checkpoint::parse(bad.as_bytes()).is_err(), "{from} -> {to}");
        }
        assert!(Checkpoint::parse(note.replace("session", "sesion").as_bytes()).is_err());
        assert!(Checkpoint::parse(&note.as_bytes()[..note.len() - 1]).is_err());
        assert!(Checkpoint::parse(b"").is_err());
    }
}
