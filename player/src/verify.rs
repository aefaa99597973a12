//! File-level verification of a sealed recording (SPEC §7): container → lines → chain →
//! checkpoints → one [`Report`].

use serde::Serialize;

use sealcast_format::{
    decompress_frame, decompress_partial, parse_event, scan, ContainerError, Decompressor, Frame,
    FrameKind, Header, CHECKPOINT_MAGIC,
};
use sealcast_signer::{verify_note, ChainVerifier, CheckpointError, TrustStore};

/// Verification outcome of one recording (SPEC §7). Serialises as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Status {
    /// Every line covered by a valid trusted checkpoint; sealed by a final checkpoint.
    Ok,
    /// Bytes differ from what was signed.
    Modified,
    /// A trusted key's signature does not verify.
    BadSignature,
    /// Signed by a key not trusted (or not valid at that time / for recordings).
    UntrustedKey,
    /// Signed by a trusted key that may not sign it: its `allowed_signers` principals do not
    /// match the header's host, or it is not the key the header's `key_id` names.
    WrongSigner,
    /// Shorter than its seal receipt.
    Truncated,
    /// Not a sealcast recording.
    Format,
    /// Verified prefix followed by data no checkpoint covers (crash).
    UnsealedTail,
    /// Verified prefix ending at a non-final checkpoint (crash).
    Unclosed,
    /// Could not be read.
    Unreadable,
}

impl Status {
    /// Name as printed (`OK`, `MODIFIED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Modified => "MODIFIED",
            Status::BadSignature => "BAD_SIGNATURE",
            Status::UntrustedKey => "UNTRUSTED_KEY",
            Status::WrongSigner => "WRONG_SIGNER",
            Status::Truncated => "TRUNCATED",
            Status::Format => "FORMAT",
            Status::UnsealedTail => "UNSEALED_TAIL",
            Status::Unclosed => "UNCLOSED",
            Status::Unreadable => "UNREADABLE",
        }
    }

    /// Exit class (SPEC §7): 0 verified, 1 tampering evidence, 2 incomplete, 4 I/O.
    pub fn exit_class(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::UnsealedTail | Status::Unclosed => 2,
            Status::Unreadable => 4,
            _ => 1,
        }
    }
}

/// Where verification first found the bytes disagreeing with what was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// First line (0 = header) of the region that fails, or the exact line when a local check
    /// pinpoints it.
    pub line: u64,
    /// Offset in the compressed file of the frame holding that line (or of the bad frame).
    pub offset: u64,
}

/// What lies after the last verified checkpoint of an unsealed recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tail {
    /// Offset in the compressed file where the unsealed part starts.
    pub offset: u64,
    /// Compressed bytes after the last checkpoint.
    pub compressed_bytes: u64,
    /// Complete lines decodable after the last checkpoint.
    pub lines: u64,
}

/// The result of verifying one recording.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Overall status.
    pub status: Status,
    /// Human explanation of the status (empty for OK).
    pub reason: String,
    /// Lines covered by verified checkpoints (header included).
    pub verified_lines: u64,
    /// Decompressed bytes covered by verified checkpoints.
    pub verified_bytes: u64,
    /// Verified checkpoints.
    pub checkpoints: u64,
    /// True when a final checkpoint verified.
    pub sealed: bool,
    /// First divergence, for class-1 statuses where one is known.
    pub divergence: Option<Divergence>,
    /// Unsealed tail, for UNSEALED_TAIL.
    pub tail: Option<Tail>,
    /// Session id from the header.
    pub session: Option<String>,
    /// Host id from the header.
    pub host: Option<String>,
    /// User from the header.
    pub user: Option<String>,
    /// Key id that signed the checkpoints.
    pub key_id: Option<String>,
    /// Principals of the `allowed_signers` line that trusted the key: the host-id pattern
    /// list it may sign for (`h1`, `bastion-*,!bastion-9`), as written.
    pub signer: Option<String>,
}

impl Report {
    /// The report for a file that could not be read at all (`UNREADABLE`, exit class 4).
    pub fn unreadable(reason: impl Into<String>) -> Report {
        Report::new().fail(Status::Unreadable, reason, None)
    }

    fn new() -> Report {
        Report {
            status: Status::Ok,
            reason: String::new(),
            verified_lines: 0,
            verified_bytes: 0,
            checkpoints: 0,
            sealed: false,
            divergence: None,
            tail: None,
            session: None,
            host: None,
            user: None,
            key_id: None,
            signer: None,
        }
    }

