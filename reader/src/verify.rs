//! File-level verification of a sealed recording (SPEC §7): container → lines → chain →
//! checkpoints → one [`Report`].

use serde::Serialize;

use sealcast_format::{
    decompress_frame, names, parse_event, scan, ContainerError, Decompressor, EventRules, Frame,
    FrameKind, Header, CHECKPOINT_MAGIC, MAX_CHECKPOINT_PAYLOAD,
};
use sealcast_signer::{verify_note, ChainVerifier, Checkpoint, CheckpointError, TrustStore};

/// Verification outcome of one recording (SPEC §7). Serialises as its upper-case name.
///
/// Deliberately exhaustive (not `#[non_exhaustive]`): every consumer — the bucket statuses of
/// `sealcast-store`, the CLI's summaries, [`exit_code`] through [`Status::exit_class`] — must
/// decide what a new status means, so adding one breaks their build instead of silently
/// falling into a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
    /// Every status, in the order of SPEC §7's table (the order summaries list them).
    pub const ALL: [Status; 10] = [
        Status::Ok,
        Status::Modified,
        Status::BadSignature,
        Status::UntrustedKey,
        Status::WrongSigner,
        Status::Truncated,
        Status::Format,
        Status::UnsealedTail,
        Status::Unclosed,
        Status::Unreadable,
    ];

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
            Status::Modified
            | Status::BadSignature
            | Status::UntrustedKey
            | Status::WrongSigner
            | Status::Truncated
            | Status::Format => 1,
            Status::UnsealedTail | Status::Unclosed => 2,
            Status::Unreadable => 4,
        }
    }
}