    fn fail(mut self, status: Status, reason: impl Into<String>, at: Option<Divergence>) -> Report {
        self.status = status;
        self.reason = reason.into();
        self.divergence = at;
        self
    }
}

fn checkpoint_status(e: &CheckpointError) -> Status {
    match e {
        CheckpointError::UntrustedKey(_) | CheckpointError::KeyNotValid { .. } => {
            Status::UntrustedKey
        }
        CheckpointError::WrongSigner { .. } => Status::WrongSigner,
        CheckpointError::BadSignature(_) => Status::BadSignature,
        _ => Status::Modified,
    }
}

/// Re-read the lines of a failing region and look for a line a local check can blame.
///
/// A line that does not parse or is not in the writer's canonical form was never written by
/// sealcast as it stands. A line equal to its predecessor is blamed only when the region has
/// exactly one line (of that length) more than the checkpoint signed, since sessions repeat
/// output legitimately. `signed` is the checkpoint's (lines, bytes), when it parsed.
fn blame_line(
    data: &[u8],
    region_offset: u64,
    (first_line, first_byte): (u64, u64),
    signed: Option<(u64, u64)>,
) -> Option<(u64, u64, String)> {
    let mut line_no = first_line;
    let mut byte_no = first_byte;
    let mut prev: Option<&[u8]> = None;
    let mut dup: Option<(u64, u64, u64)> = None; // (line, offset, len)
    let mut bufs = Vec::new();
    for f in scan(&data[region_offset as usize..]) {
        let f = f.ok()?;
        if f.kind != FrameKind::Data {
            break;
        }
        let mut buf = Vec::new();
        decompress_frame(f.bytes, region_offset + f.offset, &mut buf).ok()?;
        bufs.push((region_offset + f.offset, buf));
    }
    for (offset, buf) in &bufs {
        for line in buf.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            if line_no > 0 {
                match parse_event(line) {
                    Err(e) => {
                        return Some((
                            line_no,
                            *offset,
                            format!("line {line_no} is not a valid event: {e}"),
                        ))
                    }
                    Ok(ev) if ev.canonical_line() != line => {
                        return Some((
                            line_no,
                            *offset,
                            format!("line {line_no} is not in the writer's canonical form"),
                        ))
                    }
                    Ok(_) if prev == Some(line) && dup.is_none() => {
                        dup = Some((line_no, *offset, line.len() as u64))
                    }
                    Ok(_) => {}
                }
            }
            prev = Some(line);
            line_no += 1;
            byte_no += line.len() as u64 + 1;
        }
    }
    let (signed_lines, signed_bytes) = signed?;
    let read = line_no;
    match dup {
        Some((line, offset, len))
            if read == signed_lines + 1 && byte_no == signed_bytes + len + 1 =>
        {
            Some((
                line,
                offset,
                format!(
                    "line {line} duplicates line {} (one line more than signed)",
                    line - 1
                ),
            ))
        }
        _ if read != signed_lines => Some((
            first_line,
            region_offset,
            format!(
                "lines {first_line}..{read}: {} lines read where {} were signed",
                read - first_line,
                signed_lines.saturating_sub(first_line)
            ),
        )),
        _ => None,
    }
}

/// Verify a whole recording held in memory.
///
/// `receipt` is the content of `<file>.seal` when one exists. Never panics on any input;
/// every outcome is a [`Report`].
pub fn verify_bytes(data: &[u8], receipt: Option<&[u8]>, trust: &TrustStore) -> Report {
    if data.len() < PIPELINE_MIN_BYTES {
        let mut dec = Decompressor::new();
        return verify_frames(
            data,
            receipt,
            trust,
            scan(data).map(|f| decode(&mut dec, f)),
        );
    }
    // Decompression runs one frame ahead of hashing on a second thread: zstd and SHA-256 are
    // each about 1 GB/s on one core, so overlapping them roughly doubles throughput. The
    // channel is bounded (memory ≤ 4 frames); an early return drops the receiver, which stops
    // the producer.
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Scanned<'_>>(4);
        s.spawn(move || {
            let mut dec = Decompressor::new();
            for frame in scan(data) {
                if tx.send(decode(&mut dec, frame)).is_err() {
                    break;
                }
            }
        });
        verify_frames(data, receipt, trust, rx.into_iter())
    })
}

/// Files smaller than this are verified on the calling thread: a second thread costs more
/// than it saves, bytes.
const PIPELINE_MIN_BYTES: usize = 1 << 20;

/// Decompress a data frame as it comes out of the scanner.
fn decode<'d>(dec: &mut Decompressor, frame: Result<Frame<'d>, ContainerError>) -> Scanned<'d> {
    let decoded = match &frame {
        Ok(f) if f.kind == FrameKind::Data => {
            let mut buf = Vec::new();
            Some(dec.frame(f.bytes, f.offset, &mut buf).map(|()| buf))
        }
        _ => None,
    };
    (frame, decoded)
}

/// A scanned frame and, for data frames, its decompressed content.
type Scanned<'d> = (
    Result<Frame<'d>, ContainerError>,
    Option<Result<Vec<u8>, ContainerError>>,
);

/// Iterate the lines of `buf` (which ends with LF), without their LF.
fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', buf).map(move |end| {
        let line = &buf[start..end];
        start = end + 1;
        line
    })
}

fn verify_frames<'d>(
    data: &'d [u8],
    receipt: Option<&[u8]>,
    trust: &TrustStore,
    frames: impl Iterator<Item = Scanned<'d>>,
) -> Report {
    let mut r = Report::new();
    let mut verifier: Option<ChainVerifier<'_>> = None;
    // Region not yet covered by a verified checkpoint.
    let mut region_offset: Option<u64> = None;
    let mut region_line = 0u64;
    let mut final_note: Option<&[u8]> = None;
    let mut tail_start: Option<u64> = None;
    let mut header_key_id: Option<String> = None;

    for (frame, decoded) in frames {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let off = e.offset().unwrap_or(0);
                let nothing_yet = r.checkpoints == 0 && region_offset.is_none();
                // A crash only ever damages the end; a broken frame with a checkpoint after it
                // is a modification of sealed data.
                let sealed_after = data
                    .get(off as usize + 1..)
                    .is_some_and(contains_checkpoint);
                if sealed_after {
                    return r.fail(
                        Status::Modified,
                        e.to_string(),
                        Some(Divergence {
                            line: region_line,
                            offset: off,
                        }),
                    );
                }
                match e {
                    ContainerError::Truncated { .. } | ContainerError::Zstd { .. }
                        if !nothing_yet && final_note.is_none() =>
                    {
                        tail_start = Some(off);
                        break;
                    }
                    ContainerError::BadMagic { .. } if !nothing_yet && final_note.is_none() => {
                        tail_start = Some(off);
                        break;
                    }
                    _ if final_note.is_some() => {
                        return r.fail(
                            Status::Modified,
                            format!("bytes after the final checkpoint: {e}"),
                            Some(Divergence {
                                line: region_line,
                                offset: off,
                            }),
                        );
                    }
                    ContainerError::UnexpectedSkippable { .. }
                    | ContainerError::OversizedCheckpoint { .. }
                        if !nothing_yet =>
                    {
                        return r.fail(
                            Status::Modified,
                            e.to_string(),
                            Some(Divergence {
                                line: region_line,
                                offset: off,
                            }),
                        );
                    }
                    ContainerError::Truncated { .. } => {
                        // A crash before the first frame was complete: nothing verifiable yet.
                        tail_start = Some(off);
                        break;
                    }
                    _ => return r.fail(Status::Format, e.to_string(), None),
                }
            }
        };
        if final_note.is_some() {
            return r.fail(
                Status::Modified,
                "data after the final checkpoint",
                Some(Divergence {
                    line: region_line,
                    offset: frame.offset,
                }),
            );
        }
        match frame.kind {
            FrameKind::Data => {
                region_offset.get_or_insert(frame.offset);
                // Before the header a bad frame means "not a recording"; after, "modified".
                let bad_frame = |r: Report, reason: String| {
                    let status = if verifier.is_none() {
                        Status::Format
                    } else {
                        Status::Modified
                    };
                    r.fail(
                        status,
                        reason,
                        Some(Divergence {
                            line: region_line,
                            offset: frame.offset,
                        }),
                    )
                };
                let buf = match decoded.unwrap_or(Err(ContainerError::Empty)) {
                    Ok(buf) => buf,
                    Err(e) => return bad_frame(r, e.to_string()),
                };
                if buf.last() != Some(&b'\n') {
                    let reason = format!(
                        "offset {}: frame does not end at a line boundary",
                        frame.offset
                    );
                    return bad_frame(r, reason);
                }
                for line in lines(&buf) {
                    if verifier.is_none() {
                        let meta = match Header::parse(line) {
                            Ok(Header {
                                sealcast: Some(m), ..
                            }) => m,
                            Ok(_) => return r.fail(
                                Status::Format,
                                "asciicast v3 without sealcast metadata: not a sealed recording",
                                None,
                            ),
                            Err(e) => {
                                return r.fail(
                                    Status::Format,
                                    format!("line 0 (header): {e}"),
                                    Some(Divergence {
                                        line: 0,
                                        offset: frame.offset,
                                    }),
                                )
                            }
                        };
                        verifier = Some(ChainVerifier::new(
                            &meta.host,
                            &meta.session,
                            &meta.key_id,
                            trust,
                        ));
                        r.session = Some(meta.session);
                        r.host = Some(meta.host);
                        r.user = Some(meta.user);
                        header_key_id = Some(meta.key_id);
                    }
                    if let Some(v) = verifier.as_mut() {
                        v.line(line);
                    }
                }
            }
            FrameKind::Checkpoint => {
                let Some(v) = verifier.as_mut() else {
                    return r.fail(
                        Status::Format,
                        format!("offset {}: checkpoint before the header", frame.offset),
                        None,
                    );
                };
                match v.checkpoint(frame.bytes) {
                    Ok((cp, trusted)) => {
                        r.checkpoints += 1;
                        r.verified_lines = cp.lines;
                        r.verified_bytes = cp.bytes;
                        r.key_id = Some(cp.key.to_string());
                        r.signer = Some(trusted.principals_text());
                        region_offset = None;
                        region_line = cp.lines;
                        if cp.is_final {
                            final_note = Some(frame.bytes);
                        }
                    }
                    Err(e) => {
                        let status = checkpoint_status(&e);
                        let mut at = Divergence {
                            line: region_line,
                            offset: region_offset.unwrap_or(frame.offset),
                        };
                        let mut reason = format!("checkpoint at offset {}: {e}", frame.offset);
                        if status == Status::Modified {
                            let signed = sealcast_signer::Checkpoint::parse(frame.bytes)
                                .ok()
                                .map(|(c, _, _)| (c.lines, c.bytes));
                            let start = (region_line, r.verified_bytes);
                            if let Some((line, offset, why)) =
                                blame_line(data, at.offset, start, signed)
                            {
                                at = Divergence { line, offset };
                                reason = format!("{why}; {reason}");
                            }
                        }
                        return r.fail(status, reason, Some(at));
                    }
                }
            }
        }
    }

    if verifier.is_none() && tail_start.is_none() {
        return r.fail(Status::Format, "no header", None);
    }

    // What the seal receipt says, if there is one.
    let receipt_cp = match receipt.map(|n| verify_note(n, trust)) {
        None => None,
        Some(Ok(cp)) => Some(cp),
        Some(Err(e)) => return r.fail(checkpoint_status(&e), format!("seal receipt: {e}"), None),
    };
    if let Some(cp) = &receipt_cp {
        if r.session.as_deref().is_some_and(|s| s != cp.session) {
            return r.fail(
                Status::Modified,
                "seal receipt belongs to another session",
                None,
            );
        }
        // The receipt repeats a checkpoint of this file, so the header's key signed it.
        if let Some(header_key) = &header_key_id {
            if cp.key.to_string() != *header_key {
                return r.fail(
                    Status::WrongSigner,
                    format!(
                        "seal receipt: signed by key {}, but the header names key {header_key:?}",
                        cp.key
                    ),
                    None,
                );
            }
        }
    }

    if let Some(note) = final_note {
        if let (Some(cp), Some(receipt)) = (&receipt_cp, receipt) {
            if receipt != note {
                let status = if cp.lines > r.verified_lines {
                    Status::Truncated
                } else {
                    Status::Modified
                };
                let reason = format!(
                    "seal receipt covers {} lines, the recording's final checkpoint {}",
                    cp.lines, r.verified_lines
                );
                return r.fail(status, reason, None);
            }
        }
        r.sealed = true;
        return r;
    }

    // Not sealed: a crash, or a cut.
    let tail_offset = region_offset.or(tail_start);
    let mut tail_lines = 0;
    if let Some(off) = tail_offset {
        let mut partial = Vec::new();
        let mut s = scan(&data[off as usize..]);
        while let Some(f) = s.next() {
            match f {
                Ok(f) if f.kind == FrameKind::Data => {
                    let _ = decompress_frame(f.bytes, 0, &mut partial);
                }
                Ok(_) => {}
                Err(_) => {
                    decompress_partial(&data[off as usize + s.position() as usize..], &mut partial);
                    break;
                }
            }
        }
        tail_lines = partial.iter().filter(|&&b| b == b'\n').count() as u64;
        r.tail = Some(Tail {
            offset: off,
            compressed_bytes: data.len() as u64 - off,
            lines: tail_lines,
        });
    }
    if let Some(cp) = &receipt_cp {
        if cp.lines > r.verified_lines {
            let reason = format!("seal receipt covers {} lines but only {} verify (session was closed, file was cut)", cp.lines, r.verified_lines);
            let at = Divergence {
                line: r.verified_lines,
                offset: tail_offset.unwrap_or(data.len() as u64),
            };
            return r.fail(Status::Truncated, reason, Some(at));
        }
    }
    if tail_offset.is_some() {
        let upto = match r.checkpoints {
            0 => "no checkpoint verified".to_string(),
            n => format!(
                "{} lines verified up to checkpoint {}",
                r.verified_lines,
                n - 1
            ),
        };
        let reason = format!(
            "{upto}; {} unsealed bytes after it ({} complete lines) — recorder did not close the session",
            data.len() as u64 - tail_offset.unwrap_or(0),
            tail_lines
        );
        r.status = Status::UnsealedTail;
        r.reason = reason;
    } else {
        r.status = Status::Unclosed;
        r.reason = format!(
            "{} lines verified; no final checkpoint — recorder did not close the session",
            r.verified_lines
        );
    }
    r
}