/// The exit code of a run over several recordings (or bucket findings) with these exit
/// classes (SPEC §7; MANIFEST.md §5 for buckets): `1` if any is class 1, else `4` if any is
/// class 4, else `2` if any is class 2, else `0`. With `strict`, class 2 counts as class 1.
/// Any other class counts as 4 (could not check), so it never yields 0. The one exit policy
/// of `sealcast verify`, for files and for buckets.
pub fn exit_code(classes: impl IntoIterator<Item = i32>, strict: bool) -> u8 {
    let (mut one, mut two, mut four) = (false, false, false);
    for c in classes {
        match c {
            0 => {}
            1 => one = true,
            2 if strict => one = true,
            2 => two = true,
            _ => four = true,
        }
    }
    if one {
        1
    } else if four {
        4
    } else if two {
        2
    } else {
        0
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The seal receipt `<file>.seal` beside a recording, as the caller found it (SPEC §5,
/// "Seal receipt"). `path` names it in reasons.
#[derive(Debug, Clone, Copy, Default)]
pub enum Receipt<'a> {
    /// There is no receipt.
    #[default]
    Absent,
    /// The receipt's bytes (callers read at most [`MAX_CHECKPOINT_PAYLOAD`]` + 1`; a longer
    /// receipt is refused as `MODIFIED`).
    Read {
        /// Where the receipt is.
        path: &'a str,
        /// Its content.
        bytes: &'a [u8],
    },
    /// Something exists at the receipt's path that is not a regular file (a FIFO, device,
    /// socket or directory): `MODIFIED`, since sealcast only writes regular files there.
    NotRegular {
        /// Where it is.
        path: &'a str,
        /// What it is ("a FIFO", …).
        what: &'a str,
    },
    /// The receipt exists but could not be read (I/O error, permissions): `UNREADABLE`, in
    /// its place in the precedence (SPEC §7).
    Unreadable {
        /// Where it is.
        path: &'a str,
        /// The I/O error.
        error: &'a str,
    },
}

/// What a caller knows about a recording besides its bytes (SPEC §7).
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The recording's file name (last path component), when it was read from a file. A name
    /// of the form `<32 hex digits>.cast.zst` claims a session id, which must be the
    /// header's; other names (a `record --out` choice, a renamed copy) claim nothing.
    pub file_name: Option<&'a str>,
    /// Its seal receipt.
    pub receipt: Receipt<'a>,
}

/// Verify a whole recording held in memory, with the receipt given as bytes (or none).
/// Same as [`verify_recording`] with no file name and the receipt named `seal receipt`.
pub fn verify_bytes(data: &[u8], receipt: Option<&[u8]>, trust: &TrustStore) -> Report {
    let receipt = match receipt {
        Some(bytes) => Receipt::Read { path: "", bytes },
        None => Receipt::Absent,
    };
    verify_recording(
        data,
        &Context {
            file_name: None,
            receipt,
        },
        trust,
    )
}

/// Verify a whole recording held in memory, with what the caller knows about its file name
/// and seal receipt. The status is decided by the precedence of SPEC §7; never panics on
/// any input; every outcome is a [`Report`].
pub fn verify_recording(data: &[u8], ctx: &Context<'_>, trust: &TrustStore) -> Report {
    if data.len() < PIPELINE_MIN_BYTES {
        let mut dec = Decompressor::new();
        return verify_frames(data, ctx, trust, scan(data).map(|f| decode(&mut dec, f)));
    }
    // Decompression runs one frame ahead of hashing on a second thread: zstd and SHA-256 are
    // each about 1 GB/s on one core, so overlapping them roughly doubles throughput. The
    // channel is bounded (memory ≤ 4 frames); an early return drops the receiver, which stops
    // the producer. The producer's Decompressor enforces the frame limit (SPEC §8) itself.
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
        verify_frames(data, ctx, trust, rx.into_iter())
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

/// The status of damage at `off` that is not a limit violation (SPEC §7.1, step 2.3): after
/// a verified final checkpoint, or before a checkpoint frame, it is a modification of sealed
/// data; with no checkpoint verified before it and none after, the file was never signed
/// (`FORMAT`). `None` when checkpoints verified before it and none follows: the caller makes
/// it the start of an unsealed tail when a crash can leave it, else `MODIFIED`.
fn damage_status(data: &[u8], off: u64, r: &Report, final_seen: bool) -> Option<Status> {
    let signed_after = data
        .get(off as usize + 1..)
        .is_some_and(contains_checkpoint);
    if final_seen || signed_after {
        Some(Status::Modified)
    } else if r.checkpoints == 0 {
        Some(Status::Format)
    } else {
        None
    }
}

/// Reason suffix for damage in a file that holds no signed checkpoint.
const UNSIGNED: &str = "not a sealcast recording (no signed checkpoint)";

/// What one frame did to a [`Walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing decided yet (a data frame of the current region).
    Continue,
    /// A checkpoint verified: every line before line `lines` is covered by checkpoint `seq`.
    Verified {
        /// The checkpoint's `seq`.
        seq: u64,
        /// Lines it covers, header included.
        lines: u64,
    },
    /// The frames decided a status of class 1 (or FORMAT): nothing from the current region on
    /// is verified. The walk takes no more frames.
    Failed,
    /// An unsealed tail starts at the current region (what a crash leaves): nothing from
    /// there on is verified, and nothing failed. The walk takes no more frames.
    Tail,
}

/// The verification walk of SPEC §7.1 over a recording's frames in file order, one frame at
/// a time: every line hashed and checked by [`EventRules`], every checkpoint verified. Both
/// [`verify_recording`] and the verifying readers drive it, so they decide alike; what each
/// frame decided comes back as a [`Step`], the file's [`Report`] from [`Walk::finish`].
pub(crate) struct Walk<'d, 't> {
    data: &'d [u8],
    trust: &'t TrustStore,
    r: Report,
    /// The report decided by the frames (step 2 of SPEC §7.1), once a step was `Failed`.
    failed: Option<Report>,
    ended: bool,
    verifier: Option<ChainVerifier<'t>>,
    /// Region not yet covered by a verified checkpoint.
    region_offset: Option<u64>,
    region_line: u64,
    final_note: Option<&'d [u8]>,
    tail_start: Option<u64>,
    header_key_id: Option<String>,
    /// The event rules every reader applies (SPEC §2.2), their state where the region
    /// starts, and the first line of the region that breaks them.
    rules: EventRules,
    region_rules: EventRules,
    bad_event: Option<(u64, u64, String)>,
    scratch: Vec<u8>,
    line_no: u64,
}

impl<'d, 't> Walk<'d, 't> {
    /// A walk over `data` (the whole compressed recording) trusting `trust`.
    pub(crate) fn new(data: &'d [u8], trust: &'t TrustStore) -> Walk<'d, 't> {
        let rules = EventRules::new();
        Walk {
            data,
            trust,
            r: Report::new(),
            failed: None,
            ended: false,
            verifier: None,
            region_offset: None,
            region_line: 0,
            final_note: None,
            tail_start: None,
            header_key_id: None,
            rules,
            region_rules: rules,
            bad_event: None,
            scratch: Vec::new(),
            line_no: 0,
        }
    }

    /// True once a step was `Failed` or `Tail`: later frames are not looked at.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// True when the frames decided a failure, or no checkpoint verified (yet): what the
    /// lines not covered are, should the frames end now.
    pub(crate) fn failing(&self) -> bool {
        self.failed.is_some() || self.r.checkpoints == 0
    }

    fn fail(&mut self, status: Status, reason: impl Into<String>, at: Option<Divergence>) -> Step {
        let r = std::mem::replace(&mut self.r, Report::new());
        self.failed = Some(r.fail(status, reason, at));
        self.ended = true;
        Step::Failed
    }

    fn tail(&mut self, offset: u64) -> Step {
        self.tail_start = Some(offset);
        self.ended = true;
        Step::Tail
    }

    /// Damage inside the frame at `offset` that no crash leaves: its status.
    fn damaged(&mut self, offset: u64, reason: String, at: Divergence) -> Step {
        match damage_status(self.data, offset, &self.r, false).unwrap_or(Status::Modified) {
            Status::Format => self.fail(Status::Format, format!("{reason}; {UNSIGNED}"), Some(at)),
            st => self.fail(st, reason, Some(at)),
        }
    }

    /// Take the next frame in file order, as the scanner returned it, and for a data frame
    /// its decompressed content (`None` for other frames).
    pub(crate) fn frame(
        &mut self,
        frame: Result<Frame<'d>, ContainerError>,
        decoded: Option<Result<&[u8], &ContainerError>>,
    ) -> Step {
        if self.ended {
            return if self.failed.is_some() {
                Step::Failed
            } else {
                Step::Tail
            };
        }
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let off = e.offset().unwrap_or(0);
                let crash_like = matches!(
                    e,
                    ContainerError::Truncated { .. }
                        | ContainerError::Zstd { .. }
                        | ContainerError::BadMagic { .. }
                );
                let at = Some(Divergence {
                    line: self.region_line,
                    offset: off,
                });
                let final_seen = self.final_note.is_some();
                return match damage_status(self.data, off, &self.r, final_seen) {
                    None if crash_like => self.tail(off),
                    Some(Status::Modified) if final_seen => {
                        let reason = format!("bytes after the final checkpoint: {e}");
                        self.fail(Status::Modified, reason, at)
                    }
                    Some(Status::Format) => {
                        let at = at.filter(|_| e.offset().is_some());
                        self.fail(Status::Format, format!("{e}; {UNSIGNED}"), at)
                    }
                    st => self.fail(st.unwrap_or(Status::Modified), e.to_string(), at),
                };
            }
        };
        let at = Divergence {
            line: self.region_line,
            offset: frame.offset,
        };
        if self.final_note.is_some() {
            return self.fail(
                Status::Modified,
                "data after the final checkpoint",
                Some(at),
            );
        }
        match frame.kind {
            FrameKind::Data => self.data_frame(&frame, decoded, at),
            FrameKind::Checkpoint => self.checkpoint_frame(&frame, at),
        }
    }

    fn data_frame(
        &mut self,
        frame: &Frame<'d>,
        decoded: Option<Result<&[u8], &ContainerError>>,
        at: Divergence,
    ) -> Step {
        self.region_offset.get_or_insert(frame.offset);
        let empty = ContainerError::Empty;
        let buf = match decoded.unwrap_or(Err(&empty)) {
            Ok(buf) => buf,
            // A limit of SPEC §8, wherever it is: FORMAT.
            Err(e @ ContainerError::OversizedFrame { .. }) => {
                let reason = format!(
                    "{e} ({} MiB, SPEC §8)",
                    sealcast_format::MAX_FRAME_CONTENT >> 20
                );
                return self.fail(Status::Format, reason, Some(at));
            }
            // An undecodable frame is what a crash can leave.
            Err(e) => {
                if damage_status(self.data, frame.offset, &self.r, false).is_none() {
                    return self.tail(frame.offset);
                }
                return self.damaged(frame.offset, e.to_string(), at);
            }
        };
        if buf.last() != Some(&b'\n') {
            let reason = format!(
                "offset {}: frame does not end at a line boundary",
                frame.offset
            );
            return self.damaged(frame.offset, reason, at);
        }
        for line in lines(buf) {
            if let Some(v) = self.verifier.as_mut() {
                if let Err(e) = self.rules.check(line, &mut self.scratch) {
                    let bad = (self.line_no, frame.offset, e.to_string());
                    self.bad_event.get_or_insert(bad);
                }
                v.line(line);
                self.line_no += 1;
                continue;
            }
            let meta = match Header::parse(line) {
                Ok(Header {
                    sealcast: Some(m), ..
                }) => m,
                Ok(_) => {
                    let reason = "line 0 (header): asciicast v3 without sealcast metadata";
                    return self.damaged(frame.offset, reason.to_string(), at);
                }
                Err(e) => {
                    return self.damaged(frame.offset, format!("line 0 (header): {e}"), at);
                }
            };
            let mut v = ChainVerifier::new(&meta.host, &meta.session, &meta.key_id, self.trust);
            self.header_key_id = Some(meta.key_id.clone());
            v.line(line);
            self.line_no += 1;
            self.verifier = Some(v);
            self.r.session = Some(meta.session);
            self.r.host = Some(meta.host);
            self.r.user = Some(meta.user);
        }
        Step::Continue
    }

    fn checkpoint_frame(&mut self, frame: &Frame<'d>, at: Divergence) -> Step {
        let Some(v) = self.verifier.as_mut() else {
            let reason = format!("offset {}: checkpoint before the header", frame.offset);
            return self.damaged(frame.offset, reason, at);
        };
        match v.checkpoint(frame.bytes) {
            Ok((cp, trusted)) => {
                // The region is what was signed; a line in it that breaks the event rules
                // was signed that way, and no reader will show past it.
                if let Some((line, offset, reason)) = self.bad_event.take() {
                    return self.fail(Status::Format, reason, Some(Divergence { line, offset }));
                }
                let r = &mut self.r;
                r.checkpoints += 1;
                r.verified_lines = cp.lines;
                r.verified_bytes = cp.bytes;
                r.key_id = Some(cp.key.to_string());
                r.signer = Some(trusted.principals_text());
                self.region_offset = None;
                self.region_line = cp.lines;
                self.region_rules = self.rules;
                if cp.is_final {
                    self.final_note = Some(frame.bytes);
                }
                Step::Verified {
                    seq: cp.seq,
                    lines: cp.lines,
                }
            }
            Err(e) => {
                let status = checkpoint_status(&e);
                let mut at = Divergence {
                    line: self.region_line,
                    offset: self.region_offset.unwrap_or(frame.offset),
                };
                let mut reason = format!("checkpoint at offset {}: {e}", frame.offset);
                if status == Status::Modified {
                    let signed = sealcast_signer::Checkpoint::parse(frame.bytes)
                        .ok()
                        .map(|(c, _, _)| (c.lines, c.bytes));
                    let start = (self.region_line, self.r.verified_bytes);
                    if let Some((line, offset, why)) =
                        blame_line(self.data, at.offset, start, signed)
                    {
                        at = Divergence { line, offset };
                        reason = format!("{why}; {reason}");
                    }
                }
                self.fail(status, reason, Some(at))
            }
        }
    }

    /// The report, once the frames ended or a step ended the walk: what the frames decided,
    /// else the rest of SPEC §7.1 (no checkpoint, the file name, the seal receipt, an
    /// unsealed tail, a missing final checkpoint) with what `ctx` knows.
    pub(crate) fn finish(self, ctx: &Context<'_>) -> Report {
        if let Some(failed) = self.failed {
            return failed;
        }
        let Walk {
            data,
            trust,
            mut r,
            verifier,
            region_offset,
            final_note,
            tail_start,
            header_key_id,
            region_rules,
            mut scratch,
            line_no,
            ..
        } = self;
        if r.checkpoints == 0 {
            let what = if verifier.is_none() {
                "no header".to_string()
            } else {
                format!("a header and {} event lines", line_no.saturating_sub(1))
            };
            let reason = format!(
                "{what} but no signed checkpoint: sealcast signs checkpoint 0 right after the \
                 header, before the session starts (SPEC §10), so no sealcast session wrote \
                 this file as it stands"
            );
            return r.fail(Status::Format, reason, None);
        }

        // Checkpoint 0 verified, so the header's session id is signed: a file name that
        // claims another one is a file put in another session's place.
        if let (Some(name), Some(session)) = (ctx.file_name, r.session.as_deref()) {
            if let Some(claimed) = names::claimed_session(name) {
                if claimed != session {
                    let reason = format!(
                        "file name {name} says session {claimed}, the header says session \
                         {session}"
                    );
                    return r.fail(Status::Modified, reason, None);
                }
            }
        }

        // The seal receipt: only a valid final note of this very session and host.
        let (receipt_cp, receipt_bytes) =
            match check_receipt(&ctx.receipt, &r, header_key_id.as_deref(), trust) {
                Ok(cp) => cp,
                Err((status, reason)) => return r.fail(status, reason, None),
            };

        if let Some(note) = final_note {
            if let (Some(cp), Some(receipt)) = (&receipt_cp, receipt_bytes) {
                if receipt != note {
                    let status = if cp.lines > r.verified_lines {
                        Status::Truncated
                    } else {
                        Status::Modified
                    };
                    let reason = format!(
                        "{} covers {} lines, the recording's final checkpoint {}",
                        receipt_name(&ctx.receipt),
                        cp.lines,
                        r.verified_lines
                    );
                    return r.fail(status, reason, None);
                }
            }
            r.sealed = true;
            return r;
        }

        // Not sealed: a crash, or a cut.
        let tail_offset = region_offset.or(tail_start);
        let mut tail_bad = None;
        if let Some(off) = tail_offset {
            // The tail's lines, checked by the rules from where the region starts, as a
            // reader would read them.
            let mut tail = crate::read::Lines::new(&data[off as usize..]);
            let mut rules = region_rules;
            let mut n = r.verified_lines;
            while let Some((line, at, _)) = tail.next_line() {
                if tail_bad.is_none() {
                    if let Err(e) = rules.check(line, &mut scratch) {
                        tail_bad = Some(format!("line {n}, offset {}: {e}", off + at));
                    }
                }
                n += 1;
            }
            r.tail = Some(Tail {
                offset: off,
                compressed_bytes: data.len() as u64 - off,
                lines: tail.lines_read,
            });
        }
        if let Some(cp) = &receipt_cp {
            // The receipt says the session was closed; the file does not end with that close.
            let status = if cp.lines >= r.verified_lines {
                Status::Truncated
            } else {
                Status::Modified
            };
            let reason = format!(
                "{} covers {} lines but only {} verify and the final checkpoint is missing \
                 (session was closed, file was cut)",
                receipt_name(&ctx.receipt),
                cp.lines,
                r.verified_lines
            );
            let at = Divergence {
                line: r.verified_lines,
                offset: tail_offset.unwrap_or(data.len() as u64),
            };
            return r.fail(status, reason, Some(at));
        }
        if let Some(off) = tail_offset {
            let tail_lines = r.tail.as_ref().map_or(0, |t| t.lines);
            let mut reason = format!(
                "{} lines verified up to checkpoint {}; {} unsealed bytes after it ({} complete \
                 lines) — recorder did not close the session",
                r.verified_lines,
                r.checkpoints - 1,
                data.len() as u64 - off,
                tail_lines
            );
            if let Some(bad) = tail_bad {
                reason.push_str(&format!("; readers stop in the tail at {bad}"));
            }
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
}

fn verify_frames<'d>(
    data: &'d [u8],
    ctx: &Context<'_>,
    trust: &TrustStore,
    frames: impl Iterator<Item = Scanned<'d>>,
) -> Report {
    let mut walk = Walk::new(data, trust);
    for (frame, decoded) in frames {
        let decoded = decoded.as_ref().map(|d| d.as_ref().map(Vec::as_slice));
        if let Step::Failed | Step::Tail = walk.frame(frame, decoded) {
            break;
        }
    }
    walk.finish(ctx)
}

/// `seal receipt` or `seal receipt <path>`, for reasons.
fn receipt_name(receipt: &Receipt<'_>) -> String {
    match receipt {
        Receipt::Read { path, .. }
        | Receipt::NotRegular { path, .. }
        | Receipt::Unreadable { path, .. }
            if !path.is_empty() =>
        {
            format!("seal receipt {path}")
        }
        _ => "seal receipt".to_string(),
    }
}

/// A receipt that passed: its verified note and its bytes (both `None` without a receipt).
type ReceiptNote<'r> = (
    Option<sealcast_signer::Verified<sealcast_signer::Checkpoint>>,
    Option<&'r [u8]>,
);

/// The verified receipt note and its bytes, or the status and reason it earns (SPEC §5,
/// "Seal receipt"): UNREADABLE when it could not be read; MODIFIED when it is not a regular
/// file, too long, not a checkpoint note by a trusted key with a good signature, not final,
/// or for another session or host than the header's.
fn check_receipt<'r>(
    receipt: &Receipt<'r>,
    r: &Report,
    header_key: Option<&str>,
    trust: &TrustStore,
) -> Result<ReceiptNote<'r>, (Status, String)> {
    let name = receipt_name(receipt);
    let bytes = match *receipt {
        Receipt::Absent => return Ok((None, None)),
        Receipt::Unreadable { error, .. } => {
            return Err((Status::Unreadable, format!("{name}: {error}")))
        }
        Receipt::NotRegular { what, .. } => {
            let why = "not a regular file (sealcast writes receipts as regular files)";
            return Err((Status::Modified, format!("{name} is {what}, {why}")));
        }
        Receipt::Read { bytes, .. } => bytes,
    };
    let modified = |why: String| Err((Status::Modified, format!("{name}: {why}")));
    if bytes.len() > MAX_CHECKPOINT_PAYLOAD {
        return modified(format!(
            "more than {MAX_CHECKPOINT_PAYLOAD} bytes, longer than any checkpoint note"
        ));
    }
    // What the note claims, before any key is consulted: a receipt that is not this very
    // session's final note is not its receipt, whoever signed it.
    let claimed = match Checkpoint::parse(bytes) {
        Ok((cp, _, _)) => cp,
        Err(e) => return modified(e.to_string()),
    };
    if !claimed.is_final {
        return modified(format!(
            "checkpoint {} is not final (final 0); a receipt is written only when a session \
             closes, with its final checkpoint",
            claimed.seq
        ));
    }
    if r.session.as_deref() != Some(claimed.session.as_str())
        || r.host.as_deref() != Some(claimed.host.as_str())
    {
        return modified(format!(
            "for host {} session {}, but the recording is host {} session {}",
            claimed.host,
            claimed.session,
            r.host.as_deref().unwrap_or("?"),
            r.session.as_deref().unwrap_or("?")
        ));
    }
    // Then its signer: trusted for this host (§6), and the key the header names.
    let cp = match verify_note(bytes, trust) {
        Ok(cp) => cp,
        Err(e @ CheckpointError::WrongSigner { .. }) => {
            return Err((Status::WrongSigner, format!("{name}: {e}")))
        }
        Err(e) => return modified(e.to_string()),
    };
    if let Some(header_key) = header_key {
        if cp.key.to_string() != header_key {
            return Err((
                Status::WrongSigner,
                format!(
                    "{name}: signed by key {}, but the header names key {header_key:?}",
                    cp.key
                ),
            ));
        }
    }
    Ok((Some(cp), Some(bytes)))
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

    /// A closed recording of about `mb` MiB of varied output.
    fn big(mb: usize) -> (Vec<u8>, TrustStore) {
        let (mut w, trust) = sealcast_testkit::system_writer("h");
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
            let ctx = Context::default();
            verify_frames(data, &ctx, &trust, scan(data).map(|f| decode(&mut dec, f)))
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

    #[test]
    fn exit_codes_follow_spec_order() {
        use Status::*;
        let exit_code =
            |s: &[Status], strict| super::exit_code(s.iter().map(|s| s.exit_class()), strict);
        assert_eq!(exit_code(&[], false), 0);
        assert_eq!(exit_code(&[Ok, Ok], false), 0);
        assert_eq!(exit_code(&[Ok, Unclosed], false), 2);
        assert_eq!(exit_code(&[Ok, Unclosed], true), 1);
        assert_eq!(exit_code(&[UnsealedTail, Unreadable], false), 4);
        assert_eq!(exit_code(&[UnsealedTail, Unreadable], true), 1);
        assert_eq!(exit_code(&[Unreadable, Modified], false), 1);
        assert_eq!(exit_code(&[Format], false), 1);
        assert_eq!(exit_code(&[Ok, WrongSigner], false), 1);
        assert_eq!(exit_code(&[Unclosed, WrongSigner, Unreadable], false), 1);
        // Classes no status has (a bucket's are 0, 1, 2 and 4 too) never pass as verified.
        assert_eq!(super::exit_code([0, 3], false), 4);
        assert_eq!(super::exit_code([-1, 2], false), 4);
    }

    /// A data frame of 16 MiB + 1 byte inserted after checkpoint 0 is FORMAT (SPEC §8) on
    /// the pipelined path (decompression on the second thread) and inline alike; one of
    /// exactly 16 MiB is within the limit, so it is hashed and its checkpoint fails.
    #[test]
    fn frame_limit_on_both_paths() {
        use sealcast_format::{FrameCompressor, MAX_FRAME_CONTENT};
        let (file, trust) = big(12);
        let cp0 = scan(&file).flatten().nth(1).unwrap();
        assert_eq!(cp0.kind, FrameKind::Checkpoint);
        let at = (cp0.offset + cp0.len) as usize;
        for (len, want) in [
            (MAX_FRAME_CONTENT, Status::Modified),
            (MAX_FRAME_CONTENT + 1, Status::Format),
        ] {
            let mut c = FrameCompressor::new(1).unwrap();
            let mut frame = Vec::new();
            let line = br#"[0.000000, "o", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]"#;
            let mut left = len;
            while left > 0 {
                let n = left.min(line.len() + 1);
                c.write_line(&line[line.len() + 1 - n..], &mut frame)
                    .unwrap();
                left -= n;
            }
            c.end_frame(&mut frame).unwrap();
            let mut bad = file[..at].to_vec();
            bad.extend_from_slice(&frame);
            bad.extend_from_slice(&file[at..]);
            assert!(bad.len() >= PIPELINE_MIN_BYTES);
            let piped = verify_bytes(&bad, None, &trust);
            let mut dec = Decompressor::new();
            let ctx = Context::default();
            let inline = verify_frames(&bad, &ctx, &trust, scan(&bad).map(|f| decode(&mut dec, f)));
            for r in [&piped, &inline] {
                assert_eq!(r.status, want, "{len}: {}", r.reason);
            }
            if want == Status::Format {
                assert_eq!(piped.divergence.as_ref().map(|d| d.offset), Some(at as u64));
                assert!(
                    piped.reason.contains("larger than the limit"),
                    "{}",
                    piped.reason
                );
            }
        }
    }
}