/// True if `data` holds something that looks like a checkpoint frame (magic, length, and the
/// note's first line), as opposed to random compressed bytes.
fn contains_checkpoint(data: &[u8]) -> bool {
    const NOTE_START: &[u8] = b"sealcast-checkpoint/v1\n";
    let magic = CHECKPOINT_MAGIC.to_le_bytes();
    data.windows(8 + NOTE_START.len())
        .any(|w| w[..4] == magic && &w[8..] == NOTE_START)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_format::{Header, SealMeta};
    use sealcast_recorder::{CheckpointPolicy, SealedWriter, SystemClock};
    use sealcast_signer::SigningKey;

    /// A closed recording of about `mb` MiB of varied output.
    fn big(mb: usize) -> (Vec<u8>, TrustStore) {
        let key = SigningKey::generate().unwrap();
        let trust = TrustStore::single("h", key.public());
        let header = Header {
            timestamp: Some(0),
            ..Header::sealed(SealMeta::new(
                "0".repeat(32),
                "h",
                "u",
                0,
                "test",
                key.id().to_string(),
            ))
        };
        let mut w = SealedWriter::new(
            Vec::new(),
            key,
            &header,
            SystemClock::new(),
            CheckpointPolicy::default(),
        )
        .unwrap();
        let mut i = 0u64;
        while (i as usize) * 64 < mb << 20 {
            w.output(
                format!(
                    "line {i:>12} \x1b[32m{:016x}\x1b[0m\r\n",
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                )
                .as_bytes(),
            )
            .unwrap();
            i += 1;
        }
        (w.finish(Some(0)).unwrap().0, trust)
    }

    #[test]
    fn pipelined_and_inline_paths_agree() {
        let (file, trust) = big(12);
        assert!(
            file.len() >= PIPELINE_MIN_BYTES,
            "test file must take the pipelined path"
        );
        let inline = |data: &[u8]| {
            let mut dec = Decompressor::new();
            verify_frames(data, None, &trust, scan(data).map(|f| decode(&mut dec, f)))
        };
        let ok = verify_bytes(&file, None, &trust);
        assert_eq!(ok.status, Status::Ok, "{}", ok.reason);
        assert_eq!(ok.verified_lines, inline(&file).verified_lines);

        // A flipped byte in a middle frame: same verdict and divergence either way.
        let mid = scan(&file)
            .flatten()
            .filter(|f| f.kind == FrameKind::Data)
            .nth(20)
            .unwrap();
        let mut bad = file.clone();
        bad[(mid.offset + mid.len / 2) as usize] ^= 0x20;
        let (a, b) = (verify_bytes(&bad, None, &trust), inline(&bad));
        assert_ne!(a.status, Status::Ok);
        assert_eq!(
            (a.status, a.divergence.clone(), a.reason.clone()),
            (b.status, b.divergence, b.reason)
        );

        // A crash tail: cut into the last data frame.
        let cut = &file[..file.len() - 2000];
        let (a, b) = (verify_bytes(cut, None, &trust), inline(cut));
        assert_eq!(a.status, Status::UnsealedTail);
        assert_eq!(
            (a.verified_lines, a.tail.clone()),
            (b.verified_lines, b.tail)
        );
    }
}
